//! Session protocol against the fake engine: simple and extended query, portals, COPY,
//! errors, notices, transaction status, flushing, termination, shutdown, cancel, replication.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::support::{Raw, tags};
use super::{Options, TestServer};
use crate::replication::{ReplicationConnection, ReplicationHandler};
use crate::shutdown::ShutdownMode;

#[tokio::test]
async fn greeting_has_status_key_data_and_ready_for_query() {
    let srv = TestServer::start().await;
    let mut c = srv.raw().await;
    c.startup(&[
        ("user", "bob"),
        ("application_name", "tests"),
        ("options", "-c a=1"),
    ])
    .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "RSSKZ");
    assert_eq!(msgs[0].body, [0, 0, 0, 0], "AuthenticationOk");
    assert_eq!(msgs[1].param(), ("server_version".into(), "15.0".into()));
    assert_eq!(msgs[2].param(), ("application_name".into(), "tests".into()));
    let pid = i32::from_be_bytes(msgs[3].body[0..4].try_into().unwrap());
    let key = i32::from_be_bytes(msgs[3].body[4..8].try_into().unwrap());
    assert_eq!(key, pid * 7);
    assert_eq!(msgs[4].body, b"I");
    let info = srv.engine.sessions.lock()[0].clone();
    assert_eq!(info.user, "bob");
    assert_eq!(info.database, "bob");
    assert_eq!(
        info.startup_settings,
        vec![("a".to_owned(), "1".to_owned())]
    );
    assert!(info.client_addr.is_some());
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn tokio_postgres_simple_and_extended_queries() {
    let srv = TestServer::start().await;
    let client = srv.tokio_postgres("bob").await;

    // Simple protocol: text rows, several statements, command tags.
    let msgs = client.simple_query("rows 2; cmd INSERT 0 7").await.unwrap();
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(1).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(rows, ["row 1", "row 2"]);
    let counts: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(counts, [2, 7]);

    // Extended protocol: tokio-postgres asks for binary results.
    let rows = client.query("rows 3", &[]).await.unwrap();
    let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got[2], (3, "row 3".to_owned()));
    let row = client
        .query_one("echo $1 $2", &[&"hi", &"there"])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, &str>(0), row.get::<_, &str>(1)),
        ("hi", "there")
    );
    let row = client.query_one("nulls", &[]).await.unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);

    // Prepared statements are reused.
    let stmt = client.prepare("echo $1").await.unwrap();
    for v in ["a", "b"] {
        let row = client.query_one(&stmt, &[&v]).await.unwrap();
        assert_eq!(row.get::<_, &str>(0), v);
    }
    assert_eq!(client.execute("cmd UPDATE 3", &[]).await.unwrap(), 3);
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn errors_carry_every_field_and_the_connection_goes_on() {
    let srv = TestServer::start().await;
    let client = srv.tokio_postgres("bob").await;
    let err = client.simple_query("error").await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42P01");
    assert_eq!(db.message(), "relation \"x\" does not exist");
    assert_eq!(db.detail(), Some("some detail"));
    assert_eq!(db.hint(), Some("some hint"));
    assert!(matches!(
        db.position(),
        Some(tokio_postgres::error::ErrorPosition::Original(15))
    ));
    let err = client.query("unique", &[]).await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23505");
    assert_eq!(db.table(), Some("t"));
    assert_eq!(db.constraint(), Some("t_pkey"));
    // Still usable, in both protocols.
    assert_eq!(client.query("rows 1", &[]).await.unwrap().len(), 1);
    assert_eq!(client.simple_query("cmd X").await.unwrap().len(), 1);
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn simple_query_batches_stop_at_the_first_error() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("rows 1; error; rows 2").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "TDCEZ");
    assert_eq!(msgs[3].code(), "42P01");
    // A parse error fails the whole batch.
    c.query("rows 1; syntax error").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs[0].code(), "42601");
    assert_eq!(msgs[0].fields()[&b'P'], "1");
    // Empty queries.
    for q in ["", "  ;; ", ";"] {
        c.query(q).send().await;
        assert_eq!(c.tags_until_ready().await, "IZ", "{q:?}");
    }
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn transaction_status_notices_and_parameter_status() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("begin").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs.last().unwrap().body, b"T");
    c.query("error").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs.last().unwrap().body, b"E");
    c.query("rows 1").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs[0].code(), "25P02");
    c.query("rollback").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs.last().unwrap().body, b"I");

    c.query("notice").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "NCZ", "notice comes before CommandComplete");
    let f = msgs[0].fields();
    assert_eq!(f[&b'S'], "NOTICE");
    assert_eq!(f[&b'V'], "NOTICE");
    assert_eq!(f[&b'C'], "00000");
    assert_eq!(f[&b'M'], "a notice");
    assert_eq!(f[&b'D'], "notice detail");
    assert_eq!(f[&b'H'], "notice hint");

    c.query("set DateStyle=ISO, MDY").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "CSZ");
    assert_eq!(msgs[1].param(), ("DateStyle".into(), "ISO, MDY".into()));
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn extended_errors_skip_until_sync() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.parse("", "error", &[])
        .bind("", "", &[], &[])
        .execute("", 0)
        .parse("", "rows 1", &[])
        .bind("", "", &[], &[])
        .execute("", 0)
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "12EZ");
    assert_eq!(msgs[2].code(), "42P01");

    // Bind to a missing statement; the rest up to Sync is skipped, then all is well.
    c.bind("", "nosuch", &[], &[])
        .execute("", 0)
        .sync()
        .parse("s1", "rows 2", &[])
        .bind("", "s1", &[], &[])
        .execute("", 0)
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs[0].code(), "26000");
    assert_eq!(
        msgs[0].message(),
        "prepared statement \"nosuch\" does not exist"
    );
    assert_eq!(c.tags_until_ready().await, "12DDCZ");

    // Errors in Parse itself; duplicate names; bad parameter counts; missing portals.
    c.parse("", "syntax error", &[]).sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "42601");
    c.parse("s1", "rows 1", &[]).sync().send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs[0].code(), "42P05");
    assert_eq!(
        msgs[0].message(),
        "prepared statement \"s1\" already exists"
    );
    c.parse("e", "echo $1", &[])
        .bind("", "e", &[], &[])
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "1EZ");
    assert_eq!(msgs[1].code(), "08P01");
    assert!(
        msgs[1].message().contains("supplies 0 parameters"),
        "{}",
        msgs[1].message()
    );
    c.execute("nope", 0).sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "34000");
    c.bind("", "e", &[Some("bindfail")], &[])
        .sync()
        .send()
        .await;
    assert_eq!(c.until_ready().await[0].code(), "22P02");
    c.bind("", "e", &[Some("x")], &[2]).sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "22023");
    c.bind("", "s1", &[], &[0, 1, 0]).sync().send().await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs[0].code(), "08P01");
    assert_eq!(
        msgs[0].message(),
        "bind message has 3 result formats but query has 2 columns"
    );
    c.describe(b'X', "s1").sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "08P01");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn describe_statement_and_portal() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.parse("s", "echo $1", &[])
        .describe(b'S', "s")
        .bind("p", "s", &[Some("v")], &[1])
        .describe(b'P', "p")
        .parse("c", "cmd INSERT 0 1", &[])
        .describe(b'S', "c")
        .bind("pc", "c", &[], &[])
        .describe(b'P', "pc")
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "1tT2T1tn2nZ");
    assert_eq!(&msgs[1].body, &[0, 1, 0, 0, 0, 25], "one text parameter");
    assert_eq!(msgs[2].columns(), [("p1".to_owned(), 25, 0)]);
    assert_eq!(
        msgs[4].columns(),
        [("p1".to_owned(), 25, 1)],
        "portal formats"
    );
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn execute_with_max_rows_suspends_like_postgres() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("begin").send().await;
    c.until_ready().await;
    c.parse("s", "rows 5", &[])
        .bind("p", "s", &[], &[])
        .execute("p", 2)
        .execute("p", 2)
        .execute("p", 2)
        .execute("p", 2)
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "12DDsDDsDCCZ");
    assert_eq!(msgs[9].tag_text(), "SELECT 1");
    assert_eq!(msgs[10].tag_text(), "SELECT 0");
    assert_eq!(msgs[8].text_values()[1].as_deref(), Some("row 5"));

    // Exactly filling the limit still suspends; the portal lives on inside the block.
    c.bind("q", "s", &[], &[])
        .execute("q", 5)
        .sync()
        .send()
        .await;
    assert_eq!(c.tags_until_ready().await, "2DDDDDsZ");
    c.execute("q", 0).sync().send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "CZ");
    assert_eq!(msgs[0].tag_text(), "SELECT 0");

    // Portals end with the transaction.
    c.query("commit").send().await;
    c.until_ready().await;
    c.execute("q", 0).sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "34000");

    // An empty portal says so every time; a command portal runs only once.
    c.parse("e", "", &[])
        .bind("", "e", &[], &[])
        .execute("", 0)
        .execute("", 0)
        .parse("c", "cmd UPDATE 4", &[])
        .bind("", "c", &[], &[])
        .execute("", 0)
        .execute("", 0)
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "12II12CEZ");
    assert_eq!(msgs[6].tag_text(), "UPDATE 4");
    assert_eq!(msgs[7].code(), "55000");
    assert_eq!(msgs[7].message(), "portal \"\" cannot be run");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn close_and_unnamed_statement_lifetimes() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.parse("s", "rows 1", &[])
        .close(b'S', "s")
        .close(b'P', "never-existed")
        .bind("", "s", &[], &[])
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "133EZ");
    assert_eq!(msgs[3].code(), "26000");
    // The unnamed statement survives Sync but not a simple query.
    c.parse("", "rows 1", &[]).sync().send().await;
    c.until_ready().await;
    c.bind("", "", &[], &[]).execute("", 0).sync().send().await;
    assert_eq!(c.tags_until_ready().await, "2DCZ");
    c.query("cmd X").send().await;
    c.until_ready().await;
    c.bind("", "", &[], &[]).sync().send().await;
    let msgs = c.until_ready().await;
    assert_eq!(
        msgs[0].message(),
        "unnamed prepared statement does not exist"
    );
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn output_is_written_only_at_flush_points() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.parse("s", "rows 1", &[])
        .bind("", "s", &[], &[])
        .execute("", 0)
        .send()
        .await;
    assert!(
        c.silent_for(Duration::from_millis(200)).await,
        "no output before Sync or Flush"
    );
    c.flush().send().await;
    let m = c.recv().await.unwrap();
    assert_eq!(m.tag, b'1');
    for t in [b'2', b'D', b'C'] {
        assert_eq!(c.recv().await.unwrap().tag, t);
    }
    c.sync().send().await;
    assert_eq!(c.tags_until_ready().await, "Z");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn copy_from_stdin_simple_protocol() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("copy").send().await;
    let m = c.recv().await.unwrap();
    assert_eq!(m.tag, b'G');
    assert_eq!(m.body, [0, 0, 2, 0, 0, 0, 0]);
    c.copy_data(b"1\ta\n2\tb\n")
        .flush()
        .sync()
        .copy_data(b"3\tc\n")
        .copy_done()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "CZ");
    assert_eq!(msgs[0].tag_text(), "COPY 3");

    // COPY in the middle of a batch: the rest runs after CopyDone, as in PostgreSQL.
    c.query("cmd A; copy; rows 1").send().await;
    assert_eq!(c.recv().await.unwrap().tag, b'C');
    assert_eq!(c.recv().await.unwrap().tag, b'G');
    c.copy_data(b"1\tx\n").copy_done().send().await;
    assert_eq!(c.tags_until_ready().await, "CTDCZ");

    // A bad row: the error comes at once (as in PostgreSQL 15), the rest of the batch is
    // skipped, and the client's remaining copy messages are dropped silently.
    c.query("copy; rows 1").send().await;
    assert_eq!(c.recv().await.unwrap().tag, b'G');
    c.copy_data(b"1\tbad\n").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs[0].code(), "22P02");
    c.copy_data(b"2\tfine\n").copy_done().send().await;
    assert!(c.silent_for(Duration::from_millis(100)).await);

    // CopyFail.
    c.query("copy").send().await;
    c.recv().await.unwrap();
    c.copy_data(b"1\ta\n")
        .copy_fail("client gave up")
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs[0].code(), "57014");
    assert_eq!(msgs[0].message(), "COPY from stdin failed: client gave up");

    // Another message during COPY aborts it with 08P01.
    c.query("copy").send().await;
    c.recv().await.unwrap();
    c.query("rows 1").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs[0].code(), "08P01");
    assert_eq!(
        msgs[0].message(),
        "unexpected message type 0x51 during COPY from stdin"
    );
    // Stray copy messages after that are ignored.
    c.copy_data(b"late\n")
        .copy_done()
        .query("rows 1")
        .send()
        .await;
    assert_eq!(c.tags_until_ready().await, "TDCZ");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn copy_from_stdin_extended_protocol() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    // Like pgjdbc: the whole batch including Sync is sent before the COPY data.
    c.parse("", "copy", &[])
        .bind("", "", &[], &[])
        .execute("", 0)
        .sync()
        .send()
        .await;
    assert_eq!(c.recv().await.unwrap().tag, b'1');
    assert_eq!(c.recv().await.unwrap().tag, b'2');
    assert_eq!(c.recv().await.unwrap().tag, b'G');
    c.copy_data(b"1\ta\n").copy_done().sync().send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "CZ");
    assert_eq!(msgs[0].tag_text(), "COPY 1");

    // An error skips to the next Sync.
    c.parse("", "copy", &[])
        .bind("", "", &[], &[])
        .execute("", 0)
        .send()
        .await;
    assert_eq!(c.recv().await.unwrap().tag, b'1');
    assert_eq!(c.recv().await.unwrap().tag, b'2');
    assert_eq!(c.recv().await.unwrap().tag, b'G');
    c.copy_fail("nope")
        .parse("", "rows 1", &[])
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn malformed_and_unknown_messages_are_fatal_08p01() {
    let srv = TestServer::start().await;

    let mut c = srv.session("bob").await;
    // A Bind whose parameter count promises more than the body holds.
    c.send_bytes(b"B\0\0\0\x0a\0\0\0\x01\0\x05").await;
    let msgs = c.until_closed().await;
    assert_eq!(tags(&msgs), "E");
    let f = msgs[0].fields();
    assert_eq!((f[&b'S'].as_str(), f[&b'C'].as_str()), ("FATAL", "08P01"));
    assert_eq!(f[&b'M'], "invalid message format");

    let mut c = srv.session("bob").await;
    c.send_bytes(b"\x01\0\0\0\x04").await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "08P01");
    assert_eq!(msgs[0].message(), "invalid frontend message type 1");

    let mut c = srv.session("bob").await;
    c.send_bytes(b"Q\x7f\xff\xff\xff").await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].message(), "invalid message length");

    let mut c = srv.session("bob").await;
    c.send_bytes(b"S\0\0\0\x02").await;
    assert_eq!(c.until_closed().await[0].code(), "08P01");

    // Invalid UTF-8 is an ordinary error; the connection goes on.
    let mut c = srv.session("bob").await;
    c.send_bytes(b"Q\0\0\0\x07\xc3\x28\0").await;
    let msgs = c.until_ready().await;
    assert_eq!(msgs[0].code(), "22021");
    c.query("rows 1").send().await;
    assert_eq!(c.tags_until_ready().await, "TDCZ");

    // A FATAL error from the session closes the connection after it is sent.
    c.query("fatal").send().await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].fields()[&b'S'], "FATAL");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn random_garbage_after_startup_never_kills_the_server() {
    let srv = TestServer::start().await;
    let mut seed = 0xdead_beef_cafe_f00du64;
    for round in 0..40 {
        let mut c = srv.session("bob").await;
        let mut junk = Vec::new();
        for _ in 0..(seed % 200) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Valid type bytes with random lengths and bodies reach the decoders.
            junk.push(match seed % 5 {
                0 => b"QPBDESHCdcf"[(seed >> 8) as usize % 11],
                1 => 0,
                _ => (seed >> 16) as u8,
            });
        }
        c.send_bytes(&junk).await;
        c.terminate().send().await;
        // A junk length may make the server wait for a long message: end our side too, as a
        // client that gives up does.
        c.stream.shutdown().await.unwrap();
        let _ = c.until_closed().await;
        let _ = round;
    }
    let client = srv.tokio_postgres("bob").await;
    assert_eq!(client.query("rows 2", &[]).await.unwrap().len(), 2);
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn terminate_and_eof_end_sessions_quietly() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.terminate().send().await;
    assert!(c.until_closed().await.is_empty());
    let c = srv.session("bob").await;
    drop(c);
    let client = srv.tokio_postgres("bob").await;
    assert_eq!(client.query("rows 1", &[]).await.unwrap().len(), 1);
    // Smart shutdown waits for this last session to end.
    drop(client);
    srv.stop(ShutdownMode::Smart).await;
}

#[tokio::test]
async fn terminated_sessions_get_57p01() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    srv.engine.terminate_all();
    let msgs = c.until_closed().await;
    assert_eq!(tags(&msgs), "E");
    assert_eq!(msgs[0].code(), "57P01");
    assert_eq!(
        msgs[0].message(),
        "terminating connection due to administrator command"
    );
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn open_session_errors_are_fatal() {
    let srv = TestServer::start().await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "toomany")]).await;
    let msgs = c.until_closed().await;
    assert_eq!(tags(&msgs), "E");
    assert_eq!(msgs[0].code(), "53300");
    assert_eq!(msgs[0].fields()[&b'S'], "FATAL");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn cancel_requests_reach_the_engine() {
    let srv = TestServer::start().await;
    let mut c = srv.raw().await;
    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(1234, 5678, &mut out);
    c.send_bytes(&out).await;
    assert!(
        c.until_closed().await.is_empty(),
        "no reply to a cancel request"
    );
    assert_eq!(*srv.engine.cancels.lock(), [(1234, 5678)]);
    // A 3.2-style longer key matches nothing of ours and is ignored.
    let mut c = srv.raw().await;
    c.send_bytes(&[
        0, 0, 0, 20, 4, 210, 22, 46, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8,
    ])
    .await;
    assert!(c.until_closed().await.is_empty());
    assert_eq!(srv.engine.cancels.lock().len(), 1);

    // tokio-postgres's cancel token sends the pid and key from BackendKeyData.
    let client = srv.tokio_postgres("bob").await;
    client
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    // The cancel connection is served on its own task: wait for it to arrive.
    let deadline = std::time::Instant::now() + super::support::WAIT;
    while srv.engine.cancels.lock().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "cancel request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (pid, key) = srv.engine.cancels.lock()[1];
    assert_eq!(key, pid * 7);
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn smart_shutdown_waits_for_sessions_fast_ends_them() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    srv.trigger.request(ShutdownMode::Smart);
    // New connections are refused (the listener is gone) ...
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(srv.addr).await.is_err());
    // ... but the session goes on.
    c.query("rows 1").send().await;
    assert_eq!(c.tags_until_ready().await, "TDCZ");
    // Fast shutdown ends it with 57P01.
    srv.trigger.request(ShutdownMode::Fast);
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "57P01");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn fast_shutdown_lets_a_running_statement_finish_then_ends_the_session() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("slow").send().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.trigger.request(ShutdownMode::Fast);
    let msgs = c.until_closed().await;
    assert_eq!(tags(&msgs), "CZE");
    assert_eq!(msgs[2].code(), "57P01");
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn immediate_shutdown_drops_connections() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("slow").send().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.trigger.request(ShutdownMode::Immediate);
    assert!(c.until_closed().await.is_empty());
    srv.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn unix_socket_connections_work_and_the_file_is_removed() {
    let srv = TestServer::start().await;
    let path = srv
        .socket_dir
        .path()
        .join(format!(".s.PGSQL.{}", srv.addr.port()));
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut c = Raw::new(stream);
    c.startup(&[("user", "bob")]).await;
    assert_eq!(c.tags_until_ready().await, "RSSKZ");
    assert!(srv.engine.sessions.lock()[0].client_addr.is_none());
    c.terminate().send().await;
    c.until_closed().await;
    srv.stop(ShutdownMode::Smart).await;
    assert!(!path.exists());
}

struct RecordingHandler {
    seen: parking_lot::Mutex<Vec<(String, auth::ReplicationKind, Vec<u8>)>>,
}

impl ReplicationHandler for RecordingHandler {
    fn handle(&self, mut conn: ReplicationConnection) -> BoxFuture<'static, ()> {
        self.seen
            .lock()
            .push((conn.user.clone(), conn.kind, conn.read_buf.to_vec()));
        Box::pin(async move {
            let _ = conn.stream.write_all(b"Z\0\0\0\x05I").await;
        })
    }
}

#[tokio::test]
async fn replication_connections_are_handed_off_or_refused() {
    let handler = Arc::new(RecordingHandler {
        seen: parking_lot::Mutex::new(Vec::new()),
    });
    let srv = TestServer::start_with(Options {
        replication: Some(handler.clone()),
        ..Options::default()
    })
    .await;
    let mut c = srv.raw().await;
    // The client pipelines its first command right after the startup packet.
    c.startup(&[("user", "alice"), ("replication", "true")])
        .await;
    c.query("IDENTIFY_SYSTEM").send().await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "RZ");
    {
        let seen = handler.seen.lock();
        assert_eq!(seen[0].0, "alice");
        assert_eq!(seen[0].1, auth::ReplicationKind::Physical);
        assert!(
            seen[0].2.starts_with(b"Q"),
            "leftover bytes are handed over"
        );
    }

    // A role without REPLICATION.
    let mut c = srv.raw().await;
    c.startup(&[("user", "bob"), ("replication", "on")]).await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "42501");
    assert_eq!(msgs[0].message(), "permission denied to start WAL sender");
    srv.stop(ShutdownMode::Fast).await;

    // No handler: 0A000.
    let srv = TestServer::start().await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice"), ("replication", "1")]).await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "0A000");
    assert_eq!(
        msgs[0].message(),
        "replication connections are not supported by this server"
    );
    srv.stop(ShutdownMode::Fast).await;

    // pg_hba.conf must have a `replication` line for physical replication.
    let srv = TestServer::start_with(Options {
        hba: "host all all 127.0.0.1/32 trust\n",
        ..Options::default()
    })
    .await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice"), ("replication", "true")])
        .await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "28000");
    assert!(
        msgs[0].message().contains("replication connection"),
        "{}",
        msgs[0].message()
    );
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn authentication_timeout_closes_silent_clients() {
    let srv = TestServer::start_with(Options {
        auth_timeout: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    let mut c = srv.raw().await;
    let started = std::time::Instant::now();
    assert!(c.until_closed().await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // A half-sent startup packet too.
    let mut c = srv.raw().await;
    c.send_bytes(&[0, 0, 0, 40, 0, 3]).await;
    assert!(c.until_closed().await.is_empty());
    srv.stop(ShutdownMode::Fast).await;
}

#[tokio::test]
async fn fast_shutdown_ends_a_session_that_keeps_sending() {
    let srv = TestServer::start().await;
    let mut c = srv.session("bob").await;
    c.query("copy").send().await;
    assert_eq!(c.recv().await.unwrap().tag, b'G');
    srv.trigger.request(ShutdownMode::Fast);
    // The client streams COPY data as fast as it can; it is still ended promptly.
    let sender = tokio::spawn(async move {
        for _ in 0..1000 {
            c.copy_data(b"1\tx\n");
            c.send().await;
            if c.silent_for(Duration::from_millis(1)).await {
                continue;
            }
            return c.until_closed().await;
        }
        c.until_closed().await
    });
    let msgs = tokio::time::timeout(super::support::WAIT, sender)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msgs.last().unwrap().code(), "57P01");
    srv.stop(ShutdownMode::Fast).await;
}
