//! The standby's side of streaming replication.
//!
//! - `shared`: the walreceiver's positions, shared with the startup (redo) process and with
//!   `pg_stat_wal_receiver`.
//!
//! (Module map to be completed by the walreceiver's driver: client connection, streaming
//! loop, WAL file writing, base backup client.)

pub mod shared;

pub use shared::WalRcvShared;
