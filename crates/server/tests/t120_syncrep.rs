//! Synchronous replication between real processes: *when* a commit returns at each
//! `synchronous_commit` level, FIRST and ANY, reload without restart, and visibility of a
//! commit whose wait was cancelled.
//!
//! A standby's write, flush or replay is stalled with a failpoint that pauses while a file
//! exists (`LOCKSTEP_FAILPOINTS=name=pause_while_exists(path)`), so a test decides exactly
//! what the standby has done when it looks at the commit.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestServer;
use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// Long enough that a commit that should wait visibly has not returned; short enough to keep
/// the suite fast. A commit that must *not* wait returns in milliseconds here.
const BLOCKED_FOR: Duration = Duration::from_millis(800);
/// Generous bound for a commit that must complete (a loaded CI machine is slow).
const COMPLETES_WITHIN: Duration = Duration::from_secs(20);

async fn reload(server: &TestServer) {
    server.reload_conf().await;
    // The reload is asynchronous (as PostgreSQL's SIGHUP); wait until sessions see it.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

struct Pause(PathBuf);

impl Pause {
    fn new(dir: &Path, name: &str) -> Pause {
        Pause(dir.join(format!("pause-{name}")))
    }
    fn on(&self) {
        std::fs::write(&self.0, b"").expect("create pause file");
    }
    fn off(&self) {
        let _ = std::fs::remove_file(&self.0);
    }
    fn failpoint(&self, name: &str) -> String {
        format!("{name}=pause_while_exists({})", self.0.display())
    }
}

/// A client whose notices (WARNINGs) are collected.
async fn client_with_notices(
    server: &TestServer,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (client, mut conn) = tokio_postgres::connect(&server.conn_str(), NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(msg)) = stream.next().await {
            if let AsyncMessage::Notice(n) = msg {
                let _ = tx.send(format!("{}: {}", n.severity(), n.message()));
            }
        }
    });
    (client, rx)
}

async fn insert_at(client: &Client, level: &str, id: i32) -> Result<u64, tokio_postgres::Error> {
    client
        .batch_execute(&format!("SET synchronous_commit = {level}"))
        .await?;
    client
        .execute("INSERT INTO t VALUES ($1, $2)", &[&id, &level])
        .await
}

async fn visible(server: &TestServer, id: i32) -> bool {
    let c = server.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM t WHERE id = $1", &[&id])
        .await
        .expect("count")
        .get(0);
    n == 1
}

/// A primary with table `t` and one standby per name, streaming (not yet synchronous).
async fn primary_with_standbys(
    names: &[&str],
    failpoints: &[String],
) -> (TestServer, Vec<TestServer>) {
    let mut primary = TestServer::init();
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, level text)")
        .await
        .expect("create");
    let mut standbys = Vec::new();
    for name in names {
        let mut s = TestServer::standby_of(&primary, name);
        if !failpoints.is_empty() {
            s.env
                .push(("LOCKSTEP_FAILPOINTS".into(), failpoints.join(",")));
        }
        s.start();
        primary.wait_for_standby(name, "streaming", None).await;
        standbys.push(s);
    }
    (primary, standbys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_returns_when_the_standby_has_done_what_it_promises() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let write = Pause::new(tmp.path(), "write");
    let flush = Pause::new(tmp.path(), "flush");
    let apply = Pause::new(tmp.path(), "apply");
    let fps = vec![
        write.failpoint("walreceiver-before-write"),
        flush.failpoint("walreceiver-before-flush"),
        apply.failpoint("startup-before-apply"),
    ];
    let (primary, _standbys) = primary_with_standbys(&["s1"], &fps).await;
    primary.set_conf("synchronous_standby_names", "s1");
    reload(&primary).await;
    primary
        .wait_for_standby("s1", "streaming", Some("sync"))
        .await;
    let client = primary.client().await;

    // Every level completes while the standby keeps up.
    for (i, level) in ["off", "local", "remote_write", "on", "remote_apply"]
        .iter()
        .enumerate()
    {
        tokio::time::timeout(COMPLETES_WITHIN, insert_at(&client, level, i as i32))
            .await
            .unwrap_or_else(|_| panic!("{level} did not complete"))
            .expect("insert");
    }

    // The standby has written but not flushed: remote_write returns, on waits. The
    // remote_write commit comes first: its WAL is written and reported, then the flush
    // stalls, and (as in PostgreSQL) WAL arriving during a flush waits for it.
    flush.on();
    for (id, level) in [(12, "remote_write"), (10, "off"), (11, "local")] {
        tokio::time::timeout(COMPLETES_WITHIN, insert_at(&client, level, id))
            .await
            .unwrap_or_else(|_| panic!("{level} waited for the standby's flush"))
            .expect("insert");
    }
    let c2 = primary.client().await;
    let mut on = tokio::spawn(async move { insert_at(&c2, "on", 13).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut on).await.is_err(),
        "on returned before the standby flushed"
    );
    assert!(
        !visible(&primary, 13).await,
        "an unconfirmed commit is visible"
    );
    flush.off();
    tokio::time::timeout(COMPLETES_WITHIN, on)
        .await
        .expect("on did not complete after the flush")
        .expect("join")
        .expect("insert");
    assert!(visible(&primary, 13).await);

    // The standby has not even written: remote_write waits too.
    write.on();
    let c3 = primary.client().await;
    let mut rw = tokio::spawn(async move { insert_at(&c3, "remote_write", 20).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut rw).await.is_err(),
        "remote_write returned before the standby wrote"
    );
    tokio::time::timeout(COMPLETES_WITHIN, insert_at(&client, "local", 21))
        .await
        .expect("local waited for the standby")
        .expect("insert");
    write.off();
    tokio::time::timeout(COMPLETES_WITHIN, rw)
        .await
        .expect("remote_write did not complete")
        .expect("join")
        .expect("insert");

    // The standby has flushed but not replayed: on returns, remote_apply waits.
    apply.on();
    tokio::time::timeout(COMPLETES_WITHIN, insert_at(&client, "on", 30))
        .await
        .expect("on waited for replay")
        .expect("insert");
    let c4 = primary.client().await;
    let mut ra = tokio::spawn(async move { insert_at(&c4, "remote_apply", 31).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut ra).await.is_err(),
        "remote_apply returned before the standby replayed"
    );
    apply.off();
    tokio::time::timeout(COMPLETES_WITHIN, ra)
        .await
        .expect("remote_apply did not complete")
        .expect("join")
        .expect("insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_and_any_choose_whose_flush_counts_and_reload_changes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Only s1's flush is stalled (the failpoint file is per standby).
    let flush_s1 = Pause::new(tmp.path(), "flush-s1");
    let mut primary = TestServer::init();
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, level text)")
        .await
        .expect("create");
    let mut s1 = TestServer::standby_of(&primary, "s1");
    s1.env.push((
        "LOCKSTEP_FAILPOINTS".into(),
        flush_s1.failpoint("walreceiver-before-flush"),
    ));
    s1.start();
    let mut s2 = TestServer::standby_of(&primary, "s2");
    s2.start();

    primary.set_conf("synchronous_standby_names", "FIRST 1 (s1, s2)");
    reload(&primary).await;
    primary
        .wait_for_standby("s1", "streaming", Some("sync"))
        .await;
    primary
        .wait_for_standby("s2", "streaming", Some("potential"))
        .await;

    flush_s1.on();
    let c = primary.client().await;
    let mut blocked = tokio::spawn(async move { insert_at(&c, "on", 1).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut blocked)
            .await
            .is_err(),
        "FIRST 1 (s1, s2): s2's flush released a commit s1 has not flushed"
    );

    // ANY 1: either standby's flush is enough; the reload releases the waiting commit.
    primary.set_conf("synchronous_standby_names", "ANY 1 (s1, s2)");
    reload(&primary).await;
    tokio::time::timeout(COMPLETES_WITHIN, blocked)
        .await
        .expect("ANY 1 (s1, s2) did not release the commit s2 flushed")
        .expect("join")
        .expect("insert");
    primary
        .wait_for_standby("s1", "streaming", Some("quorum"))
        .await;
    primary
        .wait_for_standby("s2", "streaming", Some("quorum"))
        .await;

    // ANY 2: both must flush.
    primary.set_conf("synchronous_standby_names", "ANY 2 (s1, s2)");
    reload(&primary).await;
    let c = primary.client().await;
    let mut both = tokio::spawn(async move { insert_at(&c, "on", 2).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut both).await.is_err(),
        "ANY 2 (s1, s2) released a commit only s2 flushed"
    );
    flush_s1.off();
    tokio::time::timeout(COMPLETES_WITHIN, both)
        .await
        .expect("ANY 2 did not complete once both flushed")
        .expect("join")
        .expect("insert");
    drop(s2);
    drop(s1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_leaves_the_commit_invisible_until_the_standby_confirms_it() {
    let (primary, mut standbys) = primary_with_standbys(&["s1"], &[]).await;
    primary.set_conf("synchronous_standby_names", "s1");
    reload(&primary).await;
    primary
        .wait_for_standby("s1", "streaming", Some("sync"))
        .await;
    let mut standby = standbys.remove(0);
    standby.stop();

    let (a, mut notices) = client_with_notices(&primary).await;
    let cancel = a.cancel_token();
    let mut commit = tokio::spawn(async move { insert_at(&a, "on", 42).await });
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut commit)
            .await
            .is_err(),
        "a commit returned with its only synchronous standby stopped"
    );
    assert!(
        !visible(&primary, 42).await,
        "another session sees an unconfirmed commit"
    );

    cancel.cancel_query(NoTls).await.expect("cancel");
    let result = tokio::time::timeout(COMPLETES_WITHIN, commit)
        .await
        .expect("the cancelled commit did not return")
        .expect("join");
    assert!(
        result.is_ok(),
        "a cancelled wait is not an error: {result:?}"
    );
    let warning = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("no WARNING")
        .expect("notice channel");
    assert!(
        warning.starts_with("WARNING") && warning.contains("synchronous replication"),
        "{warning}"
    );
    assert!(
        !visible(&primary, 42).await,
        "a cancelled, unconfirmed commit became visible"
    );

    standby.start();
    let deadline = std::time::Instant::now() + COMPLETES_WITHIN;
    while !visible(&primary, 42).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit did not become visible after the standby came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + COMPLETES_WITHIN;
    while !visible(&standby, 42).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit is not on the standby"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
