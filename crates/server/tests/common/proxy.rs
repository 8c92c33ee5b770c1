//! A TCP proxy for replication fault tests: put it between a standby and its primary (or a
//! client and a server) and break the network on command.
//!
//! Where it runs: on its own thread with its own single-threaded tokio runtime, so tests
//! drive it the same way from synchronous and `#[tokio::test]` code; every control method is
//! synchronous and takes effect at once (later bytes see it). Dropping the `Proxy` stops the
//! listener, closes every connection (FIN) and joins the thread.
//!
//! What the controls model:
//! - `pause()`: a network partition. Nothing is forwarded in either direction, connections
//!   stay open, and bytes already read are held; `resume()` delivers everything queued, in
//!   order. New connections accepted while paused wait to connect to the target until
//!   resumed (as a SYN into a partition would).
//! - `drop_connections()`: every current connection closed with FIN on both sides.
//! - `reset_connections()`: every current connection closed with RST on both sides
//!   (SO_LINGER 0), so peers see ECONNRESET.
//! - `refuse(true)`: new connections are accepted and closed at once (the client sees EOF
//!   or a reset, never the target); existing connections are untouched.
//!
//! Not modelled: latency, bandwidth limits, one-directional partitions, packet loss below
//! TCP. A read or write error on either side of a connection resets both sides, so a reset
//! passes through the proxy as it would through a router.
//!
//! Invariants: bytes are forwarded in order, each byte at most once; the counters count
//! bytes written to the other side (not merely read), so after `pause()` they stay put.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How a connection is told to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    Keep,
    Fin,
    Rst,
}

struct Shared {
    target: Mutex<SocketAddr>,
    paused: watch::Sender<bool>,
    refuse: std::sync::atomic::AtomicBool,
    to_target: AtomicU64,
    to_client: AtomicU64,
    accepted: AtomicU64,
    next_id: AtomicU64,
    /// Kill switches of live connections, by id; a connection removes itself when it ends.
    conns: Mutex<HashMap<u64, watch::Sender<Kill>>>,
}

/// A running proxy; see the module header.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (paused, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            paused,
            refuse: std::sync::atomic::AtomicBool::new(false),
            to_target: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("proxy: cannot register the listener: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = accept_loop(listener, s) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task, closing its sockets.
                drop(rt);
            })?;
        Ok(Proxy {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where new connections go from now on (existing ones keep their target).
    pub fn set_target(&self, target: SocketAddr) {
        *self.shared.target.lock() = target;
    }

    /// Stops forwarding in both directions; connections stay open.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Forwards again, delivering what was queued while paused.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.shared.paused.borrow()
    }

    /// Closes every current connection with FIN on both sides.
    pub fn drop_connections(&self) {
        self.kill_all(Kill::Fin);
    }

    /// Closes every current connection with RST on both sides (SO_LINGER 0).
    pub fn reset_connections(&self) {
        self.kill_all(Kill::Rst);
    }

    /// While on, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Bytes written to the target (client → target).
    pub fn bytes_to_target(&self) -> u64 {
        self.shared.to_target.load(Ordering::SeqCst)
    }

    /// Bytes written to clients (target → client).
    pub fn bytes_to_client(&self) -> u64 {
        self.shared.to_client.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (refused ones included).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open through the proxy.
    pub fn active_connections(&self) -> usize {
        self.shared.conns.lock().len()
    }

    fn kill_all(&self, how: Kill) {
        let conns: Vec<(u64, watch::Sender<Kill>)> = self.shared.conns.lock().drain().collect();
        for (_, k) in conns {
            k.send_replace(how);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("proxy: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refuse.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let (kill_tx, kill_rx) = watch::channel(Kill::Keep);
        shared.conns.lock().insert(id, kill_tx);
        let s = shared.clone();
        tokio::spawn(async move {
            serve(client, &s, kill_rx).await;
            s.conns.lock().remove(&id);
        });
    }
}

async fn wait_kill(kill: &mut watch::Receiver<Kill>) -> Kill {
    match kill.wait_for(|k| *k != Kill::Keep).await {
        Ok(k) => *k,
        // The switch is gone only when the proxy is shutting down: close normally.
        Err(_) => Kill::Fin,
    }
}

async fn serve(mut client: TcpStream, shared: &Shared, mut kill: watch::Receiver<Kill>) {
    let mut paused = shared.paused.subscribe();
    // A partition also holds back new connections.
    let connect = async {
        let _ = paused.wait_for(|p| !*p).await;
        let target = *shared.target.lock();
        TcpStream::connect(target).await
    };
    let mut server = tokio::select! {
        r = connect => match r {
            Ok(s) => s,
            Err(_) => {
                // Target down: the client sees the connection close, as through a NAT.
                let _ = client.set_zero_linger();
                return;
            }
        },
        k = wait_kill(&mut kill) => {
            if k == Kill::Rst {
                let _ = client.set_zero_linger();
            }
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let how = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, &shared.to_target, shared.paused.subscribe());
        let down = pump(sr, cw, &shared.to_client, shared.paused.subscribe());
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => match r {
                Ok(_) => Kill::Fin,
                Err(_) => Kill::Rst,
            },
            k = wait_kill(&mut kill) => k,
        }
    };
    if how == Kill::Rst {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Copies `from` → `to` until EOF (then half-closes `to`), holding bytes while paused.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    counter: &AtomicU64,
    mut paused: watch::Receiver<bool>,
) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let _ = paused.wait_for(|p| !*p).await;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        // Paused while the read was pending: hold these bytes until resumed.
        let _ = paused.wait_for(|p| !*p).await;
        to.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::SeqCst);
    }
}
