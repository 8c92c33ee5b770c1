//! Parsing: query text → statements.
//!
//! Path of one statement: the lexer splits the query string (`split`); the pre-parser reads
//! utility statements (`utility`); SELECT/INSERT/UPDATE/DELETE are normalised (`normalize`)
//! and looked up in the session's cache (`cache`); anything else, and cache misses, go to
//! sqlparser (PostgreSQL dialect). The result is a `Template` (shared by every execution of
//! the same shape; it also holds the plan once made) plus the literal values of this
//! particular text.
//!
//! Errors: syntax errors are 42601 with PostgreSQL's wording, `syntax error at or near "x"`
//! or `syntax error at end of input`, and the 1-based character position in the whole query
//! string. sqlparser's recursion limit turns pathological nesting into 54001 instead of a
//! stack overflow. Parsing never panics (fuzzed: `tests/fuzz_parse.rs`).

pub mod cache;
pub mod lexer;
pub mod normalize;
pub mod split;
pub mod utility;

use std::sync::Arc;

use base::error::sqlstate;
use base::{DataType, PgError, Value};
use parking_lot::Mutex;
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::plan::Plan;
use cache::{Entry, StatementCache};
use lexer::Token;

/// BEGIN / SET TRANSACTION modes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnModes {
    pub read_only: Option<bool>,
    pub isolation: Option<String>,
    pub deferrable: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    Default,
    Value(String),
}

/// COPY ... FROM STDIN, text format or CSV (`csv: Some`; its `force_quote` is always
/// `None` here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyStmt {
    pub table: String,
    pub columns: Option<Vec<String>>,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub freeze: bool,
    pub csv: Option<CsvFormat>,
}

/// COPY ... TO STDOUT.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyToStmt {
    /// The rows to copy: the query of `COPY (query) TO`, or `SELECT cols FROM table` built
    /// for `COPY table [(cols)] TO`.
    pub query: Box<ast::Statement>,
    pub format: CopyFormat,
}

/// How COPY writes rows: text format (`csv: None`) or CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFormat {
    pub delimiter: u8,
    /// What a NULL is written as (text: `\N`, CSV: an empty unquoted field by default).
    pub null: String,
    /// A first line with the column names.
    pub header: bool,
    pub csv: Option<CsvFormat>,
}

/// CSV's quoting options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvFormat {
    pub quote: u8,
    /// Written before a quote or escape character inside a quoted field (default: the quote).
    pub escape: u8,
    pub force_quote: ForceQuote,
}

/// `FORCE_QUOTE`: quote non-NULL values of these columns even when they need no quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForceQuote {
    None,
    All,
    Columns(Vec<String>),
}

/// A parsed statement.
#[derive(Clone, Debug)]
pub enum Statement {
    /// No statement (empty query string or only comments).
    Empty,
    Begin(TxnModes),
    Commit {
        chain: bool,
    },
    Rollback {
        chain: bool,
    },
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name`.
    RollbackTo(String),
    SetTransaction(TxnModes),
    SetSessionCharacteristics(TxnModes),
    Set {
        name: String,
        value: SetValue,
        local: bool,
    },
    Reset {
        name: Option<String>,
    },
    Show {
        name: Option<String>,
    },
    Vacuum {
        tables: Vec<String>,
        analyze: bool,
    },
    Analyze {
        tables: Vec<String>,
    },
    Checkpoint,
    /// `CREATE ROLE` / `CREATE USER` (`user`: LOGIN by default).
    CreateRole {
        name: String,
        user: bool,
        options: Vec<RoleOption>,
    },
    /// `ALTER ROLE` / `ALTER USER`.
    AlterRole {
        name: String,
        options: Vec<RoleOption>,
    },
    /// `DROP ROLE` / `DROP USER`.
    DropRole {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `ALTER SYSTEM SET name = value` (`value` Some), `ALTER SYSTEM SET name TO DEFAULT` and
    /// `ALTER SYSTEM RESET name` (`value` None), `ALTER SYSTEM RESET ALL` (`name` None).
    AlterSystem {
        name: Option<String>,
        value: Option<String>,
    },
    Copy(CopyStmt),
    CopyTo(CopyToStmt),
    Discard(String),
    DeallocateAll,
    Sql(Box<ast::Statement>),
    /// Parsed but not implemented: the error is raised when executed.
    Unsupported(PgError),
}

/// One option of `CREATE ROLE` / `ALTER ROLE`.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleOption {
    Superuser(bool),
    Login(bool),
    Replication(bool),
    /// `PASSWORD 'x'` (`None`: `PASSWORD NULL`).
    Password(Option<String>),
    /// Accepted and ignored: CREATEDB, CREATEROLE, INHERIT, BYPASSRLS, CONNECTION LIMIT,
    /// VALID UNTIL (lockstep has one database and no role hierarchy).
    Ignored(String),
}

impl Statement {
    /// Statements allowed in a failed transaction block.
    pub fn ends_failed_block(&self) -> bool {
        matches!(
            self,
            Statement::Commit { .. } | Statement::Rollback { .. } | Statement::RollbackTo(_)
        )
    }
}

/// A statement shape: parsed once, planned once, executed many times (with different
/// literal values when it was normalised).
#[derive(Debug)]
pub struct Template {
    pub stmt: Statement,
    /// Number of client parameter slots (`$1..$n`); literal slots follow.
    pub client_params: usize,
    pub literal_types: Vec<DataType>,
    /// Client-declared parameter types (`Unknown` = infer), from Parse.
    pub declared: Vec<DataType>,
    pub plan: Mutex<Option<Arc<Plan>>>,
    /// The catalog generation at which `plan` was last checked against the catalog: while the
    /// generation is unchanged no DDL committed, so Describe can trust the plan without
    /// resolving its tables again (pgbench's prepared mode describes every execution).
    pub plan_checked_at: std::sync::atomic::AtomicU64,
}

impl Template {
    pub(crate) fn new(
        stmt: Statement,
        client_params: usize,
        literal_types: Vec<DataType>,
        declared: Vec<DataType>,
    ) -> Template {
        Template {
            stmt,
            client_params,
            literal_types,
            declared,
            plan: Mutex::new(None),
            plan_checked_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Initial types of every slot: declared client types (or unknown), then literals'.
    pub fn slot_types(&self) -> Vec<DataType> {
        let mut v: Vec<DataType> = (0..self.client_params)
            .map(|i| self.declared.get(i).copied().unwrap_or(DataType::Unknown))
            .collect();
        v.extend_from_slice(&self.literal_types);
        v
    }

    pub fn declared_mask(&self) -> Vec<bool> {
        (0..self.client_params)
            .map(|i| {
                self.declared
                    .get(i)
                    .is_some_and(|t| *t != DataType::Unknown)
            })
            .collect()
    }
}

/// 1-based character position of sqlparser's (line, column) in `text`.
fn line_col_position(text: &str, line: usize, col: usize) -> u32 {
    let mut pos = 0usize;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            pos += col.saturating_sub(1).min(l.chars().count());
            break;
        }
        pos += l.chars().count() + 1;
    }
    u32::try_from(pos + 1).unwrap_or(u32::MAX)
}

/// Converts a sqlparser error into PostgreSQL's syntax error.
fn syntax_error(text: &str, e: &ParserError) -> PgError {
    let msg = match e {
        ParserError::RecursionLimitExceeded => {
            return PgError::new(base::SqlState("54001"), "stack depth limit exceeded")
                .with_hint("The statement is nested too deeply.");
        }
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.as_str(),
    };
    let end_position = u32::try_from(text.chars().count() + 1).unwrap_or(u32::MAX);
    let at = msg.rfind(" at Line: ");
    let location = at.and_then(|i| {
        let rest = &msg[i + " at Line: ".len()..];
        let (l, c) = rest.split_once(", Column: ")?;
        Some((
            l.trim().parse::<usize>().ok()?,
            c.trim().parse::<usize>().ok()?,
        ))
    });
    let found = msg.find("found: ").map(|i| {
        let start = i + "found: ".len();
        let end = at.filter(|a| *a >= start).unwrap_or(msg.len());
        &msg[start..end]
    });
    let pos = location.map_or(end_position, |(l, c)| line_col_position(text, l, c));
    match (found, location) {
        (Some("EOF"), _) | (None, None) => {
            PgError::syntax("syntax error at end of input").with_position(end_position)
        }
        (Some(tok), _) => {
            PgError::syntax(format!("syntax error at or near \"{tok}\"")).with_position(pos)
        }
        (None, Some(_)) => {
            let near: String = text
                .chars()
                .skip(pos.saturating_sub(1) as usize)
                .take_while(|c| !c.is_whitespace())
                .collect();
            if near.is_empty() {
                PgError::syntax("syntax error at end of input").with_position(end_position)
            } else {
                PgError::syntax(format!("syntax error at or near \"{near}\"")).with_position(pos)
            }
        }
    }
}

fn sqlparser_parse(text: &str) -> Result<Vec<ast::Statement>, PgError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| syntax_error(text, &e))
}

/// Parses one statement's text (already split, tokens relative to `text`).
pub fn parse_statement(text: &str, toks: &[Token]) -> Result<Statement, PgError> {
    if let Some(r) = utility::parse(text, toks) {
        return r;
    }
    let mut stmts = sqlparser_parse(text)?;
    match stmts.len() {
        1 => Ok(Statement::Sql(Box::new(stmts.remove(0)))),
        0 => Err(PgError::syntax("syntax error at end of input")),
        _ => Err(PgError::syntax(
            "cannot insert multiple commands into a prepared statement",
        )),
    }
}

/// Parses a standalone expression (a column DEFAULT stored in the catalog).
pub fn parse_expr(text: &str) -> Result<ast::Expr, PgError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| syntax_error(text, &e))
}

/// The client's declared parameter types (0 = infer).
pub fn declared_types(oids: &[u32]) -> Result<Vec<DataType>, PgError> {
    oids.iter()
        .map(|&o| {
            DataType::from_oid(o).ok_or_else(|| {
                PgError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("parameters of the type with OID {o} are not supported"),
                )
            })
        })
        .collect()
}

/// A chain of N binary operators (`1+1+...`, `a OR b OR ...`) parses into a tree N levels
/// deep, and dropping or walking such a tree recurses N times. sqlparser's trees drop at
/// about 100 bytes of stack per level in debug builds, so 10 000 operators stay well inside
/// a 2 MiB task stack; no realistic statement comes close. (Parenthesised and unary nesting
/// is bounded separately by sqlparser's recursion limit; the binder and evaluator grow their
/// stack on demand.)
const OPERATORS_MAX: usize = 10_000;

fn check_operator_count(src: &str, toks: &[Token]) -> Result<(), PgError> {
    let n = toks
        .iter()
        .filter(|t| {
            t.kind == lexer::TokenKind::Operator
                || ["and", "or", "not", "is", "like", "ilike"]
                    .iter()
                    .any(|k| t.is_keyword(src, k))
        })
        .count();
    if n > OPERATORS_MAX {
        return Err(
            PgError::new(base::SqlState("54001"), "stack depth limit exceeded").with_hint(format!(
                "The statement has more than {OPERATORS_MAX} operators; simplify it."
            )),
        );
    }
    Ok(())
}

/// One statement ready to execute: its shape and this text's literal values.
pub struct Parsed {
    pub template: Arc<Template>,
    pub literals: Vec<Value>,
}

fn shift_position(mut e: PgError, offset: u32) -> PgError {
    if let Some(p) = e.position {
        e.position = Some(p.saturating_add(offset));
    }
    e
}

/// Parses one statement through the cache. `char_offset` is the statement's position in the
/// whole query string (for error positions).
pub fn parse_cached(
    cache: &mut StatementCache,
    text: &str,
    toks: &[Token],
    declared: &[DataType],
    char_offset: u32,
) -> Result<Parsed, PgError> {
    check_operator_count(text, toks).map_err(|e| shift_position(e, char_offset))?;
    let client_params = normalize::max_param(text, toks).max(declared.len());
    let suffix = if declared.is_empty() {
        String::new()
    } else {
        let mut s = String::from("\u{1}");
        for t in declared {
            s.push_str(&t.oid().to_string());
            s.push(',');
        }
        s
    };
    if let Some(mut n) = normalize::normalize(text, toks, client_params) {
        let mut key = std::mem::take(&mut n.key);
        key.push_str(&suffix);
        match cache.get(&key) {
            Some(Entry::Template(t)) => {
                return Ok(Parsed {
                    template: t,
                    literals: n.literals,
                });
            }
            Some(Entry::NoNormalize) => {}
            None => match sqlparser_parse(&n.text) {
                Ok(mut stmts) if stmts.len() == 1 => {
                    let t = Arc::new(Template::new(
                        Statement::Sql(Box::new(stmts.remove(0))),
                        client_params,
                        n.literal_types,
                        declared.to_vec(),
                    ));
                    cache.insert(key, Entry::Template(t.clone()));
                    return Ok(Parsed {
                        template: t,
                        literals: n.literals,
                    });
                }
                _ => cache.insert(key, Entry::NoNormalize),
            },
        }
    }
    let mut key = String::with_capacity(text.len() + suffix.len());
    key.push_str(text);
    key.push_str(&suffix);
    if let Some(Entry::Template(t)) = cache.get(&key) {
        return Ok(Parsed {
            template: t,
            literals: Vec::new(),
        });
    }
    let stmt = parse_statement(text, toks).map_err(|e| shift_position(e, char_offset))?;
    let t = Arc::new(Template::new(
        stmt,
        client_params,
        Vec::new(),
        declared.to_vec(),
    ));
    cache.insert(key, Entry::Template(t.clone()));
    Ok(Parsed {
        template: t,
        literals: Vec::new(),
    })
}

/// Splits and parses a whole query string without a session (for fuzzing and tools): the
/// same path `Session::parse_batch` takes, with a throwaway cache.
pub fn parse_script(text: &str) -> Result<Vec<Statement>, PgError> {
    let pieces =
        split::split(text).map_err(|e| PgError::syntax(e.message).with_position(e.position))?;
    let mut cache = StatementCache::default();
    pieces
        .iter()
        .map(|p| {
            parse_cached(&mut cache, p.text, &p.tokens, &[], p.char_offset)
                .map(|parsed| parsed.template.stmt.clone())
        })
        .collect()
}

/// Names a statement kind for "X is not supported" (e.g. `CREATE VIEW`).
pub fn statement_kind(stmt: &ast::Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    let first = words
        .first()
        .copied()
        .unwrap_or("statement")
        .to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "ALTER" | "DROP" => {
            let mut kind = vec![first.clone()];
            for w in words.iter().skip(1) {
                let up = w.to_ascii_uppercase();
                let is_modifier = matches!(
                    up.as_str(),
                    "OR" | "REPLACE"
                        | "UNIQUE"
                        | "MATERIALIZED"
                        | "TEMPORARY"
                        | "TEMP"
                        | "FOREIGN"
                        | "GLOBAL"
                        | "LOCAL"
                        | "UNLOGGED"
                );
                kind.push(up);
                if !is_modifier {
                    break;
                }
            }
            kind.join(" ")
        }
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Statement, PgError> {
        let toks = lexer::tokenize(s).map_err(|e| PgError::syntax(e.message))?;
        parse_statement(s, &toks)
    }

    #[test]
    fn pgbench_init_statements_parse() {
        for s in [
            "vacuum analyze pgbench_branches",
            "copy pgbench_accounts from stdin with (freeze on)",
            "alter table pgbench_branches add primary key (bid)",
            "truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
            "END",
            "BEGIN",
        ] {
            assert!(parse(s).is_ok(), "{s}");
        }
        assert!(matches!(
            parse("vacuum analyze pgbench_branches"),
            Ok(Statement::Vacuum { analyze: true, .. })
        ));
        match parse("copy pgbench_accounts from stdin with (freeze on)") {
            Ok(Statement::Copy(c)) => {
                assert!(c.freeze);
                assert_eq!(c.table, "pgbench_accounts");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_have_postgres_wording_and_positions() {
        let e = parse("selec 1").expect_err("error");
        assert_eq!(e.code, sqlstate::SYNTAX_ERROR);
        assert_eq!(e.message, "syntax error at or near \"selec\"");
        assert_eq!(e.position, Some(1));
        let e = parse("select 1 +").expect_err("error");
        assert_eq!(e.message, "syntax error at end of input");
        let e = parse("select * from where").expect_err("error");
        assert_eq!(e.message, "syntax error at or near \"where\"");
        assert_eq!(e.position, Some(15));
        let e = parse("set x").expect_err("error");
        assert_eq!(e.message, "syntax error at end of input");
        let e = parse("begin foo").expect_err("error");
        assert_eq!(e.message, "syntax error at or near \"foo\"");
    }

    #[test]
    fn alter_system_forms() {
        let got = |q: &str| match parse(q) {
            Ok(Statement::AlterSystem { name, value }) => (name, value),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(
            got("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1, s2)'"),
            (
                Some("synchronous_standby_names".into()),
                Some("FIRST 1 (s1, s2)".into())
            )
        );
        assert_eq!(
            got("alter system set work_mem to '64MB'"),
            (Some("work_mem".into()), Some("64MB".into()))
        );
        assert_eq!(
            got("ALTER SYSTEM SET work_mem TO DEFAULT"),
            (Some("work_mem".into()), None)
        );
        assert_eq!(
            got("ALTER SYSTEM RESET work_mem"),
            (Some("work_mem".into()), None)
        );
        assert_eq!(got("ALTER SYSTEM RESET ALL"), (None, None));
        assert!(parse("ALTER SYSTEM SET work_mem").is_err());
        assert!(parse("ALTER SYSTEM work_mem = 1").is_err());
    }

    #[test]
    fn set_show_forms() {
        assert!(matches!(
            parse("SET LOCAL synchronous_commit TO off"),
            Ok(Statement::Set { local: true, .. })
        ));
        match parse("set search_path = a, \"B\", 'c'") {
            Ok(Statement::Set { value, .. }) => {
                assert_eq!(value, SetValue::Value("a, B, c".into()))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("SET TIME ZONE 'UTC'"),
            Ok(Statement::Set { .. })
        ));
        assert!(matches!(
            parse("show transaction isolation level"),
            Ok(Statement::Show { name: Some(_) })
        ));
        assert!(matches!(
            parse("reset all"),
            Ok(Statement::Reset { name: None })
        ));
        assert!(matches!(
            parse("set statement_timeout = -1"),
            Ok(Statement::Set { .. })
        ));
    }

    #[test]
    fn statement_kinds_for_messages() {
        let stmts = sqlparser_parse("create view v as select 1").expect("parse");
        assert_eq!(statement_kind(&stmts[0]), "CREATE VIEW");
        let stmts = sqlparser_parse("create or replace view v as select 1").expect("parse");
        assert_eq!(statement_kind(&stmts[0]), "CREATE OR REPLACE VIEW");
    }
}
