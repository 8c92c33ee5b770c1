//! WAL segment files: naming, creation with preallocation, listing, removal.
//!
//! Segments are fixed-size files in `pg_wal/`, named like PostgreSQL's. A new segment is
//! created as a temporary file, filled with zeros to its full size, flushed, renamed into
//! place, and the directory is flushed (PostgreSQL's `XLogFileInit`). Zero-filling up front
//! means later commit flushes only write data blocks, never file-size metadata: on this
//! machine an `fdatasync` after an in-place overwrite costs ~90 µs, after an append ~185 µs.
//! The rename makes a half-created segment invisible after a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base::TimelineId;
use base::lsn::{parse_segment_file_name, segment_file_name};

/// Zero-fill buffer size: large writes keep segment creation near disk bandwidth.
const ZERO_CHUNK: usize = 1 << 20;

pub fn segment_path(dir: &Path, timeline: TimelineId, segno: u64, segment_size: u64) -> PathBuf {
    dir.join(segment_file_name(timeline, segno, segment_size))
}

/// Flushes a directory's entries (after create, rename or unlink).
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `segno` of `timeline` filled with zeros, unless it exists. Returns whether
/// it was created.
pub fn create_segment(
    dir: &Path,
    timeline: TimelineId,
    segno: u64,
    segment_size: u64,
    sync: bool,
) -> io::Result<bool> {
    let path = segment_path(dir, timeline, segno, segment_size);
    if path.exists() {
        return Ok(false);
    }
    let tmp = dir.join(format!("xlogtemp.{}.{}", std::process::id(), segno));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut left = segment_size as usize;
        while left > 0 {
            let n = left.min(ZERO_CHUNK);
            f.write_all(&zeros[..n])?;
            left -= n;
        }
        if sync {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, &path)?;
    if sync {
        fsync_dir(dir)?;
    }
    Ok(true)
}

/// The segments of `timeline` present in `dir`, sorted by number.
pub fn list_segments(dir: &Path, timeline: TimelineId, segment_size: u64) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((tli, segno)) = parse_segment_file_name(name, segment_size)
            && tli == timeline
        {
            out.push(segno);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// All segments in `dir` of any timeline: (timeline, segno), sorted.
pub fn list_all_segments(dir: &Path, segment_size: u64) -> io::Result<Vec<(TimelineId, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(pair) = parse_segment_file_name(name, segment_size) {
            out.push(pair);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Removes every segment (of any timeline) whose whole range lies below `keep_from_segno`.
/// Returns how many were removed. Leftover temporary files of a crashed creation go too.
pub fn remove_segments_before(
    dir: &Path,
    keep_from_segno: u64,
    segment_size: u64,
) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("xlogtemp.") {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if let Some((_, segno)) = parse_segment_file_name(name, segment_size)
            && segno < keep_from_segno
        {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = 1 << 20;
        assert!(create_segment(dir.path(), TimelineId(1), 3, size, true).expect("create"));
        assert!(!create_segment(dir.path(), TimelineId(1), 3, size, true).expect("exists"));
        create_segment(dir.path(), TimelineId(1), 4, size, false).expect("create");
        create_segment(dir.path(), TimelineId(2), 4, size, false).expect("create");
        assert_eq!(
            list_segments(dir.path(), TimelineId(1), size).expect("list"),
            vec![3, 4]
        );
        let meta = fs::metadata(segment_path(dir.path(), TimelineId(1), 3, size)).expect("meta");
        assert_eq!(meta.len(), size);
        assert_eq!(remove_segments_before(dir.path(), 4, size).expect("rm"), 1);
        assert_eq!(
            list_all_segments(dir.path(), size).expect("list"),
            vec![(TimelineId(1), 4), (TimelineId(2), 4)]
        );
    }
}
