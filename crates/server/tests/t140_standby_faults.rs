//! Standby faults: `kill -9` of the standby mid-stream, and a network cut between primary and
//! standby (a TCP proxy that pauses, then resets). While the only synchronous standby is away,
//! `on` commits wait and are invisible; once it is back they complete. Afterwards the
//! standby's WAL is a byte-for-byte prefix of the primary's and replay has caught up.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestServer;
use common::cluster::wal_files;
use common::proxy::Proxy;

/// The two tests run one after the other: each picks free ports for its servers and its proxy
/// binds an ephemeral one, and in parallel the proxy of one could take a port the other had
/// just picked for a server.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BLOCKED_FOR: Duration = Duration::from_millis(800);
const COMPLETES_WITHIN: Duration = Duration::from_secs(30);

async fn one_text(server: &TestServer, sql: &str) -> String {
    let c = server.client().await;
    let rows = c.simple_query(sql).await.expect(sql);
    rows.into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

async fn count(server: &TestServer) -> i64 {
    one_text(server, "SELECT count(*) FROM t")
        .await
        .parse()
        .expect("count")
}

/// Inserts `n` rows with ids from `first` at `synchronous_commit = on`, on one connection.
async fn insert_rows(conn: String, first: i32, n: i32) {
    let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    for id in first..first + n {
        c.execute("INSERT INTO t VALUES ($1, repeat('x', 200))", &[&id])
            .await
            .expect("insert");
    }
}

/// Every WAL byte the standby has flushed equals the primary's byte at the same place.
async fn assert_wal_prefix(primary: &TestServer, standby: &TestServer) {
    let received: base::Lsn = one_text(standby, "SELECT pg_last_wal_receive_lsn()::text")
        .await
        .parse()
        .expect("receive lsn");
    let seg_size: u64 = {
        let s = one_text(primary, "SHOW wal_segment_size").await;
        let mb: u64 = s.trim_end_matches("MB").parse().expect("segment size");
        mb << 20
    };
    let primary_files = wal_files(&primary.wal_dir());
    let standby_files = wal_files(&standby.wal_dir());
    let mut compared = 0u64;
    for (name, bytes) in &standby_files {
        let segno = u64::from_str_radix(&name[8..16], 16).expect("hex")
            * (0x1_0000_0000 / seg_size)
            + u64::from_str_radix(&name[16..24], 16).expect("hex");
        let start = segno * seg_size;
        if start >= received.0 {
            continue;
        }
        let upto = ((received.0 - start).min(seg_size)) as usize;
        let Some((_, theirs)) = primary_files.iter().find(|(n, _)| n == name) else {
            // Removed on the primary by a checkpoint: nothing to compare with.
            continue;
        };
        assert!(
            bytes.len() >= upto && theirs.len() >= upto,
            "segment {name} shorter than the received range"
        );
        if let Some(i) = (0..upto).find(|&i| bytes[i] != theirs[i]) {
            panic!(
                "standby WAL differs from the primary's in {name} at offset {i} (received up to {received})"
            );
        }
        compared += upto as u64;
    }
    assert!(compared > 0, "no WAL compared");
}

async fn wait_count(server: &TestServer, want: i64) {
    let deadline = Instant::now() + COMPLETES_WITHIN;
    loop {
        if let Ok(c) = server.try_client().await
            && let Ok(r) = c.query_one("SELECT count(*) FROM t", &[]).await
        {
            let n: i64 = r.get(0);
            if n == want {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{want} rows did not arrive; log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn primary_with_table() -> TestServer {
    let mut primary = TestServer::init_with(&["--wal-segsize", "1"]);
    primary.start();
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
        .await
        .expect("create");
    primary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_standby_resumes_from_its_flush_point() {
    let _serial = SERIAL.lock().await;
    let primary = primary_with_table().await;
    let mut standby = TestServer::standby_of(&primary, "s1");
    standby.start();
    primary.set_conf("synchronous_standby_names", "s1");
    primary.reload_conf().await;
    primary
        .wait_for_standby("s1", "streaming", Some("sync"))
        .await;

    // kill -9 in the middle of a stream of commits.
    let writer = tokio::spawn(insert_rows(primary.conn_str(), 0, 3000));
    tokio::time::sleep(Duration::from_millis(300)).await;
    standby.kill9();
    let before = count(&primary).await;
    tokio::time::sleep(BLOCKED_FOR).await;
    assert_eq!(
        count(&primary).await,
        before,
        "commits became visible while the only synchronous standby was dead"
    );
    assert!(
        !writer.is_finished(),
        "commits completed without the standby"
    );

    standby.start();
    tokio::time::timeout(COMPLETES_WITHIN * 2, writer)
        .await
        .expect("commits did not complete after the standby came back")
        .expect("writer");
    assert_eq!(count(&primary).await, 3000);
    wait_count(&standby, 3000).await;
    assert_wal_prefix(&primary, &standby).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_blocks_commits_until_the_standby_is_back() {
    let _serial = SERIAL.lock().await;
    let primary = primary_with_table().await;
    let target: SocketAddr = format!("127.0.0.1:{}", primary.port).parse().expect("addr");
    let proxy = Proxy::start(target).expect("proxy");
    let mut standby = TestServer::standby_via(&primary, proxy.port(), "s1");
    // Detect the cut quickly; the default (60 s) would make the test slow, not different.
    standby.settings.push("wal_receiver_timeout=2s".into());
    standby.start();
    primary.set_conf("synchronous_standby_names", "s1");
    primary.set_conf("wal_sender_timeout", "2s");
    primary.reload_conf().await;
    primary
        .wait_for_standby("s1", "streaming", Some("sync"))
        .await;
    insert_rows(primary.conn_str(), 0, 200).await;

    // A partition: connections stay open, nothing passes.
    proxy.pause();
    let mut writer = tokio::spawn(insert_rows(primary.conn_str(), 1000, 100));
    assert!(
        tokio::time::timeout(BLOCKED_FOR, &mut writer)
            .await
            .is_err(),
        "a commit completed across a network partition"
    );
    assert_eq!(
        count(&primary).await,
        200,
        "an unconfirmed commit is visible"
    );
    proxy.resume();
    tokio::time::timeout(COMPLETES_WITHIN, &mut writer)
        .await
        .expect("commits did not complete after the partition healed")
        .expect("writer");

    // A reset: the standby reconnects and resumes from its flush point.
    proxy.reset_connections();
    tokio::time::timeout(COMPLETES_WITHIN, insert_rows(primary.conn_str(), 2000, 100))
        .await
        .expect("commits did not complete after a reset");
    // A longer cut: the walsender and walreceiver time out and reconnect.
    proxy.pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.drop_connections();
    proxy.resume();
    tokio::time::timeout(COMPLETES_WITHIN, insert_rows(primary.conn_str(), 3000, 100))
        .await
        .expect("commits did not complete after timeouts and reconnect");
    assert_eq!(count(&primary).await, 500);
    wait_count(&standby, 500).await;
    assert_wal_prefix(&primary, &standby).await;
    assert!(
        proxy.connections_accepted() >= 2,
        "the standby never reconnected"
    );
}
