//! `timestamp`/`timestamptz` text I/O with `DateStyle = ISO, MDY`, in the session's
//! `TimeZone` (`crate::tz::current()`).
//!
//! Calendar arithmetic is the proleptic Gregorian calendar with astronomical year numbering
//! (year 0 is 1 BC), as PostgreSQL's `date2j`/`j2date` compute it, done here with Howard
//! Hinnant's days-from-civil algorithm on `i64` so that the whole PostgreSQL range (4713 BC to
//! 294276 AD) is covered; `chrono` stops at year 262143, which is why it is not used.
//!
//! Output is `EncodeDateTime` in ISO style: `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction without
//! trailing zeros), for timestamptz the wall-clock time in the session's zone followed by its
//! offset then (`+02`, `-03:30`, `+00:53:28`), and ` BC` last for years ≤ 0; `infinity` and
//! `-infinity` for `i64::MAX`/`i64::MIN` (PostgreSQL's `TIMESTAMP_NOEND`/`NOBEGIN`).
//!
//! Input is the ISO subset of `DecodeDateTime` that clients send:
//! `YYYY-MM-DD` (year of 3+ digits, 1–2 digit month/day) or `YYYYMMDD`, optionally followed by
//! `T` or blanks and `H:M[:S[.frac]]` (or `M:S.frac`), then in any order an offset (`+02`,
//! `-0530`, `+05:30`, `+05:30:15`), a zone word (`Z`, `Zulu`, `UTC`, `GMT`, `UT`) and an era
//! (`AD`, `BC`); and the special words `now`, `today`, `tomorrow`, `yesterday`, `epoch`,
//! `infinity`, `-infinity`. For `timestamp` a zone is checked and then ignored, as PostgreSQL
//! does; for `timestamptz` the value is converted to UTC, read in the session's zone when it
//! names none (`today` and friends are local midnights). Errors carry PostgreSQL's codes and
//! texts: 22007 invalid syntax, 22008 field out of range (with the DateStyle hint for a month or
//! day outside 1–12/1–31) or timestamp out of range, 22009 zone displacement out of range.
//!
//! Narrowed: textual months (`Jan 2 2024`), MDY/DMY numeric dates (`01/02/2024`), 2-digit years,
//! AM/PM, Julian dates, zone names inside the value other than UTC (`… Europe/Paris` → 22023
//! `time zone "…" not recognized`; abbreviations such as `EST` → 22007; `SET TimeZone` takes
//! any IANA name), and `now`/`today` combined with other fields. `now` is the current
//! wall-clock time (lockstep has no transaction start time here).

use std::io::Write;

use crate::error::{PgError, PgResult, SqlState, sqlstate};
use crate::value::POSTGRES_EPOCH_UNIX_MICROS;

use super::float::is_pg_space;

pub const USECS_PER_SEC: i64 = 1_000_000;
pub const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
/// `MIN_TIMESTAMP`: 4714-11-24 00:00:00 BC, Julian day 0.
pub(crate) const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// `END_TIMESTAMP`: 294277-01-01 00:00:00, the first instant past the range.
pub(crate) const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// `TIMESTAMP_NOBEGIN` (`-infinity`) and `TIMESTAMP_NOEND` (`infinity`).
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_EPOCH_DAYS: i64 = 10_957;

/// `IS_VALID_TIMESTAMP` or one of the infinities: what a timestamp column may hold.
pub(crate) fn is_valid_timestamp(t: i64) -> bool {
    t == TIMESTAMP_INFINITY
        || t == TIMESTAMP_NEG_INFINITY
        || (MIN_TIMESTAMP..END_TIMESTAMP).contains(&t)
}

/// Days since 2000-01-01 of a proleptic Gregorian date (year 0 = 1 BC).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_EPOCH_DAYS
}

/// The date of a day number counted from 2000-01-01: `(year, month, day)`, year 0 = 1 BC.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + UNIX_TO_PG_EPOCH_DAYS + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `DATEVAL_NOBEGIN` (`-infinity`) and `DATEVAL_NOEND` (`infinity`).
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
pub const DATE_INFINITY: i32 = i32::MAX;

/// Appends `date_out` (ISO: `YYYY-MM-DD`, ` BC` for years <= 0) of day number `d`.
pub(crate) fn format_date(d: i32, out: &mut Vec<u8>) {
    match d {
        DATE_INFINITY => out.extend_from_slice(b"infinity"),
        DATE_NEG_INFINITY => out.extend_from_slice(b"-infinity"),
        _ => {
            let (year, month, day) = civil_from_days(i64::from(d));
            let shown_year = if year > 0 { year } else { 1 - year };
            let _ = write!(out, "{shown_year:04}-{month:02}-{day:02}");
            if year <= 0 {
                out.extend_from_slice(b" BC");
            }
        }
    }
}

/// `date_in`: what `timestamp` input accepts, its time of day dropped (PostgreSQL's
/// `DecodeDateTime` reads the time fields and `date_in` ignores them); `today` and friends
/// are the session zone's dates.
pub(crate) fn parse_date_text(s: &str) -> PgResult<i32> {
    let t = parse_timestamp(s, false).map_err(|e| {
        if e.message.contains("timestamp") {
            PgError::new(e.code, e.message.replace("timestamp", "date"))
        } else {
            e
        }
    })?;
    Ok(timestamp_to_date(t))
}

/// `timestamp_date`: the day a timestamp falls on (infinities stay infinite).
pub fn timestamp_to_date(t: i64) -> i32 {
    match t {
        TIMESTAMP_INFINITY => DATE_INFINITY,
        TIMESTAMP_NEG_INFINITY => DATE_NEG_INFINITY,
        // The timestamp range (up to 294276 AD) is inside the date range.
        _ => i32::try_from(t.div_euclid(USECS_PER_DAY)).unwrap_or(DATE_INFINITY),
    }
}

/// `date_timestamp`: midnight at the start of day `d`; 22008 past the timestamp range.
pub fn date_to_timestamp(d: i32) -> PgResult<i64> {
    match d {
        DATE_INFINITY => Ok(TIMESTAMP_INFINITY),
        DATE_NEG_INFINITY => Ok(TIMESTAMP_NEG_INFINITY),
        _ => {
            let t = i64::from(d).checked_mul(USECS_PER_DAY);
            if let Some(t) = t.filter(|t| (MIN_TIMESTAMP..END_TIMESTAMP).contains(t)) {
                Ok(t)
            } else {
                Err(PgError::new(
                    sqlstate::DATETIME_FIELD_OVERFLOW,
                    "date out of range for timestamp",
                ))
            }
        }
    }
}

/// Appends `timestamp_out`/`timestamptz_out` (in the current TimeZone) of `t`.
pub(crate) fn format_timestamp(t: i64, with_tz: bool, out: &mut Vec<u8>) {
    if t == TIMESTAMP_INFINITY {
        out.extend_from_slice(b"infinity");
        return;
    }
    if t == TIMESTAMP_NEG_INFINITY {
        out.extend_from_slice(b"-infinity");
        return;
    }
    let offset = if with_tz {
        crate::tz::current().offset_at(t)
    } else {
        0
    };
    let t = t.saturating_add(i64::from(offset) * USECS_PER_SEC);
    let days = t.div_euclid(USECS_PER_DAY);
    let time = t.rem_euclid(USECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = time / USECS_PER_SEC;
    let fsec = time % USECS_PER_SEC;
    let shown_year = if year > 0 { year } else { 1 - year };
    let _ = write!(
        out,
        "{shown_year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fsec != 0 {
        let frac = format!("{fsec:06}");
        out.push(b'.');
        out.extend_from_slice(frac.trim_end_matches('0').as_bytes());
    }
    if with_tz {
        crate::tz::write_offset(offset, out);
    }
    if year <= 0 {
        out.extend_from_slice(b" BC");
    }
}

/// The current time as microseconds since 2000-01-01 UTC.
pub(crate) fn now_micros() -> i64 {
    let unix = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    };
    unix.saturating_sub(POSTGRES_EPOCH_UNIX_MICROS)
}

/// `DTERR_*` of PostgreSQL's datetime parser.
#[derive(Debug)]
enum DtErr {
    BadFormat,
    FieldOverflow,
    /// Month or day outside 1–12 / 1–31: reported with the DateStyle hint.
    MdFieldOverflow,
    TzDispOverflow,
    /// A syntactically fine date outside the timestamp range.
    OutOfRange,
    UnknownZone(String),
}

#[derive(Default)]
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    fsec: i64,
    /// Seconds east of Greenwich (`+02` is 7200).
    offset: Option<i64>,
    bc: Option<bool>,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(|c| is_pg_space(c as char)) {
            self.i += 1;
        }
        self.i > start
    }

    fn digits(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
}

/// The value of a run of digits; too many digits for any field is a field overflow, as
/// PostgreSQL's `strtoint` reports ERANGE.
fn digits_value(d: &[u8]) -> Result<i64, DtErr> {
    if d.is_empty() {
        return Err(DtErr::BadFormat);
    }
    d.iter().try_fold(0i64, |acc, &c| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(c - b'0')))
            .filter(|&v| v <= i64::from(i32::MAX))
            .ok_or(DtErr::FieldOverflow)
    })
}

fn parse_date(c: &mut Cursor<'_>, f: &mut Fields) -> Result<(), DtErr> {
    let first = c.digits();
    let first_len = first.len();
    let first = first.to_vec();
    if c.peek() == Some(b'-') {
        // ISO 8601 year-first; a 1–2 digit first field would be a month or day under MDY.
        if first_len < 3 {
            return Err(DtErr::BadFormat);
        }
        f.year = digits_value(&first)?;
        c.i += 1;
        let month = digits_value(c.digits())?;
        if !c.eat(b'-') {
            return Err(DtErr::BadFormat);
        }
        let day = digits_value(c.digits())?;
        f.month = u32::try_from(month).unwrap_or(u32::MAX);
        f.day = u32::try_from(day).unwrap_or(u32::MAX);
        return Ok(());
    }
    if first_len == 8 {
        // YYYYMMDD, which DecodeNumberField reads as a concatenated ISO date.
        f.year = digits_value(&first[..4])?;
        f.month = digits_value(&first[4..6])? as u32;
        f.day = digits_value(&first[6..])? as u32;
        return Ok(());
    }
    Err(DtErr::BadFormat)
}

/// `DecodeTime` plus `ParseFractionalSecond`, for `H:M`, `H:M:S[.frac]` and `M:S.frac`.
fn parse_time(c: &mut Cursor<'_>, f: &mut Fields) -> Result<(), DtErr> {
    let first = digits_value(c.digits())?;
    if !c.eat(b':') {
        return Err(DtErr::BadFormat);
    }
    let second_field = if c.peek().is_some_and(|d| d.is_ascii_digit()) {
        digits_value(c.digits())?
    } else {
        0
    };
    match c.peek() {
        Some(b':') => {
            c.i += 1;
            f.hour = first;
            f.minute = second_field;
            f.second = if c.peek().is_some_and(|d| d.is_ascii_digit()) {
                digits_value(c.digits())?
            } else {
                0
            };
            if c.peek() == Some(b'.') {
                f.fsec = parse_fraction(c)?;
            }
        }
        Some(b'.') => {
            // `mm:ss.fff` is minutes and seconds.
            f.hour = 0;
            f.minute = first;
            f.second = second_field;
            f.fsec = parse_fraction(c)?;
        }
        _ => {
            f.hour = first;
            f.minute = second_field;
        }
    }
    let bad = f.minute > 59
        || f.second > 60
        || !(0..=USECS_PER_SEC).contains(&f.fsec)
        || f.hour > 24
        || (f.hour == 24 && (f.minute > 0 || f.second > 0 || f.fsec > 0));
    if bad {
        return Err(DtErr::FieldOverflow);
    }
    Ok(())
}

/// `rint(strtod(".ddd") * 1000000)`, done with the same double arithmetic as PostgreSQL.
fn parse_fraction(c: &mut Cursor<'_>) -> Result<i64, DtErr> {
    c.i += 1; // the '.'
    let digits = c.digits();
    if digits.is_empty() {
        return Err(DtErr::BadFormat);
    }
    let text = format!("0.{}", String::from_utf8_lossy(digits));
    let frac: f64 = text.parse().map_err(|_| DtErr::BadFormat)?;
    Ok((frac * 1_000_000.0).round_ties_even() as i64)
}

/// `DecodeTimezone` on a token `[+-][0-9:.]*` whose first character after the sign is a digit.
fn parse_offset(token: &[u8]) -> Result<i64, DtErr> {
    let negative = token.first() == Some(&b'-');
    let mut c = Cursor { s: token, i: 1 };
    let lenient = |d: &[u8]| -> Result<i64, DtErr> {
        if d.is_empty() {
            Ok(0)
        } else {
            digits_value(d).map_err(|_| DtErr::TzDispOverflow)
        }
    };
    let mut hour = lenient(c.digits())?;
    let mut minute = 0;
    let mut second = 0;
    if c.eat(b':') {
        minute = lenient(c.digits())?;
        if c.eat(b':') {
            second = lenient(c.digits())?;
        }
    } else if c.peek().is_none() && token.len() > 3 {
        minute = hour % 100;
        hour /= 100;
    }
    if hour > 15 || minute >= 60 || second >= 60 {
        return Err(DtErr::TzDispOverflow);
    }
    if c.peek().is_some() {
        return Err(DtErr::BadFormat);
    }
    let secs = (hour * 60 + minute) * 60 + second;
    Ok(if negative { -secs } else { secs })
}

fn parse_trailer(c: &mut Cursor<'_>, f: &mut Fields) -> Result<(), DtErr> {
    loop {
        c.skip_spaces();
        let Some(ch) = c.peek() else {
            return Ok(());
        };
        if ch == b'+' || ch == b'-' {
            if !c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) || f.offset.is_some() {
                return Err(DtErr::BadFormat);
            }
            let start = c.i;
            c.i += 1;
            while c
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || d == b':' || d == b'.')
            {
                c.i += 1;
            }
            f.offset = Some(parse_offset(&c.s[start..c.i])?);
        } else if ch.is_ascii_alphabetic() {
            let start = c.i;
            while c
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || d == b'/' || d == b'_')
            {
                c.i += 1;
            }
            let word = String::from_utf8_lossy(&c.s[start..c.i]).to_ascii_lowercase();
            match word.as_str() {
                "z" | "zulu" | "utc" | "gmt" | "ut" if f.offset.is_none() => f.offset = Some(0),
                "ad" if f.bc.is_none() => f.bc = Some(false),
                "bc" if f.bc.is_none() => f.bc = Some(true),
                w if w.contains('/') => return Err(DtErr::UnknownZone(word)),
                _ => return Err(DtErr::BadFormat),
            }
        } else {
            return Err(DtErr::BadFormat);
        }
    }
}

fn parse_fields(s: &[u8]) -> Result<Fields, DtErr> {
    let mut c = Cursor { s, i: 0 };
    let mut f = Fields::default();
    if !c.peek().is_some_and(|d| d.is_ascii_digit()) {
        return Err(DtErr::BadFormat);
    }
    parse_date(&mut c, &mut f)?;
    let time_follows = match c.peek() {
        Some(b'T' | b't') if c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
            c.i += 1;
            true
        }
        Some(d) if is_pg_space(d as char) => {
            c.skip_spaces();
            c.peek().is_some_and(|d| d.is_ascii_digit())
        }
        _ => false,
    };
    if time_follows {
        parse_time(&mut c, &mut f)?;
    }
    parse_trailer(&mut c, &mut f)?;
    Ok(f)
}

/// `ValidateDate` and `tm2timestamp`: the microseconds of the fields, in UTC when `with_tz`.
fn fields_to_timestamp(f: &Fields, with_tz: bool) -> Result<i64, DtErr> {
    // There is no year zero in AD/BC notation; internally 1 BC is year 0.
    if f.year <= 0 {
        return Err(DtErr::FieldOverflow);
    }
    let year = if f.bc == Some(true) {
        1 - f.year
    } else {
        f.year
    };
    if !(1..=12).contains(&f.month) || !(1..=31).contains(&f.day) {
        return Err(DtErr::MdFieldOverflow);
    }
    if f.day > days_in_month(year, f.month) {
        return Err(DtErr::FieldOverflow);
    }
    // IS_VALID_JULIAN: the Julian-day routines' own range, checked before the timestamp range.
    let julian_ok = (year > -4713 || (year == -4713 && f.month >= 11))
        && (year < 5_874_898 || (year == 5_874_898 && f.month < 6));
    if !julian_ok {
        return Err(DtErr::OutOfRange);
    }
    let days = i128::from(days_from_civil(year, f.month, f.day));
    let time = ((i128::from(f.hour) * 60 + i128::from(f.minute)) * 60 + i128::from(f.second))
        * i128::from(USECS_PER_SEC)
        + i128::from(f.fsec);
    let mut t = days * i128::from(USECS_PER_DAY) + time;
    if with_tz {
        match f.offset {
            Some(o) => t -= i128::from(o) * i128::from(USECS_PER_SEC),
            // No zone in the text: a wall-clock time in the session's zone. Out-of-range
            // readings are caught below; the zone only moves them by hours.
            None if (i128::from(MIN_TIMESTAMP)..i128::from(END_TIMESTAMP)).contains(&t) => {
                t = i128::from(crate::tz::current().local_to_utc(t as i64));
            }
            None => {}
        }
    }
    if !(i128::from(MIN_TIMESTAMP)..i128::from(END_TIMESTAMP)).contains(&t) {
        return Err(DtErr::OutOfRange);
    }
    Ok(t as i64)
}

/// `timestamp_in` (`with_tz` false) or `timestamptz_in` (true), in the current TimeZone.
pub(crate) fn parse_timestamp(input: &str, with_tz: bool) -> PgResult<i64> {
    let s = input.trim_matches(is_pg_space);
    // `now` is an instant; `today` and friends are midnights of the session's zone. For
    // `timestamp` both are wall-clock readings there; for `timestamptz`, instants.
    let zone = crate::tz::current();
    let local_now = zone.utc_to_local(now_micros());
    let midnight = |days: i64| {
        let local = (local_now.div_euclid(USECS_PER_DAY) + days) * USECS_PER_DAY;
        if with_tz {
            zone.local_to_utc(local)
        } else {
            local
        }
    };
    let special = match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => Some(TIMESTAMP_INFINITY),
        "-infinity" => Some(TIMESTAMP_NEG_INFINITY),
        "epoch" => Some(-UNIX_TO_PG_EPOCH_DAYS * USECS_PER_DAY),
        "now" if with_tz => Some(now_micros()),
        "now" => Some(local_now),
        "today" => Some(midnight(0)),
        "tomorrow" => Some(midnight(1)),
        "yesterday" => Some(midnight(-1)),
        _ => None,
    };
    if let Some(t) = special {
        return Ok(t);
    }
    let type_name = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    parse_fields(s.as_bytes())
        .and_then(|f| fields_to_timestamp(&f, with_tz))
        .map_err(|e| match e {
            DtErr::BadFormat => PgError::new(
                sqlstate::INVALID_DATETIME_FORMAT,
                format!("invalid input syntax for type {type_name}: \"{input}\""),
            ),
            DtErr::FieldOverflow => field_overflow(input),
            DtErr::MdFieldOverflow => field_overflow(input)
                .with_hint("Perhaps you need a different \"datestyle\" setting."),
            DtErr::TzDispOverflow => PgError::new(
                SqlState("22009"),
                format!("time zone displacement out of range: \"{input}\""),
            ),
            DtErr::OutOfRange => PgError::new(
                sqlstate::DATETIME_FIELD_OVERFLOW,
                format!("timestamp out of range: \"{input}\""),
            ),
            DtErr::UnknownZone(zone) => PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("time zone \"{zone}\" not recognized"),
            ),
        })
}

fn field_overflow(input: &str) -> PgError {
    PgError::new(
        sqlstate::DATETIME_FIELD_OVERFLOW,
        format!("date/time field value out of range: \"{input}\""),
    )
}

/// The error for a binary or computed timestamp outside the supported range.
pub fn timestamp_out_of_range() -> PgError {
    PgError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}
