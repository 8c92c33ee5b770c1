//! `synchronous_replication_timeout`: an optional, observable way out of PostgreSQL's
//! wait-forever.
//!
//! PostgreSQL waits for the synchronous standbys without a time limit; when the only
//! synchronous standby is gone, commits hang until an operator intervenes (anchors §3.1).
//! MySQL's semi-sync instead reverts to asynchronous after `rpl_semi_sync_source_timeout`,
//! and operators then cannot tell that it did (anchors §3.5). lockstep offers the MySQL
//! behaviour only when asked for (`None` = PostgreSQL's wait-forever, the default), and makes
//! the switch loud: [`SyncRepFallback`] says *when* to degrade and when synchronous waiting is
//! restored; the caller must log both and count the degradations (the struct counts them too,
//! for the metric).
//!
//! What degrading means is the caller's policy, not this module's: typically release every
//! waiter as if confirmed and stop waiting until [`FallbackAction::Restore`]. Nothing here
//! reads a clock: ages and positions are inputs.

use std::time::Duration;

use base::Lsn;

/// What the caller must do after a [`SyncRepFallback`] check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FallbackAction {
    /// Keep the current mode. While synchronous with a waiter present, `recheck_in` says when
    /// the oldest waiter reaches the timeout (the caller's next timer); `None` when no timer
    /// is needed (no timeout configured, nobody waiting, or already degraded).
    Keep { recheck_in: Option<Duration> },
    /// The oldest waiter has waited `waited` ≥ the timeout: switch to asynchronous commits,
    /// release the waiters, and log a WARNING (the commits are durable locally but not
    /// confirmed by the synchronous standbys).
    Degrade { waited: Duration, timeout: Duration },
    /// The synchronous standby set has confirmed everything flushed locally: wait for it
    /// again, and log that synchronous replication is restored.
    Restore,
}

/// The degrade/restore decision, one per primary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SyncRepFallback {
    timeout: Option<Duration>,
    degraded: bool,
    degrade_count: u64,
}

impl SyncRepFallback {
    /// `timeout = None` never degrades (PostgreSQL's behaviour). `Some(Duration::ZERO)`
    /// degrades as soon as anyone waits; map a GUC's "0 = disabled" to `None` before calling.
    pub fn new(timeout: Option<Duration>) -> SyncRepFallback {
        SyncRepFallback {
            timeout,
            degraded: false,
            degrade_count: 0,
        }
    }

    /// A new `synchronous_replication_timeout` on reload. Being degraded is kept: only the
    /// standbys catching up restore synchronous waiting.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether commits currently skip the wait for standbys.
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// How many times synchronous replication was degraded since start (a counter metric).
    pub fn degrade_count(&self) -> u64 {
        self.degrade_count
    }

    /// Checks the oldest waiter. `oldest_waiter_age` is how long the oldest commit still
    /// waiting for standbys has waited, `None` if nobody waits.
    pub fn check_waiters(&mut self, oldest_waiter_age: Option<Duration>) -> FallbackAction {
        if self.degraded {
            return FallbackAction::Keep { recheck_in: None };
        }
        match (self.timeout, oldest_waiter_age) {
            (Some(timeout), Some(waited)) if waited >= timeout => {
                self.degraded = true;
                self.degrade_count += 1;
                FallbackAction::Degrade { waited, timeout }
            }
            (Some(timeout), Some(waited)) => FallbackAction::Keep {
                recheck_in: Some(timeout - waited),
            },
            _ => FallbackAction::Keep { recheck_in: None },
        }
    }

    /// Checks whether a degraded primary may wait again: the synchronous standby set has
    /// confirmed (`synced`, at the stage the caller restores on; flush is the natural choice)
    /// everything flushed locally. Restoring earlier would make the next commit wait for the
    /// standbys' whole backlog, which is the hang the fallback exists to avoid.
    pub fn check_caught_up(&mut self, synced: Option<Lsn>, local_flush: Lsn) -> FallbackAction {
        if self.degraded && synced.is_some_and(|s| s >= local_flush) {
            self.degraded = false;
            FallbackAction::Restore
        } else {
            FallbackAction::Keep { recheck_in: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn decisions() {
        struct Step {
            what: &'static str,
            waiter_age: Option<Duration>,
            caught_up: Option<(Option<Lsn>, Lsn)>,
            want: FallbackAction,
            degraded: bool,
        }
        let keep = |r: Option<Duration>| FallbackAction::Keep { recheck_in: r };
        let steps = [
            Step {
                what: "nobody waits",
                waiter_age: None,
                caught_up: None,
                want: keep(None),
                degraded: false,
            },
            Step {
                what: "a waiter within the timeout gets a timer",
                waiter_age: Some(S(3)),
                caught_up: None,
                want: keep(Some(S(7))),
                degraded: false,
            },
            Step {
                what: "the standby is still behind: nothing to restore",
                waiter_age: None,
                caught_up: Some((Some(Lsn(5)), Lsn(9))),
                want: keep(None),
                degraded: false,
            },
            Step {
                what: "the oldest waiter reaches the timeout",
                waiter_age: Some(S(10)),
                caught_up: None,
                want: FallbackAction::Degrade {
                    waited: S(10),
                    timeout: S(10),
                },
                degraded: true,
            },
            Step {
                what: "degraded: no new degrade while waiters are old",
                waiter_age: Some(S(60)),
                caught_up: None,
                want: keep(None),
                degraded: true,
            },
            Step {
                what: "no synced position at all: stay degraded",
                waiter_age: None,
                caught_up: Some((None, Lsn(9))),
                want: keep(None),
                degraded: true,
            },
            Step {
                what: "standby behind the local flush: stay degraded",
                waiter_age: None,
                caught_up: Some((Some(Lsn(8)), Lsn(9))),
                want: keep(None),
                degraded: true,
            },
            Step {
                what: "standby caught up: restore",
                waiter_age: None,
                caught_up: Some((Some(Lsn(9)), Lsn(9))),
                want: FallbackAction::Restore,
                degraded: false,
            },
        ];
        let mut f = SyncRepFallback::new(Some(S(10)));
        for s in steps {
            let got = match s.caught_up {
                Some((synced, flush)) => f.check_caught_up(synced, flush),
                None => f.check_waiters(s.waiter_age),
            };
            assert_eq!(got, s.want, "{}", s.what);
            assert_eq!(f.is_degraded(), s.degraded, "{}", s.what);
        }
        assert_eq!(f.degrade_count(), 1);
    }

    #[test]
    fn without_a_timeout_waits_forever() {
        let mut f = SyncRepFallback::new(None);
        assert_eq!(
            f.check_waiters(Some(S(86_400 * 365))),
            FallbackAction::Keep { recheck_in: None }
        );
        assert!(!f.is_degraded());
        let mut f = SyncRepFallback::new(Some(Duration::ZERO));
        assert!(matches!(
            f.check_waiters(Some(Duration::ZERO)),
            FallbackAction::Degrade { .. }
        ));
    }
}
