//! Synchronous replication release: from the walsenders' reported positions to the remote
//! visibility watermarks. Modelled on PostgreSQL's `SyncRepReleaseWaiters`.
//!
//! Where it runs: [`crate::WalSndCtl`] calls [`remote_watermarks`] under its sync lock on
//! every standby reply, walsender state change or exit, local flush advance and reload, then
//! raises the `RemoteWrite`/`On`/`RemoteApply` watermarks through
//! `TxnManager::advance_watermarks`, which wakes the commits they cover (LSN order, as
//! `CommitWaiters` releases a prefix per level).
//!
//! Invariants: a remote watermark never passes the local flush LSN (lockstep ships WAL
//! before flushing it, so a standby may confirm more than the primary has flushed), nor what
//! the synchronous standby set confirmed at that stage, unless synchronous replication is
//! off (empty `synchronous_standby_names`: the remote levels are the local flush, as in
//! PostgreSQL) or degraded by `synchronous_replication_timeout`. Released LSNs only grow.
//!
//! What it deliberately does not do: choose standbys (`replication::syncrep::evaluate`
//! does), hold waiters, or read clocks. It is a pure function, unit-tested below.

use base::{Lsn, SyncCommitLevel};
use replication::syncrep::{
    ReleasedLsns, SyncRepConfig, SyncRepEvaluation, WaitMode, WalSenderSnapshot, evaluate,
};

/// The remote levels, in watermark order.
pub const REMOTE_LEVELS: [SyncCommitLevel; 3] = [
    SyncCommitLevel::RemoteWrite,
    SyncCommitLevel::On,
    SyncCommitLevel::RemoteApply,
];

/// New values for the remote watermarks (`RemoteWrite`, `On`, `RemoteApply`), and the
/// evaluation (for `pg_stat_replication`). `released` is advanced in place.
pub fn remote_watermarks(
    config: Option<&SyncRepConfig>,
    walsenders: &[WalSenderSnapshot<'_>],
    released: &mut ReleasedLsns,
    local_flush: Lsn,
    degraded: bool,
) -> (SyncRepEvaluation, [Lsn; 3]) {
    let ev = evaluate(config, walsenders);
    if config.is_none() || degraded {
        return (ev, [local_flush; 3]);
    }
    released.advance(&ev.synced);
    let mut out = [Lsn::ZERO; 3];
    for (i, level) in REMOTE_LEVELS.iter().enumerate() {
        let mode = WaitMode::for_level(*level).unwrap_or(WaitMode::Flush);
        out[i] = released.get(mode).min(local_flush);
    }
    (ev, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication::walsender::WalSndState;

    fn snap(slot: usize, name: &str, w: u64, f: u64, a: u64) -> WalSenderSnapshot<'_> {
        WalSenderSnapshot {
            slot,
            application_name: name,
            state: WalSndState::Streaming,
            write_lsn: Lsn(w),
            flush_lsn: Lsn(f),
            apply_lsn: Lsn(a),
        }
    }

    #[test]
    fn empty_config_follows_local_flush() {
        let mut r = ReleasedLsns::default();
        let (_, w) = remote_watermarks(None, &[], &mut r, Lsn(500), false);
        assert_eq!(w, [Lsn(500); 3]);
    }

    #[test]
    fn capped_by_local_flush_and_by_standby() {
        let cfg = SyncRepConfig::parse("rcv1").expect("parse");
        let mut r = ReleasedLsns::default();
        // The standby confirmed beyond the local flush (ship-at-write): capped at 300.
        let s = [snap(0, "rcv1", 900, 800, 0)];
        let (_, w) = remote_watermarks(cfg.as_ref(), &s, &mut r, Lsn(300), false);
        assert_eq!(w[0], Lsn(300));
        assert_eq!(w[1], Lsn(300));
        // Apply never reported (pg_receivewal): nothing released at remote_apply.
        assert_eq!(w[2], Lsn(0));
        // Local flush ahead of the standby: the standby caps.
        let (_, w) = remote_watermarks(cfg.as_ref(), &s, &mut r, Lsn(2000), false);
        assert_eq!(w[0], Lsn(900));
        assert_eq!(w[1], Lsn(800));
    }

    #[test]
    fn no_standby_releases_nothing_until_degraded() {
        let cfg = SyncRepConfig::parse("FIRST 1 (a, b)").expect("parse");
        let mut r = ReleasedLsns::default();
        let s = [snap(0, "other", 900, 900, 900)];
        let (ev, w) = remote_watermarks(cfg.as_ref(), &s, &mut r, Lsn(500), false);
        assert_eq!(w, [Lsn(0); 3]);
        assert!(!ev.is_sync(0));
        let (_, w) = remote_watermarks(cfg.as_ref(), &s, &mut r, Lsn(500), true);
        assert_eq!(w, [Lsn(500); 3]);
    }

    #[test]
    fn any_quorum_takes_kth_largest() {
        let cfg = SyncRepConfig::parse("ANY 2 (a, b, c)").expect("parse");
        let mut r = ReleasedLsns::default();
        let s = [
            snap(0, "a", 300, 300, 0),
            snap(1, "b", 100, 100, 0),
            snap(2, "c", 200, 200, 0),
        ];
        let (_, w) = remote_watermarks(cfg.as_ref(), &s, &mut r, Lsn(1000), false);
        assert_eq!(w[1], Lsn(200));
        // Released LSNs never go back even if a standby disappears.
        let (_, w) = remote_watermarks(cfg.as_ref(), &s[..1], &mut r, Lsn(1000), false);
        assert_eq!(w[1], Lsn(200));
    }
}
