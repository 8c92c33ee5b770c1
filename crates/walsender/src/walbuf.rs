//! The walsenders' view of the local WAL: a bounded window of recently written WAL (fed by
//! the WAL write hook, before the local fsync) and the current write/flush positions.
//!
//! Where it runs: `on_write` on the WAL writer thread, `on_flushed` on the flusher thread,
//! readers on walsender tasks. `on_write` also ships the new WAL to armed walsenders itself
//! (`crate::direct`). Both callbacks are on every commit's path, so they only push
//! a refcounted `Bytes` (no copy), trim the window and publish positions on a `watch`
//! channel that wakes the walsender tasks. (Syncrep's release on flush is driven by the
//! server's progress listener, not from here.)
//!
//! What it deliberately does not do: block, or keep WAL for a slow standby. A sender whose
//! next byte has left the window reads segment files instead (the bytes were written to the
//! file before the hook was called, so a file read below the published write LSN always
//! finds them).
//!
//! Invariants: the window holds contiguous ranges in LSN order ending at `write_lsn`;
//! published positions only grow; `flush_lsn <= write_lsn`.

use std::collections::VecDeque;
use std::sync::Arc;

use base::{Lsn, TimelineId};
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;
use wal::{WalProgress, WalWriteHook};

use crate::direct::DirectSend;

/// How much recent WAL the window keeps: 16 MiB is one default segment, enough for a
/// standby that lags by a few hundred milliseconds of heavy writing; older WAL is read back
/// from segment files, which the OS page cache usually still holds.
pub const WINDOW_BYTES: usize = 16 << 20;

/// Local WAL positions as published to walsenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LocalPositions {
    pub write_lsn: Lsn,
    pub flush_lsn: Lsn,
}

struct Window {
    chunks: VecDeque<(Lsn, Bytes)>,
    bytes: usize,
    end: Lsn,
}

/// The shared window and position channel. One per server.
pub struct WalBuffer {
    window: Mutex<Window>,
    positions: watch::Sender<LocalPositions>,
    /// Walsenders that may be sent to directly from the write hook (`crate::direct`).
    direct: Mutex<Vec<Arc<DirectSend>>>,
}

impl WalBuffer {
    pub fn new(write_lsn: Lsn, flush_lsn: Lsn) -> Arc<WalBuffer> {
        let (tx, _) = watch::channel(LocalPositions {
            write_lsn,
            flush_lsn,
        });
        Arc::new(WalBuffer {
            window: Mutex::new(Window {
                chunks: VecDeque::new(),
                bytes: 0,
                end: write_lsn,
            }),
            positions: tx,
            direct: Mutex::new(Vec::new()),
        })
    }

    /// Lets the write hook send to this walsender directly while it is armed.
    pub fn add_direct(&self, d: &Arc<DirectSend>) {
        self.direct.lock().push(d.clone());
    }

    pub fn remove_direct(&self, d: &Arc<DirectSend>) {
        self.direct.lock().retain(|x| !Arc::ptr_eq(x, d));
    }

    pub fn subscribe(&self) -> watch::Receiver<LocalPositions> {
        self.positions.subscribe()
    }

    pub fn positions(&self) -> LocalPositions {
        *self.positions.borrow()
    }

    /// The oldest LSN in the window (`write_lsn` when empty).
    pub fn start_lsn(&self) -> Lsn {
        let w = self.window.lock();
        w.chunks.front().map_or(w.end, |(l, _)| *l)
    }

    /// `start..end` from the window, or `None` if any part has left it.
    pub fn read(&self, start: Lsn, end: Lsn) -> Option<Vec<u8>> {
        let w = self.window.lock();
        let first = w.chunks.front()?.0;
        if start < first || end > w.end || start > end {
            return None;
        }
        let mut out = Vec::with_capacity((end.0 - start.0) as usize);
        // Chunks are contiguous and in LSN order: find the first one that reaches `start` by
        // binary search (a streaming sender reads the newest few of thousands of chunks; a
        // linear scan under the lock cost more than the copy).
        let first_needed = w
            .chunks
            .partition_point(|(at, b)| at.0 + b.len() as u64 <= start.0);
        for (at, b) in w.chunks.range(first_needed..) {
            let c_end = at.0 + b.len() as u64;
            if at.0 >= end.0 {
                break;
            }
            let from = start.0.max(at.0) - at.0;
            let to = end.0.min(c_end) - at.0;
            out.extend_from_slice(&b[from as usize..to as usize]);
        }
        (out.len() as u64 == end.0 - start.0).then_some(out)
    }
}

impl WalWriteHook for WalBuffer {
    fn name(&self) -> &str {
        "walsender"
    }

    fn on_write(&self, _timeline: TimelineId, start: Lsn, bytes: &Bytes) -> Result<(), String> {
        let end = Lsn(start.0 + bytes.len() as u64);
        {
            let mut w = self.window.lock();
            if start != w.end {
                // A gap (cannot happen: the writer calls hooks in order): restart the window.
                w.chunks.clear();
                w.bytes = 0;
            }
            w.chunks.push_back((start, bytes.clone()));
            w.bytes += bytes.len();
            w.end = end;
            while w.bytes > WINDOW_BYTES && w.chunks.len() > 1 {
                if let Some((_, b)) = w.chunks.pop_front() {
                    w.bytes -= b.len();
                }
            }
        }
        self.positions
            .send_modify(|p| p.write_lsn = p.write_lsn.max(end));
        // After publishing: a walsender that wakes for the new position either finds the WAL
        // sent here (armed) or disarms first and sends it itself.
        let direct = self.direct.lock();
        if !direct.is_empty() {
            let wal_end = self.positions.borrow().flush_lsn;
            for d in direct.iter() {
                d.try_send(start, bytes, wal_end);
            }
        }
        Ok(())
    }
}

impl WalProgress for WalBuffer {
    fn on_written(&self, _write_lsn: Lsn) {}

    fn on_flushed(&self, flush_lsn: Lsn) {
        self.positions.send_modify(|p| {
            p.flush_lsn = p.flush_lsn.max(flush_lsn);
            p.write_lsn = p.write_lsn.max(p.flush_lsn);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reads_and_trims() {
        let b = WalBuffer::new(Lsn(100), Lsn(100));
        b.on_write(TimelineId(1), Lsn(100), &Bytes::from(vec![1u8; 10]))
            .expect("hook");
        b.on_write(TimelineId(1), Lsn(110), &Bytes::from(vec![2u8; 10]))
            .expect("hook");
        assert_eq!(b.positions().write_lsn, Lsn(120));
        let r = b.read(Lsn(105), Lsn(115)).expect("in window");
        assert_eq!(r, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        assert!(b.read(Lsn(99), Lsn(105)).is_none());
        assert!(b.read(Lsn(110), Lsn(121)).is_none());
        b.on_write(
            TimelineId(1),
            Lsn(120),
            &Bytes::from(vec![3u8; WINDOW_BYTES]),
        )
        .expect("hook");
        assert_eq!(b.start_lsn(), Lsn(120));
    }
}
