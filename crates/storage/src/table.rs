//! A table: its definition, row store, indexes, and the locks shared by all its versions.
//!
//! A `Table` value is immutable in shape: DDL that changes the shape (TRUNCATE, CREATE INDEX,
//! ADD PRIMARY KEY) makes a *new* `Table` value that the catalog publishes when the DDL commits,
//! so a rollback simply forgets it. TRUNCATE gets a fresh row store; CREATE INDEX shares the
//! row store and adds an index. `locks` is shared by every `Table` value with the same OID:
//! DDL on a table holds its DDL lock, and other transactions wait for it (txn crate).

use std::sync::Arc;

use base::catalog::{IndexDef, TableDef};
use base::{DataType, Row};
use parking_lot::Mutex;

use crate::index::{Index, IndexKey};
use crate::rowstore::{RowId, RowStore};
use crate::sequence::SequenceState;
use crate::version::TxnShared;

/// The table-level locks, shared by all `Table` values of one OID.
#[derive(Debug, Default)]
pub struct TableLocks {
    /// The transaction running DDL on this table (like PostgreSQL's ACCESS EXCLUSIVE lock).
    pub ddl_owner: Mutex<Option<Arc<TxnShared>>>,
    /// Transactions that have read or written this table and may not have finished (like
    /// ACCESS SHARE / ROW EXCLUSIVE locks). Finished entries are pruned lazily.
    pub users: Mutex<Vec<Arc<TxnShared>>>,
}

#[derive(Debug)]
pub struct Table {
    pub def: Arc<TableDef>,
    pub rows: Arc<RowStore>,
    /// Parallel to `def.indexes`.
    pub indexes: Vec<Arc<Index>>,
    pub locks: Arc<TableLocks>,
    /// A sequence's in-memory state (shared by every `Table` value of it); `None` for tables.
    pub sequence: Option<Arc<SequenceState>>,
}

/// Why an index could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexBuildError {
    #[error("could not create unique index \"{index}\"")]
    Duplicate { index: String, key: String },
    #[error("column of index \"{index}\" contains null values")]
    NullInKey { index: String, column: String },
}

impl Table {
    pub fn column_types(def: &TableDef) -> Vec<DataType> {
        def.columns.iter().map(|c| c.data_type).collect()
    }

    /// A new, empty table.
    pub fn new(def: TableDef) -> Table {
        let types = Self::column_types(&def);
        let indexes = def
            .indexes
            .iter()
            .map(|d| Arc::new(Index::new(d.clone(), &types)))
            .collect();
        let sequence = def
            .sequence
            .is_some()
            .then(|| Arc::new(SequenceState::default()));
        Table {
            def: Arc::new(def),
            rows: Arc::new(RowStore::new()),
            indexes,
            locks: Arc::new(TableLocks::default()),
            sequence,
        }
    }

    /// A sequence's row: (`last_value`, `log_cnt`, `is_called`).
    pub fn sequence_row(last_value: i64, is_called: bool) -> Row {
        Arc::from(vec![
            base::Value::Int8(last_value),
            base::Value::Int8(0),
            base::Value::Bool(is_called),
        ])
    }

    /// A sequence's stored (`last_value`, `is_called`): its row's newest version that is not
    /// dead (committed, or the creating transaction's own), or the start if none.
    pub fn stored_sequence(&self) -> (i64, bool) {
        let start = self.def.sequence.as_ref().map_or(1, |s| s.start);
        self.rows
            .with_slot(0, |s| {
                s.versions
                    .iter()
                    .rev()
                    .find(|v| v.state() != crate::version::VersionState::Dead)
                    .and_then(|v| v.data.clone())
            })
            .flatten()
            .and_then(|r| match (r.first(), r.get(2)) {
                (Some(base::Value::Int8(v)), Some(base::Value::Bool(c))) => Some((*v, *c)),
                _ => None,
            })
            .unwrap_or((start, false))
    }

    /// A sequence's row as a query sees it: its current state (see `SequenceState::current`).
    pub fn current_sequence_row(&self) -> Option<Row> {
        let state = self.sequence.as_ref()?;
        let (last, log_cnt, is_called) = state.current(|| self.stored_sequence());
        Some(Arc::from(vec![
            base::Value::Int8(last),
            base::Value::Int8(log_cnt),
            base::Value::Bool(is_called),
        ]))
    }

    /// Stores a sequence's row as committed at `lsn` outside any transaction (a `Sequence`
    /// WAL record's effect, on the primary when it is inserted and in redo when replayed),
    /// visible once written, like the record. `horizon` bounds pruning of older versions.
    pub fn store_sequence_row(&self, lsn: u64, last_value: i64, is_called: bool, horizon: u64) {
        let row = Self::sequence_row(last_value, is_called);
        self.rows.reserve(0);
        self.rows.with_slot(0, |s| {
            s.versions.push(crate::version::Version::committed(
                lsn,
                base::SyncCommitLevel::Off as u8,
                Some(row),
            ));
            s.prune(horizon)
        });
    }

    pub fn oid(&self) -> u32 {
        self.def.oid
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The same table emptied (TRUNCATE): same definition and locks, new storage.
    pub fn truncated(&self) -> Table {
        let types = Self::column_types(&self.def);
        Table {
            def: self.def.clone(),
            rows: Arc::new(RowStore::new()),
            indexes: self
                .def
                .indexes
                .iter()
                .map(|d| Arc::new(Index::new(d.clone(), &types)))
                .collect(),
            locks: self.locks.clone(),
            sequence: self.sequence.clone(),
        }
    }

    /// The same table with a new definition sharing rows and indexes (e.g. a renamed table).
    pub fn with_def(&self, def: TableDef) -> Table {
        Table {
            def: Arc::new(def),
            rows: self.rows.clone(),
            indexes: self.indexes.clone(),
            locks: self.locks.clone(),
            sequence: self.sequence.clone(),
        }
    }

    /// The same table with one more column at the end (ALTER TABLE ADD COLUMN): every
    /// version of every row, committed or pending, gets `fill` as the new column's value,
    /// keeping its stamp; indexes are rebuilt over the new rows. `def` is the new definition.
    /// The caller holds the table's DDL lock (on the primary; redo replays alone).
    pub fn with_added_column(&self, def: TableDef, fill: &base::Value) -> Table {
        let fresh = Table::new(def);
        let table = Table {
            locks: self.locks.clone(),
            ..fresh
        };
        let end = self.rows.end_rowid();
        if end > 0 {
            table.rows.reserve(end - 1);
        }
        self.rows.for_each_slot(|rowid, slot| {
            let versions: smallvec::SmallVec<[crate::version::Version; 1]> = slot
                .versions
                .iter()
                .map(|v| crate::version::Version {
                    stamp: v.stamp.clone(),
                    data: v.data.as_ref().map(|r| {
                        let mut wider = r.to_vec();
                        wider.push(fill.clone());
                        Row::from(wider)
                    }),
                })
                .collect();
            for row in versions.iter().filter_map(|v| v.data.as_ref()) {
                table.index_row(rowid, row);
            }
            let owner = slot.lock_owner.clone();
            table.rows.with_slot(rowid, |s| {
                s.versions = versions;
                s.lock_owner = owner;
            });
            true
        });
        table
    }

    /// The same table with one more index, built from every row version present. For a
    /// primary key the key columns also become NOT NULL. The caller holds the table's DDL lock,
    /// so no other transaction changes rows meanwhile; `me` is the DDL transaction, whose own
    /// pending versions count as the rows' current state.
    pub fn with_index(
        &self,
        index: IndexDef,
        me: Option<&Arc<TxnShared>>,
    ) -> Result<Table, IndexBuildError> {
        let mut def = (*self.def).clone();
        if index.primary {
            for &c in &index.columns {
                def.columns[usize::from(c)].not_null = true;
            }
        }
        def.indexes.push(index.clone());
        let types = Self::column_types(&def);
        let built = Index::new(index.clone(), &types);
        let mut current: Vec<(IndexKey, RowId)> = Vec::new();
        let mut error = None;
        self.rows.for_each_slot(|rowid, slot| {
            for v in &slot.versions {
                if let Some(row) = &v.data
                    && let Some(key) = built.key_of(row)
                {
                    built.insert(key, rowid);
                }
            }
            let latest =
                match me {
                    Some(me) => slot.latest_for_writer(me),
                    None => slot.versions.iter().rev().find(|v| {
                        matches!(v.state(), crate::version::VersionState::Committed { .. })
                    }),
                };
            if let Some(row) = latest.and_then(|v| v.data.as_ref()) {
                match built.key_of(row) {
                    Some(key) => current.push((key, rowid)),
                    None if index.primary => {
                        let col = index
                            .columns
                            .iter()
                            .find(|&&c| row[usize::from(c)].is_null())
                            .map(|&c| def.columns[usize::from(c)].name.clone())
                            .unwrap_or_default();
                        error = Some(IndexBuildError::NullInKey {
                            index: index.name.clone(),
                            column: col,
                        });
                        return false;
                    }
                    None => {}
                }
            }
            true
        });
        if let Some(e) = error {
            return Err(e);
        }
        if index.unique {
            current.sort();
            for pair in current.windows(2) {
                if pair[0].0 == pair[1].0 {
                    return Err(IndexBuildError::Duplicate {
                        index: index.name.clone(),
                        key: format!("{:?}", pair[0].0),
                    });
                }
            }
        }
        let mut indexes = self.indexes.clone();
        indexes.push(Arc::new(built));
        Ok(Table {
            def: Arc::new(def),
            rows: self.rows.clone(),
            indexes,
            locks: self.locks.clone(),
            sequence: self.sequence.clone(),
        })
    }

    /// Adds index entries for `row` stored at `rowid` in every index (used by redo and loads,
    /// where no uniqueness check is needed because the primary already made it).
    pub fn index_row(&self, rowid: RowId, row: &Row) {
        for idx in &self.indexes {
            if let Some(key) = idx.key_of(row) {
                idx.insert(key, rowid);
            }
        }
    }

    /// Removes index entries of `removed` row images that no remaining version of `rowid`
    /// carries any more.
    pub fn unindex_removed(&self, rowid: RowId, removed: &[Row]) {
        if removed.is_empty() || self.indexes.is_empty() {
            return;
        }
        let remaining: Vec<Row> = self
            .rows
            .with_slot(rowid, |s| {
                s.versions.iter().filter_map(|v| v.data.clone()).collect()
            })
            .unwrap_or_default();
        for idx in &self.indexes {
            for old in removed {
                let Some(key) = idx.key_of(old) else { continue };
                let still_used = remaining
                    .iter()
                    .any(|r| idx.key_of(r).as_ref() == Some(&key));
                if !still_used {
                    idx.remove(&key, rowid);
                }
            }
        }
    }
}
