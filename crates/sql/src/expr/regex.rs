//! POSIX regular-expression matching: the operators `~`, `~*`, `!~` and `!~*` (also spelled
//! `OPERATOR(pg_catalog.~)`, as psql's `\dconfig pattern` writes them).
//!
//! PostgreSQL's engine is Henry Spencer's ARE; lockstep uses the `regex` crate, whose syntax
//! agrees on everything everyday patterns use (anchors, classes, bracket expressions,
//! quantifiers, alternation, groups, `\d \s \w`). What it lacks: back-references and
//! lookaround (an error, never a wrong answer), and ARE's own escapes `\m \M \y \Y` (an
//! error too). Matching is unanchored, as PostgreSQL's: `'abc' ~ 'b'` is true.
//!
//! Where it runs: in expression evaluation, once per row. A pattern is compiled once per
//! thread and kept while the next rows use the same one (a scan's pattern is almost always
//! a constant), so a scan does not recompile it per row.
//!
//! Bounds: a compiled pattern may use at most `SIZE_LIMIT` bytes, so a hostile pattern
//! (`(a{1000}){1000}`) is refused with an error instead of taking the server's memory.

use std::cell::RefCell;

use base::PgError;
use base::error::sqlstate;
use regex::{Regex, RegexBuilder};

/// Compiled-program size limit (1 MiB): ample for any realistic pattern, far below what
/// would matter to the server's memory.
const SIZE_LIMIT: usize = 1 << 20;

thread_local! {
    /// The last pattern compiled on this thread: (pattern, case-insensitive, program).
    static LAST: RefCell<Option<(String, bool, Regex)>> = const { RefCell::new(None) };
}

fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, PgError> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let reason = match e {
                regex::Error::CompiledTooBig(_) => "regular expression is too complex".to_owned(),
                regex::Error::Syntax(s) => s
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .map_or(s.clone(), |l| l.trim_start_matches("error: ").to_owned()),
                other => other.to_string(),
            };
            PgError::new(
                sqlstate::INVALID_REGULAR_EXPRESSION,
                format!("invalid regular expression: {reason}"),
            )
        })
}

/// Whether `text` contains a match of `pattern` (`~`, or `~*` when `case_insensitive`).
pub fn matches(text: &str, pattern: &str, case_insensitive: bool) -> Result<bool, PgError> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((p, ci, re)) = last.as_ref()
            && p == pattern
            && *ci == case_insensitive
        {
            return Ok(re.is_match(text));
        }
        let re = compile(pattern, case_insensitive)?;
        let hit = re.is_match(text);
        *last = Some((pattern.to_owned(), case_insensitive, re));
        Ok(hit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_examples() {
        // From PostgreSQL's documentation of the POSIX operators.
        assert!(matches("thomas", "t.*ma", false).expect("ok"));
        assert!(matches("thomas", "T.*ma", true).expect("ok"));
        assert!(!matches("thomas", "T.*ma", false).expect("ok"));
        assert!(matches("abc", "b", false).expect("ok"));
        assert!(!matches("abc", "^b", false).expect("ok"));
        assert!(matches("synchronous_commit", "^(.*sync.*)$", false).expect("ok"));
        assert!(matches("a1", "[[:alpha:]][[:digit:]]", false).expect("ok"));
    }

    #[test]
    fn bad_and_hostile_patterns_are_errors() {
        let e = matches("x", "(", false).expect_err("unbalanced");
        assert_eq!(e.code, sqlstate::INVALID_REGULAR_EXPRESSION);
        assert!(
            e.message.starts_with("invalid regular expression"),
            "{}",
            e.message
        );
        let e = matches("x", "((a{1000}){1000}){1000}", false).expect_err("too big");
        assert!(e.message.contains("too complex"), "{}", e.message);
        // The cache does not confuse case sensitivity.
        assert!(matches("ABC", "abc", true).expect("ok"));
        assert!(!matches("ABC", "abc", false).expect("ok"));
    }
}
