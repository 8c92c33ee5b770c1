//! Listening, accepting, and the start of each connection (PostgreSQL's postmaster socket
//! handling and `BackendInitialize`/`InitPostgres`, reduced to what a task per connection
//! needs).
//!
//! `Frontend::bind` opens the TCP sockets for `listen_addresses` and `port` and the Unix
//! sockets `.s.PGSQL.<port>` in `unix_socket_directories`; `Frontend::run` accepts on all of
//! them until shutdown and spawns one task per connection. A connection task runs, in order:
//! start-up (`startup`), authentication (`authn`) — both under `authentication_timeout` —
//! then either the replication hand-off or `Engine::open_session` followed by the greeting
//! (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery) and the session loop
//! (`conn`).
//!
//! Shutdown (see `shutdown`): on any request the accept loops stop and remove their Unix
//! socket files; connections still starting are refused with 57P03; `run` returns when every
//! connection task has ended. Fast shutdown also cancels each session's running statement
//! (through its `CancelHandle`); immediate shutdown drops every connection task.
//!
//! Bind rules (PostgreSQL's): a listen address that fails to bind is logged and skipped as long
//! as some socket was created; SO_REUSEADDR is set so a restart does not wait for TIME_WAIT;
//! IPv6 sockets are IPv6-only so `*` binds IPv4 and IPv6 side by side. A Unix socket file left
//! by a dead server is removed; one a live server answers on is an error. Socket files get mode
//! 0777, as PostgreSQL's default `unix_socket_permissions`: pg_hba.conf, not the file mode,
//! decides who may connect.
//!
//! Accept errors (EMFILE and the like) are logged and retried after a short pause, never
//! fatal: a full file table must not stop the server for good.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::{ReplicationKind, RoleStore, SharedHba, Transport as HbaTransport};
use base::PgError;
use base::error::sqlstate;
use parking_lot::Mutex;
use sql::{CancelHandle, SessionInfo};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::task::TaskTracker;

use crate::authn::{Peer, authenticate};
use crate::backend::{Backend, BackendSession};
use crate::config::FrontendConfig;
use crate::conn::Conn;
use crate::error::FrontendError;
use crate::loops::SessionLoops;
use crate::replication::{ReplicationConnection, ReplicationHandler};
use crate::shutdown::{EndSignal, ShutdownMode, ShutdownWatch};
use crate::startup::{FirstPacket, StartupParams, read_first_packet};
use crate::stream::ClientStream;
use crate::transport::{ConnEnd, Transport};
use crate::wire;

/// Pending-connection queue length: enough for a burst of `pgbench -c` connects; the kernel
/// caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 1024;
/// Pause after a failed accept (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The serving half of the server: sockets, authentication, sessions.
pub struct Frontend {
    server: Server<sql::Engine>,
}

impl Frontend {
    /// Opens the listen sockets.
    pub async fn bind(
        config: FrontendConfig,
        engine: Arc<sql::Engine>,
        roles: Arc<RoleStore>,
        hba: Arc<SharedHba>,
    ) -> Result<Frontend, FrontendError> {
        Ok(Frontend {
            server: Server::bind(config, engine, roles, hba).await?,
        })
    }

    /// Routes replication connections to `handler` (without one they are refused).
    pub fn with_replication_handler(mut self, handler: Arc<dyn ReplicationHandler>) -> Self {
        self.server.set_replication(handler);
        self
    }

    /// The TCP addresses bound (with the real port when `port` was 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.server.local_addrs()
    }

    /// The Unix socket files created.
    pub fn unix_socket_paths(&self) -> Vec<PathBuf> {
        self.server.unix_socket_paths()
    }

    /// Serves until shutdown; returns when every connection has ended.
    pub async fn run(self, shutdown: ShutdownWatch) {
        self.server.run(shutdown).await;
    }

    /// `bind` then `run`.
    pub async fn serve(
        config: FrontendConfig,
        engine: Arc<sql::Engine>,
        roles: Arc<RoleStore>,
        hba: Arc<SharedHba>,
        shutdown: ShutdownWatch,
    ) -> Result<(), FrontendError> {
        Frontend::bind(config, engine, roles, hba)
            .await?
            .run(shutdown)
            .await;
        Ok(())
    }
}

/// What every connection task shares.
pub(crate) struct Shared<B> {
    pub(crate) config: FrontendConfig,
    pub(crate) engine: Arc<B>,
    pub(crate) roles: Arc<RoleStore>,
    pub(crate) hba: Arc<SharedHba>,
    pub(crate) replication: Option<Arc<dyn ReplicationHandler>>,
}

pub(crate) struct Server<B> {
    shared: Arc<Shared<B>>,
    loops: Option<Arc<SessionLoops>>,
    tcp: Vec<TcpListener>,
    unix: Vec<(UnixListener, PathBuf)>,
}

impl<B: Backend> Server<B> {
    pub(crate) async fn bind(
        config: FrontendConfig,
        engine: Arc<B>,
        roles: Arc<RoleStore>,
        hba: Arc<SharedHba>,
    ) -> Result<Self, FrontendError> {
        let addresses: Vec<&str> = config
            .listen_addresses
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        if addresses.is_empty() && config.unix_socket_directories.is_empty() {
            return Err(FrontendError::NothingToListenOn);
        }
        let tcp = bind_tcp(&addresses, config.port).await?;
        // With port 0, name the socket after the TCP port chosen, so both reach one server.
        let port = match (config.port, tcp.first().and_then(|l| l.local_addr().ok())) {
            (0, Some(a)) => a.port(),
            (p, _) => p,
        };
        let mut unix = Vec::new();
        for dir in &config.unix_socket_directories {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            unix.push((bind_unix(&path)?, path));
        }
        let loops = if config.session_threads > 0 {
            Some(Arc::new(
                SessionLoops::start(config.session_threads).map_err(FrontendError::Loops)?,
            ))
        } else {
            None
        };
        Ok(Server {
            loops,
            shared: Arc::new(Shared {
                config,
                engine,
                roles,
                hba,
                replication: None,
            }),
            tcp,
            unix,
        })
    }

    pub(crate) fn set_replication(&mut self, handler: Arc<dyn ReplicationHandler>) {
        // Not shared yet: `run` is what hands out clones.
        Arc::get_mut(&mut self.shared)
            .expect("the shared state is not cloned before run")
            .replication = Some(handler);
    }

    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    pub(crate) fn unix_socket_paths(&self) -> Vec<PathBuf> {
        self.unix.iter().map(|(_, p)| p.clone()).collect()
    }

    pub(crate) async fn run(self, shutdown: ShutdownWatch) {
        let tracker = TaskTracker::new();
        for listener in self.tcp {
            let (shared, shutdown, t, loops) = (
                Arc::clone(&self.shared),
                shutdown.clone(),
                tracker.clone(),
                self.loops.clone(),
            );
            tracker.spawn(accept_tcp(listener, shared, shutdown, t, loops));
        }
        for (listener, path) in self.unix {
            let (shared, shutdown, t, loops) = (
                Arc::clone(&self.shared),
                shutdown.clone(),
                tracker.clone(),
                self.loops.clone(),
            );
            tracker.spawn(accept_unix(listener, path, shared, shutdown, t, loops));
        }
        tracker.close();
        tracker.wait().await;
        // Every connection has ended: the loop threads can stop (joining them blocks).
        if let Some(loops) = self.loops {
            let _ = tokio::task::spawn_blocking(move || drop(loops)).await;
        }
        tracing::info!("frontend stopped");
    }
}

async fn bind_tcp(addresses: &[&str], port: u16) -> Result<Vec<TcpListener>, FrontendError> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    let mut failures = Vec::new();
    for &name in addresses {
        let candidates: Vec<SocketAddr> = if name == "*" {
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            ]
        } else {
            match tokio::net::lookup_host((name, port)).await {
                Ok(addrs) => addrs.collect(),
                Err(source) => {
                    tracing::warn!(address = name, error = %source, "could not resolve listen address");
                    failures.push(format!("{name}: {source}"));
                    continue;
                }
            }
        };
        let mut seen = Vec::new();
        for mut addr in candidates {
            if seen.contains(&addr.ip()) {
                continue;
            }
            seen.push(addr.ip());
            // With port 0, every address shares the first port chosen.
            if port == 0
                && let Some(first) = listeners.first().and_then(|l| l.local_addr().ok())
            {
                addr.set_port(first.port());
            }
            match bind_one(addr) {
                Ok(l) => {
                    tracing::info!(%addr, "listening");
                    listeners.push(l);
                }
                Err(source) => {
                    tracing::warn!(%addr, error = %source, "could not create listen socket");
                    failures.push(format!("{addr}: {source}"));
                }
            }
        }
    }
    if listeners.is_empty() && !addresses.is_empty() {
        return Err(FrontendError::NoListeners(failures.join("; ")));
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn bind_unix(path: &std::path::Path) -> Result<UnixListener, FrontendError> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(FrontendError::UnixSocketInUse {
                path: path.to_owned(),
            });
        }
        // Left behind by a server that is gone.
        let _ = std::fs::remove_file(path);
    }
    let err = |source| FrontendError::UnixSocket {
        path: path.to_owned(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(err)?;
    tracing::info!(path = %path.display(), "listening");
    Ok(listener)
}

/// A socket accepted on the accept runtime, deregistered, on its way to a session loop.
enum Handoff {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Handoff {
    fn take(stream: ClientStream) -> std::io::Result<Handoff> {
        match stream {
            ClientStream::Tcp(s) => s.into_std().map(Handoff::Tcp),
            ClientStream::Unix(s) => s.into_std().map(Handoff::Unix),
        }
    }

    /// Registers the socket with the reactor of the runtime this runs on.
    fn register(self) -> std::io::Result<ClientStream> {
        match self {
            Handoff::Tcp(s) => tokio::net::TcpStream::from_std(s).map(ClientStream::Tcp),
            Handoff::Unix(s) => tokio::net::UnixStream::from_std(s).map(ClientStream::Unix),
        }
    }
}

/// Serves an accepted connection: on a session loop when there are loops (handing the socket
/// over to that loop's reactor), else on this runtime.
fn serve_accepted<B: Backend>(
    stream: ClientStream,
    peer: Peer,
    shared: Arc<Shared<B>>,
    shutdown: ShutdownWatch,
    tracker: &TaskTracker,
    loops: Option<&Arc<SessionLoops>>,
) {
    let Some(loops) = loops else {
        tracker.spawn(connection_task(stream, peer, shared, shutdown));
        return;
    };
    let handoff = match Handoff::take(stream) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "could not hand over connection");
            return;
        }
    };
    let loops = Arc::clone(loops);
    tracker.spawn(async move {
        loops.settle().await;
        let handle = loops.spawn(move || async move {
            match handoff.register() {
                Ok(stream) => connection_task(stream, peer, shared, shutdown).await,
                Err(e) => tracing::warn!(error = %e, "could not register connection"),
            }
        });
        let _ = handle.await;
    });
}

async fn accept_tcp<B: Backend>(
    listener: TcpListener,
    shared: Arc<Shared<B>>,
    mut shutdown: ShutdownWatch,
    tracker: TaskTracker,
    loops: Option<Arc<SessionLoops>>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.reached(ShutdownMode::Smart) => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, client)) => {
                // Small messages must go out at once: we batch by flush points ourselves.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
                let peer = Peer {
                    transport: HbaTransport::Tcp { ssl: false },
                    client_addr: Some(client),
                    server_addr: stream.local_addr().ok(),
                };
                serve_accepted(
                    ClientStream::Tcp(stream),
                    peer,
                    Arc::clone(&shared),
                    shutdown.clone(),
                    &tracker,
                    loops.as_ref(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not accept new connection");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
}

async fn accept_unix<B: Backend>(
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared<B>>,
    mut shutdown: ShutdownWatch,
    tracker: TaskTracker,
    loops: Option<Arc<SessionLoops>>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.reached(ShutdownMode::Smart) => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let peer = Peer {
                    transport: HbaTransport::Unix,
                    client_addr: None,
                    server_addr: None,
                };
                serve_accepted(
                    ClientStream::Unix(stream),
                    peer,
                    Arc::clone(&shared),
                    shutdown.clone(),
                    &tracker,
                    loops.as_ref(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not accept new connection");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
}

/// One connection, from accept to close, under the shutdown rules.
pub(crate) async fn connection_task<B: Backend>(
    stream: ClientStream,
    peer: Peer,
    shared: Arc<Shared<B>>,
    mut shutdown: ShutdownWatch,
) {
    // The session's cancel handle, once there is a session, for fast shutdown.
    let cancel: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
    let end = Arc::new(EndSignal::default());
    let conn = serve_connection(
        stream,
        peer,
        shared,
        shutdown.clone(),
        Arc::clone(&cancel),
        Arc::clone(&end),
    );
    tokio::pin!(conn);
    tokio::select! {
        () = &mut conn => return,
        () = shutdown.reached(ShutdownMode::Fast) => {
            // Cancel a running statement; the session loop then ends with 57P01.
            if let Some(handle) = cancel.lock().as_ref() {
                handle.cancel();
            }
            end.raise();
        }
    }
    tokio::select! {
        () = &mut conn => {}
        () = shutdown.reached(ShutdownMode::Immediate) => {
            tracing::debug!("connection dropped by immediate shutdown");
        }
    }
}

async fn serve_connection<B: Backend>(
    stream: ClientStream,
    peer: Peer,
    shared: Arc<Shared<B>>,
    shutdown: ShutdownWatch,
    cancel_slot: Arc<Mutex<Option<CancelHandle>>>,
    end_signal: Arc<EndSignal>,
) {
    let mut io = Transport::new(stream, shared.config.max_message_len);
    let timeout = shared.config.authentication_timeout;
    let started = tokio::time::timeout(timeout, start(&mut io, &peer, &shared)).await;
    let (params, role) = match started {
        Err(_) => {
            tracing::debug!(client = ?peer.client_addr, "authentication timed out");
            return io.finish(ConnEnd::Silent("authentication timeout")).await;
        }
        Ok(Err(end)) => return io.finish(end).await,
        Ok(Ok(None)) => return,
        Ok(Ok(Some(authenticated))) => authenticated,
    };
    if shutdown.mode() >= ShutdownMode::Smart {
        let err = PgError::fatal(
            base::SqlState("57P03"),
            "the database system is shutting down",
        );
        return io.finish(ConnEnd::Fatal(err)).await;
    }

    if params.replication != ReplicationKind::None {
        return hand_off_replication(io, params, role, &peer, &shared, shutdown).await;
    }

    let info = SessionInfo {
        user: params.user.clone(),
        database: params.database.clone(),
        application_name: params.application_name.clone(),
        client_addr: peer.client_addr,
        startup_settings: params.settings.clone(),
        superuser: role.superuser,
    };
    let mut session = match shared.engine.open_session(info) {
        Ok(s) => s,
        Err(mut err) => {
            // A session that cannot start ends the connection, whatever the severity.
            err.severity = base::error::Severity::Fatal;
            return io.finish(ConnEnd::Fatal(err)).await;
        }
    };
    *cancel_slot.lock() = Some(session.cancel_handle());

    wire::authentication(&mut io.out, wire::AUTH_OK, &[]);
    for (name, value) in session.initial_parameter_status() {
        wire::parameter_status(&mut io.out, &name, &value);
    }
    wire::backend_key_data(&mut io.out, session.pid(), session.secret_key());
    // Warnings from applying the startup settings, if any.
    for notice in session.take_notices() {
        wire::error_or_notice(&mut io.out, &notice);
    }
    wire::ready_for_query(&mut io.out, session.transaction_status().as_byte());
    if let Err(e) = io.flush().await {
        return io.finish(ConnEnd::Io(e)).await;
    }
    tracing::debug!(user = %params.user, database = %params.database, pid = session.pid(), "session started");

    let (io, end) = Conn::new(io, session, end_signal).run().await;
    io.finish(end).await;
}

/// Start-up and authentication. `Ok(None)`: the connection is done (a cancel request, or
/// nothing was sent).
async fn start<B: Backend>(
    io: &mut Transport,
    peer: &Peer,
    shared: &Shared<B>,
) -> Result<Option<(StartupParams, auth::Role)>, ConnEnd> {
    let params = match read_first_packet(io).await? {
        FirstPacket::Nothing => return Ok(None),
        FirstPacket::Cancel { pid, secret } => {
            if let Some(secret) = secret {
                shared.engine.cancel_request(pid, secret);
            }
            return Ok(None);
        }
        FirstPacket::Startup(params) => params,
    };
    let hba = shared.hba.current();
    let role = authenticate(io, &params, peer, &hba, &shared.roles).await?;
    Ok(Some((params, role)))
}

async fn hand_off_replication<B: Backend>(
    mut io: Transport,
    params: StartupParams,
    role: auth::Role,
    peer: &Peer,
    shared: &Shared<B>,
    shutdown: ShutdownWatch,
) {
    if !role.may_replicate() {
        let err = PgError::fatal(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            "permission denied to start WAL sender",
        )
        .with_detail("Only roles with the REPLICATION attribute may start a WAL sender process.");
        return io.finish(ConnEnd::Fatal(err)).await;
    }
    let Some(handler) = shared.replication.clone() else {
        let err = PgError::fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "replication connections are not supported by this server",
        );
        return io.finish(ConnEnd::Fatal(err)).await;
    };
    wire::authentication(&mut io.out, wire::AUTH_OK, &[]);
    if let Err(e) = io.flush().await {
        return io.finish(ConnEnd::Io(e)).await;
    }
    tracing::debug!(user = %params.user, kind = ?params.replication, "replication connection handed off");
    crate::loops::stop_counting();
    let conn = ReplicationConnection {
        stream: io.stream,
        read_buf: io.rbuf,
        role,
        kind: params.replication,
        user: params.user,
        database: params.database,
        application_name: params.application_name,
        startup_params: params.raw,
        settings: params.settings,
        client_addr: peer.client_addr,
        protocol_version: params.protocol,
        shutdown,
    };
    handler.handle(conn).await;
}
