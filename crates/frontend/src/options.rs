//! The startup packet's `options` parameter (libpq's `PGOPTIONS`), and PostgreSQL's boolean
//! spelling for `replication`.
//!
//! `options` is a command line for the backend: words separated by unescaped whitespace, a
//! backslash making the next character literal (PostgreSQL's `pg_split_opts`). Of the
//! backend's switches only the ones that set a run-time parameter make sense here:
//! `-c name=value`, `-cname=value` and `--name=value`, with `-` in names read as `_`
//! (`ParseLongOption`). The other single-letter switches (`-B`, `-F`, `-d`, ...) are server
//! start-up settings PostgreSQL maps to GUCs; lockstep rejects them with PostgreSQL's error
//! for an invalid switch rather than guess. Settings come out in order; the SQL layer applies
//! them as `SET` does, so a later one wins.
//!
//! Pure functions, no IO.

use base::PgError;
use base::error::sqlstate;

/// Parses `options` into `(name, value)` settings.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, PgError> {
    let words = split_words(options);
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            let arg = words.next().ok_or_else(|| {
                invalid_argument("-c").with_hint("-c requires an argument of the form name=value")
            })?;
            long_option(&arg)?
        } else if let Some(arg) = word.strip_prefix("--") {
            long_option(arg)?
        } else if let Some(arg) = word.strip_prefix("-c") {
            long_option(arg)?
        } else {
            return Err(invalid_argument(&word));
        };
        settings.push(setting);
    }
    Ok(settings)
}

/// PostgreSQL's `pg_split_opts`: whitespace separates words; `\x` is a literal `x`.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    word.push(escaped);
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// `name=value` with dashes in the name read as underscores (PostgreSQL's `ParseLongOption`).
fn long_option(arg: &str) -> Result<(String, String), PgError> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(PgError::fatal(
            sqlstate::SYNTAX_ERROR,
            format!("--{arg} requires a value"),
        ));
    };
    if name.is_empty() {
        return Err(invalid_argument(arg));
    }
    Ok((name.replace('-', "_"), value.to_owned()))
}

fn invalid_argument(arg: &str) -> PgError {
    PgError::fatal(
        sqlstate::SYNTAX_ERROR,
        format!("invalid command-line argument for server process: {arg}"),
    )
    .with_hint("Only -c name=value and --name=value are accepted in options.")
}

/// PostgreSQL's `parse_bool`: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any unique
/// prefix of the words, case-insensitive.
pub fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| lower.len() >= min && word.starts_with(&lower);
    if prefix_of("true", 1) || prefix_of("yes", 1) || lower == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || lower == "0" {
        Some(false)
    } else if prefix_of("on", 2) {
        Some(true)
    } else if prefix_of("off", 2) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<(String, String)> {
        parse_options(s).unwrap()
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn dash_c_forms() {
        assert_eq!(ok(""), vec![]);
        assert_eq!(ok("   "), vec![]);
        assert_eq!(
            ok("-c synchronous_commit=local"),
            vec![pair("synchronous_commit", "local")]
        );
        assert_eq!(ok("-cwork_mem=4MB"), vec![pair("work_mem", "4MB")]);
        assert_eq!(
            ok("--search-path=public  -c statement_timeout=5s"),
            vec![
                pair("search_path", "public"),
                pair("statement_timeout", "5s")
            ]
        );
        assert_eq!(ok("-c a=1 -c a=2"), vec![pair("a", "1"), pair("a", "2")]);
        assert_eq!(ok("-c x="), vec![pair("x", "")]);
        assert_eq!(ok("-c x=a=b"), vec![pair("x", "a=b")]);
    }

    #[test]
    fn backslash_escapes() {
        assert_eq!(
            ok(r"-c application_name=my\ app"),
            vec![pair("application_name", "my app")]
        );
        assert_eq!(ok(r"-c x=back\\slash"), vec![pair("x", r"back\slash")]);
        assert_eq!(ok("-c\tx=1\n"), vec![pair("x", "1")]);
        assert_eq!(ok(r"-c x=trailing\"), vec![pair("x", "trailing")]);
    }

    #[test]
    fn errors_are_fatal_syntax_errors() {
        for bad in [
            "-c",
            "-c novalue",
            "--novalue",
            "-B 100",
            "plain",
            "-c =1",
            "--=x",
        ] {
            let err = parse_options(bad).unwrap_err();
            assert_eq!(err.code, sqlstate::SYNTAX_ERROR, "{bad}");
            assert!(err.is_fatal(), "{bad}");
        }
        assert_eq!(
            parse_options("-F").unwrap_err().message,
            "invalid command-line argument for server process: -F"
        );
        assert_eq!(
            parse_options("--foo").unwrap_err().message,
            "--foo requires a value"
        );
    }

    #[test]
    fn booleans_like_postgres() {
        for t in ["true", "TRUE", "t", "tr", "yes", "y", "on", "ON", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "f", "no", "n", "off", "of", "0", "Off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "o", "2", "truex", "database", "nope", "onn"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }
}
