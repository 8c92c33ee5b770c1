//! Bound expressions and their evaluation.
//!
//! The binder (`plan::bind_expr`) turns sqlparser expressions into `Expr` trees whose types
//! are resolved: column references are row positions, parameters are slots, operators have
//! operands of one type (promotions are explicit `Cast` nodes), functions are `Func` values.
//! Evaluation walks the tree against one input row, the statement's parameters and the
//! session environment (`Env`), with PostgreSQL's three-valued logic: NULL propagates through
//! operators and functions unless the construct says otherwise (`IS NULL`, `coalesce`,
//! `AND`/`OR` with a decisive operand, `concat`).
//!
//! Evaluation never panics: a row shorter than a column reference or a value of an
//! unexpected kind is an internal error (XX000), which only a binder bug can cause.
//! Functions with side effects on the session (`set_config`) record an `Effect` that the
//! session applies after the statement.

pub mod agg;
pub mod datetime;
pub mod func;
pub mod like;
pub mod ops;
pub mod regex;

use std::cmp::Ordering;

use base::cast::CastKind;
use base::{DataType, PgError, Value};
use parking_lot::Mutex;

use crate::engine::Engine;
use crate::guc::SessionGucs;

pub use func::Func;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::NotEq => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::LtEq => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::GtEq => o != Ordering::Less,
        }
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn swapped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(Value),
    /// A statement parameter or literal slot, by 0-based position.
    Param(usize),
    /// A column of the input row, by position.
    Column(usize),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// `||` on two text operands.
    Concat(Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] TRUE/FALSE`: (operand, value tested, negated).
    IsBool(Box<Expr>, bool, bool),
    /// `IS [NOT] DISTINCT FROM`: (left, right, negated = NOT DISTINCT).
    Distinct(Box<Expr>, Box<Expr>, bool),
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        case_insensitive: bool,
        negated: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        to: DataType,
        kind: CastKind,
    },
    Func(Func, Vec<Expr>),
    /// An aggregate call's result, during binding only (replaced before execution).
    Agg(usize),
    /// The value of scalar subquery `i` (`Plan::subplans`, run before the statement).
    Subquery(usize),
    /// `EXISTS` subquery `i`.
    Exists(usize),
    /// `expr [NOT] IN (subquery sub)`.
    InSubquery {
        expr: Box<Expr>,
        sub: usize,
        negated: bool,
    },
    /// A correlated subquery (`Plan::subplans[sub]`), run for the current row: scalar,
    /// EXISTS, or `expr [NOT] IN` (then `expr` is set).
    Correlated {
        sub: usize,
        kind: crate::plan::SubKind,
        expr: Option<Box<Expr>>,
        negated: bool,
    },
    /// Inside a correlated subquery: column `i` of the enclosing query's row.
    OuterColumn(usize),
}

/// What a subquery produced, for the expressions that refer to it.
#[derive(Clone, Debug)]
pub enum SubResult {
    Scalar(Value),
    Exists(bool),
    /// The distinct non-NULL values, and whether there was a NULL.
    Set {
        values: std::collections::BTreeSet<Value>,
        has_null: bool,
    },
    /// A subquery in FROM: its rows.
    Rows(Vec<Vec<Value>>),
    /// A correlated subquery: nothing ahead of time.
    Correlated,
}

impl Expr {
    pub fn boxed(self) -> Box<Expr> {
        Box::new(self)
    }

    pub fn correlated(
        sub: usize,
        kind: crate::plan::SubKind,
        expr: Option<Box<Expr>>,
        negated: bool,
    ) -> Expr {
        Expr::Correlated {
            sub,
            kind,
            expr,
            negated,
        }
    }

    /// Whether the expression's value is the same for every row of one execution (no
    /// column references, no volatile functions): usable as an index key.
    pub fn is_row_independent(&self) -> bool {
        let mut ok = true;
        self.walk(&mut |e| match e {
            Expr::Column(_) | Expr::Agg(_) | Expr::Correlated { .. } => ok = false,
            Expr::Func(f, _) if f.is_volatile() => ok = false,
            _ => {}
        });
        ok
    }

    /// Calls `f` on this node and every descendant.
    #[recursive::recursive]
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Const(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::Agg(_)
            | Expr::Subquery(_)
            | Expr::Exists(_)
            | Expr::OuterColumn(_) => {}
            Expr::InSubquery { expr, .. } => expr.walk(f),
            Expr::Correlated { expr, .. } => {
                if let Some(e) = expr {
                    e.walk(f);
                }
            }
            Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::IsBool(a, _, _) => a.walk(f),
            Expr::Cast { expr, .. } => expr.walk(f),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Arith(_, a, b)
            | Expr::Concat(a, b)
            | Expr::Distinct(a, b, _) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.walk(f);
                list.iter().for_each(|e| e.walk(f));
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                ..
            } => {
                expr.walk(f);
                pattern.walk(f);
                if let Some(e) = escape {
                    e.walk(f);
                }
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Func(_, args) => args.iter().for_each(|e| e.walk(f)),
        }
    }

    /// Rebuilds this node with each direct child replaced by `f(child)`.
    pub fn map_children(
        self,
        f: &mut dyn FnMut(Expr) -> Result<Expr, PgError>,
    ) -> Result<Expr, PgError> {
        macro_rules! m {
            ($e:expr) => {
                f(*$e).map(Box::new)
            };
        }
        Ok(match self {
            e @ (Expr::Const(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::Agg(_)
            | Expr::Subquery(_)
            | Expr::Exists(_)
            | Expr::OuterColumn(_)) => e,
            Expr::Correlated {
                sub,
                kind,
                expr,
                negated,
            } => Expr::Correlated {
                sub,
                kind,
                expr: match expr {
                    Some(e) => Some(m!(e)?),
                    None => None,
                },
                negated,
            },
            Expr::InSubquery { expr, sub, negated } => Expr::InSubquery {
                expr: m!(expr)?,
                sub,
                negated,
            },
            Expr::Not(a) => Expr::Not(m!(a)?),
            Expr::Neg(a) => Expr::Neg(m!(a)?),
            Expr::IsNull(a, n) => Expr::IsNull(m!(a)?, n),
            Expr::IsBool(a, v, n) => Expr::IsBool(m!(a)?, v, n),
            Expr::Cast { expr, to, kind } => Expr::Cast {
                expr: m!(expr)?,
                to,
                kind,
            },
            Expr::And(a, b) => Expr::And(m!(a)?, m!(b)?),
            Expr::Or(a, b) => Expr::Or(m!(a)?, m!(b)?),
            Expr::Cmp(op, a, b) => Expr::Cmp(op, m!(a)?, m!(b)?),
            Expr::Arith(op, a, b) => Expr::Arith(op, m!(a)?, m!(b)?),
            Expr::Concat(a, b) => Expr::Concat(m!(a)?, m!(b)?),
            Expr::Distinct(a, b, n) => Expr::Distinct(m!(a)?, m!(b)?, n),
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: m!(expr)?,
                list: list.into_iter().map(&mut *f).collect::<Result<_, _>>()?,
                negated,
            },
            Expr::Like {
                expr,
                pattern,
                escape,
                case_insensitive,
                negated,
            } => Expr::Like {
                expr: m!(expr)?,
                pattern: m!(pattern)?,
                escape: match escape {
                    Some(e) => Some(m!(e)?),
                    None => None,
                },
                case_insensitive,
                negated,
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: match operand {
                    Some(o) => Some(m!(o)?),
                    None => None,
                },
                whens: whens
                    .into_iter()
                    .map(|(w, t)| Ok((f(w)?, f(t)?)))
                    .collect::<Result<_, PgError>>()?,
                otherwise: match otherwise {
                    Some(o) => Some(m!(o)?),
                    None => None,
                },
            },
            Expr::Func(func, args) => {
                Expr::Func(func, args.into_iter().map(f).collect::<Result<_, _>>()?)
            }
        })
    }
}

/// A change a function asks the session to make after the statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    SetConfig {
        name: String,
        value: String,
        local: bool,
    },
    Notice(PgError),
}

/// What functions may consult: the session and the server, at one statement.
pub struct Env<'a> {
    pub engine: &'a Engine,
    pub gucs: &'a SessionGucs,
    pub pid: i32,
    pub user: &'a str,
    pub database: &'a str,
    pub superuser: bool,
    /// `now()`: the transaction's start, microseconds since 2000-01-01 UTC.
    pub txn_start: i64,
    pub stmt_start: i64,
    pub effects: Mutex<Vec<Effect>>,
    /// The outcome of `pg_promote`, awaited by the session before the statement runs
    /// (evaluation is synchronous, promotion with `wait` is not).
    pub promote_result: Mutex<Option<Result<bool, PgError>>>,
    /// What the sequence functions need.
    pub sequences: SequenceEnv<'a>,
}

/// The sequence functions' view of the session: names resolve in the statement's snapshot;
/// a read-only transaction may not take values; currval/lastval read `seen`.
pub struct SequenceEnv<'a> {
    pub snapshot: storage::Snapshot,
    pub read_only: bool,
    pub seen: &'a crate::exec::sequence::SessionSequences,
}

/// Evaluation context of one statement execution.
pub struct EvalCx<'a> {
    pub params: &'a [Value],
    pub env: &'a Env<'a>,
    /// Results of the statement's subqueries, by index (empty when it has none).
    pub subqueries: &'a [SubResult],
    /// What a correlated subquery needs to run (`None` where there are none).
    pub exec: Option<&'a SubExec<'a>>,
    /// Inside a correlated subquery: the enclosing query's current row.
    pub outer: &'a [Value],
}

/// A scalar subquery's value from its rows (at most two asked for): NULL for none, 21000 for
/// more than one.
pub(crate) fn scalar_of(mut rows: Vec<Vec<Value>>) -> Result<Value, PgError> {
    if rows.len() > 1 {
        return Err(PgError::new(
            base::SqlState("21000"),
            "more than one row returned by a subquery used as an expression",
        ));
    }
    Ok(rows
        .pop()
        .and_then(|r| r.into_iter().next())
        .unwrap_or(Value::Null))
}

/// The statement's subqueries and what they read, for running correlated ones per row.
pub struct SubExec<'a> {
    pub plans: &'a [crate::plan::SubPlan],
    pub tables: &'a crate::exec::Tables,
    pub snapshot: storage::Snapshot,
    pub engine: &'a Engine,
    pub check: &'a crate::exec::Check<'a>,
}

impl SubExec<'_> {
    /// Runs correlated subquery `sub` for the enclosing row `outer`; returns at most `cap`
    /// rows.
    pub(crate) fn rows(
        &self,
        sub: usize,
        outer: &[Value],
        cx: &EvalCx<'_>,
        cap: u64,
    ) -> Result<Vec<Vec<Value>>, PgError> {
        let sp = self
            .plans
            .get(sub)
            .ok_or_else(|| PgError::internal("correlated subquery plan missing"))?;
        let input = crate::exec::select::Input {
            table: sp.plan.table.as_deref().and_then(|n| self.tables.get(n)),
            tables: Some(self.tables),
            snapshot: self.snapshot,
            engine: self.engine,
        };
        let inner = EvalCx {
            params: cx.params,
            env: cx.env,
            subqueries: cx.subqueries,
            exec: cx.exec,
            outer,
        };
        let mut rows = Vec::new();
        crate::exec::select::run_rows(&sp.plan, &input, &inner, self.check, Some(cap), &mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    }
}

fn truth(v: &Value) -> Result<Option<bool>, PgError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(PgError::internal(format!(
            "boolean expected, got {other:?}"
        ))),
    }
}

fn from_truth(t: Option<bool>) -> Value {
    t.map_or(Value::Null, Value::Bool)
}

/// Evaluates `e` over `row`.
#[recursive::recursive]
pub fn eval(e: &Expr, row: &[Value], cx: &EvalCx<'_>) -> Result<Value, PgError> {
    Ok(match e {
        Expr::Const(v) => v.clone(),
        Expr::Param(i) => cx
            .params
            .get(*i)
            .cloned()
            .ok_or_else(|| PgError::internal(format!("parameter ${} not bound", i + 1)))?,
        Expr::Column(i) => row
            .get(*i)
            .cloned()
            .ok_or_else(|| PgError::internal(format!("column {i} out of row")))?,
        Expr::Not(a) => from_truth(truth(&eval(a, row, cx)?)?.map(|b| !b)),
        Expr::And(a, b) => {
            let l = truth(&eval(a, row, cx)?)?;
            if l == Some(false) {
                return Ok(Value::Bool(false));
            }
            let r = truth(&eval(b, row, cx)?)?;
            match (l, r) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Or(a, b) => {
            let l = truth(&eval(a, row, cx)?)?;
            if l == Some(true) {
                return Ok(Value::Bool(true));
            }
            let r = truth(&eval(b, row, cx)?)?;
            match (l, r) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::Cmp(op, a, b) => {
            let l = eval(a, row, cx)?;
            if l.is_null() {
                return Ok(Value::Null);
            }
            let r = eval(b, row, cx)?;
            if r.is_null() {
                return Ok(Value::Null);
            }
            Value::Bool(op.holds(l.cmp(&r)))
        }
        Expr::Arith(op, a, b) => ops::arith(*op, &eval(a, row, cx)?, &eval(b, row, cx)?)?,
        Expr::Neg(a) => ops::negate(&eval(a, row, cx)?)?,
        Expr::Concat(a, b) => {
            let (l, r) = (eval(a, row, cx)?, eval(b, row, cx)?);
            match (&l, &r) {
                (Value::Text(x), Value::Text(y)) => {
                    let mut s = String::with_capacity(x.len() + y.len());
                    s.push_str(x);
                    s.push_str(y);
                    Value::Text(s.into())
                }
                _ => Value::Null,
            }
        }
        Expr::IsNull(a, negated) => Value::Bool(eval(a, row, cx)?.is_null() != *negated),
        Expr::IsBool(a, value, negated) => {
            let t = truth(&eval(a, row, cx)?)?;
            Value::Bool((t == Some(*value)) != *negated)
        }
        Expr::Distinct(a, b, not_distinct) => {
            let (l, r) = (eval(a, row, cx)?, eval(b, row, cx)?);
            let distinct = match (l.is_null(), r.is_null()) {
                (true, true) => false,
                (true, false) | (false, true) => true,
                (false, false) => l != r,
            };
            Value::Bool(distinct != *not_distinct)
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let x = eval(expr, row, cx)?;
            if x.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let v = eval(item, row, cx)?;
                if v.is_null() {
                    saw_null = true;
                } else if v == x {
                    found = true;
                    break;
                }
            }
            match (found, saw_null) {
                (true, _) => Value::Bool(!negated),
                (false, true) => Value::Null,
                (false, false) => Value::Bool(*negated),
            }
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            case_insensitive,
            negated,
        } => {
            let s = eval(expr, row, cx)?;
            let p = eval(pattern, row, cx)?;
            let esc = match escape {
                Some(e) => Some(eval(e, row, cx)?),
                None => None,
            };
            match (&s, &p, &esc) {
                (Value::Text(s), Value::Text(p), None) => {
                    Value::Bool(like::like(s, p, Some('\\'), *case_insensitive)? != *negated)
                }
                (Value::Text(s), Value::Text(p), Some(Value::Text(e))) => {
                    let esc = like::escape_char(e)?;
                    Value::Bool(like::like(s, p, esc, *case_insensitive)? != *negated)
                }
                _ => Value::Null,
            }
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = match operand {
                Some(o) => Some(eval(o, row, cx)?),
                None => None,
            };
            for (w, t) in whens {
                let hit = match &subject {
                    Some(s) => {
                        let v = eval(w, row, cx)?;
                        !s.is_null() && !v.is_null() && *s == v
                    }
                    None => truth(&eval(w, row, cx)?)? == Some(true),
                };
                if hit {
                    return eval(t, row, cx);
                }
            }
            match otherwise {
                Some(o) => eval(o, row, cx)?,
                None => Value::Null,
            }
        }
        Expr::Cast { expr, to, kind } => ops::convert(&eval(expr, row, cx)?, *to, *kind)?,
        Expr::Func(f, args) => func::call(*f, args, row, cx)?,
        Expr::Agg(_) => {
            return Err(PgError::internal("aggregate reference outside aggregation"));
        }
        Expr::Subquery(i) => match cx.subqueries.get(*i) {
            Some(SubResult::Scalar(v)) => v.clone(),
            _ => return Err(PgError::internal("scalar subquery result missing")),
        },
        Expr::Exists(i) => match cx.subqueries.get(*i) {
            Some(SubResult::Exists(b)) => Value::Bool(*b),
            _ => return Err(PgError::internal("EXISTS subquery result missing")),
        },
        Expr::OuterColumn(i) => cx
            .outer
            .get(*i)
            .cloned()
            .ok_or_else(|| PgError::internal("outer column out of range"))?,
        Expr::Correlated {
            sub,
            kind,
            expr,
            negated,
        } => {
            let exec = cx
                .exec
                .ok_or_else(|| PgError::internal("correlated subquery without its executor"))?;
            match kind {
                crate::plan::SubKind::Exists => {
                    let found = !exec.rows(*sub, row, cx, 1)?.is_empty();
                    Value::Bool(found != *negated)
                }
                crate::plan::SubKind::Scalar => scalar_of(exec.rows(*sub, row, cx, 2)?)?,
                crate::plan::SubKind::In | crate::plan::SubKind::Rows => {
                    let subject = expr
                        .as_ref()
                        .ok_or_else(|| PgError::internal("IN subquery without its operand"))?;
                    let x = eval(subject, row, cx)?;
                    let rows = exec.rows(*sub, row, cx, u64::MAX)?;
                    if rows.is_empty() {
                        return Ok(Value::Bool(*negated));
                    }
                    if x.is_null() {
                        return Ok(Value::Null);
                    }
                    let mut saw_null = false;
                    for r in rows {
                        match r.into_iter().next() {
                            Some(v) if v.is_null() => saw_null = true,
                            Some(v) if v == x => return Ok(Value::Bool(!negated)),
                            _ => {}
                        }
                    }
                    if saw_null {
                        Value::Null
                    } else {
                        Value::Bool(*negated)
                    }
                }
            }
        }
        Expr::InSubquery { expr, sub, negated } => {
            let Some(SubResult::Set { values, has_null }) = cx.subqueries.get(*sub) else {
                return Err(PgError::internal("IN subquery result missing"));
            };
            // x IN (empty) is false even for a NULL x; otherwise SQL's three values.
            if values.is_empty() && !has_null {
                return Ok(Value::Bool(*negated));
            }
            let x = eval(expr, row, cx)?;
            if x.is_null() {
                Value::Null
            } else if values.contains(&x) {
                Value::Bool(!negated)
            } else if *has_null {
                Value::Null
            } else {
                Value::Bool(*negated)
            }
        }
    })
}

/// Evaluates a condition: true only if the result is TRUE (NULL and FALSE filter out).
pub fn eval_filter(e: &Expr, row: &[Value], cx: &EvalCx<'_>) -> Result<bool, PgError> {
    Ok(matches!(eval(e, row, cx)?, Value::Bool(true)))
}
