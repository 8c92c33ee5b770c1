//! The walreceiver driver: PostgreSQL's `walreceiver.c` main loop for lockstep.
//!
//! What it does: connects to the primary named by `primary_conninfo` (a physical replication
//! connection, [`crate::conn`]), checks with IDENTIFY_SYSTEM that the primary is a copy of
//! the same database system, decides where to start with
//! [`replication::walreceiver::plan_reconnect`] (fetching TIMELINE_HISTORY when the primary
//! is on a newer timeline, discarding local WAL beyond what the primary is known to have
//! flushed), runs `START_REPLICATION [SLOT s] PHYSICAL X/X TIMELINE t`, and then streams:
//! each 'w' is written at its LSN into the segment files of its timeline
//! ([`crate::walfile`]), fdatasynced when the [`WalReceiver`] state machine asks, and
//! answered with 'r' status updates when the state machine says (after writes, after
//! flushes, on a keepalive asking for it, when redo replayed a commit that wants apply
//! feedback, every `wal_receiver_status_interval`). It publishes its progress in
//! [`WalRcvShared`] for redo and `pg_stat_wal_receiver`. When the primary ends the timeline
//! (CopyDone and a `next_tli` result set) it continues on the next one if
//! `recovery_target_timeline` allows. Any other end of the stream — a lost connection,
//! `wal_receiver_timeout`, an ERROR from the primary, a wrong system identifier — makes it
//! wait (status `waiting`) and reconnect, backing off from [`WalRcvConfig::retry_min`]
//! (100 ms: a restarted primary is back within a second or two, and a synchronous primary's
//! commits wait for us meanwhile) doubling to [`WalRcvConfig::retry_max`] (5 s: PostgreSQL's
//! `wal_retrieve_retry_interval`; retrying faster against a primary that is down only
//! floods its log and ours). The backoff restarts from the minimum after a connection that
//! reached streaming.
//!
//! Where it runs: one tokio task on a standby ([`run`]); the server gives it a thread and
//! event loop of its own, so a wake-up for arriving WAL goes straight to it. Small WAL writes (the common case:
//! a commit's record) and the fdatasync run on the task itself; large writes, segment
//! creation and truncation run on `spawn_blocking` threads. The fdatasync is inline on
//! purpose, as in PostgreSQL's walreceiver: the state machine asks for a flush only when the
//! input is drained and after the write has been reported, so one fdatasync covers all WAL
//! received so far, and keeping it on this task saves two thread wake-ups on every
//! synchronous commit's path (measured with `bench/pgbench-compare.sh`, MODE=replica, 1
//! client: sync/local median latency 1.49x -> 1.29x). The price, the same as PostgreSQL's:
//! WAL that arrives during a flush is written and reported after that flush, so a
//! `remote_write` commit can wait for one earlier fdatasync.
//!
//! Who owns what: this task alone writes WAL files of the standby and the written/flushed
//! positions and primary flush LSN in [`WalRcvShared`]; redo owns the replayed position and
//! the apply-feedback flag; the caller owns the stop signal.
//!
//! Invariants: WAL is written strictly in stream order (the state machine refuses gaps), so
//! the local WAL on a timeline is a byte prefix of the primary's; `flushed` is published only
//! after the fdatasync that made it durable returned; a reconnect that discards a local tail
//! lowers `written`/`flushed` with `WalRcvShared::reset_to` only after the files were
//! truncated, and that tail lies beyond the primary flush LSN redo is capped by, so redo has
//! never replayed it.
//!
//! What it deliberately does not do: replay WAL, decide promotion, persist the primary flush
//! LSN (redo/the control file owns that; pass it back through `WalRcvShared::new`), send hot
//! standby feedback, TLS, or create replication slots.
//!
//! How it fails: a failed WAL write, segment creation, truncation or fdatasync returns
//! [`WalRcvError`] with `is_fatal() == true` at once — the caller stops the server; an fsync
//! is never retried (the kernel may have dropped the dirty pages). Everything else is logged,
//! recorded in `WalRcvShared::last_error`, and retried after the backoff. The stop signal
//! ends [`run`] with `Ok(())` at any await point (status `stopped`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base::{Lsn, TimelineId};
use bytes::Bytes;
use replication::conninfo::ConnInfo;
use replication::messages::{
    MessageError, PgTimestamp, PrimaryMessage, StandbyMessage, StandbyStatusUpdate,
};
use replication::timeline::{TimelineHistory, history_file_name};
use replication::walreceiver::{
    LocalWalState, ReceiverAction, ReceiverError, ReconnectError, ReconnectPlan, StartPoint,
    UpstreamIdentity, WalReceiver, WalReceiverConfig, plan_reconnect,
};
use tokio::sync::watch;

use crate::conn::{ConnError, ConnectOptions, CopyKind, CopyMessage, PgConnection, mask_password};
use crate::shared::{WalRcvShared, WalRcvStatus};
use crate::walfile::{WalFileError, WalFileWriter};

/// The failpoint checked before each WAL write (a `pause_while_exists` stalls the standby's
/// writes, so neither `remote_write` nor `on` commits are confirmed).
pub const FAILPOINT_BEFORE_WRITE: &str = "walreceiver-before-write";
/// The failpoint checked before each fdatasync (a `pause_while_exists` stalls the flush:
/// writes are still reported, so `remote_write` commits complete and `on` commits wait).
pub const FAILPOINT_BEFORE_FLUSH: &str = "walreceiver-before-flush";

/// `recovery_target_timeline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryTargetTimeline {
    /// Follow the primary onto every newer timeline (PostgreSQL's default since 12).
    Latest,
    /// Stay on the timeline recovery started on.
    Current,
    /// Follow up to this timeline.
    Numbered(TimelineId),
}

impl std::str::FromStr for RecoveryTargetTimeline {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latest" => Ok(RecoveryTargetTimeline::Latest),
            "current" => Ok(RecoveryTargetTimeline::Current),
            n => n
                .parse::<u32>()
                .ok()
                .filter(|&t| t > 0)
                .map(|t| RecoveryTargetTimeline::Numbered(TimelineId(t)))
                .ok_or_else(|| format!("invalid value for recovery_target_timeline: \"{s}\"")),
        }
    }
}

/// The walreceiver's settings.
#[derive(Clone, Debug)]
pub struct WalRcvConfig {
    /// `primary_conninfo`, a libpq connection string.
    pub primary_conninfo: String,
    /// `primary_slot_name`.
    pub primary_slot_name: Option<String>,
    /// The standby's `pg_wal` directory.
    pub wal_dir: PathBuf,
    /// WAL segment size in bytes (must equal the primary's).
    pub segment_size: u64,
    /// This standby's database system identifier (from its control file).
    pub system_identifier: u64,
    /// The timeline of the newest local WAL.
    pub timeline: TimelineId,
    pub recovery_target_timeline: RecoveryTargetTimeline,
    /// The end of the local WAL (flushed) when the walreceiver starts; streaming resumes here
    /// unless the primary flush LSN known from before says part of it must be fetched again.
    pub start_lsn: Lsn,
    /// `wal_receiver_status_interval`; `None` disables periodic replies (PostgreSQL's 0).
    pub status_interval: Option<Duration>,
    /// `wal_receiver_timeout`; `None` disables it (PostgreSQL's 0).
    pub receiver_timeout: Option<Duration>,
    /// First reconnect delay (see the module header for both bounds).
    pub retry_min: Duration,
    /// Longest reconnect delay.
    pub retry_max: Duration,
    /// `application_name` when `primary_conninfo` sets none (PostgreSQL: `walreceiver`, or
    /// `cluster_name`).
    pub fallback_application_name: String,
}

impl WalRcvConfig {
    /// PostgreSQL's defaults for everything but the identity of the two servers.
    pub fn new(
        primary_conninfo: impl Into<String>,
        wal_dir: impl Into<PathBuf>,
        segment_size: u64,
        system_identifier: u64,
        timeline: TimelineId,
        start_lsn: Lsn,
    ) -> WalRcvConfig {
        let d = WalReceiverConfig::default();
        WalRcvConfig {
            primary_conninfo: primary_conninfo.into(),
            primary_slot_name: None,
            wal_dir: wal_dir.into(),
            segment_size,
            system_identifier,
            timeline,
            recovery_target_timeline: RecoveryTargetTimeline::Latest,
            start_lsn,
            status_interval: d.status_interval,
            receiver_timeout: d.receiver_timeout,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            fallback_application_name: "walreceiver".to_owned(),
        }
    }
}

/// Why the walreceiver stopped or a connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalRcvError {
    #[error("invalid walreceiver configuration: {0}")]
    InvalidConfig(String),
    #[error("could not connect to the primary server: {0}")]
    Connection(#[from] ConnError),
    #[error(
        "database system identifier differs between the primary and standby (the primary's identifier is {primary}, the standby's identifier is {standby})"
    )]
    SystemIdentifierMismatch { primary: u64, standby: u64 },
    #[error("unexpected reply from the primary: {0}")]
    UnexpectedReply(String),
    #[error(transparent)]
    Diverged(ReconnectError),
    #[error(
        "the primary has flushed WAL only up to {upstream_flush}, the standby needs to start at {start}"
    )]
    UpstreamBehind { start: Lsn, upstream_flush: Lsn },
    #[error("the primary switched to timeline {next}, beyond recovery_target_timeline {limit}")]
    TargetTimelineReached { next: TimelineId, limit: TimelineId },
    #[error(transparent)]
    Stream(#[from] ReceiverError),
    #[error("invalid WAL message received from primary: {0}")]
    Message(#[from] MessageError),
    #[error(transparent)]
    WalFile(#[from] WalFileError),
    #[error("could not remove local WAL beyond {at}: {source}")]
    Truncate { at: Lsn, source: std::io::Error },
    #[error("could not write timeline history file \"{path}\": {source}")]
    HistoryFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("walreceiver I/O thread failed: {0}")]
    Internal(String),
}

impl WalRcvError {
    /// A failure of the standby's own WAL storage: the server must stop (never retry an
    /// fsync). `InvalidConfig` is not fatal in this sense (fix the setting and start the
    /// walreceiver again); every other error is retried by [`run`] itself.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WalRcvError::WalFile(_)
                | WalRcvError::Truncate { .. }
                | WalRcvError::HistoryFile { .. }
                | WalRcvError::Internal(_)
        )
    }
}

/// What a streaming session ended with, when it ended well.
enum SessionEnd {
    /// The primary ended the timeline; reconnect at once and continue on the next one.
    TimelineEnded,
}

/// State kept across connections.
struct RunState {
    timeline: TimelineId,
    /// The previous timeline and the switch point, after the stream moved to a new timeline
    /// (for the first segment of the new timeline, see `walfile`).
    switched_from: Option<(TimelineId, Lsn)>,
    /// The last connection reached streaming (resets the backoff).
    streamed: bool,
}

/// Runs the walreceiver until `stop` becomes true or its sender is dropped (→ `Ok(())`), or
/// the standby's WAL storage fails (→ an error with `is_fatal()`, which the caller turns
/// into a server stop). An invalid `primary_conninfo`/`primary_slot_name`/segment size is
/// returned at once as `InvalidConfig` (not fatal: start again after a reload). Every other failure is retried internally and shows
/// in `shared.status()` and `shared.last_error()`.
///
/// `shared` must have been created with the end of the local WAL and the replayed position
/// (`WalRcvShared::new`); `cfg.start_lsn` raises the flushed position if it is higher.
pub async fn run(
    cfg: WalRcvConfig,
    shared: Arc<WalRcvShared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WalRcvError> {
    let info = ConnInfo::parse(&cfg.primary_conninfo)
        .map_err(|e| WalRcvError::InvalidConfig(format!("primary_conninfo: {e}")))?;
    info.validate()
        .map_err(|e| WalRcvError::InvalidConfig(format!("primary_conninfo: {e}")))?;
    if let Some(slot) = &cfg.primary_slot_name {
        replication::commands::validate_slot_name(slot)
            .map_err(|e| WalRcvError::InvalidConfig(format!("primary_slot_name: {}", e.message)))?;
    }
    if !base::lsn::valid_segment_size(cfg.segment_size) {
        return Err(WalRcvError::InvalidConfig(format!(
            "invalid WAL segment size {}",
            cfg.segment_size
        )));
    }
    shared.set_flushed(cfg.start_lsn);
    shared.update_info(|i| {
        i.pid = std::process::id() as i32;
        i.conninfo = mask_password(&info);
        i.slot_name = cfg.primary_slot_name.clone();
    });
    let mut st = RunState {
        timeline: cfg.timeline,
        switched_from: None,
        streamed: false,
    };
    let mut backoff = cfg.retry_min;
    let result = loop {
        if *stop.borrow() {
            break Ok(());
        }
        shared.set_status(WalRcvStatus::Starting);
        st.streamed = false;
        let outcome = tokio::select! {
            r = session(&cfg, &info, &shared, &mut st) => r,
            _ = stopped(&mut stop) => break Ok(()),
        };
        match outcome {
            Ok(SessionEnd::TimelineEnded) => {
                backoff = cfg.retry_min;
                continue;
            }
            Err(e) if e.is_fatal() => {
                tracing::error!("walreceiver: {e}");
                shared.set_last_error(e.to_string());
                break Err(e);
            }
            Err(e) => {
                tracing::warn!("walreceiver: {e}; retrying in {} ms", backoff.as_millis());
                shared.set_last_error(e.to_string());
                if st.streamed {
                    backoff = cfg.retry_min;
                }
                shared.set_status(WalRcvStatus::Waiting);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => break Ok(()),
                }
                shared.set_status(WalRcvStatus::Restarting);
                backoff = (backoff * 2).min(cfg.retry_max);
            }
        }
    };
    shared.set_status(WalRcvStatus::Stopped);
    result
}

/// Resolves when the stop signal is (or becomes) true, or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `wait_for` errs when the sender was dropped: nobody can stop us any more, so stop now.
    let _ = stop.wait_for(|s| *s).await;
}

/// The largest WAL write done on the walreceiver's own task rather than a blocking thread.
const INLINE_WRITE_MAX: usize = 64 << 10;

/// Waits while a `pause_while_exists` failpoint's file exists, on the runtime's timer.
async fn failpoint_pause(name: &str) {
    if let Some(path) = base::failpoint::pause_file(name)
        && path.exists()
    {
        eprintln!(
            "failpoint \"{name}\" reached: paused while {} exists",
            path.display()
        );
        while path.exists() {
            tokio::time::sleep(base::failpoint::PAUSE_POLL_INTERVAL).await;
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WalRcvError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WalRcvError::Internal(e.to_string()))
}

fn parse_identify(rs: &[crate::conn::ResultSet]) -> Result<(u64, TimelineId, Lsn), WalRcvError> {
    let bad = || {
        WalRcvError::UnexpectedReply(format!(
            "could not receive database system identifier and timeline ID from the primary server ({} result sets)",
            rs.len()
        ))
    };
    let r = rs
        .first()
        .filter(|r| r.rows.len() == 1 && r.columns.len() >= 3)
        .ok_or_else(bad)?;
    let sysid = r
        .text(0, 0)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(bad)?;
    let tli = r
        .text(0, 1)
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(bad)?;
    let pos = r
        .text(0, 2)
        .and_then(|s| s.parse::<Lsn>().ok())
        .ok_or_else(bad)?;
    Ok((sysid, TimelineId(tli), pos))
}

async fn fetch_history(
    conn: &mut PgConnection,
    cfg: &WalRcvConfig,
    timeline: TimelineId,
) -> Result<TimelineHistory, WalRcvError> {
    let rs = conn
        .simple_query(&format!("TIMELINE_HISTORY {}", timeline.0))
        .await?;
    let bad =
        |why: &str| WalRcvError::UnexpectedReply(format!("TIMELINE_HISTORY {timeline}: {why}"));
    let r = rs
        .first()
        .filter(|r| r.rows.len() == 1 && r.columns.len() == 2)
        .ok_or_else(|| bad("invalid response"))?;
    let content = r.bytes(0, 1).ok_or_else(|| bad("no content"))?.clone();
    let text = std::str::from_utf8(&content).map_err(|_| bad("content is not UTF-8"))?;
    let history = TimelineHistory::parse(timeline, text).map_err(|e| bad(&e.to_string()))?;
    // Keep the file, as PostgreSQL's walreceiver does: promotion and a later restart of this
    // standby read timeline histories from pg_wal.
    let path = cfg.wal_dir.join(history_file_name(timeline));
    if !path.exists() {
        let p = path.clone();
        blocking(move || write_durably(&p, &content))
            .await?
            .map_err(|source| WalRcvError::HistoryFile { path, source })?;
    }
    Ok(history)
}

fn write_durably(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        wal::segment::fsync_dir(dir)?;
    }
    Ok(())
}

fn target_limit(cfg: &WalRcvConfig) -> Option<TimelineId> {
    match cfg.recovery_target_timeline {
        RecoveryTargetTimeline::Latest => None,
        RecoveryTargetTimeline::Current => Some(cfg.timeline),
        RecoveryTargetTimeline::Numbered(t) => Some(t),
    }
}

/// One connection: handshake, then streaming until it ends.
async fn session(
    cfg: &WalRcvConfig,
    info: &ConnInfo,
    shared: &WalRcvShared,
    st: &mut RunState,
) -> Result<SessionEnd, WalRcvError> {
    // The handshake is bounded like the stream: a primary that accepts the connection but
    // never answers must not hang the standby.
    let handshake_timeout = cfg.receiver_timeout.unwrap_or(Duration::from_secs(60));
    let handshake = tokio::time::timeout(handshake_timeout, handshake(cfg, info, shared, st));
    let (mut conn, start, primary_flush) = match handshake.await {
        Ok(r) => r?,
        Err(_) => return Err(WalRcvError::Stream(ReceiverError::Timeout)),
    };
    st.streamed = true;
    if start.timeline != st.timeline {
        // The plan starts on the upstream's newer timeline right at the switch point.
        st.switched_from = Some((st.timeline, start.lsn));
        st.timeline = start.timeline;
    }
    shared.set_status(WalRcvStatus::Streaming);
    shared.update_info(|i| {
        i.receive_start_lsn = start.lsn;
        i.receive_start_tli = start.timeline.0;
        i.received_tli = start.timeline.0;
    });
    tracing::info!(
        "started streaming WAL from primary at {} on timeline {}",
        start.lsn,
        start.timeline
    );
    let mut writer = WalFileWriter::new(&cfg.wal_dir, cfg.segment_size, start.timeline);
    if let Some((old, at)) = st.switched_from.filter(|(old, _)| *old != start.timeline) {
        writer = writer.continuing_from(old, at);
    }
    let rcv_cfg = WalReceiverConfig {
        status_interval: cfg.status_interval,
        receiver_timeout: cfg.receiver_timeout,
    };
    let replayed = shared.replayed_lsn().min(start.lsn);
    let rcv = WalReceiver::new(rcv_cfg, start, replayed, primary_flush, Instant::now());
    let mut s = Streamer {
        conn: &mut conn,
        shared,
        rcv,
        writer: Some(writer),
        unpublished_flush: None,
    };
    // The primary ended the timeline: everything received is flushed before we go on.
    let (next, switchpoint) = s.stream().await?;
    s.flush_now().await?;
    let next_start = s.rcv.on_end_of_timeline(next, switchpoint)?;
    if let Some(limit) = target_limit(cfg)
        && next > limit
    {
        return Err(WalRcvError::TargetTimelineReached { next, limit });
    }
    fetch_history(&mut conn, cfg, next).await?;
    tracing::info!(
        "primary switched to timeline {} at {}; following",
        next_start.timeline,
        next_start.lsn
    );
    st.switched_from = Some((st.timeline, next_start.lsn));
    st.timeline = next_start.timeline;
    shared.update_info(|i| i.received_tli = next.0);
    conn.close().await;
    Ok(SessionEnd::TimelineEnded)
}

/// Connect, identify, plan, discard, START_REPLICATION.
async fn handshake(
    cfg: &WalRcvConfig,
    info: &ConnInfo,
    shared: &WalRcvShared,
    st: &mut RunState,
) -> Result<(PgConnection, StartPoint, Lsn), WalRcvError> {
    let opts = ConnectOptions {
        replication: Some("true".to_owned()),
        fallback_application_name: Some(cfg.fallback_application_name.clone()),
    };
    let mut conn = PgConnection::connect_info(info, &opts).await?;
    let (host, port) = conn.peer();
    let (host, port) = (host.to_owned(), port);
    shared.update_info(|i| {
        i.sender_host = Some(host);
        i.sender_port = Some(i32::from(port));
    });
    let (sysid, upstream_tli, upstream_flush) =
        parse_identify(&conn.simple_query("IDENTIFY_SYSTEM").await?)?;
    if sysid != cfg.system_identifier {
        return Err(WalRcvError::SystemIdentifierMismatch {
            primary: sysid,
            standby: cfg.system_identifier,
        });
    }
    let local = LocalWalState {
        timeline: st.timeline,
        flushed_end: shared.flushed_lsn(),
        replayed: shared.replayed_lsn(),
        primary_flush: shared.primary_flush_lsn(),
    };
    let upstream = UpstreamIdentity {
        timeline: upstream_tli,
        flush_lsn: upstream_flush,
    };
    let mut history = None;
    let plan = loop {
        match plan_reconnect(&local, &upstream, history.as_ref()) {
            ReconnectPlan::FetchHistory { timeline } if history.is_none() => {
                history = Some(fetch_history(&mut conn, cfg, timeline).await?);
            }
            ReconnectPlan::FetchHistory { timeline } => {
                return Err(WalRcvError::UnexpectedReply(format!(
                    "history of timeline {timeline} does not describe it"
                )));
            }
            p => break p,
        }
    };
    let (start, discard_from, primary_flush) = match plan {
        ReconnectPlan::Stream {
            start,
            discard_from,
            primary_flush,
        } => (start, discard_from, primary_flush),
        ReconnectPlan::WaitForUpstream {
            start,
            upstream_flush,
        } => {
            return Err(WalRcvError::UpstreamBehind {
                start,
                upstream_flush,
            });
        }
        ReconnectPlan::Diverged(e) => return Err(WalRcvError::Diverged(e)),
        ReconnectPlan::FetchHistory { .. } => {
            return Err(WalRcvError::UnexpectedReply("timeline history loop".into()));
        }
    };
    if let Some(limit) = target_limit(cfg)
        && start.timeline > limit
    {
        // recovery_target_timeline stops us at the end of our timeline: stay there.
        return Err(WalRcvError::TargetTimelineReached {
            next: start.timeline,
            limit,
        });
    }
    if let Some(at) = discard_from {
        // WAL beyond what the primary was known to have flushed may differ from the
        // primary's now (DESIGN.md decision 4): remove it before streaming over it.
        tracing::info!("discarding local WAL from {at} on (beyond the primary's known flush)");
        let (dir, tli, size) = (cfg.wal_dir.clone(), st.timeline, cfg.segment_size);
        blocking(move || wal::reader::truncate_wal_at(&dir, tli, size, at))
            .await?
            .map_err(|source| WalRcvError::Truncate { at, source })?;
        shared.reset_to(at);
    }
    let slot = cfg
        .primary_slot_name
        .as_deref()
        .map(|s| format!("SLOT {s} "))
        .unwrap_or_default();
    let cmd = format!(
        "START_REPLICATION {slot}PHYSICAL {} TIMELINE {}",
        start.lsn, start.timeline.0
    );
    match conn.query_until_copy(&cmd).await? {
        (_, CopyKind::Both) => Ok((conn, start, primary_flush)),
        (_, k) => Err(WalRcvError::UnexpectedReply(format!(
            "START_REPLICATION answered with {k:?} copy"
        ))),
    }
}

/// The streaming loop of one connection.
struct Streamer<'a> {
    conn: &'a mut PgConnection,
    shared: &'a WalRcvShared,
    rcv: WalReceiver,
    /// `None` only while a write runs on a blocking thread.
    writer: Option<WalFileWriter>,
    /// Flushed here but not yet published in `shared`: `execute` publishes it after the
    /// actions the flush caused (the flush status update a synchronous commit waits for),
    /// because publishing wakes redo, which would compete with that reply for the CPU.
    unpublished_flush: Option<Lsn>,
}

impl Streamer<'_> {
    /// Streams until the primary ends the timeline (→ next timeline, switch point) or an
    /// error ends the connection.
    async fn stream(&mut self) -> Result<(TimelineId, Lsn), WalRcvError> {
        loop {
            // Registered before looking at the replay position, so a replay that happens in
            // between still wakes us.
            let replay = self.shared.replay_advanced.notified();
            tokio::pin!(replay);
            replay.as_mut().enable();
            self.check_replay().await?;

            match self.conn.try_recv_copy()? {
                Some(CopyMessage::Data(d)) => {
                    self.on_copy_data(d).await?;
                    continue;
                }
                Some(CopyMessage::Done) => return self.end_of_stream().await,
                None => {
                    let a = self.rcv.on_input_drained(Instant::now());
                    self.execute(a).await?;
                }
            }
            let deadline = self.rcv.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.conn.fill() => r?,
                _ = &mut replay => {}
                _ = sleep => {
                    let a = self.rcv.on_tick(Instant::now());
                    self.execute(a).await?;
                }
            }
        }
    }

    async fn check_replay(&mut self) -> Result<(), WalRcvError> {
        let feedback = self.shared.take_apply_feedback();
        // Redo never replays past the replay limit; clamp anyway so a misbehaving redo
        // cannot trip the state machine's assertions.
        let replayed = self
            .shared
            .replayed_lsn()
            .min(self.rcv.replay_limit())
            .max(self.rcv.replayed_lsn());
        if replayed > self.rcv.replayed_lsn() || feedback {
            let a = self.rcv.on_replayed(replayed, feedback, Instant::now());
            self.execute(a).await?;
        }
        Ok(())
    }

    async fn on_copy_data(&mut self, d: Bytes) -> Result<(), WalRcvError> {
        let msg = PrimaryMessage::decode(d)?;
        let now_wall = SystemTime::now();
        let (send_time, wal_end) = match &msg {
            PrimaryMessage::XLogData(x) => (x.send_time, x.wal_end),
            PrimaryMessage::Keepalive(k) => (k.send_time, k.wal_end),
        };
        self.shared.update_info(|i| {
            i.last_msg_send_time = Some(send_time.to_system_time());
            i.last_msg_receipt_time = Some(now_wall);
            if wal_end > i.latest_end_lsn {
                i.latest_end_lsn = wal_end;
                i.latest_end_time = Some(send_time.to_system_time());
            }
        });
        let a = self.rcv.on_message(msg, Instant::now());
        self.shared.set_primary_flush(self.rcv.primary_flush_lsn());
        self.execute(a).await
    }

    async fn end_of_stream(&mut self) -> Result<(TimelineId, Lsn), WalRcvError> {
        self.conn.queue_copy_done();
        self.conn.flush().await?;
        let sets = self.conn.finish_copy().await?;
        let r = sets
            .iter()
            .find(|r| r.columns.len() == 2 && r.rows.len() == 1)
            .ok_or_else(|| {
                WalRcvError::UnexpectedReply(
                    "the primary ended streaming without a next timeline".into(),
                )
            })?;
        let next = r
            .text(0, 0)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| WalRcvError::UnexpectedReply("invalid next_tli".into()))?;
        let at = r
            .text(0, 1)
            .and_then(|s| s.parse::<Lsn>().ok())
            .ok_or_else(|| WalRcvError::UnexpectedReply("invalid next_tli_startpos".into()))?;
        Ok((TimelineId(next), at))
    }

    /// Executes actions in order; actions that result from one run right after it. A flush
    /// among them is published to redo at the end, whatever the outcome.
    async fn execute(&mut self, actions: Vec<ReceiverAction>) -> Result<(), WalRcvError> {
        let result = self.execute_queue(actions).await;
        if let Some(lsn) = self.unpublished_flush.take() {
            self.shared.set_flushed(lsn);
        }
        result
    }

    async fn execute_queue(&mut self, actions: Vec<ReceiverAction>) -> Result<(), WalRcvError> {
        let mut queue: VecDeque<ReceiverAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let more = match action {
                ReceiverAction::WriteWal { start, data } => self.write(start, data).await?,
                ReceiverAction::FlushWal { upto } => self.flush(upto).await?,
                ReceiverAction::SendStatus {
                    write_lsn,
                    flush_lsn,
                    apply_lsn,
                    reply_requested,
                } => {
                    let msg = StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                        write_lsn,
                        flush_lsn,
                        apply_lsn,
                        send_time: PgTimestamp::now(),
                        reply_requested,
                    });
                    self.conn.queue_copy_data(&msg.encode());
                    self.conn.flush().await?;
                    Vec::new()
                }
                // Redo reads its limit from the shared positions, already published.
                ReceiverAction::AllowReplay { .. } => Vec::new(),
                ReceiverAction::Terminate(e) => return Err(e.into()),
            };
            for a in more.into_iter().rev() {
                queue.push_front(a);
            }
        }
        Ok(())
    }

    async fn write(&mut self, start: Lsn, data: Bytes) -> Result<Vec<ReceiverAction>, WalRcvError> {
        failpoint_pause(FAILPOINT_BEFORE_WRITE).await;
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| WalRcvError::Internal("WAL writer lost".into()))?;
        let end = Lsn(start.0 + data.len() as u64);
        // A small write lands in the page cache in microseconds: doing it here saves a thread
        // hop on every synchronous commit's path (measured ~25 us of a ~170 us overhead). A
        // large one (catch-up, or a write that crosses into a new segment file, which may
        // allocate it) goes to the blocking pool so the runtime thread never stalls on I/O.
        let res = if data.len() <= INLINE_WRITE_MAX && !writer.crosses_segment(start, data.len()) {
            let r = writer.write(start, &data);
            self.writer = Some(writer);
            r
        } else {
            let (writer, r) = blocking(move || {
                let r = writer.write(start, &data);
                (writer, r)
            })
            .await?;
            self.writer = Some(writer);
            r
        };
        let synced = res?;
        self.rcv.on_written(end);
        self.shared.set_written(end);
        match synced {
            // A segment left behind was fdatasynced on the way.
            Some(s) if s > self.rcv.flushed_lsn() => {
                self.shared.set_flushed(s);
                Ok(self.rcv.on_flushed(s, Instant::now()))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// fdatasyncs the WAL written up to `upto` on this task and returns what the state
    /// machine wants done now that it is durable (the flush status update, the replay limit).
    ///
    /// Inline on purpose: the state machine asks for a flush only when the input is drained,
    /// so one fdatasync covers everything received so far (group commit on the standby), and
    /// doing it here rather than on a blocking-pool thread saves two thread wake-ups on every
    /// synchronous commit's path. WAL arriving meanwhile waits in the socket buffer and is
    /// written, reported and flushed right after — PostgreSQL's walreceiver does the same.
    async fn flush(&mut self, upto: Lsn) -> Result<Vec<ReceiverAction>, WalRcvError> {
        failpoint_pause(FAILPOINT_BEFORE_FLUSH).await;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| WalRcvError::Internal("WAL writer lost".into()))?;
        writer.flush()?;
        // A segment switch may have made more durable meanwhile.
        if upto > self.rcv.flushed_lsn() {
            self.unpublished_flush = Some(upto);
            Ok(self.rcv.on_flushed(upto, Instant::now()))
        } else {
            Ok(Vec::new())
        }
    }

    /// Flushes everything written, now.
    async fn flush_now(&mut self) -> Result<(), WalRcvError> {
        let written = self.rcv.written_lsn();
        if written > self.rcv.flushed_lsn() {
            let a = self.flush(written).await?;
            self.execute(a).await?;
        }
        Ok(())
    }
}
