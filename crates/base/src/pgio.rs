//! PostgreSQL's text and binary representations of values (`typinput`/`typoutput`,
//! `typreceive`/`typsend`), as used on the wire, by casts from and to text, and by COPY.
//!
//! TEMPORARY: only the signatures are final; the bodies cover a subset of types and are being
//! completed (see the sql crate's helper task). Do not rely on unsupported types yet.

use crate::error::{PgError, PgResult, sqlstate};
use crate::types::DataType;
use crate::value::Value;

/// Appends the text form of a non-NULL `v` (declared type `ty`) to `out`.
pub fn format_text(v: &Value, ty: DataType, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = ty;
    let _ = match v {
        Value::Null => Ok(()),
        Value::Bool(b) => out.write_all(if *b { b"t" } else { b"f" }),
        Value::Int2(i) => write!(out, "{i}"),
        Value::Int4(i) => write!(out, "{i}"),
        Value::Int8(i) => write!(out, "{i}"),
        Value::Float4(f) => write!(out, "{f}"),
        Value::Float8(f) => write!(out, "{f}"),
        Value::Numeric(d) => write!(out, "{d}"),
        Value::Text(s) => out.write_all(s.as_bytes()),
        Value::Bytea(b) => {
            let _ = out.write_all(b"\\x");
            b.iter().try_for_each(|x| write!(out, "{x:02x}"))
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => write!(out, "{t}"),
    };
}

/// Parses the text form `s` as type `ty`.
pub fn parse_text(s: &str, ty: DataType) -> PgResult<Value> {
    let bad = || {
        PgError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {}: \"{s}\"", ty.short_name()),
        )
    };
    Ok(match ty {
        DataType::Int2 => Value::Int2(s.trim().parse().map_err(|_| bad())?),
        DataType::Int4 => Value::Int4(s.trim().parse().map_err(|_| bad())?),
        DataType::Int8 => Value::Int8(s.trim().parse().map_err(|_| bad())?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            Value::text(s)
        }
        _ => {
            return Err(PgError::feature_not_supported(format!(
                "text input for {ty}"
            )));
        }
    })
}

/// Appends the binary (send) form of a non-NULL `v` to `out`.
pub fn format_binary(v: &Value, ty: DataType, out: &mut Vec<u8>) -> PgResult<()> {
    match v {
        Value::Int2(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Int4(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Int8(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        _ => {
            return Err(PgError::feature_not_supported(format!(
                "binary output for {ty}"
            )));
        }
    }
    Ok(())
}

/// Parses the binary (receive) form `b` as type `ty`.
pub fn parse_binary(b: &[u8], ty: DataType) -> PgResult<Value> {
    let bad = || {
        PgError::new(
            sqlstate::INVALID_BINARY_REPRESENTATION,
            format!("incorrect binary data format for type {}", ty.short_name()),
        )
    };
    Ok(match ty {
        DataType::Int4 => Value::Int4(i32::from_be_bytes(b.try_into().map_err(|_| bad())?)),
        DataType::Int8 => Value::Int8(i64::from_be_bytes(b.try_into().map_err(|_| bad())?)),
        DataType::Text | DataType::Varchar(_) | DataType::Unknown => {
            Value::text(std::str::from_utf8(b).map_err(|_| bad())?)
        }
        _ => {
            return Err(PgError::feature_not_supported(format!(
                "binary input for {ty}"
            )));
        }
    })
}
