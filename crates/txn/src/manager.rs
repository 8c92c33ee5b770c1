//! The transaction manager: server-wide transactional state.
//!
//! Owns transaction ids, the WAL insertion entry point (`CommitLog`), the visibility
//! watermarks and the commit waiters, deadlock detection, the global DDL lock, and the list of
//! transactions that spilled changes into `TxnData` records (a checkpoint must start replay
//! before the oldest of them).
//!
//! Where it runs: shared by all sessions (tokio tasks) and by the WAL threads, which report
//! progress through `advance_watermarks`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base::{Lsn, SyncCommitLevel};
use parking_lot::Mutex;
use storage::{Catalog, SnapshotRegistry, TxnShared, Watermarks};
use wal::record::RecordKind;

use crate::error::TxnError;
use crate::interrupt::Interrupt;
use crate::waiters::CommitWaiters;

/// Where committed transactions' records go: the WAL (or a test double).
///
/// `insert` appends one record and returns its end LSN. `on_assigned(start, end)` runs while
/// the log's insert lock is held, before the record can be written out; the transaction uses
/// it to publish its commit LSN, which is what makes commits visible to readers whose
/// watermarks reach it (storage::version).
pub trait CommitLog: Send + Sync + 'static {
    fn insert(
        &self,
        kind: RecordKind,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError>;

    /// Inserts a commit record; the caller calls `commit_inline` right after. Logs that can
    /// write inline use it to skip waking their background writer.
    fn insert_commit(
        &self,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        self.insert(RecordKind::Commit, flags, xid, payload, on_assigned)
    }

    /// Makes the log write (and, if `flush`, flush) up to `upto` on the calling thread when
    /// it is idle; otherwise makes sure its background threads will. Returns whether it did.
    fn commit_inline(&self, _upto: Lsn, _flush: bool) -> bool {
        false
    }
}

/// Settings a transaction consults; the SQL layer passes its session's values.
#[derive(Clone, Copy, Debug)]
pub struct TxnSettings {
    /// `lock_timeout`: how long to wait for a row or table lock; `None` = forever.
    pub lock_timeout: Option<Duration>,
}

#[derive(Debug)]
pub struct TxnManager {
    pub catalog: Arc<Catalog>,
    pub watermarks: Arc<Watermarks>,
    pub snapshots: Arc<SnapshotRegistry>,
    pub waiters: CommitWaiters,
    pub(crate) log: Arc<dyn CommitLogDebug>,
    next_xid: AtomicU64,
    /// Serialises installing wait-for edges, so two transactions cannot each miss the other's
    /// edge and both wait forever.
    pub(crate) deadlock: Mutex<()>,
    /// The transaction holding the global DDL lock (one DDL transaction at a time).
    pub(crate) ddl_owner: Mutex<Option<Arc<TxnShared>>>,
    /// Transactions that wrote `TxnData` records and have not ended: xid → first such LSN.
    spilled: Mutex<BTreeMap<u64, Lsn>>,
    /// Hot standby: every write is refused with 25006.
    read_only: AtomicBool,
    /// Transactions that have written something and not yet inserted their commit record or
    /// rolled back: commits likely to arrive soon. A lone commit flushes on its own thread
    /// only when this is zero (see `Transaction::commit`).
    pub(crate) writers_in_flight: std::sync::atomic::AtomicUsize,
    /// Commits made so far (for statistics).
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
}

/// `CommitLog` plus `Debug`, so the manager can derive `Debug`.
pub trait CommitLogDebug: CommitLog + std::fmt::Debug {}
impl<T: CommitLog + std::fmt::Debug> CommitLogDebug for T {}

impl TxnManager {
    pub fn new(
        catalog: Arc<Catalog>,
        watermarks: Arc<Watermarks>,
        log: Arc<dyn CommitLogDebug>,
        next_xid: u64,
    ) -> Arc<TxnManager> {
        Arc::new(TxnManager {
            catalog,
            watermarks,
            snapshots: Arc::new(SnapshotRegistry::default()),
            waiters: CommitWaiters::new(),
            log,
            next_xid: AtomicU64::new(next_xid.max(1)),
            deadlock: Mutex::new(()),
            ddl_owner: Mutex::new(None),
            spilled: Mutex::new(BTreeMap::new()),
            read_only: AtomicBool::new(false),
            writers_in_flight: std::sync::atomic::AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
        })
    }

    pub fn allocate_xid(&self) -> u64 {
        self.next_xid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_xid(&self) -> u64 {
        self.next_xid.load(Ordering::Relaxed)
    }

    pub fn observe_xid(&self, xid: u64) {
        self.next_xid.fetch_max(xid + 1, Ordering::Relaxed);
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Release);
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Raises the visibility watermarks and wakes the commits they cover. Called by whoever
    /// learns of progress: the WAL writer (write LSN), the flusher (flush LSN), and later the
    /// synchronous replication logic (remote levels).
    pub fn advance_watermarks(&self, update: impl FnOnce(&mut [u64; SyncCommitLevel::COUNT])) {
        let new = self.watermarks.advance(update);
        self.waiters.release(&new);
    }

    /// Recomputes the version-prune horizon (cheap; called periodically).
    pub fn recompute_horizon(&self) -> u64 {
        self.snapshots.recompute(&self.watermarks)
    }

    /// The LSN a checkpoint's replay must start at so that spilled changes of transactions
    /// still open are replayed: the first `TxnData` LSN of the oldest such transaction.
    pub fn oldest_spill_lsn(&self) -> Option<Lsn> {
        self.spilled.lock().values().min().copied()
    }

    pub(crate) fn note_spill(&self, xid: u64, lsn: Lsn) {
        self.spilled.lock().entry(xid).or_insert(lsn);
    }

    pub(crate) fn forget_spill(&self, xid: u64) {
        self.spilled.lock().remove(&xid);
    }

    /// Waits for `holder` to finish, as transaction `me`, with deadlock detection, the lock
    /// timeout and interruption. `what` names the lock for the deadlock detail.
    pub(crate) async fn wait_for_txn(
        &self,
        me: &Arc<TxnShared>,
        holder: &Arc<TxnShared>,
        settings: &TxnSettings,
        interrupt: &Interrupt,
        what: &str,
    ) -> Result<(), TxnError> {
        interrupt.check()?;
        {
            let _g = self.deadlock.lock();
            let mut cur = Some(holder.clone());
            let mut chain = vec![me.xid];
            // A wait-for chain is at most as long as the number of live transactions; the
            // bound only guards against a bug turning it into an endless loop.
            let mut steps = 0usize;
            while let Some(t) = cur {
                if t.is_finished() {
                    break;
                }
                chain.push(t.xid);
                if Arc::ptr_eq(&t, me) {
                    let detail = chain
                        .windows(2)
                        .map(|w| {
                            format!(
                                "Process {} waits for {} on transaction {}.",
                                w[0], what, w[1]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(TxnError::Deadlock { detail });
                }
                cur = t.waiting_for.lock().clone();
                steps += 1;
                if steps > 1_000_000 {
                    break;
                }
            }
            *me.waiting_for.lock() = Some(holder.clone());
        }
        let result = async {
            let finished = holder.wait_finished();
            match settings.lock_timeout {
                Some(t) => tokio::select! {
                    _ = finished => Ok(()),
                    e = interrupt.wait() => Err(e),
                    _ = tokio::time::sleep(t) => Err(TxnError::LockTimeout),
                },
                None => tokio::select! {
                    _ = finished => Ok(()),
                    e = interrupt.wait() => Err(e),
                },
            }
        }
        .await;
        *me.waiting_for.lock() = None;
        result
    }
}

impl CommitLog for wal::Wal {
    fn insert(
        &self,
        kind: RecordKind,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        wal::Wal::insert(self, kind, flags, xid, payload, on_assigned)
            .map_err(|e| TxnError::LogUnavailable(e.to_string()))
    }

    fn insert_commit(
        &self,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        wal::Wal::insert_quiet(self, RecordKind::Commit, flags, xid, payload, on_assigned)
            .map_err(|e| TxnError::LogUnavailable(e.to_string()))
    }

    fn commit_inline(&self, upto: Lsn, flush: bool) -> bool {
        wal::Wal::commit_inline(self, upto, flush)
    }
}
