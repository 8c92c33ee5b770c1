//! COPY ... FROM STDIN, text format and CSV.
//!
//! The client sends the data as CopyData messages whose boundaries mean nothing: a line may
//! be split across messages, a message may hold many lines. `CopyIn` keeps the incomplete
//! tail of the last message and processes complete lines as they arrive, so memory stays at
//! one line plus one message. Each line is split at the delimiter (default tab); a field
//! equal to the NULL string (default `\N`) is NULL; backslash escapes (`\t \n \r \\ \b \f \v`,
//! octal `\ooo`, hex `\xhh`, and any other `\c` = `c`) are decoded; a line `\.` ends the data
//! (anything after it is ignored). A trailing `\r` is dropped (CRLF files). Columns not
//! listed in `COPY t (a, b)` get their defaults.
//!
//! CSV (PostgreSQL's `CopyReadAttributesCSV`): fields split at the delimiter (comma) outside
//! quotes; a quoted section may hold delimiters and newlines, so a record ends at the first
//! newline outside quotes, which may be several messages later (the incomplete record is
//! carried over with the quote state reached so far, so no byte is scanned twice); inside
//! quotes the escape character (default: the quote itself, i.e. `""`) makes the next quote or
//! escape literal. An unquoted field equal to the NULL string (empty by default) is NULL, so
//! `,,` is NULL and `,"",` an empty string. A record still inside quotes at the end of the
//! data is 22P04 `unterminated CSV quoted field`.
//!
//! Errors are PostgreSQL's: 22P04 for a wrong number of fields (`missing data for column
//! "x"`, `extra data after last expected column`), 22P02 and friends from the type input
//! functions, 23502 for NULL in a NOT NULL column; the detail names the line and column as
//! PostgreSQL's CONTEXT does (`COPY t, line 3, column b: "xyz"`).
//!
//! Speed: pgbench -i loads 100 000 rows per scale factor this way. Fields without
//! backslashes are parsed straight from the message bytes; only the row itself is
//! allocated per line.

use std::sync::Arc;

use base::error::sqlstate;
use base::{DataType, PgError, Row, Value};
use storage::Table;
use txn::Transaction;

use crate::exec::check_not_null;

/// The state of a COPY in progress.
pub struct CopyIn {
    pub table: Arc<Table>,
    /// Table column of each field, in file order.
    pub fields: Vec<usize>,
    /// Column types, per table column.
    types: Vec<DataType>,
    /// Values for columns not in the file (evaluated defaults, per table column; `None` for
    /// columns in the file).
    defaults: Vec<Option<Value>>,
    delimiter: u8,
    null: Vec<u8>,
    skip_header: bool,
    /// Bytes of an incomplete line carried over from the previous message.
    partial: Vec<u8>,
    line: u64,
    pub rows: u64,
    ended: bool,
    /// Reused buffer for fields with escapes.
    scratch: Vec<u8>,
    /// CSV mode: quote and escape characters.
    csv: Option<(u8, u8)>,
    /// CSV mode: how far `partial` has been scanned for the record's end, and whether that
    /// point is inside quotes.
    csv_scanned: usize,
    csv_in_quotes: bool,
    /// Columns not in the file whose default is `nextval(seq)`: a new value per row.
    sequences: Vec<(usize, Arc<Table>)>,
    mgr: Option<Arc<txn::TxnManager>>,
    /// The table's CHECK constraints, if it has any.
    checks: Option<CopyChecks>,
    /// Foreign-key checks owed at the end of the COPY (empty for tables without any).
    fk: crate::exec::foreign_key::FkChecks,
}

/// What evaluating CHECK constraints during a COPY needs: the bound conditions and an
/// owned copy of the session's view (a COPY outlives any one borrow of the session).
pub struct CopyChecks {
    pub checks: Vec<(String, crate::expr::Expr)>,
    pub engine: Arc<crate::engine::Engine>,
    pub gucs: crate::guc::SessionGucs,
    pub pid: i32,
    pub user: String,
    pub database: String,
    pub superuser: bool,
    pub txn_start: i64,
    pub snapshot: storage::Snapshot,
}

impl CopyChecks {
    fn check(&self, table: &Table, row: &[Value]) -> Result<(), PgError> {
        let seen = crate::exec::sequence::SessionSequences::default();
        let env = crate::expr::Env {
            engine: &self.engine,
            gucs: &self.gucs,
            pid: self.pid,
            user: &self.user,
            database: &self.database,
            superuser: self.superuser,
            txn_start: self.txn_start,
            stmt_start: self.txn_start,
            effects: parking_lot::Mutex::new(Vec::new()),
            promote_result: parking_lot::Mutex::new(None),
            sequences: crate::expr::SequenceEnv {
                snapshot: self.snapshot,
                read_only: true,
                seen: &seen,
            },
        };
        let cx = crate::expr::EvalCx {
            params: &[],
            env: &env,
            subqueries: &[],
            exec: None,
            outer: &[],
        };
        crate::exec::check_constraints(table, &self.checks, row, &cx)
    }
}

/// SQLSTATE 22P04 (bad_copy_file_format), not in base's list.
const BAD_COPY_FILE_FORMAT: base::SqlState = base::SqlState("22P04");

fn bad_copy(message: impl Into<String>) -> PgError {
    PgError::new(BAD_COPY_FILE_FORMAT, message)
}

impl CopyIn {
    pub fn new(
        table: Arc<Table>,
        fields: Vec<usize>,
        defaults: Vec<Option<Value>>,
        stmt: &crate::parse::CopyStmt,
    ) -> CopyIn {
        let types = table.def.columns.iter().map(|c| c.data_type).collect();
        CopyIn {
            table,
            fields,
            types,
            defaults,
            delimiter: stmt.delimiter,
            null: stmt.null.as_bytes().to_vec(),
            skip_header: stmt.header,
            partial: Vec::new(),
            line: 0,
            rows: 0,
            ended: false,
            scratch: Vec::new(),
            csv: stmt.csv.as_ref().map(|c| (c.quote, c.escape)),
            csv_scanned: 0,
            csv_in_quotes: false,
            sequences: Vec::new(),
            mgr: None,
            checks: None,
            fk: Default::default(),
        }
    }

    /// Checks every row against the table's CHECK constraints.
    pub fn with_checks(mut self, checks: CopyChecks) -> CopyIn {
        self.checks = Some(checks);
        self
    }

    /// Columns whose default takes the next value of a sequence for every row (serial and
    /// identity columns), instead of one evaluated default.
    pub fn with_sequences(
        mut self,
        mgr: Arc<txn::TxnManager>,
        sequences: Vec<(usize, Arc<Table>)>,
    ) -> CopyIn {
        self.mgr = Some(mgr);
        self.sequences = sequences;
        self
    }

    fn context(&self) -> String {
        format!("COPY {}, line {}", self.table.name(), self.line)
    }

    /// Consumes one CopyData payload.
    pub async fn data(&mut self, txn: &mut Transaction, data: &[u8]) -> Result<(), PgError> {
        if self.csv.is_some() {
            return self.data_csv(txn, data).await;
        }
        let mut rest = data;
        if !self.partial.is_empty() {
            match rest.iter().position(|b| *b == b'\n') {
                None => {
                    self.partial.extend_from_slice(rest);
                    return Ok(());
                }
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                    let r = self.line_in(txn, &line).await;
                    self.partial = line;
                    self.partial.clear();
                    r?;
                }
            }
        }
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.line_in(txn, &rest[..i]).await?;
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// CSV: appends the payload to the carried-over bytes and processes every complete
    /// record in them.
    async fn data_csv(&mut self, txn: &mut Transaction, data: &[u8]) -> Result<(), PgError> {
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(data);
        let mut consumed = 0;
        let result = loop {
            match self.csv_record_end(&buf) {
                Some(end) => {
                    let r = self.line_in(txn, &buf[consumed..end]).await;
                    consumed = end + 1;
                    self.csv_scanned = consumed;
                    if let Err(e) = r {
                        break Err(e);
                    }
                }
                None => break Ok(()),
            }
        };
        buf.drain(..consumed);
        self.csv_scanned -= consumed;
        self.partial = buf;
        result
    }

    /// The index of the newline that ends the record starting at the last consumed byte,
    /// scanning on from `csv_scanned` with the quote state reached there.
    fn csv_record_end(&mut self, buf: &[u8]) -> Option<usize> {
        let (quote, escape) = self.csv?;
        let mut i = self.csv_scanned;
        while i < buf.len() {
            let c = buf[i];
            if self.csv_in_quotes {
                if c == escape && escape != quote {
                    // The escaped byte may be in the next message: wait for it.
                    if i + 1 >= buf.len() {
                        break;
                    }
                    if buf[i + 1] == quote || buf[i + 1] == escape {
                        i += 2;
                        continue;
                    }
                }
                if c == quote {
                    self.csv_in_quotes = false;
                }
            } else if c == quote {
                self.csv_in_quotes = true;
            } else if c == b'\n' {
                self.csv_scanned = i;
                return Some(i);
            }
            i += 1;
        }
        self.csv_scanned = i;
        None
    }

    /// CopyDone: processes a last line without newline.
    pub async fn done(&mut self, txn: &mut Transaction) -> Result<u64, PgError> {
        if self.csv.is_some() && self.csv_in_quotes && !self.ended {
            return Err(bad_copy("unterminated CSV quoted field").with_detail(self.context()));
        }
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line_in(txn, &line).await?;
        }
        self.fk.verify(txn).await?;
        Ok(self.rows)
    }

    async fn line_in(&mut self, txn: &mut Transaction, line: &[u8]) -> Result<(), PgError> {
        if self.ended {
            return Ok(());
        }
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            self.ended = true;
            return Ok(());
        }
        if self.skip_header {
            self.skip_header = false;
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| {
            PgError::new(
                sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\"",
            )
            .with_detail(self.context())
        })?;
        let row = match self.csv {
            Some((quote, escape)) => self.parse_row_csv(text, quote, escape)?,
            None => self.parse_row(text)?,
        };
        check_not_null(&self.table, &row).map_err(|e| e.with_detail(self.context()))?;
        if let Some(c) = &self.checks {
            c.check(&self.table, &row)?;
        }
        txn.insert(&self.table, row.clone())
            .await
            .map_err(|e| PgError::from(e).with_detail(self.context()))?;
        self.fk.note_child(&self.table, None, &row);
        self.rows += 1;
        Ok(())
    }

    fn parse_row(&mut self, text: &str) -> Result<Row, PgError> {
        let mut values = self.default_row()?;
        let bytes = text.as_bytes();
        let mut pos = 0usize;
        let nfields = self.fields.len();
        for (fi, &col) in self.fields.iter().enumerate() {
            if pos > bytes.len() {
                let name = self.table.def.columns[col].name.clone();
                return Err(bad_copy(format!("missing data for column \"{name}\""))
                    .with_detail(self.context()));
            }
            // Find the field's end: the next unescaped delimiter.
            let start = pos;
            let mut end = start;
            let mut escaped = false;
            while end < bytes.len() && bytes[end] != self.delimiter {
                if bytes[end] == b'\\' {
                    escaped = true;
                    end += 1;
                }
                end += 1;
            }
            let end = end.min(bytes.len());
            let raw = &bytes[start..end];
            pos = end + 1;
            if fi + 1 == nfields && end < bytes.len() {
                return Err(
                    bad_copy("extra data after last expected column").with_detail(self.context())
                );
            }
            if raw == self.null.as_slice() {
                values[col] = Value::Null;
                continue;
            }
            let ty = self.types[col];
            let field: &str = if escaped {
                self.scratch.clear();
                unescape(raw, &mut self.scratch);
                std::str::from_utf8(&self.scratch).map_err(|_| {
                    PgError::new(
                        sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                        "invalid byte sequence for encoding \"UTF8\"",
                    )
                    .with_detail(self.context())
                })?
            } else {
                // `raw` is a slice of valid UTF-8 split at ASCII delimiters.
                std::str::from_utf8(raw).unwrap_or("")
            };
            values[col] = base::pgio::parse_text(field, ty).map_err(|e| {
                let name = &self.table.def.columns[col].name;
                e.with_detail(format!("{}, column {name}: \"{field}\"", self.context()))
            })?;
        }
        if nfields == 0 && !bytes.is_empty() {
            return Err(
                bad_copy("extra data after last expected column").with_detail(self.context())
            );
        }
        Ok(Arc::from(values))
    }
}

impl CopyIn {
    /// A row of the columns' defaults (NULL for those the file fills in).
    fn default_row(&self) -> Result<Vec<Value>, PgError> {
        let mut row: Vec<Value> = self
            .defaults
            .iter()
            .map(|d| d.clone().unwrap_or(Value::Null))
            .collect();
        if let Some(mgr) = &self.mgr {
            for (col, seq) in &self.sequences {
                // The COPY's own commit record follows any sequence record: no extra wait.
                let (v, _) = mgr
                    .nextval(seq)
                    .map_err(|e| crate::exec::sequence::sequence_error(e, "nextval", seq.name()))?;
                row[*col] = base::cast::cast(
                    &Value::Int8(v),
                    self.types[*col],
                    base::cast::CastKind::Assignment,
                )?;
            }
        }
        Ok(row)
    }

    /// One CSV record (without its newline) into a row.
    fn parse_row_csv(&mut self, text: &str, quote: u8, escape: u8) -> Result<Row, PgError> {
        let mut values = self.default_row()?;
        let bytes = text.as_bytes();
        let mut pos = 0usize;
        let nfields = self.fields.len();
        let mut field = Vec::new();
        for (fi, &col) in self.fields.iter().enumerate() {
            if pos > bytes.len() {
                let name = self.table.def.columns[col].name.clone();
                return Err(bad_copy(format!("missing data for column \"{name}\""))
                    .with_detail(self.context()));
            }
            field.clear();
            let start = pos;
            let mut quoted = false;
            let mut in_quotes = false;
            let mut end = pos;
            while end < bytes.len() {
                let c = bytes[end];
                if in_quotes {
                    if c == escape
                        && end + 1 < bytes.len()
                        && (bytes[end + 1] == quote || bytes[end + 1] == escape)
                        && (escape != quote || bytes[end + 1] == quote)
                    {
                        field.push(bytes[end + 1]);
                        end += 2;
                        continue;
                    }
                    if c == quote {
                        in_quotes = false;
                    } else {
                        field.push(c);
                    }
                } else if c == self.delimiter {
                    break;
                } else if c == quote {
                    quoted = true;
                    in_quotes = true;
                } else {
                    field.push(c);
                }
                end += 1;
            }
            if in_quotes {
                return Err(bad_copy("unterminated CSV quoted field").with_detail(self.context()));
            }
            pos = end + 1;
            if fi + 1 == nfields && end < bytes.len() {
                return Err(
                    bad_copy("extra data after last expected column").with_detail(self.context())
                );
            }
            if !quoted && &bytes[start..end] == self.null.as_slice() {
                values[col] = Value::Null;
                continue;
            }
            // `field` is valid UTF-8: `text` is, and only ASCII quote bytes were dropped.
            let s = std::str::from_utf8(&field).unwrap_or("");
            values[col] = base::pgio::parse_text(s, self.types[col]).map_err(|e| {
                let name = &self.table.def.columns[col].name;
                e.with_detail(format!("{}, column {name}: \"{s}\"", self.context()))
            })?;
        }
        if nfields == 0 && !bytes.is_empty() {
            return Err(
                bad_copy("extra data after last expected column").with_detail(self.context())
            );
        }
        Ok(Arc::from(values))
    }
}

/// Decodes COPY text escapes into `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match raw.get(i).and_then(|d| hex(*d)) {
                    Some(h1) => {
                        i += 1;
                        let mut v = h1;
                        if let Some(h2) = raw.get(i).and_then(|d| hex(*d)) {
                            v = v * 16 + h2;
                            i += 1;
                        }
                        out.push(v as u8);
                    }
                    None => out.push(b'x'),
                }
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode() {
        let mut out = Vec::new();
        unescape(b"a\\tb\\\\c\\nd\\101\\x41\\q", &mut out);
        assert_eq!(out, b"a\tb\\c\nd\x41\x41q");
    }
}
