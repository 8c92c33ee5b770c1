//! From WAL progress to visibility: the WAL threads report write and flush advances here, and
//! this raises the visibility watermarks and releases waiting commits (txn::TxnManager).
//!
//! `off` follows the write position and `local` the local flush position. The remote levels
//! (`remote_write`, `on`, `remote_apply`) are raised by synchronous replication
//! (`walsender::WalSndCtl::on_local_flush`, called here after every flush): while
//! `synchronous_standby_names` is empty they equal the local flush, as PostgreSQL treats
//! `remote_*` levels as `on` then; otherwise they are min(local flush, what the synchronous
//! standby set confirmed at that stage).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base::{Lsn, SyncCommitLevel};
use txn::TxnManager;
use wal::WalProgress;

pub struct LocalProgress {
    mgr: Arc<TxnManager>,
    walsnd: Arc<walsender::WalSndCtl>,
    flushes: AtomicU64,
}

/// Recompute the version-prune horizon every this many flushes: often enough that version
/// chains stay short under load (hundreds of times a second), rare enough to be free.
const HORIZON_EVERY_FLUSHES: u64 = 32;

impl LocalProgress {
    pub fn new(mgr: Arc<TxnManager>, walsnd: Arc<walsender::WalSndCtl>) -> Arc<LocalProgress> {
        Arc::new(LocalProgress {
            mgr,
            walsnd,
            flushes: AtomicU64::new(0),
        })
    }
}

impl WalProgress for LocalProgress {
    fn on_written(&self, write_lsn: Lsn) {
        self.mgr
            .advance_watermarks(|w| w[SyncCommitLevel::Off.index()] = write_lsn.0);
    }

    fn on_flushed(&self, flush_lsn: Lsn) {
        self.mgr.advance_watermarks(|w| {
            w[SyncCommitLevel::Local.index()] = flush_lsn.0;
            // The write position is at least the flush position.
            w[SyncCommitLevel::Off.index()] = w[SyncCommitLevel::Off.index()].max(flush_lsn.0);
        });
        // The remote levels: synchronous replication decides (capped by this flush).
        self.walsnd.on_local_flush(flush_lsn);
        if self
            .flushes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(HORIZON_EVERY_FLUSHES)
        {
            self.mgr.recompute_horizon();
        }
    }
}
