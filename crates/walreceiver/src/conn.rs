//! A replication-protocol client connection: what libpq (`fe-connect.c`, `fe-protocol3.c`)
//! and `libpqwalreceiver.c` do for PostgreSQL's walreceiver and `pg_basebackup`.
//!
//! What it does: from a libpq connection string ([`replication::conninfo`]) it connects over
//! TCP, or over a Unix socket when the host is a directory (`/dir/.s.PGSQL.<port>`), trying
//! each listed host in turn as libpq does; sends a v3.0 StartupMessage with
//! `replication=true` (a physical replication connection), `user`, `database` and
//! `application_name`; answers trust, cleartext password, MD5 and SCRAM-SHA-256
//! authentication (the password from the connection string, `PGPASSWORD`, or the password
//! file — `passfile`, `PGPASSFILE`, `~/.pgpass` — as libpq looks it up); reads ParameterStatus, BackendKeyData and ReadyForQuery; runs simple
//! queries (the only query protocol a replication connection has) and returns their result
//! sets; and moves CopyData in both directions for START_REPLICATION (CopyBoth) and
//! BASE_BACKUP (CopyOut).
//!
//! Where it runs: inside the walreceiver task and the `lockstep basebackup` command, on a
//! tokio runtime. One task owns a connection; nothing here is shared.
//!
//! What it deliberately does not do: TLS (`sslmode=require` and stricter are refused with a
//! clear error rather than silently sent in clear; `prefer`/`allow` connect without TLS, which
//! is what libpq does against a server without SSL), GSSAPI/SSPI/Kerberos, `service` files, the extended query protocol, or any interpretation of replication
//! messages (that is [`replication::messages`]).
//!
//! Invariants: a message is handed out only once its whole body has arrived; a message
//! longer than [`MAX_MESSAGE_LEN`] or shorter than its own length field is a protocol error,
//! never an allocation or a panic; every field read is bounds-checked
//! ([`parse_backend_message`] returns [`ProtocolError`] on truncated or garbage input).
//! [`PgConnection::fill`] is cancel-safe (it only appends to the receive buffer), so the
//! walreceiver can `select!` on it against timers and replay notifications without losing
//! bytes.
//!
//! How it fails: every failure is a [`ConnError`]: the server's ErrorResponse as a typed
//! [`ServerError`] (severity, SQLSTATE, message, detail, hint), an I/O error or EOF (the
//! connection is then useless and is dropped), a protocol error, an authentication the client
//! cannot perform, or a timeout (`connect_timeout`, applied per host to the TCP connect plus
//! authentication, as libpq does).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use replication::conninfo::{ConnInfo, ConnInfoError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest backend message accepted. The largest legitimate ones are XLogData (at most
/// `MAX_SEND_SIZE` = 128 KiB of WAL plus a 25-byte header) and base backup data chunks (32 KiB
/// in PostgreSQL 15); TIMELINE_HISTORY rows are a few bytes per timeline. 64 MiB leaves room
/// for any server that sends bigger chunks while keeping a corrupt length field from making
/// us allocate gigabytes.
pub const MAX_MESSAGE_LEN: usize = 64 << 20;

/// How much the receive buffer asks the socket for at a time: several XLogData messages per
/// read, so a burst of WAL costs few syscalls and one reply/fsync (the walreceiver reports
/// once the buffer runs dry).
const READ_CHUNK: usize = 256 << 10;

/// Port when the connection string names none (libpq's DEF_PGPORT).
pub const DEFAULT_PORT: u16 = 5432;

/// The ErrorResponse/NoticeResponse of a server, with the fields a caller acts on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServerError {
    /// `S`: ERROR, FATAL, PANIC (or WARNING, NOTICE ... for notices).
    pub severity: String,
    /// `C`: the SQLSTATE, e.g. `28P01`.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:  {}", self.severity, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " DETAIL:  {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " HINT:  {h}")?;
        }
        write!(f, " (SQLSTATE {})", self.code)
    }
}

impl std::error::Error for ServerError {}

/// Bytes from the server that do not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

fn perr(s: impl Into<String>) -> ProtocolError {
    ProtocolError(s.into())
}

/// Why a connection or a command on it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    #[error("invalid connection string: {0}")]
    ConnInfo(#[from] ConnInfoError),
    #[error("could not connect to server at \"{target}\": {source}")]
    Connect { target: String, source: io::Error },
    #[error("timeout expired while connecting to \"{target}\"")]
    ConnectTimeout { target: String },
    #[error("connection to server lost: {0}")]
    Io(#[from] io::Error),
    #[error("server closed the connection unexpectedly")]
    Closed,
    #[error("{0}")]
    Server(ServerError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("sslmode \"{0}\" requires SSL, which this client does not support")]
    SslRequired(String),
}

impl ConnError {
    /// The server's error, if that is what this is.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ConnError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
}

/// A complete result set of a simple query.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<Bytes>>>,
    /// The CommandComplete tag.
    pub tag: String,
}

impl ResultSet {
    /// A value as text (`None` for NULL, a missing cell, or invalid UTF-8).
    pub fn text(&self, row: usize, col: usize) -> Option<&str> {
        let v = self.rows.get(row)?.get(col)?.as_ref()?;
        std::str::from_utf8(v).ok()
    }

    pub fn bytes(&self, row: usize, col: usize) -> Option<&Bytes> {
        self.rows.get(row)?.get(col)?.as_ref()
    }
}

/// Which copy mode a query entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    Out,
    Both,
    In,
}

/// A message inside a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyMessage {
    Data(Bytes),
    /// The server ended its side of the copy.
    Done,
}

/// An authentication request ('R').
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue(Bytes),
    SaslFinal(Bytes),
    /// A method this client does not implement (Kerberos, GSS, SSPI ...), by code.
    Other(i32),
}

/// Every backend message this client understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendMessage {
    Authentication(AuthRequest),
    ParameterStatus { name: String, value: String },
    BackendKeyData { pid: i32, key: i32 },
    ReadyForQuery { status: u8 },
    RowDescription(Vec<Column>),
    DataRow(Vec<Option<Bytes>>),
    CommandComplete(String),
    EmptyQueryResponse,
    Error(ServerError),
    Notice(ServerError),
    CopyResponse(CopyKind),
    CopyData(Bytes),
    CopyDone,
    Notification,
    NegotiateProtocolVersion,
}

/// A bounds-checked reader over a message body.
struct Body {
    b: Bytes,
}

impl Body {
    fn need(&self, n: usize, what: &str) -> Result<(), ProtocolError> {
        if self.b.remaining() < n {
            return Err(perr(format!("message too short reading {what}")));
        }
        Ok(())
    }
    fn u8(&mut self, what: &str) -> Result<u8, ProtocolError> {
        self.need(1, what)?;
        Ok(self.b.get_u8())
    }
    fn i16(&mut self, what: &str) -> Result<i16, ProtocolError> {
        self.need(2, what)?;
        Ok(self.b.get_i16())
    }
    fn i32(&mut self, what: &str) -> Result<i32, ProtocolError> {
        self.need(4, what)?;
        Ok(self.b.get_i32())
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, ProtocolError> {
        self.need(n, what)?;
        Ok(self.b.split_to(n))
    }
    fn cstr(&mut self, what: &str) -> Result<String, ProtocolError> {
        let Some(nul) = self.b.iter().position(|&c| c == 0) else {
            return Err(perr(format!("unterminated string in {what}")));
        };
        let s = self.b.split_to(nul);
        self.b.advance(1);
        // Servers send UTF-8 for these (client_encoding is UTF8 by default in PostgreSQL
        // 15 clients); a stray byte must not fail a whole error report.
        Ok(String::from_utf8_lossy(&s).into_owned())
    }
    fn rest(self) -> Bytes {
        self.b
    }
}

fn parse_error_fields(mut body: Body) -> Result<ServerError, ProtocolError> {
    let mut e = ServerError::default();
    let mut severity_nonlocalized = None;
    loop {
        let code = body.u8("error field code")?;
        if code == 0 {
            break;
        }
        let value = body.cstr("error field")?;
        match code {
            b'S' => e.severity = value,
            b'V' => severity_nonlocalized = Some(value),
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
    }
    if let Some(v) = severity_nonlocalized {
        e.severity = v;
    }
    Ok(e)
}

/// Parses one backend message body of type `tag`. Never panics; garbage and truncated bodies
/// are [`ProtocolError`]s.
pub fn parse_backend_message(tag: u8, body: Bytes) -> Result<BackendMessage, ProtocolError> {
    let mut b = Body { b: body };
    let msg = match tag {
        b'R' => {
            let code = b.i32("authentication code")?;
            BackendMessage::Authentication(match code {
                0 => AuthRequest::Ok,
                3 => AuthRequest::CleartextPassword,
                5 => {
                    let s = b.bytes(4, "MD5 salt")?;
                    AuthRequest::Md5Password {
                        salt: [s[0], s[1], s[2], s[3]],
                    }
                }
                10 => {
                    let mut mechanisms = Vec::new();
                    loop {
                        let m = b.cstr("SASL mechanism")?;
                        if m.is_empty() {
                            break;
                        }
                        mechanisms.push(m);
                    }
                    AuthRequest::Sasl { mechanisms }
                }
                11 => AuthRequest::SaslContinue(b.rest()),
                12 => AuthRequest::SaslFinal(b.rest()),
                other => AuthRequest::Other(other),
            })
        }
        b'S' => BackendMessage::ParameterStatus {
            name: b.cstr("parameter name")?,
            value: b.cstr("parameter value")?,
        },
        b'K' => BackendMessage::BackendKeyData {
            pid: b.i32("backend pid")?,
            key: b.i32("cancel key")?,
        },
        b'Z' => BackendMessage::ReadyForQuery {
            status: b.u8("transaction status")?,
        },
        b'T' => {
            let n = b.i16("field count")?;
            let n = usize::try_from(n).map_err(|_| perr("negative field count"))?;
            let mut cols = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let name = b.cstr("field name")?;
                let _table = b.i32("table oid")?;
                let _attnum = b.i16("column number")?;
                let type_oid = b.i32("type oid")? as u32;
                let _len = b.i16("type length")?;
                let _typmod = b.i32("type modifier")?;
                let _format = b.i16("format code")?;
                cols.push(Column { name, type_oid });
            }
            BackendMessage::RowDescription(cols)
        }
        b'D' => {
            let n = b.i16("column count")?;
            let n = usize::try_from(n).map_err(|_| perr("negative column count"))?;
            let mut vals = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let len = b.i32("value length")?;
                if len == -1 {
                    vals.push(None);
                } else {
                    let len = usize::try_from(len).map_err(|_| perr("negative value length"))?;
                    vals.push(Some(b.bytes(len, "value")?));
                }
            }
            BackendMessage::DataRow(vals)
        }
        b'C' => BackendMessage::CommandComplete(b.cstr("command tag")?),
        b'I' => BackendMessage::EmptyQueryResponse,
        b'E' => BackendMessage::Error(parse_error_fields(b)?),
        b'N' => BackendMessage::Notice(parse_error_fields(b)?),
        b'H' | b'W' | b'G' => {
            let _format = b.u8("copy format")?;
            let n = b.i16("copy column count")?;
            let n = usize::try_from(n).map_err(|_| perr("negative copy column count"))?;
            for _ in 0..n {
                b.i16("copy column format")?;
            }
            BackendMessage::CopyResponse(match tag {
                b'H' => CopyKind::Out,
                b'W' => CopyKind::Both,
                _ => CopyKind::In,
            })
        }
        b'd' => BackendMessage::CopyData(b.rest()),
        b'c' => BackendMessage::CopyDone,
        b'A' => BackendMessage::Notification,
        b'v' => BackendMessage::NegotiateProtocolVersion,
        other => {
            return Err(perr(format!(
                "unexpected message type 0x{other:02x} from server"
            )));
        }
    };
    Ok(msg)
}

/// Splits one complete message off the front of `buf`: `Ok(None)` until all of it arrived.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, ProtocolError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let len = usize::try_from(len).map_err(|_| perr(format!("invalid message length {len}")))?;
    if len < 4 {
        return Err(perr(format!("invalid message length {len}")));
    }
    if len > MAX_MESSAGE_LEN {
        return Err(perr(format!(
            "message of {len} bytes exceeds the limit of {MAX_MESSAGE_LEN}"
        )));
    }
    if buf.len() < 1 + len {
        buf.reserve(1 + len - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(1 + len);
    frame.advance(5);
    Ok(Some((tag, frame.freeze())))
}

trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// Connection settings beyond the connection string.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `replication` startup parameter: `Some("true")` for a physical replication
    /// connection, `None` for a normal session.
    pub replication: Option<String>,
    /// Used when the connection string has no `application_name`
    /// (libpq's `fallback_application_name`).
    pub fallback_application_name: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            replication: Some("true".to_owned()),
            fallback_application_name: None,
        }
    }
}

/// An established, authenticated connection.
pub struct PgConnection {
    stream: Pin<Box<dyn AsyncStream>>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    params: HashMap<String, String>,
    backend_pid: Option<i32>,
    host: String,
    port: u16,
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("backend_pid", &self.backend_pid)
            .finish()
    }
}

fn default_socket_dir() -> &'static str {
    // libpq's DEFAULT_PGSOCKET_DIR: Debian builds use /var/run/postgresql, upstream /tmp.
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql"
    } else {
        "/tmp"
    }
}

fn env_or(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl PgConnection {
    /// Connects with a libpq connection string, trying each host in order; the error of the
    /// last host is returned if none accepts.
    pub async fn connect(conninfo: &str, opts: &ConnectOptions) -> Result<PgConnection, ConnError> {
        let info = ConnInfo::parse(conninfo)?;
        info.validate()?;
        Self::connect_info(&info, opts).await
    }

    pub async fn connect_info(
        info: &ConnInfo,
        opts: &ConnectOptions,
    ) -> Result<PgConnection, ConnError> {
        if let Some(m @ ("require" | "verify-ca" | "verify-full")) = info.get("sslmode") {
            return Err(ConnError::SslRequired(m.to_owned()));
        }
        let timeout = info.connect_timeout()?;
        let hosts = info.hosts()?;
        let hostaddrs: Vec<String> = info
            .get("hostaddr")
            .map(|h| h.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        let mut last_err = None;
        for (i, hp) in hosts.iter().enumerate() {
            let host = hp
                .host
                .clone()
                .or_else(|| env_or("PGHOST"))
                .unwrap_or_else(|| default_socket_dir().to_owned());
            let port = hp
                .port
                .or_else(|| env_or("PGPORT").and_then(|p| p.parse().ok()))
                .unwrap_or(DEFAULT_PORT);
            let addr = hostaddrs
                .get(i)
                .filter(|a| !a.is_empty())
                .cloned()
                .unwrap_or_else(|| host.clone());
            let attempt = Self::connect_one(info, opts, host.clone(), addr, port);
            let t = timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            let result = match tokio::time::timeout(t, attempt).await {
                Ok(r) => r,
                Err(_) => Err(ConnError::ConnectTimeout {
                    target: format!("{host}:{port}"),
                }),
            };
            match result {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!("connection to {host}:{port} failed: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or(ConnError::Closed))
    }

    async fn connect_one(
        info: &ConnInfo,
        opts: &ConnectOptions,
        host: String,
        addr: String,
        port: u16,
    ) -> Result<PgConnection, ConnError> {
        let stream: Pin<Box<dyn AsyncStream>> = if addr.starts_with('/') {
            let path = format!("{addr}/.s.PGSQL.{port}");
            let s = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(|source| ConnError::Connect {
                    target: path.clone(),
                    source,
                })?;
            Box::pin(s)
        } else {
            let s = tokio::net::TcpStream::connect((addr.as_str(), port))
                .await
                .map_err(|source| ConnError::Connect {
                    target: format!("{addr}:{port}"),
                    source,
                })?;
            // Replies and small WAL messages must not wait for Nagle's timer.
            s.set_nodelay(true)?;
            Box::pin(s)
        };
        let mut conn = PgConnection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(1024),
            params: HashMap::new(),
            backend_pid: None,
            host,
            port,
        };
        conn.startup(info, opts).await?;
        Ok(conn)
    }

    async fn startup(&mut self, info: &ConnInfo, opts: &ConnectOptions) -> Result<(), ConnError> {
        let user = info
            .user()
            .map(str::to_owned)
            .or_else(|| env_or("PGUSER"))
            .or_else(|| env_or("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        let database = info
            .dbname()
            .map(str::to_owned)
            .unwrap_or_else(|| "replication".to_owned());
        let password = info
            .password()
            .map(str::to_owned)
            .or_else(|| env_or("PGPASSWORD"))
            .or_else(|| {
                let file = info
                    .get("passfile")
                    .map(str::to_owned)
                    .or_else(|| env_or("PGPASSFILE"))
                    .or_else(|| env_or("HOME").map(|h| format!("{h}/.pgpass")))?;
                let text = std::fs::read_to_string(file).ok()?;
                passfile_lookup(&text, &self.host, self.port, &database, &user)
            });
        let app = info
            .application_name()
            .map(str::to_owned)
            .or_else(|| opts.fallback_application_name.clone());
        let mut params: Vec<(&str, &str)> = vec![("user", &user), ("database", &database)];
        if let Some(r) = &opts.replication {
            params.push(("replication", r));
        }
        if let Some(a) = &app {
            params.push(("application_name", a));
        }
        if let Some(o) = info.get("options") {
            params.push(("options", o));
        }
        frontend::startup_message(params.iter().copied(), &mut self.wbuf)?;
        self.flush().await?;
        self.authenticate(&user, password.as_deref()).await?;
        loop {
            match self.read_message().await? {
                BackendMessage::BackendKeyData { pid, .. } => self.backend_pid = Some(pid),
                BackendMessage::ReadyForQuery { .. } => return Ok(()),
                BackendMessage::Error(e) => return Err(ConnError::Server(e)),
                BackendMessage::NegotiateProtocolVersion => {}
                other => {
                    return Err(
                        perr(format!("unexpected message during startup: {other:?}")).into(),
                    );
                }
            }
        }
    }

    async fn authenticate(&mut self, user: &str, password: Option<&str>) -> Result<(), ConnError> {
        let need_password = || {
            password.ok_or_else(|| ConnError::Auth("fe_sendauth: no password supplied".to_owned()))
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let req = match self.read_message().await? {
                BackendMessage::Authentication(r) => r,
                BackendMessage::Error(e) => return Err(ConnError::Server(e)),
                BackendMessage::NegotiateProtocolVersion => continue,
                other => {
                    return Err(
                        perr(format!("expected an authentication request, got {other:?}")).into(),
                    );
                }
            };
            match req {
                AuthRequest::Ok => return Ok(()),
                AuthRequest::CleartextPassword => {
                    let p = need_password()?;
                    frontend::password_message(p.as_bytes(), &mut self.wbuf)?;
                }
                AuthRequest::Md5Password { salt } => {
                    let p = need_password()?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        p.as_bytes(),
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                }
                AuthRequest::Sasl { mechanisms } => {
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(ConnError::Auth(format!(
                            "none of the server's SASL authentication mechanisms are supported ({})",
                            mechanisms.join(", ")
                        )));
                    }
                    let p = need_password()?;
                    // No TLS, so no channel binding (libpq's channel_binding=prefer does the
                    // same without SSL).
                    let s = ScramSha256::new(p.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut self.wbuf)?;
                    scram = Some(s);
                }
                AuthRequest::SaslContinue(data) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| perr("SASL continue without SASL start"))?;
                    s.update(&data)
                        .map_err(|e| ConnError::Auth(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(s.message(), &mut self.wbuf)?;
                }
                AuthRequest::SaslFinal(data) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| perr("SASL final without SASL start"))?;
                    // Verifies the server's signature: a server that does not know the
                    // password cannot fake a successful login.
                    s.finish(&data)
                        .map_err(|e| ConnError::Auth(format!("SCRAM: {e}")))?;
                    continue;
                }
                AuthRequest::Other(code) => {
                    return Err(ConnError::Auth(format!(
                        "authentication method {code} not supported"
                    )));
                }
            }
            self.flush().await?;
        }
    }

    /// The host (or socket directory) and port connected to.
    pub fn peer(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// A ParameterStatus value the server reported (e.g. `server_version`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// Reads more bytes from the socket into the receive buffer. Cancel-safe: if the future
    /// is dropped nothing is lost.
    pub async fn fill(&mut self) -> Result<(), ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        Ok(())
    }

    /// The next complete message already buffered, skipping notices and parameter reports.
    pub fn try_read_message(&mut self) -> Result<Option<BackendMessage>, ConnError> {
        loop {
            let Some((tag, body)) = decode_frame(&mut self.rbuf)? else {
                return Ok(None);
            };
            match parse_backend_message(tag, body)? {
                BackendMessage::Notice(n) => {
                    tracing::info!("server notice: {n}");
                }
                BackendMessage::ParameterStatus { name, value } => {
                    self.params.insert(name, value);
                }
                BackendMessage::Notification => {}
                m => return Ok(Some(m)),
            }
        }
    }

    pub async fn read_message(&mut self) -> Result<BackendMessage, ConnError> {
        loop {
            if let Some(m) = self.try_read_message()? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.wbuf.is_empty() {
            let out = self.wbuf.split();
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Queues a CopyData message.
    pub fn queue_copy_data(&mut self, data: &[u8]) {
        self.wbuf.reserve(5 + data.len());
        self.wbuf.extend_from_slice(b"d");
        // Our own messages are tiny ('r' is 34 bytes); the cast cannot overflow.
        self.wbuf
            .extend_from_slice(&((data.len() + 4) as i32).to_be_bytes());
        self.wbuf.extend_from_slice(data);
    }

    pub fn queue_copy_done(&mut self) {
        frontend::copy_done(&mut self.wbuf);
    }

    /// Sends a simple query and collects every result set until ReadyForQuery. A server error
    /// is returned after the server is ready again, so the connection stays usable.
    pub async fn simple_query(&mut self, query: &str) -> Result<Vec<ResultSet>, ConnError> {
        frontend::query(query, &mut self.wbuf)?;
        self.flush().await?;
        let (sets, copy) = self.collect_results().await?;
        if let Some(k) = copy {
            return Err(perr(format!("unexpected {k:?} copy in reply to \"{query}\"")).into());
        }
        Ok(sets)
    }

    /// Sends a query that enters copy mode (START_REPLICATION, BASE_BACKUP) and returns the
    /// result sets sent before the copy began, and which copy it is.
    pub async fn query_until_copy(
        &mut self,
        query: &str,
    ) -> Result<(Vec<ResultSet>, CopyKind), ConnError> {
        frontend::query(query, &mut self.wbuf)?;
        self.flush().await?;
        match self.collect_results().await? {
            (sets, Some(k)) => Ok((sets, k)),
            (_, None) => Err(perr(format!("\"{query}\" did not start a copy")).into()),
        }
    }

    /// After both sides ended a copy: the remaining result sets until ReadyForQuery.
    pub async fn finish_copy(&mut self) -> Result<Vec<ResultSet>, ConnError> {
        let (sets, copy) = self.collect_results().await?;
        if copy.is_some() {
            return Err(perr("a second copy after CopyDone").into());
        }
        Ok(sets)
    }

    /// Reads result sets until ReadyForQuery (→ `None`) or a copy response (→ `Some`).
    async fn collect_results(&mut self) -> Result<(Vec<ResultSet>, Option<CopyKind>), ConnError> {
        let mut sets = Vec::new();
        let mut cur: Option<ResultSet> = None;
        let mut error: Option<ServerError> = None;
        loop {
            match self.read_message().await? {
                BackendMessage::RowDescription(cols) => {
                    cur = Some(ResultSet {
                        columns: cols,
                        ..ResultSet::default()
                    });
                }
                BackendMessage::DataRow(vals) => match cur.as_mut() {
                    Some(rs) => rs.rows.push(vals),
                    None => return Err(perr("DataRow without RowDescription").into()),
                },
                BackendMessage::CommandComplete(tag) => {
                    let mut rs = cur.take().unwrap_or_default();
                    rs.tag = tag;
                    if !rs.columns.is_empty() {
                        sets.push(rs);
                    }
                }
                BackendMessage::EmptyQueryResponse => {}
                BackendMessage::Error(e) => error = Some(e),
                BackendMessage::ReadyForQuery { .. } => {
                    return match error {
                        Some(e) => Err(ConnError::Server(e)),
                        None => Ok((sets, None)),
                    };
                }
                BackendMessage::CopyResponse(CopyKind::In) => {
                    return Err(perr("unexpected CopyInResponse").into());
                }
                BackendMessage::CopyResponse(k) => {
                    if let Some(e) = error {
                        return Err(ConnError::Server(e));
                    }
                    return Ok((sets, Some(k)));
                }
                other => {
                    return Err(perr(format!("unexpected message {other:?}")).into());
                }
            }
        }
    }

    /// The next copy message already buffered. A server error inside the copy ends it.
    pub fn try_recv_copy(&mut self) -> Result<Option<CopyMessage>, ConnError> {
        match self.try_read_message()? {
            None => Ok(None),
            Some(BackendMessage::CopyData(d)) => Ok(Some(CopyMessage::Data(d))),
            Some(BackendMessage::CopyDone) => Ok(Some(CopyMessage::Done)),
            Some(BackendMessage::Error(e)) => Err(ConnError::Server(e)),
            Some(other) => Err(perr(format!("unexpected message in copy: {other:?}")).into()),
        }
    }

    pub async fn recv_copy(&mut self) -> Result<CopyMessage, ConnError> {
        loop {
            if let Some(m) = self.try_recv_copy()? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// Sends Terminate and closes (best effort: the connection is going away anyway).
    pub async fn close(mut self) {
        frontend::terminate(&mut self.wbuf);
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

/// Finds the password for a connection in a `.pgpass` file's text, as libpq's
/// `passwordFromFile`: the first line `host:port:database:user:password` whose fields match
/// (`*` matches anything; `\:` and `\\` escape), where a Unix socket directory matches
/// `localhost` too.
pub fn passfile_lookup(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        let [h, p, d, u, pw] = fields.as_slice() else {
            continue;
        };
        let host_ok = h == "*" || h == host || (host.starts_with('/') && h == "localhost");
        if host_ok
            && (p == "*" || *p == port)
            && (d == "*" || d == database)
            && (u == "*" || u == user)
        {
            return Some(pw.clone());
        }
    }
    None
}

/// Shows a connection string as `pg_stat_wal_receiver.conninfo` does: every setting, the
/// password replaced by `********`.
pub fn mask_password(info: &ConnInfo) -> String {
    let mut out = String::new();
    for (k, v) in info.iter() {
        if !out.is_empty() {
            out.push(' ');
        }
        if k == "password" {
            out.push_str("password=********");
        } else {
            let mut one = ConnInfo::new();
            one.set(k, v);
            out.push_str(&one.to_string());
        }
    }
    out
}

/// Quotes an SQL string literal for a replication command (`LABEL '...'`): `'` doubled.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quotes an identifier (slot names are validated, but quoting costs nothing).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// How long a connection attempt may take when the string sets no `connect_timeout`: a
/// walreceiver must not hang forever on a half-open TCP connect or a server that never
/// answers the startup packet (libpq would wait for the kernel's TCP timeout, minutes).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn framing_waits_for_whole_messages() {
        let msg = frame(b'Z', b"I");
        for cut in 0..msg.len() {
            let mut buf = BytesMut::from(&msg[..cut]);
            assert_eq!(decode_frame(&mut buf), Ok(None), "cut at {cut}");
        }
        let mut buf = BytesMut::from(&msg[..]);
        buf.extend_from_slice(&frame(b'c', b""));
        let (tag, body) = decode_frame(&mut buf).expect("ok").expect("complete");
        assert_eq!(
            parse_backend_message(tag, body),
            Ok(BackendMessage::ReadyForQuery { status: b'I' })
        );
        let (tag, body) = decode_frame(&mut buf).expect("ok").expect("complete");
        assert_eq!(
            parse_backend_message(tag, body),
            Ok(BackendMessage::CopyDone)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_rejects_bad_lengths() {
        for len in [-1i32, 0, 3, i32::MIN, (MAX_MESSAGE_LEN + 1) as i32] {
            let mut buf = BytesMut::from(&b"d"[..]);
            buf.extend_from_slice(&len.to_be_bytes());
            assert!(decode_frame(&mut buf).is_err(), "length {len}");
        }
    }

    #[test]
    fn parses_rows_errors_and_auth() {
        let mut t = Vec::new();
        t.extend_from_slice(&1i16.to_be_bytes());
        t.extend_from_slice(b"systemid\0");
        t.extend_from_slice(&[0; 6]);
        t.extend_from_slice(&25i32.to_be_bytes());
        t.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(
            parse_backend_message(b'T', Bytes::from(t)),
            Ok(BackendMessage::RowDescription(vec![Column {
                name: "systemid".into(),
                type_oid: 25
            }]))
        );
        let mut d = Vec::new();
        d.extend_from_slice(&2i16.to_be_bytes());
        d.extend_from_slice(&3i32.to_be_bytes());
        d.extend_from_slice(b"abc");
        d.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            parse_backend_message(b'D', Bytes::from(d)),
            Ok(BackendMessage::DataRow(vec![
                Some(Bytes::from_static(b"abc")),
                None
            ]))
        );
        let e = b"SERROR\0VFATAL\0C28P01\0Mpassword authentication failed\0Dd\0\0";
        let BackendMessage::Error(e) =
            parse_backend_message(b'E', Bytes::from_static(e)).expect("error")
        else {
            panic!("not an error");
        };
        assert_eq!(e.severity, "FATAL");
        assert_eq!(e.code, "28P01");
        assert_eq!(e.detail.as_deref(), Some("d"));
        let mut r = 10i32.to_be_bytes().to_vec();
        r.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        assert_eq!(
            parse_backend_message(b'R', Bytes::from(r)),
            Ok(BackendMessage::Authentication(AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            }))
        );
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let cases: &[(u8, &[u8])] = &[
            (b'R', b"\0\0"),
            (b'R', b"\0\0\0\x05ab"),
            (b'R', b"\0\0\0\x0aSCRAM"),
            (b'K', b"\0\0\0\x01"),
            (b'Z', b""),
            (b'T', b"\0\x01name"),
            (b'T', b"\0\x01name\0\0\0"),
            (b'D', b"\0\x01\0\0\0\x10abc"),
            (b'D', b"\xff\xff"),
            (b'D', b"\0\x01\xff\xff\xff\xfe"),
            (b'E', b"SERROR"),
            (b'E', b"SERROR\0"),
            (b'S', b"a\0b"),
            (b'C', b"SELECT"),
            (b'W', b"\0\0\x02\0\0"),
            (b'?', b""),
        ];
        for (tag, body) in cases {
            assert!(
                parse_backend_message(*tag, Bytes::from_static(body)).is_err(),
                "{} {:?}",
                char::from(*tag),
                body
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over tags and bodies.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let body: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            let tags = b"RSKZTDCIENHWGdcAv?";
            let tag = tags[(x >> 32) as usize % tags.len()];
            let _ = parse_backend_message(tag, Bytes::from(body.clone()));
            let mut buf = BytesMut::from(&body[..]);
            let _ = decode_frame(&mut buf);
        }
    }

    #[test]
    fn password_file() {
        let text = "# comment\nother:5432:*:rep:no\ndb1:*:replication:rep:a\\:b\n*:*:*:*:fallback\nbroken\n";
        assert_eq!(
            passfile_lookup(text, "db1", 5433, "replication", "rep").as_deref(),
            Some("a:b")
        );
        assert_eq!(
            passfile_lookup(text, "db2", 5433, "replication", "rep").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            passfile_lookup("localhost:5432:*:u:s", "/tmp", 5432, "x", "u").as_deref(),
            Some("s")
        );
        assert_eq!(passfile_lookup("broken", "h", 1, "d", "u"), None);
    }

    #[test]
    fn masks_password() {
        let info = ConnInfo::parse("host=h port=5 user=u password=secret application_name='a b'")
            .expect("parse");
        assert_eq!(
            mask_password(&info),
            "host=h port=5 user=u password=******** application_name='a b'"
        );
    }
}
