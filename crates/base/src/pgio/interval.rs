//! `interval` text I/O in PostgreSQL's default `IntervalStyle = postgres`, and `pg_lsn`'s.
//!
//! Output reproduces `EncodeInterval` for the postgres style: `1 year 2 mons 3 days
//! 04:05:06.789`, fields that are zero left out, `00:00:00` for the zero interval, a `+` on a
//! positive field that follows a negative one (`-1 days +02:00:00`), fractional seconds with
//! trailing zeros trimmed (`00:00:00.001234`).
//!
//! Input is deliberately narrowed to what monitoring queries write: a sequence of
//! `<number> <unit>` pairs (units from microseconds to years, singular, plural or PostgreSQL's
//! abbreviations, a fraction allowed), an optional `[+-]HH:MM[:SS[.frac]]` time, an optional
//! leading `@` and trailing `ago`. ISO 8601 forms (`P1D`) and SQL-standard `Y-M` are 22007.
//! Fractions of months and days spill into the smaller fields as PostgreSQL does (30-day
//! months, 24-hour days).

use std::io::Write;

use crate::error::{PgError, PgResult, sqlstate};
use crate::value::{Interval, MICROS_PER_DAY};

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_MINUTE: i64 = 60_000_000;
const MICROS_PER_SECOND: i64 = 1_000_000;

/// Appends the postgres-style text of `iv`.
pub fn format_interval(iv: &Interval, out: &mut Vec<u8>) {
    let years = iv.months / 12;
    let mons = iv.months % 12;
    let mut is_before = false;
    let mut is_zero = true;
    let mut field = |out: &mut Vec<u8>, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let sep = if is_zero { "" } else { " " };
        let plus = if is_before && value > 0 { "+" } else { "" };
        let plural = if value == 1 { "" } else { "s" };
        let _ = write!(out, "{sep}{plus}{value} {unit}{plural}");
        is_before = value < 0;
        is_zero = false;
    };
    field(out, i64::from(years), "year");
    field(out, i64::from(mons), "mon");
    field(out, i64::from(iv.days), "day");
    if iv.micros != 0 || is_zero {
        let neg = iv.micros < 0;
        let abs = iv.micros.unsigned_abs();
        let hours = abs / MICROS_PER_HOUR as u64;
        let minutes = abs / MICROS_PER_MINUTE as u64 % 60;
        let seconds = abs / MICROS_PER_SECOND as u64 % 60;
        let frac = abs % MICROS_PER_SECOND as u64;
        let sep = if is_zero { "" } else { " " };
        let sign = if neg {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        let _ = write!(out, "{sep}{sign}{hours:02}:{minutes:02}:{seconds:02}");
        if frac != 0 {
            let digits = format!("{frac:06}");
            let _ = write!(out, ".{}", digits.trim_end_matches('0'));
        }
    }
}

fn bad_interval(s: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type interval: \"{s}\""),
    )
}

fn interval_out_of_range() -> PgError {
    PgError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// What one unit word adds: months, days or microseconds per unit.
enum Unit {
    Months(f64),
    Days(f64),
    Micros(f64),
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => Unit::Micros(1.0),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => Unit::Micros(1e3),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(1e6),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(6e7),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(3.6e9),
        "day" | "days" | "d" => Unit::Days(1.0),
        "week" | "weeks" | "w" => Unit::Days(7.0),
        "mon" | "mons" | "month" | "months" => Unit::Months(1.0),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12.0),
        _ => return None,
    })
}

/// `[+-]HH:MM[:SS[.frac]]` → microseconds.
fn parse_time(t: &str) -> Option<i64> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut parts = body.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: f64 = match parts.next() {
        Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit() || c == b'.') => {
            p.parse().ok()?
        }
        Some(_) => return None,
        None => 0.0,
    };
    if parts.next().is_some() || !(0..60).contains(&m) || !(0.0..60.0).contains(&s) {
        return None;
    }
    let micros = h
        .checked_mul(MICROS_PER_HOUR)?
        .checked_add(m * MICROS_PER_MINUTE)?
        .checked_add((s * 1e6).round() as i64)?;
    Some(if neg { -micros } else { micros })
}

/// Parses the narrowed `interval` input described in the module header.
pub fn parse_interval(s: &str) -> PgResult<Interval> {
    let lower = s.trim().to_ascii_lowercase();
    let mut words: Vec<&str> = lower.split_whitespace().collect();
    if words.first() == Some(&"@") {
        words.remove(0);
    }
    let ago = words.last() == Some(&"ago");
    if ago {
        words.pop();
    }
    if words.is_empty() {
        return Err(bad_interval(s));
    }
    let (mut months, mut days, mut micros) = (0f64, 0f64, 0f64);
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.contains(':') {
            micros += parse_time(w).ok_or_else(|| bad_interval(s))? as f64;
            i += 1;
            continue;
        }
        // A number, then its unit (possibly written without a blank: `5min`).
        let split = w
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(w.len());
        let (num, glued) = w.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad_interval(s))?;
        let word = if glued.is_empty() {
            i += 1;
            *words.get(i).ok_or_else(|| bad_interval(s))?
        } else {
            glued
        };
        match unit(word).ok_or_else(|| bad_interval(s))? {
            Unit::Months(k) => months += n * k,
            Unit::Days(k) => days += n * k,
            Unit::Micros(k) => micros += n * k,
        }
        i += 1;
    }
    // Fractions spill downwards: 30-day months, 24-hour days.
    let whole_months = months.trunc();
    days += (months - whole_months) * 30.0;
    let whole_days = days.trunc();
    micros += (days - whole_days) * MICROS_PER_DAY as f64;
    let sign = if ago { -1.0 } else { 1.0 };
    let fits_i32 = |x: f64| x >= f64::from(i32::MIN) && x <= f64::from(i32::MAX);
    let micros = (micros * sign).round();
    // `is_finite` first: a NaN span (from `nan seconds`) is out of range too.
    let fits_i64 = micros.is_finite() && micros.abs() < 9.2e18;
    if !fits_i32(whole_months) || !fits_i32(whole_days) || !fits_i64 {
        return Err(interval_out_of_range());
    }
    Ok(Interval {
        months: (whole_months * sign) as i32,
        days: (whole_days * sign) as i32,
        micros: micros as i64,
    })
}

/// `pg_lsn_in`: `X/Y`, each part 1 to 8 hexadecimal digits; 22P02 otherwise.
pub fn parse_lsn(s: &str) -> PgResult<u64> {
    s.parse::<crate::lsn::Lsn>()
        .map(|l| l.0)
        .map_err(|e| PgError::new(sqlstate::INVALID_TEXT_REPRESENTATION, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(iv: Interval) -> String {
        let mut v = Vec::new();
        format_interval(&iv, &mut v);
        String::from_utf8(v).expect("utf8")
    }

    fn iv(months: i32, days: i32, micros: i64) -> Interval {
        Interval {
            months,
            days,
            micros,
        }
    }

    #[test]
    fn output_matches_postgres_style() {
        assert_eq!(out(iv(0, 0, 0)), "00:00:00");
        assert_eq!(out(iv(0, 0, 1234)), "00:00:00.001234");
        assert_eq!(out(iv(0, 0, 1_500_000)), "00:00:01.5");
        assert_eq!(out(iv(0, 0, 100 * MICROS_PER_HOUR)), "100:00:00");
        assert_eq!(
            out(iv(14, 3, 4 * MICROS_PER_HOUR)),
            "1 year 2 mons 3 days 04:00:00"
        );
        assert_eq!(out(iv(0, 1, 0)), "1 day");
        assert_eq!(out(iv(0, -1, 2 * MICROS_PER_HOUR)), "-1 days +02:00:00");
        assert_eq!(out(iv(0, 0, -1)), "-00:00:00.000001");
        assert_eq!(out(iv(-1, 0, 0)), "-1 mons");
    }

    #[test]
    fn input_round_trips_and_rejects_garbage() {
        for text in [
            "00:00:00",
            "00:00:00.001234",
            "1 year 2 mons 3 days 04:00:00",
            "-1 days +02:00:00",
            "100:00:00",
        ] {
            let v = parse_interval(text).expect(text);
            assert_eq!(out(v), text);
        }
        assert_eq!(parse_interval("5 seconds").ok(), Some(iv(0, 0, 5_000_000)));
        assert_eq!(
            parse_interval("1.5 days").ok(),
            Some(iv(0, 1, 12 * MICROS_PER_HOUR))
        );
        assert_eq!(
            parse_interval("@ 2 hours ago").ok(),
            Some(iv(0, 0, -2 * MICROS_PER_HOUR))
        );
        assert_eq!(
            parse_interval("10min").ok(),
            Some(iv(0, 0, 10 * MICROS_PER_MINUTE))
        );
        let e = parse_interval("soon").expect_err("garbage");
        assert_eq!(e.code, sqlstate::INVALID_DATETIME_FORMAT);
        assert_eq!(
            e.message,
            "invalid input syntax for type interval: \"soon\""
        );
    }

    #[test]
    fn binary_layouts_match_postgres() {
        use crate::types::DataType;
        use crate::value::Value;
        let v = Value::Interval(iv(-2, 3, 1234));
        let mut out = Vec::new();
        crate::pgio::format_binary(&v, DataType::Interval, &mut out).expect("send");
        // interval_send: int64 time, int32 day, int32 month, big-endian.
        let mut want = 1234i64.to_be_bytes().to_vec();
        want.extend_from_slice(&3i32.to_be_bytes());
        want.extend_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(out, want);
        assert_eq!(
            crate::pgio::parse_binary(&out, DataType::Interval).ok(),
            Some(v)
        );
        let l = Value::PgLsn(0x1_0000_0028);
        let mut out = Vec::new();
        crate::pgio::format_binary(&l, DataType::PgLsn, &mut out).expect("send");
        assert_eq!(out, 0x1_0000_0028u64.to_be_bytes());
        assert_eq!(
            crate::pgio::parse_binary(&out, DataType::PgLsn).ok(),
            Some(l)
        );
        // Text columns of these types go out through the output function.
        assert_eq!(
            crate::pgio::format_text_string(&Value::PgLsn(0x1_0000_0028), DataType::PgLsn),
            "1/28"
        );
        assert!(crate::pgio::parse_binary(&[0; 15], DataType::Interval).is_err());
    }

    #[test]
    fn lsn_input() {
        assert_eq!(parse_lsn("0/3000000").ok(), Some(0x300_0000));
        assert_eq!(parse_lsn("1/0").ok(), Some(1 << 32));
        let e = parse_lsn("3000000").expect_err("no slash");
        assert_eq!(e.code, sqlstate::INVALID_TEXT_REPRESENTATION);
        assert_eq!(
            e.message,
            "invalid input syntax for type pg_lsn: \"3000000\""
        );
    }
}
