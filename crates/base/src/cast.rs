//! Casts between SQL types with PostgreSQL's semantics.
//!
//! TEMPORARY: the signature is final; the body covers a subset and is being completed
//! (integer/float/numeric conversions with range checks, text parsing via `pgio`, varchar/char
//! length rules, timestamps).

use crate::error::{PgError, PgResult};
use crate::types::DataType;
use crate::value::Value;

/// Whether a cast is written by the user (`CAST`, `::`) or applied implicitly when a value is
/// stored into a column (assignment). They differ for `varchar(n)`/`char(n)`: an explicit cast
/// silently truncates, an assignment of a too-long value is an error (22001), as in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastKind {
    Explicit,
    Assignment,
    Implicit,
}

/// Converts `v` to type `to`. NULL stays NULL.
pub fn cast(v: &Value, to: DataType, kind: CastKind) -> PgResult<Value> {
    let _ = kind;
    if v.is_null() {
        return Ok(Value::Null);
    }
    match (v, to) {
        (Value::Text(s), _) => crate::pgio::parse_text(s, to),
        (_, DataType::Int4) => v
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Value::Int4)
            .ok_or_else(|| PgError::numeric_out_of_range("integer")),
        (_, DataType::Int8) => v
            .as_i64()
            .map(Value::Int8)
            .ok_or_else(|| PgError::feature_not_supported(format!("cast to {to}"))),
        _ => Err(PgError::feature_not_supported(format!("cast to {to}"))),
    }
}
