//! The session's `TimeZone`: which zones it may name, and the two conversions everything
//! else needs (an instant's UTC offset, and a local wall-clock time's instant).
//!
//! Values never carry a zone: a `timestamptz` is an instant (microseconds since
//! 2000-01-01 00:00 UTC), a `timestamp` a wall-clock reading. The zone matters only where
//! PostgreSQL consults `TimeZone`: text output of `timestamptz` (`2026-03-29 03:30:00+02`),
//! text input without an explicit offset, casts between the two types, `localtimestamp`, and
//! interval arithmetic on `timestamptz` (a day is a local day). Binary I/O, storage and WAL
//! are zone-free.
//!
//! Where it runs: in whichever thread formats or parses a value. The zone in effect is a
//! thread-local set around each call into a session (`with_zone`, or `ZoneGuard` for
//! synchronous calls), because sessions of different zones interleave on one event-loop
//! thread at every await; setting it per poll makes each session see its own. Outside a
//! session (WAL dump, the config file, recovery) it is UTC.
//!
//! Zones accepted, as PostgreSQL's `check_timezone` (checked against PostgreSQL 15): IANA
//! names from the compiled-in tz database, case-insensitively (shown with the database's
//! spelling); a number of hours east of UTC (`SET TIME ZONE -7` or `'+02'`, shown as
//! `<-07>+07`, `<+02>-02`); and POSIX-style fixed offsets (`UTC+3`, `<+0530>-5:30`) where, as
//! in POSIX, a positive offset is *west* of Greenwich. Not accepted: POSIX strings with daylight-saving rules (`EST5EDT,M3.2.0,...`
//! — the IANA zone of that name is) and abbreviations that are not zone names (`PST`).
//!
//! Local times that do not exist (a spring-forward gap) or exist twice (fall-back) resolve as
//! PostgreSQL's `DetermineTimeZoneOffset` does: a gap time is read with the offset in force
//! before the transition, an ambiguous one with the offset after it (both: standard time).

use std::cell::Cell;
use std::future::Future;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone as _};

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
const USECS_PER_SEC: i64 = 1_000_000;
/// Zone rules are only looked up within chrono's comfortable range; offsets outside it are
/// those at its edges (the tz database has no rules there anyway).
const MIN_UNIX_SECS: i64 = -62_135_596_800; // 0001-01-01
const MAX_UNIX_SECS: i64 = 253_402_300_799; // 9999-12-31 23:59:59
/// The largest offset PostgreSQL accepts for a zone (`MAX_TZDISP_HOUR` = 15 hours, 59 minutes).
const MAX_OFFSET_SECS: i32 = 15 * 3600 + 59 * 60 + 59;

/// A session time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Zone {
    #[default]
    Utc,
    /// A fixed offset, in seconds east of UTC.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

thread_local! {
    static CURRENT: Cell<Zone> = const { Cell::new(Zone::Utc) };
}

/// The zone in effect on this thread (UTC outside a session).
pub fn current() -> Zone {
    CURRENT.with(Cell::get)
}

/// Makes `zone` current on this thread until the guard drops (then the previous one again).
pub struct ZoneGuard {
    prev: Zone,
}

impl ZoneGuard {
    pub fn set(zone: Zone) -> ZoneGuard {
        ZoneGuard {
            prev: CURRENT.with(|c| c.replace(zone)),
        }
    }
}

impl Drop for ZoneGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Runs `fut` with `zone` current during each of its polls (and only then).
pub async fn with_zone<F: Future>(zone: Zone, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        let _g = ZoneGuard::set(zone);
        fut.as_mut().poll(cx)
    })
    .await
}

fn naive_utc(pg_micros: i64) -> NaiveDateTime {
    let secs = pg_micros
        .div_euclid(USECS_PER_SEC)
        .saturating_add(PG_EPOCH_UNIX_SECS)
        .clamp(MIN_UNIX_SECS, MAX_UNIX_SECS);
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc()
}

impl Zone {
    /// Seconds east of UTC in force at the instant `t` (PostgreSQL microseconds).
    pub fn offset_at(self, t: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => o,
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&naive_utc(t))
                .fix()
                .local_minus_utc(),
        }
    }

    /// The instant at which clocks in this zone read `local` (PostgreSQL microseconds of a
    /// wall-clock reading), resolving gaps and repeats as described in the module header.
    pub fn local_to_utc(self, local: i64) -> i64 {
        let o = match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => o,
            Zone::Named(_) => {
                // The offsets in force a day before and a day after bracket at most one
                // transition (zones change offset at most a few times a year).
                let day = 86_400 * USECS_PER_SEC;
                let before = self.offset_at(local.saturating_sub(day));
                let after = self.offset_at(local.saturating_add(day));
                let fits = |o: i32| {
                    self.offset_at(local.saturating_sub(i64::from(o) * USECS_PER_SEC)) == o
                };
                match (fits(before), fits(after)) {
                    // Ambiguous (both readings exist): the offset after the transition.
                    (true, true) => after,
                    (true, false) => before,
                    (false, true) => after,
                    // A gap: the offset before the transition.
                    (false, false) => before,
                }
            }
        };
        local.saturating_sub(i64::from(o) * USECS_PER_SEC)
    }

    /// The wall-clock reading of instant `t` in this zone.
    pub fn utc_to_local(self, t: i64) -> i64 {
        t.saturating_add(i64::from(self.offset_at(t)) * USECS_PER_SEC)
    }

    /// Parses a `TimeZone` setting: the zone and the name `SHOW TimeZone` gives, or `None`.
    pub fn parse(s: &str) -> Option<(Zone, String)> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        if t.eq_ignore_ascii_case("utc") {
            return Some((Zone::Utc, "UTC".into()));
        }
        if let Ok(tz) = chrono_tz::Tz::from_str_insensitive(t) {
            let zone = if tz == chrono_tz::Tz::UTC {
                Zone::Utc
            } else {
                Zone::Named(tz)
            };
            return Some((zone, tz.name().to_owned()));
        }
        // A plain number: hours east of UTC (ISO sign), as `SET TIME ZONE -7`.
        if t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
            && t.bytes().any(|b| b.is_ascii_digit())
            && !t.contains(':')
        {
            let hours: f64 = t.parse().ok()?;
            let secs = (hours * 3600.0).round();
            if !secs.is_finite() || secs.abs() > f64::from(MAX_OFFSET_SECS) {
                return None;
            }
            // `secs` is within ±57599 here, so the conversion is exact.
            let secs = secs as i32;
            return Some((Zone::Fixed(secs), posix_name(secs)));
        }
        let secs_west = parse_posix_fixed(t)?;
        let zone = if secs_west == 0 {
            Zone::Utc
        } else {
            Zone::Fixed(-secs_west)
        };
        Some((zone, t.to_owned()))
    }
}

impl Zone {
    /// The zone of `AT TIME ZONE 'text'`: a zone name, or a POSIX string in which even a bare
    /// `'+02'` counts *west* (PostgreSQL's `timestamptz_zone` has no hours-east rule).
    pub fn parse_for_at_time_zone(s: &str) -> Option<Zone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") {
            return Some(Zone::Utc);
        }
        if let Ok(tz) = chrono_tz::Tz::from_str_insensitive(t) {
            return Some(Zone::Named(tz));
        }
        parse_posix_fixed(t).map(|west| Zone::Fixed(-west))
    }
}

/// PostgreSQL's display name for a numeric zone: `<-07>+07` for 7 hours west.
fn posix_name(secs_east: i32) -> String {
    let abbrev = offset_text(secs_east);
    let west = -secs_east;
    let sign = if west < 0 { "-" } else { "+" };
    let a = west.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let mut name = format!("<{abbrev}>{sign}{h:02}");
    if m != 0 || s != 0 {
        name.push_str(&format!(":{m:02}"));
    }
    if s != 0 {
        name.push_str(&format!(":{s:02}"));
    }
    name
}

/// `+05`, `-03:30`, `+00:53:28`: an offset as PostgreSQL prints it after a timestamptz.
pub fn offset_text(secs_east: i32) -> String {
    let mut out = Vec::new();
    write_offset(secs_east, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`offset_text`].
pub fn write_offset(secs_east: i32, out: &mut Vec<u8>) {
    let sign = if secs_east < 0 { b'-' } else { b'+' };
    let a = secs_east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    out.push(sign);
    push2(h, out);
    if m != 0 || s != 0 {
        out.push(b':');
        push2(m, out);
    }
    if s != 0 {
        out.push(b':');
        push2(s, out);
    }
}

fn push2(v: u32, out: &mut Vec<u8>) {
    if v >= 100 {
        out.extend_from_slice(v.to_string().as_bytes());
    } else {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    }
}

/// A POSIX TZ string without daylight-saving rules: `[name]offset`, where name is three or
/// more letters or `<...>`, and offset `[+-]hh[:mm[:ss]]` counts *west* of Greenwich.
/// Returns the offset in seconds west.
fn parse_posix_fixed(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'<') {
        i = s.find('>')? + 1;
    } else {
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i != 0 && i < 3 {
            return None;
        }
    }
    let rest = &s[i..];
    let (neg, digits) = match rest.as_bytes().first()? {
        b'-' => (true, &rest[1..]),
        b'+' => (false, &rest[1..]),
        _ => (false, rest),
    };
    let mut parts = digits.split(':');
    let mut secs: i32 = 0;
    for (k, scale) in [3600, 60, 1].into_iter().enumerate() {
        match parts.next() {
            Some(p) if !p.is_empty() && p.len() <= 2 && p.bytes().all(|c| c.is_ascii_digit()) => {
                let v: i32 = p.parse().ok()?;
                if k > 0 && v > 59 {
                    return None;
                }
                secs += v * scale;
            }
            None if k > 0 => break,
            _ => return None,
        }
    }
    if parts.next().is_some() || secs > MAX_OFFSET_SECS {
        return None;
    }
    Some(if neg { -secs } else { secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL microseconds of a UTC date-time.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        let n = chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|x| x.and_hms_opt(h, mi, 0))
            .expect("date");
        (n.and_utc().timestamp() - PG_EPOCH_UNIX_SECS) * USECS_PER_SEC
    }

    #[test]
    fn names_numbers_and_posix_offsets() {
        let (z, name) = Zone::parse("europe/BERLIN").expect("iana");
        assert_eq!(name, "Europe/Berlin");
        assert_eq!(z.offset_at(at(2026, 1, 15, 12, 0)), 3600);
        assert_eq!(z.offset_at(at(2026, 7, 15, 12, 0)), 7200);
        assert_eq!(Zone::parse("UTC"), Some((Zone::Utc, "UTC".into())));
        assert_eq!(
            Zone::parse("Etc/UTC").map(|p| (p.0.offset_at(0), p.1)),
            Some((0, "Etc/UTC".into()))
        );
        let (z, name) = Zone::parse("-7").expect("hours");
        assert_eq!((z, name.as_str()), (Zone::Fixed(-7 * 3600), "<-07>+07"));
        assert_eq!(
            Zone::parse("5.5").map(|p| p.1),
            Some("<+05:30>-05:30".into())
        );
        // POSIX: positive is west.
        assert_eq!(
            Zone::parse("UTC+3").map(|p| p.0),
            Some(Zone::Fixed(-3 * 3600))
        );
        assert_eq!(
            Zone::parse("UTC-03:30").map(|p| p.0),
            Some(Zone::Fixed(12_600))
        );
        // A signed number is hours east again (PostgreSQL reads it before trying POSIX).
        assert_eq!(
            Zone::parse("+02"),
            Some((Zone::Fixed(2 * 3600), "<+02>-02".into()))
        );
        assert_eq!(
            Zone::parse("<+0530>-5:30").map(|p| p.0),
            Some(Zone::Fixed(19_800))
        );
        for bad in [
            "",
            "PST",
            "Z",
            "Mars/Olympus",
            "EST5EDT,M3.2.0,M11.1.0",
            "UTC+99",
            "1e9",
            "ab+1",
        ] {
            assert_eq!(Zone::parse(bad), None, "{bad}");
        }
        assert!(matches!(Zone::parse("EST5EDT"), Some((Zone::Named(_), _))));
        // AT TIME ZONE reads a bare signed number as POSIX (west).
        assert_eq!(
            Zone::parse_for_at_time_zone("+02"),
            Some(Zone::Fixed(-7200))
        );
        assert_eq!(Zone::parse_for_at_time_zone("utc"), Some(Zone::Utc));
        assert_eq!(Zone::parse_for_at_time_zone("Mars"), None);
    }

    #[test]
    fn offsets_print_like_postgres() {
        assert_eq!(offset_text(0), "+00");
        assert_eq!(offset_text(7200), "+02");
        assert_eq!(offset_text(-12_600), "-03:30");
        assert_eq!(offset_text(3208), "+00:53:28");
    }

    #[test]
    fn gaps_and_repeats_resolve_to_standard_time() {
        let (ny, _) = Zone::parse("America/New_York").expect("zone");
        // 2026-03-08 02:30 does not exist in New York: read with EST (-5), i.e. 07:30 UTC.
        assert_eq!(
            ny.local_to_utc(at(2026, 3, 8, 2, 30)),
            at(2026, 3, 8, 7, 30)
        );
        // 2026-11-01 01:30 happens twice: the second one (EST), 06:30 UTC.
        assert_eq!(
            ny.local_to_utc(at(2026, 11, 1, 1, 30)),
            at(2026, 11, 1, 6, 30)
        );
        // Ordinary times round-trip.
        let t = at(2026, 6, 1, 12, 0);
        assert_eq!(ny.local_to_utc(ny.utc_to_local(t)), t);
        assert_eq!(ny.utc_to_local(t), at(2026, 6, 1, 8, 0));
        // Far outside the tz database's years the edge offset applies, without panicking.
        assert_eq!(ny.offset_at(i64::MIN / 2), ny.offset_at(at(1, 1, 1, 0, 0)));
        let _ = ny.local_to_utc(i64::MAX - 1);
    }

    #[tokio::test]
    async fn each_future_sees_its_own_zone_across_awaits() {
        let (berlin, _) = Zone::parse("Europe/Berlin").expect("zone");
        let (tokyo, _) = Zone::parse("Asia/Tokyo").expect("zone");
        let a = with_zone(berlin, async {
            tokio::task::yield_now().await;
            current()
        });
        let b = with_zone(tokyo, async {
            tokio::task::yield_now().await;
            current()
        });
        let (za, zb) = tokio::join!(a, b);
        assert_eq!((za, zb), (berlin, tokyo));
        assert_eq!(current(), Zone::Utc);
    }
}
