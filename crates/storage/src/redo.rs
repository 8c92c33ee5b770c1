//! Redo: applying WAL records to the in-memory storage.
//!
//! The same functions replay WAL at crash recovery and, continuously, on a standby (PostgreSQL's
//! resource-manager redo routines; DESIGN.md "redo dispatch table by record kind"). Redo is a
//! pure function of the WAL and the snapshot it starts from: row ids, OIDs and the order of
//! changes come from the records, so every node that replays the same WAL holds the same data.
//!
//! Records: `Commit` applies the transaction's changes (spilled `TxnData` changes of the same
//! transaction first) as committed versions stamped with the record's end LSN and the
//! transaction's `synchronous_commit` level; `TxnData` is buffered by transaction id until its
//! commit; `Abort` drops the buffer; `Checkpoint` and `EndOfRecovery` change no data. Commits
//! at or below the starting snapshot's LSN are already in the snapshot and are skipped.
//!
//! Concurrent readers (hot standby): a committed version is stamped with its commit record's
//! end LSN, which lies above every reader's visibility watermark while the record is being
//! applied (the watermarks stand at the end of the previous record at most). The standby's
//! startup process raises the watermarks past a commit only after `apply` returned, so a
//! session sees a replayed transaction whole or not at all, exactly as on the primary.
//! Pruning is bounded by the caller's `horizon` (the readers' oldest snapshot).
//!
//! Failure: a record that refers to a table that does not exist means the WAL and the
//! snapshot disagree (damage or a bug). Redo stops with `RedoError`; the server refuses to
//! start rather than serve silently diverged data.

use std::collections::HashMap;
use std::sync::Arc;

use base::Lsn;
use base::codec::DecodeError;
use wal::RawRecord;
use wal::record::{Change, CommitRecord, RecordKind, WalRecord};

use crate::catalog::Catalog;
use crate::table::Table;
use crate::version::Version;

#[derive(Debug, thiserror::Error)]
pub enum RedoError {
    #[error("WAL record at {lsn} has an unknown kind {kind}")]
    UnknownKind { lsn: Lsn, kind: u8 },
    #[error("WAL record at {lsn} cannot be decoded: {source}")]
    Decode { lsn: Lsn, source: DecodeError },
    #[error("WAL record at {lsn} refers to relation {oid}, which does not exist")]
    MissingTable { lsn: Lsn, oid: u32 },
    #[error("WAL record at {lsn}: {message}")]
    Invalid { lsn: Lsn, message: String },
}

/// What a replayed record was, for the caller's bookkeeping (replay timestamps, restartpoints,
/// apply feedback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replayed {
    Commit {
        xid: u64,
        commit_time: i64,
        /// The commit asked for immediate apply feedback (`remote_apply`).
        apply_feedback: bool,
        /// Skipped because the snapshot already holds it.
        skipped: bool,
    },
    Other(RecordKind),
}

/// Replay state: buffered spilled changes and the snapshot LSN below which commits are skipped.
#[derive(Debug)]
pub struct Redo {
    catalog: Arc<Catalog>,
    pending: HashMap<u64, Vec<Change>>,
    /// The first `TxnData` LSN of each transaction in `pending`: a standby's restartpoint
    /// must start replay there, or the transaction's later commit would miss its changes.
    pending_since: HashMap<u64, Lsn>,
    snapshot_lsn: Lsn,
    /// The largest transaction id seen, so the primary continues above it.
    pub max_xid: u64,
}

impl Redo {
    pub fn new(catalog: Arc<Catalog>, snapshot_lsn: Lsn) -> Redo {
        Redo {
            catalog,
            pending: HashMap::new(),
            pending_since: HashMap::new(),
            snapshot_lsn,
            max_xid: 0,
        }
    }

    /// Transactions with spilled changes and no commit or abort yet.
    pub fn open_transactions(&self) -> usize {
        self.pending.len()
    }

    /// The first record LSN of the oldest transaction with spilled changes and no commit or
    /// abort yet (a standby's restartpoint starts replay there).
    pub fn oldest_open_lsn(&self) -> Option<Lsn> {
        self.pending_since.values().min().copied()
    }

    /// Applies one record. `horizon` bounds version pruning: versions superseded at or below
    /// it are removed (crash recovery passes `u64::MAX`, a hot standby its readers' horizon).
    pub fn apply(&mut self, rec: &RawRecord, horizon: u64) -> Result<Replayed, RedoError> {
        let lsn = rec.start_lsn();
        let kind = rec.kind().ok_or(RedoError::UnknownKind {
            lsn,
            kind: rec.header.kind,
        })?;
        let xid = rec.header.xid;
        self.max_xid = self.max_xid.max(xid);
        let decoded = WalRecord::decode(kind, &rec.payload)
            .map_err(|e| RedoError::Decode { lsn, source: e })?;
        match decoded {
            WalRecord::TxnData(changes) => {
                self.pending_since.entry(xid).or_insert(lsn);
                self.pending.entry(xid).or_default().extend(changes);
                Ok(Replayed::Other(kind))
            }
            WalRecord::Abort => {
                self.pending.remove(&xid);
                self.pending_since.remove(&xid);
                Ok(Replayed::Other(kind))
            }
            WalRecord::Commit(CommitRecord {
                commit_time,
                level,
                changes,
            }) => {
                let mut all = self.pending.remove(&xid).unwrap_or_default();
                self.pending_since.remove(&xid);
                let end = rec.end_lsn();
                let skipped = end <= self.snapshot_lsn;
                if !skipped {
                    all.extend(changes);
                    for change in all {
                        self.apply_change(lsn, change, end.0, level as u8, horizon)?;
                    }
                }
                Ok(Replayed::Commit {
                    xid,
                    commit_time,
                    apply_feedback: rec.header.flags & wal::record::FLAG_APPLY_FEEDBACK != 0,
                    skipped,
                })
            }
            WalRecord::Sequence(r) => {
                let end = rec.end_lsn();
                // A sequence dropped by a transaction that committed before this record was
                // inserted (the nextval that wrote it had found the sequence first) is gone:
                // nothing to apply.
                if end > self.snapshot_lsn
                    && let Some(t) = self.catalog.by_oid(r.sequence)
                {
                    t.store_sequence_row(end.0, r.last_value, r.is_called, horizon);
                    if let Some(seq) = &t.sequence {
                        seq.reset();
                    }
                }
                Ok(Replayed::Other(kind))
            }
            WalRecord::Checkpoint(_) | WalRecord::EndOfRecovery(_) => Ok(Replayed::Other(kind)),
        }
    }

    fn table(&self, lsn: Lsn, oid: u32) -> Result<Arc<Table>, RedoError> {
        self.catalog
            .by_oid(oid)
            .ok_or(RedoError::MissingTable { lsn, oid })
    }

    fn apply_change(
        &mut self,
        lsn: Lsn,
        change: Change,
        commit_lsn: u64,
        level: u8,
        horizon: u64,
    ) -> Result<(), RedoError> {
        let is_ddl = !matches!(
            change,
            Change::Insert { .. } | Change::Update { .. } | Change::Delete { .. }
        );
        match change {
            Change::Insert { table, rowid, row } | Change::Update { table, rowid, row } => {
                let t = self.table(lsn, table)?;
                t.rows.reserve(rowid);
                t.index_row(rowid, &row);
                let pruned = t
                    .rows
                    .with_slot(rowid, |s| {
                        s.versions
                            .push(Version::committed(commit_lsn, level, Some(row)));
                        s.prune(horizon)
                    })
                    .unwrap_or_default();
                t.unindex_removed(rowid, &pruned);
            }
            Change::Delete { table, rowid } => {
                let t = self.table(lsn, table)?;
                t.rows.reserve(rowid);
                let pruned = t
                    .rows
                    .with_slot(rowid, |s| {
                        s.versions.push(Version::committed(commit_lsn, level, None));
                        s.prune(horizon)
                    })
                    .unwrap_or_default();
                t.unindex_removed(rowid, &pruned);
            }
            Change::CreateTable { def } => {
                let name = def.name.clone();
                self.catalog.install_committed(
                    &name,
                    Some(Arc::new(Table::new(def))),
                    commit_lsn,
                    level,
                );
            }
            Change::DropTable { table } => {
                let t = self.table(lsn, table)?;
                self.catalog
                    .install_committed(t.name(), None, commit_lsn, level);
            }
            Change::Truncate { table } => {
                let t = self.table(lsn, table)?;
                self.catalog.install_committed(
                    t.name(),
                    Some(Arc::new(t.truncated())),
                    commit_lsn,
                    level,
                );
            }
            Change::CreateIndex { table, index } => {
                let t = self.table(lsn, table)?;
                let built = t.with_index(index, None).map_err(|e| RedoError::Invalid {
                    lsn,
                    message: e.to_string(),
                })?;
                self.catalog
                    .install_committed(t.name(), Some(Arc::new(built)), commit_lsn, level);
            }
            Change::ReplaceDef { def } => {
                let t = self.table(lsn, def.oid)?;
                if def.columns.len() != t.def.columns.len() {
                    return Err(RedoError::Invalid {
                        lsn,
                        message: format!("new definition of {} changes its columns", t.name()),
                    });
                }
                let replaced = t.with_def(def);
                self.catalog.install_committed(
                    t.name(),
                    Some(Arc::new(replaced)),
                    commit_lsn,
                    level,
                );
            }
            Change::AddColumn { def, fill } => {
                let t = self.table(lsn, def.oid)?;
                if def.columns.len() != t.def.columns.len() + 1 {
                    return Err(RedoError::Invalid {
                        lsn,
                        message: format!("ADD COLUMN to {} does not add one column", t.name()),
                    });
                }
                let wider = t.with_added_column(def, &fill);
                self.catalog
                    .install_committed(t.name(), Some(Arc::new(wider)), commit_lsn, level);
            }
        }
        if is_ddl && horizon == u64::MAX {
            // Crash recovery has no readers: dropped and replaced tables can go at once.
            self.catalog.prune_all(commit_lsn);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Hot-standby visibility: versions redo installs stay invisible to readers until the
    //! watermark passes their commit record's end, and a reader never sees part of a
    //! replayed transaction, while redo runs concurrently.

    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use base::SyncCommitLevel;
    use base::catalog::TableDef;
    use base::value::Value;
    use wal::record::{RECORD_HEADER_LEN, RecordHeader};

    use super::*;
    use crate::visibility::Snapshot;

    const OID: u32 = 16_384;

    fn commit(lsn: u64, xid: u64, changes: Vec<Change>) -> RawRecord {
        let payload = WalRecord::Commit(CommitRecord {
            commit_time: 1,
            level: SyncCommitLevel::On,
            changes,
        })
        .encode();
        RawRecord {
            header: RecordHeader {
                crc: 0,
                total_len: (RECORD_HEADER_LEN + payload.len()) as u32,
                kind: RecordKind::Commit as u8,
                flags: 0,
                lsn: Lsn(lsn),
                durable_lsn: Lsn(lsn),
                xid,
            },
            payload,
        }
    }

    fn snap(w: u64) -> Snapshot {
        Snapshot::at_lsn(w)
    }

    fn visible_rows(catalog: &Catalog, w: u64) -> Vec<i64> {
        let Some(t) = catalog.lookup("t", &snap(w)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        t.rows.for_each_slot(|_, s| {
            if let Some(row) = s.visible(&snap(w)) {
                out.push(row[0].as_i64().unwrap_or(-1));
            }
            true
        });
        out
    }

    fn row(v: i64) -> base::value::Row {
        Arc::from(vec![Value::Int8(v)])
    }

    fn setup() -> (Arc<Catalog>, Redo, u64) {
        let catalog = Arc::new(Catalog::new());
        let mut redo = Redo::new(catalog.clone(), Lsn(0));
        let ddl = commit(
            1_000,
            1,
            vec![Change::CreateTable {
                def: TableDef {
                    oid: OID,
                    name: "t".into(),
                    columns: vec![],
                    indexes: vec![],
                    sequence: None,
                    checks: Vec::new(),
                    foreign_keys: Vec::new(),
                },
            }],
        );
        let end = ddl.end_lsn().0;
        redo.apply(&ddl, 0).expect("create table");
        (catalog, redo, end)
    }

    #[test]
    fn replayed_versions_wait_for_the_watermark() {
        let (catalog, mut redo, ddl_end) = setup();
        assert!(
            catalog.lookup("t", &snap(ddl_end - 1)).is_none(),
            "DDL before its end"
        );
        assert!(catalog.lookup("t", &snap(ddl_end)).is_some());
        let ins = commit(
            ddl_end,
            2,
            vec![Change::Insert {
                table: OID,
                rowid: 0,
                row: row(1),
            }],
        );
        let e1 = ins.end_lsn().0;
        redo.apply(&ins, ddl_end).expect("insert");
        assert_eq!(visible_rows(&catalog, ddl_end), Vec::<i64>::new());
        assert_eq!(visible_rows(&catalog, e1), vec![1]);
        // An update replayed while a reader still holds the old snapshot (horizon e1): the
        // old version stays for it.
        let upd = commit(
            e1,
            3,
            vec![Change::Update {
                table: OID,
                rowid: 0,
                row: row(2),
            }],
        );
        let e2 = upd.end_lsn().0;
        redo.apply(&upd, e1).expect("update");
        assert_eq!(visible_rows(&catalog, e1), vec![1]);
        assert_eq!(visible_rows(&catalog, e2), vec![2]);
    }

    #[test]
    fn concurrent_readers_see_whole_transactions() {
        let (catalog, mut redo, ddl_end) = setup();
        // The watermark, as the standby's startup process raises it: after `apply`.
        let watermark = Arc::new(AtomicU64::new(ddl_end));
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(std::sync::Barrier::new(2));
        let reader = {
            let (catalog, watermark, done, started) = (
                catalog.clone(),
                watermark.clone(),
                done.clone(),
                started.clone(),
            );
            std::thread::spawn(move || {
                started.wait();
                let mut observations = 0u64;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let w = watermark.load(Ordering::Acquire);
                    let rows = visible_rows(&catalog, w);
                    // Each transaction inserts rows 2k and 2k+1 together.
                    assert_eq!(rows.len() % 2, 0, "half a transaction visible at {w}");
                    observations += 1;
                    if finished {
                        return observations;
                    }
                }
            })
        };
        started.wait();
        let mut lsn = ddl_end;
        for k in 0..2_000u64 {
            let rec = commit(
                lsn,
                10 + k,
                vec![
                    Change::Insert {
                        table: OID,
                        rowid: 2 * k,
                        row: row((2 * k) as i64),
                    },
                    Change::Insert {
                        table: OID,
                        rowid: 2 * k + 1,
                        row: row((2 * k + 1) as i64),
                    },
                ],
            );
            lsn = rec.end_lsn().0;
            redo.apply(&rec, watermark.load(Ordering::Acquire))
                .expect("apply");
            watermark.store(lsn, Ordering::Release);
            // Give the reader a chance on a loaded machine (no timing is asserted).
            std::thread::yield_now();
        }
        done.store(true, Ordering::Release);
        let observations = reader.join().expect("reader");
        assert!(observations > 0);
        assert_eq!(visible_rows(&catalog, lsn).len(), 4_000);
    }
}
