//! The catalog: which table a name means, for whom, and since when.
//!
//! Names map to short chains of entries, stamped like row versions (`version::Stamp`), so DDL
//! follows the same visibility rule as data: a created, dropped or truncated table becomes
//! visible to other sessions when its transaction's commit is acknowledgeable, and never
//! before. The DDL transaction itself sees its pending entries.
//!
//! `by_oid` maps each OID to its newest committed `Table` value. Redo, checkpoints and the
//! committing transaction use it; sessions resolve names through snapshots.
//!
//! Concurrency: one `RwLock` around the maps. Lookups take it shared for a hash probe; DDL
//! takes it exclusively for a moment. Concurrent DDL on the same name is prevented one level
//! up (txn crate's catalog lock), so at most one pending entry exists per name.
//! `generation` increases at every DDL commit or rollback, so cached plans can re-resolve
//! their tables only when something changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use base::catalog::{FIRST_USER_OID, Oid};
use parking_lot::RwLock;
use smallvec::SmallVec;

use crate::table::Table;
use crate::version::{Stamp, TxnShared, VersionState};
use crate::visibility::Snapshot;

#[derive(Debug, Clone)]
struct Entry {
    stamp: Stamp,
    /// `None`: the name was dropped.
    table: Option<Arc<Table>>,
}

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<String, SmallVec<[Entry; 1]>>,
    by_oid: HashMap<Oid, Arc<Table>>,
}

#[derive(Debug)]
pub struct Catalog {
    inner: RwLock<Inner>,
    generation: AtomicU64,
    next_oid: AtomicU32,
    /// Set once any table with a FOREIGN KEY was staged or installed: until then writers
    /// skip looking for referencing tables altogether (never cleared; a stale `true` only
    /// costs a scan that finds nothing).
    foreign_keys: AtomicBool,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            inner: RwLock::default(),
            generation: AtomicU64::new(1),
            next_oid: AtomicU32::new(FIRST_USER_OID),
            foreign_keys: AtomicBool::new(false),
        }
    }
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any table may have a FOREIGN KEY (see the field).
    pub fn may_have_foreign_keys(&self) -> bool {
        self.foreign_keys.load(Ordering::Acquire)
    }

    fn note_foreign_keys(&self, table: Option<&Arc<Table>>) {
        if table.is_some_and(|t| !t.def.foreign_keys.is_empty()) {
            self.foreign_keys.store(true, Ordering::Release);
        }
    }

    /// The table with OID `oid` as `me` sees it for DDL (its own staged tables included):
    /// what a foreign key's checks resolve `ref_table` with.
    pub fn latest_by_oid(&self, oid: Oid, me: Option<&Arc<TxnShared>>) -> Option<Arc<Table>> {
        let inner = self.inner.read();
        inner.by_name.values().find_map(|chain| {
            chain
                .iter()
                .rev()
                .find(|e| {
                    me.is_some_and(|m| e.stamp.is_owned_by(m))
                        || matches!(e.stamp.state(), VersionState::Committed { .. })
                })
                .and_then(|e| e.table.clone())
                .filter(|t| t.oid() == oid)
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn allocate_oid(&self) -> Oid {
        self.next_oid.fetch_add(1, Ordering::AcqRel)
    }

    pub fn next_oid(&self) -> Oid {
        self.next_oid.load(Ordering::Acquire)
    }

    /// Makes sure future OIDs are above `oid` (after redo or a checkpoint load).
    pub fn observe_oid(&self, oid: Oid) {
        self.next_oid
            .fetch_max(oid.saturating_add(1), Ordering::AcqRel);
    }

    /// The table `name` means to `snapshot`.
    pub fn lookup(&self, name: &str, snapshot: &Snapshot) -> Option<Arc<Table>> {
        let inner = self.inner.read();
        let chain = inner.by_name.get(name)?;
        chain
            .iter()
            .rev()
            .find(|e| e.stamp.visible_to(snapshot))
            .and_then(|e| e.table.clone())
    }

    /// The newest committed meaning of `name`, or `me`'s pending one: what DDL builds on.
    pub fn latest(&self, name: &str, me: Option<&Arc<TxnShared>>) -> Option<Arc<Table>> {
        let inner = self.inner.read();
        let chain = inner.by_name.get(name)?;
        chain
            .iter()
            .rev()
            .find(|e| {
                me.is_some_and(|m| e.stamp.is_owned_by(m))
                    || matches!(e.stamp.state(), VersionState::Committed { .. })
            })
            .and_then(|e| e.table.clone())
    }

    /// Whether another, unfinished transaction has a pending entry for `name`.
    pub fn pending_owner(&self, name: &str, me: &Arc<TxnShared>) -> Option<Arc<TxnShared>> {
        let inner = self.inner.read();
        let chain = inner.by_name.get(name)?;
        chain.iter().find_map(|e| match e.stamp.state() {
            VersionState::Pending { .. } if !e.stamp.is_owned_by(me) => {
                e.stamp.owner().filter(|o| !o.is_finished())
            }
            _ => None,
        })
    }

    /// Stages `me`'s new meaning of `name` (`None` = dropped), replacing an earlier staging.
    pub fn stage(&self, name: &str, me: &Arc<TxnShared>, table: Option<Arc<Table>>) {
        self.note_foreign_keys(table.as_ref());
        let mut inner = self.inner.write();
        let chain = inner.by_name.entry(name.to_owned()).or_default();
        if let Some(last) = chain.last_mut()
            && last.stamp.is_owned_by(me)
        {
            last.table = table;
            return;
        }
        chain.push(Entry {
            stamp: Stamp::pending(me),
            table,
        });
    }

    /// `me`'s staged meaning of `name`, if it staged one (`Some(None)`: staged as dropped):
    /// what a savepoint's undo entry remembers before `me` stages `name` again.
    pub fn staged_by(&self, name: &str, me: &Arc<TxnShared>) -> Option<Option<Arc<Table>>> {
        let inner = self.inner.read();
        let last = inner.by_name.get(name)?.last()?;
        last.stamp.is_owned_by(me).then(|| last.table.clone())
    }

    /// Puts `me`'s staging of `name` back as `staged_by` reported it (ROLLBACK TO
    /// SAVEPOINT): `None` forgets it, `Some(table)` stages `table` again.
    pub fn restore_staged(
        &self,
        name: &str,
        me: &Arc<TxnShared>,
        prior: Option<Option<Arc<Table>>>,
    ) {
        match prior {
            None => self.rollback(me, &[name.to_owned()]),
            Some(table) => {
                self.stage(name, me, table);
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// After `me` committed at `lsn`: stamps its entries for `names`, updates `by_oid`, and
    /// prunes entries every snapshot has moved past.
    pub fn finalize(
        &self,
        me: &Arc<TxnShared>,
        names: &[String],
        lsn: u64,
        level: u8,
        horizon: u64,
    ) {
        let mut inner = self.inner.write();
        let Inner { by_name, by_oid } = &mut *inner;
        for name in names {
            let Some(chain) = by_name.get_mut(name) else {
                continue;
            };
            let Some(pos) = chain.iter().position(|e| e.stamp.is_owned_by(me)) else {
                continue;
            };
            let previous = chain[..pos]
                .iter()
                .rev()
                .find(|e| matches!(e.stamp.state(), VersionState::Committed { .. }))
                .and_then(|e| e.table.clone());
            let entry = &mut chain[pos];
            entry.stamp.finalize(lsn, level);
            if let Some(prev) = previous
                && entry.table.as_ref().is_none_or(|t| t.oid() != prev.oid())
            {
                by_oid.remove(&prev.oid());
            }
            if let Some(t) = &entry.table {
                by_oid.insert(t.oid(), t.clone());
            }
            prune(chain, horizon);
            if chain.is_empty() {
                by_name.remove(name);
            }
        }
        drop(inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// After `me` aborted: forgets its entries for `names`.
    pub fn rollback(&self, me: &Arc<TxnShared>, names: &[String]) {
        let mut inner = self.inner.write();
        for name in names {
            if let Some(chain) = inner.by_name.get_mut(name) {
                chain.retain(|e| !e.stamp.is_owned_by(me));
                if chain.is_empty() {
                    inner.by_name.remove(name);
                }
            }
        }
        drop(inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Installs a committed meaning of `name` directly (redo and checkpoint loading).
    pub fn install_committed(&self, name: &str, table: Option<Arc<Table>>, lsn: u64, level: u8) {
        self.note_foreign_keys(table.as_ref());
        let mut inner = self.inner.write();
        let Inner { by_name, by_oid } = &mut *inner;
        let chain = by_name.entry(name.to_owned()).or_default();
        if let Some(prev) = chain.iter().rev().find_map(|e| e.table.clone())
            && table.as_ref().is_none_or(|t| t.oid() != prev.oid())
        {
            by_oid.remove(&prev.oid());
        }
        if let Some(t) = &table {
            by_oid.insert(t.oid(), t.clone());
            self.next_oid
                .fetch_max(t.oid().saturating_add(1), Ordering::AcqRel);
            for idx in &t.def.indexes {
                self.next_oid
                    .fetch_max(idx.oid.saturating_add(1), Ordering::AcqRel);
            }
        }
        chain.push(Entry {
            stamp: Stamp::committed(lsn, level),
            table,
        });
        drop(inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Prunes every name's chain against `horizon` (called from time to time, e.g. by the
    /// checkpointer and during redo, so dropped tables' memory is released).
    pub fn prune_all(&self, horizon: u64) {
        let mut inner = self.inner.write();
        inner.by_name.retain(|_, chain| {
            prune(chain, horizon);
            !chain.is_empty()
        });
    }

    /// The newest committed table for an OID.
    pub fn by_oid(&self, oid: Oid) -> Option<Arc<Table>> {
        self.inner.read().by_oid.get(&oid).cloned()
    }

    /// Every table visible to `snapshot`, sorted by name.
    pub fn tables(&self, snapshot: &Snapshot) -> Vec<Arc<Table>> {
        let inner = self.inner.read();
        let mut out: Vec<Arc<Table>> = inner
            .by_name
            .values()
            .filter_map(|chain| {
                chain
                    .iter()
                    .rev()
                    .find(|e| e.stamp.visible_to(snapshot))
                    .and_then(|e| e.table.clone())
            })
            .collect();
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out
    }

    /// Every table as of commit LSN `lsn` (for a checkpoint at `lsn`): for each name, the
    /// newest entry committed at or below `lsn`, with its commit LSN and level.
    pub fn tables_at(&self, lsn: u64) -> Vec<(Arc<Table>, u64, u8)> {
        let inner = self.inner.read();
        let mut out = Vec::new();
        for chain in inner.by_name.values() {
            for e in chain.iter().rev() {
                if let VersionState::Committed { lsn: l, level } = e.stamp.state()
                    && l <= lsn
                {
                    if let Some(t) = &e.table {
                        out.push((t.clone(), l, level));
                    }
                    break;
                }
            }
        }
        out.sort_by_key(|(t, _, _)| t.oid());
        out
    }
}

/// Drops entries older than the newest finalized entry at or below `horizon`, dead entries,
/// and a lone settled "dropped" entry.
fn prune(chain: &mut SmallVec<[Entry; 1]>, horizon: u64) {
    let settled = |e: &Entry| e.stamp.finalized_lsn().is_some_and(|l| l <= horizon);
    if let Some(k) = chain.iter().rposition(settled)
        && k > 0
    {
        chain.drain(..k);
    }
    chain.retain(|e| !matches!(e.stamp.state(), VersionState::Dead));
    if chain.len() == 1 && settled(&chain[0]) && chain[0].table.is_none() {
        chain.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::SyncCommitLevel;
    use base::catalog::TableDef;

    fn table(oid: u32, name: &str) -> Arc<Table> {
        Arc::new(Table::new(TableDef {
            oid,
            name: name.into(),
            columns: vec![],
            indexes: vec![],
            sequence: None,
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        }))
    }

    fn snap(w: u64, xid: u64) -> Snapshot {
        Snapshot {
            watermark: [w; 5],
            xid,
        }
    }

    #[test]
    fn ddl_is_private_until_committed_and_visible() {
        let c = Catalog::new();
        let t = TxnShared::new(5);
        c.stage("a", &t, Some(table(20000, "a")));
        assert!(c.lookup("a", &snap(1000, 0)).is_none());
        assert!(c.lookup("a", &snap(1000, 5)).is_some());
        t.set_committed(300, SyncCommitLevel::On);
        assert!(c.lookup("a", &snap(299, 0)).is_none());
        assert!(c.lookup("a", &snap(300, 0)).is_some());
        c.finalize(&t, &["a".into()], 300, 3, 0);
        assert!(c.by_oid(20000).is_some());
        assert!(c.lookup("a", &snap(300, 0)).is_some());

        let d = TxnShared::new(6);
        c.stage("a", &d, None);
        assert!(c.lookup("a", &snap(1000, 6)).is_none());
        assert!(c.lookup("a", &snap(1000, 0)).is_some());
        d.set_committed(400, SyncCommitLevel::On);
        c.finalize(&d, &["a".into()], 400, 3, 500);
        assert!(c.by_oid(20000).is_none());
        assert!(c.lookup("a", &snap(1000, 0)).is_none());
        assert!(c.tables(&snap(1000, 0)).is_empty());
    }

    #[test]
    fn rollback_forgets() {
        let c = Catalog::new();
        let t = TxnShared::new(5);
        c.stage("a", &t, Some(table(20000, "a")));
        t.set_aborted();
        c.rollback(&t, &["a".into()]);
        assert!(c.latest("a", None).is_none());
        assert!(c.by_oid(20000).is_none());
    }
}
