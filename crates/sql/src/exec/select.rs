//! Running a SELECT plan: input rows (no table, a view, or a table through its access path),
//! WHERE, aggregation, projection, ORDER BY, DISTINCT, OFFSET/LIMIT, FOR UPDATE.
//!
//! Rows stream straight to the caller when nothing needs the whole input first (no ORDER
//! BY, DISTINCT or aggregate); LIMIT then stops the scan early. Otherwise the projected rows
//! and their sort keys are collected in memory and sorted (stable, so equal keys keep scan
//! order). lockstep's data is in memory and a result is bounded by it, so there is no spill.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base::{PgError, Row, Value};
use storage::{RowId, Snapshot, Table};
use txn::Transaction;

use super::{Check, compare_keys, eval_count, for_each_match, project};
use crate::engine::Engine;
use crate::expr::agg::AggState;
use crate::expr::{EvalCx, eval, eval_filter};
use crate::plan::{SelectPlan, Source};
use crate::views;

/// Where result rows go.
pub type Emit<'a> = dyn FnMut(Vec<Value>) -> Result<(), PgError> + Send + 'a;

/// What the statement reads from.
pub struct Input<'a> {
    pub table: Option<&'a Arc<Table>>,
    pub snapshot: Snapshot,
    pub engine: &'a Engine,
}

/// Runs `plan`, passing result rows to `emit`; returns the number of rows.
pub async fn run(
    plan: &SelectPlan,
    txn: Option<&mut Transaction>,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    emit: &mut Emit<'_>,
) -> Result<u64, PgError> {
    let limit = eval_count(plan.limit.as_ref(), cx, true)?;
    let offset = eval_count(plan.offset.as_ref(), cx, false)?.unwrap_or(0);
    if limit == Some(0) {
        return Ok(0);
    }
    let streaming = plan.agg.is_none() && plan.order.is_empty() && !plan.distinct;
    let mut out = Output {
        emit,
        offset,
        limit,
        emitted: 0,
        skipped: 0,
    };
    let mut collected: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();

    if plan.for_update
        && let (Some(table), Some(txn), Source::Table(access)) = (input.table, txn, &plan.source)
    {
        let mut ids: Vec<RowId> = Vec::new();
        for_each_match(
            table,
            access,
            plan.filter.as_ref(),
            &input.snapshot,
            cx,
            check,
            &mut |id, _| {
                ids.push(id);
                Ok(true)
            },
        )?;
        for (n, id) in ids.into_iter().enumerate() {
            check.every(n as u64 + 1)?;
            let Some(row) = txn.lock_row(table, id).await.map_err(PgError::from)? else {
                continue;
            };
            if let Some(f) = &plan.filter
                && !eval_filter(f, &row, cx)?
            {
                continue;
            }
            let projected = project(&plan.projection, &row, cx)?;
            if streaming {
                if !out.push(projected)? {
                    break;
                }
            } else {
                let keys = sort_keys(plan, &row, cx)?;
                collected.push((keys, projected));
            }
        }
        if streaming {
            return Ok(out.emitted);
        }
        return finish(plan, collected, &mut out);
    }

    if let Some(agg) = &plan.agg {
        let mut groups: BTreeMap<Vec<Value>, Vec<AggState>> = BTreeMap::new();
        let new_states = || agg.aggs.iter().map(AggState::new).collect::<Vec<_>>();
        let mut visit = |row: &[Value]| -> Result<bool, PgError> {
            let mut key = Vec::with_capacity(agg.groups.len());
            for g in &agg.groups {
                key.push(eval(g, row, cx)?);
            }
            let states = groups.entry(key).or_insert_with(new_states);
            for (state, call) in states.iter_mut().zip(&agg.aggs) {
                let v = match &call.arg {
                    Some(e) => eval(e, row, cx)?,
                    None => Value::Null,
                };
                state.update(call.func, v)?;
            }
            Ok(true)
        };
        visit_input(plan, input, cx, check, &mut visit)?;
        if groups.is_empty() && agg.groups.is_empty() {
            groups.insert(Vec::new(), new_states());
        }
        for (key, states) in groups {
            let mut row = key;
            for s in states {
                row.push(s.finish()?);
            }
            if let Some(h) = &agg.having
                && !eval_filter(h, &row, cx)?
            {
                continue;
            }
            let projected = project(&plan.projection, &row, cx)?;
            let keys = sort_keys(plan, &row, cx)?;
            collected.push((keys, projected));
        }
        return finish(plan, collected, &mut out);
    }

    if streaming {
        let mut visit = |row: &[Value]| -> Result<bool, PgError> {
            let projected = project(&plan.projection, row, cx)?;
            out.push(projected)
        };
        visit_input(plan, input, cx, check, &mut visit)?;
        return Ok(out.emitted);
    }
    let mut visit = |row: &[Value]| -> Result<bool, PgError> {
        let projected = project(&plan.projection, row, cx)?;
        let keys = sort_keys(plan, row, cx)?;
        collected.push((keys, projected));
        Ok(true)
    };
    visit_input(plan, input, cx, check, &mut visit)?;
    finish(plan, collected, &mut out)
}

fn sort_keys(plan: &SelectPlan, row: &[Value], cx: &EvalCx<'_>) -> Result<Vec<Value>, PgError> {
    let mut keys = Vec::with_capacity(plan.order.len());
    for k in &plan.order {
        keys.push(eval(&k.expr, row, cx)?);
    }
    Ok(keys)
}

/// Feeds every input row that passes WHERE to `visit` until it returns `false`.
fn visit_input(
    plan: &SelectPlan,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    visit: &mut dyn FnMut(&[Value]) -> Result<bool, PgError>,
) -> Result<(), PgError> {
    let pass = |row: &[Value]| -> Result<bool, PgError> {
        match &plan.filter {
            Some(f) => eval_filter(f, row, cx),
            None => Ok(true),
        }
    };
    match &plan.source {
        Source::None => {
            if pass(&[])? {
                visit(&[])?;
            }
            Ok(())
        }
        Source::CreateSlot(args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, &[], cx)?);
            }
            let row = match crate::expr::func::create_slot(cx, &vals)? {
                Some((name, lsn)) => vec![
                    Value::Text(name.into()),
                    lsn.map_or(Value::Null, |l| Value::PgLsn(l.0)),
                ],
                // A NULL argument: the strict function returns NULL, a row of NULLs here.
                None => vec![Value::Null, Value::Null],
            };
            if pass(&row)? {
                visit(&row)?;
            }
            Ok(())
        }
        Source::View(v) => {
            for row in views::rows(*v, cx.env) {
                if pass(&row)? && !visit(&row)? {
                    break;
                }
            }
            Ok(())
        }
        Source::Table(access) => {
            let Some(table) = input.table else {
                return Err(PgError::internal("table source without a table"));
            };
            for_each_match(
                table,
                access,
                plan.filter.as_ref(),
                &input.snapshot,
                cx,
                check,
                &mut |_, row: &Row| visit(row),
            )
        }
    }
}

struct Output<'a, 'b> {
    emit: &'a mut Emit<'b>,
    offset: u64,
    limit: Option<u64>,
    emitted: u64,
    skipped: u64,
}

impl Output<'_, '_> {
    /// Sends one row (after OFFSET); returns whether more rows are wanted.
    fn push(&mut self, row: Vec<Value>) -> Result<bool, PgError> {
        if self.skipped < self.offset {
            self.skipped += 1;
            return Ok(true);
        }
        (self.emit)(row)?;
        self.emitted += 1;
        Ok(self.limit.is_none_or(|l| self.emitted < l))
    }
}

/// Sorts, removes duplicates, applies OFFSET/LIMIT and emits collected rows.
fn finish(
    plan: &SelectPlan,
    mut rows: Vec<(Vec<Value>, Vec<Value>)>,
    out: &mut Output<'_, '_>,
) -> Result<u64, PgError> {
    if !plan.order.is_empty() {
        rows.sort_by(|a, b| compare_keys(&a.0, &b.0, &plan.order));
    }
    let mut seen: BTreeSet<Vec<Value>> = BTreeSet::new();
    for (_, row) in rows {
        if plan.distinct && !seen.insert(row.clone()) {
            continue;
        }
        if !out.push(row)? {
            break;
        }
    }
    Ok(out.emitted)
}
