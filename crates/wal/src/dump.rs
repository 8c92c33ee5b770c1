//! `lockstep waldump`: WAL records in readable form, as `pg_waldump` prints them.
//!
//! One line per record: LSN, record and padded length, kind, transaction, and a summary of the
//! change; then how the WAL ends (end of valid WAL, or corruption with file and LSN). Decoding
//! failures of a payload are printed, not fatal: the tool must show damaged WAL too.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use base::{Lsn, TimelineId, Value};

use crate::reader::{ReadError, ReadOutcome, WalReader};
use crate::record::{Change, RecordKind, WalRecord};

/// A value in a summary: short, quoted like SQL literals, long strings elided.
fn short_value(v: &Value) -> String {
    let mut out = Vec::new();
    base::pgio::format_text(v, base::pgio::value_type(v), &mut out);
    let s = String::from_utf8_lossy(&out).into_owned();
    let s = if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s
    };
    match v {
        Value::Null => "NULL".into(),
        Value::Text(_)
        | Value::Bytea(_)
        | Value::Timestamp(_)
        | Value::TimestampTz(_)
        | Value::Interval(_)
        | Value::PgLsn(_) => {
            format!("'{s}'")
        }
        _ => s,
    }
}

fn describe_change(c: &Change) -> String {
    let row = |r: &[Value]| r.iter().map(short_value).collect::<Vec<_>>().join(", ");
    match c {
        Change::Insert {
            table,
            rowid,
            row: r,
        } => format!("INSERT rel {table} row {rowid} ({})", row(r)),
        Change::Update {
            table,
            rowid,
            row: r,
        } => format!("UPDATE rel {table} row {rowid} ({})", row(r)),
        Change::Delete { table, rowid } => format!("DELETE rel {table} row {rowid}"),
        Change::CreateTable { def } => format!(
            "CREATE TABLE {} rel {} ({} columns, {} indexes)",
            def.name,
            def.oid,
            def.columns.len(),
            def.indexes.len()
        ),
        Change::DropTable { table } => format!("DROP TABLE rel {table}"),
        Change::Truncate { table } => format!("TRUNCATE rel {table}"),
        Change::CreateIndex { table, index } => format!(
            "CREATE {}INDEX {} rel {} on rel {table}",
            if index.unique { "UNIQUE " } else { "" },
            index.name,
            index.oid
        ),
        Change::ReplaceDef { def } => format!(
            "ALTER TABLE {} rel {} ({} checks, {} foreign keys)",
            def.name,
            def.oid,
            def.checks.len(),
            def.foreign_keys.len()
        ),
        Change::AddColumn { def, fill } => format!(
            "ADD COLUMN {} to rel {} (filled with {})",
            def.columns.last().map_or("?", |c| c.name.as_str()),
            def.oid,
            short_value(fill)
        ),
    }
}

/// A one-line description of a record's payload.
pub fn describe(kind: RecordKind, payload: &[u8]) -> String {
    let rec = match WalRecord::decode(kind, payload) {
        Ok(r) => r,
        Err(e) => return format!("undecodable payload: {e}"),
    };
    let mut out = String::new();
    match rec {
        WalRecord::Commit(c) => {
            let mut ts = Vec::new();
            base::pgio::format_text(
                &Value::TimestampTz(c.commit_time),
                base::DataType::TimestampTz,
                &mut ts,
            );
            let _ = write!(
                out,
                "{}; synchronous_commit {}; {} changes",
                String::from_utf8_lossy(&ts),
                c.level,
                c.changes.len()
            );
            // Whole-table loads make huge records: show the first changes only.
            for ch in c.changes.iter().take(8) {
                let _ = write!(out, "; {}", describe_change(ch));
            }
            if c.changes.len() > 8 {
                let _ = write!(out, "; ...");
            }
        }
        WalRecord::TxnData(changes) => {
            let _ = write!(
                out,
                "{} changes (continued in a later record)",
                changes.len()
            );
            if let Some(ch) = changes.first() {
                let _ = write!(out, "; {}", describe_change(ch));
            }
        }
        WalRecord::Abort => out.push_str("abort of a transaction with spilled changes"),
        WalRecord::Sequence(r) => {
            let _ = write!(
                out,
                "sequence {}: last_value {}, is_called {}",
                r.sequence, r.last_value, r.is_called
            );
        }
        WalRecord::Checkpoint(c) => {
            let _ = write!(
                out,
                "redo {}; snapshot {}; tli {}; next xid {}; next oid {}; {}",
                c.redo_lsn,
                c.snapshot_lsn,
                c.timeline,
                c.next_xid,
                c.next_oid,
                if c.shutdown { "shutdown" } else { "online" }
            );
        }
        WalRecord::EndOfRecovery(r) => {
            let _ = write!(out, "timeline {} -> {}", r.previous_timeline, r.timeline);
        }
    }
    out
}

/// Prints records from `start` up to `end` (exclusive; `None` = to the end of WAL).
/// Returns how the dump ended.
pub fn dump(
    dir: &Path,
    segment_size: u64,
    timeline: TimelineId,
    start: Lsn,
    end: Option<Lsn>,
    out: &mut dyn Write,
) -> Result<ReadOutcome, ReadError> {
    let mut reader = WalReader::new(dir, segment_size, timeline, start);
    loop {
        if end.is_some_and(|e| reader.position() >= e) {
            return Ok(ReadOutcome::EndOfWal(reader.position()));
        }
        match reader.next_record()? {
            ReadOutcome::Record(r) => {
                let kind = r.kind();
                let desc = kind
                    .map(|k| describe(k, &r.payload))
                    .unwrap_or_else(|| "unknown kind".into());
                let _ = writeln!(
                    out,
                    "lsn: {}, len (rec/tot): {:6}/{:6}, kind: {:<15} tx: {:>10}, desc: {}",
                    r.start_lsn(),
                    r.header.total_len,
                    r.end_lsn().0 - r.start_lsn().0,
                    kind.map(|k| k.name()).unwrap_or("?"),
                    r.header.xid,
                    desc
                );
            }
            other => return Ok(other),
        }
    }
}
