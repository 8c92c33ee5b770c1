//! One client session: PostgreSQL's transaction-block state machine around statement
//! execution, the session's settings, its statement cache, and its notices.
//!
//! Where it runs: in the frontend's connection task, driven through the methods below (see
//! `api` for the protocol-level sequence). Never shared: `&mut self` everywhere.
//!
//! Transaction states (`Xact`): none; *implicit* (statements outside BEGIN: a simple-query
//! batch or everything up to a Sync runs as one transaction, committed by `end_implicit`);
//! *block* (after BEGIN); *failed* (an error inside a block: every statement but
//! COMMIT/ROLLBACK/END/ABORT/ROLLBACK TO is 25P02; COMMIT then rolls back and reports
//! ROLLBACK; ROLLBACK TO an open savepoint returns to *block*). The
//! `txn::Transaction` behind a state is created lazily, at the first statement that touches a
//! table, so SET/SHOW/`SELECT 1` cost no transaction.
//!
//! Invariants: an error from `execute`, `copy_data` or `copy_done` marks the statement failed
//! before returning (so `mark_failed` is idempotent and a frontend that forgets it still never
//! commits a failed statement's work); the interrupt's pending cancel/timeout is cleared at
//! the start of every statement; `now()` is fixed at the start of the (implicit or explicit)
//! transaction; the commit uses the `synchronous_commit` in effect at COMMIT (SET LOCAL
//! included). A commit whose wait for the standbys was interrupted (`Detached`) completes
//! with PostgreSQL's WARNING: it is durable locally and stays invisible to others until the
//! standbys confirm (DESIGN.md decision 5). Dropping the session rolls back.

mod run;
mod utility;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base::error::sqlstate;
use base::{PgError, SqlState, Value};
use storage::SnapshotSlot;
use txn::{CommitOutcome, Transaction, TxnSettings};

use crate::api::{
    CancelHandle, Description, ExecOutcome, FieldInfo, Prepared, RowSink, SessionInfo, TxnStatus,
};
use crate::copy::CopyIn;
use crate::engine::{Backend, BackendState, Engine, now_micros};
use crate::guc::SessionGucs;
use crate::guc::session::GucSavepoint;
use crate::guc::session::{NOTICE_RANK, WARNING_RANK};
use crate::parse::cache::StatementCache;
use crate::parse::{self, Statement, TxnModes};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XactKind {
    Implicit,
    Block,
    Failed,
}

/// The session's current transaction.
struct Xact {
    kind: XactKind,
    txn: Option<Transaction>,
    /// `now()`: microseconds since 2000-01-01 UTC.
    start: i64,
    read_only: bool,
    modes: TxnModes,
    /// Statements run in the transaction (SET TRANSACTION must come first).
    queries: u32,
    /// Open savepoints, oldest first, with the settings each found; the transaction keeps
    /// the matching marks (`txn` exists whenever this is not empty).
    savepoints: Vec<(String, GucSavepoint)>,
}

pub struct Session {
    engine: Arc<Engine>,
    backend: Arc<Backend>,
    slot: Arc<SnapshotSlot>,
    gucs: SessionGucs,
    config_version: u64,
    user: String,
    database: String,
    superuser: bool,
    xact: Option<Xact>,
    cache: StatementCache,
    notices: Vec<PgError>,
    copy: Option<CopyIn>,
    /// `gucs.generation()` when the activity's application_name was last copied.
    activity_generation: std::sync::atomic::AtomicU64,
    /// Statements in the current simple-query batch (SET LOCAL warns outside blocks only
    /// for single statements, as PostgreSQL's implicit blocks count as blocks).
    batch_len: usize,
    /// What nextval/setval returned in this session (currval, lastval).
    sequences: crate::exec::sequence::SessionSequences,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.backend.pid)
            .field("user", &self.user)
            .field("status", &self.transaction_status())
            .finish()
    }
}

/// Names the startup packet carries that are not settings.
const STARTUP_NON_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

impl Engine {
    /// Opens a session for an authenticated connection.
    pub fn open_session(self: &Arc<Self>, info: SessionInfo) -> Result<Session, PgError> {
        let backend = self.register(
            &info.user,
            &info.database,
            info.client_addr,
            &info.application_name,
        )?;
        let mut gucs = SessionGucs::new(self.config(), &info.user, info.superuser);
        gucs.set_in_hot_standby(self.hooks.is_in_recovery());
        let mut session = Session {
            engine: self.clone(),
            slot: Arc::new(self.mgr.snapshots.register()),
            backend,
            gucs,
            config_version: self.config_version(),
            user: info.user.clone(),
            database: info.database.clone(),
            superuser: info.superuser,
            xact: None,
            cache: StatementCache::default(),
            notices: Vec::new(),
            copy: None,
            activity_generation: std::sync::atomic::AtomicU64::new(u64::MAX),
            batch_len: 0,
            sequences: Default::default(),
        };
        let fatal = |e: PgError| PgError {
            severity: base::error::Severity::Fatal,
            ..e
        };
        if !info.application_name.is_empty() {
            session
                .gucs
                .apply_startup("application_name", &info.application_name)
                .map_err(fatal)?;
        }
        for (name, value) in &info.startup_settings {
            if STARTUP_NON_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            session.gucs.apply_startup(name, value).map_err(fatal)?;
        }
        session.backend.activity.lock().application_name =
            session.gucs.get("application_name").unwrap_or_default();
        Ok(session)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the Transaction rolls it back.
        self.xact = None;
        self.engine.unregister(self.backend.pid);
    }
}

impl Session {
    /// Backend process id reported in `BackendKeyData` and `pg_backend_pid()`.
    pub fn pid(&self) -> i32 {
        self.backend.pid
    }

    /// Secret key reported in `BackendKeyData`.
    pub fn secret_key(&self) -> i32 {
        self.backend.secret
    }

    /// The `ParameterStatus` values to send after authentication.
    pub fn initial_parameter_status(&mut self) -> Vec<(String, String)> {
        self.gucs
            .set_in_hot_standby(self.engine.hooks.is_in_recovery());
        self.gucs.initial_report()
    }

    /// Splits and parses a simple-query string. An empty string yields an empty vector.
    pub fn parse_batch(&mut self, text: &str) -> Result<Vec<Arc<Prepared>>, PgError> {
        let _zone = base::tz::ZoneGuard::set(self.gucs.hot.zone);
        let pieces = parse::split::split(text).map_err(lex_error)?;
        self.batch_len = pieces.len();
        let mut out = Vec::with_capacity(pieces.len());
        for p in &pieces {
            let parsed =
                parse::parse_cached(&mut self.cache, p.text, &p.tokens, &[], p.char_offset)?;
            out.push(Arc::new(Prepared {
                text: Arc::from(p.text),
                template: parsed.template,
                literals: parsed.literals,
                param_types: Vec::new(),
                fields: None,
            }));
        }
        Ok(out)
    }

    /// Parses and plans one statement for the extended protocol (Parse). `param_oids` are the
    /// types the client specified (0 = let the server infer).
    pub fn prepare(&mut self, text: &str, param_oids: &[u32]) -> Result<Arc<Prepared>, PgError> {
        let _zone = base::tz::ZoneGuard::set(self.gucs.hot.zone);
        let declared = parse::declared_types(param_oids)?;
        let pieces = parse::split::split(text).map_err(lex_error)?;
        self.batch_len = 1;
        let piece = match pieces.as_slice() {
            [] => {
                return Ok(Arc::new(Prepared {
                    text: Arc::from(""),
                    template: Arc::new(parse::Template {
                        stmt: Statement::Empty,
                        client_params: declared.len(),
                        literal_types: Vec::new(),
                        declared,
                        plan: parking_lot::Mutex::new(None),
                        plan_checked_at: std::sync::atomic::AtomicU64::new(0),
                    }),
                    literals: Vec::new(),
                    param_types: Vec::new(),
                    fields: None,
                }));
            }
            [p] => p,
            _ => {
                return Err(PgError::syntax(
                    "cannot insert multiple commands into a prepared statement",
                ));
            }
        };
        let parsed = parse::parse_cached(&mut self.cache, piece.text, &piece.tokens, &declared, 0)?;
        if self.in_failed_block() && !parsed.template.stmt.ends_failed_block() {
            return Err(PgError::in_failed_transaction());
        }
        self.refresh_config();
        let (param_types, fields) = self.describe_template(&parsed.template)?;
        Ok(Arc::new(Prepared {
            text: Arc::from(piece.text),
            template: parsed.template,
            literals: parsed.literals,
            param_types,
            fields,
        }))
    }

    /// Parameter types and result columns of a prepared statement (Describe).
    pub fn describe(&mut self, stmt: &Prepared) -> Result<Description, PgError> {
        let (param_types, fields) = self.describe_template(&stmt.template)?;
        let param_types = if stmt.param_types.is_empty() {
            param_types
        } else {
            stmt.param_types.clone()
        };
        Ok(Description {
            param_types,
            fields: fields.or_else(|| stmt.fields.clone()),
        })
    }

    /// Decodes Bind parameters. `formats` follows the protocol: empty = all text, one = all
    /// that format, else one per parameter. `None` is SQL NULL.
    pub fn bind_params(
        &self,
        stmt: &Prepared,
        formats: &[i16],
        raw: &[Option<&[u8]>],
    ) -> Result<Vec<Value>, PgError> {
        // Text timestamptz parameters without an offset are read in the session's zone.
        let _zone = base::tz::ZoneGuard::set(self.gucs.hot.zone);
        let types = &stmt.param_types;
        if raw.len() != types.len() {
            return Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    raw.len(),
                    types.len()
                ),
            ));
        }
        if formats.len() > 1 && formats.len() != raw.len() {
            return Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message has {} parameter formats but {} parameters",
                    formats.len(),
                    raw.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, (r, ty)) in raw.iter().zip(types).enumerate() {
            let format = match formats {
                [] => 0,
                [f] => *f,
                many => many[i],
            };
            let v = match (r, format) {
                (None, _) => Value::Null,
                (Some(bytes), 0) => {
                    let s = std::str::from_utf8(bytes).map_err(|_| {
                        PgError::new(
                            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                            "invalid byte sequence for encoding \"UTF8\"",
                        )
                    })?;
                    base::pgio::parse_text(s, *ty)?
                }
                (Some(bytes), 1) => base::pgio::parse_binary(bytes, *ty)?,
                (Some(_), f) => {
                    return Err(PgError::new(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!("unsupported format code: {f}"),
                    ));
                }
            };
            out.push(v);
        }
        Ok(out)
    }

    /// Executes a statement with bound parameters, sending rows to `sink`.
    pub async fn execute(
        &mut self,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> Result<ExecOutcome, PgError> {
        // Values are formatted and parsed in the session's TimeZone while the statement runs
        // (only during its polls: other sessions on this thread have their own).
        let zone = self.gucs.hot.zone;
        let result = base::tz::with_zone(zone, self.execute_inner(stmt, params, sink)).await;
        if let Err(e) = &result {
            self.mark_failed(e);
        }
        self.end_activity();
        result
    }

    async fn execute_inner(
        &mut self,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> Result<ExecOutcome, PgError> {
        if self.copy.is_some() {
            return Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "a COPY is in progress",
            ));
        }
        self.refresh_config();
        self.backend.interrupt.clear();
        if self.backend.is_terminate_requested() {
            return Err(terminated_error());
        }
        let stmt_start = now_micros();
        self.begin_activity(stmt, stmt_start);
        let Some(timeout) = self.gucs.hot.statement_timeout else {
            return self.dispatch(stmt, params, sink, stmt_start, None).await;
        };
        let deadline = Instant::now() + timeout;
        let interrupt = self.backend.interrupt.clone();
        let fut = self.dispatch(stmt, params, sink, stmt_start, Some(deadline));
        tokio::pin!(fut);
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        let mut fired = false;
        loop {
            tokio::select! {
                r = &mut fut => return r,
                () = &mut sleep, if !fired => {
                    interrupt.statement_timeout();
                    fired = true;
                }
            }
        }
    }

    async fn dispatch(
        &mut self,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
        stmt_start: i64,
        deadline: Option<Instant>,
    ) -> Result<ExecOutcome, PgError> {
        let template = stmt.template.clone();
        if self.in_failed_block() && !template.stmt.ends_failed_block() {
            return Err(PgError::in_failed_transaction());
        }
        let command = |tag: &str| Ok(ExecOutcome::Command(tag.to_owned()));
        match &template.stmt {
            Statement::Empty => Ok(ExecOutcome::Empty),
            Statement::Begin(modes) => {
                self.begin(modes)?;
                command("BEGIN")
            }
            Statement::Commit { chain } => self.commit_statement(*chain).await,
            Statement::Rollback { chain } => self.rollback_statement(*chain),
            Statement::Savepoint(name) => self.savepoint(name),
            Statement::Release(name) => self.release_savepoint(name),
            Statement::RollbackTo(name) => self.rollback_to_savepoint(name),
            Statement::Sql(ast) => {
                self.ensure_xact();
                self.run_sql(&template, ast, stmt, params, sink, stmt_start, deadline)
                    .await
            }
            Statement::CopyTo(c) => {
                self.ensure_xact();
                self.copy_to(c, sink, stmt_start, deadline).await
            }
            other => {
                self.ensure_xact();
                self.utility(other, sink).await
            }
        }
    }

    /// Records that the current statement failed: an explicit transaction block becomes
    /// failed (25P02 until ROLLBACK or ROLLBACK TO SAVEPOINT); an implicit transaction is
    /// rolled back. A failed block with no savepoint rolls its transaction back at once
    /// (releasing its locks); with savepoints it keeps it, half-done statement included, for
    /// ROLLBACK TO to undo. Idempotent.
    pub fn mark_failed(&mut self, err: &PgError) {
        let _ = err;
        self.copy = None;
        let Some(x) = self.xact.as_mut() else {
            return;
        };
        match x.kind {
            XactKind::Failed => {}
            XactKind::Block if !x.savepoints.is_empty() => x.kind = XactKind::Failed,
            XactKind::Block => {
                x.kind = XactKind::Failed;
                if let Some(t) = x.txn.take() {
                    t.rollback();
                }
                self.gucs.end_xact(false);
            }
            XactKind::Implicit => {
                if let Some(t) = x.txn.take() {
                    t.rollback();
                }
                self.xact = None;
                self.gucs.end_xact(false);
            }
        }
        self.end_activity();
    }

    /// End of a simple query or a Sync: commits the implicit transaction if one is open.
    pub async fn end_implicit(&mut self) -> Result<(), PgError> {
        self.batch_len = 0;
        if self.copy.take().is_some() {
            // The client abandoned a COPY without CopyDone/CopyFail.
            self.mark_failed(&PgError::query_canceled());
        }
        if self
            .xact
            .as_ref()
            .is_some_and(|x| x.kind == XactKind::Implicit)
        {
            self.backend.interrupt.clear();
            let r = self.finish(true).await;
            self.end_activity();
            return r;
        }
        Ok(())
    }

    pub fn transaction_status(&self) -> TxnStatus {
        match self.xact.as_ref().map(|x| x.kind) {
            None | Some(XactKind::Implicit) => TxnStatus::Idle,
            Some(XactKind::Block) => TxnStatus::InBlock,
            Some(XactKind::Failed) => TxnStatus::Failed,
        }
    }

    /// Notices and warnings raised since the last call, in order (filtered by
    /// client_min_messages).
    pub fn take_notices(&mut self) -> Vec<PgError> {
        if self.notices.is_empty() {
            return Vec::new();
        }
        let rank = self.gucs.hot.client_min_messages;
        let mut v = std::mem::take(&mut self.notices);
        v.retain(|n| match n.severity {
            base::error::Severity::Warning => rank <= WARNING_RANK,
            base::error::Severity::Notice | base::error::Severity::Info => rank <= NOTICE_RANK,
            _ => true,
        });
        v
    }

    /// Reportable settings (GUC_REPORT) changed since the last call, for ParameterStatus.
    pub fn take_reported_parameters(&mut self) -> Vec<(String, String)> {
        self.gucs
            .set_in_hot_standby(self.engine.hooks.is_in_recovery());
        self.gucs.take_reported()
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(self.backend.interrupt.clone())
    }

    /// Resolves when the session is asked to terminate (`pg_terminate_backend`, fast shutdown).
    /// The frontend then sends FATAL 57P01 and closes the connection.
    pub async fn terminated(&self) {
        loop {
            let notified = self.backend.terminate_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.backend.is_terminate_requested() {
                return;
            }
            notified.await;
        }
    }

    /// The error to send when `terminated` resolves.
    pub fn termination_error(&self) -> PgError {
        terminated_error()
    }

    /// `idle_in_transaction_session_timeout` when the session is idle inside a transaction
    /// block (the frontend enforces it while waiting for the next message), else `None`.
    pub fn idle_in_transaction_timeout(&self) -> Option<Duration> {
        match self.transaction_status() {
            TxnStatus::Idle => None,
            _ => self.gucs.hot.idle_in_transaction_timeout,
        }
    }

    /// The FATAL error for an expired idle-in-transaction timeout.
    pub fn idle_in_transaction_timeout_error(&self) -> PgError {
        PgError::fatal(
            SqlState("25P03"),
            "terminating connection due to idle-in-transaction timeout",
        )
    }

    // ----- COPY -----

    /// Whether a COPY FROM STDIN is in progress (between `execute` returning `CopyIn` and
    /// `copy_done`/`copy_fail`, or an error from `copy_data`).
    pub fn copy_in_progress(&self) -> bool {
        self.copy.is_some()
    }

    /// One CopyData message's payload during COPY FROM STDIN.
    ///
    /// An error ends the COPY (the statement has failed, as after `mark_failed`): the
    /// frontend sends the ErrorResponse and discards the client's remaining CopyData and its
    /// CopyDone/CopyFail, as PostgreSQL does; it does not call `copy_done`.
    pub async fn copy_data(&mut self, data: &[u8]) -> Result<(), PgError> {
        let zone = self.gucs.hot.zone;
        let r = base::tz::with_zone(zone, self.copy_data_inner(data)).await;
        if let Err(e) = &r {
            self.mark_failed(e);
            self.end_activity();
        }
        r
    }

    async fn copy_data_inner(&mut self, data: &[u8]) -> Result<(), PgError> {
        self.backend.interrupt.check().map_err(PgError::from)?;
        let (Some(copy), Some(txn)) = (
            self.copy.as_mut(),
            self.xact.as_mut().and_then(|x| x.txn.as_mut()),
        ) else {
            return Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "unexpected CopyData: no COPY in progress",
            ));
        };
        copy.data(txn, data).await
    }

    /// CopyDone: finishes the COPY and returns its command tag (`COPY n`).
    pub async fn copy_done(&mut self) -> Result<String, PgError> {
        let zone = self.gucs.hot.zone;
        let r = base::tz::with_zone(zone, self.copy_done_inner()).await;
        if let Err(e) = &r {
            self.mark_failed(e);
        }
        self.end_activity();
        r
    }

    async fn copy_done_inner(&mut self) -> Result<String, PgError> {
        let Some(mut copy) = self.copy.take() else {
            return Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "unexpected CopyDone: no COPY in progress",
            ));
        };
        let Some(txn) = self.xact.as_mut().and_then(|x| x.txn.as_mut()) else {
            return Err(PgError::internal("COPY without a transaction"));
        };
        let rows = copy.done(txn).await?;
        txn.end_statement();
        Ok(format!("COPY {rows}"))
    }

    /// CopyFail from the client: abandons the COPY; returns the error to report (57014).
    pub fn copy_fail(&mut self, message: &str) -> PgError {
        let e = PgError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        );
        self.mark_failed(&e);
        e
    }

    // ----- transaction state -----

    fn in_failed_block(&self) -> bool {
        self.xact
            .as_ref()
            .is_some_and(|x| x.kind == XactKind::Failed)
    }

    fn in_block(&self) -> bool {
        self.xact
            .as_ref()
            .is_some_and(|x| matches!(x.kind, XactKind::Block | XactKind::Failed))
    }

    fn default_read_only(&self) -> bool {
        self.gucs.hot.default_read_only || self.engine.mgr.is_read_only()
    }

    fn ensure_xact(&mut self) {
        if self.xact.is_none() {
            let read_only = self.default_read_only();
            self.xact = Some(Xact {
                kind: XactKind::Implicit,
                txn: None,
                start: now_micros(),
                read_only,
                modes: TxnModes::default(),
                queries: 0,
                savepoints: Vec::new(),
            });
            self.backend.activity.lock().xact_start = self.xact.as_ref().map(|x| x.start);
        }
    }

    fn txn_settings(&self) -> TxnSettings {
        TxnSettings {
            lock_timeout: self.gucs.hot.lock_timeout,
        }
    }

    /// The transaction for a statement that touches tables, started if needed, with a fresh
    /// statement snapshot.
    fn statement_txn(&mut self) -> &mut Transaction {
        self.ensure_xact();
        let settings = self.txn_settings();
        let Session {
            xact,
            engine,
            slot,
            backend,
            ..
        } = self;
        // ensure_xact made sure there is one; the fallback only keeps this total.
        let x = xact.get_or_insert_with(|| Xact {
            kind: XactKind::Implicit,
            txn: None,
            start: now_micros(),
            read_only: false,
            modes: TxnModes::default(),
            queries: 0,
            savepoints: Vec::new(),
        });
        let txn = x.txn.get_or_insert_with(|| {
            Transaction::begin(
                &engine.mgr,
                slot.clone(),
                backend.interrupt.clone(),
                settings,
            )
        });
        txn.settings = settings;
        txn.new_statement();
        txn
    }

    fn check_isolation(modes: &TxnModes) -> Result<(), PgError> {
        if let Some(level) = &modes.isolation
            && level != "read committed"
            && level != "read uncommitted"
        {
            return Err(PgError::feature_not_supported(format!(
                "transaction isolation level \"{level}\""
            ))
            .with_detail("lockstep runs every transaction at READ COMMITTED."));
        }
        Ok(())
    }

    fn begin(&mut self, modes: &TxnModes) -> Result<(), PgError> {
        if self.in_block() {
            self.notices.push(PgError::warning(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                "there is already a transaction in progress",
            ));
            return Ok(());
        }
        Self::check_isolation(modes)?;
        if modes.read_only == Some(false) && self.engine.mgr.is_read_only() {
            return Err(PgError::new(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                "cannot set transaction read-write mode during recovery",
            ));
        }
        self.ensure_xact();
        let default_ro = self.default_read_only();
        if let Some(x) = self.xact.as_mut() {
            x.kind = XactKind::Block;
            x.read_only = modes.read_only.unwrap_or(default_ro) || self.engine.mgr.is_read_only();
            x.modes = modes.clone();
        }
        Ok(())
    }

    async fn commit_statement(&mut self, chain: bool) -> Result<ExecOutcome, PgError> {
        let kind = self.xact.as_ref().map(|x| x.kind);
        let modes = self
            .xact
            .as_ref()
            .map(|x| x.modes.clone())
            .unwrap_or_default();
        match kind {
            Some(XactKind::Block) => {
                self.finish(true).await?;
                if chain {
                    self.begin(&modes)?;
                }
                Ok(ExecOutcome::Command("COMMIT".into()))
            }
            Some(XactKind::Failed) => {
                self.finish(false).await?;
                if chain {
                    self.begin(&modes)?;
                }
                Ok(ExecOutcome::Command("ROLLBACK".into()))
            }
            None | Some(XactKind::Implicit) => {
                if chain {
                    return Err(PgError::new(
                        sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                        "COMMIT AND CHAIN can only be used in transaction blocks",
                    ));
                }
                self.notices.push(PgError::warning(
                    sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                    "there is no transaction in progress",
                ));
                self.finish(true).await?;
                Ok(ExecOutcome::Command("COMMIT".into()))
            }
        }
    }

    fn rollback_statement(&mut self, chain: bool) -> Result<ExecOutcome, PgError> {
        let kind = self.xact.as_ref().map(|x| x.kind);
        let modes = self
            .xact
            .as_ref()
            .map(|x| x.modes.clone())
            .unwrap_or_default();
        match kind {
            Some(XactKind::Block | XactKind::Failed) => {
                self.rollback_now();
                if chain {
                    self.begin(&modes)?;
                }
            }
            None | Some(XactKind::Implicit) => {
                if chain {
                    return Err(PgError::new(
                        sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                        "ROLLBACK AND CHAIN can only be used in transaction blocks",
                    ));
                }
                self.notices.push(PgError::warning(
                    sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                    "there is no transaction in progress",
                ));
                self.rollback_now();
            }
        }
        Ok(ExecOutcome::Command("ROLLBACK".into()))
    }

    /// `SAVEPOINT name`: only inside a transaction block (the transaction is started here if
    /// no statement has needed it yet, so the savepoint has a place to mark).
    fn savepoint(&mut self, name: &str) -> Result<ExecOutcome, PgError> {
        if !self.in_block() {
            return Err(outside_block("SAVEPOINT"));
        }
        let gucs = self.gucs.savepoint();
        let txn = self.statement_txn();
        txn.savepoint();
        txn.end_statement();
        if let Some(x) = self.xact.as_mut() {
            x.savepoints.push((name.to_owned(), gucs));
        }
        Ok(ExecOutcome::Command("SAVEPOINT".into()))
    }

    /// The depth of the newest open savepoint called `name` (PostgreSQL allows reusing a
    /// name; the newest one wins), or 3B001.
    fn find_savepoint(&self, name: &str) -> Result<usize, PgError> {
        self.xact
            .as_ref()
            .and_then(|x| x.savepoints.iter().rposition(|(n, _)| n == name))
            .ok_or_else(|| {
                PgError::new(
                    sqlstate::INVALID_SAVEPOINT_SPECIFICATION,
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    /// `RELEASE [SAVEPOINT] name`: forgets it and every savepoint set after it; what was done
    /// since stays, as part of the enclosing level.
    fn release_savepoint(&mut self, name: &str) -> Result<ExecOutcome, PgError> {
        if !self.in_block() {
            return Err(outside_block("RELEASE SAVEPOINT"));
        }
        let depth = self.find_savepoint(name)?;
        if let Some(x) = self.xact.as_mut() {
            x.savepoints.truncate(depth);
            if let Some(t) = x.txn.as_mut() {
                t.release_savepoint(depth);
            }
        }
        Ok(ExecOutcome::Command("RELEASE".into()))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes every change and setting since the savepoint,
    /// forgets the savepoints set after it (keeping this one), and leaves a failed block
    /// usable again.
    fn rollback_to_savepoint(&mut self, name: &str) -> Result<ExecOutcome, PgError> {
        if !self.in_block() {
            return Err(outside_block("ROLLBACK TO SAVEPOINT"));
        }
        let depth = self.find_savepoint(name)?;
        let Some(x) = self.xact.as_mut() else {
            return Err(PgError::internal("savepoint without a transaction"));
        };
        match x.txn.as_mut() {
            Some(t) => t.rollback_to_savepoint(depth)?,
            None => return Err(PgError::internal("savepoint without a transaction")),
        }
        x.savepoints.truncate(depth + 1);
        x.kind = XactKind::Block;
        if let Some((_, gucs)) = x.savepoints.last() {
            self.gucs.rollback_to(gucs);
        }
        Ok(ExecOutcome::Command("ROLLBACK".into()))
    }

    fn rollback_now(&mut self) {
        if let Some(x) = self.xact.take() {
            if let Some(t) = x.txn {
                t.rollback();
            }
            self.gucs.end_xact(false);
        }
    }

    /// Ends the current transaction: commit (unless it failed) or roll back.
    async fn finish(&mut self, commit: bool) -> Result<(), PgError> {
        let level = self.gucs.hot.synchronous_commit;
        let Some(x) = self.xact.take() else {
            return Ok(());
        };
        let commit = commit && x.kind != XactKind::Failed;
        self.gucs.end_xact(commit);
        // Values this transaction took from sequences must be durable before the client
        // hears COMMIT; a commit record covers them, a transaction that wrote nothing else
        // waits for them here.
        let sequence_wal = self.sequences.take_logged().filter(|_| commit);
        let Some(txn) = x.txn else {
            self.wait_sequence_wal(sequence_wal, level).await;
            return Ok(());
        };
        if !commit {
            txn.rollback();
            return Ok(());
        }
        let wrote = txn.has_writes();
        let outcome = txn.commit(level).await;
        if !wrote {
            self.wait_sequence_wal(sequence_wal, level).await;
        }
        self.engine.maybe_recompute_horizon();
        match outcome {
            Ok(CommitOutcome::Detached { .. }) => {
                self.notices.push(
                    PgError::warning(
                        sqlstate::WARNING,
                        "canceling wait for synchronous replication due to user request",
                    )
                    .with_detail(
                        "The transaction has already committed locally, but it has not been confirmed by the synchronous standby; other sessions will see it only after the standby confirms it.",
                    ),
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn wait_sequence_wal(&self, lsn: Option<base::Lsn>, level: base::SyncCommitLevel) {
        let Some(lsn) = lsn else { return };
        let interrupt = self.backend.interrupt.clone();
        tokio::select! {
            () = self.engine.mgr.wait_logged(lsn, level) => {}
            _ = interrupt.wait() => {}
        }
    }

    // ----- activity and configuration -----

    fn refresh_config(&mut self) {
        let v = self.engine.config_version();
        if v != self.config_version {
            self.config_version = v;
            self.gucs.set_config(self.engine.config());
        }
    }

    fn begin_activity(&self, stmt: &Prepared, start: i64) {
        let mut a = self.backend.activity.lock();
        a.state = BackendState::Active;
        a.query = stmt.text.clone();
        a.query_start = Some(start);
        a.state_change = start;
        a.xact_start = self.xact.as_ref().map(|x| x.start).or(Some(start));
    }

    fn end_activity(&self) {
        let state = match self.xact.as_ref().map(|x| x.kind) {
            None => BackendState::Idle,
            Some(XactKind::Implicit) => BackendState::Active,
            Some(XactKind::Block) => BackendState::IdleInTransaction,
            Some(XactKind::Failed) => BackendState::IdleInTransactionAborted,
        };
        let mut a = self.backend.activity.lock();
        if a.state != state {
            a.state = state;
            a.state_change = now_micros();
        }
        a.xact_start = self.xact.as_ref().map(|x| x.start);
        let seen = std::sync::atomic::Ordering::Relaxed;
        if self.gucs.generation() != self.activity_generation.load(seen) {
            self.activity_generation.store(self.gucs.generation(), seen);
            a.application_name = self.gucs.get("application_name").unwrap_or_default();
        }
    }

    /// Parameter types and result columns of a template, planning it if needed.
    fn describe_template(
        &mut self,
        template: &Arc<parse::Template>,
    ) -> Result<(Vec<base::DataType>, Option<Vec<FieldInfo>>), PgError> {
        match &template.stmt {
            Statement::Sql(ast) if run::has_plan(ast) => {
                let plan = self.plan_without_txn(template, ast)?;
                Ok((plan.param_types.clone(), plan.fields.clone()))
            }
            Statement::Show { name } => {
                Ok((Vec::new(), Some(utility::show_fields(name.as_deref()))))
            }
            _ => Ok((
                template
                    .slot_types()
                    .into_iter()
                    .take(template.client_params)
                    .map(|t| {
                        if t == base::DataType::Unknown {
                            base::DataType::Text
                        } else {
                            t
                        }
                    })
                    .collect(),
                None,
            )),
        }
    }
}

/// 25P01 for a savepoint command outside a transaction block, in PostgreSQL's words.
fn outside_block(what: &str) -> PgError {
    PgError::new(
        sqlstate::NO_ACTIVE_SQL_TRANSACTION,
        format!("{what} can only be used in transaction blocks"),
    )
}

fn terminated_error() -> PgError {
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
}

fn lex_error(e: parse::lexer::LexError) -> PgError {
    PgError::syntax(e.message).with_position(e.position)
}
