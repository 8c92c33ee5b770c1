//! The WAL on disk: round trips, group commit, segment crossing, torn and corrupt tails, and
//! the mirror hook.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base::{Lsn, TimelineId};
use wal::mirror::MirrorHook;
use wal::reader::truncate_wal_at;
use wal::record::RecordKind;
use wal::segment::{create_segment, segment_path};
use wal::{ReadOutcome, Wal, WalConfig, WalProgress, WalReader};

const SEG: u64 = 1 << 20;

fn open(dir: &Path, start: Lsn) -> Arc<Wal> {
    let wal = Wal::open(
        WalConfig {
            dir: dir.to_owned(),
            segment_size: SEG,
            timeline: TimelineId(1),
            fsync: true,
            on_fatal: Box::new(|e| panic!("WAL failed in test: {e}")),
        },
        start,
    )
    .expect("open wal");
    wal.spawn_threads();
    wal
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn read_all(dir: &Path, start: Lsn) -> (Vec<wal::RawRecord>, ReadOutcome) {
    let mut r = WalReader::new(dir, SEG, TimelineId(1), start);
    let mut recs = Vec::new();
    loop {
        match r.next_record().expect("read") {
            ReadOutcome::Record(rec) => recs.push(rec),
            other => return (recs, other),
        }
    }
}

/// Inserts `n` records, each flushed before the next is inserted (so each later record's
/// durable_lsn covers the earlier ones). Returns the start LSNs.
fn write_flushed(wal: &Wal, n: u64, len: usize) -> Vec<Lsn> {
    let mut starts = Vec::new();
    for i in 0..n {
        let mut start = Lsn(0);
        let end = wal
            .insert(RecordKind::Commit, 0, i, &payload(i, len), &mut |s, _| {
                start = s
            })
            .expect("insert");
        wal.flush_to(end).expect("flush");
        starts.push(start);
    }
    starts
}

#[test]
fn records_round_trip_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path(), Lsn::FIRST);
    // Records of 100 KiB cross the 1 MiB segment boundaries several times.
    let starts = write_flushed(&wal, 30, 100 << 10);
    let end = wal.shutdown().expect("shutdown");
    let (recs, outcome) = read_all(dir.path(), Lsn::FIRST);
    assert_eq!(outcome, ReadOutcome::EndOfWal(end));
    assert_eq!(recs.len(), 30);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.start_lsn(), starts[i]);
        assert_eq!(r.payload, payload(i as u64, 100 << 10));
        assert_eq!(r.header.xid, i as u64);
    }
}

struct Counter {
    flushes: AtomicU64,
}

impl WalProgress for Counter {
    fn on_written(&self, _: Lsn) {}
    fn on_flushed(&self, _: Lsn) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn concurrent_commits_share_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path(), Lsn::FIRST);
    let counter = Arc::new(Counter {
        flushes: AtomicU64::new(0),
    });
    wal.add_progress_listener(counter.clone());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let end = wal
                        .insert(
                            RecordKind::Commit,
                            0,
                            t * 1000 + i,
                            &payload(i, 200),
                            &mut |_, _| {},
                        )
                        .expect("insert");
                    wal.flush_to(end).expect("flush");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    let end = wal.shutdown().expect("shutdown");
    let (recs, outcome) = read_all(dir.path(), Lsn::FIRST);
    assert_eq!(recs.len(), 400);
    assert_eq!(outcome, ReadOutcome::EndOfWal(end));
    let flushes = counter.flushes.load(Ordering::Relaxed);
    assert!(
        flushes < 400,
        "group commit: {flushes} flushes for 400 commits"
    );
    // pg_stat_wal's counters: every record and byte, and the calls that group commit saved.
    let st = wal.stats();
    assert_eq!(st.records, 400);
    assert_eq!(st.bytes, end.0 - Lsn::FIRST.0);
    assert!(st.syncs >= 1 && st.syncs <= flushes + 1, "{st:?}");
    assert!(st.writes >= 1 && st.writes <= 400, "{st:?}");
    assert!(st.sync_time > std::time::Duration::ZERO, "{st:?}");
}

#[test]
fn torn_zeroed_and_garbage_tails_end_the_wal() {
    for damage in ["truncate", "zero", "garbage"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(dir.path(), Lsn::FIRST);
        let starts = write_flushed(&wal, 20, 300);
        // The last record is "torn": not flushed before the crash. Simulate by damaging it.
        wal.shutdown().expect("shutdown");
        drop(wal);
        let last = starts[19];
        let path = segment_path(dir.path(), TimelineId(1), last.segment_number(SEG), SEG);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        let off = last.offset_in_segment(SEG) + 50;
        match damage {
            "truncate" => f.set_len(off).expect("truncate"),
            "zero" => f.write_all_at(&[0u8; 200], off).expect("zero"),
            _ => f
                .write_all_at(&payload(999, 4000), last.offset_in_segment(SEG) + 8)
                .expect("garbage"),
        }
        let (recs, outcome) = read_all(dir.path(), Lsn::FIRST);
        assert_eq!(recs.len(), 19, "{damage}");
        assert_eq!(outcome, ReadOutcome::EndOfWal(last), "{damage}");
        // After truncation at the end, appending continues cleanly.
        truncate_wal_at(dir.path(), TimelineId(1), SEG, last).expect("truncate wal");
        let wal = open(dir.path(), last);
        write_flushed(&wal, 3, 100);
        wal.shutdown().expect("shutdown");
        let (recs, _) = read_all(dir.path(), Lsn::FIRST);
        assert_eq!(recs.len(), 22, "{damage}");
    }
}

#[test]
fn a_damaged_record_followed_by_later_durable_records_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path(), Lsn::FIRST);
    let starts = write_flushed(&wal, 20, 300);
    wal.shutdown().expect("shutdown");
    drop(wal);
    let victim = starts[5];
    let path = segment_path(dir.path(), TimelineId(1), victim.segment_number(SEG), SEG);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let off = victim.offset_in_segment(SEG) + 100;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).expect("read");
    f.write_all_at(&[b[0] ^ 0x40], off).expect("flip");
    let (recs, outcome) = read_all(dir.path(), Lsn::FIRST);
    assert_eq!(recs.len(), 5);
    match outcome {
        ReadOutcome::Corrupt {
            lsn,
            segment,
            evidence_lsn,
            ..
        } => {
            assert_eq!(lsn, victim);
            // With 1 MiB segments, 0/1000000 is segment 16.
            assert_eq!(segment, "000000010000000000000010");
            assert_eq!(evidence_lsn, starts[6]);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn mirror_is_byte_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal_dir = dir.path().join("pg_wal");
    let mirror_dir = dir.path().join("mirror");
    std::fs::create_dir_all(&wal_dir).expect("mkdir");
    // WAL written before the mirror existed is copied at start-up.
    create_segment(&wal_dir, TimelineId(1), 1, SEG, true).expect("segment");
    let wal = open(&wal_dir, Lsn::FIRST);
    write_flushed(&wal, 5, 1000);
    wal.shutdown().expect("shutdown");
    drop(wal);
    let end = read_all(&wal_dir, Lsn::FIRST).1;
    let ReadOutcome::EndOfWal(end) = end else {
        panic!("bad wal")
    };
    let mirror = MirrorHook::new(&mirror_dir, &wal_dir, SEG).expect("mirror");
    let wal = open(&wal_dir, end);
    wal.add_hook(mirror);
    write_flushed(&wal, 40, 50 << 10);
    let end = wal.shutdown().expect("shutdown");
    // Every segment holding WAL up to the end is mirrored; a preallocated, still empty
    // segment beyond the end need not be.
    let names: Vec<String> = (Lsn::FIRST.segment_number(SEG)..=end.segment_number(SEG))
        .map(|s| base::lsn::segment_file_name(TimelineId(1), s, SEG))
        .collect();
    assert!(names.len() >= 2, "the test crosses segments");
    for name in names {
        let a = std::fs::read(wal_dir.join(&name)).expect("read primary");
        let b = std::fs::read(mirror_dir.join(&name)).expect("read mirror");
        assert!(a == b, "segment {name:?} differs");
    }
}

#[test]
fn wal_still_being_appended_proves_corruption_only_below_the_durable_limit() {
    // A standby's redo reads files the walreceiver is appending to. A record that is not
    // there yet, followed by records written meanwhile, is the end *for now* unless the
    // later record lies below what is known to be durable here.
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path(), Lsn::FIRST);
    let starts = write_flushed(&wal, 10, 200);
    wal.shutdown().expect("shutdown");
    drop(wal);
    let hole = starts[5];
    let path = segment_path(dir.path(), TimelineId(1), hole.segment_number(SEG), SEG);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    // Record 5's header not written yet (zeroes), records 6.. already there.
    f.write_all_at(&[0u8; 40], hole.offset_in_segment(SEG))
        .expect("zero");
    let reader_at = |durable: Option<Lsn>| {
        let mut r = WalReader::new(dir.path(), SEG, TimelineId(1), hole);
        r.next_record_within(durable).expect("read")
    };
    // Durable only up to the hole: nothing beyond it counts as evidence.
    assert_eq!(reader_at(Some(hole)), ReadOutcome::EndOfWal(hole));
    // Durable up to just before record 6 ends: record 6 is not complete evidence either.
    assert_eq!(
        reader_at(Some(Lsn(starts[6].0 + 8))),
        ReadOutcome::EndOfWal(hole)
    );
    // Durable past record 6: the hole is damage.
    assert!(matches!(
        reader_at(Some(starts[8])),
        ReadOutcome::Corrupt { lsn, .. } if lsn == hole
    ));
    // No limit (complete files): as before.
    assert!(matches!(reader_at(None), ReadOutcome::Corrupt { .. }));
}
