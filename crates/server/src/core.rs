//! The storage core of a running server: recovery, the WAL and its workers, the transaction
//! manager, the checkpointer. `node` puts the SQL engine and the frontend on top.
//!
//! Start order: recover (replay to the end of valid WAL) → open the WAL there → build the
//! transaction manager over the recovered catalog with every watermark at the end of WAL
//! (everything recovered is visible) → register the WAL writer, flusher and preallocator and
//! the checkpointer in the worker registry → mark the cluster "in production". After crash
//! recovery an end-of-recovery checkpoint runs in the background.
//!
//! Stop order (`shutdown`): the caller has already ended all sessions; a shutdown checkpoint
//! flushes everything and marks the control file "shut down"; then the WAL stops and the
//! workers are joined.

use std::path::PathBuf;
use std::sync::Arc;

use base::Lsn;
use storage::Watermarks;
use storage::controlfile::ClusterState;
use txn::TxnManager;
use wal::mirror::MirrorHook;
use wal::{Wal, WalConfig};

use crate::bgworker::{PidAllocator, RestartPolicy, Supervisor, WorkerMain, WorkerSpec};
use crate::checkpointer::{CheckpointKind, CheckpointSettings, Checkpointer};
use crate::datadir::DataDir;
use crate::progress::LocalProgress;
use crate::recovery::{Recovered, recover};

pub struct CoreOptions {
    pub fsync: bool,
    pub wal_mirror_directory: Option<PathBuf>,
    pub checkpoint: CheckpointSettings,
    /// What to do when the WAL fails (the server exits; tests record it).
    pub on_wal_failure: Arc<dyn Fn(&str) + Send + Sync>,
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
}

pub struct Core {
    pub datadir: DataDir,
    pub wal: Arc<Wal>,
    pub mgr: Arc<TxnManager>,
    pub checkpointer: Arc<Checkpointer>,
    pub supervisor: Arc<Supervisor>,
    /// Walsenders, synchronous replication and slots (crate `walsender`).
    pub walsnd: Arc<walsender::WalSndCtl>,
    pub system_identifier: u64,
    pub recovered_end: Lsn,
    pub records_replayed: u64,
}

impl Core {
    pub fn start(
        datadir: DataDir,
        opts: CoreOptions,
        runtime: tokio::runtime::Handle,
        pids: PidAllocator,
    ) -> Result<Arc<Core>, CoreError> {
        let Recovered {
            catalog,
            control,
            end_lsn,
            next_xid,
            records_replayed,
            clean_shutdown,
        } = recover(&datadir)?;
        let fail = opts.on_wal_failure.clone();
        let wal = Wal::open(
            WalConfig {
                dir: datadir.wal_dir(),
                segment_size: control.segment_size,
                timeline: control.timeline,
                fsync: opts.fsync,
                on_fatal: Box::new(move |e| fail(&e.to_string())),
            },
            end_lsn,
        )?;
        let mirror = match &opts.wal_mirror_directory {
            Some(dir) => {
                let m = MirrorHook::new(dir, &datadir.wal_dir(), control.segment_size).map_err(
                    |e| CoreError::Mirror {
                        path: dir.display().to_string(),
                        source: e,
                    },
                )?;
                wal.add_hook(m.clone());
                Some(m)
            }
            None => None,
        };
        // ----- synchronous replication (walsender) -----
        // Better than PostgreSQL: with synchronous standbys configured, commits recovered
        // from WAL after the last checkpoint are not visible until a synchronous standby
        // confirms them (the remote watermarks start at the checkpoint, not at the end of
        // WAL). Limit: commits at or before the checkpoint are visible at once even if no
        // standby ever confirmed them (the checkpoint snapshot does not record that).
        let remote_start = walsender::WalSndCtl::initial_remote_watermark(
            &opts.synchronous_standby_names,
            end_lsn,
            control.checkpoint_lsn,
        );
        let watermarks = Arc::new(Watermarks::new(remote_start.0));
        watermarks.advance(|w| {
            w[base::SyncCommitLevel::Off.index()] = end_lsn.0;
            w[base::SyncCommitLevel::Local.index()] = end_lsn.0;
        });
        let mgr = TxnManager::new(catalog, watermarks, wal.clone(), next_xid);
        let walsnd = walsender::WalSndCtl::new(walsender::WalSndCtlParams {
            wal: wal.clone(),
            mgr: mgr.clone(),
            data_dir: datadir.path.clone(),
            system_identifier: control.system_identifier,
            pids: pids.clone(),
            synchronous_standby_names: opts.synchronous_standby_names.clone(),
        });
        wal.add_progress_listener(LocalProgress::new(mgr.clone(), walsnd.clone()));

        let fail = opts.on_wal_failure.clone();
        let supervisor = Supervisor::new(
            runtime,
            pids,
            Arc::new(move |name| {
                fail(&format!("background worker \"{name}\" exited unexpectedly"))
            }),
        );
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
            supervisor.register(WorkerSpec {
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
        let checkpointer = Checkpointer::new(
            datadir.clone(),
            wal.clone(),
            mgr.clone(),
            control.clone(),
            opts.checkpoint,
            mirror,
        );
        {
            // Replication slots and running base backups keep their WAL.
            let w = walsnd.clone();
            checkpointer.add_retention(Arc::new(move || w.wal_retention()));
        }
        checkpointer.set_state(ClusterState::InProduction)?;
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
        let core = Arc::new(Core {
            datadir,
            wal,
            mgr,
            checkpointer,
            supervisor,
            walsnd,
            system_identifier: control.system_identifier,
            recovered_end: end_lsn,
            records_replayed,
        });
        if !clean_shutdown && records_replayed > 0 {
            let c = core.checkpointer.clone();
            core.supervisor_runtime_spawn(async move {
                if let Err(e) = c.checkpoint_async(CheckpointKind::EndOfRecovery).await {
                    tracing::error!("end-of-recovery checkpoint failed: {e}");
                }
            });
        }
        Ok(core)
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
        self.wal.shutdown()?;
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
        let _ = self.wal.shutdown();
        self.supervisor.stop_all().await;
    }
}
