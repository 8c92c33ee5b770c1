//! System views answered from the engine's state: `pg_stat_activity`, `pg_stat_replication`,
//! `pg_stat_wal_receiver`, `pg_replication_slots`, `pg_stat_wal`, and the session's
//! `pg_settings`.
//!
//! Where it runs: in the session task executing a SELECT over a view; rows are built fresh
//! per scan from the engine's backend registry, from `ServerHooks` (the walsender,
//! walreceiver and slot code own the numbers; this module only lays them out), and for
//! `pg_settings` from the session's own settings (`SessionGucs::settings`).
//!
//! Every view has PostgreSQL 15's columns in PostgreSQL's order, so monitoring queries written
//! for PostgreSQL run unchanged. Types lockstep lacks are mapped: `oid` → bigint, `name` and
//! `inet` and `xid` → text, `text[]` (`pg_settings.enumvals`) → text in array-literal form
//! (`{off,local,on}`). LSN columns are `pg_lsn` and lag columns `interval`, as in
//! PostgreSQL. Rows of `pg_stat_activity`: one per session (backend_type `client backend`)
//! and one per background worker the server reports through `ServerHooks`.
//!
//! Privacy, as PostgreSQL's `pg_stat_get_wal_senders`/`pg_stat_get_wal_receiver`: a role
//! that is not superuser (lockstep has no `pg_read_all_stats`) sees that a walsender or
//! walreceiver exists (pid, and the connection columns pg_stat_activity shows anyone) but
//! NULL for every replication detail. An invalid LSN (0/0) is NULL, as PostgreSQL shows it.
//!
//! Not here: logical slots (lockstep has none, so `plugin`, `database`, `catalog_xmin`,
//! `confirmed_flush_lsn` are NULL and `two_phase` false) and `backend_xmin`/`xmin`
//! (lockstep's standbys send no hot-standby feedback: NULL).

use base::{DataType, Interval, Lsn, Value};

use crate::engine::{Engine, system_time_micros};
use crate::expr::Env;
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

const REPLICATION_COLUMNS: &[(&str, DataType)] = &[
    ("pid", DataType::Int4),
    ("usesysid", DataType::Int8),
    ("usename", DataType::Text),
    ("application_name", DataType::Text),
    ("client_addr", DataType::Text),
    ("client_hostname", DataType::Text),
    ("client_port", DataType::Int4),
    ("backend_start", DataType::TimestampTz),
    ("backend_xmin", DataType::Text),
    ("state", DataType::Text),
    ("sent_lsn", DataType::PgLsn),
    ("write_lsn", DataType::PgLsn),
    ("flush_lsn", DataType::PgLsn),
    ("replay_lsn", DataType::PgLsn),
    ("write_lag", DataType::Interval),
    ("flush_lag", DataType::Interval),
    ("replay_lag", DataType::Interval),
    ("sync_priority", DataType::Int4),
    ("sync_state", DataType::Text),
    ("reply_time", DataType::TimestampTz),
];

const WAL_RECEIVER_COLUMNS: &[(&str, DataType)] = &[
    ("pid", DataType::Int4),
    ("status", DataType::Text),
    ("receive_start_lsn", DataType::PgLsn),
    ("receive_start_tli", DataType::Int4),
    ("written_lsn", DataType::PgLsn),
    ("flushed_lsn", DataType::PgLsn),
    ("received_tli", DataType::Int4),
    ("last_msg_send_time", DataType::TimestampTz),
    ("last_msg_receipt_time", DataType::TimestampTz),
    ("latest_end_lsn", DataType::PgLsn),
    ("latest_end_time", DataType::TimestampTz),
    ("slot_name", DataType::Text),
    ("sender_host", DataType::Text),
    ("sender_port", DataType::Int4),
    ("conninfo", DataType::Text),
];

const REPLICATION_SLOTS_COLUMNS: &[(&str, DataType)] = &[
    ("slot_name", DataType::Text),
    ("plugin", DataType::Text),
    ("slot_type", DataType::Text),
    ("datoid", DataType::Int8),
    ("database", DataType::Text),
    ("temporary", DataType::Bool),
    ("active", DataType::Bool),
    ("active_pid", DataType::Int4),
    ("xmin", DataType::Text),
    ("catalog_xmin", DataType::Text),
    ("restart_lsn", DataType::PgLsn),
    ("confirmed_flush_lsn", DataType::PgLsn),
    ("wal_status", DataType::Text),
    ("safe_wal_size", DataType::Int8),
    ("two_phase", DataType::Bool),
];

const SETTINGS_COLUMNS: &[(&str, DataType)] = &[
    ("name", DataType::Text),
    ("setting", DataType::Text),
    ("unit", DataType::Text),
    ("category", DataType::Text),
    ("short_desc", DataType::Text),
    ("extra_desc", DataType::Text),
    ("context", DataType::Text),
    ("vartype", DataType::Text),
    ("source", DataType::Text),
    ("min_val", DataType::Text),
    ("max_val", DataType::Text),
    ("enumvals", DataType::Text),
    ("boot_val", DataType::Text),
    ("reset_val", DataType::Text),
    ("sourcefile", DataType::Text),
    ("sourceline", DataType::Int4),
    ("pending_restart", DataType::Bool),
];

const STAT_WAL_COLUMNS: &[(&str, DataType)] = &[
    ("wal_records", DataType::Int8),
    ("wal_fpi", DataType::Int8),
    ("wal_bytes", DataType::Numeric(None)),
    ("wal_buffers_full", DataType::Int8),
    ("wal_write", DataType::Int8),
    ("wal_sync", DataType::Int8),
    ("wal_write_time", DataType::Float8),
    ("wal_sync_time", DataType::Float8),
    ("stats_reset", DataType::TimestampTz),
];

pub fn name(v: View) -> &'static str {
    match v {
        View::StatActivity => "pg_stat_activity",
        View::StatReplication => "pg_stat_replication",
        View::StatWalReceiver => "pg_stat_wal_receiver",
        View::ReplicationSlots => "pg_replication_slots",
        View::Settings => "pg_settings",
        View::StatWal => "pg_stat_wal",
    }
}

/// The view a (schema-less or `pg_catalog`) relation name denotes.
pub fn by_name(name: &str) -> Option<View> {
    Some(match name {
        "pg_stat_activity" => View::StatActivity,
        "pg_stat_replication" => View::StatReplication,
        "pg_stat_wal_receiver" => View::StatWalReceiver,
        "pg_replication_slots" => View::ReplicationSlots,
        "pg_settings" => View::Settings,
        "pg_stat_wal" => View::StatWal,
        _ => return None,
    })
}

pub fn columns(v: View) -> &'static [(&'static str, DataType)] {
    match v {
        View::StatActivity => ACTIVITY_COLUMNS,
        View::StatReplication => REPLICATION_COLUMNS,
        View::StatWalReceiver => WAL_RECEIVER_COLUMNS,
        View::ReplicationSlots => REPLICATION_SLOTS_COLUMNS,
        View::Settings => SETTINGS_COLUMNS,
        View::StatWal => STAT_WAL_COLUMNS,
    }
}

pub fn scope(v: View, qualifier: &str) -> Scope {
    columns_scope(columns(v), qualifier)
}

/// The result columns of `pg_create_physical_replication_slot` used in FROM.
pub const CREATE_SLOT_COLUMNS: &[(&str, DataType)] =
    &[("slot_name", DataType::Text), ("lsn", DataType::PgLsn)];

/// A scope over fixed columns (a view, or a function in FROM), qualified by `qualifier`.
pub fn columns_scope(cols: &[(&str, DataType)], qualifier: &str) -> Scope {
    Scope {
        cols: cols
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

fn lsn(l: Option<Lsn>) -> Value {
    match l {
        Some(l) if l != Lsn::ZERO => Value::PgLsn(l.0),
        _ => Value::Null,
    }
}

fn lag(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| Value::Interval(Interval::from_duration(d)))
}

fn time(t: Option<std::time::SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::TimestampTz(system_time_micros(t)))
}

/// `client_addr` and `client_port` as pg_stat_activity shows them: a Unix-socket (or
/// unknown) peer has no address and port -1.
fn client(addr: Option<std::net::SocketAddr>) -> (Value, Value) {
    match addr {
        Some(sa) => (
            Value::Text(sa.ip().to_string().into()),
            Value::Int4(i32::from(sa.port())),
        ),
        None => (Value::Null, Value::Int4(-1)),
    }
}

/// The view's rows now, as the session's role may see them (a superuser: every detail).
pub fn rows(v: View, env: &Env<'_>) -> Vec<Vec<Value>> {
    let (engine, superuser) = (env.engine, env.superuser);
    match v {
        View::StatActivity => activity_rows(engine),
        View::StatReplication => replication_rows(engine, superuser),
        View::StatWalReceiver => wal_receiver_rows(engine, superuser),
        View::ReplicationSlots => slot_rows(engine),
        View::Settings => settings_rows(env),
        View::StatWal => vec![stat_wal_row(engine)],
    }
}

/// `pg_stat_wal`: one row. lockstep writes no full-page images and has no fixed WAL buffers
/// to fill, so `wal_fpi` and `wal_buffers_full` are 0. `wal_write` counts `write` calls and
/// `wal_sync` `fdatasync` calls (their ratio to commits shows group commit at work). Unlike
/// PostgreSQL, the two times (milliseconds) are always collected: two clock reads are
/// nothing next to the calls they time, so `track_wal_io_timing` is not needed.
fn stat_wal_row(engine: &Engine) -> Vec<Value> {
    let int8 = |v: u64| Value::Int8(i64::try_from(v).unwrap_or(i64::MAX));
    let ms = |d: std::time::Duration| Value::Float8(d.as_secs_f64() * 1000.0);
    let s = engine.hooks.wal_stats();
    vec![
        int8(s.records),
        Value::Int8(0),
        Value::Numeric(rust_decimal::Decimal::from(s.bytes)),
        Value::Int8(0),
        int8(s.writes),
        int8(s.syncs),
        ms(s.write_time),
        ms(s.sync_time),
        time(s.stats_reset),
    ]
}

/// PostgreSQL leaves `category` and `extra_desc` to its translated catalogs; lockstep has
/// none and shows NULL. `pending_restart` is false: a reload applies every parameter it can,
/// and the rest are reported in the server log (`postmaster` context).
fn settings_rows(env: &Env<'_>) -> Vec<Vec<Value>> {
    env.gucs
        .settings()
        .into_iter()
        .map(|s| {
            let (file, line) = match s.sourcefile {
                Some((f, l)) => (
                    Value::Text(f.into()),
                    Value::Int4(i32::try_from(l).unwrap_or(i32::MAX)),
                ),
                None => (Value::Null, Value::Null),
            };
            vec![
                Value::Text(s.name.into()),
                Value::Text(s.setting.into()),
                opt_text(s.unit),
                Value::Null,
                Value::text(s.short_desc),
                Value::Null,
                Value::text(s.context),
                Value::text(s.vartype),
                Value::text(s.source),
                opt_text(s.min_val.as_deref()),
                opt_text(s.max_val.as_deref()),
                s.enumvals.map_or(Value::Null, |v| {
                    Value::Text(format!("{{{}}}", array_items(v)).into())
                }),
                Value::Text(s.boot_val.into()),
                Value::Text(s.reset_val.into()),
                file,
                line,
                Value::Bool(false),
            ]
        })
        .collect()
}

/// Elements of a text array literal, quoted where PostgreSQL's `array_out` quotes them.
fn array_items(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| {
            if i.is_empty()
                || i.eq_ignore_ascii_case("null")
                || i.chars()
                    .any(|c| matches!(c, ' ' | ',' | '{' | '}' | '"' | '\\'))
            {
                format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                (*i).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn replication_rows(engine: &Engine, superuser: bool) -> Vec<Vec<Value>> {
    let mut stats = engine.hooks.replication_stats();
    stats.sort_by_key(|s| s.pid);
    stats
        .into_iter()
        .map(|s| {
            let (addr, port) = client(s.client_addr);
            let mut row = vec![
                Value::Int4(s.pid),
                Value::Int8(SUPERUSER_OID),
                Value::text(&s.usename),
                Value::text(&s.application_name),
                addr,
                Value::Null,
                port,
                Value::TimestampTz(system_time_micros(s.backend_start)),
                Value::Null,
            ];
            if superuser {
                row.extend([
                    Value::text(&s.state),
                    lsn(s.sent_lsn),
                    lsn(s.write_lsn),
                    lsn(s.flush_lsn),
                    lsn(s.replay_lsn),
                    lag(s.write_lag),
                    lag(s.flush_lag),
                    lag(s.replay_lag),
                    Value::Int4(s.sync_priority),
                    Value::text(&s.sync_state),
                    time(s.reply_time),
                ]);
            } else {
                row.resize(REPLICATION_COLUMNS.len(), Value::Null);
            }
            row
        })
        .collect()
}

fn wal_receiver_rows(engine: &Engine, superuser: bool) -> Vec<Vec<Value>> {
    let Some(w) = engine.hooks.wal_receiver_stat() else {
        return Vec::new();
    };
    let mut row = vec![Value::Int4(w.pid)];
    if superuser {
        let tli = |t: base::TimelineId| Value::Int4(i32::try_from(t.0).unwrap_or(i32::MAX));
        row.extend([
            Value::text(&w.status),
            lsn(Some(w.receive_start_lsn)),
            tli(w.receive_start_tli),
            lsn(Some(w.written_lsn)),
            lsn(Some(w.flushed_lsn)),
            tli(w.received_tli),
            time(w.last_msg_send_time),
            time(w.last_msg_receipt_time),
            lsn(Some(w.latest_end_lsn)),
            time(w.latest_end_time),
            opt_text(w.slot_name.as_deref()),
            opt_text(w.sender_host.as_deref()),
            w.sender_port.map_or(Value::Null, Value::Int4),
            Value::text(&w.conninfo),
        ]);
    } else {
        row.resize(WAL_RECEIVER_COLUMNS.len(), Value::Null);
    }
    vec![row]
}

fn slot_rows(engine: &Engine) -> Vec<Vec<Value>> {
    let mut slots = engine.hooks.replication_slots();
    slots.sort_by(|a, b| a.slot_name.cmp(&b.slot_name));
    slots
        .into_iter()
        .map(|s| {
            vec![
                Value::text(&s.slot_name),
                Value::Null,
                Value::text("physical"),
                Value::Null,
                Value::Null,
                Value::Bool(s.temporary),
                Value::Bool(s.active),
                s.active_pid.map_or(Value::Null, Value::Int4),
                Value::Null,
                Value::Null,
                lsn(s.restart_lsn),
                Value::Null,
                opt_text(s.wal_status.as_deref()),
                s.safe_wal_size.map_or(Value::Null, Value::Int8),
                Value::Bool(false),
            ]
        })
        .collect()
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
