//! COPY ... FROM STDIN in text format: message boundaries, escapes, the end marker,
//! options, defaults, and errors; COPY ... TO STDOUT in text and CSV format.

mod common;

use common::{Collect, ok, open, rows};
use sql::{ExecOutcome, Session};

async fn start(s: &mut Session, sql: &str) -> Result<ExecOutcome, base::PgError> {
    let stmts = s.parse_batch(sql)?;
    let mut sink = Collect::default();
    s.execute(&stmts[0], &[], &mut sink).await
}

/// Runs a whole COPY, sending `chunks` as separate CopyData messages.
async fn copy(s: &mut Session, sql: &str, chunks: &[&[u8]]) -> Result<String, base::PgError> {
    let r = async {
        start(s, sql).await?;
        for c in chunks {
            s.copy_data(c).await?;
        }
        s.copy_done().await
    }
    .await;
    if let Err(e) = &r {
        s.mark_failed(e);
    }
    s.end_implicit().await?;
    r
}

async fn setup(s: &mut Session) {
    ok(s, "CREATE TABLE t (a int, b text, c int DEFAULT 42)").await;
}

#[tokio::test]
async fn lines_split_across_messages_and_many_lines_per_message() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    let tag = copy(
        &mut s,
        "COPY t FROM STDIN",
        &[
            b"1\tx",
            b"y\t7\n2\t",
            b"z\t8\n3\tw\t9\n4\t",
            b"v\t10",
            b"\n",
        ],
    )
    .await
    .expect("copy");
    assert_eq!(tag, "COPY 4");
    assert_eq!(
        rows(&mut s, "SELECT a, b, c FROM t ORDER BY a").await,
        vec!["1|xy|7", "2|z|8", "3|w|9", "4|v|10"]
    );
}

#[tokio::test]
async fn escapes_nulls_end_marker_and_crlf() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    let data: &[u8] =
        b"1\ta\\tb\\nc\\\\d\t1\n2\t\\N\t\\N\n3\t\\101\\x42\\q\t3\r\n\\.\n99\tignored\t0\n";
    assert_eq!(
        copy(&mut s, "COPY t FROM STDIN", &[data])
            .await
            .expect("copy"),
        "COPY 3"
    );
    let r = common::q(&mut s, "SELECT a, b, c FROM t ORDER BY a").await;
    assert_eq!(r.rows[0][1], base::Value::text("a\tb\nc\\d"));
    assert_eq!(r.text_rows()[1], "2|NULL|NULL");
    assert_eq!(r.rows[2][1], base::Value::text("ABq"));
    assert_eq!(r.rows.len(), 3);
}

#[tokio::test]
async fn options_column_lists_and_defaults() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    copy(
        &mut s,
        "COPY t (b, a) FROM STDIN WITH (FORMAT text, DELIMITER '|', NULL 'nil', HEADER true)",
        &[b"b|a\nx|1\nnil|2\n"],
    )
    .await
    .expect("copy");
    copy(
        &mut s,
        "COPY public.t (a) FROM stdin DELIMITER ',' NULL AS ''",
        &[b"3\n\n"],
    )
    .await
    .expect("legacy options");
    copy(
        &mut s,
        "copy t from stdin with (freeze on)",
        &[b"5\tf\t5\n"],
    )
    .await
    .expect("pgbench form");
    copy(&mut s, "copy t from stdin with (freeze)", &[b"6\tg\t6\n"])
        .await
        .expect("freeze without value");
    assert_eq!(
        rows(&mut s, "SELECT a, b, c FROM t ORDER BY a NULLS LAST").await,
        vec![
            "1|x|42",
            "2|NULL|42",
            "3|NULL|42",
            "5|f|5",
            "6|g|6",
            "NULL|NULL|42"
        ]
    );
}

#[tokio::test]
async fn wrong_field_counts_and_bad_values_are_errors_with_context() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    let e = copy(&mut s, "COPY t FROM STDIN", &[b"1\ta\t1\n2\tb\n"])
        .await
        .expect_err("missing column");
    assert_eq!(e.code.code(), "22P04");
    assert_eq!(e.message, "missing data for column \"c\"");
    assert_eq!(e.detail.as_deref(), Some("COPY t, line 2"));

    let e = copy(&mut s, "COPY t FROM STDIN", &[b"1\ta\t1\t9\n"])
        .await
        .expect_err("extra column");
    assert_eq!(e.message, "extra data after last expected column");

    let e = copy(&mut s, "COPY t FROM STDIN", &[b"1\ta\t1\nx\tb\t2\n"])
        .await
        .expect_err("bad value");
    assert_eq!(e.code.code(), "22P02");
    assert_eq!(e.detail.as_deref(), Some("COPY t, line 2, column a: \"x\""));
    // Nothing of the failed COPYs was kept.
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t").await, vec!["0"]);

    ok(&mut s, "CREATE TABLE nn (a int NOT NULL)").await;
    let e = copy(&mut s, "COPY nn FROM STDIN", &[b"\\N\n"])
        .await
        .expect_err("not null");
    assert_eq!(e.code.code(), "23502");

    let e = copy(&mut s, "COPY nope FROM STDIN", &[])
        .await
        .expect_err("no table");
    assert_eq!(e.code.code(), "42P01");
    let e = copy(&mut s, "COPY t (zz) FROM STDIN", &[])
        .await
        .expect_err("no column");
    assert_eq!(e.code.code(), "42703");
    let e = copy(&mut s, "COPY t FROM STDIN", &[b"\xff\xfe\n"])
        .await
        .expect_err("utf8");
    assert_eq!(e.code.code(), "22021");
}

#[tokio::test]
async fn copy_in_a_block_fails_the_block_and_copy_fail_cancels() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    ok(&mut s, "BEGIN").await;
    start(&mut s, "COPY t FROM STDIN").await.expect("start");
    s.copy_data(b"1\ta\t1\n").await.expect("data");
    let e = s.copy_fail("client gave up");
    assert_eq!(e.code.code(), "57014");
    assert_eq!(e.message, "COPY from stdin failed: client gave up");
    assert_eq!(s.transaction_status(), sql::TxnStatus::Failed);
    s.end_implicit().await.expect("sync");
    assert_eq!(ok(&mut s, "ROLLBACK").await, "ROLLBACK");

    // COPY inside a block is visible in the block and committed with it.
    ok(&mut s, "BEGIN").await;
    ok(&mut s, "TRUNCATE t").await;
    copy(&mut s, "COPY t FROM STDIN", &[b"7\tq\t7\n"])
        .await
        .expect("copy");
    assert_eq!(rows(&mut s, "SELECT a FROM t").await, vec!["7"]);
    assert_eq!(ok(&mut s, "COMMIT").await, "COMMIT");
    assert_eq!(rows(&mut s, "SELECT a FROM t").await, vec!["7"]);
}

/// pgbench -i loads 100 000 rows per scale factor with COPY; the target is well under
/// 3 s for 1M rows in a release build. Run with
/// `cargo test --release -p sql --test copy -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn copy_a_million_pgbench_accounts_rows() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(
        &mut s,
        "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
    )
    .await;
    ok(&mut s, "begin").await;
    ok(&mut s, "truncate table pgbench_accounts").await;
    let started = std::time::Instant::now();
    start(&mut s, "copy pgbench_accounts from stdin with (freeze on)")
        .await
        .expect("start");
    const ROWS: u32 = 1_000_000;
    let mut line = Vec::with_capacity(64);
    for aid in 1..=ROWS {
        line.clear();
        line.extend_from_slice(format!("{aid}\t{}\t0\t\n", (aid - 1) / 100_000 + 1).as_bytes());
        s.copy_data(&line).await.expect("data");
    }
    s.copy_data(b"\\.\n").await.expect("end");
    assert_eq!(s.copy_done().await.expect("done"), format!("COPY {ROWS}"));
    let copied = started.elapsed();
    ok(&mut s, "commit").await;
    let committed = started.elapsed();
    ok(&mut s, "alter table pgbench_accounts add primary key (aid)").await;
    let indexed = started.elapsed();
    println!("copy {copied:?}, +commit {committed:?}, +primary key {indexed:?}");
    assert_eq!(
        rows(&mut s, "select count(*) from pgbench_accounts").await,
        vec![ROWS.to_string()]
    );
}

// ---- COPY ... TO STDOUT ------------------------------------------------------------------

/// Runs a COPY TO in its own implicit transaction: (tag or error, column count, data).
async fn copy_out(
    s: &mut Session,
    sql: &str,
) -> (Result<String, base::PgError>, Option<usize>, String) {
    let mut sink = Collect::default();
    let r = async {
        let stmts = s.parse_batch(sql)?;
        match s.execute(&stmts[0], &[], &mut sink).await? {
            ExecOutcome::Command(tag) => Ok(tag),
            other => panic!("COPY TO answered {other:?}"),
        }
    }
    .await;
    if let Err(e) = &r {
        s.mark_failed(e);
    }
    s.end_implicit().await.expect("end");
    if r.is_ok() {
        assert!(sink.copy_done, "CopyDone after the data");
    }
    assert!(
        sink.rows.is_empty() && sink.fields.is_none(),
        "no DataRows in COPY TO"
    );
    (
        r,
        sink.copy_columns,
        String::from_utf8(sink.copy_data).expect("utf8"),
    )
}

#[tokio::test]
async fn copy_to_stdout_table_columns_and_query() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, 'one', 10), (2, E'tab\\there', NULL), (3, NULL, 30)",
    )
    .await;

    let (tag, cols, data) = copy_out(&mut s, "COPY t TO STDOUT").await;
    assert_eq!(tag.expect("copy"), "COPY 3");
    assert_eq!(cols, Some(3));
    let mut lines: Vec<&str> = data.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["1\tone\t10", "2\ttab\\there\t\\N", "3\t\\N\t30"]
    );

    let (tag, cols, data) = copy_out(
        &mut s,
        "COPY public.t (c, a) TO STDOUT WITH (FORMAT csv, HEADER true)",
    )
    .await;
    assert_eq!(tag.expect("copy"), "COPY 3");
    assert_eq!(cols, Some(2));
    assert!(data.starts_with("c,a\n"), "{data}");
    assert!(data.contains("\n,2\n") || data.ends_with(",2\n"), "{data}");

    let (tag, _, data) = copy_out(
        &mut s,
        "COPY (SELECT a, b FROM t WHERE a >= 2 ORDER BY a DESC) TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
    )
    .await;
    assert_eq!(tag.expect("copy"), "COPY 2");
    assert_eq!(data, "\"3\",\n\"2\",\"tab\there\"\n");

    // Legacy option words, as psql's \copy writes them.
    let (tag, _, data) = copy_out(
        &mut s,
        "COPY (SELECT a FROM t WHERE a = 1) TO STDOUT CSV HEADER",
    )
    .await;
    assert_eq!(tag.expect("copy"), "COPY 1");
    assert_eq!(data, "a\n1\n");

    // An empty result still opens and closes the stream.
    let (tag, cols, data) =
        copy_out(&mut s, "COPY (SELECT a FROM t WHERE a > 100) TO STDOUT").await;
    assert_eq!(tag.expect("copy"), "COPY 0");
    assert_eq!((cols, data.as_str()), (Some(1), ""));
}

#[tokio::test]
async fn copy_to_stdout_errors_carry_sqlstates() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    ok(&mut s, "INSERT INTO t VALUES (0, 'zero', 0)").await;
    for (sql, code, message) in [
        (
            "COPY nosuch TO STDOUT",
            "42P01",
            "relation \"nosuch\" does not exist",
        ),
        (
            "COPY t (zz) TO STDOUT",
            "42703",
            "column \"zz\" does not exist",
        ),
        (
            "COPY (SELECT 1 / a FROM t) TO STDOUT",
            "22012",
            "division by zero",
        ),
        (
            "COPY t TO '/tmp/x'",
            "0A000",
            "COPY TO a file or program is not supported",
        ),
        (
            "COPY t TO STDOUT (FORMAT binary)",
            "0A000",
            "COPY FORMAT binary is not supported",
        ),
        (
            "COPY t TO STDOUT (QUOTE '\"')",
            "0A000",
            "COPY quote available only in CSV mode",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv, DELIMITER ',', QUOTE ',')",
            "22023",
            "COPY delimiter and quote must be different",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (zz))",
            "42P10",
            "FORCE_QUOTE column \"zz\" not referenced by COPY",
        ),
        (
            "COPY t FROM STDIN (FORCE_QUOTE *)",
            "0A000",
            "COPY force quote available only in CSV mode",
        ),
        (
            "COPY (DELETE FROM t) TO STDOUT",
            "0A000",
            "COPY (DELETE) TO is not supported",
        ),
        (
            "COPY (SELECT 1) FROM STDIN",
            "42601",
            "syntax error at or near \"FROM\"",
        ),
    ] {
        let (r, _, _) = copy_out(&mut s, sql).await;
        let e = r.expect_err(sql);
        assert_eq!((e.code.0, e.message.as_str()), (code, message), "{sql}");
    }
    // Nothing above changed the table.
    assert_eq!(rows(&mut s, "SELECT a, b FROM t").await, vec!["0|zero"]);
}

#[tokio::test]
async fn copy_from_csv_quotes_newlines_nulls_and_header() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    // Quoted delimiter, a doubled quote, a newline inside quotes split across messages, an
    // empty quoted string vs an empty unquoted field (NULL), CRLF line ends, a header line.
    let tag = copy(
        &mut s,
        "COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER)",
        &[
            b"a,b\r\n1,\"x,y\"\r\n2,\"say \"\"hi\"\"\"\n3,\"two",
            b"\nlines\"\n4,\"\"\n5,\n6,plain\n",
        ],
    )
    .await
    .expect("copy csv");
    assert_eq!(tag, "COPY 6");
    let r = common::q(&mut s, "SELECT a, b, c FROM t ORDER BY a").await;
    assert_eq!(r.rows[0][1], base::Value::text("x,y"));
    assert_eq!(r.rows[1][1], base::Value::text("say \"hi\""));
    assert_eq!(r.rows[2][1], base::Value::text("two\nlines"));
    assert_eq!(r.rows[3][1], base::Value::text(""));
    assert_eq!(
        r.text_rows()[4],
        "5|NULL|42",
        "unquoted empty field is NULL; c got its default"
    );
    assert_eq!(r.text_rows()[5], "6|plain|42");

    // A custom escape and quote, a custom NULL string, and the end marker.
    ok(&mut s, "TRUNCATE t").await;
    let tag = copy(
        &mut s,
        "COPY t FROM STDIN WITH (FORMAT csv, QUOTE '''', ESCAPE '\\', NULL 'NULL', DELIMITER ';')",
        &[b"1;'it\\'s; ok';NULL\n2;'NULL';7\n\\.\n3;ignored;0\n"],
    )
    .await
    .expect("copy csv options");
    assert_eq!(tag, "COPY 2");
    assert_eq!(
        rows(&mut s, "SELECT a, b, c FROM t ORDER BY a").await,
        vec!["1|it's; ok|NULL", "2|NULL|7"]
    );
    let r = common::q(&mut s, "SELECT b FROM t WHERE a = 2").await;
    assert_eq!(
        r.rows[0][0],
        base::Value::text("NULL"),
        "a quoted NULL string is a value"
    );

    // The legacy syntax psql's \copy ... csv header sends.
    ok(&mut s, "TRUNCATE t").await;
    let tag = copy(&mut s, "COPY t (a) FROM STDIN CSV HEADER", &[b"a\n10\n11"])
        .await
        .expect("legacy csv");
    assert_eq!(tag, "COPY 2");
}

#[tokio::test]
async fn copy_from_csv_errors() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    setup(&mut s).await;
    for (chunks, code, message) in [
        (
            &[&b"1,\"open\n"[..]][..],
            "22P04",
            "unterminated CSV quoted field",
        ),
        (
            &[&b"1,\"a\"b\"\n"[..]][..],
            "22P04",
            "unterminated CSV quoted field",
        ),
        (&[&b"1\n"[..]][..], "22P04", "missing data for column \"b\""),
        (
            &[&b"1,x,3,4\n"[..]][..],
            "22P04",
            "extra data after last expected column",
        ),
        (
            &[&b"x,y,1\n"[..]][..],
            "22P02",
            "invalid input syntax for type integer: \"x\"",
        ),
    ] {
        let e = copy(&mut s, "COPY t FROM STDIN (FORMAT csv)", chunks)
            .await
            .expect_err("bad csv");
        assert_eq!((e.code.0, e.message.as_str()), (code, message));
    }
    assert!(rows(&mut s, "SELECT a FROM t").await.is_empty());
}

/// COPY into a table with serial and CHECK columns: a new sequence value per row, and a row
/// breaking a check stops the COPY (nothing of it stays).
#[tokio::test]
async fn copy_takes_a_sequence_value_per_row_and_checks_constraints() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(
        &mut s,
        "CREATE TABLE sc (id serial PRIMARY KEY, qty int CHECK (qty > 0), note text)",
    )
    .await;
    let tag = copy(
        &mut s,
        "COPY sc (qty, note) FROM STDIN",
        &[b"5\ta\n7\tb\n9\tc\n"],
    )
    .await
    .expect("copy");
    assert_eq!(tag, "COPY 3");
    assert_eq!(
        rows(&mut s, "SELECT id, qty FROM sc ORDER BY id").await,
        vec!["1|5", "2|7", "3|9"]
    );
    let err = copy(&mut s, "COPY sc (qty, note) FROM STDIN", &[b"4\td\n0\te\n"])
        .await
        .expect_err("check violation");
    assert_eq!(err.code.0, "23514");
    assert!(err.message.contains("sc_qty_check"), "{}", err.message);
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM sc").await,
        vec!["3"],
        "the failed COPY left nothing"
    );
    // The sequence moved on anyway (values are not transactional).
    assert_eq!(
        rows(&mut s, "INSERT INTO sc (qty) VALUES (1) RETURNING id").await,
        vec!["6"]
    );
}
