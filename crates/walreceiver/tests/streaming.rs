//! The walreceiver against a real PostgreSQL 15 primary: the streaming protocol is
//! PostgreSQL's, so PostgreSQL's walsender is the reference peer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base::{Lsn, TimelineId};
use common::*;
use tokio::sync::watch;
use walreceiver::shared::WalRcvStatus;
use walreceiver::{WalRcvConfig, WalRcvShared};

struct Receiver {
    shared: Arc<WalRcvShared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), walreceiver::WalRcvError>>,
    dir: tempfile::TempDir,
    start: u64,
}

fn start_receiver(
    pg: &PgCluster,
    app: &str,
    sysid: u64,
    tweak: impl FnOnce(&mut WalRcvConfig),
) -> Receiver {
    let flush = pg.flush_lsn();
    start_receiver_at(pg, app, sysid, flush - flush % SEG, tweak)
}

fn start_receiver_at(
    pg: &PgCluster,
    app: &str,
    sysid: u64,
    start: u64,
    tweak: impl FnOnce(&mut WalRcvConfig),
) -> Receiver {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WalRcvConfig::new(
        pg.conninfo(&format!("application_name={app}")),
        dir.path(),
        SEG,
        sysid,
        TimelineId(1),
        Lsn(start),
    );
    cfg.status_interval = Some(Duration::from_secs(1));
    tweak(&mut cfg);
    let shared = Arc::new(WalRcvShared::new(Lsn(start), TimelineId(1)));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));
    Receiver {
        shared,
        stop,
        task,
        dir,
        start,
    }
}

impl Receiver {
    async fn stop(self) -> tempfile::TempDir {
        self.stop.send(true).expect("send stop");
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("walreceiver stops")
            .expect("join");
        r.expect("walreceiver ended without error");
        assert_eq!(self.shared.status(), WalRcvStatus::Stopped);
        self.dir
    }

    async fn wait_flushed(&self, lsn: u64, what: &str) {
        let shared = self.shared.clone();
        wait_for(Duration::from_secs(30), || {
            (shared.flushed_lsn().0 >= lsn).then_some(())
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{what}: flushed {} did not reach {}; status {:?}, last error {:?}",
                shared.flushed_lsn(),
                Lsn(lsn),
                shared.status(),
                shared.last_error()
            )
        });
    }
}

fn replication_row(pg: &PgCluster, app: &str) -> Option<(u64, u64, String)> {
    let out = pg.psql(&format!(
        "SELECT write_lsn, flush_lsn, state FROM pg_stat_replication WHERE application_name = '{app}'"
    ));
    let line = out.lines().next()?;
    let f: Vec<&str> = line.split('|').collect();
    if f.len() != 3 || f[0].is_empty() || f[1].is_empty() {
        return None;
    }
    Some((parse_lsn(f[0]), parse_lsn(f[1]), f[2].to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_postgres_wal_byte_for_byte() {
    let pg = PgCluster::start(&[]);
    let app = "lockstep_stream";
    let rcv = start_receiver(&pg, app, pg.system_identifier(), |_| {});
    let shared = rcv.shared.clone();
    wait_for(Duration::from_secs(20), || {
        (shared.status() == WalRcvStatus::Streaming).then_some(())
    })
    .await
    .expect("streaming");

    pg.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 100000)");
    pg.psql("SELECT pg_switch_wal()");
    pg.psql("INSERT INTO t SELECT generate_series(1, 1000)");
    let target = pg.flush_lsn();
    rcv.wait_flushed(target, "first batch").await;
    assert!(rcv.shared.written_lsn() >= rcv.shared.flushed_lsn());

    // Our replies reach PostgreSQL: pg_stat_replication shows our name and positions.
    let (w1, f1, state) = wait_for(Duration::from_secs(20), || {
        replication_row(&pg, app).filter(|(_, f, _)| *f >= target)
    })
    .await
    .expect("pg_stat_replication shows our flush position");
    assert_eq!(state, "streaming");
    assert!(w1 >= f1);

    pg.psql("INSERT INTO t SELECT generate_series(1, 50000)");
    let target2 = pg.flush_lsn();
    assert!(target2 > target);
    rcv.wait_flushed(target2, "second batch").await;
    let (w2, f2, _) = wait_for(Duration::from_secs(20), || {
        replication_row(&pg, app).filter(|(_, f, _)| *f >= target2)
    })
    .await
    .expect("positions advance");
    assert!(w2 > w1 && f2 > f1, "write/flush advanced");

    let info = rcv.shared.info();
    assert_eq!(info.receive_start_lsn, Lsn(rcv.start));
    assert_eq!(info.sender_port, Some(i32::from(pg.port)));
    assert!(info.conninfo.contains(&format!("application_name={app}")));
    assert!(info.latest_end_lsn.0 >= target2);
    assert!(info.last_msg_receipt_time.is_some());

    let flushed = rcv.shared.flushed_lsn().0;
    let start = rcv.start;
    let dir = rcv.stop().await;
    assert_same_wal(dir.path(), &pg.wal_dir(), start, flushed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_system_identifier_never_streams() {
    let pg = PgCluster::start(&[]);
    let rcv = start_receiver(&pg, "lockstep_wrongid", pg.system_identifier() ^ 1, |_| {});
    let shared = rcv.shared.clone();
    let err = wait_for(Duration::from_secs(20), || shared.last_error())
        .await
        .expect("an error is reported");
    assert!(
        err.contains("database system identifier differs between the primary and standby"),
        "{err}"
    );
    // It keeps retrying (backoff), and never streams.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(shared.status(), WalRcvStatus::Streaming);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_stat_replication"),
        "0",
        "no walsender streams to us"
    );
    let dir = rcv.stop().await;
    let files = std::fs::read_dir(dir.path()).expect("ls").count();
    assert_eq!(files, 0, "no WAL was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_primary_restart() {
    let pg = PgCluster::start(&[]);
    let rcv = start_receiver(&pg, "lockstep_restart", pg.system_identifier(), |_| {});
    pg.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 20000)");
    let before = pg.flush_lsn();
    rcv.wait_flushed(before, "before restart").await;

    pg.restart();
    pg.psql("INSERT INTO t SELECT generate_series(1, 20000)");
    pg.psql("SELECT pg_switch_wal()");
    pg.psql("INSERT INTO t SELECT generate_series(1, 100)");
    let after = pg.flush_lsn();
    rcv.wait_flushed(after, "after restart").await;
    let shared = rcv.shared.clone();
    wait_for(Duration::from_secs(20), || {
        (shared.status() == WalRcvStatus::Streaming).then_some(())
    })
    .await
    .expect("streaming again");
    let flushed = rcv.shared.flushed_lsn().0;
    let start = rcv.start;
    let dir = rcv.stop().await;
    assert_same_wal(dir.path(), &pg.wal_dir(), start, flushed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_promoted_upstream_onto_its_new_timeline() {
    let primary = PgCluster::start(&[]);
    primary.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000)");
    let upstream = PgCluster::standby_of(&primary);
    let replayed = wait_for(Duration::from_secs(30), || {
        let r = upstream.psql("SELECT pg_last_wal_replay_lsn()");
        (!r.is_empty()).then(|| parse_lsn(&r))
    })
    .await
    .expect("the PostgreSQL standby replays");
    // We stream from the PostgreSQL standby (cascading), on timeline 1.
    let rcv = start_receiver_at(
        &upstream,
        "lockstep_cascade",
        primary.system_identifier(),
        replayed - replayed % SEG,
        |_| {},
    );
    // A second one must stay on timeline 1 (recovery_target_timeline = 'current').
    let stay = start_receiver_at(
        &upstream,
        "lockstep_current",
        primary.system_identifier(),
        replayed - replayed % SEG,
        |c| c.recovery_target_timeline = walreceiver::RecoveryTargetTimeline::Current,
    );
    primary.psql("INSERT INTO t SELECT generate_series(1, 5000)");
    let before = primary.flush_lsn();
    rcv.wait_flushed(before, "timeline 1 through the cascade")
        .await;
    stay.wait_flushed(before, "timeline 1 (current)").await;

    upstream.promote();
    upstream.psql("INSERT INTO t SELECT generate_series(1, 5000)");
    let target = upstream.flush_lsn();
    rcv.wait_flushed(target, "timeline 2").await;
    assert_eq!(rcv.shared.info().received_tli, 2);

    let history = std::fs::read_to_string(rcv.dir.path().join("00000002.history"))
        .expect("the new timeline's history file was fetched");
    let switch = parse_lsn(history.split('\t').nth(1).expect("switch point"));
    assert!(switch >= before && switch <= target);
    // The 'current' one streamed timeline 1 to its end and went no further.
    stay.wait_flushed(switch, "timeline 1 to the switch point")
        .await;
    let err = wait_for(Duration::from_secs(20), || stay.shared.last_error())
        .await
        .expect("it reports why it stopped");
    assert!(err.contains("recovery_target_timeline"), "{err}");
    assert_eq!(stay.shared.flushed_lsn().0, switch);
    assert_ne!(stay.shared.status(), WalRcvStatus::Streaming);
    let stay_start = stay.start;
    let stay_dir = stay.stop().await;
    assert!(
        std::fs::read_dir(stay_dir.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .all(|n| !(n.len() == 24 && n.starts_with("00000002"))),
        "no timeline 2 WAL"
    );
    assert_same_wal_tli(stay_dir.path(), &primary.wal_dir(), 1, stay_start, switch);

    let flushed = rcv.shared.flushed_lsn().0;
    let start = rcv.start;
    let dir = rcv.stop().await;
    // Timeline 1 is the old primary's WAL up to the switch; timeline 2 the promoted
    // standby's (its first segment starts with timeline 1's bytes, as PostgreSQL's does).
    assert_same_wal_tli(dir.path(), &primary.wal_dir(), 1, start, switch);
    assert_same_wal_tli(
        dir.path(),
        &upstream.wal_dir(),
        2,
        (switch - switch % SEG).max(start),
        flushed,
    );
}
