//! psql for everyday use: connect, run statements, `\timing`, errors with SQLSTATE in verbose
//! mode, scripts with several statements, and catalog commands that either work or fail
//! cleanly.

mod common;

use common::TestServer;

fn psql(srv: &TestServer, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["-X", "-d", "postgres"];
    all.extend_from_slice(args);
    let out = srv.tool("psql", &all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_everyday_use() {
    let mut srv = TestServer::init();
    srv.start();
    let (ok, out, err) = psql(
        &srv,
        &[
            "-c",
            "CREATE TABLE t (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz DEFAULT now())",
            "-c",
            "INSERT INTO t (id, name, price) VALUES (1, 'apple', 1.5), (2, 'pear', NULL)",
            "-c",
            "SELECT id, name, price FROM t ORDER BY id",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("apple") && out.contains("1.50") && out.contains("(2 rows)"),
        "{out}"
    );

    let (ok, out, _) = psql(&srv, &["-c", "\\timing on", "-c", "SELECT count(*) FROM t"]);
    assert!(ok);
    assert!(out.contains("Time:"), "{out}");

    let (ok, _, err) = psql(
        &srv,
        &[
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "SELECT * FROM no_such_table",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("ERROR:  42P01: relation \"no_such_table\" does not exist"),
        "{err}"
    );

    let (ok, _, err) = psql(&srv, &["-v", "VERBOSITY=verbose", "-c", "SELECT 1/0"]);
    assert!(!ok);
    assert!(err.contains("22012"), "{err}");

    // A script: a transaction with an error in the middle rolls back.
    let script = srv.base_dir().join("script.sql");
    std::fs::write(
        &script,
        "BEGIN;\nINSERT INTO t (id, name) VALUES (3, 'plum');\nINSERT INTO t (id, name) VALUES (1, 'dup');\nCOMMIT;\nSELECT count(*) AS n FROM t;\n",
    )
    .expect("script");
    let (_, out, err) = psql(&srv, &["-f", script.to_str().expect("path")]);
    assert!(
        err.contains("duplicate key value violates unique constraint"),
        "{err}"
    );
    assert!(
        err.contains("current transaction is aborted") || out.contains("ROLLBACK"),
        "{out}{err}"
    );
    assert!(
        out.contains(" 2\n"),
        "the failed transaction left nothing:\n{out}"
    );

    // psql's ON_ERROR_ROLLBACK: a savepoint around each statement of the block, so a failed
    // statement is rolled back alone and the block commits the rest.
    let script = srv.base_dir().join("on_error_rollback.sql");
    std::fs::write(
        &script,
        "\\set ON_ERROR_ROLLBACK on\nBEGIN;\nINSERT INTO t (id, name) VALUES (3, 'plum');\nINSERT INTO t (id, name) VALUES (1, 'dup');\nINSERT INTO t (id, name) VALUES (4, 'fig');\nCOMMIT;\nSELECT id, name FROM t ORDER BY id;\n",
    )
    .expect("script");
    let (_, out, err) = psql(&srv, &["-f", script.to_str().expect("path")]);
    assert!(
        err.contains("duplicate key value violates unique constraint"),
        "{err}"
    );
    assert!(
        out.contains("COMMIT")
            && out.contains("plum")
            && out.contains("fig")
            && !out.contains("dup")
            && out.contains("(4 rows)"),
        "the block committed all but the failed statement:\n{out}{err}"
    );
    let (ok, out, err) = psql(&srv, &["-c", "DELETE FROM t WHERE id IN (3, 4)"]);
    assert!(ok && out.contains("DELETE 2"), "{out}{err}");

    // \copy out to a client-side CSV file and back in (COPY TO STDOUT / FROM STDIN).
    let csv = srv.base_dir().join("t.csv");
    let csv_path = csv.to_str().expect("path");
    let (ok, out, err) = psql(
        &srv,
        &[
            "-c",
            &format!(
                "\\copy (SELECT id, name, price FROM t ORDER BY id) TO '{csv_path}' WITH (FORMAT csv, HEADER)"
            ),
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(&csv).expect("csv written"),
        "id,name,price\n1,apple,1.50\n2,pear,\n"
    );
    let (ok, out, err) = psql(
        &srv,
        &[
            "-c",
            "CREATE TABLE t2 (id int, name text, price numeric(10,2))",
            "-c",
            &format!("\\copy t2 FROM '{csv_path}' WITH (FORMAT csv, HEADER)"),
            "-c",
            "SELECT count(*) AS n, sum(price) AS total FROM t2",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("COPY 2"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("2 |") && l.contains("1.50")),
        "the CSV came back whole, the empty price as NULL:\n{out}"
    );

    // Catalog commands answer or fail cleanly, and the connection stays usable.
    let (_, out, err) = psql(&srv, &["-c", "\\d", "-c", "SELECT 42 AS answer"]);
    assert!(out.contains("42") || err.contains("ERROR"), "{out}{err}");
    let (ok, out, _) = psql(&srv, &["-c", "SELECT version()"]);
    assert!(ok && out.contains("PostgreSQL 15"), "{out}");
    srv.stop();
}
