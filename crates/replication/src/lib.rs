//! The pure, socket-free parts of lockstep's streaming replication.
//!
//! lockstep ships WAL from a primary to its standbys over PostgreSQL's streaming replication
//! protocol, and acknowledges a commit only when the synchronous standby set has confirmed
//! it. Everything in this crate is the *decision* part of that: message layouts, command
//! grammar, which standbys are synchronous and how far they have confirmed, timeline
//! arithmetic, connection strings, and what a walsender or walreceiver should do next. The
//! async drivers (tokio tasks owning sockets, WAL files and timers) live elsewhere and call
//! in here; nothing here reads a clock, a socket or a file, so every rule is tested with
//! plain function calls, without sleeps.
//!
//! | module | PostgreSQL counterpart | what it decides |
//! |---|---|---|
//! | [`messages`] | protocol.sgml, `walsender.c`/`walreceiver.c` message code | 'w' 'k' 'r' 'h' byte layouts; `walEnd` = the primary's flush LSN |
//! | [`commands`] | `repl_gram.y`, `repl_scanner.l`, `basebackup.c` options | IDENTIFY_SYSTEM, START_REPLICATION, BASE_BACKUP, slots, SHOW, TIMELINE_HISTORY |
//! | [`syncrep`] | `syncrep.c`, `syncrep_gram.y` | `synchronous_standby_names`; sync_state/sync_priority; synced LSNs per stage |
//! | [`timeline`] | `timeline.c`, parts of `walsender.c`/`xlogrecovery.c` | history files; which timeline an LSN is on; switch points |
//! | [`conninfo`] | libpq `fe-connect.c` | `primary_conninfo` parsing, checking and quoting |
//! | [`walsender`] | `walsender.c` | what to send next, keepalives, timeouts, catchup → streaming |
//! | [`walreceiver`] | `walreceiver.c` | when to reply and fsync, how far replay may go, where to restart |
//! | [`fuzzing`] | — | one entry point that runs every decoder, for cargo-fuzz and CI |
//!
//! Conventions: LSNs are [`base::Lsn`] and name the first byte *not yet* done; `Lsn::ZERO`
//! means "not reported"; positions are named `sent_lsn`, `write_lsn`, `flush_lsn`,
//! `replay_lsn` as in `pg_stat_replication`. Client-facing errors are [`base::PgError`]s with
//! PostgreSQL's SQLSTATE and wording (each module's error type has a `to_pg_error`). Input
//! from the network or from users never panics; a driver that breaks a state machine's
//! documented preconditions (positions going backwards) hits an `assert!`, on in release, as
//! PostgreSQL's `Assert` would.
//!
//! # For driver authors
//!
//! - **A commit needs two things.** Release a waiter at commit LSN `L` and stage `mode` only
//!   when `L <= local flush LSN` *and* `L <= ReleasedLsns::get(mode)`. Because lockstep ships
//!   WAL before flushing it, a standby can confirm WAL the primary has not flushed yet; the
//!   synced LSNs alone are not enough (`syncrep` deliberately knows nothing of the local
//!   flush).
//! - **When to re-run [`syncrep::evaluate`]:** on every `SenderAction::StandbyProgressed`
//!   and `StateChanged`, when a walsender exits (drop it from the snapshot: its waiters keep
//!   waiting unless a potential standby takes over, as in PostgreSQL), and on reload of
//!   `synchronous_standby_names`. If the configuration becomes empty (`parse` gives
//!   `Ok(None)`), release every waiter, as PostgreSQL's checkpointer does. Keep the previous
//!   value when a new one fails to parse.
//! - **Walsender loop:** feed each event to the [`walsender::WalSender`], execute the
//!   returned actions in order, and call `poll` again while `has_pending_wal()` (one chunk
//!   per call, so standby replies are read between chunks); otherwise sleep until the next
//!   event or `next_deadline()`. Call `on_local_wal` whenever the WAL write or flush LSN
//!   moves (the flush LSN must reach standbys even when no new WAL is written).
//!   `SendWal::wal_end` goes into the message as is, even when it is below `end`.
//! - **Walreceiver loop:** build the receiver from [`walreceiver::plan_reconnect`] (truncate
//!   the local WAL at `discard_from` first), write each `WriteWal` and report `on_written`,
//!   call `on_input_drained` when the socket has nothing more buffered, fsync on `FlushWal`
//!   and report `on_flushed` (flush before switching segment files, too). Redo must stop at
//!   the last `AllowReplay` limit and report `on_replayed`, with `apply_feedback_requested`
//!   for commit records written under `remote_apply`. Persist `primary_flush_lsn()` with
//!   the WAL (a control file field); after a crash without it, pass the replayed LSN.
//! - **Promotion:** `history.branch(new_tli, end_of_wal, timeline::PROMOTION_REASON)`, write
//!   `render()` to `timeline::history_file_name(new_tli)` before using the new timeline.
//! - **Commands:** [`commands::parse_command`] gives a typed command or the `PgError` to
//!   send; [`commands::results`] builds the rows PostgreSQL clients expect. The parser
//!   accepts every `BASE_BACKUP` TARGET and COMPRESSION; refuse what the server cannot do
//!   with 0A000.
//!
//! # Example: deciding which commits the standbys have confirmed
//!
//! ```
//! use base::Lsn;
//! use replication::syncrep::{evaluate, SyncRepConfig, SyncState, WaitMode, WalSenderSnapshot};
//! use replication::walsender::WalSndState;
//!
//! let config = SyncRepConfig::parse("ANY 2 (s1, s2, s3)").unwrap();
//! let standby = |slot, name, flush| WalSenderSnapshot {
//!     slot,
//!     application_name: name,
//!     state: WalSndState::Streaming,
//!     write_lsn: Lsn(flush),
//!     flush_lsn: Lsn(flush),
//!     apply_lsn: Lsn(flush),
//! };
//! let ev = evaluate(
//!     config.as_ref(),
//!     &[standby(0, "s1", 300), standby(1, "s2", 100), standby(2, "s3", 200)],
//! );
//! // Two of three standbys have flushed up to 200.
//! assert_eq!(ev.synced.get(WaitMode::Flush), Some(Lsn(200)));
//! assert!(ev.standbys.iter().all(|s| s.sync_state == SyncState::Quorum));
//! ```

pub mod commands;
pub mod conninfo;
pub mod fuzzing;
pub mod messages;
pub mod syncrep;
pub mod timeline;
pub mod walreceiver;
pub mod walsender;
