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
//! File: `base/snapshot.<LSN as 16 hex digits>`:
//!
//! ```text
//! "LSSNAP01" header fields (snapshot LSN, redo LSN, timeline, next xid, next oid, time)
//! per table: 1, catalog stamp (commit LSN, level), table definition, end row id,
//!            rows: 1, rowid, commit LSN, level, values ... 0
//! 0, CRC-32C of everything before it, "LSSNAPEN"
//! ```
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

const MAGIC: &[u8; 8] = b"LSSNAP01";
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
    let c = header.snapshot_lsn.0;
    for (table, lsn, level) in catalog.tables_at(c) {
        stats.tables += 1;
        e.u8(1);
        e.u64(lsn);
        e.u8(level);
        table.def.encode(&mut e);
        e.u64(table.rows.end_rowid());
        let mut io_error = None;
        table.rows.for_each_slot(|rowid, slot| {
            if let Some((lsn, level, Some(row))) = slot.committed_at(c) {
                e.u8(1);
                e.varint(rowid);
                e.u64(lsn);
                e.u8(level);
                e.row(row);
                stats.rows += 1;
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
    if data.len() < MAGIC.len() + 12 || &data[..MAGIC.len()] != MAGIC {
        return Err(corrupt("bad magic number".into()));
    }
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
    let header = SnapshotHeader {
        snapshot_lsn: Lsn(d.u64().map_err(derr)?),
        redo_lsn: Lsn(d.u64().map_err(derr)?),
        timeline: TimelineId(d.u32().map_err(derr)?),
        next_xid: d.u64().map_err(derr)?,
        next_oid: d.u32().map_err(derr)?,
        time: d.i64().map_err(derr)?,
    };
    while d.u8().map_err(derr)? == 1 {
        let lsn = d.u64().map_err(derr)?;
        let level = d.u8().map_err(derr)?;
        let def = TableDef::decode(&mut d).map_err(derr)?;
        let end_rowid = d.u64().map_err(derr)?;
        let name = def.name.clone();
        let table = Table::new(def);
        while d.u8().map_err(derr)? == 1 {
            let rowid = d.varint().map_err(derr)?;
            let vlsn = d.u64().map_err(derr)?;
            let vlevel = d.u8().map_err(derr)?;
            let row: base::Row = Arc::from(d.row().map_err(derr)?);
            if rowid >= end_rowid {
                return Err(corrupt(format!("row id {rowid} beyond end {end_rowid}")));
            }
            table.rows.reserve(rowid);
            table.index_row(rowid, &row);
            table.rows.with_slot(rowid, |s| {
                s.versions.push(Version::committed(vlsn, vlevel, Some(row)))
            });
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
