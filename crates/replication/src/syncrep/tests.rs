//! Table-driven tests of the synced LSNs and of the state rules around them. The
//! `sync_state`/`sync_priority` transitions of PostgreSQL's 007_sync_rep.pl are replayed in
//! `tests/sync_rep_007.rs`.

use base::{Lsn, SyncCommitLevel};

use super::*;
use crate::walsender::WalSndState::{self, *};

fn ws(
    slot: usize,
    name: &'static str,
    state: WalSndState,
    lsns: (u64, u64, u64),
) -> WalSenderSnapshot<'static> {
    WalSenderSnapshot {
        slot,
        application_name: name,
        state,
        write_lsn: Lsn(lsns.0),
        flush_lsn: Lsn(lsns.1),
        apply_lsn: Lsn(lsns.2),
    }
}

fn synced(w: Option<u64>, f: Option<u64>, a: Option<u64>) -> SyncedLsns {
    SyncedLsns {
        write: w.map(Lsn),
        flush: f.map(Lsn),
        apply: a.map(Lsn),
    }
}

struct Case {
    name: &'static str,
    config: &'static str,
    walsenders: Vec<WalSenderSnapshot<'static>>,
    /// (sync_priority, sync_state) per walsender, in input order.
    states: Vec<(u32, SyncState)>,
    sync_standbys: Vec<usize>,
    synced: SyncedLsns,
}

#[test]
fn synced_lsns_and_states() {
    use SyncState::*;
    let cases = vec![
        Case {
            name: "FIRST 1: the synced LSNs are the first listed standby's own",
            config: "s1, s2",
            walsenders: vec![
                ws(0, "s1", Streaming, (100, 90, 80)),
                ws(1, "s2", Streaming, (200, 190, 180)),
            ],
            states: vec![(1, Sync), (2, Potential)],
            sync_standbys: vec![0],
            synced: synced(Some(100), Some(90), Some(80)),
        },
        Case {
            name: "FIRST 2: minimum over the two best priorities, each stage on its own",
            config: "FIRST 2 (s1, s2, s3)",
            walsenders: vec![
                ws(0, "s3", Streaming, (1, 1, 1)),
                ws(1, "s2", Streaming, (50, 45, 44)),
                ws(2, "s1", Streaming, (40, 60, 70)),
            ],
            states: vec![(3, Potential), (2, Sync), (1, Sync)],
            sync_standbys: vec![2, 1],
            synced: synced(Some(40), Some(45), Some(44)),
        },
        Case {
            name: "ANY 2: the 2nd largest at each stage, from different standbys",
            config: "ANY 2 (s1, s2, s3)",
            walsenders: vec![
                ws(0, "s1", Streaming, (300, 10, 5)),
                ws(1, "s2", Streaming, (200, 200, 200)),
                ws(2, "s3", Streaming, (100, 150, 300)),
            ],
            states: vec![(1, Quorum), (1, Quorum), (1, Quorum)],
            sync_standbys: vec![0, 1, 2],
            synced: synced(Some(200), Some(150), Some(200)),
        },
        Case {
            name: "ANY 1: the largest",
            config: "ANY 1 (*)",
            walsenders: vec![
                ws(0, "a", Streaming, (10, 10, 0)),
                ws(1, "b", Streaming, (20, 15, 5)),
            ],
            states: vec![(1, Quorum), (1, Quorum)],
            sync_standbys: vec![0, 1],
            synced: synced(Some(20), Some(15), Some(5)),
        },
        Case {
            name: "ANY 3 of 3: the smallest",
            config: "ANY 3 (a, b, c)",
            walsenders: vec![
                ws(0, "a", Streaming, (10, 9, 8)),
                ws(1, "b", Streaming, (20, 19, 18)),
                ws(2, "c", Streaming, (30, 29, 28)),
            ],
            states: vec![(1, Quorum), (1, Quorum), (1, Quorum)],
            sync_standbys: vec![0, 1, 2],
            synced: synced(Some(10), Some(9), Some(8)),
        },
        Case {
            name: "FIRST 2 with one listed standby still in catchup: no progress at all",
            config: "FIRST 2 (s1, s2)",
            walsenders: vec![
                ws(0, "s1", Streaming, (100, 100, 100)),
                ws(1, "s2", Catchup, (50, 50, 50)),
            ],
            states: vec![(1, Sync), (2, Potential)],
            sync_standbys: vec![0],
            synced: synced(None, None, None),
        },
        Case {
            name: "ANY 3 with two candidates: no progress, candidates still show quorum",
            config: "ANY 3 (a, b, c)",
            walsenders: vec![
                ws(0, "a", Streaming, (10, 10, 10)),
                ws(1, "b", Streaming, (10, 10, 10)),
            ],
            states: vec![(1, Quorum), (1, Quorum)],
            sync_standbys: vec![0, 1],
            synced: synced(None, None, None),
        },
        Case {
            name: "k larger than the number of names: every listed standby is sync, none enough",
            config: "3 (s1, s2)",
            walsenders: vec![
                ws(0, "s1", Streaming, (10, 10, 10)),
                ws(1, "s2", Streaming, (10, 10, 10)),
            ],
            states: vec![(1, Sync), (2, Sync)],
            sync_standbys: vec![0, 1],
            synced: synced(None, None, None),
        },
        Case {
            name: "a sync standby that never reports apply (pg_receivewal) holds apply back",
            config: "FIRST 2 (s1, receiver)",
            walsenders: vec![
                ws(0, "s1", Streaming, (100, 100, 100)),
                ws(1, "receiver", Streaming, (90, 90, 0)),
            ],
            states: vec![(1, Sync), (2, Sync)],
            sync_standbys: vec![0, 1],
            synced: synced(Some(90), Some(90), None),
        },
        Case {
            name: "no valid flush position: not a candidate, the next one is chosen",
            config: "s1, s2",
            walsenders: vec![
                ws(0, "s1", Streaming, (100, 0, 0)),
                ws(1, "s2", Streaming, (50, 40, 30)),
            ],
            states: vec![(1, Potential), (2, Sync)],
            sync_standbys: vec![1],
            synced: synced(Some(50), Some(40), Some(30)),
        },
        Case {
            name: "stopping standbys still count; startup and backup have priority 0",
            config: "ANY 1 (s1, s2, s3)",
            walsenders: vec![
                ws(0, "s1", Stopping, (70, 70, 70)),
                ws(1, "s2", Startup, (0, 0, 0)),
                ws(2, "s3", Backup, (0, 0, 0)),
            ],
            states: vec![(1, Quorum), (0, Async), (0, Async)],
            sync_standbys: vec![0],
            synced: synced(Some(70), Some(70), Some(70)),
        },
        Case {
            name: "names match case-insensitively, quoted or not",
            config: "FIRST 1 (\"StandBy1\")",
            walsenders: vec![ws(0, "STANDBY1", Streaming, (5, 5, 5))],
            states: vec![(1, Sync)],
            sync_standbys: vec![0],
            synced: synced(Some(5), Some(5), Some(5)),
        },
        Case {
            name: "two walsenders with the same application_name: the lower slot wins",
            config: "FIRST 1 (dup, other)",
            walsenders: vec![
                ws(7, "dup", Streaming, (30, 30, 30)),
                ws(3, "dup", Streaming, (20, 20, 20)),
                ws(1, "other", Streaming, (99, 99, 99)),
            ],
            states: vec![(1, Potential), (1, Sync), (2, Potential)],
            sync_standbys: vec![3],
            synced: synced(Some(20), Some(20), Some(20)),
        },
        Case {
            name: "a name listed twice keeps its first position",
            config: "FIRST 1 (a, b, a)",
            walsenders: vec![
                ws(0, "b", Streaming, (1, 1, 1)),
                ws(1, "a", Streaming, (2, 2, 2)),
            ],
            states: vec![(2, Potential), (1, Sync)],
            sync_standbys: vec![1],
            synced: synced(Some(2), Some(2), Some(2)),
        },
        Case {
            name: "unlisted standbys are async and never counted",
            config: "ANY 1 (s1)",
            walsenders: vec![
                ws(0, "s1", Catchup, (1, 1, 1)),
                ws(1, "s9", Streaming, (100, 100, 100)),
            ],
            states: vec![(1, Potential), (0, Async)],
            sync_standbys: vec![],
            synced: synced(None, None, None),
        },
    ];
    for c in cases {
        let config = SyncRepConfig::parse(c.config).expect(c.name);
        let ev = evaluate(config.as_ref(), &c.walsenders);
        let states: Vec<(u32, SyncState)> = ev
            .standbys
            .iter()
            .map(|s| (s.sync_priority, s.sync_state))
            .collect();
        assert_eq!(states, c.states, "{}: states", c.name);
        let slots: Vec<usize> = ev.standbys.iter().map(|s| s.slot).collect();
        let input_slots: Vec<usize> = c.walsenders.iter().map(|w| w.slot).collect();
        assert_eq!(slots, input_slots, "{}: order", c.name);
        assert_eq!(ev.sync_standbys, c.sync_standbys, "{}: sync set", c.name);
        assert_eq!(ev.synced, c.synced, "{}: synced", c.name);

        // The answer never depends on the order the snapshot was taken in.
        let mut reversed = c.walsenders.clone();
        reversed.reverse();
        let ev2 = evaluate(config.as_ref(), &reversed);
        assert_eq!(ev2.synced, ev.synced, "{}: reversed synced", c.name);
        let mut a = ev2.sync_standbys.clone();
        let mut b = ev.sync_standbys.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{}: reversed sync set", c.name);
    }
}

#[test]
fn without_synchronous_standby_names_nothing_waits() {
    let ev = evaluate(None, &[ws(0, "s1", Streaming, (10, 10, 10))]);
    assert_eq!(ev.standbys[0].sync_state, SyncState::Async);
    assert_eq!(ev.standbys[0].sync_priority, 0);
    assert_eq!(ev.synced, SyncedLsns::default());
    assert!(!ev.is_sync(0));
    assert_eq!(SyncRepConfig::parse(""), Ok(None));
}

#[test]
fn released_lsns_never_move_back() {
    let mut r = ReleasedLsns::default();
    assert_eq!(
        r.advance(&synced(Some(10), Some(5), None)),
        vec![WaitMode::Write, WaitMode::Flush]
    );
    // The sync set changed to a standby further behind: nothing moves back.
    assert_eq!(
        r.advance(&synced(Some(7), Some(3), Some(1))),
        vec![WaitMode::Apply]
    );
    assert_eq!(
        r,
        ReleasedLsns {
            write: Lsn(10),
            flush: Lsn(5),
            apply: Lsn(1)
        }
    );
    assert_eq!(r.advance(&synced(None, None, None)), vec![]);
    assert_eq!(
        r.advance(&synced(Some(11), Some(5), Some(1))),
        vec![WaitMode::Write]
    );
    assert_eq!(r.get(WaitMode::Write), Lsn(11));
}

#[test]
fn wait_modes_follow_synchronous_commit() {
    let cases = [
        (SyncCommitLevel::Off, None),
        (SyncCommitLevel::Local, None),
        (SyncCommitLevel::RemoteWrite, Some(WaitMode::Write)),
        (SyncCommitLevel::On, Some(WaitMode::Flush)),
        (SyncCommitLevel::RemoteApply, Some(WaitMode::Apply)),
    ];
    for (level, mode) in cases {
        assert_eq!(WaitMode::for_level(level), mode, "{level}");
    }
    let s = synced(Some(3), Some(2), Some(1));
    assert_eq!(
        WaitMode::ALL.map(|m| s.get(m)),
        [Some(Lsn(3)), Some(Lsn(2)), Some(Lsn(1))]
    );
}

/// Property: for every configuration shape and random positions, priority mode's synced LSN
/// is the minimum over exactly the chosen standbys, quorum mode's is a value at least `k`
/// candidates reached, and nothing is synced beyond what any chosen standby reported.
#[test]
fn synced_lsns_are_confirmed_by_enough_standbys() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_0007);
    let names = ["a", "b", "c", "d", "e"];
    let states = [Startup, Backup, Catchup, Streaming, Stopping];
    for _ in 0..5_000 {
        let k = rng.random_range(1..=4u32);
        let quorum = rng.random_bool(0.5);
        let listed: Vec<String> = names
            .iter()
            .filter(|_| rng.random_bool(0.7))
            .map(|s| s.to_string())
            .collect();
        if listed.is_empty() {
            continue;
        }
        let method = if quorum {
            SyncRepMethod::Quorum
        } else {
            SyncRepMethod::Priority
        };
        let config = SyncRepConfig::new(method, k, listed.clone()).expect("valid");
        let n = rng.random_range(0..=5usize);
        let walsenders: Vec<WalSenderSnapshot<'static>> = (0..n)
            .map(|slot| {
                let w = rng.random_range(0..50u64);
                let f = rng.random_range(0..=w);
                let a = rng.random_range(0..=f);
                ws(
                    slot,
                    names[rng.random_range(0..names.len())],
                    states[rng.random_range(0..states.len())],
                    (w, f, a),
                )
            })
            .collect();
        let ev = evaluate(Some(&config), &walsenders);
        for mode in WaitMode::ALL {
            let Some(lsn) = ev.synced.get(mode) else {
                continue;
            };
            let at = |w: &WalSenderSnapshot<'_>| match mode {
                WaitMode::Write => w.write_lsn,
                WaitMode::Flush => w.flush_lsn,
                WaitMode::Apply => w.apply_lsn,
            };
            let confirming = walsenders
                .iter()
                .filter(|w| ev.is_sync(w.slot) && at(w) >= lsn)
                .count();
            assert!(
                confirming >= k as usize,
                "{config} {walsenders:?} {mode:?}: {lsn} confirmed by {confirming}"
            );
            assert!(lsn > Lsn::ZERO);
        }
        for w in &walsenders {
            if ev.is_sync(w.slot) {
                assert!(matches!(w.state, Streaming | Stopping));
                assert!(w.flush_lsn > Lsn::ZERO);
                assert!(config.priority_of(w.application_name) > 0);
            }
        }
        if !quorum {
            assert!(ev.sync_standbys.len() <= k as usize);
        }
    }
}
