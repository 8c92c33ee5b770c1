//! Operating a server the way a PostgreSQL DBA would: background workers in
//! pg_stat_activity, WAL functions, `CHECKPOINT` and `lockstep checkpoint`, configuration
//! reload by SIGHUP and `pg_reload_conf()`, `ALTER SYSTEM`, roles and SCRAM passwords, smart
//! and fast shutdown, and `wal_mirror_directory` set in the configuration.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, TestServer};
use tokio_postgres::error::SqlState;

async fn one_text(c: &tokio_postgres::Client, q: &str) -> String {
    c.simple_query(q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e:?}"))
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

/// Polls `SHOW name` until it shows `want` (a reload is asynchronous) and returns what it
/// showed last.
async fn wait_for_setting(c: &tokio_postgres::Client, name: &str, want: &str) -> String {
    let mut shown = String::new();
    for _ in 0..100 {
        shown = one_text(c, &format!("SHOW {name}")).await;
        if shown == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shown
}

/// pg_stat_wal's (records, bytes, writes, syncs, times and reset time present).
async fn wal_stats(c: &tokio_postgres::Client) -> (i64, u64, i64, i64, bool) {
    let r = c
        .query_one(
            "SELECT wal_records, wal_bytes::text, wal_write, wal_sync, \
                    wal_sync_time >= 0, stats_reset IS NOT NULL FROM pg_stat_wal",
            &[],
        )
        .await
        .expect("pg_stat_wal");
    (
        r.get::<_, i64>(0),
        r.get::<_, String>(1).parse::<u64>().expect("bytes"),
        r.get::<_, i64>(2),
        r.get::<_, i64>(3),
        r.get::<_, bool>(4) && r.get::<_, bool>(5),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_functions_checkpoint_and_reload() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    let types: Vec<String> = c
        .query("SELECT backend_type FROM pg_stat_activity", &[])
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect();
    for w in ["walwriter", "walflusher", "checkpointer", "client backend"] {
        assert!(types.iter().any(|t| t == w), "{w} in {types:?}");
    }
    let me: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    let listed = one_text(
        &c,
        &format!("SELECT state FROM pg_stat_activity WHERE pid = {me}"),
    )
    .await;
    assert_eq!(listed, "active");

    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .expect("write");
    let lsn = one_text(&c, "SELECT pg_current_wal_lsn()").await;
    let flush = one_text(&c, "SELECT pg_current_wal_flush_lsn()").await;
    let insert = one_text(&c, "SELECT pg_current_wal_insert_lsn()").await;
    for v in [&lsn, &flush, &insert] {
        assert!(v.parse::<base::Lsn>().is_ok(), "{v} is an LSN");
    }
    let file = one_text(&c, &format!("SELECT pg_walfile_name('{lsn}')")).await;
    assert_eq!(file.len(), 24, "{file}");
    assert!(file.starts_with("00000001"), "{file}");
    assert_eq!(one_text(&c, "SELECT pg_is_in_recovery()").await, "f");

    // pg_stat_wal counts records, bytes, writes and syncs; pg_stat_reset_shared('wal')
    // starts it again.
    for k in 2..5 {
        c.execute("INSERT INTO t VALUES ($1)", &[&k])
            .await
            .expect("insert");
    }
    let (records, bytes, writes, syncs, ok) = wal_stats(&c).await;
    assert!(
        records >= 4 && bytes > 0 && writes >= 1 && syncs >= 1 && ok,
        "{records} records, {bytes} bytes, {writes} writes, {syncs} syncs"
    );
    one_text(&c, "SELECT pg_stat_reset_shared('wal')").await;
    c.batch_execute("INSERT INTO t VALUES (5)")
        .await
        .expect("insert");
    let (after, _, _, after_syncs, _) = wal_stats(&c).await;
    // One commit record, plus at most one a background worker may have written meanwhile.
    assert!(
        (1..=2).contains(&after) && after_syncs >= 1,
        "after reset: {after} records, {after_syncs} syncs (before: {records})"
    );
    let err = c
        .batch_execute("SELECT pg_stat_reset_shared('nonsense')")
        .await
        .expect_err("bad target");
    assert_eq!(err.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));

    // CHECKPOINT by SQL and by the command line, each logged.
    let from = srv.log_text().len();
    c.batch_execute("CHECKPOINT").await.expect("checkpoint");
    assert!(srv.wait_for_log("checkpoint complete", from, Duration::from_secs(10)));
    let from = srv.log_text().len();
    let out = Command::new(BIN)
        .args(["checkpoint", "-D"])
        .arg(&srv.datadir)
        .output()
        .expect("lockstep checkpoint");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(srv.wait_for_log("checkpoint complete", from, Duration::from_secs(10)));

    // Reload: a sighup parameter changed in the file takes effect without restart.
    assert_eq!(one_text(&c, "SHOW checkpoint_timeout").await, "5min");
    let conf = srv.datadir.join("lockstep.conf");
    let mut text = std::fs::read_to_string(&conf).expect("conf");
    text.push_str("\ncheckpoint_timeout = 10min\n");
    std::fs::write(&conf, &text).expect("write conf");
    assert_eq!(one_text(&c, "SELECT pg_reload_conf()").await, "t");
    assert_eq!(
        wait_for_setting(&c, "checkpoint_timeout", "10min").await,
        "10min"
    );
    text.push_str("checkpoint_timeout = 15min\n");
    std::fs::write(&conf, &text).expect("write conf");
    let pid = srv.pid().expect("pid") as i32;
    // SAFETY: kill(2) on our own child server process.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    assert_eq!(
        wait_for_setting(&c, "checkpoint_timeout", "15min").await,
        "15min"
    );
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_system_takes_effect_at_reload_and_survives_restart() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    let code = |r: Result<(), tokio_postgres::Error>| {
        r.expect_err("refused").code().cloned().expect("sqlstate")
    };
    assert_eq!(
        code(
            c.batch_execute("ALTER SYSTEM SET no_such_setting = 1")
                .await
        ),
        SqlState::UNDEFINED_OBJECT
    );
    assert_eq!(
        code(
            c.batch_execute("ALTER SYSTEM SET wal_segment_size = 1")
                .await
        ),
        SqlState::CANT_CHANGE_RUNTIME_PARAM
    );
    assert_eq!(
        code(
            c.batch_execute("ALTER SYSTEM SET checkpoint_timeout = 'soon'")
                .await
        ),
        SqlState::INVALID_PARAMETER_VALUE
    );
    assert_eq!(
        code(
            c.batch_execute("BEGIN; ALTER SYSTEM SET checkpoint_timeout = '20min'")
                .await
        ),
        SqlState::ACTIVE_SQL_TRANSACTION
    );
    c.batch_execute("ROLLBACK").await.expect("rollback");

    // Written to lockstep.auto.conf; in effect only after a reload, as in PostgreSQL.
    c.batch_execute("ALTER SYSTEM SET checkpoint_timeout = '20min'")
        .await
        .expect("alter system");
    c.batch_execute("ALTER SYSTEM SET synchronous_standby_names TO 'FIRST 1 (a, b)'")
        .await
        .expect("alter system");
    let auto = std::fs::read_to_string(srv.datadir.join("lockstep.auto.conf")).expect("auto");
    assert!(auto.contains("checkpoint_timeout = '20min'"), "{auto}");
    assert_eq!(one_text(&c, "SHOW checkpoint_timeout").await, "5min");
    assert_eq!(one_text(&c, "SELECT pg_reload_conf()").await, "t");
    assert_eq!(
        wait_for_setting(&c, "checkpoint_timeout", "20min").await,
        "20min"
    );

    // It outlives a restart; RESET removes it again.
    drop(c);
    srv.stop();
    srv.start();
    let c = srv.client().await;
    assert_eq!(one_text(&c, "SHOW checkpoint_timeout").await, "20min");
    assert_eq!(
        one_text(&c, "SHOW synchronous_standby_names").await,
        "FIRST 1 (a, b)"
    );

    // pg_settings says where each value came from, in PostgreSQL's base units.
    c.batch_execute("SET statement_timeout = '2s'; SET myapp.flag = 'x'")
        .await
        .expect("set");
    let row = c
        .query_one(
            "SELECT setting, unit, source, sourcefile LIKE '%lockstep.auto.conf', boot_val, \
                    reset_val, context, vartype, pending_restart \
             FROM pg_settings WHERE name = 'checkpoint_timeout'",
            &[],
        )
        .await
        .expect("pg_settings");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, bool>(3),
            row.get::<_, String>(4),
            row.get::<_, String>(5),
            row.get::<_, String>(6),
            row.get::<_, String>(7),
            row.get::<_, bool>(8),
        ),
        (
            "1200".into(),
            "s".into(),
            "configuration file".into(),
            true,
            "300".into(),
            "1200".into(),
            "sighup".into(),
            "integer".into(),
            false
        )
    );
    let rows = c
        .query(
            "SELECT name, setting, source, reset_val FROM pg_settings \
             WHERE name IN ('statement_timeout', 'myapp.flag') ORDER BY name",
            &[],
        )
        .await
        .expect("pg_settings");
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("myapp.flag".into(), "x".into(), "session".into(), "".into()),
            (
                "statement_timeout".into(),
                "2000".into(),
                "session".into(),
                "0".into()
            ),
        ]
    );
    assert_eq!(
        one_text(
            &c,
            "SELECT enumvals FROM pg_settings WHERE name = 'synchronous_commit'"
        )
        .await,
        "{local,remote_write,remote_apply,on,off}"
    );
    assert_eq!(
        one_text(
            &c,
            "SELECT enumvals FROM pg_settings WHERE name = 'default_transaction_isolation'"
        )
        .await,
        r#"{serializable,"repeatable read","read committed","read uncommitted"}"#
    );
    assert_eq!(
        one_text(&c, "SELECT count(*) FROM pg_settings WHERE name = 'synchronous_standby_names' AND setting = 'FIRST 1 (a, b)'").await,
        "1"
    );

    c.batch_execute("ALTER SYSTEM RESET checkpoint_timeout; ALTER SYSTEM RESET ALL")
        .await
        .expect("reset");
    let auto = std::fs::read_to_string(srv.datadir.join("lockstep.auto.conf")).expect("auto");
    assert!(!auto.contains('='), "{auto}");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_scram_passwords() {
    let mut srv = TestServer::init();
    // Loopback connections need a password (the superuser keeps trust over... nothing: it
    // authenticates by password too after the first connection sets it).
    srv.start();
    let c = srv.client().await;
    c.batch_execute(
        "CREATE ROLE app LOGIN PASSWORD 's3cret'; CREATE USER repl REPLICATION PASSWORD 'x'",
    )
    .await
    .expect("create roles");
    let err = c
        .batch_execute("CREATE ROLE app")
        .await
        .expect_err("duplicate role");
    assert_eq!(err.code(), Some(&SqlState::DUPLICATE_OBJECT));
    let err = c
        .batch_execute("BEGIN; CREATE ROLE inblock; COMMIT")
        .await
        .expect_err("role DDL in a block");
    assert_eq!(err.code(), Some(&SqlState::ACTIVE_SQL_TRANSACTION));
    c.batch_execute("ROLLBACK").await.expect("rollback");
    c.batch_execute("ALTER ROLE app PASSWORD 'n3w'")
        .await
        .expect("alter");
    let stored = std::fs::read_to_string(srv.datadir.join("global/pg_authid")).expect("roles file");
    assert!(
        stored.contains("app\t") && stored.contains("SCRAM-SHA-256$4096:"),
        "{stored}"
    );
    assert!(!stored.contains("n3w"), "no cleartext password is stored");

    // Switch loopback authentication to SCRAM and reload.
    std::fs::write(
        srv.datadir.join("pg_hba.conf"),
        "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .expect("hba");
    c.batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = |pw: &str| {
        format!(
            "host=127.0.0.1 port={} user=app password={pw} dbname=postgres",
            srv.port
        )
    };
    let (app, conn_task) = tokio_postgres::connect(&conn("n3w"), tokio_postgres::NoTls)
        .await
        .expect("scram login with the new password");
    tokio::spawn(conn_task);
    assert_eq!(one_text(&app, "SELECT current_user").await, "app");
    let err = tokio_postgres::connect(&conn("s3cret"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("old password refused");
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD));
    // A non-superuser cannot manage roles.
    let err = app
        .batch_execute("CREATE ROLE x")
        .await
        .expect_err("not superuser");
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let err = app
        .batch_execute("ALTER SYSTEM SET work_mem = '8MB'")
        .await
        .expect_err("not superuser");
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    drop(app);
    c.batch_execute("DROP ROLE app; DROP ROLE IF EXISTS nobody")
        .await
        .expect("drop");
    let err = tokio_postgres::connect(&conn("n3w"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("dropped role");
    assert!(err.code().is_some());
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_shutdown_waits_and_fast_shutdown_terminates() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (k int)")
        .await
        .expect("create");
    // Smart: the server waits for the open session to end, refusing new ones.
    let pid = srv.pid().expect("pid") as i32;
    // SAFETY: kill(2) on our own child server process.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(srv.is_running(), "smart shutdown waits for sessions");
    c.execute("INSERT INTO t VALUES (1)", &[])
        .await
        .expect("the open session still works");
    assert!(
        tokio_postgres::connect(&srv.conn_str(), tokio_postgres::NoTls)
            .await
            .is_err(),
        "no new sessions during shutdown"
    );
    drop(c);
    let status = srv.stop_with(libc::SIGTERM).expect("status");
    assert!(status.success());

    // Fast: sessions are terminated with 57P01, a checkpoint is taken, the data is kept.
    srv.start();
    let c = srv.client().await;
    let status = srv.stop_with(libc::SIGINT).expect("status");
    assert!(status.success());
    let err = c.batch_execute("SELECT 1").await.expect_err("terminated");
    assert!(
        err.code() == Some(&SqlState::ADMIN_SHUTDOWN) || err.is_closed(),
        "{err:?}"
    );
    assert!(srv.log_text().contains("database system is shut down"));
    srv.start();
    let c = srv.client().await;
    assert_eq!(one_text(&c, "SELECT count(*) FROM t").await, "1");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_mirror_directory_from_the_configuration() {
    let mut srv = TestServer::init_with(&["--wal-segsize", "1"]);
    let mirror = srv.base_dir().join("mirror");
    srv.settings
        .push(format!("wal_mirror_directory={}", mirror.display()));
    srv.start();
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
        .await
        .expect("create");
    let filler = "y".repeat(2000);
    for k in 0..800 {
        c.execute("INSERT INTO t VALUES ($1, $2)", &[&k, &filler])
            .await
            .expect("insert");
    }
    srv.kill9();
    let end = {
        let dump = srv.waldump();
        *common::record_lsns(&dump).last().expect("records")
    };
    let seg = 1u64 << 20;
    let wal = srv.datadir.join("pg_wal");
    let mut compared = 0;
    for segno in base::Lsn::FIRST.segment_number(seg)..=end.segment_number(seg) {
        let name = base::lsn::segment_file_name(base::TimelineId(1), segno, seg);
        let a = std::fs::read(wal.join(&name)).expect("primary segment");
        let b = std::fs::read(mirror.join(&name)).expect("mirror segment");
        assert!(
            a == b,
            "segment {name} differs between pg_wal and the mirror"
        );
        compared += 1;
    }
    assert!(compared >= 2, "the workload crossed segments");
}
