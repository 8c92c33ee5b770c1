//! Cases are PostgreSQL 15's regression expectations (`boolean.out`, `int2/4/8.out`,
//! `float4/8.out`, `numeric.out`, `timestamp(tz).out`, `strings.out` for bytea) where they
//! exercise behaviour lockstep supports, plus round trips and property tests.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::error::SqlState;

use DataType as T;

fn text(v: &Value, ty: DataType) -> String {
    format_text_string(v, ty)
}

/// Parses and prints back, panicking with the error on failure.
fn io(s: &str, ty: DataType) -> String {
    match parse_text(s, ty) {
        Ok(v) => text(&v, ty),
        Err(e) => panic!("{s:?} as {ty}: {e:?}"),
    }
}

fn err(s: &str, ty: DataType) -> PgError {
    match parse_text(s, ty) {
        Ok(v) => panic!("{s:?} as {ty} parsed to {v:?}"),
        Err(e) => e,
    }
}

fn assert_err(s: &str, ty: DataType, code: &str, message: &str) {
    let e = err(s, ty);
    assert_eq!(
        (e.code.code(), e.message.as_str()),
        (code, message),
        "input {s:?} as {ty}"
    );
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

// ---------------------------------------------------------------- bool

#[test]
fn bool_input_matches_boolean_out() {
    let trues = [
        "t",
        "True",
        "true",
        "TRUE",
        "tr",
        "tru",
        "yes",
        "y",
        "ye",
        "YeS",
        "on",
        "ON",
        "1",
        "   tRuE   ",
        "\t1\n",
    ];
    for s in trues {
        assert_eq!(io(s, T::Bool), "t", "{s:?}");
    }
    let falses = [
        "f", "false", "FALSE", "fa", "fal", "fals", "no", "n", "NO", "off", "of", "OFF", "0",
        "  f  ",
    ];
    for s in falses {
        assert_eq!(io(s, T::Bool), "f", "{s:?}");
    }
    for s in [
        "test", "foo", "yeah", "nay", "on_", "o", "of_", "off_", "11", "000", "", "   ", "truex",
        "true1", "t rue", "yess", "noo", "2",
    ] {
        assert_err(
            s,
            T::Bool,
            "22P02",
            &format!("invalid input syntax for type boolean: \"{s}\""),
        );
    }
}

// ---------------------------------------------------------------- integers

#[test]
fn int_input_matches_int_out() {
    let ok = [
        ("0", T::Int4, "0"),
        ("1234", T::Int4, "1234"),
        ("-1234", T::Int4, "-1234"),
        ("+123", T::Int4, "123"),
        ("   123   ", T::Int4, "123"),
        ("\t\n-7\r", T::Int4, "-7"),
        ("2147483647", T::Int4, "2147483647"),
        ("-2147483648", T::Int4, "-2147483648"),
        ("   -2147483648", T::Int4, "-2147483648"),
        ("0000000000000000000042", T::Int4, "42"),
        ("32767", T::Int2, "32767"),
        ("-32768", T::Int2, "-32768"),
        ("9223372036854775807", T::Int8, "9223372036854775807"),
        ("-9223372036854775808", T::Int8, "-9223372036854775808"),
        ("  +4567890123456789  ", T::Int8, "4567890123456789"),
    ];
    for (s, ty, want) in ok {
        assert_eq!(io(s, ty), want, "{s:?} as {ty}");
    }
    let syntax = [
        ("34.5", T::Int4),
        ("asdf", T::Int4),
        ("     ", T::Int4),
        ("   asdf   ", T::Int4),
        ("- 1234", T::Int4),
        ("123       5", T::Int4),
        ("", T::Int4),
        ("+", T::Int4),
        ("-", T::Int4),
        ("1e3", T::Int4),
        ("0x10", T::Int4),
        ("1_000", T::Int4),
        ("12a", T::Int2),
        ("--1", T::Int8),
        // Still fits while accumulating negatively, so the junk is seen first.
        ("2147483648x", T::Int4),
    ];
    for (s, ty) in syntax {
        assert_err(
            s,
            ty,
            "22P02",
            &format!("invalid input syntax for type {}: \"{s}\"", ty.short_name()),
        );
    }
    let range = [
        ("1000000000000", T::Int4),
        ("2147483648", T::Int4),
        ("-2147483649", T::Int4),
        ("99999999999x", T::Int4),
        ("100000", T::Int2),
        ("32768", T::Int2),
        ("-32769", T::Int2),
        ("9223372036854775808", T::Int8),
        ("-9223372036854775809", T::Int8),
        ("99999999999999999999999999999999999999", T::Int8),
    ];
    for (s, ty) in range {
        assert_err(
            s,
            ty,
            "22003",
            &format!("value \"{s}\" is out of range for type {}", ty.short_name()),
        );
    }
}

#[test]
fn int_edges_print() {
    assert_eq!(text(&Value::Int4(i32::MIN), T::Int4), "-2147483648");
    assert_eq!(text(&Value::Int2(i16::MIN), T::Int2), "-32768");
    assert_eq!(
        text(&Value::Int8(i64::MIN), T::Int8),
        "-9223372036854775808"
    );
}

// ---------------------------------------------------------------- floats

#[test]
fn float8_output_is_shortest_round_trip() {
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-34.84, "-34.84"),
        (1004.30, "1004.3"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "1e-07"),
        (1e-5, "1e-05"),
        (1.5e-5, "1.5e-05"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (1.2345678901234568e-05, "1.2345678901234568e-05"),
        (1e14, "100000000000000"),
        (123456789012345.6, "123456789012345.6"),
        (1e15, "1e+15"),
        (1234567890123456.0, "1.234567890123456e+15"),
        (1e16, "1e+16"),
        (1e20, "1e+20"),
        (1e100, "1e+100"),
        (1.2345678901234e200, "1.2345678901234e+200"),
        (1.2345678901234e-200, "1.2345678901234e-200"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (5e-324, "5e-324"),
        (f64::NAN, "NaN"),
        (-f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
        (123.0, "123"),
        (-1e-3, "-0.001"),
        (9007199254740993.0, "9.007199254740992e+15"),
        (999999999999999.9, "999999999999999.9"),
    ];
    for &(x, want) in cases {
        assert_eq!(text(&Value::Float8(x), T::Float8), want, "{x:e}");
    }
}

#[test]
fn float4_output_is_shortest_round_trip() {
    let cases: &[(f32, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.1, "1.1"),
        (0.1, "0.1"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (3.4028235e38, "3.4028235e+38"),
        (1.0e-45, "1e-45"),
        (1.1754944e-38, "1.1754944e-38"),
        (f32::NAN, "NaN"),
        (f32::INFINITY, "Infinity"),
        (f32::NEG_INFINITY, "-Infinity"),
        (-34.84, "-34.84"),
        (1.2345679e20, "1.2345679e+20"),
    ];
    for &(x, want) in cases {
        assert_eq!(text(&Value::Float4(x), T::Float4), want, "{x:e}");
    }
}

#[test]
fn float_input_matches_float_out() {
    let ok = [
        ("0.0", T::Float8, "0"),
        ("-0", T::Float8, "-0"),
        ("  -34.84  ", T::Float8, "-34.84"),
        ("1.2345678901234e+200", T::Float8, "1.2345678901234e+200"),
        ("1004.30", T::Float8, "1004.3"),
        ("NaN", T::Float8, "NaN"),
        ("nan", T::Float8, "NaN"),
        ("   NAN  ", T::Float8, "NaN"),
        ("infinity", T::Float8, "Infinity"),
        ("  Infinity  ", T::Float8, "Infinity"),
        ("+inf", T::Float8, "Infinity"),
        ("-INFINITY", T::Float8, "-Infinity"),
        ("-inf", T::Float8, "-Infinity"),
        ("1e-5", T::Float8, "1e-05"),
        (".5", T::Float8, "0.5"),
        ("5.", T::Float8, "5"),
        ("+1.5E+3", T::Float8, "1500"),
        ("4.9e-324", T::Float8, "5e-324"),
        ("1e308", T::Float8, "1e+308"),
        ("0e999999", T::Float8, "0"),
        ("1.1", T::Float4, "1.1"),
        ("1e6", T::Float4, "1e+06"),
        ("1.401298e-45", T::Float4, "1e-45"),
        ("3.4028235e38", T::Float4, "3.4028235e+38"),
        ("  -Infinity ", T::Float4, "-Infinity"),
        ("NaN", T::Float4, "NaN"),
    ];
    for (s, ty, want) in ok {
        assert_eq!(io(s, ty), want, "{s:?} as {ty}");
    }
    for s in [
        "",
        "   ",
        "xyz",
        "5.0.0",
        "5 . 0",
        "5.   0",
        "    - 3",
        "123           5",
        "1e",
        "e5",
        ".",
        "0x10",
        "nanx",
        "infinityx",
        "1,5",
        "1e5.5",
    ] {
        for ty in [T::Float8, T::Float4] {
            assert_err(
                s,
                ty,
                "22P02",
                &format!("invalid input syntax for type {}: \"{s}\"", ty.short_name()),
            );
        }
    }
    let range = [
        ("10e400", T::Float8, "10e400", "double precision"),
        ("-10e400", T::Float8, "-10e400", "double precision"),
        ("10e-400", T::Float8, "10e-400", "double precision"),
        ("  -10e-400  ", T::Float8, "-10e-400", "double precision"),
        ("10e70", T::Float4, "10e70", "real"),
        ("-10e70", T::Float4, "-10e70", "real"),
        ("10e-70", T::Float4, "10e-70", "real"),
        ("1e39", T::Float4, "1e39", "real"),
        ("1e-46", T::Float4, "1e-46", "real"),
    ];
    for (s, ty, shown, name) in range {
        assert_err(
            s,
            ty,
            "22003",
            &format!("\"{shown}\" is out of range for type {name}"),
        );
    }
}

// ---------------------------------------------------------------- numeric

#[test]
fn numeric_text_io_matches_numeric_out() {
    let n = T::Numeric(None);
    let cases = [
        ("0", "0"),
        ("-0", "0"),
        ("  -0.0  ", "0.0"),
        ("1.50", "1.50"),
        ("+1", "1"),
        ("-1.5", "-1.5"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("5.", "5"),
        ("007.2500", "7.2500"),
        ("1e3", "1000"),
        ("1.5e3", "1500"),
        ("1.5E-3", "0.0015"),
        ("1.50e1", "15.0"),
        ("12e-2", "0.12"),
        ("1e 3", "1000"),
        ("1e+03", "1000"),
        ("0.0001", "0.0001"),
        ("12345678.9", "12345678.9"),
        (
            "-9999999999999999999999999999",
            "-9999999999999999999999999999",
        ),
        (
            "79228162514264337593543950335",
            "79228162514264337593543950335",
        ),
        (
            "0.1234567890123456789012345678",
            "0.1234567890123456789012345678",
        ),
        ("1e-28", "0.0000000000000000000000000001"),
        // Trailing zeros beyond the 28-digit capacity are dropped: same value.
        (
            "1.000000000000000000000000000000000",
            "1.0000000000000000000000000000",
        ),
        ("0e-40", "0.0000000000000000000000000000"),
    ];
    for (s, want) in cases {
        assert_eq!(io(s, n), want, "{s:?}");
    }
    for s in [
        "",
        " ",
        ".",
        "-",
        "+",
        "1e",
        "1e+",
        "e1",
        "1..2",
        "1.2.3",
        "abc",
        "1 2",
        "0x10",
        "1_000",
        "--1",
        "- 1",
        "1.5x",
        "NaNx",
        "infinit",
        "Infinity x",
    ] {
        assert_err(
            s,
            n,
            "22P02",
            &format!("invalid input syntax for type numeric: \"{s}\""),
        );
    }
    for s in ["NaN", " nan ", "Infinity", "-Infinity", "+inf", "-INF"] {
        assert_eq!(err(s, n).code, sqlstate::FEATURE_NOT_SUPPORTED, "{s:?}");
    }
    for s in [
        "1e2147483647",
        "1e-2147483647",
        "123456789012345678901234567890",
        "79228162514264337593543950336",
        "0.00000000000000000000000000001",
        "0.12345678901234567890123456789",
        "1e29",
    ] {
        let e = err(s, n);
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format"
            ),
            "{s:?}"
        );
    }
}

#[test]
fn numeric_typmod_on_input() {
    let cases = [
        ("123.456", (5, 2), "123.46"),
        ("123.455", (5, 2), "123.46"),
        ("-123.455", (5, 2), "-123.46"),
        ("123.454", (5, 2), "123.45"),
        ("1.5", (5, 3), "1.500"),
        ("-0.994", (2, 2), "-0.99"),
        ("0.004", (2, 2), "0.00"),
        ("-0.004", (2, 2), "0.00"),
        ("999.994", (5, 2), "999.99"),
        ("12345", (5, 0), "12345"),
        ("12345.4", (5, 0), "12345"),
        // Rounding happens before the capacity check, as in PostgreSQL.
        ("0.123456789012345678901234567890123", (5, 2), "0.12"),
    ];
    for (s, (p, sc), want) in cases {
        assert_eq!(io(s, T::Numeric(Some((p, sc)))), want, "{s:?}");
    }
    let overflow = [
        ("1234.5", (5, 2), "10^3"),
        ("999.995", (5, 2), "10^3"),
        ("0.995", (2, 2), "1"),
        ("1", (2, 2), "1"),
        ("99999.5", (5, 0), "10^5"),
        ("-100000", (5, 0), "10^5"),
    ];
    for (s, (p, sc), limit) in overflow {
        let e = err(s, T::Numeric(Some((p, sc))));
        assert_eq!(e.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
        assert_eq!(e.message, "numeric field overflow");
        assert_eq!(
            e.detail.as_deref(),
            Some(
                format!(
                    "A field with precision {p}, scale {sc} must round to an absolute value \
                     less than {limit}."
                )
                .as_str()
            )
        );
    }
    // Zero never overflows, whatever its scale.
    assert_eq!(io("0.000", T::Numeric(Some((1, 1)))), "0.0");
    assert_eq!(
        apply_numeric_typmod(&dec("2.5"), 1, 0).unwrap().to_string(),
        "3"
    );
    assert_eq!(
        apply_numeric_typmod(&dec("-2.5"), 1, 0)
            .unwrap()
            .to_string(),
        "-3"
    );
    assert_eq!(
        apply_numeric_typmod(&dec("9.5"), 1, 0).unwrap_err().message,
        "numeric field overflow"
    );
    // Display zeros beyond the capacity are kept only as far as they fit (here one).
    let big = dec("1234567890123456789012345678");
    assert_eq!(
        apply_numeric_typmod(&big, 38, 6).unwrap().to_string(),
        "1234567890123456789012345678.0"
    );
}

#[test]
fn numeric_negative_zero_prints_without_sign() {
    let mut neg_zero = dec("0.00");
    neg_zero.set_sign_negative(true);
    assert_eq!(text(&Value::Numeric(neg_zero), T::Numeric(None)), "0.00");
}

fn numeric_wire(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ndigits.to_be_bytes());
    b.extend_from_slice(&weight.to_be_bytes());
    b.extend_from_slice(&sign.to_be_bytes());
    b.extend_from_slice(&dscale.to_be_bytes());
    for d in digits {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b
}

#[test]
fn numeric_binary_matches_numeric_send() {
    let cases: &[(&str, i16, u16, u16, &[i16])] = &[
        ("0", 0, 0x0000, 0, &[]),
        ("0.00", 0, 0x0000, 2, &[]),
        ("1", 0, 0x0000, 0, &[1]),
        ("-1", 0, 0x4000, 0, &[1]),
        ("-1.5", 0, 0x4000, 1, &[1, 5000]),
        ("1.50", 0, 0x0000, 2, &[1, 5000]),
        ("12345678.9", 1, 0x0000, 1, &[1234, 5678, 9000]),
        ("0.0001", -1, 0x0000, 4, &[1]),
        ("0.00012", -1, 0x0000, 5, &[1, 2000]),
        ("0.00001", -2, 0x0000, 5, &[1000]),
        ("10000", 1, 0x0000, 0, &[1]),
        ("9999", 0, 0x0000, 0, &[9999]),
        ("123456789", 2, 0x0000, 0, &[1, 2345, 6789]),
        ("100000000.0001", 2, 0x0000, 4, &[1, 0, 0, 1]),
        (
            "79228162514264337593543950335",
            7,
            0x0000,
            0,
            &[7, 9228, 1625, 1426, 4337, 5935, 4395, 335],
        ),
        ("-0.0000000000000000000000000001", -7, 0x4000, 28, &[1]),
    ];
    for &(s, weight, sign, dscale, digits) in cases {
        let v = Value::Numeric(dec(s));
        let mut out = Vec::new();
        format_binary(&v, T::Numeric(None), &mut out).unwrap();
        let want = numeric_wire(digits.len() as i16, weight, sign, dscale, digits);
        assert_eq!(out, want, "{s}");
        let back = parse_binary(&out, T::Numeric(None)).unwrap();
        assert_eq!(
            text(&back, T::Numeric(None)),
            s.trim_start_matches('+'),
            "{s}"
        );
    }
}

#[test]
fn numeric_binary_receive_accepts_unnormalized_and_rejects_malformed() {
    let n = T::Numeric(None);
    let recv = |b: Vec<u8>| parse_binary(&b, n).map(|v| text(&v, n));
    // Leading and trailing zero digits, as other drivers may send them.
    assert_eq!(
        recv(numeric_wire(3, 2, 0, 0, &[0, 12, 0])).unwrap(),
        "120000"
    );
    assert_eq!(recv(numeric_wire(3, 1, 0, 0, &[0, 12, 0])).unwrap(), "12");
    // Digits hidden by dscale are truncated, not rounded.
    assert_eq!(recv(numeric_wire(2, 0, 0, 2, &[1, 2399])).unwrap(), "1.23");
    assert_eq!(recv(numeric_wire(1, -1, 0x4000, 2, &[99])).unwrap(), "0.00");
    assert_eq!(recv(numeric_wire(1, 0, 0, 3, &[7])).unwrap(), "7.000");
    // Typmod is applied on receive.
    let b = numeric_wire(2, 0, 0, 3, &[1, 2350]);
    assert_eq!(
        text(&parse_binary(&b, T::Numeric(Some((5, 2)))).unwrap(), n),
        "1.24"
    );

    let bad = |b: Vec<u8>, code: SqlState, message: &str| {
        let e = parse_binary(&b, n).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (code, message), "{b:?}");
    };
    let p03 = sqlstate::INVALID_BINARY_REPRESENTATION;
    bad(
        numeric_wire(1, 0, 0x1234, 0, &[1]),
        p03,
        "invalid sign in external \"numeric\" value",
    );
    bad(
        numeric_wire(1, 0, 0, 0, &[10000]),
        p03,
        "invalid digit in external \"numeric\" value",
    );
    bad(
        numeric_wire(1, 0, 0, 0, &[-1]),
        p03,
        "invalid digit in external \"numeric\" value",
    );
    bad(
        numeric_wire(-1, 0, 0, 0, &[]),
        p03,
        "invalid length in external \"numeric\" value",
    );
    bad(
        numeric_wire(1, 0, 0, 0x4000, &[1]),
        p03,
        "invalid scale in external \"numeric\" value",
    );
    bad(
        numeric_wire(2, 0, 0, 0, &[1]),
        p03,
        "incorrect binary data format",
    );
    bad(
        numeric_wire(0, 0, 0, 0, &[1]),
        p03,
        "incorrect binary data format",
    );
    bad(vec![0, 0, 0], p03, "incorrect binary data format");
    bad(vec![], p03, "incorrect binary data format");
    let nan = numeric_wire(0, 0, 0xC000, 0, &[]);
    assert_eq!(
        parse_binary(&nan, n).unwrap_err().code,
        sqlstate::FEATURE_NOT_SUPPORTED
    );
    // Too big for rust_decimal: 10000^8.
    bad(
        numeric_wire(1, 8, 0, 0, &[1]),
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    );
}

// ---------------------------------------------------------------- strings and bytea

#[test]
fn strings_and_char_padding() {
    assert_eq!(io("  hello  ", T::Text), "  hello  ");
    assert_eq!(io("  hello  ", T::Varchar(Some(3))), "  hello  ");
    // char(n) stores without trailing blanks and pads on output, by characters.
    let v = parse_text("ab   ", T::Char(5)).unwrap();
    assert_eq!(v.as_str(), Some("ab"));
    assert_eq!(text(&v, T::Char(5)), "ab   ");
    assert_eq!(text(&Value::text("é"), T::Char(3)), "é  ");
    assert_eq!(text(&Value::text("abcd"), T::Char(2)), "abcd");
    assert_eq!(text(&Value::text(""), T::Char(2)), "  ");
    // Only blanks are trailing padding, not tabs.
    assert_eq!(
        parse_text("a\t ", T::Char(5)).unwrap().as_str(),
        Some("a\t")
    );
    let e = err("a\0b", T::Text);
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\": 0x00"
        )
    );
    assert_eq!(io("anything", T::Unknown), "anything");
}

#[test]
fn bytea_text_io() {
    let cases = [
        ("\\x", "\\x"),
        ("", "\\x"),
        ("\\xDEADbeef", "\\xdeadbeef"),
        ("\\x de ad\n\tbe\ref ", "\\xdeadbeef"),
        ("abc", "\\x616263"),
        ("a\\\\b", "\\x615c62"),
        ("\\101\\000\\377", "\\x4100ff"),
        ("é", "\\xc3a9"),
        ("\\\\x41", "\\x5c783431"),
    ];
    for (s, want) in cases {
        assert_eq!(io(s, T::Bytea), want, "{s:?}");
    }
    let bad = [
        (
            "\\x1",
            "22023",
            "invalid hexadecimal data: odd number of digits",
        ),
        ("\\x1 2", "22023", "invalid hexadecimal digit: \" \""),
        ("\\xzz", "22023", "invalid hexadecimal digit: \"z\""),
        ("\\x0é", "22023", "invalid hexadecimal digit: \"é\""),
        ("\\", "22P02", "invalid input syntax for type bytea"),
        ("a\\b", "22P02", "invalid input syntax for type bytea"),
        ("\\400", "22P02", "invalid input syntax for type bytea"),
        ("\\12", "22P02", "invalid input syntax for type bytea"),
        ("\\X41", "22P02", "invalid input syntax for type bytea"),
    ];
    for (s, code, message) in bad {
        assert_err(s, T::Bytea, code, message);
    }
}

#[test]
fn text_binary_io() {
    let mut out = Vec::new();
    format_binary(&Value::text("ab"), T::Char(4), &mut out).unwrap();
    assert_eq!(out, b"ab  ");
    assert_eq!(
        parse_binary(b"ab  ", T::Char(4)).unwrap().as_str(),
        Some("ab")
    );
    assert_eq!(
        parse_binary("héllo".as_bytes(), T::Varchar(None))
            .unwrap()
            .as_str(),
        Some("héllo")
    );
    let cases: &[(&[u8], &str)] = &[
        (
            b"a\xff",
            "invalid byte sequence for encoding \"UTF8\": 0xff",
        ),
        (
            b"\xc3\x28",
            "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28",
        ),
        (
            b"ab\xe2\x82",
            "invalid byte sequence for encoding \"UTF8\": 0xe2 0x82",
        ),
        (
            b"\xed\xa0\x80",
            "invalid byte sequence for encoding \"UTF8\": 0xed 0xa0 0x80",
        ),
        (
            b"a\0b\xff",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ),
    ];
    for &(b, message) in cases {
        for ty in [T::Text, T::Varchar(Some(3)), T::Char(3), T::Unknown] {
            let e = parse_binary(b, ty).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (sqlstate::CHARACTER_NOT_IN_REPERTOIRE, message)
            );
        }
    }
    assert_eq!(
        parse_binary(b"\x00\xff", T::Bytea).unwrap(),
        Value::Bytea(vec![0, 255].into())
    );
}

// ---------------------------------------------------------------- fixed-size binary

#[test]
fn fixed_size_binary_formats() {
    let cases: Vec<(Value, DataType, Vec<u8>)> = vec![
        (Value::Bool(true), T::Bool, vec![1]),
        (Value::Bool(false), T::Bool, vec![0]),
        (Value::Int2(-2), T::Int2, vec![0xff, 0xfe]),
        (Value::Int4(i32::MIN), T::Int4, vec![0x80, 0, 0, 0]),
        (Value::Int8(1), T::Int8, vec![0, 0, 0, 0, 0, 0, 0, 1]),
        (Value::Float4(1.5), T::Float4, vec![0x3f, 0xc0, 0, 0]),
        (
            Value::Float8(-0.0),
            T::Float8,
            vec![0x80, 0, 0, 0, 0, 0, 0, 0],
        ),
        (Value::Timestamp(0), T::Timestamp, vec![0; 8]),
        (
            Value::TimestampTz(TIMESTAMP_INFINITY),
            T::TimestampTz,
            vec![0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (v, ty, want) in cases {
        let mut out = Vec::new();
        format_binary(&v, ty, &mut out).unwrap();
        assert_eq!(out, want, "{v:?}");
        let back = parse_binary(&out, ty).unwrap();
        assert_eq!(back, v);
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&v));
    }
    // Any non-zero byte is true (boolrecv).
    assert_eq!(parse_binary(&[7], T::Bool).unwrap(), Value::Bool(true));
    // -0.0 keeps its sign bit through the wire.
    match parse_binary(&(-0.0f64).to_be_bytes(), T::Float8).unwrap() {
        Value::Float8(x) => assert!(x == 0.0 && x.is_sign_negative()),
        other => panic!("{other:?}"),
    }
    for (ty, len) in [
        (T::Bool, 1),
        (T::Int2, 2),
        (T::Int4, 4),
        (T::Int8, 8),
        (T::Float4, 4),
        (T::Float8, 8),
        (T::Timestamp, 8),
        (T::TimestampTz, 8),
    ] {
        for wrong in [0, len - 1, len + 1] {
            let e = parse_binary(&vec![0; wrong], ty).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    sqlstate::INVALID_BINARY_REPRESENTATION,
                    "incorrect binary data format"
                ),
                "{ty} with {wrong} bytes"
            );
        }
    }
    // A timestamp outside PostgreSQL's range is refused on receive.
    let e = parse_binary(&datetime::END_TIMESTAMP.to_be_bytes(), T::Timestamp).unwrap_err();
    assert_eq!(e.code, sqlstate::DATETIME_FIELD_OVERFLOW);
    assert!(parse_binary(&(datetime::END_TIMESTAMP - 1).to_be_bytes(), T::Timestamp).is_ok());
    assert!(parse_binary(&datetime::MIN_TIMESTAMP.to_be_bytes(), T::Timestamp).is_ok());
    assert!(parse_binary(&(datetime::MIN_TIMESTAMP - 1).to_be_bytes(), T::Timestamp).is_err());
}

#[test]
fn binary_output_converts_to_the_declared_type() {
    let mut out = Vec::new();
    format_binary(&Value::Int4(5), T::Int8, &mut out).unwrap();
    assert_eq!(out, 5i64.to_be_bytes());
    out.clear();
    format_binary(&Value::Int4(5), T::Unknown, &mut out).unwrap();
    assert_eq!(out, b"5");
    out.clear();
    assert!(format_binary(&Value::Null, T::Int4, &mut out).is_err());
    assert!(format_binary(&Value::Bool(true), T::Timestamp, &mut out).is_err());
}

// ---------------------------------------------------------------- timestamps

#[test]
fn timestamp_output() {
    let cases = [
        (0, "2000-01-01 00:00:00"),
        (1, "2000-01-01 00:00:00.000001"),
        (-1, "1999-12-31 23:59:59.999999"),
        (120_000, "2000-01-01 00:00:00.12"),
        (-946_684_800_000_000, "1970-01-01 00:00:00"),
        (datetime::MIN_TIMESTAMP, "4714-11-24 00:00:00 BC"),
        (datetime::END_TIMESTAMP - 1, "294276-12-31 23:59:59.999999"),
        (TIMESTAMP_INFINITY, "infinity"),
        (TIMESTAMP_NEG_INFINITY, "-infinity"),
    ];
    for (t, want) in cases {
        assert_eq!(text(&Value::Timestamp(t), T::Timestamp), want);
    }
    assert_eq!(
        text(&Value::TimestampTz(0), T::TimestampTz),
        "2000-01-01 00:00:00+00"
    );
    assert_eq!(
        text(&Value::TimestampTz(datetime::MIN_TIMESTAMP), T::TimestampTz),
        "4714-11-24 00:00:00+00 BC"
    );
    assert_eq!(
        text(&Value::TimestampTz(TIMESTAMP_INFINITY), T::TimestampTz),
        "infinity"
    );
}

#[test]
fn timestamp_input() {
    let ts = T::Timestamp;
    let tz = T::TimestampTz;
    let cases = [
        (
            "2024-01-02 03:04:05.123456",
            ts,
            "2024-01-02 03:04:05.123456",
        ),
        ("2024-01-02 03:04:05.120", ts, "2024-01-02 03:04:05.12"),
        ("2024-01-02 03:04:05.000", ts, "2024-01-02 03:04:05"),
        ("2024-01-02", ts, "2024-01-02 00:00:00"),
        ("  2024-01-02  ", ts, "2024-01-02 00:00:00"),
        ("2024-1-2 3:4:5", ts, "2024-01-02 03:04:05"),
        ("2024-01-02T03:04", ts, "2024-01-02 03:04:00"),
        ("2024-01-02t03:04:05", ts, "2024-01-02 03:04:05"),
        ("2024-01-02   03:04:05", ts, "2024-01-02 03:04:05"),
        ("20240102", ts, "2024-01-02 00:00:00"),
        ("20240102 10:00", ts, "2024-01-02 10:00:00"),
        ("1997-02-10 17:32:01-0800", ts, "1997-02-10 17:32:01"),
        ("1997-02-10 17:32:01-0800", tz, "1997-02-11 01:32:01+00"),
        ("2024-01-01 10:00:00+02", ts, "2024-01-01 10:00:00"),
        ("2024-01-01 10:00:00+02", tz, "2024-01-01 08:00:00+00"),
        ("2024-01-01 10:00:00 +02", tz, "2024-01-01 08:00:00+00"),
        ("2024-01-01 10:00:00-05:30", tz, "2024-01-01 15:30:00+00"),
        ("2024-01-01 10:00:00+5", tz, "2024-01-01 05:00:00+00"),
        ("2024-01-01 10:00:00+530", tz, "2024-01-01 04:30:00+00"),
        ("2024-01-01 10:00:00+05:30:15", tz, "2024-01-01 04:29:45+00"),
        ("2024-01-01 10:00:00Z", tz, "2024-01-01 10:00:00+00"),
        ("2024-01-01T10:00:00.5z", tz, "2024-01-01 10:00:00.5+00"),
        ("2024-01-01 10:00 UTC", tz, "2024-01-01 10:00:00+00"),
        ("2024-01-01 10:00 gmt", ts, "2024-01-01 10:00:00"),
        ("2024-01-01 +02", tz, "2023-12-31 22:00:00+00"),
        ("2024-01-01 00:00:00+15", tz, "2023-12-31 09:00:00+00"),
        ("2024-01-01 24:00:00", ts, "2024-01-02 00:00:00"),
        ("2024-12-31 23:59:60", ts, "2025-01-01 00:00:00"),
        ("2024-01-01 10:30.5", ts, "2024-01-01 00:10:30.5"),
        (
            "2024-01-01 10:00:00.1234565",
            ts,
            "2024-01-01 10:00:00.123456",
        ),
        (
            "2024-01-01 10:00:00.1234575",
            ts,
            "2024-01-01 10:00:00.123458",
        ),
        ("2024-01-01 23:59:59.9999999", ts, "2024-01-02 00:00:00"),
        ("2024-02-29", ts, "2024-02-29 00:00:00"),
        ("2000-02-29", ts, "2000-02-29 00:00:00"),
        ("0044-03-15 BC", ts, "0044-03-15 00:00:00 BC"),
        ("0044-03-15 12:00 bc", tz, "0044-03-15 12:00:00+00 BC"),
        ("0001-01-01 BC", ts, "0001-01-01 00:00:00 BC"),
        ("2024-01-01 AD", ts, "2024-01-01 00:00:00"),
        ("4714-11-24 00:00:00 BC", ts, "4714-11-24 00:00:00 BC"),
        (
            "294276-12-31 23:59:59.999999",
            ts,
            "294276-12-31 23:59:59.999999",
        ),
        ("10000-01-01", ts, "10000-01-01 00:00:00"),
        ("0099-01-01", ts, "0099-01-01 00:00:00"),
        ("epoch", ts, "1970-01-01 00:00:00"),
        ("EPOCH", tz, "1970-01-01 00:00:00+00"),
        ("infinity", ts, "infinity"),
        ("+Infinity", tz, "infinity"),
        (" -INFINITY ", ts, "-infinity"),
    ];
    for (s, ty, want) in cases {
        assert_eq!(io(s, ty), want, "{s:?} as {ty}");
    }
    let bad = [
        (
            "",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"\"",
        ),
        (
            "abc",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"abc\"",
        ),
        (
            "abc",
            tz,
            "22007",
            "invalid input syntax for type timestamp with time zone: \"abc\"",
        ),
        (
            "10:00",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"10:00\"",
        ),
        (
            "2024-01",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"2024-01\"",
        ),
        (
            "2024-01-01 10",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"2024-01-01 10\"",
        ),
        (
            "2024-01-01 10:00:00.",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"2024-01-01 10:00:00.\"",
        ),
        (
            "2024-01-01 10:00 xyz",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"2024-01-01 10:00 xyz\"",
        ),
        (
            "2024-01-01 10:00 +02 +03",
            tz,
            "22007",
            "invalid input syntax for type timestamp with time zone: \"2024-01-01 10:00 +02 +03\"",
        ),
        (
            "2024-01-01 10:00 BC AD",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"2024-01-01 10:00 BC AD\"",
        ),
        (
            "2024-01-01 10:00:00+02x",
            tz,
            "22007",
            "invalid input syntax for type timestamp with time zone: \"2024-01-01 10:00:00+02x\"",
        ),
        (
            "now x",
            ts,
            "22007",
            "invalid input syntax for type timestamp: \"now x\"",
        ),
        (
            "2023-02-29",
            ts,
            "22008",
            "date/time field value out of range: \"2023-02-29\"",
        ),
        (
            "1900-02-29",
            ts,
            "22008",
            "date/time field value out of range: \"1900-02-29\"",
        ),
        (
            "2024-04-31",
            ts,
            "22008",
            "date/time field value out of range: \"2024-04-31\"",
        ),
        (
            "0000-01-01",
            ts,
            "22008",
            "date/time field value out of range: \"0000-01-01\"",
        ),
        (
            "2024-01-01 25:00",
            ts,
            "22008",
            "date/time field value out of range: \"2024-01-01 25:00\"",
        ),
        (
            "2024-01-01 24:00:01",
            ts,
            "22008",
            "date/time field value out of range: \"2024-01-01 24:00:01\"",
        ),
        (
            "2024-01-01 10:60",
            ts,
            "22008",
            "date/time field value out of range: \"2024-01-01 10:60\"",
        ),
        (
            "2024-01-01 10:00:61",
            ts,
            "22008",
            "date/time field value out of range: \"2024-01-01 10:00:61\"",
        ),
        (
            "294277-01-01",
            ts,
            "22008",
            "timestamp out of range: \"294277-01-01\"",
        ),
        (
            "4714-11-23 23:59:59 BC",
            ts,
            "22008",
            "timestamp out of range: \"4714-11-23 23:59:59 BC\"",
        ),
        (
            "4714-11-24 00:00:00+01 BC",
            tz,
            "22008",
            "timestamp out of range: \"4714-11-24 00:00:00+01 BC\"",
        ),
        (
            "99999999-01-01",
            ts,
            "22008",
            "timestamp out of range: \"99999999-01-01\"",
        ),
        (
            "2024-01-01 10:00+16",
            tz,
            "22009",
            "time zone displacement out of range: \"2024-01-01 10:00+16\"",
        ),
        (
            "2024-01-01 10:00+16",
            ts,
            "22009",
            "time zone displacement out of range: \"2024-01-01 10:00+16\"",
        ),
        (
            "2024-01-01 10:00+05:60",
            tz,
            "22009",
            "time zone displacement out of range: \"2024-01-01 10:00+05:60\"",
        ),
        (
            "2024-01-01 10:00 Europe/Paris",
            tz,
            "22023",
            "time zone \"europe/paris\" not recognized",
        ),
    ];
    for (s, ty, code, message) in bad {
        assert_err(s, ty, code, message);
    }
    // Month or day outside its field's range carries PostgreSQL's DateStyle hint.
    for s in ["2024-13-01", "2024-00-10", "2024-01-32", "2024-01-00"] {
        let e = err(s, ts);
        assert_eq!(e.code, sqlstate::DATETIME_FIELD_OVERFLOW, "{s}");
        assert_eq!(
            e.hint.as_deref(),
            Some("Perhaps you need a different \"datestyle\" setting.")
        );
    }
    assert!(err("2023-02-29", ts).hint.is_none());
}

#[test]
fn timestamp_relative_specials() {
    let day = datetime::USECS_PER_DAY;
    let before = datetime::now_micros();
    let now = match parse_text("now", T::TimestampTz).unwrap() {
        Value::TimestampTz(t) => t,
        other => panic!("{other:?}"),
    };
    let after = datetime::now_micros();
    assert!(before <= now && now <= after);
    let get = |s: &str| match parse_text(s, T::Timestamp).unwrap() {
        Value::Timestamp(t) => t,
        other => panic!("{other:?}"),
    };
    let today = get(" Today ");
    assert_eq!(today % day, 0);
    assert!(today <= after && after - today < 2 * day);
    assert_eq!(get("tomorrow") - get("yesterday"), 2 * day);
}

#[test]
fn calendar_matches_reference_dates() {
    // Day numbers relative to 2000-01-01, from PostgreSQL's date2j(y,m,d) - 2451545.
    let cases = [
        ((2000, 1, 1), 0),
        ((1970, 1, 1), -10_957),
        ((2000, 3, 1), 60),
        ((1900, 3, 1), -36_465),
        ((-4713, 11, 24), -2_451_545),
        ((294_277, 1, 1), 106_751_983),
        ((0, 2, 29), -730_426),
    ];
    for ((y, m, d), days) in cases {
        assert_eq!(datetime::days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        assert_eq!(datetime::civil_from_days(days), (y, m, d));
    }
    // Every day over a few centuries around year 0 survives the round trip.
    for days in -800_000..-700_000 {
        let (y, m, d) = datetime::civil_from_days(days);
        assert_eq!(datetime::days_from_civil(y, m, d), days);
    }
}

// ---------------------------------------------------------------- round trips

#[test]
fn text_round_trips() {
    let cases: &[(&str, DataType)] = &[
        ("t", T::Bool),
        ("-32768", T::Int2),
        ("-2147483648", T::Int4),
        ("9223372036854775807", T::Int8),
        ("0.30000000000000004", T::Float8),
        ("1e-07", T::Float8),
        ("-1.7976931348623157e+308", T::Float8),
        ("3.4028235e+38", T::Float4),
        ("1.50", T::Numeric(None)),
        ("-0.0000000000000000000000000001", T::Numeric(None)),
        ("12345678.9", T::Numeric(Some((10, 1)))),
        ("héllo wörld", T::Text),
        ("\\x00ff10", T::Bytea),
        ("2024-01-02 03:04:05.123456", T::Timestamp),
        ("0044-03-15 00:00:00 BC", T::Timestamp),
        ("2024-01-02 03:04:05.5+00", T::TimestampTz),
        ("-infinity", T::TimestampTz),
    ];
    for &(s, ty) in cases {
        assert_eq!(io(s, ty), s, "{ty}");
    }
}

fn all_types() -> Vec<DataType> {
    vec![
        T::Bool,
        T::Int2,
        T::Int4,
        T::Int8,
        T::Float4,
        T::Float8,
        T::Numeric(None),
        T::Numeric(Some((5, 2))),
        T::Text,
        T::Varchar(Some(3)),
        T::Char(4),
        T::Bytea,
        T::Timestamp,
        T::TimestampTz,
        T::Unknown,
    ]
}

/// A value's text survives text → value → text unchanged (the canonical form is a fixpoint).
fn assert_text_fixpoint(v: &Value, ty: DataType) {
    let s = text(v, ty);
    let back = parse_text(&s, ty).unwrap_or_else(|e| panic!("{s:?} as {ty}: {e:?}"));
    assert_eq!(text(&back, ty), s, "{ty}");
}

fn assert_binary_round_trip(v: &Value, ty: DataType) {
    let mut out = Vec::new();
    format_binary(v, ty, &mut out).unwrap();
    let back = parse_binary(&out, ty).unwrap();
    assert_eq!(text(&back, ty), text(v, ty), "{ty}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_binary_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        for ty in all_types() {
            if let Ok(v) = parse_binary(&bytes, ty) {
                assert_binary_round_trip(&v, ty);
            }
        }
    }

    #[test]
    fn numeric_binary_never_panics(
        ndigits in 0i16..6,
        weight in any::<i16>(),
        sign in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
        dscale in prop_oneof![0u16..40, any::<u16>()],
        digits in proptest::collection::vec(prop_oneof![0i16..10_000, any::<i16>()], 0..6),
    ) {
        let b = numeric_wire(ndigits, weight, sign, dscale, &digits);
        let _ = parse_binary(&b, T::Numeric(None));
        let _ = parse_binary(&b, T::Numeric(Some((10, 3))));
    }

    #[test]
    fn parse_text_never_panics(s in "\\PC{0,30}") {
        for ty in all_types() {
            if let Ok(v) = parse_text(&s, ty) {
                assert_text_fixpoint(&v, ty);
            }
        }
    }

    #[test]
    fn parse_text_never_panics_on_near_misses(
        s in "[ +\\-0-9.eEtTxXzZ:\\\\inftyINFTYabc]{0,24}"
    ) {
        for ty in all_types() {
            if let Ok(v) = parse_text(&s, ty) {
                assert_text_fixpoint(&v, ty);
            }
        }
    }

    #[test]
    fn float8_text_round_trips_bitwise(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        let s = text(&Value::Float8(x), T::Float8);
        match parse_text(&s, T::Float8).unwrap() {
            Value::Float8(y) => prop_assert!(y.to_bits() == x.to_bits() || (x.is_nan() && y.is_nan())),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn float4_text_round_trips_bitwise(bits in any::<u32>()) {
        let x = f32::from_bits(bits);
        let s = text(&Value::Float4(x), T::Float4);
        match parse_text(&s, T::Float4).unwrap() {
            Value::Float4(y) => prop_assert!(y.to_bits() == x.to_bits() || (x.is_nan() && y.is_nan())),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn numeric_round_trips_exactly(
        lo in any::<u64>(),
        hi in any::<u32>(),
        neg in any::<bool>(),
        scale in 0u32..=28,
    ) {
        let d = Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, neg, scale);
        let v = Value::Numeric(d);
        let s = text(&v, T::Numeric(None));
        let back = parse_text(&s, T::Numeric(None)).unwrap();
        prop_assert_eq!(text(&back, T::Numeric(None)), s.clone());
        let mut wire = Vec::new();
        format_binary(&v, T::Numeric(None), &mut wire).unwrap();
        let back = parse_binary(&wire, T::Numeric(None)).unwrap();
        prop_assert_eq!(text(&back, T::Numeric(None)), s);
    }

    #[test]
    fn timestamp_round_trips(t in datetime::MIN_TIMESTAMP..datetime::END_TIMESTAMP, tz in any::<bool>()) {
        let (v, ty) = if tz { (Value::TimestampTz(t), T::TimestampTz) } else { (Value::Timestamp(t), T::Timestamp) };
        let s = text(&v, ty);
        let back = parse_text(&s, ty).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn integers_round_trip(i in any::<i64>()) {
        prop_assert_eq!(parse_text(&i.to_string(), T::Int8).unwrap(), Value::Int8(i));
        let narrow = i as i32;
        prop_assert_eq!(parse_text(&format!("  {narrow} "), T::Int4).unwrap(), Value::Int4(narrow));
    }

    #[test]
    fn bytea_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let v = Value::Bytea(bytes.into());
        assert_text_fixpoint(&v, T::Bytea);
        assert_binary_round_trip(&v, T::Bytea);
    }
}
