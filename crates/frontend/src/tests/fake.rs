//! A scripted stand-in for `sql::Engine`/`sql::Session`, so the protocol state machine can be
//! tested with rows, COPY, notices and transaction states while the SQL layer is a
//! placeholder. The statement text is the script:
//!
//! | statement      | does                                                              |
//! |----------------|-------------------------------------------------------------------|
//! | `rows N`       | columns (n int4, label text); rows 1..=N; tag `SELECT N`          |
//! | `nulls`        | one row (NULL, NULL)                                              |
//! | `echo $1 ...`  | one text column per parameter, one row of the bound values        |
//! | `cmd TAG`      | tag TAG                                                           |
//! | `error`        | 42P01 with detail, hint, position                                 |
//! | `unique`       | 23505 with table and constraint                                   |
//! | `fatal`        | FATAL 57P01                                                       |
//! | `notice`       | a NOTICE, then tag `DO`                                           |
//! | `begin` / `commit` / `rollback` | transaction block status                         |
//! | `set N=V`      | tag `SET`, reports ParameterStatus N=V                           |
//! | `copy`         | COPY FROM STDIN of 2 columns; a line with `bad` fails with 22P02  |
//! | `slow`         | sleeps 300 ms, tag `SLOW`                                         |
//! | empty          | EmptyQueryResponse                                                |
//!
//! `parse_batch` splits on `;`; a statement `syntax error` fails the whole batch with 42601.
//! The user `toomany` cannot open a session (53300).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use base::error::{PgResult, sqlstate};
use base::{DataType, PgError, SqlState, Value};
use parking_lot::Mutex;
use sql::{CancelHandle, Description, ExecOutcome, FieldInfo, RowSink, SessionInfo, TxnStatus};
use tokio::sync::watch;

use crate::backend::{Backend, BackendSession};

#[derive(Debug)]
pub(crate) struct FakeEngine {
    next_pid: AtomicI32,
    pub(crate) cancels: Mutex<Vec<(i32, i32)>>,
    pub(crate) sessions: Mutex<Vec<SessionInfo>>,
    terminate: watch::Sender<bool>,
}

impl FakeEngine {
    pub(crate) fn new() -> Arc<FakeEngine> {
        Arc::new(FakeEngine {
            next_pid: AtomicI32::new(1000),
            cancels: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            terminate: watch::channel(false).0,
        })
    }

    /// Makes every session's `terminated()` fire (like `pg_terminate_backend` on all).
    pub(crate) fn terminate_all(&self) {
        self.terminate.send_replace(true);
    }
}

impl Backend for FakeEngine {
    type Session = FakeSession;

    fn open_session(self: &Arc<Self>, info: SessionInfo) -> PgResult<FakeSession> {
        if info.user == "toomany" {
            return Err(PgError::fatal(
                sqlstate::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        }
        self.sessions.lock().push(info.clone());
        let pid = self.next_pid.fetch_add(1, Ordering::SeqCst);
        Ok(FakeSession {
            pid,
            info,
            status: TxnStatus::Idle,
            notices: Vec::new(),
            reported: Vec::new(),
            copy_lines: None,
            terminate: self.terminate.subscribe(),
        })
    }

    fn cancel_request(&self, pid: i32, secret: i32) {
        self.cancels.lock().push((pid, secret));
    }
}

#[derive(Debug)]
pub(crate) struct FakeStmt {
    text: String,
    params: usize,
}

#[derive(Debug)]
pub(crate) struct FakeSession {
    pid: i32,
    info: SessionInfo,
    status: TxnStatus,
    notices: Vec<PgError>,
    reported: Vec<(String, String)>,
    copy_lines: Option<usize>,
    terminate: watch::Receiver<bool>,
}

fn row_fields() -> Vec<FieldInfo> {
    vec![
        FieldInfo {
            name: "n".into(),
            table_oid: 0,
            column_id: 0,
            data_type: DataType::Int4,
        },
        FieldInfo {
            name: "label".into(),
            table_oid: 0,
            column_id: 0,
            data_type: DataType::Text,
        },
    ]
}

fn text_fields(n: usize) -> Vec<FieldInfo> {
    (0..n)
        .map(|i| FieldInfo {
            name: format!("p{}", i + 1),
            table_oid: 0,
            column_id: 0,
            data_type: DataType::Text,
        })
        .collect()
}

fn stmt(text: &str) -> Arc<FakeStmt> {
    let params = (1..=9).filter(|i| text.contains(&format!("${i}"))).count();
    Arc::new(FakeStmt {
        text: text.trim().trim_end_matches(';').trim().to_owned(),
        params,
    })
}

impl FakeSession {
    fn fields(&self, s: &FakeStmt) -> Option<Vec<FieldInfo>> {
        if s.text.starts_with("rows") || s.text == "nulls" {
            Some(row_fields())
        } else if s.text.starts_with("echo") {
            Some(text_fields(s.params))
        } else {
            None
        }
    }
}

impl BackendSession for FakeSession {
    type Stmt = FakeStmt;

    fn pid(&self) -> i32 {
        self.pid
    }

    fn secret_key(&self) -> i32 {
        self.pid * 7
    }

    fn initial_parameter_status(&mut self) -> Vec<(String, String)> {
        vec![
            ("server_version".into(), "15.0".into()),
            (
                "application_name".into(),
                self.info.application_name.clone(),
            ),
        ]
    }

    fn parse_batch(&mut self, text: &str) -> PgResult<Vec<Arc<FakeStmt>>> {
        let stmts: Vec<_> = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(stmt)
            .collect();
        if stmts.iter().any(|s| s.text == "syntax error") {
            return Err(PgError::syntax("syntax error at or near \"syntax\"").with_position(1));
        }
        Ok(stmts)
    }

    fn prepare(&mut self, text: &str, _param_oids: &[u32]) -> PgResult<Arc<FakeStmt>> {
        if text.trim() == "syntax error" {
            return Err(PgError::syntax("syntax error at or near \"syntax\"").with_position(1));
        }
        Ok(stmt(text))
    }

    fn param_count(stmt: &FakeStmt) -> usize {
        stmt.params
    }

    fn describe(&mut self, stmt: &FakeStmt) -> PgResult<Description> {
        Ok(Description {
            param_types: vec![DataType::Text; stmt.params],
            fields: self.fields(stmt),
        })
    }

    fn bind_params(
        &self,
        _stmt: &FakeStmt,
        _formats: &[i16],
        raw: &[Option<&[u8]>],
    ) -> PgResult<Vec<Value>> {
        raw.iter()
            .map(|v| match v {
                None => Ok(Value::Null),
                Some(b) => match std::str::from_utf8(b) {
                    Ok("bindfail") | Err(_) => Err(PgError::new(
                        sqlstate::INVALID_TEXT_REPRESENTATION,
                        "invalid input syntax",
                    )),
                    Ok(s) => Ok(Value::text(s)),
                },
            })
            .collect()
    }

    async fn execute(
        &mut self,
        stmt: &FakeStmt,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> PgResult<ExecOutcome> {
        if self.status == TxnStatus::Failed && !matches!(stmt.text.as_str(), "rollback" | "commit")
        {
            return Err(PgError::in_failed_transaction());
        }
        let text = stmt.text.as_str();
        let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
        let tag = match word {
            "" => return Ok(ExecOutcome::Empty),
            "rows" => {
                let n: i32 = arg.parse().unwrap_or(0);
                sink.begin(&row_fields())?;
                for i in 1..=n {
                    sink.row(&[Value::Int4(i), Value::text(&format!("row {i}"))])?;
                }
                format!("SELECT {n}")
            }
            "nulls" => {
                sink.begin(&row_fields())?;
                sink.row(&[Value::Null, Value::Null])?;
                "SELECT 1".into()
            }
            "echo" => {
                sink.begin(&text_fields(params.len()))?;
                sink.row(params)?;
                "SELECT 1".into()
            }
            "cmd" => arg.to_owned(),
            "error" => {
                return Err(PgError::undefined_table("x")
                    .with_detail("some detail")
                    .with_hint("some hint")
                    .with_position(15));
            }
            "unique" => {
                return Err(PgError::new(
                    sqlstate::UNIQUE_VIOLATION,
                    "duplicate key value violates unique constraint \"t_pkey\"",
                )
                .with_table("t")
                .with_constraint("t_pkey"));
            }
            "fatal" => return Err(PgError::fatal(sqlstate::ADMIN_SHUTDOWN, "fatal from sql")),
            "notice" => {
                self.notices.push(
                    PgError::notice("a notice")
                        .with_detail("notice detail")
                        .with_hint("notice hint"),
                );
                "DO".into()
            }
            "begin" => {
                self.status = TxnStatus::InBlock;
                "BEGIN".into()
            }
            "commit" | "rollback" => {
                let tag = if self.status == TxnStatus::Failed || word == "rollback" {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                self.status = TxnStatus::Idle;
                tag.into()
            }
            "set" => {
                let (n, v) = arg.split_once('=').unwrap_or((arg, ""));
                self.reported.push((n.to_owned(), v.to_owned()));
                "SET".into()
            }
            "copy" => {
                self.copy_lines = Some(0);
                return Ok(ExecOutcome::CopyIn { columns: 2 });
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "SLOW".into()
            }
            _ => {
                return Err(PgError::syntax(format!(
                    "unknown fake statement \"{text}\""
                )));
            }
        };
        Ok(ExecOutcome::Command(tag))
    }

    async fn copy_data(&mut self, data: &[u8]) -> PgResult<()> {
        if data.windows(3).any(|w| w == b"bad") {
            return Err(PgError::new(
                SqlState("22P02"),
                "invalid input syntax for type integer: \"bad\"",
            ));
        }
        let lines = data.iter().filter(|b| **b == b'\n').count();
        if let Some(n) = &mut self.copy_lines {
            *n += lines;
        }
        Ok(())
    }

    async fn copy_done(&mut self) -> PgResult<String> {
        let n = self.copy_lines.take().unwrap_or(0);
        Ok(format!("COPY {n}"))
    }

    fn copy_fail(&mut self, message: &str) -> PgError {
        self.copy_lines = None;
        PgError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        )
    }

    fn mark_failed(&mut self, _err: &PgError) {
        if self.status == TxnStatus::InBlock {
            self.status = TxnStatus::Failed;
        }
    }

    async fn end_implicit(&mut self) -> PgResult<()> {
        Ok(())
    }

    fn transaction_status(&self) -> TxnStatus {
        self.status
    }

    fn take_notices(&mut self) -> Vec<PgError> {
        std::mem::take(&mut self.notices)
    }

    fn take_reported_parameters(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.reported)
    }

    fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::default()
    }

    async fn terminated(&self) {
        let mut rx = self.terminate.clone();
        let _ = rx.wait_for(|t| *t).await;
        if !*rx.borrow() {
            std::future::pending::<()>().await;
        }
    }
}
