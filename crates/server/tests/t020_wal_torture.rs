//! WAL torture: a damaged tail is the end of WAL; damage followed by durable WAL is
//! corruption and the server refuses to start, naming the segment file and the LSN.
//!
//! Each case commits rows one at a time (every commit flushed before the next begins, so
//! every later record proves the earlier ones were durable), kills the server with SIGKILL,
//! damages the WAL on disk, and starts it again.

mod common;

use std::os::unix::fs::FileExt;

use base::Lsn;
use common::TestServer;

/// With `--wal-segsize 1`.
const SEG: u64 = 1 << 20;

fn segment_path(srv: &TestServer, lsn: Lsn) -> std::path::PathBuf {
    srv.datadir
        .join("pg_wal")
        .join(base::lsn::segment_file_name(
            base::TimelineId(1),
            lsn.segment_number(SEG),
            SEG,
        ))
}

/// Creates a table, commits `n` single-row inserts, kills the server; returns the start LSNs of
/// the commit records of those inserts, in order.
async fn workload(srv: &mut TestServer, n: i32) -> Vec<Lsn> {
    srv.start();
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
        .await
        .expect("create");
    let filler = "x".repeat(100);
    for k in 0..n {
        c.execute("INSERT INTO t VALUES ($1, $2)", &[&k, &filler])
            .await
            .expect("insert");
    }
    srv.kill9();
    let lsns = common::record_lsns(&srv.waldump());
    // The last n records are the inserts' commits (checkpoint and CREATE TABLE come first).
    assert!(
        lsns.len() >= n as usize,
        "waldump shows {} records",
        lsns.len()
    );
    lsns[lsns.len() - n as usize..].to_vec()
}

async fn count(srv: &TestServer) -> i64 {
    let c = srv.client().await;
    c.query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_tails_end_the_wal() {
    for damage in ["truncated", "zeroed", "garbage"] {
        let mut srv = TestServer::init_with(&["--wal-segsize", "1"]);
        let commits = workload(&mut srv, 50).await;
        let last = *commits.last().expect("commits");
        let path = segment_path(&srv, last);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open segment");
        let off = last.offset_in_segment(SEG);
        match damage {
            // A torn final write: the file ends inside the last record.
            "truncated" => f.set_len(off + 20).expect("truncate"),
            "zeroed" => f.write_all_at(&[0u8; 64], off).expect("zero"),
            // Random bytes over the last record and beyond.
            _ => {
                let junk: Vec<u8> = (0..5000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                f.write_all_at(&junk, off + 8).expect("garbage");
            }
        }
        drop(f);
        srv.start();
        assert_eq!(
            count(&srv).await,
            49,
            "{damage}: recovery stops at the last valid record"
        );
        // The server appends after the damaged point and restarts cleanly.
        let c = srv.client().await;
        c.execute("INSERT INTO t VALUES (1000, 'after')", &[])
            .await
            .expect("insert after recovery");
        srv.stop();
        srv.start();
        assert_eq!(count(&srv).await, 50, "{damage}");
        srv.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_followed_by_valid_records_refuses_to_start() {
    let mut srv = TestServer::init_with(&["--wal-segsize", "1"]);
    let commits = workload(&mut srv, 60).await;
    let victim = commits[20];
    let path = segment_path(&srv, victim);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open segment");
    let off = victim.offset_in_segment(SEG) + 60;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).expect("read");
    f.write_all_at(&[b[0] ^ 0x10], off).expect("flip");
    drop(f);
    let (status, log) = srv.start_expect_failure();
    assert!(!status.success());
    let file = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        log.contains(file),
        "log names the segment file {file}:\n{log}"
    );
    assert!(
        log.contains(&victim.to_string()),
        "log names the LSN {victim}:\n{log}"
    );
    assert!(log.contains("corrupt"), "log says corruption:\n{log}");
}

/// A failed WAL flush stops the server at once (PostgreSQL's PANIC; an fsync is never
/// retried), nothing unflushed was acknowledged, and a restart recovers every commit that was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wal_flush_stops_the_server() {
    let mut srv = TestServer::init();
    // The 40th flush fails (the first ones serve start-up and the table's creation).
    srv.env.push((
        "LOCKSTEP_FAILPOINTS".into(),
        "wal-flush-error=error(40)".into(),
    ));
    srv.start();
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY)")
        .await
        .expect("create");
    let mut acked = Vec::new();
    for k in 0..200 {
        match c.execute("INSERT INTO t VALUES ($1)", &[&k]).await {
            Ok(_) => acked.push(k),
            Err(_) => break,
        }
    }
    assert!(acked.len() < 200, "the failpoint fired");
    // The server exits on its own, with status 2.
    let mut exited = None;
    for _ in 0..200 {
        if !srv.is_running() {
            exited = Some(());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        exited.is_some(),
        "server still running after a failed flush"
    );
    let log = srv.log_text();
    assert!(log.contains("PANIC") && log.contains("fdatasync"), "{log}");
    srv.env.clear();
    srv.kill9();
    srv.start();
    let c = srv.client().await;
    let rows = c.query("SELECT k FROM t", &[]).await.expect("select");
    let present: std::collections::HashSet<i32> = rows.iter().map(|r| r.get(0)).collect();
    for k in &acked {
        assert!(present.contains(k), "acknowledged insert {k} lost");
    }
    srv.stop();
}
