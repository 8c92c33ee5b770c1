//! The SQL layer: parsing, binding, planning and executing statements for one session.
//!
//! CONTRACT WITH THE FRONTEND (crates/frontend): the frontend owns sockets, authentication,
//! message framing and flushing; this crate owns everything a statement means. The frontend
//! drives a `Session` through the methods below and never looks inside a `Prepared`.
//! TEMPORARY: bodies are placeholders until the SQL layer lands; the signatures are the contract.

pub mod api;

pub use api::*;
