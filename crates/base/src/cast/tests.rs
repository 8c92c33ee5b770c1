//! Cases follow PostgreSQL 15's regression expectations (`int2/4/8.out`, `float4/8.out`,
//! `numeric.out`, `char.out`, `varchar.out`, `boolean.out`) for the casts lockstep supports.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use proptest::prelude::*;

use super::*;
use crate::pgio::format_text_string;

use CastKind::{Assignment, Explicit, Implicit};
use DataType as T;

fn dec(s: &str) -> Value {
    Value::Numeric(Decimal::from_str(s).unwrap())
}

/// The cast's result as PostgreSQL would print it for the target type.
fn shown(v: &Value, to: DataType, kind: CastKind) -> String {
    match cast(v, to, kind) {
        Ok(r) => format_text_string(&r, to),
        Err(e) => panic!("{v:?} -> {to} ({kind:?}): {e:?}"),
    }
}

fn failure(v: &Value, to: DataType, kind: CastKind) -> PgError {
    match cast(v, to, kind) {
        Ok(r) => panic!("{v:?} -> {to} ({kind:?}) gave {r:?}"),
        Err(e) => e,
    }
}

fn assert_fails(v: &Value, to: DataType, kind: CastKind, code: &str, message: &str) {
    let e = failure(v, to, kind);
    assert_eq!(
        (e.code.code(), e.message.as_str()),
        (code, message),
        "{v:?} -> {to}"
    );
}

#[test]
fn null_stays_null_and_unknown_is_identity() {
    for to in [
        T::Int4,
        T::Text,
        T::Bool,
        T::Numeric(Some((3, 1))),
        T::Char(2),
    ] {
        assert!(cast(&Value::Null, to, Assignment).unwrap().is_null());
    }
    assert_eq!(
        cast(&Value::Int4(3), T::Unknown, Explicit).unwrap(),
        Value::Int4(3)
    );
}

#[test]
fn integer_narrowing_is_range_checked() {
    let ok = [
        (Value::Int8(32767), T::Int2, "32767"),
        (Value::Int4(-32768), T::Int2, "-32768"),
        (Value::Int8(-2147483648), T::Int4, "-2147483648"),
        (Value::Int2(-5), T::Int8, "-5"),
        (Value::Int4(i32::MIN), T::Int8, "-2147483648"),
    ];
    for (v, to, want) in ok {
        assert_eq!(shown(&v, to, Assignment), want);
    }
    let bad = [
        (Value::Int4(32768), T::Int2, "smallint out of range"),
        (Value::Int8(-32769), T::Int2, "smallint out of range"),
        (Value::Int8(2147483648), T::Int4, "integer out of range"),
        (Value::Int8(i64::MIN), T::Int4, "integer out of range"),
        (dec("9223372036854775808"), T::Int8, "bigint out of range"),
        (
            dec("-9223372036854775808.5"),
            T::Int8,
            "bigint out of range",
        ),
    ];
    for (v, to, message) in bad {
        assert_fails(&v, to, Explicit, "22003", message);
    }
    assert_eq!(
        shown(&dec("-9223372036854775808.4"), T::Int8, Explicit),
        "-9223372036854775808"
    );
}

#[test]
fn float_to_int_rounds_half_even_numeric_half_away() {
    // int4.out: "check rounding when casting from float" / "from numeric".
    let cases = [
        ("-2.5", "-2", "-3"),
        ("-1.5", "-2", "-2"),
        ("-0.5", "0", "-1"),
        ("0.0", "0", "0"),
        ("0.5", "0", "1"),
        ("1.5", "2", "2"),
        ("2.5", "2", "3"),
        ("0.49", "0", "0"),
        ("-0.51", "-1", "-1"),
    ];
    for (x, from_float, from_numeric) in cases {
        let f: f64 = x.parse().unwrap();
        for to in [T::Int2, T::Int4, T::Int8] {
            assert_eq!(shown(&Value::Float8(f), to, Assignment), from_float, "{x}");
            assert_eq!(
                shown(&Value::Float4(f as f32), to, Assignment),
                from_float,
                "{x}"
            );
            assert_eq!(shown(&dec(x), to, Assignment), from_numeric, "{x}");
        }
    }
}

#[test]
fn float_to_int_edges_match_float_out() {
    let f8 = |s: &str| Value::Float8(s.parse().unwrap());
    let f4 = |s: &str| Value::Float4(s.parse().unwrap());
    let ok = [
        (f8("32767.4"), T::Int2, "32767"),
        (f8("-32768.4"), T::Int2, "-32768"),
        (f8("2147483647.4"), T::Int4, "2147483647"),
        (f8("-2147483648.4"), T::Int4, "-2147483648"),
        (f8("9223372036854773760"), T::Int8, "9223372036854773760"),
        (
            f8("-9223372036854775808.5"),
            T::Int8,
            "-9223372036854775808",
        ),
        (f4("32767.4"), T::Int2, "32767"),
        (f4("-32768.4"), T::Int2, "-32768"),
        (f4("2147483520"), T::Int4, "2147483520"),
        (f4("-2147483648.5"), T::Int4, "-2147483648"),
        (f4("9223369837831520256"), T::Int8, "9223369837831520256"),
        (
            f4("-9223372036854775808.5"),
            T::Int8,
            "-9223372036854775808",
        ),
    ];
    for (v, to, want) in ok {
        assert_eq!(shown(&v, to, Explicit), want, "{v:?}");
    }
    let bad = [
        (f8("32767.6"), T::Int2, "smallint out of range"),
        (f8("-32768.6"), T::Int2, "smallint out of range"),
        (f8("2147483647.6"), T::Int4, "integer out of range"),
        (f8("-2147483648.6"), T::Int4, "integer out of range"),
        (f8("9223372036854775807"), T::Int8, "bigint out of range"),
        (f8("-9223372036854780000"), T::Int8, "bigint out of range"),
        (f4("32767.6"), T::Int2, "smallint out of range"),
        (f4("-32768.6"), T::Int2, "smallint out of range"),
        (f4("2147483647"), T::Int4, "integer out of range"),
        (f4("-2147483900"), T::Int4, "integer out of range"),
        (f4("9223372036854775807"), T::Int8, "bigint out of range"),
        (f4("-9223380000000000000"), T::Int8, "bigint out of range"),
        (Value::Float8(f64::NAN), T::Int4, "integer out of range"),
        (Value::Float8(f64::INFINITY), T::Int8, "bigint out of range"),
        (
            Value::Float4(f32::NEG_INFINITY),
            T::Int2,
            "smallint out of range",
        ),
        (Value::Float4(f32::NAN), T::Int8, "bigint out of range"),
    ];
    for (v, to, message) in bad {
        assert_fails(&v, to, Explicit, "22003", message);
    }
}

#[test]
fn to_float() {
    let cases = [
        (Value::Int8(i64::MAX), T::Float8, "9.223372036854776e+18"),
        (Value::Int4(16_777_217), T::Float4, "1.6777216e+07"),
        (Value::Int2(-7), T::Float4, "-7"),
        (Value::Float4(0.1), T::Float8, "0.10000000149011612"),
        (Value::Float8(0.1), T::Float4, "0.1"),
        (Value::Float8(f64::INFINITY), T::Float4, "Infinity"),
        (Value::Float8(f64::NAN), T::Float4, "NaN"),
        (Value::Float8(-0.0), T::Float4, "-0"),
        (dec("0.1"), T::Float8, "0.1"),
        (dec("1.0000001"), T::Float4, "1.0000001"),
        (
            dec("-12345678901234567890.123"),
            T::Float8,
            "-1.2345678901234567e+19",
        ),
        (dec("0.30000000000000004"), T::Float8, "0.30000000000000004"),
        (
            dec("79228162514264337593543950335"),
            T::Float4,
            "7.9228163e+28",
        ),
    ];
    for (v, to, want) in cases {
        assert_eq!(shown(&v, to, Implicit), want, "{v:?}");
    }
    assert_fails(
        &Value::Float8(1e300),
        T::Float4,
        Assignment,
        "22003",
        "value out of range: overflow",
    );
    assert_fails(
        &Value::Float8(1e-300),
        T::Float4,
        Assignment,
        "22003",
        "value out of range: underflow",
    );
}

#[test]
fn to_numeric() {
    let n = T::Numeric(None);
    let cases = [
        (Value::Int8(i64::MIN), n, "-9223372036854775808"),
        (Value::Int4(5), T::Numeric(Some((5, 2))), "5.00"),
        // float8_numeric prints with %.15g first.
        (Value::Float8(0.1), n, "0.1"),
        (Value::Float8(0.1 + 0.2), n, "0.3"),
        (Value::Float8(1.0 / 3.0), n, "0.333333333333333"),
        (Value::Float8(1e20), n, "100000000000000000000"),
        (Value::Float8(1.5e-5), n, "0.000015"),
        (Value::Float8(-123.456), n, "-123.456"),
        (Value::Float8(-0.0), n, "0"),
        (Value::Float8(123456789012345678.0), n, "123456789012346000"),
        (Value::Float4(1.1), n, "1.1"),
        (Value::Float4(0.1), n, "0.1"),
        (Value::Float4(16_777_217.0), n, "16777200"),
        (Value::Float8(1.005), T::Numeric(Some((5, 2))), "1.01"),
        (Value::Float8(2.5), T::Numeric(Some((1, 0))), "3"),
        (dec("123.456"), T::Numeric(Some((5, 2))), "123.46"),
        (dec("1.5"), T::Numeric(Some((5, 3))), "1.500"),
        (dec("1.5"), n, "1.5"),
    ];
    for (v, to, want) in cases {
        assert_eq!(shown(&v, to, Assignment), want, "{v:?} -> {to}");
    }
    let e = failure(&dec("1234.5"), T::Numeric(Some((5, 2))), Assignment);
    assert_eq!(e.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
    assert_eq!(e.message, "numeric field overflow");
    assert_eq!(
        e.detail.as_deref(),
        Some("A field with precision 5, scale 2 must round to an absolute value less than 10^3.")
    );
    let e = failure(&Value::Int4(12345), T::Numeric(Some((3, 0))), Assignment);
    assert_eq!(e.message, "numeric field overflow");
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = failure(&Value::Float8(x), n, Assignment);
        assert_eq!(e.code, sqlstate::FEATURE_NOT_SUPPORTED);
    }
    // Beyond rust_decimal's capacity: an error, not silent rounding.
    for x in [1e300, 1e-300] {
        let e = failure(&Value::Float8(x), n, Assignment);
        assert_eq!(e.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
    }
}

#[test]
fn bool_and_int4() {
    assert_eq!(shown(&Value::Int4(0), T::Bool, Explicit), "f");
    assert_eq!(shown(&Value::Int4(-5), T::Bool, Explicit), "t");
    assert_eq!(shown(&Value::Bool(true), T::Int4, Explicit), "1");
    assert_eq!(shown(&Value::Bool(false), T::Int4, Explicit), "0");
    let e = "42846";
    assert_fails(
        &Value::Int8(1),
        T::Bool,
        Explicit,
        e,
        "cannot cast type bigint to boolean",
    );
    assert_fails(
        &Value::Int2(1),
        T::Bool,
        Explicit,
        e,
        "cannot cast type smallint to boolean",
    );
    assert_fails(
        &Value::Bool(true),
        T::Int8,
        Explicit,
        e,
        "cannot cast type boolean to bigint",
    );
    assert_fails(
        &Value::Bool(true),
        T::Numeric(Some((3, 1))),
        Explicit,
        e,
        "cannot cast type boolean to numeric",
    );
    assert_fails(
        &Value::Float8(1.0),
        T::Bool,
        Explicit,
        e,
        "cannot cast type double precision to boolean",
    );
}

#[test]
fn unsupported_pairs_are_42846() {
    let cases = [
        (
            Value::Timestamp(0),
            T::Int4,
            "timestamp without time zone",
            "integer",
        ),
        (
            Value::TimestampTz(0),
            T::Numeric(Some((5, 0))),
            "timestamp with time zone",
            "numeric",
        ),
        (Value::Bytea(vec![1].into()), T::Int4, "bytea", "integer"),
        (Value::Int4(1), T::Bytea, "integer", "bytea"),
        (
            Value::Int8(1),
            T::Timestamp,
            "bigint",
            "timestamp without time zone",
        ),
        (
            Value::Bool(true),
            T::TimestampTz,
            "boolean",
            "timestamp with time zone",
        ),
        (Value::Float4(1.0), T::Bytea, "real", "bytea"),
    ];
    for (v, to, from_name, to_name) in cases {
        assert_fails(
            &v,
            to,
            Explicit,
            "42846",
            &format!("cannot cast type {from_name} to {to_name}"),
        );
    }
}

#[test]
fn to_string_types() {
    let cases = [
        (Value::Bool(true), T::Text, "true"),
        (Value::Bool(false), T::Varchar(None), "false"),
        (Value::Bool(true), T::Char(5), "true "),
        (Value::Int4(42), T::Text, "42"),
        (Value::Float8(0.1 + 0.2), T::Text, "0.30000000000000004"),
        (Value::Float4(1e6), T::Text, "1e+06"),
        (dec("1.50"), T::Text, "1.50"),
        (Value::Timestamp(0), T::Text, "2000-01-01 00:00:00"),
        (
            Value::TimestampTz(0),
            T::Varchar(None),
            "2000-01-01 00:00:00+00",
        ),
        (Value::Bytea(vec![1, 2].into()), T::Text, "\\x0102"),
        (Value::text("ab"), T::Text, "ab"),
    ];
    for (v, to, want) in cases {
        assert_eq!(shown(&v, to, Assignment), want, "{v:?}");
    }
}

#[test]
fn varchar_length_rules() {
    let vc = |n| T::Varchar(Some(n));
    // Explicit casts truncate silently (varchar.out / strings.out).
    assert_eq!(shown(&Value::text("abcdef"), vc(3), Explicit), "abc");
    assert_eq!(shown(&Value::text("héllo"), vc(2), Explicit), "hé");
    assert_eq!(shown(&Value::Int4(12345), vc(3), Explicit), "123");
    // Fitting values are unchanged, trailing blanks included.
    assert_eq!(shown(&Value::text("ab "), vc(3), Assignment), "ab ");
    assert_eq!(shown(&Value::text("日本語"), vc(3), Assignment), "日本語");
    // Excess blanks are dropped even in assignment; anything else is 22001.
    assert_eq!(shown(&Value::text("abc   "), vc(3), Assignment), "abc");
    assert_eq!(shown(&Value::text("ab    "), vc(3), Implicit), "ab ");
    for kind in [Assignment, Implicit] {
        assert_fails(
            &Value::text("abcd"),
            vc(3),
            kind,
            "22001",
            "value too long for type character varying(3)",
        );
        assert_fails(
            &Value::text("abc  d"),
            vc(3),
            kind,
            "22001",
            "value too long for type character varying(3)",
        );
        assert_fails(
            &Value::Int4(12345),
            vc(3),
            kind,
            "22001",
            "value too long for type character varying(3)",
        );
    }
    // Unbounded varchar and text never truncate.
    let long = "x".repeat(10_000);
    assert_eq!(
        shown(&Value::text(&long), T::Varchar(None), Assignment),
        long
    );
}

#[test]
fn char_length_rules() {
    let stored = |v: &Value, n: u32, kind: CastKind| {
        cast(v, T::Char(n), kind)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    // Stored without trailing blanks, padded on output.
    assert_eq!(stored(&Value::text("a"), 3, Assignment), "a");
    assert_eq!(shown(&Value::text("a"), T::Char(3), Assignment), "a  ");
    assert_eq!(stored(&Value::text("abc   "), 3, Assignment), "abc");
    assert_eq!(stored(&Value::text("ab      "), 3, Implicit), "ab");
    assert_eq!(stored(&Value::text("abcdef"), 3, Explicit), "abc");
    assert_eq!(stored(&Value::text("ab  cd"), 3, Explicit), "ab");
    assert_eq!(stored(&Value::text("日本語です"), 2, Explicit), "日本");
    assert_eq!(stored(&Value::Int4(7), 4, Assignment), "7");
    for kind in [Assignment, Implicit] {
        assert_fails(
            &Value::text("abcd"),
            T::Char(3),
            kind,
            "22001",
            "value too long for type character(3)",
        );
        assert_fails(
            &Value::text("ab  c  "),
            T::Char(3),
            kind,
            "22001",
            "value too long for type character(3)",
        );
    }
    // char → text drops the padding (the stored form has none).
    let c = cast(&Value::text("ab   "), T::Char(5), Assignment).unwrap();
    assert_eq!(shown(&c, T::Text, Implicit), "ab");
}

#[test]
fn from_strings_uses_input_functions() {
    let cases = [
        (" 12 ", T::Int4, "12"),
        ("yes", T::Bool, "t"),
        ("1e-5", T::Float8, "1e-05"),
        ("123.456", T::Numeric(Some((5, 2))), "123.46"),
        (
            "2024-01-02 03:04:05+02",
            T::TimestampTz,
            "2024-01-02 01:04:05+00",
        ),
        (
            "2024-01-02 03:04:05+02",
            T::Timestamp,
            "2024-01-02 03:04:05",
        ),
        ("\\x0102", T::Bytea, "\\x0102"),
        ("abc", T::Bytea, "\\x616263"),
    ];
    for (s, to, want) in cases {
        assert_eq!(shown(&Value::text(s), to, Explicit), want, "{s:?}");
    }
    assert_fails(
        &Value::text("x"),
        T::Int4,
        Explicit,
        "22P02",
        "invalid input syntax for type integer: \"x\"",
    );
    assert_fails(
        &Value::text("99999999999"),
        T::Int4,
        Explicit,
        "22003",
        "value \"99999999999\" is out of range for type integer",
    );
}

#[test]
fn timestamps_convert_both_ways() {
    for t in [0, -1, 1_234_567_890, i64::MAX, i64::MIN] {
        assert_eq!(
            cast(&Value::Timestamp(t), T::TimestampTz, Implicit).unwrap(),
            Value::TimestampTz(t)
        );
        assert!(matches!(
            cast(&Value::TimestampTz(t), T::Timestamp, Assignment).unwrap(),
            Value::Timestamp(x) if x == t
        ));
    }
}

#[test]
fn cast_contexts_match_pg_cast() {
    let n = T::Numeric(None);
    let table = [
        // (from, to, least context)
        (T::Int2, T::Int4, Some(Implicit)),
        (T::Int2, T::Float4, Some(Implicit)),
        (T::Int4, T::Int8, Some(Implicit)),
        (T::Int4, T::Int2, Some(Assignment)),
        (T::Int4, n, Some(Implicit)),
        (T::Int8, T::Int4, Some(Assignment)),
        (T::Int8, T::Float4, Some(Implicit)),
        (T::Int8, T::Float8, Some(Implicit)),
        (n, T::Int4, Some(Assignment)),
        (n, T::Float4, Some(Implicit)),
        (n, T::Float8, Some(Implicit)),
        (n, T::Numeric(Some((5, 2))), Some(Implicit)),
        (T::Float4, T::Float8, Some(Implicit)),
        (T::Float4, n, Some(Assignment)),
        (T::Float8, T::Float4, Some(Assignment)),
        (T::Float8, T::Int8, Some(Assignment)),
        (T::Float8, n, Some(Assignment)),
        (T::Int4, T::Bool, Some(Explicit)),
        (T::Bool, T::Int4, Some(Explicit)),
        (T::Int8, T::Bool, None),
        (T::Bool, T::Int2, None),
        (T::Bool, T::Text, Some(Assignment)),
        (T::Int4, T::Text, Some(Assignment)),
        (T::Int4, T::Varchar(Some(3)), Some(Assignment)),
        (T::Timestamp, T::Char(10), Some(Assignment)),
        (T::Bytea, T::Text, Some(Assignment)),
        (T::Text, T::Int4, Some(Explicit)),
        (T::Varchar(None), T::Bool, Some(Explicit)),
        (T::Char(3), T::Timestamp, Some(Explicit)),
        (T::Text, T::Bytea, Some(Explicit)),
        (T::Text, T::Varchar(Some(3)), Some(Implicit)),
        (T::Varchar(Some(3)), T::Text, Some(Implicit)),
        (T::Char(3), T::Text, Some(Implicit)),
        (T::Text, T::Char(3), Some(Implicit)),
        (T::Varchar(Some(3)), T::Varchar(Some(5)), Some(Implicit)),
        (T::Timestamp, T::TimestampTz, Some(Implicit)),
        (T::TimestampTz, T::Timestamp, Some(Assignment)),
        (T::Unknown, T::Int4, Some(Implicit)),
        (T::Unknown, T::Bytea, Some(Implicit)),
        (T::Int4, T::Unknown, None),
        (T::Timestamp, T::Int8, None),
        (T::Bytea, T::Int4, None),
        (T::Int4, T::Timestamp, None),
        (T::Date, T::Timestamp, Some(Implicit)),
        (T::Date, T::TimestampTz, Some(Implicit)),
        (T::TimestampTz, T::Date, Some(Assignment)),
        (T::Date, T::Int4, None),
        (T::Date, T::Text, Some(Assignment)),
        (T::Bool, n, None),
        (T::Float8, T::Bool, None),
    ];
    for (from, to, want) in table {
        assert_eq!(cast_context(from, to), want, "{from} -> {to}");
        for kind in [Implicit, Assignment, Explicit] {
            let allowed = match want {
                None => false,
                Some(needed) => needed.rank() <= kind.rank(),
            };
            assert_eq!(can_cast(from, to, kind), allowed, "{from} -> {to} {kind:?}");
        }
    }
}

fn sample(t: DataType) -> Value {
    match t {
        T::Bool => Value::Bool(true),
        T::Int2 => Value::Int2(1),
        T::Int4 => Value::Int4(1),
        T::Int8 => Value::Int8(1),
        T::Float4 => Value::Float4(1.0),
        T::Float8 => Value::Float8(1.0),
        T::Numeric(_) => dec("1"),
        T::Bytea => Value::Bytea(vec![1].into()),
        T::Date => Value::Date(1),
        T::Timestamp => Value::Timestamp(0),
        T::TimestampTz => Value::TimestampTz(0),
        T::Interval => Value::Interval(crate::value::Interval::from_micros(1)),
        T::PgLsn => Value::PgLsn(1),
        T::Text | T::Varchar(_) | T::Char(_) | T::Unknown => Value::text("1"),
    }
}

/// `cast` refuses with 42846 exactly the pairs `can_cast` refuses even explicitly.
#[test]
fn cast_agrees_with_can_cast() {
    let types = [
        T::Bool,
        T::Int2,
        T::Int4,
        T::Int8,
        T::Float4,
        T::Float8,
        T::Numeric(None),
        T::Numeric(Some((3, 1))),
        T::Text,
        T::Varchar(Some(3)),
        T::Char(2),
        T::Bytea,
        T::Date,
        T::Timestamp,
        T::TimestampTz,
        T::Interval,
        T::PgLsn,
    ];
    for from in types {
        for to in types {
            let v = sample(from);
            let result = cast(&v, to, Explicit);
            let refused = matches!(&result, Err(e) if e.code == sqlstate::CANNOT_COERCE);
            // A string sample is text, which PostgreSQL casts to anything explicitly via I/O;
            // "1" is not valid bool/bytea/timestamp input in some cases, which is a 22xxx error.
            assert_eq!(
                refused,
                !can_cast(pgio::value_type(&v), to, Explicit),
                "{from} -> {to}: {result:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No cast panics, whatever the value and target.
    #[test]
    fn casts_never_panic(
        i in any::<i64>(),
        bits in any::<u64>(),
        s in "\\PC{0,12}",
        p in 1u16..40,
        sc in 0u16..40,
        n in 1u32..6,
    ) {
        let values = [
            Value::Int2(i as i16),
            Value::Int4(i as i32),
            Value::Int8(i),
            Value::Float4(f32::from_bits(bits as u32)),
            Value::Float8(f64::from_bits(bits)),
            Value::Numeric(Decimal::from_i128_with_scale(i128::from(i), (bits % 29) as u32)),
            Value::text(&s),
            Value::Bool(i % 2 == 0),
            Value::Timestamp(i),
            Value::Bytea(s.as_bytes().into()),
        ];
        let targets = [
            T::Bool, T::Int2, T::Int4, T::Int8, T::Float4, T::Float8, T::Numeric(None),
            T::Numeric(Some((p, sc))), T::Text, T::Varchar(Some(n)), T::Char(n), T::Bytea,
            T::Timestamp, T::TimestampTz, T::Unknown,
        ];
        for v in &values {
            for to in targets {
                for kind in [Implicit, Assignment, Explicit] {
                    let _ = cast(v, to, kind);
                }
            }
        }
    }

    /// Widening integer casts are exact and invertible.
    #[test]
    fn integer_widening_round_trips(i in any::<i32>()) {
        let wide = cast(&Value::Int4(i), T::Int8, Implicit).unwrap();
        prop_assert_eq!(cast(&wide, T::Int4, Assignment).unwrap(), Value::Int4(i));
        let num = cast(&Value::Int4(i), T::Numeric(None), Implicit).unwrap();
        prop_assert_eq!(cast(&num, T::Int4, Assignment).unwrap(), Value::Int4(i));
        let f = cast(&Value::Int4(i), T::Float8, Implicit).unwrap();
        prop_assert_eq!(cast(&f, T::Int4, Assignment).unwrap(), Value::Int4(i));
    }
}
