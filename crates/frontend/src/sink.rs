//! The `RowSink` the frontend gives to `Session::execute`: encodes each row as a DataRow,
//! straight into the connection's output buffer (the hot path).
//!
//! A row costs no allocation here: values are formatted in place by `base::pgio`, behind a
//! length word that is patched afterwards, and the per-column (type, format) list lives in a
//! buffer the connection reuses for every statement.
//!
//! Formats follow the protocol's 0/1/N rule: no codes = all text, one code = all columns,
//! else one per column (checked against the column count in `begin`). In the simple protocol
//! `begin` also writes the RowDescription; in the extended protocol the RowDescription belongs
//! to Describe, so `begin` only records the columns.
//!
//! Bounds: a DataRow larger than 1 GiB - 1 is refused with 54000, as PostgreSQL cannot build
//! a message larger than MaxAllocSize either; the partial row is removed from the buffer so
//! the stream stays well-formed.

use base::error::{PgResult, sqlstate};
use base::{DataType, PgError, Value, pgio};
use sql::{FieldInfo, RowSink};

use crate::wire;

/// PostgreSQL's MaxAllocSize - 1: the largest DataRow we build.
const DATA_ROW_MAX_LEN: usize = (1 << 30) - 1;

/// The format code for column `i` under the 0/1/N rule.
#[inline]
pub(crate) fn format_for(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

pub(crate) struct WireSink<'a> {
    out: &'a mut Vec<u8>,
    /// (type, binary?) per column; reused across statements.
    columns: &'a mut Vec<(DataType, bool)>,
    formats: &'a [i16],
    /// Simple protocol: write RowDescription in `begin`.
    describe: bool,
    /// When holding rows for a suspended portal: the end offset of each row in `out`.
    row_ends: Option<&'a mut Vec<usize>>,
    /// Whether `begin` was called, i.e. the statement returns rows.
    pub(crate) began: bool,
    /// Whether a COPY TO STDOUT wrote its stream (into `out`, held or not).
    pub(crate) copied_out: bool,
}

impl<'a> WireSink<'a> {
    /// For the simple protocol: RowDescription on `begin`, all columns in text.
    pub(crate) fn simple(out: &'a mut Vec<u8>, columns: &'a mut Vec<(DataType, bool)>) -> Self {
        WireSink {
            out,
            columns,
            formats: &[],
            describe: true,
            row_ends: None,
            began: false,
            copied_out: false,
        }
    }

    /// For Execute: rows only, in the portal's result formats.
    pub(crate) fn extended(
        out: &'a mut Vec<u8>,
        columns: &'a mut Vec<(DataType, bool)>,
        formats: &'a [i16],
    ) -> Self {
        WireSink {
            out,
            columns,
            formats,
            describe: false,
            row_ends: None,
            began: false,
            copied_out: false,
        }
    }

    /// For Execute with a row limit: rows into a holding buffer, with their end offsets.
    pub(crate) fn holding(
        held: &'a mut Vec<u8>,
        row_ends: &'a mut Vec<usize>,
        columns: &'a mut Vec<(DataType, bool)>,
        formats: &'a [i16],
    ) -> Self {
        WireSink {
            out: held,
            columns,
            formats,
            describe: false,
            row_ends: Some(row_ends),
            began: false,
            copied_out: false,
        }
    }
}

/// The error for a result-format list that does not fit the columns.
pub(crate) fn result_format_count_error(formats: usize, columns: usize) -> PgError {
    PgError::new(
        sqlstate::PROTOCOL_VIOLATION,
        format!("bind message has {formats} result formats but query has {columns} columns"),
    )
}

impl RowSink for WireSink<'_> {
    fn begin(&mut self, fields: &[FieldInfo]) -> PgResult<()> {
        if self.formats.len() > 1 && self.formats.len() != fields.len() {
            return Err(result_format_count_error(self.formats.len(), fields.len()));
        }
        self.columns.clear();
        self.columns.extend(
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.data_type, format_for(self.formats, i) == 1)),
        );
        if self.describe {
            wire::row_description(self.out, fields, |_| 0);
        }
        self.began = true;
        Ok(())
    }

    fn row(&mut self, row: &[Value]) -> PgResult<()> {
        if !self.began {
            return Err(PgError::internal("result row sent before its description"));
        }
        if row.len() != self.columns.len() {
            return Err(PgError::internal(format!(
                "result row has {} values but the result has {} columns",
                row.len(),
                self.columns.len()
            )));
        }
        let out = &mut *self.out;
        let start = out.len();
        let at = wire::begin(out, b'D');
        // `columns.len()` fits: RowDescription sends the count as i16 too.
        out.extend_from_slice(&(self.columns.len() as i16).to_be_bytes());
        for (value, (ty, binary)) in row.iter().zip(self.columns.iter()) {
            if value.is_null() {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            if *binary {
                if let Err(e) = pgio::format_binary(value, *ty, out) {
                    out.truncate(start);
                    return Err(e);
                }
            } else {
                pgio::format_text(value, *ty, out);
            }
            let len = out.len() - len_at - 4;
            if len > DATA_ROW_MAX_LEN {
                out.truncate(start);
                return Err(row_too_large(len));
            }
            out[len_at..len_at + 4].copy_from_slice(&(len as i32).to_be_bytes());
        }
        let total = out.len() - start;
        if total > DATA_ROW_MAX_LEN {
            out.truncate(start);
            return Err(row_too_large(total));
        }
        wire::end(out, at);
        if let Some(ends) = self.row_ends.as_deref_mut() {
            ends.push(out.len());
        }
        Ok(())
    }

    fn copy_out_begin(&mut self, columns: usize) -> PgResult<()> {
        wire::copy_out_response(self.out, columns);
        self.copied_out = true;
        Ok(())
    }

    fn copy_out_data(&mut self, data: &[u8]) -> PgResult<()> {
        if data.len() > DATA_ROW_MAX_LEN {
            return Err(row_too_large(data.len()));
        }
        wire::copy_data(self.out, data);
        Ok(())
    }

    fn copy_out_end(&mut self) -> PgResult<()> {
        wire::copy_done(self.out);
        Ok(())
    }
}

fn row_too_large(len: usize) -> PgError {
    PgError::new(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        format!("result row is too large to send ({len} bytes; the limit is 1 GiB)"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fields() -> Vec<FieldInfo> {
        vec![
            FieldInfo {
                name: "id".into(),
                table_oid: 16384,
                column_id: 1,
                data_type: DataType::Int4,
            },
            FieldInfo {
                name: "name".into(),
                table_oid: 16384,
                column_id: 2,
                data_type: DataType::Text,
            },
        ]
    }

    #[test]
    fn simple_sink_writes_description_and_text_rows() {
        let mut out = Vec::new();
        let mut cols = Vec::new();
        let mut sink = WireSink::simple(&mut out, &mut cols);
        sink.begin(&fields()).unwrap();
        sink.row(&[Value::Int4(42), Value::Null]).unwrap();
        assert!(sink.began);
        assert_eq!(out[0], b'T');
        let t_len = i32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
        let row = &out[1 + t_len..];
        assert_eq!(
            row,
            &[
                b'D', 0, 0, 0, 16, 0, 2, 0, 0, 0, 2, b'4', b'2', 0xff, 0xff, 0xff, 0xff
            ][..]
        );
    }

    #[test]
    fn extended_sink_uses_binary_formats() {
        let mut out = Vec::new();
        let mut cols = Vec::new();
        let formats = [1i16];
        let mut sink = WireSink::extended(&mut out, &mut cols, &formats);
        sink.begin(&fields()).unwrap();
        sink.row(&[Value::Int4(7), Value::text("x")]).unwrap();
        assert_eq!(
            out,
            [
                b'D', 0, 0, 0, 19, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 1, b'x'
            ]
        );
    }

    #[test]
    fn format_counts_are_checked() {
        let mut out = Vec::new();
        let mut cols = Vec::new();
        let formats = [0i16, 1, 0];
        let mut sink = WireSink::extended(&mut out, &mut cols, &formats);
        let err = sink.begin(&fields()).unwrap_err();
        assert_eq!(err.code, sqlstate::PROTOCOL_VIOLATION);
        assert_eq!(format_for(&[], 3), 0);
        assert_eq!(format_for(&[1], 3), 1);
        assert_eq!(format_for(&[0, 1], 1), 1);
    }

    #[test]
    fn bad_rows_leave_the_buffer_well_formed() {
        let mut out = Vec::new();
        let mut cols = Vec::new();
        let formats = [1i16];
        let mut sink = WireSink::extended(&mut out, &mut cols, &formats);
        assert!(sink.row(&[Value::Int4(1)]).is_err(), "row before begin");
        sink.begin(&fields()).unwrap();
        assert!(sink.row(&[Value::Int4(1)]).is_err(), "too few values");
        // Binary output of a type pgio does not support yet fails; nothing is left behind.
        let r = sink.row(&[Value::Int4(1), Value::Timestamp(0)]);
        if r.is_err() {
            assert!(out.is_empty());
        }
    }

    #[test]
    fn holding_sink_records_row_ends() {
        let mut held = Vec::new();
        let mut ends = Vec::new();
        let mut cols = Vec::new();
        let mut sink = WireSink::holding(&mut held, &mut ends, &mut cols, &[]);
        sink.begin(&fields()).unwrap();
        sink.row(&[Value::Int4(1), Value::text("a")]).unwrap();
        sink.row(&[Value::Int4(22), Value::text("bb")]).unwrap();
        assert_eq!(ends.len(), 2);
        assert_eq!(ends[1], held.len());
        assert_eq!(held[0], b'D');
        assert_eq!(held[ends[0]], b'D');
    }
}
