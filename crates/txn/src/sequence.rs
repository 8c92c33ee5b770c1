//! nextval and setval: a sequence's values, logged ahead outside any transaction.
//!
//! Where it runs: in the calling session, from expression evaluation (`nextval('s')` in a
//! DEFAULT or a query). The decisions are `storage::sequence`'s; this file says how a new
//! horizon is made durable. For a committed sequence it is a `Sequence` WAL record, inserted
//! (not flushed: the commit that uses the value flushes past it) under the sequence's mutex,
//! with the row stored as committed at the record's LSN, so a checkpoint writes it and redo
//! replays it. For a sequence the caller's own transaction created and has not committed, no
//! record can be written (redo would not know the sequence yet, and a checkpoint taken before
//! the commit would not hold it); that transaction's commit record carries the sequence's row
//! instead (`Transaction::commit`, via `SequenceState::commit_row`).
//!
//! Failure: a failed WAL insert is the WAL's failure (the server stops); nothing was handed
//! out. Standbys refuse both calls (read-only).

use std::sync::Arc;

use base::Lsn;
use base::catalog::SequenceDef;
use storage::Table;
use storage::sequence::{SequenceError, SequenceState};
use wal::record::{RecordKind, SequenceRecord, WalRecord};

use crate::error::TxnError;
use crate::manager::TxnManager;

impl TxnManager {
    /// Whether `table` is the committed version of itself (else its creating transaction,
    /// the caller's, has not committed yet).
    fn is_committed(&self, table: &Arc<Table>) -> bool {
        self.catalog
            .by_oid(table.oid())
            .is_some_and(|t| Arc::ptr_eq(&t, table) || Arc::ptr_eq(&t.rows, &table.rows))
    }

    /// Logs `(last_value, is_called)` as `table`'s row, if it is committed; returns the end
    /// of the record written.
    fn log_sequence(
        &self,
        table: &Arc<Table>,
        last_value: i64,
        is_called: bool,
    ) -> Result<Option<Lsn>, TxnError> {
        if !self.is_committed(table) {
            return Ok(None);
        }
        let payload = WalRecord::Sequence(SequenceRecord {
            sequence: table.oid(),
            last_value,
            is_called,
        })
        .encode();
        let mut end = Lsn(0);
        self.log
            .insert(RecordKind::Sequence, 0, 0, &payload, &mut |_, e| end = e)?;
        table.store_sequence_row(end.0, last_value, is_called, self.snapshots.horizon());
        Ok(Some(end))
    }

    /// The parameters and state of sequence `table`, if this server may change it (`what`
    /// names the call in the read-only error).
    fn writable_sequence<'t>(
        &self,
        table: &'t Table,
        what: &'static str,
    ) -> Result<(&'t SequenceDef, &'t SequenceState), SequenceError<TxnError>> {
        let (Some(def), Some(state)) = (table.def.sequence.as_ref(), table.sequence.as_ref())
        else {
            return Err(SequenceError::Log(TxnError::Internal(format!(
                "\"{}\" is not a sequence",
                table.name()
            ))));
        };
        if self.is_read_only() {
            return Err(SequenceError::Log(TxnError::ReadOnly(what)));
        }
        Ok((def, state))
    }

    /// `nextval` of sequence `table`, and the end of the WAL record it wrote, if any: the
    /// caller's transaction must not end acknowledged before that is durable (PostgreSQL
    /// gives such a transaction an xid for the same reason), or a crash could hand the
    /// value out again after the client saw it.
    pub fn nextval(
        &self,
        table: &Arc<Table>,
    ) -> Result<(i64, Option<Lsn>), SequenceError<TxnError>> {
        let (def, state) = self.writable_sequence(table, "nextval()")?;
        let mut logged = None;
        let v = state.nextval(
            def,
            || table.stored_sequence(),
            |horizon| {
                logged = self.log_sequence(table, horizon, true)?;
                Ok(())
            },
        )?;
        Ok((v, logged))
    }

    /// Waits until WAL up to `lsn` (a sequence record of a transaction that wrote nothing
    /// else) is acknowledged at `level`, as a commit record there would be.
    pub async fn wait_logged(&self, lsn: Lsn, level: base::SyncCommitLevel) {
        if level == base::SyncCommitLevel::Off {
            return;
        }
        self.log.commit_inline(lsn, true);
        self.waiters.wait(&self.watermarks, level, lsn.0).await;
    }

    /// `setval` of sequence `table`; the end of its WAL record, as for `nextval`.
    pub fn setval(
        &self,
        table: &Arc<Table>,
        value: i64,
        is_called: bool,
    ) -> Result<Option<Lsn>, SequenceError<TxnError>> {
        let (def, state) = self.writable_sequence(table, "setval()")?;
        let mut logged = None;
        state.setval(def, value, is_called, |v, c| {
            logged = self.log_sequence(table, v, c)?;
            Ok(())
        })?;
        Ok(logged)
    }
}
