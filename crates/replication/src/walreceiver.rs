//! The walreceiver's decisions, as a pure state machine: one [`WalReceiver`] per streaming
//! connection on a standby, and [`plan_reconnect`] for where to start. Modelled on
//! PostgreSQL's `walreceiver.c` (`XLogWalRcvProcessMsg`, `XLogWalRcvWrite`,
//! `XLogWalRcvFlush`, `XLogWalRcvSendReply`, the timeout handling of `WalReceiverMain`) and
//! on the start-point logic of `xlogrecovery.c`, with lockstep's replay rule added.
//!
//! Events in, actions out, time as an argument (see `walsender`):
//!
//! ```text
//!  'w' ──► on_message ──► WriteWal ──► (driver writes) on_written
//!  input drained ──► on_input_drained ──► SendStatus (write), FlushWal
//!                    (driver fsyncs) on_flushed ──► AllowReplay, SendStatus (flush)
//!  'k' ──► on_message ──► SendStatus if replyRequested, AllowReplay if the flush LSN moved
//!  redo ──► on_replayed ──► SendStatus if the record asked for apply feedback (remote_apply)
//!  timer ──► on_tick ──► SendStatus (every wal_receiver_status_interval; ping at half of
//!                        wal_receiver_timeout), Terminate at the timeout
//! ```
//!
//! **Positions.** `received ≥ written ≥ flushed ≥ replayed` (each "first byte not yet ..."),
//! asserted after every event. WAL arrives strictly in order: a message that does not start
//! where the previous one ended is a protocol error, because the standby's WAL must be a
//! byte-for-byte prefix of the primary's.
//!
//! **The replay rule (DESIGN.md decision 4).** The primary ships WAL before flushing it, and
//! announces its flush LSN as `walEnd` in every 'w' and 'k'. Replay may go up to
//! `min(flushed here, highest walEnd seen)`: never past what the primary has made durable
//! (had the primary crashed, that WAL could be gone and replaced), never past what is durable
//! here. [`ReceiverAction::AllowReplay`] publishes the limit whenever it grows; the redo loop
//! must stop there. The flush reported to the primary is not capped: a commit is acknowledged
//! only when it is flushed on the primary too, so an early report releases nothing.
//!
//! **Replies** follow PostgreSQL: after a batch of writes, after a flush, and every
//! `wal_receiver_status_interval`, but none of these if the interval is disabled (`None`,
//! PostgreSQL's 0); always (forced) when the primary asks (`replyRequested`), when a replayed
//! commit asked for apply feedback (`remote_apply`; test 059 of PostgreSQL checks this works
//! with the interval disabled), and as the ping at half of `wal_receiver_timeout`.
//!
//! **Reconnecting** ([`plan_reconnect`]): WAL below the last primary flush LSN this standby
//! learned is durable on the primary and identical there; WAL above it may not be (the primary
//! may have crashed before flushing it, then written different WAL at the same positions). So
//! a standby restarts streaming at `min(local end, last known primary flush)` and discards its
//! local WAL beyond that point; on a new upstream timeline it also stops at the switch point,
//! and if it has already *replayed* past the switch point it cannot follow (a new base backup
//! is needed: "requested timeline N is not a child of this server's history"). The driver
//! must persist [`WalReceiver::primary_flush_lsn`] (e.g. with each flush); if it was lost, pass
//! the replayed LSN instead, which is always at or below it.
//!
//! What it deliberately does not do: write or fsync files, replay WAL, decode messages, send
//! hot standby feedback, or pick segment files (the driver flushes before switching to a new
//! segment, as `XLogWalRcvWrite` does). Driver misuse (positions that go backwards or jump
//! ahead) panics; anything the network sends is an ordinary action or error.

use std::time::{Duration, Instant};

use base::error::{PgError, SqlState, sqlstate};
use base::{Lsn, TimelineId};
use bytes::Bytes;

use crate::messages::PrimaryMessage;
use crate::timeline::{SwitchPoint, TimelineError, TimelineHistory};
use crate::walsender::reached;

/// Settings of the walreceiver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalReceiverConfig {
    /// `wal_receiver_status_interval`; `None` disables unforced replies (PostgreSQL's 0).
    pub status_interval: Option<Duration>,
    /// `wal_receiver_timeout`; `None` disables it (PostgreSQL's 0).
    pub receiver_timeout: Option<Duration>,
}

impl Default for WalReceiverConfig {
    fn default() -> Self {
        // PostgreSQL's defaults.
        WalReceiverConfig {
            status_interval: Some(Duration::from_secs(10)),
            receiver_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Where to START_REPLICATION.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StartPoint {
    pub timeline: TimelineId,
    pub lsn: Lsn,
}

/// Why a walreceiver ends its connection.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    #[error("terminating walreceiver due to timeout")]
    Timeout,
    /// WAL that does not continue the stream (a gap or an overlap).
    #[error("received WAL starting at {got}, expected {expected}")]
    UnexpectedWalStart { got: Lsn, expected: Lsn },
    /// The stream of a historic timeline did not end at its switch point.
    #[error(
        "WAL stream of timeline {timeline} ended at {received}, but the switch to timeline {next} is at {switchpoint}"
    )]
    TimelineEndMismatch {
        timeline: TimelineId,
        received: Lsn,
        next: TimelineId,
        switchpoint: Lsn,
    },
}

impl ReceiverError {
    pub fn to_pg_error(&self) -> PgError {
        match self {
            // ERRCODE_CONNECTION_FAILURE, as PostgreSQL.
            ReceiverError::Timeout => PgError::new(SqlState("08006"), self.to_string()),
            _ => PgError::new(sqlstate::PROTOCOL_VIOLATION, self.to_string()),
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ReceiverAction {
    /// Write `data` at `start` (it continues the previous write), then call
    /// [`WalReceiver::on_written`].
    WriteWal { start: Lsn, data: Bytes },
    /// fsync the WAL written so far, up to `upto`, then call [`WalReceiver::on_flushed`].
    FlushWal { upto: Lsn },
    /// Send a standby status update ('r') with these positions and the wall clock.
    SendStatus {
        write_lsn: Lsn,
        flush_lsn: Lsn,
        apply_lsn: Lsn,
        reply_requested: bool,
    },
    /// Replay may proceed up to `upto` (exclusive).
    AllowReplay { upto: Lsn },
    /// End the connection with this error.
    Terminate(ReceiverError),
}

/// One streaming connection's state machine. See the module documentation.
#[derive(Clone, Debug)]
pub struct WalReceiver {
    config: WalReceiverConfig,
    timeline: TimelineId,
    received: Lsn,
    written: Lsn,
    flushed: Lsn,
    replayed: Lsn,
    flush_requested: Lsn,
    /// The highest `walEnd` seen (or known from before): the primary's flush LSN.
    primary_flush: Lsn,
    replay_limit: Lsn,
    /// (when, write, flush) of the last status update sent.
    last_reply: Option<(Instant, Lsn, Lsn)>,
    last_receive: Instant,
    ping_sent: bool,
    terminated: bool,
}

impl WalReceiver {
    /// A receiver streaming from `start`, where the local WAL ends (after any discard).
    /// `replayed` is the redo position; `primary_flush` the last known primary flush LSN
    /// (from [`plan_reconnect`]).
    pub fn new(
        config: WalReceiverConfig,
        start: StartPoint,
        replayed: Lsn,
        primary_flush: Lsn,
        now: Instant,
    ) -> WalReceiver {
        assert!(replayed <= start.lsn, "replayed beyond the local WAL");
        // Everything already replayed was durable on the primary when it was replayed.
        let primary_flush = primary_flush.max(replayed);
        let r = WalReceiver {
            config,
            timeline: start.timeline,
            received: start.lsn,
            written: start.lsn,
            flushed: start.lsn,
            replayed,
            flush_requested: start.lsn,
            primary_flush,
            replay_limit: start.lsn.min(primary_flush),
            last_reply: None,
            last_receive: now,
            ping_sent: false,
            terminated: false,
        };
        r.check_invariants();
        r
    }

    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    /// End of the WAL received.
    pub fn received_lsn(&self) -> Lsn {
        self.received
    }

    pub fn written_lsn(&self) -> Lsn {
        self.written
    }

    pub fn flushed_lsn(&self) -> Lsn {
        self.flushed
    }

    pub fn replayed_lsn(&self) -> Lsn {
        self.replayed
    }

    /// The highest flush LSN the primary announced; persist it for [`plan_reconnect`].
    pub fn primary_flush_lsn(&self) -> Lsn {
        self.primary_flush
    }

    /// How far replay may go now.
    pub fn replay_limit(&self) -> Lsn {
        self.replay_limit
    }

    fn check_invariants(&self) {
        assert!(
            self.received >= self.written
                && self.written >= self.flushed
                && self.flushed >= self.replayed,
            "walreceiver positions out of order: received {} written {} flushed {} replayed {}",
            self.received,
            self.written,
            self.flushed,
            self.replayed
        );
        assert!(
            self.replayed <= self.replay_limit,
            "replayed {} beyond the replay limit {}",
            self.replayed,
            self.replay_limit
        );
    }

    fn status(&mut self, reply_requested: bool, now: Instant) -> ReceiverAction {
        self.last_reply = Some((now, self.written, self.flushed));
        ReceiverAction::SendStatus {
            write_lsn: self.written,
            flush_lsn: self.flushed,
            apply_lsn: self.replayed,
            reply_requested,
        }
    }

    /// PostgreSQL's `XLogWalRcvSendReply(force = false)`: only with the status interval
    /// enabled, and only if write or flush moved or the interval has passed.
    fn maybe_status(&mut self, now: Instant, actions: &mut Vec<ReceiverAction>) {
        let Some(interval) = self.config.status_interval else {
            return;
        };
        let due = match self.last_reply {
            None => true,
            Some((at, write, flush)) => {
                write != self.written || flush != self.flushed || reached(now, at, interval)
            }
        };
        if due {
            actions.push(self.status(false, now));
        }
    }

    fn maybe_allow_replay(&mut self, actions: &mut Vec<ReceiverAction>) {
        let limit = self.flushed.min(self.primary_flush);
        if limit > self.replay_limit {
            self.replay_limit = limit;
            actions.push(ReceiverAction::AllowReplay { upto: limit });
        }
    }

    /// A message from the primary.
    pub fn on_message(&mut self, msg: PrimaryMessage, now: Instant) -> Vec<ReceiverAction> {
        let mut actions = Vec::new();
        if self.terminated {
            return actions;
        }
        self.last_receive = now;
        self.ping_sent = false;
        match msg {
            PrimaryMessage::XLogData(x) => {
                if x.data_start != self.received {
                    self.terminated = true;
                    actions.push(ReceiverAction::Terminate(
                        ReceiverError::UnexpectedWalStart {
                            got: x.data_start,
                            expected: self.received,
                        },
                    ));
                    return actions;
                }
                self.primary_flush = self.primary_flush.max(x.wal_end);
                if !x.data.is_empty() {
                    self.received = x.end_lsn();
                    actions.push(ReceiverAction::WriteWal {
                        start: x.data_start,
                        data: x.data,
                    });
                }
                self.maybe_allow_replay(&mut actions);
            }
            PrimaryMessage::Keepalive(k) => {
                self.primary_flush = self.primary_flush.max(k.wal_end);
                self.maybe_allow_replay(&mut actions);
                if k.reply_requested {
                    actions.push(self.status(false, now));
                }
            }
        }
        self.check_invariants();
        actions
    }

    /// The driver wrote the received WAL up to `end`. Nothing is sent yet: the write is
    /// reported once the input runs dry ([`WalReceiver::on_input_drained`]).
    pub fn on_written(&mut self, end: Lsn) {
        assert!(
            end >= self.written && end <= self.received,
            "written {end} outside {}..={}",
            self.written,
            self.received
        );
        self.written = end;
        self.check_invariants();
    }

    /// No more input is immediately available: report the writes (`remote_write` waits for
    /// this), then fsync them. PostgreSQL does both when its receive loop runs dry, so a burst
    /// of messages costs one reply and one fsync.
    pub fn on_input_drained(&mut self, now: Instant) -> Vec<ReceiverAction> {
        let mut actions = Vec::new();
        if self.terminated {
            return actions;
        }
        self.maybe_status(now, &mut actions);
        if self.written > self.flush_requested {
            self.flush_requested = self.written;
            actions.push(ReceiverAction::FlushWal { upto: self.written });
        }
        actions
    }

    /// The driver fsynced the WAL up to `end`.
    pub fn on_flushed(&mut self, end: Lsn, now: Instant) -> Vec<ReceiverAction> {
        assert!(
            end >= self.flushed && end <= self.written,
            "flushed {end} outside {}..={}",
            self.flushed,
            self.written
        );
        self.flushed = end;
        self.flush_requested = self.flush_requested.max(end);
        let mut actions = Vec::new();
        self.maybe_allow_replay(&mut actions);
        self.maybe_status(now, &mut actions);
        self.check_invariants();
        actions
    }

    /// Redo replayed WAL up to `end`. `apply_feedback_requested`: a replayed commit record
    /// carried the remote_apply flag, so the primary is waiting for this very report.
    pub fn on_replayed(
        &mut self,
        end: Lsn,
        apply_feedback_requested: bool,
        now: Instant,
    ) -> Vec<ReceiverAction> {
        assert!(
            end >= self.replayed,
            "replay went backwards: {} -> {end}",
            self.replayed
        );
        self.replayed = end;
        self.check_invariants();
        if apply_feedback_requested && !self.terminated {
            vec![self.status(false, now)]
        } else {
            Vec::new()
        }
    }

    /// Time passed: the timeout, the ping at half of it, and the periodic status update.
    pub fn on_tick(&mut self, now: Instant) -> Vec<ReceiverAction> {
        let mut actions = Vec::new();
        if self.terminated {
            return actions;
        }
        if let Some(timeout) = self.config.receiver_timeout {
            if reached(now, self.last_receive, timeout) {
                self.terminated = true;
                actions.push(ReceiverAction::Terminate(ReceiverError::Timeout));
                return actions;
            }
            if !self.ping_sent && reached(now, self.last_receive, timeout / 2) {
                self.ping_sent = true;
                actions.push(self.status(true, now));
                return actions;
            }
        }
        self.maybe_status(now, &mut actions);
        actions
    }

    /// When [`WalReceiver::on_tick`] must run at the latest if nothing else happens.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.terminated {
            return None;
        }
        let timeout = self.config.receiver_timeout.and_then(|t| {
            let wait = if self.ping_sent { t } else { t / 2 };
            self.last_receive.checked_add(wait)
        });
        let status = match (self.config.status_interval, self.last_reply) {
            (Some(interval), Some((at, _, _))) => at.checked_add(interval),
            (Some(_), None) => Some(self.last_receive),
            (None, _) => None,
        };
        match (timeout, status) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The primary ended the stream of a historic timeline, reporting the next timeline and
    /// its switch point. The stream must have stopped exactly there; the returned point is
    /// where to START_REPLICATION next.
    pub fn on_end_of_timeline(
        &mut self,
        next: TimelineId,
        switchpoint: Lsn,
    ) -> Result<StartPoint, ReceiverError> {
        if self.received != switchpoint || next <= self.timeline {
            return Err(ReceiverError::TimelineEndMismatch {
                timeline: self.timeline,
                received: self.received,
                next,
                switchpoint,
            });
        }
        Ok(StartPoint {
            timeline: next,
            lsn: switchpoint,
        })
    }
}

/// What the standby holds, for [`plan_reconnect`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LocalWalState {
    /// The timeline of the newest local WAL.
    pub timeline: TimelineId,
    /// End of the valid local WAL (flushed; a crash loses unflushed bytes).
    pub flushed_end: Lsn,
    pub replayed: Lsn,
    /// The last primary flush LSN learned from the stream, as persisted; the replayed LSN if
    /// none was kept.
    pub primary_flush: Lsn,
}

/// The upstream's answer to IDENTIFY_SYSTEM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UpstreamIdentity {
    pub timeline: TimelineId,
    /// `xlogpos`: the upstream's flush LSN.
    pub flush_lsn: Lsn,
}

/// Why a standby cannot follow its upstream at all (a new base backup is needed).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconnectError {
    #[error("highest timeline {upstream} of the primary is behind recovery timeline {local}")]
    UpstreamTimelineBehind {
        upstream: TimelineId,
        local: TimelineId,
    },
    #[error(transparent)]
    NotAChild(TimelineError),
}

impl ReconnectError {
    pub fn to_pg_error(&self) -> PgError {
        match self {
            ReconnectError::NotAChild(e) => e.to_pg_error(),
            other => PgError::new(sqlstate::INTERNAL_ERROR, other.to_string()),
        }
    }
}

/// The decision of [`plan_reconnect`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ReconnectPlan {
    /// Truncate the local WAL at `discard_from` (if set: everything at and above it goes),
    /// then START_REPLICATION at `start` and build the [`WalReceiver`] with
    /// `primary_flush`.
    Stream {
        start: StartPoint,
        discard_from: Option<Lsn>,
        primary_flush: Lsn,
    },
    /// The upstream is on another timeline: run `TIMELINE_HISTORY timeline` and plan again
    /// with the history.
    FetchHistory { timeline: TimelineId },
    /// The upstream has not yet flushed where this standby must start (a lagging cascading
    /// upstream): retry later.
    WaitForUpstream { start: Lsn, upstream_flush: Lsn },
    /// This standby cannot follow the upstream.
    Diverged(ReconnectError),
}

/// Where a (re)connecting standby starts streaming, and what local WAL it must discard. See
/// "Reconnecting" in the module documentation; `upstream_history` is the history of
/// `upstream.timeline`, needed only when it differs from the local timeline.
///
/// ```
/// use base::{Lsn, TimelineId};
/// use replication::walreceiver::*;
///
/// // The standby holds WAL up to 0/900, but the primary had only announced a flush LSN of
/// // 0/700: the tail may differ from what the primary has now, so it is fetched again.
/// let local = LocalWalState {
///     timeline: TimelineId(1),
///     flushed_end: Lsn(0x900),
///     replayed: Lsn(0x500),
///     primary_flush: Lsn(0x700),
/// };
/// let upstream = UpstreamIdentity { timeline: TimelineId(1), flush_lsn: Lsn(0x800) };
/// assert_eq!(
///     plan_reconnect(&local, &upstream, None),
///     ReconnectPlan::Stream {
///         start: StartPoint { timeline: TimelineId(1), lsn: Lsn(0x700) },
///         discard_from: Some(Lsn(0x700)),
///         primary_flush: Lsn(0x700),
///     }
/// );
/// ```
pub fn plan_reconnect(
    local: &LocalWalState,
    upstream: &UpstreamIdentity,
    upstream_history: Option<&TimelineHistory>,
) -> ReconnectPlan {
    // Replayed WAL was durable on the primary when it was replayed.
    let known_flush = local.primary_flush.max(local.replayed);
    let trusted = local.flushed_end.min(known_flush);
    let discard = |start: Lsn| (local.flushed_end > start).then_some(start);
    if upstream.timeline == local.timeline {
        if trusted > upstream.flush_lsn {
            return ReconnectPlan::WaitForUpstream {
                start: trusted,
                upstream_flush: upstream.flush_lsn,
            };
        }
        return ReconnectPlan::Stream {
            start: StartPoint {
                timeline: local.timeline,
                lsn: trusted,
            },
            discard_from: discard(trusted),
            primary_flush: known_flush,
        };
    }
    if upstream.timeline < local.timeline {
        return ReconnectPlan::Diverged(ReconnectError::UpstreamTimelineBehind {
            upstream: upstream.timeline,
            local: local.timeline,
        });
    }
    let Some(history) = upstream_history.filter(|h| h.timeline() == upstream.timeline) else {
        return ReconnectPlan::FetchHistory {
            timeline: upstream.timeline,
        };
    };
    let fork = match history.switch_point(local.timeline) {
        Ok(SwitchPoint::Historic { at, .. }) => at,
        // The upstream's own timeline equals ours only in the branch above.
        Ok(SwitchPoint::Current) | Err(_) => {
            return ReconnectPlan::Diverged(ReconnectError::NotAChild(TimelineError::NotAChild {
                requested: upstream.timeline,
                local_timeline: local.timeline,
                local_end: local.flushed_end,
                forked_at: None,
            }));
        }
    };
    if local.replayed > fork {
        // Replayed WAL cannot be taken back.
        return ReconnectPlan::Diverged(ReconnectError::NotAChild(TimelineError::NotAChild {
            requested: upstream.timeline,
            local_timeline: local.timeline,
            local_end: local.replayed,
            forked_at: Some(fork),
        }));
    }
    let start = trusted.min(fork);
    if start > upstream.flush_lsn {
        return ReconnectPlan::WaitForUpstream {
            start,
            upstream_flush: upstream.flush_lsn,
        };
    }
    ReconnectPlan::Stream {
        start: StartPoint {
            timeline: history.timeline_of(start),
            lsn: start,
        },
        discard_from: discard(start),
        // WAL up to the fork is durable on the new timeline's primary (it promoted with it);
        // the old primary's flush LSN says nothing about the new one beyond that.
        primary_flush: start,
    }
}

#[cfg(test)]
mod tests;
