//! Settings ("GUCs", PostgreSQL's Grand Unified Configuration): the registry of parameters,
//! their types, units, contexts and defaults, and how values are parsed and shown.
//!
//! Three layers use it:
//! - `file`: the server-wide configuration (`postgresql.conf`-style file plus `-c name=value`
//!   overrides), parsed by the server crate at start and at reload (`ServerConfig`);
//! - `session`: one session's view: SET / SET LOCAL / RESET with transactional undo, startup
//!   packet values, and the `GUC_REPORT` parameters sent as ParameterStatus (`SessionGucs`);
//! - this module: the static table (`GUCS`) and value handling shared by both.
//!
//! Values are stored canonically (`GucValue`): integers in the parameter's base unit, enums
//! in their canonical spelling. `show` formats them as PostgreSQL's SHOW does: an integer
//! with a unit is printed in the largest unit that divides it evenly (`5000` ms → `5s`).
//!
//! Deliberately not done: PostgreSQL's full per-level GUC stack (we have no functions with SET
//! clauses, so "session value + transaction-local value + value saved at the first SET of the
//! transaction" captures every case, and a savepoint simply keeps a copy of those three to
//! return to), and settings that need machinery
//! lockstep does not have are accepted but documented as having no effect.
//! Failure: every bad name or value is a `PgError` with PostgreSQL's SQLSTATE and wording
//! (42704 unknown parameter, 55P02 wrong context, 22023 bad value).

pub mod file;
pub mod session;

use base::PgError;
use base::error::sqlstate;

pub use file::{ConfigError, ConfigSource, ServerConfig};
pub use session::SessionGucs;

/// When a parameter may change (PostgreSQL's `GucContext`, reduced to what we enforce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GucContext {
    /// Fixed at build or initialisation; never settable (server_version, wal_segment_size).
    Internal,
    /// Needs a server restart (listen_addresses, port, ...).
    Postmaster,
    /// Set in the configuration file; takes effect at reload.
    Sighup,
    /// Settable by superusers with SET.
    Superuser,
    /// Settable by any session with SET.
    User,
}

/// One row of `pg_settings` (see `SessionGucs::settings`).
#[derive(Clone, Debug, PartialEq)]
pub struct SettingRow {
    pub name: String,
    pub setting: String,
    pub unit: Option<&'static str>,
    pub short_desc: &'static str,
    pub context: &'static str,
    pub vartype: &'static str,
    pub source: &'static str,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Option<&'static [&'static str]>,
    pub boot_val: String,
    pub reset_val: String,
    /// The configuration file and line the value came from (superusers only).
    pub sourcefile: Option<(String, usize)>,
}

impl GucContext {
    pub fn as_str(self) -> &'static str {
        match self {
            GucContext::Internal => "internal",
            GucContext::Postmaster => "postmaster",
            GucContext::Sighup => "sighup",
            GucContext::Superuser => "superuser",
            GucContext::User => "user",
        }
    }
}

/// The unit of an integer parameter's stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    None,
    Bytes,
    Kb,
    /// 8 kB blocks (shared_buffers, effective_cache_size), as PostgreSQL stores them.
    Blocks,
    Mb,
    Ms,
    S,
    Min,
}

impl Unit {
    fn is_memory(self) -> bool {
        matches!(self, Unit::Bytes | Unit::Kb | Unit::Blocks | Unit::Mb)
    }

    fn is_time(self) -> bool {
        matches!(self, Unit::Ms | Unit::S | Unit::Min)
    }

    /// Size of one base unit in bytes (memory) or milliseconds (time).
    fn scale(self) -> i64 {
        match self {
            Unit::None | Unit::Bytes | Unit::Ms => 1,
            Unit::Kb => 1024,
            Unit::Blocks => 8192,
            Unit::Mb => 1024 * 1024,
            Unit::S => 1000,
            Unit::Min => 60_000,
        }
    }

    /// The unit as `pg_settings.unit` names it (`None` for unitless parameters).
    pub fn pg_settings_name(self) -> Option<&'static str> {
        match self {
            Unit::None => None,
            Unit::Bytes => Some("B"),
            Unit::Kb => Some("kB"),
            Unit::Blocks => Some("8kB"),
            Unit::Mb => Some("MB"),
            Unit::Ms => Some("ms"),
            Unit::S => Some("s"),
            Unit::Min => Some("min"),
        }
    }

    fn hint(self) -> Option<&'static str> {
        if self.is_memory() {
            Some("Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".")
        } else if self.is_time() {
            Some(
                "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".",
            )
        } else {
            None
        }
    }
}

const MEMORY_UNITS: [(&str, i64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("kB", 1 << 10),
    ("B", 1),
];

const TIME_UNITS: [(&str, i64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("min", 60_000),
    ("s", 1000),
    ("ms", 1),
];

#[derive(Clone, Copy, Debug)]
pub enum GucType {
    Bool,
    Int { min: i64, max: i64, unit: Unit },
    Real { min: f64, max: f64 },
    String,
    Enum(&'static [&'static str]),
}

/// A parameter's canonical value.
#[derive(Clone, Debug, PartialEq)]
pub enum GucValue {
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
}

impl GucValue {
    pub fn as_bool(&self) -> bool {
        matches!(self, GucValue::Bool(true))
    }

    pub fn as_int(&self) -> i64 {
        match self {
            GucValue::Int(i) => *i,
            _ => 0,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            GucValue::Str(s) => s,
            _ => "",
        }
    }
}

/// Extra validation/normalisation of a value beyond its type.
pub type CheckHook = fn(&str) -> Result<String, PgError>;

pub struct GucDef {
    pub name: &'static str,
    pub ty: GucType,
    /// The built-in default, in input syntax.
    pub default: &'static str,
    pub context: GucContext,
    /// Sent to clients as ParameterStatus when it changes (GUC_REPORT).
    pub report: bool,
    pub description: &'static str,
    pub check: Option<CheckHook>,
}

impl std::fmt::Debug for GucDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

const INT_MAX: i64 = i32::MAX as i64;

mod defs;
pub use defs::GUCS;

/// The definition of `name` (case-insensitive), if it is a built-in parameter.
pub fn lookup(name: &str) -> Option<&'static GucDef> {
    GUCS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Custom ("placeholder") parameters: PostgreSQL accepts any name with a dot
/// (`myapp.tenant`) as a string setting.
pub fn is_custom_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.all(|p| ok(Some(p)))
}

pub fn unrecognized(name: &str) -> PgError {
    PgError::new(
        sqlstate::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

pub fn cannot_change_now(name: &str) -> PgError {
    PgError::new(
        sqlstate::CANT_CHANGE_RUNTIME_PARAM,
        format!("parameter \"{name}\" cannot be changed now"),
    )
}

fn invalid_value(name: &str, value: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

/// PostgreSQL's `parse_bool`: true/false, yes/no, on/off, 1/0 and unique prefixes.
pub fn parse_bool(s: &str) -> Option<bool> {
    let v = s.trim().to_ascii_lowercase();
    if v.is_empty() {
        return None;
    }
    let prefix_of = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || v == "1" || prefix_of("on", 2) {
        return Some(true);
    }
    if prefix_of("false", 1) || prefix_of("no", 1) || v == "0" || prefix_of("off", 2) {
        return Some(false);
    }
    None
}

/// Parses an integer with an optional unit into the parameter's base unit.
fn parse_int(def: &GucDef, min: i64, max: i64, unit: Unit, input: &str) -> Result<i64, PgError> {
    let s = input.trim();
    let split = s
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0))
                && !(c == 'e' || c == 'E')
        })
        .map_or(s.len(), |(i, _)| i);
    let (num, unit_text) = s.split_at(split);
    let unit_text = unit_text.trim();
    let bad = || {
        let e = invalid_value(def.name, input);
        match unit.hint() {
            Some(h) if !unit_text.is_empty() => e.with_hint(h),
            _ => e,
        }
    };
    let number: f64 = if let Ok(i) = num.parse::<i64>() {
        i as f64
    } else if num.starts_with("0x") {
        return Err(bad());
    } else {
        num.parse::<f64>().map_err(|_| bad())?
    };
    if !number.is_finite() {
        return Err(bad());
    }
    let value = if unit_text.is_empty() {
        number
    } else {
        let table: &[(&str, i64)] = if unit.is_memory() {
            &MEMORY_UNITS
        } else if unit.is_time() {
            &TIME_UNITS
        } else {
            return Err(bad());
        };
        let factor = if unit.is_time() && unit_text == "us" {
            0.001
        } else {
            table
                .iter()
                .find(|(u, _)| *u == unit_text)
                .map(|(_, f)| *f as f64)
                .ok_or_else(bad)?
        };
        number * factor / unit.scale() as f64
    };
    let rounded = value.round();
    if rounded < min as f64 || rounded > max as f64 {
        return Err(PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!(
                "{} is outside the valid range for parameter \"{}\" ({} .. {})",
                input.trim(),
                def.name,
                min,
                max
            ),
        ));
    }
    Ok(rounded as i64)
}

/// Parses and validates `input` for `def`, returning the canonical value.
pub fn parse_value(def: &GucDef, input: &str) -> Result<GucValue, PgError> {
    let value = match def.ty {
        GucType::Bool => GucValue::Bool(parse_bool(input).ok_or_else(|| {
            PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("parameter \"{}\" requires a Boolean value", def.name),
            )
        })?),
        GucType::Int { min, max, unit } => GucValue::Int(parse_int(def, min, max, unit, input)?),
        GucType::Real { min, max } => {
            let v: f64 = input
                .trim()
                .parse()
                .map_err(|_| invalid_value(def.name, input))?;
            if !(min..=max).contains(&v) {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!(
                        "{} is outside the valid range for parameter \"{}\" ({} .. {})",
                        input.trim(),
                        def.name,
                        min,
                        max
                    ),
                ));
            }
            GucValue::Real(v)
        }
        GucType::String => GucValue::Str(input.to_owned()),
        GucType::Enum(options) => {
            let lower = input.trim().to_ascii_lowercase();
            match options.iter().find(|o| **o == lower) {
                Some(o) => GucValue::Str((*o).to_owned()),
                None => {
                    return Err(invalid_value(def.name, input)
                        .with_hint(format!("Available values: {}.", options.join(", "))));
                }
            }
        }
    };
    match (def.check, value) {
        (Some(check), GucValue::Str(s)) => Ok(GucValue::Str(check(&s)?)),
        (Some(check), v) => {
            // Non-string values are only validated by the hook.
            check(&show(def, &v))?;
            Ok(v)
        }
        (None, v) => Ok(v),
    }
}

/// The value as SHOW prints it.
pub fn show(def: &GucDef, value: &GucValue) -> String {
    match (value, def.ty) {
        (GucValue::Bool(b), _) => if *b { "on" } else { "off" }.to_owned(),
        (GucValue::Int(v), GucType::Int { unit, .. }) if *v > 0 && unit != Unit::None => {
            show_with_unit(*v, unit)
        }
        (GucValue::Int(v), _) => v.to_string(),
        (GucValue::Real(r), _) => format_real(*r),
        (GucValue::Str(s), _) => s.clone(),
    }
}

pub(crate) fn format_real(r: f64) -> String {
    // PostgreSQL prints reals with %g: no trailing ".0".
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// PostgreSQL's `convert_int_from_base_unit`: the largest unit dividing the value evenly.
fn show_with_unit(v: i64, unit: Unit) -> String {
    let (table, scaled): (&[(&str, i64)], i64) = if unit.is_memory() {
        (&MEMORY_UNITS, v.saturating_mul(unit.scale()))
    } else {
        (&TIME_UNITS, v.saturating_mul(unit.scale()))
    };
    // Never print in a unit smaller than the base unit (PostgreSQL's tables start at it).
    let smallest = unit.scale();
    for (name, factor) in table {
        if *factor >= smallest && scaled % factor == 0 {
            return format!("{}{}", scaled / factor, name);
        }
    }
    v.to_string()
}

// ----- check hooks -----

fn check_encoding(s: &str) -> Result<String, PgError> {
    let norm: String = s
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_uppercase();
    match norm.as_str() {
        "UTF8" | "UNICODE" => Ok("UTF8".into()),
        "SQLASCII" => Ok("SQL_ASCII".into()),
        _ => Err(invalid_value("client_encoding", s).with_detail(
            "lockstep sends and receives UTF8 only (SQL_ASCII clients are accepted).",
        )),
    }
}

fn check_datestyle(s: &str) -> Result<String, PgError> {
    let mut order = "MDY";
    for part in s.split(',') {
        match part.trim().to_ascii_uppercase().as_str() {
            "ISO" | "DEFAULT" | "" => {}
            "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => order = "MDY",
            "DMY" | "EURO" | "EUROPEAN" => order = "DMY",
            "YMD" => order = "YMD",
            _ => {
                return Err(invalid_value("DateStyle", s)
                    .with_detail("lockstep supports only the ISO output style."));
            }
        }
    }
    Ok(format!("ISO, {order}"))
}

/// IANA zone names, hours east of UTC, and POSIX fixed offsets (see `base::tz`); the value
/// kept is the name `SHOW TimeZone` gives.
fn check_timezone(s: &str) -> Result<String, PgError> {
    match base::tz::Zone::parse(s) {
        Some((_, name)) => Ok(name),
        None => Err(invalid_value("TimeZone", s)),
    }
}

fn check_standard_conforming(s: &str) -> Result<String, PgError> {
    if s == "on" {
        return Ok(s.to_owned());
    }
    Err(invalid_value("standard_conforming_strings", s)
        .with_detail("lockstep always treats backslashes in '...' strings literally."))
}

fn check_isolation(s: &str) -> Result<String, PgError> {
    match s {
        "read committed" | "read uncommitted" => Ok("read committed".into()),
        _ => Err(PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("transaction isolation level \"{s}\" is not supported"),
        )
        .with_detail("lockstep runs every transaction at READ COMMITTED.")),
    }
}

fn check_application_name(s: &str) -> Result<String, PgError> {
    // PostgreSQL replaces non-printable-ASCII characters and truncates to NAMEDATALEN - 1.
    const NAME_BYTES_MAX: usize = 63;
    Ok(s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(NAME_BYTES_MAX)
        .collect())
}

fn check_sync_commit(s: &str) -> Result<String, PgError> {
    s.parse::<base::SyncCommitLevel>()
        .map(|l| l.as_str().to_owned())
        .map_err(|()| {
            invalid_value("synchronous_commit", s).with_hint(
                "Available values: local, remote_write, remote_apply, on, off.".to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_default_parses() {
        for def in GUCS {
            assert!(
                parse_value(def, def.default).is_ok(),
                "default of {}",
                def.name
            );
        }
        let mut names: Vec<String> = GUCS.iter().map(|d| d.name.to_ascii_lowercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate parameter names");
    }

    #[test]
    fn units_parse_and_show_like_postgres() {
        let st = lookup("statement_timeout").expect("def");
        assert_eq!(parse_value(st, "5s").ok(), Some(GucValue::Int(5000)));
        assert_eq!(parse_value(st, "5000").ok(), Some(GucValue::Int(5000)));
        assert_eq!(parse_value(st, " 1 min").ok(), Some(GucValue::Int(60000)));
        assert_eq!(parse_value(st, "1.5s").ok(), Some(GucValue::Int(1500)));
        assert_eq!(show(st, &GucValue::Int(5000)), "5s");
        assert_eq!(show(st, &GucValue::Int(0)), "0");
        assert_eq!(show(st, &GucValue::Int(1500)), "1500ms");
        assert_eq!(show(st, &GucValue::Int(3_600_000)), "1h");
        let e = parse_value(st, "5 parsecs").expect_err("bad unit");
        assert_eq!(e.code, sqlstate::INVALID_PARAMETER_VALUE);
        assert!(e.hint.is_some());
        let sb = lookup("shared_buffers").expect("def");
        assert_eq!(show(sb, &parse_value(sb, "128MB").expect("v")), "128MB");
        assert_eq!(parse_value(sb, "128MB").ok(), Some(GucValue::Int(16384)));
        let ws = lookup("wal_segment_size").expect("def");
        assert_eq!(show(ws, &GucValue::Int(16 * 1024 * 1024)), "16MB");
        let ct = lookup("checkpoint_timeout").expect("def");
        assert_eq!(show(ct, &parse_value(ct, "5min").expect("v")), "5min");
        assert_eq!(parse_value(ct, "60000ms").ok(), Some(GucValue::Int(60)));
        assert!(parse_value(ct, "1").is_err(), "below minimum");
    }

    #[test]
    fn booleans_and_enums() {
        assert_eq!(parse_bool("on"), Some(true));
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool("y"), Some(true));
        assert_eq!(parse_bool("o"), None);
        assert_eq!(parse_bool("tru"), Some(true));
        let sc = lookup("synchronous_commit").expect("def");
        assert_eq!(
            parse_value(sc, "TRUE").ok(),
            Some(GucValue::Str("on".into()))
        );
        assert_eq!(
            parse_value(sc, "remote_apply").ok(),
            Some(GucValue::Str("remote_apply".into()))
        );
        assert!(parse_value(sc, "sometimes").is_err());
        let tz = lookup("timezone").expect("def");
        assert_eq!(
            parse_value(tz, "utc").ok(),
            Some(GucValue::Str("UTC".into()))
        );
        assert_eq!(
            parse_value(tz, "europe/paris").ok(),
            Some(GucValue::Str("Europe/Paris".into()))
        );
        assert!(parse_value(tz, "Europe/Atlantis").is_err());
        let ce = lookup("client_encoding").expect("def");
        assert_eq!(
            parse_value(ce, "utf-8").ok(),
            Some(GucValue::Str("UTF8".into()))
        );
        assert!(parse_value(ce, "LATIN1").is_err());
    }

    #[test]
    fn custom_names() {
        assert!(is_custom_name("myapp.tenant"));
        assert!(!is_custom_name("tenant"));
        assert!(!is_custom_name("a..b"));
    }
}
