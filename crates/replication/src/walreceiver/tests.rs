//! Scenario tables for the walreceiver and the reconnect decision. No sleeps: time is an
//! argument.

use std::time::{Duration, Instant};

use base::{Lsn, TimelineId};
use bytes::Bytes;

use super::*;
use crate::messages::{PgTimestamp, PrimaryKeepalive, PrimaryMessage, XLogData};
use crate::timeline::TimelineHistory;

use ReceiverAction::*;

enum Ev {
    /// XLogData: start, number of bytes, walEnd.
    Wal(u64, u64, u64),
    /// Keepalive: walEnd, replyRequested.
    Keepalive(u64, bool),
    Written(u64),
    Drained,
    Flushed(u64),
    /// Replayed up to, apply feedback requested.
    Replayed(u64, bool),
    Tick,
}

struct Step {
    at_secs: u64,
    ev: Ev,
    want: Vec<ReceiverAction>,
}

fn step(at_secs: u64, ev: Ev, want: Vec<ReceiverAction>) -> Step {
    Step { at_secs, ev, want }
}

fn status(w: u64, f: u64, a: u64, reply_requested: bool) -> ReceiverAction {
    SendStatus {
        write_lsn: Lsn(w),
        flush_lsn: Lsn(f),
        apply_lsn: Lsn(a),
        reply_requested,
    }
}

fn write(start: u64, len: u64) -> ReceiverAction {
    WriteWal {
        start: Lsn(start),
        data: Bytes::from(vec![0xAB; len as usize]),
    }
}

fn allow(upto: u64) -> ReceiverAction {
    AllowReplay { upto: Lsn(upto) }
}

fn flush(upto: u64) -> ReceiverAction {
    FlushWal { upto: Lsn(upto) }
}

const CONFIG: WalReceiverConfig = WalReceiverConfig {
    status_interval: Some(Duration::from_secs(10)),
    receiver_timeout: Some(Duration::from_secs(60)),
};

/// Starts at 100 on timeline 1 with replay at 80 and the primary's flush known to be 100.
fn run(name: &str, config: WalReceiverConfig, steps: Vec<Step>) -> WalReceiver {
    let t0 = Instant::now();
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(config, start, Lsn(80), Lsn(100), t0);
    for (i, step) in steps.into_iter().enumerate() {
        let now = t0 + Duration::from_secs(step.at_secs);
        let got = match step.ev {
            Ev::Wal(start, len, wal_end) => r.on_message(
                PrimaryMessage::XLogData(XLogData {
                    data_start: Lsn(start),
                    wal_end: Lsn(wal_end),
                    send_time: PgTimestamp(0),
                    data: Bytes::from(vec![0xAB; len as usize]),
                }),
                now,
            ),
            Ev::Keepalive(wal_end, reply_requested) => r.on_message(
                PrimaryMessage::Keepalive(PrimaryKeepalive {
                    wal_end: Lsn(wal_end),
                    send_time: PgTimestamp(0),
                    reply_requested,
                }),
                now,
            ),
            Ev::Written(end) => {
                r.on_written(Lsn(end));
                Vec::new()
            }
            Ev::Drained => r.on_input_drained(now),
            Ev::Flushed(end) => r.on_flushed(Lsn(end), now),
            Ev::Replayed(end, apply) => r.on_replayed(Lsn(end), apply, now),
            Ev::Tick => r.on_tick(now),
        };
        assert_eq!(got, step.want, "{name}: step {i} at {}s", step.at_secs);
    }
    r
}

#[test]
fn writes_flushes_replies_and_the_replay_rule() {
    let r = run(
        "stream",
        CONFIG,
        vec![
            // The primary has flushed 150 of what it sends.
            step(0, Ev::Wal(100, 50, 150), vec![write(100, 50)]),
            step(0, Ev::Written(150), vec![]),
            step(
                0,
                Ev::Drained,
                vec![status(150, 100, 80, false), flush(150)],
            ),
            // A second drain with nothing new does nothing.
            step(0, Ev::Drained, vec![]),
            step(
                0,
                Ev::Flushed(150),
                vec![allow(150), status(150, 150, 80, false)],
            ),
            // WAL beyond the primary's flush LSN: written and flushed here, not replayable.
            step(1, Ev::Wal(150, 50, 150), vec![write(150, 50)]),
            step(1, Ev::Written(200), vec![]),
            step(
                1,
                Ev::Drained,
                vec![status(200, 150, 80, false), flush(200)],
            ),
            step(1, Ev::Flushed(200), vec![status(200, 200, 80, false)]),
            // The primary's flush LSN arrives in a keepalive: replay may go on.
            step(2, Ev::Keepalive(200, false), vec![allow(200)]),
            step(2, Ev::Replayed(200, false), vec![]),
            // A primary's walEnd going down (PostgreSQL's 'k' carries its sent position) is
            // ignored: the highest one counts.
            step(
                3,
                Ev::Keepalive(120, true),
                vec![status(200, 200, 200, false)],
            ),
        ],
    );
    assert_eq!(r.primary_flush_lsn(), Lsn(200));
    assert_eq!(r.replay_limit(), Lsn(200));
}

#[test]
fn replay_waits_for_the_local_flush_too() {
    run(
        "local flush",
        CONFIG,
        vec![
            step(0, Ev::Wal(100, 100, 300), vec![write(100, 100)]),
            step(0, Ev::Written(200), vec![]),
            step(
                0,
                Ev::Drained,
                vec![status(200, 100, 80, false), flush(200)],
            ),
            step(
                0,
                Ev::Flushed(160),
                vec![allow(160), status(200, 160, 80, false)],
            ),
            step(
                0,
                Ev::Flushed(200),
                vec![allow(200), status(200, 200, 80, false)],
            ),
        ],
    );
}

#[test]
fn with_the_status_interval_disabled_only_forced_replies_go_out() {
    // PostgreSQL's 059_remote_apply_status_interval.pl: remote_apply must still complete.
    let quiet = WalReceiverConfig {
        status_interval: None,
        receiver_timeout: None,
    };
    let r = run(
        "quiet",
        quiet,
        vec![
            step(0, Ev::Wal(100, 50, 150), vec![write(100, 50)]),
            step(0, Ev::Written(150), vec![]),
            step(0, Ev::Drained, vec![flush(150)]),
            step(0, Ev::Flushed(150), vec![allow(150)]),
            step(500, Ev::Tick, vec![]),
            step(500, Ev::Replayed(120, false), vec![]),
            // A replayed commit asked for apply feedback.
            step(
                500,
                Ev::Replayed(150, true),
                vec![status(150, 150, 150, false)],
            ),
            step(
                600,
                Ev::Keepalive(150, true),
                vec![status(150, 150, 150, false)],
            ),
        ],
    );
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn periodic_status_ping_and_timeout() {
    let r = run(
        "timers",
        CONFIG,
        vec![
            // Nothing sent yet: the first tick reports at once.
            step(0, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(5, Ev::Tick, vec![]),
            // Every wal_receiver_status_interval, even without progress.
            step(10, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(19, Ev::Tick, vec![]),
            step(20, Ev::Tick, vec![status(100, 100, 80, false)]),
            // Half of wal_receiver_timeout without a message: ping.
            step(30, Ev::Tick, vec![status(100, 100, 80, true)]),
            step(39, Ev::Tick, vec![]),
            step(40, Ev::Tick, vec![status(100, 100, 80, false)]),
            // Anything from the primary resets the timeout.
            step(45, Ev::Keepalive(100, false), vec![]),
            step(50, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(59, Ev::Tick, vec![]),
            step(60, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(70, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(75, Ev::Tick, vec![status(100, 100, 80, true)]),
            step(104, Ev::Tick, vec![status(100, 100, 80, false)]),
            step(105, Ev::Tick, vec![Terminate(ReceiverError::Timeout)]),
            step(106, Ev::Tick, vec![]),
            step(107, Ev::Keepalive(100, true), vec![]),
        ],
    );
    assert_eq!(r.next_deadline(), None);
    assert_eq!(
        ReceiverError::Timeout.to_pg_error().message,
        "terminating walreceiver due to timeout"
    );
}

#[test]
fn deadlines() {
    let t0 = Instant::now();
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(CONFIG, start, Lsn(80), Lsn(100), t0);
    assert_eq!(
        r.next_deadline(),
        Some(t0),
        "the first status is due at once"
    );
    r.on_tick(t0);
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(10)));
    let no_status = WalReceiverConfig {
        status_interval: None,
        ..CONFIG
    };
    let r = WalReceiver::new(no_status, start, Lsn(80), Lsn(100), t0);
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(30)));
}

#[test]
fn gaps_and_overlaps_end_the_connection() {
    let r = run(
        "gap",
        CONFIG,
        vec![
            step(
                0,
                Ev::Wal(120, 10, 150),
                vec![Terminate(ReceiverError::UnexpectedWalStart {
                    got: Lsn(120),
                    expected: Lsn(100),
                })],
            ),
            step(0, Ev::Wal(100, 10, 150), vec![]),
            step(0, Ev::Tick, vec![]),
        ],
    );
    assert_eq!(r.received_lsn(), Lsn(100));
    let e = ReceiverError::UnexpectedWalStart {
        got: Lsn(0x80),
        expected: Lsn(0x100),
    };
    assert_eq!(
        e.to_string(),
        "received WAL starting at 0/80, expected 0/100"
    );
}

#[test]
fn an_empty_xlogdata_still_carries_the_flush_lsn() {
    run(
        "empty",
        CONFIG,
        vec![
            step(0, Ev::Wal(100, 0, 100), vec![]),
            step(0, Ev::Wal(100, 20, 100), vec![write(100, 20)]),
            step(0, Ev::Written(120), vec![]),
            step(
                0,
                Ev::Drained,
                vec![status(120, 100, 80, false), flush(120)],
            ),
            step(0, Ev::Flushed(120), vec![status(120, 120, 80, false)]),
            step(0, Ev::Wal(120, 0, 120), vec![allow(120)]),
        ],
    );
}

#[test]
fn timeline_ends_where_the_primary_says() {
    let t0 = Instant::now();
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(CONFIG, start, Lsn(80), Lsn(100), t0);
    r.on_message(
        PrimaryMessage::XLogData(XLogData {
            data_start: Lsn(100),
            wal_end: Lsn(200),
            send_time: PgTimestamp(0),
            data: Bytes::from_static(&[0; 50]),
        }),
        t0,
    );
    assert_eq!(
        r.on_end_of_timeline(TimelineId(2), Lsn(150)),
        Ok(StartPoint {
            timeline: TimelineId(2),
            lsn: Lsn(150)
        })
    );
    assert!(r.on_end_of_timeline(TimelineId(2), Lsn(140)).is_err());
    assert!(r.on_end_of_timeline(TimelineId(1), Lsn(150)).is_err());
}

#[test]
#[should_panic(expected = "beyond the replay limit")]
fn replaying_past_the_primary_flush_is_a_bug() {
    let t0 = Instant::now();
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(CONFIG, start, Lsn(80), Lsn(90), t0);
    r.on_replayed(Lsn(95), false, t0);
}

#[test]
#[should_panic(expected = "outside")]
fn flushing_what_was_not_written_is_a_bug() {
    let t0 = Instant::now();
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(CONFIG, start, Lsn(80), Lsn(100), t0);
    r.on_flushed(Lsn(101), t0);
}

/// Property: under any interleaving of messages and driver events, replay is never allowed
/// past the primary's announced flush LSN or the local flush, the allowed limit only grows,
/// and every status update reports write ≥ flush ≥ apply.
#[test]
fn random_interleavings_keep_the_replay_rule() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_4EC5);
    for _ in 0..300 {
        let t0 = Instant::now();
        let start = StartPoint {
            timeline: TimelineId(1),
            lsn: Lsn(1000),
        };
        let mut r = WalReceiver::new(CONFIG, start, Lsn(900), Lsn(1000), t0);
        let mut primary_write = 1000u64;
        let mut primary_flush = 1000u64;
        let mut max_announced = 1000u64;
        let mut sent = 1000u64;
        let mut allowed = Lsn(1000);
        let mut now = t0;
        for _ in 0..300 {
            now += Duration::from_millis(rng.random_range(0..3000));
            let actions = match rng.random_range(0..7) {
                0 => {
                    primary_write += rng.random_range(0..200);
                    primary_flush = rng.random_range(primary_flush..=primary_write);
                    let end = rng.random_range(sent..=primary_write);
                    let msg = PrimaryMessage::XLogData(XLogData {
                        data_start: Lsn(sent),
                        wal_end: Lsn(primary_flush),
                        send_time: PgTimestamp(0),
                        data: Bytes::from(vec![1; (end - sent) as usize]),
                    });
                    sent = end;
                    max_announced = max_announced.max(primary_flush);
                    r.on_message(msg, now)
                }
                1 => {
                    max_announced = max_announced.max(primary_flush);
                    r.on_message(
                        PrimaryMessage::Keepalive(PrimaryKeepalive {
                            wal_end: Lsn(primary_flush),
                            send_time: PgTimestamp(0),
                            reply_requested: rng.random_bool(0.3),
                        }),
                        now,
                    )
                }
                2 => {
                    let (lo, hi) = (r.written_lsn().0, r.received_lsn().0);
                    r.on_written(Lsn(rng.random_range(lo..=hi)));
                    Vec::new()
                }
                3 => r.on_input_drained(now),
                4 => {
                    let (lo, hi) = (r.flushed_lsn().0, r.written_lsn().0);
                    r.on_flushed(Lsn(rng.random_range(lo..=hi)), now)
                }
                5 => {
                    let (lo, hi) = (r.replayed_lsn().0, r.replay_limit().0);
                    r.on_replayed(Lsn(rng.random_range(lo..=hi)), rng.random_bool(0.2), now)
                }
                _ => r.on_tick(now),
            };
            for a in actions {
                match a {
                    AllowReplay { upto } => {
                        assert!(upto > allowed);
                        assert!(upto.0 <= max_announced);
                        assert!(upto <= r.flushed_lsn());
                        allowed = upto;
                    }
                    SendStatus {
                        write_lsn,
                        flush_lsn,
                        apply_lsn,
                        ..
                    } => assert!(write_lsn >= flush_lsn && flush_lsn >= apply_lsn),
                    Terminate(ReceiverError::Timeout) => {}
                    Terminate(e) => panic!("{e}"),
                    _ => {}
                }
            }
            assert!(r.replay_limit().0 <= max_announced);
        }
    }
}

#[test]
fn absurd_timeouts_never_overflow_the_clock() {
    let t0 = Instant::now();
    let config = WalReceiverConfig {
        status_interval: Some(Duration::MAX),
        receiver_timeout: Some(Duration::MAX),
    };
    let start = StartPoint {
        timeline: TimelineId(1),
        lsn: Lsn(100),
    };
    let mut r = WalReceiver::new(config, start, Lsn(80), Lsn(100), t0);
    assert_eq!(r.on_tick(t0), vec![status(100, 100, 80, false)]);
    assert_eq!(r.on_tick(t0 + Duration::from_secs(1_000_000)), vec![]);
    assert_eq!(r.next_deadline(), None);
}

// ---------------------------------------------------------------------------------------
// plan_reconnect
// ---------------------------------------------------------------------------------------

fn lsn(s: &str) -> Lsn {
    s.parse().expect("lsn")
}

fn local_state(tli: u32, flushed_end: &str, replayed: &str, primary_flush: &str) -> LocalWalState {
    LocalWalState {
        timeline: TimelineId(tli),
        flushed_end: lsn(flushed_end),
        replayed: lsn(replayed),
        primary_flush: lsn(primary_flush),
    }
}

fn upstream(tli: u32, flush: &str) -> UpstreamIdentity {
    UpstreamIdentity {
        timeline: TimelineId(tli),
        flush_lsn: lsn(flush),
    }
}

fn stream(tli: u32, start: &str, discard: Option<&str>, primary_flush: &str) -> ReconnectPlan {
    ReconnectPlan::Stream {
        start: StartPoint {
            timeline: TimelineId(tli),
            lsn: lsn(start),
        },
        discard_from: discard.map(lsn),
        primary_flush: lsn(primary_flush),
    }
}

#[test]
fn reconnect_plans() {
    // Timeline 2 forked off timeline 1 at 0/800.
    let tli2 = TimelineHistory::parse(TimelineId(2), "1\t0/800\tno recovery target specified\n")
        .expect("history");
    // Timeline 3 forked off timeline 1 at 0/600 (a sibling of 2).
    let tli3 = TimelineHistory::parse(TimelineId(3), "1\t0/600\tx\n").expect("history");
    let cases: Vec<(
        &str,
        LocalWalState,
        UpstreamIdentity,
        Option<&TimelineHistory>,
        ReconnectPlan,
    )> = vec![
        (
            "same timeline: WAL beyond the last known primary flush is discarded",
            local_state(1, "0/900", "0/500", "0/700"),
            upstream(1, "0/800"),
            None,
            stream(1, "0/700", Some("0/700"), "0/700"),
        ),
        (
            "same timeline, standby behind the known flush: nothing to discard",
            local_state(1, "0/600", "0/500", "0/700"),
            upstream(1, "0/800"),
            None,
            stream(1, "0/600", None, "0/700"),
        ),
        (
            "the primary flush LSN was not persisted: fall back to the replayed LSN",
            local_state(1, "0/900", "0/500", "0/0"),
            upstream(1, "0/900"),
            None,
            stream(1, "0/500", Some("0/500"), "0/500"),
        ),
        (
            "an upstream behind this standby (lagging cascade): wait",
            local_state(1, "0/900", "0/500", "0/700"),
            upstream(1, "0/650"),
            None,
            ReconnectPlan::WaitForUpstream {
                start: lsn("0/700"),
                upstream_flush: lsn("0/650"),
            },
        ),
        (
            "the upstream is on an older timeline",
            local_state(2, "0/900", "0/500", "0/700"),
            upstream(1, "0/900"),
            None,
            ReconnectPlan::Diverged(ReconnectError::UpstreamTimelineBehind {
                upstream: TimelineId(1),
                local: TimelineId(2),
            }),
        ),
        (
            "a new upstream timeline needs its history first",
            local_state(1, "0/900", "0/500", "0/700"),
            upstream(2, "0/A00"),
            None,
            ReconnectPlan::FetchHistory {
                timeline: TimelineId(2),
            },
        ),
        (
            "the history of another timeline does not count",
            local_state(1, "0/900", "0/500", "0/700"),
            upstream(2, "0/A00"),
            Some(&tli3),
            ReconnectPlan::FetchHistory {
                timeline: TimelineId(2),
            },
        ),
        (
            "new timeline: stop at the fork, continue on the new timeline",
            local_state(1, "0/900", "0/500", "0/850"),
            upstream(2, "0/A00"),
            Some(&tli2),
            stream(2, "0/800", Some("0/800"), "0/800"),
        ),
        (
            "new timeline, known flush before the fork: continue on the old timeline",
            local_state(1, "0/900", "0/500", "0/700"),
            upstream(2, "0/A00"),
            Some(&tli2),
            stream(1, "0/700", Some("0/700"), "0/700"),
        ),
        (
            "new timeline, standby still before the fork: nothing to discard",
            local_state(1, "0/650", "0/500", "0/700"),
            upstream(2, "0/A00"),
            Some(&tli2),
            stream(1, "0/650", None, "0/650"),
        ),
        (
            "replayed past the fork: cannot follow",
            local_state(1, "0/900", "0/850", "0/900"),
            upstream(2, "0/A00"),
            Some(&tli2),
            ReconnectPlan::Diverged(ReconnectError::NotAChild(TimelineError::NotAChild {
                requested: TimelineId(2),
                local_timeline: TimelineId(1),
                local_end: lsn("0/850"),
                forked_at: Some(lsn("0/800")),
            })),
        ),
        (
            "a sibling timeline is not a child",
            local_state(2, "0/900", "0/500", "0/700"),
            upstream(3, "0/A00"),
            Some(&tli3),
            ReconnectPlan::Diverged(ReconnectError::NotAChild(TimelineError::NotAChild {
                requested: TimelineId(3),
                local_timeline: TimelineId(2),
                local_end: lsn("0/900"),
                forked_at: None,
            })),
        ),
    ];
    for (name, local, up, history, want) in cases {
        assert_eq!(plan_reconnect(&local, &up, history), want, "{name}");
    }
    let ReconnectPlan::Diverged(e) = plan_reconnect(
        &local_state(1, "0/900", "0/850", "0/900"),
        &upstream(2, "0/A00"),
        Some(&tli2),
    ) else {
        panic!("diverged");
    };
    assert_eq!(
        e.to_pg_error().message,
        "requested timeline 2 is not a child of this server's history"
    );
    let e = ReconnectError::UpstreamTimelineBehind {
        upstream: TimelineId(1),
        local: TimelineId(2),
    };
    assert_eq!(
        e.to_string(),
        "highest timeline 1 of the primary is behind recovery timeline 2"
    );
}
