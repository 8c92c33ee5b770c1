//! Sessions against each other: visibility of uncommitted work, row-lock waits with READ
//! COMMITTED re-checks, deadlocks, cancellation, timeouts, termination, detached commits
//! (DESIGN.md decision 5), read-only (hot standby) mode, connection limits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base::{Lsn, SyncCommitLevel};
use common::{err, ok, open, q, rows};
use sql::guc::{ConfigSource, ServerConfig};
use sql::{Engine, NullHooks, Session};

/// Long enough for a spawned statement to reach its lock wait on this (busy) machine.
const SETTLE: Duration = Duration::from_millis(150);

async fn two(engine: &Arc<Engine>) -> (Session, Session) {
    let mut a = open(engine);
    let b = open(engine);
    ok(&mut a, "CREATE TABLE t (k int PRIMARY KEY, v int)").await;
    ok(&mut a, "INSERT INTO t VALUES (1, 10), (2, 20)").await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_insert_is_invisible_to_others() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "INSERT INTO t VALUES (3, 30)").await;
    assert_eq!(rows(&mut a, "SELECT count(*) FROM t").await, vec!["3"]);
    assert_eq!(rows(&mut b, "SELECT count(*) FROM t").await, vec!["2"]);
    assert_eq!(
        rows(&mut b, "SELECT v FROM t WHERE k = 3").await,
        Vec::<String>::new()
    );
    ok(&mut a, "COMMIT").await;
    assert_eq!(
        rows(&mut b, "SELECT v FROM t WHERE k = 3").await,
        vec!["30"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_lock_wait_then_recheck_on_the_newest_version() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    assert_eq!(
        ok(&mut a, "UPDATE t SET v = v + 1 WHERE k = 1").await,
        "UPDATE 1"
    );
    let waiter = tokio::spawn(async move {
        let tag = ok(&mut b, "UPDATE t SET v = v * 2 WHERE k = 1").await;
        (tag, b)
    });
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished(), "B must wait for A's row lock");
    ok(&mut a, "COMMIT").await;
    let (tag, _b) = waiter.await.expect("b");
    assert_eq!(tag, "UPDATE 1");
    // B's update applied to A's committed version: (10 + 1) * 2.
    assert_eq!(
        rows(&mut a, "SELECT v FROM t WHERE k = 1").await,
        vec!["22"]
    );

    // A change that makes the row stop matching B's WHERE: B skips it after the wait.
    let mut b = open(&engine);
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "UPDATE t SET v = 0 WHERE k = 2").await;
    let waiter = tokio::spawn(async move { ok(&mut b, "UPDATE t SET v = -1 WHERE v = 20").await });
    tokio::time::sleep(SETTLE).await;
    ok(&mut a, "COMMIT").await;
    assert_eq!(waiter.await.expect("b"), "UPDATE 0");
    assert_eq!(rows(&mut a, "SELECT v FROM t WHERE k = 2").await, vec!["0"]);

    // A deleted row is skipped by the waiting writer.
    let mut b = open(&engine);
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "DELETE FROM t WHERE k = 2").await;
    let waiter = tokio::spawn(async move { ok(&mut b, "UPDATE t SET v = 5 WHERE k = 2").await });
    tokio::time::sleep(SETTLE).await;
    ok(&mut a, "COMMIT").await;
    assert_eq!(waiter.await.expect("b"), "UPDATE 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_waits_and_returns_the_new_version() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "UPDATE t SET v = 11 WHERE k = 1").await;
    let waiter = tokio::spawn(async move {
        ok(&mut b, "BEGIN").await;
        let r = rows(&mut b, "SELECT v FROM t WHERE k = 1 FOR UPDATE").await;
        ok(&mut b, "COMMIT").await;
        r
    });
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished());
    ok(&mut a, "COMMIT").await;
    assert_eq!(waiter.await.expect("b"), vec!["11"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlock_is_detected_with_40p01() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    ok(&mut b, "BEGIN").await;
    ok(&mut a, "UPDATE t SET v = 1 WHERE k = 1").await;
    ok(&mut b, "UPDATE t SET v = 2 WHERE k = 2").await;
    let a_task = tokio::spawn(async move {
        let r = q(&mut a, "UPDATE t SET v = 1 WHERE k = 2").await;
        (r.outcome.map_err(|e| e.code.code()), a)
    });
    tokio::time::sleep(SETTLE).await;
    let rb = q(&mut b, "UPDATE t SET v = 2 WHERE k = 1").await;
    let b_code = rb.outcome.as_ref().err().map(|e| e.code.code());
    if b_code == Some("40P01") {
        assert_eq!(
            rb.outcome.as_ref().err().map(|e| e.message.as_str()),
            Some("deadlock detected")
        );
        ok(&mut b, "ROLLBACK").await;
        let (ra, mut a) = a_task.await.expect("a");
        assert!(ra.is_ok());
        ok(&mut a, "COMMIT").await;
    } else {
        let (ra, _a) = a_task.await.expect("a");
        assert_eq!(ra.err(), Some("40P01"));
        ok(&mut b, "COMMIT").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_lock_wait_is_57014() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "UPDATE t SET v = 1 WHERE k = 1").await;

    // Through the CancelHandle (CancelRequest path).
    let handle = b.cancel_handle();
    let waiter = tokio::spawn(async move {
        let e = err(&mut b, "UPDATE t SET v = 2 WHERE k = 1", "57014").await;
        (e, b)
    });
    tokio::time::sleep(SETTLE).await;
    handle.cancel();
    let (e, mut b) = waiter.await.expect("b");
    assert_eq!(e.message, "canceling statement due to user request");
    // A cancel is forgotten at the next statement.
    assert_eq!(rows(&mut b, "SELECT 1").await, vec!["1"]);

    // Through Engine::cancel_request with pid and secret.
    let (pid, secret) = (b.pid(), b.secret_key());
    let waiter = tokio::spawn(async move {
        err(&mut b, "UPDATE t SET v = 2 WHERE k = 1", "57014").await;
        b
    });
    tokio::time::sleep(SETTLE).await;
    engine.cancel_request(pid, secret.wrapping_add(1));
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished(), "wrong secret is ignored");
    engine.cancel_request(pid, secret);
    let mut b = waiter.await.expect("b");

    // Through pg_cancel_backend from a third session.
    let mut c = open(&engine);
    let waiter = tokio::spawn(async move {
        err(&mut b, "UPDATE t SET v = 2 WHERE k = 1", "57014").await;
    });
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        rows(&mut c, &format!("SELECT pg_cancel_backend({pid})")).await,
        vec!["t"]
    );
    waiter.await.expect("b");
    ok(&mut a, "COMMIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_and_lock_timeouts() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "UPDATE t SET v = 1 WHERE k = 1").await;
    ok(&mut b, "SET lock_timeout = '100ms'").await;
    let e = err(&mut b, "UPDATE t SET v = 2 WHERE k = 1", "55P03").await;
    assert_eq!(e.message, "canceling statement due to lock timeout");
    ok(&mut b, "RESET lock_timeout").await;
    ok(&mut b, "SET statement_timeout = 100").await;
    let e = err(&mut b, "UPDATE t SET v = 2 WHERE k = 1", "57014").await;
    assert_eq!(e.message, "canceling statement due to statement timeout");
    // The timeout does not leak into the next statement.
    assert_eq!(rows(&mut b, "SELECT 1").await, vec!["1"]);
    ok(&mut a, "COMMIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_backend_ends_waits_and_wakes_terminated() {
    let (engine, _) = common::new_engine();
    let (mut a, b) = two(&engine).await;
    let pid = b.pid();
    let b = Arc::new(tokio::sync::Mutex::new(b));
    let watcher = {
        let b = b.clone();
        tokio::spawn(async move {
            let guard = b.lock().await;
            guard.terminated().await;
        })
    };
    tokio::time::sleep(SETTLE).await;
    assert!(!watcher.is_finished());
    assert_eq!(
        rows(&mut a, &format!("SELECT pg_terminate_backend({pid})")).await,
        vec!["t"]
    );
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("terminated() resolves")
        .expect("watcher");
    let mut guard = b.lock().await;
    let r = q(&mut guard, "SELECT 1").await;
    let e = r.outcome.expect_err("terminated session refuses work");
    assert_eq!(e.code.code(), "57P01");
    assert!(e.is_fatal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_terminates_sessions_and_refuses_new_ones() {
    let (engine, _) = common::new_engine();
    let s = open(&engine);
    engine.terminate_all();
    tokio::time::timeout(Duration::from_secs(5), s.terminated())
        .await
        .expect("terminated");
    let e = engine
        .open_session(common::superuser())
        .expect_err("shutting down");
    assert_eq!(e.code.code(), "57P01");
}

#[tokio::test]
async fn max_connections_and_unregistering_on_drop() {
    let (mgr, _log) = txn::testing::memory_manager();
    let mut cfg = ServerConfig::new();
    cfg.set("max_connections", "2", ConfigSource::CommandLine)
        .expect("set");
    let engine = Engine::new(mgr, cfg, Arc::new(NullHooks::default()));
    let a = open(&engine);
    let _b = open(&engine);
    let e = engine
        .open_session(common::superuser())
        .expect_err("too many");
    assert_eq!(e.code.code(), "53300");
    assert_eq!(e.message, "sorry, too many clients already");
    drop(a);
    assert_eq!(engine.session_count(), 1);
    let _c = open(&engine);
}

#[tokio::test]
async fn dropping_a_session_rolls_back() {
    let (engine, _) = common::new_engine();
    let (mut a, mut b) = two(&engine).await;
    ok(&mut b, "BEGIN").await;
    ok(&mut b, "UPDATE t SET v = 99 WHERE k = 1").await;
    drop(b);
    assert_eq!(
        rows(&mut a, "SELECT v FROM t WHERE k = 1").await,
        vec!["10"]
    );
    // The row lock is gone too.
    assert_eq!(
        ok(&mut a, "UPDATE t SET v = 11 WHERE k = 1").await,
        "UPDATE 1"
    );
}

#[tokio::test]
async fn hot_standby_refuses_writes_with_25006() {
    let (engine, hooks) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int)").await;
    engine.manager().set_read_only(true);
    hooks
        .in_recovery
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let e = err(&mut s, "INSERT INTO t VALUES (1)", "25006").await;
    assert_eq!(
        e.message,
        "cannot execute INSERT in a read-only transaction"
    );
    err(&mut s, "CREATE TABLE u (a int)", "25006").await;
    err(&mut s, "BEGIN READ WRITE", "25006").await;
    assert_eq!(rows(&mut s, "SHOW transaction_read_only").await, vec!["on"]);
    assert_eq!(rows(&mut s, "SELECT pg_is_in_recovery()").await, vec!["t"]);
    err(&mut s, "SELECT pg_current_wal_lsn()", "55000").await;
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t").await, vec!["0"]);
    let reported = s.take_reported_parameters();
    assert!(reported.contains(&("in_hot_standby".to_owned(), "on".to_owned())));
}

/// A commit log whose commits are written and flushed at once but never confirmed by a
/// standby: commits at remote levels wait until interrupted.
#[derive(Debug, Default)]
struct NoStandbyLog {
    next: parking_lot::Mutex<u64>,
    mgr: parking_lot::Mutex<std::sync::Weak<txn::TxnManager>>,
}

impl txn::CommitLog for NoStandbyLog {
    fn insert(
        &self,
        _kind: wal_kind::RecordKind,
        _flags: u8,
        _xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, txn::TxnError> {
        let end = {
            let mut n = self.next.lock();
            let start = (*n).max(Lsn::FIRST.0);
            let end = start + 64 + payload.len() as u64;
            *n = end;
            on_assigned(Lsn(start), Lsn(end));
            end
        };
        if let Some(mgr) = self.mgr.lock().upgrade() {
            mgr.advance_watermarks(|w| {
                w[SyncCommitLevel::Off.index()] = end;
                w[SyncCommitLevel::Local.index()] = end;
            });
        }
        Ok(Lsn(end))
    }
}

mod wal_kind {
    pub use wal::record::RecordKind;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_sync_commit_is_detached_with_warning_and_stays_invisible() {
    let log = Arc::new(NoStandbyLog::default());
    let mgr = txn::TxnManager::new(
        Arc::new(storage::Catalog::new()),
        Arc::new(storage::Watermarks::new(Lsn::FIRST.0)),
        log.clone(),
        1,
    );
    *log.mgr.lock() = Arc::downgrade(&mgr);
    let engine = Engine::new(mgr, ServerConfig::new(), Arc::new(NullHooks::default()));
    let mut a = open(&engine);
    let mut b = open(&engine);
    ok(&mut a, "SET synchronous_commit = local").await;
    ok(&mut a, "CREATE TABLE t (k int)").await;
    ok(&mut b, "SET synchronous_commit = local").await;
    assert_eq!(rows(&mut b, "SELECT count(*) FROM t").await, vec!["0"]);

    ok(&mut a, "SET synchronous_commit = on").await;
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "INSERT INTO t VALUES (1)").await;
    let handle = a.cancel_handle();
    let committer = tokio::spawn(async move {
        let tag = ok(&mut a, "COMMIT").await;
        (tag, a.take_notices(), a)
    });
    tokio::time::sleep(SETTLE).await;
    assert!(!committer.is_finished(), "waits for the standby");
    handle.cancel();
    let (tag, notices, a) = committer.await.expect("commit");
    assert_eq!(tag, "COMMIT");
    let w = notices.first().expect("warning");
    assert_eq!(w.severity, base::error::Severity::Warning);
    assert_eq!(
        w.message,
        "canceling wait for synchronous replication due to user request"
    );
    assert_eq!(
        w.detail.as_deref(),
        Some(
            "The transaction has already committed locally, but it has not been confirmed by the synchronous standby; other sessions will see it only after the standby confirms it."
        )
    );
    // Not acknowledged, so not visible (DESIGN.md decision 5).
    assert_eq!(rows(&mut b, "SELECT count(*) FROM t").await, vec!["0"]);
    assert_eq!(a.transaction_status(), sql::TxnStatus::Idle);
}

/// A child insert and a parent delete running at once cannot both succeed: whichever looks
/// second meets the other's uncommitted change and waits for it, in either order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_checks_wait_for_the_other_side() {
    let (engine, _) = common::new_engine();
    let mut a = open(&engine);
    let mut b = open(&engine);
    ok(&mut a, "CREATE TABLE p (id int PRIMARY KEY)").await;
    ok(
        &mut a,
        "CREATE TABLE c (id int PRIMARY KEY, pid int REFERENCES p)",
    )
    .await;
    ok(&mut a, "INSERT INTO p VALUES (1), (2)").await;

    // Child first: the parent delete waits, then finds the committed child.
    ok(&mut a, "BEGIN").await;
    ok(&mut a, "INSERT INTO c VALUES (10, 1)").await;
    let deleter = tokio::spawn(async move {
        let e = err(&mut b, "DELETE FROM p WHERE id = 1", "23503").await;
        (e, b)
    });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !deleter.is_finished(),
        "the delete must wait for the child's transaction"
    );
    ok(&mut a, "COMMIT").await;
    let (e, mut b) = deleter.await.expect("join");
    assert!(
        e.message.contains("still referenced")
            || e.detail.iter().any(|d| d.contains("still referenced")),
        "{e:?}"
    );

    // Parent first: the child insert waits; the parent's delete commits; the child fails.
    ok(&mut b, "BEGIN").await;
    ok(&mut b, "DELETE FROM p WHERE id = 2").await;
    let inserter = tokio::spawn(async move {
        let e = err(&mut a, "INSERT INTO c VALUES (11, 2)", "23503").await;
        (e, a)
    });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !inserter.is_finished(),
        "the insert must wait for the delete's transaction"
    );
    ok(&mut b, "COMMIT").await;
    let (e, mut a) = inserter.await.expect("join");
    assert!(e.message.contains("insert or update"), "{e:?}");

    // And if the delete rolls back, the waiting insert goes through.
    ok(&mut b, "BEGIN").await;
    ok(&mut b, "DELETE FROM c").await;
    ok(&mut b, "DELETE FROM p WHERE id = 1").await;
    let inserter = tokio::spawn(async move {
        let tag = ok(&mut a, "INSERT INTO c VALUES (12, 1)").await;
        (tag, a)
    });
    tokio::time::sleep(SETTLE).await;
    assert!(!inserter.is_finished());
    ok(&mut b, "ROLLBACK").await;
    let (tag, mut a) = inserter.await.expect("join");
    assert_eq!(tag, "INSERT 0 1");
    assert_eq!(rows(&mut a, "SELECT count(*) FROM c").await, vec!["2"]);
}
