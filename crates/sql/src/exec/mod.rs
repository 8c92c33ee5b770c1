//! Execution: running plans against a transaction and the in-memory storage.
//!
//! Where it runs: inside the session's task, one statement at a time. Reads go straight to
//! storage with the statement's snapshot (`table.rows.scan/get`, index lookups); writes go
//! through the `txn::Transaction` (which takes row locks, checks unique keys, and buffers the
//! changes for the commit record).
//!
//! READ COMMITTED writes (UPDATE, DELETE, SELECT FOR UPDATE, ON CONFLICT): the target rows
//! are collected from the snapshot first (so a statement never sees its own changes — no
//! Halloween problem), then each is locked with `lock_row`, which waits for a concurrent
//! writer and returns the row's newest committed (or own) version; the WHERE clause is
//! re-evaluated on that version and the row skipped if it no longer qualifies or is gone,
//! as PostgreSQL's EvalPlanQual does.
//!
//! Long loops check the session's interrupt (cancel, statement timeout, termination) every
//! `CHECK_EVERY_ROWS` rows, so a scan of a million rows can be cancelled.

pub mod ddl;
pub mod dml;
pub mod foreign_key;
pub mod select;
pub mod sequence;

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;

use base::error::sqlstate;
use base::{DataType, PgError, Row, Value};
use smallvec::SmallVec;
use storage::{RowId, Snapshot, Table};
use txn::Interrupt;

use crate::expr::ops::convert;
use crate::expr::{EvalCx, eval, eval_filter};
use crate::plan::{Access, SortKey, TableBinding};

/// Rows between interrupt checks in long loops: often enough that a cancel takes well under
/// a millisecond, rarely enough that the check costs nothing measurable.
pub const CHECK_EVERY_ROWS: u64 = 1024;

/// Interrupt and statement-deadline checks.
pub struct Check<'a> {
    pub interrupt: &'a Interrupt,
    pub deadline: Option<Instant>,
}

impl Check<'_> {
    pub fn now(&self) -> Result<(), PgError> {
        self.interrupt.check().map_err(PgError::from)?;
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            self.interrupt.statement_timeout();
            return Err(PgError::from(txn::TxnError::StatementTimeout));
        }
        Ok(())
    }

    /// Checks on every `CHECK_EVERY_ROWS`-th call.
    pub fn every(&self, n: u64) -> Result<(), PgError> {
        if n.is_multiple_of(CHECK_EVERY_ROWS) {
            self.now()
        } else {
            Ok(())
        }
    }
}

/// The tables a statement opened through its transaction, by name.
#[derive(Default)]
pub struct Tables {
    pub list: SmallVec<[(String, Arc<Table>); 2]>,
}

impl Tables {
    pub fn get(&self, name: &str) -> Option<&Arc<Table>> {
        self.list.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Whether every binding of a plan matches the opened table's definition.
    pub fn matches(&self, bindings: &[TableBinding]) -> bool {
        bindings.iter().all(|b| {
            self.get(&b.name)
                .is_some_and(|t| Arc::ptr_eq(&t.def, &b.def))
        })
    }
}

/// A lookup key value converted to the key column's type: `Ok(None)` if no stored value can
/// equal it (NULL, out of range, not exactly representable: `int_col = 1.5`), `Err(())` if
/// the conversion is not known here (the caller then scans).
fn key_value(v: Value, ty: DataType) -> Result<Option<Value>, ()> {
    if v.is_null() {
        return Ok(None);
    }
    if ty.is_integer() {
        // Exact conversions of numbers to an integer key; a fraction never matches.
        let i = match &v {
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => v.as_i64(),
            Value::Numeric(d) => {
                if !d.fract().is_zero() {
                    return Ok(None);
                }
                rust_decimal::prelude::ToPrimitive::to_i64(d)
            }
            Value::Float4(_) | Value::Float8(_) => {
                let f = v.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || !f.is_finite() || f.abs() > 9.2e18 {
                    return Ok(None);
                }
                Some(f as i64)
            }
            _ => return Err(()),
        };
        let Some(i) = i else { return Ok(None) };
        return Ok(match ty {
            DataType::Int2 => i16::try_from(i).ok().map(Value::Int2),
            DataType::Int4 => i32::try_from(i).ok().map(Value::Int4),
            _ => Some(Value::Int8(i)),
        });
    }
    match convert(&v, ty, base::cast::CastKind::Implicit) {
        // Character values compare without trailing blanks, so the converted form decides.
        Ok(c) if matches!(ty, DataType::Char(_)) || c == v => Ok(Some(c)),
        Ok(_) => Ok(None),
        Err(e) if e.code == sqlstate::NUMERIC_VALUE_OUT_OF_RANGE => Ok(None),
        Err(_) => Err(()),
    }
}

/// One end of an index range, evaluated.
enum RangeBound {
    Unbounded,
    Key(storage::IndexKey, bool),
    /// `col < NULL`: nothing matches.
    Empty,
    /// The value does not convert exactly to the key type: scan instead.
    Unusable,
}

impl RangeBound {
    fn as_std(&self) -> std::ops::Bound<&storage::IndexKey> {
        use std::ops::Bound;
        match self {
            RangeBound::Key(k, true) => Bound::Included(k),
            RangeBound::Key(k, false) => Bound::Excluded(k),
            _ => Bound::Unbounded,
        }
    }
}

fn range_bound(
    b: Option<&(crate::expr::Expr, bool)>,
    ty: DataType,
    idx: &storage::Index,
    cx: &EvalCx<'_>,
) -> Result<RangeBound, PgError> {
    let Some((e, inclusive)) = b else {
        return Ok(RangeBound::Unbounded);
    };
    let v = eval(e, &[], cx)?;
    if v.is_null() {
        return Ok(RangeBound::Empty);
    }
    // Only an exact key is a safe bound (`int_col > 1.5` must not become `> 2`).
    Ok(match key_value(v.clone(), ty) {
        Ok(Some(kv)) if kv == v => match idx.key_from_values(&[kv]) {
            Some(k) => RangeBound::Key(k, *inclusive),
            None => RangeBound::Unusable,
        },
        _ => RangeBound::Unusable,
    })
}

/// Row ids an access path yields (deduplicated, possibly stale: callers re-check rows).
pub fn candidate_rowids(
    table: &Table,
    access: &Access,
    cx: &EvalCx<'_>,
) -> Result<Option<Vec<RowId>>, PgError> {
    match access {
        Access::Scan => Ok(None),
        Access::Point { index, key } => {
            let Some(idx) = table.indexes.get(*index) else {
                return Ok(None);
            };
            let mut vals: SmallVec<[Value; 2]> = SmallVec::new();
            for (e, &col) in key.iter().zip(&idx.def.columns) {
                let ty = table.def.columns[usize::from(col)].data_type;
                match key_value(eval(e, &[], cx)?, ty) {
                    Ok(Some(v)) => vals.push(v),
                    Ok(None) => return Ok(Some(Vec::new())),
                    Err(()) => return Ok(None),
                }
            }
            let Some(k) = idx.key_from_values(&vals) else {
                return Ok(Some(Vec::new()));
            };
            Ok(Some(idx.lookup(&k).into_vec()))
        }
        Access::Range {
            index,
            lower,
            upper,
        } => {
            let Some(idx) = table.indexes.get(*index) else {
                return Ok(None);
            };
            let Some(&col) = idx.def.columns.first() else {
                return Ok(None);
            };
            let ty = table.def.columns[usize::from(col)].data_type;
            let lo = range_bound(lower.as_ref(), ty, idx, cx)?;
            let hi = range_bound(upper.as_ref(), ty, idx, cx)?;
            match (&lo, &hi) {
                (RangeBound::Empty, _) | (_, RangeBound::Empty) => return Ok(Some(Vec::new())),
                (RangeBound::Unusable, _) | (_, RangeBound::Unusable) => return Ok(None),
                _ => {}
            }
            let mut ids = idx.range(lo.as_std(), hi.as_std());
            ids.sort_unstable();
            ids.dedup();
            Ok(Some(ids))
        }
    }
}

/// Calls `f(rowid, row)` for every row visible to `snapshot` that the access path yields and
/// `filter` accepts, until `f` returns `false`.
pub fn for_each_match(
    table: &Table,
    access: &Access,
    filter: Option<&crate::expr::Expr>,
    snapshot: &Snapshot,
    cx: &EvalCx<'_>,
    check: &Check<'_>,
    f: &mut dyn FnMut(RowId, &Row) -> Result<bool, PgError>,
) -> Result<(), PgError> {
    let pass = |row: &Row| -> Result<bool, PgError> {
        match filter {
            Some(e) => eval_filter(e, row, cx),
            None => Ok(true),
        }
    };
    if let Some(row) = table.current_sequence_row() {
        // A sequence reads as its one row, in its current state (its stored row is the
        // horizon logged for recovery, ahead of the values handed out).
        if pass(&row)? {
            f(0, &row)?;
        }
        return Ok(());
    }
    match candidate_rowids(table, access, cx)? {
        Some(ids) => {
            for (n, id) in ids.into_iter().enumerate() {
                check.every(n as u64 + 1)?;
                if let Some(row) = table.rows.get(id, snapshot)
                    && pass(&row)?
                    && !f(id, &row)?
                {
                    break;
                }
            }
            Ok(())
        }
        None => {
            let mut err = None;
            let mut n = 0u64;
            table.rows.scan(snapshot, |id, row| {
                n += 1;
                let step = check
                    .every(n)
                    .and_then(|()| if pass(row)? { f(id, row) } else { Ok(true) });
                match step {
                    Ok(go_on) => go_on,
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                }
            });
            err.map_or(Ok(()), Err)
        }
    }
}

/// Orders rows by precomputed sort keys: DESC reverses, NULLS FIRST/LAST is absolute.
pub fn compare_keys(a: &[Value], b: &[Value], keys: &[SortKey]) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = x.cmp(y);
                if k.desc { o.reverse() } else { o }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Evaluates LIMIT or OFFSET: `None` for no limit (also LIMIT NULL).
pub fn eval_count(
    e: Option<&crate::expr::Expr>,
    cx: &EvalCx<'_>,
    limit: bool,
) -> Result<Option<u64>, PgError> {
    let Some(e) = e else {
        return Ok(None);
    };
    match eval(e, &[], cx)? {
        Value::Null => Ok(None),
        v => {
            let n = v.as_i64().unwrap_or(0);
            if n < 0 {
                return Err(if limit {
                    PgError::new(
                        sqlstate::INVALID_ROW_COUNT_IN_LIMIT_CLAUSE,
                        "LIMIT must not be negative",
                    )
                } else {
                    PgError::new(
                        sqlstate::INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE,
                        "OFFSET must not be negative",
                    )
                });
            }
            Ok(Some(n as u64))
        }
    }
}

/// Checks NOT NULL constraints of a row about to be stored.
pub fn check_not_null(table: &Table, row: &[Value]) -> Result<(), PgError> {
    for (c, v) in table.def.columns.iter().zip(row) {
        if c.not_null && v.is_null() {
            return Err(PgError::new(
                sqlstate::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name,
                    table.name()
                ),
            )
            .with_table(table.name())
            .with_column(c.name.clone()));
        }
    }
    Ok(())
}

/// Checks a row about to be stored against the table's CHECK constraints: a condition that
/// is false (not NULL) is 23514 with PostgreSQL's message and failing-row detail.
pub fn check_constraints(
    table: &Table,
    checks: &[(String, crate::expr::Expr)],
    row: &[Value],
    cx: &EvalCx<'_>,
) -> Result<(), PgError> {
    for (name, e) in checks {
        if eval(e, row, cx)? == Value::Bool(false) {
            let shown: Vec<String> = row
                .iter()
                .zip(&table.def.columns)
                .map(|(v, c)| {
                    if v.is_null() {
                        "null".to_owned()
                    } else {
                        let mut out = Vec::new();
                        base::pgio::format_text(v, c.data_type, &mut out);
                        String::from_utf8_lossy(&out).into_owned()
                    }
                })
                .collect();
            return Err(PgError::new(
                sqlstate::CHECK_VIOLATION,
                format!(
                    "new row for relation \"{}\" violates check constraint \"{name}\"",
                    table.name()
                ),
            )
            .with_detail(format!("Failing row contains ({}).", shown.join(", ")))
            .with_table(table.name())
            .with_constraint(name.clone()));
        }
    }
    Ok(())
}

/// Evaluates expressions over a row into a new row.
pub fn project(
    exprs: &[crate::expr::Expr],
    row: &[Value],
    cx: &EvalCx<'_>,
) -> Result<Vec<Value>, PgError> {
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        out.push(eval(e, row, cx)?);
    }
    Ok(out)
}

/// The "cannot execute X in a read-only transaction" check for writes.
pub fn check_writable(read_only: bool, what: &str) -> Result<(), PgError> {
    if read_only {
        return Err(PgError::read_only(what));
    }
    Ok(())
}
