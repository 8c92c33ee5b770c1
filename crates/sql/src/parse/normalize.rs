//! Literal normalisation for the statement cache.
//!
//! pgbench in simple mode (and most ORMs without prepared statements) sends the same few
//! statement shapes with different constants: `UPDATE pgbench_accounts SET abalance =
//! abalance + -4447 WHERE aid = 34599;`. Parsing each one costs ~6.6 µs; so for SELECT,
//! INSERT, UPDATE and DELETE the constants are replaced by parameter slots (`$k` after the
//! client's own parameters) and the statement is cached, parsed and planned once, by its
//! normalised text plus the literals' types. The literal values become the slots' values.
//!
//! A literal is replaced only where a parameter means exactly the same thing: after an
//! operator, a comma, an opening parenthesis (not a type modifier's: `varchar(10)`), or one
//! of the keywords in `VALUE_KEYWORDS`; never inside ORDER BY / GROUP BY lists (where `1` is a
//! column position), never a prefixed string (`E'..'`, `timestamp '..'` — the previous token
//! is then a word not in the list). Integers keep PostgreSQL's literal typing (int4, int8 or
//! numeric by magnitude), strings stay `unknown`, so binding sees the same types as with the
//! literals in place. If the normalised text does not parse, the caller falls back to the
//! original text and remembers not to normalise that shape.

use base::{DataType, Value};

use super::lexer::{Token, TokenKind, string_value};
use crate::plan::bind_expr::parse_number;

/// Keywords after which a literal is an ordinary value.
const VALUE_KEYWORDS: &[&str] = &[
    "select",
    "where",
    "and",
    "or",
    "not",
    "when",
    "then",
    "else",
    "like",
    "ilike",
    "between",
    "in",
    "values",
    "limit",
    "offset",
    "having",
    "returning",
    "escape",
    "distinct",
    "case",
    "from",
    "for",
    "is",
    "set",
];

/// Words whose parenthesised arguments are type modifiers (`numeric(10,2)`).
const TYPE_WORDS: &[&str] = &[
    "varchar",
    "char",
    "character",
    "varying",
    "numeric",
    "decimal",
    "dec",
    "float",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "bit",
    "varbit",
    "bpchar",
];

/// Words that end an ORDER BY / GROUP BY list.
const LIST_END_WORDS: &[&str] = &[
    "limit",
    "offset",
    "having",
    "for",
    "window",
    "fetch",
    "union",
    "intersect",
    "except",
    "returning",
    "order",
];

#[derive(Debug)]
pub struct Normalized {
    /// Cache key: normalised text, a NUL, one type letter per literal.
    pub key: String,
    /// The text to parse (literals replaced by `$k`).
    pub text: String,
    pub literals: Vec<Value>,
    pub literal_types: Vec<DataType>,
}

/// The highest `$n` in the statement (its client parameter count).
pub fn max_param(src: &str, toks: &[Token]) -> usize {
    toks.iter()
        .filter(|t| t.kind == TokenKind::Param)
        .filter_map(|t| t.text(src).get(1..).and_then(|d| d.parse::<usize>().ok()))
        .max()
        .unwrap_or(0)
}

fn type_letter(t: DataType) -> char {
    match t {
        DataType::Int4 => 'i',
        DataType::Int8 => 'l',
        DataType::Numeric(_) => 'n',
        _ => 's',
    }
}

/// Normalises a DML statement; `None` if it is not one or has no replaceable literal.
pub fn normalize(src: &str, toks: &[Token], client_params: usize) -> Option<Normalized> {
    let first = toks.first()?;
    let kw = first.text(src);
    if !["select", "insert", "update", "delete"]
        .iter()
        .any(|k| kw.eq_ignore_ascii_case(k))
    {
        return None;
    }
    // GROUP BY and DISTINCT match select-list expressions against other clauses by
    // structure; a literal turned into a slot in one place but not the other would no
    // longer match. Such statements are cached by exact text instead.
    if toks
        .iter()
        .any(|t| t.is_keyword(src, "group") || t.is_keyword(src, "distinct"))
    {
        return None;
    }
    let mut text = String::with_capacity(src.len() + 8);
    let mut literals = Vec::new();
    let mut literal_types = Vec::new();
    let mut copied = 0usize;
    // One entry per open parenthesis: whether it holds type modifiers.
    let mut parens: Vec<bool> = Vec::new();
    // Paren depth at which an ORDER BY / GROUP BY list is open.
    let mut sort_list: Option<usize> = None;
    let bytes = src.as_bytes();
    for (i, t) in toks.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| toks.get(p));
        match t.kind {
            TokenKind::LParen => {
                let typmod = prev.is_some_and(|p| {
                    p.kind == TokenKind::Word
                        && TYPE_WORDS
                            .iter()
                            .any(|w| p.text(src).eq_ignore_ascii_case(w))
                });
                parens.push(typmod);
                continue;
            }
            TokenKind::RParen => {
                parens.pop();
                if sort_list.is_some_and(|d| parens.len() < d) {
                    sort_list = None;
                }
                continue;
            }
            TokenKind::Word => {
                let w = t.text(src);
                if w.eq_ignore_ascii_case("by")
                    && prev
                        .is_some_and(|p| p.is_keyword(src, "order") || p.is_keyword(src, "group"))
                {
                    sort_list = Some(parens.len());
                } else if sort_list == Some(parens.len())
                    && LIST_END_WORDS.iter().any(|e| w.eq_ignore_ascii_case(e))
                {
                    sort_list = None;
                }
                continue;
            }
            TokenKind::Number | TokenKind::String => {}
            _ => continue,
        }
        if sort_list.is_some() || parens.last() == Some(&true) {
            continue;
        }
        let allowed_after = |p: Option<&Token>| match p {
            None => false,
            Some(p) => match p.kind {
                TokenKind::Operator => p.text(src) != "::",
                TokenKind::Comma | TokenKind::LParen => true,
                TokenKind::Word => VALUE_KEYWORDS
                    .iter()
                    .any(|k| p.text(src).eq_ignore_ascii_case(k)),
                _ => false,
            },
        };
        // A unary minus before a number belongs to the constant, as PostgreSQL's grammar
        // folds it (`-2147483648` is an integer).
        let before_prev = i.checked_sub(2).and_then(|p| toks.get(p));
        let negative = t.kind == TokenKind::Number
            && prev.is_some_and(|p| p.kind == TokenKind::Operator && p.text(src) == "-")
            && allowed_after(before_prev);
        if !negative && !allowed_after(prev) {
            continue;
        }
        let start = match (negative, prev) {
            (true, Some(p)) => p.start,
            _ => t.start,
        };
        let (value, ty) = if t.kind == TokenKind::Number {
            // `123abc` is not a plain number; leave such statements alone.
            if bytes
                .get(t.end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80)
            {
                return None;
            }
            let number = if negative {
                format!("-{}", t.text(src))
            } else {
                t.text(src).to_owned()
            };
            match parse_number(&number) {
                Ok(v) => v,
                Err(_) => continue,
            }
        } else {
            (Value::text(&string_value(t.text(src))), DataType::Unknown)
        };
        text.push_str(src.get(copied..start)?);
        text.push('$');
        text.push_str(&(client_params + literals.len() + 1).to_string());
        copied = t.end;
        literals.push(value);
        literal_types.push(ty);
    }
    if literals.is_empty() {
        return None;
    }
    text.push_str(src.get(copied..)?);
    let mut key = String::with_capacity(text.len() + 1 + literals.len());
    key.push_str(&text);
    key.push('\0');
    key.extend(literal_types.iter().map(|t| type_letter(*t)));
    Some(Normalized {
        key,
        text,
        literals,
        literal_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::lexer::tokenize;

    fn norm(s: &str) -> Option<Normalized> {
        let toks = tokenize(s).expect("tokenize");
        normalize(s, &toks, max_param(s, &toks))
    }

    #[test]
    fn pgbench_statements_normalise() {
        let n = norm("UPDATE pgbench_accounts SET abalance = abalance + -4447 WHERE aid = 34599")
            .expect("normalised");
        assert_eq!(
            n.text,
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
        );
        assert_eq!(n.literals, vec![Value::Int4(-4447), Value::Int4(34599)]);
        let n = norm("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 38421, -4257, CURRENT_TIMESTAMP)").expect("normalised");
        assert_eq!(
            n.text,
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
        );
        let a = norm("SELECT abalance FROM pgbench_accounts WHERE aid = 1").expect("n");
        let b = norm("SELECT abalance FROM pgbench_accounts WHERE aid = 99").expect("n");
        assert_eq!(a.key, b.key);
        let c = norm("SELECT abalance FROM pgbench_accounts WHERE aid = 9999999999").expect("n");
        assert_ne!(a.key, c.key, "int8 literal is a different shape");
    }

    #[test]
    fn literals_that_must_stay() {
        assert!(norm("SELECT a FROM t ORDER BY 1").is_none());
        let n = norm("SELECT a::varchar(10), 'x' FROM t WHERE b = timestamp '2020-01-01' ORDER BY 1, 2 LIMIT 5")
            .expect("n");
        assert_eq!(
            n.text,
            "SELECT a::varchar(10), $1 FROM t WHERE b = timestamp '2020-01-01' ORDER BY 1, 2 LIMIT $2"
        );
        assert!(norm("SELECT a + 1 FROM t GROUP BY a + 1").is_none());
        let n = norm("SELECT x FROM t WHERE a = $1 AND b = 'q'").expect("n");
        assert_eq!(n.text, "SELECT x FROM t WHERE a = $1 AND b = $2");
        assert!(norm("CREATE TABLE t (a varchar(10))").is_none());
        assert!(norm("SELECT 1e").is_none(), "number followed by a letter");
        let n = norm("SELECT a - 5, -2147483648 FROM t").expect("n");
        assert_eq!(n.text, "SELECT a - $1, $2 FROM t");
        assert_eq!(n.literals, vec![Value::Int4(5), Value::Int4(i32::MIN)]);
    }
}
