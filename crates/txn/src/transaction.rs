//! One transaction: its reads' snapshots, its writes, its locks, and its commit.
//!
//! Where it runs: inside one session's task. All waits (row locks, DDL locks, commit
//! acknowledgement) are asynchronous and interruptible (`Interrupt`).
//!
//! Writes: every insert, update or delete places a pending version in the row's slot
//! (storage::version) and appends the change, encoded, to the transaction's change buffer.
//! Commit puts the buffer into one `Commit` WAL record (DESIGN.md: one redo record per
//! transaction); a transaction whose buffer outgrows `TXN_DATA_CHUNK_BYTES` spills earlier
//! changes into `TxnData` records first.
//!
//! Locks: a row lock is taken before a row is changed and held until the commit is
//! acknowledged or the transaction rolls back. DDL takes the global DDL lock (one DDL
//! transaction at a time, so catalog names cannot race) and the table's DDL lock, and waits for
//! every other transaction that used the table to finish; transactions that want to use a
//! table under DDL wait for the DDL transaction. Every wait goes through deadlock detection.
//!
//! Commit: the commit record is inserted (its LSN is published to readers inside the WAL
//! insert lock); the session waits until the watermark of its `synchronous_commit` level
//! covers that LSN; only then are versions finalized, locks released, and the client told.
//! So no other session can read the commit, or build on it, before it is acknowledgeable.
//! If a session is interrupted while waiting for a *remote* level, the wait is detached: the
//! commit stays durable locally, invisible to others and locked until confirmed, and the
//! session gets a warning instead of a COMMIT it cannot yet have (DESIGN.md decision 5).
//! Waits for the local flush are not interruptible (they take well under a millisecond, and a
//! commit record in the WAL buffer cannot be taken back).
//!
//! Rollback removes the pending versions and index entries and releases the locks; nothing of
//! the transaction remains (a spilled transaction also writes an `Abort` record).
//!
//! Savepoints are `savepoint.rs`; DDL (catalog changes and their locks) is `ddl.rs`.

mod ddl;
mod savepoint;

use std::sync::Arc;

use base::catalog::Oid;
use base::codec::Encoder;
use base::{DataType, Lsn, Row, SyncCommitLevel};
use smallvec::SmallVec;

use storage::{LockAttempt, RowId, Snapshot, SnapshotSlot, Table, TableLocks, TxnShared};
use wal::record::{self, RecordKind};

use crate::error::TxnError;
use crate::interrupt::Interrupt;
use crate::manager::{TxnManager, TxnSettings};
use savepoint::{Mark, Undo};

/// How a commit ended for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Nothing was written: no WAL record, nothing to wait for.
    ReadOnly,
    /// Committed and acknowledged at the requested level.
    Committed { lsn: Lsn },
    /// Committed and flushed locally, but the wait for the standbys' confirmation was
    /// interrupted. The commit stays invisible to other sessions until confirmed.
    Detached { lsn: Lsn },
}

/// What `insert_or_conflict` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted(RowId),
    /// A committed row (or this transaction's own) holds the key in an arbiter index; nothing
    /// was inserted.
    Conflict(RowId),
}

/// A new index to create.
#[derive(Clone, Debug)]
pub struct NewIndex {
    pub name: String,
    pub columns: Vec<u16>,
    pub unique: bool,
    pub primary: bool,
}

#[derive(Debug)]
pub struct Transaction {
    mgr: Arc<TxnManager>,
    shared: Arc<TxnShared>,
    snapshot_slot: Arc<SnapshotSlot>,
    interrupt: Arc<Interrupt>,
    pub settings: TxnSettings,
    snapshot: Snapshot,
    /// Rows this transaction wrote (once each), for finalize or rollback.
    writes: Vec<(Arc<Table>, RowId)>,
    /// Changes not yet in the WAL, encoded.
    changes: Encoder,
    change_count: u64,
    /// Catalog names this transaction staged new meanings for.
    staged_names: Vec<String>,
    /// Tables this transaction registered as a user of.
    touched: SmallVec<[(Oid, Arc<TableLocks>); 8]>,
    /// Tables whose DDL lock this transaction holds.
    ddl_locked: Vec<Arc<TableLocks>>,
    holds_global_ddl: bool,
    /// Counted in the manager's `writers_in_flight` (from the first change until the commit
    /// record is inserted or the transaction rolls back).
    counted_as_writer: bool,
    done: bool,
    /// Open savepoints, oldest first (the session keeps their names).
    savepoints: Vec<Mark>,
    /// Undo entries of writes since the oldest open savepoint (empty when none is open).
    undo: Vec<Undo>,
    /// `TxnData` records written so far (a transaction that spilled needs an `Abort` record
    /// if it rolls back).
    spills: u64,
}

impl Transaction {
    pub fn begin(
        mgr: &Arc<TxnManager>,
        snapshot_slot: Arc<SnapshotSlot>,
        interrupt: Arc<Interrupt>,
        settings: TxnSettings,
    ) -> Transaction {
        let xid = mgr.allocate_xid();
        let snapshot = snapshot_slot.take(&mgr.watermarks, xid);
        Transaction {
            mgr: mgr.clone(),
            shared: TxnShared::new(xid),
            snapshot_slot,
            interrupt,
            settings,
            snapshot,
            writes: Vec::new(),
            changes: Encoder::new(),
            change_count: 0,
            staged_names: Vec::new(),
            touched: SmallVec::new(),
            ddl_locked: Vec::new(),
            holds_global_ddl: false,
            counted_as_writer: false,
            done: false,
            savepoints: Vec::new(),
            undo: Vec::new(),
            spills: 0,
        }
    }

    pub fn xid(&self) -> u64 {
        self.shared.xid
    }

    pub fn shared(&self) -> &Arc<TxnShared> {
        &self.shared
    }

    pub fn manager(&self) -> &Arc<TxnManager> {
        &self.mgr
    }

    /// Whether the transaction has written anything (rows or DDL).
    pub fn has_writes(&self) -> bool {
        self.change_count > 0 || self.spills > 0
    }

    /// Starts a statement: takes a fresh snapshot (READ COMMITTED) and returns it.
    pub fn new_statement(&mut self) -> Snapshot {
        self.snapshot = self
            .snapshot_slot
            .take(&self.mgr.watermarks, self.shared.xid);
        self.snapshot
    }

    /// The current statement's snapshot (refreshed by `open_table` after waiting for DDL).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Ends a statement: its snapshot no longer holds back version pruning.
    pub fn end_statement(&self) {
        self.snapshot_slot.release();
    }

    fn check_writable(&self, what: &'static str) -> Result<(), TxnError> {
        if self.mgr.is_read_only() {
            return Err(TxnError::ReadOnly(what));
        }
        Ok(())
    }

    async fn wait_for(&self, holder: &Arc<TxnShared>, what: &str) -> Result<(), TxnError> {
        self.mgr
            .wait_for_txn(&self.shared, holder, &self.settings, &self.interrupt, what)
            .await
    }

    /// Resolves a table name for this statement and registers this transaction as its user.
    /// If another transaction is running DDL on it, waits for that transaction, then takes a
    /// fresh statement snapshot and resolves again. `None`: no such table.
    pub async fn open_table(&mut self, name: &str) -> Result<Option<Arc<Table>>, TxnError> {
        loop {
            let Some(table) = self.mgr.catalog.lookup(name, &self.snapshot) else {
                return Ok(None);
            };
            let oid = table.oid();
            if self.touched.iter().any(|(o, _)| *o == oid) {
                return Ok(Some(table));
            }
            // Register first, then check for DDL: a DDL transaction sets its owner first and
            // then waits for users, so one of the two always sees the other.
            {
                let mut users = table.locks.users.lock();
                // Keep the list short without a pass at every transaction end.
                if users.len() >= 16 {
                    users.retain(|u| !u.is_finished());
                }
                users.push(self.shared.clone());
            }
            let owner = table.locks.ddl_owner.lock().clone();
            match owner {
                Some(o) if !Arc::ptr_eq(&o, &self.shared) && !o.is_finished() => {
                    table
                        .locks
                        .users
                        .lock()
                        .retain(|u| !Arc::ptr_eq(u, &self.shared));
                    self.wait_for(&o, &format!("relation {}", table.name()))
                        .await?;
                    self.new_statement();
                }
                _ => {
                    self.touched.push((oid, table.locks.clone()));
                    return Ok(Some(table));
                }
            }
        }
    }

    /// The tables this statement can see (for catalog queries).
    pub fn tables(&self) -> Vec<Arc<Table>> {
        self.mgr.catalog.tables(&self.snapshot)
    }

    // ----- row writes -----

    fn record_change(&mut self, encode: impl FnOnce(&mut Encoder)) -> Result<(), TxnError> {
        if !self.counted_as_writer {
            self.counted_as_writer = true;
            self.mgr
                .writers_in_flight
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        encode(&mut self.changes);
        self.change_count += 1;
        if self.changes.buf.len() >= record::TXN_DATA_CHUNK_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the buffered changes as a `TxnData` record.
    fn spill(&mut self) -> Result<(), TxnError> {
        let mut payload = Encoder::with_capacity(self.changes.buf.len() + 10);
        payload.varint(self.change_count);
        payload.buf.extend_from_slice(&self.changes.buf);
        let end = self.mgr.log.insert(
            RecordKind::TxnData,
            0,
            self.shared.xid,
            &payload.buf,
            &mut |_, _| {},
        )?;
        let start = Lsn(end.0.saturating_sub(payload.buf.len() as u64));
        self.mgr.note_spill(self.shared.xid, start.min(end));
        self.spills += 1;
        self.changes.buf.clear();
        self.change_count = 0;
        Ok(())
    }

    /// Inserts `row` (already complete and type-checked) into `table`.
    pub async fn insert(&mut self, table: &Arc<Table>, row: Row) -> Result<RowId, TxnError> {
        match self.insert_inner(table, row, &[]).await? {
            InsertOutcome::Inserted(rowid) => Ok(rowid),
            // With no arbiter indexes every conflict is an error, raised inside.
            InsertOutcome::Conflict(rowid) => Err(TxnError::Internal(format!(
                "unexpected conflict on row {rowid}"
            ))),
        }
    }

    /// Speculative insertion for `INSERT ... ON CONFLICT` (PostgreSQL's speculative insert):
    /// like `insert`, but a unique conflict in one of `arbiters` (positions in
    /// `table.indexes`) withdraws the half-inserted row and reports the conflicting row
    /// instead of failing. A conflicting row of an unfinished transaction is waited for
    /// first, so the caller sees only committed rows (or its own).
    pub async fn insert_or_conflict(
        &mut self,
        table: &Arc<Table>,
        row: Row,
        arbiters: &[usize],
    ) -> Result<InsertOutcome, TxnError> {
        self.insert_inner(table, row, arbiters).await
    }

    async fn insert_inner(
        &mut self,
        table: &Arc<Table>,
        row: Row,
        arbiters: &[usize],
    ) -> Result<InsertOutcome, TxnError> {
        self.check_writable("INSERT")?;
        let rowid = table.rows.allocate();
        let me = self.shared.clone();
        table.rows.with_slot(rowid, |s| {
            s.lock_owner = Some(me.clone());
            s.write_pending(&me, Some(row.clone()));
        });
        if !self.savepoints.is_empty() {
            self.undo.push(Undo::Row {
                table: table.clone(),
                rowid,
                prior: None,
            });
        }
        self.writes.push((table.clone(), rowid));
        if let Some(conflict) = self
            .claim_index_keys(table, rowid, &row, None, arbiters)
            .await?
        {
            // Withdraw: the pending version and the index entries claimed so far go; the
            // row id stays unused (row ids are never reused).
            let removed = table.rows.with_slot(rowid, |s| s.rollback(&me)).flatten();
            if let Some(r) = removed {
                table.unindex_removed(rowid, &[r]);
            }
            if self
                .writes
                .last()
                .is_some_and(|(t, id)| Arc::ptr_eq(t, table) && *id == rowid)
            {
                self.writes.pop();
            }
            return Ok(InsertOutcome::Conflict(conflict));
        }
        let oid = table.oid();
        self.record_change(|e| record::encode_insert(e, oid, rowid, &row))?;
        Ok(InsertOutcome::Inserted(rowid))
    }

    /// Takes the row lock on `rowid`, waiting for another holder to finish. Returns the row's
    /// current state for a writer: the newest committed version or this transaction's own;
    /// `None` if the row is deleted or gone.
    pub async fn lock_row(
        &mut self,
        table: &Arc<Table>,
        rowid: RowId,
    ) -> Result<Option<Row>, TxnError> {
        loop {
            let me = self.shared.clone();
            let attempt = table.rows.with_slot(rowid, |s| match s.try_lock(&me) {
                LockAttempt::Acquired => Ok(s.latest_for_writer(&me).and_then(|v| v.data.clone())),
                LockAttempt::Busy(owner) => Err(owner),
            });
            match attempt {
                None => return Ok(None),
                Some(Ok(row)) => return Ok(row),
                Some(Err(owner)) => {
                    self.wait_for(&owner, &format!("tuple in relation {}", table.name()))
                        .await?;
                }
            }
        }
    }

    /// Replaces the row at `rowid` (locked by `lock_row`) with `new`. `old` is the row
    /// `lock_row` returned, used to find which index keys change.
    pub async fn update(
        &mut self,
        table: &Arc<Table>,
        rowid: RowId,
        old: &Row,
        new: Row,
    ) -> Result<(), TxnError> {
        self.check_writable("UPDATE")?;
        let first = self.write_slot(table, rowid, Some(new.clone()));
        if first {
            self.writes.push((table.clone(), rowid));
        }
        self.claim_index_keys(table, rowid, &new, Some(old), &[])
            .await?;
        let oid = table.oid();
        self.record_change(|e| record::encode_update(e, oid, rowid, &new))
    }

    /// Deletes the row at `rowid` (locked by `lock_row`).
    pub fn delete(&mut self, table: &Arc<Table>, rowid: RowId) -> Result<(), TxnError> {
        self.check_writable("DELETE")?;
        let first = self.write_slot(table, rowid, None);
        if first {
            self.writes.push((table.clone(), rowid));
        }
        let oid = table.oid();
        self.record_change(|e| record::encode_delete(e, oid, rowid))
    }

    /// Places `data` as this transaction's pending version of a locked row (recording what it
    /// replaces while a savepoint is open). Returns whether it is the first write of the row.
    fn write_slot(&mut self, table: &Arc<Table>, rowid: RowId, data: Option<Row>) -> bool {
        let me = &self.shared;
        let recording = !self.savepoints.is_empty();
        let (first, prior) = table
            .rows
            .with_slot(rowid, |s| {
                let prior = if recording { s.own_pending(me) } else { None };
                (s.write_pending(me, data), prior)
            })
            .unwrap_or((false, None));
        if recording {
            self.undo.push(Undo::Row {
                table: table.clone(),
                rowid,
                prior,
            });
        }
        first
    }

    /// Adds index entries for `row` at `rowid`, checking unique indexes. A conflicting row
    /// held by an unfinished transaction is waited for, then checked again; a conflicting row
    /// that is committed (or this transaction's own) is a unique violation — or, in an index
    /// listed in `arbiters`, returned as `Some(conflicting row)`.
    async fn claim_index_keys(
        &mut self,
        table: &Arc<Table>,
        rowid: RowId,
        row: &Row,
        old: Option<&Row>,
        arbiters: &[usize],
    ) -> Result<Option<RowId>, TxnError> {
        for (position, idx) in table.indexes.iter().enumerate() {
            let Some(key) = idx.key_of(row) else { continue };
            if old.is_some_and(|o| idx.key_of(o).as_ref() == Some(&key)) {
                continue;
            }
            if !idx.def.unique {
                idx.insert(key, rowid);
                continue;
            }
            loop {
                let me = &self.shared;
                let verdict = idx.with_write_lock(|w| {
                    for cand in w.lookup(&key) {
                        if cand == rowid {
                            continue;
                        }
                        let state = table.rows.with_slot(cand, |s| {
                            if let Some(holder) = s.lock_holder_other_than(me) {
                                // Its pending or unacknowledged version might carry the key:
                                // wait and look again.
                                let carries = s.versions.iter().any(|v| {
                                    v.data
                                        .as_ref()
                                        .is_some_and(|d| idx.key_of(d).as_ref() == Some(&key))
                                });
                                return if carries { Some(Err(holder)) } else { None };
                            }
                            let live = s
                                .latest_for_writer(me)
                                .and_then(|v| v.data.as_ref())
                                .is_some_and(|d| idx.key_of(d).as_ref() == Some(&key));
                            live.then_some(Ok(cand))
                        });
                        if let Some(Some(result)) = state {
                            return Some(result);
                        }
                    }
                    w.insert(key.clone(), rowid);
                    None
                });
                match verdict {
                    None => break,
                    Some(Ok(conflicting)) if arbiters.contains(&position) => {
                        return Ok(Some(conflicting));
                    }
                    Some(Ok(_)) => {
                        return Err(TxnError::UniqueViolation {
                            table: table.name().to_owned(),
                            constraint: idx.def.name.clone(),
                            detail: format!(
                                "{} already exists.",
                                table.def.show_key(
                                    &idx.def.columns,
                                    idx.def.columns.iter().map(|&c| &row[usize::from(c)])
                                )
                            ),
                        });
                    }
                    Some(Err(holder)) => {
                        self.wait_for(&holder, &format!("tuple in relation {}", table.name()))
                            .await?;
                    }
                }
            }
        }
        Ok(None)
    }

    // ----- end of transaction -----

    /// Commits at `level` and waits for the acknowledgement that level requires.
    pub async fn commit(mut self, level: SyncCommitLevel) -> Result<CommitOutcome, TxnError> {
        if !self.has_writes() {
            self.done = true;
            self.release(None);
            return Ok(CommitOutcome::ReadOnly);
        }
        self.log_created_sequences()?;
        let mut payload = Encoder::with_capacity(self.changes.buf.len() + 24);
        record::encode_commit_prefix(&mut payload, now_pg_micros(), level);
        payload.varint(self.change_count);
        payload.buf.extend_from_slice(&self.changes.buf);
        let flags = if level == SyncCommitLevel::RemoteApply {
            record::FLAG_APPLY_FEEDBACK
        } else {
            0
        };
        let shared = self.shared.clone();
        let end = self
            .mgr
            .log
            .insert_commit(flags, shared.xid, &payload.buf, &mut |_, end| {
                shared.set_committed(end.0, level)
            })?;
        self.done = true;
        self.stop_counting_as_writer();
        // Write on this thread; flush here too if no other commit is waiting or about to come
        // (a lone commit then has no thread hand-off at all; under load the flusher thread
        // group-commits and session threads stay free for sessions).
        let flush_here = level >= SyncCommitLevel::Local
            && self
                .mgr
                .writers_in_flight
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
            && self.mgr.waiters.is_idle();
        self.mgr.log.commit_inline(end, flush_here);
        self.mgr
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mgr = self.mgr.clone();
        if level <= SyncCommitLevel::Local {
            mgr.waiters.wait(&mgr.watermarks, level, end.0).await;
            self.release(Some((end, level)));
            return Ok(CommitOutcome::Committed { lsn: end });
        }
        let interrupt = self.interrupt.clone();
        tokio::select! {
            _ = mgr.waiters.wait(&mgr.watermarks, level, end.0) => {
                self.release(Some((end, level)));
                Ok(CommitOutcome::Committed { lsn: end })
            }
            _ = interrupt.wait() => {
                // Keep the commit locked and invisible until the standbys confirm it.
                tokio::spawn(async move {
                    let mgr = self.mgr.clone();
                    mgr.waiters.wait(&mgr.watermarks, level, end.0).await;
                    self.release(Some((end, level)));
                });
                Ok(CommitOutcome::Detached { lsn: end })
            }
        }
    }

    /// Puts the row of every sequence this transaction created into its commit: the values
    /// handed out before the commit were logged nowhere else (see `crate::sequence`).
    fn log_created_sequences(&mut self) -> Result<(), TxnError> {
        for i in 0..self.staged_names.len() {
            let Some(table) = self
                .mgr
                .catalog
                .latest(&self.staged_names[i], Some(&self.shared))
            else {
                continue;
            };
            let (Some(def), Some(state)) = (table.def.sequence.as_ref(), table.sequence.as_ref())
            else {
                continue;
            };
            if self.mgr.catalog.by_oid(table.oid()).is_some() {
                // Created by an earlier transaction: its values were logged by records.
                continue;
            }
            let (last_value, is_called) = state.commit_row(def, || table.stored_sequence());
            let row = Table::sequence_row(last_value, is_called);
            if self.write_slot(&table, 0, Some(row.clone())) {
                self.writes.push((table.clone(), 0));
            }
            let oid = table.oid();
            self.record_change(|e| record::encode_update(e, oid, 0, &row))?;
        }
        Ok(())
    }

    /// Rolls back: nothing the transaction did remains.
    pub fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn stop_counting_as_writer(&mut self) {
        if self.counted_as_writer {
            self.counted_as_writer = false;
            self.mgr
                .writers_in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn rollback_in_place(&mut self) {
        self.stop_counting_as_writer();
        if self.done {
            return;
        }
        self.done = true;
        if self.spills > 0 {
            // Tell redo to drop the spilled changes. If the WAL is unavailable the server is
            // stopping anyway, and redo discards unfinished transactions at the end of WAL.
            let _ = self
                .mgr
                .log
                .insert(RecordKind::Abort, 0, self.shared.xid, &[], &mut |_, _| {});
        }
        self.shared.set_aborted();
        self.mgr
            .rollbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.release(None);
    }

    /// Ends the transaction: finalizes (after commit) or removes (after abort) its versions
    /// and catalog entries, releases its locks and wakes its waiters.
    fn release(&mut self, committed: Option<(Lsn, SyncCommitLevel)>) {
        let me = self.shared.clone();
        let horizon = self.mgr.snapshots.horizon();
        match committed {
            Some((lsn, level)) => {
                for (table, rowid) in &self.writes {
                    let pruned = table
                        .rows
                        .with_slot(*rowid, |s| s.finalize(&me, lsn.0, level as u8, horizon))
                        .unwrap_or_default();
                    if !pruned.is_empty() {
                        table.unindex_removed(*rowid, &pruned);
                    }
                }
                if !self.staged_names.is_empty() {
                    self.mgr
                        .catalog
                        .finalize(&me, &self.staged_names, lsn.0, level as u8, horizon);
                }
            }
            None => {
                for (table, rowid) in self.writes.iter().rev() {
                    let removed = table.rows.with_slot(*rowid, |s| s.rollback(&me)).flatten();
                    if let Some(row) = removed {
                        table.unindex_removed(*rowid, &[row]);
                    }
                }
                if !self.staged_names.is_empty() {
                    self.mgr.catalog.rollback(&me, &self.staged_names);
                }
            }
        }
        for locks in &self.ddl_locked {
            let mut owner = locks.ddl_owner.lock();
            if owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, &me)) {
                *owner = None;
            }
        }
        if self.holds_global_ddl {
            let mut owner = self.mgr.ddl_owner.lock();
            if owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, &me)) {
                *owner = None;
            }
        }
        if self.spills > 0 {
            self.mgr.forget_spill(me.xid);
        }
        self.writes.clear();
        self.snapshot_slot.release();
        me.finish();
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.rollback_in_place();
    }
}

/// Now, in microseconds since 2000-01-01 UTC.
pub fn now_pg_micros() -> i64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    since_unix - base::value::POSTGRES_EPOCH_UNIX_MICROS
}

/// The column types of a table, for callers coercing values before insert.
pub fn column_types(table: &Table) -> Vec<DataType> {
    table.def.columns.iter().map(|c| c.data_type).collect()
}
