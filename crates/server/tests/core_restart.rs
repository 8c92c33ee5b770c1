//! The storage core across restarts: a clean shutdown, a stop without checkpoint (crash
//! recovery), and online checkpoints taken while writers run, all reproduce exactly the
//! committed rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use base::catalog::ColumnDef;
use base::{DataType, SyncCommitLevel, Value};
use server::checkpointer::{CheckpointKind, CheckpointSettings};
use server::core::{Core, CoreOptions};
use server::datadir::{DataDir, InitOptions};
use storage::Snapshot;
use txn::{Interrupt, NewIndex, Transaction, TxnSettings};

fn options() -> CoreOptions {
    CoreOptions {
        fsync: true,
        wal_mirror_directory: None,
        checkpoint: CheckpointSettings {
            timeout: Duration::from_secs(3600),
            max_wal_size: 1 << 40,
        },
        on_wal_failure: Arc::new(|e| panic!("WAL failure: {e}")),
        standby: Default::default(),
        synchronous_standby_names: String::new(),
    }
}

fn start(dir: &DataDir) -> Arc<Core> {
    let next = Arc::new(AtomicI32::new(100));
    Core::start(
        dir.clone(),
        options(),
        tokio::runtime::Handle::current(),
        Arc::new(move || next.fetch_add(1, Ordering::Relaxed)),
    )
    .expect("start core")
}

fn begin(core: &Core) -> Transaction {
    Transaction::begin(
        &core.mgr,
        Arc::new(core.mgr.snapshots.register()),
        Arc::new(Interrupt::new()),
        TxnSettings { lock_timeout: None },
    )
}

fn rows(core: &Core) -> Vec<(i64, i64)> {
    let t = core
        .mgr
        .catalog
        .lookup("acct", &Snapshot::ALL)
        .expect("table acct");
    let mut out = Vec::new();
    t.rows.scan(&Snapshot::ALL, |_, r| {
        out.push((r[0].as_i64().unwrap_or(-1), r[1].as_i64().unwrap_or(-1)));
        true
    });
    out.sort_unstable();
    out
}

async fn setup(core: &Core, n: i64) {
    let mut t = begin(core);
    t.create_table(
        "acct",
        vec![
            ColumnDef {
                name: "id".into(),
                data_type: DataType::Int8,
                not_null: true,
                default: None,
            },
            ColumnDef {
                name: "balance".into(),
                data_type: DataType::Int8,
                not_null: true,
                default: None,
            },
        ],
        vec![NewIndex {
            name: "acct_pkey".into(),
            columns: vec![0],
            unique: true,
            primary: true,
        }],
        false,
    )
    .await
    .expect("create");
    t.new_statement();
    let table = t.open_table("acct").await.expect("open").expect("acct");
    for i in 0..n {
        t.insert(&table, Arc::from(vec![Value::Int8(i), Value::Int8(0)]))
            .await
            .expect("insert");
    }
    t.commit(SyncCommitLevel::On).await.expect("commit");
}

/// Adds `delta` to account `id`.
async fn transfer(core: &Core, id: i64, delta: i64) {
    let mut t = begin(core);
    let table = t.open_table("acct").await.expect("open").expect("acct");
    let key = table.indexes[0]
        .key_from_values(&[Value::Int8(id)])
        .expect("key");
    let rowid = table.indexes[0].lookup(&key)[0];
    let old = t.lock_row(&table, rowid).await.expect("lock").expect("row");
    let bal = old[1].as_i64().unwrap_or(0);
    t.update(
        &table,
        rowid,
        &old,
        Arc::from(vec![old[0].clone(), Value::Int8(bal + delta)]),
    )
    .await
    .expect("update");
    t.commit(SyncCommitLevel::On).await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_reproduce_committed_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    dir.init(&InitOptions {
        segment_size: 1 << 20,
        config_text: String::new(),
        hba_text: String::new(),
    })
    .expect("init");

    let core = start(&dir);
    setup(&core, 200).await;
    for i in 0..300 {
        transfer(&core, i % 200, 1).await;
    }
    let expected = rows(&core);
    core.shutdown().await.expect("shutdown");
    drop(core);

    // Clean restart.
    let core = start(&dir);
    assert_eq!(rows(&core), expected);
    assert!(
        core.records_replayed <= 1,
        "clean shutdown replays only the checkpoint"
    );

    // Writers run while an online checkpoint is taken; then a stop without checkpoint.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let core = core.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    transfer(&core, (i * 7 + w) % 200, 1).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stats = core
        .checkpointer
        .checkpoint_async(CheckpointKind::Requested)
        .await
        .expect("checkpoint");
    assert_eq!(stats.tables, 1);
    for w in writers {
        w.await.expect("writer");
    }
    let expected = rows(&core);
    let total: i64 = expected.iter().map(|(_, b)| b).sum();
    assert_eq!(total, 300 + 600);
    core.crash().await;
    drop(core);

    let core = start(&dir);
    assert_eq!(
        rows(&core),
        expected,
        "crash recovery from the online checkpoint"
    );
    core.shutdown().await.expect("shutdown");
}
