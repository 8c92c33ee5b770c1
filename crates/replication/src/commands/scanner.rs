//! The replication command scanner, after PostgreSQL's `repl_scanner.l`: words folded to
//! lower case and truncated to `NAME_MAX_BYTES`, quoted identifiers, strings, unsigned
//! integers, `hex/hex` LSNs and punctuation, each with its 1-based character position for
//! error messages. Linear in the input's length; never panics.

use super::*;

#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) enum Tok {
    /// An unquoted identifier: `lower` is folded and truncated, `raw` as written.
    Word {
        lower: String,
        raw: String,
    },
    /// A double-quoted identifier, truncated.
    Quoted(String),
    /// A single-quoted string.
    Str(String),
    /// Unsigned digits; `None` when they do not fit 64 bits.
    Num {
        value: Option<u64>,
        raw: String,
    },
    Lsn {
        value: Option<Lsn>,
        raw: String,
    },
    Punct(char),
    End,
}

impl Tok {
    pub(super) fn keyword(&self) -> &str {
        match self {
            Tok::Word { lower, .. } => lower,
            _ => "",
        }
    }

    /// The text `syntax error at or near "..."` shows.
    pub(super) fn text(&self) -> String {
        match self {
            Tok::Word { raw, .. } | Tok::Num { raw, .. } | Tok::Lsn { raw, .. } => raw.clone(),
            Tok::Quoted(s) => format!("\"{}\"", s.replace('"', "\"\"")),
            Tok::Str(s) => format!("'{}'", s.replace('\'', "''")),
            Tok::Punct(c) => c.to_string(),
            Tok::End => String::new(),
        }
    }
}

pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character position of the token's first character.
    pub(super) position: u32,
}

pub(super) struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
    /// Characters before `at`, kept as we go so positions cost O(1) (a long hostile query
    /// must not make every token's position an O(n) count).
    chars_before: usize,
}

pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C' | '\x0B')
}

/// PostgreSQL's identifier characters (also used by `synchronous_standby_names`).
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

pub(crate) fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// Truncates to [`NAME_MAX_BYTES`] at a character boundary, as `truncate_identifier` does
/// (PostgreSQL also emits a NOTICE; lockstep does not).
pub(super) fn truncate_identifier(mut s: String) -> String {
    if s.len() > NAME_MAX_BYTES {
        let mut cut = NAME_MAX_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Lexer {
            text,
            at: 0,
            chars_before: 0,
        }
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    /// Moves past `bytes` bytes (a whole number of characters).
    pub(super) fn advance(&mut self, bytes: usize) {
        self.chars_before += self.text[self.at..self.at + bytes].chars().count();
        self.at += bytes;
    }

    /// Length in bytes of `hex+ '/' hex+` at the start of `s`, if there is one.
    pub(super) fn lsn_len(s: &str) -> Option<usize> {
        let hi = s.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hi == 0 || s.as_bytes().get(hi) != Some(&b'/') {
            return None;
        }
        let lo = s[hi + 1..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count();
        (lo > 0).then_some(hi + 1 + lo)
    }

    pub(super) fn next_token(&mut self) -> Result<Token, PgError> {
        let skip: usize = self
            .rest()
            .chars()
            .take_while(|&c| is_space(c))
            .map(char::len_utf8)
            .sum();
        self.advance(skip);
        let position = u32::try_from(self.chars_before + 1).unwrap_or(u32::MAX);
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                tok: Tok::End,
                position,
            });
        };
        let ident_len: usize = if is_ident_start(c) {
            rest.chars()
                .take_while(|&c| is_ident_cont(c))
                .map(char::len_utf8)
                .sum()
        } else {
            0
        };
        let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let lsn_len = Self::lsn_len(rest).unwrap_or(0);
        // Flex takes the longest match; an LSN always beats a word or digits it starts with.
        let tok = if lsn_len > 0 && lsn_len >= ident_len && lsn_len >= digits_len {
            let raw = &rest[..lsn_len];
            self.advance(lsn_len);
            Tok::Lsn {
                value: raw.parse().ok(),
                raw: raw.to_owned(),
            }
        } else if ident_len > 0 {
            let raw = &rest[..ident_len];
            self.advance(ident_len);
            Tok::Word {
                lower: truncate_identifier(raw.to_ascii_lowercase()),
                raw: raw.to_owned(),
            }
        } else if digits_len > 0 {
            let raw = &rest[..digits_len];
            self.advance(digits_len);
            Tok::Num {
                value: raw.parse().ok(),
                raw: raw.to_owned(),
            }
        } else if c == '\'' || c == '"' {
            let (body, len) = Self::quoted(rest, c)
                .ok_or_else(|| syntax("unterminated quoted string").with_position(position))?;
            self.advance(len);
            if c == '\'' {
                Tok::Str(body)
            } else {
                // A zero-length `""` is an (empty) identifier, as in PostgreSQL's replication
                // scanner; slot name checks reject it where it matters.
                Tok::Quoted(truncate_identifier(body))
            }
        } else {
            self.advance(c.len_utf8());
            Tok::Punct(c)
        };
        Ok(Token { tok, position })
    }

    /// Reads a quoted token starting at `s[0] == quote`, where a doubled quote stands for one.
    /// Returns the body and the bytes consumed, `None` if unterminated.
    pub(super) fn quoted(s: &str, quote: char) -> Option<(String, usize)> {
        let mut body = String::new();
        let mut chars = s.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                if chars.peek().is_some_and(|&(_, n)| n == quote) {
                    chars.next();
                    body.push(quote);
                } else {
                    return Some((body, i + c.len_utf8()));
                }
            } else {
                body.push(c);
            }
        }
        None
    }
}
