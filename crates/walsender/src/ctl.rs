//! `WalSndCtl`: the primary's shared table of walsenders, the synchronous replication state
//! and the replication slots. PostgreSQL's `WalSndCtlData` plus `SyncRepConfig` plus
//! `ReplicationSlotCtl`, in one owner.
//!
//! Where it runs: walsender tasks register themselves and publish their state and the
//! standby's positions here; the WAL flusher calls [`WalSndCtl::on_local_flush`] (through
//! the server's `LocalProgress`); the checkpointer asks [`WalSndCtl::wal_retention`];
//! the SQL layer reads [`WalSndCtl::replication_stats`] and the slot functions; reload
//! calls [`WalSndCtl::reload`].
//!
//! Who owns what: `senders` (one entry per walsender, written by its own task), `sync`
//! (configuration, released LSNs, the timeout fallback; every recomputation of the remote
//! watermarks happens under this lock so releases are serialised and monotone), `slots`.
//! Lock order: `sync` → `senders`; `slots` is never held with either.
//!
//! Invariants: see `syncrep` (remote watermarks ≤ local flush and ≤ confirmed); a walsender's
//! entry exists from its first message to its exit; an invalid `synchronous_standby_names`
//! on reload keeps the previous value (logged); becoming empty releases every waiter.
//!
//! Failure: none of this can fail except slot file IO (reported to the requester).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base::error::sqlstate;
use base::{Lsn, PgError, SyncCommitLevel};
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use replication::syncrep::{
    FallbackAction, ReleasedLsns, SyncRepConfig, SyncRepFallback, WalSenderSnapshot,
};
use replication::walsender::WalSndState;
use sql::engine::{BackgroundWorkerInfo, ReplicationSlotInfo, ReplicationStat};
use sql::guc::ServerConfig;
use txn::TxnManager;
use wal::Wal;

use crate::slots::SlotStore;
use crate::syncrep::{REMOTE_LEVELS, remote_watermarks};
use crate::walbuf::WalBuffer;

/// What a checkpoint requested by BASE_BACKUP returns.
#[derive(Clone, Debug)]
pub struct BackupCheckpoint {
    pub redo_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    /// The snapshot file, relative to the data directory.
    pub snapshot_file: String,
}

/// Runs a checkpoint (`fast` = immediate); set by the server.
pub type CheckpointRequester =
    Arc<dyn Fn(bool) -> BoxFuture<'static, Result<BackupCheckpoint, String>> + Send + Sync>;

/// Settings read from the configuration (at start and on reload).
#[derive(Clone, Debug)]
pub struct WalSndSettings {
    pub wal_sender_timeout: Option<Duration>,
    pub max_wal_senders: usize,
    pub max_replication_slots: usize,
    /// `max_slot_wal_keep_size` in bytes; `None` = unlimited (-1).
    pub max_slot_wal_keep_size: Option<u64>,
}

impl WalSndSettings {
    pub fn from_config(c: &ServerConfig) -> WalSndSettings {
        let timeout = c.get_int("wal_sender_timeout");
        let keep = c.get_int("max_slot_wal_keep_size");
        WalSndSettings {
            wal_sender_timeout: (timeout > 0).then(|| Duration::from_millis(timeout as u64)),
            max_wal_senders: c.get_int("max_wal_senders").max(0) as usize,
            max_replication_slots: c.get_int("max_replication_slots").max(0) as usize,
            max_slot_wal_keep_size: (keep >= 0).then_some((keep as u64) << 20),
        }
    }
}

/// One walsender's published state.
#[derive(Clone, Debug)]
pub struct SenderEntry {
    pub pid: i32,
    pub user: String,
    pub application_name: String,
    pub client_addr: Option<SocketAddr>,
    pub backend_start: SystemTime,
    pub state: WalSndState,
    pub sent_lsn: Lsn,
    pub write_lsn: Lsn,
    pub flush_lsn: Lsn,
    pub replay_lsn: Lsn,
    pub reply_time: Option<SystemTime>,
    /// `write_lag`, `flush_lag`, `replay_lag` (see `handler::LagTracker`).
    pub lags: [Option<Duration>; 3],
    pub query: String,
}

struct SyncShared {
    raw: String,
    config: Option<SyncRepConfig>,
    released: ReleasedLsns,
    fallback: SyncRepFallback,
    /// Since when some commit has waited for the standbys (for the timeout).
    waiting_since: Option<Instant>,
}

/// Parameters to build the table.
pub struct WalSndCtlParams {
    pub wal: Arc<Wal>,
    pub mgr: Arc<TxnManager>,
    pub data_dir: PathBuf,
    pub system_identifier: u64,
    pub pids: Arc<dyn Fn() -> i32 + Send + Sync>,
    /// `synchronous_standby_names` at start.
    pub synchronous_standby_names: String,
}

pub struct WalSndCtl {
    pub wal: Arc<Wal>,
    pub mgr: Arc<TxnManager>,
    pub buffer: Arc<WalBuffer>,
    pub data_dir: PathBuf,
    pub system_identifier: u64,
    pids: Arc<dyn Fn() -> i32 + Send + Sync>,
    pub(crate) settings: RwLock<WalSndSettings>,
    pub(crate) config: RwLock<Arc<ServerConfig>>,
    senders: Mutex<Vec<Option<SenderEntry>>>,
    sync: Mutex<SyncShared>,
    pub(crate) slots: Mutex<SlotStore>,
    backup_pins: Mutex<HashMap<u64, Lsn>>,
    next_id: AtomicU64,
    checkpoint: RwLock<Option<CheckpointRequester>>,
    /// Number of regular sessions (smart shutdown lets walsenders go when it reaches 0).
    sessions: RwLock<Option<Arc<dyn Fn() -> usize + Send + Sync>>>,
}

/// Parses `synchronous_standby_names`; an invalid value gives `Err` with the message to log.
fn parse_names(raw: &str) -> Result<Option<SyncRepConfig>, String> {
    SyncRepConfig::parse(raw).map_err(|e| e.to_string())
}

impl WalSndCtl {
    /// Builds the table and installs the WAL hook and progress listener. Call before WAL is
    /// written (in `Core::start`).
    pub fn new(p: WalSndCtlParams) -> Arc<WalSndCtl> {
        let buffer = WalBuffer::new(p.wal.write_lsn(), p.wal.flush_lsn());
        p.wal.add_hook(buffer.clone());
        p.wal.add_progress_listener(buffer.clone());
        let config = parse_names(&p.synchronous_standby_names).unwrap_or_else(|e| {
            tracing::error!(
                "invalid synchronous_standby_names, synchronous replication is off: {e}"
            );
            None
        });
        let default_cfg = ServerConfig::default();
        Arc::new(WalSndCtl {
            slots: Mutex::new(SlotStore::load(&p.data_dir)),
            wal: p.wal,
            mgr: p.mgr,
            buffer,
            data_dir: p.data_dir,
            system_identifier: p.system_identifier,
            pids: p.pids,
            settings: RwLock::new(WalSndSettings::from_config(&default_cfg)),
            config: RwLock::new(Arc::new(default_cfg)),
            senders: Mutex::new(Vec::new()),
            sync: Mutex::new(SyncShared {
                raw: p.synchronous_standby_names,
                config,
                released: ReleasedLsns::default(),
                fallback: SyncRepFallback::new(None),
                waiting_since: None,
            }),
            backup_pins: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            checkpoint: RwLock::new(None),
            sessions: RwLock::new(None),
        })
    }

    /// Whether `synchronous_standby_names` (as given at start) asks for synchronous standbys:
    /// then recovered commits must wait for a standby's confirmation (see `Core::start`).
    pub fn names_configured(raw: &str) -> bool {
        matches!(parse_names(raw), Ok(Some(_)))
    }

    pub fn set_checkpoint_requester(&self, f: CheckpointRequester) {
        *self.checkpoint.write() = Some(f);
    }

    /// How many regular sessions run (the engine's `session_count`).
    pub fn set_session_counter(&self, f: Arc<dyn Fn() -> usize + Send + Sync>) {
        *self.sessions.write() = Some(f);
    }

    /// Resolves when walsenders should stop: fast shutdown at once; smart shutdown once no
    /// regular session is left (as PostgreSQL's postmaster stops walsenders only after the
    /// backends, so their commits can still be confirmed).
    pub(crate) async fn stop_requested(&self, shutdown: &mut frontend::ShutdownWatch) {
        shutdown.reached(frontend::ShutdownMode::Smart).await;
        loop {
            if shutdown.mode() >= frontend::ShutdownMode::Fast {
                return;
            }
            let n = self.sessions.read().as_ref().map_or(0, |f| f());
            if n == 0 {
                return;
            }
            // Polled: session ends are not signalled to us; 100 ms is invisible in a
            // shutdown and costs nothing.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn checkpoint_requester(&self) -> Option<CheckpointRequester> {
        self.checkpoint.read().clone()
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies a (re)loaded configuration: walsender settings, `synchronous_standby_names`
    /// (an invalid value keeps the old one), `synchronous_replication_timeout`.
    pub fn reload(&self, config: &ServerConfig) {
        *self.settings.write() = WalSndSettings::from_config(config);
        *self.config.write() = Arc::new(config.clone());
        let raw = config.get_str("synchronous_standby_names");
        let timeout = config.get_int("synchronous_replication_timeout");
        {
            let mut s = self.sync.lock();
            s.fallback
                .set_timeout((timeout > 0).then(|| Duration::from_millis(timeout as u64)));
            if raw != s.raw {
                match parse_names(&raw) {
                    Ok(c) => {
                        tracing::info!("synchronous_standby_names is now \"{raw}\"");
                        s.raw = raw;
                        s.config = c;
                    }
                    Err(e) => tracing::error!(
                        "invalid value for parameter \"synchronous_standby_names\": \"{raw}\" ({e}); keeping \"{}\"",
                        s.raw
                    ),
                }
            }
        }
        self.release();
    }

    /// Registers a walsender; `Err` when `max_wal_senders` are already running.
    pub(crate) fn register(&self, mut e: SenderEntry) -> Result<(usize, i32), PgError> {
        let max = self.settings.read().max_wal_senders;
        let mut s = self.senders.lock();
        let used = s.iter().filter(|x| x.is_some()).count();
        if used >= max {
            return Err(PgError::fatal(
                sqlstate::TOO_MANY_CONNECTIONS,
                format!(
                    "number of requested standby connections exceeds max_wal_senders (currently {max})"
                ),
            ));
        }
        e.pid = (self.pids)();
        let pid = e.pid;
        if let Some(i) = s.iter().position(|x| x.is_none()) {
            s[i] = Some(e);
            Ok((i, pid))
        } else {
            s.push(Some(e));
            Ok((s.len() - 1, pid))
        }
    }

    pub(crate) fn unregister(&self, slot: usize) {
        if let Some(e) = self.senders.lock().get_mut(slot) {
            *e = None;
        }
        self.release();
    }

    /// Updates a walsender's entry; re-runs the release when positions or state changed.
    pub(crate) fn update(&self, slot: usize, f: impl FnOnce(&mut SenderEntry)) {
        {
            let mut s = self.senders.lock();
            if let Some(Some(e)) = s.get_mut(slot) {
                f(e);
            }
        }
        self.release();
    }

    /// The local flush LSN advanced (called by the server's progress listener).
    pub fn on_local_flush(&self, _flush: Lsn) {
        self.release();
    }

    /// Recomputes the remote watermarks and releases the commits they cover.
    pub fn release(&self) {
        let mut sync = self.sync.lock();
        let local_flush = self.wal.flush_lsn();
        let senders = self.senders.lock();
        let snaps = snapshots(&senders);
        let degraded = sync.fallback.is_degraded();
        let SyncShared {
            config, released, ..
        } = &mut *sync;
        let (ev, marks) =
            remote_watermarks(config.as_ref(), &snaps, released, local_flush, degraded);
        if config.is_some() && degraded {
            // Restored once the synchronous set confirmed everything flushed here.
            let synced = ev.synced.get(replication::syncrep::WaitMode::Flush);
            if sync.fallback.check_caught_up(synced, local_flush) == FallbackAction::Restore {
                tracing::warn!(
                    "synchronous replication restored: the synchronous standbys confirmed {local_flush}"
                );
            }
        }
        drop(senders);
        self.mgr.advance_watermarks(|w| {
            for (i, level) in REMOTE_LEVELS.iter().enumerate() {
                w[level.index()] = marks[i].0;
            }
        });
    }

    /// `synchronous_replication_timeout`: called periodically; degrades to asynchronous
    /// commits (WARNING, counted) when a commit waited longer than the timeout.
    pub fn check_timeout(&self) {
        let degrade = {
            let mut sync = self.sync.lock();
            if sync.config.is_none() {
                sync.waiting_since = None;
                return;
            }
            // Approximates the oldest waiter's age by how long some commit has continuously
            // been waiting for the standbys (the queues do not record arrival times).
            let waiting = self.mgr.waiters.waiting();
            let anyone = REMOTE_LEVELS.iter().any(|l| waiting[l.index()] > 0);
            sync.waiting_since = match (anyone, sync.waiting_since) {
                (false, _) => None,
                (true, Some(t)) => Some(t),
                (true, None) => Some(Instant::now()),
            };
            let age = sync.waiting_since.map(|t| t.elapsed());
            match sync.fallback.check_waiters(age) {
                FallbackAction::Degrade { waited, timeout } => {
                    tracing::warn!(
                        "synchronous replication timed out: a commit waited {:.3} s (synchronous_replication_timeout = {} ms); releasing waiting commits as asynchronous — they are durable locally but NOT confirmed by the synchronous standbys (degradation #{})",
                        waited.as_secs_f64(),
                        timeout.as_millis(),
                        sync.fallback.degrade_count()
                    );
                    true
                }
                _ => false,
            }
        };
        if degrade {
            self.release();
        }
    }

    /// How many times synchronous replication was degraded by the timeout.
    pub fn degrade_count(&self) -> u64 {
        self.sync.lock().fallback.degrade_count()
    }

    /// Spawns the timeout checker (every 100 ms: fine enough for timeouts of a second and
    /// more, free otherwise).
    pub fn spawn_timeout_task(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(c) = me.upgrade() else { return };
                c.check_timeout();
            }
        });
    }

    /// `pg_stat_replication`.
    pub fn replication_stats(&self) -> Vec<ReplicationStat> {
        let sync = self.sync.lock();
        let senders = self.senders.lock();
        let snaps = snapshots(&senders);
        let ev = replication::syncrep::evaluate(sync.config.as_ref(), &snaps);
        let opt = |l: Lsn| (l != Lsn::ZERO).then_some(l);
        senders
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                let st = ev.standbys.iter().find(|s| s.slot == i);
                Some(ReplicationStat {
                    pid: e.pid,
                    usename: e.user.clone(),
                    application_name: e.application_name.clone(),
                    client_addr: e.client_addr,
                    backend_start: e.backend_start,
                    state: e.state.as_str().to_owned(),
                    sent_lsn: opt(e.sent_lsn),
                    write_lsn: opt(e.write_lsn),
                    flush_lsn: opt(e.flush_lsn),
                    replay_lsn: opt(e.replay_lsn),
                    write_lag: e.lags[0],
                    flush_lag: e.lags[1],
                    replay_lag: e.lags[2],
                    sync_priority: st.map_or(0, |s| s.sync_priority as i32),
                    sync_state: st.map_or("async", |s| s.sync_state.as_str()).to_owned(),
                    reply_time: e.reply_time,
                })
            })
            .collect()
    }

    /// Walsenders for `pg_stat_activity` (backend_type `walsender`).
    pub fn background_workers(&self) -> Vec<BackgroundWorkerInfo> {
        self.senders
            .lock()
            .iter()
            .flatten()
            .map(|e| BackgroundWorkerInfo {
                pid: e.pid,
                backend_type: "walsender".into(),
                start_time: e.backend_start,
                state: Some("active".into()),
                query: Some(e.query.clone()),
                user: Some(e.user.clone()),
                client_addr: e.client_addr,
            })
            .collect()
    }

    /// `pg_replication_slots`.
    pub fn replication_slots(&self) -> Vec<ReplicationSlotInfo> {
        let flush = self.wal.flush_lsn();
        let keep = self.settings.read().max_slot_wal_keep_size;
        self.slots
            .lock()
            .list()
            .into_iter()
            .map(|s| {
                let reserved = s.restart_lsn != Lsn::ZERO;
                ReplicationSlotInfo {
                    slot_name: s.name,
                    temporary: s.temporary,
                    active: s.active_pid.is_some(),
                    active_pid: s.active_pid,
                    restart_lsn: (reserved && !s.lost).then_some(s.restart_lsn),
                    wal_status: if s.lost {
                        Some("lost".into())
                    } else {
                        reserved.then(|| "reserved".into())
                    },
                    safe_wal_size: match (keep, reserved && !s.lost) {
                        (Some(k), true) => {
                            Some(k as i64 - flush.distance_from(s.restart_lsn) as i64)
                        }
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// `pg_create_physical_replication_slot` / CREATE_REPLICATION_SLOT.
    pub fn create_slot(
        &self,
        name: &str,
        temporary: bool,
        reserve_wal: bool,
        owner: Option<u64>,
    ) -> Result<Option<Lsn>, PgError> {
        let max = self.settings.read().max_replication_slots;
        // Reserving WAL: the current redo point is always on disk; the flush LSN is what a
        // new standby streams from. PostgreSQL reserves from the last redo pointer.
        let lsn = if reserve_wal {
            self.wal.flush_lsn()
        } else {
            Lsn::ZERO
        };
        self.slots.lock().create(name, temporary, lsn, owner, max)?;
        Ok(reserve_wal.then_some(lsn))
    }

    pub fn drop_slot(&self, name: &str) -> Result<(), PgError> {
        self.slots.lock().drop_slot(name)
    }

    pub(crate) fn pin_backup(&self, id: u64, lsn: Lsn) {
        self.backup_pins.lock().insert(id, lsn);
    }

    pub(crate) fn unpin_backup(&self, id: u64) {
        self.backup_pins.lock().remove(&id);
    }

    /// The oldest WAL LSN to keep for slots and running base backups (the checkpointer's
    /// retention callback). Slots too far behind become lost here.
    pub fn wal_retention(&self) -> Option<Lsn> {
        let flush = self.wal.flush_lsn();
        let keep = self.settings.read().max_slot_wal_keep_size;
        let slots = self.slots.lock().retention(flush, keep);
        let pins = self.backup_pins.lock().values().min().copied();
        match (slots, pins) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The remote watermarks to start with: the end of recovered WAL without synchronous
    /// standbys; with them, what the standbys had confirmed at the last checkpoint, so
    /// recovered commits beyond it stay invisible until a synchronous standby confirms them.
    pub fn initial_remote_watermark(names: &str, end_lsn: Lsn, confirmed_lsn: Lsn) -> Lsn {
        if Self::names_configured(names) {
            confirmed_lsn.min(end_lsn)
        } else {
            end_lsn
        }
    }
}

/// The `synchronous_commit` levels that wait for standbys.
pub fn is_remote(level: SyncCommitLevel) -> bool {
    level >= SyncCommitLevel::RemoteWrite
}

/// What the sync standby choice sees of each registered walsender.
fn snapshots(senders: &[Option<SenderEntry>]) -> Vec<WalSenderSnapshot<'_>> {
    senders
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.as_ref().map(|e| WalSenderSnapshot {
                slot: i,
                application_name: &e.application_name,
                state: e.state,
                write_lsn: e.write_lsn,
                flush_lsn: e.flush_lsn,
                apply_lsn: e.replay_lsn,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::Watermarks;
    use storage::catalog::Catalog;

    /// A table over a real (idle) WAL whose flush LSN is `flush`, remote watermarks at 0.
    fn ctl(dir: &std::path::Path, flush: Lsn, names: &str) -> Arc<WalSndCtl> {
        let wal = Wal::open(
            wal::WalConfig {
                dir: dir.join("pg_wal"),
                segment_size: 1 << 20,
                timeline: base::TimelineId(1),
                fsync: false,
                on_fatal: Box::new(|_| {}),
            },
            flush,
        )
        .expect("wal");
        let wm = Arc::new(Watermarks::new(0));
        let mgr = TxnManager::new(Arc::new(Catalog::new()), wm, wal.clone(), 1);
        let next = Arc::new(std::sync::atomic::AtomicI32::new(100));
        WalSndCtl::new(WalSndCtlParams {
            wal,
            mgr,
            data_dir: dir.to_path_buf(),
            system_identifier: 1,
            pids: Arc::new(move || next.fetch_add(1, Ordering::Relaxed)),
            synchronous_standby_names: names.into(),
        })
    }

    fn entry(name: &str) -> SenderEntry {
        SenderEntry {
            pid: 0,
            user: "postgres".into(),
            application_name: name.into(),
            client_addr: None,
            backend_start: SystemTime::now(),
            state: WalSndState::Startup,
            sent_lsn: Lsn::ZERO,
            write_lsn: Lsn::ZERO,
            flush_lsn: Lsn::ZERO,
            replay_lsn: Lsn::ZERO,
            reply_time: None,
            lags: [None; 3],
            query: String::new(),
        }
    }

    #[test]
    fn stats_and_release_follow_standby_reports() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join("pg_wal")).expect("mkdir");
        let c = ctl(tmp.path(), Lsn(0x100_0000), "FIRST 1 (s1, s2)");
        let (a, pa) = c.register(entry("s1")).expect("register");
        let (b, _) = c.register(entry("s2")).expect("register");
        let on = |c: &WalSndCtl| c.mgr.watermarks.get(SyncCommitLevel::On);
        // Not streaming yet: nothing released.
        c.update(a, |e| {
            e.write_lsn = Lsn(0x80_0000);
            e.flush_lsn = Lsn(0x80_0000);
        });
        assert_eq!(on(&c), 0);
        for s in [a, b] {
            c.update(s, |e| e.state = WalSndState::Streaming);
        }
        assert_eq!(on(&c), 0x80_0000);
        // A report beyond the local flush is capped by it.
        c.update(a, |e| e.flush_lsn = Lsn(0x200_0000));
        assert_eq!(on(&c), 0x100_0000);
        let stats = c.replication_stats();
        let s1 = stats.iter().find(|s| s.pid == pa).expect("s1");
        assert_eq!(s1.state, "streaming");
        assert_eq!(s1.sync_state, "sync");
        assert_eq!(s1.sync_priority, 1);
        let s2 = stats
            .iter()
            .find(|s| s.application_name == "s2")
            .expect("s2");
        assert_eq!(s2.sync_state, "potential");
        assert_eq!(c.background_workers().len(), 2);
        // s1 leaves: s2 becomes sync (once it has reported a flush position: PostgreSQL
        // ignores standbys that have not).
        c.update(b, |e| e.flush_lsn = Lsn(0x90_0000));
        c.unregister(a);
        let stats = c.replication_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].sync_state, "sync");
    }

    #[test]
    fn reload_keeps_old_names_on_error_and_empty_releases() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join("pg_wal")).expect("mkdir");
        let c = ctl(tmp.path(), Lsn(0x100_0000), "s1");
        c.release();
        assert_eq!(c.mgr.watermarks.get(SyncCommitLevel::On), 0);
        let cfg = ServerConfig::load(
            None,
            &[("synchronous_standby_names".into(), "FIRST 0 (".into())],
        )
        .expect("config");
        c.reload(&cfg);
        assert_eq!(c.sync.lock().raw, "s1");
        assert_eq!(c.mgr.watermarks.get(SyncCommitLevel::On), 0);
        c.reload(&ServerConfig::default());
        assert_eq!(c.mgr.watermarks.get(SyncCommitLevel::On), 0x100_0000);
        assert_eq!(
            WalSndCtl::initial_remote_watermark("s1", Lsn(900), Lsn(500)),
            Lsn(500)
        );
        assert_eq!(
            WalSndCtl::initial_remote_watermark("", Lsn(900), Lsn(500)),
            Lsn(900)
        );
    }
}
