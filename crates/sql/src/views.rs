//! System views answered from the engine's state: `pg_stat_activity`.
//!
//! The view has PostgreSQL 15's columns in PostgreSQL's order, so monitoring queries written
//! for PostgreSQL run unchanged. Types lockstep lacks are mapped: `oid` → bigint, `name` and
//! `inet` and `xid` → text. Rows: one per session (backend_type `client backend`) and one per
//! background worker the server reports through `ServerHooks`.

use base::{DataType, Value};

use crate::engine::{Engine, system_time_micros};
use crate::plan::View;
use crate::plan::bind_expr::{Scope, ScopeCol};

/// OID PostgreSQL gives its first database and its bootstrap superuser; lockstep has one
/// database and reports these fixed values.
const DATABASE_OID: i64 = 5;
const SUPERUSER_OID: i64 = 10;

const ACTIVITY_COLUMNS: &[(&str, DataType)] = &[
    ("datid", DataType::Int8),
    ("datname", DataType::Text),
    ("pid", DataType::Int4),
    ("leader_pid", DataType::Int4),
    ("usesysid", DataType::Int8),
    ("usename", DataType::Text),
    ("application_name", DataType::Text),
    ("client_addr", DataType::Text),
    ("client_hostname", DataType::Text),
    ("client_port", DataType::Int4),
    ("backend_start", DataType::TimestampTz),
    ("xact_start", DataType::TimestampTz),
    ("query_start", DataType::TimestampTz),
    ("state_change", DataType::TimestampTz),
    ("wait_event_type", DataType::Text),
    ("wait_event", DataType::Text),
    ("state", DataType::Text),
    ("backend_xid", DataType::Text),
    ("backend_xmin", DataType::Text),
    ("query_id", DataType::Int8),
    ("query", DataType::Text),
    ("backend_type", DataType::Text),
];

pub fn name(v: View) -> &'static str {
    match v {
        View::StatActivity => "pg_stat_activity",
    }
}

fn columns(v: View) -> &'static [(&'static str, DataType)] {
    match v {
        View::StatActivity => ACTIVITY_COLUMNS,
    }
}

pub fn scope(v: View, qualifier: &str) -> Scope {
    Scope {
        cols: columns(v)
            .iter()
            .enumerate()
            .map(|(i, (n, t))| ScopeCol {
                name: (*n).to_owned(),
                qualifier: Some(qualifier.to_owned()),
                ty: *t,
                table_oid: 0,
                attnum: i16::try_from(i + 1).unwrap_or(0),
                qualified_only: false,
            })
            .collect(),
    }
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::text)
}

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, Value::TimestampTz)
}

/// The view's rows now.
pub fn rows(v: View, engine: &Engine) -> Vec<Vec<Value>> {
    match v {
        View::StatActivity => activity_rows(engine),
    }
}

fn activity_rows(engine: &Engine) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for b in engine.backends() {
        let a = b.activity.lock().clone();
        let (addr, port) = match b.client_addr {
            Some(sa) => (
                Value::Text(sa.ip().to_string().into()),
                Value::Int4(i32::from(sa.port())),
            ),
            None => (Value::Null, Value::Int4(-1)),
        };
        out.push(vec![
            Value::Int8(DATABASE_OID),
            Value::text(&b.database),
            Value::Int4(b.pid),
            Value::Null,
            Value::Int8(SUPERUSER_OID),
            Value::text(&b.user),
            Value::text(&a.application_name),
            addr,
            Value::Null,
            port,
            Value::TimestampTz(b.backend_start),
            ts(a.xact_start),
            ts(a.query_start),
            Value::TimestampTz(a.state_change),
            opt_text(a.wait_event.map(|_| "Lock")),
            opt_text(a.wait_event),
            Value::text(a.state.as_str()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Text(a.query.clone()),
            Value::text("client backend"),
        ]);
    }
    for w in engine.hooks.background_workers() {
        let (addr, port) = match w.client_addr {
            Some(sa) => (
                Value::Text(sa.ip().to_string().into()),
                Value::Int4(i32::from(sa.port())),
            ),
            None => (Value::Null, Value::Null),
        };
        out.push(vec![
            Value::Null,
            Value::Null,
            Value::Int4(w.pid),
            Value::Null,
            if w.user.is_some() {
                Value::Int8(SUPERUSER_OID)
            } else {
                Value::Null
            },
            opt_text(w.user.as_deref()),
            Value::text(""),
            addr,
            Value::Null,
            port,
            Value::TimestampTz(system_time_micros(w.start_time)),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            opt_text(w.state.as_deref()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::text(w.query.as_deref().unwrap_or("")),
            Value::text(&w.backend_type),
        ]);
    }
    out
}
