//! The server-wide configuration: a `postgresql.conf`-style file plus `-c name=value`
//! overrides, parsed into `ServerConfig`.
//!
//! Where it runs: the server crate calls `ServerConfig::load` at start (an error is fatal) and
//! again at reload (an error keeps the old configuration, as PostgreSQL does); the engine
//! hands the result to sessions as the defaults beneath their own SETs.
//!
//! File syntax, as PostgreSQL's guc-file.l: one `name [=] value` per line; `#` starts a
//! comment; values are unquoted words, numbers with an optional unit (`16MB`, `5min`), or
//! single-quoted strings where `''` and `\'` stand for a quote and `\n`-style escapes are
//! decoded; `include`, `include_if_exists` and `include_dir` pull in other files (nested at
//! most `INCLUDE_DEPTH_MAX` deep). Names are case-insensitive; names containing a dot are
//! custom ("placeholder") parameters. A later setting of the same name wins.
//!
//! Failure: typed `ConfigError`s that name the file and line (or the command line).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{GUCS, GucContext, GucDef, GucValue, is_custom_name, lookup, parse_value, show};

/// PostgreSQL's `CONF_FILE_MAX_DEPTH`: guards against include cycles.
const INCLUDE_DEPTH_MAX: usize = 10;

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    Default,
    File {
        path: String,
        line: usize,
    },
    CommandLine,
    /// Set by the server itself (e.g. `wal_segment_size` from the control data).
    Server,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Default => f.write_str("default"),
            ConfigSource::File { path, line } => write!(f, "file \"{path}\" line {line}"),
            ConfigSource::CommandLine => f.write_str("command line"),
            ConfigSource::Server => f.write_str("server"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("syntax error in file \"{path}\" line {line}, near {near}")]
    Syntax {
        path: String,
        line: usize,
        /// `token "x"` or `end of line`, as PostgreSQL words it.
        near: String,
    },
    #[error("unrecognized configuration parameter \"{name}\" in {origin}")]
    UnknownParameter { name: String, origin: ConfigSource },
    #[error("invalid value for parameter \"{name}\": \"{value}\" in {origin}: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        origin: ConfigSource,
        reason: String,
    },
    #[error("parameter \"{name}\" cannot be changed (in {origin})")]
    CannotChange { name: String, origin: ConfigSource },
    #[error("could not open configuration file \"{path}\": {reason}")]
    Io { path: String, reason: String },
    #[error("could not open configuration file \"{path}\": maximum nesting depth exceeded")]
    TooDeep { path: String },
    #[error("invalid command-line setting \"{0}\": expected name=value")]
    BadOverride(String),
}

/// The parsed server configuration: every explicitly set parameter with its source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerConfig {
    values: HashMap<&'static str, (GucValue, ConfigSource)>,
    custom: HashMap<String, (String, ConfigSource)>,
}

impl ServerConfig {
    /// All defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `path` (if any), then applies `overrides` (`-c name=value`, in order).
    pub fn load(path: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut cfg = ServerConfig::new();
        if let Some(p) = path {
            cfg.read_file(p, false, 0)?;
        }
        for (name, value) in overrides {
            cfg.set(name, value, ConfigSource::CommandLine)?;
        }
        Ok(cfg)
    }

    /// Splits a `-c` argument `name=value` (PostgreSQL also accepts `name-with-dashes`).
    pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
        let (n, v) = arg
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(arg.to_owned()))?;
        if n.trim().is_empty() {
            return Err(ConfigError::BadOverride(arg.to_owned()));
        }
        Ok((n.trim().replace('-', "_"), v.to_owned()))
    }

    fn read_file(&mut self, path: &Path, if_exists: bool, depth: usize) -> Result<(), ConfigError> {
        let label = path.display().to_string();
        if depth > INCLUDE_DEPTH_MAX {
            return Err(ConfigError::TooDeep { path: label });
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if if_exists && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ConfigError::Io {
                    path: label,
                    reason: e.to_string(),
                });
            }
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.parse_text(&label, &text, &dir, depth)
    }

    /// Parses configuration text as if read from a file named `label` in `dir` (tests and
    /// tools; includes are resolved relative to `dir`).
    pub fn parse_str(&mut self, label: &str, text: &str) -> Result<(), ConfigError> {
        self.parse_text(label, text, Path::new("."), 0)
    }

    fn parse_text(
        &mut self,
        label: &str,
        text: &str,
        dir: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let Some((name, value)) = parse_line(raw).map_err(|near| ConfigError::Syntax {
                path: label.to_owned(),
                line,
                near,
            })?
            else {
                continue;
            };
            let source = ConfigSource::File {
                path: label.to_owned(),
                line,
            };
            match name.as_str() {
                "include" | "include_if_exists" => {
                    let target = resolve(dir, &value);
                    self.read_file(&target, name == "include_if_exists", depth + 1)?;
                }
                "include_dir" => {
                    let target = resolve(dir, &value);
                    let mut files: Vec<PathBuf> = std::fs::read_dir(&target)
                        .map_err(|e| ConfigError::Io {
                            path: target.display().to_string(),
                            reason: e.to_string(),
                        })?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.extension().is_some_and(|x| x == "conf")
                                && !p
                                    .file_name()
                                    .and_then(|n| n.to_str())
                                    .is_some_and(|n| n.starts_with('.'))
                        })
                        .collect();
                    files.sort();
                    for f in files {
                        self.read_file(&f, false, depth + 1)?;
                    }
                }
                _ => self.set(&name, &value, source)?,
            }
        }
        Ok(())
    }

    /// Sets one parameter from a file line, the command line or the server.
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        source: ConfigSource,
    ) -> Result<(), ConfigError> {
        let Some(def) = lookup(name) else {
            if is_custom_name(name) {
                self.custom
                    .insert(name.to_ascii_lowercase(), (value.to_owned(), source));
                return Ok(());
            }
            return Err(ConfigError::UnknownParameter {
                name: name.to_owned(),
                origin: source,
            });
        };
        if def.context == GucContext::Internal && source != ConfigSource::Server {
            return Err(ConfigError::CannotChange {
                name: def.name.to_owned(),
                origin: source,
            });
        }
        let parsed = parse_value(def, value).map_err(|e| ConfigError::InvalidValue {
            name: def.name.to_owned(),
            value: value.to_owned(),
            origin: source.clone(),
            reason: match (&e.detail, &e.hint) {
                (Some(d), _) => format!("{} {d}", e.message),
                (None, Some(h)) => format!("{} {h}", e.message),
                (None, None) => e.message.clone(),
            },
        })?;
        self.values.insert(def.name, (parsed, source));
        Ok(())
    }

    /// The value of a built-in parameter (its default if not set).
    pub fn get(&self, name: &str) -> Option<GucValue> {
        let def = lookup(name)?;
        Some(self.value_of(def))
    }

    pub(crate) fn value_of(&self, def: &'static GucDef) -> GucValue {
        match self.values.get(def.name) {
            Some((v, _)) => v.clone(),
            None => default_value(def),
        }
    }

    pub(crate) fn custom(&self, name: &str) -> Option<&str> {
        self.custom.get(name).map(|(v, _)| v.as_str())
    }

    pub fn get_int(&self, name: &str) -> i64 {
        self.get(name).map_or(0, |v| v.as_int())
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.as_bool())
    }

    pub fn get_str(&self, name: &str) -> String {
        match self.get(name) {
            Some(GucValue::Str(s)) => s,
            Some(other) => lookup(name).map_or_else(String::new, |d| show(d, &other)),
            None => self
                .custom(&name.to_ascii_lowercase())
                .unwrap_or("")
                .to_owned(),
        }
    }

    /// The value as SHOW prints it.
    pub fn show(&self, name: &str) -> Option<String> {
        let def = lookup(name)?;
        Some(show(def, &self.value_of(def)))
    }

    pub fn source(&self, name: &str) -> ConfigSource {
        lookup(name)
            .and_then(|d| self.values.get(d.name))
            .map_or(ConfigSource::Default, |(_, s)| s.clone())
    }

    /// Builds the configuration to run with after a reload from `new`: parameters that need
    /// a restart keep their current values. Returns it with one message per ignored change
    /// (`parameter "port" cannot be changed without restarting the server`).
    pub fn reloaded(&self, new: &ServerConfig) -> (ServerConfig, Vec<String>) {
        let mut next = new.clone();
        let mut ignored = Vec::new();
        for def in GUCS {
            if !matches!(def.context, GucContext::Postmaster | GucContext::Internal) {
                continue;
            }
            let old = self.values.get(def.name).cloned();
            let changed = self.value_of(def) != new.value_of(def);
            if changed && def.context == GucContext::Postmaster {
                ignored.push(format!(
                    "parameter \"{}\" cannot be changed without restarting the server",
                    def.name
                ));
            }
            match old {
                Some(v) => {
                    next.values.insert(def.name, v);
                }
                None => {
                    next.values.remove(def.name);
                }
            }
        }
        (next, ignored)
    }
}

pub(crate) fn default_value(def: &GucDef) -> GucValue {
    // Every built-in default parses (tested); the fallback only keeps this total.
    parse_value(def, def.default).unwrap_or(GucValue::Str(def.default.to_owned()))
}

fn resolve(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Parses one line: `Ok(None)` for blank/comment lines, `Err(near)` for syntax errors.
fn parse_line(line: &str) -> Result<Option<(String, String)>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b'\r') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i >= b.len() || b[i] == b'#' {
        return Ok(None);
    }
    let token_at = |i: usize| -> String {
        let rest = &line[i..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '#')
            .unwrap_or(rest.len())
            .max(rest.chars().next().map_or(0, char::len_utf8));
        format!("token \"{}\"", &rest[..end])
    };
    let is_name_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    let is_name =
        |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.' || c >= 0x80;
    if !is_name_start(b[i]) {
        return Err(token_at(i));
    }
    let start = i;
    while i < b.len() && is_name(b[i]) {
        i += 1;
    }
    let name = line[start..i].to_ascii_lowercase();
    skip_ws(&mut i);
    if i < b.len() && b[i] == b'=' {
        i += 1;
        skip_ws(&mut i);
    }
    if i >= b.len() || b[i] == b'#' {
        return Err("end of line".into());
    }
    let value = if b[i] == b'\'' {
        let (v, next) = scan_string(line, i).ok_or_else(|| token_at(i))?;
        i = next;
        v
    } else {
        let vstart = i;
        while i < b.len() && !(b[i] == b' ' || b[i] == b'\t' || b[i] == b'\r' || b[i] == b'#') {
            i += 1;
        }
        let v = &line[vstart..i];
        let plain = v.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'.' | b'-' | b'+' | b':' | b'/' | b'$')
                || c >= 0x80
        });
        if !plain {
            return Err(token_at(vstart));
        }
        v.to_owned()
    };
    skip_ws(&mut i);
    if i < b.len() && b[i] != b'#' {
        return Err(token_at(i));
    }
    Ok(Some((name, value)))
}

/// Scans a quoted value starting at the quote; returns the decoded value and the index after
/// the closing quote. PostgreSQL's GUC_scanstr: `''` and `\'` are quotes, `\b \f \n \r \t`
/// and octal `\ooo` are decoded, any other `\x` is `x`.
fn scan_string(line: &str, at: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = line[at + 1..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        match c {
            '\'' => {
                if chars.peek().map(|&(_, n)| n) == Some('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Some((out, at + 1 + off + 1));
                }
            }
            '\\' => {
                let (_, n) = chars.next()?;
                match n {
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0'..='7' => {
                        let mut v = n.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.peek() {
                                Some(&(_, d)) if d.is_digit(8) => {
                                    v = v * 8 + d.to_digit(8).unwrap_or(0);
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        out.push(char::from_u32(v).unwrap_or('?'));
                    }
                    other => out.push(other),
                }
            }
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_conf_syntax() {
        let mut c = ServerConfig::new();
        let text = "# comment\n\
                    port = 5433\n\
                    max_connections 50   # trailing comment\n\
                    shared_buffers = 256MB\n\
                    listen_addresses = '*'\n\
                    primary_conninfo = 'host=a user=''rep'' password=\\'x\\''\n\
                    synchronous_commit = remote_apply\n\
                    checkpoint_timeout = 10min\n\
                    myapp.setting = 'hello'\n\
                    \n\
                    Statement_Timeout = '5s'\n";
        c.parse_str("test.conf", text).expect("parse");
        assert_eq!(c.get_int("port"), 5433);
        assert_eq!(c.get_int("max_connections"), 50);
        assert_eq!(c.show("shared_buffers").as_deref(), Some("256MB"));
        assert_eq!(c.get_str("listen_addresses"), "*");
        assert_eq!(
            c.get_str("primary_conninfo"),
            "host=a user='rep' password='x'"
        );
        assert_eq!(c.get_str("synchronous_commit"), "remote_apply");
        assert_eq!(c.get_int("checkpoint_timeout"), 600);
        assert_eq!(c.get_int("statement_timeout"), 5000);
        assert_eq!(c.custom("myapp.setting"), Some("hello"));
        assert_eq!(
            c.source("port"),
            ConfigSource::File {
                path: "test.conf".into(),
                line: 2
            }
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut c = ServerConfig::new();
        let e = c
            .parse_str("a.conf", "port = 5432\nbogus_param = 1\n")
            .expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "unrecognized configuration parameter \"bogus_param\" in file \"a.conf\" line 2"
        );
        let e = c
            .parse_str("a.conf", "port = 'abc'\n")
            .expect_err("invalid");
        assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e}");
        let e = c.parse_str("a.conf", "port = 1 2\n").expect_err("syntax");
        assert_eq!(
            e.to_string(),
            "syntax error in file \"a.conf\" line 1, near token \"2\""
        );
        let e = c.parse_str("a.conf", "port =\n").expect_err("syntax");
        assert_eq!(
            e.to_string(),
            "syntax error in file \"a.conf\" line 1, near end of line"
        );
        let e = c
            .parse_str("a.conf", "x = 'abc\n")
            .expect_err("unterminated");
        assert!(matches!(e, ConfigError::Syntax { .. }));
        let e = c
            .parse_str("a.conf", "server_version = '16'\n")
            .expect_err("internal");
        assert!(matches!(e, ConfigError::CannotChange { .. }));
    }

    #[test]
    fn command_line_overrides_and_reload() {
        let o = ServerConfig::parse_override("max-connections=7").expect("ok");
        let c = ServerConfig::load(None, &[o]).expect("load");
        assert_eq!(c.get_int("max_connections"), 7);
        assert!(ServerConfig::parse_override("novalue").is_err());
        let mut new = c.clone();
        new.set("max_connections", "9", ConfigSource::CommandLine)
            .expect("set");
        new.set("statement_timeout", "1s", ConfigSource::CommandLine)
            .expect("set");
        let (next, ignored) = c.reloaded(&new);
        assert_eq!(next.get_int("max_connections"), 7);
        assert_eq!(next.get_int("statement_timeout"), 1000);
        assert_eq!(ignored.len(), 1);
    }

    #[test]
    fn includes_are_resolved_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("lockstep-guc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.join("main.conf"),
            "include 'extra.conf'\ninclude_dir 'conf.d'\ninclude_if_exists 'missing.conf'\n",
        )
        .expect("write");
        std::fs::write(dir.join("extra.conf"), "port = 6000\n").expect("write");
        std::fs::write(dir.join("conf.d/10.conf"), "port = 6001\n").expect("write");
        let c = ServerConfig::load(Some(&dir.join("main.conf")), &[]).expect("load");
        assert_eq!(c.get_int("port"), 6001);
        std::fs::write(dir.join("loop.conf"), "include 'loop.conf'\n").expect("write");
        assert!(matches!(
            ServerConfig::load(Some(&dir.join("loop.conf")), &[]),
            Err(ConfigError::TooDeep { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
