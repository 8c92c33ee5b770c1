//! Booleans, integers, floats and numeric: text and binary forms.

use super::*;

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

pub(super) fn numeric_wire(
    ndigits: i16,
    weight: i16,
    sign: u16,
    dscale: u16,
    digits: &[i16],
) -> Vec<u8> {
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
