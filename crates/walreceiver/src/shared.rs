//! What the walreceiver shares with the rest of a standby.
//!
//! Where it runs: written by the walreceiver task (received, written and flushed positions,
//! the primary's flush LSN, connection status) and by the startup process's redo loop (the
//! replayed position and whether a replayed commit asked for apply feedback); read by both,
//! and by `pg_stat_wal_receiver`, `pg_last_wal_receive_lsn()` and `pg_last_wal_replay_lsn()`.
//!
//! Invariants: `flushed_lsn <= written_lsn`; every position only grows while the walreceiver
//! streams one timeline, except that a reconnect which discards a tail beyond the primary's
//! end (DESIGN.md #4) lowers `written_lsn`/`flushed_lsn` through `reset_to` *before* redo can
//! have replayed past them (redo never replays beyond `replay_limit()`, which is at most the
//! primary's flush LSN, and the discarded tail lies beyond the primary's end).
//!
//! Redo may replay WAL up to `replay_limit() = min(flushed_lsn, primary_flush_lsn)`: never
//! past what is durable here, and never past what the primary has made durable, so that a
//! standby never shows a commit the primary could still lose in a crash.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use base::{Lsn, TimelineId};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Connection status as `pg_stat_wal_receiver.status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalRcvStatus {
    Starting,
    Streaming,
    Waiting,
    Restarting,
    Stopping,
    Stopped,
}

impl WalRcvStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WalRcvStatus::Starting => "starting",
            WalRcvStatus::Streaming => "streaming",
            WalRcvStatus::Waiting => "waiting",
            WalRcvStatus::Restarting => "restarting",
            WalRcvStatus::Stopping => "stopping",
            WalRcvStatus::Stopped => "stopped",
        }
    }
}

/// Details for `pg_stat_wal_receiver` that change rarely.
#[derive(Clone, Debug, Default)]
pub struct WalRcvInfo {
    pub pid: i32,
    pub receive_start_lsn: Lsn,
    pub receive_start_tli: u32,
    pub received_tli: u32,
    pub last_msg_send_time: Option<SystemTime>,
    pub last_msg_receipt_time: Option<SystemTime>,
    pub latest_end_lsn: Lsn,
    pub latest_end_time: Option<SystemTime>,
    pub slot_name: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
    /// Connection string with the password masked.
    pub conninfo: String,
}

#[derive(Debug)]
pub struct WalRcvShared {
    written: AtomicU64,
    flushed: AtomicU64,
    primary_flush: AtomicU64,
    replayed: AtomicU64,
    /// A replayed commit record carried FLAG_APPLY_FEEDBACK: the walreceiver should send a
    /// status update with the new replay position at once.
    apply_feedback_pending: AtomicBool,
    status: Mutex<WalRcvStatus>,
    info: Mutex<WalRcvInfo>,
    last_error: Mutex<Option<String>>,
    /// Woken when `flushed_lsn` or `primary_flush_lsn` grows (redo waits on it).
    pub wal_arrived: Notify,
    /// Woken when redo replays (the walreceiver waits on it for apply feedback).
    pub replay_advanced: Notify,
}

impl WalRcvShared {
    /// `start` is where streaming will begin (the end of local WAL) and what has been
    /// replayed so far.
    pub fn new(start: Lsn, timeline: TimelineId) -> WalRcvShared {
        WalRcvShared {
            written: AtomicU64::new(start.0),
            flushed: AtomicU64::new(start.0),
            primary_flush: AtomicU64::new(start.0),
            replayed: AtomicU64::new(start.0),
            apply_feedback_pending: AtomicBool::new(false),
            status: Mutex::new(WalRcvStatus::Stopped),
            info: Mutex::new(WalRcvInfo {
                receive_start_lsn: start,
                receive_start_tli: timeline.0,
                received_tli: timeline.0,
                ..WalRcvInfo::default()
            }),
            last_error: Mutex::new(None),
            wal_arrived: Notify::new(),
            replay_advanced: Notify::new(),
        }
    }

    pub fn written_lsn(&self) -> Lsn {
        Lsn(self.written.load(Ordering::Acquire))
    }
    pub fn flushed_lsn(&self) -> Lsn {
        Lsn(self.flushed.load(Ordering::Acquire))
    }
    pub fn primary_flush_lsn(&self) -> Lsn {
        Lsn(self.primary_flush.load(Ordering::Acquire))
    }
    pub fn replayed_lsn(&self) -> Lsn {
        Lsn(self.replayed.load(Ordering::Acquire))
    }

    /// How far redo may replay: durable here and durable on the primary.
    pub fn replay_limit(&self) -> Lsn {
        self.flushed_lsn().min(self.primary_flush_lsn())
    }

    /// The walreceiver wrote bytes up to `lsn` (not yet flushed).
    pub fn set_written(&self, lsn: Lsn) {
        self.written.fetch_max(lsn.0, Ordering::AcqRel);
    }

    /// The walreceiver flushed up to `lsn`. Redo is woken only if its replay limit grew:
    /// with a synchronous primary our flush usually runs ahead of the primary's announced
    /// flush, and a useless wake-up here would compete for the CPU with the flush status
    /// update the primary's commit is waiting for.
    pub fn set_flushed(&self, lsn: Lsn) {
        self.written.fetch_max(lsn.0, Ordering::AcqRel);
        let before = self.flushed.fetch_max(lsn.0, Ordering::AcqRel);
        self.wake_redo_if_limit_grew(before, lsn.0, &self.primary_flush);
    }

    /// The primary announced its flush LSN (walEnd of 'w' and 'k' messages). Redo is woken
    /// only if its replay limit grew (see `set_flushed`).
    pub fn set_primary_flush(&self, lsn: Lsn) {
        let before = self.primary_flush.fetch_max(lsn.0, Ordering::AcqRel);
        self.wake_redo_if_limit_grew(before, lsn.0, &self.flushed);
    }

    /// One of the two bounds of `replay_limit` went from `before` to `after`; `other` is the
    /// other bound. Wakes redo if the limit (their minimum) grew.
    fn wake_redo_if_limit_grew(&self, before: u64, after: u64, other: &AtomicU64) {
        let other = other.load(Ordering::Acquire);
        if after.min(other) > before.min(other) {
            self.wal_arrived.notify_waiters();
        }
    }

    /// After a reconnect discarded local WAL from `lsn` on (it was beyond the primary's end).
    pub fn reset_to(&self, lsn: Lsn) {
        self.written.store(lsn.0, Ordering::Release);
        self.flushed.store(lsn.0, Ordering::Release);
    }

    /// Redo replayed up to `lsn`; `apply_feedback` if a commit in it asked for it.
    pub fn set_replayed(&self, lsn: Lsn, apply_feedback: bool) {
        self.replayed.fetch_max(lsn.0, Ordering::AcqRel);
        if apply_feedback {
            self.apply_feedback_pending.store(true, Ordering::Release);
        }
        self.replay_advanced.notify_waiters();
    }

    /// Takes the apply-feedback request (the walreceiver then replies at once).
    pub fn take_apply_feedback(&self) -> bool {
        self.apply_feedback_pending.swap(false, Ordering::AcqRel)
    }

    pub fn status(&self) -> WalRcvStatus {
        *self.status.lock()
    }
    pub fn set_status(&self, s: WalRcvStatus) {
        *self.status.lock() = s;
    }
    pub fn info(&self) -> WalRcvInfo {
        self.info.lock().clone()
    }
    pub fn update_info(&self, f: impl FnOnce(&mut WalRcvInfo)) {
        f(&mut self.info.lock());
    }
}

/// Additions for the walreceiver driver (kept apart so the API above stays as redo knows it).
impl WalRcvShared {
    /// The walreceiver's last error (why it is not streaming), for logs and tests.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
    pub fn set_last_error(&self, e: String) {
        *self.last_error.lock() = Some(e);
    }
}
