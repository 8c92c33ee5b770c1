//! Session event loops: connections are served by a few single-threaded runtimes, one per
//! core, each with its own epoll, instead of one work-stealing runtime.
//!
//! Why: on the machines we run on, waking a sleeping thread costs ~25 µs. With a shared
//! multi-thread runtime, every message that arrives wakes whichever worker sits in epoll,
//! even while another worker is already spinning on that very connection (measured: a single
//! pgbench client gets ~12% more transactions per second with one worker than with two). With
//! one loop per core, a connection's socket is registered only with its own loop, so a quiet
//! loop sleeps undisturbed; under load every loop is busy and no task migrates between cores.
//!
//! Where it runs: `SessionLoops::start` creates the threads; the accept loops (on the caller's
//! runtime) hand each accepted socket, deregistered (`into_std`), to the least-loaded loop,
//! which registers it with its own reactor and runs the connection task there.
//!
//! Invariants: a connection task runs on exactly one loop for its whole life. `load[i]` counts
//! the client sessions loop `i` serves (replication connections stop counting once known);
//! `walsenders[i]` counts the replication connections it serves. A new connection goes to
//! the loop with the fewest sessions and, among those, the most walsenders (see
//! [`stop_counting`] for why).
//! A loop thread ends when `SessionLoops` is dropped, after the tasks it runs have ended (the
//! caller waits for them through its task tracker first).
//!
//! Failure: a loop that cannot be created makes `start` fail (the server does not start with
//! fewer cores than asked silently).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) struct SessionLoops {
    handles: Vec<Handle>,
    load: Arc<Vec<AtomicUsize>>,
    walsenders: Arc<Vec<AtomicUsize>>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Decrements one of a loop's counts (`load` or `walsenders`) when the connection ends.
struct CountGuard {
    counts: Arc<Vec<AtomicUsize>>,
    index: usize,
}

impl CountGuard {
    fn new(counts: &Arc<Vec<AtomicUsize>>, index: usize) -> CountGuard {
        counts[index].fetch_add(1, Ordering::Relaxed);
        CountGuard {
            counts: Arc::clone(counts),
            index,
        }
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.counts[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection task counts towards its loop: first as a session, then (once it turns
/// out to be a replication connection) as a walsender.
struct Counted {
    walsenders: Arc<Vec<AtomicUsize>>,
    index: usize,
    load: Option<CountGuard>,
    walsender: Option<CountGuard>,
}

impl SessionLoops {
    /// Starts `n` loops (at least one).
    pub(crate) fn start(n: usize) -> std::io::Result<SessionLoops> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("session-loop-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("session loop thread died at start"))??;
            handles.push(handle);
            stops.push(stop_tx);
            threads.push(thread);
        }
        let load = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let walsenders = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        Ok(SessionLoops {
            handles,
            load,
            walsenders,
            stops,
            threads,
        })
    }

    /// Waits (at most [`SETTLE_MAX`]) while the only counted session sits on the walsenders'
    /// loop, so that a new lone session is not sent to another loop just because the
    /// connection it replaces has not finished closing: pgbench, for one, closes its first
    /// connection and at once opens the one it benchmarks with, and that one belongs beside
    /// the walsender (see [`stop_counting`]; measured at 1 client with a synchronous standby:
    /// median latency 0.343 ms beside the walsender, 0.372 ms on the other loop, 3 rounds each).
    pub(crate) async fn settle(&self) {
        for _ in 0..SETTLE_MAX.as_millis() {
            let (load, walsenders) = self.counts();
            if !lone_session_beside_walsenders(&load, &walsenders) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Each loop's session count and walsender count, now.
    fn counts(&self) -> (Vec<usize>, Vec<usize>) {
        let now = |c: &Vec<AtomicUsize>| c.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        (now(&self.load), now(&self.walsenders))
    }

    /// Runs `make()`'s future on the least-loaded loop. `make` runs on that loop, so it can
    /// register sockets with the loop's reactor.
    pub(crate) fn spawn<F, Fut>(&self, make: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (load, walsenders) = self.counts();
        let index = pick_loop(load.into_iter(), walsenders.into_iter());
        let counted = Counted {
            walsenders: Arc::clone(&self.walsenders),
            index,
            load: Some(CountGuard::new(&self.load, index)),
            walsender: None,
        };
        self.handles[index].spawn(COUNTED.scope(std::cell::RefCell::new(counted), async move {
            make().await;
        }))
    }
}

/// How long a new connection may wait for a closing one (`settle`): the close of a
/// connection whose client already sent Terminate takes well under a millisecond; the timer
/// ticks in milliseconds.
const SETTLE_MAX: Duration = Duration::from_millis(3);

/// Whether exactly one session is counted and it is on a loop that has walsenders (the
/// only case in which waiting can change where a new session goes: beside the walsenders).
fn lone_session_beside_walsenders(load: &[usize], walsenders: &[usize]) -> bool {
    load.iter().sum::<usize>() == 1 && load.iter().zip(walsenders).any(|(&l, &w)| l == 1 && w > 0)
}

/// The loop for a new connection: the fewest sessions; among those, the most walsenders (so
/// a lone session shares its walsender's loop, see [`stop_counting`]); then the lowest index.
fn pick_loop(load: impl Iterator<Item = usize>, walsenders: impl Iterator<Item = usize>) -> usize {
    load.zip(walsenders)
        .enumerate()
        .min_by_key(|&(i, (l, w))| (l, std::cmp::Reverse(w), i))
        .map_or(0, |(i, _)| i)
}

tokio::task_local! {
    /// What the connection task running on a loop counts towards it.
    static COUNTED: std::cell::RefCell<Counted>;
}

/// The current connection stops counting towards its loop's load (it stays on the loop) and
/// counts as a walsender instead.
///
/// Called for replication connections: a walsender is light work, and counted it would send
/// the first session to the *other* loop. Uncounted, and preferred on ties, its loop gets a
/// lone session, so while that session's commit waits for the standby (yielding, see
/// `txn::waiters`) the same thread reads the standby's reply and releases it — no cross-thread
/// wake-up on the synchronous commit's path. The tie-break matters when the walsender arrived
/// while a short-lived connection occupied the first loop: it then sits on another loop, and
/// the next lone session must follow it there. (A client that keeps a first connection open
/// while it opens its real one — pgbench does — still gets the other loop for the second.)
/// Under load the sessions spread evenly.
pub(crate) fn stop_counting() {
    let _ = COUNTED.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.load.take().is_some() && c.walsender.is_none() {
            let walsenders = Arc::clone(&c.walsenders);
            c.walsender = Some(CountGuard::new(&walsenders, c.index));
        }
    });
}

impl Drop for SessionLoops {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{lone_session_beside_walsenders, pick_loop};

    #[test]
    fn waits_only_for_a_lone_session_beside_the_walsender() {
        assert!(lone_session_beside_walsenders(&[1, 0], &[1, 0]));
        assert!(!lone_session_beside_walsenders(&[0, 1], &[1, 0]));
        assert!(!lone_session_beside_walsenders(&[0, 0], &[1, 0]));
        assert!(!lone_session_beside_walsenders(&[1, 0], &[0, 0]));
        assert!(!lone_session_beside_walsenders(&[2, 1], &[1, 0]));
    }

    #[test]
    fn a_lone_session_joins_the_walsenders_loop() {
        // The walsender arrived on loop 1 (loop 0 was busy with a short-lived connection).
        assert_eq!(pick_loop([0, 0].into_iter(), [0, 1].into_iter()), 1);
        // Fewer sessions still win over walsenders: load spreads evenly.
        assert_eq!(pick_loop([0, 1].into_iter(), [0, 1].into_iter()), 0);
        assert_eq!(pick_loop([1, 1].into_iter(), [1, 0].into_iter()), 0);
        // Plain ties go to the first loop.
        assert_eq!(pick_loop([2, 2, 2].into_iter(), [0, 0, 0].into_iter()), 0);
        assert_eq!(pick_loop(std::iter::empty(), std::iter::empty()), 0);
    }
}
