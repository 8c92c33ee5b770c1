//! The pre-parser: utility statements read from tokens, before (and instead of) sqlparser.
//!
//! Transaction control (`BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`,
//! `SET TRANSACTION`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`), settings (`SET`, `RESET`, `SHOW` in all of PostgreSQL's forms),
//! `VACUUM`/`ANALYZE` (accepted, no work to do: lockstep has no dead tuples to reclaim and no
//! planner statistics), `CHECKPOINT`, `COPY ... FROM STDIN` with PostgreSQL's option syntax,
//! and `DISCARD`. sqlparser reads the Redshift form of VACUUM and rejects `FREEZE on`; the
//! hot transaction statements are also cheaper here than through a full parse.
//!
//! Statements lockstep does not implement at all (LISTEN/NOTIFY, LOCK, EXPLAIN,
//! two-phase commit) become `Statement::Unsupported`, raised when executed, as PostgreSQL
//! raises such errors at execution. `None` means "not a utility statement".

use base::PgError;
use base::error::sqlstate;

use super::lexer::{Token, TokenKind, char_position, string_value};
use super::{CopyStmt, SetValue, Statement, TxnModes};

struct Cur<'a> {
    src: &'a str,
    toks: &'a [Token],
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    fn at_end(&self) -> bool {
        self.i >= self.toks.len()
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(self.src, kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_op(self.src, op)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_kind(&mut self, kind: TokenKind) -> bool {
        if self.peek().is_some_and(|t| t.kind == kind) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn error(&self) -> PgError {
        match self.peek() {
            Some(t) => PgError::syntax(format!("syntax error at or near \"{}\"", t.text(self.src)))
                .with_position(char_position(self.src, t.start)),
            None => PgError::syntax("syntax error at end of input")
                .with_position(char_position(self.src, self.src.len())),
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), PgError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn expect_end(&self) -> Result<(), PgError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// A name (identifier or keyword), lower-cased unless quoted.
    fn name(&mut self) -> Result<String, PgError> {
        match self.peek() {
            Some(t) if matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent) => {
                self.i += 1;
                Ok(t.word(self.src).unwrap_or_default())
            }
            _ => Err(self.error()),
        }
    }

    /// A possibly dotted name (`a.b`).
    fn dotted_name(&mut self) -> Result<String, PgError> {
        let mut n = self.name()?;
        while self.eat_kind(TokenKind::Dot) {
            n.push('.');
            n.push_str(&self.name()?);
        }
        Ok(n)
    }

    /// One SET value: a word, a quoted identifier, a string, or a signed number.
    fn value(&mut self) -> Result<String, PgError> {
        let sign = if self.eat_op("-") {
            "-"
        } else {
            self.eat_op("+");
            ""
        };
        let Some(t) = self.peek() else {
            return Err(self.error());
        };
        let v = match t.kind {
            TokenKind::Number => format!("{sign}{}", t.text(self.src)),
            _ if !sign.is_empty() => return Err(self.error()),
            TokenKind::Word | TokenKind::QuotedIdent => t.word(self.src).unwrap_or_default(),
            TokenKind::String => string_value(t.text(self.src)),
            TokenKind::OtherString => decode_other_string(t.text(self.src)),
            _ => return Err(self.error()),
        };
        self.i += 1;
        Ok(v)
    }

    /// A boolean option value (`on`, `off`, `true`, `1`, `'yes'`, ...).
    fn bool_value(&mut self) -> Result<bool, PgError> {
        let at = self.i;
        let v = self.value()?;
        crate::guc::parse_bool(&v).ok_or_else(|| {
            self.i = at;
            self.error()
        })
    }

    fn string(&mut self) -> Result<String, PgError> {
        match self.peek() {
            Some(t) if t.kind == TokenKind::String => {
                self.i += 1;
                Ok(string_value(t.text(self.src)))
            }
            Some(t) if t.kind == TokenKind::OtherString => {
                self.i += 1;
                Ok(decode_other_string(t.text(self.src)))
            }
            _ => Err(self.error()),
        }
    }
}

/// Decodes `E'...'` (backslash escapes) and `$tag$...$tag$`; other prefixes keep their body.
fn decode_other_string(t: &str) -> String {
    if let Some(body) = t.strip_prefix('$') {
        let Some(tag_end) = body.find('$') else {
            return String::new();
        };
        let tag_len = tag_end + 2;
        return t
            .get(tag_len..t.len().saturating_sub(tag_len))
            .unwrap_or("")
            .to_owned();
    }
    let (prefix, rest) = t.split_at(t.find('\'').unwrap_or(0));
    let body = rest.get(1..rest.len().saturating_sub(1)).unwrap_or("");
    if !prefix.eq_ignore_ascii_case("e") {
        return body.replace("''", "'");
    }
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some(o) => out.push(o),
                None => {}
            },
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            other => out.push(other),
        }
    }
    out
}

fn unsupported(what: &str) -> Statement {
    Statement::Unsupported(PgError::feature_not_supported(what))
}

/// Parses `toks` as a utility statement, or `None` if it is not one.
pub fn parse(src: &str, toks: &[Token]) -> Option<Result<Statement, PgError>> {
    let first = toks.first()?;
    if first.kind != TokenKind::Word {
        return None;
    }
    let kw = first.text(src).to_ascii_lowercase();
    let mut c = Cur { src, toks, i: 1 };
    let result = match kw.as_str() {
        "begin" => {
            let _ = c.eat_kw("work") || c.eat_kw("transaction");
            txn_modes(&mut c).map(Statement::Begin)
        }
        "start" => c
            .expect_kw("transaction")
            .and_then(|()| txn_modes(&mut c))
            .map(Statement::Begin),
        "commit" | "end" => {
            if kw == "commit" && c.is_kw("prepared") {
                return Some(Ok(unsupported("two-phase commit")));
            }
            let _ = c.eat_kw("work") || c.eat_kw("transaction");
            chain(&mut c).map(|chain| Statement::Commit { chain })
        }
        "rollback" | "abort" => {
            if kw == "rollback" && c.is_kw("prepared") {
                return Some(Ok(unsupported("two-phase commit")));
            }
            let _ = c.eat_kw("work") || c.eat_kw("transaction");
            if kw == "rollback" && c.eat_kw("to") {
                let _ = c.eat_kw("savepoint");
                return Some(savepoint_name(&mut c).map(Statement::RollbackTo));
            }
            chain(&mut c).map(|chain| Statement::Rollback { chain })
        }
        "savepoint" => savepoint_name(&mut c).map(Statement::Savepoint),
        "release" => {
            let _ = c.eat_kw("savepoint");
            savepoint_name(&mut c).map(Statement::Release)
        }
        "prepare" => {
            if c.is_kw("transaction") {
                Ok(unsupported("two-phase commit"))
            } else {
                Ok(unsupported("PREPARE"))
            }
        }
        "execute" => Ok(unsupported("EXECUTE")),
        "deallocate" => {
            let _ = c.eat_kw("prepare");
            if c.eat_kw("all") {
                c.expect_end().map(|()| Statement::DeallocateAll)
            } else {
                c.name().map(|n| {
                    Statement::Unsupported(PgError::new(
                        sqlstate::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{n}\" does not exist"),
                    ))
                })
            }
        }
        "listen" | "unlisten" | "notify" => Ok(unsupported("LISTEN/NOTIFY")),
        "lock" => Ok(unsupported("LOCK TABLE")),
        "explain" => Ok(unsupported("EXPLAIN")),
        "set" => set(&mut c),
        "reset" => reset(&mut c),
        "show" => show(&mut c),
        "vacuum" => vacuum(&mut c, true),
        "analyze" | "analyse" => vacuum(&mut c, false),
        "checkpoint" => c.expect_end().map(|()| Statement::Checkpoint),
        "create" if c.is_kw("role") || c.is_kw("user") => create_role(&mut c),
        "alter" if c.is_kw("role") || c.is_kw("user") => alter_role(&mut c),
        "alter" if c.is_kw("system") => alter_system(&mut c),
        "drop" if c.is_kw("role") || c.is_kw("user") => drop_role(&mut c),
        "copy" => copy(&mut c),
        "discard" => {
            let what = c.name();
            what.and_then(|w| match w.as_str() {
                "all" | "plans" | "sequences" | "temp" | "temporary" => c
                    .expect_end()
                    .map(|()| Statement::Discard(w.to_uppercase())),
                _ => Err(c.error()),
            })
        }
        _ => return None,
    };
    Some(result)
}

/// The name ending `SAVEPOINT name`, `RELEASE [SAVEPOINT] name` and `ROLLBACK TO [SAVEPOINT]
/// name`: an identifier, folded to lower case unless quoted.
fn savepoint_name(c: &mut Cur<'_>) -> Result<String, PgError> {
    let name = c.name()?;
    c.expect_end()?;
    Ok(name)
}

/// `CREATE ROLE|USER name [[WITH] option ...]`.
fn create_role(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    let user = c.eat_kw("user");
    if !user {
        c.expect_kw("role")?;
    }
    let name = c.name()?;
    let options = role_options(c)?;
    Ok(Statement::CreateRole {
        name,
        user,
        options,
    })
}

/// `ALTER ROLE|USER name [WITH] option ...`.
fn alter_role(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    if !c.eat_kw("user") {
        c.expect_kw("role")?;
    }
    let name = c.name()?;
    if c.is_kw("rename") || c.is_kw("set") || c.is_kw("reset") || c.is_kw("in") {
        return Ok(unsupported("this form of ALTER ROLE"));
    }
    let options = role_options(c)?;
    Ok(Statement::AlterRole { name, options })
}

/// `ALTER SYSTEM SET name { TO | = } { value [, ...] | DEFAULT }`, `ALTER SYSTEM RESET
/// { name | ALL }`.
fn alter_system(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    c.expect_kw("system")?;
    if c.eat_kw("reset") {
        let name = if c.eat_kw("all") {
            None
        } else {
            Some(c.dotted_name()?)
        };
        c.expect_end()?;
        return Ok(Statement::AlterSystem { name, value: None });
    }
    c.expect_kw("set")?;
    let name = c.dotted_name()?;
    if !(c.eat_kw("to") || c.eat_op("=")) {
        return Err(c.error());
    }
    if c.eat_kw("default") && c.at_end() {
        return Ok(Statement::AlterSystem {
            name: Some(name),
            value: None,
        });
    }
    let mut values = vec![c.value()?];
    while c.eat_kind(TokenKind::Comma) {
        values.push(c.value()?);
    }
    c.expect_end()?;
    Ok(Statement::AlterSystem {
        name: Some(name),
        value: Some(values.join(", ")),
    })
}

/// `DROP ROLE|USER [IF EXISTS] name [, ...]`.
fn drop_role(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    if !c.eat_kw("user") {
        c.expect_kw("role")?;
    }
    let if_exists = if c.eat_kw("if") {
        c.expect_kw("exists")?;
        true
    } else {
        false
    };
    let mut names = vec![c.name()?];
    while c.eat_op(",") {
        names.push(c.name()?);
    }
    c.expect_end()?;
    Ok(Statement::DropRole { names, if_exists })
}

fn role_options(c: &mut Cur<'_>) -> Result<Vec<crate::parse::RoleOption>, PgError> {
    use crate::parse::RoleOption as O;
    let _ = c.eat_kw("with");
    let mut options = Vec::new();
    while !c.at_end() {
        let word = c.name()?;
        let option = match word.as_str() {
            "superuser" => O::Superuser(true),
            "nosuperuser" => O::Superuser(false),
            "login" => O::Login(true),
            "nologin" => O::Login(false),
            "replication" => O::Replication(true),
            "noreplication" => O::Replication(false),
            "encrypted" | "password" => {
                if word == "encrypted" {
                    c.expect_kw("password")?;
                }
                if c.eat_kw("null") {
                    O::Password(None)
                } else {
                    O::Password(Some(c.string()?))
                }
            }
            "createdb" | "nocreatedb" | "createrole" | "nocreaterole" | "inherit" | "noinherit"
            | "bypassrls" | "nobypassrls" => O::Ignored(word),
            "connection" => {
                c.expect_kw("limit")?;
                let _ = c.eat_op("-");
                let _ = c.value()?;
                O::Ignored(word)
            }
            "valid" => {
                c.expect_kw("until")?;
                let _ = c.string()?;
                O::Ignored(word)
            }
            "sysid" | "in" | "role" | "admin" | "user" => {
                return Err(PgError::feature_not_supported(format!(
                    "role option {}",
                    word.to_uppercase()
                )));
            }
            _ => return Err(c.error()),
        };
        options.push(option);
    }
    Ok(options)
}

fn chain(c: &mut Cur<'_>) -> Result<bool, PgError> {
    if c.eat_kw("and") {
        let no = c.eat_kw("no");
        c.expect_kw("chain")?;
        c.expect_end()?;
        return Ok(!no);
    }
    c.expect_end()?;
    Ok(false)
}

/// Transaction modes: ISOLATION LEVEL ..., READ WRITE/ONLY, [NOT] DEFERRABLE, with optional
/// commas.
fn txn_modes(c: &mut Cur<'_>) -> Result<TxnModes, PgError> {
    let mut m = TxnModes::default();
    loop {
        if c.at_end() {
            return Ok(m);
        }
        if c.eat_kw("isolation") {
            c.expect_kw("level")?;
            let level = if c.eat_kw("serializable") {
                "serializable"
            } else if c.eat_kw("repeatable") {
                c.expect_kw("read")?;
                "repeatable read"
            } else if c.eat_kw("read") {
                if c.eat_kw("committed") {
                    "read committed"
                } else {
                    c.expect_kw("uncommitted")?;
                    "read uncommitted"
                }
            } else {
                return Err(c.error());
            };
            m.isolation = Some(level.to_owned());
        } else if c.eat_kw("read") {
            if c.eat_kw("only") {
                m.read_only = Some(true);
            } else {
                c.expect_kw("write")?;
                m.read_only = Some(false);
            }
        } else if c.eat_kw("not") {
            c.expect_kw("deferrable")?;
            m.deferrable = Some(false);
        } else if c.eat_kw("deferrable") {
            m.deferrable = Some(true);
        } else {
            return Err(c.error());
        }
        c.eat_kind(TokenKind::Comma);
    }
}

fn set(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    let mut local = false;
    if c.eat_kw("local") {
        local = true;
    } else {
        c.eat_kw("session");
    }
    if c.eat_kw("transaction") {
        return txn_modes(c).map(Statement::SetTransaction);
    }
    if c.is_kw("characteristics") {
        c.i += 1;
        c.expect_kw("as")?;
        c.expect_kw("transaction")?;
        return txn_modes(c).map(Statement::SetSessionCharacteristics);
    }
    if c.is_kw("time")
        && c.toks
            .get(c.i + 1)
            .is_some_and(|t| t.is_keyword(c.src, "zone"))
    {
        c.i += 2;
        let value = if c.eat_kw("local") || c.eat_kw("default") {
            SetValue::Default
        } else if c.eat_kw("interval") {
            // `INTERVAL '+05:30' [HOUR TO MINUTE]`: hours east of UTC, as the plain number
            // form takes them.
            let text = c.string()?;
            if c.eat_kw("hour") {
                c.expect_kw("to")?;
                c.expect_kw("minute")?;
            }
            SetValue::Value(interval_hours(&text).ok_or_else(|| {
                PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("invalid interval value for time zone: \"{text}\""),
                )
            })?)
        } else {
            SetValue::Value(c.value()?)
        };
        c.expect_end()?;
        return Ok(Statement::Set {
            name: "timezone".into(),
            value,
            local,
        });
    }
    if c.eat_kw("names") {
        let value = if c.at_end() || c.eat_kw("default") {
            SetValue::Default
        } else {
            SetValue::Value(c.value()?)
        };
        c.expect_end()?;
        return Ok(Statement::Set {
            name: "client_encoding".into(),
            value,
            local,
        });
    }
    if c.eat_kw("schema") {
        let v = c.value()?;
        c.expect_end()?;
        return Ok(Statement::Set {
            name: "search_path".into(),
            value: SetValue::Value(v),
            local,
        });
    }
    if c.is_kw("role") || c.is_kw("constraints") {
        return Ok(unsupported(if c.is_kw("role") {
            "SET ROLE"
        } else {
            "SET CONSTRAINTS"
        }));
    }
    if c.is_kw("session")
        && c.toks
            .get(c.i + 1)
            .is_some_and(|t| t.is_keyword(c.src, "authorization"))
    {
        return Ok(unsupported("SET SESSION AUTHORIZATION"));
    }
    let name = c.dotted_name()?;
    if !(c.eat_kw("to") || c.eat_op("=")) {
        return Err(c.error());
    }
    if c.eat_kw("default") && c.at_end() {
        return Ok(Statement::Set {
            name,
            value: SetValue::Default,
            local,
        });
    }
    let mut values = vec![c.value()?];
    while c.eat_kind(TokenKind::Comma) {
        values.push(c.value()?);
    }
    c.expect_end()?;
    Ok(Statement::Set {
        name,
        value: SetValue::Value(values.join(", ")),
        local,
    })
}

fn reset(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    let name = if c.eat_kw("all") {
        None
    } else if c.is_kw("time") {
        c.i += 1;
        c.expect_kw("zone")?;
        Some("timezone".to_owned())
    } else if c.is_kw("session") {
        c.i += 1;
        c.expect_kw("authorization")?;
        return Ok(unsupported("RESET SESSION AUTHORIZATION"));
    } else if c.is_kw("role") {
        return Ok(unsupported("RESET ROLE"));
    } else {
        Some(c.dotted_name()?)
    };
    c.expect_end()?;
    Ok(Statement::Reset { name })
}

fn show(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    let name = if c.eat_kw("all") {
        None
    } else if c.is_kw("time") {
        c.i += 1;
        c.expect_kw("zone")?;
        Some("TimeZone".to_owned())
    } else if c.is_kw("transaction") {
        c.i += 1;
        c.expect_kw("isolation")?;
        c.expect_kw("level")?;
        Some("transaction_isolation".to_owned())
    } else if c.is_kw("session") {
        c.i += 1;
        c.expect_kw("authorization")?;
        Some("session_authorization".to_owned())
    } else {
        Some(c.dotted_name()?)
    };
    c.expect_end()?;
    Ok(Statement::Show { name })
}

/// VACUUM / ANALYZE: options and table lists are parsed (so typos are errors and the tables
/// can be checked to exist), then nothing is done.
fn vacuum(c: &mut Cur<'_>, is_vacuum: bool) -> Result<Statement, PgError> {
    let mut analyze = !is_vacuum;
    if c.eat_kind(TokenKind::LParen) {
        loop {
            let opt = c.name()?;
            if opt == "analyze" || opt == "analyse" {
                analyze = true;
            }
            // Optional option argument (`(VERBOSE true, PARALLEL 2)`).
            if !matches!(
                c.peek().map(|t| t.kind),
                Some(TokenKind::Comma | TokenKind::RParen)
            ) {
                c.value()?;
            }
            if c.eat_kind(TokenKind::RParen) {
                break;
            }
            if !c.eat_kind(TokenKind::Comma) {
                return Err(c.error());
            }
        }
    } else if is_vacuum {
        loop {
            if c.eat_kw("full") || c.eat_kw("freeze") || c.eat_kw("verbose") {
                continue;
            }
            if c.eat_kw("analyze") || c.eat_kw("analyse") {
                analyze = true;
                continue;
            }
            break;
        }
    } else {
        c.eat_kw("verbose");
    }
    let mut tables = Vec::new();
    while !c.at_end() {
        let name = c.dotted_name()?;
        tables.push(name.rsplit('.').next().unwrap_or(&name).to_owned());
        if c.eat_kind(TokenKind::LParen) {
            loop {
                c.name()?;
                if c.eat_kind(TokenKind::RParen) {
                    break;
                }
                if !c.eat_kind(TokenKind::Comma) {
                    return Err(c.error());
                }
            }
        }
        if !c.eat_kind(TokenKind::Comma) {
            break;
        }
    }
    c.expect_end()?;
    Ok(if is_vacuum {
        Statement::Vacuum { tables, analyze }
    } else {
        Statement::Analyze { tables }
    })
}

/// `[+-]HH[:MM]` as a decimal number of hours (`-03:30` → `-3.5`).
fn interval_hours(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m > 59 {
        return None;
    }
    let hours = f64::from(h) + f64::from(m) / 60.0;
    Some(format!("{}{hours}", if neg { "-" } else { "" }))
}

/// COPY table [(columns)] FROM STDIN | COPY {table [(columns)] | (query)} TO STDOUT,
/// each with `[WITH] (options)` or the legacy option words.
fn copy(c: &mut Cur<'_>) -> Result<Statement, PgError> {
    if c.eat_kw("binary") {
        return Ok(unsupported("COPY BINARY"));
    }
    let source = if c.eat_kind(TokenKind::LParen) {
        CopySource::Query(copy_query(c)?)
    } else {
        let name = c.dotted_name()?;
        let table = match name.split_once('.') {
            Some(("public", t)) => t.to_owned(),
            Some((schema, _)) => {
                return Err(PgError::new(
                    base::SqlState("3F000"),
                    format!("schema \"{schema}\" does not exist"),
                ));
            }
            None => name,
        };
        let columns = if c.eat_kind(TokenKind::LParen) {
            Some(paren_names(c)?)
        } else {
            None
        };
        CopySource::Table { table, columns }
    };
    let to = if c.eat_kw("to") {
        if !c.eat_kw("stdout") {
            if c.is_kw("program") || c.peek().is_some_and(|t| t.kind == TokenKind::String) {
                return Ok(unsupported("COPY TO a file or program"));
            }
            return Err(c.error());
        }
        true
    } else {
        if matches!(source, CopySource::Query(_)) {
            // PostgreSQL's grammar has no COPY (query) FROM.
            return Err(c.error());
        }
        c.expect_kw("from")?;
        if !c.eat_kw("stdin") {
            if c.is_kw("program") || c.peek().is_some_and(|t| t.kind == TokenKind::String) {
                return Ok(unsupported("COPY FROM a file or program"));
            }
            return Err(c.error());
        }
        false
    };
    let opts = match copy_options(c)? {
        Ok(o) => o,
        Err(unsupported_stmt) => return Ok(unsupported_stmt),
    };
    c.expect_end()?;
    let csv = opts.csv;
    let delimiter = opts.delimiter.unwrap_or(if csv { b',' } else { b'\t' });
    let null = opts
        .null
        .clone()
        .unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
    if !csv {
        for (set, what) in [
            (opts.quote.is_some(), "quote"),
            (opts.escape.is_some(), "escape"),
            (opts.force_quote.is_some(), "force quote"),
        ] {
            if set {
                return Err(PgError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("COPY {what} available only in CSV mode"),
                ));
            }
        }
    }
    if !to && opts.force_quote.is_some() {
        return Err(PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "COPY force quote only available using COPY TO",
        ));
    }
    let invalid = |m: &str| PgError::new(sqlstate::INVALID_PARAMETER_VALUE, m);
    if null.contains(['\n', '\r']) {
        return Err(invalid(
            "COPY null representation cannot use newline or carriage return",
        ));
    }
    if null.contains(char::from(delimiter)) {
        return Err(invalid(
            "COPY delimiter must not appear in the NULL specification",
        ));
    }
    if !csv
        && (delimiter == b'\\'
            || delimiter.is_ascii_lowercase()
            || delimiter.is_ascii_digit()
            || delimiter == b'.')
    {
        return Err(invalid(&format!(
            "COPY delimiter cannot be \"{}\"",
            char::from(delimiter)
        )));
    }
    let csv_format = if csv {
        let quote = opts.quote.unwrap_or(b'"');
        if quote == delimiter {
            return Err(invalid("COPY delimiter and quote must be different"));
        }
        if null.contains(char::from(quote)) {
            return Err(invalid(
                "CSV quote character must not appear in the NULL specification",
            ));
        }
        Some(super::CsvFormat {
            quote,
            escape: opts.escape.unwrap_or(quote),
            force_quote: opts.force_quote.clone().unwrap_or(super::ForceQuote::None),
        })
    } else {
        None
    };
    match source {
        CopySource::Table { table, columns } if !to => Ok(Statement::Copy(CopyStmt {
            table,
            columns,
            delimiter,
            null,
            header: opts.header,
            freeze: opts.freeze,
            csv: csv_format,
        })),
        source => {
            if opts.freeze {
                return Err(PgError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "COPY FREEZE cannot be used with COPY TO",
                ));
            }
            let query = match source {
                CopySource::Query(q) => q,
                CopySource::Table { table, columns } => {
                    let list = match columns {
                        None => "*".to_owned(),
                        Some(cols) => cols
                            .iter()
                            .map(|n| quote_ident(n))
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    let text = format!("SELECT {list} FROM {}", quote_ident(&table));
                    let mut stmts = super::sqlparser_parse(&text)?;
                    Box::new(stmts.remove(0))
                }
            };
            Ok(Statement::CopyTo(super::CopyToStmt {
                query,
                format: super::CopyFormat {
                    delimiter,
                    null,
                    header: opts.header,
                    csv: csv_format,
                },
            }))
        }
    }
}

enum CopySource {
    Table {
        table: String,
        columns: Option<Vec<String>>,
    },
    Query(Box<sqlparser::ast::Statement>),
}

/// The query of `COPY (query) TO`, after its `(`: the text up to the matching `)`, parsed as
/// a statement that returns rows.
fn copy_query(c: &mut Cur<'_>) -> Result<Box<sqlparser::ast::Statement>, PgError> {
    let first = c.i;
    let mut depth = 1usize;
    while depth > 0 {
        match c.peek().map(|t| t.kind) {
            None => return Err(c.error()),
            Some(TokenKind::LParen) => depth += 1,
            Some(TokenKind::RParen) => depth -= 1,
            Some(_) => {}
        }
        c.i += 1;
    }
    let inner = &c.toks[first..c.i - 1];
    let (Some(a), Some(b)) = (inner.first(), inner.last()) else {
        return Err(PgError::syntax("syntax error at or near \")\""));
    };
    let text = &c.src[a.start..b.end];
    let mut stmts = super::sqlparser_parse(text).map_err(|mut e| {
        // Positions count from the start of the whole COPY statement.
        if let Some(p) = e.position {
            e.position = Some(
                p.saturating_add(char_position(c.src, a.start))
                    .saturating_sub(1),
            );
        }
        e
    })?;
    if stmts.len() != 1 {
        return Err(PgError::syntax("COPY query must be a single statement"));
    }
    let stmt = stmts.remove(0);
    if !matches!(stmt, sqlparser::ast::Statement::Query(_)) {
        return Err(PgError::feature_not_supported(format!(
            "COPY ({}) TO",
            super::statement_kind(&stmt)
        )));
    }
    Ok(Box::new(stmt))
}

/// An identifier as PostgreSQL prints it: double-quoted, inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// COPY's options, both syntaxes, before they are checked against the direction and format.
#[derive(Default)]
struct CopyOptions {
    csv: bool,
    delimiter: Option<u8>,
    null: Option<String>,
    header: bool,
    freeze: bool,
    quote: Option<u8>,
    escape: Option<u8>,
    force_quote: Option<super::ForceQuote>,
}

/// Reads `[WITH] (option [value], ...)` or the legacy option words. An option lockstep
/// does not have comes back as `Err(statement answering 0A000)`.
fn copy_options(c: &mut Cur<'_>) -> Result<Result<CopyOptions, Statement>, PgError> {
    let mut o = CopyOptions::default();
    c.eat_kw("with");
    if c.eat_kind(TokenKind::LParen) {
        loop {
            let opt = c.name()?;
            let bare = matches!(
                c.peek().map(|t| t.kind),
                Some(TokenKind::Comma | TokenKind::RParen)
            );
            match opt.as_str() {
                "format" => {
                    let f = c.value()?.to_ascii_lowercase();
                    match f.as_str() {
                        "text" => o.csv = false,
                        "csv" => o.csv = true,
                        "binary" => return Ok(Err(unsupported("COPY FORMAT binary"))),
                        _ => {
                            return Err(PgError::new(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("COPY format \"{f}\" not recognized"),
                            ));
                        }
                    }
                }
                "freeze" => o.freeze = bare || c.bool_value()?,
                "header" => o.header = bare || c.bool_value()?,
                "delimiter" => o.delimiter = Some(delimiter(&c.string()?)?),
                "null" => o.null = Some(c.string()?),
                "quote" => o.quote = Some(csv_char(&c.string()?, "quote")?),
                "escape" => o.escape = Some(csv_char(&c.string()?, "escape")?),
                "force_quote" => o.force_quote = Some(force_quote_list(c)?),
                "force_not_null" | "force_null" => {
                    return Ok(Err(unsupported(&format!("COPY option {opt}"))));
                }
                "encoding" => {
                    let e = c.string()?;
                    if !matches!(
                        e.to_ascii_uppercase().replace(['-', '_'], "").as_str(),
                        "UTF8" | "SQLASCII"
                    ) {
                        return Ok(Err(unsupported(&format!("COPY ENCODING {e}"))));
                    }
                }
                other => {
                    return Ok(Err(unsupported(&format!("COPY option {other}"))));
                }
            }
            if c.eat_kind(TokenKind::RParen) {
                break;
            }
            if !c.eat_kind(TokenKind::Comma) {
                return Err(c.error());
            }
        }
    } else {
        // Legacy option syntax (before PostgreSQL 9.0).
        loop {
            if c.eat_kw("binary") {
                return Ok(Err(unsupported("COPY BINARY")));
            } else if c.eat_kw("freeze") {
                o.freeze = true;
            } else if c.eat_kw("delimiter") {
                c.eat_kw("as");
                o.delimiter = Some(delimiter(&c.string()?)?);
            } else if c.eat_kw("null") {
                c.eat_kw("as");
                o.null = Some(c.string()?);
            } else if c.eat_kw("csv") {
                o.csv = true;
            } else if c.eat_kw("header") {
                o.header = true;
            } else if c.eat_kw("quote") {
                c.eat_kw("as");
                o.quote = Some(csv_char(&c.string()?, "quote")?);
            } else if c.eat_kw("escape") {
                c.eat_kw("as");
                o.escape = Some(csv_char(&c.string()?, "escape")?);
            } else if c.eat_kw("force") {
                if c.eat_kw("quote") {
                    o.force_quote = Some(if c.eat_op("*") {
                        super::ForceQuote::All
                    } else {
                        super::ForceQuote::Columns(name_list(c)?)
                    });
                } else {
                    return Ok(Err(unsupported("COPY FORCE NOT NULL")));
                }
            } else {
                break;
            }
        }
    }
    Ok(Ok(o))
}

/// `FORCE_QUOTE *` or `FORCE_QUOTE (a, b)` in the parenthesised syntax.
fn force_quote_list(c: &mut Cur<'_>) -> Result<super::ForceQuote, PgError> {
    if c.eat_op("*") {
        return Ok(super::ForceQuote::All);
    }
    if !c.eat_kind(TokenKind::LParen) {
        return Err(c.error());
    }
    Ok(super::ForceQuote::Columns(paren_names(c)?))
}

/// `a, b, c)` after an opening parenthesis.
fn paren_names(c: &mut Cur<'_>) -> Result<Vec<String>, PgError> {
    let mut cols = Vec::new();
    loop {
        cols.push(c.name()?);
        if c.eat_kind(TokenKind::RParen) {
            return Ok(cols);
        }
        if !c.eat_kind(TokenKind::Comma) {
            return Err(c.error());
        }
    }
}

/// `a, b, c` (the legacy FORCE QUOTE column list).
fn name_list(c: &mut Cur<'_>) -> Result<Vec<String>, PgError> {
    let mut cols = vec![c.name()?];
    while c.eat_kind(TokenKind::Comma) {
        cols.push(c.name()?);
    }
    Ok(cols)
}

/// CSV's QUOTE and ESCAPE: one single-byte character.
fn csv_char(s: &str, what: &str) -> Result<u8, PgError> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("COPY {what} must be a single one-byte character"),
        )),
    }
}

fn delimiter(d: &str) -> Result<u8, PgError> {
    let b = d.as_bytes();
    if b.len() != 1 {
        return Err(PgError::feature_not_supported(
            "a COPY delimiter that is not a single one-byte character",
        ));
    }
    if matches!(b[0], b'\n' | b'\r') {
        return Err(PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "COPY delimiter cannot be newline or carriage return",
        ));
    }
    Ok(b[0])
}
