//! SQL values as lockstep stores and computes them.
//!
//! One `Value` is 24 bytes: a tag and a 16-byte payload. Strings and byte strings are
//! reference-counted so that copying a row out of a version chain, or into a WAL record, never
//! copies their bytes. `char(n)` values are stored without trailing blanks and padded only on
//! output, which is how PostgreSQL compares them anyway (trailing blanks are insignificant) and
//! saves the 84 blanks of every `pgbench_accounts.filler`.
//!
//! Comparison: `Value` has a total order (`Ord`) used by indexes, `ORDER BY` and grouping.
//! NULL sorts after every non-NULL value (PostgreSQL's default `NULLS LAST` for ascending
//! order); numbers of different types compare by numeric value; floats order NaN above every
//! other number and treat -0 as 0, as PostgreSQL does; strings compare bytewise (the "C"
//! collation). SQL's three-valued comparison (NULL compared to anything is unknown) is the
//! caller's job: check `is_null` first.

use std::cmp::Ordering;
use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01 (both UTC).
pub const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(Decimal),
    /// `text`, `varchar` and `char` (the latter stored without trailing blanks).
    Text(Arc<str>),
    Bytea(Arc<[u8]>),
    /// Days since 2000-01-01 (`i32::MIN`/`i32::MAX`: -infinity/infinity, as PostgreSQL's
    /// DATEVAL_NOBEGIN/NOEND).
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00, no time zone.
    Timestamp(i64),
    /// Microseconds since 2000-01-01 00:00:00 UTC.
    TimestampTz(i64),
    Interval(Interval),
    /// A WAL position (`pg_lsn`).
    PgLsn(u64),
}

/// An `interval` as PostgreSQL stores it: months, days and microseconds are separate because
/// a month has no fixed number of days and a day no fixed number of hours (DST); comparison
/// and hashing normalise with PostgreSQL's 30-day months and 24-hour days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// Microseconds in a day, as PostgreSQL's `USECS_PER_DAY`.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Interval {
    /// An interval of `micros` microseconds (months and days zero).
    pub fn from_micros(micros: i64) -> Interval {
        Interval {
            months: 0,
            days: 0,
            micros,
        }
    }

    /// The interval of a `Duration` (saturating at `i64::MAX` microseconds).
    pub fn from_duration(d: std::time::Duration) -> Interval {
        Interval::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// `interval_cmp_value`: the span in microseconds with 30-day months and 24-hour days,
    /// in 128 bits so no interval overflows.
    pub fn cmp_value(self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(MICROS_PER_DAY)
            + i128::from(self.micros)
    }

    /// `interval_justify_hours`: whole days out of the microseconds, signs made consistent
    /// (what `timestamp - timestamp` returns).
    pub fn justify_hours(self) -> Interval {
        let mut days = i64::from(self.days) + self.micros / MICROS_PER_DAY;
        let mut micros = self.micros % MICROS_PER_DAY;
        if days > 0 && micros < 0 {
            micros += MICROS_PER_DAY;
            days -= 1;
        } else if days < 0 && micros > 0 {
            micros -= MICROS_PER_DAY;
            days += 1;
        }
        Interval {
            months: self.months,
            days: i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX }),
            micros,
        }
    }
}

/// A stored row: one value per column, shared between versions, readers and WAL records.
pub type Row = Arc<[Value]>;

const _: () = assert!(std::mem::size_of::<Value>() == 24);

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    /// The value as an i64 if it is an integer of any width.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int2(v) => Some(i64::from(*v)),
            Value::Int4(v) => Some(i64::from(*v)),
            Value::Int8(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int2(v) => Some(f64::from(*v)),
            Value::Int4(v) => Some(f64::from(*v)),
            Value::Int8(v) => Some(*v as f64),
            Value::Float4(v) => Some(f64::from(*v)),
            Value::Float8(v) => Some(*v),
            Value::Numeric(d) => d.to_f64(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Rank of the value's kind in the total order across kinds that cannot be compared by
    /// content (a bool against a string, say). Such comparisons only happen for values of
    /// different declared types meeting in a sort, which the planner prevents; the rank just
    /// keeps `Ord` total.
    fn kind_rank(&self) -> u8 {
        match self {
            Value::Bool(_) => 0,
            Value::Int2(_)
            | Value::Int4(_)
            | Value::Int8(_)
            | Value::Float4(_)
            | Value::Float8(_)
            | Value::Numeric(_) => 1,
            Value::Text(_) => 2,
            Value::Bytea(_) => 3,
            Value::Timestamp(_) | Value::TimestampTz(_) => 4,
            Value::Date(_) => 8,
            Value::Interval(_) => 5,
            Value::PgLsn(_) => 6,
            Value::Null => 9,
        }
    }
}

/// PostgreSQL's float order: NaN equals NaN and is above every other number; -0 equals 0.
fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn numeric_cmp(a: &Value, b: &Value) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    let is_float = |v: &Value| matches!(v, Value::Float4(_) | Value::Float8(_));
    if is_float(a) || is_float(b) {
        return float_cmp(a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    }
    // Both are integers or numerics and at least one is a numeric: compare exactly.
    let to_dec = |v: &Value| match v {
        Value::Numeric(d) => *d,
        other => Decimal::from(other.as_i64().unwrap_or(0)),
    };
    to_dec(a).cmp(&to_dec(b))
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        let (ra, rb) = (self.kind_rank(), other.kind_rank());
        if ra != rb {
            return ra.cmp(&rb);
        }
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytea(a), Value::Bytea(b)) => a.cmp(b),
            (
                Value::Timestamp(a) | Value::TimestampTz(a),
                Value::Timestamp(b) | Value::TimestampTz(b),
            ) => a.cmp(b),
            (Value::Interval(a), Value::Interval(b)) => a.cmp_value().cmp(&b.cmp_value()),
            (Value::PgLsn(a), Value::PgLsn(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (a, b) => numeric_cmp(a, b),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_types() {
        assert_eq!(Value::Int4(3), Value::Int8(3));
        assert!(Value::Int2(2) < Value::Int8(3));
        assert_eq!(Value::Numeric(Decimal::new(30, 1)), Value::Int4(3));
        assert!(Value::Float8(2.5) < Value::Int4(3));
        assert_eq!(Value::Float8(-0.0), Value::Float8(0.0));
        assert!(Value::Float8(f64::NAN) > Value::Float8(f64::INFINITY));
        assert_eq!(Value::Float8(f64::NAN), Value::Float8(f64::NAN));
    }

    #[test]
    fn intervals_compare_by_normalised_span() {
        let day = Value::Interval(Interval {
            months: 0,
            days: 1,
            micros: 0,
        });
        assert_eq!(day, Value::Interval(Interval::from_micros(MICROS_PER_DAY)));
        assert!(Value::Interval(Interval::from_micros(1)) < day);
        let j = Interval::from_micros(26 * 3_600_000_000).justify_hours();
        assert_eq!((j.days, j.micros), (1, 2 * 3_600_000_000));
        let n = Interval::from_micros(-26 * 3_600_000_000).justify_hours();
        assert_eq!((n.days, n.micros), (-1, -2 * 3_600_000_000));
    }

    #[test]
    fn null_sorts_last() {
        assert!(Value::Null > Value::Int4(i32::MAX));
        assert!(Value::Null > Value::text("zzz"));
        assert_eq!(Value::Null, Value::Null);
    }

    #[test]
    fn strings_compare_bytewise() {
        assert!(Value::text("B") < Value::text("a"));
        assert!(Value::text("ab") < Value::text("abc"));
    }
}
