//! Transaction semantics over the in-memory log: visibility, locks, unique keys, DDL, rollback.

use std::sync::Arc;
use std::time::Duration;

use base::catalog::ColumnDef;
use base::{DataType, Row, SyncCommitLevel, Value};
use txn::testing::memory_manager;
use txn::{CommitOutcome, Interrupt, NewIndex, Transaction, TxnError, TxnManager, TxnSettings};

fn settings() -> TxnSettings {
    TxnSettings { lock_timeout: None }
}

fn begin(mgr: &Arc<TxnManager>) -> Transaction {
    let slot = Arc::new(mgr.snapshots.register());
    Transaction::begin(mgr, slot, Arc::new(Interrupt::new()), settings())
}

fn row(vals: &[i32]) -> Row {
    Arc::from(vals.iter().map(|v| Value::Int4(*v)).collect::<Vec<_>>())
}

async fn make_table(mgr: &Arc<TxnManager>) {
    let mut t = begin(mgr);
    t.create_table(
        "t",
        vec![
            ColumnDef {
                name: "k".into(),
                data_type: DataType::Int4,
                not_null: false,
                default: None,
            },
            ColumnDef {
                name: "v".into(),
                data_type: DataType::Int4,
                not_null: false,
                default: None,
            },
        ],
        vec![NewIndex {
            name: "t_pkey".into(),
            columns: vec![0],
            unique: true,
            primary: true,
        }],
        false,
    )
    .await
    .expect("create");
    assert!(matches!(
        t.commit(SyncCommitLevel::On).await,
        Ok(CommitOutcome::Committed { .. })
    ));
}

fn count(mgr: &Arc<TxnManager>) -> usize {
    let mut t = begin(mgr);
    let snap = t.new_statement();
    let table = mgr.catalog.lookup("t", &snap).expect("table");
    let mut n = 0;
    table.rows.scan(&snap, |_, _| {
        n += 1;
        true
    });
    t.rollback();
    n
}

#[tokio::test]
async fn committed_rows_become_visible_and_rollback_leaves_nothing() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut a = begin(&mgr);
    let table = a.open_table("t").await.expect("open").expect("exists");
    a.insert(&table, row(&[1, 10])).await.expect("insert");
    assert_eq!(count(&mgr), 0, "uncommitted insert is private");
    a.commit(SyncCommitLevel::On).await.expect("commit");
    assert_eq!(count(&mgr), 1);

    let mut b = begin(&mgr);
    let table = b.open_table("t").await.expect("open").expect("exists");
    b.insert(&table, row(&[2, 20])).await.expect("insert");
    b.rollback();
    assert_eq!(count(&mgr), 1);
    let pk = &table.indexes[0];
    assert_eq!(pk.len(), 1, "rolled-back key is gone from the index");
}

#[tokio::test]
async fn unique_violation_is_reported() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut a = begin(&mgr);
    let table = a.open_table("t").await.expect("open").expect("exists");
    a.insert(&table, row(&[1, 10])).await.expect("insert");
    a.commit(SyncCommitLevel::On).await.expect("commit");
    let mut b = begin(&mgr);
    let table = b.open_table("t").await.expect("open").expect("exists");
    match b.insert(&table, row(&[1, 11])).await {
        Err(TxnError::UniqueViolation {
            detail, constraint, ..
        }) => {
            assert_eq!(constraint, "t_pkey");
            assert_eq!(detail, "Key (k)=(1) already exists.");
        }
        other => panic!("expected unique violation, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_insert_of_same_key_waits_then_fails() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut a = begin(&mgr);
    let table = a.open_table("t").await.expect("open").expect("exists");
    a.insert(&table, row(&[7, 1])).await.expect("insert");
    let mgr2 = mgr.clone();
    let waiter = tokio::spawn(async move {
        let mut b = begin(&mgr2);
        let table = b.open_table("t").await.expect("open").expect("exists");
        b.insert(&table, row(&[7, 2])).await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "second inserter waits for the first");
    a.commit(SyncCommitLevel::On).await.expect("commit");
    let r = waiter.await.expect("join");
    assert!(matches!(r, Err(TxnError::UniqueViolation { .. })));
}

#[tokio::test]
async fn updates_serialize_on_row_lock_and_deadlocks_are_detected() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut setup = begin(&mgr);
    let table = setup.open_table("t").await.expect("open").expect("exists");
    let r1 = setup.insert(&table, row(&[1, 0])).await.expect("insert");
    let r2 = setup.insert(&table, row(&[2, 0])).await.expect("insert");
    setup.commit(SyncCommitLevel::On).await.expect("commit");

    let mut a = begin(&mgr);
    let ta = a.open_table("t").await.expect("open").expect("exists");
    let old = a.lock_row(&ta, r1).await.expect("lock").expect("row");
    a.update(&ta, r1, &old, row(&[1, 1])).await.expect("update");

    let mgr2 = mgr.clone();
    let b = tokio::spawn(async move {
        let mut b = begin(&mgr2);
        let tb = b.open_table("t").await.expect("open").expect("exists");
        let old = b.lock_row(&tb, r2).await.expect("lock").expect("row");
        b.update(&tb, r2, &old, row(&[2, 1])).await.expect("update");
        // Now wait for r1, held by a.
        let res = b.lock_row(&tb, r1).await;
        (b, res)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // a waits for r2, held by b, which waits for r1: a deadlock, detected by a.
    match a.lock_row(&ta, r2).await {
        Err(TxnError::Deadlock { .. }) => {}
        other => panic!("expected deadlock, got {other:?}"),
    }
    a.rollback();
    let (b, res) = b.await.expect("join");
    let row1 = res
        .expect("b gets the lock after a rolled back")
        .expect("row");
    assert_eq!(row1[1], Value::Int4(0), "a's update was rolled back");
    b.commit(SyncCommitLevel::On).await.expect("commit");
}

#[tokio::test]
async fn lock_timeout_and_cancel_end_waits() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut setup = begin(&mgr);
    let table = setup.open_table("t").await.expect("open").expect("exists");
    let r1 = setup.insert(&table, row(&[1, 0])).await.expect("insert");
    setup.commit(SyncCommitLevel::On).await.expect("commit");

    let mut a = begin(&mgr);
    let ta = a.open_table("t").await.expect("open").expect("exists");
    a.lock_row(&ta, r1).await.expect("lock");

    let slot = Arc::new(mgr.snapshots.register());
    let mut b = Transaction::begin(
        &mgr,
        slot,
        Arc::new(Interrupt::new()),
        TxnSettings {
            lock_timeout: Some(Duration::from_millis(30)),
        },
    );
    let tb = b.open_table("t").await.expect("open").expect("exists");
    assert_eq!(b.lock_row(&tb, r1).await, Err(TxnError::LockTimeout));

    let interrupt = Arc::new(Interrupt::new());
    let slot = Arc::new(mgr.snapshots.register());
    let mut c = Transaction::begin(&mgr, slot, interrupt.clone(), settings());
    let tc = c.open_table("t").await.expect("open").expect("exists");
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        interrupt.cancel();
    });
    assert_eq!(c.lock_row(&tc, r1).await, Err(TxnError::Canceled));
    canceller.await.expect("join");
    a.rollback();
}

#[tokio::test]
async fn truncate_and_drop_are_transactional() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut a = begin(&mgr);
    let table = a.open_table("t").await.expect("open").expect("exists");
    a.insert(&table, row(&[1, 0])).await.expect("insert");
    a.commit(SyncCommitLevel::On).await.expect("commit");

    let mut b = begin(&mgr);
    b.truncate("t").await.expect("truncate");
    b.new_statement();
    let fresh = b.open_table("t").await.expect("open").expect("exists");
    b.insert(&fresh, row(&[5, 5])).await.expect("insert");
    assert_eq!(count(&mgr), 1, "others still see the old contents");
    b.rollback();
    assert_eq!(count(&mgr), 1, "rolled-back truncate leaves the rows");

    let mut c = begin(&mgr);
    assert!(c.drop_table("t", false).await.expect("drop"));
    c.commit(SyncCommitLevel::On).await.expect("commit");
    let mut d = begin(&mgr);
    assert!(d.open_table("t").await.expect("open").is_none());
    assert!(!d.drop_table("t", true).await.expect("drop if exists"));
}

#[tokio::test]
async fn readers_wait_for_ddl_holders() {
    let (mgr, _log) = memory_manager();
    make_table(&mgr).await;
    let mut a = begin(&mgr);
    a.truncate("t").await.expect("truncate");
    let mgr2 = mgr.clone();
    let reader = tokio::spawn(async move {
        let mut b = begin(&mgr2);
        let t = b.open_table("t").await.expect("open");
        t.is_some()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !reader.is_finished(),
        "reader waits for the DDL transaction"
    );
    a.commit(SyncCommitLevel::On).await.expect("commit");
    assert!(reader.await.expect("join"));
}

#[tokio::test]
async fn primary_key_build_rejects_duplicates() {
    let (mgr, _log) = memory_manager();
    let mut t = begin(&mgr);
    t.create_table(
        "u",
        vec![ColumnDef {
            name: "a".into(),
            data_type: DataType::Int8,
            not_null: false,
            default: None,
        }],
        vec![],
        false,
    )
    .await
    .expect("create");
    t.new_statement();
    let u = t.open_table("u").await.expect("open").expect("exists");
    for v in [1i64, 2, 2] {
        t.insert(&u, Arc::from(vec![Value::Int8(v)]))
            .await
            .expect("insert");
    }
    let err = t
        .create_index(
            "u",
            NewIndex {
                name: "u_pkey".into(),
                columns: vec![0],
                unique: true,
                primary: true,
            },
            false,
        )
        .await;
    assert!(matches!(err, Err(TxnError::IndexBuild { .. })), "{err:?}");
}
