//! The checkpointer: periodic, requested, and shutdown checkpoints.
//!
//! A checkpoint at LSN `C` (the WAL flush position when it starts) writes every row's newest
//! version committed at or below `C` into a snapshot file while writers go on (DESIGN.md
//! decision 6), then writes a checkpoint WAL record, flushes it, and atomically replaces the
//! control file to point at the new snapshot. Only then are the previous snapshot and the WAL
//! segments wholly before the new redo LSN removed, so at every instant the control file names
//! a snapshot and WAL that exist.
//!
//! The redo LSN is `C`, or earlier if some open transaction has already spilled changes into
//! `TxnData` records before `C` (replay must see those to apply its later commit).
//!
//! Where it runs: the registered "checkpointer" worker triggers checkpoints on
//! `checkpoint_timeout` and when more than half of `max_wal_size` of WAL was written since the
//! last one; `CHECKPOINT` and shutdown call `checkpoint` directly. The work itself is blocking
//! (file IO) and runs on a blocking thread; one checkpoint runs at a time.
//!
//! On a standby (no `Wal` open) every trigger takes a *restartpoint* instead (see
//! `restartpoint`): the same snapshot and control-file steps at the replayed position, no WAL
//! record. After promotion the slot holds the new `Wal` and checkpoints are checkpoints again.
//!
//! Failure: an error leaves the previous checkpoint in force (nothing was removed yet); it is
//! reported to the requester and logged, and the next trigger tries again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base::{Lsn, SyncCommitLevel};
use parking_lot::{Mutex, RwLock};
use storage::checkpoint::{SnapshotHeader, remove_old_snapshots, write_snapshot};
use storage::controlfile::{ClusterState, ControlFile};
use txn::TxnManager;
use wal::mirror::MirrorHook;
use wal::record::{CheckpointRecord, WalRecord};

use crate::bgworker::WorkerContext;
use crate::datadir::DataDir;
use crate::standby::{StandbyShared, WalSlot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// `checkpoint_timeout` elapsed.
    Timed,
    /// Much WAL was written since the last checkpoint (`max_wal_size`).
    Wal,
    /// `CHECKPOINT` command or `lockstep checkpoint`.
    Requested,
    /// At shutdown, after every session ended: the control file says "shut down".
    Shutdown,
    /// Right after crash recovery, so the next start does not replay the same WAL again.
    EndOfRecovery,
}

#[derive(Clone, Copy, Debug)]
pub struct CheckpointSettings {
    pub timeout: Duration,
    pub max_wal_size: u64,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings {
            timeout: Duration::from_secs(300),
            max_wal_size: 1 << 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStats {
    pub kind: CheckpointKind,
    pub snapshot_lsn: Lsn,
    pub redo_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
    pub segments_removed: usize,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0}")]
    Snapshot(#[from] storage::checkpoint::SnapshotError),
    #[error("{0}")]
    Control(#[from] storage::controlfile::ControlFileError),
    #[error("{0}")]
    Wal(#[from] wal::WalError),
    #[error("could not remove old files: {0}")]
    Cleanup(std::io::Error),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("no WAL is open and the server is not a standby")]
    NoWal,
}

/// Something that needs WAL kept (a replication slot, `wal_keep_size`): returns the oldest LSN
/// it still needs, or `None`.
pub type WalRetention = Arc<dyn Fn() -> Option<Lsn> + Send + Sync>;

pub struct Checkpointer {
    datadir: DataDir,
    /// Empty while the server is a standby (then checkpoints are restartpoints).
    wal: WalSlot,
    /// Set on a standby: where restartpoints come from.
    standby: Option<Arc<StandbyShared>>,
    mgr: Arc<TxnManager>,
    control: Mutex<ControlFile>,
    running: Mutex<()>,
    pub settings: RwLock<CheckpointSettings>,
    mirror: Option<Arc<MirrorHook>>,
    retention: RwLock<Vec<WalRetention>>,
    last_end: Mutex<Instant>,
    last: Mutex<Option<CheckpointStats>>,
    /// Set by the shutdown checkpoint: no checkpoint may follow it (the WAL is stopping).
    shut_down: std::sync::atomic::AtomicBool,
}

impl Checkpointer {
    pub fn new(
        datadir: DataDir,
        wal: WalSlot,
        standby: Option<Arc<StandbyShared>>,
        mgr: Arc<TxnManager>,
        control: ControlFile,
        settings: CheckpointSettings,
        mirror: Option<Arc<MirrorHook>>,
    ) -> Arc<Checkpointer> {
        Arc::new(Checkpointer {
            datadir,
            wal,
            standby,
            mgr,
            control: Mutex::new(control),
            running: Mutex::new(()),
            settings: RwLock::new(settings),
            mirror,
            retention: RwLock::new(Vec::new()),
            last_end: Mutex::new(Instant::now()),
            last: Mutex::new(None),
            shut_down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn control(&self) -> ControlFile {
        self.control.lock().clone()
    }

    pub fn last(&self) -> Option<CheckpointStats> {
        self.last.lock().clone()
    }

    pub fn add_retention(&self, r: WalRetention) {
        self.retention.write().push(r);
    }

    /// Marks the cluster "in production" in the control file (after start-up).
    pub fn set_state(&self, state: ClusterState) -> Result<(), CheckpointError> {
        let mut c = self.control.lock();
        c.state = state;
        c.time = txn::transaction::now_pg_micros();
        c.write(&self.datadir.path)?;
        Ok(())
    }

    /// Runs one checkpoint (blocking).
    pub fn checkpoint(&self, kind: CheckpointKind) -> Result<CheckpointStats, CheckpointError> {
        let _one = self.running.lock();
        if self.shut_down.load(std::sync::atomic::Ordering::Acquire) {
            return Err(CheckpointError::ShuttingDown);
        }
        if kind == CheckpointKind::Shutdown {
            self.shut_down
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let started = Instant::now();
        // In recovery there is no WAL to write to: a restartpoint instead.
        let Some(wal) = self.wal.get().cloned() else {
            return self.restartpoint(kind, started);
        };
        // What the synchronous standbys have confirmed (the lowest remote level): a restart
        // keeps commits above it that waited for a standby invisible until one confirms
        // them, so the snapshot keeps the older versions readers need meanwhile. Pinned
        // before C is chosen (it is a lower bound of C), so no version the scan needs is
        // pruned.
        let sync_confirmed_lsn = [
            SyncCommitLevel::RemoteWrite,
            SyncCommitLevel::On,
            SyncCommitLevel::RemoteApply,
        ]
        .into_iter()
        .map(|l| self.mgr.watermarks.get(l))
        .min()
        .map_or(Lsn(0), Lsn);
        let slot = self.mgr.snapshots.register();
        slot.pin(sync_confirmed_lsn.0);
        let snapshot_lsn = if kind == CheckpointKind::Shutdown {
            wal.flush_all()?
        } else {
            wal.flush_lsn()
        };
        let redo_lsn = self
            .mgr
            .oldest_spill_lsn()
            .map_or(snapshot_lsn, |s| s.min(snapshot_lsn));
        let header = SnapshotHeader {
            snapshot_lsn,
            redo_lsn,
            timeline: wal.timeline(),
            next_xid: self.mgr.next_xid(),
            next_oid: self.mgr.catalog.next_oid(),
            time: txn::transaction::now_pg_micros(),
            sync_confirmed_lsn,
        };
        let (file, stats) = write_snapshot(&self.datadir.path, &self.mgr.catalog, &header)?;
        drop(slot);
        base::failpoint::hit("checkpoint-after-snapshot");
        let rec = WalRecord::Checkpoint(CheckpointRecord {
            redo_lsn,
            snapshot_lsn,
            timeline: wal.timeline(),
            next_xid: header.next_xid,
            next_oid: header.next_oid,
            time: header.time,
            shutdown: kind == CheckpointKind::Shutdown,
        });
        let mut checkpoint_lsn = Lsn(0);
        let end = wal.insert(rec.kind(), 0, 0, &rec.encode(), &mut |s, _| {
            checkpoint_lsn = s
        })?;
        wal.flush_to(end)?;
        {
            let mut c = self.control.lock();
            c.checkpoint_lsn = checkpoint_lsn;
            c.sync_confirmed_lsn = sync_confirmed_lsn;
            c.redo_lsn = redo_lsn;
            c.snapshot_lsn = snapshot_lsn;
            c.snapshot_file = file.clone();
            c.next_xid = header.next_xid;
            c.next_oid = header.next_oid;
            c.time = header.time;
            // After a promotion the end-of-recovery checkpoint moves the cluster to the new
            // timeline: the next start replays on it.
            c.timeline = wal.timeline();
            if kind == CheckpointKind::Shutdown {
                c.state = ClusterState::ShutDown;
            } else if kind == CheckpointKind::EndOfRecovery {
                c.state = ClusterState::InProduction;
                c.min_recovery_point = Lsn(0);
            }
            c.write(&self.datadir.path)?;
        }
        base::failpoint::hit("checkpoint-after-control-file");
        // The new checkpoint is in force: older files can go.
        remove_old_snapshots(&self.datadir.path, &file).map_err(CheckpointError::Cleanup)?;
        let mut keep_from = redo_lsn;
        for r in self.retention.read().iter() {
            if let Some(lsn) = r() {
                keep_from = keep_from.min(lsn);
            }
        }
        let seg = wal.segment_size();
        let removed = wal::segment::remove_segments_before(
            &self.datadir.wal_dir(),
            keep_from.segment_number(seg),
            seg,
        )
        .map_err(CheckpointError::Cleanup)?;
        if let Some(m) = &self.mirror {
            m.remove_before(keep_from.segment_number(seg))
                .map_err(CheckpointError::Cleanup)?;
        }
        self.mgr.catalog.prune_all(self.mgr.recompute_horizon());
        let result = CheckpointStats {
            kind,
            snapshot_lsn,
            redo_lsn,
            checkpoint_lsn,
            tables: stats.tables,
            rows: stats.rows,
            bytes: stats.bytes,
            segments_removed: removed,
            duration: started.elapsed(),
        };
        tracing::info!(
            "checkpoint complete ({kind:?}): wrote {} rows of {} tables ({:.1} MB); {} WAL segments removed; total={:.3} s; redo lsn={}, snapshot lsn={}",
            result.rows,
            result.tables,
            result.bytes as f64 / 1e6,
            removed,
            result.duration.as_secs_f64(),
            redo_lsn,
            snapshot_lsn
        );
        *self.last_end.lock() = Instant::now();
        *self.last.lock() = Some(result.clone());
        Ok(result)
    }

    /// A standby's restartpoint (PostgreSQL's `CreateRestartPoint`): a snapshot at the last
    /// replayed position that is a consistent cut (every transaction committed at or below it
    /// is wholly applied; `StandbyShared::advance_replay`), the control file pointing at it,
    /// then removal of the old snapshot and of WAL segments before its redo LSN. Writes no
    /// WAL: the standby's WAL is the primary's, byte for byte. Nothing replayed since the
    /// last one: nothing to do (except at shutdown, which records the state).
    fn restartpoint(
        &self,
        kind: CheckpointKind,
        started: Instant,
    ) -> Result<CheckpointStats, CheckpointError> {
        let Some(standby) = &self.standby else {
            return Err(CheckpointError::NoWal);
        };
        let slot = self.mgr.snapshots.register();
        let candidate = standby.pin_restart_candidate(&slot);
        let previous = self.control.lock().clone();
        let Some(cand) = candidate.filter(|c| c.lsn > previous.snapshot_lsn) else {
            drop(slot);
            if kind == CheckpointKind::Shutdown {
                self.set_state(ClusterState::ShutDownInRecovery)?;
            }
            tracing::debug!("restartpoint skipped: nothing replayed since the last one");
            *self.last_end.lock() = Instant::now();
            return Ok(CheckpointStats {
                kind,
                snapshot_lsn: previous.snapshot_lsn,
                redo_lsn: previous.redo_lsn,
                checkpoint_lsn: previous.checkpoint_lsn,
                tables: 0,
                rows: 0,
                bytes: 0,
                segments_removed: 0,
                duration: started.elapsed(),
            });
        };
        let header = SnapshotHeader {
            snapshot_lsn: cand.lsn,
            redo_lsn: cand.redo_lsn,
            timeline: cand.timeline,
            next_xid: cand.next_xid,
            next_oid: self.mgr.catalog.next_oid(),
            time: txn::transaction::now_pg_micros(),
            sync_confirmed_lsn: cand.lsn,
        };
        let (file, stats) = write_snapshot(&self.datadir.path, &self.mgr.catalog, &header)?;
        drop(slot);
        {
            let mut c = self.control.lock();
            c.checkpoint_lsn = cand.checkpoint_lsn;
            c.redo_lsn = cand.redo_lsn;
            c.snapshot_lsn = cand.lsn;
            c.snapshot_file = file.clone();
            c.next_xid = cand.next_xid;
            c.next_oid = header.next_oid;
            c.time = header.time;
            c.timeline = cand.timeline;
            c.min_recovery_point = cand.lsn;
            c.sync_confirmed_lsn = cand.lsn;
            c.state = if kind == CheckpointKind::Shutdown {
                ClusterState::ShutDownInRecovery
            } else {
                ClusterState::InArchiveRecovery
            };
            c.write(&self.datadir.path)?;
        }
        remove_old_snapshots(&self.datadir.path, &file).map_err(CheckpointError::Cleanup)?;
        let mut keep_from = cand.redo_lsn;
        for r in self.retention.read().iter() {
            if let Some(lsn) = r() {
                keep_from = keep_from.min(lsn);
            }
        }
        let seg = previous.segment_size;
        let removed = wal::segment::remove_segments_before(
            &self.datadir.wal_dir(),
            keep_from.segment_number(seg),
            seg,
        )
        .map_err(CheckpointError::Cleanup)?;
        self.mgr.catalog.prune_all(self.mgr.recompute_horizon());
        let result = CheckpointStats {
            kind,
            snapshot_lsn: cand.lsn,
            redo_lsn: cand.redo_lsn,
            checkpoint_lsn: cand.checkpoint_lsn,
            tables: stats.tables,
            rows: stats.rows,
            bytes: stats.bytes,
            segments_removed: removed,
            duration: started.elapsed(),
        };
        tracing::info!(
            "restartpoint complete ({kind:?}): wrote {} rows of {} tables ({:.1} MB); {} WAL segments removed; total={:.3} s; redo lsn={}, snapshot lsn={}, timeline {}",
            result.rows,
            result.tables,
            result.bytes as f64 / 1e6,
            removed,
            result.duration.as_secs_f64(),
            cand.redo_lsn,
            cand.lsn,
            cand.timeline
        );
        *self.last_end.lock() = Instant::now();
        *self.last.lock() = Some(result.clone());
        Ok(result)
    }

    /// Runs a checkpoint on a blocking thread (for async callers: `CHECKPOINT`, the worker).
    pub async fn checkpoint_async(
        self: &Arc<Self>,
        kind: CheckpointKind,
    ) -> Result<CheckpointStats, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.checkpoint(kind))
            .await
            .map_err(|e| format!("checkpoint task failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    fn due(&self) -> Option<CheckpointKind> {
        let s = *self.settings.read();
        let since = self.last_end.lock().elapsed();
        if since >= s.timeout {
            return Some(CheckpointKind::Timed);
        }
        let redo = self.control.lock().redo_lsn;
        // Like PostgreSQL (with checkpoint_completion_target 0.9, roughly half of
        // max_wal_size between checkpoints) so WAL on disk stays below max_wal_size. On a
        // standby the replayed position counts (restartpoints).
        let head = match (self.wal.get(), &self.standby) {
            (Some(wal), _) => wal.insert_lsn(),
            (None, Some(sb)) => sb.replayed_lsn(),
            (None, None) => redo,
        };
        if head.distance_from(redo) > s.max_wal_size / 2 {
            return Some(CheckpointKind::Wal);
        }
        None
    }

    /// The checkpointer worker's main function.
    pub async fn worker_main(self: Arc<Self>, mut ctx: WorkerContext) -> Result<(), String> {
        // How often triggers are checked: fine enough for a WAL-size trigger at high write
        // rates, coarse enough to cost nothing when idle.
        const TICK: Duration = Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = ctx.stopped() => return Ok(()),
                _ = tokio::time::sleep(TICK) => {}
            }
            self.mgr.recompute_horizon();
            if let Some(kind) = self.due()
                && let Err(e) = self.checkpoint_async(kind).await
            {
                tracing::error!("checkpoint failed: {e}");
            }
        }
    }
}
