//! Standby helpers without a walreceiver: log shipping by file copy (PostgreSQL's archive
//! recovery, where WAL files appear in `pg_wal` by other means).
//!
//! A standby is a copy of a *stopped* primary's data directory plus `standby.signal`; WAL is
//! then shipped by copying segment files (and timeline history files) from the primary's
//! `pg_wal` into the standby's, each through a temporary file renamed into place, so the
//! standby never reads a half-copied file. Without `primary_conninfo` the standby replays
//! whatever valid WAL appears there (see the server's `standby` module header).

use std::path::Path;
use std::time::{Duration, Instant};

use super::{TestServer, free_port};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A standby made from `primary`'s data directory, which must be stopped (a clean copy).
pub fn make_standby(primary: &TestServer) -> TestServer {
    let tmp = tempfile::tempdir().expect("tempdir");
    let datadir = tmp.path().join("data");
    copy_dir(&primary.datadir, &datadir);
    let _ = std::fs::remove_file(datadir.join("postmaster.pid"));
    std::fs::write(datadir.join("standby.signal"), b"").expect("standby.signal");
    let log = tmp.path().join("server.log");
    TestServer {
        _tmp: Some(tmp),
        datadir,
        port: free_port(),
        child: None,
        log,
        env: Vec::new(),
        settings: primary.settings.clone(),
        starts: 0,
    }
}

fn is_wal_file(name: &str) -> bool {
    (name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())) || name.ends_with(".history")
}

/// Copies WAL segment and history files from `from`'s `pg_wal` into `to`'s that are missing
/// there or differ, each through a temporary file and a rename. Segments older than the
/// oldest one the standby still has are skipped (a restartpoint removed them on purpose).
/// Returns how many files were copied.
pub fn ship_wal(from: &TestServer, to: &TestServer) -> usize {
    let src = from.datadir.join("pg_wal");
    let dst = to.datadir.join("pg_wal");
    let oldest_there = std::fs::read_dir(&dst)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 24 && is_wal_file(n))
        .map(|n| n[8..].to_owned())
        .min();
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_wal_file(n))
        .collect();
    names.sort();
    let mut copied = 0;
    for name in names {
        if name.len() == 24
            && let Some(oldest) = &oldest_there
            && name[8..] < oldest[..]
        {
            continue;
        }
        let data = std::fs::read(src.join(&name)).expect("read WAL file");
        if std::fs::read(dst.join(&name)).ok().as_deref() == Some(&data[..]) {
            continue;
        }
        let tmp = dst.join(format!("{name}.shipping"));
        std::fs::write(&tmp, &data).expect("write");
        std::fs::rename(&tmp, dst.join(&name)).expect("rename");
        copied += 1;
    }
    copied
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One text value of a one-row query.
pub async fn query_text(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let row = c
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.get::<_, Option<String>>(0)
}

/// The SQLSTATE of a statement that must fail.
pub async fn error_code(c: &tokio_postgres::Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql} succeeded but should have failed"),
        Err(e) => e
            .code()
            .map(|c| c.code().to_owned())
            .unwrap_or_else(|| panic!("{sql}: no SQLSTATE in {e}")),
    }
}

/// The `redo starts at X` LSNs logged by each start, in order.
pub fn redo_starts(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split("redo starts at ").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}
