//! Reading WAL back: records in order, and where valid WAL ends.
//!
//! Used by crash recovery, standby redo, `lockstep waldump`, and the walsender when a standby
//! is behind the in-memory stream.
//!
//! End of WAL vs corruption (DESIGN.md decision 7), decided at the first position `X` where no
//! valid record starts (bad magic, implausible header, wrong self-LSN, CRC mismatch, missing
//! bytes):
//!
//! | what follows `X`                                                   | decision        |
//! |--------------------------------------------------------------------|-----------------|
//! | nothing valid                                                      | end of WAL at X |
//! | valid records, none inserted after X was already durable           | end of WAL at X (a torn final write: X and later records were in the same unflushed batch) |
//! | a valid record whose `durable_lsn` is beyond X                     | corruption at X: X was flushed intact once, so it has been damaged since |
//!
//! A "valid record" in the scan is a header with the magic at an aligned position equal to its
//! own `lsn` field, a plausible length and kind, and a matching CRC over its full length. The
//! scan covers the rest of the segment files of the timeline present on disk.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base::{Lsn, TimelineId};

use crate::record::{self, RECORD_HEADER_LEN, RecordHeader, RecordKind};
use crate::segment;

/// A record read from the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    pub header: RecordHeader,
    pub payload: Vec<u8>,
}

impl RawRecord {
    pub fn kind(&self) -> Option<RecordKind> {
        RecordKind::from_u8(self.header.kind)
    }

    pub fn start_lsn(&self) -> Lsn {
        self.header.lsn
    }

    pub fn end_lsn(&self) -> Lsn {
        self.header.end_lsn()
    }
}

/// What the reader found at its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Record(RawRecord),
    /// Valid WAL ends here (the next insert goes here).
    EndOfWal(Lsn),
    /// Damaged WAL followed by WAL that proves the damaged part was once durable.
    Corrupt {
        lsn: Lsn,
        segment: String,
        reason: String,
        /// The later record whose `durable_lsn` proves it.
        evidence_lsn: Lsn,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("could not read WAL segment \"{path}\": {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Sequential reader of one timeline's WAL in a directory.
pub struct WalReader {
    dir: PathBuf,
    segment_size: u64,
    timeline: TimelineId,
    pos: Lsn,
    files: HashMap<u64, Option<File>>,
}

impl WalReader {
    pub fn new(dir: &Path, segment_size: u64, timeline: TimelineId, start: Lsn) -> WalReader {
        WalReader {
            dir: dir.to_owned(),
            segment_size,
            timeline,
            pos: start,
            files: HashMap::new(),
        }
    }

    pub fn position(&self) -> Lsn {
        self.pos
    }

    pub fn seek(&mut self, lsn: Lsn) {
        self.pos = lsn;
    }

    /// Forgets cached file handles (after files changed on disk, e.g. a standby received more).
    pub fn reset_files(&mut self) {
        self.files.clear();
    }

    pub fn segment_name(&self, lsn: Lsn) -> String {
        base::lsn::segment_file_name(
            self.timeline,
            lsn.segment_number(self.segment_size),
            self.segment_size,
        )
    }

    fn file(&mut self, segno: u64) -> Result<Option<&File>, ReadError> {
        if !self.files.contains_key(&segno) {
            // Keep few handles open: readers move forward through segments.
            if self.files.len() > 4 {
                self.files.clear();
            }
            let path = segment::segment_path(&self.dir, self.timeline, segno, self.segment_size);
            let f = match File::open(&path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(ReadError::Io {
                        path: path.display().to_string(),
                        source: e,
                    });
                }
            };
            self.files.insert(segno, f);
        }
        Ok(self.files.get(&segno).and_then(|f| f.as_ref()))
    }

    /// Reads exactly `len` bytes at `lsn`, across segment files. `None` if any part is
    /// missing (no such segment, or a short file).
    pub fn read_bytes(&mut self, lsn: Lsn, len: usize) -> Result<Option<Vec<u8>>, ReadError> {
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let pos = lsn.0 + done as u64;
            let segno = pos / self.segment_size;
            let offset = pos % self.segment_size;
            let n = (len - done).min((self.segment_size - offset) as usize);
            let path = segment::segment_path(&self.dir, self.timeline, segno, self.segment_size);
            let Some(file) = self.file(segno)? else {
                return Ok(None);
            };
            match file.read_exact_at(&mut out[done..done + n], offset) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => {
                    return Err(ReadError::Io {
                        path: path.display().to_string(),
                        source: e,
                    });
                }
            }
            done += n;
        }
        Ok(Some(out))
    }

    /// Reads up to `max` bytes at `lsn` that exist on disk (for streaming raw WAL). Stops at
    /// the first missing segment.
    pub fn read_available(&mut self, lsn: Lsn, max: usize) -> Result<Vec<u8>, ReadError> {
        let offset = lsn.0 % self.segment_size;
        let n = max.min((self.segment_size - offset) as usize);
        Ok(self.read_bytes(lsn, n)?.unwrap_or_default())
    }

    /// The valid record at `at`, or why there is none.
    fn record_at(&mut self, at: Lsn) -> Result<Result<RawRecord, String>, ReadError> {
        let Some(hbytes) = self.read_bytes(at, RECORD_HEADER_LEN)? else {
            return Ok(Err("no more WAL on disk".into()));
        };
        let mut h = [0u8; RECORD_HEADER_LEN];
        h.copy_from_slice(&hbytes);
        if h.iter().all(|b| *b == 0) {
            return Ok(Err("zeroed header".into()));
        }
        let Some(header) = RecordHeader::decode(&h) else {
            return Ok(Err("invalid magic number".into()));
        };
        if !header.plausible_at(at) {
            return Ok(Err(format!(
                "invalid record header (length {}, kind {}, lsn {})",
                header.total_len, header.kind, header.lsn
            )));
        }
        let plen = header.total_len as usize - RECORD_HEADER_LEN;
        let Some(payload) = self.read_bytes(Lsn(at.0 + RECORD_HEADER_LEN as u64), plen)? else {
            return Ok(Err("record continues past the end of WAL on disk".into()));
        };
        let crc = record::record_crc(crc32c::crc32c(&payload), &h);
        if crc != header.crc {
            return Ok(Err("incorrect record checksum".into()));
        }
        Ok(Ok(RawRecord { header, payload }))
    }

    /// The next record, the end of WAL, or corruption.
    pub fn next_record(&mut self) -> Result<ReadOutcome, ReadError> {
        self.next_record_within(None)
    }

    /// Like `next_record`, for WAL that is still being appended (a standby's walreceiver
    /// writes it while redo reads): only a valid record that ends at or before `durable`
    /// counts as evidence of corruption. Bytes beyond `durable` may be written while the scan
    /// runs, so a record found there proves nothing about what the scan saw earlier; a record
    /// below it was written after every byte before it (WAL is written in order), so a bad
    /// record before it is damage, not a write still under way.
    pub fn next_record_within(&mut self, durable: Option<Lsn>) -> Result<ReadOutcome, ReadError> {
        let at = self.pos;
        match self.record_at(at)? {
            Ok(rec) => {
                self.pos = rec.end_lsn();
                Ok(ReadOutcome::Record(rec))
            }
            Err(reason) => self.classify_bad(at, reason, durable),
        }
    }

    /// Like `next`, but never scans ahead: a position without a valid record is reported as
    /// the end (for a standby that is still receiving WAL).
    pub fn next_if_valid(&mut self) -> Result<Option<RawRecord>, ReadError> {
        let at = self.pos;
        match self.record_at(at)? {
            Ok(rec) => {
                self.pos = rec.end_lsn();
                Ok(Some(rec))
            }
            Err(_) => Ok(None),
        }
    }

    fn classify_bad(
        &mut self,
        at: Lsn,
        reason: String,
        durable: Option<Lsn>,
    ) -> Result<ReadOutcome, ReadError> {
        if durable.is_some_and(|d| d <= at) {
            // Nothing at or after `at` is known to be complete: this is the end, for now.
            return Ok(ReadOutcome::EndOfWal(at));
        }
        let segments = segment::list_segments(&self.dir, self.timeline, self.segment_size)
            .map_err(|e| ReadError::Io {
                path: self.dir.display().to_string(),
                source: e,
            })?;
        let first = at.0 / self.segment_size;
        for segno in segments.into_iter().filter(|s| *s >= first) {
            let path = segment::segment_path(&self.dir, self.timeline, segno, self.segment_size);
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ReadError::Io {
                        path: path.display().to_string(),
                        source: e,
                    });
                }
            };
            let base = segno * self.segment_size;
            let mut off: u64 = if segno == first {
                record::align(at.0 - base + 1)
            } else {
                0
            };
            while off + RECORD_HEADER_LEN as u64 <= data.len() as u64 {
                let o = off as usize;
                if data[o..o + 4] == record::RECORD_MAGIC.to_le_bytes() {
                    let mut h = [0u8; RECORD_HEADER_LEN];
                    h.copy_from_slice(&data[o..o + RECORD_HEADER_LEN]);
                    if let Some(header) = RecordHeader::decode(&h)
                        && header.plausible_at(Lsn(base + off))
                        && header.durable_lsn > at
                        && durable.is_none_or(|d| header.end_lsn() <= d)
                        && self.record_at(Lsn(base + off))?.is_ok()
                    {
                        return Ok(ReadOutcome::Corrupt {
                            lsn: at,
                            segment: self.segment_name(at),
                            reason,
                            evidence_lsn: Lsn(base + off),
                        });
                    }
                }
                off += record::WAL_ALIGN;
            }
        }
        let _ = reason;
        Ok(ReadOutcome::EndOfWal(at))
    }
}

/// Makes the WAL directory ready for appending at `end` (the end of valid WAL): zeroes the
/// rest of the segment containing `end` and removes later segments of the timeline, then
/// flushes. Afterwards no stale bytes beyond `end` can ever be mistaken for a continuation.
pub fn truncate_wal_at(
    dir: &Path,
    timeline: TimelineId,
    segment_size: u64,
    end: Lsn,
) -> std::io::Result<()> {
    let segno = end.0 / segment_size;
    for s in segment::list_segments(dir, timeline, segment_size)? {
        if s > segno {
            std::fs::remove_file(segment::segment_path(dir, timeline, s, segment_size))?;
        }
    }
    let path = segment::segment_path(dir, timeline, segno, segment_size);
    if path.exists() {
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        let offset = end.0 % segment_size;
        let zeros = vec![0u8; 1 << 20];
        let mut pos = offset;
        while pos < segment_size {
            let n = (segment_size - pos).min(zeros.len() as u64) as usize;
            f.write_all_at(&zeros[..n], pos)?;
            pos += n as u64;
        }
        f.set_len(segment_size)?;
        f.sync_all()?;
    }
    segment::fsync_dir(dir)
}
