//! One session's settings: SET / SET LOCAL / RESET with PostgreSQL's transactional rules, the
//! startup packet's values, and the GUC_REPORT parameters the client is told about.
//!
//! Layers, highest first: `local` (SET LOCAL, until the transaction ends), `session` (SET),
//! `startup` (startup packet; what RESET returns to, as PostgreSQL's reset value), the
//! server configuration, the built-in default.
//!
//! Transactions: the first SET/RESET inside a transaction saves the `session` layer; a
//! rollback restores it, a commit drops the copy; `local` is cleared at either end. Every SET
//! runs inside some transaction (an implicit one outside a block), so `SET x; <error>` in one
//! simple query is undone as in PostgreSQL.
//!
//! Hot values (synchronous_commit, timeouts, default read-only, client_min_messages) are kept
//! decoded in `hot` and refreshed after each change, so statements never parse settings.
//! Owned by the `Session`; never shared.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base::error::sqlstate;
use base::{PgError, SyncCommitLevel};

use super::file::{ConfigSource, default_value};
use super::{
    GUCS, GucContext, GucDef, GucType, GucValue, ServerConfig, SettingRow, cannot_change_now,
    format_real, is_custom_name, lookup, parse_value, show, unrecognized,
};

/// Parameters stored as strings because a check hook normalises their spellings
/// (`synchronous_commit = true` is `on`), which PostgreSQL lists as enums in `pg_settings`;
/// the values in PostgreSQL's order.
const STRING_ENUMS: &[(&str, &[&str])] = &[(
    "synchronous_commit",
    &["local", "remote_write", "remote_apply", "on", "off"],
)];

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Builtin(&'static str),
    Custom(String),
}

type Layer = HashMap<Key, GucValue>;

/// The session's settings as a savepoint found them (`SessionGucs::savepoint`).
#[derive(Clone, Debug)]
pub struct GucSavepoint {
    session: Layer,
    local: Layer,
    saved: Option<Layer>,
}

/// Decoded values consulted on every statement.
#[derive(Clone, Copy, Debug)]
pub struct HotSettings {
    pub synchronous_commit: SyncCommitLevel,
    pub statement_timeout: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    pub idle_in_transaction_timeout: Option<Duration>,
    pub default_read_only: bool,
    /// `TimeZone`, parsed: made current around every call into the session.
    pub zone: base::tz::Zone,
    /// Rank of client_min_messages: notices are sent when it is at most `NOTICE_RANK`,
    /// warnings when at most `WARNING_RANK`.
    pub client_min_messages: u8,
}

pub const NOTICE_RANK: u8 = 6;
pub const WARNING_RANK: u8 = 7;

#[derive(Clone, Debug)]
pub struct SessionGucs {
    config: Arc<ServerConfig>,
    startup: Layer,
    session: Layer,
    local: Layer,
    /// The `session` layer as it was at the first change in the current transaction.
    saved: Option<Layer>,
    user: String,
    superuser: bool,
    in_hot_standby: bool,
    pub hot: HotSettings,
    /// Reported parameters as last sent to the client.
    reported: HashMap<&'static str, String>,
    report_dirty: bool,
    /// Bumped by every change of any value.
    generation: u64,
}

fn key_of(name: &str) -> Result<(Key, Option<&'static GucDef>), PgError> {
    if let Some(def) = lookup(name) {
        return Ok((Key::Builtin(def.name), Some(def)));
    }
    let lower = name.to_ascii_lowercase();
    if is_custom_name(&lower) {
        return Ok((Key::Custom(lower), None));
    }
    Err(unrecognized(name))
}

fn millis(v: i64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

impl SessionGucs {
    pub fn new(config: Arc<ServerConfig>, user: &str, superuser: bool) -> Self {
        let mut g = SessionGucs {
            config,
            startup: Layer::new(),
            session: Layer::new(),
            local: Layer::new(),
            saved: None,
            user: user.to_owned(),
            superuser,
            in_hot_standby: false,
            hot: HotSettings {
                synchronous_commit: SyncCommitLevel::On,
                statement_timeout: None,
                lock_timeout: None,
                idle_in_transaction_timeout: None,
                default_read_only: false,
                zone: base::tz::Zone::Utc,
                client_min_messages: NOTICE_RANK,
            },
            reported: HashMap::new(),
            report_dirty: true,
            generation: 0,
        };
        g.refresh_hot();
        g
    }

    /// A copy to try a change on (set_config validates before the session applies it).
    pub fn clone_for_probe(&self) -> SessionGucs {
        self.clone()
    }

    pub fn set_in_hot_standby(&mut self, on: bool) {
        if self.in_hot_standby != on {
            self.in_hot_standby = on;
            self.report_dirty = true;
        }
    }

    /// Installs a new server configuration (after a reload).
    pub fn set_config(&mut self, config: Arc<ServerConfig>) {
        self.config = config;
        self.refresh_hot();
        self.report_dirty = true;
    }

    /// Applies a startup-packet setting (PostgreSQL's PGC_S_CLIENT source).
    pub fn apply_startup(&mut self, name: &str, value: &str) -> Result<(), PgError> {
        let (key, def) = key_of(name)?;
        let v = match def {
            Some(def) => {
                self.check_context(def)?;
                parse_value(def, value)?
            }
            None => GucValue::Str(value.to_owned()),
        };
        self.startup.insert(key, v);
        self.refresh_hot();
        self.report_dirty = true;
        Ok(())
    }

    fn check_context(&self, def: &GucDef) -> Result<(), PgError> {
        match def.context {
            GucContext::Internal => Err(PgError::new(
                sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{}\" cannot be changed", def.name),
            )),
            GucContext::Postmaster => Err(PgError::new(
                sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                format!(
                    "parameter \"{}\" cannot be changed without restarting the server",
                    def.name
                ),
            )),
            GucContext::Sighup => Err(cannot_change_now(def.name)),
            GucContext::Superuser if !self.superuser => Err(PgError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to set parameter \"{}\"", def.name),
            )),
            _ => Ok(()),
        }
    }

    /// SET / SET LOCAL / RESET (`value` None) of one parameter, inside a transaction.
    pub fn set(&mut self, name: &str, value: Option<&str>, local: bool) -> Result<(), PgError> {
        let (key, def) = key_of(name)?;
        let parsed = match (def, value) {
            (Some(def), v) => {
                self.check_context(def)?;
                match v {
                    Some(v) => Some(parse_value(def, v)?),
                    None => None,
                }
            }
            (None, v) => v.map(|v| GucValue::Str(v.to_owned())),
        };
        if self.saved.is_none() {
            self.saved = Some(self.session.clone());
        }
        match (local, parsed) {
            (true, Some(v)) => {
                self.local.insert(key, v);
            }
            (true, None) => {
                let base = self.value_below_local(&key, def);
                self.local.insert(key, base);
            }
            (false, Some(v)) => {
                self.local.remove(&key);
                self.session.insert(key, v);
            }
            (false, None) => {
                self.local.remove(&key);
                self.session.remove(&key);
            }
        }
        if def.is_none_or(|d| d.report) {
            self.report_dirty = true;
        }
        self.refresh_hot();
        Ok(())
    }

    /// RESET ALL: every user-settable parameter back to its reset value.
    pub fn reset_all(&mut self) {
        if self.saved.is_none() {
            self.saved = Some(self.session.clone());
        }
        self.session.clear();
        self.local.clear();
        self.report_dirty = true;
        self.refresh_hot();
    }

    /// SAVEPOINT: the values SET and SET LOCAL have made so far, for `rollback_to`.
    pub fn savepoint(&self) -> GucSavepoint {
        GucSavepoint {
            session: self.session.clone(),
            local: self.local.clone(),
            saved: self.saved.clone(),
        }
    }

    /// ROLLBACK TO SAVEPOINT: SET and SET LOCAL since the savepoint are undone.
    pub fn rollback_to(&mut self, sp: &GucSavepoint) {
        if self.session == sp.session && self.local == sp.local {
            return;
        }
        self.session = sp.session.clone();
        self.local = sp.local.clone();
        self.saved = sp.saved.clone();
        self.report_dirty = true;
        self.refresh_hot();
    }

    /// End of a transaction: SET LOCAL values go; a rollback also undoes the SETs.
    pub fn end_xact(&mut self, commit: bool) {
        let saved = self.saved.take();
        let changed = !self.local.is_empty() || (!commit && saved.is_some());
        self.local.clear();
        if let (false, Some(s)) = (commit, saved) {
            self.session = s;
        }
        if changed {
            self.report_dirty = true;
            self.refresh_hot();
        }
    }

    fn value_below_local(&self, key: &Key, def: Option<&'static GucDef>) -> GucValue {
        match self.session.get(key) {
            Some(v) => v.clone(),
            None => self.value_below_session(key, def),
        }
    }

    /// The startup packet's value, else the server's: what RESET returns to.
    fn value_below_session(&self, key: &Key, def: Option<&'static GucDef>) -> GucValue {
        if let Some(v) = self.startup.get(key) {
            return v.clone();
        }
        match (key, def) {
            (_, Some(def)) => self.config.value_of(def),
            (Key::Custom(name), None) => {
                GucValue::Str(self.config.custom(name).unwrap_or("").to_owned())
            }
            (Key::Builtin(_), None) => GucValue::Str(String::new()),
        }
    }

    fn value(&self, key: &Key, def: Option<&'static GucDef>) -> GucValue {
        if let Some(v) = self.local.get(key) {
            return v.clone();
        }
        self.value_below_local(key, def)
    }

    fn builtin(&self, def: &'static GucDef) -> GucValue {
        self.derived(def)
            .unwrap_or_else(|| self.value(&Key::Builtin(def.name), Some(def)))
    }

    /// Parameters whose value is the session's state rather than a setting.
    fn derived(&self, def: &'static GucDef) -> Option<GucValue> {
        match def.name {
            "is_superuser" => Some(GucValue::Bool(self.superuser)),
            "session_authorization" => Some(GucValue::Str(self.user.clone())),
            "in_hot_standby" => Some(GucValue::Bool(self.in_hot_standby)),
            _ => None,
        }
    }

    /// SHOW / current_setting: the value as text. Unknown custom names are 42704.
    pub fn get(&self, name: &str) -> Result<String, PgError> {
        let (key, def) = key_of(name)?;
        match def {
            Some(def) => Ok(show(def, &self.builtin(def))),
            None => {
                let known = self.local.contains_key(&key)
                    || self.session.contains_key(&key)
                    || self.startup.contains_key(&key)
                    || matches!(&key, Key::Custom(n) if self.config.custom(n).is_some());
                if !known {
                    return Err(unrecognized(name));
                }
                Ok(self.value(&key, None).as_str().to_owned())
            }
        }
    }

    /// The canonical name of a built-in parameter (`datestyle` → `DateStyle`).
    pub fn canonical_name(name: &str) -> String {
        lookup(name).map_or_else(|| name.to_ascii_lowercase(), |d| d.name.to_owned())
    }

    /// SHOW ALL: (name, setting, description) sorted by name.
    pub fn show_all(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = GUCS
            .iter()
            .map(|d| {
                (
                    d.name.to_owned(),
                    show(d, &self.builtin(d)),
                    d.description.to_owned(),
                )
            })
            .collect();
        rows.sort_by_key(|r| r.0.to_ascii_lowercase());
        rows
    }

    /// `pg_settings`: every built-in parameter and every custom one this session can see,
    /// as PostgreSQL 15 lays them out. Integers are in their base unit (`setting` 16384 with
    /// `unit` 8kB), as PostgreSQL shows them; the file and line a value came from are shown
    /// to superusers only.
    pub fn settings(&self) -> Vec<SettingRow> {
        let mut rows: Vec<SettingRow> = GUCS
            .iter()
            .map(|d| {
                let key = Key::Builtin(d.name);
                let raw = |v: &GucValue| match v {
                    GucValue::Int(i) => i.to_string(),
                    other => show(d, other),
                };
                let (vartype, unit, min, max, enumvals) = match d.ty {
                    GucType::Bool => ("bool", None, None, None, None),
                    GucType::Int { min, max, unit } => (
                        "integer",
                        unit.pg_settings_name(),
                        Some(min.to_string()),
                        Some(max.to_string()),
                        None,
                    ),
                    GucType::Real { min, max } => (
                        "real",
                        None,
                        Some(format_real(min)),
                        Some(format_real(max)),
                        None,
                    ),
                    GucType::String => match STRING_ENUMS.iter().find(|(n, _)| *n == d.name) {
                        Some((_, vals)) => ("enum", None, None, None, Some(*vals)),
                        None => ("string", None, None, None, None),
                    },
                    GucType::Enum(vals) => ("enum", None, None, None, Some(vals)),
                };
                let (source, file) = self.source(&key, d.name);
                SettingRow {
                    name: d.name.to_owned(),
                    setting: raw(&self.builtin(d)),
                    unit,
                    short_desc: d.description,
                    context: d.context.as_str(),
                    vartype,
                    source,
                    min_val: min,
                    max_val: max,
                    enumvals,
                    boot_val: raw(&default_value(d)),
                    reset_val: raw(&self
                        .derived(d)
                        .unwrap_or_else(|| self.value_below_session(&key, Some(d)))),
                    sourcefile: file.filter(|_| self.superuser),
                }
            })
            .collect();
        let mut customs: Vec<String> = self
            .config
            .custom_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for layer in [&self.startup, &self.session, &self.local] {
            customs.extend(layer.keys().filter_map(|k| match k {
                Key::Custom(n) => Some(n.clone()),
                Key::Builtin(_) => None,
            }));
        }
        customs.sort_unstable();
        customs.dedup();
        for name in customs {
            let key = Key::Custom(name.clone());
            let (source, file) = self.source(&key, &name);
            rows.push(SettingRow {
                setting: self.value(&key, None).as_str().to_owned(),
                name,
                unit: None,
                short_desc: "",
                context: GucContext::User.as_str(),
                vartype: "string",
                source,
                min_val: None,
                max_val: None,
                enumvals: None,
                boot_val: String::new(),
                reset_val: self.value_below_session(&key, None).as_str().to_owned(),
                sourcefile: file.filter(|_| self.superuser),
            });
        }
        rows.sort_by_key(|r| r.name.to_ascii_lowercase());
        rows
    }

    /// PostgreSQL's `GucSource` name for where `key`'s current value comes from, and the
    /// configuration file and line when it comes from one.
    fn source(&self, key: &Key, name: &str) -> (&'static str, Option<(String, usize)>) {
        if self.local.contains_key(key) || self.session.contains_key(key) {
            return ("session", None);
        }
        if self.startup.contains_key(key) {
            return ("client", None);
        }
        match self.config.source_of(name) {
            None | Some(ConfigSource::Default) => ("default", None),
            Some(ConfigSource::File { path, line }) => {
                ("configuration file", Some((path.clone(), *line)))
            }
            Some(ConfigSource::CommandLine) => ("command line", None),
            Some(ConfigSource::Server) => ("override", None),
        }
    }

    /// Changes whenever any setting's value may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn refresh_hot(&mut self) {
        self.generation += 1;
        let get = |name: &'static str| {
            lookup(name).map_or(GucValue::Int(0), |d| {
                self.value(&Key::Builtin(d.name), Some(d))
            })
        };
        let hot = HotSettings {
            synchronous_commit: get("synchronous_commit")
                .as_str()
                .parse()
                .unwrap_or(SyncCommitLevel::On),
            statement_timeout: millis(get("statement_timeout").as_int()),
            lock_timeout: millis(get("lock_timeout").as_int()),
            idle_in_transaction_timeout: millis(
                get("idle_in_transaction_session_timeout").as_int(),
            ),
            default_read_only: get("default_transaction_read_only").as_bool(),
            // The stored value passed check_timezone, so it parses again.
            zone: base::tz::Zone::parse(get("TimeZone").as_str())
                .map_or_else(Default::default, |z| z.0),
            client_min_messages: match get("client_min_messages").as_str() {
                "debug5" | "debug4" | "debug3" | "debug2" | "debug1" => 0,
                "log" => 5,
                "warning" => WARNING_RANK,
                "error" => 8,
                _ => NOTICE_RANK,
            },
        };
        self.hot = hot;
    }

    /// All reported parameters (sent after authentication); remembers them as sent.
    pub fn initial_report(&mut self) -> Vec<(String, String)> {
        self.reported.clear();
        self.report_dirty = true;
        self.take_reported()
    }

    /// Reported parameters whose values changed since last sent.
    pub fn take_reported(&mut self) -> Vec<(String, String)> {
        if !self.report_dirty {
            return Vec::new();
        }
        self.report_dirty = false;
        let mut out = Vec::new();
        for def in GUCS.iter().filter(|d| d.report) {
            let v = show(def, &self.builtin(def));
            if self.reported.get(def.name) != Some(&v) {
                self.reported.insert(def.name, v.clone());
                out.push((def.name.to_owned(), v));
            }
        }
        out
    }

    /// Whether `name` is a known parameter (for SHOW on names we answer specially).
    pub fn is_known(name: &str) -> bool {
        lookup(name).is_some()
    }

    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// A parameter's default value for the server (ignoring session layers).
    pub fn server_value(&self, name: &str) -> Option<GucValue> {
        lookup(name).map(|d| self.config.value_of(d))
    }
}

/// Built-in default of `name` (for tests and tools).
pub fn builtin_default(name: &str) -> Option<GucValue> {
    lookup(name).map(default_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gucs() -> SessionGucs {
        SessionGucs::new(Arc::new(ServerConfig::new()), "alice", false)
    }

    #[test]
    fn pg_settings_rows_name_their_source() {
        let cfg = ServerConfig::load(
            None,
            &[("checkpoint_timeout".to_owned(), "10min".to_owned())],
        )
        .expect("config");
        let mut g = SessionGucs::new(Arc::new(cfg), "alice", false);
        g.apply_startup("application_name", "app").expect("startup");
        g.set("work_mem", Some("8MB"), false).expect("set");
        g.set("myapp.flag", Some("x"), true).expect("set local");
        let rows = g.settings();
        let row = |n: &str| {
            rows.iter()
                .find(|r| r.name == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        let ct = row("checkpoint_timeout");
        assert_eq!(
            (
                ct.setting.as_str(),
                ct.unit,
                ct.source,
                ct.boot_val.as_str()
            ),
            ("600", Some("s"), "command line", "300")
        );
        assert_eq!(ct.context, "sighup");
        let wm = row("work_mem");
        assert_eq!(
            (
                wm.setting.as_str(),
                wm.unit,
                wm.source,
                wm.reset_val.as_str()
            ),
            ("8192", Some("kB"), "session", "4096")
        );
        assert_eq!((wm.min_val.as_deref(), wm.vartype), (Some("64"), "integer"));
        let app = row("application_name");
        assert_eq!((app.setting.as_str(), app.source), ("app", "client"));
        assert_eq!(app.reset_val, "app");
        assert_eq!(row("fsync").source, "default");
        assert_eq!(row("myapp.flag").setting, "x");
        assert_eq!(row("synchronous_commit").vartype, "enum");
        assert!(
            rows.windows(2)
                .all(|w| { w[0].name.to_ascii_lowercase() <= w[1].name.to_ascii_lowercase() })
        );
    }

    #[test]
    fn set_rollback_and_local() {
        let mut g = gucs();
        g.set("statement_timeout", Some("1s"), false).expect("set");
        g.end_xact(true);
        assert_eq!(g.get("statement_timeout").expect("get"), "1s");
        g.set("statement_timeout", Some("2s"), false).expect("set");
        g.end_xact(false);
        assert_eq!(
            g.get("statement_timeout").expect("get"),
            "1s",
            "rolled back"
        );
        g.set("statement_timeout", Some("3s"), true)
            .expect("set local");
        assert_eq!(g.get("statement_timeout").expect("get"), "3s");
        assert_eq!(g.hot.statement_timeout, Some(Duration::from_secs(3)));
        g.end_xact(true);
        assert_eq!(g.get("statement_timeout").expect("get"), "1s", "local ends");
        g.set("statement_timeout", None, false).expect("reset");
        g.end_xact(true);
        assert_eq!(g.get("statement_timeout").expect("get"), "0");
    }

    #[test]
    fn contexts_and_unknown_names() {
        let mut g = gucs();
        assert_eq!(
            g.set("port", Some("1"), false)
                .expect_err("postmaster")
                .code,
            sqlstate::CANT_CHANGE_RUNTIME_PARAM
        );
        assert_eq!(
            g.set("fsync", Some("off"), false)
                .expect_err("sighup")
                .message,
            "parameter \"fsync\" cannot be changed now"
        );
        assert_eq!(
            g.set("deadlock_timeout", Some("1s"), false)
                .expect_err("superuser")
                .code,
            sqlstate::INSUFFICIENT_PRIVILEGE
        );
        assert_eq!(
            g.set("nope", Some("1"), false).expect_err("unknown").code,
            sqlstate::UNDEFINED_OBJECT
        );
        assert_eq!(
            g.get("nope").expect_err("unknown").message,
            "unrecognized configuration parameter \"nope\""
        );
        g.set("my.custom", Some("x"), false).expect("custom");
        assert_eq!(g.get("MY.CUSTOM").expect("get"), "x");
        assert!(g.get("my.other").is_err());
    }

    #[test]
    fn reported_parameters_change_once() {
        let mut g = gucs();
        g.apply_startup("application_name", "pgbench")
            .expect("startup");
        let first = g.initial_report();
        assert!(first.contains(&("application_name".into(), "pgbench".into())));
        assert!(first.contains(&("server_version".into(), "15.0".into())));
        assert!(first.contains(&("session_authorization".into(), "alice".into())));
        assert!(g.take_reported().is_empty());
        g.set("application_name", Some("x"), false).expect("set");
        assert_eq!(
            g.take_reported(),
            vec![("application_name".into(), "x".into())]
        );
        g.set("application_name", None, false).expect("reset");
        assert_eq!(
            g.take_reported(),
            vec![("application_name".into(), "pgbench".into())],
            "RESET returns to the startup value"
        );
        g.set("datestyle", Some("iso, dmy"), false).expect("set");
        assert_eq!(
            g.take_reported(),
            vec![("DateStyle".into(), "ISO, DMY".into())]
        );
    }
}
