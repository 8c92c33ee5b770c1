//! The server-wide state of the SQL layer: the transaction manager, the server configuration,
//! the hooks into what only the server knows, and the registry of backends (sessions).
//!
//! Where it runs: one `Engine` per server, shared (`Arc`) by every session task; the server
//! crate builds it and calls `reload`, `terminate_all` and friends.
//!
//! The backend registry is what `pg_stat_activity`, `pg_cancel_backend`,
//! `pg_terminate_backend` and CancelRequest use: pid → secret key, interrupt, and the
//! session's current activity. Pids are unique positive `i32`s, as PostgreSQL's (OS) pids
//! are; secret keys are random, so a CancelRequest cannot be forged by guessing the pid alone.
//! `max_connections` bounds the registry (53300 `sorry, too many clients already`).
//!
//! Concurrency: `backends` is one mutex held for map operations only; each backend's activity
//! has its own mutex, written by its session at statement start and end and read by
//! `pg_stat_activity`. The configuration is an `Arc` swapped under a `RwLock`; sessions notice
//! a new one through `config_version` (one atomic load per statement).
//!
//! Deliberately not here: anything about sockets (frontend) or WAL/replication internals
//! (reached only through `ServerHooks`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::SystemTime;

use base::error::sqlstate;
use base::{Lsn, PgError, TimelineId};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use txn::{Interrupt, TxnManager};

use crate::guc::ServerConfig;

/// A boxed future returned by hooks (object-safe async).
pub type HookFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A background worker as `pg_stat_activity` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundWorkerInfo {
    pub pid: i32,
    /// `backend_type`, e.g. `walsender`, `walreceiver`, `checkpointer`.
    pub backend_type: String,
    pub start_time: SystemTime,
    /// `state` (e.g. `streaming` is not a PostgreSQL state; walsenders show `active`).
    pub state: Option<String>,
    /// What the worker does right now, shown in `query` (walsenders: the command).
    pub query: Option<String>,
    pub user: Option<String>,
    pub client_addr: Option<std::net::SocketAddr>,
}

/// One walsender as `pg_stat_replication` shows it (PostgreSQL 15's meanings: positions are
/// what the standby last reported, lags are measured on the primary from when WAL was
/// written to when the standby reported it written/flushed/applied).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationStat {
    pub pid: i32,
    pub usename: String,
    pub application_name: String,
    pub client_addr: Option<std::net::SocketAddr>,
    pub backend_start: SystemTime,
    /// `startup`, `catchup`, `streaming`, `backup` or `stopping`.
    pub state: String,
    pub sent_lsn: Option<Lsn>,
    pub write_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub write_lag: Option<std::time::Duration>,
    pub flush_lag: Option<std::time::Duration>,
    pub replay_lag: Option<std::time::Duration>,
    pub sync_priority: i32,
    /// `async`, `potential`, `sync` or `quorum`.
    pub sync_state: String,
    pub reply_time: Option<SystemTime>,
}

/// The WAL activity `pg_stat_wal` shows, since `stats_reset` (all zero and no reset time
/// where there are no WAL statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStatInfo {
    pub records: u64,
    pub bytes: u64,
    pub writes: u64,
    pub syncs: u64,
    pub write_time: std::time::Duration,
    pub sync_time: std::time::Duration,
    pub stats_reset: Option<SystemTime>,
}

/// The walreceiver as `pg_stat_wal_receiver` shows it (one row on a standby whose
/// walreceiver runs; no row otherwise).
#[derive(Clone, Debug, PartialEq)]
pub struct WalReceiverStat {
    pub pid: i32,
    /// `starting`, `streaming`, `waiting`, `restarting` or `stopping`.
    pub status: String,
    pub receive_start_lsn: Lsn,
    pub receive_start_tli: TimelineId,
    pub written_lsn: Lsn,
    pub flushed_lsn: Lsn,
    pub received_tli: TimelineId,
    pub last_msg_send_time: Option<SystemTime>,
    pub last_msg_receipt_time: Option<SystemTime>,
    pub latest_end_lsn: Lsn,
    pub latest_end_time: Option<SystemTime>,
    pub slot_name: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
    /// The connection string with the password masked, as PostgreSQL shows it.
    pub conninfo: String,
}

/// A replication slot as `pg_replication_slots` shows it (physical slots only).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationSlotInfo {
    pub slot_name: String,
    pub temporary: bool,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (NULL when no WAL is reserved).
    pub wal_status: Option<String>,
    /// Bytes that can still be written before the slot is lost (NULL if unbounded).
    pub safe_wal_size: Option<i64>,
}

/// What only the server knows. Implemented by the server crate; `NullHooks` for tests.
///
/// # Correctness
/// Hooks are called from session tasks and must not block for long: they read positions and
/// flags. `request_checkpoint` returns a future that completes when the checkpoint is done.
pub trait ServerHooks: Send + Sync + std::fmt::Debug + 'static {
    /// `pg_current_wal_insert_lsn()`.
    fn wal_insert_lsn(&self) -> Lsn;
    /// `pg_current_wal_lsn()` (the write position).
    fn wal_write_lsn(&self) -> Lsn;
    /// `pg_current_wal_flush_lsn()`.
    fn wal_flush_lsn(&self) -> Lsn;
    /// `pg_last_wal_receive_lsn()` on a standby; `None` on a primary.
    fn last_wal_receive_lsn(&self) -> Option<Lsn> {
        None
    }
    /// `pg_last_wal_replay_lsn()` on a standby; `None` on a primary.
    fn last_wal_replay_lsn(&self) -> Option<Lsn> {
        None
    }
    /// WAL segment size in bytes (for `pg_walfile_name`).
    fn wal_segment_size(&self) -> u64;
    /// The current timeline.
    fn timeline(&self) -> TimelineId;
    /// `pg_is_in_recovery()`: true on a standby.
    fn is_in_recovery(&self) -> bool;
    /// `pg_reload_conf()`: asks the server to re-read its configuration; true if the request
    /// was accepted (PostgreSQL returns true once the signal is sent).
    fn reload_config(&self) -> bool;
    /// `CHECKPOINT`: completes when the checkpoint is done.
    fn request_checkpoint(&self) -> HookFuture<Result<(), PgError>>;
    /// `ALTER SYSTEM` (already checked by the session): records `name = value`, or removes
    /// `name` (`value` None), or every setting (`name` None), in the server's auto
    /// configuration file. Takes effect at the next reload or restart.
    fn alter_system(&self, name: Option<&str>, value: Option<&str>) -> Result<(), PgError> {
        let _ = (name, value);
        Err(PgError::feature_not_supported("ALTER SYSTEM"))
    }
    /// Background workers for `pg_stat_activity`.
    fn background_workers(&self) -> Vec<BackgroundWorkerInfo>;
    /// `pg_stat_replication`: one row per walsender.
    fn replication_stats(&self) -> Vec<ReplicationStat> {
        Vec::new()
    }
    /// `pg_stat_wal_receiver`.
    fn wal_receiver_stat(&self) -> Option<WalReceiverStat> {
        None
    }
    /// `pg_replication_slots`.
    fn replication_slots(&self) -> Vec<ReplicationSlotInfo> {
        Vec::new()
    }
    /// `pg_stat_wal`.
    fn wal_stats(&self) -> WalStatInfo {
        WalStatInfo::default()
    }
    /// `pg_stat_reset_shared('wal')`.
    fn reset_wal_stats(&self) {}
    /// `pg_create_physical_replication_slot(name, immediately_reserve)`: returns the slot's
    /// restart LSN (NULL unless reserved).
    fn create_physical_replication_slot(
        &self,
        name: &str,
        immediately_reserve: bool,
    ) -> Result<Option<Lsn>, PgError> {
        let _ = (name, immediately_reserve);
        Err(PgError::feature_not_supported("replication slots"))
    }
    /// `pg_drop_replication_slot(name)`.
    fn drop_replication_slot(&self, name: &str) -> Result<(), PgError> {
        let _ = name;
        Err(PgError::feature_not_supported("replication slots"))
    }
    /// `pg_last_xact_replay_timestamp()`: commit time (PostgreSQL microseconds since
    /// 2000-01-01) of the last transaction replayed on a standby.
    fn last_xact_replay_timestamp(&self) -> Option<i64> {
        None
    }
    /// `pg_promote(wait, wait_seconds)`: requests promotion of a standby; with `wait`, the
    /// future completes when the server accepts writes (true) or after `wait_seconds`
    /// (false). Errors with 55000 when the server is not in recovery.
    fn promote(&self, wait: bool, wait_seconds: i32) -> HookFuture<Result<bool, PgError>> {
        let _ = (wait, wait_seconds);
        Box::pin(async {
            Err(PgError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "recovery is not in progress",
            ))
        })
    }
}

/// Hooks for tests and tools: fixed positions, a primary on timeline 1, checkpoints and
/// reloads that succeed at once (and are counted). The replication fields are what tests
/// populate to see the views and functions: slots are created and dropped in `slots`
/// (with PostgreSQL's errors for duplicates and unknown names), and `pg_promote` on a
/// server `in_recovery` clears the flag and reports success.
#[derive(Debug, Default)]
pub struct NullHooks {
    pub in_recovery: AtomicBool,
    pub insert_lsn: AtomicU64,
    pub checkpoints: AtomicU64,
    pub reloads: AtomicU64,
    pub workers: Mutex<Vec<BackgroundWorkerInfo>>,
    pub replication: Mutex<Vec<ReplicationStat>>,
    pub wal_receiver: Mutex<Option<WalReceiverStat>>,
    pub slots: Mutex<Vec<ReplicationSlotInfo>>,
    pub receive_lsn: Mutex<Option<Lsn>>,
    pub replay_lsn: Mutex<Option<Lsn>>,
    pub replay_timestamp: Mutex<Option<i64>>,
    /// `(wait, wait_seconds)` of every `pg_promote` call.
    pub promotions: Mutex<Vec<(bool, i32)>>,
}

impl ServerHooks for NullHooks {
    fn wal_insert_lsn(&self) -> Lsn {
        Lsn(self.insert_lsn.load(Ordering::Relaxed).max(Lsn::FIRST.0))
    }
    fn wal_write_lsn(&self) -> Lsn {
        self.wal_insert_lsn()
    }
    fn wal_flush_lsn(&self) -> Lsn {
        self.wal_insert_lsn()
    }
    fn wal_segment_size(&self) -> u64 {
        16 * 1024 * 1024
    }
    fn timeline(&self) -> TimelineId {
        TimelineId::FIRST
    }
    fn is_in_recovery(&self) -> bool {
        self.in_recovery.load(Ordering::Relaxed)
    }
    fn reload_config(&self) -> bool {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        true
    }
    fn request_checkpoint(&self) -> HookFuture<Result<(), PgError>> {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
    fn background_workers(&self) -> Vec<BackgroundWorkerInfo> {
        self.workers.lock().clone()
    }
    fn last_wal_receive_lsn(&self) -> Option<Lsn> {
        *self.receive_lsn.lock()
    }
    fn last_wal_replay_lsn(&self) -> Option<Lsn> {
        *self.replay_lsn.lock()
    }
    fn last_xact_replay_timestamp(&self) -> Option<i64> {
        *self.replay_timestamp.lock()
    }
    fn replication_stats(&self) -> Vec<ReplicationStat> {
        self.replication.lock().clone()
    }
    fn wal_receiver_stat(&self) -> Option<WalReceiverStat> {
        self.wal_receiver.lock().clone()
    }
    fn replication_slots(&self) -> Vec<ReplicationSlotInfo> {
        self.slots.lock().clone()
    }
    fn create_physical_replication_slot(
        &self,
        name: &str,
        immediately_reserve: bool,
    ) -> Result<Option<Lsn>, PgError> {
        let mut slots = self.slots.lock();
        if slots.iter().any(|s| s.slot_name == name) {
            return Err(PgError::new(
                sqlstate::DUPLICATE_OBJECT,
                format!("replication slot \"{name}\" already exists"),
            ));
        }
        let restart = immediately_reserve.then(|| self.wal_insert_lsn());
        slots.push(ReplicationSlotInfo {
            slot_name: name.to_owned(),
            temporary: false,
            active: false,
            active_pid: None,
            restart_lsn: restart,
            wal_status: restart.map(|_| "reserved".to_owned()),
            safe_wal_size: None,
        });
        Ok(restart)
    }
    fn drop_replication_slot(&self, name: &str) -> Result<(), PgError> {
        let mut slots = self.slots.lock();
        let before = slots.len();
        slots.retain(|s| s.slot_name != name);
        if slots.len() == before {
            return Err(PgError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("replication slot \"{name}\" does not exist"),
            ));
        }
        Ok(())
    }
    fn promote(&self, wait: bool, wait_seconds: i32) -> HookFuture<Result<bool, PgError>> {
        self.promotions.lock().push((wait, wait_seconds));
        let was = self.in_recovery.swap(false, Ordering::SeqCst);
        Box::pin(async move {
            if was {
                Ok(true)
            } else {
                Err(PgError::new(
                    sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "recovery is not in progress",
                )
                .with_hint("Recovery control functions can only be executed during recovery."))
            }
        })
    }
}

/// `pg_stat_activity.state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    Active,
    Idle,
    IdleInTransaction,
    IdleInTransactionAborted,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Active => "active",
            BackendState::Idle => "idle",
            BackendState::IdleInTransaction => "idle in transaction",
            BackendState::IdleInTransactionAborted => "idle in transaction (aborted)",
        }
    }
}

/// A session's current activity, written by the session, read by `pg_stat_activity`.
#[derive(Clone, Debug)]
pub struct Activity {
    pub state: BackendState,
    pub query: Arc<str>,
    pub application_name: String,
    /// Microseconds since 2000-01-01 UTC, as timestamptz values.
    pub query_start: Option<i64>,
    pub xact_start: Option<i64>,
    pub state_change: i64,
    pub wait_event: Option<&'static str>,
}

/// One registered backend.
#[derive(Debug)]
pub struct Backend {
    pub pid: i32,
    pub secret: i32,
    pub user: String,
    pub database: String,
    pub client_addr: Option<std::net::SocketAddr>,
    pub backend_start: i64,
    pub interrupt: Arc<Interrupt>,
    pub(crate) terminate_requested: AtomicBool,
    pub(crate) terminate_notify: Notify,
    pub activity: Mutex<Activity>,
}

impl Backend {
    /// Asks the session to end (pg_terminate_backend, shutdown): interrupts its waits and
    /// wakes `Session::terminated`.
    pub fn terminate(&self) {
        self.terminate_requested.store(true, Ordering::SeqCst);
        self.interrupt.terminate();
        self.terminate_notify.notify_waiters();
    }

    pub fn is_terminate_requested(&self) -> bool {
        self.terminate_requested.load(Ordering::SeqCst)
    }
}

/// The server-wide state the SQL layer needs; one per server, shared by all sessions.
#[derive(Debug)]
pub struct Engine {
    pub(crate) mgr: Arc<TxnManager>,
    pub(crate) hooks: Arc<dyn ServerHooks>,
    config: RwLock<Arc<ServerConfig>>,
    config_version: AtomicU64,
    backends: Mutex<HashMap<i32, Arc<Backend>>>,
    next_pid: AtomicI32,
    shutting_down: AtomicBool,
    /// `now_micros()` of the last prune-horizon recomputation.
    horizon_at: AtomicU64,
    /// The roles file, for `CREATE/ALTER/DROP ROLE` (set by the server; `None` in tests
    /// without one, where role commands fail with 0A000).
    roles: RwLock<Option<Arc<auth::RoleStore>>>,
}

/// How often commits recompute the version-prune horizon. Old row versions are pruned only
/// below the horizon, so without recomputation a hot row's version chain grows with every
/// update; every 10 ms keeps chains to a few hundred versions at 10k+ commits per second,
/// while costing one atomic load per commit in between.
const HORIZON_INTERVAL_MICROS: u64 = 10_000;

/// Pids wrap around below `i32::MAX` and restart above the range PostgreSQL tools treat as
/// special (0 and negatives are never valid pids).
const PID_FIRST: i32 = 1000;

/// Microseconds since 2000-01-01 UTC.
pub fn now_micros() -> i64 {
    txn::transaction::now_pg_micros()
}

pub(crate) fn system_time_micros(t: SystemTime) -> i64 {
    let unix = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    unix - base::value::POSTGRES_EPOCH_UNIX_MICROS
}

impl Engine {
    pub fn new(
        mgr: Arc<TxnManager>,
        config: ServerConfig,
        hooks: Arc<dyn ServerHooks>,
    ) -> Arc<Engine> {
        let mut config = config;
        // Report the segment size the WAL really uses.
        let _ = config.set(
            "wal_segment_size",
            &hooks.wal_segment_size().to_string(),
            crate::guc::ConfigSource::Server,
        );
        let first_pid = PID_FIRST + (std::process::id() % 30_000) as i32;
        Arc::new(Engine {
            mgr,
            hooks,
            config: RwLock::new(Arc::new(config)),
            config_version: AtomicU64::new(1),
            backends: Mutex::new(HashMap::new()),
            next_pid: AtomicI32::new(first_pid),
            shutting_down: AtomicBool::new(false),
            horizon_at: AtomicU64::new(0),
            roles: RwLock::new(None),
        })
    }

    /// An engine over an in-memory transaction manager with default settings and
    /// `NullHooks`, for tests.
    pub fn for_tests() -> (Arc<Engine>, Arc<NullHooks>) {
        let (mgr, _log) = txn::testing::memory_manager();
        let hooks = Arc::new(NullHooks::default());
        (Engine::new(mgr, ServerConfig::new(), hooks.clone()), hooks)
    }

    /// Connects the roles file that `CREATE/ALTER/DROP ROLE` change (the same store the
    /// frontend authenticates against).
    pub fn set_role_store(&self, roles: Arc<auth::RoleStore>) {
        *self.roles.write() = Some(roles);
    }

    pub(crate) fn role_store(&self) -> Option<Arc<auth::RoleStore>> {
        self.roles.read().clone()
    }

    pub fn manager(&self) -> &Arc<TxnManager> {
        &self.mgr
    }

    pub fn hooks(&self) -> &Arc<dyn ServerHooks> {
        &self.hooks
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.read().clone()
    }

    pub(crate) fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Acquire)
    }

    /// Installs a re-read configuration (SIGHUP / pg_reload_conf). Parameters that need a
    /// restart keep their values; one message per such ignored change is returned for the
    /// server log. Sessions pick the new values up at their next statement.
    pub fn reload(&self, new: ServerConfig) -> Vec<String> {
        let mut guard = self.config.write();
        let (mut next, ignored) = guard.reloaded(&new);
        let _ = next.set(
            "wal_segment_size",
            &self.hooks.wal_segment_size().to_string(),
            crate::guc::ConfigSource::Server,
        );
        *guard = Arc::new(next);
        drop(guard);
        self.config_version.fetch_add(1, Ordering::AcqRel);
        ignored
    }

    /// Recomputes the version-prune horizon if the last recomputation is older than
    /// `HORIZON_INTERVAL_MICROS` (called after commits; one session wins the race).
    pub(crate) fn maybe_recompute_horizon(&self) {
        let now = u64::try_from(now_micros()).unwrap_or(0);
        let last = self.horizon_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < HORIZON_INTERVAL_MICROS {
            return;
        }
        if self
            .horizon_at
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.mgr.recompute_horizon();
        }
    }

    /// Registers a backend, enforcing max_connections.
    pub(crate) fn register(
        &self,
        user: &str,
        database: &str,
        client_addr: Option<std::net::SocketAddr>,
        application_name: &str,
    ) -> Result<Arc<Backend>, PgError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(PgError::fatal(
                sqlstate::ADMIN_SHUTDOWN,
                "the database system is shutting down",
            ));
        }
        let max = usize::try_from(self.config().get_int("max_connections")).unwrap_or(1);
        let mut backends = self.backends.lock();
        if backends.len() >= max {
            return Err(PgError::fatal(
                sqlstate::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        }
        let pid = loop {
            let p = self.next_pid.fetch_add(1, Ordering::Relaxed);
            if p <= 0 || p >= i32::MAX - 1 {
                self.next_pid.store(PID_FIRST, Ordering::Relaxed);
                continue;
            }
            if !backends.contains_key(&p) {
                break p;
            }
        };
        let now = now_micros();
        let backend = Arc::new(Backend {
            pid,
            secret: rand::random::<i32>(),
            user: user.to_owned(),
            database: database.to_owned(),
            client_addr,
            backend_start: now,
            interrupt: Arc::new(Interrupt::new()),
            terminate_requested: AtomicBool::new(false),
            terminate_notify: Notify::new(),
            activity: Mutex::new(Activity {
                state: BackendState::Idle,
                query: Arc::from(""),
                application_name: application_name.to_owned(),
                query_start: None,
                xact_start: None,
                state_change: now,
                wait_event: None,
            }),
        });
        backends.insert(pid, backend.clone());
        Ok(backend)
    }

    pub(crate) fn unregister(&self, pid: i32) {
        self.backends.lock().remove(&pid);
    }

    pub(crate) fn backend(&self, pid: i32) -> Option<Arc<Backend>> {
        self.backends.lock().get(&pid).cloned()
    }

    /// Every registered backend, by pid.
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        let mut v: Vec<Arc<Backend>> = self.backends.lock().values().cloned().collect();
        v.sort_by_key(|b| b.pid);
        v
    }

    pub fn session_count(&self) -> usize {
        self.backends.lock().len()
    }

    /// Handles a CancelRequest: cancels the running statement of backend `pid` if `secret`
    /// matches. Unknown pids and wrong secrets are ignored, as in PostgreSQL.
    pub fn cancel_request(&self, pid: i32, secret: i32) {
        if let Some(b) = self.backend(pid)
            && b.secret == secret
        {
            b.interrupt.cancel();
        }
    }

    /// Fast shutdown: refuses new sessions and terminates every session.
    pub fn terminate_all(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for b in self.backends() {
            b.terminate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_unique_and_max_connections_is_enforced() {
        let (mgr, _log) = txn::testing::memory_manager();
        let mut cfg = ServerConfig::new();
        cfg.set(
            "max_connections",
            "2",
            crate::guc::ConfigSource::CommandLine,
        )
        .expect("set");
        let engine = Engine::new(mgr, cfg, Arc::new(NullHooks::default()));
        let a = engine.register("u", "d", None, "").expect("a");
        let b = engine.register("u", "d", None, "").expect("b");
        assert_ne!(a.pid, b.pid);
        assert!(a.pid > 0);
        let e = engine.register("u", "d", None, "").expect_err("full");
        assert_eq!(e.code, sqlstate::TOO_MANY_CONNECTIONS);
        assert_eq!(e.message, "sorry, too many clients already");
        engine.unregister(a.pid);
        assert!(engine.register("u", "d", None, "").is_ok());
    }

    #[test]
    fn cancel_request_needs_the_secret() {
        let (engine, _) = Engine::for_tests();
        let b = engine.register("u", "d", None, "").expect("b");
        engine.cancel_request(b.pid, b.secret.wrapping_add(1));
        assert!(b.interrupt.check().is_ok());
        engine.cancel_request(b.pid, b.secret);
        assert!(b.interrupt.check().is_err());
    }
}
