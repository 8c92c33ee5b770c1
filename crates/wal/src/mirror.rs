//! `wal_mirror_directory`: a second, identical copy of every WAL segment (the seed's
//! "software RAID" use of the WAL-writing hook).
//!
//! Where it runs: on the WAL writer thread (`on_write` copies each written range into the
//! mirror's segment file at the same offset) and on a mirror thread that flushes the mirror
//! files while the flusher thread flushes the primary ones (`flush_begin` starts it,
//! `flush_wait` waits for it). A commit counts as flushed locally only when both copies are
//! flushed, so losing either disk loses no acknowledged commit.
//!
//! Invariant: for every segment, the mirror file is byte-identical to the primary file up to
//! the flush LSN. At start-up the existing segments are copied over, so the mirror also holds
//! WAL written before it was configured.
//!
//! Failure: any write or flush error of the mirror is returned to the WAL, which treats it
//! like its own failure (fatal).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use base::lsn::segment_file_name;
use base::{Lsn, TimelineId};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::segment;
use crate::writer::WalWriteHook;

pub struct MirrorHook {
    dir: PathBuf,
    segment_size: u64,
    state: Mutex<MirrorState>,
    requests: Mutex<mpsc::Sender<Vec<Arc<File>>>>,
    results: Mutex<mpsc::Receiver<Result<(), String>>>,
}

struct MirrorState {
    files: BTreeMap<(TimelineId, u64), Arc<File>>,
    dirty: Vec<Arc<File>>,
}

impl MirrorHook {
    /// Creates the mirror in `dir`, copying every segment now in `wal_dir` into it.
    pub fn new(dir: &Path, wal_dir: &Path, segment_size: u64) -> std::io::Result<Arc<MirrorHook>> {
        std::fs::create_dir_all(dir)?;
        for (tli, segno) in segment::list_all_segments(wal_dir, segment_size)? {
            let name = segment_file_name(tli, segno, segment_size);
            std::fs::copy(wal_dir.join(&name), dir.join(&name))?;
            File::open(dir.join(&name))?.sync_all()?;
        }
        segment::fsync_dir(dir)?;
        let (req_tx, req_rx) = mpsc::channel::<Vec<Arc<File>>>();
        let (res_tx, res_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("walmirror".into())
            .spawn(move || {
                while let Ok(files) = req_rx.recv() {
                    let r = files
                        .iter()
                        .try_for_each(|f| f.sync_data())
                        .map_err(|e| format!("could not fdatasync mirror segment: {e}"));
                    if res_tx.send(r).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Arc::new(MirrorHook {
            dir: dir.to_owned(),
            segment_size,
            state: Mutex::new(MirrorState {
                files: BTreeMap::new(),
                dirty: Vec::new(),
            }),
            requests: Mutex::new(req_tx),
            results: Mutex::new(res_rx),
        }))
    }

    fn file(&self, st: &mut MirrorState, tli: TimelineId, segno: u64) -> Result<Arc<File>, String> {
        if let Some(f) = st.files.get(&(tli, segno)) {
            return Ok(f.clone());
        }
        let path = self
            .dir
            .join(segment_file_name(tli, segno, self.segment_size));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("could not open mirror segment \"{}\": {e}", path.display()))?;
        // A new mirror segment is sized like the primary's (zero-filled), so the copies are
        // identical byte for byte, not just up to the written data.
        if f.metadata().map(|m| m.len()).unwrap_or(0) < self.segment_size {
            f.set_len(self.segment_size).map_err(|e| {
                format!("could not size mirror segment \"{}\": {e}", path.display())
            })?;
        }
        let f = Arc::new(f);
        // Only the segments being written stay open.
        while st.files.len() > 2 {
            st.files.pop_first();
        }
        st.files.insert((tli, segno), f.clone());
        Ok(f)
    }

    /// Removes mirror segments below `keep_from_segno`, as the primary's are removed.
    pub fn remove_before(&self, keep_from_segno: u64) -> std::io::Result<usize> {
        segment::remove_segments_before(&self.dir, keep_from_segno, self.segment_size)
    }
}

impl WalWriteHook for MirrorHook {
    fn name(&self) -> &str {
        "wal_mirror_directory"
    }

    fn on_write(&self, timeline: TimelineId, start: Lsn, bytes: &Bytes) -> Result<(), String> {
        let mut st = self.state.lock();
        let mut pos = start.0;
        let mut rest: &[u8] = bytes;
        while !rest.is_empty() {
            let segno = pos / self.segment_size;
            let offset = pos % self.segment_size;
            let n = rest.len().min((self.segment_size - offset) as usize);
            let f = self.file(&mut st, timeline, segno)?;
            f.write_all_at(&rest[..n], offset)
                .map_err(|e| format!("could not write mirror segment: {e}"))?;
            if !st.dirty.iter().any(|d| Arc::ptr_eq(d, &f)) {
                st.dirty.push(f);
            }
            pos += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn flush_begin(&self, _upto: Lsn) {
        let dirty = std::mem::take(&mut self.state.lock().dirty);
        let _ = self.requests.lock().send(dirty);
    }

    fn flush_wait(&self, _upto: Lsn) -> Result<(), String> {
        self.results
            .lock()
            .recv()
            .map_err(|_| "mirror flush thread stopped".to_owned())?
    }
}
