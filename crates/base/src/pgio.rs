//! PostgreSQL's text and binary representations of values (`typinput`/`typoutput`,
//! `typreceive`/`typsend`), as used on the wire, by casts from and to text, and by COPY.
//!
//! Scope: every type of [`DataType`], reproducing PostgreSQL 15 with its default settings —
//! `DateStyle = ISO, MDY`, `extra_float_digits = 1`, `bytea_output = hex`,
//! `client_encoding = server_encoding = UTF8`; `TimeZone` is the session's (`crate::tz`). Texts and SQLSTATEs of errors are PostgreSQL's.
//!
//! | type | text output | text input | binary |
//! | --- | --- | --- | --- |
//! | bool | `t`/`f` | `t`,`true`,`y`,`yes`,`on`,`1` … any case, unique prefixes, blanks | 1 byte, non-zero = true |
//! | int2/4/8 | decimal | blanks, sign, decimal digits (22P02 / 22003) | big-endian |
//! | float4/8 | shortest round-trip (`pgio/float.rs`) | `strtod` syntax, `NaN`, `Infinity`, `inf` | IEEE big-endian |
//! | numeric | plain, keeps the scale | `pgio/numeric.rs`; typmod applied | PostgreSQL's base-10000 |
//! | text, varchar | as stored | as given | UTF-8 |
//! | char(n) | blank-padded to n characters | trailing blanks stripped | padded UTF-8 |
//! | bytea | `\x` + lowercase hex | hex `\x…` or escape format | raw bytes |
//! | timestamp(tz) | ISO (`pgio/datetime.rs`) | ISO subset (`pgio/datetime.rs`) | int64 µs since 2000-01-01 |
//! | interval | postgres style (`pgio/interval.rs`) | `<n> <unit>` pairs and `HH:MM:SS` | int64 µs, int32 days, int32 months |
//! | pg_lsn | `X/Y` upper-case hex | `X/Y` | uint64 |
//!
//! Invariants: nothing here panics on any input (malformed text or bytes are errors), and every
//! value a parse function returns formats back to text that parses to the same value. Values are
//! stored the way `value.rs` describes: `char(n)` without trailing blanks, timestamps as µs since
//! 2000-01-01 (UTC for timestamptz) with `i64::MIN`/`i64::MAX` meaning `-infinity`/`infinity`.
//!
//! Length limits of `varchar(n)`/`char(n)` are not applied here but by `cast` (explicit casts
//! truncate, assignment errors), so that one place decides between PostgreSQL's two rules. The
//! `numeric(p,s)` typmod *is* applied by input and receive, as `numeric_in`/`numeric_recv` do.
//!
//! Deliberately narrowed (each documented in its submodule): numeric is `rust_decimal` (28
//! fractional digits, |mantissa| < 2^96; beyond that 22003, never silent rounding; no NaN or
//! Infinity: 0A000); timestamp input accepts the ISO forms only and the UTC zone only; float
//! input rejects glibc's hexadecimal floats.

// `PgResult` (a 176-byte `PgError`) is the crate-wide error contract and these signatures are
// called by other crates as they are; boxing the error here alone would buy nothing.
#![allow(clippy::result_large_err)]

mod datetime;
mod float;
mod interval;
mod numeric;
#[cfg(test)]
mod tests;

use std::io::Write;

use rust_decimal::Decimal;

use crate::error::{PgError, PgResult, sqlstate};
use crate::types::DataType;
use crate::value::Value;

pub use datetime::{
    DATE_INFINITY, DATE_NEG_INFINITY, TIMESTAMP_INFINITY, TIMESTAMP_NEG_INFINITY, USECS_PER_DAY,
    USECS_PER_SEC, civil_from_days, date_to_timestamp, days_from_civil, timestamp_out_of_range,
    timestamp_to_date,
};

/// Appends the text form of a non-NULL `v` (declared type `ty`) to `out`.
///
/// The value's own variant decides the format; `ty` adds what the variant cannot carry:
/// blank padding for `char(n)`, and `+00` when a timestamp is declared `timestamptz` (or not).
/// NULL appends nothing: the protocol sends NULL as a length of -1, which is the caller's job.
pub fn format_text(v: &Value, ty: DataType, out: &mut Vec<u8>) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Int2(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int4(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int8(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float4(f) => float::format_f32(*f, out),
        Value::Float8(f) => float::format_f64(*f, out),
        Value::Numeric(d) => numeric::format_numeric(d, out),
        Value::Text(s) => {
            out.extend_from_slice(s.as_bytes());
            if let DataType::Char(n) = ty {
                pad_blanks(s, n, out);
            }
        }
        Value::Bytea(b) => {
            out.reserve(2 + 2 * b.len());
            out.extend_from_slice(b"\\x");
            for byte in b.iter() {
                out.push(HEX_DIGITS[usize::from(byte >> 4)]);
                out.push(HEX_DIGITS[usize::from(byte & 0xF)]);
            }
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => {
            let with_tz = match ty {
                DataType::TimestampTz => true,
                DataType::Timestamp => false,
                _ => matches!(v, Value::TimestampTz(_)),
            };
            datetime::format_timestamp(*t, with_tz, out);
        }
        Value::Interval(iv) => interval::format_interval(iv, out),
        Value::PgLsn(l) => {
            let _ = write!(out, "{}", crate::lsn::Lsn(*l));
        }
        Value::Date(d) => datetime::format_date(*d, out),
    }
}

/// [`format_text`] into a new `String`.
pub fn format_text_string(v: &Value, ty: DataType) -> String {
    let mut out = Vec::new();
    format_text(v, ty, &mut out);
    // Every branch of format_text writes UTF-8; the lossy conversion never replaces anything.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bpcharout`: stored values lack their trailing blanks; pad to `n` characters.
fn pad_blanks(s: &str, n: u32, out: &mut Vec<u8>) {
    let have = s.chars().count();
    let want = n as usize;
    if have < want {
        out.extend(std::iter::repeat_n(b' ', want - have));
    }
}

/// The type a value has by itself (text for NULL and for all string values), for callers that
/// have a value but no declared type, such as diagnostics.
pub fn value_type(v: &Value) -> DataType {
    match v {
        Value::Null | Value::Text(_) => DataType::Text,
        Value::Bool(_) => DataType::Bool,
        Value::Int2(_) => DataType::Int2,
        Value::Int4(_) => DataType::Int4,
        Value::Int8(_) => DataType::Int8,
        Value::Float4(_) => DataType::Float4,
        Value::Float8(_) => DataType::Float8,
        Value::Numeric(_) => DataType::Numeric(None),
        Value::Bytea(_) => DataType::Bytea,
        Value::Date(_) => DataType::Date,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::TimestampTz(_) => DataType::TimestampTz,
        Value::Interval(_) => DataType::Interval,
        Value::PgLsn(_) => DataType::PgLsn,
    }
}

/// Parses the text form `s` as type `ty` (PostgreSQL's `typinput` with the column's typmod).
pub fn parse_text(s: &str, ty: DataType) -> PgResult<Value> {
    Ok(match ty {
        DataType::Bool => Value::Bool(parse_bool(s).ok_or_else(|| syntax_error("boolean", s))?),
        DataType::Int2 => {
            Value::Int2(parse_int(s, i64::from(i16::MIN), i16::MAX.into(), "smallint")? as i16)
        }
        DataType::Int4 => {
            Value::Int4(parse_int(s, i64::from(i32::MIN), i32::MAX.into(), "integer")? as i32)
        }
        DataType::Int8 => Value::Int8(parse_int(s, i64::MIN, i64::MAX, "bigint")?),
        DataType::Float4 => Value::Float4(float::parse_f32(s)?),
        DataType::Float8 => Value::Float8(float::parse_f64(s)?),
        DataType::Numeric(typmod) => Value::Numeric(numeric::parse_numeric(s, typmod)?),
        DataType::Text | DataType::Varchar(_) | DataType::Unknown => {
            check_no_nul(s.as_bytes())?;
            Value::text(s)
        }
        DataType::Char(_) => {
            check_no_nul(s.as_bytes())?;
            Value::text(s.trim_end_matches(' '))
        }
        DataType::Bytea => Value::Bytea(parse_bytea(s)?.into()),
        DataType::Date => Value::Date(datetime::parse_date_text(s)?),
        DataType::Timestamp => Value::Timestamp(datetime::parse_timestamp(s, false)?),
        DataType::TimestampTz => Value::TimestampTz(datetime::parse_timestamp(s, true)?),
        DataType::Interval => Value::Interval(interval::parse_interval(s)?),
        DataType::PgLsn => Value::PgLsn(interval::parse_lsn(s)?),
    })
}

/// Parses a text-format Bind parameter. PostgreSQL calls the same input function (with typmod
/// -1, and parameter types carry none), so this is [`parse_text`].
pub fn parse_text_param(s: &str, ty: DataType) -> PgResult<Value> {
    parse_text(s, ty)
}

fn syntax_error(type_name: &str, input: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{input}\""),
    )
}

/// `parse_bool_with_len` after `boolin` strips blanks: `true`/`false`/`yes`/`no` and their
/// prefixes, `on`/`off` (at least two letters, `of` suffices), `1`/`0`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let v = s.trim_matches(float::is_pg_space).to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    match v.as_bytes().first()? {
        b't' if prefix_of("true") => Some(true),
        b'f' if prefix_of("false") => Some(false),
        b'y' if prefix_of("yes") => Some(true),
        b'n' if prefix_of("no") => Some(false),
        // "o" alone is ambiguous.
        b'o' if v.len() >= 2 && prefix_of("on") => Some(true),
        b'o' if v.len() >= 2 && prefix_of("off") => Some(false),
        b'1' if v.len() == 1 => Some(true),
        b'0' if v.len() == 1 => Some(false),
        _ => None,
    }
}

/// `pg_strtoint16/32/64` (PostgreSQL 15): blanks, optional sign, decimal digits, blanks.
/// The range error is raised while reading digits, so `99999999999x` is out of range while
/// `2147483648x` (which still fits while negative) is a syntax error, as in PostgreSQL.
fn parse_int(s: &str, min: i64, max: i64, type_name: &str) -> PgResult<i64> {
    let out_of_range = || {
        PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{s}\" is out of range for type {type_name}"),
        )
    };
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && float::is_pg_space(b[i] as char) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return Err(syntax_error(type_name, s));
    }
    // Accumulate the magnitude; |min| bounds it whatever the sign, as PostgreSQL accumulates
    // negatively.
    let limit = min.unsigned_abs();
    let mut magnitude: u64 = 0;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(c - b'0')))
            .filter(|&m| m <= limit)
            .ok_or_else(out_of_range)?;
        i += 1;
    }
    while i < b.len() && float::is_pg_space(b[i] as char) {
        i += 1;
    }
    if i < b.len() {
        return Err(syntax_error(type_name, s));
    }
    if neg {
        Ok(0i64.wrapping_sub_unsigned(magnitude))
    } else if magnitude > max as u64 {
        Err(out_of_range())
    } else {
        Ok(magnitude as i64)
    }
}

/// `report_invalid_encoding` for UTF8: the bytes of the offending character, at most 8.
fn invalid_utf8_error(bytes: &[u8]) -> PgError {
    let first = bytes.first().copied().unwrap_or(0);
    let char_len = match first {
        c if c & 0x80 == 0 => 1,
        c if c & 0xE0 == 0xC0 => 2,
        c if c & 0xF0 == 0xE0 => 3,
        c if c & 0xF8 == 0xF0 => 4,
        _ => 1,
    };
    let shown: Vec<String> = bytes
        .iter()
        .take(char_len.min(8))
        .map(|b| format!("0x{b:02x}"))
        .collect();
    PgError::new(
        sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
}

/// PostgreSQL text never contains NUL: its encoding check rejects it like an invalid byte.
fn check_no_nul(b: &[u8]) -> PgResult<()> {
    match b.iter().position(|&c| c == 0) {
        Some(at) => Err(invalid_utf8_error(&b[at..])),
        None => Ok(()),
    }
}

/// `pg_verify_mbstr` for UTF8 followed by the conversion to `&str`.
fn utf8_text(b: &[u8]) -> PgResult<&str> {
    match std::str::from_utf8(b) {
        Ok(s) => {
            check_no_nul(b)?;
            Ok(s)
        }
        Err(e) => {
            let valid = e.valid_up_to();
            check_no_nul(&b[..valid])?;
            Err(invalid_utf8_error(&b[valid..]))
        }
    }
}

/// `byteain`: hex format after `\x`, else the traditional escape format.
fn parse_bytea(s: &str) -> PgResult<Vec<u8>> {
    let b = s.as_bytes();
    if let Some(hex) = b.strip_prefix(b"\\x") {
        return hex_decode(s, hex, 2);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let is_octal = |c: Option<&u8>, hi: u8| c.is_some_and(|&c| (b'0'..=hi).contains(&c));
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if is_octal(b.get(i + 1), b'3')
            && is_octal(b.get(i + 2), b'7')
            && is_octal(b.get(i + 3), b'7')
        {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            return Err(PgError::new(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

/// `hex_decode`: pairs of hex digits, blanks (space, tab, newline, CR) allowed between pairs.
/// `offset` is where `hex` starts in `s`, to quote the offending character.
fn hex_decode(s: &str, hex: &[u8], offset: usize) -> PgResult<Vec<u8>> {
    let nibble = |at: usize| -> PgResult<u8> {
        let c = hex[at];
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => {
                let shown = s
                    .get(offset + at..)
                    .and_then(|rest| rest.chars().next())
                    .map(String::from)
                    .unwrap_or_default();
                Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("invalid hexadecimal digit: \"{shown}\""),
                ))
            }
        }
    };
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut i = 0;
    while i < hex.len() {
        if matches!(hex[i], b' ' | b'\n' | b'\t' | b'\r') {
            i += 1;
            continue;
        }
        let hi = nibble(i)?;
        if i + 1 >= hex.len() {
            return Err(PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                "invalid hexadecimal data: odd number of digits",
            ));
        }
        let lo = nibble(i + 1)?;
        out.push((hi << 4) | lo);
        i += 2;
    }
    Ok(out)
}

/// 22P03, for a binary value whose length does not match its type.
pub(crate) fn incorrect_binary_format() -> PgError {
    PgError::new(
        sqlstate::INVALID_BINARY_REPRESENTATION,
        "incorrect binary data format",
    )
}

/// Whether `v` already has the binary layout of `ty`; otherwise `format_binary` converts it
/// first, because the client decodes by the declared OID and a mismatch would corrupt the row.
fn has_wire_layout(v: &Value, ty: DataType) -> bool {
    matches!(
        (v, ty),
        (Value::Bool(_), DataType::Bool)
            | (Value::Int2(_), DataType::Int2)
            | (Value::Int4(_), DataType::Int4)
            | (Value::Int8(_), DataType::Int8)
            | (Value::Float4(_), DataType::Float4)
            | (Value::Float8(_), DataType::Float8)
            | (Value::Numeric(_), DataType::Numeric(_))
            | (
                Value::Text(_),
                DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown
            )
            | (Value::Bytea(_), DataType::Bytea)
            | (
                Value::Timestamp(_) | Value::TimestampTz(_),
                DataType::Timestamp | DataType::TimestampTz
            )
            | (Value::Interval(_), DataType::Interval)
            | (Value::PgLsn(_), DataType::PgLsn)
            | (Value::Date(_), DataType::Date)
    )
}

/// Appends the binary (send) form of a non-NULL `v` to `out`, in the layout of `ty` (an
/// undecided type is sent as text, matching the OID its column reports).
pub fn format_binary(v: &Value, ty: DataType, out: &mut Vec<u8>) -> PgResult<()> {
    if v.is_null() {
        return Err(PgError::internal(
            "NULL has no binary representation; send it as length -1",
        ));
    }
    if !has_wire_layout(v, ty) {
        let target = if ty == DataType::Unknown {
            DataType::Text
        } else {
            ty
        };
        let converted = crate::cast::cast(v, target, crate::cast::CastKind::Explicit)?;
        if !has_wire_layout(&converted, target) {
            return Err(PgError::internal(format!(
                "cannot send a value of type {} as {ty}",
                value_type(v)
            )));
        }
        return format_binary(&converted, target, out);
    }
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int2(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Int4(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Int8(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Float4(f) => out.extend_from_slice(&f.to_be_bytes()),
        Value::Float8(f) => out.extend_from_slice(&f.to_be_bytes()),
        Value::Numeric(d) => numeric::numeric_send(d, out),
        Value::Text(s) => {
            // bpcharsend sends the stored, blank-padded value.
            out.extend_from_slice(s.as_bytes());
            if let DataType::Char(n) = ty {
                pad_blanks(s, n, out);
            }
        }
        Value::Bytea(b) => out.extend_from_slice(b),
        Value::Timestamp(t) | Value::TimestampTz(t) => out.extend_from_slice(&t.to_be_bytes()),
        // interval_send: time, day, month.
        Value::Interval(iv) => {
            out.extend_from_slice(&iv.micros.to_be_bytes());
            out.extend_from_slice(&iv.days.to_be_bytes());
            out.extend_from_slice(&iv.months.to_be_bytes());
        }
        Value::PgLsn(l) => out.extend_from_slice(&l.to_be_bytes()),
        // date_send: days since 2000-01-01.
        Value::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
    }
    Ok(())
}

fn fixed<const N: usize>(b: &[u8]) -> PgResult<[u8; N]> {
    b.try_into().map_err(|_| incorrect_binary_format())
}

/// Parses the binary (receive) form `b` as type `ty`.
pub fn parse_binary(b: &[u8], ty: DataType) -> PgResult<Value> {
    Ok(match ty {
        DataType::Bool => Value::Bool(fixed::<1>(b)?[0] != 0),
        DataType::Int2 => Value::Int2(i16::from_be_bytes(fixed(b)?)),
        DataType::Int4 => Value::Int4(i32::from_be_bytes(fixed(b)?)),
        DataType::Int8 => Value::Int8(i64::from_be_bytes(fixed(b)?)),
        DataType::Float4 => Value::Float4(f32::from_be_bytes(fixed(b)?)),
        DataType::Float8 => Value::Float8(f64::from_be_bytes(fixed(b)?)),
        DataType::Numeric(typmod) => Value::Numeric(numeric::numeric_recv(b, typmod)?),
        DataType::Text | DataType::Varchar(_) | DataType::Unknown => Value::text(utf8_text(b)?),
        DataType::Char(_) => Value::text(utf8_text(b)?.trim_end_matches(' ')),
        DataType::Bytea => Value::Bytea(b.into()),
        DataType::Timestamp | DataType::TimestampTz => {
            let t = i64::from_be_bytes(fixed(b)?);
            if !datetime::is_valid_timestamp(t) {
                return Err(datetime::timestamp_out_of_range());
            }
            if ty == DataType::Timestamp {
                Value::Timestamp(t)
            } else {
                Value::TimestampTz(t)
            }
        }
        DataType::Interval => {
            let b: [u8; 16] = fixed(b)?;
            let (time, rest) = b.split_at(8);
            let (day, month) = rest.split_at(4);
            Value::Interval(crate::value::Interval {
                micros: i64::from_be_bytes(fixed(time)?),
                days: i32::from_be_bytes(fixed(day)?),
                months: i32::from_be_bytes(fixed(month)?),
            })
        }
        DataType::PgLsn => Value::PgLsn(u64::from_be_bytes(fixed(b)?)),
        DataType::Date => Value::Date(i32::from_be_bytes(fixed(b)?)),
    })
}

/// `apply_typmod` for `numeric(precision, scale)`: rounds half away from zero to `scale`
/// digits and fails with 22003 `numeric field overflow` when the integer part is too long.
pub fn apply_numeric_typmod(d: &Decimal, precision: u16, scale: u16) -> PgResult<Decimal> {
    let mut big = numeric::BigDecimal::from_decimal(d);
    big.apply_typmod(precision, scale)?;
    big.to_decimal()
}

/// `float8_numeric`/`float4_numeric`: the float printed with `%.15g` (`%.6g` for float4) and
/// read back as a numeric, then the typmod. NaN and infinities are 0A000.
pub(crate) fn numeric_from_float(
    x: f64,
    single: bool,
    typmod: Option<(u16, u16)>,
) -> PgResult<Decimal> {
    if x.is_nan() {
        return Err(numeric::nan_not_supported());
    }
    if x.is_infinite() {
        return Err(numeric::infinity_not_supported());
    }
    let (neg, digits, exp10) = float::printf_g_digits(x, if single { 6 } else { 15 });
    let mut big = numeric::BigDecimal::new(neg, digits, exp10, -exp10);
    if let Some((p, s)) = typmod {
        big.apply_typmod(p, s)?;
    }
    big.to_decimal()
}

/// `numeric_float8`/`numeric_float4`: through the text form, so the result is the correctly
/// rounded float of the exact decimal (never double-rounded through f64 for float4).
pub(crate) fn numeric_to_f64(d: &Decimal) -> f64 {
    let mut text = Vec::new();
    numeric::format_numeric(d, &mut text);
    std::str::from_utf8(&text)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

pub(crate) fn numeric_to_f32(d: &Decimal) -> f32 {
    let mut text = Vec::new();
    numeric::format_numeric(d, &mut text);
    std::str::from_utf8(&text)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}
