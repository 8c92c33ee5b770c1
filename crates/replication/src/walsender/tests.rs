//! Scenario tables for the walsender: each step feeds one event at a given second and lists
//! the exact actions expected back. No sleeps: time is an argument.

use std::time::{Duration, Instant};

use base::{Lsn, TimelineId};

use super::*;
use crate::messages::{HotStandbyFeedback, PgTimestamp, StandbyMessage, StandbyStatusUpdate};
use crate::timeline::StreamPlan;

use SenderAction::*;
use WalSndState::*;

enum Ev {
    Start {
        plan: StreamPlan,
        local: LocalWal,
        slot: bool,
    },
    Local(LocalWal),
    /// A status update: write, flush, apply, replyRequested.
    Reply(u64, u64, u64, bool),
    Feedback(HotStandbyFeedback),
    Poll,
    Shutdown,
    Backup,
}

struct Step {
    at_secs: u64,
    ev: Ev,
    want: Vec<SenderAction>,
}

fn local(write: u64, flush: u64, buffer_start: u64) -> LocalWal {
    LocalWal {
        write_lsn: Lsn(write),
        flush_lsn: Lsn(flush),
        buffer_start_lsn: Lsn(buffer_start),
    }
}

fn plan(start: u64) -> StreamPlan {
    StreamPlan {
        timeline: TimelineId(1),
        start: Lsn(start),
        end_of_timeline: None,
    }
}

fn wal(start: u64, end: u64, source: WalSource, wal_end: u64) -> SenderAction {
    SendWal {
        start: Lsn(start),
        end: Lsn(end),
        source,
        wal_end: Lsn(wal_end),
    }
}

fn ka(wal_end: u64, reply_requested: bool) -> SenderAction {
    SendKeepalive {
        wal_end: Lsn(wal_end),
        reply_requested,
    }
}

fn progressed(w: u64, f: u64, a: u64) -> SenderAction {
    StandbyProgressed {
        write_lsn: Lsn(w),
        flush_lsn: Lsn(f),
        apply_lsn: Lsn(a),
    }
}

fn state(from: WalSndState, to: WalSndState) -> SenderAction {
    StateChanged { from, to }
}

const CONFIG: WalSenderConfig = WalSenderConfig {
    wal_sender_timeout: Some(Duration::from_secs(60)),
    max_send_size: 100,
    segment_size: 1000,
};

fn run(name: &str, config: WalSenderConfig, steps: Vec<Step>) -> WalSender {
    let t0 = Instant::now();
    let mut ws = WalSender::new(config, t0);
    for (i, step) in steps.into_iter().enumerate() {
        let now = t0 + Duration::from_secs(step.at_secs);
        let got = match step.ev {
            Ev::Start { plan, local, slot } => ws.start_streaming(plan, local, slot, now),
            Ev::Local(l) => ws.on_local_wal(l, now),
            Ev::Reply(w, f, a, reply_requested) => ws.on_standby_message(
                StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                    write_lsn: Lsn(w),
                    flush_lsn: Lsn(f),
                    apply_lsn: Lsn(a),
                    send_time: PgTimestamp(7),
                    reply_requested,
                }),
                now,
            ),
            Ev::Feedback(h) => ws.on_standby_message(StandbyMessage::HotStandbyFeedback(h), now),
            Ev::Poll => ws.poll(now),
            Ev::Shutdown => ws.on_shutdown(now),
            Ev::Backup => ws.begin_backup(),
        };
        assert_eq!(got, step.want, "{name}: step {i} at {}s", step.at_secs);
        let stat = ws.stat();
        assert!(stat.write_lsn <= stat.sent_lsn, "{name}: step {i}");
        assert!(stat.flush_lsn <= stat.sent_lsn, "{name}: step {i}");
    }
    ws
}

fn step(at_secs: u64, ev: Ev, want: Vec<SenderAction>) -> Step {
    Step { at_secs, ev, want }
}

#[test]
fn streams_in_chunks_and_announces_the_flush_lsn() {
    use WalSource::Buffer;
    run(
        "chunks",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(100),
                    local: local(350, 200, 0),
                    slot: false,
                },
                vec![state(Startup, Catchup), wal(100, 200, Buffer, 200)],
            ),
            step(0, Ev::Poll, vec![wal(200, 300, Buffer, 200)]),
            // The last chunk reaches the write LSN, beyond the flush LSN it announces.
            step(0, Ev::Poll, vec![wal(300, 350, Buffer, 200)]),
            step(0, Ev::Poll, vec![]),
            // The flush LSN moves after the WAL went out: a keepalive carries it.
            step(1, Ev::Local(local(350, 350, 0)), vec![ka(350, false)]),
            step(1, Ev::Poll, vec![]),
            // New WAL carries the current flush LSN itself.
            step(
                2,
                Ev::Local(local(400, 380, 0)),
                vec![wal(350, 400, Buffer, 380)],
            ),
        ],
    );
}

#[test]
fn lagging_standbys_read_segment_files_up_to_the_buffer() {
    use WalSource::{Buffer, SegmentFile};
    run(
        "files",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(900),
                    local: local(1300, 1300, 1020),
                    slot: false,
                },
                // Stops at the segment boundary (one file per read).
                vec![state(Startup, Catchup), wal(900, 1000, SegmentFile, 1300)],
            ),
            // Stops where the buffer starts, so the next chunk comes from memory.
            step(0, Ev::Poll, vec![wal(1000, 1020, SegmentFile, 1300)]),
            step(0, Ev::Poll, vec![wal(1020, 1120, Buffer, 1300)]),
        ],
    );
}

#[test]
fn catchup_ends_when_the_standby_wrote_what_existed_at_first_catch_up() {
    use WalSource::Buffer;
    let ws = run(
        "catchup",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(100),
                    local: local(150, 150, 0),
                    slot: false,
                },
                vec![state(Startup, Catchup), wal(100, 150, Buffer, 150)],
            ),
            // The primary keeps writing: the target stays at 150.
            step(
                1,
                Ev::Local(local(250, 250, 0)),
                vec![wal(150, 250, Buffer, 250)],
            ),
            step(
                2,
                Ev::Reply(140, 140, 100, false),
                vec![progressed(140, 140, 100)],
            ),
            step(
                3,
                Ev::Reply(150, 140, 100, false),
                vec![progressed(150, 140, 100), state(Catchup, Streaming)],
            ),
            // The same report again changes nothing.
            step(4, Ev::Reply(150, 140, 100, false), vec![]),
        ],
    );
    assert_eq!(ws.state(), Streaming);
}

#[test]
fn a_standby_starting_at_our_end_streams_at_its_first_reply() {
    let ws = run(
        "idle",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(500),
                    local: local(500, 500, 0),
                    slot: true,
                },
                // Nothing to send, but the standby learns the flush LSN at once.
                vec![state(Startup, Catchup), ka(500, false)],
            ),
            step(
                1,
                Ev::Reply(500, 500, 400, false),
                vec![
                    progressed(500, 500, 400),
                    AdvanceSlot {
                        restart_lsn: Lsn(500),
                    },
                    state(Catchup, Streaming),
                ],
            ),
        ],
    );
    assert_eq!(ws.stat().replay_lsn, Lsn(400));
    assert_eq!(ws.stat().reply_time, Some(PgTimestamp(7)));
}

#[test]
fn keepalive_pings_and_timeout() {
    let start = Ev::Start {
        plan: plan(500),
        local: local(500, 500, 0),
        slot: false,
    };
    let ws = run(
        "timeout",
        CONFIG,
        vec![
            step(0, start, vec![state(Startup, Catchup), ka(500, false)]),
            step(29, Ev::Poll, vec![]),
            // Half the timeout without hearing from the standby: ask for a reply, once.
            step(30, Ev::Poll, vec![ka(500, true)]),
            step(31, Ev::Poll, vec![]),
            // A reply resets the clock.
            step(
                40,
                Ev::Reply(500, 500, 500, false),
                vec![progressed(500, 500, 500), state(Catchup, Streaming)],
            ),
            step(69, Ev::Poll, vec![]),
            step(70, Ev::Poll, vec![ka(500, true)]),
            step(99, Ev::Poll, vec![]),
            step(100, Ev::Poll, vec![Terminate(SenderError::Timeout)]),
            // Terminated: nothing more.
            step(101, Ev::Poll, vec![]),
        ],
    );
    assert_eq!(ws.next_deadline(), None);
    assert_eq!(
        SenderError::Timeout.to_pg_error().message,
        "terminating walsender process due to replication timeout"
    );
}

#[test]
fn deadlines_follow_the_ping_state() {
    let t0 = Instant::now();
    let mut ws = WalSender::new(CONFIG, t0);
    assert_eq!(ws.next_deadline(), None, "not streaming yet");
    ws.start_streaming(plan(10), local(10, 10, 0), false, t0);
    assert_eq!(ws.next_deadline(), Some(t0 + Duration::from_secs(30)));
    ws.poll(t0 + Duration::from_secs(30));
    assert_eq!(ws.next_deadline(), Some(t0 + Duration::from_secs(60)));
    let mut no_timeout = WalSender::new(
        WalSenderConfig {
            wal_sender_timeout: None,
            ..CONFIG
        },
        t0,
    );
    no_timeout.start_streaming(plan(10), local(10, 10, 0), false, t0);
    assert_eq!(no_timeout.poll(t0 + Duration::from_secs(86_400)), vec![]);
    assert_eq!(no_timeout.next_deadline(), None);
}

#[test]
fn replies_requested_and_reports_beyond_what_was_sent() {
    use WalSource::Buffer;
    run(
        "clamp",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(100),
                    local: local(150, 150, 0),
                    slot: true,
                },
                vec![state(Startup, Catchup), wal(100, 150, Buffer, 150)],
            ),
            // A standby that still holds older WAL reports beyond what this connection sent;
            // the positions are clamped (ship-at-write: that WAL may not be ours).
            step(
                1,
                Ev::Reply(900, 800, 700, true),
                vec![
                    progressed(150, 150, 150),
                    AdvanceSlot {
                        restart_lsn: Lsn(150),
                    },
                    state(Catchup, Streaming),
                    ka(150, false),
                ],
            ),
            // The slot never moves back.
            step(
                2,
                Ev::Reply(150, 120, 100, false),
                vec![progressed(150, 120, 100)],
            ),
            step(
                3,
                Ev::Feedback(HotStandbyFeedback {
                    send_time: PgTimestamp(1),
                    xmin: 10,
                    xmin_epoch: 0,
                    catalog_xmin: 0,
                    catalog_xmin_epoch: 0,
                }),
                vec![SenderAction::HotStandbyFeedback(HotStandbyFeedback {
                    send_time: PgTimestamp(1),
                    xmin: 10,
                    xmin_epoch: 0,
                    catalog_xmin: 0,
                    catalog_xmin_epoch: 0,
                })],
            ),
        ],
    );
}

#[test]
fn historic_timelines_end_at_their_switch_point() {
    use WalSource::Buffer;
    let historic = StreamPlan {
        timeline: TimelineId(1),
        start: Lsn(100),
        end_of_timeline: Some((Lsn(250), TimelineId(2))),
    };
    let ws = run(
        "historic",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: historic,
                    local: local(400, 400, 0),
                    slot: false,
                },
                vec![state(Startup, Catchup), wal(100, 200, Buffer, 400)],
            ),
            step(
                0,
                Ev::Poll,
                vec![
                    wal(200, 250, Buffer, 400),
                    EndOfTimeline {
                        next_timeline: TimelineId(2),
                        switchpoint: Lsn(250),
                    },
                ],
            ),
            step(1, Ev::Poll, vec![]),
            step(2, Ev::Local(local(500, 500, 0)), vec![]),
        ],
    );
    assert!(!ws.has_pending_wal());

    // Starting exactly at the switch point sends nothing at all.
    let at_end = StreamPlan {
        timeline: TimelineId(1),
        start: Lsn(250),
        end_of_timeline: Some((Lsn(250), TimelineId(3))),
    };
    run(
        "historic at end",
        CONFIG,
        vec![step(
            0,
            Ev::Start {
                plan: at_end,
                local: local(400, 400, 0),
                slot: false,
            },
            vec![
                state(Startup, Catchup),
                EndOfTimeline {
                    next_timeline: TimelineId(3),
                    switchpoint: Lsn(250),
                },
            ],
        )],
    );
}

#[test]
fn shutdown_waits_for_the_standby_to_confirm_everything() {
    use WalSource::Buffer;
    run(
        "stopping",
        CONFIG,
        vec![
            step(
                0,
                Ev::Start {
                    plan: plan(100),
                    local: local(150, 100, 0),
                    slot: false,
                },
                vec![state(Startup, Catchup), wal(100, 150, Buffer, 100)],
            ),
            // The shutdown checkpoint flushed everything; ask the standby to confirm.
            step(1, Ev::Local(local(150, 150, 0)), vec![ka(150, false)]),
            step(
                1,
                Ev::Shutdown,
                vec![state(Catchup, Stopping), ka(150, true)],
            ),
            // Not yet: ask again (PostgreSQL's WalSndDone pings until confirmed).
            step(
                2,
                Ev::Reply(150, 120, 0, false),
                vec![progressed(150, 120, 0), ka(150, true)],
            ),
            step(
                3,
                Ev::Reply(150, 150, 0, false),
                vec![progressed(150, 150, 0), Done],
            ),
            step(4, Ev::Poll, vec![]),
        ],
    );
}

#[test]
fn messages_outside_streaming_end_the_connection() {
    run(
        "startup",
        CONFIG,
        vec![
            step(
                0,
                Ev::Reply(1, 1, 1, false),
                vec![Terminate(SenderError::UnexpectedMessage {
                    state: "startup",
                })],
            ),
            step(0, Ev::Backup, vec![state(Startup, Backup)]),
            step(0, Ev::Poll, vec![]),
        ],
    );
}

#[test]
#[should_panic(expected = "went backwards")]
fn local_positions_going_backwards_is_a_bug() {
    let t0 = Instant::now();
    let mut ws = WalSender::new(CONFIG, t0);
    ws.start_streaming(plan(10), local(100, 100, 0), false, t0);
    ws.on_local_wal(local(90, 90, 0), t0);
}

/// Property: whatever the standby reports and however the local WAL grows, every byte is
/// sent exactly once, in order, in chunks within the limits, and the announced flush LSN
/// never decreases.
#[test]
fn random_schedules_send_every_byte_once() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_5E4D);
    for _ in 0..300 {
        let t0 = Instant::now();
        let mut ws = WalSender::new(CONFIG, t0);
        let mut write = rng.random_range(0..2000u64);
        let mut flush = rng.random_range(0..=write);
        let mut buffer_start = rng.random_range(0..=write);
        let start = rng.random_range(0..=flush);
        let mut expected_next = start;
        let mut last_wal_end = Lsn::ZERO;
        let mut now = t0;
        let mut actions =
            ws.start_streaming(plan(start), local(write, flush, buffer_start), false, now);
        for _ in 0..200 {
            for a in &actions {
                match a {
                    SendWal {
                        start,
                        end,
                        source,
                        wal_end,
                    } => {
                        assert_eq!(start.0, expected_next);
                        assert!(end > start && end.0 - start.0 <= CONFIG.max_send_size);
                        assert!(end.0 <= write);
                        if *source == WalSource::SegmentFile {
                            assert_eq!(start.0 / 1000, (end.0 - 1) / 1000);
                            assert!(end.0 <= buffer_start);
                        } else {
                            assert!(start.0 >= buffer_start);
                        }
                        assert!(*wal_end >= last_wal_end);
                        last_wal_end = *wal_end;
                        expected_next = end.0;
                    }
                    SendKeepalive { wal_end, .. } => {
                        assert!(*wal_end >= last_wal_end);
                        last_wal_end = *wal_end;
                    }
                    Terminate(_) => panic!("no timeout expected"),
                    _ => {}
                }
            }
            now += Duration::from_millis(rng.random_range(0..500));
            actions = match rng.random_range(0..3) {
                0 => {
                    write += rng.random_range(0..300);
                    flush = rng.random_range(flush..=write);
                    buffer_start = rng.random_range(buffer_start..=write);
                    ws.on_local_wal(local(write, flush, buffer_start), now)
                }
                1 => {
                    let sent = ws.sent_lsn().0;
                    let w = rng.random_range(0..=sent + 50);
                    ws.on_standby_message(
                        StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                            write_lsn: Lsn(w),
                            flush_lsn: Lsn(rng.random_range(0..=w)),
                            apply_lsn: Lsn(0),
                            send_time: PgTimestamp(0),
                            reply_requested: rng.random_bool(0.1),
                        }),
                        now,
                    )
                }
                _ => ws.poll(now),
            };
        }
        // Drain: everything written gets sent.
        for a in &actions {
            if let SendWal { end, .. } = a {
                expected_next = end.0;
            }
        }
        while ws.has_pending_wal() {
            for a in ws.poll(now) {
                if let SendWal { start, end, .. } = a {
                    assert_eq!(start.0, expected_next);
                    expected_next = end.0;
                }
            }
        }
        assert_eq!(expected_next, write.max(start));
    }
}

#[test]
fn absurd_timeouts_never_overflow_the_clock() {
    let t0 = Instant::now();
    let config = WalSenderConfig {
        wal_sender_timeout: Some(Duration::MAX),
        ..CONFIG
    };
    let mut ws = WalSender::new(config, t0);
    ws.start_streaming(plan(10), local(10, 10, 0), false, t0);
    assert_eq!(ws.poll(t0 + Duration::from_secs(1_000_000)), vec![]);
    assert_eq!(ws.next_deadline(), None);
}

#[test]
fn direct_sends_are_allowed_only_when_streaming_and_caught_up_and_continue_the_stream() {
    use WalSource::Buffer;
    let t0 = Instant::now();
    let mut ws = WalSender::new(CONFIG, t0);
    assert!(!ws.direct_send_allowed(), "startup");
    ws.start_streaming(plan(100), local(150, 100, 0), false, t0);
    assert!(!ws.direct_send_allowed(), "catchup");
    ws.on_standby_message(
        StandbyMessage::StatusUpdate(StandbyStatusUpdate {
            write_lsn: Lsn(150),
            flush_lsn: Lsn(150),
            apply_lsn: Lsn(0),
            send_time: PgTimestamp(7),
            reply_requested: false,
        }),
        t0,
    );
    assert_eq!(ws.state(), Streaming);
    assert!(ws.direct_send_allowed(), "streaming and caught up");

    // WAL 150..180 written and sent by the writer; the positions read afterwards may still
    // lag behind that write.
    ws.sent_directly(local(150, 150, 0), Lsn(180), Lsn(150));
    assert_eq!(ws.sent_lsn(), Lsn(180));
    assert!(ws.direct_send_allowed());
    assert_eq!(ws.poll(t0), vec![], "nothing is sent twice");
    // The next local WAL continues from there.
    assert_eq!(
        ws.on_local_wal(local(200, 180, 0), t0),
        vec![wal(180, 200, Buffer, 180)]
    );

    // WAL waiting to be sent by the task: no direct send.
    ws.on_local_wal(local(200, 200, 0), t0);
    let mut behind = ws.clone();
    // One chunk (max_send_size 100) goes out, the rest waits for the next poll.
    behind.on_local_wal(local(400, 200, 0), t0);
    assert!(!behind.direct_send_allowed(), "the task has WAL to send");
    // Stopping: never.
    ws.on_shutdown(t0);
    assert!(!ws.direct_send_allowed(), "stopping");
}
