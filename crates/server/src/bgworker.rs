//! The background worker registry and its supervisor (the seed's "table of background
//! processes", like PostgreSQL's `RmgrTable`-shaped `BackgroundWorker` list).
//!
//! Each worker is an entry with a name, a backend type (as `pg_stat_activity.backend_type`
//! shows it), a main function, and a restart policy. The supervisor (our postmaster) starts
//! every registered worker, restarts it by its policy when its main function returns, stops
//! them all at shutdown in reverse order of registration, and lists them for
//! `pg_stat_activity`. The WAL writer and flusher, the checkpointer, and (next issue) the
//! walsenders and the walreceiver are entries.
//!
//! Where it runs: blocking workers (the WAL threads, which sit in `pwrite`/`fdatasync`) get a
//! dedicated OS thread; asynchronous workers a tokio task.
//!
//! Failure: a *critical* worker (the WAL writer and flusher: without them no commit can
//! complete) that ends unexpectedly stops the server, as PostgreSQL's postmaster does when an
//! auxiliary process dies. A non-critical worker that fails is restarted after its delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::watch;

/// What a worker's main function gets: its pid and the stop signal.
#[derive(Clone)]
pub struct WorkerContext {
    pub pid: i32,
    pub name: String,
    stop: watch::Receiver<bool>,
}

impl WorkerContext {
    pub fn should_stop(&self) -> bool {
        *self.stop.borrow()
    }

    /// The stop signal itself (`true` = stop), for a main function that hands it on (the
    /// walreceiver driver takes a `watch::Receiver<bool>`).
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    /// Resolves when the worker is asked to stop.
    pub async fn stopped(&mut self) {
        let _ = self.stop.wait_for(|s| *s).await;
    }
}

pub type ThreadMain = Arc<dyn Fn(WorkerContext) -> Result<(), String> + Send + Sync>;
pub type TaskMain =
    Arc<dyn Fn(WorkerContext) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
pub enum WorkerMain {
    /// Runs on its own OS thread (blocking IO).
    Thread(ThreadMain),
    /// Runs as a tokio task.
    Task(TaskMain),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restarted (PostgreSQL's `BGW_NEVER_RESTART`).
    Never,
    /// Restarted after `delay` when it fails or returns while the server is running.
    Always { delay: Duration },
}

#[derive(Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub backend_type: &'static str,
    pub main: WorkerMain,
    pub restart: RestartPolicy,
    /// If it ends while the server runs, the server stops.
    pub critical: bool,
}

/// A worker as `pg_stat_activity` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerActivity {
    pub pid: i32,
    pub name: String,
    pub backend_type: &'static str,
    pub started_at: SystemTime,
    pub state: &'static str,
    pub restarts: u32,
}

const RUNNING: u8 = 0;
const RESTARTING: u8 = 1;
const STOPPED: u8 = 2;

struct Entry {
    spec: WorkerSpec,
    pid: AtomicI32,
    state: AtomicU8,
    started_at: Mutex<SystemTime>,
    restarts: Mutex<u32>,
    stop_tx: watch::Sender<bool>,
    handle: Mutex<Option<WorkerHandle>>,
}

enum WorkerHandle {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// Allocates pids for workers, shared with sessions so pids are unique server-wide.
pub type PidAllocator = Arc<dyn Fn() -> i32 + Send + Sync>;

pub struct Supervisor {
    entries: Mutex<Vec<Arc<Entry>>>,
    pids: PidAllocator,
    /// Called once if a critical worker ends while the server runs.
    on_critical_exit: Arc<dyn Fn(&str) + Send + Sync>,
    runtime: tokio::runtime::Handle,
}

impl Supervisor {
    pub fn new(
        runtime: tokio::runtime::Handle,
        pids: PidAllocator,
        on_critical_exit: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Arc<Supervisor> {
        Arc::new(Supervisor {
            entries: Mutex::new(Vec::new()),
            pids,
            on_critical_exit,
            runtime,
        })
    }

    /// Registers and starts a worker.
    pub fn register(self: &Arc<Self>, spec: WorkerSpec) {
        let (stop_tx, _) = watch::channel(false);
        let entry = Arc::new(Entry {
            spec,
            pid: AtomicI32::new((self.pids)()),
            state: AtomicU8::new(RUNNING),
            started_at: Mutex::new(SystemTime::now()),
            restarts: Mutex::new(0),
            stop_tx,
            handle: Mutex::new(None),
        });
        self.entries.lock().push(entry.clone());
        self.start(entry);
    }

    fn start(self: &Arc<Self>, entry: Arc<Entry>) {
        let ctx = WorkerContext {
            pid: entry.pid.load(Ordering::Relaxed),
            name: entry.spec.name.clone(),
            stop: entry.stop_tx.subscribe(),
        };
        entry.state.store(RUNNING, Ordering::Release);
        *entry.started_at.lock() = SystemTime::now();
        let sup = self.clone();
        let e2 = entry.clone();
        let handle = match entry.spec.main.clone() {
            WorkerMain::Thread(main) => {
                let name = entry.spec.name.clone();
                let spawned = std::thread::Builder::new()
                    .name(name.clone())
                    .spawn(move || {
                        let result = main(ctx);
                        sup.exited(e2, result);
                    });
                match spawned {
                    Ok(h) => WorkerHandle::Thread(h),
                    Err(e) => {
                        tracing::error!("could not start background worker \"{name}\": {e}");
                        (self.on_critical_exit)(&name);
                        return;
                    }
                }
            }
            WorkerMain::Task(main) => WorkerHandle::Task(self.runtime.spawn(async move {
                let result = main(ctx).await;
                sup.exited(e2, result);
            })),
        };
        *entry.handle.lock() = Some(handle);
    }

    fn exited(self: &Arc<Self>, entry: Arc<Entry>, result: Result<(), String>) {
        let stopping = *entry.stop_tx.borrow();
        let name = &entry.spec.name;
        match &result {
            Ok(()) if stopping => tracing::debug!("background worker \"{name}\" stopped"),
            Ok(()) => tracing::info!("background worker \"{name}\" exited"),
            Err(e) => tracing::error!("background worker \"{name}\" failed: {e}"),
        }
        if stopping {
            entry.state.store(STOPPED, Ordering::Release);
            return;
        }
        if entry.spec.critical {
            entry.state.store(STOPPED, Ordering::Release);
            (self.on_critical_exit)(name);
            return;
        }
        match entry.spec.restart {
            RestartPolicy::Never => entry.state.store(STOPPED, Ordering::Release),
            RestartPolicy::Always { delay } => {
                entry.state.store(RESTARTING, Ordering::Release);
                let sup = self.clone();
                self.runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    if *entry.stop_tx.borrow() {
                        entry.state.store(STOPPED, Ordering::Release);
                        return;
                    }
                    *entry.restarts.lock() += 1;
                    entry.pid.store((sup.pids)(), Ordering::Relaxed);
                    sup.start(entry);
                });
            }
        }
    }

    /// Asks one worker to stop and waits for it.
    pub async fn stop(&self, name: &str) {
        let entry = self
            .entries
            .lock()
            .iter()
            .find(|e| e.spec.name == name)
            .cloned();
        if let Some(e) = entry {
            Self::stop_entry(&e).await;
        }
    }

    async fn stop_entry(e: &Arc<Entry>) {
        let _ = e.stop_tx.send(true);
        let handle = e.handle.lock().take();
        match handle {
            Some(WorkerHandle::Task(h)) => {
                let _ = h.await;
            }
            Some(WorkerHandle::Thread(h)) => {
                let _ = tokio::task::spawn_blocking(move || h.join()).await;
            }
            None => {}
        }
        e.state.store(STOPPED, Ordering::Release);
    }

    /// Signals every worker to stop without waiting (the caller then wakes blocking ones,
    /// e.g. by shutting the WAL down, and calls `join_all`).
    pub fn signal_all(&self) {
        for e in self.entries.lock().iter() {
            let _ = e.stop_tx.send(true);
        }
    }

    /// Stops every worker, newest first, waiting for each.
    pub async fn stop_all(&self) {
        let entries: Vec<Arc<Entry>> = self.entries.lock().iter().rev().cloned().collect();
        for e in entries {
            Self::stop_entry(&e).await;
        }
    }

    /// Removes stopped workers that will not come back (e.g. finished walsenders).
    pub fn forget(&self, name: &str) {
        self.entries
            .lock()
            .retain(|e| !(e.spec.name == name && e.state.load(Ordering::Acquire) == STOPPED));
    }

    pub fn list(&self) -> Vec<WorkerActivity> {
        self.entries
            .lock()
            .iter()
            .map(|e| WorkerActivity {
                pid: e.pid.load(Ordering::Relaxed),
                name: e.spec.name.clone(),
                backend_type: e.spec.backend_type,
                started_at: *e.started_at.lock(),
                state: match e.state.load(Ordering::Acquire) {
                    RUNNING => "running",
                    RESTARTING => "restarting",
                    _ => "stopped",
                },
                restarts: *e.restarts.lock(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pids() -> PidAllocator {
        let next = Arc::new(AtomicI32::new(1000));
        Arc::new(move || next.fetch_add(1, Ordering::Relaxed))
    }

    #[tokio::test]
    async fn restarts_failed_workers_and_stops_all() {
        let critical_exits = Arc::new(AtomicUsize::new(0));
        let c2 = critical_exits.clone();
        let sup = Supervisor::new(
            tokio::runtime::Handle::current(),
            pids(),
            Arc::new(move |_| {
                c2.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let r2 = runs.clone();
        sup.register(WorkerSpec {
            name: "flaky".into(),
            backend_type: "test",
            main: WorkerMain::Task(Arc::new(move |mut ctx: WorkerContext| {
                let r = r2.clone();
                Box::pin(async move {
                    if r.fetch_add(1, Ordering::Relaxed) < 2 {
                        return Err("boom".into());
                    }
                    ctx.stopped().await;
                    Ok(())
                })
            })),
            restart: RestartPolicy::Always {
                delay: Duration::from_millis(5),
            },
            critical: false,
        });
        sup.register(WorkerSpec {
            name: "blocking".into(),
            backend_type: "test",
            main: WorkerMain::Thread(Arc::new(|ctx: WorkerContext| {
                while !ctx.should_stop() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(())
            })),
            restart: RestartPolicy::Never,
            critical: true,
        });
        for _ in 0..200 {
            if runs.load(Ordering::Relaxed) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        let list = sup.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].restarts, 2);
        assert!(list.iter().all(|w| w.state == "running"));
        sup.stop_all().await;
        assert!(sup.list().iter().all(|w| w.state == "stopped"));
        assert_eq!(
            critical_exits.load(Ordering::Relaxed),
            0,
            "stopping is not a crash"
        );
    }

    #[tokio::test]
    async fn a_critical_worker_ending_stops_the_server() {
        let critical_exits = Arc::new(AtomicUsize::new(0));
        let c2 = critical_exits.clone();
        let sup = Supervisor::new(
            tokio::runtime::Handle::current(),
            pids(),
            Arc::new(move |_| {
                c2.fetch_add(1, Ordering::Relaxed);
            }),
        );
        sup.register(WorkerSpec {
            name: "walwriter".into(),
            backend_type: "walwriter",
            main: WorkerMain::Thread(Arc::new(|_| Err("disk gone".into()))),
            restart: RestartPolicy::Never,
            critical: true,
        });
        for _ in 0..200 {
            if critical_exits.load(Ordering::Relaxed) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(critical_exits.load(Ordering::Relaxed), 1);
    }
}
