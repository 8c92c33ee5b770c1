//! Test harness: drives `Session`s as the frontend would (simple and extended protocol),
//! over an `Engine` built on the in-memory transaction manager and `NullHooks`.

#![allow(dead_code)]

use std::sync::Arc;

use base::{DataType, PgError, Value};
use sql::{Engine, ExecOutcome, FieldInfo, NullHooks, RowSink, Session, SessionInfo};

/// Collects what the frontend would send.
#[derive(Default, Debug)]
pub struct Collect {
    pub fields: Option<Vec<FieldInfo>>,
    pub rows: Vec<Vec<Value>>,
    /// COPY TO STDOUT: the column count, the data stream, whether CopyDone was sent.
    pub copy_columns: Option<usize>,
    pub copy_data: Vec<u8>,
    pub copy_done: bool,
    /// The session's TimeZone while it produced the rows (the frontend formats rows in it).
    pub zone: base::tz::Zone,
}

impl RowSink for Collect {
    fn begin(&mut self, fields: &[FieldInfo]) -> Result<(), PgError> {
        self.fields = Some(fields.to_vec());
        self.zone = base::tz::current();
        Ok(())
    }
    fn row(&mut self, row: &[Value]) -> Result<(), PgError> {
        self.rows.push(row.to_vec());
        Ok(())
    }
    fn copy_out_begin(&mut self, columns: usize) -> Result<(), PgError> {
        self.copy_columns = Some(columns);
        Ok(())
    }
    fn copy_out_data(&mut self, data: &[u8]) -> Result<(), PgError> {
        self.copy_data.extend_from_slice(data);
        Ok(())
    }
    fn copy_out_end(&mut self) -> Result<(), PgError> {
        self.copy_done = true;
        Ok(())
    }
}

/// The result of one statement.
#[derive(Debug)]
pub struct StmtResult {
    pub outcome: Result<ExecOutcome, PgError>,
    pub fields: Option<Vec<FieldInfo>>,
    pub rows: Vec<Vec<Value>>,
    pub zone: base::tz::Zone,
}

impl StmtResult {
    pub fn tag(&self) -> String {
        match &self.outcome {
            Ok(ExecOutcome::Command(t)) => t.clone(),
            Ok(ExecOutcome::Empty) => "EMPTY".into(),
            Ok(ExecOutcome::CopyIn { columns }) => format!("COPY IN {columns}"),
            Err(e) => format!("ERROR {}: {}", e.code, e.message),
        }
    }

    pub fn text_rows(&self) -> Vec<String> {
        let _zone = base::tz::ZoneGuard::set(self.zone);
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(self.fields.iter().flatten())
                    .map(|(v, f)| format_value(v, f.data_type))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }
}

pub fn format_value(v: &Value, ty: DataType) -> String {
    if v.is_null() {
        return "NULL".into();
    }
    let mut out = Vec::new();
    base::pgio::format_text(v, ty, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn superuser() -> SessionInfo {
    SessionInfo {
        user: "postgres".into(),
        database: "postgres".into(),
        application_name: "test".into(),
        superuser: true,
        ..SessionInfo::default()
    }
}

pub fn new_engine() -> (Arc<Engine>, Arc<NullHooks>) {
    Engine::for_tests()
}

pub fn open(engine: &Arc<Engine>) -> Session {
    engine.open_session(superuser()).expect("open session")
}

/// A simple-protocol query: every statement until the first error, then end_implicit.
pub async fn simple(s: &mut Session, text: &str) -> Vec<StmtResult> {
    let mut out = Vec::new();
    let stmts = match s.parse_batch(text) {
        Ok(v) => v,
        Err(e) => {
            s.mark_failed(&e);
            let _ = s.end_implicit().await;
            out.push(StmtResult {
                outcome: Err(e),
                fields: None,
                rows: Vec::new(),
                zone: Default::default(),
            });
            return out;
        }
    };
    if stmts.is_empty() {
        out.push(StmtResult {
            outcome: Ok(ExecOutcome::Empty),
            fields: None,
            rows: Vec::new(),
            zone: Default::default(),
        });
    }
    for st in stmts {
        let mut sink = Collect::default();
        let outcome = s.execute(&st, &[], &mut sink).await;
        let failed = outcome.is_err();
        if let Err(e) = &outcome {
            s.mark_failed(e);
        }
        out.push(StmtResult {
            outcome,
            fields: sink.fields,
            rows: sink.rows,
            zone: sink.zone,
        });
        if failed {
            break;
        }
    }
    if let Err(e) = s.end_implicit().await {
        out.push(StmtResult {
            outcome: Err(e),
            fields: None,
            rows: Vec::new(),
            zone: Default::default(),
        });
    }
    out
}

/// The last statement's result of a simple query.
pub async fn q(s: &mut Session, text: &str) -> StmtResult {
    let mut v = simple(s, text).await;
    v.pop().expect("at least one result")
}

/// Runs and expects success; returns text rows.
pub async fn rows(s: &mut Session, text: &str) -> Vec<String> {
    let r = q(s, text).await;
    assert!(r.outcome.is_ok(), "{text}: {:?}", r.outcome);
    r.text_rows()
}

/// Runs and expects success.
pub async fn ok(s: &mut Session, text: &str) -> String {
    let r = q(s, text).await;
    match &r.outcome {
        Ok(_) => r.tag(),
        Err(e) => panic!("{text}: {e:?}"),
    }
}

/// Runs and expects an error with `code`.
pub async fn err(s: &mut Session, text: &str, code: &str) -> PgError {
    let r = q(s, text).await;
    match r.outcome {
        Err(e) => {
            assert_eq!(e.code.code(), code, "{text}: {e:?}");
            e
        }
        Ok(o) => panic!("{text}: expected {code}, got {o:?}"),
    }
}

/// Extended protocol: Parse (no types), Bind (text params), Execute, Sync.
pub async fn extended(s: &mut Session, text: &str, params: &[Option<&str>]) -> StmtResult {
    let run = async {
        let p = s.prepare(text, &[])?;
        let raw: Vec<Option<&[u8]>> = params.iter().map(|p| p.map(str::as_bytes)).collect();
        let vals = s.bind_params(&p, &[], &raw)?;
        let mut sink = Collect::default();
        let o = s.execute(&p, &vals, &mut sink).await?;
        Ok::<_, PgError>((o, sink))
    };
    let r = run.await;
    let res = match r {
        Ok((o, sink)) => StmtResult {
            outcome: Ok(o),
            fields: sink.fields,
            rows: sink.rows,
            zone: sink.zone,
        },
        Err(e) => {
            s.mark_failed(&e);
            StmtResult {
                outcome: Err(e),
                fields: None,
                rows: Vec::new(),
                zone: Default::default(),
            }
        }
    };
    if let Err(e) = s.end_implicit().await {
        return StmtResult {
            outcome: Err(e),
            fields: None,
            rows: Vec::new(),
            zone: Default::default(),
        };
    }
    res
}
