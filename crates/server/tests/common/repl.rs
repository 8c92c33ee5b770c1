//! Replication test helpers: PostgreSQL 15's own tools (pg_receivewal, pg_basebackup, psql
//! with `replication=true`) against a lockstep primary. Every child process is killed when
//! its guard drops, also when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TestServer;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub fn pg_tool(name: &str) -> PathBuf {
    Path::new(PG_BIN).join(name)
}

/// `psql "... replication=true" -c cmd` (one command per -c); returns the output.
pub fn repl_psql(srv: &TestServer, user: &str, cmds: &[&str]) -> Output {
    let mut c = Command::new("psql");
    c.arg(format!(
        "host=127.0.0.1 port={} user={user} replication=true connect_timeout=10",
        srv.port
    ))
    .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=0"]);
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    c.output().expect("run psql")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running `pg_receivewal`, killed (and resumed first, if stopped) on drop.
pub struct Receiver {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Receiver {
    pub fn start(srv: &TestServer, name: &str, extra: &[&str]) -> Receiver {
        let dir = srv.base_dir().join(format!("rcv_{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let log = srv.base_dir().join(format!("rcv_{name}.log"));
        let f = std::fs::File::create(&log).expect("log");
        let child = Command::new(pg_tool("pg_receivewal"))
            .arg("-d")
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres application_name={name}",
                srv.port
            ))
            .arg("-D")
            .arg(&dir)
            .args(["--synchronous", "--no-loop", "-v"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("spawn pg_receivewal");
        Receiver { child, dir, log }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own, not yet reaped child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The bytes pg_receivewal holds of segment `name` (complete or `.partial`).
    pub fn segment(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(name))
            .or_else(|_| std::fs::read(self.dir.join(format!("{name}.partial"))))
            .ok()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Appends settings to lockstep.conf and reloads (SIGHUP through pg_reload_conf()).
pub async fn set_and_reload(srv: &TestServer, client: &tokio_postgres::Client, lines: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(srv.datadir.join("lockstep.conf"))
        .expect("conf");
    writeln!(f, "{lines}").expect("write conf");
    drop(f);
    let from = srv.log_text().len();
    client
        .simple_query("SELECT pg_reload_conf()")
        .await
        .expect("reload");
    assert!(
        srv.wait_for_log(
            "reloading configuration files",
            from,
            Duration::from_secs(10)
        ),
        "no reload"
    );
    // The reload runs on the server's main task right after the log line.
    tokio::time::sleep(Duration::from_millis(100)).await;
}
