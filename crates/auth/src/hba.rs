//! `pg_hba.conf`: which connections may authenticate, and how.
//!
//! Runs in the frontend, once per connection attempt, after the startup packet and before any
//! password exchange. The file uses PostgreSQL's syntax, one rule per line:
//!
//! ```text
//! local      DATABASE  USER  METHOD  [OPTIONS]
//! host       DATABASE  USER  ADDRESS  METHOD  [OPTIONS]      (also hostssl, hostnossl,
//! host       DATABASE  USER  IP-ADDRESS  IP-MASK  METHOD      hostgssenc, hostnogssenc)
//! ```
//!
//! - DATABASE: comma-separated list of names and the keywords `all`, `sameuser`, `samerole`
//!   (`samegroup`), `replication`.
//! - USER: comma-separated list of names and `all`.
//! - ADDRESS: `all`, `samehost`, a CIDR block (`127.0.0.1/32`, `::1/128`), or an IP address
//!   followed by a mask field (`127.0.0.1 255.255.255.255`).
//! - METHOD: `trust`, `reject`, `scram-sha-256`, `md5` (run as SCRAM, as PostgreSQL does when
//!   the stored password is a SCRAM verifier, which lockstep's always are), `password`.
//!
//! Tokens follow PostgreSQL's rules: whitespace separates fields, commas separate list items,
//! `#` starts a comment, double quotes make a token literal (`"all"` is a database named all,
//! `""` inside quotes is one quote), and a backslash at the end of a line continues it.
//!
//! Matching is first-match-wins over the lines in file order; no match means reject. A
//! *physical* replication connection (`replication=true`) matches only lines whose DATABASE
//! contains the `replication` keyword (its database name is ignored); `replication` never
//! matches other connections. A logical one (`replication=database`) matches like a normal
//! connection.
//!
//! Deliberately not supported (each is a parse error naming the line, so a rule is never
//! silently dropped): host names and `samenet` in ADDRESS, `+group` and `/regex` patterns,
//! `@file` inclusion, authentication options, and the methods lockstep does not implement
//! (`peer`, `ident`, `ldap`, `cert`, ...). `hostssl`/`hostgssenc` lines parse but never match
//! (lockstep has no TLS or GSS encryption). `samehost` matches when the client's address is the
//! server address the client connected to — one of the host's own addresses, though not every
//! one of them as in PostgreSQL, which enumerates the interfaces. IPv4-mapped IPv6 client
//! addresses (`::ffff:a.b.c.d`) are matched as the IPv4 address.
//!
//! Failure: a file with any bad line is refused whole (`HbaError` names `file:line`), as
//! PostgreSQL refuses it; `SharedHba::reload` then keeps the rules already in force.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

/// The pg_hba.conf that `lockstep init` writes: trust for local connections, including
/// replication, as initdb's default (with `-A trust`).
pub const DEFAULT_PG_HBA: &str = "\
# lockstep client authentication configuration, in PostgreSQL's pg_hba.conf syntax.
#
# TYPE  DATABASE        USER            ADDRESS                 METHOD
#
# TYPE is local (Unix-domain socket), host, hostssl or hostnossl; DATABASE and USER are
# comma-separated names or all (DATABASE also sameuser, samerole, replication); ADDRESS is a
# CIDR block, all or samehost; METHOD is trust, reject, scram-sha-256, md5 or password.
# The first matching line decides; a connection that matches no line is rejected.

# \"local\" is for Unix domain socket connections only
local   all             all                                     trust
# IPv4 local connections:
host    all             all             127.0.0.1/32            trust
# IPv6 local connections:
host    all             all             ::1/128                 trust
# Allow replication connections from localhost, by a user with the
# replication privilege.
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
";

/// The first field of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

/// How a matching connection authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    Reject,
    ScramSha256,
    /// Runs SCRAM-SHA-256: PostgreSQL does the same for `md5` lines when the role's password is
    /// a SCRAM verifier, and lockstep stores nothing else.
    Md5,
    /// Cleartext password, checked against the SCRAM verifier.
    Password,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Reject => "reject",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
            AuthMethod::Password => "password",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DbPattern {
    All,
    SameUser,
    /// `samerole`/`samegroup`: the user is a member of the role named like the database.
    /// lockstep has no role membership yet, so a role is a member of itself only.
    SameRole,
    Replication,
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum UserPattern {
    All,
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum AddrPattern {
    All,
    SameHost,
    Net { addr: IpAddr, prefix_len: u8 },
}

/// One parsed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HbaLine {
    /// 1-based line number in the file (the first line of a continued line).
    pub line_number: usize,
    pub conn_type: ConnType,
    databases: Vec<DbPattern>,
    users: Vec<UserPattern>,
    /// `None` for `local` lines.
    address: Option<AddrPattern>,
    pub method: AuthMethod,
}

/// How the client reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp { ssl: bool },
}

/// What kind of replication connection this is (the startup packet's `replication`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplicationKind {
    #[default]
    None,
    /// `replication=true|on|yes|1`: a physical WAL sender; matches only `replication` lines.
    Physical,
    /// `replication=database`: a logical WAL sender bound to a database.
    Logical,
}

/// The facts pg_hba.conf decides on.
#[derive(Clone, Debug)]
pub struct HbaRequest<'a> {
    pub transport: Transport,
    pub database: &'a str,
    pub user: &'a str,
    /// The client's address (`None` for Unix sockets).
    pub client_addr: Option<IpAddr>,
    /// The server address the client connected to (for `samehost`).
    pub server_addr: Option<IpAddr>,
    pub replication: ReplicationKind,
}

impl HbaRequest<'_> {
    fn host_text(&self) -> String {
        match self.client_addr {
            Some(a) => canonical(a).to_string(),
            None => "[local]".to_owned(),
        }
    }

    fn encryption_text(&self) -> &'static str {
        match self.transport {
            Transport::Tcp { ssl: true } => "SSL encryption",
            _ => "no encryption",
        }
    }

    /// PostgreSQL's message when no line matches (SQLSTATE 28000).
    pub fn no_entry_message(&self) -> String {
        if self.replication == ReplicationKind::Physical {
            format!(
                "no pg_hba.conf entry for replication connection from host \"{}\", user \"{}\", {}",
                self.host_text(),
                self.user,
                self.encryption_text()
            )
        } else {
            format!(
                "no pg_hba.conf entry for host \"{}\", user \"{}\", database \"{}\", {}",
                self.host_text(),
                self.user,
                self.database,
                self.encryption_text()
            )
        }
    }

    /// PostgreSQL's message when the matching line says `reject` (SQLSTATE 28000).
    pub fn rejected_message(&self) -> String {
        if self.replication == ReplicationKind::Physical {
            format!(
                "pg_hba.conf rejects replication connection for host \"{}\", user \"{}\", {}",
                self.host_text(),
                self.user,
                self.encryption_text()
            )
        } else {
            format!(
                "pg_hba.conf rejects connection for host \"{}\", user \"{}\", database \"{}\", {}",
                self.host_text(),
                self.user,
                self.database,
                self.encryption_text()
            )
        }
    }
}

/// The outcome of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HbaVerdict<'a> {
    /// The first matching line (its method may be `Reject`).
    Matched(&'a HbaLine),
    /// No line matched: reject.
    NoEntry,
}

/// Why pg_hba.conf could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HbaError {
    #[error("could not read \"{}\": {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}

/// A parsed pg_hba.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HbaFile {
    lines: Vec<HbaLine>,
}

impl HbaFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<HbaFile, HbaError> {
        let text = std::fs::read_to_string(path).map_err(|source| HbaError::Read {
            path: path.to_owned(),
            source,
        })?;
        HbaFile::parse(&text, &path.display().to_string())
    }

    /// Parses `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<HbaFile, HbaError> {
        let mut lines = Vec::new();
        let mut pending = String::new();
        let mut pending_start = 0;
        for (i, raw) in text.lines().enumerate() {
            if pending.is_empty() {
                pending_start = i + 1;
            }
            // A trailing backslash continues the line (PostgreSQL 16); the backslash is dropped.
            if let Some(head) = raw.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(raw);
            let logical = std::mem::take(&mut pending);
            let err = |message: String| HbaError::Syntax {
                file: file.to_owned(),
                line: pending_start,
                message,
            };
            let fields = tokenize(&logical).map_err(err)?;
            if fields.is_empty() {
                continue;
            }
            lines.push(parse_line(&fields, pending_start).map_err(err)?);
        }
        if !pending.is_empty() {
            let fields = tokenize(&pending).map_err(|message| HbaError::Syntax {
                file: file.to_owned(),
                line: pending_start,
                message,
            })?;
            if !fields.is_empty() {
                let line =
                    parse_line(&fields, pending_start).map_err(|message| HbaError::Syntax {
                        file: file.to_owned(),
                        line: pending_start,
                        message,
                    })?;
                lines.push(line);
            }
        }
        Ok(HbaFile { lines })
    }

    pub fn lines(&self) -> &[HbaLine] {
        &self.lines
    }

    /// The first line matching `req`, as PostgreSQL's `check_hba`.
    pub fn check(&self, req: &HbaRequest<'_>) -> HbaVerdict<'_> {
        self.lines
            .iter()
            .find(|line| line.matches(req))
            .map_or(HbaVerdict::NoEntry, HbaVerdict::Matched)
    }
}

impl HbaLine {
    fn matches(&self, req: &HbaRequest<'_>) -> bool {
        let transport_ok = match (self.conn_type, req.transport) {
            (ConnType::Local, Transport::Unix) => true,
            (ConnType::Host, Transport::Tcp { .. }) => true,
            (ConnType::HostSsl, Transport::Tcp { ssl }) => ssl,
            (ConnType::HostNoSsl, Transport::Tcp { ssl }) => !ssl,
            // No GSS encryption: every TCP connection is "not GSS-encrypted".
            (ConnType::HostGssEnc, _) => false,
            (ConnType::HostNoGssEnc, Transport::Tcp { .. }) => true,
            _ => false,
        };
        transport_ok
            && self.address_matches(req)
            && self.database_matches(req)
            && self.users.iter().any(|u| match u {
                UserPattern::All => true,
                UserPattern::Name(n) => n == req.user,
            })
    }

    fn address_matches(&self, req: &HbaRequest<'_>) -> bool {
        let Some(pattern) = &self.address else {
            return true;
        };
        let Some(client) = req.client_addr.map(canonical) else {
            return false;
        };
        match pattern {
            AddrPattern::All => true,
            AddrPattern::SameHost => req.server_addr.map(canonical) == Some(client),
            AddrPattern::Net { addr, prefix_len } => in_network(client, *addr, *prefix_len),
        }
    }

    fn database_matches(&self, req: &HbaRequest<'_>) -> bool {
        if req.replication == ReplicationKind::Physical {
            return self.databases.contains(&DbPattern::Replication);
        }
        self.databases.iter().any(|d| match d {
            DbPattern::All => true,
            DbPattern::SameUser | DbPattern::SameRole => req.database == req.user,
            DbPattern::Replication => false,
            DbPattern::Name(n) => n == req.database,
        })
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

fn in_network(client: IpAddr, net: IpAddr, prefix_len: u8) -> bool {
    match (client, net) {
        (IpAddr::V4(c), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            u32::from(c) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(c), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            u128::from(c) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

impl Token {
    fn is_keyword(&self, kw: &str) -> bool {
        !self.quoted && self.text == kw
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits one logical line into fields, each a list of tokens (PostgreSQL's `next_token` /
/// `next_field_expand`).
fn tokenize(line: &str) -> Result<Vec<Vec<Token>>, String> {
    let mut fields: Vec<Vec<Token>> = Vec::new();
    let mut chars = line.chars().peekable();
    let mut continue_field = false;
    loop {
        // Skip blanks and stray commas before a token.
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut text = String::new();
        let mut quoted = false;
        let mut in_quote = false;
        let mut comma = false;
        while let Some(c) = chars.next() {
            if in_quote {
                if c == '"' {
                    if chars.next_if_eq(&'"').is_some() {
                        text.push('"');
                    } else {
                        in_quote = false;
                    }
                } else {
                    text.push(c);
                }
                continue;
            }
            match c {
                '"' => {
                    in_quote = true;
                    quoted = true;
                }
                ',' => {
                    comma = true;
                    break;
                }
                '#' => {
                    // A comment ends the line; put it back so the outer loop stops.
                    while chars.next().is_some() {}
                    break;
                }
                c if c.is_whitespace() => break,
                c => text.push(c),
            }
        }
        if in_quote {
            return Err("unterminated quoted string".to_owned());
        }
        let token = Token { text, quoted };
        match fields.last_mut() {
            Some(field) if continue_field => field.push(token),
            _ => fields.push(vec![token]),
        }
        continue_field = comma;
    }
    Ok(fields)
}

fn single<'a>(fields: &'a [Vec<Token>], i: usize, what: &str) -> Result<&'a Token, String> {
    match fields.get(i).map(Vec::as_slice) {
        Some([t]) => Ok(t),
        Some(_) => Err(format!("multiple values specified for {what}")),
        None => Err(format!("end-of-line before {what} specification")),
    }
}

fn parse_line(fields: &[Vec<Token>], line_number: usize) -> Result<HbaLine, String> {
    let kind = single(fields, 0, "connection type")?;
    let conn_type = match (kind.quoted, kind.text.as_str()) {
        (false, "local") => ConnType::Local,
        (false, "host") => ConnType::Host,
        (false, "hostssl") => ConnType::HostSsl,
        (false, "hostnossl") => ConnType::HostNoSsl,
        (false, "hostgssenc") => ConnType::HostGssEnc,
        (false, "hostnogssenc") => ConnType::HostNoGssEnc,
        _ => return Err(format!("invalid connection type \"{kind}\"")),
    };
    let databases = fields
        .get(1)
        .ok_or("end-of-line before database specification")?
        .iter()
        .map(parse_database)
        .collect::<Result<Vec<_>, _>>()?;
    let users = fields
        .get(2)
        .ok_or("end-of-line before role specification")?
        .iter()
        .map(parse_user)
        .collect::<Result<Vec<_>, _>>()?;

    let mut next = 3;
    let address = if conn_type == ConnType::Local {
        None
    } else {
        let tok = single(fields, next, "IP address")?;
        next += 1;
        Some(if tok.is_keyword("all") {
            AddrPattern::All
        } else if tok.is_keyword("samehost") {
            AddrPattern::SameHost
        } else if tok.is_keyword("samenet") {
            return Err("\"samenet\" is not supported; use a CIDR block".to_owned());
        } else if let Some((addr, len)) = tok.text.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("invalid IP address \"{addr}\""))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix_len = len
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("invalid CIDR mask in address \"{tok}\""))?;
            AddrPattern::Net { addr, prefix_len }
        } else if let Ok(addr) = tok.text.parse::<IpAddr>() {
            let mask_tok = single(fields, next, "netmask")?;
            next += 1;
            let mask: IpAddr = mask_tok
                .text
                .parse()
                .map_err(|_| format!("invalid IP mask \"{mask_tok}\""))?;
            let prefix_len = mask_prefix_len(mask)
                .filter(|_| mask.is_ipv4() == addr.is_ipv4())
                .ok_or_else(|| format!("invalid IP mask \"{mask_tok}\""))?;
            AddrPattern::Net { addr, prefix_len }
        } else {
            return Err(format!(
                "host name \"{tok}\" is not supported; use an IP address, a CIDR block, all or \
                 samehost"
            ));
        })
    };

    let method_tok = single(fields, next, "authentication method")?;
    let method = match method_tok.text.as_str() {
        "trust" => AuthMethod::Trust,
        "reject" => AuthMethod::Reject,
        "scram-sha-256" => AuthMethod::ScramSha256,
        "md5" => AuthMethod::Md5,
        "password" => AuthMethod::Password,
        m @ ("peer" | "ident" | "gss" | "sspi" | "pam" | "ldap" | "radius" | "cert" | "bsd") => {
            return Err(format!(
                "authentication method \"{m}\" is not supported by lockstep"
            ));
        }
        m => return Err(format!("invalid authentication method \"{m}\"")),
    };
    if let Some(option) = fields.get(next + 1).and_then(|f| f.first()) {
        let name = option.text.split('=').next().unwrap_or_default();
        return Err(format!(
            "authentication option \"{name}\" is not supported for method {}",
            method.as_str()
        ));
    }
    Ok(HbaLine {
        line_number,
        conn_type,
        databases,
        users,
        address,
        method,
    })
}

fn parse_database(tok: &Token) -> Result<DbPattern, String> {
    if !tok.quoted {
        match tok.text.as_str() {
            "all" => return Ok(DbPattern::All),
            "sameuser" => return Ok(DbPattern::SameUser),
            "samerole" | "samegroup" => return Ok(DbPattern::SameRole),
            "replication" => return Ok(DbPattern::Replication),
            t if t.starts_with('@') => {
                return Err(format!("file inclusion \"{t}\" is not supported"));
            }
            t if t.starts_with('/') => {
                return Err(format!("regular expression \"{t}\" is not supported"));
            }
            _ => {}
        }
    }
    Ok(DbPattern::Name(tok.text.clone()))
}

fn parse_user(tok: &Token) -> Result<UserPattern, String> {
    if !tok.quoted {
        match tok.text.as_str() {
            "all" => return Ok(UserPattern::All),
            t if t.starts_with('+') => {
                return Err(format!("role membership pattern \"{t}\" is not supported"));
            }
            t if t.starts_with('@') => {
                return Err(format!("file inclusion \"{t}\" is not supported"));
            }
            t if t.starts_with('/') => {
                return Err(format!("regular expression \"{t}\" is not supported"));
            }
            _ => {}
        }
    }
    Ok(UserPattern::Name(tok.text.clone()))
}

/// The prefix length of a contiguous netmask (`255.255.255.0` → 24), or `None`.
fn mask_prefix_len(mask: IpAddr) -> Option<u8> {
    let (bits, width) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, 32),
        IpAddr::V6(m) => (u128::from(m), 128),
    };
    let ones = bits.leading_ones();
    // Contiguous: everything after the leading ones is zero.
    let rest = bits.checked_shl(ones).unwrap_or(0);
    (rest == 0 && ones <= width).then_some(ones as u8)
}

/// The pg_hba.conf in force, shared by all connections and replaceable at run time (SIGHUP).
#[derive(Debug)]
pub struct SharedHba {
    path: Option<PathBuf>,
    /// Replaced whole by `reload`/`replace`; readers clone the `Arc` and keep using the rules
    /// they got, so a reload never changes the rules under a connection mid-check.
    current: RwLock<Arc<HbaFile>>,
}

impl SharedHba {
    /// Loads `path`; `reload` re-reads it.
    pub fn load(path: &Path) -> Result<SharedHba, HbaError> {
        Ok(SharedHba {
            current: RwLock::new(Arc::new(HbaFile::load(path)?)),
            path: Some(path.to_owned()),
        })
    }

    /// Rules not backed by a file (tests, embedding).
    pub fn fixed(file: HbaFile) -> SharedHba {
        SharedHba {
            path: None,
            current: RwLock::new(Arc::new(file)),
        }
    }

    pub fn current(&self) -> Arc<HbaFile> {
        Arc::clone(&self.current.read())
    }

    /// Re-reads the file. On error the old rules stay in force and the error is returned for
    /// the log, as PostgreSQL does on SIGHUP.
    pub fn reload(&self) -> Result<(), HbaError> {
        if let Some(path) = &self.path {
            let file = HbaFile::load(path)?;
            *self.current.write() = Arc::new(file);
        }
        Ok(())
    }

    /// Replaces the rules.
    pub fn replace(&self, file: HbaFile) {
        *self.current.write() = Arc::new(file);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> HbaFile {
        HbaFile::parse(text, "pg_hba.conf").unwrap()
    }

    fn parse_err(text: &str) -> String {
        HbaFile::parse(text, "pg_hba.conf").unwrap_err().to_string()
    }

    fn tcp<'a>(db: &'a str, user: &'a str, addr: &str) -> HbaRequest<'a> {
        HbaRequest {
            transport: Transport::Tcp { ssl: false },
            database: db,
            user,
            client_addr: Some(addr.parse().unwrap()),
            server_addr: Some("127.0.0.1".parse().unwrap()),
            replication: ReplicationKind::None,
        }
    }

    fn unix<'a>(db: &'a str, user: &'a str) -> HbaRequest<'a> {
        HbaRequest {
            transport: Transport::Unix,
            database: db,
            user,
            client_addr: None,
            server_addr: None,
            replication: ReplicationKind::None,
        }
    }

    /// The method of the matching line, or None for no match.
    fn method(file: &HbaFile, req: &HbaRequest<'_>) -> Option<AuthMethod> {
        match file.check(req) {
            HbaVerdict::Matched(l) => Some(l.method),
            HbaVerdict::NoEntry => None,
        }
    }

    #[test]
    fn default_file_parses_and_trusts_local() {
        let f = parse(DEFAULT_PG_HBA);
        assert_eq!(f.lines().len(), 6);
        assert_eq!(method(&f, &unix("db", "u")), Some(AuthMethod::Trust));
        assert_eq!(
            method(&f, &tcp("db", "u", "127.0.0.1")),
            Some(AuthMethod::Trust)
        );
        assert_eq!(method(&f, &tcp("db", "u", "::1")), Some(AuthMethod::Trust));
        assert_eq!(method(&f, &tcp("db", "u", "10.0.0.1")), None);
        let mut repl = tcp("ignored", "u", "127.0.0.1");
        repl.replication = ReplicationKind::Physical;
        let HbaVerdict::Matched(line) = f.check(&repl) else {
            panic!("replication must match");
        };
        assert_eq!(line.line_number, 19);
        repl.client_addr = Some("192.168.1.1".parse().unwrap());
        assert_eq!(f.check(&repl), HbaVerdict::NoEntry);
    }

    #[test]
    fn first_match_wins() {
        let f = parse(
            "host all alice 0.0.0.0/0 reject\n\
             host all all 0.0.0.0/0 scram-sha-256\n\
             host all alice 0.0.0.0/0 trust\n",
        );
        assert_eq!(
            method(&f, &tcp("d", "alice", "1.2.3.4")),
            Some(AuthMethod::Reject)
        );
        assert_eq!(
            method(&f, &tcp("d", "bob", "1.2.3.4")),
            Some(AuthMethod::ScramSha256)
        );
    }

    #[test]
    fn connection_types() {
        let f =
            parse("local all all password\nhostssl all all all trust\nhostnossl all all all md5\n");
        assert_eq!(method(&f, &unix("d", "u")), Some(AuthMethod::Password));
        assert_eq!(method(&f, &tcp("d", "u", "1.1.1.1")), Some(AuthMethod::Md5));
        let mut ssl = tcp("d", "u", "1.1.1.1");
        ssl.transport = Transport::Tcp { ssl: true };
        assert_eq!(method(&f, &ssl), Some(AuthMethod::Trust));

        let f = parse("host all all all trust\n");
        assert_eq!(
            method(&f, &unix("d", "u")),
            None,
            "host never matches Unix sockets"
        );
        let f = parse("local all all trust\n");
        assert_eq!(method(&f, &tcp("d", "u", "127.0.0.1")), None);
        let f = parse("hostgssenc all all all trust\nhostnogssenc all all all reject\n");
        assert_eq!(
            method(&f, &tcp("d", "u", "127.0.0.1")),
            Some(AuthMethod::Reject)
        );
    }

    #[test]
    fn database_keywords_and_lists() {
        let f = parse(
            "local sameuser all trust\n\
             local db1,db2 all password\n\
             local \"all\" all md5\n\
             local samerole all reject\n",
        );
        assert_eq!(method(&f, &unix("alice", "alice")), Some(AuthMethod::Trust));
        assert_eq!(
            method(&f, &unix("db2", "alice")),
            Some(AuthMethod::Password)
        );
        assert_eq!(
            method(&f, &unix("db1", "alice")),
            Some(AuthMethod::Password)
        );
        assert_eq!(method(&f, &unix("all", "alice")), Some(AuthMethod::Md5));
        assert_eq!(method(&f, &unix("other", "alice")), None);

        // A list may have blanks after its commas.
        let f = parse("local db1, db2 ,db3 trust\n");
        // "db1, db2" is one field; ",db3" then starts the USER field.
        assert_eq!(method(&f, &unix("db2", "db3")), Some(AuthMethod::Trust));
        assert_eq!(method(&f, &unix("db2", "x")), None);
    }

    #[test]
    fn replication_keyword_matches_only_physical_replication() {
        let f = parse("host replication all all trust\nhost all all all reject\n");
        let mut req = tcp("replication", "u", "127.0.0.1");
        assert_eq!(
            method(&f, &req),
            Some(AuthMethod::Reject),
            "a database named replication"
        );
        req.replication = ReplicationKind::Physical;
        assert_eq!(method(&f, &req), Some(AuthMethod::Trust));
        req.replication = ReplicationKind::Logical;
        assert_eq!(method(&f, &req), Some(AuthMethod::Reject));

        // `all` does not match a physical replication connection.
        let f = parse("host all all all trust\n");
        let mut req = tcp("db", "u", "127.0.0.1");
        req.replication = ReplicationKind::Physical;
        assert_eq!(f.check(&req), HbaVerdict::NoEntry);
        // A quoted "replication" is a database name, not the keyword.
        let f = parse("host \"replication\" all all trust\n");
        assert_eq!(f.check(&req), HbaVerdict::NoEntry);
        assert_eq!(
            method(&f, &tcp("replication", "u", "1.1.1.1")),
            Some(AuthMethod::Trust)
        );
    }

    #[test]
    fn users() {
        let f = parse("local all alice,\"Bob\" trust\nlocal all \"all\" password\n");
        assert_eq!(method(&f, &unix("d", "alice")), Some(AuthMethod::Trust));
        assert_eq!(method(&f, &unix("d", "Bob")), Some(AuthMethod::Trust));
        assert_eq!(
            method(&f, &unix("d", "bob")),
            None,
            "names are case-sensitive"
        );
        assert_eq!(method(&f, &unix("d", "all")), Some(AuthMethod::Password));
    }

    #[test]
    fn addresses() {
        let f = parse(
            "host all all 10.0.0.0/8 trust\n\
             host all all 192.168.1.0 255.255.255.0 password\n\
             host all all fe80::/10 md5\n\
             host all all 0.0.0.0/0 reject\n",
        );
        assert_eq!(
            method(&f, &tcp("d", "u", "10.200.3.4")),
            Some(AuthMethod::Trust)
        );
        assert_eq!(
            method(&f, &tcp("d", "u", "192.168.1.77")),
            Some(AuthMethod::Password)
        );
        assert_eq!(
            method(&f, &tcp("d", "u", "192.168.2.77")),
            Some(AuthMethod::Reject)
        );
        assert_eq!(method(&f, &tcp("d", "u", "fe80::1")), Some(AuthMethod::Md5));
        assert_eq!(
            method(&f, &tcp("d", "u", "2001:db8::1")),
            None,
            "v4 lines never match v6"
        );
        // IPv4-mapped IPv6 clients match as IPv4.
        assert_eq!(
            method(&f, &tcp("d", "u", "::ffff:10.1.1.1")),
            Some(AuthMethod::Trust)
        );

        let f = parse("host all all 1.2.3.4/32 trust\nhost all all ::/0 reject\n");
        assert_eq!(
            method(&f, &tcp("d", "u", "1.2.3.4")),
            Some(AuthMethod::Trust)
        );
        assert_eq!(method(&f, &tcp("d", "u", "1.2.3.5")), None);
        assert_eq!(method(&f, &tcp("d", "u", "::1")), Some(AuthMethod::Reject));

        let f = parse("host all all all trust\n");
        assert_eq!(
            method(&f, &tcp("d", "u", "8.8.8.8")),
            Some(AuthMethod::Trust)
        );
        assert_eq!(method(&f, &tcp("d", "u", "::2")), Some(AuthMethod::Trust));
    }

    #[test]
    fn samehost() {
        let f = parse("host all all samehost trust\n");
        assert_eq!(
            method(&f, &tcp("d", "u", "127.0.0.1")),
            Some(AuthMethod::Trust)
        );
        let mut req = tcp("d", "u", "10.0.0.5");
        req.server_addr = Some("10.0.0.5".parse().unwrap());
        assert_eq!(method(&f, &req), Some(AuthMethod::Trust));
        req.client_addr = Some("10.0.0.6".parse().unwrap());
        assert_eq!(method(&f, &req), None);
    }

    #[test]
    fn comments_quotes_and_continuations() {
        let f = parse(
            "# full-line comment\n\
             \n   \t \n\
             local all all trust # trailing comment\n\
             host \"my db\",\"a,b\" \"we\"\"ird\" 127.0.0.1/32 \\\n    password\n\
             local all all reject\n",
        );
        assert_eq!(f.lines().len(), 3);
        assert_eq!(f.lines()[1].line_number, 5);
        assert_eq!(f.lines()[2].line_number, 7);
        let f2 = parse("host \"my db\",\"a,b\" \"we\"\"ird\" 127.0.0.1/32 password\n");
        assert_eq!(
            method(&f2, &tcp("my db", "we\"ird", "127.0.0.1")),
            Some(AuthMethod::Password)
        );
        assert_eq!(
            method(&f2, &tcp("a,b", "we\"ird", "127.0.0.1")),
            Some(AuthMethod::Password)
        );
        assert_eq!(method(&f2, &tcp("a", "we\"ird", "127.0.0.1")), None);
        // Without a trailing newline.
        assert_eq!(parse("local all all trust").lines().len(), 1);
        // A continuation at the end of the file still needs its method.
        assert!(parse_err("local all all \\").contains("end-of-line before authentication"));
    }

    #[test]
    fn syntax_errors_carry_file_and_line() {
        for (text, line, needle) in [
            (
                "local all all trust\nlokal all all trust\n",
                2,
                "invalid connection type \"lokal\"",
            ),
            ("local all\n", 1, "end-of-line before role specification"),
            (
                "local all all\n",
                1,
                "end-of-line before authentication method",
            ),
            (
                "host all all trust\n",
                1,
                "host name \"trust\" is not supported",
            ),
            ("host all all 127.0.0.1\n", 1, "end-of-line before netmask"),
            (
                "host all all 127.0.0.1 255.0.255.0 trust\n",
                1,
                "invalid IP mask",
            ),
            (
                "host all all 127.0.0.1 ffff:: trust\n",
                1,
                "invalid IP mask",
            ),
            ("host all all 10.0.0.0/33 trust\n", 1, "invalid CIDR mask"),
            ("host all all 10.0.0/8 trust\n", 1, "invalid IP address"),
            ("host all all example.com trust\n", 1, "host name"),
            ("host all all samenet trust\n", 1, "samenet"),
            ("local all all peer\n", 1, "\"peer\" is not supported"),
            (
                "local all all magic\n",
                1,
                "invalid authentication method \"magic\"",
            ),
            (
                "local all all scram-sha-256 clientcert=verify-full\n",
                1,
                "option \"clientcert\"",
            ),
            ("local all +admins trust\n", 1, "role membership"),
            ("local @dbs all trust\n", 1, "file inclusion"),
            ("local /^db all trust\n", 1, "regular expression"),
            ("local all \"unterminated trust\n", 1, "unterminated"),
            ("local,host all all trust\n", 1, "multiple values"),
            (
                "# c\n\nhost all all 1.1.1.1/32,2.2.2.2/32 trust\n",
                3,
                "multiple values",
            ),
        ] {
            let err = parse_err(text);
            assert!(
                err.starts_with(&format!("pg_hba.conf:{line}: ")),
                "{text:?}: {err}"
            );
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejection_messages_match_postgres() {
        let req = tcp("db", "alice", "10.1.2.3");
        assert_eq!(
            req.no_entry_message(),
            "no pg_hba.conf entry for host \"10.1.2.3\", user \"alice\", database \"db\", no encryption"
        );
        assert_eq!(
            unix("db", "alice").rejected_message(),
            "pg_hba.conf rejects connection for host \"[local]\", user \"alice\", database \"db\", no encryption"
        );
        let mut repl = tcp("db", "alice", "::1");
        repl.replication = ReplicationKind::Physical;
        assert_eq!(
            repl.no_entry_message(),
            "no pg_hba.conf entry for replication connection from host \"::1\", user \"alice\", no encryption"
        );
    }

    #[test]
    fn masks() {
        let m = |s: &str| mask_prefix_len(s.parse().unwrap());
        assert_eq!(m("255.255.255.255"), Some(32));
        assert_eq!(m("255.255.255.0"), Some(24));
        assert_eq!(m("0.0.0.0"), Some(0));
        assert_eq!(m("255.0.255.0"), None);
        assert_eq!(m("ffff:ffff::"), Some(32));
        assert_eq!(m("::"), Some(0));
        assert_eq!(m("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(128));
    }

    #[test]
    fn shared_reload_keeps_old_rules_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg_hba.conf");
        std::fs::write(&path, "local all all trust\n").unwrap();
        let shared = SharedHba::load(&path).unwrap();
        let before = shared.current();
        std::fs::write(&path, "local all all reject\n").unwrap();
        shared.reload().unwrap();
        assert_eq!(shared.current().lines()[0].method, AuthMethod::Reject);
        assert_eq!(
            before.lines()[0].method,
            AuthMethod::Trust,
            "old snapshot unchanged"
        );
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(shared.reload().is_err());
        assert_eq!(shared.current().lines()[0].method, AuthMethod::Reject);
        assert!(matches!(
            SharedHba::load(&dir.path().join("missing")),
            Err(HbaError::Read { .. })
        ));
    }

    #[test]
    fn tokenizer_never_panics() {
        let alphabet = [
            'a', ' ', ',', '"', '#', '\\', '/', '.', '1', ':', '\t', '+', '@', 'é',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = HbaFile::parse(&s, "fuzz");
            let _ = HbaFile::parse(&format!("host all all {s} trust"), "fuzz");
        }
    }
}
