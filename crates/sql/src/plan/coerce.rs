//! Type rules of the binder: which conversions are implicit or allowed on assignment, the
//! result type of numeric operators, and the common type of CASE/IN/COALESCE branches —
//! PostgreSQL's `pg_cast` contexts and `select_common_type`, for lockstep's types.

use base::cast::{CastKind, can_cast};
use base::error::sqlstate;
use base::{DataType, PgError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Bool,
    Numeric,
    String,
    DateTime,
    Bytea,
    Interval,
    PgLsn,
    Unknown,
}

fn category(t: DataType) -> Category {
    match t {
        DataType::Bool => Category::Bool,
        DataType::Int2
        | DataType::Int4
        | DataType::Int8
        | DataType::Float4
        | DataType::Float8
        | DataType::Numeric(_) => Category::Numeric,
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => Category::String,
        DataType::Date | DataType::Timestamp | DataType::TimestampTz => Category::DateTime,
        DataType::Bytea => Category::Bytea,
        DataType::Interval => Category::Interval,
        DataType::PgLsn => Category::PgLsn,
        DataType::Unknown => Category::Unknown,
    }
}

/// Rank in the numeric promotion order int2 < int4 < int8 < numeric < float4 < float8.
fn numeric_rank(t: DataType) -> u8 {
    match t {
        DataType::Int2 => 0,
        DataType::Int4 => 1,
        DataType::Int8 => 2,
        DataType::Numeric(_) => 3,
        DataType::Float4 => 4,
        _ => 5,
    }
}

/// The type both operands of a numeric operator are promoted to, or `None` if either is not
/// numeric. As PostgreSQL: the wider integer; numeric with integers; double precision when a
/// float meets anything but a float4 of its own kind.
pub fn promote_numeric(a: DataType, b: DataType) -> Option<DataType> {
    let (a, b) = match (a, b) {
        (DataType::Unknown, t) | (t, DataType::Unknown) if t.is_numeric_family() => (t, t),
        _ => (a, b),
    };
    if !a.is_numeric_family() || !b.is_numeric_family() {
        return None;
    }
    let (a, b) = (a.base(), b.base());
    if a == b {
        return Some(a);
    }
    let is_float = |t: DataType| matches!(t, DataType::Float4 | DataType::Float8);
    if is_float(a) || is_float(b) {
        return Some(DataType::Float8);
    }
    Some(if numeric_rank(a) >= numeric_rank(b) {
        a
    } else {
        b
    })
}

/// Whether `from` converts to `to` implicitly (in expressions). An untyped literal or
/// parameter (`unknown`) converts to anything; otherwise PostgreSQL's cast contexts
/// (`base::cast`) decide.
pub fn can_implicit(from: DataType, to: DataType) -> bool {
    from == to || from == DataType::Unknown || can_cast(from, to, CastKind::Implicit)
}

/// Whether `from` may be stored into a column of type `to` (assignment context).
pub fn can_assign(from: DataType, to: DataType) -> bool {
    from == to || from == DataType::Unknown || can_cast(from, to, CastKind::Assignment)
}

/// PostgreSQL's `select_common_type` for CASE, IN, COALESCE, ...: unknown inputs follow
/// the others (all unknown → text); numbers promote; strings become text unless all are
/// the same type; mixing categories is 42804.
pub fn common_type(types: &[DataType], context: &str) -> Result<DataType, PgError> {
    let known: Vec<DataType> = types
        .iter()
        .copied()
        .filter(|t| *t != DataType::Unknown)
        .collect();
    let Some(&first) = known.first() else {
        return Ok(DataType::Text);
    };
    let mut result = first;
    for &t in &known[1..] {
        if category(t) != category(result) {
            return Err(PgError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "{context} types {} and {} cannot be matched",
                    result.sql_name(),
                    t.sql_name()
                ),
            ));
        }
        result = match category(t) {
            Category::Numeric => promote_numeric(result, t).unwrap_or(DataType::Float8),
            Category::String => {
                if t.base() == result.base() {
                    if t == result { t } else { t.base() }
                } else {
                    DataType::Text
                }
            }
            Category::DateTime => match (result, t) {
                (a, b) if a == b => a,
                // date widens to the timestamp it meets (PostgreSQL's implicit casts);
                // timestamp with timestamptz is timestamptz, the preferred type.
                (DataType::Date, DataType::Timestamp) | (DataType::Timestamp, DataType::Date) => {
                    DataType::Timestamp
                }
                _ => DataType::TimestampTz,
            },
            _ => result,
        };
    }
    Ok(match result {
        // A common type never keeps one branch's length limit.
        DataType::Varchar(_) if known.iter().any(|t| *t != result) => DataType::Varchar(None),
        other => other,
    })
}

/// Whether values of the two types can be compared with `=`, `<`, ... (same category).
pub fn comparable(a: DataType, b: DataType) -> bool {
    let (ca, cb) = (category(a), category(b));
    ca == cb || ca == Category::Unknown || cb == Category::Unknown
}

/// PostgreSQL's "operator does not exist" error.
pub fn no_operator(op: &str, left: DataType, right: DataType) -> PgError {
    PgError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!(
            "operator does not exist: {} {op} {}",
            left.sql_name(),
            right.sql_name()
        ),
    )
    .with_hint(
        "No operator matches the given name and argument types. You might need to add explicit type casts.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType as T;

    #[test]
    fn numeric_promotion() {
        assert_eq!(promote_numeric(T::Int4, T::Int4), Some(T::Int4));
        assert_eq!(promote_numeric(T::Int2, T::Int4), Some(T::Int4));
        assert_eq!(promote_numeric(T::Int4, T::Int8), Some(T::Int8));
        assert_eq!(
            promote_numeric(T::Int4, T::Numeric(Some((10, 2)))),
            Some(T::Numeric(None))
        );
        assert_eq!(promote_numeric(T::Int4, T::Float4), Some(T::Float8));
        assert_eq!(promote_numeric(T::Float4, T::Float4), Some(T::Float4));
        assert_eq!(
            promote_numeric(T::Numeric(None), T::Float8),
            Some(T::Float8)
        );
        assert_eq!(promote_numeric(T::Unknown, T::Int4), Some(T::Int4));
        assert_eq!(promote_numeric(T::Text, T::Int4), None);
    }

    #[test]
    fn common_types() {
        assert_eq!(
            common_type(&[T::Unknown, T::Unknown], "CASE").ok(),
            Some(T::Text)
        );
        assert_eq!(
            common_type(&[T::Int4, T::Unknown], "CASE").ok(),
            Some(T::Int4)
        );
        assert_eq!(
            common_type(&[T::Int4, T::Numeric(None)], "CASE").ok(),
            Some(T::Numeric(None))
        );
        assert_eq!(
            common_type(&[T::Varchar(Some(3)), T::Text], "CASE").ok(),
            Some(T::Text)
        );
        let e = common_type(&[T::Int4, T::Text], "CASE").expect_err("mismatch");
        assert_eq!(e.message, "CASE types integer and text cannot be matched");
    }

    #[test]
    fn assignment_rules() {
        assert!(can_assign(T::Int8, T::Int4));
        assert!(can_assign(T::Int4, T::Text));
        assert!(!can_assign(T::Text, T::Int4));
        assert!(can_assign(T::TimestampTz, T::Timestamp));
        assert!(!can_implicit(T::TimestampTz, T::Timestamp));
        assert!(!can_assign(T::Bool, T::Int4));
    }
}
