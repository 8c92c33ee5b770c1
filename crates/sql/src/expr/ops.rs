//! Operators on values with PostgreSQL's semantics: integer arithmetic with overflow checks,
//! float arithmetic with overflow/underflow checks, numeric (decimal) arithmetic with
//! PostgreSQL's division scale, and conversions between types.
//!
//! The binder has already resolved operand types: both operands of an arithmetic operator
//! arrive with the same type (it inserts promotions), so these functions dispatch on the
//! value variants and report a type mismatch only if the binder let one through (an internal
//! error, never a panic).

use base::cast::{CastKind, cast};
use base::error::sqlstate;
use base::{DataType, PgError, Value};
use rust_decimal::Decimal;

use super::ArithOp;

type R = Result<Value, PgError>;

fn overflow(ty: &str) -> PgError {
    PgError::numeric_out_of_range(ty)
}

fn numeric_overflow() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

fn float_overflow() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: overflow",
    )
}

fn float_underflow() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: underflow",
    )
}

macro_rules! int_arith {
    ($op:expr, $a:expr, $b:expr, $name:expr) => {{
        let (a, b) = ($a, $b);
        match $op {
            ArithOp::Add => a.checked_add(b).ok_or_else(|| overflow($name)),
            ArithOp::Sub => a.checked_sub(b).ok_or_else(|| overflow($name)),
            ArithOp::Mul => a.checked_mul(b).ok_or_else(|| overflow($name)),
            ArithOp::Div => {
                if b == 0 {
                    Err(PgError::division_by_zero())
                } else {
                    a.checked_div(b).ok_or_else(|| overflow($name))
                }
            }
            ArithOp::Mod => {
                if b == 0 {
                    Err(PgError::division_by_zero())
                } else {
                    // MIN % -1 is 0 in PostgreSQL, not an overflow.
                    Ok(a.wrapping_rem(b))
                }
            }
        }
    }};
}

fn float_check(r: f64, a: f64, b: f64, op: ArithOp) -> Result<f64, PgError> {
    if r.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(float_overflow());
    }
    if r == 0.0 && matches!(op, ArithOp::Mul | ArithOp::Div) && a != 0.0 && b.is_finite() {
        if op == ArithOp::Mul && b == 0.0 {
            return Ok(r);
        }
        return Err(float_underflow());
    }
    Ok(r)
}

fn float_arith(op: ArithOp, a: f64, b: f64) -> Result<f64, PgError> {
    let r = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => {
            if b == 0.0 {
                return Err(PgError::division_by_zero());
            }
            a / b
        }
        ArithOp::Mod => {
            return Err(PgError::internal("float modulo reached the executor"));
        }
    };
    float_check(r, a, b, op)
}

/// `a op b` for operands of the same type. NULL in, NULL out.
pub fn arith(op: ArithOp, a: &Value, b: &Value) -> R {
    Ok(match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Int2(x), Value::Int2(y)) => Value::Int2(int_arith!(op, *x, *y, "smallint")?),
        (Value::Int4(x), Value::Int4(y)) => Value::Int4(int_arith!(op, *x, *y, "integer")?),
        (Value::Int8(x), Value::Int8(y)) => Value::Int8(int_arith!(op, *x, *y, "bigint")?),
        (Value::Float8(x), Value::Float8(y)) => Value::Float8(float_arith(op, *x, *y)?),
        (Value::Float4(x), Value::Float4(y)) => {
            let r = float_arith(op, f64::from(*x), f64::from(*y))?;
            let narrowed = r as f32;
            if narrowed.is_infinite() && r.is_finite() {
                return Err(float_overflow());
            }
            Value::Float4(narrowed)
        }
        (Value::Numeric(x), Value::Numeric(y)) => Value::Numeric(numeric_arith(op, *x, *y)?),
        _ => return datetime_lsn_arith(op, a, b),
    })
}

fn timestamp_overflow() -> PgError {
    PgError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

fn date_overflow() -> PgError {
    PgError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "date out of range")
}

fn interval_overflow() -> PgError {
    PgError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

fn is_infinite(t: i64) -> bool {
    t == base::pgio::TIMESTAMP_INFINITY || t == base::pgio::TIMESTAMP_NEG_INFINITY
}

/// The operators of `pg_lsn`, `interval` and the timestamps that the binder admits
/// (`bind_expr::datetime_lsn_operator`): `pg_lsn - pg_lsn → numeric` (bytes),
/// `timestamp - timestamp → interval` (justified to days, as `timestamp_mi`),
/// `interval ± interval`, `timestamp ± interval`. Interval months are not added to
/// timestamps (that needs the calendar): 0A000.
fn datetime_lsn_arith(op: ArithOp, a: &Value, b: &Value) -> R {
    let ts_of = |v: &Value| match v {
        Value::Timestamp(t) | Value::TimestampTz(t) => Some(*t),
        _ => None,
    };
    Ok(match (op, a, b) {
        (ArithOp::Sub, Value::PgLsn(x), Value::PgLsn(y)) => {
            Value::Numeric(Decimal::from(i128::from(*x) - i128::from(*y)))
        }
        (ArithOp::Sub, Value::Date(x), Value::Date(y)) => {
            let inf = |d: i32| d == base::pgio::DATE_INFINITY || d == base::pgio::DATE_NEG_INFINITY;
            if inf(*x) || inf(*y) {
                return Err(PgError::new(
                    sqlstate::DATETIME_FIELD_OVERFLOW,
                    "cannot subtract infinite dates",
                ));
            }
            Value::Int4(x.checked_sub(*y).ok_or_else(date_overflow)?)
        }
        (ArithOp::Add | ArithOp::Sub, Value::Date(d), n) | (ArithOp::Add, n, Value::Date(d)) => {
            let n = n.as_i64().ok_or_else(date_overflow)?;
            let inf = *d == base::pgio::DATE_INFINITY || *d == base::pgio::DATE_NEG_INFINITY;
            if inf {
                Value::Date(*d)
            } else {
                let days = if op == ArithOp::Add {
                    i64::from(*d) + n
                } else {
                    i64::from(*d) - n
                };
                // PostgreSQL's date range: 4714-11-24 BC to 5874897-12-31.
                const MIN_DATE: i64 = -2_451_545;
                const MAX_DATE: i64 = 2_145_031_948;
                if !(MIN_DATE..=MAX_DATE).contains(&days) {
                    return Err(date_overflow());
                }
                Value::Date(days as i32)
            }
        }
        (ArithOp::Sub, Value::Timestamp(_) | Value::TimestampTz(_), _) if ts_of(b).is_some() => {
            let (x, y) = (ts_of(a).unwrap_or(0), ts_of(b).unwrap_or(0));
            if is_infinite(x) || is_infinite(y) {
                return Err(PgError::new(
                    sqlstate::DATETIME_FIELD_OVERFLOW,
                    "cannot subtract infinite timestamps",
                ));
            }
            let micros = x.checked_sub(y).ok_or_else(interval_overflow)?;
            Value::Interval(base::Interval::from_micros(micros).justify_hours())
        }
        (ArithOp::Add | ArithOp::Sub, Value::Interval(x), Value::Interval(y)) => {
            let (m, d, u) = if op == ArithOp::Add {
                (
                    x.months.checked_add(y.months),
                    x.days.checked_add(y.days),
                    x.micros.checked_add(y.micros),
                )
            } else {
                (
                    x.months.checked_sub(y.months),
                    x.days.checked_sub(y.days),
                    x.micros.checked_sub(y.micros),
                )
            };
            match (m, d, u) {
                (Some(months), Some(days), Some(micros)) => Value::Interval(base::Interval {
                    months,
                    days,
                    micros,
                }),
                _ => return Err(interval_overflow()),
            }
        }
        (
            ArithOp::Add | ArithOp::Sub,
            Value::Timestamp(t) | Value::TimestampTz(t),
            Value::Interval(iv),
        )
        | (ArithOp::Add, Value::Interval(iv), Value::Timestamp(t) | Value::TimestampTz(t)) => {
            if iv.months != 0 {
                return Err(PgError::feature_not_supported(
                    "adding intervals with months to timestamps",
                ));
            }
            let local = matches!(a, Value::Timestamp(_)) || matches!(b, Value::Timestamp(_));
            let sign = if op == ArithOp::Add { 1 } else { -1 };
            let days = i64::from(iv.days)
                .checked_mul(base::value::MICROS_PER_DAY * sign)
                .ok_or_else(timestamp_overflow)?;
            let micros = iv.micros.checked_mul(sign).ok_or_else(timestamp_overflow)?;
            let r = if is_infinite(*t) {
                *t
            } else if local || days == 0 {
                t.checked_add(days)
                    .and_then(|x| x.checked_add(micros))
                    .ok_or_else(timestamp_overflow)?
            } else {
                // timestamptz: a day is a day of the session's zone (23 or 25 hours across a
                // daylight-saving change), then the time part is added as elapsed time.
                let zone = base::tz::current();
                let moved = zone
                    .utc_to_local(*t)
                    .checked_add(days)
                    .ok_or_else(timestamp_overflow)?;
                zone.local_to_utc(moved)
                    .checked_add(micros)
                    .ok_or_else(timestamp_overflow)?
            };
            if local {
                Value::Timestamp(r)
            } else {
                Value::TimestampTz(r)
            }
        }
        _ => {
            return Err(PgError::internal(format!(
                "arithmetic on mismatched values {a:?} and {b:?}"
            )));
        }
    })
}

pub fn numeric_arith(op: ArithOp, a: Decimal, b: Decimal) -> Result<Decimal, PgError> {
    match op {
        ArithOp::Add => a.checked_add(b).ok_or_else(numeric_overflow),
        ArithOp::Sub => a.checked_sub(b).ok_or_else(numeric_overflow),
        ArithOp::Mul => a.checked_mul(b).ok_or_else(numeric_overflow),
        ArithOp::Div => numeric_div(a, b),
        ArithOp::Mod => {
            if b.is_zero() {
                return Err(PgError::division_by_zero());
            }
            a.checked_rem(b).ok_or_else(numeric_overflow)
        }
    }
}

/// Base-10000 weight and first digit of `d`, as PostgreSQL's numeric stores it.
fn weight_and_first_digit(d: Decimal) -> (i64, u64) {
    if d.is_zero() {
        return (0, 0);
    }
    let m = d.mantissa().unsigned_abs();
    let digits = m.to_string();
    let nd = digits.len() as i64;
    let e10 = nd - 1 - i64::from(d.scale());
    let weight = e10.div_euclid(4);
    let group = e10.rem_euclid(4) + 1;
    let first = if nd >= group {
        digits[..group as usize].parse::<u64>().unwrap_or(0)
    } else {
        digits.parse::<u64>().unwrap_or(0) * 10u64.pow((group - nd) as u32)
    };
    (weight, first)
}

/// PostgreSQL's `select_div_scale`: at least 16 significant digits, no fewer decimals than
/// either input shows.
fn div_scale(a: Decimal, b: Decimal) -> u32 {
    const MIN_SIG_DIGITS: i64 = 16;
    const MAX_DISPLAY_SCALE: i64 = 1000;
    let (w1, f1) = weight_and_first_digit(a);
    let (w2, f2) = weight_and_first_digit(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (MIN_SIG_DIGITS - qweight * 4)
        .max(i64::from(a.scale()))
        .max(i64::from(b.scale()))
        .clamp(0, MAX_DISPLAY_SCALE);
    rscale as u32
}

/// Numeric division rounded to PostgreSQL's result scale (as far as 28 digits allow).
pub fn numeric_div(a: Decimal, b: Decimal) -> Result<Decimal, PgError> {
    if b.is_zero() {
        return Err(PgError::division_by_zero());
    }
    let scale = div_scale(a, b);
    let q = a.checked_div(b).ok_or_else(numeric_overflow)?;
    Ok(with_scale(q, scale))
}

/// `d` rounded (half away from zero, as PostgreSQL) or zero-padded to `scale` decimals, as far
/// as the 28-digit representation allows.
pub fn with_scale(d: Decimal, scale: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(
        scale.min(28),
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    if r.scale() < scale {
        r.rescale(scale.min(28));
    }
    r
}

pub fn negate(v: &Value) -> R {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int2(x) => Value::Int2(x.checked_neg().ok_or_else(|| overflow("smallint"))?),
        Value::Int4(x) => Value::Int4(x.checked_neg().ok_or_else(|| overflow("integer"))?),
        Value::Int8(x) => Value::Int8(x.checked_neg().ok_or_else(|| overflow("bigint"))?),
        Value::Float4(x) => Value::Float4(-x),
        Value::Float8(x) => Value::Float8(-x),
        Value::Numeric(d) => Value::Numeric(-d),
        other => {
            return Err(PgError::internal(format!("negation of {other:?}")));
        }
    })
}

/// Converts `v` to `to`. Conversions that cannot fail and have one obvious result (same type;
/// integers to wider integers, numeric, or float (Rust's `as` rounds to nearest, as C does);
/// float4 to float8; timestamp and timestamptz, which coincide because the only time zone is
/// UTC; text to unbounded text types; anything to text through its output function) are done
/// here, because they sit on the hot path; everything else goes to `base::cast`, which owns
/// PostgreSQL's cast rules (range checks, rounding, length limits, input parsing).
pub fn convert(v: &Value, to: DataType, kind: CastKind) -> R {
    let same = |v: &Value| Ok(v.clone());
    match (v, to) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::Bool(_), DataType::Bool)
        | (Value::Int2(_), DataType::Int2)
        | (Value::Int4(_), DataType::Int4)
        | (Value::Int8(_), DataType::Int8)
        | (Value::Float4(_), DataType::Float4)
        | (Value::Float8(_), DataType::Float8)
        | (Value::Numeric(_), DataType::Numeric(None))
        | (Value::Bytea(_), DataType::Bytea)
        | (Value::Text(_), DataType::Text | DataType::Varchar(None) | DataType::Unknown) => same(v),
        (Value::Timestamp(t), DataType::Timestamp) => Ok(Value::Timestamp(*t)),
        (Value::TimestampTz(t), DataType::TimestampTz) => Ok(Value::TimestampTz(*t)),
        (Value::TimestampTz(t), DataType::Timestamp) => {
            Ok(Value::Timestamp(base::cast::timestamptz_to_local(*t)))
        }
        (Value::Timestamp(t), DataType::TimestampTz) => {
            Ok(Value::TimestampTz(base::cast::local_to_timestamptz(*t)))
        }
        (Value::Int2(x), DataType::Int4) => Ok(Value::Int4(i32::from(*x))),
        (Value::Int2(_) | Value::Int4(_), DataType::Int8) => {
            Ok(Value::Int8(v.as_i64().unwrap_or(0)))
        }
        (Value::Int2(_) | Value::Int4(_) | Value::Int8(_), DataType::Numeric(None)) => {
            Ok(Value::Numeric(Decimal::from(v.as_i64().unwrap_or(0))))
        }
        (Value::Int2(_) | Value::Int4(_) | Value::Int8(_), DataType::Float8) => {
            Ok(Value::Float8(v.as_i64().unwrap_or(0) as f64))
        }
        (Value::Int2(_) | Value::Int4(_), DataType::Float4) => {
            Ok(Value::Float4(v.as_i64().unwrap_or(0) as f32))
        }
        (Value::Float4(x), DataType::Float8) => Ok(Value::Float8(f64::from(*x))),
        // `bpchar` without a length, for comparisons with character columns: trailing blanks
        // are insignificant, and values are stored without them.
        (Value::Text(t), DataType::Char(u32::MAX)) => {
            let trimmed = t.trim_end_matches(' ');
            if trimmed.len() == t.len() {
                Ok(v.clone())
            } else {
                Ok(Value::text(trimmed))
            }
        }
        (Value::Bool(b), DataType::Text | DataType::Varchar(None)) => {
            Ok(Value::text(if *b { "true" } else { "false" }))
        }
        (_, DataType::Text | DataType::Varchar(None)) if !matches!(v, Value::Text(_)) => {
            Ok(Value::Text(text_of(v).into()))
        }
        _ => cast(v, to, kind),
    }
}

/// The text form of a value (its output function).
pub fn text_of(v: &Value) -> String {
    let ty = match v {
        Value::Null => return String::new(),
        Value::Text(s) => return s.to_string(),
        other => base::pgio::value_type(other),
    };
    let mut out = Vec::new();
    base::pgio::format_text(v, ty, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn integer_overflow_and_division() {
        assert_eq!(
            arith(ArithOp::Add, &Value::Int4(i32::MAX), &Value::Int4(1))
                .expect_err("overflow")
                .message,
            "integer out of range"
        );
        assert_eq!(
            arith(ArithOp::Mul, &Value::Int2(300), &Value::Int2(300))
                .expect_err("overflow")
                .message,
            "smallint out of range"
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int8(1), &Value::Int8(0))
                .expect_err("div0")
                .code,
            sqlstate::DIVISION_BY_ZERO
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int4(7), &Value::Int4(-2)).expect("div"),
            Value::Int4(-3)
        );
        assert_eq!(
            arith(ArithOp::Mod, &Value::Int4(i32::MIN), &Value::Int4(-1)).expect("mod"),
            Value::Int4(0)
        );
        assert!(arith(ArithOp::Div, &Value::Int4(i32::MIN), &Value::Int4(-1)).is_err());
        assert_eq!(
            arith(ArithOp::Add, &Value::Null, &Value::Int4(1)).expect("null"),
            Value::Null
        );
    }

    #[test]
    fn numeric_division_scale_matches_postgres() {
        // SELECT 1::numeric / 3  → 0.33333333333333333333
        assert_eq!(
            numeric_div(dec("1"), dec("3")).expect("div").to_string(),
            "0.33333333333333333333"
        );
        // SELECT 3::numeric / 2 → 1.5000000000000000
        assert_eq!(
            numeric_div(dec("3"), dec("2")).expect("div").to_string(),
            "1.5000000000000000"
        );
        // SELECT 10::numeric / 4 → 2.5000000000000000
        assert_eq!(
            numeric_div(dec("10"), dec("4")).expect("div").to_string(),
            "2.5000000000000000"
        );
        // SELECT 100000::numeric / 3 → 33333.333333333333
        assert_eq!(
            numeric_div(dec("100000"), dec("3"))
                .expect("div")
                .to_string(),
            "33333.333333333333"
        );
        assert!(numeric_div(dec("1"), dec("0")).is_err());
    }

    #[test]
    fn floats_overflow() {
        assert!(arith(ArithOp::Mul, &Value::Float8(1e300), &Value::Float8(1e300)).is_err());
        assert!(arith(ArithOp::Div, &Value::Float8(1.0), &Value::Float8(0.0)).is_err());
        assert_eq!(
            arith(ArithOp::Mul, &Value::Float8(0.0), &Value::Float8(5.0)).expect("zero"),
            Value::Float8(0.0)
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(
            convert(&Value::Int4(5), DataType::Int8, CastKind::Implicit).expect("c"),
            Value::Int8(5)
        );
        assert_eq!(
            convert(
                &Value::TimestampTz(7),
                DataType::Timestamp,
                CastKind::Assignment
            )
            .expect("c"),
            Value::Timestamp(7)
        );
        assert_eq!(
            convert(&Value::Bool(true), DataType::Text, CastKind::Explicit).expect("c"),
            Value::text("true")
        );
        assert_eq!(
            convert(&Value::Int4(42), DataType::Text, CastKind::Explicit).expect("c"),
            Value::text("42")
        );
    }
}
