//! The lockstep server: everything between the command line and the layers below.
//!
//! `datadir` (layout, init, lock), `recovery` (start-up replay), `checkpointer`, `bgworker`
//! (the background worker registry and supervisor), `progress` (WAL progress to visibility),
//! `node` (our postmaster: wires the layers together, runs and stops a server), and `cluster`
//! (the default local primary + synchronous standby pair, as child processes).

pub mod bgworker;
pub mod checkpointer;
pub mod cluster;
pub mod core;
pub mod datadir;
pub mod node;
pub mod progress;
pub mod recovery;
pub mod standby;
