//! `LIKE` / `ILIKE` pattern matching with PostgreSQL's rules: `%` matches any sequence, `_`
//! one character, the escape character (default backslash, `ESCAPE ''` for none) makes the
//! next character literal. Matching is by characters, not bytes. `ILIKE` compares lower-cased
//! text.
//!
//! The matcher is the classic two-pointer wildcard algorithm with one backtrack point per
//! `%`, so it runs in O(len(text) × len(pattern)) at worst and never recurses (no stack
//! exhaustion on hostile patterns).

use base::PgError;
use base::error::sqlstate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One,
    Any,
}

/// The escape character from an `ESCAPE` string: empty = none; more than one character is
/// an error, as in PostgreSQL.
pub fn escape_char(e: &str) -> Result<Option<char>, PgError> {
    let mut chars = e.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(c), None) => Ok(Some(c)),
        _ => Err(
            PgError::new(sqlstate::INVALID_ESCAPE_SEQUENCE, "invalid escape string")
                .with_hint("Escape string must be empty or one character."),
        ),
    }
}

fn compile(pattern: &str, escape: Option<char>, fold: bool) -> Result<Vec<Tok>, PgError> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => out.push(Tok::Lit(n)),
                None => {
                    return Err(PgError::new(
                        sqlstate::INVALID_ESCAPE_SEQUENCE,
                        "LIKE pattern must not end with escape character",
                    ));
                }
            }
            continue;
        }
        match c {
            '%' => {
                if out.last() != Some(&Tok::Any) {
                    out.push(Tok::Any);
                }
            }
            '_' => out.push(Tok::One),
            c => out.push(Tok::Lit(c)),
        }
    }
    if fold {
        for t in &mut out {
            if let Tok::Lit(c) = t {
                *c = c.to_lowercase().next().unwrap_or(*c);
            }
        }
    }
    Ok(out)
}

/// Whether `text` matches `pattern`.
pub fn like(
    text: &str,
    pattern: &str,
    escape: Option<char>,
    case_insensitive: bool,
) -> Result<bool, PgError> {
    let toks = compile(pattern, escape, case_insensitive)?;
    let chars: Vec<char> = if case_insensitive {
        text.chars()
            .map(|c| c.to_lowercase().next().unwrap_or(c))
            .collect()
    } else {
        text.chars().collect()
    };
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < chars.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
                continue;
            }
            Some(Tok::Lit(c)) if *c == chars[t] => {
                t += 1;
                p += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bp, bt)) => {
                backtrack = Some((bp, bt + 1));
                p = bp + 1;
                t = bt + 1;
            }
            None => return Ok(false),
        }
    }
    while toks.get(p) == Some(&Tok::Any) {
        p += 1;
    }
    Ok(p == toks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(t: &str, p: &str) -> bool {
        like(t, p, Some('\\'), false).expect("like")
    }

    #[test]
    fn wildcards() {
        assert!(l("abc", "abc"));
        assert!(l("abc", "a%"));
        assert!(l("abc", "%c"));
        assert!(l("abc", "%b%"));
        assert!(l("abc", "a_c"));
        assert!(!l("abc", "a_"));
        assert!(l("", "%"));
        assert!(!l("", "_"));
        assert!(l("aXbXc", "a%b%c"));
        assert!(!l("abcd", "a%c"));
        assert!(l("héllo", "h_llo"));
    }

    #[test]
    fn escapes_and_case() {
        assert!(l("a%c", "a\\%c"));
        assert!(!l("abc", "a\\%c"));
        assert!(like("a%c", "a#%c", Some('#'), false).expect("like"));
        assert!(like("a\\c", "a\\c", None, false).expect("like"));
        assert!(like("ABC", "a%", None, true).expect("ilike"));
        assert!(like("x", "x\\", Some('\\'), false).is_err());
        assert!(escape_char("ab").is_err());
    }

    #[test]
    fn pathological_patterns_finish() {
        let text = "a".repeat(5000);
        let pat = "%a".repeat(50) + "b";
        assert!(!l(&text, &pat));
    }
}
