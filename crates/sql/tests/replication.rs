//! Replication monitoring through SQL, against `NullHooks` populated by the tests:
//! `pg_stat_replication`, `pg_stat_wal_receiver`, `pg_replication_slots` (columns, types and
//! order as PostgreSQL 15, NULL handling, filters, privacy for non-superusers), the slot
//! functions, `pg_promote`, the `pg_last_*` functions, the `pg_lsn` and `interval` types, and
//! the settings replication depends on.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use base::{DataType, Lsn, TimelineId};
use common::{err, ok, open, q, rows};
use sql::engine::{ReplicationSlotInfo, ReplicationStat, WalReceiverStat};
use sql::{Engine, NullHooks, Session, SessionInfo};

fn columns(r: &common::StmtResult) -> Vec<(String, DataType)> {
    r.fields
        .iter()
        .flatten()
        .map(|f| (f.name.clone(), f.data_type))
        .collect()
}

fn names(r: &common::StmtResult) -> Vec<String> {
    columns(r).into_iter().map(|(n, _)| n).collect()
}

fn plain_user(engine: &std::sync::Arc<Engine>) -> Session {
    engine
        .open_session(SessionInfo {
            user: "alice".into(),
            database: "postgres".into(),
            application_name: "test".into(),
            superuser: false,
            ..SessionInfo::default()
        })
        .expect("open")
}

fn t(secs: u64) -> SystemTime {
    // 2000-01-01 00:00:00 UTC + secs.
    SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800 + secs)
}

fn walsender(pid: i32, name: &str, replay: u64, sync_state: &str) -> ReplicationStat {
    ReplicationStat {
        pid,
        usename: "postgres".into(),
        application_name: name.into(),
        client_addr: Some("127.0.0.1:50000".parse().expect("addr")),
        backend_start: t(60),
        state: "streaming".into(),
        sent_lsn: Some(Lsn(0x300_0100)),
        write_lsn: Some(Lsn(0x300_0100)),
        flush_lsn: Some(Lsn(0x300_0000)),
        replay_lsn: Some(Lsn(replay)),
        write_lag: Some(Duration::from_micros(1234)),
        flush_lag: Some(Duration::from_millis(1500)),
        replay_lag: None,
        sync_priority: 1,
        sync_state: sync_state.into(),
        reply_time: Some(t(61)),
    }
}

fn populate(hooks: &NullHooks) {
    *hooks.replication.lock() = vec![
        walsender(2002, "s2", 0x200_0000, "potential"),
        walsender(2001, "s1", 0x300_0000, "sync"),
    ];
}

#[tokio::test]
async fn pg_stat_replication_has_postgres_15_columns() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    let r = q(&mut s, "SELECT * FROM pg_stat_replication").await;
    assert!(r.outcome.is_ok(), "{:?}", r.outcome);
    assert!(r.rows.is_empty());
    use DataType as T;
    let want: Vec<(&str, DataType)> = vec![
        ("pid", T::Int4),
        ("usesysid", T::Int8),
        ("usename", T::Text),
        ("application_name", T::Text),
        ("client_addr", T::Text),
        ("client_hostname", T::Text),
        ("client_port", T::Int4),
        ("backend_start", T::TimestampTz),
        ("backend_xmin", T::Text),
        ("state", T::Text),
        ("sent_lsn", T::PgLsn),
        ("write_lsn", T::PgLsn),
        ("flush_lsn", T::PgLsn),
        ("replay_lsn", T::PgLsn),
        ("write_lag", T::Interval),
        ("flush_lag", T::Interval),
        ("replay_lag", T::Interval),
        ("sync_priority", T::Int4),
        ("sync_state", T::Text),
        ("reply_time", T::TimestampTz),
    ];
    let got = columns(&r);
    assert_eq!(
        got,
        want.into_iter()
            .map(|(n, t)| (n.to_owned(), t))
            .collect::<Vec<_>>()
    );
    // The OIDs clients see.
    assert_eq!(DataType::PgLsn.oid(), 3220);
    assert_eq!(DataType::Interval.oid(), 1186);
    // pg_catalog-qualified works too.
    ok(&mut s, "SELECT pid FROM pg_catalog.pg_stat_replication").await;
}

#[tokio::test]
async fn pg_stat_replication_rows_filters_and_nulls() {
    let (engine, hooks) = common::new_engine();
    populate(&hooks);
    let mut s = open(&engine);
    assert_eq!(
        rows(&mut s, "SELECT * FROM pg_stat_replication ORDER BY pid").await,
        vec![
            "2001|10|postgres|s1|127.0.0.1|NULL|50000|2000-01-01 00:01:00+00|NULL|streaming|0/3000100|0/3000100|0/3000000|0/3000000|00:00:00.001234|00:00:01.5|NULL|1|sync|2000-01-01 00:01:01+00",
            "2002|10|postgres|s2|127.0.0.1|NULL|50000|2000-01-01 00:01:00+00|NULL|streaming|0/3000100|0/3000100|0/3000000|0/2000000|00:00:00.001234|00:00:01.5|NULL|1|potential|2000-01-01 00:01:01+00",
        ]
    );
    // What DBAs write: LSN comparisons with literals, lag in bytes, lag as interval.
    assert_eq!(
        rows(
            &mut s,
            "SELECT application_name, pg_wal_lsn_diff(sent_lsn, replay_lsn), sent_lsn - replay_lsn \
             FROM pg_stat_replication WHERE replay_lsn >= '0/3000000'"
        )
        .await,
        vec!["s1|256|256"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT application_name FROM pg_stat_replication \
             WHERE flush_lag > interval '1 second' AND replay_lag IS NULL AND sync_state = 'potential'"
        )
        .await,
        vec!["s2"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT write_lag::text, pg_typeof(write_lag), pg_typeof(sent_lsn) \
             FROM pg_stat_replication WHERE pid = 2001"
        )
        .await,
        vec!["00:00:00.001234|interval|pg_lsn"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')"
        )
        .await,
        vec!["1"]
    );
    // A walsender that has not received a reply yet: invalid LSNs and no reply time are NULL.
    let mut fresh = walsender(2003, "s3", 0, "async");
    fresh.write_lsn = Some(Lsn::ZERO);
    fresh.flush_lsn = None;
    fresh.reply_time = None;
    fresh.client_addr = None;
    hooks.replication.lock().push(fresh);
    assert_eq!(
        rows(
            &mut s,
            "SELECT client_addr, client_port, write_lsn, flush_lsn, replay_lsn, reply_time \
             FROM pg_stat_replication WHERE pid = 2003"
        )
        .await,
        vec!["NULL|-1|NULL|NULL|NULL|NULL"]
    );
}

#[tokio::test]
async fn non_superusers_see_walsenders_but_no_details() {
    let (engine, hooks) = common::new_engine();
    populate(&hooks);
    hooks.wal_receiver.lock().replace(receiver());
    let mut s = plain_user(&engine);
    assert_eq!(
        rows(
            &mut s,
            "SELECT pid, usename, state, sent_lsn, write_lag, sync_priority, sync_state, reply_time \
             FROM pg_stat_replication ORDER BY pid"
        )
        .await,
        vec![
            "2001|postgres|NULL|NULL|NULL|NULL|NULL|NULL",
            "2002|postgres|NULL|NULL|NULL|NULL|NULL|NULL"
        ]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT pid, status, flushed_lsn, conninfo FROM pg_stat_wal_receiver"
        )
        .await,
        vec!["3001|NULL|NULL|NULL"]
    );
}

fn receiver() -> WalReceiverStat {
    WalReceiverStat {
        pid: 3001,
        status: "streaming".into(),
        receive_start_lsn: Lsn(0x100_0000),
        receive_start_tli: TimelineId(1),
        written_lsn: Lsn(0x300_0100),
        flushed_lsn: Lsn(0x300_0000),
        received_tli: TimelineId(2),
        last_msg_send_time: Some(t(10)),
        last_msg_receipt_time: Some(t(11)),
        latest_end_lsn: Lsn(0x300_0000),
        latest_end_time: None,
        slot_name: None,
        sender_host: Some("127.0.0.1".into()),
        sender_port: Some(5432),
        conninfo: "user=postgres password=******** host=127.0.0.1 port=5432".into(),
    }
}

#[tokio::test]
async fn pg_stat_wal_receiver_columns_and_row() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    let r = q(&mut s, "SELECT * FROM pg_stat_wal_receiver").await;
    assert!(r.rows.is_empty(), "no walreceiver, no row");
    use DataType as T;
    assert_eq!(
        columns(&r),
        [
            ("pid", T::Int4),
            ("status", T::Text),
            ("receive_start_lsn", T::PgLsn),
            ("receive_start_tli", T::Int4),
            ("written_lsn", T::PgLsn),
            ("flushed_lsn", T::PgLsn),
            ("received_tli", T::Int4),
            ("last_msg_send_time", T::TimestampTz),
            ("last_msg_receipt_time", T::TimestampTz),
            ("latest_end_lsn", T::PgLsn),
            ("latest_end_time", T::TimestampTz),
            ("slot_name", T::Text),
            ("sender_host", T::Text),
            ("sender_port", T::Int4),
            ("conninfo", T::Text),
        ]
        .iter()
        .map(|(n, t)| ((*n).to_owned(), *t))
        .collect::<Vec<_>>()
    );
    hooks.wal_receiver.lock().replace(receiver());
    assert_eq!(
        rows(&mut s, "SELECT * FROM pg_stat_wal_receiver").await,
        vec![
            "3001|streaming|0/1000000|1|0/3000100|0/3000000|2|2000-01-01 00:00:10+00|2000-01-01 00:00:11+00|0/3000000|NULL|NULL|127.0.0.1|5432|user=postgres password=******** host=127.0.0.1 port=5432"
        ]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT status, received_tli FROM pg_stat_wal_receiver WHERE flushed_lsn < '0/3000001'"
        )
        .await,
        vec!["streaming|2"]
    );
    assert!(
        rows(
            &mut s,
            "SELECT pid FROM pg_stat_wal_receiver WHERE status = 'stopping'"
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn pg_replication_slots_and_slot_functions() {
    let (engine, hooks) = common::new_engine();
    hooks.insert_lsn.store(0x300_0028, Ordering::Relaxed);
    let mut s = open(&engine);
    let r = q(&mut s, "SELECT * FROM pg_replication_slots").await;
    assert!(r.rows.is_empty());
    assert_eq!(
        names(&r),
        [
            "slot_name",
            "plugin",
            "slot_type",
            "datoid",
            "database",
            "temporary",
            "active",
            "active_pid",
            "xmin",
            "catalog_xmin",
            "restart_lsn",
            "confirmed_flush_lsn",
            "wal_status",
            "safe_wal_size",
            "two_phase",
        ]
    );
    let types: Vec<DataType> = columns(&r).into_iter().map(|(_, t)| t).collect();
    assert_eq!(types[5], DataType::Bool);
    assert_eq!(types[10], DataType::PgLsn);
    assert_eq!(types[13], DataType::Int8);

    let r = q(&mut s, "SELECT pg_create_physical_replication_slot('s1')").await;
    assert_eq!(names(&r), ["pg_create_physical_replication_slot"]);
    assert_eq!(r.text_rows(), ["(s1,)"]);
    assert_eq!(
        rows(
            &mut s,
            "SELECT pg_create_physical_replication_slot('s2', true)"
        )
        .await,
        ["(s2,0/3000028)"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT pg_create_physical_replication_slot('s3', immediately_reserve => true)"
        )
        .await,
        ["(s3,0/3000028)"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT slot_name, plugin, slot_type, temporary, active, active_pid, restart_lsn, wal_status, two_phase \
             FROM pg_replication_slots ORDER BY slot_name"
        )
        .await,
        [
            "s1|NULL|physical|f|f|NULL|NULL|NULL|f",
            "s2|NULL|physical|f|f|NULL|0/3000028|reserved|f",
            "s3|NULL|physical|f|f|NULL|0/3000028|reserved|f",
        ]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT slot_name FROM pg_replication_slots WHERE restart_lsn IS NULL"
        )
        .await,
        ["s1"]
    );
    let e = err(
        &mut s,
        "SELECT pg_create_physical_replication_slot('s1')",
        "42710",
    )
    .await;
    assert_eq!(e.message, "replication slot \"s1\" already exists");
    let e = err(
        &mut s,
        "SELECT pg_create_physical_replication_slot('Bad-Name')",
        "42602",
    )
    .await;
    assert_eq!(
        e.message,
        "replication slot name \"Bad-Name\" contains invalid character"
    );
    err(
        &mut s,
        "SELECT pg_create_physical_replication_slot('t', false, true)",
        "0A000",
    )
    .await;
    err(
        &mut s,
        "SELECT pg_create_physical_replication_slot('t', nope => true)",
        "42883",
    )
    .await;
    let r = q(&mut s, "SELECT pg_drop_replication_slot('s2')").await;
    assert_eq!(r.text_rows(), [""]);
    let e = err(&mut s, "SELECT pg_drop_replication_slot('s2')", "42704").await;
    assert_eq!(e.message, "replication slot \"s2\" does not exist");
    assert_eq!(hooks.slots.lock().len(), 2);
    // NULL arguments: strict functions return NULL without touching slots.
    assert_eq!(
        rows(&mut s, "SELECT pg_drop_replication_slot(NULL)").await,
        ["NULL"]
    );

    let mut u = plain_user(&engine);
    let e = err(
        &mut u,
        "SELECT pg_create_physical_replication_slot('u1')",
        "42501",
    )
    .await;
    assert_eq!(
        e.message,
        "must be superuser or replication role to use replication slots"
    );
    err(&mut u, "SELECT pg_drop_replication_slot('s1')", "42501").await;
    // Anyone may read the slots view.
    assert_eq!(
        rows(&mut u, "SELECT count(*) FROM pg_replication_slots").await,
        ["2"]
    );
    // Slot rows straight from the hooks: NULL handling of what the server reports.
    hooks.slots.lock().push(ReplicationSlotInfo {
        slot_name: "busy".into(),
        temporary: true,
        active: true,
        active_pid: Some(4242),
        restart_lsn: Some(Lsn(0x500_0000)),
        wal_status: Some("extended".into()),
        safe_wal_size: Some(1 << 20),
    });
    assert_eq!(
        rows(
            &mut s,
            "SELECT temporary, active, active_pid, restart_lsn, wal_status, safe_wal_size \
             FROM pg_replication_slots WHERE active"
        )
        .await,
        ["t|t|4242|0/5000000|extended|1048576"]
    );
}

#[tokio::test]
async fn create_slot_in_from_gives_slot_name_and_lsn_columns() {
    let (engine, hooks) = common::new_engine();
    hooks.insert_lsn.store(0x300_0028, Ordering::Relaxed);
    let mut s = open(&engine);
    let r = q(
        &mut s,
        "SELECT * FROM pg_create_physical_replication_slot('standby1', true)",
    )
    .await;
    assert_eq!(
        columns(&r),
        [
            ("slot_name".to_owned(), DataType::Text),
            ("lsn".to_owned(), DataType::PgLsn)
        ]
    );
    assert_eq!(r.text_rows(), ["standby1|0/3000028"]);
    assert_eq!(
        rows(
            &mut s,
            "SELECT slot_name, lsn IS NULL FROM pg_catalog.pg_create_physical_replication_slot('standby2') AS c"
        )
        .await,
        ["standby2|t"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT c.lsn FROM pg_create_physical_replication_slot(slot_name => 'standby3', immediately_reserve => true) c"
        )
        .await,
        ["0/3000028"]
    );
    err(
        &mut s,
        "SELECT * FROM pg_create_physical_replication_slot('standby1')",
        "42710",
    )
    .await;
    assert_eq!(hooks.slots.lock().len(), 3);
    err(&mut s, "SELECT * FROM generate_series(1, 3)", "0A000").await;
    let mut u = plain_user(&engine);
    err(
        &mut u,
        "SELECT * FROM pg_create_physical_replication_slot('x')",
        "42501",
    )
    .await;
}

#[tokio::test]
async fn pg_promote_calls_the_hook_with_defaults_and_named_arguments() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    let e = err(&mut s, "SELECT pg_promote()", "55000").await;
    assert_eq!(e.message, "recovery is not in progress");
    hooks.in_recovery.store(true, Ordering::SeqCst);
    let r = q(&mut s, "SELECT pg_promote()").await;
    assert_eq!(names(&r), ["pg_promote"]);
    assert_eq!(columns(&r)[0].1, DataType::Bool);
    assert_eq!(r.text_rows(), ["t"]);
    hooks.in_recovery.store(true, Ordering::SeqCst);
    assert_eq!(
        rows(&mut s, "SELECT pg_promote(wait => false)").await,
        ["t"]
    );
    hooks.in_recovery.store(true, Ordering::SeqCst);
    assert_eq!(
        rows(&mut s, "SELECT pg_promote(true, wait_seconds => 5)").await,
        ["t"]
    );
    assert_eq!(
        *hooks.promotions.lock(),
        vec![(true, 60), (true, 60), (false, 60), (true, 5)]
    );
    let e = err(&mut s, "SELECT pg_promote(true, 0)", "22023").await;
    assert_eq!(e.message, "\"wait_seconds\" must not be negative or zero");
    err(
        &mut s,
        "SELECT pg_promote(wait => true, wait => false)",
        "42601",
    )
    .await;
    let mut u = plain_user(&engine);
    let e = err(&mut u, "SELECT pg_promote()", "42501").await;
    assert_eq!(e.message, "permission denied for function pg_promote");
    assert_eq!(
        hooks.promotions.lock().len(),
        4,
        "refused calls never promote"
    );
}

#[tokio::test]
async fn last_wal_functions_report_the_standby_positions() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    let r = q(
        &mut s,
        "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp()",
    )
    .await;
    assert_eq!(r.text_rows(), ["NULL|NULL|NULL"]);
    assert_eq!(
        columns(&r).into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
        [DataType::PgLsn, DataType::PgLsn, DataType::TimestampTz]
    );
    *hooks.receive_lsn.lock() = Some(Lsn(0x400_0000));
    *hooks.replay_lsn.lock() = Some(Lsn(0x3FF_FF00));
    *hooks.replay_timestamp.lock() = Some(3_600_000_000);
    assert_eq!(
        rows(
            &mut s,
            "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(), \
             pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), \
             pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
        )
        .await,
        ["0/4000000|0/3FFFF00|2000-01-01 01:00:00+00|256|f"]
    );
    // The classic lag query: an interval.
    let r = q(
        &mut s,
        "SELECT now() - pg_last_xact_replay_timestamp() AS lag",
    )
    .await;
    assert_eq!(columns(&r), [("lag".to_owned(), DataType::Interval)]);
}

#[tokio::test]
async fn pg_lsn_and_interval_types() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    assert_eq!(
        rows(
            &mut s,
            "SELECT '0/10'::pg_lsn > '0/9'::pg_lsn, '1/0'::pg_lsn - '0/FFFFFFFF', \
             pg_wal_lsn_diff('0/1000000', '0/3000000'), '0/3000000'::pg_lsn::text, \
             pg_current_wal_lsn() >= '0/1000000'"
        )
        .await,
        ["t|1|-33554432|0/3000000|t"]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT interval '90 minutes', '1 day 2 hours'::interval, '-1 days +02:00:00'::interval, \
             interval '1 day' > interval '23 hours', '2000-01-02 03:00:00+00'::timestamptz - '2000-01-01 00:00:00+00'::timestamptz, \
             '2000-01-01 00:00:00'::timestamp + interval '36 hours', interval '1 hour' + interval '30 minutes'"
        )
        .await,
        [
            "01:30:00|1 day 02:00:00|-1 days +02:00:00|t|1 day 03:00:00|2000-01-02 12:00:00|01:30:00"
        ]
    );
    let e = err(&mut s, "SELECT 'nope'::pg_lsn", "22P02").await;
    assert_eq!(e.message, "invalid input syntax for type pg_lsn: \"nope\"");
    let e = err(&mut s, "SELECT 'soon'::interval", "22007").await;
    assert_eq!(
        e.message,
        "invalid input syntax for type interval: \"soon\""
    );
    err(&mut s, "SELECT '0/1'::pg_lsn + '0/1'::pg_lsn", "42883").await;
    err(&mut s, "SELECT '0/1'::pg_lsn = 1", "42883").await;
    // Tables may hold both types.
    ok(&mut s, "CREATE TABLE marks (at pg_lsn, took interval)").await;
    ok(
        &mut s,
        "INSERT INTO marks VALUES ('0/3000000', '5 seconds'), (pg_current_wal_lsn(), NULL)",
    )
    .await;
    assert_eq!(
        rows(&mut s, "SELECT at, took FROM marks ORDER BY at DESC").await,
        ["0/3000000|00:00:05", "0/1000000|NULL"]
    );
}

#[tokio::test]
async fn replication_settings_reach_the_session() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    assert_eq!(rows(&mut s, "SHOW synchronous_standby_names").await, [""]);
    ok(&mut s, "SET synchronous_commit = remote_write").await;
    assert_eq!(
        rows(&mut s, "SHOW synchronous_commit").await,
        ["remote_write"]
    );
    ok(&mut s, "BEGIN").await;
    ok(&mut s, "SET LOCAL synchronous_commit = remote_apply").await;
    assert_eq!(
        rows(&mut s, "SHOW synchronous_commit").await,
        ["remote_apply"]
    );
    ok(&mut s, "COMMIT").await;
    assert_eq!(
        rows(&mut s, "SHOW synchronous_commit").await,
        ["remote_write"]
    );
    let mut st = engine
        .open_session(SessionInfo {
            startup_settings: vec![("synchronous_commit".into(), "remote_apply".into())],
            ..common::superuser()
        })
        .expect("open");
    assert_eq!(
        rows(&mut st, "SHOW synchronous_commit").await,
        ["remote_apply"]
    );
    // A standby: read-write mode is refused, as PostgreSQL does during recovery.
    engine.manager().set_read_only(true);
    hooks.in_recovery.store(true, Ordering::SeqCst);
    let mut sb = open(&engine);
    assert_eq!(rows(&mut sb, "SHOW transaction_read_only").await, ["on"]);
    assert_eq!(
        rows(&mut sb, "SHOW default_transaction_read_only").await,
        ["off"]
    );
    let e = err(&mut sb, "SET transaction_read_only = off", "25006").await;
    assert_eq!(
        e.message,
        "cannot set transaction read-write mode during recovery"
    );
    ok(&mut sb, "BEGIN").await;
    err(&mut sb, "SET TRANSACTION READ WRITE", "25006").await;
    ok(&mut sb, "ROLLBACK").await;
    ok(&mut sb, "SET transaction_read_only = on").await;
}
