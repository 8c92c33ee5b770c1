//! Timestamps: output, input (ISO forms, zones, specials), calendar arithmetic.

use super::*;

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

// ---------------------------------------------------------------- dates

#[test]
fn date_text_and_binary_round_trip() {
    let cases = [
        (0, "2000-01-01"),
        (-1, "1999-12-31"),
        (8_825, "2024-02-29"),
        (datetime::days_from_civil(0, 12, 31) as i32, "0001-12-31 BC"),
        (-2_451_545, "4714-11-24 BC"),
        (DATE_INFINITY, "infinity"),
        (DATE_NEG_INFINITY, "-infinity"),
    ];
    for (d, want) in cases {
        let v = Value::Date(d);
        assert_eq!(format_text_string(&v, DataType::Date), want);
        assert_eq!(parse_text(want, DataType::Date).expect(want), v, "{want}");
        let mut bin = Vec::new();
        format_binary(&v, DataType::Date, &mut bin).expect("send");
        assert_eq!(parse_binary(&bin, DataType::Date).expect("recv"), v);
    }
    // A time of day is read and dropped; a bad day is 22008, garbage 22007.
    assert_eq!(
        parse_text("2024-02-29 23:59:59", DataType::Date).expect("date"),
        Value::Date(8_825)
    );
    assert_eq!(
        parse_text("2023-02-29", DataType::Date)
            .expect_err("no such day")
            .code
            .0,
        "22008"
    );
    let e = parse_text("soon", DataType::Date).expect_err("garbage");
    assert_eq!(e.code.0, "22007");
    assert_eq!(e.message, "invalid input syntax for type date: \"soon\"");
}

#[test]
fn date_timestamp_conversions() {
    assert_eq!(date_to_timestamp(1).expect("ts"), USECS_PER_DAY);
    assert_eq!(timestamp_to_date(USECS_PER_DAY - 1), 0);
    assert_eq!(
        timestamp_to_date(-1),
        -1,
        "the day before the epoch, not day 0"
    );
    assert_eq!(
        date_to_timestamp(DATE_INFINITY).expect("inf"),
        TIMESTAMP_INFINITY
    );
    assert_eq!(timestamp_to_date(TIMESTAMP_NEG_INFINITY), DATE_NEG_INFINITY);
    assert_eq!(
        date_to_timestamp(2_145_031_948)
            .expect_err("5874897 AD")
            .code
            .0,
        "22008"
    );
}
