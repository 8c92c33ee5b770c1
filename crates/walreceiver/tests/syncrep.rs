//! Synchronous replication with PostgreSQL 15 as the primary and lockstep's walreceiver as
//! its synchronous standby: our write and flush replies are what releases PostgreSQL's
//! commit waiters, and the `walreceiver-before-flush` failpoint stalls exactly the flush.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base::{Lsn, TimelineId};
use common::*;
use tokio::sync::watch;
use walreceiver::shared::WalRcvStatus;
use walreceiver::{WalRcvConfig, WalRcvShared};

fn pause_file(which: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lockstep-wr-{which}-pause-{}", std::process::id()))
}

/// The failpoints of this test binary (configured before the first check, once per process).
fn configure_failpoints() {
    base::failpoint::configure(&format!(
        "walreceiver-before-flush=pause_while_exists({}),walreceiver-before-write=pause_while_exists({})",
        pause_file("flush").display(),
        pause_file("write").display()
    ));
}

/// Removes the pause files however the test ends, so no stall outlives it.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Waits for a background psql; `None` if it is still running after `timeout`.
async fn finished_within(child: &mut std::process::Child, timeout: Duration) -> Option<bool> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status.success());
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_wait_for_our_write_and_flush() {
    configure_failpoints();
    let flush_pause = pause_file("flush");
    let write_pause = pause_file("write");
    let _ = std::fs::remove_file(&flush_pause);
    let _ = std::fs::remove_file(&write_pause);
    let _cleanup = RemoveOnDrop(vec![flush_pause.clone(), write_pause.clone()]);
    let app = "lockstep_sync";
    let pg = PgCluster::start(&[&format!("synchronous_standby_names = '{app}'")]);
    // Before we connect nothing could confirm a synchronous commit.
    pg.psql("SET synchronous_commit = local; CREATE TABLE t(x int)");
    let dir = tempfile::tempdir().expect("tempdir");
    let flush = pg.flush_lsn();
    let start = flush - flush % SEG;
    let mut cfg = WalRcvConfig::new(
        pg.conninfo(&format!("application_name={app}")),
        dir.path(),
        SEG,
        pg.system_identifier(),
        TimelineId(1),
        Lsn(start),
    );
    // Replies must come from writes and flushes, not from a timer.
    cfg.status_interval = Some(Duration::from_secs(30));
    let shared = Arc::new(WalRcvShared::new(Lsn(start), TimelineId(1)));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));
    wait_for(Duration::from_secs(20), || {
        let s = pg.psql(&format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{app}' AND state = 'streaming'"
        ));
        (s == "sync").then_some(())
    })
    .await
    .expect("we are PostgreSQL's synchronous standby");

    // 1. synchronous_commit = on completes while we stream.
    let mut c = pg.psql_background("SET synchronous_commit = on; INSERT INTO t VALUES (1)");
    assert_eq!(
        finished_within(&mut c, Duration::from_secs(20)).await,
        Some(true),
        "a synchronous commit completes"
    );

    // 2. Flush stalled: `remote_write` completes, `on` waits. The remote_write commit comes
    //    first: its WAL is written and reported before the (stalled) flush; WAL arriving
    //    during a flush waits for it, as in PostgreSQL's walreceiver.
    std::fs::write(&flush_pause, b"").expect("pause flush");
    let mut rw =
        pg.psql_background("SET synchronous_commit = remote_write; INSERT INTO t VALUES (3)");
    assert_eq!(
        finished_within(&mut rw, Duration::from_secs(20)).await,
        Some(true),
        "a remote_write commit completes on our write reply"
    );
    let mut on = pg.psql_background("SET synchronous_commit = on; INSERT INTO t VALUES (2)");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        finished_within(&mut on, Duration::from_millis(10)).await,
        None,
        "an `on` commit waits for our flush"
    );

    // 3. Releasing the stall completes the waiting commit.
    std::fs::remove_file(&flush_pause).expect("release flush");
    assert_eq!(
        finished_within(&mut on, Duration::from_secs(20)).await,
        Some(true),
        "the `on` commit completes once we flush"
    );

    // 4. Write stalled: even remote_write waits; released, it completes.
    std::fs::write(&write_pause, b"").expect("pause write");
    let mut rw =
        pg.psql_background("SET synchronous_commit = remote_write; INSERT INTO t VALUES (4)");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        finished_within(&mut rw, Duration::from_millis(10)).await,
        None,
        "a remote_write commit waits for our write"
    );
    std::fs::remove_file(&write_pause).expect("release write");
    assert_eq!(
        finished_within(&mut rw, Duration::from_secs(20)).await,
        Some(true),
        "the remote_write commit completes once we write"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM t"), "4");

    assert_eq!(shared.status(), WalRcvStatus::Streaming);
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("no error");
    let flushed = shared.flushed_lsn().0;
    assert_same_wal(dir.path(), &pg.wal_dir(), start, flushed);
}

/// `remote_apply` with `wal_receiver_status_interval` disabled (PostgreSQL's test 059): the
/// only reply that can release the commit is the one redo asks for with apply feedback.
/// A stand-in for redo "replays" up to the replay limit whenever WAL arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_apply_is_released_by_apply_feedback() {
    configure_failpoints();
    let app = "lockstep_apply";
    let pg = PgCluster::start(&[&format!("synchronous_standby_names = '{app}'")]);
    pg.psql("SET synchronous_commit = local; CREATE TABLE t(x int)");
    let dir = tempfile::tempdir().expect("tempdir");
    let flush = pg.flush_lsn();
    let start = flush - flush % SEG;
    let mut cfg = WalRcvConfig::new(
        pg.conninfo(&format!("application_name={app}")),
        dir.path(),
        SEG,
        pg.system_identifier(),
        TimelineId(1),
        Lsn(start),
    );
    cfg.status_interval = None;
    cfg.receiver_timeout = None;
    let shared = Arc::new(WalRcvShared::new(Lsn(start), TimelineId(1)));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));
    let redo_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let redo = {
        let shared = shared.clone();
        let on = redo_on.clone();
        tokio::spawn(async move {
            loop {
                let arrived = shared.wal_arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let limit = shared.replay_limit();
                if on.load(std::sync::atomic::Ordering::Acquire) && limit > shared.replayed_lsn() {
                    shared.set_replayed(limit, true);
                }
                tokio::select! {
                    _ = arrived => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };
    // With replies disabled PostgreSQL has no flush position from us yet, so it does not
    // count us as synchronous until the first (forced) reply.
    wait_for(Duration::from_secs(20), || {
        let s = pg.psql(&format!(
            "SELECT state FROM pg_stat_replication WHERE application_name = '{app}'"
        ));
        (s == "streaming").then_some(())
    })
    .await
    .expect("streaming");

    // Without replay, remote_apply waits (flush alone does not release it).
    let mut c =
        pg.psql_background("SET synchronous_commit = remote_apply; INSERT INTO t VALUES (1)");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        finished_within(&mut c, Duration::from_millis(10)).await,
        None
    );
    // Redo replays; its apply feedback releases the commit.
    redo_on.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(
        finished_within(&mut c, Duration::from_secs(20)).await,
        Some(true),
        "remote_apply completes on apply feedback"
    );
    let replay = parse_lsn(&pg.psql(&format!(
        "SELECT replay_lsn FROM pg_stat_replication WHERE application_name = '{app}'"
    )));
    assert!(replay > start, "PostgreSQL shows our replay position");

    redo.abort();
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("no error");
}
