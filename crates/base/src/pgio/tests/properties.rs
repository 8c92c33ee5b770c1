//! Round trips over every type and property tests: no input panics, every value survives.

use super::*;

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
        let b = super::numbers::numeric_wire(ndigits, weight, sign, dscale, &digits);
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
