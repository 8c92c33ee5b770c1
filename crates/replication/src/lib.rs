//! The pure parts of lockstep's streaming replication.
pub mod commands;
pub mod conninfo;
pub mod fuzzing;
pub mod messages;
pub mod syncrep;
pub mod timeline;
pub mod walreceiver;
pub mod walsender;
