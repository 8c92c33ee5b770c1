//! The walsender against PostgreSQL 15's own replication clients (pg_receivewal,
//! pg_basebackup, psql with `replication=true`): protocol compliance, synchronous
//! replication release, slots, base backups, and bad input. Real processes on loopback.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::TestServer;
use common::repl::{Receiver, pg_tool, repl_psql, set_and_reload, text, wait_until};

fn start(extra_init: &[&str], settings: &[&str]) -> TestServer {
    let mut srv = TestServer::init_with(extra_init);
    for s in settings {
        srv.settings.push((*s).to_owned());
    }
    srv.start();
    srv
}

async fn flush_lsn(c: &tokio_postgres::Client) -> String {
    let rows = c
        .simple_query("SELECT pg_current_wal_flush_lsn()")
        .await
        .expect("flush lsn");
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .expect("no row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_commands_through_psql() {
    let srv = start(&["--wal-segsize", "1"], &[]);
    let o = repl_psql(
        &srv,
        "postgres",
        &[
            "IDENTIFY_SYSTEM",
            "SHOW wal_segment_size",
            "CREATE_REPLICATION_SLOT s1 PHYSICAL RESERVE_WAL",
            "READ_REPLICATION_SLOT s1",
            "READ_REPLICATION_SLOT nosuch",
            "CREATE_REPLICATION_SLOT s1 PHYSICAL",
            "DROP_REPLICATION_SLOT s1",
            "DROP_REPLICATION_SLOT s1",
            "SELECT 1",
        ],
    );
    let (out, err) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    // systemid|timeline|xlogpos|dbname(NULL)
    let f: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(f.len(), 4, "{out}");
    assert!(f[0].parse::<u64>().expect("systemid") > 0);
    assert_eq!(f[1], "1");
    assert!(f[2].contains('/'));
    assert_eq!(f[3], "");
    assert_eq!(lines[1], "1MB");
    assert!(lines[2].starts_with("s1|0/0"), "{out}");
    assert!(lines[3].starts_with("physical|0/"), "{out}");
    assert!(lines[3].ends_with("|1"), "{out}");
    assert_eq!(lines[4], "||", "{out}");
    assert!(
        err.contains("replication slot \"s1\" already exists"),
        "{err}"
    );
    assert!(
        err.contains("replication slot \"s1\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("cannot execute SQL commands in WAL sender for physical replication"),
        "{err}"
    );
    // TIMELINE_HISTORY sends the history file's raw bytes.
    let hist = "1\t0/1000100\tno recovery target specified\n";
    std::fs::write(srv.datadir.join("pg_wal/00000002.history"), hist).expect("history");
    let o = repl_psql(
        &srv,
        "postgres",
        &["TIMELINE_HISTORY 2", "TIMELINE_HISTORY 5"],
    );
    let (out, err) = text(&o);
    assert!(out.starts_with("00000002.history|1\t0/1000100"), "{out}");
    assert!(err.contains("00000005.history"), "{err}");
    // The primary is unaffected.
    let c = srv.client().await;
    c.simple_query("SELECT 1").await.expect("select");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_receivewal_streams_byte_identical_wal() {
    let srv = start(&["--wal-segsize", "1"], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY, b text)")
        .await
        .expect("create");
    let rcv = Receiver::start(&srv, "rcv1", &[]);
    // Enough WAL to cross segment boundaries (1 MiB segments).
    for i in 0..300 {
        c.execute("INSERT INTO t VALUES ($1, repeat('x', 10000))", &[&i])
            .await
            .expect("insert");
    }
    let flush: base::Lsn = flush_lsn(&c).await.parse().expect("lsn");
    let seg = 1u64 << 20;
    let last = flush.segment_number(seg);
    let first = last - 2;
    for segno in first..=last {
        let name = base::lsn::segment_file_name(base::TimelineId(1), segno, seg);
        let primary = std::fs::read(srv.datadir.join("pg_wal").join(&name)).expect("segment");
        let upto = if segno == last {
            flush.offset_in_segment(seg) as usize
        } else {
            seg as usize
        };
        assert!(
            wait_until(Duration::from_secs(20), || {
                rcv.segment(&name)
                    .is_some_and(|b| b.len() >= upto && b[..upto] == primary[..upto])
            }),
            "segment {name} differs; receiver log:\n{}",
            rcv.log_text()
        );
    }
    // The walsender shows up in pg_stat_activity.
    let rows = c
        .simple_query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")
        .await;
    if let Ok(rows) = rows
        && let Some(tokio_postgres::SimpleQueryMessage::Row(r)) = rows.first()
    {
        assert_eq!(r.get(0), Some("1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_commit_waits_for_pg_receivewal() {
    let srv = start(&[], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY)")
        .await
        .expect("create");
    let rcv = Receiver::start(&srv, "rcv1", &[]);
    set_and_reload(&srv, &c, "synchronous_standby_names = 'rcv1'").await;
    // Completes once the receiver has caught up and confirmed.
    tokio::time::timeout(
        Duration::from_secs(20),
        c.execute("INSERT INTO t VALUES (1)", &[]),
    )
    .await
    .expect("sync commit completes with the standby running")
    .expect("insert");

    rcv.signal(libc::SIGSTOP);
    let (w, mut notices) = client_with_notices(&srv).await;
    let cancel = w.cancel_token();
    let waiter = tokio::spawn(async move {
        let r = w.simple_query("INSERT INTO t VALUES (2)").await;
        (r.map(|_| ()), w)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "commit did not wait for the stopped standby"
    );
    let seen = c
        .query_one("SELECT count(*) FROM t WHERE a = 2", &[])
        .await
        .expect("count");
    assert_eq!(seen.get::<_, i64>(0), 0, "unconfirmed commit visible");
    // local and off do not wait.
    for level in ["local", "off"] {
        // Separate statements: one simple query string is one implicit transaction, which
        // would commit under the last SET.
        c.batch_execute(&format!("SET synchronous_commit = {level}"))
            .await
            .expect("set");
        tokio::time::timeout(
            Duration::from_secs(5),
            c.batch_execute(&format!(
                "INSERT INTO t VALUES ({})",
                if level == "local" { 10 } else { 11 }
            )),
        )
        .await
        .unwrap_or_else(|_| panic!("{level} waited"))
        .expect("insert");
        c.batch_execute("SET synchronous_commit = on")
            .await
            .expect("set");
    }
    // Cancel: the session gets a WARNING, the row stays invisible.
    cancel
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel");
    let (r, _w) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("cancel ends the wait")
        .expect("join");
    r.expect("the commit itself succeeded (durable locally)");
    let warning = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("a warning")
        .expect("notice");
    assert!(
        warning.contains("canceling wait for synchronous replication")
            && warning.contains("committed locally")
            && warning.contains("not been confirmed"),
        "{warning}"
    );
    let seen = c
        .query_one("SELECT count(*) FROM t WHERE a = 2", &[])
        .await
        .expect("count");
    assert_eq!(seen.get::<_, i64>(0), 0, "cancelled commit became visible");
    rcv.signal(libc::SIGCONT);
    assert!(
        wait_until_async(Duration::from_secs(20), || async {
            c.query_one("SELECT count(*) FROM t WHERE a = 2", &[])
                .await
                .map(|r| r.get::<_, i64>(0) == 1)
                .unwrap_or(false)
        })
        .await,
        "confirmed commit never became visible"
    );
    // Emptying synchronous_standby_names releases waiters.
    rcv.signal(libc::SIGSTOP);
    let w2 = srv.client().await;
    let waiter = tokio::spawn(async move {
        w2.simple_query("INSERT INTO t VALUES (3)")
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    set_and_reload(&srv, &c, "synchronous_standby_names = ''").await;
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("released by emptying synchronous_standby_names")
        .expect("join")
        .expect("insert");
    // An invalid value keeps the previous one (empty): commits still do not wait.
    let from = srv.log_text().len();
    set_and_reload(&srv, &c, "synchronous_standby_names = 'FIRST 0 (a'").await;
    assert!(srv.wait_for_log("keeping", from, Duration::from_secs(5)));
    tokio::time::timeout(
        Duration::from_secs(5),
        c.execute("INSERT INTO t VALUES (4)", &[]),
    )
    .await
    .expect("no wait")
    .expect("insert");
}

/// A client whose notices (message + detail) arrive on a channel.
async fn client_with_notices(
    srv: &TestServer,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (client, mut conn) = tokio_postgres::connect(&srv.conn_str(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        use futures::StreamExt;
        while let Some(Ok(m)) = stream.next().await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                let _ = tx.send(format!("{} {}", n.message(), n.detail().unwrap_or("")));
            }
        }
    });
    (client, rx)
}

async fn wait_until_async<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_and_any_with_two_receivers() {
    let srv = start(&[], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY)")
        .await
        .expect("create");
    let r1 = Receiver::start(&srv, "rcv1", &[]);
    let _r2 = Receiver::start(&srv, "rcv2", &[]);
    set_and_reload(
        &srv,
        &c,
        "synchronous_standby_names = 'FIRST 1 (rcv1, rcv2)'",
    )
    .await;
    tokio::time::timeout(
        Duration::from_secs(20),
        c.execute("INSERT INTO t VALUES (1)", &[]),
    )
    .await
    .expect("FIRST 1 with both running")
    .expect("insert");
    // rcv1 is the synchronous one: stopping it blocks commits even though rcv2 runs.
    r1.signal(libc::SIGSTOP);
    let w = srv.client().await;
    let waiter =
        tokio::spawn(async move { w.simple_query("INSERT INTO t VALUES (2)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "FIRST 1: commit did not wait for rcv1"
    );
    // ANY 1: rcv2 alone confirms.
    set_and_reload(&srv, &c, "synchronous_standby_names = 'ANY 1 (rcv1, rcv2)'").await;
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("ANY 1: released by rcv2")
        .expect("join")
        .expect("insert");
    tokio::time::timeout(
        Duration::from_secs(10),
        c.execute("INSERT INTO t VALUES (3)", &[]),
    )
    .await
    .expect("ANY 1 with rcv1 stopped")
    .expect("insert");
    // ANY 2 needs both.
    set_and_reload(&srv, &c, "synchronous_standby_names = 'ANY 2 (rcv1, rcv2)'").await;
    let w = srv.client().await;
    let waiter =
        tokio::spawn(async move { w.simple_query("INSERT INTO t VALUES (4)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "ANY 2: commit did not wait");
    r1.signal(libc::SIGCONT);
    tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("ANY 2 released once both confirm")
        .expect("join")
        .expect("insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_replication_timeout_degrades_loudly() {
    let srv = start(
        &[],
        &[
            "synchronous_standby_names=nobody",
            "synchronous_replication_timeout=500",
        ],
    );
    let c = srv.client().await;
    let from = 0;
    tokio::time::timeout(
        Duration::from_secs(10),
        c.batch_execute("CREATE TABLE t (a int PRIMARY KEY); INSERT INTO t VALUES (1)"),
    )
    .await
    .expect("released after synchronous_replication_timeout")
    .expect("insert");
    assert!(srv.wait_for_log(
        "synchronous replication timed out",
        from,
        Duration::from_secs(5)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_basebackup_fetch_and_tar() {
    let srv = start(&["--wal-segsize", "1"], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
        .await
        .expect("setup");
    let out = srv.base_dir().join("bb_plain");
    let o = std::process::Command::new(pg_tool("pg_basebackup"))
        .arg("-d")
        .arg(format!("host=127.0.0.1 port={} user=postgres", srv.port))
        .arg("-D")
        .arg(&out)
        .args(["-X", "fetch", "-c", "fast", "--no-manifest"])
        .output()
        .expect("pg_basebackup");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "backup_label",
        "global/lockstep.control",
        "global/pg_authid",
        "lockstep.conf",
        "pg_hba.conf",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let wal: Vec<_> = std::fs::read_dir(out.join("pg_wal"))
        .expect("pg_wal")
        .flatten()
        .collect();
    assert!(!wal.is_empty(), "no WAL with -X fetch");
    assert!(
        std::fs::read_dir(out.join("base"))
            .expect("base")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("snapshot.")),
        "no snapshot"
    );
    // Tar format, no WAL, progress.
    let out = srv.base_dir().join("bb_tar");
    let o = std::process::Command::new(pg_tool("pg_basebackup"))
        .arg("-d")
        .arg(format!("host=127.0.0.1 port={} user=postgres", srv.port))
        .arg("-D")
        .arg(&out)
        .args(["-Ft", "-X", "none", "-c", "fast", "--no-manifest", "-P"])
        .output()
        .expect("pg_basebackup");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list = std::process::Command::new("tar")
        .arg("tf")
        .arg(out.join("base.tar"))
        .output()
        .expect("tar");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("global/lockstep.control"), "{list}");
    assert!(list.contains("pg_wal/"), "{list}");
    // Manifests and compression are refused clearly.
    let o = std::process::Command::new(pg_tool("pg_basebackup"))
        .arg("-d")
        .arg(format!("host=127.0.0.1 port={} user=postgres", srv.port))
        .arg("-D")
        .arg(srv.base_dir().join("bb_manifest"))
        .args(["-X", "none"])
        .output()
        .expect("pg_basebackup");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifests are not supported"));
    c.simple_query("INSERT INTO t VALUES (3)")
        .await
        .expect("primary still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_retains_wal_then_becomes_lost() {
    // 1 MiB segments, 3 MB keep limit, frequent WAL-size checkpoints.
    let srv = start(
        &["--wal-segsize", "1"],
        &["max_slot_wal_keep_size=3", "max_wal_size=2"],
    );
    let o = repl_psql(
        &srv,
        "postgres",
        &["CREATE_REPLICATION_SLOT keep PHYSICAL RESERVE_WAL"],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = repl_psql(&srv, "postgres", &["READ_REPLICATION_SLOT keep"]);
    let (out, _) = text(&o);
    let restart: base::Lsn = out
        .trim()
        .split('|')
        .nth(1)
        .expect("lsn")
        .parse()
        .expect("lsn");
    let seg = 1u64 << 20;
    let first = base::lsn::segment_file_name(base::TimelineId(1), restart.segment_number(seg), seg);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY, b text)")
        .await
        .expect("create");
    // ~2 MB of WAL, then a checkpoint: still within the limit, the slot's segment stays.
    for i in 0..200 {
        c.execute("INSERT INTO t VALUES ($1, repeat('y', 10000))", &[&i])
            .await
            .expect("insert");
    }
    c.simple_query("CHECKPOINT").await.expect("checkpoint");
    assert!(
        srv.datadir.join("pg_wal").join(&first).exists(),
        "slot did not retain {first}"
    );
    // Past the limit: the slot is lost, its WAL goes, the primary keeps committing.
    for i in 200..600 {
        c.execute("INSERT INTO t VALUES ($1, repeat('y', 10000))", &[&i])
            .await
            .expect("insert");
    }
    c.simple_query("CHECKPOINT").await.expect("checkpoint");
    assert!(
        srv.log_text()
            .contains("invalidating replication slot \"keep\"")
    );
    assert!(!srv.datadir.join("pg_wal").join(&first).exists());
    let o = repl_psql(
        &srv,
        "postgres",
        &["START_REPLICATION SLOT keep PHYSICAL 0/0"],
    );
    let (_, err) = text(&o);
    assert!(
        err.contains("can no longer get changes from replication slot \"keep\""),
        "{err}"
    );
    c.execute("INSERT INTO t VALUES (1000, 'z')", &[])
        .await
        .expect("primary keeps working");
}

/// Opens a replication connection by hand (trust auth) and returns the socket after
/// ReadyForQuery.
fn raw_replication_conn(port: u16) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in [("user", "postgres"), ("replication", "true")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    pkt.extend_from_slice(&body);
    s.write_all(&pkt).expect("startup");
    // Read until ReadyForQuery.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).expect("read");
        assert!(n > 0, "closed before ReadyForQuery");
        buf.extend_from_slice(&tmp[..n]);
        if buf.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
            return s;
        }
    }
}

fn read_to_end(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_clear_errors() {
    let srv = start(&[], &[]);
    let c = srv.client().await;
    // Garbage message length.
    let mut s = raw_replication_conn(srv.port);
    s.write_all(&[b'Q', 0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .expect("write");
    let reply = read_to_end(&mut s);
    assert!(String::from_utf8_lossy(&reply).contains("08P01"));
    // A malformed standby message inside START_REPLICATION.
    let flush = flush_lsn(&c).await;
    let mut s = raw_replication_conn(srv.port);
    let cmd = format!("START_REPLICATION {flush}\0");
    let cmd = cmd.as_bytes();
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((cmd.len() + 4) as u32).to_be_bytes());
    q.extend_from_slice(cmd);
    s.write_all(&q).expect("write");
    // A standby status update of the wrong length: FATAL 08P01.
    s.write_all(&[b'd', 0, 0, 0, 7, b'r', 1, 2]).expect("write");
    let reply = read_to_end(&mut s);
    assert!(
        String::from_utf8_lossy(&reply).contains("08P01"),
        "{reply:?}"
    );
    // Unknown message type in the command phase.
    let mut s = raw_replication_conn(srv.port);
    s.write_all(&[b'P', 0, 0, 0, 4]).expect("write");
    let reply = read_to_end(&mut s);
    assert!(String::from_utf8_lossy(&reply).contains("08P01"));

    // Beyond the end of WAL, unknown timeline.
    let o = repl_psql(
        &srv,
        "postgres",
        &[
            "START_REPLICATION FF/0",
            &format!("START_REPLICATION {flush} TIMELINE 7"),
        ],
    );
    let (_, err) = text(&o);
    assert!(
        err.contains(
            "requested starting point FF/0 is ahead of the WAL flush position of this server"
        ),
        "{err}"
    );
    assert!(
        err.contains("requested timeline 7 is not in this server's history"),
        "{err}"
    );

    // A role without REPLICATION.
    c.batch_execute("CREATE ROLE bob LOGIN PASSWORD 'pw'")
        .await
        .expect("role");
    let o = repl_psql(&srv, "bob", &["IDENTIFY_SYSTEM"]);
    let (_, err) = text(&o);
    assert!(
        err.contains("permission denied to start WAL sender"),
        "{err}"
    );

    // The primary is unaffected.
    c.batch_execute("CREATE TABLE t (a int); INSERT INTO t VALUES (1)")
        .await
        .expect("primary works");
}

/// Better than PostgreSQL: a commit that was durable locally but never confirmed by the
/// synchronous standby (its client cancelled the wait) must not become visible after a crash
/// and restart either — PostgreSQL shows it as soon as recovery ends — whether the restart
/// finds it in the checkpoint snapshot or replays it from WAL; an unconfirmed UPDATE shows
/// the row's confirmed image meanwhile. They become visible once a synchronous standby
/// confirms them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_commit_stays_invisible_after_restart() {
    let mut srv = start(&[], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY, b int); INSERT INTO t VALUES (1, 0)")
        .await
        .expect("setup");
    c.simple_query("CHECKPOINT").await.expect("checkpoint");
    set_and_reload(&srv, &c, "synchronous_standby_names = 'rcv1'").await;
    // Commits locally, waits for the (absent) standby, and is cancelled.
    let unconfirmed = |sql: &'static str| {
        let srv = &srv;
        async move {
            let w = srv.client().await;
            let cancel = w.cancel_token();
            let waiter = tokio::spawn(async move { w.simple_query(sql).await.map(|_| ()) });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!waiter.is_finished(), "no standby, yet {sql} did not wait");
            cancel
                .cancel_query(tokio_postgres::NoTls)
                .await
                .expect("cancel");
            tokio::time::timeout(Duration::from_secs(10), waiter)
                .await
                .expect("cancel ends the wait")
                .expect("join")
                .expect("committed locally");
        }
    };
    unconfirmed("INSERT INTO t VALUES (2, 0)").await;
    unconfirmed("UPDATE t SET b = 1 WHERE a = 1").await;
    // These two are now in the snapshot; the next one only in the WAL after it.
    c.simple_query("CHECKPOINT").await.expect("checkpoint");
    unconfirmed("INSERT INTO t VALUES (3, 0)").await;
    drop(c);
    srv.kill9();
    srv.start();
    let c = srv.client().await;
    let state = || {
        let c = &c;
        async move {
            c.query("SELECT a, b FROM t ORDER BY a", &[])
                .await
                .expect("select")
                .iter()
                .map(|r| (r.get::<_, i32>(0), r.get::<_, i32>(1)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        state().await,
        vec![(1, 0)],
        "after restart: the confirmed row as it was confirmed, nothing unconfirmed"
    );
    let _rcv = Receiver::start(&srv, "rcv1", &[]);
    let all = vec![(1, 1), (2, 0), (3, 0)];
    assert!(
        wait_until_async(Duration::from_secs(20), || async { state().await == all }).await,
        "the standby's confirmation did not make the recovered commits visible: {:?}",
        state().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_receivewal_with_slot_advances_restart_lsn() {
    let srv = start(&["--wal-segsize", "1"], &[]);
    let o = repl_psql(
        &srv,
        "postgres",
        &["CREATE_REPLICATION_SLOT s1 PHYSICAL RESERVE_WAL"],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let _rcv = Receiver::start(&srv, "rcv1", &["-S", "s1"]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int PRIMARY KEY, b text)")
        .await
        .expect("create");
    for i in 0..100 {
        c.execute("INSERT INTO t VALUES ($1, repeat('x', 5000))", &[&i])
            .await
            .expect("insert");
    }
    let flush: base::Lsn = flush_lsn(&c).await.parse().expect("lsn");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (out, _) = text(&repl_psql(&srv, "postgres", &["READ_REPLICATION_SLOT s1"]));
            out.trim()
                .split('|')
                .nth(1)
                .and_then(|l| l.parse::<base::Lsn>().ok())
                .is_some_and(|l| l >= flush)
        }),
        "restart_lsn did not follow the standby's flush reports"
    );
    // An active slot cannot be dropped or used twice.
    let (_, err) = text(&repl_psql(&srv, "postgres", &["DROP_REPLICATION_SLOT s1"]));
    assert!(err.contains("is active for PID"), "{err}");
}

/// Walsenders must not hold up shutdown: smart shutdown waits for regular sessions only,
/// then walsenders send what is left and go; a stopped (unresponsive) standby delays a fast
/// shutdown by a bounded grace period at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_streaming_standbys() {
    let mut srv = start(&[], &[]);
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (a int)")
        .await
        .expect("create");
    let _rcv = Receiver::start(&srv, "rcv1", &[]);
    assert!(srv.wait_for_log("caught up", 0, Duration::from_secs(20)));
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    let st = srv.stop_with(libc::SIGTERM).expect("status");
    assert!(st.success(), "{}", srv.log_text());
    assert!(t.elapsed() < Duration::from_secs(20));

    srv.start();
    let rcv = Receiver::start(&srv, "rcv2", &[]);
    let from = srv.log_text().len();
    assert!(srv.wait_for_log("caught up", from, Duration::from_secs(20)));
    rcv.signal(libc::SIGSTOP);
    let t = std::time::Instant::now();
    let st = srv.stop_with(libc::SIGINT).expect("status");
    assert!(st.success(), "{}", srv.log_text());
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}
