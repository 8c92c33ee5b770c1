//! PostgreSQL's `src/test/recovery/t/007_sync_rep.pl`, replayed against the pure sync standby
//! choice.
//!
//! The Perl test starts real standbys and polls
//! `SELECT application_name, sync_priority, sync_state FROM pg_stat_replication ORDER BY
//! application_name` until it matches. Which standby wins a tie depends on its position in
//! the primary's `WalSnd` array, and a starting walsender takes the lowest free slot, so this
//! port keeps a model of that array: `start` takes the lowest free slot, `stop` frees it. Every
//! step below is named after the Perl test's message and keeps its comment; the expected rows
//! are copied from it. All standbys are streaming with valid positions, as in the Perl test
//! once `poll_query_until` succeeds.

use base::Lsn;
use replication::syncrep::{SyncRepConfig, WalSenderSnapshot, evaluate};
use replication::walsender::WalSndState;

/// The primary's walsender array: slot i holds the standby connected through it.
#[derive(Default)]
struct WalSndArray {
    slots: Vec<Option<&'static str>>,
}

impl WalSndArray {
    fn start(&mut self, standby: &'static str) {
        match self.slots.iter().position(Option::is_none) {
            Some(free) => self.slots[free] = Some(standby),
            None => self.slots.push(Some(standby)),
        }
    }

    fn stop(&mut self, standby: &'static str) {
        for s in &mut self.slots {
            if *s == Some(standby) {
                *s = None;
            }
        }
    }

    /// `pg_stat_replication` ordered by application_name, as `name|priority|state` lines.
    fn check_sql(&self, setting: &str) -> String {
        let config = SyncRepConfig::parse(setting).expect("setting parses");
        let snapshot: Vec<WalSenderSnapshot<'_>> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                s.map(|name| WalSenderSnapshot {
                    slot,
                    application_name: name,
                    state: WalSndState::Streaming,
                    write_lsn: Lsn(0x300_0000),
                    flush_lsn: Lsn(0x300_0000),
                    apply_lsn: Lsn(0x300_0000),
                })
            })
            .collect();
        let ev = evaluate(config.as_ref(), &snapshot);
        let mut rows: Vec<String> = snapshot
            .iter()
            .zip(&ev.standbys)
            .map(|(w, s)| {
                format!(
                    "{}|{}|{}",
                    w.application_name,
                    s.sync_priority,
                    s.sync_state.as_str()
                )
            })
            .collect();
        rows.sort();
        rows.join("\n")
    }
}

/// One step of the Perl test.
enum Step {
    /// `$node_standby_N->start` (the walsender takes the lowest free slot).
    Start(&'static str),
    /// `$node_standby_N->stop`.
    Stop(&'static str),
    /// `test_sync_state($node_primary, $expected, $msg, $setting)`; `setting: None` keeps the
    /// previous `synchronous_standby_names`, as the Perl test does when it omits it.
    Check {
        msg: &'static str,
        setting: Option<&'static str>,
        expected: &'static str,
    },
}

#[test]
fn sync_state_transitions_of_007_sync_rep() {
    use Step::*;
    let steps = [
        // Create all the standbys. Their status on the primary is checked to ensure the ordering
        // of each one of them in the WAL sender array of the primary.
        Start("standby1"),
        Start("standby2"),
        Start("standby3"),
        // Check that sync_state is determined correctly when synchronous_standby_names is
        // specified in old syntax.
        Check {
            msg: "old syntax of synchronous_standby_names",
            setting: Some("standby1,standby2"),
            expected: "standby1|1|sync\nstandby2|2|potential\nstandby3|0|async",
        },
        // Check that all the standbys are considered as either sync or potential when * is
        // specified in synchronous_standby_names. Note that standby1 is chosen as sync standby
        // because it's stored in the head of WalSnd array which manages all the standbys though
        // they have the same priority.
        Check {
            msg: "asterisk in synchronous_standby_names",
            setting: Some("*"),
            expected: "standby1|1|sync\nstandby2|1|potential\nstandby3|1|potential",
        },
        // Stop and start standbys to rearrange the order of standbys in WalSnd array. Now, if
        // standbys have the same priority, standby2 is selected preferentially and standby3 is
        // next.
        Stop("standby1"),
        Stop("standby2"),
        Stop("standby3"),
        // Make sure that each standby reports back to the primary in the wanted order.
        Start("standby2"),
        Start("standby3"),
        // Specify 2 as the number of sync standbys. Check that two standbys are in 'sync' state.
        Check {
            msg: "2 synchronous standbys",
            setting: Some("2(standby1,standby2,standby3)"),
            expected: "standby2|2|sync\nstandby3|3|sync",
        },
        // Start standby1
        Start("standby1"),
        // Create standby4 linking to primary
        Start("standby4"),
        // Check that standby1 and standby2 whose names appear earlier in
        // synchronous_standby_names are considered as sync. Also check that standby3 appearing
        // later represents potential, and standby4 is in 'async' state because it's not in the
        // list.
        Check {
            msg: "2 sync, 1 potential, and 1 async",
            setting: None,
            expected: "standby1|1|sync\nstandby2|2|sync\nstandby3|3|potential\nstandby4|0|async",
        },
        // Check that sync_state of each standby is determined correctly when num_sync exceeds
        // the number of names of potential sync standbys specified in synchronous_standby_names.
        Check {
            msg: "num_sync exceeds the num of potential sync standbys",
            setting: Some("6(standby4,standby0,standby3,standby2)"),
            expected: "standby1|0|async\nstandby2|4|sync\nstandby3|3|sync\nstandby4|1|sync",
        },
        // The setting that * comes before another standby name is acceptable but does not make
        // sense in most cases. Check that sync_state is chosen properly even in case of that
        // setting. standby1 is selected as synchronous as it has the highest priority, and is
        // followed by a second standby listed first in the WAL sender array, which is standby2
        // in this case.
        Check {
            msg: "asterisk before another standby name",
            setting: Some("2(standby1,*,standby2)"),
            expected: "standby1|1|sync\nstandby2|2|sync\nstandby3|2|potential\nstandby4|2|potential",
        },
        // Check that the setting of '2(*)' chooses standby2 and standby3 that are stored earlier
        // in WalSnd array as sync standbys.
        Check {
            msg: "multiple standbys having the same priority are chosen as sync",
            setting: Some("2(*)"),
            expected: "standby1|1|potential\nstandby2|1|sync\nstandby3|1|sync\nstandby4|1|potential",
        },
        // Stop Standby3 which is considered in 'sync' state.
        Stop("standby3"),
        // Check that the state of standby1 stored earlier in WalSnd array than standby4 is
        // transited from potential to sync.
        Check {
            msg: "potential standby found earlier in array is promoted to sync",
            setting: None,
            expected: "standby1|1|sync\nstandby2|1|sync\nstandby4|1|potential",
        },
        // Check that standby1 and standby2 are chosen as sync standbys based on their
        // priorities.
        Check {
            msg: "priority-based sync replication specified by FIRST keyword",
            setting: Some("FIRST 2(standby1, standby2)"),
            expected: "standby1|1|sync\nstandby2|2|sync\nstandby4|0|async",
        },
        // Check that all the listed standbys are considered as candidates for sync standbys in
        // a quorum-based sync replication.
        Check {
            msg: "2 quorum and 1 async",
            setting: Some("ANY 2(standby1, standby2)"),
            expected: "standby1|1|quorum\nstandby2|1|quorum\nstandby4|0|async",
        },
        // Start Standby3 which will be considered in 'quorum' state.
        Start("standby3"),
        // Check that the setting of 'ANY 2(*)' chooses all standbys as candidates for quorum
        // sync standbys.
        Check {
            msg: "all standbys are considered as candidates for quorum sync standbys",
            setting: Some("ANY 2(*)"),
            expected: "standby1|1|quorum\nstandby2|1|quorum\nstandby3|1|quorum\nstandby4|1|quorum",
        },
    ];
    let mut primary = WalSndArray::default();
    let mut setting = "";
    let mut checks = 0;
    for step in steps {
        match step {
            Start(name) => primary.start(name),
            Stop(name) => primary.stop(name),
            Check {
                msg,
                setting: new,
                expected,
            } => {
                if let Some(new) = new {
                    setting = new;
                }
                assert_eq!(primary.check_sql(setting), expected, "{msg}");
                checks += 1;
            }
        }
    }
    // 007_sync_rep.pl runs eleven test_sync_state checks.
    assert_eq!(checks, 11);
}
