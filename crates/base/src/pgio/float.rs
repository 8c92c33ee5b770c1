//! `float4`/`float8` text I/O: PostgreSQL 12+'s `float4out`/`float8out` with the default
//! `extra_float_digits = 1` (shortest round-trip digits, Ryu), and `float4in`/`float8in`.
//!
//! Output: Rust's `{:e}` formatting yields the same digits as Ryu (the shortest decimal that
//! rounds back to the same binary value, the closest one when several are equally short, with
//! inclusive interval bounds for even mantissas). Only the layout is PostgreSQL's own
//! (`src/common/d2s.c` / `f2s.c`): fixed notation when the decimal exponent `e` of the first
//! digit satisfies `-4 <= e < 15` (float8) or `-4 <= e < 6` (float4), otherwise `d.ddde+XX`
//! with at least two exponent digits. Special values print as `NaN`, `Infinity`, `-Infinity`,
//! and negative zero as `-0`.
//!
//! Input follows `float8in_internal`: leading and trailing C-locale whitespace is skipped, the
//! number is parsed as `strtod` would (correctly rounded; Rust's parser is too), `NaN`,
//! `Infinity` and `inf` in any case with an optional sign are accepted, and a result that
//! overflows to infinity or underflows to zero is error 22003 `"<number>" is out of range for
//! type double precision` (denormal results are accepted, as PostgreSQL does). Narrowed:
//! glibc's hexadecimal floats (`0x1p3`) and `nan(chars)` are rejected as invalid syntax.

use crate::error::{PgError, PgResult, sqlstate};

/// PostgreSQL's `isspace()` in the C locale: space, `\t`, `\n`, `\v`, `\f`, `\r`.
pub(crate) fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Appends `float8out(x)`.
pub(crate) fn format_f64(x: f64, out: &mut Vec<u8>) {
    if let Some(special) = special_str(x.is_nan(), x.is_infinite(), x == 0.0, x.is_sign_negative())
    {
        out.extend_from_slice(special.as_bytes());
        return;
    }
    layout(&format!("{x:e}"), 15, out);
}

/// Appends `float4out(x)`.
pub(crate) fn format_f32(x: f32, out: &mut Vec<u8>) {
    if let Some(special) = special_str(x.is_nan(), x.is_infinite(), x == 0.0, x.is_sign_negative())
    {
        out.extend_from_slice(special.as_bytes());
        return;
    }
    layout(&format!("{x:e}"), 6, out);
}

/// `copy_special_str` of Ryu as PostgreSQL patched it: NaN ignores the sign bit.
fn special_str(nan: bool, inf: bool, zero: bool, neg: bool) -> Option<&'static str> {
    match (nan, inf, zero, neg) {
        (true, ..) => Some("NaN"),
        (_, true, _, false) => Some("Infinity"),
        (_, true, _, true) => Some("-Infinity"),
        (_, _, true, false) => Some("0"),
        (_, _, true, true) => Some("-0"),
        _ => None,
    }
}

/// Lays out Rust's shortest scientific form (`-1.2345e-5`) the way `to_chars` in PostgreSQL's
/// Ryu port does; `fixed_limit` is the first decimal exponent printed in scientific notation.
fn layout(sci: &str, fixed_limit: i32, out: &mut Vec<u8>) {
    let (neg, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    if neg {
        out.push(b'-');
    }
    if (-4..fixed_limit).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(&digits);
                out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        }
    } else {
        if let Some((first, rest)) = digits.split_first() {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(abs.to_string().as_bytes());
    }
}

/// Why a float input was rejected; the caller words the error for its type.
enum FloatInputError {
    Syntax,
    /// Overflow or total underflow; carries the number as PostgreSQL quotes it (the input from
    /// its first non-blank character to the end of the number).
    Range(String),
}

/// Shared parser: `T` is `f32` or `f64`, parsed directly (never via the other width, which
/// would round twice).
fn parse_float<T>(input: &str) -> Result<T, FloatInputError>
where
    T: std::str::FromStr + Copy + Into<f64>,
{
    let body = input.trim_matches(is_pg_space);
    if body.is_empty() {
        return Err(FloatInputError::Syntax);
    }
    let value: T = body.parse().map_err(|_| FloatInputError::Syntax)?;
    let as_f64: f64 = value.into();
    let unsigned = body.trim_start_matches(['+', '-']);
    let literal_special = unsigned
        .bytes()
        .next()
        .is_some_and(|c| matches!(c, b'i' | b'I' | b'n' | b'N'));
    if literal_special {
        return Ok(value);
    }
    if as_f64.is_infinite() {
        return Err(FloatInputError::Range(body.to_string()));
    }
    if as_f64 == 0.0 {
        // strtod reports ERANGE when a non-zero decimal underflows to zero; PostgreSQL
        // rejects exactly those (a zero written as zero, in any spelling, is fine).
        let mantissa = unsigned.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return Err(FloatInputError::Range(body.to_string()));
        }
    }
    Ok(value)
}

fn float_error(err: FloatInputError, type_name: &str, input: &str) -> PgError {
    match err {
        FloatInputError::Syntax => PgError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{input}\""),
        ),
        FloatInputError::Range(number) => PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{number}\" is out of range for type {type_name}"),
        ),
    }
}

/// `float8in`.
pub(crate) fn parse_f64(input: &str) -> PgResult<f64> {
    parse_float::<f64>(input).map_err(|e| float_error(e, "double precision", input))
}

/// `float4in`.
pub(crate) fn parse_f32(input: &str) -> PgResult<f32> {
    parse_float::<f32>(input).map_err(|e| float_error(e, "real", input))
}

/// The digits and exponent of `printf("%.*g", precision, x)` for a finite `x`, as PostgreSQL's
/// `float8_numeric` (precision `DBL_DIG` = 15) and `float4_numeric` (`FLT_DIG` = 6) produce
/// them before reading the string back as a numeric: returns `(negative, digits, exp10)` with
/// the value equal to `digits × 10^exp10`, trailing zeros removed as `%g` does. Rust's
/// fixed-precision formatting rounds the exact binary value half-to-even, as glibc does.
pub(crate) fn printf_g_digits(x: f64, precision: usize) -> (bool, Vec<u8>, i64) {
    let sci = format!("{:.*e}", precision.saturating_sub(1), x);
    let (neg, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| c - b'0')
        .collect();
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    let exp10 = exp - (digits.len() as i64 - 1);
    (neg, digits, exp10)
}
