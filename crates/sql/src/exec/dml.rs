//! Running INSERT, UPDATE and DELETE.
//!
//! INSERT evaluates each row, checks NOT NULL, and inserts through the transaction (which
//! checks unique indexes and waits for conflicting uncommitted inserts). ON CONFLICT first
//! looks for a conflicting row through the arbiter indexes: a candidate whose newest version
//! is held by another transaction is locked (waiting for it to finish) and re-checked, as
//! PostgreSQL's speculative insertion waits; a committed conflicting row is locked and then
//! left alone (DO NOTHING) or updated (DO UPDATE, from the existing row and `excluded`).
//!
//! UPDATE/DELETE: collect, lock, re-check, write (see the module header of `exec`). SET
//! expressions all see the old row, as in SQL.
//!
//! Two transactions inserting the same new key with ON CONFLICT at the same time: the second
//! inserts speculatively (`Transaction::insert_or_conflict`), waits for the first, and when
//! the first commits it withdraws its row and takes the conflict path, as PostgreSQL's
//! speculative insertion does.

use std::sync::Arc;

use base::error::sqlstate;
use base::{PgError, Row, Value};
use storage::{RowId, Snapshot, Table};
use txn::Transaction;

use super::foreign_key::{self, FkChecks};
use super::select::{self, Emit, Input};
use super::{Check, check_constraints, check_not_null, for_each_match, project};
use crate::expr::{EvalCx, eval, eval_filter};
use crate::plan::{ConflictAction, DeletePlan, InsertPlan, InsertSource, OnConflict, UpdatePlan};

/// Finds a row conflicting with `row` in one of the arbiter indexes, locked.
async fn find_conflict(
    txn: &mut Transaction,
    table: &Arc<Table>,
    row: &Row,
    arbiters: &[usize],
) -> Result<Option<(RowId, Row)>, PgError> {
    let me = txn.shared().clone();
    for &i in arbiters {
        let Some(idx) = table.indexes.get(i) else {
            continue;
        };
        let Some(key) = idx.key_of(row) else {
            continue;
        };
        for cand in idx.lookup(&key) {
            let peek = table.rows.with_slot(cand, |s| {
                (
                    s.lock_holder_other_than(&me).is_some(),
                    s.latest_for_writer(&me).and_then(|v| v.data.clone()),
                )
            });
            let Some((busy, latest)) = peek else {
                continue;
            };
            let matches = latest
                .as_ref()
                .is_some_and(|r| idx.key_of(r).as_ref() == Some(&key));
            if !busy && !matches {
                continue;
            }
            if let Some(r) = txn.lock_row(table, cand).await.map_err(PgError::from)?
                && idx.key_of(&r).as_ref() == Some(&key)
            {
                return Ok(Some((cand, r)));
            }
        }
    }
    Ok(None)
}

struct RowWriter<'a, 'b> {
    table: &'a Arc<Table>,
    on_conflict: Option<&'a OnConflict>,
    returning: Option<&'a [crate::expr::Expr]>,
    checks: &'a [(String, crate::expr::Expr)],
    cx: &'a EvalCx<'b>,
    /// Foreign-key checks owed at the end of the statement.
    fk: FkChecks,
    /// Foreign keys referencing this table (ON CONFLICT DO UPDATE may change a key).
    refs: Vec<(Arc<Table>, usize)>,
    /// Rows this statement inserted or updated through ON CONFLICT (a second hit is an
    /// error, as in PostgreSQL).
    touched: Vec<RowId>,
}

impl RowWriter<'_, '_> {
    /// Inserts one row (or applies its ON CONFLICT action); returns whether a row counted.
    async fn write(
        &mut self,
        txn: &mut Transaction,
        values: Vec<Value>,
        emit: &mut Emit<'_>,
    ) -> Result<bool, PgError> {
        check_not_null(self.table, &values)?;
        check_constraints(self.table, self.checks, &values, self.cx)?;
        let row: Row = Arc::from(values);
        let Some(oc) = self.on_conflict else {
            txn.insert(self.table, row.clone())
                .await
                .map_err(PgError::from)?;
            self.fk.note_child(self.table, None, &row);
            if let Some(r) = self.returning {
                emit(project(r, &row, self.cx)?)?;
            }
            return Ok(true);
        };
        // Speculative insertion: look for a conflicting row; if there is none, insert in a
        // way that backs out if a concurrent transaction committed the same key meanwhile,
        // and look again. Each retry means another transaction committed a conflicting row
        // in between; the bound only guards against a bug looping forever.
        const SPECULATION_RETRIES_MAX: usize = 1000;
        for _ in 0..SPECULATION_RETRIES_MAX {
            if let Some((rowid, existing)) =
                find_conflict(txn, self.table, &row, &oc.arbiters).await?
            {
                return self
                    .conflict_action(txn, oc, rowid, &existing, &row, emit)
                    .await;
            }
            match txn
                .insert_or_conflict(self.table, row.clone(), &oc.arbiters)
                .await
                .map_err(PgError::from)?
            {
                txn::InsertOutcome::Inserted(rowid) => {
                    self.touched.push(rowid);
                    self.fk.note_child(self.table, None, &row);
                    if let Some(r) = self.returning {
                        emit(project(r, &row, self.cx)?)?;
                    }
                    return Ok(true);
                }
                txn::InsertOutcome::Conflict(_) => continue,
            }
        }
        Err(PgError::internal(
            "ON CONFLICT: conflicting row kept changing; giving up",
        ))
    }

    /// DO NOTHING, or DO UPDATE of the locked conflicting row `rowid` (`existing`).
    async fn conflict_action(
        &mut self,
        txn: &mut Transaction,
        oc: &OnConflict,
        rowid: RowId,
        existing: &Row,
        row: &Row,
        emit: &mut Emit<'_>,
    ) -> Result<bool, PgError> {
        let ConflictAction::Update { sets, filter } = &oc.action else {
            return Ok(false);
        };
        if self.touched.contains(&rowid) {
            return Err(PgError::new(
                sqlstate::CARDINALITY_VIOLATION,
                "ON CONFLICT DO UPDATE command cannot affect row a second time",
            )
            .with_hint(
                "Ensure that no rows proposed for insertion within the same command have duplicate constrained values.",
            ));
        }
        let combined: Vec<Value> = existing.iter().chain(row.iter()).cloned().collect();
        if let Some(f) = filter
            && !eval_filter(f, &combined, self.cx)?
        {
            return Ok(false);
        }
        let mut new = existing.to_vec();
        for (c, e) in sets {
            new[*c] = eval(e, &combined, self.cx)?;
        }
        check_not_null(self.table, &new)?;
        check_constraints(self.table, self.checks, &new, self.cx)?;
        let new: Row = Arc::from(new);
        txn.update(self.table, rowid, existing, new.clone())
            .await
            .map_err(PgError::from)?;
        self.touched.push(rowid);
        self.fk.note_child(self.table, Some(existing), &new);
        if !self.refs.is_empty() {
            self.fk
                .on_parent_change(txn, self.table, &self.refs, existing, Some(&new))
                .await?;
        }
        if let Some(r) = self.returning {
            emit(project(r, &new, self.cx)?)?;
        }
        Ok(true)
    }
}

/// Runs an INSERT into `table`; `source` is the table an INSERT ... SELECT reads (if any).
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    plan: &InsertPlan,
    txn: &mut Transaction,
    table: &Arc<Table>,
    tables: &super::Tables,
    snapshot: Snapshot,
    engine: &crate::engine::Engine,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    emit: &mut Emit<'_>,
) -> Result<u64, PgError> {
    let mut writer = RowWriter {
        table,
        on_conflict: plan.on_conflict.as_ref(),
        returning: plan.returning.as_deref(),
        checks: &plan.checks,
        cx,
        touched: Vec::new(),
        fk: FkChecks::default(),
        refs: if plan.on_conflict.is_some() {
            foreign_key::referencing(txn, table)
        } else {
            Vec::new()
        },
    };
    let mut count = 0u64;
    match &plan.source {
        InsertSource::Values(rows) => {
            for exprs in rows {
                let values = project(exprs, &[], cx)?;
                if writer.write(txn, values, emit).await? {
                    count += 1;
                }
            }
        }
        InsertSource::Query { query, map } => {
            // Read everything first: an INSERT ... SELECT from its own table must not see
            // the rows it inserts.
            let mut rows: Vec<Vec<Value>> = Vec::new();
            let input = Input {
                table: query.table.as_deref().and_then(|n| tables.get(n)),
                tables: Some(tables),
                snapshot,
                engine,
            };
            select::run(query, Some(&mut *txn), &input, cx, check, &mut |r| {
                rows.push(r);
                Ok(())
            })
            .await?;
            for (n, r) in rows.into_iter().enumerate() {
                check.every(n as u64 + 1)?;
                let values = project(map, &r, cx)?;
                if writer.write(txn, values, emit).await? {
                    count += 1;
                }
            }
        }
    }
    writer.fk.verify(txn).await?;
    Ok(count)
}

/// Collects the ids of rows matching `filter` through `access`, as of `snapshot`.
fn targets(
    table: &Table,
    access: &crate::plan::Access,
    filter: Option<&crate::expr::Expr>,
    snapshot: &Snapshot,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
) -> Result<Vec<RowId>, PgError> {
    let mut ids = Vec::new();
    for_each_match(table, access, filter, snapshot, cx, check, &mut |id, _| {
        ids.push(id);
        Ok(true)
    })?;
    Ok(ids)
}

#[allow(clippy::too_many_arguments)]
pub async fn update(
    plan: &UpdatePlan,
    txn: &mut Transaction,
    table: &Arc<Table>,
    snapshot: Snapshot,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    emit: &mut Emit<'_>,
) -> Result<u64, PgError> {
    let ids = targets(
        table,
        &plan.access,
        plan.filter.as_ref(),
        &snapshot,
        cx,
        check,
    )?;
    let refs = foreign_key::referencing(txn, table);
    let mut fk = FkChecks::default();
    let mut count = 0u64;
    for (n, id) in ids.into_iter().enumerate() {
        check.every(n as u64 + 1)?;
        let Some(old) = txn.lock_row(table, id).await.map_err(PgError::from)? else {
            continue;
        };
        if let Some(f) = &plan.filter
            && !eval_filter(f, &old, cx)?
        {
            continue;
        }
        let mut new = old.to_vec();
        for (c, e) in &plan.sets {
            new[*c] = eval(e, &old, cx)?;
        }
        check_not_null(table, &new)?;
        check_constraints(table, &plan.checks, &new, cx)?;
        let new: Row = Arc::from(new);
        txn.update(table, id, &old, new.clone())
            .await
            .map_err(PgError::from)?;
        fk.note_child(table, Some(&old), &new);
        if !refs.is_empty() {
            fk.on_parent_change(txn, table, &refs, &old, Some(&new))
                .await?;
        }
        count += 1;
        if let Some(r) = &plan.returning {
            emit(project(r, &new, cx)?)?;
        }
    }
    fk.verify(txn).await?;
    Ok(count)
}

pub async fn delete(
    plan: &DeletePlan,
    txn: &mut Transaction,
    table: &Arc<Table>,
    snapshot: Snapshot,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    emit: &mut Emit<'_>,
) -> Result<u64, PgError> {
    let ids = targets(
        table,
        &plan.access,
        plan.filter.as_ref(),
        &snapshot,
        cx,
        check,
    )?;
    let refs = foreign_key::referencing(txn, table);
    let mut fk = FkChecks::default();
    let mut count = 0u64;
    for (n, id) in ids.into_iter().enumerate() {
        check.every(n as u64 + 1)?;
        let Some(old) = txn.lock_row(table, id).await.map_err(PgError::from)? else {
            continue;
        };
        if let Some(f) = &plan.filter
            && !eval_filter(f, &old, cx)?
        {
            continue;
        }
        txn.delete(table, id).map_err(PgError::from)?;
        if !refs.is_empty() {
            fk.on_parent_change(txn, table, &refs, &old, None).await?;
        }
        count += 1;
        if let Some(r) = &plan.returning {
            emit(project(r, &old, cx)?)?;
        }
    }
    fk.verify(txn).await?;
    Ok(count)
}
