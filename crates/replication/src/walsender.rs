//! The walsender's decisions, as a pure state machine: one [`WalSender`] per replication
//! connection on the primary (or on a cascading standby). Modelled on PostgreSQL's
//! `walsender.c` (`WalSndLoop`, `XLogSendPhysical`, `ProcessStandbyReplyMessage`,
//! `WalSndKeepaliveIfNecessary`, `WalSndCheckTimeOut`, `WalSndDone`), with the differences
//! lockstep's design needs (below).
//!
//! Events in, actions out: the driver (a tokio task owning the socket and the WAL reader)
//! feeds what happened — local WAL progress, standby messages, the passage of time — and
//! executes the [`SenderAction`]s it gets back, in order. The machine reads no clock, socket
//! or file; every time is an `Instant` argument, so tests run without sleeping.
//!
//! ```text
//!   START_REPLICATION ──► start_streaming ──► Catchup ──(standby wrote what existed when
//!                                                │      the sender first caught up)──► Streaming
//!                                                └────────── on_shutdown ──► Stopping ──► Done
//!   on_local_wal / on_standby_message / poll(now) ──► SendWal, SendKeepalive, StandbyProgressed,
//!                                                     AdvanceSlot, StateChanged, EndOfTimeline,
//!                                                     Done, Terminate
//! ```
//!
//! **What it sends.** WAL from the last sent position up to the local *write* LSN (DESIGN.md
//! decision 4: lockstep ships WAL as soon as it is written, so the standby's flush overlaps
//! the primary's), in chunks of at most `max_send_size` bytes, never crossing the end of a
//! historic timeline. A chunk comes from the in-memory WAL buffer when it starts at or above
//! the buffer's oldest LSN, else from segment files (then it stops at the segment's end and at
//! the buffer's start, so the next chunk can use the buffer). Every 'w' and 'k' carries the
//! local **flush** LSN as `walEnd` (see `messages`); when the flush LSN moves past the last
//! announced one and no WAL is waiting to be sent, a keepalive announces it, because the
//! standby may replay only up to it.
//!
//! **Catchup → streaming.** PostgreSQL moves to `streaming` as soon as the sender has sent
//! everything flushed, before the standby has written any of it. lockstep waits until the
//! standby has *written* everything that existed when the sender first caught up: only then
//! is the standby a useful synchronous standby (`syncrep` counts only `streaming` ones), and
//! the target is fixed when first reached, so a busy primary cannot keep moving it away.
//!
//! **Timeouts.** With `wal_sender_timeout` set: after half of it without any message from the
//! standby, one keepalive with `replyRequested`; after all of it, [`SenderError::Timeout`]
//! (PostgreSQL's "terminating walsender process due to replication timeout").
//!
//! **Trust in the standby's reports.** Reported positions above what this connection has sent
//! are clamped to the sent position. A standby can legitimately hold WAL it received before
//! (PostgreSQL's walreceiver reports its replay position right after connecting), but with
//! ship-at-write that old WAL may differ from ours (the primary may have crashed before
//! flushing it and written something else since); counting it would release commits the
//! standby does not have. Once the standby has received our bytes, its reports are ours.
//!
//! Invariants: `sent_lsn` only grows and never passes the local write LSN (or a historic
//! timeline's end); the standby positions stored are ≤ `sent_lsn`; the announced flush LSN
//! only grows. Violations by the driver (local positions going backwards, write below flush)
//! are bugs and panic (`assert!`), as PostgreSQL's `Assert`s would; nothing the standby sends
//! can panic.
//!
//! What it deliberately does not do: read WAL, talk to the network, choose synchronous
//! standbys (`syncrep::evaluate` does, on the driver's `StandbyProgressed`), or run
//! replication commands.

use std::time::{Duration, Instant};

use base::error::{PgError, SqlState, sqlstate};
use base::{Lsn, TimelineId};

use crate::messages::{HotStandbyFeedback, MAX_SEND_SIZE, PgTimestamp, StandbyMessage};
use crate::timeline::StreamPlan;

/// The states of a walsender, with PostgreSQL's names (`WalSndState`,
/// `pg_stat_replication.state`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WalSndState {
    /// Connected; running replication commands (IDENTIFY_SYSTEM, ...), not streaming yet.
    Startup,
    /// Sending a base backup.
    Backup,
    /// Streaming, but the standby has not caught up with the primary yet.
    Catchup,
    /// Streaming and caught up: eligible as a synchronous standby.
    Streaming,
    /// The primary is shutting down; sending what is left before the walsender exits.
    Stopping,
}

impl WalSndState {
    /// The word `pg_stat_replication.state` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            WalSndState::Startup => "startup",
            WalSndState::Backup => "backup",
            WalSndState::Catchup => "catchup",
            WalSndState::Streaming => "streaming",
            WalSndState::Stopping => "stopping",
        }
    }
}

/// Settings of one walsender.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalSenderConfig {
    /// `wal_sender_timeout`; `None` disables it (PostgreSQL's 0).
    pub wal_sender_timeout: Option<Duration>,
    /// The largest XLogData payload; see [`MAX_SEND_SIZE`] for why it is bounded.
    pub max_send_size: u64,
    /// `wal_segment_size`: a chunk read from files never crosses a segment boundary (one
    /// file per read).
    pub segment_size: u64,
}

impl Default for WalSenderConfig {
    fn default() -> Self {
        WalSenderConfig {
            // PostgreSQL's default.
            wal_sender_timeout: Some(Duration::from_secs(60)),
            max_send_size: MAX_SEND_SIZE,
            segment_size: 16 << 20,
        }
    }
}

/// Where the driver finds a chunk of WAL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WalSource {
    /// The in-memory WAL buffer (recently written WAL).
    Buffer,
    /// Segment files on disk (the standby lags behind the buffer).
    SegmentFile,
}

/// The local WAL positions the sender streams from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LocalWal {
    /// Written here (to the OS): what may be sent. On a cascading standby: what it received
    /// and wrote.
    pub write_lsn: Lsn,
    /// Flushed here: what the standby may replay (`walEnd`).
    pub flush_lsn: Lsn,
    /// The oldest LSN still held in the in-memory WAL buffer; WAL below it is read from
    /// segment files.
    pub buffer_start_lsn: Lsn,
}

/// Why a walsender ends its connection.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// No message from the standby for `wal_sender_timeout`.
    #[error("terminating walsender process due to replication timeout")]
    Timeout,
    /// A standby message arrived that is not valid on a physical replication stream.
    #[error("unexpected standby message while in state {state}")]
    UnexpectedMessage { state: &'static str },
}

impl SenderError {
    /// As the log (and, where PostgreSQL sends one, the client) sees it. The timeout carries
    /// 08006 (connection failure): PostgreSQL logs it as a COMMERROR without telling the
    /// standby, which the driver should copy.
    pub fn to_pg_error(&self) -> PgError {
        match self {
            SenderError::Timeout => PgError::new(SqlState("08006"), self.to_string()),
            SenderError::UnexpectedMessage { .. } => {
                PgError::new(sqlstate::PROTOCOL_VIOLATION, self.to_string())
            }
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SenderAction {
    /// Read WAL `start..end` from `source` and send it as one XLogData ('w') with
    /// `dataStart = start`, `walEnd = wal_end` and the current wall clock as `sendTime`.
    SendWal {
        start: Lsn,
        end: Lsn,
        source: WalSource,
        wal_end: Lsn,
    },
    /// Send a primary keepalive ('k').
    SendKeepalive { wal_end: Lsn, reply_requested: bool },
    /// `pg_stat_replication.state` changed. PostgreSQL logs catchup→streaming at DEBUG1
    /// (`"<name>" has now caught up with upstream server`); the sync standby set may change,
    /// so re-run `syncrep::evaluate`.
    StateChanged { from: WalSndState, to: WalSndState },
    /// The standby reported new positions (already clamped to what was sent): publish them
    /// for `pg_stat_replication`, re-run `syncrep::evaluate` and release waiters.
    StandbyProgressed {
        write_lsn: Lsn,
        flush_lsn: Lsn,
        apply_lsn: Lsn,
    },
    /// Advance the physical slot's `restart_lsn` to the standby's flush LSN (PostgreSQL's
    /// `PhysicalConfirmReceivedLocation`): WAL below it is no longer needed by this standby.
    AdvanceSlot { restart_lsn: Lsn },
    /// Hot standby feedback arrived; hold back cleanup accordingly (slot or process xmin).
    HotStandbyFeedback(HotStandbyFeedback),
    /// A historic timeline has been sent up to its end: send CopyDone, wait for the
    /// standby's CopyDone, then send the result set (`next_timeline`, `switchpoint`).
    EndOfTimeline {
        next_timeline: TimelineId,
        switchpoint: Lsn,
    },
    /// Shutting down and the standby confirmed everything: end the stream and exit.
    Done,
    /// End the connection with this error.
    Terminate(SenderError),
}

/// What `pg_stat_replication` shows for this walsender (lags aside).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalSenderStat {
    pub state: WalSndState,
    pub sent_lsn: Lsn,
    pub write_lsn: Lsn,
    pub flush_lsn: Lsn,
    pub replay_lsn: Lsn,
    /// The standby's clock in its last status update.
    pub reply_time: Option<PgTimestamp>,
}

/// One walsender's state machine. See the module documentation.
#[derive(Clone, Debug)]
pub struct WalSender {
    config: WalSenderConfig,
    state: WalSndState,
    timeline: TimelineId,
    /// The next byte to send ("sentPtr").
    sent_lsn: Lsn,
    /// For a historic timeline: where it ends and which timeline follows.
    end_of_timeline: Option<(Lsn, TimelineId)>,
    timeline_ended: bool,
    local: LocalWal,
    /// The highest `walEnd` sent so far.
    announced_flush: Lsn,
    write_lsn: Lsn,
    flush_lsn: Lsn,
    apply_lsn: Lsn,
    reply_time: Option<PgTimestamp>,
    uses_slot: bool,
    slot_restart_lsn: Lsn,
    /// When the last message from the standby arrived (or streaming started).
    last_receive: Instant,
    /// A keepalive with replyRequested is outstanding.
    ping_sent: bool,
    /// catchup → streaming happens once the standby has written up to here.
    catchup_target: Option<Lsn>,
    done: bool,
}

impl WalSender {
    /// A walsender for a new replication connection, in `startup` state.
    pub fn new(config: WalSenderConfig, now: Instant) -> WalSender {
        assert!(config.max_send_size > 0, "max_send_size must be positive");
        assert!(config.segment_size > 0, "segment_size must be positive");
        WalSender {
            config,
            state: WalSndState::Startup,
            timeline: TimelineId::FIRST,
            sent_lsn: Lsn::ZERO,
            end_of_timeline: None,
            timeline_ended: false,
            local: LocalWal {
                write_lsn: Lsn::ZERO,
                flush_lsn: Lsn::ZERO,
                buffer_start_lsn: Lsn::ZERO,
            },
            announced_flush: Lsn::ZERO,
            write_lsn: Lsn::ZERO,
            flush_lsn: Lsn::ZERO,
            apply_lsn: Lsn::ZERO,
            reply_time: None,
            uses_slot: false,
            slot_restart_lsn: Lsn::ZERO,
            last_receive: now,
            ping_sent: false,
            catchup_target: None,
            done: false,
        }
    }

    pub fn state(&self) -> WalSndState {
        self.state
    }

    /// The timeline being streamed.
    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    pub fn sent_lsn(&self) -> Lsn {
        self.sent_lsn
    }

    pub fn stat(&self) -> WalSenderStat {
        WalSenderStat {
            state: self.state,
            sent_lsn: self.sent_lsn,
            write_lsn: self.write_lsn,
            flush_lsn: self.flush_lsn,
            replay_lsn: self.apply_lsn,
            reply_time: self.reply_time,
        }
    }

    fn set_state(&mut self, to: WalSndState, actions: &mut Vec<SenderAction>) {
        if self.state != to {
            actions.push(SenderAction::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    /// BASE_BACKUP started on this connection (`pg_stat_replication` shows `backup`).
    pub fn begin_backup(&mut self) -> Vec<SenderAction> {
        let mut actions = Vec::new();
        self.set_state(WalSndState::Backup, &mut actions);
        actions
    }

    /// START_REPLICATION was accepted (`plan` from
    /// [`crate::timeline::TimelineHistory::plan_start_replication`]): enter `catchup` and
    /// stream from `plan.start`. `uses_slot`: a physical slot is attached, so the standby's
    /// flush LSN advances its `restart_lsn`.
    pub fn start_streaming(
        &mut self,
        plan: StreamPlan,
        local: LocalWal,
        uses_slot: bool,
        now: Instant,
    ) -> Vec<SenderAction> {
        assert!(local.write_lsn >= local.flush_lsn, "write below flush");
        self.timeline = plan.timeline;
        self.sent_lsn = plan.start;
        self.end_of_timeline = plan.end_of_timeline;
        self.timeline_ended = false;
        self.local = local;
        self.uses_slot = uses_slot;
        self.last_receive = now;
        self.ping_sent = false;
        self.catchup_target = None;
        let mut actions = Vec::new();
        self.set_state(WalSndState::Catchup, &mut actions);
        actions.extend(self.poll(now));
        actions
    }

    /// The local WAL moved on. Positions never go backwards (a crash ends the walsender).
    pub fn on_local_wal(&mut self, local: LocalWal, now: Instant) -> Vec<SenderAction> {
        assert!(local.write_lsn >= local.flush_lsn, "write below flush");
        assert!(
            local.write_lsn >= self.local.write_lsn && local.flush_lsn >= self.local.flush_lsn,
            "local WAL positions went backwards: {:?} -> {:?}",
            self.local,
            local
        );
        self.local = local;
        self.poll(now)
    }

    /// The primary is shutting down: send what is left, then [`SenderAction::Done`].
    pub fn on_shutdown(&mut self, now: Instant) -> Vec<SenderAction> {
        let mut actions = Vec::new();
        if matches!(self.state, WalSndState::Catchup | WalSndState::Streaming) {
            self.set_state(WalSndState::Stopping, &mut actions);
        }
        actions.extend(self.poll(now));
        actions
    }

    /// A CopyData message from the standby.
    pub fn on_standby_message(&mut self, msg: StandbyMessage, now: Instant) -> Vec<SenderAction> {
        let mut actions = Vec::new();
        if !matches!(
            self.state,
            WalSndState::Catchup | WalSndState::Streaming | WalSndState::Stopping
        ) {
            actions.push(SenderAction::Terminate(SenderError::UnexpectedMessage {
                state: self.state.as_str(),
            }));
            return actions;
        }
        self.last_receive = now;
        self.ping_sent = false;
        match msg {
            StandbyMessage::StatusUpdate(s) => {
                // See "Trust in the standby's reports" in the module documentation.
                let clamp = |l: Lsn| l.min(self.sent_lsn);
                let (write, flush, apply) =
                    (clamp(s.write_lsn), clamp(s.flush_lsn), clamp(s.apply_lsn));
                self.reply_time = Some(s.send_time);
                if (write, flush, apply) != (self.write_lsn, self.flush_lsn, self.apply_lsn) {
                    self.write_lsn = write;
                    self.flush_lsn = flush;
                    self.apply_lsn = apply;
                    actions.push(SenderAction::StandbyProgressed {
                        write_lsn: write,
                        flush_lsn: flush,
                        apply_lsn: apply,
                    });
                }
                if self.uses_slot && flush > self.slot_restart_lsn {
                    self.slot_restart_lsn = flush;
                    actions.push(SenderAction::AdvanceSlot { restart_lsn: flush });
                }
                if self.state == WalSndState::Catchup
                    && self.catchup_target.is_some_and(|t| write >= t)
                {
                    self.set_state(WalSndState::Streaming, &mut actions);
                }
                if s.reply_requested {
                    actions.push(self.keepalive(false));
                }
            }
            StandbyMessage::HotStandbyFeedback(h) => {
                actions.push(SenderAction::HotStandbyFeedback(h));
            }
        }
        actions.extend(self.poll(now));
        actions
    }

    fn keepalive(&mut self, reply_requested: bool) -> SenderAction {
        self.announced_flush = self.announced_flush.max(self.local.flush_lsn);
        SenderAction::SendKeepalive {
            wal_end: self.announced_flush,
            reply_requested,
        }
    }

    /// Where sending must stop for now: the local write LSN, or a historic timeline's end.
    fn send_limit(&self) -> Lsn {
        match self.end_of_timeline {
            Some((end, _)) => end.min(self.local.write_lsn),
            None => self.local.write_lsn,
        }
    }

    /// The next chunk to send, if any: `start..end` and its source.
    fn next_chunk(&self) -> Option<(Lsn, Lsn, WalSource)> {
        let start = self.sent_lsn;
        let limit = self.send_limit();
        if start >= limit {
            return None;
        }
        let mut end = limit.min(Lsn(start.0.saturating_add(self.config.max_send_size)));
        let source = if start >= self.local.buffer_start_lsn {
            WalSource::Buffer
        } else {
            let segment_end = (start.0 / self.config.segment_size)
                .saturating_add(1)
                .saturating_mul(self.config.segment_size);
            end = end.min(Lsn(segment_end)).min(self.local.buffer_start_lsn);
            WalSource::SegmentFile
        };
        Some((start, end, source))
    }

    /// The sender's main step: call after every event batch and whenever the connection can
    /// take more data. Returns at most one chunk of WAL (so the driver reads replies between
    /// chunks), plus keepalives, timeouts and endings that are due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<SenderAction> {
        let mut actions = Vec::new();
        if self.done
            || !matches!(
                self.state,
                WalSndState::Catchup | WalSndState::Streaming | WalSndState::Stopping
            )
        {
            return actions;
        }
        if let Some(timeout) = self.config.wal_sender_timeout
            && reached(now, self.last_receive, timeout)
        {
            self.done = true;
            actions.push(SenderAction::Terminate(SenderError::Timeout));
            return actions;
        }
        if self.timeline_ended {
            return actions;
        }

        if let Some((start, end, source)) = self.next_chunk() {
            self.sent_lsn = end;
            self.announced_flush = self.announced_flush.max(self.local.flush_lsn);
            actions.push(SenderAction::SendWal {
                start,
                end,
                source,
                wal_end: self.announced_flush,
            });
        }
        let caught_up = self.sent_lsn >= self.send_limit();
        if caught_up && self.catchup_target.is_none() {
            self.catchup_target = Some(self.sent_lsn);
            // A standby that had already written it (it started at our end) streams at once.
            if self.state == WalSndState::Catchup && self.write_lsn >= self.sent_lsn {
                self.set_state(WalSndState::Streaming, &mut actions);
            }
        }

        if let Some((end, next)) = self.end_of_timeline
            && self.sent_lsn >= end
        {
            self.timeline_ended = true;
            actions.push(SenderAction::EndOfTimeline {
                next_timeline: next,
                switchpoint: end,
            });
            return actions;
        }

        if caught_up && self.local.flush_lsn > self.announced_flush {
            // The flush LSN moved after the WAL was sent: the standby needs it to replay.
            actions.push(self.keepalive(false));
        }

        if self.state == WalSndState::Stopping && caught_up {
            // PostgreSQL's WalSndDone: done once the standby confirmed all we sent (its flush
            // if it reports one, else its write), and everything sent is flushed here.
            let replicated = if self.flush_lsn != Lsn::ZERO {
                self.flush_lsn
            } else {
                self.write_lsn
            };
            if replicated >= self.sent_lsn && self.local.flush_lsn >= self.sent_lsn {
                self.done = true;
                actions.push(SenderAction::Done);
                return actions;
            }
            if !self.ping_sent {
                self.ping_sent = true;
                actions.push(self.keepalive(true));
            }
        }

        if let Some(timeout) = self.config.wal_sender_timeout
            && !self.ping_sent
            && reached(now, self.last_receive, timeout / 2)
        {
            self.ping_sent = true;
            actions.push(self.keepalive(true));
        }
        actions
    }

    /// When the driver must call [`WalSender::poll`] at the latest if nothing else happens:
    /// the keepalive ping at half the timeout, then the timeout itself. `None`: only events
    /// can produce new actions.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.config.wal_sender_timeout?;
        if self.done
            || !matches!(
                self.state,
                WalSndState::Catchup | WalSndState::Streaming | WalSndState::Stopping
            )
        {
            return None;
        }
        let wait = if self.ping_sent { timeout } else { timeout / 2 };
        // An Instant too far in the future to represent: no deadline.
        self.last_receive.checked_add(wait)
    }

    /// Whether the driver may let the WAL writer send the WAL that follows `sent_lsn` itself
    /// (the walsender crate's direct send): streaming the current timeline, caught up, not
    /// stopping.
    pub fn direct_send_allowed(&self) -> bool {
        self.state == WalSndState::Streaming
            && !self.done
            && !self.timeline_ended
            && self.end_of_timeline.is_none()
            && self.next_chunk().is_none()
    }

    /// WAL up to `end` was sent on this sender's behalf, announcing `wal_end` as the flush
    /// LSN; `local` are the local positions now. The sender continues from `end`.
    pub fn sent_directly(&mut self, local: LocalWal, end: Lsn, wal_end: Lsn) {
        // Whoever sent it had written it: the write LSN covers it even if `local` was read
        // a moment before the position was published.
        self.local.write_lsn = self.local.write_lsn.max(local.write_lsn).max(end);
        self.local.flush_lsn = self.local.flush_lsn.max(local.flush_lsn);
        self.local.buffer_start_lsn = self.local.buffer_start_lsn.max(local.buffer_start_lsn);
        self.sent_lsn = self.sent_lsn.max(end);
        self.announced_flush = self.announced_flush.max(wal_end);
    }

    /// Whether the driver should call [`WalSender::poll`] again right away (WAL is waiting
    /// to be sent).
    pub fn has_pending_wal(&self) -> bool {
        !self.done && !self.timeline_ended && self.next_chunk().is_some()
    }
}

/// Whether `wait` has passed since `since`. A wait too long to represent never passes (a
/// configured timeout of centuries is "disabled", not a panic).
pub(crate) fn reached(now: Instant, since: Instant, wait: Duration) -> bool {
    since
        .checked_add(wait)
        .is_some_and(|deadline| now >= deadline)
}

#[cfg(test)]
mod tests;
