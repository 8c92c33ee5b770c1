//! A PostgreSQL lexer for the parts of the SQL layer that must see tokens before (or instead
//! of) sqlparser: splitting a simple-query string into statements, recognising utility
//! statements (`BEGIN`, `SET`, `VACUUM`, `COPY`, ...), and finding the literals that the
//! statement cache replaces by slots.
//!
//! It follows PostgreSQL's lexical rules (scan.l) for what matters here: `--` and nested
//! `/* */` comments, standard-conforming `'...'` strings with `''`, `E'...'` strings with
//! backslash escapes, `$tag$...$tag$` dollar quotes, `"..."` identifiers with `""`, `$n`
//! parameters, numbers, and operators. Unquoted identifiers are case-folded to lower case by
//! `Token::word`, as PostgreSQL folds them.
//!
//! It deliberately does not build a syntax tree and does not decode string contents except
//! where a caller asks (`string_value`). Failure: an unterminated quote, quoted identifier,
//! dollar quote or block comment is a `LexError` carrying PostgreSQL's message and the
//! 1-based character position, which callers turn into SQLSTATE 42601. It never panics: every
//! index it takes is checked against the input length.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An unquoted word: keyword or identifier.
    Word,
    /// `"..."`.
    QuotedIdent,
    /// A plain `'...'` string (standard_conforming_strings = on).
    String,
    /// A string with a prefix (`E'..'`, `B'..'`, `X'..'`, `N'..'`, `U&'..'`) or a dollar
    /// quote: a literal the statement cache leaves alone.
    OtherString,
    /// An unsigned number: integer or decimal, with optional exponent.
    Number,
    /// `$n`.
    Param,
    /// An operator (`=`, `<>`, `::`, `+`, ...).
    Operator,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semicolon,
    Dot,
    Colon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte range in the input.
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }

    /// The token as an identifier or keyword, lower-cased if unquoted (PostgreSQL folds
    /// unquoted identifiers); `None` for tokens that are not names.
    pub fn word(&self, src: &str) -> Option<String> {
        match self.kind {
            TokenKind::Word => Some(self.text(src).to_ascii_lowercase()),
            TokenKind::QuotedIdent => {
                let t = self.text(src);
                let inner = t.get(1..t.len().saturating_sub(1)).unwrap_or("");
                Some(inner.replace("\"\"", "\""))
            }
            _ => None,
        }
    }

    /// Whether the token is the unquoted keyword `kw` (given in lower case).
    pub fn is_keyword(&self, src: &str, kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text(src).eq_ignore_ascii_case(kw)
    }

    /// Whether the token is the operator or punctuation `op`.
    pub fn is_op(&self, src: &str, op: &str) -> bool {
        self.kind != TokenKind::Word
            && self.kind != TokenKind::QuotedIdent
            && self.kind != TokenKind::String
            && self.text(src) == op
    }
}

/// Why a statement could not be tokenized.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LexError {
    pub message: String,
    /// 1-based character position in the input, as PostgreSQL reports it.
    pub position: u32,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// 1-based character position of byte offset `at` in `src`.
pub fn char_position(src: &str, at: usize) -> u32 {
    let at = at.min(src.len());
    let mut boundary = at;
    while boundary > 0 && !src.is_char_boundary(boundary) {
        boundary -= 1;
    }
    u32::try_from(src[..boundary].chars().count() + 1).unwrap_or(u32::MAX)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// Tokenizes `src` completely.
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::with_capacity(src.len() / 4 + 4);
    let mut lx = Lexer { src, pos: 0 };
    while let Some(t) = lx.next_token()? {
        out.push(t);
    }
    Ok(out)
}

/// An incremental lexer (the splitter uses it to find statement ends).
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    fn error(&self, message: String, at: usize) -> LexError {
        LexError {
            message,
            position: char_position(self.src, at),
        }
    }

    /// The text from `at` to the end, for "at or near" messages.
    fn near(&self, at: usize) -> String {
        let mut end = self.src.len();
        // PostgreSQL quotes the rest of the token; a long tail is trimmed for readability.
        const NEAR_CHARS_MAX: usize = 60;
        if let Some((i, _)) = self.src[at.min(end)..].char_indices().nth(NEAR_CHARS_MAX) {
            end = at + i;
        }
        self.src.get(at..end).unwrap_or("").to_owned()
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            match self.peek(0) {
                Some(b) if b.is_ascii_whitespace() => self.pos += 1,
                Some(b'-') if self.peek(1) == Some(b'-') => {
                    while let Some(b) = self.peek(0) {
                        self.pos += 1;
                        if b == b'\n' || b == b'\r' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.peek(1) == Some(b'*') => {
                    let start = self.pos;
                    self.pos += 2;
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => {
                                return Err(self.error(
                                    format!(
                                        "unterminated /* comment at or near \"{}\"",
                                        self.near(start)
                                    ),
                                    start,
                                ));
                            }
                            (Some(b'*'), Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            (Some(b'/'), Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Scans a quoted section starting at `self.pos` (the opening quote). `backslash`:
    /// whether a backslash escapes the next byte (E strings).
    fn scan_quoted(&mut self, quote: u8, backslash: bool, what: &str) -> Result<(), LexError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek(0) {
                None => {
                    return Err(self.error(
                        format!("unterminated {what} at or near \"{}\"", self.near(start)),
                        start,
                    ));
                }
                Some(b'\\') if backslash => self.pos += 2,
                Some(b) if b == quote => {
                    if self.peek(1) == Some(quote) {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// At `$`: a dollar quote if a valid tag follows, returning its end.
    fn try_dollar_quote(&self) -> Option<usize> {
        let b = self.bytes();
        let mut i = self.pos + 1;
        if b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        while let Some(&c) = b.get(i) {
            if c == b'$' {
                break;
            }
            if !(is_ident_start(c) || c.is_ascii_digit()) {
                return None;
            }
            i += 1;
        }
        if b.get(i) != Some(&b'$') {
            return None;
        }
        let tag = &b[self.pos..=i];
        let body_start = i + 1;
        let rest = b.get(body_start..)?;
        rest.windows(tag.len())
            .position(|w| w == tag)
            .map(|p| body_start + p + tag.len())
            .or(Some(usize::MAX))
    }

    pub fn next_token(&mut self) -> Result<Option<Token>, LexError> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(b) = self.peek(0) else {
            return Ok(None);
        };
        let kind = match b {
            b'\'' => {
                self.scan_quoted(b'\'', false, "quoted string")?;
                self.continue_string()?;
                TokenKind::String
            }
            b'"' => {
                self.scan_quoted(b'"', false, "quoted identifier")?;
                TokenKind::QuotedIdent
            }
            b'e' | b'E' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.scan_quoted(b'\'', true, "quoted string")?;
                TokenKind::OtherString
            }
            b'b' | b'B' | b'x' | b'X' | b'n' | b'N' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.scan_quoted(b'\'', false, "quoted string")?;
                TokenKind::OtherString
            }
            b'u' | b'U' if self.peek(1) == Some(b'&') && self.peek(2) == Some(b'\'') => {
                self.pos += 2;
                self.scan_quoted(b'\'', false, "quoted string")?;
                TokenKind::OtherString
            }
            b'$' => {
                if self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                    while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    TokenKind::Param
                } else if let Some(end) = self.try_dollar_quote() {
                    if end == usize::MAX {
                        return Err(self.error(
                            format!(
                                "unterminated dollar-quoted string at or near \"{}\"",
                                self.near(start)
                            ),
                            start,
                        ));
                    }
                    self.pos = end;
                    TokenKind::OtherString
                } else {
                    self.pos += 1;
                    TokenKind::Operator
                }
            }
            b'0'..=b'9' => {
                self.scan_number();
                TokenKind::Number
            }
            b'.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.scan_number();
                TokenKind::Number
            }
            b'(' => self.single(TokenKind::LParen),
            b')' => self.single(TokenKind::RParen),
            b'[' => self.single(TokenKind::LBracket),
            b']' => self.single(TokenKind::RBracket),
            b',' => self.single(TokenKind::Comma),
            b';' => self.single(TokenKind::Semicolon),
            b'.' => self.single(TokenKind::Dot),
            b':' => {
                if matches!(self.peek(1), Some(b':' | b'=')) {
                    self.pos += 2;
                    TokenKind::Operator
                } else {
                    self.single(TokenKind::Colon)
                }
            }
            c if is_ident_start(c) => {
                while self.peek(0).is_some_and(is_ident_cont) {
                    self.pos += 1;
                }
                // Keep multi-byte characters whole.
                while self.pos < self.src.len() && !self.src.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                TokenKind::Word
            }
            c if is_op_char(c) => {
                while let Some(b) = self.peek(0) {
                    let comment_start = (b == b'-' && self.peek(1) == Some(b'-'))
                        || (b == b'/' && self.peek(1) == Some(b'*'));
                    if !is_op_char(b) || (self.pos > start && comment_start) {
                        break;
                    }
                    self.pos += 1;
                }
                // scan.l: a multi-character operator cannot end in `+` or `-` unless it
                // contains one of ~!@#%^&|`? (so `=-1` is `=` and `-1`).
                let op = &self.bytes()[start..self.pos];
                if op.len() > 1 && !op.iter().any(|c| b"~!@#%^&|`?".contains(c)) {
                    let mut end = self.pos;
                    while end > start + 1 && matches!(self.bytes()[end - 1], b'+' | b'-') {
                        end -= 1;
                    }
                    self.pos = end;
                }
                TokenKind::Operator
            }
            _ => {
                // Any other byte (control characters, stray backslash): one operator-like
                // token, so parsing reports it; step over a whole character.
                self.pos += 1;
                while self.pos < self.src.len() && !self.src.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                TokenKind::Operator
            }
        };
        Ok(Some(Token {
            kind,
            start,
            end: self.pos,
        }))
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    /// PostgreSQL joins string literals separated by whitespace containing a newline
    /// (`'a'\n'b'` is `'ab'`). Such a continuation makes the token span both parts.
    fn continue_string(&mut self) -> Result<(), LexError> {
        loop {
            let save = self.pos;
            let mut saw_newline = false;
            while let Some(b) = self.peek(0) {
                if b == b'\n' || b == b'\r' {
                    saw_newline = true;
                } else if !b.is_ascii_whitespace() {
                    break;
                }
                self.pos += 1;
            }
            if saw_newline && self.peek(0) == Some(b'\'') {
                self.scan_quoted(b'\'', false, "quoted string")?;
            } else {
                self.pos = save;
                return Ok(());
            }
        }
    }

    fn scan_number(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.peek(0) == Some(b'.') && self.peek(1) != Some(b'.') {
            self.pos += 1;
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let digits_at = if matches!(self.peek(1), Some(b'+' | b'-')) {
                2
            } else {
                1
            };
            if self.peek(digits_at).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += digits_at;
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
    }
}

/// The value of a plain `'...'` string token (quotes removed, `''` → `'`).
pub fn string_value(token_text: &str) -> String {
    // A continued literal ('a'\n'b') is several quoted parts separated by whitespace.
    let mut out = String::with_capacity(token_text.len());
    let mut chars = token_text.char_indices().peekable();
    let mut inside = false;
    while let Some((_, c)) = chars.next() {
        if !inside {
            if c == '\'' {
                inside = true;
            }
            continue;
        }
        if c == '\'' {
            if chars.peek().map(|&(_, n)| n) == Some('\'') {
                out.push('\'');
                chars.next();
            } else {
                inside = false;
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(TokenKind, String)> {
        tokenize(s)
            .expect("tokenize")
            .iter()
            .map(|t| (t.kind, t.text(s).to_owned()))
            .collect()
    }

    #[test]
    fn tokens_of_a_pgbench_update() {
        let s = "UPDATE pgbench_accounts SET abalance = abalance + -4447 WHERE aid = $1;";
        let k = kinds(s);
        assert_eq!(k[0], (TokenKind::Word, "UPDATE".into()));
        assert!(k.contains(&(TokenKind::Operator, "-".into())));
        assert!(k.contains(&(TokenKind::Number, "4447".into())));
        assert!(k.contains(&(TokenKind::Param, "$1".into())));
        assert_eq!(k.last(), Some(&(TokenKind::Semicolon, ";".into())));
    }

    #[test]
    fn quotes_comments_and_dollar_quotes() {
        let s = "select 'a''b', E'x\\'y', $q$ ; $q$, \"Q\"\"x\" -- c ;\n /* a /* b */ c */ 1.5e3";
        let k = kinds(s);
        assert_eq!(k[1], (TokenKind::String, "'a''b'".into()));
        assert_eq!(k[3], (TokenKind::OtherString, "E'x\\'y'".into()));
        assert_eq!(k[5], (TokenKind::OtherString, "$q$ ; $q$".into()));
        assert_eq!(k[7].0, TokenKind::QuotedIdent);
        assert_eq!(k[8], (TokenKind::Number, "1.5e3".into()));
        assert_eq!(string_value("'a''b'"), "a'b");
        let toks = tokenize(s).expect("tokenize");
        assert_eq!(toks[7].word(s).as_deref(), Some("Q\"x"));
    }

    #[test]
    fn unterminated_things_are_errors_with_positions() {
        let e = tokenize("select 'abc").expect_err("unterminated");
        assert_eq!(e.position, 8);
        assert!(e.message.starts_with("unterminated quoted string"));
        assert!(tokenize("select /* x").is_err());
        assert!(tokenize("select $a$ x").is_err());
        assert!(tokenize("select \"x").is_err());
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        for s in [
            "\u{0}", "é'", "$", "$$", "1e", "1e+", "..", "::", "\\", "ü$ü$", "-", "/",
        ] {
            let _ = tokenize(s);
        }
    }
}
