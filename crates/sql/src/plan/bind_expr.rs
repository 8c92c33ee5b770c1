//! Expression binding: sqlparser expressions → typed `Expr` trees.
//!
//! The binder resolves column names against a `Scope`, types every node, inserts the
//! conversions PostgreSQL's operator and function resolution would (numeric promotion,
//! unknown literals taking the type their context wants), infers the types of untyped
//! parameters (`$n` without a declared type gets the type of what it is compared with,
//! assigned to, combined with, or cast to; whatever stays unknown becomes text), folds casts
//! of constants, and collects aggregate calls when the clause allows them.
//!
//! Parameter slots: `params[0 .. client_params]` are the client's `$n`; slots after that are
//! the literals the statement cache replaced (their types are fixed: integer, numeric, or
//! unknown for strings, which are converted at run time like unknown literals).
//!
//! Errors are PostgreSQL's: 42703 unknown column, 42702 ambiguous column, 42P01 unknown
//! qualifier, 42883 no such operator/function, 42804 type mismatch, 42803 misplaced
//! aggregate, 42P02 unknown parameter, 0A000 for constructs lockstep does not have.
//!
//! Rooms: scopes, literals, parameters, casts, operators, CASE and LIKE are here; function
//! and aggregate calls (named arguments, defaults) are in `bind_expr/call.rs`.

use base::cast::CastKind;
use base::error::sqlstate;
use base::{DataType, PgError, Value};
use rust_decimal::Decimal;
use sqlparser::ast::{self, BinaryOperator, UnaryOperator};

use super::SubKind;
use super::coerce::{
    can_assign, can_implicit, common_type, comparable, no_operator, promote_numeric,
};
use super::types;
use crate::expr::agg::{self, AggCall};
use crate::expr::func::{self, Func, TrimSide};
use crate::expr::ops::convert;
use crate::expr::{ArithOp, CmpOp, Expr};

mod call;
mod scope;
mod subquery;

pub use scope::{Scope, ScopeCol};

/// A comparison type for a character column without a length: `bpchar` semantics (trailing
/// blanks insignificant) without a limit. Only used inside expressions, never stored.
pub const BPCHAR_ANY: DataType = DataType::Char(u32::MAX);

/// The parts of a dotted name (`pg_catalog.pg_settings`), each as `ident_name` folds it.
pub fn name_parts(name: &ast::ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(id) => ident_name(id),
            other => other.to_string(),
        })
        .collect()
}

/// The name of an identifier as PostgreSQL sees it: unquoted names fold to lower case.
pub fn ident_name(id: &ast::Ident) -> String {
    if id.quote_style.is_none() {
        id.value.to_ascii_lowercase()
    } else {
        id.value.clone()
    }
}

/// Where aggregates may appear while binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggMode {
    Forbidden(&'static str),
    Allowed,
    InsideAggregate,
}

/// The conversion context of a coercion.
#[derive(Clone, Copy, Debug)]
pub enum How<'a> {
    Implicit,
    Assignment { column: &'a str },
    Explicit,
}

impl How<'_> {
    fn kind(self) -> CastKind {
        match self {
            How::Implicit => CastKind::Implicit,
            How::Assignment { .. } => CastKind::Assignment,
            How::Explicit => CastKind::Explicit,
        }
    }
}

pub type Bound = (Expr, DataType);

fn unsupported(what: impl std::fmt::Display) -> PgError {
    PgError::feature_not_supported(what)
}

/// Parses a numeric literal as PostgreSQL types it: integer if it fits int4, else bigint,
/// else numeric; anything with a point or exponent is numeric.
pub fn parse_number(s: &str) -> Result<(Value, DataType), PgError> {
    let overflow = || {
        PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("numeric literal {s} is out of range (lockstep's numeric holds 28 digits)"),
        )
    };
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(i) = s.parse::<i32>() {
            return Ok((Value::Int4(i), DataType::Int4));
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok((Value::Int8(i), DataType::Int8));
        }
    }
    let d = if s.contains(['e', 'E']) {
        Decimal::from_scientific(s).map_err(|_| overflow())?
    } else {
        s.parse::<Decimal>().map_err(|_| overflow())?
    };
    Ok((Value::Numeric(d), DataType::Numeric(None)))
}

/// Whether the unquoted identifier is the keyword DEFAULT (how sqlparser shows it in VALUES
/// and SET).
pub fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The type to record for an inferred parameter: the column's type without its modifier
/// (PostgreSQL reports `varchar`, not `varchar(10)`), `text` for character columns.
fn param_type_for(t: DataType) -> DataType {
    match t {
        DataType::Varchar(_) => DataType::Varchar(None),
        DataType::Char(_) => DataType::Text,
        DataType::Numeric(_) => DataType::Numeric(None),
        other => other,
    }
}

/// The type an unknown operand takes when the other operand has type `t`.
/// The operators on `pg_lsn`, `interval` and timestamps (executed by
/// `ops::datetime_lsn_arith`): the operand types to coerce to and the result type, or `None`
/// to fall through to numeric arithmetic. An unknown operand takes the other's type, except
/// that `timestamp - unknown` reads the literal as a timestamp (PostgreSQL prefers
/// `timestamp - timestamp` there too).
fn datetime_lsn_operator(
    op: ArithOp,
    l: DataType,
    r: DataType,
) -> Option<(DataType, DataType, DataType)> {
    use DataType as T;
    let is_ts = |t: DataType| matches!(t, T::Timestamp | T::TimestampTz);
    let is_int = |t: DataType| matches!(t, T::Int2 | T::Int4);
    let known = |t: DataType, other: DataType| if t == T::Unknown { other } else { t };
    let (l, r) = (known(l, r), known(r, l));
    // A date meeting a timestamp or an interval is read as a timestamp (midnight).
    let ts_of = |t: DataType| if t == T::Date { T::Timestamp } else { t };
    match (op, l, r) {
        (ArithOp::Sub, T::PgLsn, T::PgLsn) => Some((T::PgLsn, T::PgLsn, T::Numeric(None))),
        (ArithOp::Sub, T::Date, T::Date) => Some((T::Date, T::Date, T::Int4)),
        (ArithOp::Add | ArithOp::Sub, T::Date, b) if is_int(b) => Some((T::Date, T::Int4, T::Date)),
        (ArithOp::Add, a, T::Date) if is_int(a) => Some((T::Int4, T::Date, T::Date)),
        (ArithOp::Add | ArithOp::Sub, T::Date, T::Interval) => {
            Some((T::Timestamp, T::Interval, T::Timestamp))
        }
        (ArithOp::Add, T::Interval, T::Date) => Some((T::Interval, T::Timestamp, T::Timestamp)),
        (ArithOp::Sub, a, b) if (is_ts(a) || a == T::Date) && (is_ts(b) || b == T::Date) => {
            let (a, b) = (ts_of(a), ts_of(b));
            let t = if a == b { a } else { T::TimestampTz };
            Some((t, t, T::Interval))
        }
        (ArithOp::Add | ArithOp::Sub, T::Interval, T::Interval) => {
            Some((T::Interval, T::Interval, T::Interval))
        }
        (ArithOp::Add | ArithOp::Sub, a, T::Interval) if is_ts(a) => Some((a, T::Interval, a)),
        (ArithOp::Add, T::Interval, b) if is_ts(b) => Some((T::Interval, b, b)),
        _ => None,
    }
}

fn typmodless(t: DataType) -> DataType {
    match t {
        DataType::Varchar(_) => DataType::Varchar(None),
        DataType::Char(_) => BPCHAR_ANY,
        DataType::Numeric(_) => DataType::Numeric(None),
        other => other,
    }
}

fn can_explicit(from: DataType, to: DataType) -> bool {
    if can_assign(from, to) || from.is_string() {
        return true;
    }
    matches!(
        (from, to),
        (DataType::Bool, DataType::Int4) | (DataType::Int4, DataType::Bool)
    ) || (from.is_numeric_family() && to.is_numeric_family())
}

pub struct Binder<'r> {
    pub params: Vec<DataType>,
    pub client_params: usize,
    /// Client parameters whose type the client declared (never re-inferred).
    pub declared: Vec<bool>,
    pub aggs: Vec<AggCall>,
    pub agg_mode: AggMode,
    /// Opens the tables of subqueries; `None` where there can be none (defaults, DDL).
    pub resolve: Option<super::Resolver<'r>>,
    /// The subqueries bound so far (see `plan::SubPlan`).
    pub subplans: Vec<super::SubPlan>,
    /// The tables they read.
    pub sub_tables: Vec<super::TableBinding>,
    /// The result columns of the subquery bound last (FROM subqueries need them all).
    pub sub_fields: Vec<crate::api::FieldInfo>,
    /// While binding a subquery in an expression: the enclosing query's scope, where names
    /// the subquery does not have are looked up (becoming `Expr::OuterColumn`).
    outer: Option<Scope>,
    /// Scopes of the queries further out (names found there are not supported).
    outer_deeper: Vec<Scope>,
    /// Whether the subquery being bound used `outer`.
    correlated: std::cell::Cell<bool>,
    /// The WITH queries in scope, innermost last: (name, column names given, query).
    pub ctes: Vec<(String, Vec<String>, Box<ast::Query>)>,
}

impl<'r> Binder<'r> {
    pub fn new(params: Vec<DataType>, client_params: usize, declared: Vec<bool>) -> Binder<'r> {
        Binder {
            params,
            client_params,
            declared,
            aggs: Vec::new(),
            agg_mode: AggMode::Forbidden("this context"),
            resolve: None,
            subplans: Vec::new(),
            sub_tables: Vec::new(),
            sub_fields: Vec::new(),
            outer: None,
            outer_deeper: Vec::new(),
            correlated: std::cell::Cell::new(false),
            ctes: Vec::new(),
        }
    }

    /// A binder without parameters (column defaults, DDL checks).
    pub fn plain() -> Binder<'r> {
        Binder::new(Vec::new(), 0, Vec::new())
    }

    fn inferable(&self, i: usize) -> bool {
        i < self.client_params
            && !self.declared.get(i).copied().unwrap_or(false)
            && self.params.get(i) == Some(&DataType::Unknown)
    }

    /// Client parameter types after binding: anything still unknown is text.
    pub fn client_param_types(&self) -> Vec<DataType> {
        self.params[..self.client_params.min(self.params.len())]
            .iter()
            .map(|t| {
                if *t == DataType::Unknown {
                    DataType::Text
                } else {
                    *t
                }
            })
            .collect()
    }

    /// Converts a bound expression to type `to`.
    pub fn coerce(&mut self, (e, ty): Bound, to: DataType, how: How<'_>) -> Result<Expr, PgError> {
        if ty == to || to == DataType::Unknown {
            return Ok(e);
        }
        let kind = how.kind();
        if ty == DataType::Unknown {
            return Ok(match e {
                Expr::Const(Value::Null) => Expr::Const(Value::Null),
                Expr::Const(v @ Value::Text(_)) => Expr::Const(convert(&v, to, kind)?),
                Expr::Param(i) if self.inferable(i) => {
                    let pt = param_type_for(to);
                    self.params[i] = pt;
                    if pt == to {
                        Expr::Param(i)
                    } else {
                        Expr::Cast {
                            expr: Expr::Param(i).boxed(),
                            to,
                            kind,
                        }
                    }
                }
                other => Expr::Cast {
                    expr: other.boxed(),
                    to,
                    kind,
                },
            });
        }
        let allowed = match how {
            How::Implicit => can_implicit(ty, to),
            How::Assignment { .. } => can_assign(ty, to),
            How::Explicit => can_explicit(ty, to),
        };
        if !allowed {
            return Err(match how {
                How::Assignment { column } => PgError::new(
                    sqlstate::DATATYPE_MISMATCH,
                    format!(
                        "column \"{column}\" is of type {} but expression is of type {}",
                        to.sql_name(),
                        ty.sql_name()
                    ),
                )
                .with_hint("You will need to rewrite or cast the expression."),
                _ => PgError::new(
                    sqlstate::CANNOT_COERCE,
                    format!("cannot cast type {} to {}", ty.sql_name(), to.sql_name()),
                ),
            });
        }
        // Same type without a modifier to apply: nothing to do.
        if ty.base() == to.base() && matches!(to, DataType::Varchar(None) | DataType::Numeric(None))
        {
            return Ok(e);
        }
        Ok(match e {
            Expr::Const(v) => Expr::Const(convert(&v, to, kind)?),
            other => Expr::Cast {
                expr: other.boxed(),
                to,
                kind,
            },
        })
    }

    /// Binds a condition (WHERE, HAVING, CASE WHEN, AND/OR operands).
    pub fn condition(&mut self, e: &ast::Expr, scope: &Scope, what: &str) -> Result<Expr, PgError> {
        let b = self.expr(e, scope)?;
        self.require_bool(b, what)
    }

    fn require_bool(&mut self, b: Bound, what: &str) -> Result<Expr, PgError> {
        match b.1 {
            DataType::Bool => Ok(b.0),
            DataType::Unknown => self.coerce(b, DataType::Bool, How::Implicit),
            other => Err(PgError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "argument of {what} must be type boolean, not type {}",
                    other.sql_name()
                ),
            )),
        }
    }

    fn param(&self, p: &str) -> Result<Bound, PgError> {
        let n: usize = p
            .strip_prefix('$')
            .and_then(|d| d.parse().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| PgError::syntax(format!("syntax error at or near \"{p}\"")))?;
        let i = n - 1;
        match self.params.get(i) {
            Some(t) => Ok((Expr::Param(i), *t)),
            None => Err(PgError::new(
                sqlstate::UNDEFINED_PARAMETER,
                format!("there is no parameter ${n}"),
            )),
        }
    }

    fn literal(&self, v: &ast::Value) -> Result<Bound, PgError> {
        use ast::Value as V;
        let text = |s: &str| Ok((Expr::Const(Value::text(s)), DataType::Unknown));
        match v {
            V::Number(s, _) => {
                let (v, t) = parse_number(s)?;
                Ok((Expr::Const(v), t))
            }
            V::SingleQuotedString(s)
            | V::EscapedStringLiteral(s)
            | V::UnicodeStringLiteral(s)
            | V::NationalStringLiteral(s) => text(s),
            V::DollarQuotedString(d) => text(&d.value),
            V::Boolean(b) => Ok((Expr::Const(Value::Bool(*b)), DataType::Bool)),
            V::Null => Ok((Expr::Const(Value::Null), DataType::Unknown)),
            V::Placeholder(p) => self.param(p),
            V::HexStringLiteral(_) | V::SingleQuotedByteStringLiteral(_) => {
                Err(unsupported("bit string literals"))
            }
            other => Err(unsupported(format!("literal {other}"))),
        }
    }

    fn column(&self, qualifier: Option<&str>, name: &str, scope: &Scope) -> Result<Bound, PgError> {
        match scope.resolve(qualifier, name) {
            Ok(i) => Ok((Expr::Column(i), scope.cols[i].ty)),
            Err(e)
                if e.code == sqlstate::UNDEFINED_COLUMN || e.code == sqlstate::UNDEFINED_TABLE =>
            {
                // Inside a subquery, a name of the enclosing query: a correlated reference.
                match self.outer.as_ref().map(|o| (o, o.resolve(qualifier, name))) {
                    Some((o, Ok(i))) => {
                        self.correlated.set(true);
                        Ok((Expr::OuterColumn(i), o.cols[i].ty))
                    }
                    _ if self
                        .outer_deeper
                        .iter()
                        .any(|o| o.resolve(qualifier, name).is_ok()) =>
                    {
                        Err(
                            unsupported("subqueries referring to a query more than one level out")
                                .with_detail(e.message),
                        )
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Binds an expression in `scope`. Deep trees grow the stack instead of overflowing it
    /// (`recursive`); their depth is bounded by the parser's operator limit.
    #[recursive::recursive]
    pub fn expr(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Bound, PgError> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => {
                let name = ident_name(id);
                match self.column(None, &name, scope) {
                    Ok(b) => Ok(b),
                    Err(err) if id.quote_style.is_none() => match name.as_str() {
                        "current_schema" | "current_catalog" | "current_role" | "current_user"
                        | "session_user" | "user" | "localtimestamp" | "current_timestamp"
                        | "current_date" => self.call(&name, &[], scope),
                        _ => Err(err),
                    },
                    Err(err) => Err(err),
                }
            }
            E::CompoundIdentifier(ids) => {
                let names: Vec<String> = ids.iter().map(ident_name).collect();
                match names.as_slice() {
                    [q, c] => self.column(Some(q), c, scope),
                    [_, q, c] => self.column(Some(q), c, scope),
                    _ => Err(PgError::new(
                        sqlstate::SYNTAX_ERROR,
                        format!("improper qualified name (too many dotted names): {e}"),
                    )),
                }
            }
            E::Value(v) => self.literal(&v.value),
            E::Nested(inner) => self.expr(inner, scope),
            E::UnaryOp { op, expr } => self.unary(*op, expr, scope),
            E::BinaryOp { left, op, right } => self.binary(left, op, right, scope),
            E::IsNull(a) | E::IsNotNull(a) => {
                let b = self.expr(a, scope)?;
                Ok((
                    Expr::IsNull(b.0.boxed(), matches!(e, E::IsNotNull(_))),
                    DataType::Bool,
                ))
            }
            E::IsTrue(a) | E::IsNotTrue(a) | E::IsFalse(a) | E::IsNotFalse(a) => {
                let value = matches!(e, E::IsTrue(_) | E::IsNotTrue(_));
                let negated = matches!(e, E::IsNotTrue(_) | E::IsNotFalse(_));
                let what = if value { "IS TRUE" } else { "IS FALSE" };
                let b = self.condition(a, scope, what)?;
                Ok((Expr::IsBool(b.boxed(), value, negated), DataType::Bool))
            }
            E::IsUnknown(a) | E::IsNotUnknown(a) => {
                let b = self.condition(a, scope, "IS UNKNOWN")?;
                Ok((
                    Expr::IsNull(b.boxed(), matches!(e, E::IsNotUnknown(_))),
                    DataType::Bool,
                ))
            }
            E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => {
                let (l, r) = self.comparison_operands(a, b, "=", scope)?;
                Ok((
                    Expr::Distinct(l.boxed(), r.boxed(), matches!(e, E::IsNotDistinctFrom(..))),
                    DataType::Bool,
                ))
            }
            E::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                ast::InTarget::List(list) => self.in_list(expr, list, *negated, scope),
                ast::InTarget::Subquery(q) => self.in_subquery(expr, q, *negated, scope),
                _ => Err(unsupported("IN with this kind of target")),
            },
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (a, b) = self.comparison_operands(expr, low, ">=", scope)?;
                let (c, d) = self.comparison_operands(expr, high, "<=", scope)?;
                Ok(if *negated {
                    (
                        Expr::Or(
                            Expr::Cmp(CmpOp::Lt, a.boxed(), b.boxed()).boxed(),
                            Expr::Cmp(CmpOp::Gt, c.boxed(), d.boxed()).boxed(),
                        ),
                        DataType::Bool,
                    )
                } else {
                    (
                        Expr::And(
                            Expr::Cmp(CmpOp::GtEq, a.boxed(), b.boxed()).boxed(),
                            Expr::Cmp(CmpOp::LtEq, c.boxed(), d.boxed()).boxed(),
                        ),
                        DataType::Bool,
                    )
                })
            }
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | E::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY"));
                }
                let ci = matches!(e, E::ILike { .. });
                self.like(expr, pattern, escape_char.as_deref(), ci, *negated, scope)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(
                operand.as_deref(),
                conditions,
                else_result.as_deref(),
                scope,
            ),
            E::Cast {
                expr, data_type, ..
            } => {
                let to = types::resolve(data_type)?;
                let inner = self.expr(expr, scope)?;
                Ok((self.coerce(inner, to, How::Explicit)?, to))
            }
            E::TypedString(ts) => {
                let to = types::resolve(&ts.data_type)?;
                let inner = self.literal(&ts.value.value)?;
                Ok((self.coerce(inner, to, How::Explicit)?, to))
            }
            E::Function(f) => self.function(f, scope),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args: Vec<&ast::Expr> = vec![expr];
                let one = ast::Expr::value(ast::Value::Number("1".into(), false));
                match (substring_from, substring_for) {
                    (Some(f), Some(n)) => {
                        args.push(f);
                        args.push(n);
                    }
                    (Some(f), None) => args.push(f),
                    (None, Some(n)) => {
                        args.push(&one);
                        args.push(n);
                    }
                    (None, None) => {}
                }
                self.call_exprs("substring", &args, scope)
            }
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let side = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args: Vec<&ast::Expr> = vec![expr];
                if let Some(w) = trim_what {
                    args.push(w);
                } else if let Some(chars) = trim_characters {
                    args.extend(chars.iter());
                }
                self.call_exprs(side, &args, scope)
            }
            E::Ceil { expr, field } | E::Floor { expr, field } => {
                if !matches!(
                    field,
                    ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)
                ) {
                    return Err(unsupported("CEIL/FLOOR with a precision"));
                }
                let name = if matches!(e, E::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                self.call_exprs(name, &[expr], scope)
            }
            E::Position { expr, r#in } => self.call_exprs("strpos", &[r#in, expr], scope),
            E::Subquery(q) => {
                let (i, ty) = self.subquery(q, SubKind::Scalar, scope)?;
                if self.subplans[i].correlated {
                    return Ok((Expr::correlated(i, SubKind::Scalar, None, false), ty));
                }
                Ok((Expr::Subquery(i), ty))
            }
            E::Exists { subquery, negated } => {
                let (i, _) = self.subquery(subquery, SubKind::Exists, scope)?;
                if self.subplans[i].correlated {
                    let e = Expr::correlated(i, SubKind::Exists, None, *negated);
                    return Ok((e, DataType::Bool));
                }
                let e = Expr::Exists(i);
                Ok((
                    if *negated { Expr::Not(e.boxed()) } else { e },
                    DataType::Bool,
                ))
            }
            E::Tuple(_) => Err(unsupported("row constructors")),
            // `interval '5 minutes'`; field restrictions (`interval '1' hour`) are not applied.
            E::Interval(iv) if iv.leading_field.is_none() && iv.last_field.is_none() => {
                let inner = self.expr(&iv.value, scope)?;
                Ok((
                    self.coerce(inner, DataType::Interval, How::Explicit)?,
                    DataType::Interval,
                ))
            }
            E::Interval(_) => Err(unsupported("interval field restrictions")),
            E::Array(_) => Err(unsupported("arrays")),
            E::Extract { field, expr, .. } => {
                // `EXTRACT(year FROM x)` is `extract('year', x)`, as in PostgreSQL.
                let name = field.to_string();
                let name = name
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_ascii_lowercase();
                let field = (Expr::Const(Value::text(&name)), DataType::Unknown);
                let ts = self.expr(expr, scope)?;
                self.call_bound("extract", vec![field, ts])
            }
            E::AtTimeZone {
                timestamp,
                time_zone,
            } => self.call_exprs("timezone", &[time_zone, timestamp], scope),
            E::Collate { expr, collation } => self.collate(expr, collation, scope),
            E::AnyOp { .. } | E::AllOp { .. } => Err(unsupported("ANY/ALL")),
            E::SimilarTo { .. } => Err(unsupported("SIMILAR TO")),
            E::Wildcard(_) | E::QualifiedWildcard(..) => {
                Err(PgError::syntax("syntax error at or near \"*\""))
            }
            other => {
                let mut text = other.to_string();
                // Name the construct, not a whole statement.
                const TEXT_CHARS_MAX: usize = 40;
                if let Some((i, _)) = text.char_indices().nth(TEXT_CHARS_MAX) {
                    text.truncate(i);
                    text.push_str("...");
                }
                Err(unsupported(format!("expression \"{text}\"")))
            }
        }
    }

    fn unary(&mut self, op: UnaryOperator, e: &ast::Expr, scope: &Scope) -> Result<Bound, PgError> {
        match op {
            UnaryOperator::Not => Ok((
                Expr::Not(self.condition(e, scope, "NOT")?.boxed()),
                DataType::Bool,
            )),
            UnaryOperator::Minus | UnaryOperator::Plus => {
                // A signed numeric literal is one constant (so -2147483648 is an integer).
                if let ast::Expr::Value(v) = e
                    && let ast::Value::Number(s, _) = &v.value
                {
                    let signed = if op == UnaryOperator::Minus {
                        format!("-{s}")
                    } else {
                        s.clone()
                    };
                    let (v, t) = parse_number(&signed)?;
                    return Ok((Expr::Const(v), t));
                }
                let b = self.expr(e, scope)?;
                let sym = if op == UnaryOperator::Minus { "-" } else { "+" };
                if b.1 == DataType::Unknown {
                    return Err(PgError::new(
                        AMBIGUOUS_FUNCTION,
                        format!("operator is not unique: {sym} unknown"),
                    ));
                }
                if !b.1.is_numeric_family() {
                    return Err(PgError::new(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("operator does not exist: {sym} {}", b.1.sql_name()),
                    ));
                }
                if op == UnaryOperator::Plus {
                    return Ok(b);
                }
                let t = b.1.base();
                Ok(match b.0 {
                    Expr::Const(v) => (Expr::Const(crate::expr::ops::negate(&v)?), t),
                    other => (Expr::Neg(other.boxed()), t),
                })
            }
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    /// Binds the two operands of a comparison, giving an unknown side the other's type.
    fn comparison_operands(
        &mut self,
        a: &ast::Expr,
        b: &ast::Expr,
        sym: &str,
        scope: &Scope,
    ) -> Result<(Expr, Expr), PgError> {
        let l = self.expr(a, scope)?;
        let r = self.expr(b, scope)?;
        self.unify_comparison(l, r, sym)
    }

    fn unify_comparison(&mut self, l: Bound, r: Bound, sym: &str) -> Result<(Expr, Expr), PgError> {
        let (lt, rt) = (l.1, r.1);
        match (lt == DataType::Unknown, rt == DataType::Unknown) {
            (true, true) => Ok((
                self.coerce(l, DataType::Text, How::Implicit)?,
                self.coerce(r, DataType::Text, How::Implicit)?,
            )),
            (true, false) => Ok((self.coerce(l, typmodless(rt), How::Implicit)?, r.0)),
            (false, true) => {
                let to = typmodless(lt);
                Ok((l.0, self.coerce(r, to, How::Implicit)?))
            }
            (false, false) => {
                if !comparable(lt, rt) {
                    return Err(no_operator(sym, lt, rt));
                }
                let datetime = |t: DataType| {
                    matches!(
                        t,
                        DataType::Date | DataType::Timestamp | DataType::TimestampTz
                    )
                };
                if lt != rt && datetime(lt) && datetime(rt) {
                    // date < timestamp < timestamptz: the narrower side is converted (a date is
                    // midnight, a timestamp is read in the session's zone), as PostgreSQL's
                    // cross-type comparison operators do.
                    let to = super::coerce::common_type(&[lt, rt], sym)?;
                    return Ok((
                        self.coerce(l, to, How::Implicit)?,
                        self.coerce(r, to, How::Implicit)?,
                    ));
                }
                Ok((l.0, r.0))
            }
        }
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        use BinaryOperator as B;
        let cmp = |o| Some(o);
        let cmp_op = match op {
            B::Eq => cmp(CmpOp::Eq),
            B::NotEq => cmp(CmpOp::NotEq),
            B::Lt => cmp(CmpOp::Lt),
            B::LtEq => cmp(CmpOp::LtEq),
            B::Gt => cmp(CmpOp::Gt),
            B::GtEq => cmp(CmpOp::GtEq),
            _ => None,
        };
        if let Some(c) = cmp_op {
            let (l, r) = self.comparison_operands(left, right, &op.to_string(), scope)?;
            return Ok((Expr::Cmp(c, l.boxed(), r.boxed()), DataType::Bool));
        }
        let arith = match op {
            B::Plus => Some(ArithOp::Add),
            B::Minus => Some(ArithOp::Sub),
            B::Multiply => Some(ArithOp::Mul),
            B::Divide => Some(ArithOp::Div),
            B::Modulo => Some(ArithOp::Mod),
            _ => None,
        };
        if let Some(a) = arith {
            return self.arith(a, left, right, &op.to_string(), scope);
        }
        match op {
            B::And => {
                let l = self.condition(left, scope, "AND")?;
                let r = self.condition(right, scope, "AND")?;
                Ok((Expr::And(l.boxed(), r.boxed()), DataType::Bool))
            }
            B::Or => {
                let l = self.condition(left, scope, "OR")?;
                let r = self.condition(right, scope, "OR")?;
                Ok((Expr::Or(l.boxed(), r.boxed()), DataType::Bool))
            }
            B::StringConcat => {
                let l = self.expr(left, scope)?;
                let r = self.expr(right, scope)?;
                let stringy = |t: DataType| t.is_string();
                if !stringy(l.1) && !stringy(r.1) {
                    return Err(no_operator("||", l.1, r.1));
                }
                let lt = l.1;
                let rt = r.1;
                let l = self.coerce(
                    l,
                    DataType::Text,
                    if lt == DataType::Unknown {
                        How::Implicit
                    } else {
                        How::Explicit
                    },
                )?;
                let r = self.coerce(
                    r,
                    DataType::Text,
                    if rt == DataType::Unknown {
                        How::Implicit
                    } else {
                        How::Explicit
                    },
                )?;
                Ok((Expr::Concat(l.boxed(), r.boxed()), DataType::Text))
            }
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                let sym = op.to_string();
                let l = self.expr(left, scope)?;
                let r = self.expr(right, scope)?;
                if !l.1.is_string() || !r.1.is_string() {
                    return Err(no_operator(&sym, l.1, r.1));
                }
                let l = self.coerce(l, DataType::Text, How::Implicit)?;
                let r = self.coerce(r, DataType::Text, How::Implicit)?;
                let func = crate::expr::func::Func::RegexMatch {
                    case_insensitive: matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch),
                    negated: matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch),
                };
                Ok((Expr::Func(func, vec![l, r]), DataType::Bool))
            }
            // `OPERATOR(pg_catalog.~)` (psql writes operators this way): the built-in
            // operator of that name.
            B::PGCustomBinaryOperator(parts) => match builtin_operator(parts) {
                Some(op) => self.binary(left, &op, right, scope),
                None => Err(unsupported(format!("operator {op}"))),
            },
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    /// `expr COLLATE name`. lockstep compares text by bytes (the "C" order) and has no other
    /// collation, so the names of that order and the default collation are accepted and
    /// change nothing (psql's `\dconfig pattern` writes `COLLATE pg_catalog.default`); any
    /// other collation does not exist here.
    fn collate(
        &mut self,
        inner: &ast::Expr,
        collation: &ast::ObjectName,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let parts = name_parts(collation);
        let name = match parts.as_slice() {
            [n] => n.as_str(),
            [schema, n] if schema == "pg_catalog" => n.as_str(),
            _ => "",
        };
        if !matches!(name, "default" | "C" | "POSIX" | "ucs_basic") {
            return Err(PgError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("collation \"{}\" does not exist", parts.join(".")),
            ));
        }
        let b = self.expr(inner, scope)?;
        if !b.1.is_string() {
            return Err(PgError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("collations are not supported by type {}", b.1.sql_name()),
            ));
        }
        Ok(b)
    }

    fn arith(
        &mut self,
        op: ArithOp,
        left: &ast::Expr,
        right: &ast::Expr,
        sym: &str,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let l = self.expr(left, scope)?;
        let r = self.expr(right, scope)?;
        if l.1 == DataType::Unknown && r.1 == DataType::Unknown {
            return Err(PgError::new(
                AMBIGUOUS_FUNCTION,
                format!("operator is not unique: unknown {sym} unknown"),
            )
            .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts."));
        }
        if let Some((lt, rt, ret)) = datetime_lsn_operator(op, l.1, r.1) {
            let l = self.coerce(l, lt, How::Implicit)?;
            let r = self.coerce(r, rt, How::Implicit)?;
            return Ok((Expr::Arith(op, l.boxed(), r.boxed()), ret));
        }
        let t = promote_numeric(l.1, r.1).ok_or_else(|| no_operator(sym, l.1, r.1))?;
        if op == ArithOp::Mod && matches!(t, DataType::Float4 | DataType::Float8) {
            return Err(no_operator(sym, t, t));
        }
        let l = self.coerce(l, t, How::Implicit)?;
        let r = self.coerce(r, t, How::Implicit)?;
        Ok((Expr::Arith(op, l.boxed(), r.boxed()), t))
    }

    fn in_list(
        &mut self,
        e: &ast::Expr,
        list: &[ast::Expr],
        negated: bool,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let subject = self.expr(e, scope)?;
        let items: Vec<Bound> = list
            .iter()
            .map(|i| self.expr(i, scope))
            .collect::<Result<_, _>>()?;
        let mut types = vec![subject.1];
        types.extend(items.iter().map(|b| b.1));
        let t = common_type(&types, "IN")?;
        let subject = self.coerce(subject, t, How::Implicit)?;
        let list = items
            .into_iter()
            .map(|b| self.coerce(b, t, How::Implicit))
            .collect::<Result<_, _>>()?;
        Ok((
            Expr::InList {
                expr: subject.boxed(),
                list,
                negated,
            },
            DataType::Bool,
        ))
    }

    fn like(
        &mut self,
        e: &ast::Expr,
        pattern: &ast::Expr,
        escape: Option<&ast::Expr>,
        case_insensitive: bool,
        negated: bool,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let s = self.expr(e, scope)?;
        let p = self.expr(pattern, scope)?;
        let sym = if case_insensitive { "~~*" } else { "~~" };
        if !s.1.is_string() || !p.1.is_string() {
            return Err(no_operator(sym, s.1, p.1));
        }
        let s = self.coerce(s, DataType::Text, How::Implicit)?;
        let p = self.coerce(p, DataType::Text, How::Implicit)?;
        let escape = match escape {
            Some(x) => {
                let b = self.expr(x, scope)?;
                Some(self.coerce(b, DataType::Text, How::Implicit)?.boxed())
            }
            None => None,
        };
        Ok((
            Expr::Like {
                expr: s.boxed(),
                pattern: p.boxed(),
                escape,
                case_insensitive,
                negated,
            },
            DataType::Bool,
        ))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let mut whens = Vec::with_capacity(conditions.len());
        let operand = match operand {
            Some(o) => {
                let subject = self.expr(o, scope)?;
                let values: Vec<Bound> = conditions
                    .iter()
                    .map(|c| self.expr(&c.condition, scope))
                    .collect::<Result<_, _>>()?;
                let mut types = vec![subject.1];
                types.extend(values.iter().map(|v| v.1));
                let t = common_type(&types, "CASE/WHEN")?;
                for v in values {
                    whens.push(self.coerce(v, t, How::Implicit)?);
                }
                Some(self.coerce(subject, t, How::Implicit)?.boxed())
            }
            None => {
                for c in conditions {
                    whens.push(self.condition(&c.condition, scope, "CASE/WHEN")?);
                }
                None
            }
        };
        let mut results: Vec<Bound> = conditions
            .iter()
            .map(|c| self.expr(&c.result, scope))
            .collect::<Result<_, _>>()?;
        let other = match otherwise {
            Some(o) => Some(self.expr(o, scope)?),
            None => None,
        };
        let mut types: Vec<DataType> = results.iter().map(|r| r.1).collect();
        if let Some(o) = &other {
            types.push(o.1);
        }
        let t = common_type(&types, "CASE")?;
        let mut pairs = Vec::with_capacity(whens.len());
        for (w, r) in whens.into_iter().zip(results.drain(..)) {
            pairs.push((w, self.coerce(r, t, How::Implicit)?));
        }
        let otherwise = match other {
            Some(o) => Some(self.coerce(o, t, How::Implicit)?.boxed()),
            None => None,
        };
        Ok((
            Expr::Case {
                operand,
                whens: pairs,
                otherwise,
            },
            t,
        ))
    }
}

/// SQLSTATEs not in base's list.
const AMBIGUOUS_FUNCTION: base::SqlState = base::SqlState("42725");
const WRONG_OBJECT_TYPE: base::SqlState = base::SqlState("42809");

/// The output column name PostgreSQL gives an expression (`?column?` when it has none).
#[recursive::recursive]
pub fn column_name(e: &ast::Expr) -> String {
    use ast::Expr as E;
    match e {
        E::Identifier(id) => ident_name(id),
        E::CompoundIdentifier(ids) => ids.last().map(ident_name).unwrap_or_default(),
        E::Function(f) => f
            .name
            .0
            .last()
            .map(|p| match p {
                ast::ObjectNamePart::Identifier(id) => ident_name(id),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "?column?".into()),
        E::Cast {
            expr, data_type, ..
        } => {
            let inner = column_name(expr);
            if inner != "?column?" {
                inner
            } else {
                types::resolve(data_type)
                    .map(|t| types::internal_name(t).to_owned())
                    .unwrap_or(inner)
            }
        }
        E::TypedString(ts) => types::resolve(&ts.data_type)
            .map(|t| types::internal_name(t).to_owned())
            .unwrap_or_else(|_| "?column?".into()),
        E::Nested(inner) => column_name(inner),
        E::Interval(_) => "interval".into(),
        E::Case { .. } => "case".into(),
        E::Substring { .. } => "substring".into(),
        E::Trim { trim_where, .. } => match trim_where {
            Some(ast::TrimWhereField::Leading) => "ltrim".into(),
            Some(ast::TrimWhereField::Trailing) => "rtrim".into(),
            _ => "btrim".into(),
        },
        E::Ceil { .. } => "ceil".into(),
        E::Floor { .. } => "floor".into(),
        E::Position { .. } => "position".into(),
        _ => "?column?".into(),
    }
}

/// The operator `OPERATOR([pg_catalog.]sym)` names, if lockstep has it.
fn builtin_operator(parts: &[String]) -> Option<BinaryOperator> {
    use BinaryOperator as B;
    let sym = match parts {
        [sym] => sym,
        [schema, sym] if schema.eq_ignore_ascii_case("pg_catalog") => sym,
        _ => return None,
    };
    Some(match sym.as_str() {
        "=" => B::Eq,
        "<>" | "!=" => B::NotEq,
        "<" => B::Lt,
        "<=" => B::LtEq,
        ">" => B::Gt,
        ">=" => B::GtEq,
        "+" => B::Plus,
        "-" => B::Minus,
        "*" => B::Multiply,
        "/" => B::Divide,
        "%" => B::Modulo,
        "||" => B::StringConcat,
        "~" => B::PGRegexMatch,
        "~*" => B::PGRegexIMatch,
        "!~" => B::PGRegexNotMatch,
        "!~*" => B::PGRegexNotIMatch,
        _ => return None,
    })
}
