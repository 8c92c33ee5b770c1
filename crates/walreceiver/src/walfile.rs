//! Writing streamed WAL into segment files: PostgreSQL's `XLogWalRcvWrite` and
//! `XLogWalRcvFlush`.
//!
//! What it does: puts each received byte range at its LSN's offset in the segment file of
//! the timeline being streamed (`pg_wal/TTTTTTTTXXXXXXXXYYYYYYYY`), creating missing
//! segments zero-filled to full size first (`wal::segment::create_segment`, so later
//! fdatasyncs only write data blocks), and fdatasyncs on request. A write that crosses into
//! another segment first fdatasyncs the segment it leaves, as `XLogWalRcvWrite` does, so
//! only the current file can ever hold unflushed bytes and a flush is one fdatasync.
//!
//! When the stream moves to a new timeline in the middle of a segment, the new timeline's
//! file for that segment starts as a copy of the old timeline's bytes before the switch
//! point (what PostgreSQL's promotion does with `XLogFileCopy`), so each timeline's files
//! hold that timeline's whole history of the segment.
//!
//! Where it runs: on a blocking thread (`spawn_blocking`), owned by one walreceiver
//! connection at a time; the driver hands it over for each call and gets it back.
//!
//! What it does not do: decide when to write or flush (the `replication::walreceiver`
//! state machine does), read WAL, or recycle old segments.
//!
//! How it fails: any failed write, create, or fdatasync is a [`WalFileError`], which the
//! driver treats as fatal: after a failed fsync the kernel may have dropped the dirty pages,
//! so retrying could report WAL as durable that is not (DESIGN.md decision 7).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base::{Lsn, TimelineId};
use wal::segment::{create_segment, segment_path};

/// A failed WAL write or flush on the standby. Never retried.
#[derive(Debug, thiserror::Error)]
pub enum WalFileError {
    #[error("could not create WAL segment \"{path}\": {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("could not open WAL segment \"{path}\": {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("could not write to WAL segment \"{path}\" at offset {offset}: {source}")]
    Write {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("could not fdatasync WAL segment \"{path}\": {source}")]
    Flush { path: PathBuf, source: io::Error },
}

struct OpenSegment {
    segno: u64,
    path: PathBuf,
    file: File,
    dirty: bool,
}

/// The segment files of one standby's WAL directory.
pub struct WalFileWriter {
    dir: PathBuf,
    segment_size: u64,
    timeline: TimelineId,
    /// The previous timeline and the switch point, while writing the segment that contains
    /// the switch (see the module header).
    switched_from: Option<(TimelineId, Lsn)>,
    cur: Option<OpenSegment>,
}

impl WalFileWriter {
    pub fn new(dir: &Path, segment_size: u64, timeline: TimelineId) -> WalFileWriter {
        WalFileWriter {
            dir: dir.to_owned(),
            segment_size,
            timeline,
            switched_from: None,
            cur: None,
        }
    }

    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    /// The stream moved from `old` to this writer's timeline at `at`: the new timeline's
    /// segment containing `at` starts as a copy of the old one's bytes before it.
    pub fn continuing_from(mut self, old: TimelineId, at: Lsn) -> WalFileWriter {
        self.switched_from = Some((old, at));
        self
    }

    /// Continues on `timeline` from `at` (the switch point). Flushes and closes the current
    /// file first.
    pub fn switch_timeline(&mut self, timeline: TimelineId, at: Lsn) -> Result<(), WalFileError> {
        if timeline == self.timeline {
            return Ok(());
        }
        self.flush()?;
        self.cur = None;
        self.switched_from = Some((self.timeline, at));
        self.timeline = timeline;
        Ok(())
    }

    /// Writes `data` at `start`. Returns the end of WAL made durable on the way (a segment
    /// left behind is fdatasynced), if any.
    /// Whether writing `len` bytes at `start` needs a segment other than the open one (which
    /// means opening or creating a file, and fdatasyncing the previous one).
    pub fn crosses_segment(&self, start: Lsn, len: usize) -> bool {
        let first = start.0 / self.segment_size;
        let last = (start.0 + len.max(1) as u64 - 1) / self.segment_size;
        first != last || self.cur.as_ref().is_none_or(|c| c.segno != first)
    }

    pub fn write(&mut self, start: Lsn, data: &[u8]) -> Result<Option<Lsn>, WalFileError> {
        let mut synced = None;
        let mut lsn = start.0;
        let mut rest = data;
        while !rest.is_empty() {
            let segno = lsn / self.segment_size;
            let offset = lsn % self.segment_size;
            let n = (self.segment_size - offset).min(rest.len() as u64) as usize;
            let mut cur = match self.cur.take() {
                Some(c) if c.segno == segno => c,
                prev => {
                    if let Some(mut p) = prev
                        && p.dirty
                    {
                        sync(&mut p)?;
                        // Everything before this range was written in order, so it is
                        // durable up to where this write starts.
                        synced = Some(Lsn(lsn));
                    }
                    self.open(segno)?
                }
            };
            cur.file
                .write_all_at(&rest[..n], offset)
                .map_err(|source| WalFileError::Write {
                    path: cur.path.clone(),
                    offset,
                    source,
                })?;
            cur.dirty = true;
            self.cur = Some(cur);
            lsn += n as u64;
            rest = &rest[n..];
        }
        Ok(synced)
    }

    /// fdatasyncs what was written (only the current file can be dirty).
    pub fn flush(&mut self) -> Result<(), WalFileError> {
        match self.cur.as_mut() {
            Some(cur) if cur.dirty => sync(cur),
            _ => Ok(()),
        }
    }

    fn open(&mut self, segno: u64) -> Result<OpenSegment, WalFileError> {
        let path = segment_path(&self.dir, self.timeline, segno, self.segment_size);
        if !path.exists() {
            create_segment(&self.dir, self.timeline, segno, self.segment_size, true).map_err(
                |source| WalFileError::Create {
                    path: path.clone(),
                    source,
                },
            )?;
            if let Some((old_tli, at)) = self.switched_from
                && at.0 / self.segment_size == segno
            {
                self.copy_prefix(old_tli, segno, at.0 % self.segment_size, &path)?;
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| WalFileError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(OpenSegment {
            segno,
            path,
            file,
            dirty: false,
        })
    }

    /// Copies the old timeline's first `len` bytes of segment `segno` into the new file.
    fn copy_prefix(
        &self,
        old_tli: TimelineId,
        segno: u64,
        len: u64,
        to: &Path,
    ) -> Result<(), WalFileError> {
        let from = segment_path(&self.dir, old_tli, segno, self.segment_size);
        let Ok(src) = File::open(&from) else {
            // Nothing local to copy (the standby started on the new timeline): the stream
            // only fills from the switch point on, as PostgreSQL's would from a new base
            // backup.
            return Ok(());
        };
        let mut buf = vec![0u8; len as usize];
        src.read_exact_at(&mut buf, 0)
            .map_err(|source| WalFileError::Open {
                path: from.clone(),
                source,
            })?;
        let dst = OpenOptions::new()
            .write(true)
            .open(to)
            .map_err(|source| WalFileError::Open {
                path: to.to_owned(),
                source,
            })?;
        let werr = |source| WalFileError::Write {
            path: to.to_owned(),
            offset: 0,
            source,
        };
        dst.write_all_at(&buf, 0).map_err(werr)?;
        dst.sync_data().map_err(|source| WalFileError::Flush {
            path: to.to_owned(),
            source,
        })?;
        Ok(())
    }
}

fn sync_file(file: &File, path: &Path) -> Result<(), WalFileError> {
    let res = if base::failpoint::fails("walreceiver-flush-error") {
        Err(io::Error::other("failpoint walreceiver-flush-error"))
    } else {
        file.sync_data()
    };
    res.map_err(|source| WalFileError::Flush {
        path: path.to_owned(),
        source,
    })
}

fn sync(seg: &mut OpenSegment) -> Result<(), WalFileError> {
    sync_file(&seg.file, &seg.path)?;
    seg.dirty = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_across_segments_and_timelines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = 1 << 20;
        let mut w = WalFileWriter::new(dir.path(), size, TimelineId(1));
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let start = Lsn(size - 1000);
        let synced = w.write(start, &data).expect("write");
        // The write crosses into segment 1: segment 0 is flushed on the way.
        assert_eq!(synced, Some(Lsn(size)));
        let synced = w.write(Lsn(size + 2000), b"xyz").expect("write");
        assert_eq!(synced, None);
        w.flush().expect("flush");
        let a = std::fs::read(segment_path(dir.path(), TimelineId(1), 0, size)).expect("seg0");
        let b = std::fs::read(segment_path(dir.path(), TimelineId(1), 1, size)).expect("seg1");
        assert_eq!(a.len() as u64, size);
        assert_eq!(&a[(size - 1000) as usize..], &data[..1000]);
        assert_eq!(&b[..2000], &data[1000..]);
        assert_eq!(&b[2000..2003], b"xyz");
        // Crossing back into a new segment flushes the old one and says so.
        let synced = w.write(Lsn(2 * size - 1), b"ab").expect("write");
        assert_eq!(synced, Some(Lsn(2 * size)));
        // Switch to timeline 2 in the middle of segment 2: the prefix is copied.
        w.flush().expect("flush");
        w.switch_timeline(TimelineId(2), Lsn(2 * size + 1))
            .expect("switch");
        w.write(Lsn(2 * size + 1), b"T2").expect("write");
        w.flush().expect("flush");
        let c = std::fs::read(segment_path(dir.path(), TimelineId(2), 2, size)).expect("seg2");
        assert_eq!(&c[..3], b"bT2");
    }
}
