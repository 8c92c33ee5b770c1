//! The primary's side of streaming replication: replication connections, walsenders,
//! synchronous replication release, replication slots and BASE_BACKUP.
//!
//! | module | PostgreSQL counterpart | what it does |
//! |---|---|---|
//! | [`handler`] | `walsender.c` | the replication connection: commands, START_REPLICATION streaming |
//! | [`walbuf`] | WAL buffers + `WalSndWakeup` | recent WAL from the write hook; write/flush positions |
//! | [`direct`] | — | the write hook sends new WAL to a caught-up standby itself |
//! | [`ctl`] | `WalSndCtlData`, `syncrep.c` driver | walsender table, sync rep release, stats, slot API |
//! | [`syncrep`] | `SyncRepReleaseWaiters` | the pure release rule (unit-tested) |
//! | [`slots`] | `slot.c` | persistent physical slots, WAL retention, `lost` |
//! | [`basebackup`] | `basebackup.c` | BASE_BACKUP, new-style (PostgreSQL 15) protocol |
//! | [`wire`] | `pqformat.c` | the protocol messages a walsender sends and reads |
//!
//! Wiring (server crate): `Core::start` builds [`WalSndCtl`] right after the transaction
//! manager (it installs the WAL hook and progress listener), the server's progress listener
//! calls [`WalSndCtl::on_local_flush`], the checkpointer adds [`WalSndCtl::wal_retention`],
//! `node.rs` installs [`WalSenderHandler`] on the frontend, sets the checkpoint requester,
//! calls [`WalSndCtl::reload`] at start and on every reload, and answers the SQL hooks from
//! [`WalSndCtl::replication_stats`], [`WalSndCtl::replication_slots`],
//! [`WalSndCtl::create_slot`], [`WalSndCtl::drop_slot`].
//!
//! The pure decisions (message layouts, command grammar, sync standby choice, the walsender
//! state machine) are in the `replication` crate; this crate only drives them.

pub mod basebackup;
pub mod ctl;
pub mod direct;
pub mod handler;
pub mod slots;
pub mod syncrep;
pub mod walbuf;
pub mod wire;

pub use ctl::{BackupCheckpoint, CheckpointRequester, WalSndCtl, WalSndCtlParams, WalSndSettings};
pub use handler::WalSenderHandler;
