//! The session API as the frontend uses it: Parse/Describe/Bind/Execute/Sync, parameter type
//! inference, re-planning after DDL, startup settings, ParameterStatus reporting.

mod common;

use base::{DataType, Value};
use common::{Collect, err, extended, ok, open, rows};
use sql::{ExecOutcome, SessionInfo, TxnStatus};

#[tokio::test]
async fn parameter_types_are_inferred_from_context() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(
        &mut s,
        "CREATE TABLE t (a int, b bigint, c text, d varchar(10), e numeric(5,2), f bool, g char(3))",
    )
    .await;
    let cases: &[(&str, &[DataType])] = &[
        ("SELECT * FROM t WHERE a = $1", &[DataType::Int4]),
        ("SELECT * FROM t WHERE $1 < b", &[DataType::Int8]),
        ("SELECT * FROM t WHERE d = $1", &[DataType::Varchar(None)]),
        ("SELECT * FROM t WHERE e > $1", &[DataType::Numeric(None)]),
        ("SELECT * FROM t WHERE g = $1", &[DataType::Text]),
        ("SELECT a + $1 FROM t", &[DataType::Int4]),
        ("SELECT $1::bigint", &[DataType::Int8]),
        ("SELECT $1", &[DataType::Text]),
        (
            "SELECT * FROM t LIMIT $1 OFFSET $2",
            &[DataType::Int8, DataType::Int8],
        ),
        (
            "SELECT * FROM t WHERE f = $1 AND a IN ($2, 3)",
            &[DataType::Bool, DataType::Int4],
        ),
        (
            "INSERT INTO t (a, b, c, f) VALUES ($1, $2, $3, $4)",
            &[
                DataType::Int4,
                DataType::Int8,
                DataType::Text,
                DataType::Bool,
            ],
        ),
        (
            "UPDATE t SET b = b + $1 WHERE a = $2",
            &[DataType::Int8, DataType::Int4],
        ),
        ("DELETE FROM t WHERE c LIKE $1", &[DataType::Text]),
        ("SELECT coalesce($1, a) FROM t", &[DataType::Int4]),
        (
            "SELECT * FROM t WHERE a = $2",
            &[DataType::Text, DataType::Int4],
        ),
    ];
    for (sql, want) in cases {
        let p = s.prepare(sql, &[]).expect(sql);
        assert_eq!(p.param_types(), *want, "{sql}");
    }
    // Declared types win over inference.
    let p = s
        .prepare("SELECT * FROM t WHERE a = $1", &[base::types::oid::INT8])
        .expect("declared");
    assert_eq!(p.param_types(), &[DataType::Int8]);
    let e = s.prepare("SELECT $1", &[600]).expect_err("unsupported oid");
    assert_eq!(e.code.code(), "0A000");
}

#[tokio::test]
async fn describe_bind_and_execute() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int PRIMARY KEY, b text)").await;
    let ins = s
        .prepare("INSERT INTO t VALUES ($1, $2)", &[])
        .expect("prepare");
    let d = s.describe(&ins).expect("describe");
    assert_eq!(d.param_types, vec![DataType::Int4, DataType::Text]);
    assert_eq!(d.fields, None);
    for (a, b) in [("1", Some("x")), ("2", None)] {
        let raw: Vec<Option<&[u8]>> = vec![Some(a.as_bytes()), b.map(str::as_bytes)];
        let v = s.bind_params(&ins, &[], &raw).expect("bind");
        let mut sink = Collect::default();
        assert_eq!(
            s.execute(&ins, &v, &mut sink).await.expect("exec"),
            ExecOutcome::Command("INSERT 0 1".into())
        );
        s.end_implicit().await.expect("sync");
    }
    // Binary format parameters.
    let sel = s
        .prepare("SELECT b FROM t WHERE a = $1", &[])
        .expect("prepare");
    let raw = 2i32.to_be_bytes();
    let v = s
        .bind_params(&sel, &[1], &[Some(&raw)])
        .expect("bind binary");
    assert_eq!(v, vec![Value::Int4(2)]);
    let mut sink = Collect::default();
    s.execute(&sel, &v, &mut sink).await.expect("exec");
    s.end_implicit().await.expect("sync");
    assert_eq!(sink.rows, vec![vec![Value::Null]]);
    let fields = sink.fields.expect("row description");
    assert_eq!(fields[0].name, "b");
    assert_eq!(fields[0].column_id, 2);

    let e = s.bind_params(&sel, &[], &[]).expect_err("count");
    assert_eq!(e.code.code(), "08P01");
    let e = s
        .bind_params(&sel, &[], &[Some(b"abc")])
        .expect_err("bad int");
    assert_eq!(e.code.code(), "22P02");

    let show = s.prepare("SHOW work_mem", &[]).expect("p");
    let d = s.describe(&show).expect("d");
    assert_eq!(d.fields.expect("fields")[0].name, "work_mem");

    let empty = s.prepare("", &[]).expect("empty");
    let mut sink = Collect::default();
    assert_eq!(
        s.execute(&empty, &[], &mut sink).await.expect("exec"),
        ExecOutcome::Empty
    );
    assert!(s.parse_batch("  ").expect("batch").is_empty());
    let e = s.prepare("SELECT 1; SELECT 2", &[]).expect_err("multi");
    assert_eq!(e.code.code(), "42601");
}

#[tokio::test]
async fn extended_protocol_transactions_and_failed_blocks() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int PRIMARY KEY)").await;
    assert!(extended(&mut s, "BEGIN", &[]).await.outcome.is_ok());
    assert_eq!(s.transaction_status(), TxnStatus::InBlock);
    assert!(
        extended(&mut s, "INSERT INTO t VALUES ($1)", &[Some("1")])
            .await
            .outcome
            .is_ok()
    );
    let r = extended(&mut s, "INSERT INTO t VALUES ($1)", &[Some("1")]).await;
    assert_eq!(r.outcome.expect_err("dup").code.code(), "23505");
    assert_eq!(s.transaction_status(), TxnStatus::Failed);
    // Parse in a failed block is refused, except for ending statements.
    assert_eq!(
        s.prepare("SELECT 1", &[]).expect_err("failed").code.code(),
        "25P02"
    );
    let r = extended(&mut s, "COMMIT", &[]).await;
    assert_eq!(r.tag(), "ROLLBACK");
    assert_eq!(s.transaction_status(), TxnStatus::Idle);
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t").await, vec!["0"]);

    // Outside a block, statements up to Sync form one transaction.
    let p = s.prepare("INSERT INTO t VALUES ($1)", &[]).expect("p");
    for v in ["5", "6"] {
        let vals = s.bind_params(&p, &[], &[Some(v.as_bytes())]).expect("b");
        let mut sink = Collect::default();
        s.execute(&p, &vals, &mut sink).await.expect("e");
    }
    let vals = s.bind_params(&p, &[], &[Some(b"5")]).expect("b");
    let mut sink = Collect::default();
    let e = s.execute(&p, &vals, &mut sink).await.expect_err("dup");
    s.mark_failed(&e);
    s.end_implicit().await.expect("sync");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t").await, vec!["0"]);
}

#[tokio::test]
async fn prepared_statements_replan_after_ddl() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int, b int)").await;
    ok(&mut s, "INSERT INTO t VALUES (1, 10), (2, 20)").await;
    let p = s.prepare("SELECT b FROM t WHERE a = $1", &[]).expect("p");
    async fn run(
        s: &mut sql::Session,
        p: &sql::Prepared,
    ) -> Result<Vec<Vec<Value>>, base::PgError> {
        let v = s.bind_params(p, &[], &[Some(b"2")]).expect("bind");
        let mut sink = Collect::default();
        let r = s.execute(p, &v, &mut sink).await;
        s.end_implicit().await.expect("sync");
        r.map(|_| sink.rows)
    }
    assert_eq!(
        run(&mut s, &p).await.expect("scan"),
        vec![vec![Value::Int4(20)]]
    );
    ok(&mut s, "ALTER TABLE t ADD PRIMARY KEY (a)").await;
    assert_eq!(
        run(&mut s, &p).await.expect("index"),
        vec![vec![Value::Int4(20)]]
    );
    ok(&mut s, "TRUNCATE t").await;
    assert!(run(&mut s, &p).await.expect("empty").is_empty());
    ok(&mut s, "DROP TABLE t").await;
    assert_eq!(
        run(&mut s, &p).await.expect_err("gone").code.code(),
        "42P01"
    );
    ok(&mut s, "CREATE TABLE t (a int, b text)").await;
    let e = run(&mut s, &p).await.expect_err("type changed");
    assert_eq!(e.message, "cached plan must not change result type");
}

#[tokio::test]
async fn startup_settings_and_parameter_status() {
    let (engine, _) = common::new_engine();
    let info = SessionInfo {
        user: "alice".into(),
        database: "db".into(),
        application_name: "pgbench".into(),
        startup_settings: vec![
            ("client_encoding".into(), "UTF8".into()),
            ("synchronous_commit".into(), "off".into()),
            ("DateStyle".into(), "ISO".into()),
        ],
        ..SessionInfo::default()
    };
    let mut s = engine.open_session(info).expect("open");
    assert!(s.pid() > 0);
    let initial = s.initial_parameter_status();
    let names: Vec<&str> = initial.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "server_version",
        "server_encoding",
        "client_encoding",
        "application_name",
        "DateStyle",
        "IntervalStyle",
        "TimeZone",
        "integer_datetimes",
        "standard_conforming_strings",
        "is_superuser",
        "session_authorization",
        "in_hot_standby",
        "default_transaction_read_only",
        "search_path",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(initial.contains(&("is_superuser".into(), "off".into())));
    assert!(initial.contains(&("session_authorization".into(), "alice".into())));
    assert!(initial.contains(&("application_name".into(), "pgbench".into())));
    assert_eq!(rows(&mut s, "SHOW synchronous_commit").await, vec!["off"]);
    ok(&mut s, "SET application_name = 'x'").await;
    assert_eq!(
        s.take_reported_parameters(),
        vec![("application_name".into(), "x".into())]
    );
    assert!(s.take_reported_parameters().is_empty());
    // Not a superuser.
    err(&mut s, "CHECKPOINT", "42501").await;
    err(&mut s, "SET deadlock_timeout = '2s'", "42501").await;
    assert_eq!(
        rows(&mut s, "SELECT current_user, current_database()").await,
        vec!["alice|db"]
    );

    let bad = SessionInfo {
        startup_settings: vec![("nonsense".into(), "1".into())],
        ..common::superuser()
    };
    let e = engine.open_session(bad).expect_err("bad startup setting");
    assert!(e.is_fatal());
    assert_eq!(e.code.code(), "42704");
}

#[tokio::test]
async fn reload_reaches_sessions_at_their_next_statement() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    let mut cfg = sql::guc::ServerConfig::new();
    cfg.parse_str("test.conf", "statement_timeout = 7s\nport = 6000\n")
        .expect("parse");
    let ignored = engine.reload(cfg);
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert_eq!(rows(&mut s, "SHOW statement_timeout").await, vec!["7s"]);
    assert_eq!(rows(&mut s, "SHOW port").await, vec!["5432"]);
    ok(&mut s, "CHECKPOINT").await;
    assert_eq!(
        hooks.checkpoints.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn statement_cache_reuses_shapes_with_different_literals() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int PRIMARY KEY, b text)").await;
    for i in 0..50 {
        ok(&mut s, &format!("INSERT INTO t VALUES ({i}, 'v{i}')")).await;
    }
    for i in [0, 17, 49] {
        assert_eq!(
            rows(&mut s, &format!("SELECT b FROM t WHERE a = {i};")).await,
            vec![format!("v{i}")]
        );
    }
    // A literal of another type is another shape.
    assert_eq!(
        rows(&mut s, "SELECT b FROM t WHERE a = 4000000000").await,
        Vec::<String>::new()
    );
    assert_eq!(
        rows(&mut s, "SELECT b FROM t WHERE a = 3.0").await,
        vec!["v3"]
    );
    assert_eq!(
        rows(&mut s, "SELECT b FROM t WHERE a = '5'").await,
        vec!["v5"]
    );
    assert_eq!(
        rows(&mut s, "SELECT b FROM t WHERE b = 'v6'").await,
        vec!["v6"]
    );
    assert_eq!(
        rows(&mut s, "SELECT a FROM t WHERE a < 3 ORDER BY 1").await,
        vec!["0", "1", "2"]
    );
}

#[tokio::test]
async fn background_workers_show_in_pg_stat_activity_and_signals_need_rights() {
    let (engine, hooks) = common::new_engine();
    hooks.workers.lock().push(sql::BackgroundWorkerInfo {
        pid: 4242,
        backend_type: "walsender".into(),
        start_time: std::time::SystemTime::now(),
        state: Some("active".into()),
        query: Some("START_REPLICATION 0/1000000".into()),
        user: Some("replicator".into()),
        client_addr: Some("127.0.0.1:5555".parse().expect("addr")),
    });
    let mut admin = open(&engine);
    assert_eq!(
        rows(
            &mut admin,
            "SELECT pid, usename, backend_type, state, query, client_addr, client_port FROM pg_stat_activity WHERE backend_type <> 'client backend'"
        )
        .await,
        vec!["4242|replicator|walsender|active|START_REPLICATION 0/1000000|127.0.0.1|5555"]
    );
    let mut bob = engine
        .open_session(SessionInfo {
            user: "bob".into(),
            database: "postgres".into(),
            ..SessionInfo::default()
        })
        .expect("bob");
    let e = err(
        &mut bob,
        &format!("SELECT pg_terminate_backend({})", admin.pid()),
        "42501",
    )
    .await;
    assert_eq!(e.message, "permission denied to terminate process");
    err(&mut bob, "SELECT pg_reload_conf()", "42501").await;
    // Own backends may be signalled.
    let mut bob2 = engine
        .open_session(SessionInfo {
            user: "bob".into(),
            ..SessionInfo::default()
        })
        .expect("bob2");
    assert_eq!(
        rows(
            &mut bob,
            &format!("SELECT pg_cancel_backend({})", bob2.pid())
        )
        .await,
        vec!["t"]
    );
    assert_eq!(rows(&mut bob2, "SELECT 1").await, vec!["1"]);
}
