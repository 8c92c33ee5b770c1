//! The standby's side of streaming replication.
//!
//! | module | PostgreSQL counterpart | what it does |
//! |---|---|---|
//! | [`basebackup`] | `pg_basebackup` | base backup client (BASE_BACKUP, tar extraction, `-R`) |
//! | [`conn`] | libpq, `libpqwalreceiver.c` | client connection: startup, authentication, simple query, copy |
//! | [`receiver`] | `walreceiver.c` | the walreceiver task: connect, identify, plan, stream, reply, reconnect |
//! | [`walfile`] | `XLogWalRcvWrite`/`XLogWalRcvFlush` | writing and flushing streamed WAL into segment files |
//! | [`shared`] | `WalRcvData` (walreceiverfuncs.c) | positions shared with redo and `pg_stat_wal_receiver` |
//!
//! The decisions (when to write, flush, reply, where to restart) are the pure state machine
//! [`replication::walreceiver`]; this crate drives it with sockets, files and timers.

pub mod basebackup;
pub mod conn;
pub mod receiver;
pub mod shared;
pub mod walfile;

pub use basebackup::{
    BaseBackupError, BaseBackupOptions, BaseBackupProgress, BaseBackupResult, basebackup,
};
pub use receiver::{RecoveryTargetTimeline, WalRcvConfig, WalRcvError, run};
pub use shared::WalRcvShared;
