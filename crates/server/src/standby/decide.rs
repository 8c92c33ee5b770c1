//! The standby's decisions, as pure functions (no files, no clocks, no sockets), so each rule
//! is tested on its own: how far redo may replay, which timeline to follow and when to switch
//! to it, and what promotion writes.
//!
//! Where it runs: called by the startup worker (`startup.rs`).

use base::{Lsn, TimelineId};
use replication::timeline::{PROMOTION_REASON, SwitchPoint, TimelineError, TimelineHistory};

/// `recovery_target_timeline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetTimeline {
    /// Follow the newest timeline whose history file appears in `pg_wal` (the default).
    Latest,
    /// Stay on the timeline of the last checkpoint.
    Current,
    /// Follow up to this timeline.
    Numbered(TimelineId),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid value for parameter \"recovery_target_timeline\": \"{0}\" (expected \"current\", \"latest\" or a timeline number)"
)]
pub struct BadTargetTimeline(pub String);

impl std::str::FromStr for TargetTimeline {
    type Err = BadTargetTimeline;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "latest" => Ok(TargetTimeline::Latest),
            "current" => Ok(TargetTimeline::Current),
            n => match n.parse::<u32>() {
                Ok(v) if v >= 1 => Ok(TargetTimeline::Numbered(TimelineId(v))),
                _ => Err(BadTargetTimeline(s.to_owned())),
            },
        }
    }
}

/// Where replay gets its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayBound {
    /// A walreceiver streams: min(flushed here, flushed on the primary).
    Streaming { flushed: Lsn, primary_flush: Lsn },
    /// No walreceiver (archive mode): whatever valid WAL is in the files.
    Archive,
    /// Promotion: everything flushed locally, whatever the primary had (it is presumed dead,
    /// and every acknowledged commit was flushed here before it was acknowledged).
    Promoting,
}

/// The LSN redo must not replay past (`None`: no bound but the end of valid WAL).
pub fn replay_limit(bound: ReplayBound) -> Option<Lsn> {
    match bound {
        ReplayBound::Streaming {
            flushed,
            primary_flush,
        } => Some(flushed.min(primary_flush)),
        ReplayBound::Archive | ReplayBound::Promoting => None,
    }
}

/// Whether redo, finding no valid record at `pos`, must look closer (reopen the files,
/// classify the bytes there as end of WAL or corruption, look for a newer timeline). While
/// streaming, a position at or beyond the replay limit is simply the end of the WAL that is
/// durable on both sides: the normal state between two commits, so nothing to look at — the
/// look costs a directory listing and a file reopen, which on every commit would compete
/// with the walreceiver for the CPU. `force` (promotion, first stop) always looks.
pub fn stuck_needs_look(pos: Lsn, limit: Option<Lsn>, force: bool) -> bool {
    force || limit.is_none_or(|l| pos < l)
}

/// A whole record may be applied only if it ends at or below the limit: a record beyond it
/// may be a commit the primary could still lose, or bytes not yet durable here.
pub fn may_apply(record_end: Lsn, limit: Option<Lsn>) -> bool {
    limit.is_none_or(|l| record_end <= l)
}

/// Which newer timeline to look at, given the history files present (PostgreSQL's
/// `findNewestTimeLine` for `latest`). `None`: stay.
pub fn target_timeline(
    target: TargetTimeline,
    current: TimelineId,
    available: &[TimelineId],
) -> Option<TimelineId> {
    match target {
        TargetTimeline::Current => None,
        TargetTimeline::Latest => available.iter().copied().filter(|t| *t > current).max(),
        TargetTimeline::Numbered(n) => (n > current && available.contains(&n)).then_some(n),
    }
}

/// What to do at the end of WAL on `current` when `history` (of a newer timeline) is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Continue reading on `to` from the current position (the segment holding the switch
    /// point exists on the new timeline with the old timeline's WAL up to the switch point).
    Switch { to: TimelineId, at: Lsn },
    /// The old timeline's WAL up to the switch point has not arrived yet: keep waiting on it.
    NotYet { at: Lsn },
    /// We replayed past the point where the new timeline forked off: it is not our future
    /// (PostgreSQL: "new timeline N forked off current database system timeline T before
    /// current recovery point").
    ForkedBefore { at: Lsn },
    /// Our timeline is not in that history at all.
    NotAChild,
}

/// PostgreSQL's `rescanLatestTimeLine` check plus the switch itself: may replay at `pos` on
/// `current` continue on the next timeline of `history`?
pub fn follow(
    history: &TimelineHistory,
    current: TimelineId,
    pos: Lsn,
    segment_size: u64,
) -> Follow {
    match history.switch_point(current) {
        Err(_) | Ok(SwitchPoint::Current) => Follow::NotAChild,
        Ok(SwitchPoint::Historic { at, next }) => {
            if pos > at {
                Follow::ForkedBefore { at }
            } else if pos == at
                || pos.segment_number(segment_size) == at.segment_number(segment_size)
            {
                // The promoted server copied the switch segment to the new timeline's name, so
                // the rest of the old timeline's WAL up to `at` is readable there too.
                Follow::Switch { to: next, at }
            } else {
                Follow::NotYet { at }
            }
        }
    }
}

/// What promotion writes before it uses the new timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionPlan {
    pub old_timeline: TimelineId,
    pub new_timeline: TimelineId,
    /// The first LSN of the new timeline: the end of replayed WAL.
    pub switchpoint: Lsn,
    /// `pg_wal/NNNNNNNN.history` content.
    pub history: String,
    /// The segment holding the switch point: copied to the new timeline's name up to
    /// `switchpoint`, zeros after.
    pub partial_segno: u64,
}

/// Plans promotion at `end` on the timeline `history` describes. The new timeline is one above
/// every timeline with a history file (PostgreSQL's `findNewestTimeLine() + 1`), so a sibling
/// that promoted earlier is never reused.
pub fn plan_promotion(
    history: &TimelineHistory,
    known: &[TimelineId],
    end: Lsn,
    segment_size: u64,
) -> Result<PromotionPlan, TimelineError> {
    let newest = known
        .iter()
        .copied()
        .chain([history.timeline()])
        .max()
        .unwrap_or(history.timeline());
    let new_timeline = TimelineId(newest.0.saturating_add(1));
    let branched = history.branch(new_timeline, end, PROMOTION_REASON)?;
    Ok(PromotionPlan {
        old_timeline: history.timeline(),
        new_timeline,
        switchpoint: end,
        history: branched.render(),
        partial_segno: end.segment_number(segment_size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    #[test]
    fn target_timeline_setting() {
        assert_eq!("latest".parse(), Ok(TargetTimeline::Latest));
        assert_eq!("".parse(), Ok(TargetTimeline::Latest));
        assert_eq!("Current".parse(), Ok(TargetTimeline::Current));
        assert_eq!("3".parse(), Ok(TargetTimeline::Numbered(TimelineId(3))));
        assert!("0".parse::<TargetTimeline>().is_err());
        assert!("newest".parse::<TargetTimeline>().is_err());
    }

    #[test]
    fn streaming_never_passes_either_flush() {
        let b = |f, p| ReplayBound::Streaming {
            flushed: Lsn(f),
            primary_flush: Lsn(p),
        };
        assert_eq!(replay_limit(b(500, 300)), Some(Lsn(300)));
        assert_eq!(replay_limit(b(200, 300)), Some(Lsn(200)));
        assert!(may_apply(Lsn(200), replay_limit(b(200, 300))));
        assert!(!may_apply(Lsn(201), replay_limit(b(200, 300))));
    }

    #[test]
    fn stuck_at_the_limit_is_just_waiting() {
        // Streaming, everything durable on both sides replayed: nothing to look at.
        assert!(!stuck_needs_look(Lsn(300), Some(Lsn(300)), false));
        assert!(!stuck_needs_look(Lsn(300), Some(Lsn(200)), false));
        // Durable WAL beyond the position that does not read: classify it (corruption, a
        // new timeline).
        assert!(stuck_needs_look(Lsn(300), Some(Lsn(301)), false));
        // Archive mode and forced looks always look.
        assert!(stuck_needs_look(Lsn(300), None, false));
        assert!(stuck_needs_look(Lsn(300), Some(Lsn(300)), true));
    }

    #[test]
    fn archive_and_promotion_replay_everything_valid() {
        assert_eq!(replay_limit(ReplayBound::Archive), None);
        assert_eq!(replay_limit(ReplayBound::Promoting), None);
        assert!(may_apply(Lsn(u64::MAX), None));
    }

    #[test]
    fn which_timeline_to_follow() {
        let av = [TimelineId(2), TimelineId(3)];
        let one = TimelineId(1);
        assert_eq!(
            target_timeline(TargetTimeline::Latest, one, &av),
            Some(TimelineId(3))
        );
        assert_eq!(target_timeline(TargetTimeline::Current, one, &av), None);
        assert_eq!(
            target_timeline(TargetTimeline::Numbered(TimelineId(2)), one, &av),
            Some(TimelineId(2))
        );
        assert_eq!(
            target_timeline(TargetTimeline::Numbered(TimelineId(5)), one, &av),
            None
        );
        assert_eq!(
            target_timeline(TargetTimeline::Latest, TimelineId(3), &av),
            None
        );
    }

    #[test]
    fn switch_only_at_or_before_the_fork() {
        let h = TimelineHistory::parse(
            TimelineId(2),
            "1\t0/3000158\tno recovery target specified\n",
        )
        .expect("parse");
        let t1 = TimelineId(1);
        assert_eq!(
            follow(&h, t1, Lsn(0x300_0158), SEG),
            Follow::Switch {
                to: TimelineId(2),
                at: Lsn(0x300_0158)
            }
        );
        // Same segment, not yet at the switch point: the copy on timeline 2 holds the rest.
        assert!(matches!(
            follow(&h, t1, Lsn(0x300_0100), SEG),
            Follow::Switch { .. }
        ));
        assert_eq!(
            follow(&h, t1, Lsn(0x200_0000), SEG),
            Follow::NotYet {
                at: Lsn(0x300_0158)
            }
        );
        assert_eq!(
            follow(&h, t1, Lsn(0x300_0200), SEG),
            Follow::ForkedBefore {
                at: Lsn(0x300_0158)
            }
        );
        assert_eq!(follow(&h, TimelineId(4), Lsn(1), SEG), Follow::NotAChild);
        assert_eq!(follow(&h, TimelineId(2), Lsn(1), SEG), Follow::NotAChild);
    }

    #[test]
    fn chained_histories_switch_one_step_at_a_time() {
        let h = TimelineHistory::parse(
            TimelineId(3),
            "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n",
        )
        .expect("parse");
        assert!(matches!(
            follow(&h, TimelineId(1), Lsn(0x300_0158), SEG),
            Follow::Switch {
                to: TimelineId(2),
                ..
            }
        ));
        assert!(matches!(
            follow(&h, TimelineId(2), Lsn(0x500_0000), SEG),
            Follow::Switch {
                to: TimelineId(3),
                ..
            }
        ));
    }

    #[test]
    fn promotion_plan_writes_postgres_history() {
        let p = plan_promotion(
            &TimelineHistory::new(TimelineId(1)),
            &[],
            Lsn(0x300_0158),
            SEG,
        )
        .expect("plan");
        assert_eq!(p.new_timeline, TimelineId(2));
        assert_eq!(p.history, "1\t0/3000158\tno recovery target specified\n");
        assert_eq!(p.partial_segno, 3);
        // A sibling already took timeline 2: use 3, and keep our own ancestry.
        let p = plan_promotion(
            &TimelineHistory::new(TimelineId(1)),
            &[TimelineId(2)],
            Lsn(0x300_0158),
            SEG,
        )
        .expect("plan");
        assert_eq!(p.new_timeline, TimelineId(3));
        assert_eq!(p.history, "1\t0/3000158\tno recovery target specified\n");
        // A second promotion appends a line after a blank one, as PostgreSQL does.
        let h2 =
            TimelineHistory::parse(TimelineId(2), &p.history.replace("3\t", "2\t")).expect("parse");
        let p2 = plan_promotion(&h2, &[TimelineId(2)], Lsn(0x500_0000), SEG).expect("plan");
        assert_eq!(p2.new_timeline, TimelineId(3));
        assert!(
            p2.history
                .ends_with("\n\n2\t0/5000000\tno recovery target specified\n")
        );
    }
}
