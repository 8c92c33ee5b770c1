//! The control file: what a starting server must know before it reads anything else.
//!
//! `global/lockstep.control` holds the cluster's system identifier, the WAL segment size, the
//! current timeline, the cluster state, and where the newest checkpoint is (its snapshot file,
//! the snapshot LSN and the redo LSN). Like PostgreSQL's `pg_control` it is small, protected by
//! a CRC, and replaced atomically: written to a temporary file, flushed, renamed over the old
//! one, and the directory flushed. A torn write therefore leaves either the old or the new
//! file, never a mix; a CRC mismatch means damage and the server refuses to start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base::codec::{DecodeError, Decoder, Encoder};
use base::{Lsn, TimelineId};

const MAGIC: &[u8; 8] = b"LSCTL001";
pub const CONTROL_FILE: &str = "global/lockstep.control";

/// PostgreSQL's `DBState`, as `pg_controldata` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    ShutDown = 1,
    ShutDownInRecovery = 2,
    InProduction = 3,
    InCrashRecovery = 4,
    InArchiveRecovery = 5,
}

impl ClusterState {
    fn from_u8(v: u8) -> Option<ClusterState> {
        Some(match v {
            1 => ClusterState::ShutDown,
            2 => ClusterState::ShutDownInRecovery,
            3 => ClusterState::InProduction,
            4 => ClusterState::InCrashRecovery,
            5 => ClusterState::InArchiveRecovery,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            ClusterState::ShutDown => "shut down",
            ClusterState::ShutDownInRecovery => "shut down in recovery",
            ClusterState::InProduction => "in production",
            ClusterState::InCrashRecovery => "in crash recovery",
            ClusterState::InArchiveRecovery => "in archive recovery",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlFile {
    pub system_identifier: u64,
    pub segment_size: u64,
    pub state: ClusterState,
    pub timeline: TimelineId,
    /// Start LSN of the newest checkpoint record.
    pub checkpoint_lsn: Lsn,
    /// Replay starts here.
    pub redo_lsn: Lsn,
    /// Every commit at or below this LSN is in the snapshot file.
    pub snapshot_lsn: Lsn,
    /// Snapshot file name, relative to the data directory.
    pub snapshot_file: String,
    pub next_xid: u64,
    pub next_oid: u32,
    /// Microseconds since 2000-01-01 of the last update.
    pub time: i64,
    /// On a standby: replay must reach this LSN before the data is consistent. Unused (0) on
    /// a primary.
    pub min_recovery_point: Lsn,
    /// On a primary: when the newest checkpoint was taken, the synchronous standbys had
    /// confirmed every commit at or below this LSN (or none was needed: no synchronous
    /// standbys configured, or commits released by `synchronous_replication_timeout`). After
    /// a restart, commits above it that waited for a standby stay invisible until a
    /// synchronous standby confirms them, even when the snapshot holds them. On a standby:
    /// the restartpoint's LSN (a standby replays only what its primary made durable).
    pub sync_confirmed_lsn: Lsn,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlFileError {
    #[error("could not read control file \"{path}\": {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("could not write control file \"{path}\": {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("control file \"{path}\" is damaged: {reason}")]
    Corrupt { path: String, reason: String },
}

impl ControlFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONTROL_FILE)
    }

    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.buf.extend_from_slice(MAGIC);
        e.u64(self.system_identifier);
        e.u64(self.segment_size);
        e.u8(self.state as u8);
        e.u32(self.timeline.0);
        e.u64(self.checkpoint_lsn.0);
        e.u64(self.redo_lsn.0);
        e.u64(self.snapshot_lsn.0);
        e.str(&self.snapshot_file);
        e.u64(self.next_xid);
        e.u32(self.next_oid);
        e.i64(self.time);
        e.u64(self.min_recovery_point.0);
        e.u64(self.sync_confirmed_lsn.0);
        let crc = crc32c::crc32c(&e.buf);
        e.u32(crc);
        e.buf
    }

    fn decode(data: &[u8]) -> Result<ControlFile, String> {
        if data.len() < MAGIC.len() + 4 || &data[..MAGIC.len()] != MAGIC {
            return Err("bad magic number".into());
        }
        let (body, crc) = data.split_at(data.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32c::crc32c(body) != stored {
            return Err("incorrect checksum".into());
        }
        let mut d = Decoder::new(&body[MAGIC.len()..]);
        let f = |e: DecodeError| e.to_string();
        let system_identifier = d.u64().map_err(f)?;
        let segment_size = d.u64().map_err(f)?;
        let state = ClusterState::from_u8(d.u8().map_err(f)?).ok_or("invalid state")?;
        let mut c = ControlFile {
            system_identifier,
            segment_size,
            state,
            timeline: TimelineId(d.u32().map_err(f)?),
            checkpoint_lsn: Lsn(d.u64().map_err(f)?),
            redo_lsn: Lsn(d.u64().map_err(f)?),
            snapshot_lsn: Lsn(d.u64().map_err(f)?),
            snapshot_file: d.str().map_err(f)?.to_owned(),
            next_xid: d.u64().map_err(f)?,
            next_oid: d.u32().map_err(f)?,
            time: d.i64().map_err(f)?,
            min_recovery_point: Lsn(d.u64().map_err(f)?),
            sync_confirmed_lsn: Lsn(0),
        };
        // Control files written before `sync_confirmed_lsn` existed end here; for them the
        // checkpoint itself counts as confirmed, which is what those versions assumed.
        c.sync_confirmed_lsn = if d.is_empty() {
            c.checkpoint_lsn
        } else {
            Lsn(d.u64().map_err(f)?)
        };
        if !d.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(c)
    }

    pub fn read(data_dir: &Path) -> Result<ControlFile, ControlFileError> {
        let path = Self::path(data_dir);
        let bytes = fs::read(&path).map_err(|e| ControlFileError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::decode(&bytes).map_err(|reason| ControlFileError::Corrupt {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Replaces the control file atomically and durably.
    pub fn write(&self, data_dir: &Path) -> Result<(), ControlFileError> {
        let path = Self::path(data_dir);
        let werr = |e| ControlFileError::Write {
            path: path.display().to_string(),
            source: e,
        };
        write_atomically(&path, &self.encode()).map_err(werr)
    }
}

/// Writes `data` to `path` via a temporary file, flush, rename, and directory flush.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ControlFile {
            system_identifier: 7_300_000_000_000_000_001,
            segment_size: 16 << 20,
            state: ClusterState::InProduction,
            timeline: TimelineId(2),
            checkpoint_lsn: Lsn(0x0100_0100),
            redo_lsn: Lsn(0x0100_0000),
            snapshot_lsn: Lsn(0x0100_0000),
            snapshot_file: "base/snapshot.0000000001000000".into(),
            next_xid: 100,
            next_oid: 16500,
            time: 12345,
            min_recovery_point: Lsn(0),
            sync_confirmed_lsn: Lsn(0x0080_0000),
        };
        std::fs::create_dir_all(dir.path().join("global")).expect("mkdir");
        c.write(dir.path()).expect("write");
        assert_eq!(ControlFile::read(dir.path()).expect("read"), c);
        let path = ControlFile::path(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            ControlFile::read(dir.path()),
            Err(ControlFileError::Corrupt { .. })
        ));
    }

    /// A control file from before `sync_confirmed_lsn` (one field shorter) still reads, with
    /// the checkpoint as the confirmed position.
    #[test]
    fn reads_the_format_without_sync_confirmed_lsn() {
        let c = ControlFile {
            system_identifier: 1,
            segment_size: 16 << 20,
            state: ClusterState::ShutDown,
            timeline: TimelineId(1),
            checkpoint_lsn: Lsn(0x0100_0100),
            redo_lsn: Lsn(0x0100_0000),
            snapshot_lsn: Lsn(0x0100_0000),
            snapshot_file: "base/snapshot.0000000001000000".into(),
            next_xid: 1,
            next_oid: 16384,
            time: 1,
            min_recovery_point: Lsn(0),
            sync_confirmed_lsn: Lsn(5),
        };
        let full = c.encode();
        let mut old = full[..full.len() - 12].to_vec();
        let crc = crc32c::crc32c(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        let read = ControlFile::decode(&old).expect("old format");
        assert_eq!(read.sync_confirmed_lsn, c.checkpoint_lsn);
        assert_eq!(
            ControlFile {
                sync_confirmed_lsn: Lsn(5),
                ..read
            },
            c
        );
    }
}
