//! The WAL: insertion, the writer thread, the flusher thread, and the write hooks.
//!
//! Data flow (DESIGN.md): a committing session *inserts* its record into the in-memory WAL
//! buffer (one mutex, a memcpy); the **writer** thread takes everything inserted so far,
//! `pwrite`s it into the segment files and hands the same bytes to every `WalWriteHook`
//! (the walsender ships them from there, in parallel with the local flush; the mirror hook
//! copies them to a second directory); the **flusher** thread then `fdatasync`s up to what
//! was written. Many commits share one write and one flush (group commit), and neither
//! thread ever sleeps on a timer: each starts the moment it has work.
//!
//! The inline path: handing work to another thread costs ~27 µs per wake-up on this kind of
//! machine (a condition-variable round trip measured 55 µs). So a lone committer writes and
//! flushes its record itself (`commit_inline`). Under load the flusher thread writes and
//! flushes whole groups back to back without sleeping while work keeps arriving, so no commit
//! pays for waking it and a group costs one write and one flush.
//!
//! Positions (all "first byte not yet done"): `insert_lsn >= write_lsn >= flush_lsn`. Each
//! only grows. `WalProgress` listeners hear of every advance of `write_lsn` and `flush_lsn`;
//! that is how commits become acknowledgeable (txn crate).
//!
//! Ownership: `insert` state is behind `insert` (sessions and the writer). `write_lsn`,
//! `current_file` and the segment files are written only by the writer; `flush_lsn` only by
//! the flusher. The writer flushes a segment itself before moving to the next one, so the
//! flusher only ever needs to flush the current segment.
//!
//! Failure: a failed write or flush is fatal (DESIGN.md decision 7, PostgreSQL's PANIC): the
//! WAL stops accepting inserts, the `on_fatal` handler runs (the server exits), and an fsync
//! is never retried, because after a failed fsync the kernel may have dropped the dirty pages.
//!
//! Not done here: deciding what is committed (txn), what is shipped (walsender), reading
//! (reader.rs), or recovery (recovery.rs prepares the files before `Wal::open`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use base::{Lsn, TimelineId};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::record::{self, RECORD_HEADER_LEN, RecordHeader, RecordKind};
use crate::segment;

/// Why the WAL failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("could not write to WAL segment \"{path}\" at offset {offset}: {source}")]
    Write {
        path: String,
        offset: u64,
        source: std::io::Error,
    },
    #[error("could not fdatasync WAL segment \"{path}\": {source}")]
    Flush {
        path: String,
        source: std::io::Error,
    },
    #[error("could not create WAL segment \"{path}\": {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("WAL write hook \"{hook}\" failed: {message}")]
    Hook { hook: String, message: String },
    #[error("record of {0} bytes exceeds the maximum WAL record size")]
    TooLarge(usize),
    #[error("the WAL has stopped after an earlier failure")]
    Stopped,
}

/// Observers of the WAL as it is written: the walsender subscribes (shipping at write time,
/// in parallel with the local flush) and the mirror copies it (the seed's "software RAID").
///
/// # Correctness
/// - `on_write` is called by the writer thread only, once per contiguous range, in LSN order,
///   with no gaps, after the bytes are in the OS page cache and before they are flushed.
///   The bytes must not be treated as durable.
/// - `flush_begin(upto)` / `flush_wait(upto)` bracket the flusher's `fdatasync`: a hook that
///   keeps its own copy makes it durable between them; `flush_lsn` advances past `upto` only if
///   every `flush_wait` returns `Ok`. An `Err` is fatal for the WAL.
/// - Hooks must not block for long: the writer and flusher threads are on every commit's path.
pub trait WalWriteHook: Send + Sync {
    fn name(&self) -> &str;
    fn on_write(&self, timeline: TimelineId, start: Lsn, bytes: &Bytes) -> Result<(), String>;
    fn flush_begin(&self, _upto: Lsn) {}
    fn flush_wait(&self, _upto: Lsn) -> Result<(), String> {
        Ok(())
    }
}

/// Listener for advances of the write and flush positions.
pub trait WalProgress: Send + Sync {
    fn on_written(&self, write_lsn: Lsn);
    fn on_flushed(&self, flush_lsn: Lsn);
}

/// Called once when the WAL fails; the server exits from here.
pub type FatalHandler = Box<dyn Fn(&WalError) + Send + Sync>;

pub struct WalConfig {
    /// The `pg_wal` directory.
    pub dir: PathBuf,
    pub segment_size: u64,
    pub timeline: TimelineId,
    /// PostgreSQL's `fsync`: when off, flushes are skipped (unsafe; for throwaway setups).
    pub fsync: bool,
    pub on_fatal: FatalHandler,
}

struct InsertState {
    /// Bytes inserted but not yet taken by the writer: exactly `[buf_start, insert_lsn)`.
    buf: Vec<u8>,
    buf_start: Lsn,
    insert_lsn: Lsn,
    /// Records inserted since the WAL was opened (`pg_stat_wal.wal_records`); counted under
    /// the lock the insert already holds, so the commit path pays no extra atomic.
    records: u64,
}

struct Shared {
    dir: PathBuf,
    segment_size: u64,
    timeline: TimelineId,
    fsync: bool,
    on_fatal: FatalHandler,

    insert: Mutex<InsertState>,
    /// Signalled when bytes are inserted (the writer waits on it with `insert` held).
    insert_cv: Condvar,
    insert_lsn: AtomicU64,
    write_lsn: AtomicU64,
    flush_lsn: AtomicU64,

    /// The segment the writer is filling, for the flusher.
    current_file: Mutex<Option<(u64, Arc<File>)>>,
    flush_signal: Mutex<()>,
    flush_cv: Condvar,
    /// Signalled when `flush_lsn` advances (blocking `flush_to` callers wait on it).
    flushed_cv: Condvar,
    flushed_mutex: Mutex<()>,

    /// Held by whoever writes (the writer thread, or a committing session on the inline
    /// path); serialises writes so hooks see ranges in LSN order. It holds the buffer the
    /// last write handed back, reused for the next round of inserts: a fresh allocation per
    /// write would fault in new pages on every group commit.
    writer_role: Mutex<Vec<u8>>,
    /// Held by whoever flushes (the flusher thread, or a session on the inline path).
    flusher_role: Mutex<()>,
    hooks: RwLock<Vec<Arc<dyn WalWriteHook>>>,
    progress: RwLock<Vec<Arc<dyn WalProgress>>>,
    failed: AtomicBool,
    stopping: AtomicBool,
    prealloc: Mutex<Option<std::sync::mpsc::Sender<u64>>>,
    prealloc_rx: Mutex<Option<std::sync::mpsc::Receiver<u64>>>,
    /// Where the WAL was opened: `pg_stat_wal.wal_bytes` is the insert position minus this.
    opened_at: Lsn,
    stats: Counters,
}

/// The writer's and flusher's counters for `pg_stat_wal` (relaxed atomics: each is a count
/// on its own, read without a consistent cut, as PostgreSQL's shared statistics are).
/// Records and bytes come from the insert state instead.
#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    syncs: AtomicU64,
    write_ns: AtomicU64,
    sync_ns: AtomicU64,
}

/// What `pg_stat_wal` reports: records and bytes inserted, `write` and `fdatasync` calls and
/// the time spent in them, since the WAL was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    pub records: u64,
    pub bytes: u64,
    pub writes: u64,
    pub syncs: u64,
    pub write_time: std::time::Duration,
    pub sync_time: std::time::Duration,
}

impl WalStats {
    /// The activity between `earlier` and `self` (for resets).
    pub fn since(&self, earlier: &WalStats) -> WalStats {
        WalStats {
            records: self.records.saturating_sub(earlier.records),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            writes: self.writes.saturating_sub(earlier.writes),
            syncs: self.syncs.saturating_sub(earlier.syncs),
            write_time: self.write_time.saturating_sub(earlier.write_time),
            sync_time: self.sync_time.saturating_sub(earlier.sync_time),
        }
    }
}

impl Counters {
    fn snapshot(&self, records: u64, bytes: u64) -> WalStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WalStats {
            records,
            bytes,
            writes: get(&self.writes),
            syncs: get(&self.syncs),
            write_time: std::time::Duration::from_nanos(get(&self.write_ns)),
            sync_time: std::time::Duration::from_nanos(get(&self.sync_ns)),
        }
    }

    /// Counts one call of `count` and its duration into `time`.
    fn timed<T>(count: &AtomicU64, time: &AtomicU64, f: impl FnOnce() -> T) -> T {
        let t0 = std::time::Instant::now();
        let r = f();
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        count.fetch_add(1, Ordering::Relaxed);
        time.fetch_add(ns, Ordering::Relaxed);
        r
    }
}

/// The WAL of one running server.
pub struct Wal {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("insert_lsn", &self.insert_lsn())
            .field("write_lsn", &self.write_lsn())
            .field("flush_lsn", &self.flush_lsn())
            .finish()
    }
}

impl Wal {
    /// Opens the WAL for appending at `start` (the end of valid WAL found by recovery, or the
    /// first LSN of a new cluster). Everything before `start` is durable; the segment
    /// containing `start` must hold zeros from `start` on (recovery or init made sure).
    ///
    /// No thread is started here: the server's background-worker registry runs
    /// `writer_main`, `flusher_main` and `prealloc_main` (tools and tests call
    /// `spawn_threads`). Inserts before the writer runs simply wait in the buffer.
    pub fn open(config: WalConfig, start: Lsn) -> Result<Arc<Wal>, WalError> {
        assert_eq!(start.0 % record::WAL_ALIGN, 0, "WAL start must be aligned");
        let shared = Arc::new(Shared {
            dir: config.dir,
            segment_size: config.segment_size,
            timeline: config.timeline,
            fsync: config.fsync,
            on_fatal: config.on_fatal,
            insert: Mutex::new(InsertState {
                buf: Vec::with_capacity(64 << 10),
                buf_start: start,
                insert_lsn: start,
                records: 0,
            }),
            insert_cv: Condvar::new(),
            insert_lsn: AtomicU64::new(start.0),
            write_lsn: AtomicU64::new(start.0),
            flush_lsn: AtomicU64::new(start.0),
            current_file: Mutex::new(None),
            flush_signal: Mutex::new(()),
            flush_cv: Condvar::new(),
            flushed_cv: Condvar::new(),
            flushed_mutex: Mutex::new(()),
            writer_role: Mutex::new(Vec::with_capacity(64 << 10)),
            flusher_role: Mutex::new(()),
            hooks: RwLock::new(Vec::new()),
            progress: RwLock::new(Vec::new()),
            failed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            prealloc: Mutex::new(None),
            prealloc_rx: Mutex::new(None),
            opened_at: start,
            stats: Counters::default(),
        });
        let segno = start.segment_number(shared.segment_size);
        segment::create_segment(
            &shared.dir,
            shared.timeline,
            segno,
            shared.segment_size,
            shared.fsync,
        )
        .map_err(|e| WalError::Create {
            path: shared.path(segno),
            source: e,
        })?;
        let file = shared.open_segment(segno)?;
        *shared.current_file.lock() = Some((segno, file));

        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        *shared.prealloc.lock() = Some(tx);
        *shared.prealloc_rx.lock() = Some(rx);
        let wal = Arc::new(Wal {
            shared,
            threads: Mutex::new(Vec::new()),
        });
        wal.shared.request_prealloc(segno + 1);
        Ok(wal)
    }

    /// The WAL writer's main function: returns when the WAL stops or fails.
    pub fn writer_main(&self) {
        self.shared.writer_loop();
    }

    /// The WAL flusher's main function: returns when the WAL stops or fails.
    pub fn flusher_main(&self) {
        self.shared.flusher_loop();
    }

    /// The segment preallocator's main function: returns when the WAL stops.
    pub fn prealloc_main(&self) {
        let rx = self.shared.prealloc_rx.lock().take();
        if let Some(rx) = rx {
            self.shared.prealloc_loop(rx);
        }
    }

    /// Runs the three WAL threads on plain threads owned by this `Wal` (tools and tests; the
    /// server runs them as registered background workers instead).
    pub fn spawn_threads(self: &Arc<Self>) {
        let mut threads = self.threads.lock();
        let w = self.clone();
        threads.push(spawn("walwriter", move || w.writer_main()));
        let w = self.clone();
        threads.push(spawn("walflusher", move || w.flusher_main()));
        let w = self.clone();
        threads.push(spawn("walprealloc", move || w.prealloc_main()));
    }

    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    pub fn timeline(&self) -> TimelineId {
        self.shared.timeline
    }

    pub fn segment_size(&self) -> u64 {
        self.shared.segment_size
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.shared.dir
    }

    pub fn insert_lsn(&self) -> Lsn {
        Lsn(self.shared.insert_lsn.load(Ordering::Acquire))
    }

    pub fn write_lsn(&self) -> Lsn {
        Lsn(self.shared.write_lsn.load(Ordering::Acquire))
    }

    pub fn flush_lsn(&self) -> Lsn {
        Lsn(self.shared.flush_lsn.load(Ordering::Acquire))
    }

    pub fn add_hook(&self, hook: Arc<dyn WalWriteHook>) {
        self.shared.hooks.write().push(hook);
    }

    pub fn remove_hook(&self, name: &str) {
        self.shared.hooks.write().retain(|h| h.name() != name);
    }

    /// Counters for `pg_stat_wal`, since the WAL was opened.
    pub fn stats(&self) -> WalStats {
        let (records, insert_lsn) = {
            let st = self.shared.insert.lock();
            (st.records, st.insert_lsn)
        };
        let bytes = insert_lsn.0 - self.shared.opened_at.0;
        self.shared.stats.snapshot(records, bytes)
    }

    pub fn add_progress_listener(&self, listener: Arc<dyn WalProgress>) {
        self.shared.progress.write().push(listener);
    }

    /// Appends one record and returns its end LSN. `on_assigned(start, end)` runs under the
    /// insert lock, before the record can reach disk or any hook.
    pub fn insert(
        &self,
        kind: RecordKind,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, WalError> {
        let end = self.insert_quiet(kind, flags, xid, payload, on_assigned)?;
        self.shared.insert_cv.notify_one();
        Ok(end)
    }

    /// Like `insert`, but does not wake the writer thread: the caller promises to call
    /// `commit_inline` next, which writes the record itself or wakes the writer. Saves the
    /// wake-up (and the contention with the woken writer) on the inline path.
    pub fn insert_quiet(
        &self,
        kind: RecordKind,
        flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, WalError> {
        let total = RECORD_HEADER_LEN + payload.len();
        if total > record::MAX_RECORD_LEN as usize {
            return Err(WalError::TooLarge(total));
        }
        if self.shared.failed.load(Ordering::Acquire)
            || self.shared.stopping.load(Ordering::Acquire)
        {
            return Err(WalError::Stopped);
        }
        // The payload's CRC does not depend on the position: compute it outside the lock.
        let payload_crc = crc32c::crc32c(payload);
        let mut st = self.shared.insert.lock();
        let start = st.insert_lsn;
        let header = RecordHeader {
            crc: 0,
            total_len: total as u32,
            kind: kind as u8,
            flags,
            lsn: start,
            durable_lsn: self.flush_lsn(),
            xid,
        };
        let mut h = header.encode();
        let crc = record::record_crc(payload_crc, &h);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        let end = Lsn(record::align(start.0 + total as u64));
        st.buf.reserve((end.0 - start.0) as usize);
        st.buf.extend_from_slice(&h);
        st.buf.extend_from_slice(payload);
        let padded = st.buf.len() + (end.0 - start.0) as usize - total;
        st.buf.resize(padded, 0);
        st.insert_lsn = end;
        st.records += 1;
        self.shared.insert_lsn.store(end.0, Ordering::Release);
        on_assigned(start, end);
        drop(st);
        Ok(end)
    }

    /// The inline path of a commit whose record ends at `upto`. The write is always done
    /// here (it takes microseconds; waiting for the writer role is shorter than waking a
    /// thread). If `flush` and no one else is flushing, the flush is done here too; otherwise
    /// the flusher thread is nudged (a no-op when it is already busy) and the caller waits.
    /// Returns whether `upto` is now written (and flushed, if asked).
    pub fn commit_inline(&self, upto: Lsn, flush: bool) -> bool {
        let s = &self.shared;
        if s.failed.load(Ordering::Acquire) || s.stopping.load(Ordering::Acquire) {
            return false;
        }
        if !flush {
            // Under load: the flusher thread writes and flushes whole groups; waking it is
            // cheap (it is usually awake) and saves a write per commit.
            let _g = s.flush_signal.lock();
            s.flush_cv.notify_one();
            return false;
        }
        if self.write_lsn() < upto {
            let mut role = s.writer_role.lock();
            let result = s.write_step(&mut role);
            drop(role);
            if let Err(e) = result {
                s.fail(e);
                return false;
            }
        }
        if self.flush_lsn() >= upto {
            return true;
        }
        let Some(role) = s.flusher_role.try_lock() else {
            let _g = s.flush_signal.lock();
            s.flush_cv.notify_one();
            return false;
        };
        let result = s.flush_step();
        drop(role);
        if let Err(e) = result {
            s.fail(e);
            return false;
        }
        self.flush_lsn() >= upto
    }

    /// Blocks until everything inserted before the call is flushed (checkpoints, shutdown).
    pub fn flush_all(&self) -> Result<Lsn, WalError> {
        let target = self.insert_lsn();
        self.flush_to(target)?;
        Ok(target)
    }

    /// Blocks until `flush_lsn >= lsn` (or the WAL failed).
    pub fn flush_to(&self, lsn: Lsn) -> Result<(), WalError> {
        let s = &self.shared;
        s.insert_cv.notify_one();
        let mut g = s.flushed_mutex.lock();
        loop {
            if self.flush_lsn() >= lsn {
                return Ok(());
            }
            if s.failed.load(Ordering::Acquire) || s.stopping.load(Ordering::Acquire) {
                return Err(WalError::Stopped);
            }
            s.flushed_cv
                .wait_for(&mut g, std::time::Duration::from_millis(50));
        }
    }

    /// Flushes everything, stops the threads (joining those `spawn_threads` started), and
    /// returns the final end of WAL.
    pub fn shutdown(&self) -> Result<Lsn, WalError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Ok(self.flush_lsn());
        }
        let end = self.flush_all();
        self.shared.stopping.store(true, Ordering::Release);
        {
            let _g = self.shared.insert.lock();
            self.shared.insert_cv.notify_all();
        }
        {
            let _g = self.shared.flush_signal.lock();
            self.shared.flush_cv.notify_all();
        }
        *self.shared.prealloc.lock() = None;
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        end
    }

    /// Whether the WAL failed (writes are refused after that).
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }
}

impl Drop for Wal {
    /// Dropping without `shutdown` (e.g. on an error path) stops the threads without waiting
    /// for a flush: whatever was not flushed was never acknowledged.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.insert_cv.notify_all();
        self.shared.flush_cv.notify_all();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

impl Shared {
    fn path(&self, segno: u64) -> String {
        segment::segment_path(&self.dir, self.timeline, segno, self.segment_size)
            .display()
            .to_string()
    }

    fn open_segment(&self, segno: u64) -> Result<Arc<File>, WalError> {
        let path = segment::segment_path(&self.dir, self.timeline, segno, self.segment_size);
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map(Arc::new)
            .map_err(|e| WalError::Create {
                path: path.display().to_string(),
                source: e,
            })
    }

    fn request_prealloc(&self, segno: u64) {
        if let Some(tx) = self.prealloc.lock().as_ref() {
            let _ = tx.send(segno);
        }
    }

    /// Creates segments ahead of the writer, so crossing into a new segment does not stall
    /// commits for the ~20 ms it takes to zero-fill 16 MiB.
    fn prealloc_loop(&self, rx: std::sync::mpsc::Receiver<u64>) {
        while let Ok(segno) = rx.recv() {
            if let Err(e) = segment::create_segment(
                &self.dir,
                self.timeline,
                segno,
                self.segment_size,
                self.fsync,
            ) {
                // Not fatal: the writer creates the segment itself when it gets there.
                tracing::warn!(
                    "could not preallocate WAL segment {}: {e}",
                    self.path(segno)
                );
            }
        }
    }

    fn fail(&self, err: WalError) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!("PANIC: {err}");
            (self.on_fatal)(&err);
        }
        self.flushed_cv.notify_all();
    }

    fn writer_loop(&self) {
        loop {
            {
                let mut st = self.insert.lock();
                while st.buf.is_empty() {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    self.insert_cv.wait(&mut st);
                }
            }
            if self.failed.load(Ordering::Acquire) {
                return;
            }
            let mut role = self.writer_role.lock();
            let result = self.write_step(&mut role);
            drop(role);
            match result {
                Ok(true) => {
                    let _g = self.flush_signal.lock();
                    self.flush_cv.notify_one();
                }
                Ok(false) => {}
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// Writes everything inserted so far and hands it to the hooks. The caller holds
    /// `writer_role` and passes its spare buffer. Returns whether anything was written.
    fn write_step(&self, spare: &mut Vec<u8>) -> Result<bool, WalError> {
        let (bytes, start) = {
            let mut st = self.insert.lock();
            if st.buf.is_empty() {
                return Ok(false);
            }
            let start = st.buf_start;
            let bytes = std::mem::replace(&mut st.buf, std::mem::take(spare));
            st.buf_start = st.insert_lsn;
            (bytes, start)
        };
        let end = Lsn(start.0 + bytes.len() as u64);
        self.write_out(start, &bytes)?;
        let hooks = self.hooks.read();
        if !hooks.is_empty() {
            // Hooks may keep the bytes (a walsender's buffer does): give them an exact-size
            // copy, so what they retain is the WAL and not a 64 KiB buffer around it.
            let shipped = Bytes::copy_from_slice(&bytes);
            for hook in hooks.iter() {
                hook.on_write(self.timeline, start, &shipped)
                    .map_err(|message| WalError::Hook {
                        hook: hook.name().to_owned(),
                        message,
                    })?;
            }
        }
        drop(hooks);
        let mut bytes = bytes;
        bytes.clear();
        // A buffer that grew for a burst is not kept (the bound keeps memory in line with
        // the common case; a burst allocates again).
        if bytes.capacity() <= 1 << 20 {
            *spare = bytes;
        }
        self.write_lsn.store(end.0, Ordering::Release);
        for p in self.progress.read().iter() {
            p.on_written(end);
        }
        Ok(true)
    }

    /// Writes `bytes` at `start`, crossing into new segments as needed.
    fn write_out(&self, start: Lsn, bytes: &[u8]) -> Result<(), WalError> {
        let mut pos = start.0;
        let mut rest = bytes;
        while !rest.is_empty() {
            let segno = pos / self.segment_size;
            let offset = pos % self.segment_size;
            let n = rest.len().min((self.segment_size - offset) as usize);
            let file = self.segment_for_write(segno)?;
            let c = &self.stats;
            Counters::timed(&c.writes, &c.write_ns, || {
                file.write_all_at(&rest[..n], offset)
            })
            .map_err(|e| WalError::Write {
                path: self.path(segno),
                offset,
                source: e,
            })?;
            pos += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// The file of segment `segno`, switching (and flushing the previous one) if needed.
    fn segment_for_write(&self, segno: u64) -> Result<Arc<File>, WalError> {
        let current = self.current_file.lock().clone();
        if let Some((cur, file)) = &current
            && *cur == segno
        {
            return Ok(file.clone());
        }
        if let Some((cur, file)) = current
            && self.fsync
        {
            // The flusher only flushes the current segment: finish the old one here.
            let c = &self.stats;
            Counters::timed(&c.syncs, &c.sync_ns, || file.sync_data()).map_err(|e| {
                WalError::Flush {
                    path: self.path(cur),
                    source: e,
                }
            })?;
        }
        segment::create_segment(
            &self.dir,
            self.timeline,
            segno,
            self.segment_size,
            self.fsync,
        )
        .map_err(|e| WalError::Create {
            path: self.path(segno),
            source: e,
        })?;
        let file = self.open_segment(segno)?;
        *self.current_file.lock() = Some((segno, file.clone()));
        self.request_prealloc(segno + 1);
        Ok(file)
    }

    fn flusher_loop(&self) {
        loop {
            {
                let mut g = self.flush_signal.lock();
                while self.insert_lsn.load(Ordering::Acquire)
                    <= self.flush_lsn.load(Ordering::Acquire)
                {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    self.flush_cv.wait(&mut g);
                }
            }
            if self.failed.load(Ordering::Acquire) {
                return;
            }
            // Write whatever is pending (commits under load leave their record to us), then
            // flush: one write and one flush per group.
            let written = {
                let mut role = self.writer_role.lock();
                let r = self.write_step(&mut role);
                drop(role);
                r
            };
            if let Err(e) = written {
                self.fail(e);
                return;
            }
            let role = self.flusher_role.lock();
            let result = self.flush_step();
            drop(role);
            if let Err(e) = result {
                self.fail(e);
                return;
            }
        }
    }

    /// Flushes everything written so far. The caller holds `flusher_role`.
    fn flush_step(&self) -> Result<(), WalError> {
        let target = Lsn(self.write_lsn.load(Ordering::Acquire));
        if target.0 <= self.flush_lsn.load(Ordering::Acquire) {
            return Ok(());
        }
        let current = self.current_file.lock().clone();
        let hooks: Vec<Arc<dyn WalWriteHook>> = self.hooks.read().clone();
        for h in &hooks {
            h.flush_begin(target);
        }
        if self.fsync
            && let Some((segno, file)) = &current
        {
            let result = if base::failpoint::fails("wal-flush-error") {
                Err(std::io::Error::other(
                    "injected fdatasync failure (test failpoint)",
                ))
            } else {
                let c = &self.stats;
                Counters::timed(&c.syncs, &c.sync_ns, || file.sync_data())
            };
            result.map_err(|e| WalError::Flush {
                path: self.path(*segno),
                source: e,
            })?;
        }
        for h in &hooks {
            h.flush_wait(target).map_err(|message| WalError::Hook {
                hook: h.name().to_owned(),
                message,
            })?;
        }
        self.flush_lsn.store(target.0, Ordering::Release);
        for p in self.progress.read().iter() {
            p.on_flushed(target);
        }
        let _g = self.flushed_mutex.lock();
        self.flushed_cv.notify_all();
        Ok(())
    }
}
