//! The standby's side of streaming replication.
//!
//! - `shared`: the walreceiver's positions, shared with the startup (redo) process and with
//!   `pg_stat_wal_receiver`.
//! - `conn`: a replication-protocol client connection (libpq's part).

pub mod conn;
pub mod shared;
pub mod walfile;

pub use shared::WalRcvShared;
