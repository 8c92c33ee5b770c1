//! An in-memory `CommitLog` for tests of the layers above, without a WAL on disk.
//!
//! Every inserted record is "written" and "flushed" at once: `insert` advances all visibility
//! watermarks to the record's end, so commits at every level are acknowledged immediately.
//! The records are kept, so tests can inspect what a transaction logged.

use std::sync::{Arc, Weak};

use base::Lsn;
use parking_lot::Mutex;
use wal::record::{RECORD_HEADER_LEN, RecordKind, align};

use crate::error::TxnError;
use crate::manager::{CommitLog, TxnManager};

#[derive(Debug, Default)]
pub struct MemLog {
    inner: Mutex<MemLogInner>,
    manager: Mutex<Weak<TxnManager>>,
}

#[derive(Debug, Default)]
struct MemLogInner {
    next: u64,
    records: Vec<(Lsn, RecordKind, u64, Vec<u8>)>,
}

impl MemLog {
    pub fn new(start: Lsn) -> Arc<MemLog> {
        Arc::new(MemLog {
            inner: Mutex::new(MemLogInner {
                next: start.0,
                records: Vec::new(),
            }),
            manager: Mutex::new(Weak::new()),
        })
    }

    /// Connects the log to the manager whose watermarks it advances.
    pub fn attach(&self, mgr: &Arc<TxnManager>) {
        *self.manager.lock() = Arc::downgrade(mgr);
    }

    /// The records inserted so far: (start LSN, kind, xid, payload).
    pub fn records(&self) -> Vec<(Lsn, RecordKind, u64, Vec<u8>)> {
        self.inner.lock().records.clone()
    }
}

impl CommitLog for MemLog {
    fn insert(
        &self,
        kind: RecordKind,
        _flags: u8,
        xid: u64,
        payload: &[u8],
        on_assigned: &mut dyn FnMut(Lsn, Lsn),
    ) -> Result<Lsn, TxnError> {
        let end = {
            let mut inner = self.inner.lock();
            let start = inner.next;
            let end = align(start + (RECORD_HEADER_LEN + payload.len()) as u64);
            inner.next = end;
            on_assigned(Lsn(start), Lsn(end));
            inner
                .records
                .push((Lsn(start), kind, xid, payload.to_vec()));
            end
        };
        if let Some(mgr) = self.manager.lock().upgrade() {
            mgr.advance_watermarks(|w| {
                for v in w.iter_mut() {
                    *v = (*v).max(end);
                }
            });
        }
        Ok(Lsn(end))
    }
}

/// A manager over an empty catalog and a `MemLog`, for tests.
pub fn memory_manager() -> (Arc<TxnManager>, Arc<MemLog>) {
    let log = MemLog::new(Lsn::FIRST);
    let mgr = TxnManager::new(
        Arc::new(storage::Catalog::new()),
        Arc::new(storage::Watermarks::new(Lsn::FIRST.0)),
        log.clone(),
        1,
    );
    log.attach(&mgr);
    (mgr, log)
}

/// A transaction on `mgr` with default settings and its own snapshot slot.
pub fn begin(mgr: &Arc<TxnManager>) -> crate::Transaction {
    let slot = Arc::new(mgr.snapshots.register());
    crate::Transaction::begin(
        mgr,
        slot,
        Arc::new(crate::Interrupt::new()),
        crate::TxnSettings { lock_timeout: None },
    )
}

/// A nullable column without a default.
pub fn col(name: &str, t: base::DataType) -> base::catalog::ColumnDef {
    base::catalog::ColumnDef {
        name: name.into(),
        data_type: t,
        not_null: false,
        default: None,
    }
}

/// Every visible row of every table, with its table's name, sorted: what two catalogs must
/// agree on after replay.
pub fn contents(catalog: &storage::Catalog) -> Vec<(String, Vec<base::Value>)> {
    let all = storage::Snapshot::ALL;
    let mut out = Vec::new();
    for t in catalog.tables(&all) {
        t.rows.scan(&all, |_, row| {
            out.push((t.name().to_owned(), row.to_vec()));
            true
        });
    }
    out.sort_by_key(|a| (a.0.clone(), a.1.clone()));
    out
}

/// A record as the WAL reader would hand it to redo.
pub fn raw_record(lsn: Lsn, kind: RecordKind, xid: u64, payload: Vec<u8>) -> wal::RawRecord {
    wal::RawRecord {
        header: wal::record::RecordHeader {
            crc: 0,
            total_len: (RECORD_HEADER_LEN + payload.len()) as u32,
            kind: kind as u8,
            flags: 0,
            lsn,
            durable_lsn: Lsn(0),
            xid,
        },
        payload,
    }
}

/// Replays every record of `log` into an empty catalog.
pub fn replay(log: &MemLog) -> Arc<storage::Catalog> {
    let replica = Arc::new(storage::Catalog::new());
    let mut redo = storage::redo::Redo::new(replica.clone(), Lsn(0));
    for (lsn, kind, xid, payload) in log.records() {
        if let Err(e) = redo.apply(&raw_record(lsn, kind, xid, payload), u64::MAX) {
            panic!("redo of {lsn}: {e}");
        }
    }
    replica
}
