//! WAL record format: a fixed header, a typed payload, alignment padding.
//!
//! Every record starts at an 8-byte aligned LSN and is followed by zero padding up to the next
//! 8-byte boundary, so a record's *end LSN* (the LSN a commit is known by, "first byte not yet
//! done") is always aligned, and a scan for valid headers after a damaged record only has to
//! try aligned positions.
//!
//! Header, 40 bytes, little-endian:
//!
//! | offset | size | field        | meaning                                                    |
//! |--------|------|--------------|------------------------------------------------------------|
//! | 0      | 4    | magic        | `RECORD_MAGIC`; format version and a cheap first filter    |
//! | 4      | 4    | crc          | CRC-32C over the payload, then the header without this field |
//! | 8      | 4    | total_len    | header + payload bytes, without padding                    |
//! | 12     | 1    | kind         | `RecordKind`                                               |
//! | 13     | 1    | flags        | `FLAG_*`                                                   |
//! | 14     | 2    | reserved     | zero                                                       |
//! | 16     | 8    | lsn          | the record's own start LSN                                 |
//! | 24     | 8    | durable_lsn  | WAL known flushed when the record was inserted             |
//! | 32     | 8    | xid          | transaction id, 0 for none                                 |
//!
//! Why the record carries its own LSN (DESIGN.md decision 2): bytes left over in a reused or
//! torn file can never pass as a valid record at another position. Why `durable_lsn`: it lets
//! recovery tell a torn write from corruption. If a record at X fails its CRC but a valid record
//! further on says WAL up to beyond X was already durable when it was inserted, then X was once
//! flushed intact and is now damaged: corruption, refuse to start. If no later record says so,
//! X may simply be the torn tail of the last, unfinished write: end of WAL.
//!
//! Payloads are encoded with `base::codec`. A transaction's changes normally travel in one
//! `Commit` record (DESIGN.md: one redo record per transaction); a transaction that writes more
//! than `TXN_DATA_CHUNK_BYTES` spills earlier changes into `TxnData` records first, and an
//! `Abort` record tells redo to forget spilled changes of a transaction that rolled back.

use std::sync::Arc;

use base::catalog::{IndexDef, Oid, TableDef};
use base::codec::{DecodeError, Decoder, Encoder};
use base::{Lsn, Row, SyncCommitLevel, TimelineId, Value};

pub const RECORD_HEADER_LEN: usize = 40;
/// "LSW1": lockstep WAL, format 1.
pub const RECORD_MAGIC: u32 = 0x3157_534C;
pub const WAL_ALIGN: u64 = 8;
/// Upper bound of one record. Large transactions spill into `TxnData` chunks long before
/// this; the bound exists so that a damaged length field cannot make recovery read gigabytes.
pub const MAX_RECORD_LEN: u32 = 256 << 20;
/// Once a transaction's unlogged changes exceed this many bytes they are written out as a
/// `TxnData` record: bounds the memory of one record in the WAL buffer, the walsender and redo.
pub const TXN_DATA_CHUNK_BYTES: usize = 4 << 20;

/// Flag: the committing session waits for `remote_apply`, so a standby replaying this commit
/// should report its replay position at once (PostgreSQL's `XACT_COMPLETION_APPLY_FEEDBACK`).
pub const FLAG_APPLY_FEEDBACK: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    Commit = 1,
    TxnData = 2,
    Abort = 3,
    Checkpoint = 4,
    /// First record of a new timeline after promotion.
    EndOfRecovery = 5,
    /// A sequence's new horizon (not transactional: applies whatever its transaction does).
    Sequence = 6,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Commit,
            2 => RecordKind::TxnData,
            3 => RecordKind::Abort,
            4 => RecordKind::Checkpoint,
            5 => RecordKind::EndOfRecovery,
            6 => RecordKind::Sequence,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Commit => "COMMIT",
            RecordKind::TxnData => "TXN_DATA",
            RecordKind::Abort => "ABORT",
            RecordKind::Checkpoint => "CHECKPOINT",
            RecordKind::EndOfRecovery => "END_OF_RECOVERY",
            RecordKind::Sequence => "SEQUENCE",
        }
    }
}

/// Rounds up to the record alignment. Saturates instead of wrapping: a damaged header may
/// carry any LSN, and arithmetic on it must not overflow (found by the fuzz target).
pub fn align(lsn: u64) -> u64 {
    lsn.saturating_add(WAL_ALIGN - 1) & !(WAL_ALIGN - 1)
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub crc: u32,
    pub total_len: u32,
    pub kind: u8,
    pub flags: u8,
    pub lsn: Lsn,
    pub durable_lsn: Lsn,
    pub xid: u64,
}

impl RecordHeader {
    /// The LSN where the next record starts.
    pub fn end_lsn(&self) -> Lsn {
        Lsn(align(self.lsn.0.saturating_add(u64::from(self.total_len))))
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&self.crc.to_le_bytes());
        h[8..12].copy_from_slice(&self.total_len.to_le_bytes());
        h[12] = self.kind;
        h[13] = self.flags;
        h[16..24].copy_from_slice(&self.lsn.0.to_le_bytes());
        h[24..32].copy_from_slice(&self.durable_lsn.0.to_le_bytes());
        h[32..40].copy_from_slice(&self.xid.to_le_bytes());
        h
    }

    /// Parses a header; `None` if the magic is wrong (not a record).
    pub fn decode(h: &[u8; RECORD_HEADER_LEN]) -> Option<RecordHeader> {
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        if u32_at(0) != RECORD_MAGIC {
            return None;
        }
        Some(RecordHeader {
            crc: u32_at(4),
            total_len: u32_at(8),
            kind: h[12],
            flags: h[13],
            lsn: Lsn(u64_at(16)),
            durable_lsn: Lsn(u64_at(24)),
            xid: u64_at(32),
        })
    }

    /// Whether the header is plausible at `position` (before checking the CRC).
    pub fn plausible_at(&self, position: Lsn) -> bool {
        self.lsn == position
            && position
                .0
                .checked_add(u64::from(self.total_len) + WAL_ALIGN)
                .is_some()
            && self.total_len as usize >= RECORD_HEADER_LEN
            && self.total_len <= MAX_RECORD_LEN
            && RecordKind::from_u8(self.kind).is_some()
            && self.durable_lsn <= position
    }
}

/// CRC-32C of a record: the payload first, then the header without its CRC field (PostgreSQL
/// also checksums the payload before the header). `payload_crc` is `crc32c(payload)`, computed
/// before the insert lock is taken.
pub fn record_crc(payload_crc: u32, header: &[u8; RECORD_HEADER_LEN]) -> u32 {
    let c = crc32c::crc32c_append(payload_crc, &header[0..4]);
    crc32c::crc32c_append(c, &header[8..RECORD_HEADER_LEN])
}

/// One change inside a transaction's records, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Insert {
        table: Oid,
        rowid: u64,
        row: Row,
    },
    Update {
        table: Oid,
        rowid: u64,
        row: Row,
    },
    Delete {
        table: Oid,
        rowid: u64,
    },
    CreateTable {
        def: TableDef,
    },
    DropTable {
        table: Oid,
    },
    Truncate {
        table: Oid,
    },
    CreateIndex {
        table: Oid,
        index: IndexDef,
    },
    /// ALTER TABLE ADD COLUMN: `def` is the table's new definition (the new column last);
    /// every existing row gets `fill` in it.
    AddColumn {
        def: TableDef,
        fill: Value,
    },
    /// A table's new definition with its rows unchanged (constraints added).
    ReplaceDef {
        def: TableDef,
    },
}

mod tag {
    pub const INSERT: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const CREATE_TABLE: u8 = 4;
    pub const DROP_TABLE: u8 = 5;
    pub const TRUNCATE: u8 = 6;
    pub const CREATE_INDEX: u8 = 7;
    pub const ADD_COLUMN: u8 = 8;
    pub const REPLACE_DEF: u8 = 9;
    /// CREATE TABLE with the definition layout that carries sequences and constraints;
    /// `CREATE_TABLE` records (older WAL) carry the layout without them.
    pub const CREATE_TABLE_V2: u8 = 10;
}

impl Change {
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Change::Insert { table, rowid, row } => {
                encode_row_change(e, tag::INSERT, *table, *rowid, row)
            }
            Change::Update { table, rowid, row } => {
                encode_row_change(e, tag::UPDATE, *table, *rowid, row)
            }
            Change::Delete { table, rowid } => {
                e.u8(tag::DELETE);
                e.u32(*table);
                e.varint(*rowid);
            }
            Change::CreateTable { def } => {
                e.u8(tag::CREATE_TABLE_V2);
                def.encode(e);
            }
            Change::DropTable { table } => {
                e.u8(tag::DROP_TABLE);
                e.u32(*table);
            }
            Change::Truncate { table } => {
                e.u8(tag::TRUNCATE);
                e.u32(*table);
            }
            Change::CreateIndex { table, index } => {
                e.u8(tag::CREATE_INDEX);
                e.u32(*table);
                index.encode(e);
            }
            Change::AddColumn { def, fill } => {
                e.u8(tag::ADD_COLUMN);
                def.encode(e);
                e.value(fill);
            }
            Change::ReplaceDef { def } => {
                e.u8(tag::REPLACE_DEF);
                def.encode(e);
            }
        }
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<Change, DecodeError> {
        let at = d.offset();
        Ok(match d.u8()? {
            tag::INSERT => Change::Insert {
                table: d.u32()?,
                rowid: d.varint()?,
                row: Arc::from(d.row()?),
            },
            tag::UPDATE => Change::Update {
                table: d.u32()?,
                rowid: d.varint()?,
                row: Arc::from(d.row()?),
            },
            tag::DELETE => Change::Delete {
                table: d.u32()?,
                rowid: d.varint()?,
            },
            tag::CREATE_TABLE => Change::CreateTable {
                def: TableDef::decode_v1(d)?,
            },
            tag::CREATE_TABLE_V2 => Change::CreateTable {
                def: TableDef::decode(d)?,
            },
            tag::DROP_TABLE => Change::DropTable { table: d.u32()? },
            tag::TRUNCATE => Change::Truncate { table: d.u32()? },
            tag::CREATE_INDEX => Change::CreateIndex {
                table: d.u32()?,
                index: IndexDef::decode(d)?,
            },
            tag::ADD_COLUMN => Change::AddColumn {
                def: TableDef::decode(d)?,
                fill: d.value()?,
            },
            tag::REPLACE_DEF => Change::ReplaceDef {
                def: TableDef::decode(d)?,
            },
            tag => return Err(DecodeError::BadTag { offset: at, tag }),
        })
    }
}

/// Encodes an insert or update without building a `Change` (the commit path's hot loop).
pub fn encode_row_change(e: &mut Encoder, tag: u8, table: Oid, rowid: u64, row: &[Value]) {
    e.u8(tag);
    e.u32(table);
    e.varint(rowid);
    e.row(row);
}

pub fn encode_insert(e: &mut Encoder, table: Oid, rowid: u64, row: &[Value]) {
    encode_row_change(e, tag::INSERT, table, rowid, row);
}

pub fn encode_update(e: &mut Encoder, table: Oid, rowid: u64, row: &[Value]) {
    encode_row_change(e, tag::UPDATE, table, rowid, row);
}

pub fn encode_delete(e: &mut Encoder, table: Oid, rowid: u64) {
    Change::Delete { table, rowid }.encode(e);
}

/// The payload of a `Commit` record: when, at which level, and the changes (after any
/// spilled in earlier `TxnData` records of the same transaction).
#[derive(Clone, Debug, PartialEq)]
pub struct CommitRecord {
    /// Microseconds since 2000-01-01 UTC (for `pg_last_xact_replay_timestamp()`).
    pub commit_time: i64,
    pub level: SyncCommitLevel,
    pub changes: Vec<Change>,
}

/// Writes the commit payload prefix; the caller appends the change count and the changes.
pub fn encode_commit_prefix(e: &mut Encoder, commit_time: i64, level: SyncCommitLevel) {
    e.i64(commit_time);
    e.u8(level as u8);
}

/// The payload of a `Checkpoint` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Replay must start here to rebuild the state after this checkpoint's snapshot.
    pub redo_lsn: Lsn,
    /// Every commit at or below this LSN is in the snapshot.
    pub snapshot_lsn: Lsn,
    pub timeline: TimelineId,
    pub next_xid: u64,
    pub next_oid: Oid,
    pub time: i64,
    /// Written at a clean shutdown.
    pub shutdown: bool,
}

/// The payload of an `EndOfRecovery` record (first record of a new timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndOfRecoveryRecord {
    pub previous_timeline: TimelineId,
    pub timeline: TimelineId,
    pub time: i64,
}

/// The payload of a `Sequence` record: the sequence's row from now on (`last_value` is the
/// horizon up to which values may have been handed out; see `storage::sequence`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceRecord {
    pub sequence: Oid,
    pub last_value: i64,
    pub is_called: bool,
}

/// A decoded record payload.
#[derive(Clone, Debug, PartialEq)]
pub enum WalRecord {
    Commit(CommitRecord),
    TxnData(Vec<Change>),
    Abort,
    Checkpoint(CheckpointRecord),
    EndOfRecovery(EndOfRecoveryRecord),
    Sequence(SequenceRecord),
}

fn decode_changes(d: &mut Decoder<'_>) -> Result<Vec<Change>, DecodeError> {
    let n = d.len()?;
    let mut changes = Vec::with_capacity(n);
    for _ in 0..n {
        changes.push(Change::decode(d)?);
    }
    Ok(changes)
}

pub fn encode_changes(e: &mut Encoder, changes: &[Change]) {
    e.varint(changes.len() as u64);
    for c in changes {
        c.encode(e);
    }
}

impl WalRecord {
    pub fn kind(&self) -> RecordKind {
        match self {
            WalRecord::Commit(_) => RecordKind::Commit,
            WalRecord::TxnData(_) => RecordKind::TxnData,
            WalRecord::Abort => RecordKind::Abort,
            WalRecord::Checkpoint(_) => RecordKind::Checkpoint,
            WalRecord::EndOfRecovery(_) => RecordKind::EndOfRecovery,
            WalRecord::Sequence(_) => RecordKind::Sequence,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match self {
            WalRecord::Commit(c) => {
                encode_commit_prefix(&mut e, c.commit_time, c.level);
                encode_changes(&mut e, &c.changes);
            }
            WalRecord::TxnData(changes) => encode_changes(&mut e, changes),
            WalRecord::Abort => {}
            WalRecord::Checkpoint(c) => {
                e.u64(c.redo_lsn.0);
                e.u64(c.snapshot_lsn.0);
                e.u32(c.timeline.0);
                e.u64(c.next_xid);
                e.u32(c.next_oid);
                e.i64(c.time);
                e.bool(c.shutdown);
            }
            WalRecord::EndOfRecovery(r) => {
                e.u32(r.previous_timeline.0);
                e.u32(r.timeline.0);
                e.i64(r.time);
            }
            WalRecord::Sequence(r) => {
                e.u32(r.sequence);
                e.i64(r.last_value);
                e.bool(r.is_called);
            }
        }
        e.buf
    }

    pub fn decode(kind: RecordKind, payload: &[u8]) -> Result<WalRecord, DecodeError> {
        let mut d = Decoder::new(payload);
        let rec = match kind {
            RecordKind::Commit => {
                let commit_time = d.i64()?;
                let at = d.offset();
                let level = SyncCommitLevel::from_index(d.u8()?).ok_or(DecodeError::Invalid {
                    offset: at,
                    what: "invalid synchronous_commit level",
                })?;
                WalRecord::Commit(CommitRecord {
                    commit_time,
                    level,
                    changes: decode_changes(&mut d)?,
                })
            }
            RecordKind::TxnData => WalRecord::TxnData(decode_changes(&mut d)?),
            RecordKind::Abort => WalRecord::Abort,
            RecordKind::Checkpoint => WalRecord::Checkpoint(CheckpointRecord {
                redo_lsn: Lsn(d.u64()?),
                snapshot_lsn: Lsn(d.u64()?),
                timeline: TimelineId(d.u32()?),
                next_xid: d.u64()?,
                next_oid: d.u32()?,
                time: d.i64()?,
                shutdown: d.bool()?,
            }),
            RecordKind::EndOfRecovery => WalRecord::EndOfRecovery(EndOfRecoveryRecord {
                previous_timeline: TimelineId(d.u32()?),
                timeline: TimelineId(d.u32()?),
                time: d.i64()?,
            }),
            RecordKind::Sequence => WalRecord::Sequence(SequenceRecord {
                sequence: d.u32()?,
                last_value: d.i64()?,
                is_called: d.bool()?,
            }),
        };
        if !d.is_empty() {
            return Err(DecodeError::Invalid {
                offset: d.offset(),
                what: "trailing bytes after record payload",
            });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = RecordHeader {
            crc: 0xDEAD_BEEF,
            total_len: 123,
            kind: RecordKind::Commit as u8,
            flags: FLAG_APPLY_FEEDBACK,
            lsn: Lsn(0x0100_0040),
            durable_lsn: Lsn(0x0100_0000),
            xid: 77,
        };
        let bytes = h.encode();
        assert_eq!(RecordHeader::decode(&bytes), Some(h));
        assert_eq!(h.end_lsn(), Lsn(0x0100_0040 + 128));
        assert!(h.plausible_at(Lsn(0x0100_0040)));
        assert!(!h.plausible_at(Lsn(0x0100_0048)));
        let mut zero = [0u8; RECORD_HEADER_LEN];
        assert_eq!(RecordHeader::decode(&zero), None);
        zero[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        assert!(RecordHeader::decode(&zero).is_some_and(|h| !h.plausible_at(Lsn(0))));
    }

    #[test]
    fn a_header_near_the_end_of_the_lsn_space_is_implausible_not_an_overflow() {
        // The fuzz target found this: a damaged header whose LSN is close to u64::MAX made
        // end_lsn() overflow. Such a header can never be valid, and checking it must not wrap.
        let lsn = Lsn(u64::MAX - 7);
        let h = RecordHeader {
            crc: 0,
            total_len: 100,
            kind: RecordKind::Commit as u8,
            flags: 0,
            lsn,
            durable_lsn: Lsn(0),
            xid: 1,
        };
        assert!(!h.plausible_at(lsn));
        assert!(h.end_lsn() >= lsn);
    }

    #[test]
    fn payloads_round_trip() {
        let recs = vec![
            WalRecord::Commit(CommitRecord {
                commit_time: 12345,
                level: SyncCommitLevel::RemoteApply,
                changes: vec![
                    Change::Insert {
                        table: 16384,
                        rowid: 5,
                        row: Arc::from(vec![Value::Int4(1), Value::text("x")]),
                    },
                    Change::Update {
                        table: 16384,
                        rowid: 5,
                        row: Arc::from(vec![Value::Int4(2), Value::Null]),
                    },
                    Change::Delete {
                        table: 16384,
                        rowid: 5,
                    },
                    Change::Truncate { table: 16384 },
                    Change::DropTable { table: 16384 },
                ],
            }),
            WalRecord::TxnData(vec![]),
            WalRecord::Abort,
            WalRecord::Checkpoint(CheckpointRecord {
                redo_lsn: Lsn(1),
                snapshot_lsn: Lsn(2),
                timeline: TimelineId(3),
                next_xid: 4,
                next_oid: 5,
                time: 6,
                shutdown: true,
            }),
            WalRecord::EndOfRecovery(EndOfRecoveryRecord {
                previous_timeline: TimelineId(1),
                timeline: TimelineId(2),
                time: 9,
            }),
            WalRecord::Sequence(SequenceRecord {
                sequence: 16400,
                last_value: -7,
                is_called: true,
            }),
        ];
        for r in recs {
            let bytes = r.encode();
            assert_eq!(WalRecord::decode(r.kind(), &bytes), Ok(r));
        }
    }

    #[test]
    fn garbage_payloads_do_not_panic() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for kind in [
                RecordKind::Commit,
                RecordKind::TxnData,
                RecordKind::Abort,
                RecordKind::Checkpoint,
                RecordKind::EndOfRecovery,
            ] {
                let _ = WalRecord::decode(kind, &junk);
            }
        }
    }
}
