//! lockstep's front door: the PostgreSQL wire protocol (v3.0 and v3.2) over TCP and Unix
//! sockets, from accept to session end.
//!
//! What it does: listens (`server`), negotiates start-up (`startup`), authenticates against
//! pg_hba.conf and the role file (`authn`, using the `auth` crate), forwards CancelRequests to
//! the engine, hands replication connections to a `ReplicationHandler` (`replication`), and
//! runs each session's simple-query, extended-query and COPY FROM STDIN protocol against
//! `sql::Session` (`conn`), encoding rows straight into the output buffer (`sink`, `wire`).
//!
//! Where it runs: one tokio task per connection plus one accept task per listen socket; no
//! state is shared between connections except the engine, the role store and the pg_hba.conf
//! snapshot, all read-mostly.
//!
//! What it deliberately does not do: SQL (parsing, planning, transactions, pid/secret
//! bookkeeping for cancel: all in `sql`), TLS and GSS encryption (SSLRequest and GSSENCRequest
//! are refused with `N`), the replication protocol itself (the walsender behind
//! `ReplicationHandler`), formatting COPY's lines (the `sql` crate hands them over whole; here
//! they only become CopyOutResponse/CopyData/CopyDone) and fastpath function calls.
//!
//! Invariants: no input from a client can panic the server (every length is checked before
//! use, every decode is bounds-checked); output is written only at PostgreSQL's flush points
//! (see `conn`); every error a client receives carries a SQLSTATE; a connection that fails
//! ends alone, the listeners and other connections go on.
//!
//! Failure: client misbehaviour ends that connection (FATAL 08P01 once the protocol is up,
//! silently before); a listen socket that cannot be bound fails `Frontend::bind`.

mod authn;
mod backend;
mod config;
mod conn;
mod error;
mod loops;
mod options;
mod replication;
mod server;
mod shutdown;
mod sink;
mod startup;
mod stream;
mod transport;
mod wire;

#[cfg(test)]
mod tests;

pub use config::FrontendConfig;
pub use error::FrontendError;
pub use options::{parse_bool, parse_options};
pub use replication::{ReplicationConnection, ReplicationHandler};
pub use server::Frontend;
pub use shutdown::{ShutdownMode, ShutdownTrigger, ShutdownWatch, shutdown_channel};
pub use stream::ClientStream;
pub use wire::LARGE_MESSAGE_MAX_LEN_DEFAULT;
