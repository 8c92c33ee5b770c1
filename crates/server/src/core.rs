//! The storage core of a running server: recovery, the WAL and its workers, the transaction
//! manager, the checkpointer. `node` puts the SQL engine and the frontend on top.
//!
//! Start order: recover (replay to the end of valid WAL) → open the WAL there → build the
//! transaction manager over the recovered catalog with every watermark at the end of WAL
//! (everything recovered is visible) → register the WAL writer, flusher and preallocator and
//! the checkpointer in the worker registry → mark the cluster "in production". After crash
//! recovery an end-of-recovery checkpoint runs in the background.
//!
//! On a standby (`standby.signal`): the same recovery, then the WAL is *not* opened (the
//! walreceiver writes `pg_wal`), the transaction manager is read-only, the `startup` worker
//! keeps replaying, and the checkpointer takes restartpoints; promotion opens the WAL on a
//! new timeline (`standby` module).
//!
//! Stop order (`shutdown`): the caller has already ended all sessions; a shutdown checkpoint
//! flushes everything and marks the control file "shut down"; then the WAL stops and the
//! workers are joined.

use std::path::PathBuf;
use std::sync::Arc;

use base::{Lsn, TimelineId};
use storage::Watermarks;
use storage::controlfile::ClusterState;
use txn::TxnManager;
use wal::mirror::MirrorHook;
use wal::{Wal, WalConfig};

use crate::bgworker::{PidAllocator, RestartPolicy, Supervisor, WorkerMain, WorkerSpec};
use crate::checkpointer::{CheckpointKind, CheckpointSettings, Checkpointer};
use crate::datadir::{DataDir, StandbySettings};
use crate::progress::LocalProgress;
use crate::recovery::{Recovered, StartMode, recover_as};
use crate::standby::startup::{ReplayStart, Replayer, Startup};
use crate::standby::{PromotableLog, StandbyShared, TargetTimeline, WALRECEIVER, WalSlot};

pub struct CoreOptions {
    pub fsync: bool,
    pub wal_mirror_directory: Option<PathBuf>,
    pub checkpoint: CheckpointSettings,
    /// What to do when the WAL fails (the server exits; tests record it).
    pub on_wal_failure: Arc<dyn Fn(&str) + Send + Sync>,
    /// `primary_conninfo` and friends (used when `standby.signal` exists).
    pub standby: StandbySettings,
    /// `synchronous_standby_names` at start: when set, recovered commits after the last
    /// checkpoint stay invisible until a synchronous standby confirms them.
    pub synchronous_standby_names: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    Recovery(#[from] crate::recovery::RecoveryError),
    #[error("{0}")]
    Wal(#[from] wal::WalError),
    #[error("could not set up wal_mirror_directory \"{path}\": {source}")]
    Mirror {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Checkpoint(#[from] crate::checkpointer::CheckpointError),
    #[error("{0}")]
    TargetTimeline(#[from] crate::standby::decide::BadTargetTimeline),
}

pub struct Core {
    pub datadir: DataDir,
    /// The WAL: empty while the server is a standby (the walreceiver owns `pg_wal` then), set
    /// at start on a primary and at promotion on a standby. Use `wal()`.
    pub wal: WalSlot,
    pub mgr: Arc<TxnManager>,
    pub checkpointer: Arc<Checkpointer>,
    pub supervisor: Arc<Supervisor>,
    /// Walsenders, synchronous replication and slots (crate `walsender`).
    /// The walsenders' control, once this server writes WAL (see `WalSenderSlot`).
    pub walsnd: Arc<WalSenderSlot>,
    pub system_identifier: u64,
    pub recovered_end: Lsn,
    pub records_replayed: u64,
    /// Set when the server started as a standby (it stays set after promotion, for
    /// `pg_last_wal_replay_lsn()`; `in_recovery()` says whether it still is one).
    pub standby: Option<Arc<StandbyShared>>,
}

/// What opening the WAL for inserts needs: at start on a primary, at promotion on a standby.
struct WalActivation {
    datadir: DataDir,
    fsync: bool,
    segment_size: u64,
    mirror: Option<Arc<MirrorHook>>,
    on_wal_failure: Arc<dyn Fn(&str) + Send + Sync>,
    supervisor: Arc<Supervisor>,
    mgr: Arc<TxnManager>,
    slot: WalSlot,
    walsnd: Arc<WalSenderSlot>,
    system_identifier: u64,
    pids: PidAllocator,
    synchronous_standby_names: String,
}

/// The walsenders' control (`walsender::WalSndCtl`), which exists only while this server
/// writes WAL: from start on a primary, from promotion on a standby (a standby refuses
/// replication connections: lockstep has no cascading replication).
///
/// `wiring` is what the node adds once the SQL engine exists (configuration, the BASE_BACKUP
/// checkpoint, WAL retention, the sync rep timeout task). Whichever of `install` and
/// `set_wiring` comes second runs it, under one mutex, so it runs exactly once.
pub struct WalSenderSlot {
    ctl: std::sync::OnceLock<Arc<walsender::WalSndCtl>>,
    wiring: parking_lot::Mutex<Option<WalSenderWiring>>,
}

pub type WalSenderWiring = Box<dyn Fn(&Arc<walsender::WalSndCtl>) + Send + Sync>;

impl WalSenderSlot {
    fn new() -> Arc<WalSenderSlot> {
        Arc::new(WalSenderSlot {
            ctl: std::sync::OnceLock::new(),
            wiring: parking_lot::Mutex::new(None),
        })
    }

    pub fn get(&self) -> Option<&Arc<walsender::WalSndCtl>> {
        self.ctl.get()
    }

    fn install(&self, ctl: Arc<walsender::WalSndCtl>) {
        let wiring = self.wiring.lock();
        if self.ctl.set(ctl.clone()).is_ok()
            && let Some(f) = wiring.as_ref()
        {
            f(&ctl);
        }
    }

    pub fn set_wiring(&self, f: WalSenderWiring) {
        let mut wiring = self.wiring.lock();
        if let Some(ctl) = self.ctl.get() {
            f(ctl);
        }
        *wiring = Some(f);
    }
}

impl WalActivation {
    /// Opens the WAL at `start` on `timeline`, connects it to visibility (`LocalProgress`),
    /// registers its workers, and publishes it in the slot (from then on commits can be
    /// written).
    fn open(&self, timeline: TimelineId, start: Lsn) -> Result<Arc<Wal>, CoreError> {
        let fail = self.on_wal_failure.clone();
        let wal = Wal::open(
            WalConfig {
                dir: self.datadir.wal_dir(),
                segment_size: self.segment_size,
                timeline,
                fsync: self.fsync,
                on_fatal: Box::new(move |e| fail(&e.to_string())),
            },
            start,
        )?;
        if let Some(m) = &self.mirror {
            wal.add_hook(m.clone());
        }
        // ----- synchronous replication (walsender) -----
        let walsnd = walsender::WalSndCtl::new(walsender::WalSndCtlParams {
            wal: wal.clone(),
            mgr: self.mgr.clone(),
            data_dir: self.datadir.path.clone(),
            system_identifier: self.system_identifier,
            pids: self.pids.clone(),
            synchronous_standby_names: self.synchronous_standby_names.clone(),
        });
        wal.add_progress_listener(LocalProgress::new(self.mgr.clone(), walsnd.clone()));
        // The WAL's threads: the writer and flusher are critical (no commit completes without
        // them); the preallocator only saves latency.
        type WalMain = fn(&Wal);
        let wal_workers: [(&str, &'static str, WalMain, bool); 3] = [
            ("walwriter", "walwriter", Wal::writer_main, true),
            ("walflusher", "walflusher", Wal::flusher_main, true),
            ("walprealloc", "walpreallocator", Wal::prealloc_main, false),
        ];
        for (name, backend_type, main, critical) in wal_workers {
            let w = wal.clone();
            self.supervisor.register(WorkerSpec {
                name: name.into(),
                backend_type,
                main: WorkerMain::Thread(Arc::new(move |_| {
                    main(&w);
                    if w.has_failed() {
                        Err(format!("{name} stopped after a WAL failure"))
                    } else {
                        Ok(())
                    }
                })),
                restart: RestartPolicy::Never,
                critical,
            });
        }
        // Set once: a primary opens its WAL once, a standby once at promotion.
        let _ = self.slot.set(wal.clone());
        self.walsnd.install(walsnd);
        Ok(wal)
    }
}

impl Core {
    pub fn start(
        datadir: DataDir,
        opts: CoreOptions,
        runtime: tokio::runtime::Handle,
        pids: PidAllocator,
    ) -> Result<Arc<Core>, CoreError> {
        let standby_mode = datadir.is_standby();
        let Recovered {
            catalog,
            control,
            end_lsn,
            next_xid,
            records_replayed,
            clean_shutdown,
            redo,
        } = recover_as(
            &datadir,
            match (standby_mode, opts.standby.streaming()) {
                (false, _) => StartMode::Primary,
                (true, false) => StartMode::ArchiveStandby,
                (true, true) => StartMode::StreamingStandby,
            },
        )?;
        let slot: WalSlot = Arc::new(std::sync::OnceLock::new());
        // Everything recovered is visible: recovery applied whole transactions only.
        let mut watermarks = Arc::new(Watermarks::new(end_lsn.0));
        if !standby_mode {
            // Better than PostgreSQL: with synchronous standbys configured, recovered commits
            // that waited for a standby and were not confirmed when the last checkpoint was
            // taken are not visible until a synchronous standby confirms them, whether they
            // come from the snapshot or from WAL replay (the remote watermarks start at the
            // checkpoint's `sync_confirmed_lsn`, not at the end of WAL).
            // A standby replays only what its primary made durable, and a promoted standby
            // keeps what it replayed visible, as PostgreSQL does.
            let remote_start = walsender::WalSndCtl::initial_remote_watermark(
                &opts.synchronous_standby_names,
                end_lsn,
                control.sync_confirmed_lsn,
            );
            let all = Watermarks::new(remote_start.0);
            all.advance(|w| {
                w[base::SyncCommitLevel::Off.index()] = end_lsn.0;
                w[base::SyncCommitLevel::Local.index()] = end_lsn.0;
            });
            watermarks = Arc::new(all);
        }
        let mgr = TxnManager::new(
            catalog,
            watermarks,
            Arc::new(PromotableLog { wal: slot.clone() }),
            next_xid,
        );
        let mirror = match &opts.wal_mirror_directory {
            // A standby's pg_wal belongs to the walreceiver; mirroring starts with the WAL
            // this server writes itself (after promotion, from the next start).
            Some(dir) if standby_mode => {
                tracing::warn!(
                    "wal_mirror_directory \"{}\" is not used while the server is a standby",
                    dir.display()
                );
                None
            }
            Some(dir) => Some(
                MirrorHook::new(dir, &datadir.wal_dir(), control.segment_size).map_err(|e| {
                    CoreError::Mirror {
                        path: dir.display().to_string(),
                        source: e,
                    }
                })?,
            ),
            None => None,
        };

        let walsnd = WalSenderSlot::new();
        let pids_for_walsnd = pids.clone();
        let fail = opts.on_wal_failure.clone();
        let server_runtime = runtime.clone();
        let supervisor = Supervisor::new(
            runtime,
            pids,
            Arc::new(move |name| {
                fail(&format!("background worker \"{name}\" exited unexpectedly"))
            }),
        );
        let activation = Arc::new(WalActivation {
            datadir: datadir.clone(),
            fsync: opts.fsync,
            segment_size: control.segment_size,
            mirror: mirror.clone(),
            on_wal_failure: opts.on_wal_failure.clone(),
            supervisor: supervisor.clone(),
            mgr: mgr.clone(),
            slot: slot.clone(),
            walsnd: walsnd.clone(),
            system_identifier: control.system_identifier,
            pids: pids_for_walsnd,
            synchronous_standby_names: opts.synchronous_standby_names.clone(),
        });
        let standby = if standby_mode {
            let target: TargetTimeline = opts.standby.recovery_target_timeline.parse()?;
            // A promote.signal left from before this start is stale (PostgreSQL's postmaster
            // removes it at start too): only a request to *this* server promotes it.
            if let Err(e) = datadir.remove_signal(&datadir.promote_signal()) {
                tracing::warn!("{e}");
            }
            // Hot standby: every write and DDL fails with 25006 until promotion.
            mgr.set_read_only(true);
            Some(StandbyShared::new(
                opts.standby.clone(),
                target,
                end_lsn,
                control.timeline,
            ))
        } else {
            activation.open(control.timeline, end_lsn)?;
            None
        };
        let checkpointer = Checkpointer::new(
            datadir.clone(),
            slot.clone(),
            standby.clone(),
            mgr.clone(),
            control.clone(),
            opts.checkpoint,
            mirror,
        );
        checkpointer.set_state(if standby_mode {
            ClusterState::InArchiveRecovery
        } else {
            ClusterState::InProduction
        })?;

        let c = checkpointer.clone();
        supervisor.register(WorkerSpec {
            name: "checkpointer".into(),
            backend_type: "checkpointer",
            main: WorkerMain::Task(Arc::new(move |ctx| Box::pin(c.clone().worker_main(ctx)))),
            restart: RestartPolicy::Always {
                delay: std::time::Duration::from_secs(1),
            },
            critical: false,
        });
        if let Some(shared) = &standby {
            let replayer = Replayer::new(
                ReplayStart {
                    wal_dir: datadir.wal_dir(),
                    segment_size: control.segment_size,
                    timeline: control.timeline,
                    start: end_lsn,
                    redo,
                    last_checkpoint_lsn: control.checkpoint_lsn,
                },
                mgr.clone(),
                shared.clone(),
            );
            let act = activation.clone();
            let startup = Startup::new(
                datadir.clone(),
                mgr.clone(),
                shared.clone(),
                checkpointer.clone(),
                supervisor.clone(),
                Arc::new(move |tli, lsn| act.open(tli, lsn).map_err(|e| e.to_string())),
                opts.on_wal_failure.clone(),
                replayer,
            );
            supervisor.register(WorkerSpec {
                name: "startup".into(),
                backend_type: "startup",
                // A thread of its own, driving the async code with the server runtime's
                // handle: redo blocks it while applying (see the module header of startup).
                main: WorkerMain::Thread(Arc::new(move |ctx| {
                    server_runtime.block_on(startup.clone().worker_main(ctx))
                })),
                // Never restarted: its failures stop the server (it calls the fatal handler),
                // and after promotion it has finished for good.
                restart: RestartPolicy::Never,
                critical: false,
            });
            if shared.settings.streaming() {
                start_walreceiver(
                    &supervisor,
                    shared,
                    &datadir,
                    control.system_identifier,
                    control.segment_size,
                    opts.on_wal_failure.clone(),
                );
            }
        }
        let core = Arc::new(Core {
            datadir,
            wal: slot,
            mgr,
            checkpointer,
            supervisor,
            walsnd,
            system_identifier: control.system_identifier,
            recovered_end: end_lsn,
            records_replayed,
            standby,
        });
        if !standby_mode && !clean_shutdown && records_replayed > 0 {
            let c = core.checkpointer.clone();
            core.supervisor_runtime_spawn(async move {
                if let Err(e) = c.checkpoint_async(CheckpointKind::EndOfRecovery).await {
                    tracing::error!("end-of-recovery checkpoint failed: {e}");
                }
            });
        }
        Ok(core)
    }

    /// The WAL, once it is open for inserts (always on a primary; after promotion on a
    /// standby).
    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    /// Still a standby (not yet promoted).
    pub fn in_recovery(&self) -> bool {
        self.standby.as_ref().is_some_and(|s| s.in_recovery())
    }

    fn supervisor_runtime_spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        tokio::runtime::Handle::current().spawn(f);
    }

    /// Shutdown checkpoint, then stop the WAL and every worker. Sessions must be gone.
    pub async fn shutdown(&self) -> Result<(), CoreError> {
        let c = self.checkpointer.clone();
        let result = c
            .checkpoint_async(CheckpointKind::Shutdown)
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!("shutdown checkpoint failed: {e}");
                e
            });
        self.supervisor.signal_all();
        if let Some(wal) = self.wal() {
            wal.shutdown()?;
        }
        self.supervisor.stop_all().await;
        if let Err(e) = result {
            tracing::error!("the next start will run crash recovery: {e}");
        }
        Ok(())
    }

    /// Stops without a shutdown checkpoint: the control file still says "in production", so
    /// the next start runs crash recovery over the WAL. (Real crashes are tested with
    /// `kill -9` of the server process.)
    pub async fn crash(&self) {
        self.supervisor.signal_all();
        if let Some(wal) = self.wal() {
            let _ = wal.shutdown();
        }
        self.supervisor.stop_all().await;
    }
}

/// **The integration point for the walreceiver** (the only one): registers the background
/// worker `walreceiver` on a standby with `primary_conninfo` set. Promotion stops it through
/// its `WorkerContext` stop signal (`Supervisor::stop(WALRECEIVER)`, then `forget`), and only
/// then replays what it flushed, so nothing appends to the old timeline during the switch.
///
/// What the driver (`walreceiver::run(cfg, shared, stop)`) must be given:
/// - `cfg`: `WalRcvConfig::new(primary_conninfo, datadir.wal_dir(), segment_size,
///   system_identifier, shared.replay_timeline(), shared.walrcv.flushed_lsn())` plus
///   `primary_slot_name` (empty = `None`) and `recovery_target_timeline` from
///   `shared.settings`. The start LSN is where start-up replay stopped (`recovery::StartMode::
///   StreamingStandby`: the last restartpoint), at or before the end of local WAL; streaming
///   from there rewrites identical bytes, and never lets redo pass the primary's flush;
/// - `shared`: `shared.walrcv` (it publishes written/flushed/primary-flush positions and
///   wakes `wal_arrived`; redo reports `set_replayed` back for feedback);
/// - `stop`: `ctx.stop_signal()`. An error with `is_fatal()` must stop the server (call the
///   `on_wal_failure` handler); other errors it retries itself.
fn start_walreceiver(
    supervisor: &Arc<Supervisor>,
    shared: &Arc<StandbyShared>,
    datadir: &DataDir,
    system_identifier: u64,
    segment_size: u64,
    on_fatal: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let shared = shared.clone();
    let wal_dir = datadir.wal_dir();
    supervisor.register(WorkerSpec {
        name: WALRECEIVER.into(),
        backend_type: "walreceiver",
        // Its own thread with its own event loop, not a task on the shared multi-thread
        // runtime: when WAL arrives, the epoll wake-up lands on the thread that runs the
        // receiver, with no work-stealing sibling woken and no task migration in between
        // (measured with the replica benchmark at 1 client: ~5% more transactions per second).
        main: WorkerMain::Thread(Arc::new(move |ctx| {
            let shared = shared.clone();
            let wal_dir = wal_dir.clone();
            let on_fatal = on_fatal.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start the walreceiver's event loop: {e}"))?;
            rt.block_on(async move {
                let s = &shared.settings;
                let mut cfg = walreceiver::WalRcvConfig::new(
                    s.primary_conninfo.clone(),
                    wal_dir,
                    segment_size,
                    system_identifier,
                    shared.replay_timeline(),
                    shared.walrcv.flushed_lsn(),
                );
                cfg.primary_slot_name = Some(s.primary_slot_name.clone()).filter(|n| !n.is_empty());
                cfg.recovery_target_timeline = match shared.target {
                    TargetTimeline::Latest => walreceiver::RecoveryTargetTimeline::Latest,
                    TargetTimeline::Current => walreceiver::RecoveryTargetTimeline::Current,
                    TargetTimeline::Numbered(t) => walreceiver::RecoveryTargetTimeline::Numbered(t),
                };
                cfg.status_interval = Some(s.status_interval).filter(|d| !d.is_zero());
                cfg.receiver_timeout = Some(s.receiver_timeout).filter(|d| !d.is_zero());
                if !s.cluster_name.is_empty() {
                    cfg.fallback_application_name = s.cluster_name.clone();
                }
                match walreceiver::run(cfg, shared.walrcv.clone(), ctx.stop_signal()).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_fatal() => {
                        // A failed WAL write or fsync on the standby: never retried (the
                        // kernel may have dropped the dirty pages), the server stops.
                        on_fatal(&format!("walreceiver: {e}"));
                        Err(e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
        })),
        // run() retries connections itself; it returns an error only for a configuration
        // it cannot use. PostgreSQL retries after wal_retrieve_retry_interval (5 s).
        restart: RestartPolicy::Always {
            delay: std::time::Duration::from_secs(5),
        },
        critical: false,
    });
}
