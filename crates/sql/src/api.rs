//! The public surface of the SQL layer, as the frontend (protocol) layer uses it.
//!
//! Life of a connection, as the frontend drives it:
//!
//! 1. After authentication: `Engine::open_session(SessionInfo)` → `Session` (registers the
//!    backend in `pg_stat_activity`, applies startup-packet settings, allocates pid/secret).
//!    Errors are FATAL: 53300 `sorry, too many clients already`, 57P01 while shutting down,
//!    42704/22023 for bad startup settings. Then send `initial_parameter_status()` as
//!    ParameterStatus and `pid()`/`secret_key()` as BackendKeyData.
//! 2. Simple query (`Q`): `parse_batch(text)` → statements (an empty vector: send
//!    EmptyQueryResponse); for each, `execute(stmt, &[], sink)`; after the last one (or the
//!    first error) `end_implicit()`. A syntax error anywhere fails the whole string before
//!    anything runs, as in PostgreSQL.
//! 3. Extended protocol: `prepare(text, param_oids)` on Parse; `describe(&prepared)` on
//!    Describe (statement or portal); `bind_params` on Bind; `execute` on Execute;
//!    `end_implicit()` on Sync. After an error skip to Sync.
//! 4. COPY FROM STDIN: `execute` returns `ExecOutcome::CopyIn`; then `copy_data` per CopyData,
//!    `copy_done` on CopyDone (returns the command tag), `copy_fail` on CopyFail. After an
//!    error from `copy_data`, discard the rest of the copy stream (see `copy_data`).
//!    COPY TO STDOUT needs nothing extra: `execute` drives the sink's `copy_out_*` methods
//!    and returns the `COPY n` tag as a command.
//! 5. After every message batch: `take_notices()` and `take_reported_parameters()` are sent
//!    as NoticeResponse / ParameterStatus before ReadyForQuery with `transaction_status()`.
//! 6. While idle, select on `terminated()` (send `termination_error()`, FATAL 57P01, and
//!    close) and, when `idle_in_transaction_timeout()` is `Some`, on that timer (send
//!    `idle_in_transaction_timeout_error()` and close).
//! 7. Connection end: drop the `Session` (it rolls back any open transaction).
//!
//! Errors: every `execute`, `copy_data` and `copy_done` error has already marked the
//! statement failed (an explicit block becomes failed, an implicit transaction is rolled
//! back), so `mark_failed` is idempotent; calling it after every error, as the contract
//! always said, remains correct. Errors with `is_fatal()` (57P01) mean: close the connection.
//!
//! Changes to the original placeholder contract: `SessionInfo` gained `superuser` (set it from
//! the role's `rolsuper`; it defaults to false); `initial_parameter_status` takes `&mut self`;
//! new `Session::{termination_error, idle_in_transaction_timeout,
//! idle_in_transaction_timeout_error, copy_in_progress}`; `Engine` is built with
//! `Engine::new(manager, ServerConfig, Arc<dyn ServerHooks>)` (`Engine::for_tests()` for tests)
//! and has `reload`, `terminate_all`, `backends`, `session_count`; `CancelHandle` wraps the
//! session's `txn::Interrupt`.

use std::sync::Arc;

use base::error::PgResult;
use base::{DataType, Value};

pub use crate::engine::{
    Backend, BackendState, BackgroundWorkerInfo, Engine, HookFuture, NullHooks, ServerHooks,
};
pub use crate::session::Session;

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
    /// The role is a superuser (`rolsuper`): may CHECKPOINT, change superuser settings,
    /// signal other roles' backends. Set it from the role store; it defaults to false.
    pub superuser: bool,
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
    /// COPY TO STDOUT sends its output through these three instead of `begin`/`row`:
    /// CopyOutResponse (text format, `columns` columns) once, then one CopyData message per
    /// call (a whole line), then CopyDone once. The command tag (`COPY n`) follows as usual.
    fn copy_out_begin(&mut self, columns: usize) -> PgResult<()>;
    fn copy_out_data(&mut self, data: &[u8]) -> PgResult<()>;
    fn copy_out_end(&mut self) -> PgResult<()>;
}

/// A parsed (and, once planned, planned) statement. Opaque to the frontend.
///
/// Shares its parsed form and plan with every other statement of the same shape in the
/// session's cache (`template`); `literals` are this text's constants when the shape was
/// normalised (see `parse::normalize`).
#[derive(Debug)]
pub struct Prepared {
    pub(crate) text: Arc<str>,
    pub(crate) template: Arc<crate::parse::Template>,
    pub(crate) literals: Vec<Value>,
    pub(crate) param_types: Vec<DataType>,
    pub(crate) fields: Option<Vec<FieldInfo>>,
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
    interrupt: Arc<txn::Interrupt>,
}

impl CancelHandle {
    pub(crate) fn new(interrupt: Arc<txn::Interrupt>) -> Self {
        CancelHandle { interrupt }
    }

    pub fn cancel(&self) {
        self.interrupt.cancel();
    }
}

// The frontend holds these across awaits in its connection task.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Prepared>();
    assert_send_sync::<Engine>();
    assert_send_sync::<Session>();
};
