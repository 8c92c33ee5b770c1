//! Savepoints: ROLLBACK TO puts rows, index entries and catalog names back exactly as they
//! were at the mark, and the WAL a transaction leaves (cut back, or compensated after a
//! spill) replays to the same rows the primary committed.

use std::sync::Arc;

use base::{DataType, SyncCommitLevel, Value};
use storage::{Catalog, Snapshot};
use txn::testing::{begin, col, contents, memory_manager, replay};
use txn::{NewIndex, Transaction, TxnError, TxnManager};
use wal::record::RecordKind;

fn row(k: i32, v: &str) -> base::Row {
    Arc::from(vec![Value::Int4(k), Value::text(v)])
}

/// Creates table `a (k int primary key, v text unique)` and commits rows 0..n.
async fn setup(mgr: &Arc<TxnManager>, n: i32) {
    let mut t = begin(mgr);
    t.create_table(
        "a",
        vec![col("k", DataType::Int4), col("v", DataType::Text)],
        vec![
            NewIndex {
                name: "a_pkey".into(),
                columns: vec![0],
                unique: true,
                primary: true,
            },
            NewIndex {
                name: "a_v_key".into(),
                columns: vec![1],
                unique: true,
                primary: false,
            },
        ],
        false,
    )
    .await
    .expect("create");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let mut t = begin(mgr);
    let a = t.open_table("a").await.expect("open").expect("a");
    for k in 0..n {
        t.insert(&a, row(k, &format!("v{k}")))
            .await
            .expect("insert");
    }
    t.commit(SyncCommitLevel::On).await.expect("commit");
}

/// The rows `t` sees in table `a` (its own writes included), sorted by key.
async fn visible(t: &mut Transaction) -> Vec<(i32, Value)> {
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    let mut out = Vec::new();
    a.rows.scan(t.snapshot(), |_, r| {
        if let Value::Int4(k) = &r[0] {
            out.push((*k, r[1].clone()));
        }
        true
    });
    out.sort();
    out
}

/// Whether the unique index `a_v_key` of the committed table finds `v`.
fn v_key_taken(catalog: &Catalog, v: &str) -> bool {
    let a = catalog.lookup("a", &Snapshot::ALL).expect("a");
    let idx = a
        .indexes
        .iter()
        .find(|i| i.def.name == "a_v_key")
        .expect("index");
    let key = idx.key_from_values(&[Value::text(v)]).expect("key");
    idx.lookup(&key).into_iter().any(|rowid| {
        a.rows
            .with_slot(rowid, |s| {
                s.visible(&Snapshot::ALL)
                    .is_some_and(|r| r[1] == Value::text(v))
            })
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn rollback_to_restores_rows_and_frees_their_keys() {
    let (mgr, log) = memory_manager();
    setup(&mgr, 3).await;
    let mut t = begin(&mgr);
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    // Before the savepoint: row 0 changes; that must survive ROLLBACK TO.
    let old = t.lock_row(&a, 0).await.expect("lock").expect("row");
    t.update(&a, 0, &old, row(0, "zero")).await.expect("update");
    t.savepoint();
    // After it: insert, update (twice, changing the unique key), delete.
    t.insert(&a, row(10, "ten")).await.expect("insert");
    let old = t.lock_row(&a, 0).await.expect("lock").expect("row");
    t.update(&a, 0, &old, row(0, "null")).await.expect("update");
    let old = t.lock_row(&a, 1).await.expect("lock").expect("row");
    t.update(&a, 1, &old, row(1, "eins")).await.expect("update");
    let old = t.lock_row(&a, 1).await.expect("lock").expect("row");
    t.update(&a, 1, &old, row(1, "one")).await.expect("update");
    t.lock_row(&a, 2).await.expect("lock");
    t.delete(&a, 2).expect("delete");
    assert_eq!(
        visible(&mut t).await,
        vec![
            (0, Value::text("null")),
            (1, Value::text("one")),
            (10, Value::text("ten"))
        ]
    );

    t.rollback_to_savepoint(0).expect("rollback to");
    assert_eq!(
        visible(&mut t).await,
        vec![
            (0, Value::text("zero")),
            (1, Value::text("v1")),
            (2, Value::text("v2"))
        ]
    );
    assert_eq!(t.savepoint_depth(), 1, "ROLLBACK TO keeps the savepoint");
    // The keys the undone writes took are free again; the restored ones are not.
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    t.insert(&a, row(11, "one"))
        .await
        .expect("\"one\" is free again");
    let err = t
        .insert(&a, row(12, "zero"))
        .await
        .expect_err("\"zero\" is still this transaction's");
    assert!(matches!(err, TxnError::UniqueViolation { .. }), "{err:?}");
    // The failed insert left a half-inserted row: ROLLBACK TO takes it away too.
    t.rollback_to_savepoint(0).expect("rollback to");
    t.release_savepoint(0);
    t.commit(SyncCommitLevel::On).await.expect("commit");

    let expected = vec![
        ("a".to_owned(), vec![Value::Int4(0), Value::text("zero")]),
        ("a".to_owned(), vec![Value::Int4(1), Value::text("v1")]),
        ("a".to_owned(), vec![Value::Int4(2), Value::text("v2")]),
    ];
    assert_eq!(contents(&mgr.catalog), expected);
    assert!(!v_key_taken(&mgr.catalog, "one"));
    assert!(!v_key_taken(&mgr.catalog, "ten"));
    assert!(v_key_taken(&mgr.catalog, "zero"));
    // And no index keeps entries for the undone rows (they would only cost memory: lookups
    // check the row, but nothing else would ever remove them).
    let a = mgr.catalog.lookup("a", &Snapshot::ALL).expect("a");
    for (i, v) in [
        (0, Value::Int4(10)),
        (1, Value::text("ten")),
        (1, Value::text("eins")),
    ] {
        let key = a.indexes[i]
            .key_from_values(std::slice::from_ref(&v))
            .expect("key");
        assert!(
            a.indexes[i].lookup(&key).is_empty(),
            "stale entry for {v:?}"
        );
    }
    // Nothing was spilled: the commit record simply never saw the undone changes.
    assert!(log.records().iter().all(|r| r.1 != RecordKind::TxnData));
    assert_eq!(contents(&replay(&log)), expected);
}

#[tokio::test]
async fn nested_savepoints_release_and_roll_back_by_depth() {
    let (mgr, log) = memory_manager();
    setup(&mgr, 0).await;
    let mut t = begin(&mgr);
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    t.savepoint(); // 0
    t.insert(&a, row(1, "a")).await.expect("insert");
    t.savepoint(); // 1
    t.insert(&a, row(2, "b")).await.expect("insert");
    t.savepoint(); // 2
    t.insert(&a, row(3, "c")).await.expect("insert");
    // RELEASE 1 folds 1 and 2 into level 0; rolling back to 0 then undoes all three.
    t.release_savepoint(1);
    assert_eq!(t.savepoint_depth(), 1);
    assert_eq!(visible(&mut t).await.len(), 3);
    t.rollback_to_savepoint(0).expect("rollback to");
    assert!(visible(&mut t).await.is_empty());
    t.insert(&a, row(4, "d")).await.expect("insert");
    t.savepoint(); // 1
    t.insert(&a, row(5, "e")).await.expect("insert");
    t.rollback_to_savepoint(1).expect("rollback to");
    t.rollback_to_savepoint(1).expect("twice is fine");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let expected = vec![("a".to_owned(), vec![Value::Int4(4), Value::text("d")])];
    assert_eq!(contents(&mgr.catalog), expected);
    assert_eq!(contents(&replay(&log)), expected);
}

/// Enough rows of this size outgrow the change buffer (`TXN_DATA_CHUNK_BYTES`) and spill.
fn big(k: i32) -> base::Row {
    Arc::from(vec![
        Value::Int4(k),
        Value::text(&format!("{k:08}{}", "x".repeat(1000))),
    ])
}

#[tokio::test]
async fn rollback_to_after_a_spill_logs_compensation_that_replays_to_the_same_rows() {
    let (mgr, log) = memory_manager();
    setup(&mgr, 5).await;
    let mut t = begin(&mgr);
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    // Before the savepoint: an update and a delete that must survive.
    let old = t.lock_row(&a, 0).await.expect("lock").expect("row");
    t.update(&a, 0, &old, row(0, "kept")).await.expect("update");
    t.lock_row(&a, 4).await.expect("lock");
    t.delete(&a, 4).expect("delete");
    t.savepoint();
    // After it: updates and deletes of committed rows, and 5000 KB of inserts (spills).
    let old = t.lock_row(&a, 0).await.expect("lock").expect("row");
    t.update(&a, 0, &old, row(0, "undone"))
        .await
        .expect("update");
    let old = t.lock_row(&a, 1).await.expect("lock").expect("row");
    t.update(&a, 1, &old, row(1, "undone too"))
        .await
        .expect("update");
    t.lock_row(&a, 2).await.expect("lock");
    t.delete(&a, 2).expect("delete");
    for k in 100..5100 {
        t.insert(&a, big(k)).await.expect("insert");
    }
    assert!(
        log.records().iter().any(|r| r.1 == RecordKind::TxnData),
        "the inserts must have spilled for this test to mean anything"
    );
    t.rollback_to_savepoint(0).expect("rollback to");
    // A little more after the rollback, then commit.
    t.insert(&a, row(7, "seven")).await.expect("insert");
    t.commit(SyncCommitLevel::On).await.expect("commit");

    let expected: Vec<(String, Vec<Value>)> =
        [(0, "kept"), (1, "v1"), (2, "v2"), (3, "v3"), (7, "seven")]
            .iter()
            .map(|(k, v)| ("a".to_owned(), vec![Value::Int4(*k), Value::text(v)]))
            .collect();
    assert_eq!(contents(&mgr.catalog), expected);
    let replica = replay(&log);
    assert_eq!(
        contents(&replica),
        expected,
        "redo must end where the primary did"
    );
    assert!(v_key_taken(&replica, "v1"));
}

#[tokio::test]
async fn catalog_changes_after_a_savepoint_are_undone() {
    let (mgr, _log) = memory_manager();
    setup(&mgr, 2).await;
    let mut t = begin(&mgr);
    t.savepoint();
    t.create_table("b", vec![col("x", DataType::Int8)], vec![], false)
        .await
        .expect("create");
    t.drop_table("a", false).await.expect("drop");
    t.new_statement();
    assert!(t.open_table("a").await.expect("open").is_none());
    assert!(t.open_table("b").await.expect("open").is_some());
    t.rollback_to_savepoint(0).expect("rollback to");
    t.new_statement();
    assert!(
        t.open_table("b").await.expect("open").is_none(),
        "b is gone"
    );
    assert_eq!(visible(&mut t).await.len(), 2, "a is back with its rows");
    // TRUNCATE after a savepoint, undone: the rows are back.
    t.truncate("a").await.expect("truncate");
    assert!(visible(&mut t).await.is_empty());
    t.rollback_to_savepoint(0).expect("rollback to");
    assert_eq!(visible(&mut t).await.len(), 2);
    // The name "b" is free again inside the transaction.
    t.create_table("b", vec![col("y", DataType::Text)], vec![], false)
        .await
        .expect("create again");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let b = mgr.catalog.lookup("b", &Snapshot::ALL).expect("b");
    assert_eq!(b.def.columns[0].name, "y");
    assert_eq!(contents(&mgr.catalog).len(), 2);
}

#[tokio::test]
async fn undoing_ddl_whose_changes_were_spilled_is_refused_and_undoes_nothing() {
    let (mgr, _log) = memory_manager();
    setup(&mgr, 0).await;
    let mut t = begin(&mgr);
    t.savepoint();
    t.create_table("b", vec![col("x", DataType::Int8)], vec![], false)
        .await
        .expect("create");
    t.new_statement();
    let a = t.open_table("a").await.expect("open").expect("a");
    for k in 0..5000 {
        t.insert(&a, big(k)).await.expect("insert");
    }
    let err = t.rollback_to_savepoint(0).expect_err("refused");
    assert_eq!(err, TxnError::SavepointAfterSpilledDdl);
    assert_eq!(base::PgError::from(err).code.0, "0A000");
    assert_eq!(visible(&mut t).await.len(), 5000, "nothing was undone");
    t.rollback();
    assert!(contents(&mgr.catalog).is_empty());
    assert!(mgr.catalog.lookup("b", &Snapshot::ALL).is_none());
}
