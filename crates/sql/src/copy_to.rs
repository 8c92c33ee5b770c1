//! COPY ... TO STDOUT: a query's rows as text-format or CSV lines.
//!
//! `COPY table [(columns)] TO STDOUT` runs `SELECT columns FROM table`; `COPY (query) TO
//! STDOUT` runs the query; both go through the normal planner and executor, so what a SELECT
//! can read a COPY can write, with the same snapshot rules (and on a hot standby too). The
//! executor hands rows to [`CopyToSink`], which formats each row as one line and passes it on
//! to the frontend's sink as one CopyData message, as PostgreSQL does.
//!
//! Formats are PostgreSQL's (`CopyAttributeOutText`, `CopyAttributeOutCSV` in copyto.c):
//! - text: columns joined by the delimiter (tab), NULL written as `\N`; a backslash, the
//!   delimiter, and the control characters `\b \f \n \r \t \v` are backslash-escaped, so a
//!   line is always one record.
//! - CSV: columns joined by the delimiter (comma), NULL written as the NULL string (empty by
//!   default) without quotes; a value is quoted when it contains the delimiter, the quote
//!   character, CR or LF, when it equals the NULL string (so an empty string and NULL stay
//!   apart), when it is `\.` alone on its line, or when FORCE_QUOTE names its column; inside
//!   quotes the quote and escape characters are preceded by the escape character.
//! - HEADER writes the column names first, formatted like values.
//!
//! Not here: binary format (0A000 at parse time), writing to a server file or program
//! (0A000: the server's files are not the client's business), and holding the whole result:
//! lines go to the frontend's output buffer as they are produced, like a SELECT's rows.

use base::error::{PgResult, sqlstate};
use base::{DataType, PgError, Value, pgio};

use crate::api::{FieldInfo, RowSink};
use crate::parse::{CopyFormat, ForceQuote};

/// Formats the rows of a COPY TO and forwards them to the frontend's sink.
pub(crate) struct CopyToSink<'a> {
    out: &'a mut dyn RowSink,
    format: &'a CopyFormat,
    types: Vec<DataType>,
    /// Per column: FORCE_QUOTE applies.
    force: Vec<bool>,
    /// The line being built; reused for every row.
    line: Vec<u8>,
    /// One value's text form before escaping; reused.
    value: Vec<u8>,
    pub(crate) rows: u64,
    pub(crate) began: bool,
}

impl<'a> CopyToSink<'a> {
    pub(crate) fn new(out: &'a mut dyn RowSink, format: &'a CopyFormat) -> Self {
        CopyToSink {
            out,
            format,
            types: Vec::new(),
            force: Vec::new(),
            line: Vec::new(),
            value: Vec::new(),
            rows: 0,
            began: false,
        }
    }

    /// Ends the copy stream (CopyDone) and returns the command tag.
    pub(crate) fn finish(self) -> PgResult<String> {
        if !self.began {
            return Err(PgError::internal("COPY query produced no row description"));
        }
        self.out.copy_out_end()?;
        Ok(format!("COPY {}", self.rows))
    }

    fn put_field(&mut self, text: &[u8], force_quote: bool, single: bool) {
        match &self.format.csv {
            None => escape_text(text, self.format.delimiter, &mut self.line),
            Some(csv) => {
                let quote = force_quote
                    || text == self.format.null.as_bytes()
                    || (single && text == b"\\.")
                    || text.iter().any(|&c| {
                        c == self.format.delimiter || c == csv.quote || c == b'\n' || c == b'\r'
                    });
                if quote {
                    self.line.push(csv.quote);
                    for &c in text {
                        if c == csv.quote || c == csv.escape {
                            self.line.push(csv.escape);
                        }
                        self.line.push(c);
                    }
                    self.line.push(csv.quote);
                } else {
                    self.line.extend_from_slice(text);
                }
            }
        }
    }
}

/// PostgreSQL's text-format escaping of one field.
fn escape_text(text: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    for &c in text {
        let escaped = match c {
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            b'\\' => Some(b'\\'),
            _ if c == delimiter => Some(c),
            _ => None,
        };
        match escaped {
            Some(e) => {
                out.push(b'\\');
                out.push(e);
            }
            None => out.push(c),
        }
    }
}

impl RowSink for CopyToSink<'_> {
    fn begin(&mut self, fields: &[FieldInfo]) -> PgResult<()> {
        self.types = fields.iter().map(|f| f.data_type).collect();
        self.force = match self.format.csv.as_ref().map(|c| &c.force_quote) {
            None | Some(ForceQuote::None) => vec![false; fields.len()],
            Some(ForceQuote::All) => vec![true; fields.len()],
            Some(ForceQuote::Columns(cols)) => {
                let mut force = vec![false; fields.len()];
                for name in cols {
                    let i = fields.iter().position(|f| &f.name == name).ok_or_else(|| {
                        PgError::new(
                            sqlstate::INVALID_COLUMN_REFERENCE,
                            format!("FORCE_QUOTE column \"{name}\" not referenced by COPY"),
                        )
                    })?;
                    force[i] = true;
                }
                force
            }
        };
        self.out.copy_out_begin(fields.len())?;
        self.began = true;
        if self.format.header {
            self.line.clear();
            let single = fields.len() == 1;
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    self.line.push(self.format.delimiter);
                }
                self.put_field(f.name.as_bytes(), false, single);
            }
            self.line.push(b'\n');
            self.out.copy_out_data(&self.line)?;
        }
        Ok(())
    }

    fn row(&mut self, row: &[Value]) -> PgResult<()> {
        self.line.clear();
        let single = row.len() == 1;
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                self.line.push(self.format.delimiter);
            }
            if v.is_null() {
                // The NULL string goes out as given, never quoted or escaped.
                self.line.extend_from_slice(self.format.null.as_bytes());
                continue;
            }
            let ty = self.types.get(i).copied().unwrap_or(DataType::Text);
            let mut value = std::mem::take(&mut self.value);
            value.clear();
            pgio::format_text(v, ty, &mut value);
            let force = self.force.get(i).copied().unwrap_or(false);
            self.put_field(&value, force, single);
            self.value = value;
        }
        self.line.push(b'\n');
        self.out.copy_out_data(&self.line)?;
        self.rows += 1;
        Ok(())
    }

    fn copy_out_begin(&mut self, _columns: usize) -> PgResult<()> {
        Err(PgError::internal("COPY TO inside COPY TO"))
    }

    fn copy_out_data(&mut self, _data: &[u8]) -> PgResult<()> {
        Err(PgError::internal("COPY TO inside COPY TO"))
    }

    fn copy_out_end(&mut self) -> PgResult<()> {
        Err(PgError::internal("COPY TO inside COPY TO"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::CsvFormat;

    /// Collects what the copy sink forwards.
    #[derive(Default)]
    struct Out {
        columns: Option<usize>,
        data: Vec<u8>,
        messages: usize,
        ended: bool,
    }

    impl RowSink for Out {
        fn begin(&mut self, _: &[FieldInfo]) -> PgResult<()> {
            panic!("rows must not reach the frontend as DataRows")
        }
        fn row(&mut self, _: &[Value]) -> PgResult<()> {
            panic!("rows must not reach the frontend as DataRows")
        }
        fn copy_out_begin(&mut self, columns: usize) -> PgResult<()> {
            self.columns = Some(columns);
            Ok(())
        }
        fn copy_out_data(&mut self, data: &[u8]) -> PgResult<()> {
            self.data.extend_from_slice(data);
            self.messages += 1;
            Ok(())
        }
        fn copy_out_end(&mut self) -> PgResult<()> {
            self.ended = true;
            Ok(())
        }
    }

    fn field(name: &str, ty: DataType) -> FieldInfo {
        FieldInfo {
            name: name.into(),
            table_oid: 0,
            column_id: 0,
            data_type: ty,
        }
    }

    fn text() -> CopyFormat {
        CopyFormat {
            delimiter: b'\t',
            null: "\\N".into(),
            header: false,
            csv: None,
        }
    }

    fn csv(force_quote: ForceQuote) -> CopyFormat {
        CopyFormat {
            delimiter: b',',
            null: String::new(),
            header: false,
            csv: Some(CsvFormat {
                quote: b'"',
                escape: b'"',
                force_quote,
            }),
        }
    }

    fn copy(format: &CopyFormat, fields: &[FieldInfo], rows: &[Vec<Value>]) -> (Out, String) {
        let mut out = Out::default();
        let tag = {
            let mut sink = CopyToSink::new(&mut out, format);
            sink.begin(fields).expect("begin");
            for r in rows {
                sink.row(r).expect("row");
            }
            sink.finish().expect("finish")
        };
        (out, tag)
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn text_format_escapes_like_postgres() {
        let fields = [field("a", DataType::Int4), field("b", DataType::Text)];
        let (out, tag) = copy(
            &text(),
            &fields,
            &[
                vec![Value::Int4(1), t("plain")],
                vec![Value::Int4(2), t("tab\there\nnew\\back\rcr\u{8}\u{b}\u{c}")],
                vec![Value::Null, Value::Null],
                vec![Value::Int4(4), t("")],
            ],
        );
        assert_eq!(tag, "COPY 4");
        assert_eq!(out.columns, Some(2));
        assert_eq!(out.messages, 4, "one CopyData per row");
        assert!(out.ended);
        assert_eq!(
            String::from_utf8(out.data).expect("utf8"),
            "1\tplain\n2\ttab\\there\\nnew\\\\back\\rcr\\b\\v\\f\n\\N\t\\N\n4\t\n"
        );
    }

    #[test]
    fn text_format_escapes_a_custom_delimiter() {
        let mut f = text();
        f.delimiter = b'|';
        f.header = true;
        let (out, _) = copy(
            &f,
            &[field("x|y", DataType::Text), field("b", DataType::Text)],
            &[vec![t("a|b\tc"), t("d")]],
        );
        assert_eq!(
            String::from_utf8(out.data).expect("utf8"),
            "x\\|y|b\na\\|b\\tc|d\n"
        );
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut f = csv(ForceQuote::None);
        f.header = true;
        let fields = [field("id", DataType::Int4), field("note", DataType::Text)];
        let (out, tag) = copy(
            &f,
            &fields,
            &[
                vec![Value::Int4(1), t("plain")],
                vec![Value::Int4(2), t("has,comma")],
                vec![Value::Int4(3), t("say \"hi\"")],
                vec![Value::Int4(4), t("two\nlines")],
                vec![Value::Int4(5), t("")],
                vec![Value::Int4(6), Value::Null],
                vec![Value::Int4(7), t("back\\slash")],
            ],
        );
        assert_eq!(tag, "COPY 7");
        assert_eq!(
            String::from_utf8(out.data).expect("utf8"),
            "id,note\n1,plain\n2,\"has,comma\"\n3,\"say \"\"hi\"\"\"\n4,\"two\nlines\"\n5,\"\"\n6,\n7,back\\slash\n"
        );
    }

    #[test]
    fn csv_force_quote_escape_and_end_marker() {
        let fields = [field("a", DataType::Int4), field("b", DataType::Text)];
        let (out, _) = copy(
            &csv(ForceQuote::Columns(vec!["b".into()])),
            &fields,
            &[
                vec![Value::Int4(1), t("x")],
                vec![Value::Int4(2), Value::Null],
            ],
        );
        // NULL is never quoted, even when forced.
        assert_eq!(String::from_utf8(out.data).expect("utf8"), "1,\"x\"\n2,\n");

        let (out, _) = copy(
            &csv(ForceQuote::All),
            &fields,
            &[vec![Value::Int4(1), t("x")]],
        );
        assert_eq!(String::from_utf8(out.data).expect("utf8"), "\"1\",\"x\"\n");

        let mut f = csv(ForceQuote::None);
        if let Some(c) = f.csv.as_mut() {
            c.escape = b'\\';
        }
        let (out, _) = copy(&f, &fields, &[vec![Value::Int4(1), t("q\"b\\")]]);
        assert_eq!(
            String::from_utf8(out.data).expect("utf8"),
            "1,\"q\\\"b\\\\\"\n"
        );

        // `\.` alone on a line would end the data for a reader: quoted.
        let (out, _) = copy(
            &csv(ForceQuote::None),
            &[field("a", DataType::Text)],
            &[vec![t("\\.")]],
        );
        assert_eq!(String::from_utf8(out.data).expect("utf8"), "\"\\.\"\n");
    }

    #[test]
    fn force_quote_of_a_column_not_copied_is_an_error() {
        let mut out = Out::default();
        let f = csv(ForceQuote::Columns(vec!["zz".into()]));
        let mut sink = CopyToSink::new(&mut out, &f);
        let e = sink
            .begin(&[field("a", DataType::Int4)])
            .expect_err("unknown column");
        assert_eq!(e.code, sqlstate::INVALID_COLUMN_REFERENCE);
        assert_eq!(
            e.message,
            "FORCE_QUOTE column \"zz\" not referenced by COPY"
        );
    }
}
