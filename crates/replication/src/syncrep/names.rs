//! `synchronous_standby_names`: its scanner and grammar, ported from PostgreSQL's
//! `syncrep_scanner.l` and `syncrep_gram.y`, and the priority a standby name gets from it
//! (`SyncRepGetStandbyPriority`).
//!
//! ```text
//! standby_config:  standby_list                      -- legacy: FIRST 1 (standby_list)
//!               |  NUM '(' standby_list ')'          -- FIRST NUM (...)
//!               |  FIRST NUM '(' standby_list ')'
//!               |  ANY NUM '(' standby_list ')'
//! standby_list:    standby_name [',' standby_name]...
//! standby_name:    NAME | NUM
//! ```
//!
//! Tokens, exactly as PostgreSQL scans them: whitespace is `[ \t\n\r\f\v]`; an identifier is
//! `[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*` and is kept **as written** (PostgreSQL does not
//! fold it: matching is case-insensitive anyway); `ANY` and `FIRST` are keywords in any case
//! and name a standby only when double-quoted; `"..."` is a name with `""` standing for one
//! `"` (case kept, but still matched case-insensitively, as PostgreSQL's documentation
//! warns); `*` is a name that matches every standby (a quoted `"*"` too, because PostgreSQL
//! compares the stored text); digits are NUM; anything else is junk. An empty value means
//! "no synchronous standbys"; a value of only blanks is a syntax error, as in PostgreSQL.
//!
//! Errors are worded as PostgreSQL's GUC check hook words them: a parse failure is
//! `invalid value for parameter "synchronous_standby_names": "<value>"` with the detail
//! `syntax error at or near "<token>"` (or `at end of input`, or `unterminated quoted
//! identifier ...`) and SQLSTATE **42601**, because `check_synchronous_standby_names` sets
//! `ERRCODE_SYNTAX_ERROR`; a count of zero is `number of synchronous standbys (0) must be
//! greater than zero` with the GUC default SQLSTATE 22023. One deliberate difference: a count
//! above 2147483647 is rejected (22023) where PostgreSQL's `atoi` would silently wrap.

use crate::commands::scanner::{is_ident_cont, is_ident_start};
use std::fmt;

use base::error::{PgError, sqlstate};

/// The parameter's name, for messages.
pub const SYNCHRONOUS_STANDBY_NAMES: &str = "synchronous_standby_names";

/// How the synchronous standbys are chosen (PostgreSQL's `syncrep_method`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SyncRepMethod {
    /// `[FIRST] k (...)` and the legacy list: the `k` streaming standbys listed earliest are
    /// synchronous; the others listed are potential replacements.
    Priority,
    /// `ANY k (...)`: a commit waits until any `k` of the listed standbys confirm it.
    Quorum,
}

/// A parsed, non-empty `synchronous_standby_names` (PostgreSQL's `SyncRepConfigData`).
///
/// Invariants: `num_sync` is in `1..=i32::MAX` and `members` is not empty. A `num_sync` above
/// `members.len()` is allowed, as in PostgreSQL: in priority mode then every listed streaming
/// standby is synchronous and no commit is released until `num_sync` of them stream.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SyncRepConfig {
    method: SyncRepMethod,
    num_sync: u32,
    members: Vec<String>,
}

/// Why a value is not a valid `synchronous_standby_names`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncStandbyNamesError {
    /// The scanner or grammar rejected the value; `detail` is PostgreSQL's parser message.
    #[error("invalid value for parameter \"synchronous_standby_names\": \"{value}\" ({detail})")]
    Syntax { value: String, detail: String },
    /// `0 (a, b)` or `ANY 0 (...)`.
    #[error("number of synchronous standbys ({num_sync}) must be greater than zero")]
    NumSyncNotPositive { num_sync: u32 },
    /// A count that does not fit PostgreSQL's `int`.
    #[error(
        "{digits} is outside the valid range for the number of synchronous standbys (1 .. 2147483647)"
    )]
    NumSyncOutOfRange { digits: String },
}

impl SyncStandbyNamesError {
    /// The error a client sees from `SET`/`ALTER SYSTEM`/reload, as PostgreSQL reports it.
    pub fn to_pg_error(&self) -> PgError {
        match self {
            SyncStandbyNamesError::Syntax { value, detail } => PgError::new(
                sqlstate::SYNTAX_ERROR,
                format!("invalid value for parameter \"{SYNCHRONOUS_STANDBY_NAMES}\": \"{value}\""),
            )
            .with_detail(detail.clone()),
            other => PgError::new(sqlstate::INVALID_PARAMETER_VALUE, other.to_string()),
        }
    }
}

impl SyncRepConfig {
    /// Parses a `synchronous_standby_names` value. `Ok(None)` for the empty string: no
    /// synchronous standbys, so commits wait for nothing beyond the local flush.
    pub fn parse(value: &str) -> Result<Option<SyncRepConfig>, SyncStandbyNamesError> {
        if value.is_empty() {
            return Ok(None);
        }
        let tokens = scan(value).map_err(|detail| SyncStandbyNamesError::Syntax {
            value: value.to_owned(),
            detail,
        })?;
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
        };
        let (method, num, members) =
            p.standby_config()
                .map_err(|detail| SyncStandbyNamesError::Syntax {
                    value: value.to_owned(),
                    detail,
                })?;
        let num_sync = match num {
            None => 1,
            Some(digits) => parse_num_sync(&digits)?,
        };
        Ok(Some(SyncRepConfig {
            method,
            num_sync,
            members,
        }))
    }

    /// Builds a configuration directly (for tests and for callers that hold one already).
    /// `None` if `num_sync` is zero or above `i32::MAX`, or `members` is empty.
    pub fn new(method: SyncRepMethod, num_sync: u32, members: Vec<String>) -> Option<Self> {
        let valid = (1..=i32::MAX as u32).contains(&num_sync) && !members.is_empty();
        valid.then_some(SyncRepConfig {
            method,
            num_sync,
            members,
        })
    }

    pub fn method(&self) -> SyncRepMethod {
        self.method
    }

    /// How many standbys must confirm a commit (`k`).
    pub fn num_sync(&self) -> u32 {
        self.num_sync
    }

    /// The listed names in order, as written (quotes removed, case kept).
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// `sync_priority` of a standby whose `application_name` is `name`, before the state
    /// rules of [`super::evaluate`] apply: 0 if no listed name matches (the standby is
    /// asynchronous); in priority mode the 1-based position of the first matching name; in
    /// quorum mode 1 for every match. Names match ASCII-case-insensitively (PostgreSQL's
    /// `pg_strcasecmp`), and `*` matches every name. With duplicate names the first wins.
    pub fn priority_of(&self, application_name: &str) -> u32 {
        let position = self
            .members
            .iter()
            .position(|m| m == "*" || m.eq_ignore_ascii_case(application_name));
        match (position, self.method) {
            (None, _) => 0,
            (Some(_), SyncRepMethod::Quorum) => 1,
            // At most i32::MAX members could ever be written, but saturate rather than trust it.
            (Some(i), SyncRepMethod::Priority) => u32::try_from(i + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Renders the canonical form, `FIRST 2 (a, "B c")` or `ANY 1 (*)`, quoting names that would
/// not scan back as the same name. `SyncRepConfig::parse` of the output gives an equal value.
impl fmt::Display for SyncRepConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method {
            SyncRepMethod::Priority => "FIRST",
            SyncRepMethod::Quorum => "ANY",
        };
        write!(f, "{method} {} (", self.num_sync)?;
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_name(f, m)?;
        }
        f.write_str(")")
    }
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let bare = name == "*"
        || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        || (is_identifier(name)
            && !name.eq_ignore_ascii_case("any")
            && !name.eq_ignore_ascii_case("first"));
    if bare {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_cont)
}

fn parse_num_sync(digits: &str) -> Result<u32, SyncStandbyNamesError> {
    // Leading zeros are fine (`atoi("007")` is 7); only the value's range matters.
    let trimmed = digits.trim_start_matches('0');
    let value = if trimmed.is_empty() {
        Some(0)
    } else if trimmed.len() > 10 {
        None
    } else {
        trimmed.parse::<u64>().ok()
    };
    match value {
        Some(0) => Err(SyncStandbyNamesError::NumSyncNotPositive { num_sync: 0 }),
        Some(v) if v <= i32::MAX as u64 => Ok(v as u32),
        _ => Err(SyncStandbyNamesError::NumSyncOutOfRange {
            digits: digits.to_owned(),
        }),
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Tok {
    /// An identifier, quoted name or `*`; `text` is what PostgreSQL's `yytext` would hold
    /// when the token is the one in error (the closing `"` for a quoted name).
    Name {
        name: String,
        text: String,
    },
    Num(String),
    Any(String),
    First(String),
    Comma,
    LParen,
    RParen,
    Junk(char),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Name { text, .. } => text.clone(),
            Tok::Num(s) | Tok::Any(s) | Tok::First(s) => s.clone(),
            Tok::Comma => ",".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Junk(c) => c.to_string(),
        }
    }
}

/// `syncrep_scanner.l`. The error is the parser detail.
fn scan(value: &str) -> Result<Vec<Tok>, String> {
    let mut tokens = Vec::new();
    let mut chars = value.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C' | '\x0B') {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted identifier at end of input".into()),
                    Some((_, '"')) => {
                        if chars.peek().is_some_and(|&(_, c)| c == '"') {
                            chars.next();
                            name.push('"');
                        } else {
                            break;
                        }
                    }
                    Some((_, c)) => name.push(c),
                }
            }
            tokens.push(Tok::Name {
                name,
                text: "\"".into(),
            });
        } else if is_ident_start(c) {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !is_ident_cont(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let word = &value[start..end];
            tokens.push(if word.eq_ignore_ascii_case("any") {
                Tok::Any(word.into())
            } else if word.eq_ignore_ascii_case("first") {
                Tok::First(word.into())
            } else {
                Tok::Name {
                    name: word.into(),
                    text: word.into(),
                }
            });
        } else if c.is_ascii_digit() {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !c.is_ascii_digit() {
                    break;
                }
                end = i + 1;
                chars.next();
            }
            tokens.push(Tok::Num(value[start..end].into()));
        } else {
            chars.next();
            tokens.push(match c {
                '*' => Tok::Name {
                    name: "*".into(),
                    text: "*".into(),
                },
                ',' => Tok::Comma,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                other => Tok::Junk(other),
            });
        }
    }
    Ok(tokens)
}

/// `syncrep_gram.y` as recursive descent. It reports the first token that cannot extend a
/// valid prefix, which is the token bison's LALR(1) parser reports too.
struct Parser<'a> {
    tokens: &'a [Tok],
    pos: usize,
}

type Parsed = (SyncRepMethod, Option<String>, Vec<String>);

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn error(&self) -> String {
        match self.peek() {
            Some(t) => format!("syntax error at or near \"{}\"", t.text()),
            None => "syntax error at end of input".into(),
        }
    }

    fn standby_config(&mut self) -> Result<Parsed, String> {
        let parsed = match self.peek() {
            Some(Tok::Any(_)) | Some(Tok::First(_)) => {
                let method = if matches!(self.peek(), Some(Tok::Any(_))) {
                    SyncRepMethod::Quorum
                } else {
                    SyncRepMethod::Priority
                };
                self.pos += 1;
                let Some(Tok::Num(n)) = self.peek() else {
                    return Err(self.error());
                };
                let n = n.clone();
                self.pos += 1;
                (method, Some(n), self.parenthesized_list()?)
            }
            Some(Tok::Num(n)) if matches!(self.tokens.get(self.pos + 1), Some(Tok::LParen)) => {
                let n = n.clone();
                self.pos += 1;
                (SyncRepMethod::Priority, Some(n), self.parenthesized_list()?)
            }
            _ => (SyncRepMethod::Priority, None, self.standby_list()?),
        };
        if self.peek().is_some() {
            return Err(self.error());
        }
        Ok(parsed)
    }

    fn parenthesized_list(&mut self) -> Result<Vec<String>, String> {
        if self.peek() != Some(&Tok::LParen) {
            return Err(self.error());
        }
        self.pos += 1;
        let list = self.standby_list()?;
        if self.peek() != Some(&Tok::RParen) {
            return Err(self.error());
        }
        self.pos += 1;
        Ok(list)
    }

    fn standby_list(&mut self) -> Result<Vec<String>, String> {
        let mut list = vec![self.standby_name()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            list.push(self.standby_name()?);
        }
        Ok(list)
    }

    fn standby_name(&mut self) -> Result<String, String> {
        let name = match self.peek() {
            Some(Tok::Name { name, .. }) => name.clone(),
            Some(Tok::Num(n)) => n.clone(),
            _ => return Err(self.error()),
        };
        self.pos += 1;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: SyncRepMethod, k: u32, names: &[&str]) -> Option<SyncRepConfig> {
        SyncRepConfig::new(method, k, names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn accepted_values() {
        use SyncRepMethod::*;
        let cases: &[(&str, Option<SyncRepConfig>)] = &[
            ("", None),
            ("s1", cfg(Priority, 1, &["s1"])),
            (
                "standby1,standby2",
                cfg(Priority, 1, &["standby1", "standby2"]),
            ),
            ("*", cfg(Priority, 1, &["*"])),
            (
                "2(standby1,standby2,standby3)",
                cfg(Priority, 2, &["standby1", "standby2", "standby3"]),
            ),
            ("FIRST 2 (s1, s2)", cfg(Priority, 2, &["s1", "s2"])),
            ("first 1(a)", cfg(Priority, 1, &["a"])),
            ("ANY 2(s1, s2)", cfg(Quorum, 2, &["s1", "s2"])),
            ("any 1 (*)", cfg(Quorum, 1, &["*"])),
            ("AnY 3 (a)", cfg(Quorum, 3, &["a"])),
            // Names are kept as written; matching ignores case anyway.
            ("StandBy1", cfg(Priority, 1, &["StandBy1"])),
            ("\"StandBy 1\", x", cfg(Priority, 1, &["StandBy 1", "x"])),
            ("\"a\"\"b\"", cfg(Priority, 1, &["a\"b"])),
            ("\"\"", cfg(Priority, 1, &[""])),
            // FIRST and ANY name standbys only when quoted.
            ("\"first\", \"ANY\"", cfg(Priority, 1, &["first", "ANY"])),
            ("FIRST 1 (\"any\")", cfg(Priority, 1, &["any"])),
            // A bare number is a name in a list.
            ("2", cfg(Priority, 1, &["2"])),
            ("1, 2", cfg(Priority, 1, &["1", "2"])),
            ("007 (a)", cfg(Priority, 7, &["a"])),
            ("10 (a, b)", cfg(Priority, 10, &["a", "b"])),
            ("2147483647 (a)", cfg(Priority, 2147483647, &["a"])),
            // Identifier characters: $ and digits after the first, non-ASCII anywhere.
            (
                "a$1, _b, ümlaut",
                cfg(Priority, 1, &["a$1", "_b", "ümlaut"]),
            ),
            (
                "anything, firstly",
                cfg(Priority, 1, &["anything", "firstly"]),
            ),
            (" \t\n s1 \r\x0B\x0C", cfg(Priority, 1, &["s1"])),
            ("s1, s1", cfg(Priority, 1, &["s1", "s1"])),
            ("\"*\"", cfg(Priority, 1, &["*"])),
        ];
        for (value, want) in cases {
            assert_eq!(SyncRepConfig::parse(value).as_ref(), Ok(want), "{value:?}");
        }
    }

    #[test]
    fn rejected_values_are_worded_like_postgres() {
        let syntax: &[(&str, &str)] = &[
            (" ", "syntax error at end of input"),
            ("first", "syntax error at end of input"),
            ("any", "syntax error at end of input"),
            ("FIRST (a)", "syntax error at or near \"(\""),
            ("FIRST 2 a", "syntax error at or near \"a\""),
            ("ANY 2 (a", "syntax error at end of input"),
            ("2 (a) b", "syntax error at or near \"b\""),
            ("2 a", "syntax error at or near \"a\""),
            ("a b", "syntax error at or near \"b\""),
            ("a,,b", "syntax error at or near \",\""),
            ("a,", "syntax error at end of input"),
            ("standby-1", "syntax error at or near \"-\""),
            ("1abc", "syntax error at or near \"abc\""),
            ("(a)", "syntax error at or near \"(\""),
            ("2 ()", "syntax error at or near \")\""),
            ("2 (any)", "syntax error at or near \"any\""),
            ("a, first", "syntax error at or near \"first\""),
            ("FIRST 1 (\"a\" \"b\")", "syntax error at or near \"\"\""),
            ("\"abc", "unterminated quoted identifier at end of input"),
            ("$", "syntax error at or near \"$\""),
            ("ANY 1 (*) ;", "syntax error at or near \";\""),
        ];
        for (value, detail) in syntax {
            let err = SyncRepConfig::parse(value).expect_err(value);
            let pg = err.to_pg_error();
            assert_eq!(pg.code, sqlstate::SYNTAX_ERROR, "{value:?}");
            assert_eq!(
                pg.message,
                format!("invalid value for parameter \"synchronous_standby_names\": \"{value}\""),
            );
            assert_eq!(pg.detail.as_deref(), Some(*detail), "{value:?}");
        }
        for value in ["0 (a)", "ANY 0 (a)", "FIRST 00 (a)"] {
            let pg = SyncRepConfig::parse(value).expect_err(value).to_pg_error();
            assert_eq!(pg.code, sqlstate::INVALID_PARAMETER_VALUE);
            assert_eq!(
                pg.message,
                "number of synchronous standbys (0) must be greater than zero"
            );
        }
        for value in ["2147483648 (a)", "ANY 99999999999999999999 (a)"] {
            let pg = SyncRepConfig::parse(value).expect_err(value).to_pg_error();
            assert_eq!(pg.code, sqlstate::INVALID_PARAMETER_VALUE, "{value}");
        }
    }

    #[test]
    fn priorities_follow_the_list() {
        let c = SyncRepConfig::parse("FIRST 2 (s1, \"S2\", *, s1)")
            .expect("parse")
            .expect("some");
        assert_eq!(c.priority_of("s1"), 1);
        assert_eq!(c.priority_of("S1"), 1);
        assert_eq!(c.priority_of("s2"), 2);
        assert_eq!(c.priority_of("anyone"), 3);
        assert_eq!(c.priority_of(""), 3);
        let c = SyncRepConfig::parse("ANY 2 (s1, s2)")
            .expect("parse")
            .expect("some");
        assert_eq!(c.priority_of("S2"), 1);
        assert_eq!(c.priority_of("s3"), 0);
        let c = SyncRepConfig::parse("s1").expect("parse").expect("some");
        assert_eq!(c.priority_of("s10"), 0);
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        let cases = [
            ("s1,s2", "FIRST 1 (s1, s2)"),
            ("ANY 2 (*)", "ANY 2 (*)"),
            (
                "2(\"a b\", \"first\", \"x\"\"y\", 12, \"\")",
                "FIRST 2 (\"a b\", \"first\", \"x\"\"y\", 12, \"\")",
            ),
            ("\"1a\", \"Any\"", "FIRST 1 (\"1a\", \"Any\")"),
        ];
        for (value, canonical) in cases {
            let c = SyncRepConfig::parse(value).expect("parse").expect("some");
            assert_eq!(c.to_string(), canonical);
            assert_eq!(SyncRepConfig::parse(canonical), Ok(Some(c)));
        }
    }
}
