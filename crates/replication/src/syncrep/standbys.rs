//! Which walsenders are synchronous, and how far the synchronous standby set has confirmed
//! WAL: PostgreSQL's `SyncRepGetCandidateStandbys`, `SyncRepGetSyncRecPtr`,
//! `SyncRepGetOldestSyncRecPtr`, `SyncRepGetNthLatestSyncRecPtr`, and the `sync_priority` /
//! `sync_state` columns `pg_stat_get_wal_senders` computes for `pg_stat_replication`.

use base::{Lsn, SyncCommitLevel};

use super::names::{SyncRepConfig, SyncRepMethod};
use crate::walsender::WalSndState;

/// What [`evaluate`] needs to know about one walsender: a snapshot of its shared state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalSenderSnapshot<'a> {
    /// A stable index of the walsender's slot (PostgreSQL's position in the `WalSnd` array).
    /// Among standbys of equal priority the lowest slot is chosen first, as in PostgreSQL
    /// (whose own comment calls this "utterly bogus, since that is arrival order dependent";
    /// 007_sync_rep.pl depends on it). Slots must be distinct.
    pub slot: usize,
    /// The standby's `application_name`, as it appears in `pg_stat_replication`.
    pub application_name: &'a str,
    pub state: WalSndState,
    /// Positions the standby last reported; `Lsn::ZERO` when not reported yet.
    pub write_lsn: Lsn,
    pub flush_lsn: Lsn,
    pub apply_lsn: Lsn,
}

/// `pg_stat_replication.sync_state`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SyncState {
    /// Not listed in `synchronous_standby_names` (priority 0), or not yet streaming-capable.
    Async,
    /// Listed, but not among the synchronous standbys now: it replaces one that fails.
    Potential,
    /// One of the `k` synchronous standbys of a priority (`FIRST`) configuration.
    Sync,
    /// A candidate of a quorum (`ANY`) configuration.
    Quorum,
}

impl SyncState {
    /// The word `pg_stat_replication` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Async => "async",
            SyncState::Potential => "potential",
            SyncState::Sync => "sync",
            SyncState::Quorum => "quorum",
        }
    }
}

/// `sync_priority` and `sync_state` of one walsender.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StandbySyncStatus {
    pub slot: usize,
    /// 0 = asynchronous; in priority mode the position of the first matching name; in quorum
    /// mode 1 for every listed standby.
    pub sync_priority: u32,
    pub sync_state: SyncState,
}

/// The three stages a commit can wait for (PostgreSQL's `SYNC_REP_WAIT_WRITE/FLUSH/APPLY`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum WaitMode {
    /// `synchronous_commit = remote_write`: the standbys wrote the WAL (not yet fsynced).
    Write,
    /// `synchronous_commit = on`: the standbys flushed the WAL.
    Flush,
    /// `synchronous_commit = remote_apply`: the standbys replayed it (visible to their queries).
    Apply,
}

impl WaitMode {
    pub const ALL: [WaitMode; 3] = [WaitMode::Write, WaitMode::Flush, WaitMode::Apply];

    /// The mode a commit at `level` waits in; `None` for `off` and `local`, which never wait
    /// for standbys.
    pub fn for_level(level: SyncCommitLevel) -> Option<WaitMode> {
        match level {
            SyncCommitLevel::Off | SyncCommitLevel::Local => None,
            SyncCommitLevel::RemoteWrite => Some(WaitMode::Write),
            SyncCommitLevel::On => Some(WaitMode::Flush),
            SyncCommitLevel::RemoteApply => Some(WaitMode::Apply),
        }
    }
}

/// How far the synchronous standby set as a whole has confirmed WAL at each stage. `None`: no
/// progress can be claimed at that stage (not enough candidates, or one of the standbys that
/// counts has not reported that stage yet).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SyncedLsns {
    pub write: Option<Lsn>,
    pub flush: Option<Lsn>,
    pub apply: Option<Lsn>,
}

impl SyncedLsns {
    pub fn get(&self, mode: WaitMode) -> Option<Lsn> {
        match mode {
            WaitMode::Write => self.write,
            WaitMode::Flush => self.flush,
            WaitMode::Apply => self.apply,
        }
    }
}

/// The result of [`evaluate`].
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SyncRepEvaluation {
    /// One entry per input walsender, in input order.
    pub standbys: Vec<StandbySyncStatus>,
    /// Slots of the walsenders considered synchronous right now (PostgreSQL's
    /// `SyncRepGetCandidateStandbys` result): in priority mode the `k` best candidates, best
    /// first; in quorum mode every candidate, by slot. Only these standbys' replies can
    /// release waiters in PostgreSQL (`am_sync`).
    pub sync_standbys: Vec<usize>,
    /// The confirmed positions; see [`SyncedLsns`].
    pub synced: SyncedLsns,
}

impl SyncRepEvaluation {
    /// Whether the walsender in `slot` is among the synchronous standbys (PostgreSQL's
    /// `am_sync`).
    pub fn is_sync(&self, slot: usize) -> bool {
        self.sync_standbys.contains(&slot)
    }
}

/// Computes `sync_priority`/`sync_state` for every walsender and the synced LSNs of the
/// synchronous standby set, exactly as PostgreSQL 15 does.
///
/// `config` is `None` when `synchronous_standby_names` is empty (every walsender is then
/// `async` with priority 0, and nothing is synced: commits must not wait at all). On a
/// standby pass `None` too: cascading walsenders are never synchronous (PostgreSQL forces
/// their priority to 0).
///
/// Rules:
/// - priority: `config.priority_of(application_name)`, except that walsenders in `startup`
///   or `backup` state have priority 0 (PostgreSQL sets a walsender's priority only when it
///   starts streaming, so `pg_stat_replication` shows them as `0`/`async`);
/// - candidates: priority > 0, state `streaming` or `stopping` (a `catchup` standby is only
///   `potential`: it counts once it has caught up), and a valid (non-zero) flush LSN;
/// - priority mode: if there are more than `k` candidates, keep the `k` with the lowest
///   priority, ties to the lowest slot; these are `sync`, all other listed standbys
///   `potential`. Synced LSN at each stage = the **minimum** over the kept candidates;
/// - quorum mode: every candidate is `quorum`; synced LSN at each stage = the **k-th
///   largest** value among the candidates;
/// - fewer than `k` candidates: nothing is synced (all `None`), though the candidates still
///   show `sync`/`quorum`. A stage whose computed LSN is 0/0 (some counted standby has not
///   reported it, e.g. `pg_receivewal` never reports apply) is `None`.
pub fn evaluate(
    config: Option<&SyncRepConfig>,
    walsenders: &[WalSenderSnapshot<'_>],
) -> SyncRepEvaluation {
    let Some(config) = config else {
        return SyncRepEvaluation {
            standbys: walsenders
                .iter()
                .map(|w| StandbySyncStatus {
                    slot: w.slot,
                    sync_priority: 0,
                    sync_state: SyncState::Async,
                })
                .collect(),
            sync_standbys: Vec::new(),
            synced: SyncedLsns::default(),
        };
    };

    let priorities: Vec<u32> = walsenders
        .iter()
        .map(|w| match w.state {
            WalSndState::Startup | WalSndState::Backup => 0,
            WalSndState::Catchup | WalSndState::Streaming | WalSndState::Stopping => {
                config.priority_of(w.application_name)
            }
        })
        .collect();

    // Indices into `walsenders` of the candidates, in slot order.
    let mut candidates: Vec<usize> = (0..walsenders.len())
        .filter(|&i| {
            let w = &walsenders[i];
            priorities[i] > 0
                && matches!(w.state, WalSndState::Streaming | WalSndState::Stopping)
                && w.flush_lsn != Lsn::ZERO
        })
        .collect();
    candidates.sort_by_key(|&i| (walsenders[i].slot, i));

    // `num_sync` is at most i32::MAX, so it fits usize on every platform we build for.
    let k = usize::try_from(config.num_sync()).unwrap_or(usize::MAX);
    if config.method() == SyncRepMethod::Priority && candidates.len() > k {
        candidates.sort_by_key(|&i| (priorities[i], walsenders[i].slot, i));
        candidates.truncate(k);
    }

    let synced = if candidates.len() < k {
        SyncedLsns::default()
    } else {
        let positions = |stage: fn(&WalSenderSnapshot<'_>) -> Lsn| -> Vec<Lsn> {
            candidates.iter().map(|&i| stage(&walsenders[i])).collect()
        };
        let pick = |mut lsns: Vec<Lsn>| -> Option<Lsn> {
            let lsn = match config.method() {
                SyncRepMethod::Priority => lsns.iter().copied().min(),
                SyncRepMethod::Quorum => {
                    lsns.sort_unstable_by(|a, b| b.cmp(a));
                    lsns.get(k.saturating_sub(1)).copied()
                }
            };
            lsn.filter(|&l| l != Lsn::ZERO)
        };
        SyncedLsns {
            write: pick(positions(|w| w.write_lsn)),
            flush: pick(positions(|w| w.flush_lsn)),
            apply: pick(positions(|w| w.apply_lsn)),
        }
    };

    let chosen_state = match config.method() {
        SyncRepMethod::Priority => SyncState::Sync,
        SyncRepMethod::Quorum => SyncState::Quorum,
    };
    let standbys = walsenders
        .iter()
        .enumerate()
        .map(|(i, w)| StandbySyncStatus {
            slot: w.slot,
            sync_priority: priorities[i],
            sync_state: if priorities[i] == 0 {
                SyncState::Async
            } else if candidates.contains(&i) {
                chosen_state
            } else {
                SyncState::Potential
            },
        })
        .collect();

    SyncRepEvaluation {
        standbys,
        sync_standbys: candidates.iter().map(|&i| walsenders[i].slot).collect(),
        synced,
    }
}

/// The positions up to which waiters have been released, per stage (PostgreSQL's
/// `WalSndCtl->lsn[mode]`). They never move backwards, even when the synchronous standby set
/// changes to standbys that are further behind: a commit once acknowledged stays so.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReleasedLsns {
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
}

impl ReleasedLsns {
    pub fn get(&self, mode: WaitMode) -> Lsn {
        match mode {
            WaitMode::Write => self.write,
            WaitMode::Flush => self.flush,
            WaitMode::Apply => self.apply,
        }
    }

    /// Raises each stage to `synced` where that is further, and returns the stages that moved
    /// (their waiter queues should be walked from the head).
    pub fn advance(&mut self, synced: &SyncedLsns) -> Vec<WaitMode> {
        let mut moved = Vec::new();
        for mode in WaitMode::ALL {
            let Some(new) = synced.get(mode) else {
                continue;
            };
            let slot = match mode {
                WaitMode::Write => &mut self.write,
                WaitMode::Flush => &mut self.flush,
                WaitMode::Apply => &mut self.apply,
            };
            if new > *slot {
                *slot = new;
                moved.push(mode);
            }
        }
        moved
    }
}
