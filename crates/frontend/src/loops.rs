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
//! the client sessions loop `i` serves (replication connections stop counting once known).
//! A loop thread ends when `SessionLoops` is dropped, after the tasks it runs have ended (the
//! caller waits for them through its task tracker first).
//!
//! Failure: a loop that cannot be created makes `start` fail (the server does not start with
//! fewer cores than asked silently).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) struct SessionLoops {
    handles: Vec<Handle>,
    load: Arc<Vec<AtomicUsize>>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Decrements a loop's load when the connection ends.
struct LoadGuard {
    load: Arc<Vec<AtomicUsize>>,
    index: usize,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.load[self.index].fetch_sub(1, Ordering::Relaxed);
    }
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
        Ok(SessionLoops {
            handles,
            load,
            stops,
            threads,
        })
    }

    /// Runs `make()`'s future on the least-loaded loop. `make` runs on that loop, so it can
    /// register sockets with the loop's reactor.
    pub(crate) fn spawn<F, Fut>(&self, make: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let index = (0..self.handles.len())
            .min_by_key(|&i| self.load[i].load(Ordering::Relaxed))
            .unwrap_or(0);
        self.load[index].fetch_add(1, Ordering::Relaxed);
        let guard = LoadGuard {
            load: Arc::clone(&self.load),
            index,
        };
        self.handles[index].spawn(LOAD.scope(std::cell::Cell::new(Some(guard)), async move {
            make().await;
        }))
    }
}

tokio::task_local! {
    /// The load count of the connection task running on a loop (taken by `stop_counting`).
    static LOAD: std::cell::Cell<Option<LoadGuard>>;
}

/// The current connection stops counting towards its loop's load (it stays on the loop).
///
/// Called for replication connections: a walsender is light work, and counted it would send
/// the first session to the *other* loop. Uncounted, a lone session shares the walsender's
/// loop, so while its commit waits for the standby (yielding, see `txn::waiters`) the same
/// thread reads the standby's reply and releases it — no cross-thread wake-up on the
/// synchronous commit's path. Under load the sessions spread evenly as before.
pub(crate) fn stop_counting() {
    let _ = LOAD.try_with(|l| drop(l.take()));
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
