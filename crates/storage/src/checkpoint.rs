//! Checkpoint snapshots: every committed row as of one LSN, in one file.
//!
//! DESIGN.md decision 6: because versions carry commit LSNs, a checkpoint at LSN `C` writes,
//! for every table and row, the newest version committed at or below `C`, while writers go
//! on. Replay after a restart starts at the checkpoint's redo LSN and skips commits at or
//! below `C` (they are in the file).
//!
//! The caller pins `C` in the snapshot registry before choosing it, so version pruning cannot
//! remove a version the scan still needs (see `visibility::SnapshotRegistry`).
//!
//! Versions not yet confirmed by the synchronous standbys: a commit that waited for a standby
//! and was not confirmed when the checkpoint started (its LSN above the header's
//! `sync_confirmed_lsn`) stays invisible after a restart until a standby confirms it. For such
//! a row the file also holds the older versions back to the newest confirmed one (deletions
//! included), so a reader after the restart sees the row as it was before the unconfirmed
//! change, not as missing. Limit: the catalog keeps only its newest entry at or below `C`, so
//! an unconfirmed DROP TABLE or TRUNCATE shows after a restart before it is confirmed.
//!
//! File: `base/snapshot.<LSN as 16 hex digits>`:
//!
//! ```text
//! "LSSNAP02" header fields (snapshot LSN, redo LSN, timeline, next xid, next oid, time,
//!            sync-confirmed LSN)
//! per table: 1, catalog stamp (commit LSN, level), table definition, end row id,
//!            rows: 1, rowid, version count n, n x (commit LSN, level, 0 | 1 values),
//!            oldest first ... 0
//! 0, CRC-32C of everything before it, "LSSNAPEN"
//! ```
//!
//! "LSSNAP01" files (one live version per row, no sync-confirmed LSN) still load.
//!
//! It is written to a temporary name, flushed, renamed, and the directory flushed, so a crash
//! leaves the previous snapshot intact. Loading verifies the CRC before trusting anything.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base::catalog::TableDef;
use base::codec::{DecodeError, Decoder, Encoder};
use base::{Lsn, TimelineId};

use crate::catalog::Catalog;
use crate::table::Table;
use crate::version::Version;

const MAGIC: &[u8; 8] = b"LSSNAP03";
/// The format before table definitions carried sequences and constraints.
const MAGIC_V2: &[u8; 8] = b"LSSNAP02";
/// The format before version chains: one live version per row.
const MAGIC_V1: &[u8; 8] = b"LSSNAP01";
const END_MAGIC: &[u8; 8] = b"LSSNAPEN";
/// Flush the encode buffer to the file at this size: bounds memory while writing large
/// tables without making writes small.
const WRITE_CHUNK: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub snapshot_lsn: Lsn,
    pub redo_lsn: Lsn,
    pub timeline: TimelineId,
    pub next_xid: u64,
    pub next_oid: u32,
    pub time: i64,
    /// What the synchronous standbys had confirmed when the checkpoint started (the lowest
    /// remote watermark): commits above it at a level that waits for a standby are written
    /// with the older versions a reader after a restart needs. A restartpoint, or a server
    /// without synchronous standbys, passes the snapshot LSN.
    pub sync_confirmed_lsn: Lsn,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("could not write snapshot \"{path}\": {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("could not read snapshot \"{path}\": {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("snapshot \"{path}\" is damaged: {reason}")]
    Corrupt { path: String, reason: String },
}

pub fn snapshot_file_name(lsn: Lsn) -> String {
    format!("base/snapshot.{:016X}", lsn.0)
}

/// Statistics of a written snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: u32,
    bytes: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data)
    }
}

/// Writes the snapshot of `catalog` as of `header.snapshot_lsn` into `data_dir`, returning
/// the file name (relative to `data_dir`) and statistics.
pub fn write_snapshot(
    data_dir: &Path,
    catalog: &Catalog,
    header: &SnapshotHeader,
) -> Result<(String, SnapshotStats), SnapshotError> {
    let name = snapshot_file_name(header.snapshot_lsn);
    let path = data_dir.join(&name);
    let tmp: PathBuf = path.with_extension("tmp");
    let werr = |e| SnapshotError::Write {
        path: path.display().to_string(),
        source: e,
    };
    fs::create_dir_all(path.parent().unwrap_or(data_dir)).map_err(werr)?;
    let file = fs::File::create(&tmp).map_err(werr)?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(WRITE_CHUNK, file),
        crc: 0,
        bytes: 0,
    };
    let mut stats = SnapshotStats::default();
    let mut e = Encoder::with_capacity(WRITE_CHUNK + 4096);
    e.buf.extend_from_slice(MAGIC);
    e.u64(header.snapshot_lsn.0);
    e.u64(header.redo_lsn.0);
    e.u32(header.timeline.0);
    e.u64(header.next_xid);
    e.u32(header.next_oid);
    e.i64(header.time);
    e.u64(header.sync_confirmed_lsn.0);
    let c = header.snapshot_lsn.0;
    let confirmed = header.sync_confirmed_lsn.0;
    let settled =
        |lsn: u64, level: u8| lsn <= confirmed || level < base::SyncCommitLevel::RemoteWrite as u8;
    for (table, lsn, level) in catalog.tables_at(c) {
        stats.tables += 1;
        e.u8(1);
        e.u64(lsn);
        e.u8(level);
        table.def.encode(&mut e);
        e.u64(table.rows.end_rowid());
        let mut io_error = None;
        table.rows.for_each_slot(|rowid, slot| {
            let chain = slot.committed_chain_at(c, settled);
            if !chain.is_empty() {
                e.u8(1);
                e.varint(rowid);
                e.varint(chain.len() as u64);
                for (lsn, level, data) in &chain {
                    e.u64(*lsn);
                    e.u8(*level);
                    match data {
                        Some(row) => {
                            e.u8(1);
                            e.row(row);
                        }
                        None => e.u8(0),
                    }
                }
                if chain.last().is_some_and(|(_, _, d)| d.is_some()) {
                    stats.rows += 1;
                }
            }
            if e.buf.len() >= WRITE_CHUNK {
                if let Err(err) = w.put(&e.buf) {
                    io_error = Some(err);
                    return false;
                }
                e.buf.clear();
            }
            true
        });
        if let Some(err) = io_error {
            return Err(werr(err));
        }
        e.u8(0);
    }
    e.u8(0);
    w.put(&e.buf).map_err(werr)?;
    let crc = w.crc;
    let mut trailer = Vec::with_capacity(12);
    trailer.extend_from_slice(&crc.to_le_bytes());
    trailer.extend_from_slice(END_MAGIC);
    w.inner.write_all(&trailer).map_err(werr)?;
    stats.bytes = w.bytes + trailer.len() as u64;
    let file = w.inner.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)?;
    drop(file);
    fs::rename(&tmp, &path).map_err(werr)?;
    fs::File::open(path.parent().unwrap_or(data_dir))
        .and_then(|d| d.sync_all())
        .map_err(werr)?;
    Ok((name, stats))
}

/// Loads a snapshot into an empty `catalog`. Returns its header.
pub fn load_snapshot(
    data_dir: &Path,
    name: &str,
    catalog: &Catalog,
) -> Result<SnapshotHeader, SnapshotError> {
    let path = data_dir.join(name);
    let data = fs::read(&path).map_err(|e| SnapshotError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    let corrupt = |reason: String| SnapshotError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    if data.len() < MAGIC.len() + 12 {
        return Err(corrupt("bad magic number".into()));
    }
    let (chains, constraints) = match &data[..MAGIC.len()] {
        m if m == MAGIC => (true, true),
        m if m == MAGIC_V2 => (true, false),
        m if m == MAGIC_V1 => (false, false),
        _ => return Err(corrupt("bad magic number".into())),
    };
    let (body, trailer) = data.split_at(data.len() - 12);
    if &trailer[4..] != END_MAGIC {
        return Err(corrupt("missing end marker (truncated file?)".into()));
    }
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32c::crc32c(body) != stored {
        return Err(corrupt("incorrect checksum".into()));
    }
    let mut d = Decoder::new(&body[MAGIC.len()..]);
    let derr = |e: DecodeError| corrupt(e.to_string());
    let snapshot_lsn = Lsn(d.u64().map_err(derr)?);
    let header = SnapshotHeader {
        snapshot_lsn,
        redo_lsn: Lsn(d.u64().map_err(derr)?),
        timeline: TimelineId(d.u32().map_err(derr)?),
        next_xid: d.u64().map_err(derr)?,
        next_oid: d.u32().map_err(derr)?,
        time: d.i64().map_err(derr)?,
        sync_confirmed_lsn: if chains {
            Lsn(d.u64().map_err(derr)?)
        } else {
            snapshot_lsn
        },
    };
    while d.u8().map_err(derr)? == 1 {
        let lsn = d.u64().map_err(derr)?;
        let level = d.u8().map_err(derr)?;
        let def = if constraints {
            TableDef::decode(&mut d)
        } else {
            TableDef::decode_v1(&mut d)
        }
        .map_err(derr)?;
        let end_rowid = d.u64().map_err(derr)?;
        let name = def.name.clone();
        let table = Table::new(def);
        while d.u8().map_err(derr)? == 1 {
            let rowid = d.varint().map_err(derr)?;
            if rowid >= end_rowid {
                return Err(corrupt(format!("row id {rowid} beyond end {end_rowid}")));
            }
            let count = if chains { d.varint().map_err(derr)? } else { 1 };
            // Each version takes at least 10 bytes; a larger count is damage, not a reason
            // to reserve memory.
            if count == 0 || count > d.remaining() as u64 / 10 {
                return Err(corrupt(format!(
                    "row id {rowid}: bad version count {count}"
                )));
            }
            table.rows.reserve(rowid);
            let mut previous: Option<u64> = None;
            for _ in 0..count {
                let vlsn = d.u64().map_err(derr)?;
                let vlevel = d.u8().map_err(derr)?;
                let live = !chains || d.bool().map_err(derr)?;
                let row: Option<base::Row> = if live {
                    Some(Arc::from(d.row().map_err(derr)?))
                } else {
                    None
                };
                if previous.is_some_and(|p| vlsn <= p) || vlsn > snapshot_lsn.0 {
                    return Err(corrupt(format!(
                        "row id {rowid}: version at {vlsn:X} out of order"
                    )));
                }
                previous = Some(vlsn);
                if let Some(row) = &row {
                    table.index_row(rowid, row);
                }
                table.rows.with_slot(rowid, |s| {
                    s.versions.push(Version::committed(vlsn, vlevel, row))
                });
            }
        }
        if end_rowid > 0 {
            table.rows.reserve(end_rowid - 1);
        }
        catalog.install_committed(&name, Some(Arc::new(table)), lsn, level);
    }
    catalog.observe_oid(header.next_oid.saturating_sub(1));
    Ok(header)
}

/// Removes snapshot files other than `keep` (after a newer checkpoint is safely recorded).
pub fn remove_old_snapshots(data_dir: &Path, keep: &str) -> std::io::Result<()> {
    let dir = data_dir.join("base");
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = format!("base/{}", entry.file_name().to_string_lossy());
        if name.starts_with("base/snapshot.") && name != keep {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visibility::Snapshot;
    use base::Value;

    fn row(v: i32) -> base::Row {
        Arc::from(vec![Value::Int4(v)])
    }

    fn header(snapshot: u64, confirmed: u64) -> SnapshotHeader {
        SnapshotHeader {
            snapshot_lsn: Lsn(snapshot),
            redo_lsn: Lsn(snapshot),
            timeline: TimelineId(1),
            next_xid: 10,
            next_oid: 20001,
            time: 0,
            sync_confirmed_lsn: Lsn(confirmed),
        }
    }

    /// A row updated by a commit the standbys had not confirmed keeps its confirmed image in
    /// the snapshot: after a restart (remote watermarks at the confirmed LSN) readers see the
    /// old image, and once a standby confirms, the new one. A deleted row likewise.
    #[test]
    fn unconfirmed_versions_keep_their_predecessors() {
        let on = base::SyncCommitLevel::On as u8;
        let catalog = Catalog::new();
        let table = Table::new(TableDef {
            oid: 20000,
            name: "t".into(),
            columns: vec![],
            indexes: vec![],
            sequence: None,
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        });
        for rowid in 0..3 {
            table.rows.reserve(rowid);
        }
        table.rows.with_slot(0, |s| {
            s.versions.push(Version::committed(100, on, Some(row(1))));
            s.versions.push(Version::committed(200, on, Some(row(2))));
        });
        table.rows.with_slot(1, |s| {
            s.versions.push(Version::committed(100, on, Some(row(10))));
            s.versions.push(Version::committed(210, on, None));
        });
        table.rows.with_slot(2, |s| {
            s.versions.push(Version::committed(220, on, Some(row(20))));
        });
        catalog.install_committed("t", Some(Arc::new(table)), 50, on);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("base")).expect("mkdir");
        let (name, stats) = write_snapshot(dir.path(), &catalog, &header(300, 150)).expect("write");
        assert_eq!(stats.rows, 2, "rows live at the snapshot LSN");

        let loaded = Catalog::new();
        let h = load_snapshot(dir.path(), &name, &loaded).expect("load");
        assert_eq!(h, header(300, 150));
        let restarted = Snapshot {
            watermark: [300, 300, 150, 150, 150],
            xid: 0,
        };
        let confirmed = Snapshot {
            watermark: [300; 5],
            xid: 0,
        };
        let t = loaded.lookup("t", &confirmed).expect("table");
        let image = |rowid: u64, s: &Snapshot| {
            t.rows
                .with_slot(rowid, |slot| slot.visible(s).map(|r| r[0].clone()))
                .flatten()
        };
        assert_eq!(image(0, &restarted), Some(Value::Int4(1)));
        assert_eq!(image(0, &confirmed), Some(Value::Int4(2)));
        assert_eq!(image(1, &restarted), Some(Value::Int4(10)));
        assert_eq!(image(1, &confirmed), None);
        assert_eq!(image(2, &restarted), None);
        assert_eq!(image(2, &confirmed), Some(Value::Int4(20)));

        // Everything confirmed: one version per live row, as before.
        let (name, _) = write_snapshot(dir.path(), &catalog, &header(300, 300)).expect("write");
        let again = Catalog::new();
        load_snapshot(dir.path(), &name, &again).expect("load");
        let t = again.lookup("t", &confirmed).expect("table");
        let lens: Vec<usize> = (0..3)
            .map(|r| t.rows.with_slot(r, |s| s.versions.len()).unwrap_or(0))
            .collect();
        assert_eq!(lens, vec![1, 0, 1]);
    }
}
