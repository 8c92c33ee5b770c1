//! Splitting a simple-query string into statements at top-level semicolons.
//!
//! Semicolons inside quotes, dollar quotes, quoted identifiers and comments do not split
//! (the lexer skips them). Empty statements (`;;`, comment-only text) are dropped, as
//! PostgreSQL drops them. Each piece keeps its tokens, rebased to the piece's own text, so
//! later steps never lex twice.

use super::lexer::{LexError, Lexer, Token, TokenKind, char_position};

#[derive(Debug)]
pub struct Piece<'a> {
    /// The statement's text: from its first token to its last, without the `;`.
    pub text: &'a str,
    /// Tokens with offsets relative to `text`.
    pub tokens: Vec<Token>,
    /// 1-based character position of `text` in the whole query string, minus one (add it to
    /// positions within `text`).
    pub char_offset: u32,
}

/// Splits `src` into statements.
pub fn split<'a>(src: &'a str) -> Result<Vec<Piece<'a>>, LexError> {
    let mut pieces = Vec::new();
    let mut lexer = Lexer::new(src);
    let mut current: Vec<Token> = Vec::new();
    let flush = |current: &mut Vec<Token>, pieces: &mut Vec<Piece<'a>>| {
        if let (Some(first), Some(last)) = (current.first().copied(), current.last().copied()) {
            let base = first.start;
            let text = src.get(base..last.end).unwrap_or("");
            let tokens = current
                .iter()
                .map(|t| Token {
                    kind: t.kind,
                    start: t.start - base,
                    end: t.end - base,
                })
                .collect();
            pieces.push(Piece {
                text,
                tokens,
                char_offset: char_position(src, base) - 1,
            });
        }
        current.clear();
    };
    while let Some(t) = lexer.next_token()? {
        if t.kind == TokenKind::Semicolon {
            flush(&mut current, &mut pieces);
        } else {
            current.push(t);
        }
    }
    flush(&mut current, &mut pieces);
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split(s)
            .expect("split")
            .iter()
            .map(|p| p.text.to_owned())
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        assert_eq!(texts("BEGIN; SELECT 1;"), vec!["BEGIN", "SELECT 1"]);
        assert_eq!(
            texts("select ';', $$ ; $$ -- ;\n; select \"a;b\" /* ; */"),
            vec!["select ';', $$ ; $$", "select \"a;b\""]
        );
        assert!(texts("  ;; -- nothing\n ;").is_empty());
        assert!(texts("").is_empty());
    }

    #[test]
    fn offsets_point_into_the_whole_string() {
        let p = split("select 1; selec 2").expect("split");
        assert_eq!(p[1].text, "selec 2");
        assert_eq!(p[1].char_offset, 10);
        assert_eq!(p[1].tokens[0].start, 0);
    }
}
