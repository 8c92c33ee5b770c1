//! Row version chains and the transaction state they point to.
//!
//! Each row slot holds its committed versions, newest last, each stamped with the LSN at which
//! its transaction's commit record ends (`commit_lsn`) and that transaction's
//! `synchronous_commit` level. A writer first places a *pending* version that points to its
//! transaction (`owner`); only the writer sees it. When the writer's commit record is inserted
//! into the WAL, the transaction's shared state records the commit LSN (inside the WAL insert
//! lock, before the record's bytes can reach disk), so from that instant every pending version
//! of the transaction resolves to "committed at L" for readers, without touching the rows.
//! After the commit is acknowledged the writer *finalizes* its versions (copies L and the level
//! into them, drops the owner pointer), which only saves later readers one indirection.
//!
//! Row locks: a slot's `lock_owner` names the transaction holding the row lock. The lock is
//! free when there is no owner or the owner has *finished* (acknowledged or aborted); a
//! finished owner's pointer is cleared lazily. Waiting for a lock is waiting for the owner to
//! finish (`TxnShared::finished`), which the txn crate does asynchronously with deadlock
//! detection. Locks are held until the commit is acknowledged (DESIGN.md decision 5, first
//! version).
//!
//! Invariants:
//! - Versions in a chain are in commit order: a version is only added by the row lock holder,
//!   and the previous holder's versions were committed or aborted before it finished.
//! - At most one pending version per slot, and only by the current lock holder.
//! - `TxnShared::state` moves InProgress → Committed(L) or InProgress → Aborted, once.
//! - `finished` is set after the state is final; nothing is set after `finished`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use base::{Row, SyncCommitLevel};
use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::sync::Notify;

use crate::visibility::Snapshot;

/// Marker for "not committed yet" in `Version::commit_lsn` and `TxnShared::state`.
const IN_PROGRESS: u64 = 0;
const ABORTED: u64 = u64::MAX;

/// The state of one transaction that its versions, row locks and waiters share.
#[derive(Debug)]
pub struct TxnShared {
    pub xid: u64,
    /// `IN_PROGRESS`, `ABORTED`, or the end LSN of the commit record.
    state: AtomicU64,
    /// The `synchronous_commit` level the commit was made under (meaningful once committed).
    level: AtomicU8,
    finished: AtomicBool,
    finished_notify: Notify,
    /// The transaction this one is waiting for (a row lock or DDL lock), for deadlock
    /// detection. Written only by this transaction; read by others under the txn crate's
    /// deadlock-detection mutex.
    pub waiting_for: Mutex<Option<Arc<TxnShared>>>,
}

/// What a transaction's state means to a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    InProgress,
    Committed { lsn: u64, level: u8 },
    Aborted,
}

impl TxnShared {
    pub fn new(xid: u64) -> Arc<TxnShared> {
        Arc::new(TxnShared {
            xid,
            state: AtomicU64::new(IN_PROGRESS),
            level: AtomicU8::new(SyncCommitLevel::On as u8),
            finished: AtomicBool::new(false),
            finished_notify: Notify::new(),
            waiting_for: Mutex::new(None),
        })
    }

    pub fn state(&self) -> TxnState {
        match self.state.load(Ordering::Acquire) {
            IN_PROGRESS => TxnState::InProgress,
            ABORTED => TxnState::Aborted,
            lsn => TxnState::Committed {
                lsn,
                level: self.level.load(Ordering::Relaxed),
            },
        }
    }

    /// Records the commit. Called inside the WAL insert lock, before the commit record can be
    /// written out, so any reader whose watermark covers `lsn` also observes this store.
    pub fn set_committed(&self, lsn: u64, level: SyncCommitLevel) {
        debug_assert!(lsn != IN_PROGRESS && lsn != ABORTED);
        self.level.store(level as u8, Ordering::Relaxed);
        let prev = self.state.swap(lsn, Ordering::Release);
        assert_eq!(
            prev, IN_PROGRESS,
            "transaction {} committed twice",
            self.xid
        );
    }

    pub fn set_aborted(&self) {
        let prev = self.state.swap(ABORTED, Ordering::Release);
        assert_eq!(prev, IN_PROGRESS, "transaction {} ended twice", self.xid);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Marks the transaction finished (its locks are released) and wakes every waiter.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.finished_notify.notify_waiters();
    }

    /// Waits until the transaction is finished.
    pub async fn wait_finished(&self) {
        loop {
            let notified = self.finished_notify.notified();
            tokio::pin!(notified);
            // Register interest before checking, so a finish between the check and the await
            // is not missed.
            notified.as_mut().enable();
            if self.is_finished() {
                return;
            }
            notified.await;
        }
    }
}

/// When a version (or catalog entry) was committed, or who is still writing it.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// End LSN of the commit record, or `IN_PROGRESS` while `owner` decides.
    commit_lsn: u64,
    level: u8,
    owner: Option<Arc<TxnShared>>,
}

/// How a stamped object looks at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionState {
    /// Written by a transaction that has not committed (possibly the reader's own).
    Pending {
        xid: u64,
    },
    Committed {
        lsn: u64,
        level: u8,
    },
    /// Written by an aborted transaction: as if it did not exist.
    Dead,
}

impl Stamp {
    pub fn committed(commit_lsn: u64, level: u8) -> Stamp {
        Stamp {
            commit_lsn,
            level,
            owner: None,
        }
    }

    pub fn pending(owner: &Arc<TxnShared>) -> Stamp {
        Stamp {
            commit_lsn: IN_PROGRESS,
            level: 0,
            owner: Some(owner.clone()),
        }
    }

    pub fn state(&self) -> VersionState {
        match &self.owner {
            None => VersionState::Committed {
                lsn: self.commit_lsn,
                level: self.level,
            },
            Some(owner) => match owner.state() {
                TxnState::InProgress => VersionState::Pending { xid: owner.xid },
                TxnState::Committed { lsn, level } => VersionState::Committed { lsn, level },
                TxnState::Aborted => VersionState::Dead,
            },
        }
    }

    pub fn is_owned_by(&self, txn: &Arc<TxnShared>) -> bool {
        self.owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, txn))
    }

    pub fn owner(&self) -> Option<Arc<TxnShared>> {
        self.owner.clone()
    }

    pub fn is_finalized(&self) -> bool {
        self.owner.is_none()
    }

    /// Commit LSN if finalized.
    pub fn finalized_lsn(&self) -> Option<u64> {
        self.owner.is_none().then_some(self.commit_lsn)
    }

    /// Copies the owner's commit into the stamp and drops the owner pointer.
    pub fn finalize(&mut self, lsn: u64, level: u8) {
        self.commit_lsn = lsn;
        self.level = level;
        self.owner = None;
    }

    /// Whether `snapshot` sees this object (its own pending writes included).
    pub fn visible_to(&self, snapshot: &Snapshot) -> bool {
        match self.state() {
            VersionState::Committed { lsn, level } => snapshot.sees(lsn, level),
            VersionState::Pending { xid } => xid == snapshot.xid && xid != 0,
            VersionState::Dead => false,
        }
    }
}

/// One version of a row.
#[derive(Clone, Debug)]
pub struct Version {
    pub stamp: Stamp,
    /// `None` marks a deletion.
    pub data: Option<Row>,
}

impl Version {
    pub fn committed(commit_lsn: u64, level: u8, data: Option<Row>) -> Version {
        Version {
            stamp: Stamp::committed(commit_lsn, level),
            data,
        }
    }

    pub fn pending(owner: &Arc<TxnShared>, data: Option<Row>) -> Version {
        Version {
            stamp: Stamp::pending(owner),
            data,
        }
    }

    pub fn state(&self) -> VersionState {
        self.stamp.state()
    }

    pub fn is_owned_by(&self, txn: &Arc<TxnShared>) -> bool {
        self.stamp.is_owned_by(txn)
    }

    pub fn visible_to(&self, snapshot: &Snapshot) -> bool {
        self.stamp.visible_to(snapshot)
    }
}

/// The state of one row slot, behind the slot's mutex.
#[derive(Debug, Default)]
pub struct SlotState {
    pub lock_owner: Option<Arc<TxnShared>>,
    /// Oldest first, newest last.
    pub versions: SmallVec<[Version; 1]>,
}

/// Result of trying to take a row lock without waiting.
#[derive(Debug)]
pub enum LockAttempt {
    Acquired,
    /// Held by this other, unfinished transaction.
    Busy(Arc<TxnShared>),
}

impl SlotState {
    /// The row as `snapshot` sees it: `None` if there is no visible version or the visible
    /// version is a deletion.
    pub fn visible(&self, snapshot: &Snapshot) -> Option<&Row> {
        for v in self.versions.iter().rev() {
            if v.visible_to(snapshot) {
                return v.data.as_ref();
            }
        }
        None
    }

    /// The newest version that is committed or written by `me` (ignoring other transactions'
    /// uncommitted and aborted versions): what a writer holding the row lock builds on.
    pub fn latest_for_writer(&self, me: &Arc<TxnShared>) -> Option<&Version> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.is_owned_by(me) || matches!(v.state(), VersionState::Committed { .. }))
    }

    pub fn try_lock(&mut self, me: &Arc<TxnShared>) -> LockAttempt {
        match &self.lock_owner {
            Some(owner) if !Arc::ptr_eq(owner, me) && !owner.is_finished() => {
                LockAttempt::Busy(owner.clone())
            }
            _ => {
                self.lock_owner = Some(me.clone());
                LockAttempt::Acquired
            }
        }
    }

    /// The unfinished transaction holding the row lock, other than `me`.
    pub fn lock_holder_other_than(&self, me: &Arc<TxnShared>) -> Option<Arc<TxnShared>> {
        match &self.lock_owner {
            Some(owner) if !Arc::ptr_eq(owner, me) && !owner.is_finished() => Some(owner.clone()),
            _ => None,
        }
    }

    /// Adds or replaces `me`'s pending version. The caller holds the row lock. Returns
    /// whether this is `me`'s first write to the slot.
    pub fn write_pending(&mut self, me: &Arc<TxnShared>, data: Option<Row>) -> bool {
        if let Some(last) = self.versions.last_mut()
            && last.is_owned_by(me)
        {
            last.data = data;
            return false;
        }
        self.versions.push(Version::pending(me, data));
        true
    }

    /// `me`'s pending version's data, if the slot has one (`Some(None)`: a pending deletion):
    /// what a savepoint's undo entry remembers before `me` writes the slot again.
    pub fn own_pending(&self, me: &Arc<TxnShared>) -> Option<Option<Row>> {
        self.versions
            .last()
            .filter(|v| v.is_owned_by(me))
            .map(|v| v.data.clone())
    }

    /// Puts `me`'s pending version back as `own_pending` reported it before a later write
    /// (ROLLBACK TO SAVEPOINT): `None` removes it, `Some(data)` restores its data. The row
    /// lock stays with `me`. Returns the data the undone write had left (for index cleanup).
    pub fn restore_pending(
        &mut self,
        me: &Arc<TxnShared>,
        prior: Option<Option<Row>>,
    ) -> Option<Row> {
        let mine = self.versions.last().is_some_and(|v| v.is_owned_by(me));
        match (prior, mine) {
            (None, true) => self.versions.pop().and_then(|v| v.data),
            (None, false) => None,
            (Some(data), true) => match self.versions.last_mut() {
                Some(last) => std::mem::replace(&mut last.data, data),
                None => None,
            },
            (Some(data), false) => {
                self.versions.push(Version::pending(me, data));
                None
            }
        }
    }

    /// After `me` committed at `lsn`: stamps its version and releases its lock. Returns the
    /// data of versions pruned (older than the newest version every snapshot sees), so the
    /// caller can drop index entries no remaining version needs.
    pub fn finalize(
        &mut self,
        me: &Arc<TxnShared>,
        lsn: u64,
        level: u8,
        horizon: u64,
    ) -> SmallVec<[Row; 1]> {
        for v in self.versions.iter_mut() {
            if v.is_owned_by(me) {
                v.stamp.finalize(lsn, level);
            }
        }
        if self.lock_owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, me)) {
            self.lock_owner = None;
        }
        self.prune(horizon)
    }

    /// After `me` aborted: removes its pending version and releases its lock. Returns the
    /// removed row data (for index cleanup).
    pub fn rollback(&mut self, me: &Arc<TxnShared>) -> Option<Row> {
        let mut removed = None;
        if let Some(pos) = self.versions.iter().position(|v| v.is_owned_by(me)) {
            removed = self.versions.remove(pos).data;
        }
        if self.lock_owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, me)) {
            self.lock_owner = None;
        }
        removed
    }

    /// Removes versions no snapshot can need: every version older than the newest finalized
    /// version at or below `horizon`, and dead versions. A lone deletion at or below the
    /// horizon is removed too, leaving the slot empty.
    pub fn prune(&mut self, horizon: u64) -> SmallVec<[Row; 1]> {
        let mut removed: SmallVec<[Row; 1]> = SmallVec::new();
        let settled = |v: &Version| v.stamp.finalized_lsn().is_some_and(|l| l <= horizon);
        if self.versions.len() == 1 {
            if settled(&self.versions[0]) && self.versions[0].data.is_none() {
                self.versions.clear();
            }
            return removed;
        }
        let keep_from = self.versions.iter().rposition(settled);
        if let Some(k) = keep_from
            && k > 0
        {
            for v in self.versions.drain(..k) {
                if let Some(d) = v.data {
                    removed.push(d);
                }
            }
        }
        let before = self.versions.len();
        self.versions
            .retain(|v| !matches!(v.state(), VersionState::Dead));
        debug_assert!(self.versions.len() <= before);
        if self.versions.len() == 1 && settled(&self.versions[0]) && self.versions[0].data.is_none()
        {
            self.versions.clear();
        }
        removed
    }

    /// The versions a checkpoint at `lsn` writes for this slot, oldest first: the newest
    /// version committed at or below `lsn` and, while that one is not `settled` (after a
    /// restart it stays hidden until a synchronous standby confirms it), older ones back to
    /// the newest settled one, so a reader after the restart still finds the version it may
    /// see. A deletion with nothing older is the same as no row and is left out; an empty
    /// result means "no row".
    pub fn committed_chain_at(
        &self,
        lsn: u64,
        settled: impl Fn(u64, u8) -> bool,
    ) -> SmallVec<[(u64, u8, Option<&Row>); 1]> {
        let mut chain: SmallVec<[(u64, u8, Option<&Row>); 1]> = SmallVec::new();
        for v in self.versions.iter().rev() {
            if let VersionState::Committed { lsn: l, level } = v.state()
                && l <= lsn
            {
                chain.push((l, level, v.data.as_ref()));
                if settled(l, level) {
                    break;
                }
            }
        }
        while chain.last().is_some_and(|(_, _, d)| d.is_none()) {
            chain.pop();
        }
        chain.reverse();
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::Value;

    fn row(v: i32) -> Row {
        Arc::from(vec![Value::Int4(v)])
    }

    fn snap(w: u64, xid: u64) -> Snapshot {
        Snapshot {
            watermark: [w; 5],
            xid,
        }
    }

    #[test]
    fn pending_versions_are_private_until_committed_and_covered() {
        let t = TxnShared::new(7);
        let mut s = SlotState::default();
        s.versions.push(Version::committed(100, 3, Some(row(1))));
        assert!(matches!(s.try_lock(&t), LockAttempt::Acquired));
        s.write_pending(&t, Some(row(2)));
        assert_eq!(s.visible(&snap(1000, 0)), Some(&row(1)));
        assert_eq!(s.visible(&snap(1000, 7)), Some(&row(2)));
        t.set_committed(200, SyncCommitLevel::On);
        assert_eq!(s.visible(&snap(199, 0)), Some(&row(1)));
        assert_eq!(s.visible(&snap(200, 0)), Some(&row(2)));
        let pruned = s.finalize(&t, 200, 3, 150);
        assert!(pruned.is_empty());
        assert_eq!(s.versions.len(), 2);
        let pruned = s.prune(200);
        assert_eq!(pruned.len(), 1);
        assert_eq!(s.versions.len(), 1);
        assert!(s.lock_owner.is_none());
    }

    #[test]
    fn lock_is_free_once_owner_finished() {
        let a = TxnShared::new(1);
        let b = TxnShared::new(2);
        let mut s = SlotState::default();
        assert!(matches!(s.try_lock(&a), LockAttempt::Acquired));
        assert!(matches!(s.try_lock(&b), LockAttempt::Busy(_)));
        a.set_aborted();
        a.finish();
        assert!(matches!(s.try_lock(&b), LockAttempt::Acquired));
    }

    #[test]
    fn aborted_versions_are_invisible_and_removed() {
        let t = TxnShared::new(3);
        let mut s = SlotState::default();
        s.write_pending(&t, Some(row(5)));
        t.set_aborted();
        assert_eq!(s.visible(&snap(u64::MAX - 1, 0)), None);
        assert_eq!(s.rollback(&t), Some(row(5)));
        assert!(s.versions.is_empty());
    }

    #[test]
    fn deletion_below_horizon_empties_slot() {
        let mut s = SlotState::default();
        s.versions.push(Version::committed(100, 3, Some(row(1))));
        s.versions.push(Version::committed(200, 3, None));
        let removed = s.prune(250);
        assert_eq!(removed.len(), 1);
        assert!(s.versions.is_empty());
    }

    #[test]
    fn settled_chain_is_the_newest_version_at_or_below() {
        let mut s = SlotState::default();
        s.versions.push(Version::committed(100, 3, Some(row(1))));
        s.versions.push(Version::committed(200, 3, Some(row(2))));
        // Everything settled: the chain is the newest version at or below the LSN alone.
        let newest = |lsn: u64| {
            let chain = s.committed_chain_at(lsn, |_, _| true);
            assert!(chain.len() <= 1);
            chain.first().map(|x| x.0)
        };
        assert_eq!(newest(150), Some(100));
        assert_eq!(newest(200), Some(200));
        assert_eq!(newest(50), None);
    }

    #[test]
    fn committed_chain_reaches_back_to_a_settled_version() {
        let mut s = SlotState::default();
        s.versions.push(Version::committed(100, 3, Some(row(1))));
        s.versions.push(Version::committed(200, 3, Some(row(2))));
        s.versions.push(Version::committed(300, 3, None));
        s.versions.push(Version::committed(400, 3, Some(row(4))));
        let upto = |k: u64| move |l: u64, _level: u8| l <= k;
        let lsns = |c: SmallVec<[(u64, u8, Option<&Row>); 1]>| -> Vec<u64> {
            c.iter().map(|x| x.0).collect()
        };
        // Everything confirmed: only the newest version at or below the checkpoint.
        assert_eq!(
            lsns(s.committed_chain_at(350, upto(350))),
            Vec::<u64>::new()
        );
        assert_eq!(lsns(s.committed_chain_at(450, upto(450))), vec![400]);
        // Unconfirmed newer versions keep older ones, deletions included.
        assert_eq!(
            lsns(s.committed_chain_at(450, upto(250))),
            vec![200, 300, 400]
        );
        assert_eq!(
            lsns(s.committed_chain_at(350, upto(150))),
            vec![100, 200, 300]
        );
        // A deletion with nothing older is no row.
        let mut d = SlotState::default();
        d.versions.push(Version::committed(100, 3, None));
        d.versions.push(Version::committed(200, 3, Some(row(2))));
        assert_eq!(lsns(d.committed_chain_at(250, upto(50))), vec![200]);
        // A version committed at a level that needs no standby is settled at once.
        let local = |_l: u64, level: u8| level < 2;
        let mut m = SlotState::default();
        m.versions.push(Version::committed(100, 3, Some(row(1))));
        m.versions.push(Version::committed(200, 1, Some(row(2))));
        assert_eq!(lsns(m.committed_chain_at(250, local)), vec![200]);
    }

    #[tokio::test]
    async fn wait_finished_wakes() {
        let t = TxnShared::new(9);
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.wait_finished().await });
        tokio::task::yield_now().await;
        t.set_aborted();
        t.finish();
        h.await.expect("join");
    }
}
