//! Secondary and primary-key indexes: ordered maps from key to row id.
//!
//! An index maps `(key, rowid)` pairs in a B-tree, for unique and non-unique indexes alike, so
//! point lookups and range scans are one `range` call. Entries may be *stale*: an update that
//! changes a key adds the new entry and leaves the old one until no version of the row carries
//! the old key (pruning or rollback removes it). Readers therefore always re-check the key on
//! the row version they see, as PostgreSQL re-checks heap tuples found through an index.
//!
//! Rows whose key contains a NULL are not indexed: `=` never matches NULL, and unique indexes
//! allow any number of NULL keys, as in PostgreSQL.
//!
//! Keys of single-column integer indexes are stored as plain `i64` (`IndexKey::Int`): smaller
//! entries and cheaper comparisons for the commonest key (pgbench's `aid`). One index never
//! mixes the two key forms.

use std::collections::BTreeSet;
use std::ops::Bound;

use base::catalog::IndexDef;
use base::{DataType, Value};
use parking_lot::RwLock;

use crate::rowstore::RowId;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexKey {
    Int(i64),
    Values(Box<[Value]>),
}

#[derive(Debug)]
pub struct Index {
    pub def: IndexDef,
    int_key: bool,
    entries: RwLock<BTreeSet<(IndexKey, RowId)>>,
}

impl Index {
    pub fn new(def: IndexDef, column_types: &[DataType]) -> Index {
        let int_key = def.columns.len() == 1
            && column_types
                .get(usize::from(def.columns[0]))
                .is_some_and(|t| t.is_integer());
        Index {
            def,
            int_key,
            entries: RwLock::new(BTreeSet::new()),
        }
    }

    /// The key of `row` in this index, `None` if a key column is NULL.
    pub fn key_of(&self, row: &[Value]) -> Option<IndexKey> {
        let mut vals = Vec::with_capacity(self.def.columns.len());
        for &c in &self.def.columns {
            let v = row.get(usize::from(c))?;
            if v.is_null() {
                return None;
            }
            vals.push(v.clone());
        }
        self.key_from_values(&vals)
    }

    /// A lookup key from values already coerced to the key columns' types.
    pub fn key_from_values(&self, vals: &[Value]) -> Option<IndexKey> {
        if vals.iter().any(Value::is_null) {
            return None;
        }
        if self.int_key {
            return vals.first().and_then(Value::as_i64).map(IndexKey::Int);
        }
        Some(IndexKey::Values(vals.to_vec().into_boxed_slice()))
    }

    pub fn insert(&self, key: IndexKey, rowid: RowId) {
        self.entries.write().insert((key, rowid));
    }

    pub fn remove(&self, key: &IndexKey, rowid: RowId) {
        self.entries.write().remove(&(key.clone(), rowid));
    }

    /// Row ids with exactly `key` (possibly stale: re-check the row).
    pub fn lookup(&self, key: &IndexKey) -> smallvec::SmallVec<[RowId; 2]> {
        let entries = self.entries.read();
        entries
            .range((
                Bound::Included((key.clone(), RowId::MIN)),
                Bound::Included((key.clone(), RowId::MAX)),
            ))
            .map(|(_, id)| *id)
            .collect()
    }

    /// Runs `f` with the entries locked for writing, for check-then-insert of unique keys.
    pub fn with_write_lock<R>(&self, f: impl FnOnce(&mut IndexWriter<'_>) -> R) -> R {
        let mut guard = self.entries.write();
        let mut w = IndexWriter {
            entries: &mut guard,
        };
        f(&mut w)
    }

    /// Row ids whose key lies in the range, in key order (possibly stale).
    pub fn range(&self, lower: Bound<&IndexKey>, upper: Bound<&IndexKey>) -> Vec<RowId> {
        let lo = match lower {
            Bound::Included(k) => Bound::Included((k.clone(), RowId::MIN)),
            Bound::Excluded(k) => Bound::Excluded((k.clone(), RowId::MAX)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let hi = match upper {
            Bound::Included(k) => Bound::Included((k.clone(), RowId::MAX)),
            Bound::Excluded(k) => Bound::Excluded((k.clone(), RowId::MIN)),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let (
            Bound::Included((a, _)) | Bound::Excluded((a, _)),
            Bound::Included((b, _)) | Bound::Excluded((b, _)),
        ) = (&lo, &hi)
            && a > b
        {
            return Vec::new();
        }
        self.entries
            .read()
            .range((lo, hi))
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Write access to an index's entries while its lock is held.
pub struct IndexWriter<'a> {
    entries: &'a mut BTreeSet<(IndexKey, RowId)>,
}

impl IndexWriter<'_> {
    pub fn lookup(&self, key: &IndexKey) -> smallvec::SmallVec<[RowId; 2]> {
        self.entries
            .range((
                Bound::Included((key.clone(), RowId::MIN)),
                Bound::Included((key.clone(), RowId::MAX)),
            ))
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn insert(&mut self, key: IndexKey, rowid: RowId) {
        self.entries.insert((key, rowid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(types: &[DataType], cols: Vec<u16>) -> Index {
        Index::new(
            IndexDef {
                oid: 1,
                name: "i".into(),
                columns: cols,
                unique: true,
                primary: false,
            },
            types,
        )
    }

    #[test]
    fn int_keys_and_lookup() {
        let i = idx(&[DataType::Int4], vec![0]);
        let k = i.key_of(&[Value::Int4(5)]).expect("key");
        assert_eq!(k, IndexKey::Int(5));
        i.insert(k.clone(), 10);
        i.insert(IndexKey::Int(6), 11);
        assert_eq!(i.lookup(&k).as_slice(), &[10]);
        assert_eq!(
            i.range(Bound::Included(&IndexKey::Int(5)), Bound::Unbounded),
            vec![10, 11]
        );
        assert_eq!(
            i.range(
                Bound::Excluded(&IndexKey::Int(5)),
                Bound::Included(&IndexKey::Int(6))
            ),
            vec![11]
        );
        assert!(i.key_of(&[Value::Null]).is_none());
        i.remove(&k, 10);
        assert!(i.lookup(&k).is_empty());
    }

    #[test]
    fn multi_column_keys() {
        let i = idx(&[DataType::Text, DataType::Int4], vec![1, 0]);
        let k = i.key_of(&[Value::text("a"), Value::Int4(1)]).expect("key");
        assert_eq!(
            k,
            IndexKey::Values(vec![Value::Int4(1), Value::text("a")].into_boxed_slice())
        );
        i.insert(k.clone(), 3);
        assert_eq!(i.lookup(&k).as_slice(), &[3]);
    }
}
