//! Log sequence numbers, timelines and WAL segment file names, in PostgreSQL's notation.
//!
//! An LSN is a byte position in the endless WAL stream. Every LSN that names a stage of progress
//! (`write_lsn`, `flush_lsn`, a commit's LSN, ...) names the first byte *not yet* done, as
//! PostgreSQL's `LogstreamResult` does ("last byte + 1"). LSNs print as `X/Y`: the high and low
//! 32 bits in upper-case hexadecimal without leading zeros, so `pg_current_wal_lsn()` output and
//! `--start 0/1A2B3C` arguments look exactly as a PostgreSQL operator expects.
//!
//! Segment files are named `TTTTTTTTXXXXXXXXYYYYYYYY` like PostgreSQL's: timeline, then the
//! segment number split into "log" and "seg" parts, where one "log" spans 4 GiB of WAL.

use std::fmt;
use std::str::FromStr;

/// A byte position in the WAL stream.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The position before any WAL. No record starts here: WAL begins at `Lsn::FIRST`.
    pub const ZERO: Lsn = Lsn(0);
    /// Where the first record of a freshly initialised cluster is written. PostgreSQL starts its
    /// WAL in the first segment too; keeping 0/0 free lets "0" mean "nothing" in status fields.
    pub const FIRST: Lsn = Lsn(0x0100_0000);
    /// The largest LSN: used as "infinitely far" in comparisons, never as a real position.
    pub const MAX: Lsn = Lsn(u64::MAX);

    pub fn offset_in_segment(self, segment_size: u64) -> u64 {
        self.0 % segment_size
    }

    pub fn segment_number(self, segment_size: u64) -> u64 {
        self.0 / segment_size
    }

    pub fn checked_add(self, bytes: u64) -> Option<Lsn> {
        self.0.checked_add(bytes).map(Lsn)
    }

    /// Bytes from `earlier` to `self`, zero if `earlier` is ahead (lags never go negative).
    pub fn distance_from(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({self})")
    }
}

/// Why a string is not an LSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input syntax for type pg_lsn: \"{0}\"")]
pub struct LsnParseError(pub String);

impl FromStr for Lsn {
    type Err = LsnParseError;

    /// Parses PostgreSQL's `X/Y` form (each part 1 to 8 hexadecimal digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError(s.to_owned());
        let (hi, lo) = s.trim().split_once('/').ok_or_else(err)?;
        let valid = |p: &str| !p.is_empty() && p.len() <= 8;
        if !valid(hi) || !valid(lo) {
            return Err(err());
        }
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// A timeline: a branch of WAL history. A cluster starts on timeline 1; promotion starts a new one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimelineId(pub u32);

impl TimelineId {
    pub const FIRST: TimelineId = TimelineId(1);
}

impl fmt::Display for TimelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Segment numbers per 4 GiB "log" part of a file name, as PostgreSQL's `XLogSegmentsPerXLogId`.
pub fn segments_per_log_id(segment_size: u64) -> u64 {
    0x1_0000_0000 / segment_size
}

/// The file name of segment `segno` on `timeline`, e.g. `000000010000000000000001`.
pub fn segment_file_name(timeline: TimelineId, segno: u64, segment_size: u64) -> String {
    let per = segments_per_log_id(segment_size);
    format!("{:08X}{:08X}{:08X}", timeline.0, segno / per, segno % per)
}

/// Parses a segment file name back into (timeline, segment number). `None` for any other name.
pub fn parse_segment_file_name(name: &str, segment_size: u64) -> Option<(TimelineId, u64)> {
    if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[0..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    let per = segments_per_log_id(segment_size);
    if seg >= per {
        return None;
    }
    Some((TimelineId(tli), log * per + seg))
}

/// Whether `size` is an allowed `wal_segment_size`: a power of two from 1 MiB to 1 GiB, as in
/// PostgreSQL (`initdb --wal-segsize`). The bounds keep file names and LSN arithmetic identical
/// to PostgreSQL's and keep a segment small enough to preallocate quickly.
pub fn valid_segment_size(size: u64) -> bool {
    size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_prints_like_postgres() {
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert_eq!(Lsn(0x1_0000_00A8).to_string(), "1/A8");
        assert_eq!(Lsn(0x0000_0000_0165_7C28).to_string(), "0/1657C28");
    }

    #[test]
    fn lsn_parses_both_ways() {
        for v in [0u64, 1, 0x1_0000_00A8, u64::MAX, 0xDEAD_BEEF_0000_0001] {
            let s = Lsn(v).to_string();
            assert_eq!(s.parse::<Lsn>(), Ok(Lsn(v)));
        }
        assert_eq!("0/1a2b".parse::<Lsn>(), Ok(Lsn(0x1A2B)));
        assert!("".parse::<Lsn>().is_err());
        assert!("12".parse::<Lsn>().is_err());
        assert!("1/".parse::<Lsn>().is_err());
        assert!("/1".parse::<Lsn>().is_err());
        assert!("123456789/1".parse::<Lsn>().is_err());
        assert!("G/1".parse::<Lsn>().is_err());
    }

    #[test]
    fn segment_names_match_postgres() {
        let size = 16 << 20;
        assert_eq!(
            segment_file_name(TimelineId(1), 1, size),
            "000000010000000000000001"
        );
        // 256 segments of 16 MiB fill one 4 GiB log part.
        assert_eq!(
            segment_file_name(TimelineId(2), 256 + 3, size),
            "000000020000000100000003"
        );
        assert_eq!(
            parse_segment_file_name("000000020000000100000003", size),
            Some((TimelineId(2), 259))
        );
        assert_eq!(
            parse_segment_file_name("00000002000000010000010F", size),
            None
        );
        assert_eq!(
            parse_segment_file_name("000000010000000000000001.partial", size),
            None
        );
    }

    #[test]
    fn segment_sizes() {
        assert!(valid_segment_size(1 << 20));
        assert!(valid_segment_size(16 << 20));
        assert!(!valid_segment_size(3 << 20));
        assert!(!valid_segment_size(1 << 19));
        assert!(!valid_segment_size(2 << 30));
    }
}
