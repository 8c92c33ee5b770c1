//! Table-driven SQL tests: every `tests/sql/*.test` file is a script of statements with
//! expected results, run through one simple-protocol session (or several, by name).
//!
//! Format (blocks separated by blank lines; `#` lines are comments):
//!
//! ```text
//! statement ok                     -- succeeds (any tag)
//! CREATE TABLE t (a int)
//!
//! statement error 42P01 relation "nope" does not exist   -- SQLSTATE, optional message
//! SELECT * FROM nope
//!
//! tag INSERT 0 2                   -- exact command tag
//! INSERT INTO t VALUES (1), (2)
//!
//! query                            -- rows as text, columns joined by |, NULL as NULL
//! SELECT a FROM t ORDER BY a
//! ----
//! 1
//! 2
//!
//! query columns                    -- first expected line: name:type of each column
//! SELECT count(*) FROM t
//! ----
//! count:int8
//! 2
//!
//! notice there is no transaction in progress   -- a notice/warning containing the text
//! COMMIT
//!
//! connection b                     -- switch to (or open) session "b" for what follows
//! ```
//!
//! Files ending in `.pending` hold cases that depend on work not yet landed (base::pgio /
//! base::cast completion); they run only with `SQL_TEST_PENDING=1`.
//!
//! Statement text may span lines and hold several statements (one simple query); the
//! expectations apply to its last statement's result.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Collect, StmtResult, simple};
use sql::{ExecOutcome, Session};

#[derive(Debug)]
enum Expect {
    Ok,
    Error(String, Option<String>),
    Tag(String),
    Query { columns: bool },
    Notice(String),
}

struct Block {
    expect: Expect,
    sql: String,
    output: Vec<String>,
}

fn parse_script(text: &str) -> Vec<(usize, Option<String>, Option<Block>)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        if let Some(name) = line.strip_prefix("connection ") {
            out.push((start, Some(name.trim().to_owned()), None));
            i += 1;
            continue;
        }
        let expect = if line == "statement ok" {
            Expect::Ok
        } else if let Some(rest) = line.strip_prefix("statement error ") {
            let (code, msg) = match rest.split_once(' ') {
                Some((c, m)) => (c.to_owned(), Some(m.trim().to_owned())),
                None => (rest.trim().to_owned(), None),
            };
            Expect::Error(code, msg)
        } else if let Some(t) = line.strip_prefix("tag ") {
            Expect::Tag(t.trim().to_owned())
        } else if line == "query" {
            Expect::Query { columns: false }
        } else if line == "query columns" {
            Expect::Query { columns: true }
        } else if let Some(t) = line.strip_prefix("notice ") {
            Expect::Notice(t.trim().to_owned())
        } else {
            panic!("line {start}: unknown directive {line:?}");
        };
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i]);
            i += 1;
        }
        let mut output = Vec::new();
        if i < lines.len() && lines[i].trim() == "----" {
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                output.push(lines[i].trim_end().to_owned());
                i += 1;
            }
        }
        out.push((
            start,
            None,
            Some(Block {
                expect,
                sql: sql.join("\n"),
                output,
            }),
        ));
    }
    out
}

fn describe(r: &StmtResult) -> String {
    format!("{} rows={:?}", r.tag(), r.text_rows())
}

async fn run_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read test file");
    let (engine, _hooks) = common::new_engine();
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let mut current = "default".to_owned();
    sessions.insert(current.clone(), common::open(&engine));
    let mut failures = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (line, conn, block) in parse_script(&text) {
        if let Some(c) = conn {
            sessions
                .entry(c.clone())
                .or_insert_with(|| common::open(&engine));
            current = c;
            continue;
        }
        let Some(b) = block else { continue };
        let Some(s) = sessions.get_mut(&current) else {
            continue;
        };
        let mut results = simple(s, &b.sql).await;
        let notices = s.take_notices();
        let r = results.pop().unwrap_or(StmtResult {
            outcome: Ok(ExecOutcome::Empty),
            fields: None,
            rows: Vec::new(),
            zone: Default::default(),
        });
        // An earlier statement of the batch failing is a failure of the block.
        let earlier_error = results.iter().find(|r| r.outcome.is_err()).map(describe);
        let fail = |why: String| format!("{name}:{line}: {why}\n    SQL: {}", b.sql);
        match (&b.expect, &r.outcome) {
            (_, _) if earlier_error.is_some() && !matches!(b.expect, Expect::Error(..)) => {
                failures.push(fail(format!("earlier statement failed: {earlier_error:?}")));
            }
            (Expect::Ok, Ok(_)) => {}
            (Expect::Tag(t), Ok(_)) => {
                if &r.tag() != t {
                    failures.push(fail(format!("expected tag {t:?}, got {:?}", r.tag())));
                }
            }
            (Expect::Error(code, msg), Err(e)) => {
                if e.code.code() != code {
                    failures.push(fail(format!(
                        "expected {code}, got {}: {}",
                        e.code, e.message
                    )));
                } else if let Some(m) = msg
                    && !e.message.contains(m.as_str())
                {
                    failures.push(fail(format!(
                        "expected message containing {m:?}, got {:?}",
                        e.message
                    )));
                }
            }
            (Expect::Error(code, _), Ok(_)) => {
                failures.push(fail(format!("expected error {code}, got {}", describe(&r))));
            }
            (Expect::Query { columns }, Ok(_)) => {
                let mut got = Vec::new();
                if *columns {
                    got.push(
                        r.fields
                            .iter()
                            .flatten()
                            .map(|f| format!("{}:{}", f.name, internal(f.data_type)))
                            .collect::<Vec<_>>()
                            .join("|"),
                    );
                }
                got.extend(r.text_rows());
                if got != b.output {
                    failures.push(fail(format!(
                        "expected {:?}\n    got      {:?}",
                        b.output, got
                    )));
                }
            }
            (Expect::Notice(n), Ok(_)) => {
                if !notices.iter().any(|x| x.message.contains(n.as_str())) {
                    failures.push(fail(format!("expected notice {n:?}, got {notices:?}")));
                }
            }
            (_, Err(e)) => {
                failures.push(fail(format!("unexpected error {}: {}", e.code, e.message)))
            }
        }
        let _ = Collect::default();
    }
    failures
}

fn internal(t: base::DataType) -> &'static str {
    sql::plan::types::internal_name(t)
}

#[tokio::test]
async fn sql_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| {
                x == "test" || (x == "pending" && std::env::var("SQL_TEST_PENDING").is_ok())
            })
        })
        .collect();
    files.sort();
    let only = std::env::var("SQL_TEST").ok();
    let mut failures = Vec::new();
    for f in files {
        if let Some(o) = &only
            && !f.to_string_lossy().contains(o.as_str())
        {
            continue;
        }
        failures.extend(run_file(&f).await);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
