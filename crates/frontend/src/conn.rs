//! The life of an authenticated session: simple query, extended query, COPY FROM STDIN
//! (PostgreSQL's `PostgresMain` loop).
//!
//! Runs on the connection's task, one message at a time, after start-up has sent
//! ReadyForQuery. The SQL work is the session's (`sql::Session`); this module owns only
//! protocol state: prepared statements and portals by name, the skip-until-Sync state, COPY
//! state, and when to write.
//!
//! **Flushing.** The output buffer is written to the socket only at PostgreSQL's flush points:
//! ReadyForQuery (end of a simple query, Sync), Flush, CopyInResponse (the client waits for
//! it), and before closing with a FATAL error. Between them every message is appended to one
//! buffer, so a pgbench transaction costs one write. The one exception bounds memory: when the
//! buffer passes `OUT_WRITE_THRESHOLD` after a message, it is written out, as PostgreSQL sends
//! when its 8 KiB send buffer fills.
//!
//! **Simple query** (`Q`): the unnamed statement and portal are dropped; the text is split by
//! `parse_batch` and each statement executed in order, each sending RowDescription, DataRows
//! and CommandComplete (EmptyQueryResponse for an empty query). The first error is sent and
//! ends the batch (`mark_failed`). Then `end_implicit`, notices, ParameterStatus changes,
//! ReadyForQuery. A COPY FROM STDIN inside a batch pauses it: after CopyDone the rest runs, as
//! in PostgreSQL.
//!
//! **Extended query**: Parse/Bind/Describe/Execute/Close as PostgreSQL specifies. After an
//! error in any of them the error is sent, the session is marked failed, and every message up
//! to the next Sync is read and dropped unparsed (Terminate excepted: the client may always
//! leave). Execute with a row limit holds the whole result on the first call and hands it out
//! `max_rows` at a time with PortalSuspended; like PostgreSQL, a batch that fills the limit
//! exactly is followed by PortalSuspended even if it was the last, and each CommandComplete
//! counts the rows of its own call. Executing a finished query portal again sends a count of 0;
//! a finished command portal cannot be run again (55000). Portals die when the transaction
//! ends (ReadyForQuery with status Idle); statements live until closed or replaced.
//!
//! **COPY FROM STDIN**: CopyData goes to `copy_data`, CopyDone ends it, CopyFail aborts it;
//! Flush and Sync are ignored meanwhile. A failure (a bad row, CopyFail, or any other message,
//! which is 08P01) is reported at once, followed by ReadyForQuery for a simple query or
//! skip-until-Sync for Execute; the client's remaining CopyData/CopyDone/CopyFail are then
//! dropped, because copy messages outside COPY are ignored. This is what PostgreSQL 15 does
//! (checked against it): reporting early lets libpq stop sending a large COPY that already
//! failed.
//!
//! **Ending.** Terminate or end of stream: the session is dropped (it rolls back). The
//! session's `terminated()` or a fast shutdown, checked before every socket read (so also a
//! client that never stops sending is ended): FATAL 57P01.
//! A malformed message or unknown message type: FATAL 08P01. Errors of FATAL severity from
//! the session close the connection after being sent.

use std::collections::HashMap;
use std::sync::Arc;

use base::error::sqlstate;
use base::{DataType, PgError, SqlState, Value};
use bytes::Bytes;
use sql::{ExecOutcome, TxnStatus};

use crate::backend::BackendSession;
use crate::shutdown::EndSignal;
use crate::sink::{WireSink, format_for, result_format_count_error};
use crate::transport::{ConnEnd, Transport};
use crate::wire::{self, DecodeError, FrontendMessage};

/// Write the output buffer out when it passes this size, even between flush points, so one
/// connection's pending output stays bounded (PostgreSQL sends when 8 KiB are buffered; a
/// larger step keeps writes few for big results).
const OUT_WRITE_THRESHOLD: usize = 64 * 1024;

/// PostgreSQL's error for an administrator-requested end of the session.
pub(crate) fn admin_shutdown() -> PgError {
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
}

/// Where a COPY FROM STDIN came from, to know what follows it.
enum CopyOrigin<St> {
    /// A simple query: the statements after the COPY still to run.
    Simple { rest: Vec<Arc<St>> },
    /// Execute of this portal; the client sends Sync after CopyDone.
    Extended { portal: String },
}

enum Mode<St> {
    Normal,
    /// An extended-protocol message failed: drop everything until Sync.
    SkipUntilSync,
    CopyIn {
        origin: CopyOrigin<St>,
    },
}

enum PortalState {
    /// Bound, not executed yet.
    Ready,
    /// Executed with a row limit; the result is held here.
    Suspended {
        held: Vec<u8>,
        /// End offset of each row in `held`.
        row_ends: Vec<usize>,
        /// Rows already sent.
        next: usize,
        tag: String,
    },
    /// Ran to completion. `rows`: it returned rows (executing it again sends a count of 0);
    /// otherwise executing it again is an error.
    Done { tag: String, rows: bool },
    /// An empty statement: every Execute sends EmptyQueryResponse.
    Empty,
}

struct Portal<St> {
    stmt: Arc<St>,
    params: Vec<Value>,
    result_formats: Vec<i16>,
    state: PortalState,
}

pub(crate) struct Conn<S: BackendSession> {
    io: Transport,
    session: S,
    statements: HashMap<String, Arc<S::Stmt>>,
    portals: HashMap<String, Portal<S::Stmt>>,
    mode: Mode<S::Stmt>,
    /// Column (type, binary?) list the row sinks reuse.
    columns: Vec<(DataType, bool)>,
    /// Raised by the connection task at fast shutdown.
    end: Arc<EndSignal>,
}

/// What a simple-query batch did.
enum Batch {
    /// Every statement ran, or one failed (the error is sent).
    Finished,
    /// A COPY FROM STDIN started; the batch resumes after it.
    InCopy,
}

fn error(code: SqlState, message: impl Into<String>) -> PgError {
    PgError::new(code, message)
}

impl<S: BackendSession> Conn<S> {
    pub(crate) fn new(io: Transport, session: S, end: Arc<EndSignal>) -> Self {
        Conn {
            io,
            session,
            statements: HashMap::new(),
            portals: HashMap::new(),
            mode: Mode::Normal,
            columns: Vec::new(),
            end,
        }
    }

    /// Serves the session until it ends; returns why, with the transport to close.
    pub(crate) async fn run(mut self) -> (Transport, ConnEnd) {
        let _active = base::spin::ActiveSession::enter();
        let end = loop {
            let (msg_type, body) = match self.next_message().await {
                Ok(m) => m,
                Err(end) => break end,
            };
            if let Err(end) = self.handle(msg_type, &body).await {
                break end;
            }
            if self.io.out.len() >= OUT_WRITE_THRESHOLD
                && let Err(e) = self.io.flush().await
            {
                break ConnEnd::Io(e);
            }
        };
        // Drop the session first: it rolls back before the socket closes.
        drop(self.session);
        (self.io, end)
    }

    /// The next message; waits for the client, the session's termination or fast shutdown.
    async fn next_message(&mut self) -> Result<(u8, Bytes), ConnEnd> {
        loop {
            if let Some(m) = self.io.try_message()? {
                return Ok(m);
            }
            // Termination is checked before every socket read, so a client that keeps sending
            // (a long COPY, back-to-back queries) is still ended promptly; `biased` makes the
            // check come first when data is also ready.
            let read = tokio::select! {
                biased;
                () = self.session.terminated() => return Err(ConnEnd::Fatal(admin_shutdown())),
                () = self.end.wait() => return Err(ConnEnd::Fatal(admin_shutdown())),
                r = self.io.fill() => r?,
            };
            if read == 0 {
                if !self.io.rbuf.is_empty() {
                    tracing::debug!("client closed the connection mid-message");
                }
                return Err(ConnEnd::Closed);
            }
        }
    }

    async fn handle(&mut self, msg_type: u8, body: &[u8]) -> Result<(), ConnEnd> {
        if matches!(self.mode, Mode::SkipUntilSync) {
            // Messages after an extended-protocol error are dropped unread until Sync.
            match msg_type {
                b'S' => {}
                b'X' => return Err(ConnEnd::Closed),
                _ => return Ok(()),
            }
        }
        let msg = match FrontendMessage::decode(msg_type, body) {
            Ok(msg) => msg,
            Err(e @ DecodeError::Malformed(_)) => return Err(ConnEnd::Fatal(e.to_pg_error())),
            Err(e @ DecodeError::Encoding(_)) => {
                return self.undecodable(msg_type, e.to_pg_error()).await;
            }
        };
        if matches!(self.mode, Mode::CopyIn { .. }) {
            return self.copy_message(msg_type, msg).await;
        }
        match msg {
            FrontendMessage::Query(text) => self.simple_query(text).await,
            FrontendMessage::Parse {
                name,
                query,
                param_types,
            } => {
                let r = self.parse(name, query, &param_types);
                self.extended_result(r)
            }
            FrontendMessage::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => {
                let r = self.bind(portal, statement, &param_formats, &params, &result_formats);
                self.extended_result(r)
            }
            FrontendMessage::Describe { kind, name } => {
                let r = self.describe(kind, name);
                self.extended_result(r)
            }
            FrontendMessage::Execute { portal, max_rows } => {
                let r = self.execute(portal, max_rows).await;
                let copy_started = matches!(r, Ok(true));
                self.extended_result(r.map(|_| ()))?;
                if copy_started {
                    // The client sends nothing until it sees CopyInResponse.
                    self.io.flush().await?;
                }
                Ok(())
            }
            FrontendMessage::Close { kind, name } => {
                let r = self.close(kind, name);
                self.extended_result(r)
            }
            FrontendMessage::Sync => self.sync().await,
            FrontendMessage::Flush => Ok(self.io.flush().await?),
            FrontendMessage::Terminate => Err(ConnEnd::Closed),
            // Leftovers of a COPY that already failed: PostgreSQL drops them silently.
            FrontendMessage::CopyData(_)
            | FrontendMessage::CopyDone
            | FrontendMessage::CopyFail(_) => Ok(()),
            FrontendMessage::FunctionCall => {
                // A fastpath call behaves like a simple query: error, then ReadyForQuery.
                self.send_error(PgError::feature_not_supported("the fastpath function call"))?;
                self.ready_for_query().await
            }
            FrontendMessage::Password(_) => Err(ConnEnd::Fatal(PgError::fatal(
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid frontend message type {}", b'p'),
            ))),
        }
    }

    /// A message with a string that is not UTF-8: an ordinary error in the message's context.
    async fn undecodable(&mut self, msg_type: u8, err: PgError) -> Result<(), ConnEnd> {
        match (&self.mode, msg_type) {
            (Mode::CopyIn { .. }, b'f') => {
                let err = self.session.copy_fail("(message not valid UTF-8)");
                self.end_copy(Err(err)).await
            }
            (Mode::CopyIn { .. }, _) => self.end_copy(Err(err)).await,
            (_, b'Q') => {
                self.send_error(err)?;
                self.finish_simple().await
            }
            _ => self.extended_result(Err(err)),
        }
    }

    /// Sends a non-fatal error and marks the session failed; a FATAL one ends the connection.
    fn send_error(&mut self, err: PgError) -> Result<(), ConnEnd> {
        if err.is_fatal() {
            return Err(ConnEnd::Fatal(err));
        }
        self.send_notices();
        wire::error_or_notice(&mut self.io.out, &err);
        self.session.mark_failed(&err);
        Ok(())
    }

    /// The outcome of an extended-protocol message: an error starts skip-until-Sync.
    fn extended_result(&mut self, r: Result<(), PgError>) -> Result<(), ConnEnd> {
        match r {
            Ok(()) => Ok(()),
            Err(err) => {
                self.send_error(err)?;
                self.mode = Mode::SkipUntilSync;
                Ok(())
            }
        }
    }

    fn send_notices(&mut self) {
        for notice in self.session.take_notices() {
            wire::error_or_notice(&mut self.io.out, &notice);
        }
    }

    /// Notices, ParameterStatus changes, ReadyForQuery, flush. Portals end with the
    /// transaction.
    async fn ready_for_query(&mut self) -> Result<(), ConnEnd> {
        self.send_notices();
        for (name, value) in self.session.take_reported_parameters() {
            wire::parameter_status(&mut self.io.out, &name, &value);
        }
        let status = self.session.transaction_status();
        if status == TxnStatus::Idle {
            self.portals.clear();
        }
        wire::ready_for_query(&mut self.io.out, status.as_byte());
        self.io.flush().await?;
        Ok(())
    }

    // ---- simple query ---------------------------------------------------------------------

    async fn simple_query(&mut self, text: &str) -> Result<(), ConnEnd> {
        self.statements.remove("");
        self.portals.remove("");
        if text.bytes().all(|b| b.is_ascii_whitespace() || b == b';') {
            wire::empty_query_response(&mut self.io.out);
        } else {
            match self.session.parse_batch(text) {
                Ok(stmts) if stmts.is_empty() => wire::empty_query_response(&mut self.io.out),
                Ok(stmts) => {
                    if let Batch::InCopy = self.run_batch(stmts).await? {
                        return Ok(());
                    }
                }
                Err(err) => self.send_error(err)?,
            }
        }
        self.finish_simple().await
    }

    /// Runs statements in order until one fails or starts a COPY.
    async fn run_batch(&mut self, stmts: Vec<Arc<S::Stmt>>) -> Result<Batch, ConnEnd> {
        let mut stmts = stmts.into_iter();
        while let Some(stmt) = stmts.next() {
            let mut sink = WireSink::simple(&mut self.io.out, &mut self.columns);
            let result = self.session.execute(&stmt, &[], &mut sink).await;
            match result {
                Ok(ExecOutcome::Command(tag)) => {
                    self.send_notices();
                    wire::command_complete(&mut self.io.out, &tag);
                }
                Ok(ExecOutcome::Empty) => {
                    self.send_notices();
                    wire::empty_query_response(&mut self.io.out);
                }
                Ok(ExecOutcome::CopyIn { columns }) => {
                    let rest = stmts.collect();
                    self.begin_copy(columns, CopyOrigin::Simple { rest });
                    // The client sends nothing until it sees CopyInResponse.
                    self.io.flush().await?;
                    return Ok(Batch::InCopy);
                }
                Err(err) => {
                    self.send_error(err)?;
                    return Ok(Batch::Finished);
                }
            }
        }
        Ok(Batch::Finished)
    }

    /// End of a simple query: commit the implicit transaction, then ReadyForQuery.
    async fn finish_simple(&mut self) -> Result<(), ConnEnd> {
        if let Err(err) = self.session.end_implicit().await {
            if err.is_fatal() {
                return Err(ConnEnd::Fatal(err));
            }
            wire::error_or_notice(&mut self.io.out, &err);
        }
        self.ready_for_query().await
    }

    // ---- extended query -------------------------------------------------------------------

    fn parse(&mut self, name: &str, query: &str, param_types: &[u32]) -> Result<(), PgError> {
        if name.is_empty() {
            // The old unnamed statement goes even if the new one fails to parse.
            self.statements.remove("");
        } else if self.statements.contains_key(name) {
            return Err(error(
                sqlstate::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            ));
        }
        let stmt = self.session.prepare(query, param_types)?;
        self.statements.insert(name.to_owned(), stmt);
        wire::parse_complete(&mut self.io.out);
        Ok(())
    }

    fn statement(&self, name: &str) -> Result<Arc<S::Stmt>, PgError> {
        self.statements.get(name).cloned().ok_or_else(|| {
            if name.is_empty() {
                error(
                    sqlstate::INVALID_SQL_STATEMENT_NAME,
                    "unnamed prepared statement does not exist",
                )
            } else {
                error(
                    sqlstate::INVALID_SQL_STATEMENT_NAME,
                    format!("prepared statement \"{name}\" does not exist"),
                )
            }
        })
    }

    fn bind(
        &mut self,
        portal: &str,
        statement: &str,
        param_formats: &[i16],
        params: &[Option<&[u8]>],
        result_formats: &[i16],
    ) -> Result<(), PgError> {
        let stmt = self.statement(statement)?;
        if !portal.is_empty() && self.portals.contains_key(portal) {
            return Err(error(
                sqlstate::DUPLICATE_CURSOR,
                format!("cursor \"{portal}\" already exists"),
            ));
        }
        if param_formats.len() > 1 && param_formats.len() != params.len() {
            return Err(error(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message has {} parameter formats but {} parameters",
                    param_formats.len(),
                    params.len()
                ),
            ));
        }
        let expected = S::param_count(&stmt);
        if params.len() != expected {
            return Err(error(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement \"{statement}\" \
                     requires {expected}",
                    params.len()
                ),
            ));
        }
        if let Some(bad) = param_formats
            .iter()
            .chain(result_formats)
            .find(|f| !matches!(f, 0 | 1))
        {
            return Err(error(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("unsupported format code: {bad}"),
            ));
        }
        if result_formats.len() > 1 {
            // Only an explicit per-column list needs the column count; the common 0- and
            // 1-code cases skip the describe.
            let columns = self.session.describe(&stmt)?.fields.map_or(0, |f| f.len());
            if result_formats.len() != columns {
                return Err(result_format_count_error(result_formats.len(), columns));
            }
        }
        let values = self.session.bind_params(&stmt, param_formats, params)?;
        self.portals.insert(
            portal.to_owned(),
            Portal {
                stmt,
                params: values,
                result_formats: result_formats.to_vec(),
                state: PortalState::Ready,
            },
        );
        wire::bind_complete(&mut self.io.out);
        Ok(())
    }

    fn describe(&mut self, kind: u8, name: &str) -> Result<(), PgError> {
        match kind {
            b'S' => {
                let stmt = self.statement(name)?;
                let d = self.session.describe(&stmt)?;
                wire::parameter_description(&mut self.io.out, &d.param_types);
                match d.fields {
                    Some(fields) => wire::row_description(&mut self.io.out, &fields, |_| 0),
                    None => wire::no_data(&mut self.io.out),
                }
            }
            b'P' => {
                let portal = self.portals.get(name).ok_or_else(|| portal_missing(name))?;
                let stmt = Arc::clone(&portal.stmt);
                let formats = portal.result_formats.clone();
                let d = self.session.describe(&stmt)?;
                match d.fields {
                    Some(fields) => {
                        if formats.len() > 1 && formats.len() != fields.len() {
                            return Err(result_format_count_error(formats.len(), fields.len()));
                        }
                        wire::row_description(&mut self.io.out, &fields, |i| {
                            format_for(&formats, i)
                        });
                    }
                    None => wire::no_data(&mut self.io.out),
                }
            }
            other => {
                return Err(error(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid DESCRIBE message subtype {other}"),
                ));
            }
        }
        Ok(())
    }

    fn close(&mut self, kind: u8, name: &str) -> Result<(), PgError> {
        match kind {
            b'S' => {
                self.statements.remove(name);
            }
            b'P' => {
                self.portals.remove(name);
            }
            other => {
                return Err(error(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid CLOSE message subtype {other}"),
                ));
            }
        }
        wire::close_complete(&mut self.io.out);
        Ok(())
    }

    /// Execute; returns whether a COPY FROM STDIN started (CopyInResponse must be flushed).
    async fn execute(&mut self, name: &str, max_rows: i32) -> Result<bool, PgError> {
        // Take the portal out while it runs (it borrows the session and the buffers); it goes
        // back unless execution failed, which leaves it unusable as in PostgreSQL.
        let Some((key, mut portal)) = self.portals.remove_entry(name) else {
            return Err(portal_missing(name));
        };
        let limit = usize::try_from(max_rows).ok().filter(|n| *n > 0);
        match &mut portal.state {
            PortalState::Ready => {}
            PortalState::Empty => {
                wire::empty_query_response(&mut self.io.out);
                self.portals.insert(key, portal);
                return Ok(false);
            }
            PortalState::Done { tag, rows: true } => {
                // An exhausted query: no more rows, as PostgreSQL reports.
                wire::command_complete(&mut self.io.out, &tag_with_count(tag, 0));
                self.portals.insert(key, portal);
                return Ok(false);
            }
            PortalState::Done { rows: false, .. } => {
                // A command runs once per portal (PostgreSQL: "portal cannot be run").
                self.portals.insert(key, portal);
                return Err(error(
                    sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("portal \"{name}\" cannot be run"),
                ));
            }
            PortalState::Suspended { .. } => {
                send_held_rows(&mut self.io.out, &mut portal.state, limit);
                self.portals.insert(key, portal);
                return Ok(false);
            }
        }

        let mut held = Vec::new();
        let mut row_ends = Vec::new();
        let (result, returned_rows, copied_out) = {
            let mut sink = match limit {
                None => {
                    WireSink::extended(&mut self.io.out, &mut self.columns, &portal.result_formats)
                }
                Some(_) => WireSink::holding(
                    &mut held,
                    &mut row_ends,
                    &mut self.columns,
                    &portal.result_formats,
                ),
            };
            let result = self
                .session
                .execute(&portal.stmt, &portal.params, &mut sink)
                .await;
            (result, sink.began, sink.copied_out)
        };
        if copied_out && limit.is_some() {
            // COPY TO ignores the row limit, as in PostgreSQL: its whole stream goes out.
            self.io.out.append(&mut held);
        }
        self.send_notices();
        match result? {
            ExecOutcome::Command(tag) => {
                if limit.is_some() && returned_rows {
                    portal.state = PortalState::Suspended {
                        held,
                        row_ends,
                        next: 0,
                        tag,
                    };
                    send_held_rows(&mut self.io.out, &mut portal.state, limit);
                } else {
                    wire::command_complete(&mut self.io.out, &tag);
                    portal.state = PortalState::Done {
                        tag,
                        rows: returned_rows,
                    };
                }
                self.portals.insert(key, portal);
            }
            ExecOutcome::Empty => {
                wire::empty_query_response(&mut self.io.out);
                portal.state = PortalState::Empty;
                self.portals.insert(key, portal);
            }
            ExecOutcome::CopyIn { columns } => {
                portal.state = PortalState::Done {
                    tag: String::new(),
                    rows: false,
                };
                self.portals.insert(key.clone(), portal);
                self.begin_copy(columns, CopyOrigin::Extended { portal: key });
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn sync(&mut self) -> Result<(), ConnEnd> {
        self.mode = Mode::Normal;
        self.finish_simple().await
    }

    // ---- COPY FROM STDIN ------------------------------------------------------------------

    /// Sends CopyInResponse (the caller flushes) and enters COPY mode.
    fn begin_copy(&mut self, columns: usize, origin: CopyOrigin<S::Stmt>) {
        self.send_notices();
        wire::copy_in_response(&mut self.io.out, columns);
        self.mode = Mode::CopyIn { origin };
    }

    async fn copy_message(
        &mut self,
        msg_type: u8,
        msg: FrontendMessage<'_>,
    ) -> Result<(), ConnEnd> {
        match msg {
            FrontendMessage::CopyData(data) => match self.session.copy_data(data).await {
                Ok(()) => Ok(()),
                // Reported at once, as PostgreSQL does; the rest of the data is dropped by the
                // normal loop, which ignores stray copy messages.
                Err(err) => self.end_copy(Err(err)).await,
            },
            FrontendMessage::CopyDone => {
                let result = self.session.copy_done().await;
                self.end_copy(result).await
            }
            FrontendMessage::CopyFail(message) => {
                let err = self.session.copy_fail(message);
                self.end_copy(Err(err)).await
            }
            FrontendMessage::Flush | FrontendMessage::Sync => Ok(()),
            FrontendMessage::Terminate => Err(ConnEnd::Closed),
            _ => {
                let err = error(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("unexpected message type 0x{msg_type:02X} during COPY from stdin"),
                );
                // Tell the session the COPY is abandoned; report our error, not its.
                let _ = self.session.copy_fail(&err.message);
                self.end_copy(Err(err)).await
            }
        }
    }

    async fn end_copy(&mut self, result: Result<String, PgError>) -> Result<(), ConnEnd> {
        let Mode::CopyIn { origin } = std::mem::replace(&mut self.mode, Mode::Normal) else {
            return Ok(());
        };
        match (origin, result) {
            (CopyOrigin::Simple { rest }, Ok(tag)) => {
                self.send_notices();
                wire::command_complete(&mut self.io.out, &tag);
                if let Batch::InCopy = self.run_batch(rest).await? {
                    return Ok(());
                }
                self.finish_simple().await
            }
            (CopyOrigin::Simple { .. }, Err(err)) => {
                self.send_error(err)?;
                self.finish_simple().await
            }
            (CopyOrigin::Extended { portal }, Ok(tag)) => {
                self.send_notices();
                wire::command_complete(&mut self.io.out, &tag);
                if let Some(p) = self.portals.get_mut(&portal) {
                    p.state = PortalState::Done { tag, rows: false };
                }
                Ok(())
            }
            (CopyOrigin::Extended { .. }, Err(err)) => self.extended_result(Err(err)),
        }
    }
}

fn portal_missing(name: &str) -> PgError {
    error(
        sqlstate::INVALID_CURSOR_NAME,
        format!("portal \"{name}\" does not exist"),
    )
}

/// Sends up to `limit` held rows of a suspended portal, then PortalSuspended if the limit was
/// filled, else CommandComplete (and the portal is done).
fn send_held_rows(out: &mut Vec<u8>, state: &mut PortalState, limit: Option<usize>) {
    let PortalState::Suspended {
        held,
        row_ends,
        next,
        tag,
    } = state
    else {
        return;
    };
    let first = *next;
    let last = limit.map_or(row_ends.len(), |l| (first + l).min(row_ends.len()));
    let from = if first == 0 { 0 } else { row_ends[first - 1] };
    let to = if last == 0 { 0 } else { row_ends[last - 1] };
    out.extend_from_slice(&held[from..to]);
    *next = last;
    let sent = last - first;
    if limit == Some(sent) {
        wire::portal_suspended(out);
    } else {
        let tag = std::mem::take(tag);
        wire::command_complete(out, &tag_with_count(&tag, sent));
        *state = PortalState::Done { tag, rows: true };
    }
}

/// The tag with its trailing row count replaced (`SELECT 5` → `SELECT 2`), as PostgreSQL
/// reports per Execute call.
fn tag_with_count(tag: &str, count: usize) -> String {
    match tag.rsplit_once(' ') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{head} {count}")
        }
        _ => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_count_per_call() {
        assert_eq!(tag_with_count("SELECT 5", 2), "SELECT 2");
        assert_eq!(tag_with_count("INSERT 0 5", 1), "INSERT 0 1");
        assert_eq!(tag_with_count("BEGIN", 1), "BEGIN");
        assert_eq!(tag_with_count("SELECT ", 1), "SELECT ");
    }

    #[test]
    fn held_rows_are_sent_in_chunks() {
        let mut state = PortalState::Suspended {
            held: b"D1D2D3".to_vec(),
            row_ends: vec![2, 4, 6],
            next: 0,
            tag: "SELECT 3".into(),
        };
        let mut out = Vec::new();
        send_held_rows(&mut out, &mut state, Some(2));
        assert_eq!(out, b"D1D2s\0\0\0\x04");
        out.clear();
        send_held_rows(&mut out, &mut state, Some(2));
        assert_eq!(out, b"D3C\0\0\0\x0dSELECT 1\0");
        assert!(matches!(state, PortalState::Done { rows: true, .. }));

        // Filling the limit exactly still suspends, as PostgreSQL does.
        let mut state = PortalState::Suspended {
            held: b"D1".to_vec(),
            row_ends: vec![2],
            next: 0,
            tag: "SELECT 1".into(),
        };
        out.clear();
        send_held_rows(&mut out, &mut state, Some(1));
        assert_eq!(out, b"D1s\0\0\0\x04");
        out.clear();
        send_held_rows(&mut out, &mut state, Some(1));
        assert_eq!(out, b"C\0\0\0\x0dSELECT 0\0");
    }
}
