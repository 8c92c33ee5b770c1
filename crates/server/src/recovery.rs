//! Start-up recovery: from the control file to a consistent in-memory state and the end of
//! valid WAL.
//!
//! Runs once, before anything else, in the starting server (our "startup process").
//!
//! Steps: read the control file; load the checkpoint snapshot it names; replay the WAL from
//! the checkpoint's redo LSN through the same redo functions a standby uses; decide where
//! valid WAL ends (wal::reader's decision table); make the WAL directory ready for appending
//! at that point (zero the rest of the segment, remove later segments of the timeline).
//!
//! Decision table (the first matching row wins):
//!
//! | condition                                                       | decision                     |
//! |-----------------------------------------------------------------|------------------------------|
//! | control file missing                                            | refuse: not initialised      |
//! | control file CRC bad                                            | refuse: damaged control file |
//! | snapshot file missing or CRC bad                                | refuse: damaged snapshot     |
//! | a record fails, and a later record proves it was once durable   | refuse: corruption, naming segment file and LSN |
//! | a record fails, nothing later proves durability                 | end of WAL here (torn tail)  |
//! | valid WAL ends before the snapshot LSN                          | refuse: WAL missing          |
//! | a record cannot be applied (unknown table, bad payload)         | refuse: WAL and snapshot disagree |
//! | otherwise                                                       | start, appending at the end  |
//!
//! A standby (`StartMode`) leaves the WAL files as they are (the walreceiver or whoever
//! ships WAL owns them), and with a walreceiver replays only to its last restartpoint's
//! `min_recovery_point`: local WAL beyond what was replayed before may lie beyond the
//! primary's flush position, so only the startup process may replay it, under the
//! walreceiver's limit.
//!
//! What it does not do: it never "repairs" damaged WAL and never skips a bad record, because
//! the records after it may be commits that were acknowledged.

use std::sync::Arc;

use base::Lsn;
use storage::Catalog;
use storage::checkpoint::load_snapshot;
use storage::controlfile::{ClusterState, ControlFile};
use storage::redo::Redo;
use wal::{ReadOutcome, WalReader};

use crate::datadir::DataDir;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{0}")]
    Control(#[from] storage::controlfile::ControlFileError),
    #[error("{0}")]
    Snapshot(#[from] storage::checkpoint::SnapshotError),
    #[error("{0}")]
    Read(#[from] wal::reader::ReadError),
    #[error("{0}")]
    Redo(#[from] storage::redo::RedoError),
    #[error(
        "WAL is corrupt: invalid record at {lsn} in segment file \"{segment}\" ({reason}), but the record at {evidence} shows WAL beyond it was already durable; refusing to start"
    )]
    Corrupt {
        lsn: Lsn,
        segment: String,
        reason: String,
        evidence: Lsn,
    },
    #[error(
        "WAL ends at {found} but the checkpoint snapshot is at {needed}: required WAL is missing"
    )]
    MissingWal { needed: Lsn, found: Lsn },
    #[error("could not prepare WAL for writing at {lsn}: {source}")]
    Truncate { lsn: Lsn, source: std::io::Error },
}

/// The recovered state.
#[derive(Debug)]
pub struct Recovered {
    pub catalog: Arc<Catalog>,
    pub control: ControlFile,
    /// Where valid WAL ends: the next record goes here.
    pub end_lsn: Lsn,
    pub next_xid: u64,
    pub records_replayed: u64,
    /// The previous server shut down cleanly.
    pub clean_shutdown: bool,
    /// The redo state at the end: a standby's startup process continues with it (it holds
    /// the spilled changes of transactions still open at the end of WAL).
    pub redo: Redo,
}

/// How far start-up replays, and whether it prepares the WAL for appending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Replay to the end of valid WAL, then zero the tail for appending.
    Primary,
    /// A standby without a walreceiver: replay to the end of valid WAL; leave the files as
    /// they are (they belong to whoever ships WAL in).
    ArchiveStandby,
    /// A standby with a walreceiver: replay only up to the last restartpoint's
    /// `min_recovery_point` (or the snapshot), because local WAL beyond what redo had
    /// replayed may lie beyond the primary's flush position, which a reconnecting walreceiver
    /// discards (DESIGN.md #4); the startup process replays the rest once the walreceiver
    /// confirms the primary has it. Files are left as they are.
    StreamingStandby,
}

pub fn recover(datadir: &DataDir) -> Result<Recovered, RecoveryError> {
    recover_as(datadir, StartMode::Primary)
}

pub fn recover_as(datadir: &DataDir, mode: StartMode) -> Result<Recovered, RecoveryError> {
    let control = ControlFile::read(&datadir.path)?;
    let stop_at = (mode == StartMode::StreamingStandby)
        .then(|| control.min_recovery_point.max(control.snapshot_lsn));
    // A standby's shutdown restartpoint leaves "shut down in recovery": as clean as a
    // primary's shutdown checkpoint.
    let clean_shutdown = matches!(
        control.state,
        ClusterState::ShutDown | ClusterState::ShutDownInRecovery
    );
    if !clean_shutdown {
        tracing::info!(
            "database system was interrupted; last known up at checkpoint {}",
            control.checkpoint_lsn
        );
    }
    let catalog = Arc::new(Catalog::new());
    let header = load_snapshot(&datadir.path, &control.snapshot_file, &catalog)?;
    let mut redo = Redo::new(catalog.clone(), header.snapshot_lsn);
    tracing::info!(
        "redo starts at {} on timeline {} (snapshot {})",
        control.redo_lsn,
        control.timeline,
        header.snapshot_lsn
    );
    let mut reader = WalReader::new(
        &datadir.wal_dir(),
        control.segment_size,
        control.timeline,
        control.redo_lsn,
    );
    let mut replayed = 0u64;
    let end = loop {
        match reader.next_record()? {
            ReadOutcome::Record(rec) => {
                if let Some(stop) = stop_at
                    && rec.end_lsn() > stop
                {
                    break rec.start_lsn();
                }
                redo.apply(&rec, u64::MAX)?;
                replayed += 1;
            }
            ReadOutcome::EndOfWal(lsn) => break lsn,
            ReadOutcome::Corrupt {
                lsn,
                segment,
                reason,
                evidence_lsn,
            } => {
                return Err(RecoveryError::Corrupt {
                    lsn,
                    segment,
                    reason,
                    evidence: evidence_lsn,
                });
            }
        }
    };
    if end < header.snapshot_lsn {
        return Err(RecoveryError::MissingWal {
            needed: header.snapshot_lsn,
            found: end,
        });
    }
    if mode == StartMode::Primary {
        wal::reader::truncate_wal_at(
            &datadir.wal_dir(),
            control.timeline,
            control.segment_size,
            end,
        )
        .map_err(|e| RecoveryError::Truncate {
            lsn: end,
            source: e,
        })?;
    }
    if redo.open_transactions() > 0 {
        tracing::info!(
            "{} transactions were in progress at the end of WAL; their changes are discarded",
            redo.open_transactions()
        );
    }
    if replayed > 1 || !clean_shutdown {
        tracing::info!("redo done at {end}: {replayed} records replayed");
    }
    let next_xid = control.next_xid.max(header.next_xid).max(redo.max_xid + 1);
    Ok(Recovered {
        catalog,
        control,
        end_lsn: end,
        next_xid,
        records_replayed: replayed,
        clean_shutdown,
        redo,
    })
}
