//! Running a SELECT plan: input rows (no table, a view, a table through its access path, or
//! FROM items joined), WHERE, aggregation, projection, ORDER BY, DISTINCT, OFFSET/LIMIT,
//! FOR UPDATE.
//!
//! Joins run left to right over materialised rows: each item's rows are read whole (from
//! the statement's snapshot), then every row of the left side is paired with the item's rows
//! that pass the condition — found through a hash of the item's rows on the condition's
//! equal-column pairs when it has any, else by trying each. LEFT/FULL add the left row with
//! NULLs when nothing matched, RIGHT/FULL the item's unmatched rows with NULLs on the left.
//! WHERE applies to the joined rows. Memory is the joined result, like a sort's.
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

use super::{Check, Tables, compare_keys, eval_count, for_each_match, project};
use crate::engine::Engine;
use crate::expr::agg::AggState;
use crate::expr::{EvalCx, eval, eval_filter};
use crate::plan::{Access, JoinKind, JoinPlan, JoinRel, SelectPlan, SetOp, SetOpPlan, Source};
use crate::views;

/// Where result rows go.
pub type Emit<'a> = dyn FnMut(Vec<Value>) -> Result<(), PgError> + Send + 'a;

/// What the statement reads from.
pub struct Input<'a> {
    pub table: Option<&'a Arc<Table>>,
    /// Every table the statement opened (joins find theirs here).
    pub tables: Option<&'a Tables>,
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
    if plan.for_update
        && let (Some(table), Some(txn), Source::Table(access)) = (input.table, txn, &plan.source)
    {
        let Some(mut out) = output(plan, cx, None, emit)? else {
            return Ok(0);
        };
        let streaming = plan.agg.is_none() && plan.order.is_empty() && !plan.distinct;
        let mut collected: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
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
    run_rows(plan, input, cx, check, None, emit)
}

/// Runs `plan` without FOR UPDATE (what a subquery is): synchronous, and stopping after
/// `cap` rows when given (EXISTS needs one).
pub fn run_rows(
    plan: &SelectPlan,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    cap: Option<u64>,
    emit: &mut Emit<'_>,
) -> Result<u64, PgError> {
    let Some(mut out) = output(plan, cx, cap, emit)? else {
        return Ok(0);
    };
    let streaming = plan.agg.is_none() && plan.order.is_empty() && !plan.distinct;
    let mut collected: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();

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
        Source::SetOp(s) => {
            for row in set_op_rows(s, input, cx, check)? {
                if pass(&row)? && !visit(&row)? {
                    break;
                }
            }
            Ok(())
        }
        Source::Join(j) => {
            for row in join_rows(j, input, cx, check)? {
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

/// The rows of `left UNION/INTERSECT/EXCEPT [ALL] right` (rows compare as in DISTINCT:
/// NULLs equal). Without ALL the result has no duplicates; with it, INTERSECT keeps a row as
/// often as both sides have it, EXCEPT as often as the left has it more than the right.
fn set_op_rows(
    s: &SetOpPlan,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
) -> Result<Vec<Vec<Value>>, PgError> {
    let side = |plan: &SelectPlan| -> Result<Vec<Vec<Value>>, PgError> {
        let side_input = Input {
            table: plan
                .table
                .as_deref()
                .and_then(|n| input.tables.and_then(|t| t.get(n))),
            tables: input.tables,
            snapshot: input.snapshot,
            engine: input.engine,
        };
        let mut rows = Vec::new();
        run_rows(plan, &side_input, cx, check, None, &mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    };
    let left = side(&s.left)?;
    let right = side(&s.right)?;
    let mut out = Vec::new();
    match (s.op, s.all) {
        (SetOp::Union, true) => {
            out = left;
            out.extend(right);
        }
        (SetOp::Union, false) => {
            let mut seen: BTreeSet<Vec<Value>> = BTreeSet::new();
            for r in left.into_iter().chain(right) {
                if seen.insert(r.clone()) {
                    out.push(r);
                }
            }
        }
        (SetOp::Intersect | SetOp::Except, _) => {
            let mut counts: BTreeMap<Vec<Value>, u64> = BTreeMap::new();
            for r in right {
                *counts.entry(r).or_default() += 1;
            }
            let mut seen: BTreeSet<Vec<Value>> = BTreeSet::new();
            for r in left {
                let c = counts.get_mut(&r);
                let in_right = c.as_ref().is_some_and(|c| **c > 0);
                let keep = match s.op {
                    SetOp::Intersect => in_right,
                    _ => !in_right,
                };
                if s.all {
                    if let Some(c) = c
                        && *c > 0
                    {
                        *c -= 1;
                    }
                    if keep {
                        out.push(r);
                    }
                } else if keep && seen.insert(r.clone()) {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

/// One join item's rows.
fn item_rows(
    rel: &JoinRel,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
) -> Result<Vec<Vec<Value>>, PgError> {
    match rel {
        JoinRel::View(v) => Ok(views::rows(*v, cx.env)),
        JoinRel::Derived(i) => match cx.subqueries.get(*i) {
            Some(crate::expr::SubResult::Rows(rows)) => Ok(rows.clone()),
            _ => Err(PgError::internal("FROM subquery rows missing")),
        },
        JoinRel::Table(name) => {
            let table = input
                .tables
                .and_then(|t| t.get(name))
                .ok_or_else(|| PgError::internal(format!("joined table {name} not opened")))?;
            let mut rows = Vec::new();
            for_each_match(
                table,
                &Access::Scan,
                None,
                &input.snapshot,
                cx,
                check,
                &mut |_, row: &Row| {
                    rows.push(row.to_vec());
                    Ok(true)
                },
            )?;
            Ok(rows)
        }
    }
}

/// The joined rows of `j` (before WHERE).
fn join_rows(
    j: &JoinPlan,
    input: &Input<'_>,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
) -> Result<Vec<Vec<Value>>, PgError> {
    let Some(first) = j.items.first() else {
        return Ok(Vec::new());
    };
    let mut left = item_rows(&first.rel, input, cx, check)?;
    let mut left_width = first.width;
    let mut tried: u64 = 0;
    for item in &j.items[1..] {
        let right = item_rows(&item.rel, input, cx, check)?;
        // Rows whose key has a NULL can never be equal: they are left out of the hash (and
        // a left row with a NULL key finds nothing), as `=` would decide.
        let index: Option<BTreeMap<Vec<Value>, Vec<usize>>> = if item.hash_keys.is_empty() {
            None
        } else {
            let mut ix: BTreeMap<Vec<Value>, Vec<usize>> = BTreeMap::new();
            for (ri, row) in right.iter().enumerate() {
                let key: Vec<Value> = item
                    .hash_keys
                    .iter()
                    .map(|(_, r)| row[*r].clone())
                    .collect();
                if key.iter().all(|v| !v.is_null()) {
                    ix.entry(key).or_default().push(ri);
                }
            }
            Some(ix)
        };
        let keep_right = matches!(item.kind, JoinKind::Right | JoinKind::Full);
        let keep_left = matches!(item.kind, JoinKind::Left | JoinKind::Full);
        let mut right_matched = vec![false; if keep_right { right.len() } else { 0 }];
        let mut out: Vec<Vec<Value>> = Vec::new();
        let all: Vec<usize> = if index.is_none() {
            (0..right.len()).collect()
        } else {
            Vec::new()
        };
        let empty: Vec<usize> = Vec::new();
        for l in &left {
            let candidates: &[usize] = match &index {
                None => &all,
                Some(ix) => {
                    let key: Vec<Value> = item
                        .hash_keys
                        .iter()
                        .map(|(lp, _)| l[*lp].clone())
                        .collect();
                    ix.get(&key).unwrap_or(&empty)
                }
            };
            let mut matched = false;
            for &ri in candidates {
                tried += 1;
                check.every(tried)?;
                let mut row = Vec::with_capacity(left_width + item.width);
                row.extend_from_slice(l);
                row.extend_from_slice(&right[ri]);
                let ok = match &item.on {
                    Some(on) => eval_filter(on, &row, cx)?,
                    None => true,
                };
                if ok {
                    matched = true;
                    if keep_right {
                        right_matched[ri] = true;
                    }
                    out.push(row);
                }
            }
            if !matched && keep_left {
                let mut row = Vec::with_capacity(left_width + item.width);
                row.extend_from_slice(l);
                row.resize(left_width + item.width, Value::Null);
                out.push(row);
            }
        }
        if keep_right {
            for (ri, m) in right_matched.iter().enumerate() {
                if !m {
                    let mut row = vec![Value::Null; left_width];
                    row.extend_from_slice(&right[ri]);
                    out.push(row);
                }
            }
        }
        left = out;
        left_width += item.width;
    }
    Ok(left)
}

/// The plan's LIMIT (capped at `cap`) and OFFSET around `emit`; `None` when nothing is to be
/// sent (LIMIT 0).
fn output<'a, 'b>(
    plan: &SelectPlan,
    cx: &EvalCx<'_>,
    cap: Option<u64>,
    emit: &'a mut Emit<'b>,
) -> Result<Option<Output<'a, 'b>>, PgError> {
    let limit = match (eval_count(plan.limit.as_ref(), cx, true)?, cap) {
        (Some(l), Some(c)) => Some(l.min(c)),
        (l, c) => l.or(c),
    };
    let offset = eval_count(plan.offset.as_ref(), cx, false)?.unwrap_or(0);
    if limit == Some(0) {
        return Ok(None);
    }
    Ok(Some(Output {
        emit,
        offset,
        limit,
        emitted: 0,
        skipped: 0,
    }))
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
