//! Standby mode: a server that starts from `standby.signal`, stays in recovery, replays WAL
//! that arrives in `pg_wal`, serves read-only queries, and can be promoted (PostgreSQL's
//! `xlogrecovery.c` startup process and `StartupXLOG`'s end-of-recovery part, in miniature).
//!
//! Where it runs: `Core::start` builds a standby instead of a primary when
//! `DIR/standby.signal` exists. Crash-recovery-style start first (checkpoint snapshot, replay
//! local WAL to its valid end, `recovery.rs`), then the registered worker `startup`
//! (`startup.rs`) keeps replaying through the same redo functions (`storage::redo::Redo`)
//! into the live catalog while sessions read it. The checkpointer writes *restartpoints*
//! (snapshots at the replayed LSN) instead of checkpoints. Promotion runs in the startup
//! worker too, so nothing replays while the timeline switches.
//!
//! Where WAL comes from — two modes, chosen by `primary_conninfo`:
//! - **streaming** (`primary_conninfo` set): the walreceiver worker (crate `walreceiver`,
//!   started by `Core::start_walreceiver`, the one integration point) writes streamed WAL into
//!   `pg_wal` and publishes positions in `WalRcvShared`. Redo never replays past
//!   `WalRcvShared::replay_limit()` = min(flushed here, flushed on the primary), and wakes on
//!   `wal_arrived`.
//! - **archive** (no `primary_conninfo`): nothing streams; WAL segment files are put into
//!   `pg_wal` by someone else (an operator, a `restore_command`-like script, the tests' file
//!   copies). Redo replays whatever *valid* WAL is in the files, polling `pg_wal` every
//!   `ARCHIVE_POLL` — PostgreSQL's archive recovery without `restore_command`. The startup
//!   worker then publishes what it has read as the "flushed" position, so
//!   `pg_last_wal_receive_lsn()` reports where valid WAL ends.
//!
//! What it deliberately does not do: it never writes WAL while in recovery (the `Wal` is not
//! even opened: the walreceiver owns `pg_wal`), never writes a checkpoint record (a
//! restartpoint only writes a snapshot and the control file), and never talks to the network.
//!
//! Invariants:
//! - Sessions on a standby see whole transactions only: the visibility watermarks (every
//!   level) are raised to a record's end LSN only after the record is fully applied.
//! - `replayed <= replay_limit()` in streaming mode; in archive mode `replayed <=` the end of
//!   valid WAL in the files.
//! - A restartpoint is a consistent cut at a replayed LSN: only versions committed at or
//!   below it, with replay restarting early enough for transactions still open there.
//! - Promotion writes the new timeline's history file before any WAL on the new timeline.
//!
//! Ownership: `StandbyShared` is written by the startup worker (replay position, timeline,
//! last commit time, restartpoint candidate, "in recovery" flag) and by whoever requests
//! promotion (`pg_promote()`, SIGUSR1, `promote.signal`); read by the SQL hooks and the
//! checkpointer.
//!
//! Failure: a corrupt record behind valid WAL, a record that cannot be applied, or a failed
//! promotion stops the server with exit status 2 (PostgreSQL: the startup process FATALs and
//! the postmaster shuts down) rather than serve diverged data.

pub mod decide;
pub mod startup;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base::{Lsn, TimelineId};
use parking_lot::Mutex;
use txn::CommitLog;
use txn::error::TxnError;
use wal::Wal;
use wal::record::RecordKind;
use walreceiver::WalRcvShared;

use crate::datadir::StandbySettings;
pub use decide::TargetTimeline;

/// How often archive mode looks for new WAL in `pg_wal`, and the longest any wait of the
/// startup worker lasts (so stop and promotion requests are seen even without a wake-up):
/// short enough that a copied segment is replayed at once for a human or a test, long enough
/// that an idle standby costs nothing measurable.
pub const ARCHIVE_POLL: Duration = Duration::from_millis(100);

/// The WAL of the server: empty while in recovery, set once at promotion (or at start on a
/// primary). Shared by the core, the checkpointer and the transaction manager's log.
pub type WalSlot = Arc<OnceLock<Arc<Wal>>>;

/// The walreceiver's worker name (promotion stops the worker by this name).
pub const WALRECEIVER: &str = "walreceiver";

/// Where a restartpoint may be taken: a replayed position that is a consistent cut, and
/// what the control file needs with it. Published by the startup worker after each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartCandidate {
    /// Every transaction committed at or below it is wholly applied and visible.
    pub lsn: Lsn,
    /// Replay after a restart must start here (the oldest open spilled transaction, or `lsn`).
    pub redo_lsn: Lsn,
    pub timeline: TimelineId,
    pub next_xid: u64,
    /// Start of the last checkpoint record replayed (for the control file).
    pub checkpoint_lsn: Lsn,
}

/// State shared by the startup worker, the SQL hooks, the checkpointer and promotion.
#[derive(Debug)]
pub struct StandbyShared {
    pub settings: StandbySettings,
    pub target: TargetTimeline,
    /// The walreceiver's positions (and, in archive mode, the startup worker's).
    pub walrcv: Arc<WalRcvShared>,
    in_recovery: AtomicBool,
    replay_timeline: AtomicU32,
    /// PostgreSQL microseconds of the last replayed commit; `i64::MIN` = none yet.
    last_commit_time: AtomicI64,
    promote_requested: AtomicBool,
    /// Woken when promotion is requested (the startup worker waits on it).
    pub promote_wakeup: tokio::sync::Notify,
    /// Becomes true when promotion has finished (the server accepts writes).
    promoted: tokio::sync::watch::Sender<bool>,
    candidate: Mutex<Option<RestartCandidate>>,
}

impl StandbyShared {
    pub fn new(
        settings: StandbySettings,
        target: TargetTimeline,
        start: Lsn,
        timeline: TimelineId,
    ) -> Arc<StandbyShared> {
        Arc::new(StandbyShared {
            settings,
            target,
            walrcv: Arc::new(WalRcvShared::new(start, timeline)),
            in_recovery: AtomicBool::new(true),
            replay_timeline: AtomicU32::new(timeline.0),
            last_commit_time: AtomicI64::new(i64::MIN),
            promote_requested: AtomicBool::new(false),
            promote_wakeup: tokio::sync::Notify::new(),
            promoted: tokio::sync::watch::channel(false).0,
            candidate: Mutex::new(None),
        })
    }

    pub fn in_recovery(&self) -> bool {
        self.in_recovery.load(Ordering::Acquire)
    }

    pub fn replay_timeline(&self) -> TimelineId {
        TimelineId(self.replay_timeline.load(Ordering::Acquire))
    }

    pub(crate) fn set_replay_timeline(&self, tli: TimelineId) {
        self.replay_timeline.store(tli.0, Ordering::Release);
    }

    pub fn replayed_lsn(&self) -> Lsn {
        self.walrcv.replayed_lsn()
    }

    pub fn last_commit_time(&self) -> Option<i64> {
        let t = self.last_commit_time.load(Ordering::Acquire);
        (t != i64::MIN).then_some(t)
    }

    pub(crate) fn set_last_commit_time(&self, t: i64) {
        self.last_commit_time.store(t, Ordering::Release);
    }

    /// Asks for promotion (`pg_promote()`, SIGUSR1 with `promote.signal`). Idempotent.
    pub fn request_promotion(&self) {
        self.promote_requested.store(true, Ordering::Release);
        self.promote_wakeup.notify_one();
    }

    pub fn promotion_requested(&self) -> bool {
        self.promote_requested.load(Ordering::Acquire)
    }

    /// Waits until promotion has finished, at most `timeout`; true if it has.
    pub async fn wait_promoted(&self, timeout: Duration) -> bool {
        let mut rx = self.promoted.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn finish_promotion(&self) {
        self.in_recovery.store(false, Ordering::Release);
        self.promoted.send_replace(true);
    }

    pub fn restart_candidate(&self) -> Option<RestartCandidate> {
        *self.candidate.lock()
    }

    /// Redo applied a whole record ending at `c.lsn`: makes it visible (every watermark level)
    /// and publishes it as a restartpoint candidate, both under the candidate lock, so a
    /// restartpoint that pins the candidate (`pin_restart_candidate`) pins exactly the
    /// current watermark and no version its cut needs can be pruned in between.
    pub(crate) fn advance_replay(
        &self,
        mgr: &txn::TxnManager,
        c: RestartCandidate,
        apply_feedback: bool,
    ) {
        {
            let mut g = self.candidate.lock();
            mgr.advance_watermarks(|w| {
                for level in w.iter_mut() {
                    *level = c.lsn.0;
                }
            });
            *g = Some(c);
        }
        self.walrcv.set_replayed(c.lsn, apply_feedback);
    }

    /// The current restartpoint candidate, with `slot` pinned at its LSN against pruning.
    pub fn pin_restart_candidate(&self, slot: &storage::SnapshotSlot) -> Option<RestartCandidate> {
        let g = self.candidate.lock();
        if let Some(c) = *g {
            slot.pin(c.lsn.0);
        }
        *g
    }
}

/// The transaction manager's log on a server that may be a standby: refuses while in
/// recovery (the transaction manager is read-only then, so this is a second line of
/// defence), delegates to the `Wal` once promotion has opened it.
#[derive(Debug)]
pub struct PromotableLog {
    pub wal: WalSlot,
}

impl PromotableLog {
    fn wal(&self) -> Result<&Arc<Wal>, TxnError> {
        self.wal
            .get()
            .ok_or_else(|| TxnError::LogUnavailable("cannot write WAL during recovery".into()))
    }
}

impl CommitLog for PromotableLog {
    fn insert(
        &self,
        kind: RecordKind,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        CommitLog::insert(self.wal()?.as_ref(), kind, flags, xid, payload, on_assigned)
    }

    fn insert_commit(
        &self,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        CommitLog::insert_commit(self.wal()?.as_ref(), flags, xid, payload, on_assigned)
    }

    fn commit_inline(&self, upto: Lsn, flush: bool) -> bool {
        self.wal
            .get()
            .is_some_and(|w| CommitLog::commit_inline(w.as_ref(), upto, flush))
    }
}
