//! Functions on timestamps that depend on the calendar and the session's TimeZone:
//! `date_trunc`, `date_part`/`EXTRACT`, and `AT TIME ZONE`.
//!
//! A `timestamptz` is an instant; these functions work on its wall-clock reading in the
//! session's zone (`base::tz::current()`), as PostgreSQL's do, and `date_trunc` turns the
//! truncated reading back into an instant: for units of a day or more with the zone's offset
//! at that new reading, for smaller units with the original offset (so truncating the
//! second 01:30 of a fall-back night to the hour stays in that hour, as in PostgreSQL's
//! `timestamptz_trunc_internal`). A `timestamp` is a reading already and no zone applies
//! (its epoch counts it as UTC, as PostgreSQL's does).
//!
//! Field rules are PostgreSQL 15's (`timestamp_part_common`, `timestamp_trunc`), including
//! astronomical years for BC dates (1 BC is year 0 inside, -1 when extracted), ISO weeks
//! (`week`, `isoyear`, `isodow`), Sunday-based `dow`, and decade/century/millennium
//! boundaries. `EXTRACT` returns numeric with PostgreSQL's scales (`second` 6, `milliseconds`
//! 3, `epoch` 6); `date_part` returns float8.
//!
//! Not here: `julian` (0A000), fields of intervals, and `EXTRACT` of the fields that are
//! ±Infinity for an infinite timestamp (lockstep's numeric has no infinity: 0A000; `date_part`
//! gives the float infinities, the other fields NULL, as PostgreSQL 15 does).

use base::error::sqlstate;
use base::pgio::{USECS_PER_DAY, USECS_PER_SEC, civil_from_days, days_from_civil};
use base::tz::Zone;
use base::{DataType, PgError, Value};
use rust_decimal::Decimal;

/// A field or unit name, as `DecodeUnits`/`DecodeSpecial` read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    Epoch,
    Dow,
    IsoDow,
    Doy,
    IsoYear,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
    Julian,
}

fn unit(name: &str) -> Option<Unit> {
    use Unit as U;
    Some(match name.to_ascii_lowercase().as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => U::Microseconds,
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => U::Milliseconds,
        "second" | "seconds" | "s" | "sec" | "secs" => U::Second,
        "minute" | "minutes" | "m" | "min" | "mins" => U::Minute,
        "hour" | "hours" | "h" | "hr" | "hrs" => U::Hour,
        "day" | "days" | "d" => U::Day,
        "week" | "weeks" | "w" => U::Week,
        "month" | "months" | "mon" | "mons" => U::Month,
        "quarter" | "qtr" => U::Quarter,
        "year" | "years" | "y" | "yr" | "yrs" => U::Year,
        "decade" | "decades" | "dec" | "decs" => U::Decade,
        "century" | "centuries" | "c" | "cent" => U::Century,
        "millennium" | "millennia" | "mil" | "mils" => U::Millennium,
        "epoch" => U::Epoch,
        "dow" => U::Dow,
        "isodow" => U::IsoDow,
        "doy" => U::Doy,
        "isoyear" => U::IsoYear,
        "timezone" => U::Timezone,
        "timezone_h" | "timezone_hour" => U::TimezoneHour,
        "timezone_m" | "timezone_minute" => U::TimezoneMinute,
        "julian" | "j" => U::Julian,
        _ => return None,
    })
}

fn type_name(with_tz: bool) -> &'static str {
    if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp without time zone"
    }
}

fn not_recognized(name: &str, with_tz: bool) -> PgError {
    PgError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!(
            "unit \"{name}\" not recognized for type {}",
            type_name(with_tz)
        ),
    )
}

fn not_supported(name: &str, with_tz: bool) -> PgError {
    PgError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!(
            "unit \"{name}\" not supported for type {}",
            type_name(with_tz)
        ),
    )
}

fn is_infinite(t: i64) -> bool {
    t == i64::MAX || t == i64::MIN
}

/// The timestamp argument: (microseconds, has a zone).
fn ts_arg(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Timestamp(t) => Some((*t, false)),
        Value::TimestampTz(t) => Some((*t, true)),
        _ => None,
    }
}

/// A wall-clock reading split into calendar fields (astronomical year: 1 BC = 0).
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    days: i64,
    /// Microseconds since midnight.
    time: i64,
}

fn split(local: i64) -> Fields {
    let days = local.div_euclid(USECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Fields {
        year,
        month,
        day,
        days,
        time: local.rem_euclid(USECS_PER_DAY),
    }
}

/// ISO 8601 week-numbering year and week of a day number (days since 2000-01-01).
fn iso_week(days: i64, year: i64) -> (i64, i64) {
    // Monday = 0.
    let weekday = (days + 5).rem_euclid(7);
    // The Thursday of this week decides its year.
    let thursday = days - weekday + 3;
    let (iso_year, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(iso_year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    let _ = year;
    (iso_year, week)
}

/// `date_part` (`numeric` false, float8) or `EXTRACT` (`numeric` true).
pub fn part(field: &Value, ts: &Value, numeric: bool) -> Result<Value, PgError> {
    let (Value::Text(name), Some((t, with_tz))) = (field, ts_arg(ts)) else {
        return Ok(Value::Null);
    };
    let u = unit(name).ok_or_else(|| not_recognized(name, with_tz))?;
    if !with_tz
        && matches!(
            u,
            Unit::Timezone | Unit::TimezoneHour | Unit::TimezoneMinute
        )
    {
        return Err(not_supported(name, with_tz));
    }
    if u == Unit::Julian {
        return Err(not_supported(name, with_tz));
    }
    if is_infinite(t) {
        // PostgreSQL's NonFiniteTimestampTzPart: the "how far" fields are ±Infinity, the
        // others NULL. lockstep's numeric has no infinity, so EXTRACT of those is 0A000.
        let grows = matches!(
            u,
            Unit::Year
                | Unit::Decade
                | Unit::Century
                | Unit::Millennium
                | Unit::IsoYear
                | Unit::Epoch
        );
        if !grows {
            return Ok(Value::Null);
        }
        if numeric {
            return Err(PgError::feature_not_supported(
                "EXTRACT of an infinite timestamp (numeric infinity)",
            ));
        }
        return Ok(Value::Float8(if t > 0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }));
    }
    let zone = base::tz::current();
    let offset = if with_tz { zone.offset_at(t) } else { 0 };
    let local = t.saturating_add(i64::from(offset) * USECS_PER_SEC);
    let f = split(local);
    let sec = f.time / USECS_PER_SEC % 60;
    let fsec = f.time % USECS_PER_SEC;
    // (integer part, or an exact decimal with its scale, and the float8 value)
    let int = |v: i64| (Decimal::from(v), v as f64);
    let (d, x) = match u {
        Unit::Microseconds => int(sec * USECS_PER_SEC + fsec),
        Unit::Milliseconds => (
            Decimal::new(sec * 1_000_000 + fsec, 3),
            sec as f64 * 1000.0 + fsec as f64 / 1000.0,
        ),
        Unit::Second => (
            Decimal::new(sec * 1_000_000 + fsec, 6),
            sec as f64 + fsec as f64 / 1_000_000.0,
        ),
        Unit::Minute => int(f.time / (60 * USECS_PER_SEC) % 60),
        Unit::Hour => int(f.time / (3600 * USECS_PER_SEC)),
        Unit::Day => int(i64::from(f.day)),
        Unit::Month => int(i64::from(f.month)),
        Unit::Quarter => int(i64::from((f.month - 1) / 3 + 1)),
        Unit::Week => int(iso_week(f.days, f.year).1),
        Unit::Year => int(if f.year > 0 { f.year } else { f.year - 1 }),
        Unit::Decade => int(if f.year >= 0 {
            f.year / 10
        } else {
            -((8 - (f.year - 1)) / 10)
        }),
        Unit::Century => int(if f.year > 0 {
            (f.year + 99) / 100
        } else {
            -((99 - (f.year - 1)) / 100)
        }),
        Unit::Millennium => int(if f.year > 0 {
            (f.year + 999) / 1000
        } else {
            -((999 - (f.year - 1)) / 1000)
        }),
        Unit::IsoYear => {
            let y = iso_week(f.days, f.year).0;
            int(if y > 0 { y } else { y - 1 })
        }
        Unit::Dow => int((f.days + 6).rem_euclid(7)),
        Unit::IsoDow => int((f.days + 5).rem_euclid(7) + 1),
        Unit::Doy => int(f.days - days_from_civil(f.year, 1, 1) + 1),
        Unit::Epoch => {
            // Seconds since 1970-01-01 00:00 UTC (a timestamp's reading counts as UTC).
            let unix = i128::from(t) + 946_684_800 * i128::from(USECS_PER_SEC);
            let d = Decimal::try_from_i128_with_scale(unix, 6)
                .map_err(|_| base::pgio::timestamp_out_of_range())?;
            (d, unix as f64 / 1_000_000.0)
        }
        Unit::Timezone => int(i64::from(offset)),
        Unit::TimezoneHour => int(i64::from(offset / 3600)),
        Unit::TimezoneMinute => int(i64::from(offset / 60 % 60)),
        Unit::Julian => return Err(not_supported(name, with_tz)),
    };
    Ok(if numeric {
        Value::Numeric(d)
    } else {
        Value::Float8(x)
    })
}

/// `date_trunc(unit, ts)`.
pub fn trunc(field: &Value, ts: &Value) -> Result<Value, PgError> {
    let (Value::Text(name), Some((t, with_tz))) = (field, ts_arg(ts)) else {
        return Ok(Value::Null);
    };
    let u = unit(name).ok_or_else(|| not_recognized(name, with_tz))?;
    if is_infinite(t) {
        return Ok(ts.clone());
    }
    let zone = if with_tz {
        base::tz::current()
    } else {
        Zone::Utc
    };
    let offset = zone.offset_at(t);
    let local = t.saturating_add(i64::from(offset) * USECS_PER_SEC);
    let f = split(local);
    let day_start = f.days * USECS_PER_DAY;
    let date = |y: i64, m: u32, d: u32| days_from_civil(y, m, d) * USECS_PER_DAY;
    let (truncated, whole_days) = match u {
        Unit::Microseconds => (local, false),
        Unit::Milliseconds => (local - local.rem_euclid(1000), false),
        Unit::Second => (local - local.rem_euclid(USECS_PER_SEC), false),
        Unit::Minute => (local - local.rem_euclid(60 * USECS_PER_SEC), false),
        Unit::Hour => (local - local.rem_euclid(3600 * USECS_PER_SEC), false),
        Unit::Day => (day_start, true),
        // Weeks start on Monday.
        Unit::Week => ((f.days - (f.days + 5).rem_euclid(7)) * USECS_PER_DAY, true),
        Unit::Month => (date(f.year, f.month, 1), true),
        Unit::Quarter => (date(f.year, (f.month - 1) / 3 * 3 + 1, 1), true),
        Unit::Year => (date(f.year, 1, 1), true),
        Unit::Decade => {
            let y = if f.year > 0 {
                f.year / 10 * 10
            } else {
                -((8 - (f.year - 1)) / 10) * 10
            };
            (date(y, 1, 1), true)
        }
        Unit::Century => {
            let y = if f.year > 0 {
                (f.year + 99) / 100 * 100 - 99
            } else {
                -((99 - (f.year - 1)) / 100) * 100 + 1
            };
            (date(y, 1, 1), true)
        }
        Unit::Millennium => {
            let y = if f.year > 0 {
                (f.year + 999) / 1000 * 1000 - 999
            } else {
                -((999 - (f.year - 1)) / 1000) * 1000 + 1
            };
            (date(y, 1, 1), true)
        }
        _ => return Err(not_supported(name, with_tz)),
    };
    Ok(if !with_tz {
        Value::Timestamp(truncated)
    } else if whole_days {
        Value::TimestampTz(zone.local_to_utc(truncated))
    } else {
        Value::TimestampTz(truncated.saturating_sub(i64::from(offset) * USECS_PER_SEC))
    })
}

/// The zone of `AT TIME ZONE`: a zone name or POSIX string (where `'+02'` is *west*, as in
/// PostgreSQL's `timestamptz_zone`), or an interval (east).
fn zone_arg(z: &Value) -> Result<Option<Zone>, PgError> {
    Ok(Some(match z {
        Value::Null => return Ok(None),
        Value::Text(name) => Zone::parse_for_at_time_zone(name).ok_or_else(|| {
            PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("time zone \"{name}\" not recognized"),
            )
        })?,
        Value::Interval(iv) => {
            if iv.months != 0 || iv.days != 0 {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "interval time zone must not include months or days",
                ));
            }
            let secs = i32::try_from(iv.micros / USECS_PER_SEC).map_err(|_| {
                PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "interval time zone is out of range",
                )
            })?;
            Zone::Fixed(secs)
        }
        other => {
            return Err(PgError::internal(format!(
                "AT TIME ZONE with a zone of type {:?}",
                base::pgio::value_type(other)
            )));
        }
    }))
}

/// `ts AT TIME ZONE zone`: a timestamptz's reading there (a timestamp), or the instant a
/// timestamp's reading names there (a timestamptz).
pub fn at_time_zone(ts: &Value, zone: &Value) -> Result<Value, PgError> {
    let Some(z) = zone_arg(zone)? else {
        return Ok(Value::Null);
    };
    Ok(match ts {
        Value::TimestampTz(t) if is_infinite(*t) => Value::Timestamp(*t),
        Value::Timestamp(t) if is_infinite(*t) => Value::TimestampTz(*t),
        Value::TimestampTz(t) => Value::Timestamp(z.utc_to_local(*t)),
        Value::Timestamp(t) => Value::TimestampTz(z.local_to_utc(*t)),
        _ => Value::Null,
    })
}

/// The result type of `AT TIME ZONE` on `arg`.
pub fn at_time_zone_type(arg: DataType) -> DataType {
    if arg == DataType::Timestamp {
        DataType::TimestampTz
    } else {
        DataType::Timestamp
    }
}
