//! Casts between SQL types with PostgreSQL's semantics (`pg_cast`, plus the I/O conversion
//! casts PostgreSQL synthesizes to and from string types).
//!
//! # Which casts exist, and in which context
//!
//! [`cast_context`] gives the least permissive context in which PostgreSQL applies a cast;
//! [`can_cast`] answers for a context (`Implicit` ⊂ `Assignment` ⊂ `Explicit`):
//!
//! | from → to | context | conversion |
//! | --- | --- | --- |
//! | same type (typmod change) | implicit | length / typmod coercion |
//! | `unknown` → any | implicit | the target's input function (an untyped literal) |
//! | text, varchar, char ↔ each other | implicit | char → text drops trailing blanks |
//! | any other → text, varchar, char | assignment | output function; bool gives `true`/`false` |
//! | text, varchar, char → any other | explicit | input function ([`crate::pgio::parse_text`]) |
//! | int2 → int4 → int8 → numeric → float4 → float8 | implicit (widening) | exact or nearest |
//! | the same chain backwards | assignment (narrowing) | range-checked, rounding |
//! | int4 ↔ bool | explicit | 0 is false, anything else true; true is 1 |
//! | timestamp → timestamptz | implicit | the wall-clock reading in the session's TimeZone |
//! | timestamptz → timestamp | assignment | the instant's wall-clock reading there |
//! | date → timestamp, timestamptz | implicit | midnight (in the session's TimeZone) |
//! | timestamp, timestamptz → date | assignment | the (local) day |
//!
//! Everything else (bool ↔ int2/int8/float/numeric, timestamps ↔ numbers, bytea ↔ non-strings)
//! is 42846 `cannot cast type X to Y`.
//!
//! # Semantics
//!
//! - Integer narrowing: 22003 `smallint out of range` / `integer out of range` /
//!   `bigint out of range`.
//! - float → integer: `rint()` first (round half to even), then the range check; NaN and
//!   infinities are out of range.
//! - numeric → integer: round half away from zero, then the range check.
//! - float8 → float4: 22003 `value out of range: overflow` / `underflow`.
//! - float → numeric: the float printed with `%.15g` (float4: `%.6g`) and read back, as
//!   PostgreSQL does, so `0.1::float8::numeric` is `0.1`; NaN/Infinity are 0A000 (see `pgio`).
//! - numeric → float: via the decimal text, correctly rounded.
//! - `numeric(p,s)`: round half away from zero to `s` digits, then 22003 `numeric field
//!   overflow` if the integer part needs more than `p - s` digits.
//! - `varchar(n)`: explicit casts truncate to `n` characters silently; assignment and implicit
//!   coercion raise 22001 `value too long for type character varying(n)` unless everything
//!   beyond `n` characters is blanks, which are then dropped.
//! - `char(n)`: the same rules (`character(n)` in the message); values are stored without
//!   trailing blanks (see `value.rs`), which makes char → text's blank stripping automatic.
//!
//! The kind only changes *how* a cast behaves (the varchar/char length rule), never *whether*
//! it is allowed: [`cast`] performs every cast PostgreSQL has in any context, because a
//! `Value::Text` does not say whether it came from a `text` column or an untyped literal (which
//! may go anywhere implicitly). The planner decides permission with [`can_cast`] on types.

// `PgResult` (a 176-byte `PgError`) is the crate-wide error contract and these signatures are
// called by other crates as they are; boxing the error here alone would buy nothing.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::error::{PgError, PgResult, sqlstate};
use crate::pgio;
use crate::types::DataType;
use crate::value::Value;

/// Whether a cast is written by the user (`CAST`, `::`), applied when a value is stored into a
/// column (assignment), or inserted silently where an operator or function needs another type
/// (implicit). They differ for `varchar(n)`/`char(n)`: an explicit cast silently truncates, the
/// others raise 22001 for a too-long value, as in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastKind {
    Explicit,
    Assignment,
    Implicit,
}

impl CastKind {
    /// Permissiveness: a cast allowed in a context is allowed in every more permissive one.
    fn rank(self) -> u8 {
        match self {
            CastKind::Implicit => 0,
            CastKind::Assignment => 1,
            CastKind::Explicit => 2,
        }
    }
}

fn is_string(t: DataType) -> bool {
    matches!(t, DataType::Text | DataType::Varchar(_) | DataType::Char(_))
}

/// Position in PostgreSQL's numeric promotion chain; casting up it is implicit, down it is an
/// assignment cast (this reproduces every numeric entry of `pg_cast`).
fn numeric_rank(t: DataType) -> Option<u8> {
    match t {
        DataType::Int2 => Some(0),
        DataType::Int4 => Some(1),
        DataType::Int8 => Some(2),
        DataType::Numeric(_) => Some(3),
        DataType::Float4 => Some(4),
        DataType::Float8 => Some(5),
        _ => None,
    }
}

/// The least permissive context in which PostgreSQL casts `from` to `to`, or `None` when it
/// has no such cast at all.
pub fn cast_context(from: DataType, to: DataType) -> Option<CastKind> {
    use DataType as T;
    if from == T::Unknown {
        return Some(CastKind::Implicit);
    }
    if to == T::Unknown {
        return None;
    }
    if from.base() == to.base() || (is_string(from) && is_string(to)) {
        return Some(CastKind::Implicit);
    }
    if is_string(from) {
        return Some(CastKind::Explicit);
    }
    if is_string(to) {
        return Some(CastKind::Assignment);
    }
    if let (Some(a), Some(b)) = (numeric_rank(from), numeric_rank(to)) {
        return Some(if a < b {
            CastKind::Implicit
        } else {
            CastKind::Assignment
        });
    }
    match (from, to) {
        (T::Int4, T::Bool) | (T::Bool, T::Int4) => Some(CastKind::Explicit),
        (T::Timestamp, T::TimestampTz) => Some(CastKind::Implicit),
        (T::TimestampTz, T::Timestamp) => Some(CastKind::Assignment),
        (T::Date, T::Timestamp | T::TimestampTz) => Some(CastKind::Implicit),
        (T::Timestamp | T::TimestampTz, T::Date) => Some(CastKind::Assignment),
        _ => None,
    }
}

/// Whether PostgreSQL allows casting `from` to `to` in context `kind`.
pub fn can_cast(from: DataType, to: DataType, kind: CastKind) -> bool {
    cast_context(from, to).is_some_and(|needed| needed.rank() <= kind.rank())
}

/// A type's name without its modifier, as PostgreSQL's `format_type_be` prints it in
/// `cannot cast type X to Y`.
fn plain_name(t: DataType) -> String {
    t.unmodified_sql_name().to_owned()
}

fn cannot_cast(from: DataType, to: DataType) -> PgError {
    PgError::new(
        sqlstate::CANNOT_COERCE,
        format!(
            "cannot cast type {} to {}",
            plain_name(from),
            plain_name(to)
        ),
    )
}

/// Converts `v` to type `to`. NULL stays NULL.
pub fn cast(v: &Value, to: DataType, kind: CastKind) -> PgResult<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if to == DataType::Unknown {
        return Ok(v.clone());
    }
    let from = pgio::value_type(v);
    if cast_context(from, to).is_none() {
        return Err(cannot_cast(from, to));
    }
    if is_string(to) {
        let text: Cow<'_, str> = match v {
            Value::Text(s) => Cow::Borrowed(s),
            // booltext, not boolout: PostgreSQL's bool → text cast spells the words out.
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            other => Cow::Owned(pgio::format_text_string(other, from)),
        };
        return coerce_string(&text, to, kind);
    }
    use DataType as T;
    Ok(match (v, to) {
        (Value::Text(s), _) => pgio::parse_text(s, to)?,
        (Value::Bool(b), T::Bool) => Value::Bool(*b),
        (Value::Bool(b), T::Int4) => Value::Int4(i32::from(*b)),
        (Value::Int4(i), T::Bool) => Value::Bool(*i != 0),
        (Value::Bytea(b), T::Bytea) => Value::Bytea(b.clone()),
        (Value::Timestamp(t), T::Timestamp) => Value::Timestamp(*t),
        (Value::TimestampTz(t), T::TimestampTz) => Value::TimestampTz(*t),
        (Value::TimestampTz(t), T::Timestamp) => Value::Timestamp(timestamptz_to_local(*t)),
        (Value::Timestamp(t), T::TimestampTz) => Value::TimestampTz(local_to_timestamptz(*t)),
        (Value::Interval(iv), T::Interval) => Value::Interval(*iv),
        (Value::Date(d), T::Date) => Value::Date(*d),
        (Value::Date(d), T::Timestamp) => Value::Timestamp(pgio::date_to_timestamp(*d)?),
        (Value::Date(d), T::TimestampTz) => {
            Value::TimestampTz(local_to_timestamptz(pgio::date_to_timestamp(*d)?))
        }
        (Value::Timestamp(t), T::Date) => Value::Date(pgio::timestamp_to_date(*t)),
        (Value::TimestampTz(t), T::Date) => {
            Value::Date(pgio::timestamp_to_date(timestamptz_to_local(*t)))
        }
        (Value::PgLsn(l), T::PgLsn) => Value::PgLsn(*l),
        (_, T::Int2) => {
            Value::Int2(to_integer(v, i64::from(i16::MIN), i64::from(i16::MAX), "smallint")? as i16)
        }
        (_, T::Int4) => {
            Value::Int4(to_integer(v, i64::from(i32::MIN), i64::from(i32::MAX), "integer")? as i32)
        }
        (_, T::Int8) => Value::Int8(to_integer(v, i64::MIN, i64::MAX, "bigint")?),
        (_, T::Float4) => Value::Float4(to_float4(v)?),
        (_, T::Float8) => Value::Float8(to_float8(v)),
        (_, T::Numeric(typmod)) => Value::Numeric(to_numeric(v, typmod)?),
        _ => return Err(cannot_cast(from, to)),
    })
}

/// The length coercion of `varchar(n)` (`varchar()`) and `char(n)` (`bpchar()`), producing
/// the stored form (char without trailing blanks).
fn coerce_string(s: &str, to: DataType, kind: CastKind) -> PgResult<Value> {
    let too_long = |type_name: String| {
        PgError::new(
            sqlstate::STRING_DATA_RIGHT_TRUNCATION,
            format!("value too long for type {type_name}"),
        )
    };
    match to {
        DataType::Varchar(Some(n)) => match s.char_indices().nth(n as usize) {
            None => Ok(Value::text(s)),
            Some((cut, _)) => {
                if kind != CastKind::Explicit && s[cut..].bytes().any(|c| c != b' ') {
                    return Err(too_long(format!("character varying({n})")));
                }
                Ok(Value::text(&s[..cut]))
            }
        },
        DataType::Char(n) => {
            let stored = s.trim_end_matches(' ');
            match stored.char_indices().nth(n as usize) {
                None => Ok(Value::text(stored)),
                Some((cut, _)) => {
                    // `stored` ends in a non-blank, so the excess is never all blanks.
                    if kind != CastKind::Explicit {
                        return Err(too_long(format!("character({n})")));
                    }
                    Ok(Value::text(stored[..cut].trim_end_matches(' ')))
                }
            }
        }
        _ => Ok(Value::text(s)),
    }
}

/// int2/int4/int8 from any number, with PostgreSQL's rounding and range check.
fn to_integer(v: &Value, min: i64, max: i64, type_name: &str) -> PgResult<i64> {
    let out_of_range = || PgError::numeric_out_of_range(type_name);
    let float_to_int = |x: f64| -> PgResult<i64> {
        // rint(), then FLOAT8_FITS_IN_INTxx: min ≤ x < -min (both powers of two, exact).
        let r = x.round_ties_even();
        if r.is_nan() || r < min as f64 || r >= -(min as f64) {
            return Err(out_of_range());
        }
        Ok(r as i64)
    };
    let wide: i128 = match v {
        Value::Int2(i) => i128::from(*i),
        Value::Int4(i) => i128::from(*i),
        Value::Int8(i) => i128::from(*i),
        Value::Float4(x) => i128::from(float_to_int(f64::from(*x))?),
        Value::Float8(x) => i128::from(float_to_int(*x)?),
        Value::Numeric(d) => round_decimal_to_integer(d),
        other => return Err(cannot_cast(pgio::value_type(other), DataType::Int8)),
    };
    if wide < i128::from(min) || wide > i128::from(max) {
        return Err(out_of_range());
    }
    Ok(wide as i64)
}

/// `round_var(var, 0)`: half away from zero.
fn round_decimal_to_integer(d: &Decimal) -> i128 {
    let m = d.mantissa();
    let divisor = 10i128.pow(d.scale());
    let (q, r) = (m / divisor, m % divisor);
    if r.unsigned_abs() * 2 >= divisor.unsigned_abs() {
        q + m.signum()
    } else {
        q
    }
}

fn to_float8(v: &Value) -> f64 {
    match v {
        Value::Int2(i) => f64::from(*i),
        Value::Int4(i) => f64::from(*i),
        Value::Int8(i) => *i as f64,
        Value::Float4(x) => f64::from(*x),
        Value::Float8(x) => *x,
        Value::Numeric(d) => pgio::numeric_to_f64(d),
        _ => 0.0,
    }
}

fn to_float4(v: &Value) -> PgResult<f32> {
    Ok(match v {
        Value::Int2(i) => f32::from(*i),
        // Nearest float, as C's integer-to-float conversion rounds.
        Value::Int4(i) => *i as f32,
        Value::Int8(i) => *i as f32,
        Value::Float4(x) => *x,
        Value::Float8(x) => {
            let r = *x as f32;
            if r.is_infinite() && !x.is_infinite() {
                return Err(PgError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value out of range: overflow",
                ));
            }
            if r == 0.0 && *x != 0.0 {
                return Err(PgError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value out of range: underflow",
                ));
            }
            r
        }
        Value::Numeric(d) => pgio::numeric_to_f32(d),
        _ => 0.0,
    })
}

fn to_numeric(v: &Value, typmod: Option<(u16, u16)>) -> PgResult<Decimal> {
    let exact = match v {
        Value::Int2(i) => Decimal::from(*i),
        Value::Int4(i) => Decimal::from(*i),
        Value::Int8(i) => Decimal::from(*i),
        Value::Numeric(d) => *d,
        Value::Float4(x) => return pgio::numeric_from_float(f64::from(*x), true, typmod),
        Value::Float8(x) => return pgio::numeric_from_float(*x, false, typmod),
        other => {
            return Err(cannot_cast(
                pgio::value_type(other),
                DataType::Numeric(None),
            ));
        }
    };
    match typmod {
        Some((p, s)) => pgio::apply_numeric_typmod(&exact, p, s),
        None => Ok(exact),
    }
}

/// `apply_typmod` for a `numeric(precision, scale)` target; see [`pgio::apply_numeric_typmod`].
/// `timestamptz` → `timestamp`: the wall-clock reading in the current TimeZone (infinities
/// stay).
pub fn timestamptz_to_local(t: i64) -> i64 {
    if t == i64::MAX || t == i64::MIN {
        return t;
    }
    crate::tz::current().utc_to_local(t)
}

/// `timestamp` → `timestamptz`: the instant the wall-clock reading names in the current
/// TimeZone (infinities stay).
pub fn local_to_timestamptz(t: i64) -> i64 {
    if t == i64::MAX || t == i64::MIN {
        return t;
    }
    crate::tz::current().local_to_utc(t)
}

pub fn apply_numeric_typmod(d: &Decimal, precision: u16, scale: u16) -> PgResult<Decimal> {
    pgio::apply_numeric_typmod(d, precision, scale)
}

#[cfg(test)]
mod tests;
