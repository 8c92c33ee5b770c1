//! Primaries and standbys for replication tests: a standby is made the way an operator makes
//! one (`lockstep basebackup -R`), then started like any server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{BIN, TestServer, free_port};

impl TestServer {
    /// A standby of `primary` (which must be running), made with `lockstep basebackup -R` and
    /// `application_name=app`; not started.
    pub fn standby_of(primary: &TestServer, app: &str) -> TestServer {
        Self::standby_via(primary, primary.port, app)
    }

    /// Like `standby_of`, but the standby's `primary_conninfo` points at `port` (a proxy in
    /// front of the primary).
    pub fn standby_via(primary: &TestServer, port: u16, app: &str) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let datadir = tmp.path().join("data");
        let conninfo = format!("host=127.0.0.1 port={port} user=postgres application_name={app}");
        let out = Command::new(BIN)
            .args(["basebackup", "-d", &conninfo, "-D"])
            .arg(&datadir)
            .arg("-R")
            .output()
            .expect("run lockstep basebackup");
        assert!(
            out.status.success(),
            "basebackup failed: {}\nprimary log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            primary.log_text()
        );
        let log = tmp.path().join("server.log");
        TestServer::from_parts(tmp, datadir, free_port(), log)
    }

    /// Waits until the primary's `pg_stat_replication` shows `app` in `state` with
    /// `sync_state` (when given).
    pub async fn wait_for_standby(&self, app: &str, state: &str, sync_state: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        loop {
            if let Ok(client) = self.try_client().await {
                let rows = client
                    .query(
                        "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1",
                        &[&app],
                    )
                    .await;
                if let Ok(rows) = rows {
                    if let Some(r) = rows.first() {
                        let (st, sy): (String, String) = (r.get(0), r.get(1));
                        if st == state && sync_state.is_none_or(|s| s == sy) {
                            return;
                        }
                        last = format!("{st}/{sy}");
                    } else {
                        last = "no row".into();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "standby {app} did not reach {state}/{sync_state:?} (last: {last}); primary log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until this standby has replayed at least `lsn`.
    pub async fn wait_for_replay(&self, lsn: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(client) = self.try_client().await {
                let row = client
                    .query_one(
                        "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::text)::text",
                        &[&lsn],
                    )
                    .await;
                if let Ok(row) = row {
                    let diff: String = row.get(0);
                    if !diff.starts_with('-') {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "standby did not replay {lsn}; standby log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `SELECT pg_reload_conf()`: asks the server to re-read its configuration (the reload
    /// itself is asynchronous, as PostgreSQL's SIGHUP).
    pub async fn reload_conf(&self) {
        self.client()
            .await
            .simple_query("SELECT pg_reload_conf()")
            .await
            .expect("reload");
    }

    /// Appends `name = 'value'` to lockstep.conf (takes effect at the next reload).
    pub fn set_conf(&self, name: &str, value: &str) {
        let conf = self.datadir.join("lockstep.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read conf");
        text.push_str(&format!("\n{name} = '{value}'\n"));
        std::fs::write(&conf, text).expect("write conf");
    }

    /// The WAL directory.
    pub fn wal_dir(&self) -> PathBuf {
        self.datadir.join("pg_wal")
    }
}

/// Segment files (name, bytes) in a WAL directory, sorted by name.
pub fn wal_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read pg_wal")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read segment");
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}
