//! Strings, char padding, bytea, and the fixed-size binary formats.

use super::*;

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
