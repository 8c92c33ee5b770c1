//! Savepoints (PostgreSQL's subtransactions, without subtransaction ids): a savepoint is a
//! `Mark` of how far the transaction's lists had grown. While at least one savepoint is
//! open, every row write and catalog staging first records what it replaces in an undo log
//! (a row's earlier pending data, or "none"), so `rollback_to_savepoint` can put each row and
//! name back exactly as it was at the mark, including the half-done writes of a statement
//! that failed (which is why a failed block keeps its transaction when savepoints are open).
//! The WAL never hears of savepoints: the change buffer is cut back to the mark, or, if some
//! of the undone changes were already spilled into `TxnData` records, compensating changes
//! (each undone row's restored state) follow them, so redo ends with the same rows.
//! Deliberately not done: row and table locks taken after the savepoint are kept until the
//! transaction ends (PostgreSQL releases them), which can only make others wait longer; and
//! undoing DDL whose change records were already spilled is refused (0A000), because redo
//! cannot replay a catalog change backwards. With no savepoint open, none of this costs the
//! write path more than a check of an empty list.

use std::sync::Arc;

use base::Row;
use storage::{RowId, Table};
use wal::record;

use super::Transaction;
use crate::error::TxnError;

/// How far a transaction had come when a savepoint was set: the lengths its lists had.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    writes: usize,
    changes: usize,
    change_count: u64,
    spills: u64,
    undo: usize,
    staged: usize,
}

/// What a write after a savepoint replaced, so ROLLBACK TO can put it back.
#[derive(Debug)]
pub(super) enum Undo {
    /// The slot's pending version by this transaction before the write (`None`: there was
    /// none; `Some(None)`: a pending deletion).
    Row {
        table: Arc<Table>,
        rowid: RowId,
        prior: Option<Option<Row>>,
    },
    /// This transaction's staged meaning of a catalog name before the DDL (`None`: none).
    Catalog {
        name: String,
        prior: Option<Option<Arc<Table>>>,
    },
}

impl Transaction {
    /// Sets a savepoint (the session names it). Savepoints nest: the newest is last.
    pub fn savepoint(&mut self) {
        self.savepoints.push(Mark {
            writes: self.writes.len(),
            changes: self.changes.buf.len(),
            change_count: self.change_count,
            spills: self.spills,
            undo: self.undo.len(),
            staged: self.staged_names.len(),
        });
    }

    /// Open savepoints.
    pub fn savepoint_depth(&self) -> usize {
        self.savepoints.len()
    }

    /// RELEASE: forgets savepoint `depth` (0 = oldest) and every later one; their writes now
    /// belong to the enclosing level.
    pub fn release_savepoint(&mut self, depth: usize) {
        self.savepoints.truncate(depth);
        if self.savepoints.is_empty() {
            self.undo.clear();
        }
    }

    /// ROLLBACK TO: undoes everything written since savepoint `depth` (0 = oldest) was set,
    /// forgets the later savepoints and keeps this one. On an error nothing was undone.
    pub fn rollback_to_savepoint(&mut self, depth: usize) -> Result<(), TxnError> {
        let Some(mark) = self.savepoints.get(depth).copied() else {
            return Err(TxnError::Internal(format!("no savepoint at depth {depth}")));
        };
        let spilled_since = self.spills != mark.spills;
        if spilled_since
            && self.undo[mark.undo..]
                .iter()
                .any(|u| matches!(u, Undo::Catalog { .. }))
        {
            return Err(TxnError::SavepointAfterSpilledDdl);
        }
        let me = self.shared.clone();
        // Newest first, so each slot and name ends as the oldest entry says it was.
        let undone: Vec<Undo> = self.undo.drain(mark.undo..).rev().collect();
        // Rows to compensate, once each (a spilled savepoint can cover millions of writes).
        let mut rows: Vec<(Arc<Table>, RowId)> = Vec::new();
        let mut seen: std::collections::HashSet<(u32, RowId)> = std::collections::HashSet::new();
        for u in undone {
            match u {
                Undo::Row {
                    table,
                    rowid,
                    prior,
                } => {
                    let left = table
                        .rows
                        .with_slot(rowid, |s| s.restore_pending(&me, prior))
                        .flatten();
                    if let Some(row) = left {
                        table.unindex_removed(rowid, &[row]);
                    }
                    if spilled_since && seen.insert((table.oid(), rowid)) {
                        rows.push((table, rowid));
                    }
                }
                Undo::Catalog { name, prior } => {
                    self.mgr.catalog.restore_staged(&name, &me, prior);
                }
            }
        }
        self.writes.truncate(mark.writes);
        self.staged_names.truncate(mark.staged);
        self.savepoints.truncate(depth + 1);
        if !spilled_since {
            self.changes.buf.truncate(mark.changes);
            self.change_count = mark.change_count;
            return Ok(());
        }
        // Some undone changes are already in TxnData records: everything still buffered came
        // after the last spill, hence after the mark, and goes; each undone row's restored
        // state follows, so redo, applying the changes in order, ends where this slot is now.
        self.changes.buf.clear();
        self.change_count = 0;
        for (table, rowid) in rows.into_iter().rev() {
            let now = table
                .rows
                .with_slot(rowid, |s| {
                    s.latest_for_writer(&me).and_then(|v| v.data.clone())
                })
                .flatten();
            let oid = table.oid();
            match now {
                Some(row) => self.record_change(|e| record::encode_update(e, oid, rowid, &row))?,
                None => self.record_change(|e| record::encode_delete(e, oid, rowid))?,
            }
        }
        // The savepoint now stands at the compensated state.
        if let Some(m) = self.savepoints.last_mut() {
            m.changes = self.changes.buf.len();
            m.change_count = self.change_count;
            m.spills = self.spills;
        }
        Ok(())
    }
}
