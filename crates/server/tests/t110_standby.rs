//! Standby mode without a walreceiver: log shipping by file copy (`common::standby`).
//!
//! A standby made from a stopped primary's data directory starts in recovery, answers
//! read-only queries, refuses writes with 25006, replays WAL files copied into its `pg_wal`
//! while sessions read (pgbench's balance invariant holds at every observation: sessions see
//! whole transactions only), takes restartpoints so a restart does not replay from the
//! beginning, and is promoted by `pg_promote()` or `lockstep promote -D` to timeline 2 with a
//! PostgreSQL-format history file; a standby also follows a promoted sibling onto its timeline.

mod common;

use std::time::Duration;

use common::TestServer;
use common::standby::{error_code, make_standby, query_text, redo_starts, ship_wal, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// pgbench's invariant, observed at one replay position: scalar subqueries are not
/// supported, so the sums are read by separate statements, bracketed by
/// `pg_last_wal_replay_lsn()`; an observation counts only if replay did not move in between
/// (then every statement saw the same watermarks). On a primary the bracket is the flush
/// position, which is idle when the test checks. Returns the history row count.
async fn check_invariant(c: &tokio_postgres::Client) -> i64 {
    async fn one(c: &tokio_postgres::Client, q: &str) -> String {
        c.simple_query(q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default()
    }
    let position = if one(c, "SELECT pg_is_in_recovery()::text").await == "true" {
        "SELECT pg_last_wal_replay_lsn()::text"
    } else {
        "SELECT pg_current_wal_flush_lsn()::text"
    };
    // Replay comes in bursts of shipped files; a few hundred tries always find a quiet moment.
    for _ in 0..500 {
        let before = one(c, position).await;
        let a = one(c, "SELECT sum(abalance) FROM pgbench_accounts").await;
        let t = one(c, "SELECT sum(tbalance) FROM pgbench_tellers").await;
        let b = one(c, "SELECT sum(bbalance) FROM pgbench_branches").await;
        let d = one(c, "SELECT coalesce(sum(delta), 0) FROM pgbench_history").await;
        let n = one(c, "SELECT count(*) FROM pgbench_history").await;
        if one(c, position).await != before {
            continue;
        }
        assert_eq!(a, t, "sum(abalance) vs sum(tbalance) at {before}");
        assert_eq!(a, b, "sum(abalance) vs sum(bbalance) at {before}");
        assert_eq!(a, d, "sum(abalance) vs sum(delta) at {before}");
        return n.parse().expect("count");
    }
    panic!("replay never paused long enough for an observation");
}

/// `pg_promote()` through SQL; where the SQL function is not wired yet (42883: it belongs to
/// the SQL views work), `lockstep promote -D` stands in, which drives the same promotion.
async fn promote_sql(c: &tokio_postgres::Client, srv: &TestServer, sql: &str) -> bool {
    match c.query_one(sql, &[]).await {
        Ok(row) => row.get(0),
        Err(e) if e.code().map(|c| c.code()) == Some("42883") => {
            eprintln!("note: {sql} is not available in the SQL layer yet; using lockstep promote");
            promote_cmd(srv)
        }
        Err(e) => panic!("{sql}: {e}; log:\n{}", srv.log_text()),
    }
}

fn promote_cmd(srv: &TestServer) -> bool {
    let out = std::process::Command::new(common::BIN)
        .args(["promote", "-D"])
        .arg(&srv.datadir)
        .output()
        .expect("lockstep promote");
    assert!(
        out.status.success(),
        "promote failed: {}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        srv.log_text()
    );
    String::from_utf8_lossy(&out.stdout).contains("server promoted")
}

fn pgbench(srv: &TestServer, args: &[&str]) {
    let out = srv.tool("pgbench", args);
    assert!(
        out.status.success(),
        "pgbench {args:?} failed:\n{}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        srv.log_text()
    );
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

fn lsn(s: &str) -> base::Lsn {
    s.parse().expect("lsn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_replays_shipped_wal_restarts_and_promotes() {
    let mut primary = TestServer::init();
    primary.start();
    pgbench(&primary, &["-i", "-s", "1", "postgres"]);
    {
        let p = primary.client().await;
        p.batch_execute("CHECKPOINT").await.expect("checkpoint");
    }
    primary.stop();
    let mut standby = make_standby(&primary);
    primary.start();
    standby.start();

    let s = standby.client().await;
    // Read-only hot standby, as PostgreSQL's.
    assert_eq!(
        query_text(&s, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        query_text(&s, "SHOW in_hot_standby").await.as_deref(),
        Some("on")
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM pgbench_accounts").await,
        100_000
    );
    assert_eq!(
        error_code(&s, "UPDATE pgbench_accounts SET abalance = 1 WHERE aid = 1").await,
        "25006"
    );
    assert_eq!(error_code(&s, "CREATE TABLE nope (id int)").await, "25006");
    assert_eq!(error_code(&s, "CREATE SEQUENCE nope").await, "25006");
    assert_eq!(error_code(&s, "SELECT pg_current_wal_lsn()").await, "55000");
    check_invariant(&s).await;
    let replay0 = lsn(&query_text(&s, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("replay lsn"));

    // Workload on the primary, including DDL, then ship its WAL.
    let p = primary.client().await;
    p.batch_execute(
        "CREATE TABLE shipped (id int PRIMARY KEY, v text);
         CREATE TABLE ser (id serial PRIMARY KEY, v int)",
    )
    .await
    .expect("ddl");
    for i in 0..200 {
        p.execute("INSERT INTO shipped VALUES ($1, 'x')", &[&i])
            .await
            .expect("insert");
    }
    for i in 0..50 {
        p.execute("INSERT INTO ser (v) VALUES ($1)", &[&i])
            .await
            .expect("insert serial");
    }
    pgbench(&primary, &["-n", "-T", "2", "-c", "2", "postgres"]);
    let primary_end = lsn(&query_text(&p, "SELECT pg_current_wal_flush_lsn()::text")
        .await
        .expect("flush"));
    let history_rows = count(&p, "SELECT count(*) FROM pgbench_history").await;
    assert!(ship_wal(&primary, &standby) > 0);
    let mut observations = 0;
    wait_for("the standby to replay the shipped WAL", WAIT, || {
        let s = &s;
        observations += 1;
        async move {
            // Every observation on the way: whole transactions only.
            let seen = check_invariant(s).await;
            let replay = lsn(&query_text(s, "SELECT pg_last_wal_replay_lsn()::text").await?);
            (seen == history_rows && replay >= primary_end).then_some(())
        }
    })
    .await;
    assert!(observations >= 1);
    assert_eq!(count(&s, "SELECT count(*) FROM shipped").await, 200);
    let replay1 = lsn(&query_text(&s, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("lsn"));
    assert!(replay1 > replay0, "{replay1} > {replay0}");
    assert_eq!(
        replay1, primary_end,
        "replayed exactly what the primary flushed"
    );
    let receive = lsn(&query_text(&s, "SELECT pg_last_wal_receive_lsn()::text")
        .await
        .expect("lsn"));
    assert!(receive >= replay1);
    match s
        .query_one("SELECT pg_last_xact_replay_timestamp()::text", &[])
        .await
    {
        Ok(row) => assert!(
            row.get::<_, Option<String>>(0).is_some(),
            "a replayed commit has a timestamp"
        ),
        // The SQL function belongs to the SQL views work; the hook is implemented.
        Err(e) => assert_eq!(e.code().map(|c| c.code()), Some("42883"), "{e}"),
    }
    // Still read-only after replay.
    assert_eq!(
        error_code(&s, "INSERT INTO shipped VALUES (1000, 'no')").await,
        "25006"
    );

    // A restartpoint, then a restart: redo starts at the restartpoint, not at the copy's
    // checkpoint.
    s.batch_execute("CHECKPOINT").await.expect("restartpoint");
    assert!(
        standby.log_text().contains("restartpoint complete"),
        "log:\n{}",
        standby.log_text()
    );
    drop(s);
    standby.stop();
    standby.start();
    let starts = redo_starts(&standby.log_text());
    assert_eq!(starts.len(), 2, "log:\n{}", standby.log_text());
    assert!(
        lsn(&starts[1]) > lsn(&starts[0]),
        "redo starts moved: {starts:?}"
    );
    assert!(
        lsn(&starts[1]) >= replay1
            || lsn(&starts[1]).segment_number(16 << 20) == replay1.segment_number(16 << 20),
        "redo starts at the restartpoint {starts:?} (replayed {replay1})"
    );
    let s = standby.client().await;
    assert_eq!(
        query_text(&s, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(check_invariant(&s).await, history_rows);
    assert_eq!(count(&s, "SELECT count(*) FROM shipped").await, 200);
    assert_eq!(count(&s, "SELECT count(*) FROM ser").await, 50);
    assert_eq!(
        error_code(&s, "SELECT nextval('ser_id_seq')").await,
        "25006"
    );

    // More WAL after the restart, then the primary "dies" and the standby is promoted.
    for i in 200..300 {
        p.execute("INSERT INTO shipped VALUES ($1, 'y')", &[&i])
            .await
            .expect("insert");
    }
    drop(p);
    primary.kill9();
    ship_wal(&primary, &standby);
    let promoted = promote_sql(&s, &standby, "SELECT pg_promote(true, 60)").await;
    assert!(promoted, "log:\n{}", standby.log_text());
    assert_eq!(
        query_text(&s, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("false")
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM shipped").await,
        300,
        "every shipped commit survives promotion"
    );
    // The serial column's sequence continues past every replicated value.
    for _ in 0..10 {
        s.execute("INSERT INTO ser (v) VALUES (-1)", &[])
            .await
            .expect("serial insert after promotion");
    }
    assert_eq!(count(&s, "SELECT count(*) FROM ser").await, 60);
    assert!(count(&s, "SELECT min(id)::int8 FROM ser WHERE v = -1").await > 50);
    let end = query_text(&s, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("lsn");
    let history = std::fs::read_to_string(standby.datadir.join("pg_wal/00000002.history"))
        .expect("history file");
    assert_eq!(history, format!("1\t{end}\tno recovery target specified\n"));
    assert!(!standby.datadir.join("standby.signal").exists());
    s.batch_execute("INSERT INTO shipped VALUES (1000, 'after promotion')")
        .await
        .expect("write after promotion");
    pgbench(&standby, &["-n", "-t", "50", "-c", "2", "postgres"]);
    let walfile = query_text(&s, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .await
        .expect("walfile");
    assert!(walfile.starts_with("00000002"), "{walfile}");
    let rows_before = check_invariant(&s).await;
    drop(s);

    // The promoted server restarts as a primary on timeline 2 with its data.
    standby.stop();
    standby.start();
    let s = standby.client().await;
    assert_eq!(
        query_text(&s, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("false")
    );
    let walfile = query_text(&s, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .await
        .expect("walfile");
    assert!(walfile.starts_with("00000002"), "{walfile}");
    assert_eq!(count(&s, "SELECT count(*) FROM shipped").await, 301);
    assert_eq!(check_invariant(&s).await, rows_before);
    s.batch_execute("INSERT INTO shipped VALUES (1001, 'after restart')")
        .await
        .expect("write");
    drop(s);
    standby.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_promote_command_and_sibling_follows_new_timeline() {
    let mut primary = TestServer::init();
    primary.start();
    {
        let p = primary.client().await;
        p.batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')",
        )
        .await
        .expect("setup");
    }
    primary.stop();
    let mut a = make_standby(&primary);
    let mut b = make_standby(&primary);
    drop(primary);
    a.start();
    b.start();

    // `lockstep promote -D` promotes A (like pg_ctl promote: waits, then says so).
    assert!(promote_cmd(&a));
    assert!(!a.datadir.join("promote.signal").exists());
    let ca = a.client().await;
    assert_eq!(
        query_text(&ca, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("false")
    );
    let history =
        std::fs::read_to_string(a.datadir.join("pg_wal/00000002.history")).expect("history");
    assert!(
        history.starts_with("1\t0/") && history.ends_with("\tno recovery target specified\n"),
        "{history:?}"
    );
    for i in 2..=50 {
        ca.execute("INSERT INTO t VALUES ($1, 'on timeline 2')", &[&i])
            .await
            .expect("insert on A");
    }
    // DDL of every kind is replayed too.
    ca.batch_execute(
        "CREATE INDEX t_v ON t (v);
         CREATE TABLE gone (id int); INSERT INTO gone VALUES (1), (2); TRUNCATE gone;
         INSERT INTO gone VALUES (3);
         CREATE TABLE dropped (id int); DROP TABLE dropped;",
    )
    .await
    .expect("ddl on A");
    let a_end = lsn(&query_text(&ca, "SELECT pg_current_wal_flush_lsn()::text")
        .await
        .expect("lsn"));

    // B (still on timeline 1) receives A's WAL and history file and follows onto timeline 2
    // (recovery_target_timeline = latest).
    let cb = b.client().await;
    ship_wal(&a, &b);
    wait_for("B to follow A onto timeline 2", WAIT, || {
        let cb = &cb;
        async move {
            let replay = lsn(&query_text(cb, "SELECT pg_last_wal_replay_lsn()::text").await?);
            (replay >= a_end).then_some(())
        }
    })
    .await;
    assert!(
        b.log_text().contains("new target timeline is 2"),
        "log:\n{}",
        b.log_text()
    );
    assert_eq!(
        count(&cb, "SELECT count(*) FROM t WHERE v = 'on timeline 2'").await,
        49
    );
    assert_eq!(
        count(&cb, "SELECT count(*) FROM gone").await,
        1,
        "TRUNCATE then INSERT replayed"
    );
    assert_eq!(error_code(&cb, "SELECT * FROM dropped").await, "42P01");
    let b_replay = lsn(&query_text(&cb, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("lsn"));
    assert_eq!(b_replay, a_end);
    assert_eq!(
        query_text(&cb, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("true")
    );

    // B promotes in turn: timeline 3, whose history names both switches.
    let promoted = promote_sql(&cb, &b, "SELECT pg_promote()").await;
    assert!(promoted, "log:\n{}", b.log_text());
    let h3 = std::fs::read_to_string(b.datadir.join("pg_wal/00000003.history")).expect("history 3");
    assert!(h3.starts_with(&history), "{h3:?}");
    assert!(
        h3.ends_with(&format!("\n\n2\t{a_end}\tno recovery target specified\n")),
        "{h3:?}"
    );
    cb.batch_execute("INSERT INTO t VALUES (51, 'on timeline 3')")
        .await
        .expect("write on B");
    // pg_promote on a primary: 55000 (or 42883 while the SQL function is not wired).
    let code = error_code(&cb, "SELECT pg_promote()").await;
    assert!(code == "55000" || code == "42883", "{code}");
    drop((ca, cb));
    a.stop();
    b.stop();
}

/// A standby must not treat damage in the middle of shipped WAL as "the end of what has
/// arrived" and wait forever: when valid records behind the damaged one prove it was once
/// durable, the startup process stops the server (exit status 2), as crash recovery refuses
/// to start on the same WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_wal_behind_valid_wal_stops_the_standby() {
    let mut primary = TestServer::init();
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .expect("ddl");
    primary.stop();
    let mut standby = make_standby(&primary);
    standby.start();
    let s = standby.client().await;
    let pos = lsn(&query_text(&s, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("lsn"));
    primary.start();
    {
        let p = primary.client().await;
        // Separate commits: each is flushed before the next is inserted, so the later
        // records' durable_lsn proves the first was durable.
        for i in 0..20 {
            p.execute("INSERT INTO t VALUES ($1)", &[&i])
                .await
                .expect("insert");
        }
    }
    primary.stop();
    let seg: u64 = 16 << 20;
    let name = format!(
        "00000001{:08X}{:08X}",
        pos.0 / seg / 0x100,
        (pos.0 / seg) % 0x100
    );
    let mut data = std::fs::read(primary.datadir.join("pg_wal").join(&name)).expect("segment");
    // A byte of the first new record's payload (the header is 40 bytes): its CRC fails.
    data[(pos.0 % seg) as usize + 44] ^= 0xff;
    let tmp = standby.datadir.join("pg_wal").join("shipping.tmp");
    std::fs::write(&tmp, &data).expect("write");
    std::fs::rename(&tmp, standby.datadir.join("pg_wal").join(&name)).expect("rename");
    drop(s);
    let deadline = std::time::Instant::now() + WAIT;
    while standby.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "standby kept running on corrupt WAL; log:\n{}",
            standby.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = standby.log_text();
    assert!(
        log.contains("WAL is corrupt") && log.contains(&pos.to_string()),
        "log:\n{log}"
    );
}

/// With `primary_conninfo` set, redo is bounded by what the walreceiver reports (flushed here
/// and on the primary), not by what happens to be in `pg_wal`: WAL copied in behind the
/// walreceiver's back is not replayed while the (not yet integrated) walreceiver reports
/// nothing. Promotion replays all of it: the primary is presumed gone, so its flush position
/// no longer bounds anything. The startup process and the walreceiver show in
/// pg_stat_activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_standby_waits_for_the_walreceiver_and_promotion_replays_everything() {
    let mut primary = TestServer::init();
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .expect("ddl");
    primary.stop();
    let mut standby = make_standby(&primary);
    standby
        .settings
        .push("primary_conninfo=host=127.0.0.1 port=1 user=postgres".into());
    standby.start();
    let s = standby.client().await;
    let workers: Vec<String> = s
        .query("SELECT backend_type FROM pg_stat_activity", &[])
        .await
        .expect("pg_stat_activity")
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect();
    assert!(workers.iter().any(|w| w == "startup"), "{workers:?}");
    assert!(workers.iter().any(|w| w == "walreceiver"), "{workers:?}");
    let before = query_text(&s, "SELECT pg_last_wal_replay_lsn()::text").await;
    primary.start();
    {
        let p = primary.client().await;
        for i in 0..10 {
            p.execute("INSERT INTO t VALUES ($1)", &[&i])
                .await
                .expect("insert");
        }
    }
    primary.stop();
    ship_wal(&primary, &standby);
    // A negative observation needs some time: several archive polls (100 ms each).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        count(&s, "SELECT count(*) FROM t").await,
        0,
        "replayed past the walreceiver's limit"
    );
    assert_eq!(
        query_text(&s, "SELECT pg_last_wal_replay_lsn()::text").await,
        before
    );
    assert!(promote_cmd(&standby));
    assert_eq!(
        count(&s, "SELECT count(*) FROM t").await,
        10,
        "promotion replays all local WAL"
    );
    let workers: Vec<String> = s
        .query("SELECT backend_type FROM pg_stat_activity", &[])
        .await
        .expect("pg_stat_activity")
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect();
    assert!(
        !workers.iter().any(|w| w == "walreceiver" || w == "startup"),
        "{workers:?}"
    );
    s.batch_execute("INSERT INTO t VALUES (100)")
        .await
        .expect("write after promotion");
    drop(s);
    standby.stop();
}

/// The other row of the decision table: a record cut short at the end of what has arrived
/// (a segment file shipped while the primary was still writing it) means "wait for more", not
/// corruption. Redo applies everything before it, waits, and goes on when the rest arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_record_at_the_end_of_shipped_wal_waits_for_more() {
    let mut primary = TestServer::init();
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .expect("ddl");
    primary.stop();
    let mut standby = make_standby(&primary);
    standby.start();
    let s = standby.client().await;
    primary.start();
    let end = {
        let p = primary.client().await;
        for i in 0..20 {
            p.execute("INSERT INTO t VALUES ($1)", &[&i])
                .await
                .expect("insert");
        }
        lsn(&query_text(&p, "SELECT pg_current_wal_flush_lsn()::text")
            .await
            .expect("lsn"))
    };
    primary.stop();
    let seg: u64 = 16 << 20;
    let name = format!(
        "00000001{:08X}{:08X}",
        end.0 / seg / 0x100,
        (end.0 / seg) % 0x100
    );
    let full = std::fs::read(primary.datadir.join("pg_wal").join(&name)).expect("segment");
    // Everything from 16 bytes before the last commit record's end on is missing.
    let mut torn = full.clone();
    let cut = (end.0 % seg) as usize - 16;
    torn[cut..].fill(0);
    let wal_dir = standby.datadir.join("pg_wal");
    let install = |data: &[u8]| {
        let tmp = wal_dir.join("shipping.tmp");
        std::fs::write(&tmp, data).expect("write");
        std::fs::rename(&tmp, wal_dir.join(&name)).expect("rename");
    };
    install(&torn);
    wait_for("the records before the torn one", WAIT, || {
        let s = &s;
        async move { (count(s, "SELECT count(*) FROM t").await == 19).then_some(()) }
    })
    .await;
    // Several polls later: still waiting, still serving, nothing half-applied.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(standby.is_running(), "log:\n{}", standby.log_text());
    assert_eq!(count(&s, "SELECT count(*) FROM t").await, 19);
    install(&full);
    wait_for("the rest after it arrived", WAIT, || {
        let s = &s;
        async move { (count(s, "SELECT count(*) FROM t").await == 20).then_some(()) }
    })
    .await;
    let replay = lsn(&query_text(&s, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .expect("lsn"));
    assert!(replay >= end, "{replay} >= {end}");
    // A restartpoint covers it; after kill -9 the standby starts from there, in recovery,
    // with every replayed row.
    s.batch_execute("CHECKPOINT").await.expect("restartpoint");
    assert!(
        standby.wait_for_log(&format!("snapshot lsn={replay}"), 0, WAIT),
        "no restartpoint at {replay}; log:\n{}",
        standby.log_text()
    );
    drop(s);
    standby.kill9();
    standby.start();
    let starts = redo_starts(&standby.log_text());
    assert_eq!(starts.last().map(|l| lsn(l)), Some(replay), "{starts:?}");
    let s = standby.client().await;
    assert_eq!(
        query_text(&s, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(count(&s, "SELECT count(*) FROM t").await, 20);
    drop(s);
    standby.stop();
}
