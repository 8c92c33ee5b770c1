//! In-memory MVCC storage: tables of version chains stamped with commit LSNs.
//!
//! DESIGN.md decision 1: data lives in memory; each row keeps a short chain of committed
//! versions `(commit_lsn, row | deleted)`; a writer holds a row lock and a private pending
//! version until commit. Visibility is decided by comparing a version's commit LSN with the
//! reader's snapshot watermarks (`visibility`). The catalog is versioned the same way
//! (`catalog`). Checkpoints write, for every row, the newest version at or below the checkpoint
//! LSN while writers go on (`checkpoint`), and redo replays WAL records into the same structures
//! (`redo`), at crash recovery and on standbys alike.
//!
//! This crate decides *what* is visible and stores it; *when* transactions take locks, wait,
//! and commit is the txn crate's job.

pub mod catalog;
pub mod checkpoint;
pub mod controlfile;
pub mod index;
pub mod redo;
pub mod rowstore;
pub mod sequence;
pub mod table;
pub mod version;
pub mod visibility;

pub use catalog::Catalog;
pub use index::{Index, IndexKey};
pub use rowstore::{RowId, RowStore};
pub use table::{Table, TableLocks};
pub use version::{LockAttempt, SlotState, TxnShared, TxnState, Version, VersionState};
pub use visibility::{Snapshot, SnapshotRegistry, SnapshotSlot, Watermarks};
