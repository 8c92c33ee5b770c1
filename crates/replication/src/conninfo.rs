//! libpq connection strings, as `primary_conninfo` holds them: parse both forms libpq
//! accepts, check the values a standby needs, and render them back with libpq's quoting.
//!
//! Two syntaxes, exactly as libpq's `fe-connect.c` reads them:
//!
//! - keyword/value: `host=db1 port=5432 user=rep application_name='standby 1'`. Blanks
//!   separate pairs and may surround `=`. A value is either a run of non-blank characters or
//!   a single-quoted string; in both, a backslash makes the next character literal (`\'`,
//!   `\\`, `\ `). A later duplicate keyword replaces the earlier value.
//! - URI: `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`
//!   (also `postgres://`). User, password, hosts, ports, dbname and parameters are
//!   percent-decoded (`+` is not a space); `%00` is refused; an IPv6 host is written in
//!   brackets; `ssl=true` means `sslmode=require` (JDBC compatibility, as libpq).
//!
//! Unknown keywords are refused with libpq's own words (`invalid connection option "x"`,
//! `invalid URI query parameter: "x"`), so a typo in `primary_conninfo` is found at reload,
//! not at the first reconnect. The accepted keywords are libpq 15's, plus those newer libpq
//! versions write into `primary_conninfo` (`pg_basebackup -R` copies every non-empty
//! setting, e.g. `load_balance_hosts`, `sslnegotiation`), so a file written by a newer
//! PostgreSQL still loads.
//!
//! Rendering uses `pg_basebackup -R`'s quoting (`appendConnStrVal`): a value of only ASCII
//! letters, digits, `_` and `.` is written bare, anything else in single quotes with `'` and
//! `\` backslash-escaped. [`quote_config_value`] adds the second layer for `lockstep.conf`
//! (`primary_conninfo = '...'`), as PostgreSQL's `ALTER SYSTEM` writes it.
//!
//! Where it runs: the standby, when `primary_conninfo` is loaded or reloaded, and
//! `pg_basebackup -R`-style tooling writing it. Invariant: `parse(to_string(c)) == c`.
//!
//! What this module does not do: connect, resolve hosts, read `.pgpass` or the `PG*`
//! environment variables (the driver applies those defaults). It never panics; errors are
//! [`ConnInfoError`]s, which become 22023 `PgError`s for a `SET`/reload.

use std::fmt;
use std::time::Duration;

use base::error::{PgError, sqlstate};

/// The keywords libpq 15 knows (`PQconninfoOptions`), in libpq's order.
pub const LIBPQ_15_KEYWORDS: &[&str] = &[
    "service",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "port",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "replication",
    "target_session_attrs",
];

/// Keywords added by libpq 16 to 18, accepted so that a `primary_conninfo` written by a newer
/// `pg_basebackup -R` loads.
pub const NEWER_LIBPQ_KEYWORDS: &[&str] = &[
    "require_auth",
    "sslcertmode",
    "load_balance_hosts",
    "gssdelegation",
    "sslnegotiation",
    "sslkeylogfile",
    "min_protocol_version",
    "max_protocol_version",
    "scram_client_key",
    "scram_server_key",
];

fn is_known(keyword: &str) -> bool {
    LIBPQ_15_KEYWORDS.contains(&keyword) || NEWER_LIBPQ_KEYWORDS.contains(&keyword)
}

/// Why a connection string is invalid. The `Display` text is libpq's message.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnInfoError {
    #[error("missing \"=\" after \"{0}\" in connection info string")]
    MissingEquals(String),
    #[error("unterminated quoted string in connection info string")]
    UnterminatedQuote,
    #[error("invalid connection option \"{0}\"")]
    InvalidOption(String),
    #[error("invalid URI query parameter: \"{0}\"")]
    InvalidUriParameter(String),
    #[error("invalid percent-encoded token: \"{0}\"")]
    InvalidPercentEncoding(String),
    #[error("forbidden value %00 in percent-encoded value: \"{0}\"")]
    PercentEncodedNul(String),
    #[error("percent-decoded value is not valid UTF-8: \"{0}\"")]
    NotUtf8(String),
    #[error(
        "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{0}\""
    )]
    UnterminatedIpv6(String),
    #[error("IPv6 host address may not be empty in URI: \"{0}\"")]
    EmptyIpv6(String),
    #[error(
        "unexpected character \"{character}\" at position {position} in URI (expected \":\" or \"/\"): \"{uri}\""
    )]
    UnexpectedUriCharacter {
        character: char,
        position: usize,
        uri: String,
    },
    #[error("extra key/value separator \"=\" in URI query parameter: \"{0}\"")]
    ExtraUriSeparator(String),
    #[error("missing key/value separator \"=\" in URI query parameter: \"{0}\"")]
    MissingUriSeparator(String),
    /// A value that libpq would refuse when connecting (checked by [`ConnInfo::validate`]).
    #[error("invalid {keyword} value: \"{value}\"")]
    InvalidValue { keyword: String, value: String },
    #[error("invalid integer value \"{value}\" for connection option \"{keyword}\"")]
    InvalidInteger { keyword: String, value: String },
    #[error("invalid port number: \"{0}\"")]
    InvalidPort(String),
    #[error("could not match {hosts} host names to {ports} port numbers")]
    PortCountMismatch { hosts: usize, ports: usize },
}

impl ConnInfoError {
    /// As a client sees it when setting `primary_conninfo`: 22023 with libpq's message as
    /// the detail.
    pub fn to_pg_error(&self, parameter: &str) -> PgError {
        PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{parameter}\""),
        )
        .with_detail(self.to_string())
    }
}

/// One entry of a multi-host connection string; `None` means libpq's default (a Unix socket
/// in the default directory, port 5432 or `PGPORT`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostPort {
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// A parsed connection string: keyword/value pairs in first-seen order, keywords unique.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ConnInfo {
    params: Vec<(String, String)>,
}

/// libpq's `isspace` set for connection strings.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

impl ConnInfo {
    pub fn new() -> ConnInfo {
        ConnInfo::default()
    }

    /// Parses either form (a string starting with `postgresql://` or `postgres://` is a URI).
    ///
    /// ```
    /// use replication::conninfo::ConnInfo;
    ///
    /// let uri = ConnInfo::parse("postgresql://rep@db1:5433/postgres?application_name=s%201").unwrap();
    /// assert_eq!(uri.application_name(), Some("s 1"));
    /// assert_eq!(
    ///     uri.to_string(),
    ///     "user=rep host=db1 port=5433 dbname=postgres application_name='s 1'"
    /// );
    /// assert_eq!(ConnInfo::parse(&uri.to_string()), Ok(uri));
    /// ```
    pub fn parse(s: &str) -> Result<ConnInfo, ConnInfoError> {
        let prefix = ["postgresql://", "postgres://"]
            .into_iter()
            .find(|p| s.starts_with(p));
        match prefix {
            Some(p) => Self::parse_uri(s, p.len()),
            None => Self::parse_keyword_value(s),
        }
    }

    fn parse_keyword_value(s: &str) -> Result<ConnInfo, ConnInfoError> {
        let mut info = ConnInfo::new();
        let mut chars = s.chars().peekable();
        loop {
            while chars.next_if(|&c| is_space(c)).is_some() {}
            if chars.peek().is_none() {
                return Ok(info);
            }
            let mut keyword = String::new();
            while let Some(c) = chars.next_if(|&c| c != '=' && !is_space(c)) {
                keyword.push(c);
            }
            while chars.next_if(|&c| is_space(c)).is_some() {}
            if chars.next() != Some('=') {
                return Err(ConnInfoError::MissingEquals(keyword));
            }
            while chars.next_if(|&c| is_space(c)).is_some() {}
            let mut value = String::new();
            if chars.next_if_eq(&'\'').is_some() {
                loop {
                    match chars.next() {
                        None => return Err(ConnInfoError::UnterminatedQuote),
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                value.push(c);
                            }
                        }
                        Some('\'') => break,
                        Some(c) => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next() {
                    if is_space(c) {
                        break;
                    }
                    if c == '\\' {
                        if let Some(next) = chars.next() {
                            value.push(next);
                        }
                    } else {
                        value.push(c);
                    }
                }
            }
            if !is_known(&keyword) {
                return Err(ConnInfoError::InvalidOption(keyword));
            }
            info.set(&keyword, value);
        }
    }

    fn parse_uri(uri: &str, prefix_len: usize) -> Result<ConnInfo, ConnInfoError> {
        let mut info = ConnInfo::new();
        let store = |info: &mut ConnInfo, keyword: &str, raw: &str| -> Result<(), ConnInfoError> {
            if !raw.is_empty() {
                info.set(keyword, percent_decode(raw)?);
            }
            Ok(())
        };
        let b = uri.as_bytes();
        let mut p = prefix_len;
        let find = |from: usize, stop: &dyn Fn(u8) -> bool| -> usize {
            b[from..]
                .iter()
                .position(|&c| stop(c))
                .map_or(b.len(), |i| from + i)
        };

        // Credentials: only if an '@' comes before any '/'.
        let at = find(p, &|c| c == b'@' || c == b'/');
        if b.get(at) == Some(&b'@') {
            let creds = &uri[p..at];
            match creds.split_once(':') {
                Some((user, password)) => {
                    store(&mut info, "user", user)?;
                    store(&mut info, "password", password)?;
                }
                None => store(&mut info, "user", creds)?,
            }
            p = at + 1;
        }

        // host[:port] pairs separated by commas.
        let mut hosts = String::new();
        let mut ports = String::new();
        let terminator = loop {
            let host_end;
            if b.get(p) == Some(&b'[') {
                let start = p + 1;
                let close = find(start, &|c| c == b']');
                if close == b.len() {
                    return Err(ConnInfoError::UnterminatedIpv6(uri.to_owned()));
                }
                if close == start {
                    return Err(ConnInfoError::EmptyIpv6(uri.to_owned()));
                }
                hosts.push_str(&uri[start..close]);
                host_end = close + 1;
                if let Some(&c) = b.get(host_end)
                    && !matches!(c, b':' | b'/' | b'?' | b',')
                {
                    let character = uri[host_end..].chars().next().unwrap_or('?');
                    return Err(ConnInfoError::UnexpectedUriCharacter {
                        character,
                        position: host_end + 1,
                        uri: uri.to_owned(),
                    });
                }
            } else {
                host_end = find(p, &|c| matches!(c, b':' | b'/' | b'?' | b','));
                hosts.push_str(&uri[p..host_end]);
            }
            p = host_end;
            let mut term = b.get(p).copied();
            if term == Some(b':') {
                let port_end = find(p + 1, &|c| matches!(c, b'/' | b'?' | b','));
                ports.push_str(&uri[p + 1..port_end]);
                p = port_end;
                term = b.get(p).copied();
            }
            if term != Some(b',') {
                break term;
            }
            p += 1;
            hosts.push(',');
            ports.push(',');
        };
        store(&mut info, "host", &hosts)?;
        store(&mut info, "port", &ports)?;

        let mut terminator = terminator;
        if terminator == Some(b'/') {
            let start = p + 1;
            let end = find(start, &|c| c == b'?');
            store(&mut info, "dbname", &uri[start..end])?;
            p = end;
            terminator = b.get(p).copied();
        }
        if terminator.is_some() {
            info.parse_uri_params(&uri[p + 1..])?;
        }
        Ok(info)
    }

    fn parse_uri_params(&mut self, params: &str) -> Result<(), ConnInfoError> {
        // libpq stops at the end of the string, so one trailing '&' ("a=b&") ends the list
        // quietly; an empty pair anywhere else ("&a=b", "a=b&&c=d") is an error.
        let params = params.strip_suffix('&').unwrap_or(params);
        if params.is_empty() {
            return Ok(());
        }
        for pair in params.split('&') {
            let mut parts = pair.splitn(3, '=');
            let raw_keyword = parts.next().unwrap_or_default();
            let (Some(raw_value), None) = (parts.next(), parts.next()) else {
                return Err(if pair.contains('=') {
                    ConnInfoError::ExtraUriSeparator(raw_keyword.to_owned())
                } else {
                    ConnInfoError::MissingUriSeparator(raw_keyword.to_owned())
                });
            };
            let mut keyword = percent_decode(raw_keyword)?;
            let mut value = percent_decode(raw_value)?;
            if keyword == "ssl" && value == "true" {
                keyword = "sslmode".into();
                value = "require".into();
            }
            if !is_known(&keyword) {
                return Err(ConnInfoError::InvalidUriParameter(keyword));
            }
            self.set(&keyword, value);
        }
        Ok(())
    }

    /// The value of `keyword`, if set.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `keyword`, keeping its position if it was set before. The caller must pass a
    /// keyword libpq knows (see [`ConnInfo::try_set`]); rendering does not check.
    pub fn set(&mut self, keyword: &str, value: impl Into<String>) {
        let value = value.into();
        match self.params.iter_mut().find(|(k, _)| k == keyword) {
            Some((_, v)) => *v = value,
            None => self.params.push((keyword.to_owned(), value)),
        }
    }

    /// [`ConnInfo::set`], refusing keywords libpq does not know.
    pub fn try_set(
        &mut self,
        keyword: &str,
        value: impl Into<String>,
    ) -> Result<(), ConnInfoError> {
        if !is_known(keyword) {
            return Err(ConnInfoError::InvalidOption(keyword.to_owned()));
        }
        self.set(keyword, value);
        Ok(())
    }

    pub fn remove(&mut self, keyword: &str) -> Option<String> {
        let i = self.params.iter().position(|(k, _)| k == keyword)?;
        Some(self.params.remove(i).1)
    }

    /// All pairs, in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn host(&self) -> Option<&str> {
        self.get("host")
    }

    pub fn port(&self) -> Option<&str> {
        self.get("port")
    }

    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    pub fn password(&self) -> Option<&str> {
        self.get("password")
    }

    pub fn dbname(&self) -> Option<&str> {
        self.get("dbname")
    }

    pub fn application_name(&self) -> Option<&str> {
        self.get("application_name")
    }

    /// The (host, port) pairs to try in order, libpq's multi-host rules: `host` and
    /// `hostaddr` are comma-separated lists; `port` is one port for all or one per host; an
    /// empty entry means the default (`None`). No host at all gives one default entry.
    pub fn hosts(&self) -> Result<Vec<HostPort>, ConnInfoError> {
        let split = |s: Option<&str>| -> Vec<String> {
            s.map_or_else(Vec::new, |s| {
                s.split(',').map(|h| h.trim().to_owned()).collect()
            })
        };
        let mut hosts = split(self.host());
        if hosts.is_empty() {
            hosts = split(self.get("hostaddr"));
        }
        if hosts.is_empty() {
            hosts.push(String::new());
        }
        let ports = split(self.port());
        let port_of = |raw: &str| -> Result<Option<u16>, ConnInfoError> {
            if raw.is_empty() {
                return Ok(None);
            }
            match raw.parse::<u16>() {
                Ok(p) if p > 0 => Ok(Some(p)),
                _ => Err(ConnInfoError::InvalidPort(raw.to_owned())),
            }
        };
        let ports: Vec<Option<u16>> = ports.iter().map(|p| port_of(p)).collect::<Result<_, _>>()?;
        if ports.len() > 1 && ports.len() != hosts.len() {
            return Err(ConnInfoError::PortCountMismatch {
                hosts: hosts.len(),
                ports: ports.len(),
            });
        }
        Ok(hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let port = match ports.len() {
                    0 => None,
                    1 => ports[0],
                    _ => ports[i],
                };
                HostPort {
                    host: (!h.is_empty()).then_some(h),
                    port,
                }
            })
            .collect())
    }

    /// `connect_timeout` (seconds; libpq treats values below 2 as 2, and 0 or unset as "no
    /// timeout").
    pub fn connect_timeout(&self) -> Result<Option<Duration>, ConnInfoError> {
        match self.int_param("connect_timeout")? {
            None | Some(..=0) => Ok(None),
            Some(s) => Ok(Some(Duration::from_secs(s.max(2).unsigned_abs()))),
        }
    }

    fn int_param(&self, keyword: &str) -> Result<Option<i64>, ConnInfoError> {
        let Some(v) = self.get(keyword) else {
            return Ok(None);
        };
        // libpq's parse_int_param: optional blanks around a decimal int.
        let t = v.trim_matches(is_space);
        t.parse::<i32>()
            .map(|i| Some(i64::from(i)))
            .map_err(|_| ConnInfoError::InvalidInteger {
                keyword: keyword.to_owned(),
                value: v.to_owned(),
            })
    }

    /// The checks libpq makes before connecting (`connectOptions2`): enumerated settings
    /// have a known value, integer settings are integers, ports are port numbers and match
    /// the hosts. A standby runs this at reload so a bad `primary_conninfo` is reported then.
    pub fn validate(&self) -> Result<(), ConnInfoError> {
        let enums: &[(&str, &[&str])] = &[
            (
                "sslmode",
                &[
                    "disable",
                    "allow",
                    "prefer",
                    "require",
                    "verify-ca",
                    "verify-full",
                ],
            ),
            ("gssencmode", &["disable", "prefer", "require"]),
            ("channel_binding", &["disable", "prefer", "require"]),
            (
                "target_session_attrs",
                &[
                    "any",
                    "read-write",
                    "read-only",
                    "primary",
                    "standby",
                    "prefer-standby",
                ],
            ),
            (
                "replication",
                &[
                    "true", "on", "yes", "1", "false", "off", "no", "0", "database",
                ],
            ),
        ];
        for (keyword, allowed) in enums {
            if let Some(v) = self.get(keyword) {
                let ok = if *keyword == "replication" {
                    allowed.contains(&v.to_ascii_lowercase().as_str())
                } else {
                    allowed.contains(&v)
                };
                if !ok {
                    return Err(ConnInfoError::InvalidValue {
                        keyword: (*keyword).to_owned(),
                        value: v.to_owned(),
                    });
                }
            }
        }
        for keyword in [
            "connect_timeout",
            "keepalives",
            "keepalives_idle",
            "keepalives_interval",
            "keepalives_count",
            "tcp_user_timeout",
        ] {
            self.int_param(keyword)?;
        }
        self.hosts()?;
        Ok(())
    }
}

/// `conninfo_uri_decode`.
fn percent_decode(s: &str) -> Result<String, ConnInfoError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |j: usize| b.get(j).and_then(|&c| char::from(c).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
            return Err(ConnInfoError::InvalidPercentEncoding(s.to_owned()));
        };
        let c = (hi << 4 | lo) as u8;
        if c == 0 {
            return Err(ConnInfoError::PercentEncodedNul(s.to_owned()));
        }
        out.push(c);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| ConnInfoError::NotUtf8(s.to_owned()))
}

/// Writes `value` as libpq's `appendConnStrVal` does.
fn write_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if bare {
        out.push_str(value);
        return;
    }
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

/// The keyword/value form, which [`ConnInfo::parse`] reads back to an equal value.
impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (i, (k, v)) in self.params.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(k);
            out.push('=');
            write_value(&mut out, v);
        }
        f.write_str(&out)
    }
}

/// Quotes a string for a `lockstep.conf` line (`primary_conninfo = '...'`) as PostgreSQL's
/// `ALTER SYSTEM` does (`escape_single_quotes_ascii`: `'` and `\` are doubled), which the
/// configuration file scanner reads back unchanged.
pub fn quote_config_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(info: &ConnInfo) -> Vec<(&str, &str)> {
        info.iter().collect()
    }

    #[test]
    fn keyword_value_strings() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("   ", &[]),
            ("host=db1 port=5432", &[("host", "db1"), ("port", "5432")]),
            (
                "  host = db1\tuser =rep\n",
                &[("host", "db1"), ("user", "rep")],
            ),
            (
                "application_name='standby 1' password='it\\'s' options='-c x=1'",
                &[
                    ("application_name", "standby 1"),
                    ("password", "it's"),
                    ("options", "-c x=1"),
                ],
            ),
            ("password=a\\ b\\\\c", &[("password", "a b\\c")]),
            ("password=''", &[("password", "")]),
            ("password=", &[("password", "")]),
            // A quoted value needs no blank after it.
            ("user='a'host=b", &[("user", "a"), ("host", "b")]),
            // A later duplicate wins, in the first one's place.
            ("host=a port=1 host=b", &[("host", "b"), ("port", "1")]),
            // What pg_basebackup 15 -R writes (inner layer).
            (
                "user=postgres passfile='/root/.pgpass' channel_binding=prefer host=localhost port=5432 sslmode=prefer sslcompression=0 sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres target_session_attrs=any",
                &[
                    ("user", "postgres"),
                    ("passfile", "/root/.pgpass"),
                    ("channel_binding", "prefer"),
                    ("host", "localhost"),
                    ("port", "5432"),
                    ("sslmode", "prefer"),
                    ("sslcompression", "0"),
                    ("sslsni", "1"),
                    ("ssl_min_protocol_version", "TLSv1.2"),
                    ("gssencmode", "prefer"),
                    ("krbsrvname", "postgres"),
                    ("target_session_attrs", "any"),
                ],
            ),
            (
                "load_balance_hosts=disable",
                &[("load_balance_hosts", "disable")],
            ),
        ];
        for (s, want) in cases {
            let info = ConnInfo::parse(s).expect(s);
            assert_eq!(pairs(&info), *want, "{s:?}");
            assert_eq!(
                ConnInfo::parse(&info.to_string()),
                Ok(info.clone()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn uri_strings() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("postgresql://", &[]),
            ("postgres://db1", &[("host", "db1")]),
            (
                "postgresql://rep:s%40cret@db1:5433/postgres?application_name=standby%201&sslmode=require",
                &[
                    ("user", "rep"),
                    ("password", "s@cret"),
                    ("host", "db1"),
                    ("port", "5433"),
                    ("dbname", "postgres"),
                    ("application_name", "standby 1"),
                    ("sslmode", "require"),
                ],
            ),
            ("postgresql://rep@", &[("user", "rep")]),
            ("postgresql://:pw@h", &[("password", "pw"), ("host", "h")]),
            (
                "postgresql://a:b:c@h",
                &[("user", "a"), ("password", "b:c"), ("host", "h")],
            ),
            (
                "postgresql://[::1]:5432,[fe80::1%25eth0]/db",
                &[
                    ("host", "::1,fe80::1%eth0"),
                    ("port", "5432,"),
                    ("dbname", "db"),
                ],
            ),
            (
                "postgresql://h1:1,h2:2?target_session_attrs=read-write",
                &[
                    ("host", "h1,h2"),
                    ("port", "1,2"),
                    ("target_session_attrs", "read-write"),
                ],
            ),
            (
                "postgresql:///db?host=/tmp",
                &[("dbname", "db"), ("host", "/tmp")],
            ),
            (
                "postgresql://h?ssl=true",
                &[("host", "h"), ("sslmode", "require")],
            ),
            ("postgresql://h?", &[("host", "h")]),
            ("postgresql://h/?port=7&", &[("host", "h"), ("port", "7")]),
            // '+' is not a space in libpq's decoding.
            (
                "postgresql://h?application_name=a+b",
                &[("host", "h"), ("application_name", "a+b")],
            ),
        ];
        for (s, want) in cases {
            let info = ConnInfo::parse(s).expect(s);
            assert_eq!(pairs(&info), *want, "{s}");
            assert_eq!(ConnInfo::parse(&info.to_string()), Ok(info.clone()), "{s}");
        }
    }

    #[test]
    fn errors_use_libpq_wording() {
        let cases: &[(&str, &str)] = &[
            (
                "host",
                "missing \"=\" after \"host\" in connection info string",
            ),
            (
                "host db",
                "missing \"=\" after \"host\" in connection info string",
            ),
            (
                "password='abc",
                "unterminated quoted string in connection info string",
            ),
            ("hots=db1", "invalid connection option \"hots\""),
            ("=x", "invalid connection option \"\""),
            (
                "postgresql://h?hots=1",
                "invalid URI query parameter: \"hots\"",
            ),
            (
                "postgresql://h?a",
                "missing key/value separator \"=\" in URI query parameter: \"a\"",
            ),
            (
                "postgresql://h?a=b=c",
                "extra key/value separator \"=\" in URI query parameter: \"a\"",
            ),
            (
                "postgresql://h?&a=b",
                "missing key/value separator \"=\" in URI query parameter: \"\"",
            ),
            (
                "postgresql://u%zz@h",
                "invalid percent-encoded token: \"u%zz\"",
            ),
            (
                "postgresql://u%2@h",
                "invalid percent-encoded token: \"u%2\"",
            ),
            (
                "postgresql://u%00@h",
                "forbidden value %00 in percent-encoded value: \"u%00\"",
            ),
            (
                "postgresql://[::1",
                "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"postgresql://[::1\"",
            ),
            (
                "postgresql://[]",
                "IPv6 host address may not be empty in URI: \"postgresql://[]\"",
            ),
            (
                "postgresql://[::1]x",
                "unexpected character \"x\" at position 19 in URI (expected \":\" or \"/\"): \"postgresql://[::1]x\"",
            ),
        ];
        for (s, message) in cases {
            let e = ConnInfo::parse(s).expect_err(s);
            assert_eq!(e.to_string(), *message, "{s}");
        }
        let pg = ConnInfo::parse("hots=1")
            .expect_err("typo")
            .to_pg_error("primary_conninfo");
        assert_eq!(pg.code, sqlstate::INVALID_PARAMETER_VALUE);
        assert_eq!(
            pg.message,
            "invalid value for parameter \"primary_conninfo\""
        );
    }

    #[test]
    fn rendering_quotes_like_pg_basebackup() {
        let mut info = ConnInfo::new();
        info.set("host", "db-1.example.com");
        info.set("port", "5432");
        info.set("user", "rep_user");
        info.set("password", "it's a \\ secret");
        info.set("application_name", "");
        assert_eq!(
            info.to_string(),
            "host='db-1.example.com' port=5432 user=rep_user password='it\\'s a \\\\ secret' application_name=''"
        );
        assert_eq!(ConnInfo::parse(&info.to_string()), Ok(info.clone()));
        assert_eq!(
            quote_config_value(&info.to_string()),
            "'host=''db-1.example.com'' port=5432 user=rep_user password=''it\\\\''s a \\\\\\\\ secret'' application_name='''''"
        );
        assert!(info.try_set("hots", "x").is_err());
        assert_eq!(info.remove("application_name"), Some(String::new()));
        assert_eq!(info.get("application_name"), None);
    }

    fn hp(host: Option<&str>, port: Option<u16>) -> HostPort {
        HostPort {
            host: host.map(Into::into),
            port,
        }
    }

    #[test]
    fn hosts_ports_and_validation() {
        let info = ConnInfo::parse("host=a,b,c port=5432").expect("parse");
        assert_eq!(
            info.hosts(),
            Ok(vec![
                hp(Some("a"), Some(5432)),
                hp(Some("b"), Some(5432)),
                hp(Some("c"), Some(5432)),
            ])
        );
        let info = ConnInfo::parse("host=a,,c port=1,,3").expect("parse");
        assert_eq!(
            info.hosts(),
            Ok(vec![
                hp(Some("a"), Some(1)),
                hp(None, None),
                hp(Some("c"), Some(3)),
            ])
        );
        assert_eq!(ConnInfo::new().hosts(), Ok(vec![hp(None, None)]));
        let cases: &[(&str, Option<&str>)] = &[
            (
                "host=a port=5432 sslmode=verify-full replication=true",
                None,
            ),
            ("replication=database", None),
            ("sslmode=maybe", Some("invalid sslmode value: \"maybe\"")),
            ("port=0", Some("invalid port number: \"0\"")),
            ("port=65536", Some("invalid port number: \"65536\"")),
            (
                "host=a,b port=1,2,3",
                Some("could not match 2 host names to 3 port numbers"),
            ),
            (
                "connect_timeout=soon",
                Some("invalid integer value \"soon\" for connection option \"connect_timeout\""),
            ),
            (
                "keepalives_idle=1.5",
                Some("invalid integer value \"1.5\" for connection option \"keepalives_idle\""),
            ),
        ];
        for (s, want) in cases {
            let got = ConnInfo::parse(s)
                .expect(s)
                .validate()
                .map_err(|e| e.to_string());
            assert_eq!(got.err().as_deref(), *want, "{s}");
        }
        let t = |s: &str| ConnInfo::parse(s).expect(s).connect_timeout();
        assert_eq!(t(""), Ok(None));
        assert_eq!(t("connect_timeout=0"), Ok(None));
        assert_eq!(t("connect_timeout=1"), Ok(Some(Duration::from_secs(2))));
        assert_eq!(t("connect_timeout= 10 "), Ok(Some(Duration::from_secs(10))));
    }
}
