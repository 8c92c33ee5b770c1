//! How the walreceiver fails: a silent primary trips `wal_receiver_timeout` (after a ping
//! at half of it) and is reconnected; a failed fdatasync on the standby is fatal at once and
//! never retried. The silent primary is a scripted server speaking just enough protocol.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base::{Lsn, TimelineId};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use walreceiver::shared::WalRcvStatus;
use walreceiver::{WalRcvConfig, WalRcvShared};

async fn read_startup(s: &mut TcpStream) {
    let len = s.read_i32().await.expect("startup length");
    let mut body = vec![0; len as usize - 4];
    s.read_exact(&mut body).await.expect("startup body");
}

async fn read_msg(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let tag = s.read_u8().await.expect("tag");
    let len = s.read_i32().await.expect("length");
    let mut body = vec![0; len as usize - 4];
    s.read_exact(&mut body).await.expect("body");
    (tag, body)
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn row_description(names: &[&str]) -> Vec<u8> {
    let mut b = (names.len() as i16).to_be_bytes().to_vec();
    for n in names {
        b.extend_from_slice(n.as_bytes());
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&25i32.to_be_bytes());
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    msg(b'T', &b)
}

fn data_row(vals: &[Option<&str>]) -> Vec<u8> {
    let mut b = (vals.len() as i16).to_be_bytes().to_vec();
    for v in vals {
        match v {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v.as_bytes());
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &b)
}

/// Accepts a walreceiver, takes it to streaming, then stays silent. Returns the `'r'`
/// messages it received within `listen`.
async fn silent_primary(s: &mut TcpStream, listen: Duration) -> Vec<Vec<u8>> {
    read_startup(s).await;
    let mut out = msg(b'R', &0i32.to_be_bytes());
    out.extend(msg(b'Z', b"I"));
    s.write_all(&out).await.expect("write");
    let (tag, q) = read_msg(s).await;
    assert_eq!((tag, q.as_slice()), (b'Q', &b"IDENTIFY_SYSTEM\0"[..]));
    let mut out = row_description(&["systemid", "timeline", "xlogpos", "dbname"]);
    out.extend(data_row(&[Some("42"), Some("1"), Some("0/2000000"), None]));
    out.extend(msg(b'C', b"IDENTIFY_SYSTEM\0"));
    out.extend(msg(b'Z', b"I"));
    s.write_all(&out).await.expect("write");
    let (tag, q) = read_msg(s).await;
    assert_eq!(tag, b'Q');
    assert_eq!(
        String::from_utf8_lossy(&q),
        "START_REPLICATION PHYSICAL 0/1000000 TIMELINE 1\0"
    );
    s.write_all(&msg(b'W', &[0, 0, 0])).await.expect("write");
    let mut replies = Vec::new();
    let until = Instant::now() + listen;
    while let Ok(Ok(tag)) = tokio::time::timeout_at(until.into(), s.read_u8()).await {
        let len = s.read_i32().await.expect("length");
        let mut body = vec![0; len as usize - 4];
        s.read_exact(&mut body).await.expect("body");
        if tag == b'd' && body.first() == Some(&b'r') {
            replies.push(body);
        }
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_primary_times_out_and_is_reconnected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WalRcvConfig::new(
        format!("host=127.0.0.1 port={port} user=rep"),
        dir.path(),
        SEG,
        42,
        TimelineId(1),
        Lsn(0x100_0000),
    );
    cfg.status_interval = None;
    cfg.receiver_timeout = Some(Duration::from_millis(1000));
    let shared = Arc::new(WalRcvShared::new(Lsn(0x100_0000), TimelineId(1)));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));

    let (mut s, _) = listener.accept().await.expect("accept");
    let started = Instant::now();
    let replies = silent_primary(&mut s, Duration::from_millis(2500)).await;
    // One ping (reply requested) at half the timeout; status replies are otherwise off.
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].last(), Some(&1u8), "the ping asks for a reply");
    // Then the walreceiver gives up on the connection and comes back.
    let (mut s2, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("reconnects")
        .expect("accept");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let err = shared.last_error().expect("reason recorded");
    assert!(err.contains("timeout"), "{err}");
    read_startup(&mut s2).await;

    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("no error");
    assert_eq!(shared.status(), WalRcvStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flush_is_fatal() {
    // This test binary's only failpoint: every standby fdatasync fails.
    base::failpoint::configure("walreceiver-flush-error=error(1)");
    let pg = PgCluster::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let flush = pg.flush_lsn();
    let start = flush - flush % SEG;
    let cfg = WalRcvConfig::new(
        pg.conninfo("application_name=lockstep_fatal"),
        dir.path(),
        SEG,
        pg.system_identifier(),
        TimelineId(1),
        Lsn(start),
    );
    let shared = Arc::new(WalRcvShared::new(Lsn(start), TimelineId(1)));
    let (_stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));
    pg.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000)");
    let err = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the walreceiver stops by itself")
        .expect("join")
        .expect_err("a failed fdatasync ends the walreceiver");
    assert!(err.is_fatal(), "{err}");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert_eq!(shared.status(), WalRcvStatus::Stopped);
    assert_eq!(
        shared.flushed_lsn(),
        Lsn(start),
        "nothing reported as flushed"
    );
}

/// DESIGN.md decision 4: local WAL beyond the last primary flush LSN the standby learned may
/// differ from what the primary has now, so a reconnect discards it and streams it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_discards_wal_beyond_the_known_primary_flush() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    // Segment 1 holds 256 bytes at 0/1000000..0/1000100 that the primary never confirmed.
    let seg = dir.path().join("000000010000000000000001");
    let mut bytes = vec![0u8; SEG as usize];
    bytes[..256].fill(0xab);
    std::fs::write(&seg, &bytes).expect("segment");
    let shared = Arc::new(WalRcvShared::new(Lsn(0x100_0000), TimelineId(1)));
    shared.set_flushed(Lsn(0x100_0100)); // flushed here; primary flush known: 0/1000000
    let mut cfg = WalRcvConfig::new(
        format!("host=127.0.0.1 port={port} user=rep"),
        dir.path(),
        SEG,
        42,
        TimelineId(1),
        Lsn(0x100_0100),
    );
    cfg.receiver_timeout = Some(Duration::from_secs(30));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(walreceiver::run(cfg, shared.clone(), rx));
    let (mut s, _) = listener.accept().await.expect("accept");
    // silent_primary asserts START_REPLICATION at 0/1000000, not 0/1000100.
    silent_primary(&mut s, Duration::from_millis(300)).await;
    assert_eq!(shared.flushed_lsn(), Lsn(0x100_0000));
    assert_eq!(shared.written_lsn(), Lsn(0x100_0000));
    let after = std::fs::read(&seg).expect("segment");
    assert!(
        after[..256].iter().all(|&b| b == 0),
        "the unconfirmed tail is gone"
    );
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("no error");
}
