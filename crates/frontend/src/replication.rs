//! The hand-off of replication connections (`replication=…` in the startup packet).
//!
//! A standby connects to the normal port like any client (the seed's option (c): connection
//! set-up and authentication come for free). The frontend authenticates it, checks that its
//! pg_hba.conf line names `replication` (physical) and that the role has `REPLICATION` or is a
//! superuser, sends AuthenticationOk, and then gives the socket to the `ReplicationHandler`
//! (the walsender). From then on the frontend does nothing with the connection: the handler
//! sends ParameterStatus, BackendKeyData and ReadyForQuery, reads replication commands, and
//! watches `shutdown` itself. Immediate shutdown still drops the handler's future.
//!
//! Without a handler, replication connections are refused with FATAL 0A000.

use std::net::SocketAddr;

use auth::{ReplicationKind, Role};
use bytes::BytesMut;
use futures::future::BoxFuture;

use crate::shutdown::ShutdownWatch;
use crate::stream::ClientStream;

/// An authenticated replication connection, handed over whole.
#[derive(Debug)]
pub struct ReplicationConnection {
    pub stream: ClientStream,
    /// Bytes the frontend read past the authentication messages (a client may pipeline its
    /// first command): the handler must consume these before reading the socket.
    pub read_buf: BytesMut,
    /// The authenticated role (it may replicate).
    pub role: Role,
    pub kind: ReplicationKind,
    pub user: String,
    /// The startup packet's database (physical replication ignores it).
    pub database: String,
    pub application_name: String,
    /// Every startup-packet parameter, in packet order, as sent.
    pub startup_params: Vec<(String, String)>,
    /// Settings from `options` and the other parameters, as for a normal session.
    pub settings: Vec<(String, String)>,
    /// `None` for Unix-domain sockets.
    pub client_addr: Option<SocketAddr>,
    /// Negotiated protocol version (major, minor).
    pub protocol_version: (u16, u16),
    pub shutdown: ShutdownWatch,
}

/// Serves replication connections (the walsender).
pub trait ReplicationHandler: Send + Sync + 'static {
    /// Runs the connection to its end. Called on the connection's own task.
    fn handle(&self, conn: ReplicationConnection) -> BoxFuture<'static, ()>;
}
