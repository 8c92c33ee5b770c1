//! Garbage in, errors out: random and mutated SQL through `parse_batch`, `prepare`,
//! `describe` and `execute` must never panic (the lead's cargo-fuzz target uses the same
//! entry points). Deterministic: a fixed-seed generator, so a failure reproduces.

mod common;

use common::{Collect, ok, open};
use sql::Session;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "TABLE",
    "DROP",
    "INDEX",
    "ON",
    "PRIMARY",
    "KEY",
    "UNIQUE",
    "NOT",
    "NULL",
    "AND",
    "OR",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "ESCAPE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "AS",
    "ORDER",
    "BY",
    "GROUP",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "DISTINCT",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "COPY",
    "STDIN",
    "WITH",
    "FREEZE",
    "VACUUM",
    "ANALYZE",
    "SHOW",
    "RESET",
    "ALL",
    "LOCAL",
    "RETURNING",
    "CONFLICT",
    "DO",
    "NOTHING",
    "EXCLUDED",
    "DEFAULT",
    "TRUE",
    "FALSE",
    "IS",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "now",
    "coalesce",
    "substring",
    "trim",
    "abs",
    "round",
    "current_setting",
    "set_config",
    "pg_cancel_backend",
    "t",
    "a",
    "b",
    "c",
    "pg_stat_activity",
    "int",
    "bigint",
    "text",
    "numeric",
    "varchar",
    "char",
    "timestamp",
    "bool",
    "(",
    ")",
    ",",
    ";",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">",
    "<=",
    ">=",
    "||",
    "::",
    ".",
    "$1",
    "$2",
    "'x'",
    "'1'",
    "''",
    "0",
    "1",
    "-1",
    "2147483648",
    "9223372036854775808",
    "1.5",
    "1e400",
    "E'\\n'",
    "$$d$$",
    "\"q\"",
    "--c\n",
    "/* c */",
    "'",
    "\"",
    "$",
    "\\",
    "\u{0}",
    "é",
    "[",
    "]",
];

const SEEDS: &[&str] = &[
    "SELECT a, b FROM t WHERE a = 1 ORDER BY b DESC LIMIT 3",
    "INSERT INTO t VALUES (1, 'x') ON CONFLICT (a) DO UPDATE SET b = excluded.b RETURNING *",
    "UPDATE t SET b = b || 'y' WHERE a BETWEEN 1 AND 5",
    "DELETE FROM t WHERE b LIKE 'x%' ESCAPE '#'",
    "SELECT count(DISTINCT b), sum(a), avg(a) FROM t GROUP BY b HAVING count(*) > 1",
    "CREATE TABLE u (a int PRIMARY KEY, b varchar(5) DEFAULT 'q', c numeric(5,2) NOT NULL)",
    "copy t from stdin with (freeze on, delimiter '|', null 'n')",
    "copy t from stdin (format csv, header, quote '''', escape '\\')",
    "COPY (SELECT a, b FROM t WHERE a > 1 ORDER BY a) TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
    "copy t (b) to stdout csv header force quote b",
    "SELECT t.a, u.b FROM t JOIN t AS u ON t.a = u.a LEFT JOIN t v USING (a) WHERE u.b IS NULL",
    "SELECT count(*) FROM t NATURAL JOIN t AS x FULL JOIN t y ON x.a = y.a + 1 GROUP BY y.b",
    "SELECT date_trunc('hour', now()), extract(epoch from now()), now() AT TIME ZONE 'Asia/Tokyo'",
    "SELECT a, (SELECT max(b) FROM t) FROM t WHERE a IN (SELECT a FROM t WHERE b IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM t WHERE a < 0)",
    "SELECT s.a FROM (SELECT a, count(*) AS n FROM t GROUP BY a) s JOIN t ON t.a = s.a",
    "WITH x (n) AS (SELECT a FROM t), y AS (SELECT n FROM x) SELECT n FROM y UNION SELECT a FROM t EXCEPT ALL SELECT 1 ORDER BY 1 LIMIT 2",
    "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM t u WHERE u.a = t.a AND u.b IN (SELECT b FROM t v WHERE v.a = u.a))",
    "vacuum analyze t",
    "SET LOCAL statement_timeout = '1s'",
    "SELECT CASE WHEN a > 1 THEN 'a' ELSE NULL END, coalesce(b, 'z'), a::text FROM t",
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT 1; COMMIT",
    "SELECT substring(b from 1 for 2), trim(both 'x' from b), position('a' in b) FROM t",
    "SELECT * FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
];

const ATOMS: &[&str] = &[
    "a",
    "b",
    "t.a",
    "NULL",
    "1",
    "0",
    "-1",
    "2147483647",
    "-2147483648",
    "9223372036854775807",
    "1.5",
    "0.0",
    "'x'",
    "''",
    "'1'",
    "true",
    "false",
    "now()",
    "random()",
    "$1",
    "'2147483648'",
    "1e10",
    "99999999999999999999999999",
    "'%'",
];
const BINOPS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">=",
    "||",
    "AND",
    "OR",
    "LIKE",
    "ILIKE",
    "IS DISTINCT FROM",
];
const FUNCS: &[&str] = &[
    "abs",
    "round",
    "ceil",
    "floor",
    "mod",
    "length",
    "lower",
    "upper",
    "substr",
    "btrim",
    "concat",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "current_setting",
    "pg_typeof",
    "left",
    "repeat",
    "replace",
    "strpos",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "pg_walfile_name",
    "set_config",
    "trunc",
];
const TYPES: &[&str] = &[
    "int",
    "bigint",
    "smallint",
    "text",
    "numeric",
    "numeric(3,1)",
    "varchar(2)",
    "char(2)",
    "bool",
    "float8",
    "real",
    "timestamp",
    "timestamptz",
    "bytea",
];

fn expr(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return ATOMS[rng.below(ATOMS.len())].to_owned();
    }
    match rng.below(9) {
        0 | 1 => format!(
            "({} {} {})",
            expr(rng, depth - 1),
            BINOPS[rng.below(BINOPS.len())],
            expr(rng, depth - 1)
        ),
        2 => {
            let n = rng.below(4);
            let args: Vec<String> = (0..n).map(|_| expr(rng, depth - 1)).collect();
            format!("{}({})", FUNCS[rng.below(FUNCS.len())], args.join(", "))
        }
        3 => format!(
            "CAST({} AS {})",
            expr(rng, depth - 1),
            TYPES[rng.below(TYPES.len())]
        ),
        4 => format!(
            "CASE WHEN {} THEN {} ELSE {} END",
            expr(rng, depth - 1),
            expr(rng, depth - 1),
            expr(rng, depth - 1)
        ),
        5 => format!(
            "{} IN ({}, {})",
            expr(rng, depth - 1),
            expr(rng, depth - 1),
            expr(rng, depth - 1)
        ),
        6 => format!("NOT {}", expr(rng, depth - 1)),
        7 => format!("{} IS NULL", expr(rng, depth - 1)),
        _ => format!("-{}", expr(rng, depth - 1)),
    }
}

fn statement(rng: &mut Rng) -> String {
    let e = |rng: &mut Rng| {
        let d = 1 + rng.below(3);
        expr(rng, d)
    };
    match rng.below(6) {
        0 => format!(
            "SELECT {}, {} FROM t WHERE {} ORDER BY 1 LIMIT 5",
            e(rng),
            e(rng),
            e(rng)
        ),
        1 => format!("SELECT {} FROM t GROUP BY 1 HAVING {}", e(rng), e(rng)),
        2 => format!(
            "UPDATE t SET b = {} WHERE a = {} RETURNING {}",
            e(rng),
            e(rng),
            e(rng)
        ),
        3 => format!(
            "INSERT INTO t VALUES ({}, {}) ON CONFLICT (a) DO UPDATE SET b = {}",
            e(rng),
            e(rng),
            e(rng)
        ),
        4 => format!("DELETE FROM t WHERE {}", e(rng)),
        _ => format!("SELECT {}", e(rng)),
    }
}

fn generate(rng: &mut Rng) -> String {
    match rng.below(6) {
        4 | 5 => statement(rng),
        0 => {
            let n = rng.below(40);
            (0..n)
                .map(|_| WORDS[rng.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        }
        1 => {
            let n = rng.below(60);
            let bytes: Vec<u8> = (0..n).map(|_| (rng.next() & 0x7f) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => {
            let mut s: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(s.len() + 1);
                match rng.below(3) {
                    0 if at < s.len() => {
                        s.remove(at);
                    }
                    1 => {
                        let w = WORDS[rng.below(WORDS.len())];
                        for (k, c) in w.chars().enumerate() {
                            s.insert(at + k, c);
                        }
                    }
                    _ if at < s.len() => {
                        s[at] = WORDS[rng.below(WORDS.len())].chars().next().unwrap_or(' ');
                    }
                    _ => {}
                }
            }
            s.into_iter().collect()
        }
    }
}

async fn exercise(s: &mut Session, text: &str) {
    let _ = sql::parse::parse_script(text);
    match s.parse_batch(text) {
        Ok(stmts) => {
            for st in stmts {
                let mut sink = Collect::default();
                match s.execute(&st, &[], &mut sink).await {
                    Ok(sql::ExecOutcome::CopyIn { .. }) => {
                        let _ = s.copy_data(b"1\tx\n2\n\\N\t\\x4\n").await;
                        let _ = s.copy_data(b"3,\"a,\n\"\"b\"\n\"4").await;
                        let _ = s.copy_done().await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        s.mark_failed(&e);
                        break;
                    }
                }
            }
        }
        Err(e) => s.mark_failed(&e),
    }
    let _ = s.end_implicit().await;
    if let Ok(p) = s.prepare(text, &[]) {
        let _ = s.describe(&p);
    }
    let _ = s.end_implicit().await;
    // Leave no block open for the next input.
    if s.transaction_status() != sql::TxnStatus::Idle {
        let stmts = s.parse_batch("ROLLBACK").expect("rollback parses");
        let mut sink = Collect::default();
        let _ = s.execute(&stmts[0], &[], &mut sink).await;
        let _ = s.end_implicit().await;
    }
    let _ = s.take_notices();
}

#[tokio::test]
async fn random_and_mutated_sql_never_panics() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    ok(&mut s, "CREATE TABLE t (a int PRIMARY KEY, b text)").await;
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'xyz')",
    )
    .await;
    ok(&mut s, "SET statement_timeout = '2s'").await;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let iterations = std::env::var("SQL_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for _ in 0..iterations {
        let text = generate(&mut rng);
        exercise(&mut s, &text).await;
    }
    // The session still works.
    assert_eq!(
        common::rows(&mut s, "SELECT count(*) FROM t WHERE a > 0")
            .await
            .len(),
        1
    );
}

/// Deep nesting must be an error, not a stack overflow (tokio's worker stacks are 2 MiB).
#[test]
fn deeply_nested_and_long_expressions_are_errors_not_crashes() {
    let run = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (engine, _) = common::new_engine();
            let mut s = open(&engine);
            let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
            exercise(&mut s, &deep).await;
            let long = format!("SELECT 1{}", "+1".repeat(100_000));
            exercise(&mut s, &long).await;
            let ors = format!("SELECT true{}", " OR false".repeat(50_000));
            exercise(&mut s, &ors).await;
            let not = format!("SELECT {}true", "NOT ".repeat(20_000));
            exercise(&mut s, &not).await;
            let minus = format!("SELECT {}1", "-".repeat(20_000));
            exercise(&mut s, &minus).await;
            let list = format!("SELECT 1 IN ({})", vec!["1"; 50_000].join(","));
            exercise(&mut s, &list).await;
            // Just under the operator limit: works, on a small stack.
            let sum = format!("SELECT 1{}", "+1".repeat(9_000));
            assert_eq!(common::rows(&mut s, &sum).await, vec!["9001"]);
            ok(&mut s, "CREATE TABLE t (a int)").await;
            ok(&mut s, "INSERT INTO t VALUES (3), (4000)").await;
            let ors: Vec<String> = (0..4_000).map(|i| format!("a = {i}")).collect();
            let q = format!("SELECT count(*) FROM t WHERE {}", ors.join(" OR "));
            assert_eq!(common::rows(&mut s, &q).await, vec!["1"]);
        });
    };
    // Run on a thread with a tokio-sized stack.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("no crash");
}
