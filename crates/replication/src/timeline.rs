//! Timeline history files, in PostgreSQL's format, and the lookups replication needs
//! (PostgreSQL's `timeline.c`: `readTimeLineHistory`, `writeTimeLineHistory`,
//! `tliOfPointInHistory`, `tliSwitchPoint`, `tliInHistory`, plus the checks of `walsender.c`
//! `StartReplication` and the standby's "is the new timeline a child of mine?").
//!
//! Each promotion starts a new timeline and writes `%08X.history` for it. A line names a
//! parent timeline, the switch point where the child forked off it, and a free-text reason:
//!
//! ```text
//! 1<TAB>0/3000158<TAB>no recovery target specified
//!
//! 2<TAB>0/5000000<TAB>no recovery target specified
//! ```
//!
//! (`<TAB>` is one tab character. PostgreSQL copies the parent's file and appends one line preceded by a newline, hence the
//! blank lines; `#` lines are comments.) The history of timeline T is then a sequence of
//! segments: timeline `p1` from the start of WAL to `s1`, `p2` from `s1` to `s2`, ..., and T
//! itself from the last switch point on, open-ended. Switch points are "first LSN on the
//! new timeline": an LSN equal to a switch point belongs to the child.
//!
//! Where it runs: the primary's walsender (TIMELINE_HISTORY, START_REPLICATION on a historic
//! timeline: stream up to its switch point, then end the copy with the next timeline and the
//! switch point), the standby's walreceiver (is the upstream's timeline a child of mine?) and
//! promotion (write the new file). What it deliberately does not do: read or write files
//! (callers pass contents), or choose timeline numbers.
//!
//! Invariants of a [`TimelineHistory`]: parent timelines strictly increase and are all below
//! the history's own timeline; switch points never decrease. The first two are PostgreSQL's
//! checks; the third is ours (PostgreSQL never writes such a file and its lookups assume it).
//! Failure: parse errors are [`TimelineError`]s worded like `readTimeLineHistory`'s FATALs;
//! lookup failures carry the messages PostgreSQL's walsender and startup process raise.

use std::fmt;

use base::error::{PgError, sqlstate};
use base::{Lsn, TimelineId};

/// The reason PostgreSQL writes for a plain promotion.
pub const PROMOTION_REASON: &str = "no recovery target specified";

/// `%08X.history`, e.g. `00000002.history`.
pub fn history_file_name(timeline: TimelineId) -> String {
    format!("{:08X}.history", timeline.0)
}

/// The timeline of a `%08X.history` file name; `None` for any other name.
pub fn parse_history_file_name(name: &str) -> Option<TimelineId> {
    let hex = name.strip_suffix(".history")?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(TimelineId)
}

/// One line of a history file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HistoryEntry {
    /// The timeline that was left.
    pub parent: TimelineId,
    /// The first LSN of the child timeline; the parent's WAL is valid below it.
    pub switchpoint: Lsn,
    /// Free text (PostgreSQL ignores it when reading).
    pub reason: String,
}

/// A stretch of WAL history that belongs to one timeline: `begin..end` (end exclusive,
/// `None` for the newest timeline, which is still growing).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimelineSegment {
    pub timeline: TimelineId,
    pub begin: Lsn,
    pub end: Option<Lsn>,
}

/// Where a timeline ends in a history (PostgreSQL's `tliSwitchPoint`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SwitchPoint {
    /// The history's own timeline: it has not ended.
    Current,
    /// A historic timeline: its WAL is valid up to `at` (exclusive), where `next` began.
    Historic { at: Lsn, next: TimelineId },
}

/// The history of one timeline: every ancestor and where it was left.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TimelineHistory {
    timeline: TimelineId,
    /// Oldest first.
    entries: Vec<HistoryEntry>,
}

/// Why a history file or a timeline request is invalid.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// A line that does not scan (`hint` says what was expected).
    #[error("syntax error in history file: {line}")]
    Syntax { line: String, hint: &'static str },
    /// A line that scans but breaks an invariant.
    #[error("invalid data in history file: {line}")]
    InvalidData { line: String, hint: &'static str },
    /// An ancestor with a number not below the file's own timeline.
    #[error("invalid data in history file \"{file}\"")]
    ParentNotBelowChild { file: String },
    /// `tliSwitchPoint`: the timeline is not in this history.
    #[error("requested timeline {requested} is not in this server's history")]
    NotInHistory { requested: TimelineId },
    /// START_REPLICATION on a historic timeline at a point after it was left.
    #[error(
        "requested starting point {start} on timeline {requested} is not in this server's history"
    )]
    StartPointNotInHistory {
        start: Lsn,
        requested: TimelineId,
        switchpoint: Lsn,
    },
    /// START_REPLICATION beyond what this server has flushed.
    #[error(
        "requested starting point {start} is ahead of the WAL flush position of this server {flush}"
    )]
    StartPointAheadOfFlush { start: Lsn, flush: Lsn },
    /// The standby's position is not on the upstream's history (it needs a new base backup or
    /// a rewind).
    #[error("requested timeline {requested} is not a child of this server's history")]
    NotAChild {
        requested: TimelineId,
        local_timeline: TimelineId,
        local_end: Lsn,
        /// Where, in the requested history, `local_timeline` ended (if it is in it at all).
        forked_at: Option<Lsn>,
    },
    /// [`TimelineHistory::branch`] with a timeline or switch point that does not follow.
    #[error("cannot branch timeline {new} from timeline {parent} at {switchpoint}: {why}")]
    InvalidBranch {
        new: TimelineId,
        parent: TimelineId,
        switchpoint: Lsn,
        why: &'static str,
    },
}

impl TimelineError {
    /// The error as a client (or the server log) sees it. PostgreSQL raises these without an
    /// errcode, so they carry XX000; the hints and details are PostgreSQL's.
    pub fn to_pg_error(&self) -> PgError {
        let e = PgError::new(sqlstate::INTERNAL_ERROR, self.to_string());
        match self {
            TimelineError::Syntax { hint, .. } | TimelineError::InvalidData { hint, .. } => {
                e.with_hint(*hint)
            }
            TimelineError::ParentNotBelowChild { .. } => {
                e.with_hint("Timeline IDs must be less than child timeline's ID.")
            }
            TimelineError::StartPointNotInHistory {
                requested,
                switchpoint,
                ..
            } => e.with_detail(format!(
                "This server's history forked from timeline {requested} at {switchpoint}."
            )),
            TimelineError::NotAChild {
                local_timeline,
                local_end,
                forked_at: Some(at),
                ..
            } => e.with_detail(format!(
                "This server's WAL ends at {local_end} on timeline {local_timeline}, but in the history of the requested timeline, the server forked off from that timeline at {at}."
            )),
            TimelineError::NotAChild {
                local_timeline,
                forked_at: None,
                ..
            } => e.with_detail(format!(
                "Timeline {local_timeline} is not in the history of the requested timeline."
            )),
            _ => e,
        }
    }
}

/// How to serve START_REPLICATION (see [`TimelineHistory::plan_start_replication`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StreamPlan {
    /// The timeline whose WAL is streamed.
    pub timeline: TimelineId,
    pub start: Lsn,
    /// For a historic timeline: stream up to `at`, then end the copy and send the result
    /// set (`next`, `at`). If `start == at` nothing is streamed at all.
    pub end_of_timeline: Option<(Lsn, TimelineId)>,
}

/// Parses `%u\t%X/%X` like `sscanf` does: leading blanks, a decimal timeline, blanks, then
/// `hex/hex` (each 1 to 8 digits). Returns (timeline, switchpoint, rest of the line); a
/// missing timeline is `Err(0)`, a missing switchpoint `Err(1)`.
fn scan_line(line: &str) -> Result<(u32, Lsn, &str), usize> {
    let s = line.trim_start();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let tli = s[..digits].parse::<u32>().map_err(|_| 0usize)?;
    let s = s[digits..].trim_start();
    let hex = |s: &str| s.bytes().take_while(u8::is_ascii_hexdigit).count();
    let hi = hex(s);
    if hi == 0 || hi > 8 || s.as_bytes().get(hi) != Some(&b'/') {
        return Err(1);
    }
    let lo = hex(&s[hi + 1..]);
    if lo == 0 || lo > 8 {
        return Err(1);
    }
    let lsn: Lsn = s[..hi + 1 + lo].parse().map_err(|_| 1usize)?;
    Ok((tli, lsn, &s[hi + 1 + lo..]))
}

impl TimelineHistory {
    /// The history of a timeline without ancestors (timeline 1 of a fresh cluster).
    pub fn new(timeline: TimelineId) -> TimelineHistory {
        TimelineHistory {
            timeline,
            entries: Vec::new(),
        }
    }

    /// Parses the content of `history_file_name(timeline)`.
    ///
    /// ```
    /// use base::{Lsn, TimelineId};
    /// use replication::timeline::{SwitchPoint, TimelineHistory};
    ///
    /// let h = TimelineHistory::parse(TimelineId(2), "1\t0/3000158\tno recovery target specified\n")
    ///     .unwrap();
    /// assert_eq!(h.timeline_of(Lsn(0x300_0157)), TimelineId(1));
    /// assert_eq!(h.timeline_of(Lsn(0x300_0158)), TimelineId(2));
    /// assert_eq!(
    ///     h.switch_point(TimelineId(1)),
    ///     Ok(SwitchPoint::Historic { at: Lsn(0x300_0158), next: TimelineId(2) })
    /// );
    /// ```
    pub fn parse(timeline: TimelineId, content: &str) -> Result<TimelineHistory, TimelineError> {
        let mut entries: Vec<HistoryEntry> = Vec::new();
        for raw in content.lines() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let shown = raw.trim_end().to_owned();
            let (tli, switchpoint, rest) =
                scan_line(line).map_err(|field| TimelineError::Syntax {
                    line: shown.clone(),
                    hint: if field == 0 {
                        "Expected a numeric timeline ID."
                    } else {
                        "Expected a write-ahead log switchpoint location."
                    },
                })?;
            if let Some(last) = entries.last() {
                if tli <= last.parent.0 {
                    return Err(TimelineError::InvalidData {
                        line: shown,
                        hint: "Timeline IDs must be in increasing sequence.",
                    });
                }
                if switchpoint < last.switchpoint {
                    return Err(TimelineError::InvalidData {
                        line: shown,
                        hint: "Switch points must not decrease.",
                    });
                }
            }
            if tli == 0 {
                return Err(TimelineError::InvalidData {
                    line: shown,
                    hint: "Timeline IDs must be greater than zero.",
                });
            }
            entries.push(HistoryEntry {
                parent: TimelineId(tli),
                switchpoint,
                reason: rest.trim().to_owned(),
            });
        }
        if entries.last().is_some_and(|e| e.parent >= timeline) {
            return Err(TimelineError::ParentNotBelowChild {
                file: history_file_name(timeline),
            });
        }
        Ok(TimelineHistory { timeline, entries })
    }

    /// The file content, byte-identical to what PostgreSQL writes for the same promotions:
    /// one `parent\tX/X\treason` line per ancestor, separated by blank lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("{}\t{}\t{}\n", e.parent, e.switchpoint, e.reason));
        }
        out
    }

    /// The timeline this is the history of (the newest one).
    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    /// The ancestors, oldest first.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// The whole history as segments, oldest first; the last is this timeline, open-ended.
    pub fn segments(&self) -> Vec<TimelineSegment> {
        let mut begin = Lsn::ZERO;
        let mut out: Vec<TimelineSegment> = self
            .entries
            .iter()
            .map(|e| {
                let s = TimelineSegment {
                    timeline: e.parent,
                    begin,
                    end: Some(e.switchpoint),
                };
                begin = e.switchpoint;
                s
            })
            .collect();
        out.push(TimelineSegment {
            timeline: self.timeline,
            begin,
            end: None,
        });
        out
    }

    /// The history of a new timeline that forks off this one at `switchpoint` (promotion:
    /// PostgreSQL's `writeTimeLineHistory`). Newlines in `reason` become spaces, because a
    /// line break would end the line in the file.
    pub fn branch(
        &self,
        new: TimelineId,
        switchpoint: Lsn,
        reason: &str,
    ) -> Result<TimelineHistory, TimelineError> {
        let err = |why| TimelineError::InvalidBranch {
            new,
            parent: self.timeline,
            switchpoint,
            why,
        };
        if new <= self.timeline {
            return Err(err("the new timeline must be above its parent"));
        }
        if self
            .entries
            .last()
            .is_some_and(|e| switchpoint < e.switchpoint)
        {
            return Err(err("the switch point is before the parent timeline began"));
        }
        let mut entries = self.entries.clone();
        entries.push(HistoryEntry {
            parent: self.timeline,
            switchpoint,
            reason: reason.replace(['\n', '\r'], " ").trim().to_owned(),
        });
        Ok(TimelineHistory {
            timeline: new,
            entries,
        })
    }

    /// Whether `timeline` appears in this history (PostgreSQL's `tliInHistory`).
    pub fn contains(&self, timeline: TimelineId) -> bool {
        timeline == self.timeline || self.entries.iter().any(|e| e.parent == timeline)
    }

    /// The timeline the WAL at `lsn` belongs to (PostgreSQL's `tliOfPointInHistory`): the
    /// segment with `begin <= lsn < end`. Total: the segments cover every LSN.
    pub fn timeline_of(&self, lsn: Lsn) -> TimelineId {
        self.entries
            .iter()
            .find(|e| lsn < e.switchpoint)
            .map_or(self.timeline, |e| e.parent)
    }

    /// Where `timeline` ends in this history (PostgreSQL's `tliSwitchPoint`).
    pub fn switch_point(&self, timeline: TimelineId) -> Result<SwitchPoint, TimelineError> {
        if timeline == self.timeline {
            return Ok(SwitchPoint::Current);
        }
        let i = self
            .entries
            .iter()
            .position(|e| e.parent == timeline)
            .ok_or(TimelineError::NotInHistory {
                requested: timeline,
            })?;
        let next = self.entries.get(i + 1).map_or(self.timeline, |e| e.parent);
        Ok(SwitchPoint::Historic {
            at: self.entries[i].switchpoint,
            next,
        })
    }

    /// The checks of PostgreSQL's `StartReplication` on a server whose WAL is on this
    /// history's timeline and flushed up to `flush_lsn`: the requested timeline (default: the
    /// current one) must be in the history, a historic timeline must not have been left
    /// before `start`, and `start` must not be beyond `flush_lsn`.
    pub fn plan_start_replication(
        &self,
        requested: Option<TimelineId>,
        start: Lsn,
        flush_lsn: Lsn,
    ) -> Result<StreamPlan, TimelineError> {
        let timeline = requested.unwrap_or(self.timeline);
        let end_of_timeline = match self.switch_point(timeline)? {
            SwitchPoint::Current => None,
            SwitchPoint::Historic { at, next } => {
                // Deliberately loose, as PostgreSQL: a standby may ask for the start of the
                // segment holding the switch point on the *new* timeline, so only "after the
                // fork" is refused.
                if at < start {
                    return Err(TimelineError::StartPointNotInHistory {
                        start,
                        requested: timeline,
                        switchpoint: at,
                    });
                }
                Some((at, next))
            }
        };
        if flush_lsn < start {
            return Err(TimelineError::StartPointAheadOfFlush {
                start,
                flush: flush_lsn,
            });
        }
        Ok(StreamPlan {
            timeline,
            start,
            end_of_timeline,
        })
    }

    /// Whether a standby whose WAL ends at `local_end` on `local_timeline` can continue on
    /// this (the upstream's) history: `local_timeline` must be in it, and the standby's WAL
    /// must end at or before the point where this history left `local_timeline` (WAL up to
    /// the switch point is shared; beyond it the two have diverged). `local_end` is an end
    /// position ("first byte not held"), so ending exactly at the switch point is fine.
    /// This is the check behind PostgreSQL's "requested timeline N is not a child of this
    /// server's history".
    pub fn check_continuation(
        &self,
        local_timeline: TimelineId,
        local_end: Lsn,
    ) -> Result<(), TimelineError> {
        let not_a_child = |forked_at| TimelineError::NotAChild {
            requested: self.timeline,
            local_timeline,
            local_end,
            forked_at,
        };
        let Some(segment) = self
            .segments()
            .into_iter()
            .find(|s| s.timeline == local_timeline)
        else {
            return Err(not_a_child(None));
        };
        match segment.end {
            Some(end) if local_end > end => Err(not_a_child(Some(end))),
            _ if local_end < segment.begin => Err(not_a_child(Some(segment.begin))),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for TimelineHistory {
    /// A one-line summary for logs: `3: 1 until 0/3000158, 2 until 0/5000000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.timeline)?;
        for (i, e) in self.entries.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{} until {}", e.parent, e.switchpoint)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().expect("lsn")
    }

    /// The history of timeline 3 after two promotions, as PostgreSQL writes it.
    const TLI3: &str = "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n";

    fn tli3() -> TimelineHistory {
        TimelineHistory::parse(TimelineId(3), TLI3).expect("parse")
    }

    #[test]
    fn file_names() {
        assert_eq!(history_file_name(TimelineId(2)), "00000002.history");
        assert_eq!(history_file_name(TimelineId(0xAB)), "000000AB.history");
        assert_eq!(
            parse_history_file_name("0000000A.history"),
            Some(TimelineId(10))
        );
        for bad in [
            "0000000A.histor",
            "A.history",
            "0000000G.history",
            "000000010.history",
        ] {
            assert_eq!(parse_history_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_and_render_round_trip() {
        let h = tli3();
        assert_eq!(h.render(), TLI3);
        assert_eq!(h.entries().len(), 2);
        assert_eq!(h.to_string(), "3: 1 until 0/3000158, 2 until 0/5000000");
        // Building the same history by promotions renders the same bytes.
        let built = TimelineHistory::new(TimelineId(1))
            .branch(TimelineId(2), lsn("0/3000158"), PROMOTION_REASON)
            .and_then(|h| h.branch(TimelineId(3), lsn("0/5000000"), PROMOTION_REASON))
            .expect("branch");
        assert_eq!(built, h);
        assert_eq!(built.render(), TLI3);
    }

    #[test]
    fn parse_tolerates_what_postgres_tolerates() {
        let content = "# comment\n   \n  1 \t 0/10\t at restore point \"x\"  \r\n\t# indented comment\n4\t1/0\n";
        let h = TimelineHistory::parse(TimelineId(7), content).expect("parse");
        assert_eq!(
            h.entries(),
            &[
                HistoryEntry {
                    parent: TimelineId(1),
                    switchpoint: Lsn(0x10),
                    reason: "at restore point \"x\"".into()
                },
                HistoryEntry {
                    parent: TimelineId(4),
                    switchpoint: Lsn(0x1_0000_0000),
                    reason: String::new()
                },
            ]
        );
        assert_eq!(
            TimelineHistory::parse(TimelineId(1), ""),
            Ok(TimelineHistory::new(TimelineId(1)))
        );
    }

    #[test]
    fn parse_errors_read_like_postgres() {
        let cases: &[(u32, &str, &str, &str)] = &[
            (
                3,
                "x\t0/1\n",
                "syntax error in history file: x\t0/1",
                "Expected a numeric timeline ID.",
            ),
            (
                3,
                "1\n",
                "syntax error in history file: 1",
                "Expected a write-ahead log switchpoint location.",
            ),
            (
                3,
                "1\t0/\n",
                "syntax error in history file: 1\t0/",
                "Expected a write-ahead log switchpoint location.",
            ),
            (
                3,
                "1\t123456789/0\n",
                "syntax error in history file: 1\t123456789/0",
                "Expected a write-ahead log switchpoint location.",
            ),
            (
                3,
                "99999999999\t0/1\n",
                "syntax error in history file: 99999999999\t0/1",
                "Expected a numeric timeline ID.",
            ),
            (
                3,
                "2\t0/1\n1\t0/2\n",
                "invalid data in history file: 1\t0/2",
                "Timeline IDs must be in increasing sequence.",
            ),
            (
                3,
                "1\t0/2\n2\t0/1\n",
                "invalid data in history file: 2\t0/1",
                "Switch points must not decrease.",
            ),
            (
                3,
                "0\t0/2\n",
                "invalid data in history file: 0\t0/2",
                "Timeline IDs must be greater than zero.",
            ),
            (
                2,
                "1\t0/2\n2\t0/3\n",
                "invalid data in history file \"00000002.history\"",
                "Timeline IDs must be less than child timeline's ID.",
            ),
        ];
        for (tli, content, message, hint) in cases {
            let e = TimelineHistory::parse(TimelineId(*tli), content).expect_err(content);
            let pg = e.to_pg_error();
            assert_eq!(pg.message, *message, "{content:?}");
            assert_eq!(pg.hint.as_deref(), Some(*hint), "{content:?}");
        }
    }

    #[test]
    fn timeline_of_a_point() {
        let h = tli3();
        let cases = [
            ("0/0", 1),
            ("0/3000157", 1),
            // A switch point is the first LSN of the child timeline.
            ("0/3000158", 2),
            ("0/4FFFFFF", 2),
            ("0/5000000", 3),
            ("FFFFFFFF/FFFFFFFF", 3),
        ];
        for (at, want) in cases {
            assert_eq!(h.timeline_of(lsn(at)), TimelineId(want), "{at}");
        }
        assert_eq!(
            TimelineHistory::new(TimelineId(1)).timeline_of(lsn("5/0")),
            TimelineId(1)
        );
    }

    #[test]
    fn switch_points() {
        let h = tli3();
        assert_eq!(
            h.switch_point(TimelineId(1)),
            Ok(SwitchPoint::Historic {
                at: lsn("0/3000158"),
                next: TimelineId(2)
            })
        );
        assert_eq!(
            h.switch_point(TimelineId(2)),
            Ok(SwitchPoint::Historic {
                at: lsn("0/5000000"),
                next: TimelineId(3)
            })
        );
        assert_eq!(h.switch_point(TimelineId(3)), Ok(SwitchPoint::Current));
        let e = h.switch_point(TimelineId(4)).expect_err("4");
        assert_eq!(
            e.to_string(),
            "requested timeline 4 is not in this server's history"
        );
        assert!(h.contains(TimelineId(1)) && h.contains(TimelineId(3)));
        assert!(!h.contains(TimelineId(4)));
        // A history that skipped timeline 2 (abandoned) does not contain it.
        let skip = TimelineHistory::parse(TimelineId(3), "1\t0/10\n").expect("parse");
        assert!(!skip.contains(TimelineId(2)));
        assert_eq!(
            skip.switch_point(TimelineId(1)),
            Ok(SwitchPoint::Historic {
                at: Lsn(0x10),
                next: TimelineId(3)
            })
        );
    }

    #[test]
    fn start_replication_plans() {
        let h = tli3();
        let flush = lsn("0/6000000");
        type Want = Result<StreamPlan, &'static str>;
        let cases: Vec<(&str, Option<u32>, &str, Want)> = vec![
            (
                "current timeline by default",
                None,
                "0/5800000",
                Ok(StreamPlan {
                    timeline: TimelineId(3),
                    start: lsn("0/5800000"),
                    end_of_timeline: None,
                }),
            ),
            (
                "historic timeline streams up to its switch point",
                Some(1),
                "0/2000000",
                Ok(StreamPlan {
                    timeline: TimelineId(1),
                    start: lsn("0/2000000"),
                    end_of_timeline: Some((lsn("0/3000158"), TimelineId(2))),
                }),
            ),
            (
                "starting exactly at the switch point streams nothing",
                Some(2),
                "0/5000000",
                Ok(StreamPlan {
                    timeline: TimelineId(2),
                    start: lsn("0/5000000"),
                    end_of_timeline: Some((lsn("0/5000000"), TimelineId(3))),
                }),
            ),
            (
                "after the fork on a historic timeline",
                Some(1),
                "0/3000159",
                Err(
                    "requested starting point 0/3000159 on timeline 1 is not in this server's history",
                ),
            ),
            (
                "unknown timeline",
                Some(9),
                "0/0",
                Err("requested timeline 9 is not in this server's history"),
            ),
            (
                "ahead of the flush position",
                None,
                "0/6000001",
                Err(
                    "requested starting point 0/6000001 is ahead of the WAL flush position of this server 0/6000000",
                ),
            ),
            (
                "exactly at the flush position is fine",
                Some(3),
                "0/6000000",
                Ok(StreamPlan {
                    timeline: TimelineId(3),
                    start: lsn("0/6000000"),
                    end_of_timeline: None,
                }),
            ),
        ];
        for (name, tli, start, want) in cases {
            let got = h
                .plan_start_replication(tli.map(TimelineId), lsn(start), flush)
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        let e = h
            .plan_start_replication(Some(TimelineId(1)), lsn("0/4000000"), flush)
            .expect_err("forked");
        assert_eq!(
            e.to_pg_error().detail.as_deref(),
            Some("This server's history forked from timeline 1 at 0/3000158.")
        );
    }

    #[test]
    fn continuation_checks() {
        let h = tli3();
        let cases = [
            ("on the current timeline", 3, "0/9000000", true),
            ("old timeline, before the fork", 1, "0/2000000", true),
            (
                "old timeline, ending exactly at the fork",
                1,
                "0/3000158",
                true,
            ),
            (
                "old timeline, beyond the fork: diverged",
                1,
                "0/3000159",
                false,
            ),
            ("middle timeline, beyond its fork", 2, "0/5000001", false),
            ("middle timeline, before it began", 2, "0/3000000", false),
            ("a timeline not in the history", 4, "0/1", false),
        ];
        for (name, tli, end, ok) in cases {
            let got = h.check_continuation(TimelineId(tli), lsn(end));
            assert_eq!(got.is_ok(), ok, "{name}: {got:?}");
        }
        let e = h
            .check_continuation(TimelineId(1), lsn("0/3000200"))
            .expect_err("diverged")
            .to_pg_error();
        assert_eq!(
            e.message,
            "requested timeline 3 is not a child of this server's history"
        );
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "This server's WAL ends at 0/3000200 on timeline 1, but in the history of the requested timeline, the server forked off from that timeline at 0/3000158."
            )
        );
    }

    #[test]
    fn branch_checks_its_arguments() {
        let h = tli3();
        assert!(h.branch(TimelineId(3), lsn("0/7000000"), "x").is_err());
        assert!(h.branch(TimelineId(4), lsn("0/4000000"), "x").is_err());
        let b = h
            .branch(TimelineId(5), lsn("0/7000000"), "line\nbreak")
            .expect("branch");
        assert_eq!(b.entries()[2].reason, "line break");
        assert_eq!(TimelineHistory::parse(TimelineId(5), &b.render()), Ok(b));
    }
}
