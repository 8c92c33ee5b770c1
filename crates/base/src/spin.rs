//! When a waiting session may poll instead of sleeping (the spin policy).
//!
//! On the machines we run on, waking a thread that sleeps (in `epoll`, on a futex) costs
//! ~25 µs, more when its core was idle and halted; a pgbench transaction waits seven times for
//! its client and, with a synchronous standby, once more for the standby's confirmation. So
//! while at most [`SPIN_SESSIONS_MAX`] sessions are being served, a session that waits for
//! something that is about to happen polls for it for a short budget before it sleeps; with
//! more sessions the CPU is better spent on them, and it sleeps at once.
//!
//! Spinning politely in the commit wait: each poll there also calls `sched_yield`. The thread
//! the commit depends on (the flusher, a standby's walreceiver sharing the machine) may be
//! woken onto the spinning thread's core; without the yield it waits for the end of our time
//! slice (traced: a standby's flush reply delayed by ~300 µs on one commit in eight; p99 of a
//! 1-client synchronous commit 0.85 ms → 0.53-0.58 ms in the benchmark once yielded). With
//! nothing else runnable the yield returns at once. The socket read's spin does not yield
//! (see `frontend::transport`).
//!
//! Who owns what: the frontend counts the sessions it serves ([`ActiveSession`]); the socket
//! read (frontend) and the commit wait (txn) ask [`spinning_allowed`].

use std::sync::atomic::{AtomicUsize, Ordering};

/// Sessions currently being served (after authentication; walsenders are not sessions).
static ACTIVE_SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Spin only while this few sessions are served: one spinning session keeps one core busy,
/// which pays off only when its client (on the other core) is the only other work.
pub const SPIN_SESSIONS_MAX: usize = 1;

/// Whether a waiting session may poll now.
pub fn spinning_allowed() -> bool {
    ACTIVE_SESSIONS.load(Ordering::Relaxed) <= SPIN_SESSIONS_MAX
}

/// Counts a session as served while it lives.
pub struct ActiveSession(());

impl ActiveSession {
    pub fn enter() -> ActiveSession {
        ACTIVE_SESSIONS.fetch_add(1, Ordering::Relaxed);
        ActiveSession(())
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        ACTIVE_SESSIONS.fetch_sub(1, Ordering::Relaxed);
    }
}
