//! Bad input never takes the server down: garbage and oversized messages on the wire,
//! malformed protocol messages, and hostile SQL all get a clear error with a SQLSTATE (or a
//! closed connection), and other sessions carry on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use tokio_postgres::error::SqlState;

fn startup_packet() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for s in ["user", "postgres", "database", "postgres"] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn connect(srv: &TestServer) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads until the server closes the connection (or the timeout); returns what arrived.
fn read_to_close(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Logs in with a raw socket (trust) and returns it after the first ReadyForQuery.
fn logged_in(srv: &TestServer) -> TcpStream {
    let mut s = connect(srv);
    s.write_all(&startup_packet()).expect("startup");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
        let n = s.read(&mut buf).expect("read startup response");
        assert!(n > 0, "server closed during startup");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

fn has_error_code(bytes: &[u8], code: &str) -> bool {
    let needle = format!("C{code}\0");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_wire_input_is_contained() {
    let mut srv = TestServer::init();
    srv.start();
    let bystander = srv.client().await;
    bystander
        .batch_execute("CREATE TABLE t (k int PRIMARY KEY)")
        .await
        .expect("create");

    // Garbage before any startup packet.
    let mut s = connect(&srv);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let _ = read_to_close(s);
    // A startup packet claiming 2 GB.
    let mut s = connect(&srv);
    s.write_all(&0x7FFF_FFF0i32.to_be_bytes()).expect("write");
    s.write_all(&[0u8; 64]).expect("write");
    let _ = read_to_close(s);
    // A truncated startup packet, then EOF.
    let mut s = connect(&srv);
    s.write_all(&[0, 0, 0, 40, 0, 3]).expect("write");
    drop(s);
    // Random bytes.
    for seed in 0..20u32 {
        let mut s = connect(&srv);
        let junk: Vec<u8> = (0..512u32)
            .map(|i| ((i + 1).wrapping_mul(seed.wrapping_mul(2_654_435_761) | 1) >> 7) as u8)
            .collect();
        let _ = s.write_all(&junk);
        let _ = read_to_close(s);
    }
    // After startup: a message whose length is below its own header.
    let mut s = logged_in(&srv);
    s.write_all(&[b'Q', 0, 0, 0, 2]).expect("write");
    let reply = read_to_close(s);
    assert!(
        has_error_code(&reply, "08P01"),
        "protocol violation reported: {reply:?}"
    );
    // An oversized message.
    let mut s = logged_in(&srv);
    s.write_all(&[b'Q', 0x7F, 0xFF, 0xFF, 0xFF]).expect("write");
    let reply = read_to_close(s);
    assert!(
        has_error_code(&reply, "08P01") || has_error_code(&reply, "54000"),
        "{reply:?}"
    );
    // A Parse message with a truncated body.
    let mut s = logged_in(&srv);
    s.write_all(&[b'P', 0, 0, 0, 8, b'x', 0, b'S'])
        .expect("write");
    s.write_all(&[b'S', 0, 0, 0, 4]).expect("write");
    let reply = read_to_close(s);
    assert!(has_error_code(&reply, "08P01"), "{reply:?}");
    // An unknown message type.
    let mut s = logged_in(&srv);
    s.write_all(&[b'~', 0, 0, 0, 4]).expect("write");
    let reply = read_to_close(s);
    assert!(has_error_code(&reply, "08P01"), "{reply:?}");

    // The bystander never noticed.
    bystander
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .expect("bystander still works");
    assert!(srv.is_running());
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_gets_clean_errors() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, s smallint, v varchar(5), n numeric(5,2))")
        .await
        .expect("create");
    let huge_text = format!("SELECT '{}'", "x".repeat(4 << 20));
    let huge_number = format!("SELECT {}", "9".repeat(5000));
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let cases: Vec<(String, Option<SqlState>)> = vec![
        (
            "SELECT * FROM t JOIN t u ON true".into(),
            Some(SqlState::FEATURE_NOT_SUPPORTED),
        ),
        (
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql".into(),
            Some(SqlState::FEATURE_NOT_SUPPORTED),
        ),
        (
            "INSERT INTO t VALUES ('x', 1, 'a', 1)".into(),
            Some(SqlState::INVALID_TEXT_REPRESENTATION),
        ),
        (
            "INSERT INTO t VALUES (1, 40000, 'a', 1)".into(),
            Some(SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        ),
        (
            "INSERT INTO t VALUES (1, 1, 'toolong', 1)".into(),
            Some(SqlState::STRING_DATA_RIGHT_TRUNCATION),
        ),
        (
            "INSERT INTO t VALUES (1, 1, 'a', 12345)".into(),
            Some(SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        ),
        ("SELECT k + 'a' FROM t".into(), None),
        (
            "SELECT * FROM missing".into(),
            Some(SqlState::UNDEFINED_TABLE),
        ),
        (
            "SELECT missing FROM t".into(),
            Some(SqlState::UNDEFINED_COLUMN),
        ),
        (
            "SELECT 9223372036854775807::bigint + 1".into(),
            Some(SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        ),
        ("SELECT (-32768)::smallint * -1::smallint".into(), None),
        ("SELECT 5 % 0".into(), Some(SqlState::DIVISION_BY_ZERO)),
        ("SELECT 1.0 / 0".into(), Some(SqlState::DIVISION_BY_ZERO)),
        (huge_number, None),
        (deep, None),
        ("SELECT $1".into(), None),
        (";;;".into(), None),
        ("SELECT 'unterminated".into(), Some(SqlState::SYNTAX_ERROR)),
        ("select * from t where k = (select 1)".into(), None),
    ];
    for (sql, code) in cases {
        match c.batch_execute(&sql).await {
            Ok(()) => {}
            Err(e) => {
                let got = e.code().cloned();
                assert!(
                    got.is_some(),
                    "{}: error without SQLSTATE: {e:?}",
                    &sql[..sql.len().min(80)]
                );
                if let Some(code) = code {
                    assert_eq!(
                        got.as_ref(),
                        Some(&code),
                        "{}: {e:?}",
                        &sql[..sql.len().min(80)]
                    );
                }
            }
        }
    }
    // A 4 MB literal is fine.
    let r = c.simple_query(&huge_text).await;
    assert!(r.is_ok() || r.as_ref().err().and_then(|e| e.code()).is_some());
    // Still serving.
    c.execute("INSERT INTO t VALUES (1, 1, 'ok', 1.5)", &[])
        .await
        .expect("server still serves");
    assert!(srv.is_running());
    srv.stop();
}

/// Replays the stored corpus of the `sql_parse` fuzz target (fuzz/corpus/sql_parse) and
/// seeded random mutations of it through the same entry points, so CI checks them on stable
/// Rust without cargo-fuzz.
#[test]
fn sql_fuzz_corpus_never_panics() {
    use rand::{Rng, SeedableRng};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sql_parse");
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        seeds.push(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(!seeds.is_empty());
    let engine = sql::Engine::for_tests().0;
    let mut session = engine
        .open_session(sql::SessionInfo {
            user: "postgres".into(),
            database: "postgres".into(),
            superuser: true,
            ..Default::default()
        })
        .expect("session");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x05EE_D5A1);
    for round in 0..3000 {
        let mut data = seeds[round % seeds.len()].clone();
        for _ in 0..rng.random_range(0..6) {
            if data.is_empty() {
                break;
            }
            let at = rng.random_range(0..data.len());
            match rng.random_range(0..3) {
                0 => data[at] = rng.random(),
                1 => {
                    data.remove(at);
                }
                _ => {
                    let specials = b"'\"();$:,\\-*/ ";
                    data.insert(at, specials[rng.random_range(0..specials.len())]);
                }
            }
        }
        let text = String::from_utf8_lossy(&data);
        let _ = session.parse_batch(&text);
        let _ = session.prepare(&text, &[]);
    }
}
