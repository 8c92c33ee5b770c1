//! Commit waiters: sessions waiting for their commit to reach a visibility watermark.
//!
//! One LSN-ordered queue per `synchronous_commit` level. A committing session waits until the
//! watermark of its level covers its commit's end LSN; whoever advances watermarks (the WAL
//! writer and flusher, later the synchronous-replication release logic) calls `release`,
//! which wakes the queue's prefix in LSN order, as PostgreSQL's `SyncRepWakeQueue` does.
//!
//! Lost-wakeup freedom: `release` stores the new watermarks before it takes the queue lock;
//! `wait` re-checks the watermark after it has queued itself under that lock. So either the
//! waiter sees the new watermark, or it is in the queue when `release` scans it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base::SyncCommitLevel;
use parking_lot::Mutex;
use storage::Watermarks;
use tokio::sync::oneshot;

const LEVELS: usize = SyncCommitLevel::COUNT;

/// How long a commit polls its watermark before it sleeps (when spinning is allowed): a
/// synchronous standby's confirmation on this kind of machine takes ~100–200 µs (network hop,
/// its fdatasync, the reply); a commit waiting longer (a standby that is away) sleeps.
const COMMIT_SPIN_BUDGET: Duration = Duration::from_micros(400);

/// Waiters of one level, by (commit LSN, arrival sequence) so equal LSNs keep their order.
type Queue = BTreeMap<(u64, u64), oneshot::Sender<()>>;

#[derive(Debug, Default)]
pub struct CommitWaiters {
    queues: Mutex<[Queue; LEVELS]>,
    seq: AtomicU64,
}

impl CommitWaiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until `watermarks[level] >= lsn`.
    ///
    /// With few sessions (`base::spin`) it first polls the watermark for up to
    /// [`COMMIT_SPIN_BUDGET`], yielding to the session's event loop between polls (so a task
    /// on the same loop, e.g. the walsender that will release us, still runs): the wait is
    /// usually a standby's round trip and fdatasync, and a sleeping session thread costs the
    /// releaser a ~25 µs wake-up.
    pub async fn wait(&self, watermarks: &Watermarks, level: SyncCommitLevel, lsn: u64) {
        if watermarks.get(level) >= lsn {
            return;
        }
        if base::spin::spinning_allowed() {
            let deadline = Instant::now() + COMMIT_SPIN_BUDGET;
            loop {
                tokio::task::yield_now().await;
                // Also give the core away if another thread is waiting for it: the thread
                // that will release us (the standby's walreceiver when it shares the machine,
                // the flusher) may have been woken onto this very core.
                std::thread::yield_now();
                if watermarks.get(level) >= lsn {
                    return;
                }
                if Instant::now() >= deadline || !base::spin::spinning_allowed() {
                    break;
                }
            }
        }
        let rx = {
            let mut queues = self.queues.lock();
            if watermarks.get(level) >= lsn {
                return;
            }
            let (tx, rx) = oneshot::channel();
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            queues[level.index()].insert((lsn, seq), tx);
            rx
        };
        // The sender is only dropped after sending, or with the whole queue at shutdown;
        // either way the wait is over.
        let _ = rx.await;
    }

    /// Wakes every waiter whose LSN is covered by `watermarks` (already stored).
    pub fn release(&self, watermarks: &[u64; LEVELS]) {
        let mut woken = Vec::new();
        {
            let mut queues = self.queues.lock();
            for (level, queue) in queues.iter_mut().enumerate() {
                let upto = watermarks[level];
                while let Some(entry) = queue.first_entry() {
                    if entry.key().0 > upto {
                        break;
                    }
                    woken.push(entry.remove());
                }
            }
        }
        for tx in woken {
            let _ = tx.send(());
        }
    }

    /// Whether no session waits at any level (a lone commit may then flush inline).
    pub fn is_idle(&self) -> bool {
        self.queues.lock().iter().all(|q| q.is_empty())
    }

    /// Number of sessions waiting at each level (for monitoring and tests).
    pub fn waiting(&self) -> [usize; LEVELS] {
        let queues = self.queues.lock();
        std::array::from_fn(|i| queues[i].len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiters_wake_in_lsn_order_when_covered() {
        let w = Arc::new(Watermarks::new(100));
        let q = Arc::new(CommitWaiters::new());
        let mut handles = Vec::new();
        for lsn in [300u64, 200, 400] {
            let (w, q) = (w.clone(), q.clone());
            handles.push((
                lsn,
                tokio::spawn(async move { q.wait(&w, SyncCommitLevel::Local, lsn).await }),
            ));
        }
        tokio::task::yield_now().await;
        while q.waiting()[1] < 3 {
            tokio::task::yield_now().await;
        }
        let new = w.advance(|v| v[1] = 300);
        q.release(&new);
        assert_eq!(q.waiting()[1], 1);
        for (lsn, h) in handles {
            if lsn <= 300 {
                h.await.expect("join");
            } else {
                assert!(!h.is_finished());
                let new = w.advance(|v| v[1] = 400);
                q.release(&new);
                h.await.expect("join");
            }
        }
        // Already covered: returns at once.
        q.wait(&w, SyncCommitLevel::Local, 50).await;
    }
}
