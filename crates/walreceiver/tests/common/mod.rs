//! A throwaway PostgreSQL 15 cluster for the walreceiver's integration tests: the primary
//! whose streaming protocol lockstep's walreceiver must speak byte for byte.
//!
//! PostgreSQL refuses to run as root, so the cluster lives in a temporary directory owned by
//! `postgres` and every PostgreSQL binary runs through `runuser -u postgres`. It listens on a
//! free loopback port and on a Unix socket in its own directory (psql uses the socket, with
//! `trust`). `Drop` stops it (immediate mode) and removes the directory, also when a test
//! fails. Tests that find no PostgreSQL 15 binaries panic with a clear message.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Users created for the authentication tests, with their passwords and pg_hba methods.
pub const AUTH_USERS: &[(&str, &str, &str)] = &[
    ("scramuser", "scram secret", "scram-sha-256"),
    ("md5user", "md5 secret", "md5"),
    ("pwuser", "clear secret", "password"),
];

pub struct PgCluster {
    pub root: PathBuf,
    pub port: u16,
}

use base::testing::free_port;

fn run_as_postgres(args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser")
}

fn check(out: Output, what: &str) -> String {
    if !out.status.success() {
        panic!(
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl PgCluster {
    /// A fresh directory owned by `postgres` and a free port; nothing in it yet.
    fn empty() -> PgCluster {
        let root = std::env::temp_dir().join(format!(
            "lockstep-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&root).expect("mkdir");
        let cluster = PgCluster {
            root,
            port: free_port(),
        };
        check(
            Command::new("chown")
                .arg("postgres:")
                .arg(&cluster.root)
                .output()
                .expect("chown"),
            "chown",
        );
        cluster
    }

    /// initdb, configure (plus `extra_conf` lines), start.
    pub fn start(extra_conf: &[&str]) -> PgCluster {
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "PostgreSQL 15 is needed at {PG_BIN} (apt-get install postgresql-15)"
        );
        let cluster = PgCluster::empty();
        let data = cluster.data_dir();
        check(
            run_as_postgres(&[
                &format!("{PG_BIN}/initdb"),
                "-D",
                data.to_str().expect("utf8"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ]),
            "initdb",
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 10\nfsync = off\n\
             wal_sender_timeout = 60s\nlog_min_messages = info\n",
            cluster.port,
            cluster.root.display()
        );
        for l in extra_conf {
            conf.push_str(l);
            conf.push('\n');
        }
        let mut hba = String::from("local all all trust\nlocal replication all trust\n");
        for (user, _, method) in AUTH_USERS {
            hba.push_str(&format!("host replication {user} 127.0.0.1/32 {method}\n"));
            hba.push_str(&format!("host all {user} 127.0.0.1/32 {method}\n"));
        }
        hba.push_str("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n");
        std::fs::write(data.join("pg_hba.conf"), hba).expect("hba");
        let auto = data.join("postgresql.auto.conf");
        std::fs::write(&auto, conf).expect("conf");
        check(
            Command::new("chown")
                .arg("postgres:")
                .arg(data.join("pg_hba.conf"))
                .arg(&auto)
                .output()
                .expect("chown"),
            "chown",
        );
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        for (user, password, method) in AUTH_USERS {
            let enc = if *method == "md5" {
                "md5"
            } else {
                "scram-sha-256"
            };
            cluster.psql(&format!(
                "SET synchronous_commit = local; SET password_encryption = '{enc}'; CREATE ROLE {user} LOGIN REPLICATION PASSWORD '{password}'"
            ));
        }
        cluster
    }

    /// A PostgreSQL streaming standby of `primary` (pg_basebackup -R), started.
    pub fn standby_of(primary: &PgCluster) -> PgCluster {
        let cluster = PgCluster::empty();
        let data = cluster.data_dir();
        check(
            run_as_postgres(&[
                &format!("{PG_BIN}/pg_basebackup"),
                "-D",
                data.to_str().expect("utf8"),
                "-R",
                "-c",
                "fast",
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ]),
            "pg_basebackup",
        );
        let auto = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).expect("auto.conf");
        text.push_str(&format!(
            "port = {}\nunix_socket_directories = '{}'\n",
            cluster.port,
            cluster.root.display()
        ));
        std::fs::write(&auto, text).expect("auto.conf");
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        cluster
    }

    pub fn promote(&self) {
        self.pg_ctl(&["promote", "-w", "-t", "60"]);
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir().join("pg_wal")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data_dir();
        let log = self.root.join("log");
        let mut a = vec![
            format!("{PG_BIN}/pg_ctl"),
            "-D".into(),
            data.to_string_lossy().into_owned(),
            "-l".into(),
            log.to_string_lossy().into_owned(),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        check(run_as_postgres(&refs), "pg_ctl");
    }

    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    }

    fn psql_args(&self, sql: &str) -> Vec<String> {
        vec![
            format!("{PG_BIN}/psql"),
            "-X".into(),
            "-At".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-h".into(),
            self.root.to_string_lossy().into_owned(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
            "-d".into(),
            "postgres".into(),
            "-c".into(),
            sql.into(),
        ]
    }

    /// Runs SQL with psql over the Unix socket; returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let a = self.psql_args(sql);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        check(run_as_postgres(&refs), &format!("psql {sql}"))
    }

    /// Starts psql in the background (for a commit that is expected to block).
    pub fn psql_background(&self, sql: &str) -> Child {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(self.psql_args(sql))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn psql")
    }

    pub fn system_identifier(&self) -> u64 {
        self.psql("SELECT system_identifier FROM pg_control_system()")
            .parse()
            .expect("sysid")
    }

    pub fn flush_lsn(&self) -> u64 {
        parse_lsn(&self.psql("SELECT pg_current_wal_flush_lsn()"))
    }

    /// A connection string for TCP with `extra` appended.
    pub fn conninfo(&self, extra: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres {extra}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = run_as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap_or(""),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn parse_lsn(s: &str) -> u64 {
    let (hi, lo) = s.trim().split_once('/').expect("lsn");
    (u64::from_str_radix(hi, 16).expect("hi") << 32) | u64::from_str_radix(lo, 16).expect("lo")
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub async fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub const SEG: u64 = 16 << 20;

/// Asserts that our segment files hold exactly PostgreSQL's bytes in `[from, to)`.
pub fn assert_same_wal(ours: &Path, theirs: &Path, from: u64, to: u64) {
    assert_same_wal_tli(ours, theirs, 1, from, to)
}

/// [`assert_same_wal`] for the segment files of timeline `tli`.
pub fn assert_same_wal_tli(ours: &Path, theirs: &Path, tli: u32, from: u64, to: u64) {
    let mut lsn = from;
    while lsn < to {
        let segno = lsn / SEG;
        let name = format!("{:08X}{:08X}{:08X}", tli, segno / 256, segno % 256);
        let a = std::fs::read(ours.join(&name)).unwrap_or_else(|e| panic!("our {name}: {e}"));
        let b = std::fs::read(theirs.join(&name)).unwrap_or_else(|e| panic!("PG's {name}: {e}"));
        let start = (lsn % SEG) as usize;
        let end = if to / SEG == segno {
            (to % SEG) as usize
        } else {
            SEG as usize
        };
        assert!(
            a[start..end] == b[start..end],
            "segment {name} differs from PostgreSQL's in {start}..{end}"
        );
        lsn = segno * SEG + end as u64;
        if end == SEG as usize {
            lsn = (segno + 1) * SEG;
        }
    }
}
