//! The running server ("postmaster"): configuration, the storage core, the SQL engine, the
//! frontend, signals, reload and shutdown.
//!
//! Start: read `lockstep.conf` plus `-c` overrides; lock the data directory; start the
//! storage core (recovery, WAL, workers); build the SQL engine and the frontend; announce
//! readiness. Signals, as PostgreSQL's postmaster: SIGTERM = smart shutdown (no new
//! connections, wait for sessions to end, checkpoint), SIGINT = fast shutdown (terminate
//! sessions with 57P01, checkpoint), SIGQUIT = immediate shutdown (no checkpoint; the next
//! start runs crash recovery), SIGHUP = reload configuration, pg_hba.conf and roles.
//! A second SIGINT during a smart shutdown turns it into a fast one.
//!
//! Failure: a failed WAL write or flush, or the death of a critical worker, stops the process
//! at once with exit status 2 (PostgreSQL's PANIC); nothing unflushed was acknowledged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context;
use auth::hba::SharedHba;
use auth::roles::RoleStore;
use base::{Lsn, PgError, TimelineId};
use frontend::{Frontend, FrontendConfig, ShutdownMode, shutdown_channel};
use sql::engine::{BackgroundWorkerInfo, HookFuture, ServerHooks, WalReceiverStat};
use sql::guc::ServerConfig;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use walreceiver::shared::WalRcvStatus;

use crate::checkpointer::{CheckpointKind, CheckpointSettings};
use crate::core::{Core, CoreOptions};
use crate::datadir::{DataDir, StandbySettings};

/// Worker pids start here; session pids start at 1000 (sql::engine), so the two never meet.
/// The range fits hundreds of worker restarts; pids only need to be unique among live ones.
const WORKER_PID_FIRST: i32 = 100;

/// What only the server knows, for the SQL layer.
#[derive(Debug)]
struct NodeHooks {
    core: Arc<Core>,
    reload: Arc<Notify>,
    /// `pg_stat_wal`'s zero point: the WAL counters at the last `pg_stat_reset_shared('wal')`
    /// (zeros before any) and when that was.
    wal_stats_base: parking_lot::Mutex<(wal::WalStats, std::time::SystemTime)>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("wal", &self.wal).finish()
    }
}

impl NodeHooks {
    /// On a standby before promotion the WAL positions are the replayed position (the
    /// functions that show them refuse during recovery anyway, as PostgreSQL's).
    fn wal_or_replayed(&self, f: impl FnOnce(&wal::Wal) -> Lsn) -> Lsn {
        match (self.core.wal(), &self.core.standby) {
            (Some(w), _) => f(w),
            (None, Some(s)) => s.replayed_lsn(),
            (None, None) => Lsn::ZERO,
        }
    }
}

impl ServerHooks for NodeHooks {
    fn wal_insert_lsn(&self) -> Lsn {
        self.wal_or_replayed(|w| w.insert_lsn())
    }
    fn wal_write_lsn(&self) -> Lsn {
        self.wal_or_replayed(|w| w.write_lsn())
    }
    fn wal_flush_lsn(&self) -> Lsn {
        self.wal_or_replayed(|w| w.flush_lsn())
    }
    fn wal_segment_size(&self) -> u64 {
        self.core.checkpointer.control().segment_size
    }
    fn timeline(&self) -> TimelineId {
        match (self.core.wal(), &self.core.standby) {
            (Some(w), _) => w.timeline(),
            (None, Some(s)) => s.replay_timeline(),
            (None, None) => self.core.checkpointer.control().timeline,
        }
    }
    fn is_in_recovery(&self) -> bool {
        self.core.in_recovery()
    }
    fn last_wal_receive_lsn(&self) -> Option<Lsn> {
        // Nothing is replayed before it was received; in archive mode the startup process
        // publishes what it replayed a moment before what it found in the files, so the
        // maximum keeps the two functions consistent for a reader in between.
        self.core
            .standby
            .as_ref()
            .map(|s| s.walrcv.flushed_lsn().max(s.replayed_lsn()))
    }
    fn last_wal_replay_lsn(&self) -> Option<Lsn> {
        self.core.standby.as_ref().map(|s| s.replayed_lsn())
    }
    fn last_xact_replay_timestamp(&self) -> Option<i64> {
        self.core
            .standby
            .as_ref()
            .and_then(|s| s.last_commit_time())
    }
    fn wal_stats(&self) -> sql::engine::WalStatInfo {
        // A standby writes no WAL of its own (the walreceiver's writes are not counted, as in
        // PostgreSQL): zeros until promotion opens the WAL, whose counters start at zero.
        let now = self.core.wal().map(|w| w.stats()).unwrap_or_default();
        let (base, reset) = *self.wal_stats_base.lock();
        let d = now.since(&base);
        sql::engine::WalStatInfo {
            records: d.records,
            bytes: d.bytes,
            writes: d.writes,
            syncs: d.syncs,
            write_time: d.write_time,
            sync_time: d.sync_time,
            stats_reset: Some(reset),
        }
    }
    fn reset_wal_stats(&self) {
        let now = self.core.wal().map(|w| w.stats()).unwrap_or_default();
        *self.wal_stats_base.lock() = (now, std::time::SystemTime::now());
    }
    fn wal_receiver_stat(&self) -> Option<WalReceiverStat> {
        let s = self.core.standby.as_ref()?;
        let status = s.walrcv.status();
        if !s.in_recovery() || !s.settings.streaming() || status == WalRcvStatus::Stopped {
            return None;
        }
        let i = s.walrcv.info();
        Some(WalReceiverStat {
            pid: i.pid,
            status: status.as_str().to_owned(),
            receive_start_lsn: i.receive_start_lsn,
            receive_start_tli: TimelineId(i.receive_start_tli),
            written_lsn: s.walrcv.written_lsn(),
            flushed_lsn: s.walrcv.flushed_lsn(),
            received_tli: TimelineId(i.received_tli),
            last_msg_send_time: i.last_msg_send_time,
            last_msg_receipt_time: i.last_msg_receipt_time,
            latest_end_lsn: i.latest_end_lsn,
            latest_end_time: i.latest_end_time,
            slot_name: i.slot_name,
            sender_host: i.sender_host,
            sender_port: i.sender_port,
            conninfo: i.conninfo,
        })
    }
    fn promote(&self, wait: bool, wait_seconds: i32) -> HookFuture<Result<bool, PgError>> {
        let standby = self.core.standby.clone().filter(|s| s.in_recovery());
        Box::pin(async move {
            let Some(s) = standby else {
                return Err(PgError::new(
                    base::error::sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "recovery is not in progress",
                )
                .with_hint("Recovery control functions can only be executed during recovery."));
            };
            if wait_seconds <= 0 {
                return Err(PgError::new(
                    base::error::sqlstate::INVALID_PARAMETER_VALUE,
                    "\"wait_seconds\" must not be negative or zero",
                ));
            }
            s.request_promotion();
            if !wait {
                return Ok(true);
            }
            Ok(s.wait_promoted(Duration::from_secs(wait_seconds as u64))
                .await)
        })
    }
    fn reload_config(&self) -> bool {
        self.reload.notify_one();
        true
    }
    fn alter_system(&self, name: Option<&str>, value: Option<&str>) -> Result<(), PgError> {
        sql::guc::file::alter_auto_conf(&self.core.datadir.path, name, value).map_err(|e| {
            PgError::new(
                base::error::sqlstate::IO_ERROR,
                format!(
                    "could not write \"{}\": {e}",
                    self.core
                        .datadir
                        .path
                        .join(sql::guc::file::AUTO_CONF_FILE)
                        .display()
                ),
            )
        })
    }
    fn request_checkpoint(&self) -> HookFuture<Result<(), PgError>> {
        let c = self.core.checkpointer.clone();
        Box::pin(async move {
            c.checkpoint_async(CheckpointKind::Requested)
                .await
                .map(|_| ())
                .map_err(|e| {
                    PgError::new(
                        base::error::sqlstate::IO_ERROR,
                        format!("checkpoint failed: {e}"),
                    )
                })
        })
    }
    fn background_workers(&self) -> Vec<BackgroundWorkerInfo> {
        let mut v: Vec<BackgroundWorkerInfo> = self
            .core
            .supervisor
            .list()
            .into_iter()
            .filter(|w| w.state != "stopped")
            .map(|w| BackgroundWorkerInfo {
                pid: w.pid,
                backend_type: w.backend_type.to_owned(),
                start_time: w.started_at,
                state: None,
                query: None,
                user: None,
                client_addr: None,
            })
            .collect();
        if let Some(w) = self.core.walsnd.get() {
            v.extend(w.background_workers());
        }
        v
    }
    // ----- replication (walsender crate) -----
    fn replication_stats(&self) -> Vec<sql::engine::ReplicationStat> {
        self.core
            .walsnd
            .get()
            .map(|w| w.replication_stats())
            .unwrap_or_default()
    }
    fn replication_slots(&self) -> Vec<sql::engine::ReplicationSlotInfo> {
        self.core
            .walsnd
            .get()
            .map(|w| w.replication_slots())
            .unwrap_or_default()
    }
    fn create_physical_replication_slot(
        &self,
        name: &str,
        immediately_reserve: bool,
    ) -> Result<Option<Lsn>, PgError> {
        self.core
            .walsnd
            .get()
            .ok_or_else(in_recovery_error)?
            .create_slot(name, false, immediately_reserve, None)
    }
    fn drop_replication_slot(&self, name: &str) -> Result<(), PgError> {
        self.core
            .walsnd
            .get()
            .ok_or_else(in_recovery_error)?
            .drop_slot(name)
    }
}

fn in_recovery_error() -> PgError {
    PgError::new(
        base::error::sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
        "recovery is in progress",
    )
    .with_hint("Replication slots are managed on the primary.")
}

/// Replication connections go to the walsender once this server writes WAL; a standby
/// refuses them (lockstep has no cascading replication), as PostgreSQL refuses them while
/// hot_standby is off.
struct ReplicationEntry {
    walsnd: Arc<crate::core::WalSenderSlot>,
}

impl frontend::ReplicationHandler for ReplicationEntry {
    fn handle(
        &self,
        conn: frontend::ReplicationConnection,
    ) -> futures::future::BoxFuture<'static, ()> {
        match self.walsnd.get() {
            Some(ctl) => walsender::WalSenderHandler::new(ctl.clone()).handle(conn),
            None => Box::pin(walsender::handler::refuse(
                conn,
                PgError::fatal(
                    base::error::sqlstate::CANNOT_CONNECT_NOW,
                    "the database system is a standby: cascading replication is not supported",
                ),
            )),
        }
    }
}

/// BASE_BACKUP's checkpoint: a requested checkpoint (lockstep's checkpoints are always
/// immediate; `fast` is accepted for PostgreSQL's CHECKPOINT 'fast'|'spread').
fn backup_checkpoint_requester(core: &Arc<Core>) -> walsender::CheckpointRequester {
    let c = core.checkpointer.clone();
    Arc::new(move |_fast| {
        let c = c.clone();
        Box::pin(async move {
            let stats = c.checkpoint_async(CheckpointKind::Requested).await?;
            let control = c.control();
            Ok(walsender::BackupCheckpoint {
                redo_lsn: stats.redo_lsn,
                checkpoint_lsn: stats.checkpoint_lsn,
                snapshot_file: control.snapshot_file,
            })
        })
    })
}

fn checkpoint_settings(config: &ServerConfig) -> CheckpointSettings {
    CheckpointSettings {
        timeout: Duration::from_secs(config.get_int("checkpoint_timeout").max(1) as u64),
        max_wal_size: (config.get_int("max_wal_size").max(2) as u64) << 20,
    }
}

fn frontend_config(config: &ServerConfig) -> FrontendConfig {
    let dirs = config.get_str("unix_socket_directories");
    FrontendConfig {
        listen_addresses: config.get_str("listen_addresses"),
        port: u16::try_from(config.get_int("port")).unwrap_or(5432),
        unix_socket_directories: dirs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        authentication_timeout: Duration::from_secs(
            config.get_int("authentication_timeout").max(1) as u64,
        ),
        ..FrontendConfig::default()
    }
}

fn load_config(datadir: &DataDir, overrides: &[(String, String)]) -> anyhow::Result<ServerConfig> {
    ServerConfig::load(Some(&datadir.config_file()), overrides)
        .with_context(|| format!("could not load {}", datadir.config_file().display()))
}

/// A started server, for the binary and for tests.
pub struct RunningNode {
    pub addrs: Vec<SocketAddr>,
    pub core: Arc<Core>,
    pub engine: Arc<sql::Engine>,
}

/// Runs a server in `datadir` until a shutdown signal. `ready` is called once it accepts
/// connections.
pub async fn run(
    datadir: DataDir,
    overrides: Vec<(String, String)>,
    ready: impl FnOnce(&RunningNode),
) -> anyhow::Result<()> {
    if !datadir.is_initialized() {
        anyhow::bail!(crate::datadir::DataDirError::NotInitialized(
            datadir.path.display().to_string()
        ));
    }
    let config = load_config(&datadir, &overrides)?;
    let fcfg = frontend_config(&config);
    let _lock = datadir.lock(fcfg.port)?;
    // SIGUSR1 asks a standby to look for promote.signal (`lockstep promote`). Installed right
    // after the pid file is written, because SIGUSR1's default action would end the process.
    let mut usr1 = signal(SignalKind::user_defined1())?;

    let fatal: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|msg: &str| {
        tracing::error!("PANIC: {msg}");
        eprintln!("PANIC: {msg}; the server stops (nothing unflushed was acknowledged)");
        std::process::exit(2);
    });
    let next_pid = Arc::new(AtomicI32::new(WORKER_PID_FIRST));
    let mirror = config.get_str("wal_mirror_directory");
    let core = Core::start(
        datadir.clone(),
        CoreOptions {
            fsync: config.get_bool("fsync"),
            wal_mirror_directory: (!mirror.is_empty()).then(|| PathBuf::from(mirror)),
            checkpoint: checkpoint_settings(&config),
            on_wal_failure: fatal,
            standby: StandbySettings::from_config(&config),
            synchronous_standby_names: config.get_str("synchronous_standby_names"),
        },
        tokio::runtime::Handle::current(),
        Arc::new(move || next_pid.fetch_add(1, Ordering::Relaxed)),
    )?;
    let reload = Arc::new(Notify::new());
    let hooks = Arc::new(NodeHooks {
        core: core.clone(),
        reload: reload.clone(),
        wal_stats_base: parking_lot::Mutex::new((
            wal::WalStats::default(),
            std::time::SystemTime::now(),
        )),
    });
    // Replication: settings, the BASE_BACKUP checkpoint, WAL retention for slots and base
    // backups, the sync rep timeout checker. Run when the walsender control exists: now on a
    // primary, at promotion on a standby.
    let engine = sql::Engine::new(core.mgr.clone(), config, hooks);
    {
        let weak_engine = Arc::downgrade(&engine);
        let weak_core = Arc::downgrade(&core);
        core.walsnd.set_wiring(Box::new(move |ctl| {
            let (Some(engine), Some(core)) = (weak_engine.upgrade(), weak_core.upgrade()) else {
                return;
            };
            ctl.reload(&engine.config());
            ctl.set_checkpoint_requester(backup_checkpoint_requester(&core));
            let w = ctl.clone();
            core.checkpointer
                .add_retention(Arc::new(move || w.wal_retention()));
            ctl.spawn_timeout_task();
            let e = weak_engine.clone();
            ctl.set_session_counter(Arc::new(move || {
                e.upgrade().map_or(0, |e| e.session_count())
            }));
        }));
    }
    let roles =
        Arc::new(RoleStore::open(&datadir.path).with_context(|| "could not read the roles file")?);
    engine.set_role_store(roles.clone());
    let hba = Arc::new(
        SharedHba::load(&datadir.hba_file()).with_context(|| "could not load pg_hba.conf")?,
    );
    let frontend = Frontend::bind(fcfg, engine.clone(), roles.clone(), hba.clone())
        .await
        .context("could not open listen sockets")?
        .with_replication_handler(Arc::new(ReplicationEntry {
            walsnd: core.walsnd.clone(),
        }));
    let node = RunningNode {
        addrs: frontend.local_addrs(),
        core: core.clone(),
        engine: engine.clone(),
    };
    tracing::info!(
        "database system is ready to accept {}connections on {:?} (end of WAL {}, {} records replayed)",
        if core.in_recovery() { "read-only " } else { "" },
        node.addrs,
        core.recovered_end,
        core.records_replayed
    );
    ready(&node);

    let (trigger, watch) = shutdown_channel();
    let mut serving = tokio::spawn(frontend.run(watch));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut immediate = false;
    loop {
        tokio::select! {
            _ = &mut serving => break,
            _ = term.recv() => {
                tracing::info!("received smart shutdown request");
                trigger.request(ShutdownMode::Smart);
            }
            _ = int.recv() => {
                tracing::info!("received fast shutdown request");
                engine.terminate_all();
                trigger.request(ShutdownMode::Fast);
            }
            _ = quit.recv() => {
                tracing::info!("received immediate shutdown request");
                immediate = true;
                engine.terminate_all();
                trigger.request(ShutdownMode::Immediate);
            }
            _ = usr1.recv() => {
                if let Some(s) = &core.standby
                    && s.in_recovery()
                    && datadir.promote_requested()
                {
                    tracing::info!("received promote request (promote.signal)");
                    s.request_promotion();
                }
            }
            _ = hup.recv() => reload_all(&datadir, &overrides, &engine, &core, &roles, &hba),
            _ = reload.notified() => reload_all(&datadir, &overrides, &engine, &core, &roles, &hba),
        }
    }
    if immediate {
        core.crash().await;
        tracing::info!("database system is shut down (immediate: the next start runs recovery)");
        return Ok(());
    }
    tracing::info!("shutting down");
    core.shutdown().await?;
    tracing::info!("database system is shut down");
    Ok(())
}

fn reload_all(
    datadir: &DataDir,
    overrides: &[(String, String)],
    engine: &Arc<sql::Engine>,
    core: &Arc<Core>,
    roles: &Arc<RoleStore>,
    hba: &Arc<SharedHba>,
) {
    tracing::info!("received SIGHUP, reloading configuration files");
    match load_config(datadir, overrides) {
        Ok(config) => {
            *core.checkpointer.settings.write() = checkpoint_settings(&config);
            if let Some(w) = core.walsnd.get() {
                w.reload(&config);
            }
            for msg in engine.reload(config) {
                tracing::warn!("{msg}");
            }
        }
        Err(e) => tracing::error!(
            "configuration file contains errors; unaffected changes were not applied: {e:#}"
        ),
    }
    if let Err(e) = hba.reload() {
        tracing::error!("pg_hba.conf was not reloaded: {e}");
    }
    if let Err(e) = roles.reload() {
        tracing::error!("roles file was not reloaded: {e}");
    }
}
