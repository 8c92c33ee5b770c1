//! The public surface of the SQL layer, as the frontend (protocol) layer uses it.
//!
//! Life of a connection, as the frontend drives it:
//!
//! 1. After authentication: `Engine::open_session(SessionInfo)` → `Session` (registers the
//!    backend in `pg_stat_activity`, applies startup-packet settings, allocates pid/secret).
//! 2. Simple query (`Q`): `parse_batch(text)` → statements; for each, `execute(stmt, &[], sink)`;
//!    after the last one (or the first error) `end_implicit()`. An error calls
//!    `mark_failed(err)` before `end_implicit()`.
//! 3. Extended protocol: `prepare(text, param_oids)` on Parse; `describe(&prepared)` on
//!    Describe(statement); `bind_params` on Bind; `execute` on Execute; `end_implicit()` on
//!    Sync. After an error the frontend calls `mark_failed(err)` and skips to Sync.
//! 4. COPY FROM STDIN: `execute` returns `ExecOutcome::CopyIn`; then `copy_data` per CopyData,
//!    `copy_done` on CopyDone (returns the command tag), `copy_fail` on CopyFail.
//! 5. After every message batch: `take_notices()` and `take_reported_parameters()` are sent
//!    as NoticeResponse / ParameterStatus before ReadyForQuery with `transaction_status()`.
//! 6. Connection end: drop the `Session` (it rolls back any open transaction).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base::error::PgResult;
use base::{DataType, PgError, Value};

/// Who is connecting, from the startup packet and the socket.
#[derive(Clone, Debug, Default)]
pub struct SessionInfo {
    pub user: String,
    pub database: String,
    pub application_name: String,
    /// `None` for Unix-socket connections.
    pub client_addr: Option<std::net::SocketAddr>,
    /// Settings from the startup packet (`options=-c name=value`, and any other parameter
    /// PostgreSQL treats as a setting), applied as if by `SET` at session start.
    pub startup_settings: Vec<(String, String)>,
}

/// One result column, as a `RowDescription` field needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldInfo {
    pub name: String,
    /// OID of the table the column comes from, or 0.
    pub table_oid: u32,
    /// Attribute number within that table (1-based), or 0.
    pub column_id: i16,
    pub data_type: DataType,
}

/// What `Describe` (statement) reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    pub param_types: Vec<DataType>,
    /// `None` when the statement returns no rows (`NoData`).
    pub fields: Option<Vec<FieldInfo>>,
}

/// How an `execute` ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecOutcome {
    /// The statement completed; send `CommandComplete` with this tag (e.g. `INSERT 0 1`).
    Command(String),
    /// The statement text was empty: send `EmptyQueryResponse`.
    Empty,
    /// COPY FROM STDIN started: send `CopyInResponse` (text format, this many columns).
    CopyIn { columns: usize },
}

/// `ReadyForQuery`'s transaction status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InBlock,
    /// 'E': in a failed transaction block.
    Failed,
}

impl TxnStatus {
    pub fn as_byte(self) -> u8 {
        match self {
            TxnStatus::Idle => b'I',
            TxnStatus::InBlock => b'T',
            TxnStatus::Failed => b'E',
        }
    }
}

/// Receives result rows. The frontend implements it: it encodes each row in the formats the
/// client asked for and appends a `DataRow` to its output buffer.
pub trait RowSink: Send {
    /// Called once before the first row (also when there are no rows) with the columns.
    fn begin(&mut self, fields: &[FieldInfo]) -> PgResult<()>;
    /// One row, one value per field given to `begin`.
    fn row(&mut self, row: &[Value]) -> PgResult<()>;
}

/// A parsed (and, once planned, planned) statement. Opaque to the frontend.
#[derive(Debug)]
pub struct Prepared {
    pub(crate) text: String,
    pub(crate) param_types: Vec<DataType>,
}

impl Prepared {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn param_types(&self) -> &[DataType] {
        &self.param_types
    }
}

/// Sets the cancel flag of a session from elsewhere (a CancelRequest, `pg_cancel_backend`).
#[derive(Clone, Debug, Default)]
pub struct CancelHandle {
    flag: Arc<AtomicBool>,
}

impl CancelHandle {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
}

/// The server-wide state the SQL layer needs; one per server, shared by all sessions.
#[derive(Debug, Default)]
pub struct Engine {}

impl Engine {
    /// Opens a session for an authenticated connection.
    pub fn open_session(self: &Arc<Self>, info: SessionInfo) -> PgResult<Session> {
        let _ = info;
        Ok(Session {
            cancel: CancelHandle::default(),
        })
    }

    /// Handles a CancelRequest: cancels the running statement of backend `pid` if `secret`
    /// matches. Unknown pids and wrong secrets are ignored, as in PostgreSQL.
    pub fn cancel_request(&self, pid: i32, secret: i32) {
        let _ = (pid, secret);
    }
}

/// One client session.
#[derive(Debug)]
pub struct Session {
    cancel: CancelHandle,
}

impl Session {
    /// Backend process id reported in `BackendKeyData` and `pg_backend_pid()`.
    pub fn pid(&self) -> i32 {
        0
    }

    /// Secret key reported in `BackendKeyData`.
    pub fn secret_key(&self) -> i32 {
        0
    }

    /// The `ParameterStatus` values to send after authentication (server_version,
    /// client_encoding, DateStyle, TimeZone, integer_datetimes, standard_conforming_strings,
    /// application_name, is_superuser, session_authorization, in_hot_standby, ...).
    pub fn initial_parameter_status(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Splits and parses a simple-query string. An empty string yields an empty vector.
    pub fn parse_batch(&mut self, text: &str) -> PgResult<Vec<Arc<Prepared>>> {
        Err(PgError::feature_not_supported(format!(
            "statement \"{text}\""
        )))
    }

    /// Parses and plans one statement for the extended protocol (Parse). `param_oids` are the
    /// types the client specified (0 = let the server infer).
    pub fn prepare(&mut self, text: &str, param_oids: &[u32]) -> PgResult<Arc<Prepared>> {
        let _ = param_oids;
        Err(PgError::feature_not_supported(format!(
            "statement \"{text}\""
        )))
    }

    /// Parameter types and result columns of a prepared statement (Describe).
    pub fn describe(&mut self, stmt: &Prepared) -> PgResult<Description> {
        Ok(Description {
            param_types: stmt.param_types.clone(),
            fields: None,
        })
    }

    /// Decodes Bind parameters. `formats` follows the protocol: empty = all text, one = all
    /// that format, else one per parameter. `None` is SQL NULL.
    pub fn bind_params(
        &self,
        stmt: &Prepared,
        formats: &[i16],
        raw: &[Option<&[u8]>],
    ) -> PgResult<Vec<Value>> {
        let _ = (stmt, formats, raw);
        Ok(Vec::new())
    }

    /// Executes a statement with bound parameters, sending rows to `sink`.
    pub async fn execute(
        &mut self,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> PgResult<ExecOutcome> {
        let _ = (params, sink);
        Err(PgError::feature_not_supported(format!(
            "statement \"{}\"",
            stmt.text
        )))
    }

    /// One CopyData message's payload during COPY FROM STDIN.
    pub async fn copy_data(&mut self, data: &[u8]) -> PgResult<()> {
        let _ = data;
        Ok(())
    }

    /// CopyDone: finishes the COPY and returns its command tag (`COPY n`).
    pub async fn copy_done(&mut self) -> PgResult<String> {
        Ok("COPY 0".into())
    }

    /// CopyFail from the client: abandons the COPY; returns the error to report (57014).
    pub fn copy_fail(&mut self, message: &str) -> PgError {
        PgError::new(
            base::error::sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        )
    }

    /// Records that the current statement failed: an explicit transaction block becomes
    /// failed (25P02 until ROLLBACK); an implicit transaction is rolled back.
    pub fn mark_failed(&mut self, err: &PgError) {
        let _ = err;
    }

    /// End of a simple query or a Sync: commits the implicit transaction if one is open.
    pub async fn end_implicit(&mut self) -> PgResult<()> {
        Ok(())
    }

    pub fn transaction_status(&self) -> TxnStatus {
        TxnStatus::Idle
    }

    /// Notices and warnings raised since the last call, in order.
    pub fn take_notices(&mut self) -> Vec<PgError> {
        Vec::new()
    }

    /// Reportable settings (GUC_REPORT) changed since the last call, for ParameterStatus.
    pub fn take_reported_parameters(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Resolves when the session is asked to terminate (`pg_terminate_backend`, fast shutdown).
    /// The frontend then sends FATAL 57P01 and closes the connection.
    pub async fn terminated(&self) {
        std::future::pending::<()>().await
    }
}
