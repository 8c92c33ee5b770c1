//! The fault-injection proxy (`common::proxy`) against an echo server: forwarding and byte
//! counts, pause holding bytes and resume delivering them, FIN and RST on command, refusal of
//! new connections, and teardown on drop. Synchronous tests (std sockets) and one async test,
//! since replication tests use both.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::proxy::Proxy;

/// An echo server on a loopback port, one thread per connection, for the test's lifetime.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn connect(p: &Proxy) -> TcpStream {
    let c = TcpStream::connect(p.addr()).expect("connect to proxy");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c
}

fn read_exact(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf).expect("read");
    buf
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn forwards_both_ways_and_counts_bytes() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let mut c = connect(&p);
    c.write_all(b"hello").expect("write");
    assert_eq!(read_exact(&mut c, 5), b"hello");
    assert_eq!(p.bytes_to_target(), 5);
    wait_until("count to client", || p.bytes_to_client() == 5);
    assert_eq!(p.connections_accepted(), 1);
    assert_eq!(p.active_connections(), 1);
}

#[test]
fn pause_holds_bytes_and_resume_delivers_them() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let mut c = connect(&p);
    c.write_all(b"a").expect("write");
    assert_eq!(read_exact(&mut c, 1), b"a");
    p.pause();
    assert!(p.is_paused());
    c.write_all(b"queued").expect("write while paused");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let e = c.read(&mut buf).expect_err("nothing flows while paused");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e:?}"
    );
    assert_eq!(p.bytes_to_target(), 1);
    assert_eq!(p.bytes_to_client(), 1);
    // A connection made during the partition waits too.
    let mut c2 = connect(&p);
    c2.write_all(b"x").expect("write c2");
    c2.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    assert!(c2.read(&mut buf).is_err());
    p.resume();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c2.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(read_exact(&mut c, 6), b"queued");
    assert_eq!(read_exact(&mut c2, 1), b"x");
    wait_until("counts after resume", || {
        p.bytes_to_target() == 8 && p.bytes_to_client() == 8
    });
}

#[test]
fn reset_gives_the_client_econnreset() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let mut c = connect(&p);
    c.write_all(b"ping").expect("write");
    assert_eq!(read_exact(&mut c, 4), b"ping");
    p.reset_connections();
    let mut buf = [0u8; 8];
    let e = c.read(&mut buf).expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e:?}");
    wait_until("connection gone", || p.active_connections() == 0);
    // New connections still work.
    let mut c2 = connect(&p);
    c2.write_all(b"ok").expect("write");
    assert_eq!(read_exact(&mut c2, 2), b"ok");
}

#[test]
fn drop_connections_gives_the_client_eof() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let mut c = connect(&p);
    c.write_all(b"ping").expect("write");
    assert_eq!(read_exact(&mut c, 4), b"ping");
    p.drop_connections();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).expect("clean close"), 0);
}

#[test]
fn refuse_closes_new_connections_only() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let mut old = connect(&p);
    // Only a connection the proxy has accepted is "existing": exchange a byte first.
    old.write_all(b"1").expect("write");
    assert_eq!(read_exact(&mut old, 1), b"1");
    p.refuse(true);
    let mut c = connect(&p);
    let _ = c.write_all(b"lost");
    let mut buf = [0u8; 8];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("a refused connection must close, got {other:?}"),
    }
    old.write_all(b"still").expect("write");
    assert_eq!(read_exact(&mut old, 5), b"still");
    assert_eq!(p.bytes_to_target(), 6);
    p.refuse(false);
    let mut c3 = connect(&p);
    c3.write_all(b"back").expect("write");
    assert_eq!(read_exact(&mut c3, 4), b"back");
    assert_eq!(p.connections_accepted(), 3);
}

#[test]
fn dropping_the_proxy_closes_everything() {
    let p = Proxy::start(echo_server()).expect("proxy");
    let addr = p.addr();
    let mut c = connect(&p);
    c.write_all(b"x").expect("write");
    assert_eq!(read_exact(&mut c, 1), b"x");
    drop(p);
    let mut buf = [0u8; 8];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected close, got {other:?}"),
    }
    assert!(TcpStream::connect(addr).is_err(), "listener must be gone");
}

#[tokio::test]
async fn works_from_async_tests_and_follows_set_target() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let first = echo_server();
    let p = Proxy::start(first).expect("proxy");
    let mut c = tokio::net::TcpStream::connect(p.addr())
        .await
        .expect("connect");
    c.write_all(b"abc").await.expect("write");
    let mut buf = [0u8; 3];
    c.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"abc");
    // A new target applies to new connections (a failover test points the proxy at the
    // promoted standby).
    let second = echo_server();
    p.set_target(second);
    let mut c2 = tokio::net::TcpStream::connect(p.addr())
        .await
        .expect("connect");
    c2.write_all(b"de").await.expect("write");
    let mut buf2 = [0u8; 2];
    c2.read_exact(&mut buf2).await.expect("read");
    assert_eq!(&buf2, b"de");
    drop(p);
}
