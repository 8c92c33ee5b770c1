//! Replays the stored fuzz corpus of the WAL record decoder (`fuzz/corpus/wal_record`) as a
//! plain test, plus seeded random inputs, so CI checks the decoder on stable Rust without
//! cargo-fuzz.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal_record")
}

#[test]
fn stored_corpus_never_panics() {
    let dir = corpus_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        wal::fuzzing::decode_record_bytes(&data);
        n += 1;
    }
    assert!(n > 0, "corpus at {} is empty", dir.display());
}

#[test]
fn seeded_random_inputs_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
    for _ in 0..20_000 {
        let len = rng.random_range(0..300);
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        wal::fuzzing::decode_record_bytes(&data);
    }
}

/// Regenerates the seed inputs of the corpus: one real encoded record of each kind, as the
/// fuzz target reads them (kind selector byte, then payload), and real headers. Run with
/// `cargo test -p wal --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use std::sync::Arc;

    use base::catalog::{ColumnDef, IndexDef, TableDef};
    use base::{DataType, Lsn, SyncCommitLevel, TimelineId, Value};
    use wal::record::*;

    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    let def = TableDef {
        oid: 16384,
        name: "pgbench_accounts".into(),
        columns: vec![ColumnDef {
            name: "aid".into(),
            data_type: DataType::Int4,
            not_null: true,
            default: Some("0".into()),
        }],
        indexes: vec![IndexDef {
            oid: 16385,
            name: "pk".into(),
            columns: vec![0],
            unique: true,
            primary: true,
        }],
        sequence: None,
        checks: Vec::new(),
        foreign_keys: Vec::new(),
    };
    let recs = [
        WalRecord::Commit(CommitRecord {
            commit_time: 1,
            level: SyncCommitLevel::On,
            changes: vec![
                Change::CreateTable { def: def.clone() },
                Change::Insert {
                    table: 16384,
                    rowid: 1,
                    row: Arc::from(vec![Value::Int4(5), Value::text("x"), Value::Null]),
                },
                Change::Update {
                    table: 16384,
                    rowid: 1,
                    row: Arc::from(vec![Value::Float8(1.5), Value::Timestamp(7)]),
                },
                Change::Delete {
                    table: 16384,
                    rowid: 1,
                },
                Change::Truncate { table: 16384 },
                Change::CreateIndex {
                    table: 16384,
                    index: def.indexes[0].clone(),
                },
                Change::DropTable { table: 16384 },
            ],
        }),
        WalRecord::TxnData(vec![Change::Delete { table: 1, rowid: 2 }]),
        WalRecord::Abort,
        WalRecord::Checkpoint(CheckpointRecord {
            redo_lsn: Lsn(1),
            snapshot_lsn: Lsn(2),
            timeline: TimelineId(1),
            next_xid: 3,
            next_oid: 4,
            time: 5,
            shutdown: false,
        }),
        WalRecord::EndOfRecovery(EndOfRecoveryRecord {
            previous_timeline: TimelineId(1),
            timeline: TimelineId(2),
            time: 3,
        }),
    ];
    for (i, r) in recs.iter().enumerate() {
        let mut data = vec![i as u8];
        data.extend(r.encode());
        std::fs::write(dir.join(format!("seed-record-{i}")), data).expect("write");
    }
    let h = RecordHeader {
        crc: 1,
        total_len: 100,
        kind: 1,
        flags: 0,
        lsn: Lsn(0x0100_0000),
        durable_lsn: Lsn(0x0100_0000),
        xid: 9,
    };
    std::fs::write(dir.join("seed-header"), h.encode()).expect("write");
}
