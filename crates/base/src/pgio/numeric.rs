//! `numeric` I/O: `numeric_in`/`numeric_out`, `numeric_recv`/`numeric_send`, and the typmod
//! coercion `apply_typmod` that they and casts share.
//!
//! Values are parsed into [`BigDecimal`], an exact decimal of unbounded size, so that rounding
//! to a typmod's scale happens before the value has to fit `rust_decimal` — the same order as
//! PostgreSQL (`'0.123456789012345678901234567890123'::numeric(5,2)` is `0.12`, not an error).
//! Only the final result must fit `rust_decimal::Decimal` (a 96-bit mantissa and at most 28
//! fractional digits). When it does not:
//! - trailing fractional zeros beyond the capacity are dropped (the value is unchanged, only the
//!   display scale shrinks: `1.000…0` with 30 zeros prints with 28);
//! - otherwise the value cannot be held exactly and the error is 22003 `value overflows numeric
//!   format` (PostgreSQL's wording for a numeric too large for its own format), with a DETAIL
//!   naming lockstep's limit. Values are never rounded silently.
//!
//! `NaN` and `±Infinity` (which PostgreSQL 14+ numeric accepts) have no `Decimal`
//! representation: input is syntax-checked as PostgreSQL does and then refused with 0A000.

use rust_decimal::Decimal;

use crate::error::{PgError, PgResult, sqlstate};

use super::float::is_pg_space;

/// Largest mantissa `Decimal` holds: 2^96 - 1.
const DECIMAL_MAX_MANTISSA: u128 = (1u128 << 96) - 1;
/// Largest scale `Decimal` holds.
const DECIMAL_MAX_SCALE: i64 = 28;

/// `NUMERIC_DSCALE_MASK`: the bits of the binary header's dscale field.
const NUMERIC_DSCALE_MASK: u16 = 0x3FFF;
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// `NUMERIC_MAX_PRECISION + NUMERIC_MAX_RESULT_SCALE`: the most base-10000 digits
/// `numeric_recv` accepts.
const NUMERIC_RECV_MAX_DIGITS: i16 = 3000;

/// An exact decimal: `(-1)^neg × digits × 10^exp`, displayed with `dscale` fractional digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BigDecimal {
    neg: bool,
    /// Decimal digits (0..=9), most significant first, without leading zeros; empty for zero.
    digits: Vec<u8>,
    exp: i64,
    dscale: i64,
}

/// Result of parsing a numeric literal: PostgreSQL also accepts the special values.
pub(crate) enum ParsedNumeric {
    Finite(BigDecimal),
    NaN,
    Infinity,
}

impl BigDecimal {
    pub(crate) fn new(neg: bool, digits: Vec<u8>, exp: i64, dscale: i64) -> Self {
        let mut d = BigDecimal {
            neg,
            digits,
            exp,
            dscale: dscale.max(0),
        };
        d.normalize();
        d
    }

    pub(crate) fn from_decimal(d: &Decimal) -> Self {
        let m = d.mantissa();
        let digits = m
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|c| c - b'0')
            .collect();
        let scale = i64::from(d.scale());
        BigDecimal::new(m < 0, digits, -scale, scale)
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn normalize(&mut self) {
        let leading = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..leading);
        if self.digits.is_empty() {
            self.neg = false;
        }
    }

    /// Number of digits before the decimal point (`floor(log10|v|) + 1`, may be ≤ 0), which is
    /// what `apply_typmod` compares with `precision - scale`. Only meaningful when non-zero.
    fn integer_digits(&self) -> i64 {
        self.digits.len() as i64 + self.exp
    }

    /// Drops the digits after `scale` fractional digits; `round_up` decides from the first
    /// dropped digit whether the kept part grows by one unit in the last place.
    fn cut(&mut self, scale: i64, round_half_up: bool) {
        self.dscale = scale.max(0);
        let drop = -self.exp - scale;
        if drop <= 0 {
            return;
        }
        let len = self.digits.len() as i64;
        let keep = len - drop;
        let round_up = round_half_up && keep >= 0 && self.digits[keep as usize] >= 5;
        self.digits.truncate(keep.max(0) as usize);
        self.exp = -scale;
        if round_up {
            let mut carry = true;
            for d in self.digits.iter_mut().rev() {
                if *d == 9 {
                    *d = 0;
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                self.digits.insert(0, 1);
            }
        }
        self.normalize();
    }

    /// `round_var`: to `scale` fractional digits, half away from zero; sets the display scale.
    pub(crate) fn round(&mut self, scale: i64) {
        self.cut(scale, true);
    }

    /// `trunc_var`.
    fn trunc(&mut self, scale: i64) {
        self.cut(scale, false);
    }

    /// `apply_typmod` for `numeric(precision, scale)`.
    pub(crate) fn apply_typmod(&mut self, precision: u16, scale: u16) -> PgResult<()> {
        self.round(i64::from(scale));
        let maxdigits = i64::from(precision) - i64::from(scale);
        if !self.is_zero() && self.integer_digits() > maxdigits {
            let limit = if maxdigits == 0 {
                "1".to_string()
            } else {
                format!("10^{maxdigits}")
            };
            return Err(PgError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric field overflow",
            )
            .with_detail(format!(
                "A field with precision {precision}, scale {scale} must round to an absolute \
                 value less than {limit}."
            )));
        }
        Ok(())
    }

    /// The value as a `Decimal`, keeping the display scale where the format allows.
    pub(crate) fn to_decimal(&self) -> PgResult<Decimal> {
        if self.is_zero() {
            let scale = self.dscale.clamp(0, DECIMAL_MAX_SCALE) as u32;
            return Decimal::try_from_i128_with_scale(0, scale).map_err(|_| capacity_error());
        }
        let trailing = self.digits.iter().rev().take_while(|&&d| d == 0).count();
        let core = &self.digits[..self.digits.len() - trailing];
        let exp10 = self.exp + trailing as i64;
        let min_scale = (-exp10).max(0);
        if min_scale > DECIMAL_MAX_SCALE || core.len() > 29 {
            return Err(capacity_error());
        }
        let core_value = core.iter().fold(0u128, |acc, &d| acc * 10 + u128::from(d));
        let mut scale = self.dscale.max(min_scale).min(DECIMAL_MAX_SCALE);
        loop {
            let shift = u32::try_from(exp10 + scale).unwrap_or(u32::MAX);
            let mantissa = 10u128
                .checked_pow(shift)
                .and_then(|p| core_value.checked_mul(p))
                .filter(|&m| m <= DECIMAL_MAX_MANTISSA);
            match mantissa {
                Some(m) => {
                    let signed = if self.neg { -(m as i128) } else { m as i128 };
                    return Decimal::try_from_i128_with_scale(signed, scale as u32)
                        .map_err(|_| capacity_error());
                }
                // Dropping display zeros keeps the value; anything else would change it.
                None if scale > min_scale => scale -= 1,
                None => return Err(capacity_error()),
            }
        }
    }
}

/// The value cannot be held exactly by lockstep's numeric.
pub(crate) fn capacity_error() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
    .with_detail(
        "lockstep's numeric holds at most 28 fractional digits and an absolute value below \
         2^96 (about 7.9e28) at that scale.",
    )
}

pub(crate) fn nan_not_supported() -> PgError {
    PgError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        "numeric NaN is not supported",
    )
}

pub(crate) fn infinity_not_supported() -> PgError {
    PgError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        "numeric Infinity is not supported",
    )
}

fn numeric_syntax(input: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type numeric: \"{input}\""),
    )
}

fn overflows_format() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

fn starts_with_ci(s: &[u8], prefix: &str) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `numeric_in` up to (not including) `apply_typmod`: syntax as `set_var_from_str`.
pub(crate) fn parse_numeric_text(input: &str) -> PgResult<ParsedNumeric> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_pg_space(bytes[i] as char) {
        i += 1;
    }
    let rest = &bytes[i..];
    // Same spellings as float8in, in PostgreSQL's order (longest first where they overlap).
    const SPECIALS: [(&str, bool); 7] = [
        ("NaN", false),
        ("Infinity", true),
        ("+Infinity", true),
        ("-Infinity", true),
        ("inf", true),
        ("+inf", true),
        ("-inf", true),
    ];
    for (spelling, infinite) in SPECIALS {
        if starts_with_ci(rest, spelling) {
            let tail = &rest[spelling.len()..];
            if !tail.iter().all(|&c| is_pg_space(c as char)) {
                return Err(numeric_syntax(input));
            }
            return Ok(if infinite {
                ParsedNumeric::Infinity
            } else {
                ParsedNumeric::NaN
            });
        }
    }

    let mut neg = false;
    match bytes.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            neg = true;
            i += 1;
        }
        _ => {}
    }
    let mut have_dp = false;
    if bytes.get(i) == Some(&b'.') {
        have_dp = true;
        i += 1;
    }
    if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return Err(numeric_syntax(input));
    }
    let mut digits = Vec::new();
    let mut frac_digits: i64 = 0;
    while let Some(&c) = bytes.get(i) {
        if c.is_ascii_digit() {
            digits.push(c - b'0');
            if have_dp {
                frac_digits += 1;
            }
        } else if c == b'.' {
            if have_dp {
                return Err(numeric_syntax(input));
            }
            have_dp = true;
        } else {
            break;
        }
        i += 1;
    }
    let mut exponent: i64 = 0;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        // strtol: optional blanks, optional sign, at least one digit.
        let mut j = i;
        while j < bytes.len() && is_pg_space(bytes[j] as char) {
            j += 1;
        }
        let mut exp_neg = false;
        match bytes.get(j) {
            Some(b'+') => j += 1,
            Some(b'-') => {
                exp_neg = true;
                j += 1;
            }
            _ => {}
        }
        if !bytes.get(j).is_some_and(u8::is_ascii_digit) {
            return Err(numeric_syntax(input));
        }
        let mut magnitude: i64 = 0;
        while let Some(&c) = bytes.get(j) {
            if !c.is_ascii_digit() {
                break;
            }
            magnitude = magnitude
                .saturating_mul(10)
                .saturating_add(i64::from(c - b'0'));
            j += 1;
        }
        i = j;
        exponent = if exp_neg { -magnitude } else { magnitude };
        // PostgreSQL bounds the exponent by INT_MAX/2 to keep its arithmetic in range.
        if exponent >= i64::from(i32::MAX / 2) || exponent <= -i64::from(i32::MAX / 2) {
            // Raised as soon as the exponent is read, before any trailing junk is seen, as in
            // set_var_from_str.
            return Err(overflows_format());
        }
    }
    if bytes[i..].iter().any(|&c| !is_pg_space(c as char)) {
        return Err(numeric_syntax(input));
    }
    Ok(ParsedNumeric::Finite(BigDecimal::new(
        neg,
        digits,
        exponent - frac_digits,
        frac_digits - exponent,
    )))
}

/// `numeric_in` with an optional typmod, producing a `Decimal`.
pub(crate) fn parse_numeric(input: &str, typmod: Option<(u16, u16)>) -> PgResult<Decimal> {
    match parse_numeric_text(input)? {
        ParsedNumeric::Finite(mut v) => {
            if let Some((p, s)) = typmod {
                v.apply_typmod(p, s)?;
            }
            v.to_decimal()
        }
        ParsedNumeric::NaN => Err(nan_not_supported()),
        ParsedNumeric::Infinity => Err(infinity_not_supported()),
    }
}

/// `numeric_out`: plain notation with exactly `scale` fractional digits, never `-0`.
pub(crate) fn format_numeric(d: &Decimal, out: &mut Vec<u8>) {
    let m = d.mantissa();
    let scale = d.scale() as usize;
    let digits = m.unsigned_abs().to_string();
    if m < 0 {
        out.push(b'-');
    }
    if scale == 0 {
        out.extend_from_slice(digits.as_bytes());
        return;
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    out.extend_from_slice(int_part.as_bytes());
    out.push(b'.');
    out.extend_from_slice(frac_part.as_bytes());
}

/// `numeric_send`: ndigits, weight, sign, dscale (int16 each), then base-10000 digits, with
/// leading and trailing zero digits stripped and zero sent as no digits, weight 0, positive.
pub(crate) fn numeric_send(d: &Decimal, out: &mut Vec<u8>) {
    let m = d.mantissa();
    let scale = d.scale();
    // Align the fraction to whole base-10000 digits: 10^pad × |m| < 2^96 × 1000 fits u128.
    let pad = (4 - scale % 4) % 4;
    let mut aligned = m.unsigned_abs() * 10u128.pow(pad);
    let frac_groups = ((scale + pad) / 4) as i32;
    let mut groups = Vec::new();
    while aligned > 0 {
        groups.push((aligned % 10_000) as i16);
        aligned /= 10_000;
    }
    groups.reverse();
    let weight = groups.len() as i32 - 1 - frac_groups;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() {
        (0, NUMERIC_POS)
    } else if m < 0 {
        (weight, NUMERIC_NEG)
    } else {
        (weight, NUMERIC_POS)
    };
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

fn external_numeric_error(what: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_BINARY_REPRESENTATION,
        format!("invalid {what} in external \"numeric\" value"),
    )
}

/// `numeric_recv` with an optional typmod.
pub(crate) fn numeric_recv(b: &[u8], typmod: Option<(u16, u16)>) -> PgResult<Decimal> {
    let word = |i: usize| -> Option<[u8; 2]> { b.get(i * 2..i * 2 + 2)?.try_into().ok() };
    let header = |i: usize| word(i).ok_or_else(super::incorrect_binary_format);
    let ndigits = i16::from_be_bytes(header(0)?);
    if !(0..=NUMERIC_RECV_MAX_DIGITS).contains(&ndigits) {
        return Err(external_numeric_error("length"));
    }
    let weight = i16::from_be_bytes(header(1)?);
    let sign = u16::from_be_bytes(header(2)?);
    let neg = match sign {
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF => false,
        _ => return Err(external_numeric_error("sign")),
    };
    let dscale = u16::from_be_bytes(header(3)?);
    if dscale & NUMERIC_DSCALE_MASK != dscale {
        return Err(external_numeric_error("scale"));
    }
    if b.len() != 8 + 2 * ndigits as usize {
        return Err(super::incorrect_binary_format());
    }
    let mut digits = Vec::with_capacity(ndigits as usize * 4);
    for i in 0..ndigits as usize {
        let d = i16::from_be_bytes(header(4 + i)?);
        if !(0..10_000).contains(&d) {
            return Err(external_numeric_error("digit"));
        }
        digits.extend_from_slice(&[
            (d / 1000) as u8,
            (d / 100 % 10) as u8,
            (d / 10 % 10) as u8,
            (d % 10) as u8,
        ]);
    }
    match sign {
        NUMERIC_NAN => return Err(nan_not_supported()),
        NUMERIC_PINF | NUMERIC_NINF => return Err(infinity_not_supported()),
        _ => {}
    }
    // The last base-10000 digit has weight `weight - (ndigits - 1)`.
    let exp = 4 * (i64::from(weight) - i64::from(ndigits) + 1);
    let mut value = BigDecimal::new(neg, digits, exp, i64::from(dscale));
    // Digits hidden by dscale are truncated away, as numeric_recv does.
    value.trunc(i64::from(dscale));
    if let Some((p, s)) = typmod {
        value.apply_typmod(p, s)?;
    }
    value.to_decimal()
}
