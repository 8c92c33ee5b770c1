//! The startup process of a standby: continuous redo, timeline following, and promotion
//! (PostgreSQL's `xlogrecovery.c` main loop, `rescanLatestTimeLine` and the end of
//! `StartupXLOG`).
//!
//! Where it runs: the registered worker `startup` (backend type `startup`), on a thread of
//! its own that drives this module's async code with the server runtime's handle
//! (`Handle::block_on`): file reading and applying happen right on that thread in batches of
//! at most `BATCH_RECORDS`, and between batches it waits for `WalRcvShared::wal_arrived`, a
//! promotion request, the stop signal, or `ARCHIVE_POLL`. A thread of its own because a
//! synchronous primary sends a commit or two per batch: a runtime task that handed each batch
//! to the blocking pool paid three thread wake-ups per commit, and that CPU is taken from the
//! walreceiver, whose flush reply the primary's commit waits for. (Promotion's own blocking
//! steps still go to the blocking pool; tasks it spawns land on the server runtime.)
//!
//! Loop: read the next whole valid record at the replay position; apply it only if it ends at
//! or below the replay limit (`decide::replay_limit`: the walreceiver's and the primary's
//! flush positions when streaming; no bound in archive mode or while promoting), through
//! `storage::redo::Redo` — the functions crash recovery uses — then raise every visibility
//! watermark to its end and report `set_replayed(end, apply_feedback)`. No valid record at
//! the position: if WAL beyond it proves it was once durable, that is corruption (fatal, as
//! in recovery.rs's decision table); otherwise it is the end of what has arrived — a torn or
//! incomplete record means "wait for more". At the end of a timeline's WAL, a newer
//! timeline's history file (per `recovery_target_timeline`) may say that WAL continues on a
//! child timeline from here (`decide::follow`).
//!
//! Promotion, in this order (each step's reason beside it in `promote`): stop the
//! walreceiver; replay all WAL flushed locally; write the new timeline's history file; copy
//! the segment holding the switch point to the new timeline's name; open the `Wal` for
//! inserts there; write an end-of-recovery record; run the end-of-recovery checkpoint (the
//! control file then names the new timeline, "in production"); remove `standby.signal` and
//! `promote.signal`; accept writes.
//!
//! What it does not do: it never writes to `pg_wal` before promotion (the walreceiver owns
//! it), never applies a partial record, and never skips a record it cannot apply.
//!
//! Ownership: it alone owns the `Redo` state and the reader; it writes the replay side of
//! `StandbyShared`/`WalRcvShared`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base::{Lsn, TimelineId};
use parking_lot::Mutex;
use replication::timeline::{TimelineHistory, history_file_name, parse_history_file_name};
use storage::redo::{Redo, Replayed};
use txn::TxnManager;
use wal::record::{EndOfRecoveryRecord, RecordKind, WalRecord};
use wal::{RawRecord, ReadOutcome, Wal, WalReader};
use walreceiver::shared::WalRcvStatus;

use super::decide::{self, Follow, ReplayBound};
use super::{ARCHIVE_POLL, RestartCandidate, StandbyShared};
use crate::bgworker::{Supervisor, WorkerContext};
use crate::checkpointer::{CheckpointKind, Checkpointer};
use crate::datadir::DataDir;

/// Records applied per batch: large enough that the checks between batches are amortised,
/// small enough that a stop or promotion request waits at most a few milliseconds.
const BATCH_RECORDS: usize = 2_000;

/// Recompute the prune horizon every this many records: old versions are pruned while
/// replaying (chains stay short) without taking the snapshot registry's lock per record.
const HORIZON_EVERY: u32 = 256;

/// Deciding "torn tail or corruption" scans the rest of the timeline's segment files; while
/// stuck at one position it is repeated at most this often (new WAL that proves corruption is
/// then noticed within this time, and an idle standby does not re-read segments 10x a second).
const CLASSIFY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Read(#[from] wal::reader::ReadError),
    #[error("{0}")]
    Redo(#[from] storage::redo::RedoError),
    #[error(
        "WAL is corrupt: invalid record at {lsn} in segment file \"{segment}\" ({reason}), but the record at {evidence} shows WAL beyond it was already durable"
    )]
    Corrupt {
        lsn: Lsn,
        segment: String,
        reason: String,
        evidence: Lsn,
    },
    #[error("invalid timeline history file \"{file}\": {source}")]
    History {
        file: String,
        source: replication::timeline::TimelineError,
    },
    #[error("promotion failed: {0}")]
    Promotion(String),
    #[error("could not {what} \"{path}\": {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("startup process task failed: {0}")]
    Task(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StartupError {
    let path = path.display().to_string();
    move |source| StartupError::Io { what, path, source }
}

/// Opens the WAL for inserts on a timeline at an LSN and starts its workers (core.rs).
pub type OpenWal = Arc<dyn Fn(TimelineId, Lsn) -> Result<Arc<Wal>, String> + Send + Sync>;

/// What the startup worker works with (built by `Core::start`).
pub struct Startup {
    pub datadir: DataDir,
    pub mgr: Arc<TxnManager>,
    pub shared: Arc<StandbyShared>,
    pub checkpointer: Arc<Checkpointer>,
    pub supervisor: Arc<Supervisor>,
    pub open_wal: OpenWal,
    /// Stops the server (exit status 2) after an unrecoverable replay or promotion error.
    pub fatal: Arc<dyn Fn(&str) + Send + Sync>,
    replayer: Mutex<Option<Replayer>>,
}

/// What one batch ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Batch {
    /// More records may be there right away.
    More,
    /// The next record ends beyond the replay limit.
    AtLimit,
    /// No valid record at the position (yet).
    Stuck,
}

/// The replay state (moved onto a blocking thread for each batch).
pub struct Replayer {
    reader: WalReader,
    redo: Redo,
    timeline: TimelineId,
    /// A whole record read but not applied (beyond the limit, or found by classification).
    held: Option<RawRecord>,
    dir: PathBuf,
    segment_size: u64,
    mgr: Arc<TxnManager>,
    shared: Arc<StandbyShared>,
    horizon: u64,
    since_horizon: u32,
    last_checkpoint_lsn: Lsn,
    last_classified: Option<(Lsn, Instant)>,
    /// The replay limit of the last batch (`None`: no limit — archive mode, promotion).
    limit: Option<Lsn>,
    /// Last "cannot follow" warning, so it is logged once per position and timeline.
    warned: Option<(Lsn, TimelineId)>,
}

/// Where continuous replay starts: the state crash-recovery-style start-up ended with.
pub struct ReplayStart {
    pub wal_dir: PathBuf,
    pub segment_size: u64,
    pub timeline: TimelineId,
    /// The end of valid local WAL (the next record's start).
    pub start: Lsn,
    /// Start-up recovery's redo state (spilled changes of transactions still open).
    pub redo: Redo,
    pub last_checkpoint_lsn: Lsn,
}

impl Replayer {
    pub fn new(from: ReplayStart, mgr: Arc<TxnManager>, shared: Arc<StandbyShared>) -> Replayer {
        Replayer {
            reader: WalReader::new(&from.wal_dir, from.segment_size, from.timeline, from.start),
            redo: from.redo,
            timeline: from.timeline,
            held: None,
            dir: from.wal_dir,
            segment_size: from.segment_size,
            mgr,
            shared,
            horizon: 0,
            since_horizon: 0,
            last_checkpoint_lsn: from.last_checkpoint_lsn,
            last_classified: None,
            limit: None,
            warned: None,
        }
    }

    /// Where the next record starts (the end of everything applied or held).
    fn position(&self) -> Lsn {
        self.held
            .as_ref()
            .map_or(self.reader.position(), RawRecord::start_lsn)
    }

    fn replay_batch(&mut self, limit: Option<Lsn>) -> Result<Batch, StartupError> {
        self.limit = limit;
        for _ in 0..BATCH_RECORDS {
            let rec = match self.held.take() {
                Some(r) => r,
                None => match self.reader.next_if_valid()? {
                    Some(r) => r,
                    None => return Ok(Batch::Stuck),
                },
            };
            if !decide::may_apply(rec.end_lsn(), limit) {
                self.held = Some(rec);
                return Ok(Batch::AtLimit);
            }
            self.apply(&rec)?;
        }
        Ok(Batch::More)
    }

    fn apply(&mut self, rec: &RawRecord) -> Result<(), StartupError> {
        // Tests stall replay here (`pause_while_exists`) to show that remote_apply waits for
        // it; this runs on the startup process's own thread, so pausing it blocks no session.
        base::failpoint::hit("startup-before-apply");
        if self.since_horizon == 0 {
            self.horizon = self.mgr.recompute_horizon();
        }
        self.since_horizon = (self.since_horizon + 1) % HORIZON_EVERY;
        let replayed = self.redo.apply(rec, self.horizon)?;
        let end = rec.end_lsn();
        let mut apply_feedback = false;
        match replayed {
            Replayed::Commit {
                commit_time,
                apply_feedback: fb,
                ..
            } => {
                self.shared.set_last_commit_time(commit_time);
                apply_feedback = fb;
            }
            Replayed::Other(RecordKind::Checkpoint) => self.last_checkpoint_lsn = rec.start_lsn(),
            Replayed::Other(_) => {}
        }
        self.mgr.observe_xid(self.redo.max_xid);
        let candidate = RestartCandidate {
            lsn: end,
            redo_lsn: self.redo.oldest_open_lsn().map_or(end, |o| o.min(end)),
            timeline: self.timeline,
            next_xid: self.mgr.next_xid(),
            checkpoint_lsn: self.last_checkpoint_lsn,
        };
        self.shared
            .advance_replay(&self.mgr, candidate, apply_feedback);
        Ok(())
    }

    /// No valid record at the position: decide between "wait", "corrupt" and "continue on a
    /// newer timeline". Returns whether replay can go on at once.
    fn on_stuck(&mut self, force: bool) -> Result<bool, StartupError> {
        let pos = self.reader.position();
        if !decide::stuck_needs_look(pos, self.limit, force) {
            return Ok(false);
        }
        // Files may have been replaced (renamed into place) since they were opened.
        self.reader.reset_files();
        let due = force
            || self
                .last_classified
                .is_none_or(|(p, t)| p != pos || t.elapsed() >= CLASSIFY_EVERY);
        if due {
            self.last_classified = Some((pos, Instant::now()));
            // While streaming, the walreceiver appends to these files as we read: only WAL
            // below the replay limit (durable here) may serve as evidence of corruption.
            match self.reader.next_record_within(self.limit)? {
                ReadOutcome::Record(rec) => {
                    self.held = Some(rec);
                    return Ok(true);
                }
                ReadOutcome::Corrupt {
                    lsn,
                    segment,
                    reason,
                    evidence_lsn,
                } => {
                    return Err(StartupError::Corrupt {
                        lsn,
                        segment,
                        reason,
                        evidence: evidence_lsn,
                    });
                }
                ReadOutcome::EndOfWal(_) => {}
            }
        }
        self.try_follow_timeline(pos)
    }

    /// At the end of WAL on our timeline: does a newer timeline continue from here?
    fn try_follow_timeline(&mut self, pos: Lsn) -> Result<bool, StartupError> {
        let available = history_timelines(&self.dir)?;
        let Some(target) = decide::target_timeline(self.shared.target, self.timeline, &available)
        else {
            return Ok(false);
        };
        let history = read_history(&self.dir, target)?;
        match decide::follow(&history, self.timeline, pos, self.segment_size) {
            Follow::Switch { to, at } => {
                tracing::info!(
                    "new target timeline is {target}; switching from timeline {} to {to} at {pos} (switch point {at})",
                    self.timeline
                );
                self.reader = WalReader::new(&self.dir, self.segment_size, to, pos);
                self.timeline = to;
                self.last_classified = None;
                self.shared.set_replay_timeline(to);
                self.shared.walrcv.update_info(|i| i.received_tli = to.0);
                Ok(true)
            }
            Follow::NotYet { .. } => Ok(false),
            Follow::ForkedBefore { at } => {
                if self.warned != Some((pos, target)) {
                    self.warned = Some((pos, target));
                    tracing::warn!(
                        "new timeline {target} forked off current database system timeline {} before current recovery point {pos} (at {at}); not following it",
                        self.timeline
                    );
                }
                Ok(false)
            }
            Follow::NotAChild => {
                if self.warned != Some((pos, target)) {
                    self.warned = Some((pos, target));
                    tracing::warn!(
                        "new timeline {target} is not a child of database system timeline {}; not following it",
                        self.timeline
                    );
                }
                Ok(false)
            }
        }
    }

    /// Promotion, first half (blocking): replay everything valid, then write the history file
    /// and the new timeline's first segment. Returns the plan.
    fn finish_recovery(&mut self) -> Result<decide::PromotionPlan, StartupError> {
        loop {
            match self.replay_batch(decide::replay_limit(ReplayBound::Promoting))? {
                Batch::More | Batch::AtLimit => continue,
                Batch::Stuck => {
                    if !self.on_stuck(true)? {
                        break;
                    }
                }
            }
        }
        let end = self.position();
        tracing::info!(
            "redo done at {end} on timeline {}; last completed transaction was at log time {:?}",
            self.timeline,
            self.shared.last_commit_time()
        );
        let history = read_history(&self.dir, self.timeline)?;
        let known = history_timelines(&self.dir)?;
        let plan =
            decide::plan_promotion(&history, &known, end, self.segment_size).map_err(|e| {
                StartupError::History {
                    file: history_file_name(self.timeline),
                    source: e,
                }
            })?;
        // The history file first: a server on the new timeline must never exist without it
        // (walsenders answer TIMELINE_HISTORY from it; followers decide from it).
        let hpath = self.dir.join(history_file_name(plan.new_timeline));
        storage::controlfile::write_atomically(&hpath, plan.history.as_bytes())
            .map_err(io_err("write timeline history file", &hpath))?;
        copy_partial_segment(
            &self.dir,
            plan.old_timeline,
            plan.new_timeline,
            plan.partial_segno,
            end,
            self.segment_size,
        )?;
        tracing::info!(
            "selected new timeline ID: {} (switch point {end})",
            plan.new_timeline
        );
        Ok(plan)
    }
}

/// Timelines that have a history file in `dir`.
fn history_timelines(dir: &Path) -> Result<Vec<TimelineId>, StartupError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let entry = entry.map_err(io_err("read directory", dir))?;
        if let Some(t) = entry.file_name().to_str().and_then(parse_history_file_name) {
            out.push(t);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The history of `timeline`; a timeline without a file has no ancestors (timeline 1).
fn read_history(dir: &Path, timeline: TimelineId) -> Result<TimelineHistory, StartupError> {
    let path = dir.join(history_file_name(timeline));
    match std::fs::read_to_string(&path) {
        Ok(text) => TimelineHistory::parse(timeline, &text).map_err(|e| StartupError::History {
            file: path.display().to_string(),
            source: e,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TimelineHistory::new(timeline)),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// PostgreSQL's `XLogInitNewTimeLine`: the segment holding the switch point is copied to the
/// new timeline's name up to the switch point, zeros after, so the new timeline's files alone
/// hold every byte from the segment's start (a follower reads the old timeline's tail there)
/// and the `Wal` can append at the switch point. Written to a temporary file, flushed, renamed.
/// The old timeline's file stays as it is (we have no archive it could conflict in).
fn copy_partial_segment(
    dir: &Path,
    old: TimelineId,
    new: TimelineId,
    segno: u64,
    end: Lsn,
    segment_size: u64,
) -> Result<(), StartupError> {
    use std::io::Write;
    let src = wal::segment::segment_path(dir, old, segno, segment_size);
    let dst = wal::segment::segment_path(dir, new, segno, segment_size);
    let upto = (end.0 - segno * segment_size) as usize;
    let mut data = match std::fs::read(&src) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read", &src)(e)),
    };
    data.resize(upto, 0);
    data.resize(segment_size as usize, 0);
    let tmp = dir.join(format!("xlogtemp.promote.{segno}"));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("flush", &tmp))?;
    }
    std::fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))?;
    wal::segment::fsync_dir(dir).map_err(io_err("flush directory", dir))
}

impl Startup {
    #[allow(clippy::too_many_arguments)] // each is a distinct piece of the core it drives
    pub fn new(
        datadir: DataDir,
        mgr: Arc<TxnManager>,
        shared: Arc<StandbyShared>,
        checkpointer: Arc<Checkpointer>,
        supervisor: Arc<Supervisor>,
        open_wal: OpenWal,
        fatal: Arc<dyn Fn(&str) + Send + Sync>,
        replayer: Replayer,
    ) -> Arc<Startup> {
        Arc::new(Startup {
            datadir,
            mgr,
            shared,
            checkpointer,
            supervisor,
            open_wal,
            fatal,
            replayer: Mutex::new(Some(replayer)),
        })
    }

    /// The worker's main function. Errors are fatal for the server (see module header).
    pub async fn worker_main(self: Arc<Self>, ctx: WorkerContext) -> Result<(), String> {
        let Some(rp) = self.replayer.lock().take() else {
            // Replay state is gone after a promotion (or a failure that already stopped the
            // server): nothing to restart.
            return Ok(());
        };
        match self.run(ctx, rp).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!("FATAL: startup process: {e}");
                (self.fatal)(&format!("startup process failed: {e}"));
                Err(e.to_string())
            }
        }
    }

    fn bound(&self) -> ReplayBound {
        if self.shared.settings.streaming() {
            ReplayBound::Streaming {
                flushed: self.shared.walrcv.flushed_lsn(),
                primary_flush: self.shared.walrcv.primary_flush_lsn(),
            }
        } else {
            ReplayBound::Archive
        }
    }

    async fn run(&self, mut ctx: WorkerContext, mut rp: Replayer) -> Result<(), StartupError> {
        tracing::info!(
            "entering standby mode; redo continues at {} on timeline {} ({})",
            rp.position(),
            rp.timeline,
            if self.shared.settings.streaming() {
                "streaming from primary_conninfo"
            } else {
                "no primary_conninfo: replaying WAL files that appear in pg_wal"
            }
        );
        loop {
            if ctx.should_stop() {
                return Ok(());
            }
            if self.shared.promotion_requested() || self.datadir.promote_requested() {
                return self.promote(rp).await;
            }
            // Registered before the limit is read: a limit raised while this batch runs then
            // still ends the wait below (`notify_waiters` wakes only registered waiters).
            let arrived = self.shared.walrcv.wal_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let limit = decide::replay_limit(self.bound());
            // Blocking, on purpose: this is the startup process's own thread (module header).
            let result = rp.replay_batch(limit).and_then(|b| match b {
                Batch::Stuck => rp
                    .on_stuck(false)
                    .map(|go_on| if go_on { Batch::More } else { Batch::Stuck }),
                other => Ok(other),
            });
            if !self.shared.settings.streaming() {
                // Archive mode: what redo found in the files is "received and flushed".
                let pos = rp.position();
                self.shared.walrcv.set_flushed(pos);
                self.shared.walrcv.set_primary_flush(pos);
            }
            if result? == Batch::More {
                continue;
            }
            tokio::select! {
                _ = &mut arrived => {}
                _ = self.shared.promote_wakeup.notified() => {}
                _ = ctx.stopped() => return Ok(()),
                _ = tokio::time::sleep(ARCHIVE_POLL) => {}
            }
        }
    }

    /// Promotion (PostgreSQL's `CheckForStandbyTrigger` → end of `StartupXLOG`).
    async fn promote(&self, mut rp: Replayer) -> Result<(), StartupError> {
        tracing::info!("received promote request");
        // 1. Stop the walreceiver first: from now on nothing may append to pg_wal on the old
        //    timeline, or the switch point would move under us.
        self.shared.walrcv.set_status(WalRcvStatus::Stopping);
        self.supervisor.stop(super::WALRECEIVER).await;
        self.supervisor.forget(super::WALRECEIVER);
        self.shared.walrcv.set_status(WalRcvStatus::Stopped);
        // 2-4. Replay all WAL flushed here (not bounded by the primary's flush LSN: the primary
        //      is presumed gone, and every acknowledged commit is in our flushed WAL), then the
        //      history file and the new timeline's first segment.
        let (rp_back, plan) = tokio::task::spawn_blocking(move || {
            let r = rp.finish_recovery();
            (rp, r)
        })
        .await
        .map_err(|e| StartupError::Task(e.to_string()))?;
        let plan = plan?;
        let max_xid = rp_back.redo.max_xid;
        drop(rp_back);
        // 5-6. Open the WAL for inserts at the switch point on the new timeline and mark the
        //      timeline's start with an end-of-recovery record.
        let open_wal = self.open_wal.clone();
        let mgr = self.mgr.clone();
        let checkpointer = self.checkpointer.clone();
        let shared = self.shared.clone();
        let datadir = self.datadir.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StartupError> {
            let wal =
                open_wal(plan.new_timeline, plan.switchpoint).map_err(StartupError::Promotion)?;
            shared.set_replay_timeline(plan.new_timeline);
            mgr.observe_xid(max_xid);
            let rec = WalRecord::EndOfRecovery(EndOfRecoveryRecord {
                previous_timeline: plan.old_timeline,
                timeline: plan.new_timeline,
                time: txn::transaction::now_pg_micros(),
            });
            let end = wal
                .insert(rec.kind(), 0, 0, &rec.encode(), &mut |_, _| {})
                .map_err(|e| StartupError::Promotion(e.to_string()))?;
            wal.flush_to(end)
                .map_err(|e| StartupError::Promotion(e.to_string()))?;
            // 7. The end-of-recovery checkpoint: the control file names the new timeline and
            //    "in production", and the next start replays from here, on this timeline.
            checkpointer
                .checkpoint(CheckpointKind::EndOfRecovery)
                .map_err(|e| StartupError::Promotion(e.to_string()))?;
            // 8. No longer a standby on restart.
            for p in [datadir.standby_signal(), datadir.promote_signal()] {
                datadir
                    .remove_signal(&p)
                    .map_err(|e| StartupError::Promotion(e.to_string()))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StartupError::Task(e.to_string()))??;
        // 9. Accept writes.
        self.mgr.set_read_only(false);
        self.shared.finish_promotion();
        tracing::info!(
            "archive recovery complete; database system is ready to accept read-write connections on timeline {}",
            plan.new_timeline
        );
        Ok(())
    }
}
