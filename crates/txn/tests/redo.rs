//! Redo and checkpoints reproduce exactly what the transactions committed.

use std::sync::Arc;

use base::{DataType, Lsn, SyncCommitLevel, TimelineId, Value};
use storage::checkpoint::{SnapshotHeader, load_snapshot, write_snapshot};
use storage::redo::Redo;
use storage::{Catalog, Snapshot};
use txn::testing::{begin, col, contents, memory_manager, raw_record};
use txn::{NewIndex, TxnManager};

async fn workload(mgr: &Arc<TxnManager>) {
    let mut t = begin(mgr);
    t.create_table(
        "a",
        vec![col("k", DataType::Int4), col("v", DataType::Text)],
        vec![NewIndex {
            name: "a_pkey".into(),
            columns: vec![0],
            unique: true,
            primary: true,
        }],
        false,
    )
    .await
    .expect("create");
    t.create_table("gone", vec![col("x", DataType::Int8)], vec![], false)
        .await
        .expect("create");
    t.commit(SyncCommitLevel::On).await.expect("commit");

    for i in 0..50 {
        let mut t = begin(mgr);
        let a = t.open_table("a").await.expect("open").expect("a");
        t.insert(
            &a,
            Arc::from(vec![Value::Int4(i), Value::text(&format!("v{i}"))]),
        )
        .await
        .expect("insert");
        t.commit(SyncCommitLevel::On).await.expect("commit");
    }
    // Updates, deletes, a rolled-back transaction, truncate+reload, drop.
    let mut t = begin(mgr);
    let a = t.open_table("a").await.expect("open").expect("a");
    for rowid in 0..10 {
        let old = t.lock_row(&a, rowid).await.expect("lock").expect("row");
        let new = Arc::from(vec![old[0].clone(), Value::text("updated")]);
        t.update(&a, rowid, &old, new).await.expect("update");
    }
    for rowid in 10..15 {
        t.lock_row(&a, rowid).await.expect("lock");
        t.delete(&a, rowid).expect("delete");
    }
    t.commit(SyncCommitLevel::On).await.expect("commit");

    let mut t = begin(mgr);
    let a = t.open_table("a").await.expect("open").expect("a");
    t.insert(&a, Arc::from(vec![Value::Int4(1000), Value::Null]))
        .await
        .expect("insert");
    t.rollback();

    let mut t = begin(mgr);
    t.truncate("gone").await.expect("truncate");
    t.new_statement();
    let g = t.open_table("gone").await.expect("open").expect("gone");
    t.insert(&g, Arc::from(vec![Value::Int8(1)]))
        .await
        .expect("insert");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let mut t = begin(mgr);
    t.drop_table("gone", false).await.expect("drop");
    t.commit(SyncCommitLevel::On).await.expect("commit");
}

#[tokio::test]
async fn replaying_the_log_reproduces_the_committed_state() {
    let (mgr, log) = memory_manager();
    workload(&mgr).await;
    let expected = contents(&mgr.catalog);
    assert_eq!(expected.len(), 45);

    let replica = Arc::new(Catalog::new());
    let mut redo = Redo::new(replica.clone(), Lsn(0));
    for (lsn, kind, xid, payload) in log.records() {
        redo.apply(&raw_record(lsn, kind, xid, payload), u64::MAX)
            .expect("redo");
    }
    assert_eq!(contents(&replica), expected);
    assert!(replica.lookup("gone", &Snapshot::ALL).is_none());
    // The replica's primary key index works.
    let a = replica.lookup("a", &Snapshot::ALL).expect("a");
    let key = a.indexes[0]
        .key_from_values(&[Value::Int4(20)])
        .expect("key");
    assert_eq!(a.indexes[0].lookup(&key).len(), 1);
}

#[tokio::test]
async fn checkpoint_then_replay_of_the_rest_reproduces_the_state() {
    let (mgr, log) = memory_manager();
    workload(&mgr).await;
    let records = log.records();
    // Take a checkpoint "in the middle": at the end of the 20th record.
    let cut = records[20].0;
    let dir = tempfile::tempdir().expect("tempdir");
    // Rebuild the state at `cut` by replay, then snapshot it.
    let at_cut = Arc::new(Catalog::new());
    let mut redo = Redo::new(at_cut.clone(), Lsn(0));
    for (lsn, kind, xid, payload) in records.iter().take(20) {
        redo.apply(&raw_record(*lsn, *kind, *xid, payload.clone()), u64::MAX)
            .expect("redo");
    }
    let header = SnapshotHeader {
        snapshot_lsn: cut,
        redo_lsn: cut,
        timeline: TimelineId(1),
        next_xid: 100,
        next_oid: at_cut.next_oid(),
        time: 0,
        sync_confirmed_lsn: cut,
    };
    let (name, stats) = write_snapshot(dir.path(), &at_cut, &header).expect("snapshot");
    assert!(stats.rows > 0);
    let restored = Arc::new(Catalog::new());
    let loaded = load_snapshot(dir.path(), &name, &restored).expect("load");
    assert_eq!(loaded, header);
    assert_eq!(contents(&restored), contents(&at_cut));
    let mut redo = Redo::new(restored.clone(), cut);
    for (lsn, kind, xid, payload) in records.iter().skip(20) {
        redo.apply(&raw_record(*lsn, *kind, *xid, payload.clone()), u64::MAX)
            .expect("redo");
    }
    assert_eq!(contents(&restored), contents(&mgr.catalog));

    // A damaged snapshot is refused.
    let path = dir.path().join(&name);
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&path, bytes).expect("write");
    assert!(load_snapshot(dir.path(), &name, &Catalog::new()).is_err());
}

#[tokio::test]
async fn add_column_replays_to_the_same_rows_and_indexes() {
    let (mgr, log) = memory_manager();
    let mut t = begin(&mgr);
    t.create_table(
        "w",
        vec![col("k", DataType::Int4)],
        vec![NewIndex {
            name: "w_pkey".into(),
            columns: vec![0],
            unique: true,
            primary: true,
        }],
        false,
    )
    .await
    .expect("create");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let mut t = begin(&mgr);
    let w = t.open_table("w").await.expect("open").expect("w");
    for k in 0..20 {
        t.insert(&w, Arc::from(vec![Value::Int4(k)]))
            .await
            .expect("insert");
    }
    // In the same transaction: widen the table its own pending rows are in, then write more.
    assert!(
        t.add_column("w", col("v", DataType::Text), Value::text("old"), false)
            .await
            .expect("add column")
    );
    t.new_statement();
    let w = t.open_table("w").await.expect("open").expect("w");
    assert_eq!(w.def.columns.len(), 2);
    t.insert(&w, Arc::from(vec![Value::Int4(100), Value::text("new")]))
        .await
        .expect("insert wide");
    let old = t.lock_row(&w, 3).await.expect("lock").expect("row");
    assert_eq!(old[1], Value::text("old"));
    t.update(
        &w,
        3,
        &old,
        Arc::from(vec![Value::Int4(3), Value::text("changed")]),
    )
    .await
    .expect("update");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    let expected = contents(&mgr.catalog);
    assert_eq!(expected.len(), 21);
    assert!(expected.contains(&("w".to_owned(), vec![Value::Int4(3), Value::text("changed")])));
    assert!(expected.contains(&("w".to_owned(), vec![Value::Int4(7), Value::text("old")])));

    let replica = Arc::new(Catalog::new());
    let mut redo = Redo::new(replica.clone(), Lsn(0));
    for (lsn, kind, xid, payload) in log.records() {
        redo.apply(&raw_record(lsn, kind, xid, payload), u64::MAX)
            .expect("redo");
    }
    assert_eq!(contents(&replica), expected);
    let w = replica.lookup("w", &Snapshot::ALL).expect("w");
    let key = w.indexes[0]
        .key_from_values(&[Value::Int4(100)])
        .expect("key");
    assert_eq!(
        w.indexes[0].lookup(&key).len(),
        1,
        "the index covers new rows"
    );
}

#[tokio::test]
async fn constraint_definitions_replay() {
    use base::catalog::{CheckDef, FkAction, ForeignKeyDef};
    let (mgr, log) = memory_manager();
    let mut t = begin(&mgr);
    let pk = |name: &str| NewIndex {
        name: name.into(),
        columns: vec![0],
        unique: true,
        primary: true,
    };
    t.create_table(
        "p",
        vec![col("id", DataType::Int4)],
        vec![pk("p_pkey")],
        false,
    )
    .await
    .expect("create p");
    let p_oid = t.open_table("p").await.expect("open").expect("p").oid();
    let fk = ForeignKeyDef {
        name: "c_pid_fkey".into(),
        columns: vec![1],
        ref_table: p_oid,
        ref_columns: vec![0],
        on_delete: FkAction::Cascade,
        on_update: FkAction::NoAction,
    };
    let check = CheckDef {
        name: "c_id_check".into(),
        expr: "id > 0".into(),
    };
    t.create_table_with_constraints(
        "c",
        vec![col("id", DataType::Int4), col("pid", DataType::Int4)],
        vec![pk("c_pkey")],
        vec![check.clone()],
        vec![fk.clone()],
        false,
    )
    .await
    .expect("create c");
    t.create_table("d", vec![col("pid", DataType::Int4)], vec![], false)
        .await
        .expect("create d");
    t.commit(SyncCommitLevel::On).await.expect("commit");
    // ALTER TABLE ... ADD FOREIGN KEY on a committed table.
    let mut t = begin(&mgr);
    let d = t.lock_for_ddl("d").await.expect("lock d");
    let mut def = (*d.def).clone();
    def.foreign_keys.push(ForeignKeyDef {
        name: "d_pid_fkey".into(),
        columns: vec![0],
        ..fk.clone()
    });
    t.replace_definition("d", def).await.expect("alter");
    t.commit(SyncCommitLevel::On).await.expect("commit");

    let replica = Arc::new(Catalog::new());
    let mut redo = Redo::new(replica.clone(), Lsn(0));
    for (lsn, kind, xid, payload) in log.records() {
        redo.apply(&raw_record(lsn, kind, xid, payload), u64::MAX)
            .expect("redo");
    }
    for name in ["c", "d"] {
        let here = mgr.catalog.lookup(name, &Snapshot::ALL).expect("table");
        let there = replica.lookup(name, &Snapshot::ALL).expect("replayed");
        assert_eq!(here.def, there.def, "{name}");
    }
    let c = replica.lookup("c", &Snapshot::ALL).expect("c");
    assert_eq!(c.def.foreign_keys, vec![fk]);
    assert_eq!(c.def.checks, vec![check]);
    assert!(replica.may_have_foreign_keys());
}
