//! Test harness: real `lockstep` server processes on loopback, in temporary directories, on
//! ports picked at run time, killed and cleaned up even when a test fails (PostgreSQL's
//! `PostgreSQL::Test::Cluster`, in miniature).

#![allow(dead_code)]

pub mod repl;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;
pub mod proxy;
pub mod standby;

pub const BIN: &str = env!("CARGO_BIN_EXE_lockstep");

pub use base::testing::free_port;

/// Rounds for a kill -9 test: `default` in CI; `LOCKSTEP_SOAK_ROUNDS=N` runs a longer soak
/// by hand (`LOCKSTEP_SOAK_ROUNDS=200 cargo test --release -p server --test t130_failover --
/// --nocapture`), never fewer rounds than the default.
pub fn soak_rounds(default: usize) -> usize {
    std::env::var("LOCKSTEP_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(default, |n| n.max(default))
}

pub struct TestServer {
    _tmp: Option<tempfile::TempDir>,
    pub datadir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
    pub settings: Vec<String>,
    starts: u32,
}

impl TestServer {
    /// Initialises a data directory (`lockstep init` with `extra` arguments).
    pub fn init_with(extra: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let datadir = tmp.path().join("data");
        let out = Command::new(BIN)
            .arg("init")
            .arg("-D")
            .arg(&datadir)
            .args(extra)
            .output()
            .expect("run lockstep init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = tmp.path().join("server.log");
        TestServer {
            _tmp: Some(tmp),
            datadir,
            port: free_port(),
            child: None,
            log,
            env: Vec::new(),
            settings: Vec::new(),
            starts: 0,
        }
    }

    pub fn init() -> TestServer {
        Self::init_with(&[])
    }

    /// A server over an existing data directory inside `tmp` (e.g. made by basebackup).
    pub fn from_parts(
        tmp: tempfile::TempDir,
        datadir: PathBuf,
        port: u16,
        log: PathBuf,
    ) -> TestServer {
        TestServer {
            _tmp: Some(tmp),
            datadir,
            port,
            child: None,
            log,
            env: Vec::new(),
            settings: Vec::new(),
            starts: 0,
        }
    }

    pub fn base_dir(&self) -> &Path {
        self.datadir.parent().expect("parent")
    }

    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    fn spawn(&mut self) -> Child {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("start")
            .arg("-D")
            .arg(&self.datadir)
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg("unix_socket_directories=");
        for s in &self.settings {
            cmd.arg("-c").arg(s);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        cmd.spawn().expect("spawn lockstep start")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = self.spawn();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "server exited during start-up ({status}); log:\n{}",
                    self.log_text()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Starts the server expecting it to refuse; returns its exit status and log.
    pub fn start_expect_failure(&mut self) -> (ExitStatus, String) {
        let mut child = self.spawn();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, self.log_text());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not refuse to start; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (libc constant) and waits for the process to exit.
    pub fn stop_with(&mut self, sig: i32) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(c.id() as i32, sig);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "server did not stop after signal {sig}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fast shutdown (SIGINT).
    pub fn stop(&mut self) {
        let s = self.stop_with(libc::SIGINT);
        if let Some(s) = s {
            assert!(
                s.success(),
                "server exited with {s}; log:\n{}",
                self.log_text()
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (at or after byte `from`).
    pub fn wait_for_log(&self, needle: &str, from: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let t = self.log_text();
            if t.len() > from && t[from..].contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_str(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}; log:\n{}", self.log_text()));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// A client, or the connection error (for polling a server that may be down).
    pub async fn try_client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) =
            tokio_postgres::connect(&self.conn_str(), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Runs `lockstep waldump` and returns its stdout.
    pub fn waldump(&self) -> String {
        let out = Command::new(BIN)
            .arg("waldump")
            .arg("-D")
            .arg(&self.datadir)
            .output()
            .expect("waldump");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a client tool (psql, pgbench) against the server.
    pub fn tool(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Start LSNs of the records `waldump` printed.
pub fn record_lsns(dump: &str) -> Vec<base::Lsn> {
    dump.lines()
        .filter_map(|l| l.strip_prefix("lsn: "))
        .filter_map(|l| l.split(',').next())
        .filter_map(|s| s.parse().ok())
        .collect()
}
