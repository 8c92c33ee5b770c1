//! The row store of one table: a growable array of row slots addressed by row id.
//!
//! Row ids are assigned by the primary at insert and carried in WAL records, so a standby or a
//! recovering server puts each row in the same slot. Slots live in fixed-size chunks that never
//! move once allocated, so a slot can be locked without holding anything but the chunk list's
//! read lock. Row ids are never reused: a deleted row leaves an empty slot (a few dozen bytes)
//! behind until the table is truncated or dropped. That keeps redo a pure function of the WAL.
//!
//! Concurrency: `chunks` is read-locked for every slot access and write-locked only to append
//! a chunk. Each slot has its own mutex, held only while a version chain is read or changed,
//! never across an await. Lock order: an index's lock may be held while a slot is locked,
//! never the other way round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base::Row;
use parking_lot::{Mutex, RwLock};

use crate::version::SlotState;
use crate::visibility::Snapshot;

pub type RowId = u64;

/// Slots per chunk. 1024 slots of ~64 bytes make 64 KiB chunks: large enough that the chunk
/// list stays short (1 000 chunks for a million rows), small enough that an almost empty
/// table costs little.
const CHUNK_SLOTS: usize = 1024;

type Chunk = Box<[Mutex<SlotState>]>;

#[derive(Debug, Default)]
pub struct RowStore {
    chunks: RwLock<Vec<Arc<Chunk>>>,
    next_rowid: AtomicU64,
}

fn new_chunk() -> Arc<Chunk> {
    Arc::new((0..CHUNK_SLOTS).map(|_| Mutex::default()).collect())
}

impl RowStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// One past the highest row id ever allocated.
    pub fn end_rowid(&self) -> RowId {
        self.next_rowid.load(Ordering::Acquire)
    }

    /// Allocates a fresh row id with an empty slot.
    pub fn allocate(&self) -> RowId {
        let id = self.next_rowid.fetch_add(1, Ordering::AcqRel);
        self.ensure_capacity(id);
        id
    }

    /// Makes `rowid` addressable (redo and checkpoint loading place rows at given ids).
    pub fn reserve(&self, rowid: RowId) {
        self.next_rowid.fetch_max(rowid + 1, Ordering::AcqRel);
        self.ensure_capacity(rowid);
    }

    fn ensure_capacity(&self, rowid: RowId) {
        let need = rowid as usize / CHUNK_SLOTS + 1;
        if self.chunks.read().len() >= need {
            return;
        }
        let mut chunks = self.chunks.write();
        while chunks.len() < need {
            chunks.push(new_chunk());
        }
    }

    /// Runs `f` on the slot of `rowid` under its mutex; `None` if the id was never allocated.
    pub fn with_slot<R>(&self, rowid: RowId, f: impl FnOnce(&mut SlotState) -> R) -> Option<R> {
        if rowid >= self.end_rowid() {
            return None;
        }
        let chunks = self.chunks.read();
        let chunk = chunks.get(rowid as usize / CHUNK_SLOTS)?;
        let mut slot = chunk[rowid as usize % CHUNK_SLOTS].lock();
        Some(f(&mut slot))
    }

    /// The row as `snapshot` sees it.
    pub fn get(&self, rowid: RowId, snapshot: &Snapshot) -> Option<Row> {
        self.with_slot(rowid, |s| s.visible(snapshot).cloned())
            .flatten()
    }

    /// Calls `f(rowid, slot)` for every allocated slot below the row id bound at the time of
    /// the call, in row id order, until `f` returns `false`. Rows inserted during the scan are
    /// not visited (the statement that inserts them must not see them either).
    pub fn for_each_slot(&self, mut f: impl FnMut(RowId, &mut SlotState) -> bool) {
        let end = self.end_rowid();
        let chunks: Vec<Arc<Chunk>> = self.chunks.read().clone();
        let mut rowid: RowId = 0;
        for chunk in chunks {
            for slot in chunk.iter() {
                if rowid >= end {
                    return;
                }
                let mut s = slot.lock();
                if !s.versions.is_empty() && !f(rowid, &mut s) {
                    return;
                }
                rowid += 1;
            }
        }
    }

    /// Calls `f(rowid, row)` for every row visible to `snapshot`, until `f` returns `false`.
    ///
    /// `f` runs with no slot locked: it may read this same table again (a correlated
    /// subquery over the table being scanned) without deadlocking on the slot it came from.
    pub fn scan(&self, snapshot: &Snapshot, mut f: impl FnMut(RowId, &Row) -> bool) {
        let end = self.end_rowid();
        let chunks: Vec<Arc<Chunk>> = self.chunks.read().clone();
        let mut rowid: RowId = 0;
        for chunk in chunks {
            for slot in chunk.iter() {
                if rowid >= end {
                    return;
                }
                let row = slot.lock().visible(snapshot).cloned();
                if let Some(row) = row
                    && !f(rowid, &row)
                {
                    return;
                }
                rowid += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;
    use base::Value;

    #[test]
    fn allocate_and_scan_across_chunks() {
        let store = RowStore::new();
        for i in 0..2500 {
            let id = store.allocate();
            assert_eq!(id, i);
            store.with_slot(id, |s| {
                s.versions.push(Version::committed(
                    10,
                    3,
                    Some(Arc::from(vec![Value::Int8(i as i64)])),
                ))
            });
        }
        let mut n = 0;
        store.scan(&Snapshot::ALL, |id, row| {
            assert_eq!(row[0], Value::Int8(id as i64));
            n += 1;
            true
        });
        assert_eq!(n, 2500);
        assert!(store.get(5000, &Snapshot::ALL).is_none());
        store.reserve(5000);
        assert_eq!(store.end_rowid(), 5001);
        assert!(store.get(5000, &Snapshot::ALL).is_none());
    }
}
