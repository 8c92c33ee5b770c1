//! The SQL layer: parsing, binding, planning and executing statements for one session.
//!
//! CONTRACT WITH THE FRONTEND (crates/frontend): the frontend owns sockets, authentication,
//! message framing and flushing; this crate owns everything a statement means. The frontend
//! drives a `Session` through the methods in `api` and never looks inside a `Prepared`.
//!
//! Data flow of one statement: `parse` (split, pre-parse, normalise, cache, sqlparser) →
//! `plan` (bind names and types, choose access paths) → `exec` (run against the transaction
//! and storage) with `expr` evaluating expressions; `session` holds the transaction state
//! machine and `guc` the settings; `engine` is the server-wide state.

// `PgError` (base) is the client-facing error every layer returns; it is large (176 bytes)
// by design, and boxing it would change the contract all crates share.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod copy;
mod copy_to;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod guc;
pub mod parse;
pub mod plan;
pub mod session;
pub mod views;

pub use api::*;
