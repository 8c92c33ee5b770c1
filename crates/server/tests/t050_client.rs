//! A PostgreSQL client crate (tokio-postgres) against lockstep: every type in text and binary
//! format, parameters, NULLs, errors with SQLSTATE, transactions, COPY, and cancel.

mod common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use common::TestServer;
use rust_decimal::Decimal;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

fn ts() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 2, 29)
        .and_then(|d| d.and_hms_micro_opt(13, 14, 15, 123_456))
        .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_in_both_formats() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    c.batch_execute(
        "CREATE TABLE types (
            k int PRIMARY KEY, s smallint, i integer, b bigint, r real, d double precision,
            n numeric(12,3), t text, v varchar(20), ch char(5), bo boolean,
            ts timestamp, tz timestamptz, by bytea)",
    )
    .await
    .expect("create");
    let tz: DateTime<Utc> = DateTime::from_naive_utc_and_offset(ts(), Utc);
    let n = Decimal::new(-1_234_567, 3);
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    // Binary parameters (tokio-postgres sends typed binary values).
    c.execute(
        "INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &1i32,
            &-7i16,
            &2_147_483_647i32,
            &-9_000_000_000i64,
            &1.5f32,
            &-0.25f64,
            &n,
            &"héllo",
            &"var",
            &"ab",
            &true,
            &ts(),
            &tz,
            &bytes,
        ],
    )
    .await
    .expect("insert");
    // NULLs in every column but the key.
    c.execute("INSERT INTO types (k) VALUES ($1)", &[&2i32])
        .await
        .expect("insert nulls");

    // Binary results.
    let row = c
        .query_one(
            "SELECT s, i, b, r, d, n, t, v, ch, bo, ts, tz, by FROM types WHERE k = $1",
            &[&1i32],
        )
        .await
        .expect("select binary");
    assert_eq!(row.get::<_, i16>(0), -7);
    assert_eq!(row.get::<_, i32>(1), 2_147_483_647);
    assert_eq!(row.get::<_, i64>(2), -9_000_000_000);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), -0.25);
    assert_eq!(row.get::<_, Decimal>(5), n);
    assert_eq!(row.get::<_, String>(6), "héllo");
    assert_eq!(row.get::<_, String>(7), "var");
    assert_eq!(row.get::<_, String>(8), "ab   ", "char(5) is blank-padded");
    assert!(row.get::<_, bool>(9));
    assert_eq!(row.get::<_, NaiveDateTime>(10), ts());
    assert_eq!(row.get::<_, DateTime<Utc>>(11), tz);
    assert_eq!(row.get::<_, Vec<u8>>(12), bytes);
    let nulls = c
        .query_one("SELECT s, n, t, bo, ts, by FROM types WHERE k = 2", &[])
        .await
        .expect("select nulls");
    assert_eq!(nulls.get::<_, Option<i16>>(0), None);
    assert_eq!(nulls.get::<_, Option<Decimal>>(1), None);
    assert_eq!(nulls.get::<_, Option<String>>(2), None);
    assert_eq!(nulls.get::<_, Option<bool>>(3), None);
    assert_eq!(nulls.get::<_, Option<NaiveDateTime>>(4), None);
    assert_eq!(nulls.get::<_, Option<Vec<u8>>>(5), None);

    // Text results (simple protocol).
    let msgs = c
        .simple_query("SELECT s, i, b, r, d, n, t, v, ch, bo, ts, tz, by FROM types WHERE k = 1")
        .await
        .expect("select text");
    let row = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    let text: Vec<&str> = (0..13).map(|i| row.get(i).unwrap_or("NULL")).collect();
    assert_eq!(
        text,
        vec![
            "-7",
            "2147483647",
            "-9000000000",
            "1.5",
            "-0.25",
            "-1234.567",
            "héllo",
            "var",
            "ab   ",
            "t",
            "2024-02-29 13:14:15.123456",
            "2024-02-29 13:14:15.123456+00",
            "\\x000102ff"
        ]
    );
    // Text parameters of every type, via literals in the simple protocol.
    c.batch_execute(
        "INSERT INTO types VALUES (3, '-7', '42', '-9000000000', '1.5', '-0.25', '-1234.567', 'x', 'y', 'z', 'yes', '2024-02-29 13:14:15.123456', '2024-02-29 14:14:15.123456+01', '\\x00ff')",
    )
    .await
    .expect("insert text literals");
    let r = c
        .query_one("SELECT tz, n, bo FROM types WHERE k = 3", &[])
        .await
        .expect("select");
    assert_eq!(r.get::<_, DateTime<Utc>>(0), tz);
    assert_eq!(r.get::<_, Decimal>(1), n);
    assert!(r.get::<_, bool>(2));

    // date: binary parameters and results (chrono's NaiveDate), text output, BC years.
    c.batch_execute("CREATE TABLE days (k int PRIMARY KEY, d date)")
        .await
        .expect("create days");
    let leap = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
    let ides = NaiveDate::from_ymd_opt(-43, 3, 15).expect("44 BC");
    c.execute(
        "INSERT INTO days VALUES ($1, $2), ($3, $4)",
        &[&1i32, &leap, &2i32, &ides],
    )
    .await
    .expect("insert dates");
    let got: Vec<NaiveDate> = c
        .query("SELECT d FROM days ORDER BY d", &[])
        .await
        .expect("select dates")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got, vec![ides, leap]);
    let next: NaiveDate = c
        .query_one("SELECT d + 1 FROM days WHERE d = $1", &[&leap])
        .await
        .expect("date arithmetic")
        .get(0);
    assert_eq!(next, NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"));
    let msgs = c
        .simple_query("SELECT d FROM days ORDER BY k")
        .await
        .expect("text dates");
    let text: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(text, vec!["2024-02-29", "0044-03-15 BC"]);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_transactions_copy_and_cancel() {
    let mut srv = TestServer::init();
    srv.start();
    let mut c = srv.client().await;
    c.batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL)")
        .await
        .expect("create");
    c.execute("INSERT INTO kv VALUES (1, 'one')", &[])
        .await
        .expect("insert");

    // Errors carry SQLSTATEs.
    let cases: Vec<(&str, SqlState)> = vec![
        (
            "INSERT INTO kv VALUES (1, 'again')",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "INSERT INTO kv VALUES (2, NULL)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        ("SELECT * FROM nope", SqlState::UNDEFINED_TABLE),
        ("SELECT nope FROM kv", SqlState::UNDEFINED_COLUMN),
        (
            "SELECT 2147483647 + 1",
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
        ("SELECT 1 / 0", SqlState::DIVISION_BY_ZERO),
        ("SELECT 'abc'::int", SqlState::INVALID_TEXT_REPRESENTATION),
        ("SELEC 1", SqlState::SYNTAX_ERROR),
        ("CREATE VIEW v AS SELECT 1", SqlState::FEATURE_NOT_SUPPORTED),
    ];
    for (sql, code) in cases {
        let err = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(err.code(), Some(&code), "{sql}: {err:?}");
    }

    // A transaction that fails is aborted until ROLLBACK, and leaves nothing.
    let tx = c.transaction().await.expect("begin");
    tx.execute("INSERT INTO kv VALUES (10, 'ten')", &[])
        .await
        .expect("insert");
    let _ = tx
        .execute("INSERT INTO kv VALUES (1, 'dup')", &[])
        .await
        .expect_err("dup");
    let err = tx.execute("SELECT 1", &[]).await.expect_err("aborted");
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    drop(tx);
    let n: i64 = c
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);

    // Nested transactions (tokio-postgres's savepoints, through the extended protocol): a
    // failed inner one is rolled back alone and the outer one still commits.
    let mut tx = c.transaction().await.expect("begin");
    tx.execute("INSERT INTO kv VALUES (20, 'twenty')", &[])
        .await
        .expect("insert");
    {
        let inner = tx.savepoint("inner").await.expect("savepoint");
        inner
            .execute("INSERT INTO kv VALUES ($1, $2)", &[&21i32, &"kept"])
            .await
            .expect("insert");
        inner.commit().await.expect("release");
    }
    {
        let inner = tx.transaction().await.expect("nested");
        inner
            .execute("INSERT INTO kv VALUES (22, 'undone')", &[])
            .await
            .expect("insert");
        let err = inner
            .execute("INSERT INTO kv VALUES (1, 'dup')", &[])
            .await
            .expect_err("dup");
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
        inner.rollback().await.expect("rollback to savepoint");
    }
    tx.commit().await.expect("commit");
    let keys: Vec<i32> = c
        .query("SELECT k FROM kv ORDER BY k", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, vec![1, 20, 21]);
    c.batch_execute("DELETE FROM kv WHERE k > 1")
        .await
        .expect("clean up");

    // COPY FROM STDIN in text format, split across messages at odd places.
    {
        use futures::SinkExt;
        let sink = c
            .copy_in("COPY kv (k, v) FROM STDIN")
            .await
            .expect("copy in");
        futures::pin_mut!(sink);
        for chunk in ["100\thund", "red\n101\t", "with\\ttab\n102\t\\N", "x\n"] {
            sink.send(bytes::Bytes::from_static(chunk.as_bytes()))
                .await
                .expect("send");
        }
        let rows = sink.finish().await.expect("finish");
        assert_eq!(rows, 3);
    }
    let v: String = c
        .query_one("SELECT v FROM kv WHERE k = 101", &[])
        .await
        .expect("copied")
        .get(0);
    assert_eq!(v, "with\ttab");
    let v: String = c
        .query_one("SELECT v FROM kv WHERE k = 102", &[])
        .await
        .expect("copied")
        .get(0);
    // `\N` means NULL only as a whole field; elsewhere a backslash before a character with no
    // special meaning stands for that character, as in PostgreSQL.
    assert_eq!(v, "Nx");

    // COPY TO STDOUT (tokio-postgres runs it through the extended protocol), then the same
    // lines read back by COPY FROM STDIN into a second table.
    {
        use futures::{SinkExt, StreamExt};
        let stream = c
            .copy_out("COPY (SELECT k, v FROM kv WHERE k >= 100 ORDER BY k) TO STDOUT")
            .await
            .expect("copy out");
        futures::pin_mut!(stream);
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk.expect("copy data"));
        }
        assert_eq!(
            String::from_utf8(data.clone()).expect("utf8"),
            "100\thundred\n101\twith\\ttab\n102\tNx\n"
        );
        c.batch_execute("CREATE TABLE kv2 (k int PRIMARY KEY, v text)")
            .await
            .expect("create kv2");
        let sink = c.copy_in("COPY kv2 FROM STDIN").await.expect("copy in");
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.expect("send");
        assert_eq!(sink.finish().await.expect("finish"), 3);
        let v: String = c
            .query_one("SELECT v FROM kv2 WHERE k = 101", &[])
            .await
            .expect("round trip")
            .get(0);
        assert_eq!(v, "with\ttab");
        let csv = c
            .copy_out("COPY kv2 (v, k) TO STDOUT (FORMAT csv, HEADER)")
            .await
            .expect("copy out csv");
        futures::pin_mut!(csv);
        let mut text = Vec::new();
        while let Some(chunk) = csv.next().await {
            text.extend_from_slice(&chunk.expect("copy data"));
        }
        let text = String::from_utf8(text).expect("utf8");
        assert!(text.starts_with("v,k\n"), "{text}");
        assert!(text.contains("with\ttab,101\n"), "{text}");
        // An error inside COPY TO reaches the client and leaves the connection usable.
        let err = c
            .copy_out("COPY (SELECT 1 / (k - 100) FROM kv2) TO STDOUT")
            .await;
        let err = match err {
            Err(e) => e,
            Ok(s) => {
                futures::pin_mut!(s);
                let mut last = None;
                while let Some(item) = s.next().await {
                    if let Err(e) = item {
                        last = Some(e);
                        break;
                    }
                }
                last.expect("division by zero")
            }
        };
        assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
        let n: i64 = c
            .query_one("SELECT count(*) FROM kv2", &[])
            .await
            .expect("usable after error")
            .get(0);
        assert_eq!(n, 3);
    }

    // Cancel: a statement waiting for a row lock is cancelled with 57014.
    let holder = srv.client().await;
    holder
        .batch_execute("BEGIN; UPDATE kv SET v = 'held' WHERE k = 1")
        .await
        .expect("lock");
    let waiter = srv.client().await;
    let token = waiter.cancel_token();
    let wait = tokio::spawn(async move {
        waiter
            .execute("UPDATE kv SET v = 'waiter' WHERE k = 1", &[])
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!wait.is_finished(), "the update waits for the row lock");
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request");
    let err = wait.await.expect("join").expect_err("cancelled");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
    holder.batch_execute("ROLLBACK").await.expect("rollback");
    srv.stop();
}

/// Regression: two transactions inserting the same new key with ON CONFLICT at once used to
/// give the second a unique violation once the first committed; with speculative insertion
/// the second withdraws its row and takes the conflict path, as in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_on_conflict_takes_the_conflict_path() {
    let mut srv = TestServer::init();
    srv.start();
    let a = srv.client().await;
    a.batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v text)")
        .await
        .expect("create");
    for (action, expected) in [
        ("DO UPDATE SET v = EXCLUDED.v || '+' || kv.v", "b+a"),
        ("DO NOTHING", "a"),
    ] {
        a.batch_execute("DELETE FROM kv").await.expect("clear");
        a.batch_execute("BEGIN; INSERT INTO kv VALUES (5, 'a')")
            .await
            .expect("first insert");
        let b = srv.client().await;
        let sql = format!("INSERT INTO kv VALUES (5, 'b') ON CONFLICT (k) {action}");
        let second = tokio::spawn(async move { b.execute(&sql, &[]).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "the second insert waits for the first"
        );
        a.batch_execute("COMMIT").await.expect("commit");
        let n = second
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{action}: {e:?}"));
        assert_eq!(n, u64::from(action.starts_with("DO UPDATE")), "{action}");
        let v: String = a
            .query_one("SELECT v FROM kv WHERE k = 5", &[])
            .await
            .expect("row")
            .get(0);
        assert_eq!(v, expected, "{action}");
        let count: i64 = a
            .query_one("SELECT count(*) FROM kv", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(count, 1);
    }
    srv.stop();
}

/// A client that sends `TimeZone` in its startup packet (as JDBC sends the JVM's zone) gets
/// timestamptz text in that zone; binary values stay instants; sessions of different zones
/// on one server do not disturb each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_zone_from_startup_packet_and_set() {
    let mut srv = TestServer::init();
    srv.start();
    let conn = |zone: &str| {
        let s = format!("{} options='-c TimeZone={zone}'", srv.conn_str());
        async move {
            let (client, conn) = tokio_postgres::connect(&s, tokio_postgres::NoTls)
                .await
                .expect("connect with TimeZone");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
    };
    let berlin = conn("Europe/Berlin").await;
    let tokyo = conn("Asia/Tokyo").await;
    berlin
        .batch_execute(
            "CREATE TABLE ev (id int PRIMARY KEY, at timestamptz);
             INSERT INTO ev VALUES (1, '2026-07-01 12:00:00')",
        )
        .await
        .expect("insert local time");
    // Text: each session sees the instant in its own zone.
    let q = "SELECT at::text FROM ev WHERE id = 1";
    let (b, t) = tokio::join!(berlin.query_one(q, &[]), tokyo.query_one(q, &[]));
    assert_eq!(
        b.expect("berlin").get::<_, String>(0),
        "2026-07-01 12:00:00+02"
    );
    assert_eq!(
        t.expect("tokyo").get::<_, String>(0),
        "2026-07-01 19:00:00+09"
    );
    // Binary: the same instant, 10:00 UTC, whoever reads it.
    let utc: DateTime<Utc> = tokyo
        .query_one("SELECT at FROM ev WHERE id = 1", &[])
        .await
        .expect("binary")
        .get(0);
    assert_eq!(utc.to_rfc3339(), "2026-07-01T10:00:00+00:00");
    // A text parameter without an offset is read in the session's zone too.
    tokyo
        .execute(
            "INSERT INTO ev VALUES (2, $1::text::timestamptz)",
            &[&"2026-07-01 19:00:00"],
        )
        .await
        .expect("text param");
    let n: i64 = berlin
        .query_one(
            "SELECT count(*) FROM ev WHERE at = '2026-07-01 12:00:00'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 2, "both rows name the same instant");
    let shown: String = berlin
        .query_one("SHOW TimeZone", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(shown, "Europe/Berlin");
    srv.stop();
}
