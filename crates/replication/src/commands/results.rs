//! The result sets PostgreSQL 15 returns for replication commands, so a driver sends
//! exactly the columns, types and text a PostgreSQL client parses (`libpqwalreceiver`,
//! `pg_basebackup`, `pg_receivewal` check column counts and read values by position).
//!
//! Every value is in text format (replication connections use the simple query protocol);
//! `None` is SQL NULL. One PostgreSQL quirk is kept on purpose: TIMELINE_HISTORY declares
//! its `content` column as `bytea` but sends the file's raw bytes, not bytea's hex text,
//! and clients depend on that.

use base::types::oid;
use base::{Lsn, TimelineId};

/// One column of a RowDescription.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResultColumn {
    pub name: String,
    pub type_oid: u32,
}

/// A one-row result (every replication command returns at most one row).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResultRow {
    pub columns: Vec<ResultColumn>,
    /// Text-format values, one per column; `None` is NULL.
    pub values: Vec<Option<Vec<u8>>>,
}

fn text(s: impl ToString) -> Option<Vec<u8>> {
    Some(s.to_string().into_bytes())
}

fn col(name: &str, type_oid: u32) -> ResultColumn {
    ResultColumn {
        name: name.to_owned(),
        type_oid,
    }
}

/// IDENTIFY_SYSTEM: `systemid` (text), `timeline` (int4), `xlogpos` (text, the flush LSN on
/// a primary), `dbname` (text, NULL on a physical connection).
pub fn identify_system(system_id: u64, timeline: TimelineId, xlogpos: Lsn) -> ResultRow {
    ResultRow {
        columns: vec![
            col("systemid", oid::TEXT),
            col("timeline", oid::INT4),
            col("xlogpos", oid::TEXT),
            col("dbname", oid::TEXT),
        ],
        values: vec![text(system_id), text(timeline), text(xlogpos), None],
    }
}

/// TIMELINE_HISTORY: `filename` (text) and `content` (declared bytea, sent raw).
pub fn timeline_history(timeline: TimelineId, content: &[u8]) -> ResultRow {
    ResultRow {
        columns: vec![col("filename", oid::TEXT), col("content", oid::BYTEA)],
        values: vec![
            text(crate::timeline::history_file_name(timeline)),
            Some(content.to_vec()),
        ],
    }
}

/// The row that follows the end of a historic timeline's stream: `next_tli` (int8) and
/// `next_tli_startpos` (text).
pub fn end_of_timeline(next_timeline: TimelineId, switchpoint: Lsn) -> ResultRow {
    ResultRow {
        columns: vec![
            col("next_tli", oid::INT8),
            col("next_tli_startpos", oid::TEXT),
        ],
        values: vec![text(next_timeline), text(switchpoint)],
    }
}

/// CREATE_REPLICATION_SLOT for a physical slot: `slot_name`, `consistent_point`,
/// `snapshot_name` (NULL), `output_plugin` (NULL), all text. PostgreSQL reports the slot's
/// `confirmed_flush` as the consistent point, which a physical slot never sets: `0/0`.
pub fn create_physical_slot(slot_name: &str) -> ResultRow {
    ResultRow {
        columns: vec![
            col("slot_name", oid::TEXT),
            col("consistent_point", oid::TEXT),
            col("snapshot_name", oid::TEXT),
            col("output_plugin", oid::TEXT),
        ],
        values: vec![text(slot_name), text(Lsn::ZERO), None, None],
    }
}

/// READ_REPLICATION_SLOT: `slot_type` (text), `restart_lsn` (text), `restart_tli` (int8,
/// the timeline `restart_lsn` is on in this server's `history`). A missing slot gives all
/// NULLs; a slot that reserves no WAL yet gives NULL LSN and timeline.
pub fn read_replication_slot(
    restart_lsn: Option<Lsn>,
    history: &crate::timeline::TimelineHistory,
) -> ResultRow {
    let values = match restart_lsn {
        None => vec![None, None, None],
        Some(Lsn::ZERO) => vec![text("physical"), None, None],
        Some(lsn) => vec![text("physical"), text(lsn), text(history.timeline_of(lsn))],
    };
    ResultRow {
        columns: vec![
            col("slot_type", oid::TEXT),
            col("restart_lsn", oid::TEXT),
            col("restart_tli", oid::INT8),
        ],
        values,
    }
}

/// SHOW: one text column named after the setting as the client wrote it (lower-cased unless
/// quoted), holding the value as `SHOW` prints it.
pub fn show(name: &str, value: &str) -> ResultRow {
    ResultRow {
        columns: vec![col(name, oid::TEXT)],
        values: vec![text(value)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(r: &ResultRow) -> Vec<Option<String>> {
        r.values
            .iter()
            .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect()
    }

    #[test]
    fn rows_match_postgres() {
        let r = identify_system(7_123_456_789_012_345_678, TimelineId(3), Lsn(0x1_0000_00A8));
        assert_eq!(
            r.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["systemid", "timeline", "xlogpos", "dbname"]
        );
        assert_eq!(r.columns[1].type_oid, oid::INT4);
        assert_eq!(
            strings(&r),
            [
                Some("7123456789012345678".into()),
                Some("3".into()),
                Some("1/A8".into()),
                None
            ]
        );
        let r = timeline_history(TimelineId(2), b"1\t0/3000158\tx\n");
        assert_eq!(r.columns[1].type_oid, oid::BYTEA);
        assert_eq!(
            strings(&r),
            [
                Some("00000002.history".into()),
                Some("1\t0/3000158\tx\n".into())
            ]
        );
        let r = end_of_timeline(TimelineId(2), Lsn(0x300_0158));
        assert_eq!(strings(&r), [Some("2".into()), Some("0/3000158".into())]);
        assert_eq!(r.columns[0].type_oid, oid::INT8);
        let r = create_physical_slot("s1");
        assert_eq!(
            strings(&r),
            [Some("s1".into()), Some("0/0".into()), None, None]
        );
        let history = crate::timeline::TimelineHistory::parse(TimelineId(2), "1\t0/100\tx\n")
            .expect("history");
        assert_eq!(
            strings(&read_replication_slot(None, &history)),
            [None, None, None]
        );
        assert_eq!(
            strings(&read_replication_slot(Some(Lsn::ZERO), &history)),
            [Some("physical".into()), None, None]
        );
        assert_eq!(
            strings(&read_replication_slot(Some(Lsn(0x10)), &history)),
            [
                Some("physical".into()),
                Some("0/10".into()),
                Some("1".into())
            ]
        );
        assert_eq!(
            strings(&read_replication_slot(Some(Lsn(0x100)), &history)),
            [
                Some("physical".into()),
                Some("0/100".into()),
                Some("2".into())
            ]
        );
        let r = show("wal_segment_size", "16MB");
        assert_eq!(r.columns[0].name, "wal_segment_size");
        assert_eq!(strings(&r), [Some("16MB".into())]);
    }
}
