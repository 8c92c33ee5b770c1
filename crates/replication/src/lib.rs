//! The pure parts of lockstep's streaming replication.
pub mod messages;
