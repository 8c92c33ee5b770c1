//! The SQL layer: parsing, binding, planning and executing statements for one session.
//!
//! CONTRACT WITH THE FRONTEND (crates/frontend): the frontend owns sockets, authentication,
//! message framing and flushing; this crate owns everything a statement means. The frontend
//! drives a `Session` through the methods in `api` and never looks inside a `Prepared`.

pub mod api;
pub mod guc;
pub mod parse;

pub use api::*;
