//! Replays the stored fuzz corpus of the replication decoders
//! (`fuzz/corpus/replication_message`) as a plain test, plus seeded random inputs and seeded
//! mutations of the corpus, so CI checks every decoder on stable Rust without cargo-fuzz.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/replication_message")
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

#[test]
fn stored_corpus_never_panics() {
    let seeds = corpus();
    assert!(
        seeds.len() >= 20,
        "corpus at {} is too small",
        corpus_dir().display()
    );
    for data in &seeds {
        replication::fuzzing::decode_any(data);
    }
}

#[test]
fn seeded_random_inputs_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_4E91);
    for _ in 0..20_000 {
        let len = rng.random_range(0..64);
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        replication::fuzzing::decode_any(&data);
    }
}

/// Random bytes rarely get past a type byte or the first keyword; mutating real seeds (flip,
/// insert, delete, splice, duplicate tokens) reaches the deeper branches.
#[test]
fn seeded_mutations_of_the_corpus_never_panic() {
    let seeds = corpus();
    let alphabet: &[&[u8]] = &[
        b" ",
        b"(",
        b")",
        b",",
        b";",
        b"'",
        b"\"",
        b"''",
        b"\"\"",
        b"=",
        b"&",
        b"%",
        b"%2",
        b"@",
        b":",
        b"/",
        b"[",
        b"]",
        b"?",
        b"\\",
        b"\t",
        b"\n",
        b"#",
        b"*",
        b"0",
        b"1",
        b"FIRST",
        b"ANY",
        b"2",
        b"0/0",
        b"FFFFFFFF/FFFFFFFF",
        b"TIMELINE",
        b"SLOT",
        b"PHYSICAL",
        b"LOGICAL",
        b"RESERVE_WAL",
        b"WAIT",
        b"LABEL",
        b"COMPRESSION",
        b"COMPRESSION_DETAIL",
        b"'level=3'",
        b"TARGET",
        b"'server'",
        b"MANIFEST",
        b"4294967296",
        b"99999999999999999999",
        "é".as_bytes(),
        b"\xff",
        b"\0",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_3A7E);
    for _ in 0..30_000 {
        let mut data = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..=data.len());
            match rng.random_range(0..5) {
                0 if !data.is_empty() => {
                    let i = rng.random_range(0..data.len());
                    data[i] ^= 1 << rng.random_range(0..8);
                }
                1 if at < data.len() => {
                    let end = rng.random_range(at..=data.len());
                    data.drain(at..end);
                }
                2 => {
                    let token = alphabet[rng.random_range(0..alphabet.len())];
                    data.splice(at..at, token.iter().copied());
                }
                3 => {
                    let other = &seeds[rng.random_range(0..seeds.len())];
                    let from = rng.random_range(0..=other.len());
                    data.splice(at..at, other[from..].iter().copied());
                }
                _ => data.truncate(at),
            }
        }
        replication::fuzzing::decode_any(&data);
    }
}

/// Regenerates the seed inputs of the corpus: one encoded message of each kind, and the
/// text inputs the parsers take. Run with
/// `cargo test -p replication --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use base::Lsn;
    use bytes::Bytes;
    use replication::messages::*;

    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut seeds: Vec<(String, Vec<u8>)> = vec![
        (
            "msg-xlogdata".into(),
            PrimaryMessage::XLogData(XLogData {
                data_start: Lsn(0x300_0028),
                wal_end: Lsn(0x300_0000),
                send_time: PgTimestamp(815_000_000_000_000),
                data: Bytes::from_static(b"\x01\x02\x03\x04 WAL bytes"),
            })
            .encode(),
        ),
        (
            "msg-keepalive".into(),
            PrimaryMessage::Keepalive(PrimaryKeepalive {
                wal_end: Lsn(0x1_0000_00A8),
                send_time: PgTimestamp(1),
                reply_requested: true,
            })
            .encode(),
        ),
        (
            "msg-status-update".into(),
            StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                write_lsn: Lsn(0x300_0100),
                flush_lsn: Lsn(0x300_0080),
                apply_lsn: Lsn(0x300_0000),
                send_time: PgTimestamp(2),
                reply_requested: false,
            })
            .encode(),
        ),
        (
            "msg-hot-standby-feedback".into(),
            StandbyMessage::HotStandbyFeedback(HotStandbyFeedback {
                send_time: PgTimestamp(3),
                xmin: 1000,
                xmin_epoch: 1,
                catalog_xmin: 999,
                catalog_xmin_epoch: 1,
            })
            .encode(),
        ),
    ];
    let texts: &[(&str, &str)] = &[
        ("cmd-identify-system", "IDENTIFY_SYSTEM;"),
        ("cmd-show", "SHOW \"Foo\".wal_segment_size"),
        ("cmd-timeline-history", "TIMELINE_HISTORY 2"),
        (
            "cmd-create-slot",
            "CREATE_REPLICATION_SLOT s1 TEMPORARY PHYSICAL (RESERVE_WAL true)",
        ),
        (
            "cmd-create-slot-legacy",
            "CREATE_REPLICATION_SLOT s1 PHYSICAL RESERVE_WAL",
        ),
        ("cmd-drop-slot", "DROP_REPLICATION_SLOT s1 WAIT"),
        ("cmd-read-slot", "READ_REPLICATION_SLOT s1"),
        (
            "cmd-start-replication",
            "START_REPLICATION SLOT s1 PHYSICAL 1/A8 TIMELINE 3",
        ),
        (
            "cmd-base-backup-15",
            "BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  CHECKPOINT 'fast',  WAIT 0,  MANIFEST 'yes',  TARGET 'client')",
        ),
        (
            "cmd-base-backup-compression",
            "BASE_BACKUP (COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2', TARGET 'server', TARGET_DETAIL '/x', MAX_RATE 1024)",
        ),
        (
            "cmd-base-backup-14",
            "BASE_BACKUP LABEL 'x' PROGRESS FAST WAL NOWAIT MAX_RATE 1024 TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'",
        ),
        ("ssn-legacy", "standby1, \"Standby 2\""),
        ("ssn-first", "FIRST 2 (s1, s2, *)"),
        ("ssn-any", "ANY 2(\"first\", s2, 3)"),
        (
            "conninfo-kv",
            "host=db1 port=5432 user=rep password='it\\'s' application_name='standby 1' sslmode=prefer",
        ),
        (
            "conninfo-uri",
            "postgresql://rep:s%40cret@[::1]:5433,db2/postgres?application_name=standby%201&ssl=true",
        ),
        (
            "history-3",
            // The first byte picks the file's own timeline: '#' is 35, '1' is 49.
            "# history of timeline 35\n1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n",
        ),
        (
            "history-plain",
            "1\t0/10\tat restore point \"x\"\n\n7\t1/0\n",
        ),
    ];
    seeds.extend(
        texts
            .iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())),
    );
    for (name, data) in seeds {
        std::fs::write(dir.join(name), data).expect("write");
    }
}
