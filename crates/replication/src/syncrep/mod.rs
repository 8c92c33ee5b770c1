//! Synchronous replication, the primary's side: which standbys a commit waits for, and how
//! far they have confirmed. Modelled on PostgreSQL's `syncrep.c` and `syncrep_gram.y`.
//!
//! A committing session whose commit record is flushed locally waits until the synchronous
//! standby set confirms the record at the session's `synchronous_commit` stage ([`WaitMode`]:
//! write, flush or apply). The standbys never learn which transactions wait: they only report
//! positions ('r' messages), and the primary decides. As in PostgreSQL, the essence is that
//! all logic about waiting and releasing sits on the primary.
//!
//! This module is the pure core of that decision:
//! - [`SyncRepConfig::parse`] reads `synchronous_standby_names` (`[FIRST] k (...)`,
//!   `ANY k (...)`, the legacy list, `*`), with PostgreSQL's grammar and error wording;
//! - [`evaluate`] maps the configuration and a snapshot of every walsender to what
//!   `pg_stat_replication` shows (`sync_priority`, `sync_state`) and to the [`SyncedLsns`]:
//!   for `FIRST k` the minimum over the `k` best candidates, for `ANY k` the k-th largest;
//! - [`ReleasedLsns`] keeps the released positions monotone;
//! - [`SyncRepFallback`] is the optional `synchronous_replication_timeout` decision.
//!
//! Where it runs: the caller (the walsender driver, on every standby reply, and the
//! configuration reload) holds whatever lock guards the walsender table, takes a snapshot,
//! calls [`evaluate`], advances [`ReleasedLsns`] and wakes the waiter queues of the stages that
//! moved. The waiter queue itself (LSN-ordered, one per stage, released as a prefix) lives
//! with the commit path, not here.
//!
//! What it deliberately does not do: hold waiters, read clocks, take locks, or look at the
//! primary's own flush LSN. A commit needs both its local flush and the standbys'
//! confirmation; combining the two is the caller's job, so a standby that reports a position
//! beyond the primary's flush (lockstep ships WAL before flushing it) cannot release a commit
//! early.
//!
//! Invariants: [`evaluate`] is a pure function of its inputs (same snapshot, same answer; no
//! dependence on input order beyond the slot numbers); released LSNs never decrease; with no
//! configuration nothing is synced and every standby is `async`.
//!
//! Failure: parsing returns [`SyncStandbyNamesError`] (42601 for syntax, 22023 for a bad
//! count) and the caller keeps the previous value, as PostgreSQL keeps the old GUC value on
//! a failed reload. [`evaluate`] cannot fail.
//!
//! Tests that pin the hard cases: `tests/sync_rep_007.rs` replays every `sync_state` /
//! `sync_priority` check of PostgreSQL's `src/test/recovery/t/007_sync_rep.pl`, and the
//! tables below cover synced LSNs (minimum, k-th largest, too few candidates, unreported
//! stages, catch-up, stopping, duplicates).

mod names;
mod standbys;
mod timeout;

pub use names::{SYNCHRONOUS_STANDBY_NAMES, SyncRepConfig, SyncRepMethod, SyncStandbyNamesError};
pub use standbys::{
    ReleasedLsns, StandbySyncStatus, SyncRepEvaluation, SyncState, SyncedLsns, WaitMode,
    WalSenderSnapshot, evaluate,
};
pub use timeout::{FallbackAction, SyncRepFallback};

#[cfg(test)]
mod tests;
