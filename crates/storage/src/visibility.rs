//! Visibility: which committed versions a reader may see, and when old versions may go.
//!
//! DESIGN.md decision 5: a committed version becomes visible to other sessions when its
//! transaction's `synchronous_commit` level is satisfied — the same moment its client may be
//! told COMMIT. There is one *watermark* per level: `Off` follows the WAL write position,
//! `Local` the local flush position, and the remote levels what the synchronous standby set
//! has confirmed (without synchronous standbys they equal `Local`). A version committed at
//! LSN `L` under level `k` is visible to a snapshot `S` iff `L <= S.watermark[k]`, so taking a
//! snapshot is copying five numbers and checking visibility is one comparison.
//!
//! Invariants:
//! - Each watermark only grows. `Off >= Local >= RemoteWrite >= On >= RemoteApply`.
//! - A snapshot is a consistent cut: the five watermarks are read under a sequence lock, so a
//!   reader never sees a later commit at one level while missing an earlier one it depended on
//!   at another level.
//! - The *prune horizon* is at most the smallest watermark of every snapshot in use, so a
//!   version that some statement may still need is never removed (see `SnapshotRegistry`).
//!
//! Ownership: the watermarks are written only by the WAL writer/flusher threads (and, for the
//! remote levels, by whoever computes the synchronous standbys' confirmed positions), always
//! through `Watermarks::advance`, which serialises writers with a mutex. Readers never block.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base::SyncCommitLevel;
use parking_lot::Mutex;

const LEVELS: usize = SyncCommitLevel::COUNT;

/// The visibility watermarks, one per `synchronous_commit` level, under a sequence lock.
#[derive(Debug)]
pub struct Watermarks {
    /// Odd while a writer is updating the array; readers retry until they see the same even
    /// value before and after their reads.
    seq: AtomicU64,
    lsn: [AtomicU64; LEVELS],
    writer: Mutex<()>,
}

/// A statement's view: the watermarks at one instant, plus the transaction whose own
/// uncommitted writes it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub watermark: [u64; LEVELS],
    /// The reading transaction's id, or 0 for none.
    pub xid: u64,
}

impl Snapshot {
    /// A snapshot that sees every committed version (used by redo and checkpoints at startup).
    pub const ALL: Snapshot = Snapshot {
        watermark: [u64::MAX; LEVELS],
        xid: 0,
    };

    /// A snapshot that sees exactly the versions committed at or below `lsn` at any level
    /// (used by checkpoints).
    pub fn at_lsn(lsn: u64) -> Snapshot {
        Snapshot {
            watermark: [lsn; LEVELS],
            xid: 0,
        }
    }

    pub fn with_xid(mut self, xid: u64) -> Snapshot {
        self.xid = xid;
        self
    }

    pub fn min_watermark(&self) -> u64 {
        self.watermark.iter().copied().min().unwrap_or(0)
    }

    pub fn sees(&self, commit_lsn: u64, level: u8) -> bool {
        let level = usize::from(level).min(LEVELS - 1);
        commit_lsn <= self.watermark[level]
    }
}

impl Watermarks {
    pub fn new(start: u64) -> Self {
        Watermarks {
            seq: AtomicU64::new(0),
            lsn: std::array::from_fn(|_| AtomicU64::new(start)),
            writer: Mutex::new(()),
        }
    }

    /// A consistent copy of all watermarks.
    pub fn snapshot(&self) -> [u64; LEVELS] {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let values = std::array::from_fn(|i| self.lsn[i].load(Ordering::Acquire));
            // The fence orders the value loads before the re-check of `seq`.
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return values;
            }
        }
    }

    pub fn get(&self, level: SyncCommitLevel) -> u64 {
        self.lsn[level.index()].load(Ordering::Acquire)
    }

    /// Raises watermarks: `update` receives the current values and may raise any of them.
    /// Values are clamped so that none decreases. Returns the new values.
    pub fn advance(&self, update: impl FnOnce(&mut [u64; LEVELS])) -> [u64; LEVELS] {
        let _guard = self.writer.lock();
        let current: [u64; LEVELS] = std::array::from_fn(|i| self.lsn[i].load(Ordering::Relaxed));
        let mut next = current;
        update(&mut next);
        for i in 0..LEVELS {
            next[i] = next[i].max(current[i]);
        }
        if next == current {
            return current;
        }
        self.seq.fetch_add(1, Ordering::AcqRel);
        for (slot, value) in self.lsn.iter().zip(next) {
            slot.store(value, Ordering::Release);
        }
        self.seq.fetch_add(1, Ordering::Release);
        next
    }
}

/// Snapshots in use, so that version pruning never removes what a running statement needs.
///
/// Each session owns one slot holding the smallest watermark of its current snapshot
/// (`u64::MAX` when it has none). Protocol (a store-then-load pairing, hence `SeqCst`):
/// a reader stores a *lower bound* of its coming snapshot (the current smallest watermark)
/// into its slot before it reads the snapshot; the horizon computation reads the smallest
/// current watermark *before* it scans the slots. Either the scan sees the reader's slot, or
/// the reader stored it after the scan began, in which case its snapshot is newer than the
/// watermark the computation started from. Both ways the horizon is at most what the reader
/// needs.
#[derive(Debug, Default)]
pub struct SnapshotRegistry {
    slots: Mutex<Vec<Arc<AtomicU64>>>,
    horizon: AtomicU64,
}

/// A session's registration; dropping it frees the slot.
#[derive(Debug)]
pub struct SnapshotSlot {
    value: Arc<AtomicU64>,
    registry: Arc<SnapshotRegistry>,
}

impl SnapshotRegistry {
    pub fn register(self: &Arc<Self>) -> SnapshotSlot {
        let value = Arc::new(AtomicU64::new(u64::MAX));
        self.slots.lock().push(value.clone());
        SnapshotSlot {
            value,
            registry: self.clone(),
        }
    }

    /// Recomputes the prune horizon from the smallest current watermark and the slots.
    pub fn recompute(&self, watermarks: &Watermarks) -> u64 {
        let mut horizon = watermarks.get(SyncCommitLevel::RemoteApply);
        for w in watermarks.snapshot() {
            horizon = horizon.min(w);
        }
        for slot in self.slots.lock().iter() {
            horizon = horizon.min(slot.load(Ordering::SeqCst));
        }
        self.horizon.fetch_max(horizon, Ordering::SeqCst);
        self.horizon.load(Ordering::SeqCst)
    }

    /// Versions committed at or below this LSN are visible to every present and future
    /// snapshot, so anything older than the newest such version may be removed.
    pub fn horizon(&self) -> u64 {
        self.horizon.load(Ordering::Acquire)
    }
}

impl SnapshotSlot {
    /// Takes a snapshot for a statement, publishing it in the registry first.
    pub fn take(&self, watermarks: &Watermarks, xid: u64) -> Snapshot {
        let lower_bound = watermarks.snapshot().iter().copied().min().unwrap_or(0);
        self.value.store(lower_bound, Ordering::SeqCst);
        Snapshot {
            watermark: watermarks.snapshot(),
            xid,
        }
    }

    /// Pins a snapshot taken elsewhere (e.g. a checkpoint's LSN) against pruning.
    pub fn pin(&self, lsn: u64) {
        self.value.store(lsn, Ordering::SeqCst);
    }

    /// The statement is over: its snapshot no longer holds back pruning.
    pub fn release(&self) {
        self.value.store(u64::MAX, Ordering::SeqCst);
    }
}

impl Drop for SnapshotSlot {
    fn drop(&mut self) {
        self.registry
            .slots
            .lock()
            .retain(|s| !Arc::ptr_eq(s, &self.value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_never_go_back() {
        let w = Watermarks::new(100);
        w.advance(|v| v[0] = 200);
        w.advance(|v| v[0] = 150);
        assert_eq!(w.get(SyncCommitLevel::Off), 200);
        assert_eq!(w.get(SyncCommitLevel::Local), 100);
    }

    #[test]
    fn horizon_respects_pinned_snapshots() {
        let w = Watermarks::new(100);
        let reg = Arc::new(SnapshotRegistry::default());
        let slot = reg.register();
        let snap = slot.take(&w, 0);
        assert_eq!(snap.watermark, [100; LEVELS]);
        w.advance(|v| *v = [500; LEVELS]);
        assert_eq!(reg.recompute(&w), 100);
        slot.release();
        assert_eq!(reg.recompute(&w), 500);
        drop(slot);
        assert_eq!(reg.recompute(&w), 500);
    }

    #[test]
    fn snapshot_sees_by_level() {
        let s = Snapshot {
            watermark: [50, 40, 30, 30, 20],
            xid: 0,
        };
        assert!(s.sees(50, 0));
        assert!(!s.sees(50, 1));
        assert!(s.sees(20, 4));
        assert!(!s.sees(21, 4));
    }
}
