//! The README's main job: a local primary and one synchronous standby, each a `lockstep start`
//! child process, made and run the way an operator would by hand.
//!
//! What it does: on first use, `lockstep init` of `<base>/primary` (with
//! `synchronous_standby_names = 'standby1'`), start of the primary, `lockstep basebackup -R` of
//! it into `<base>/standby` (conninfo with `application_name=standby1`); on every use, start of
//! both on their ports, a wait until the primary's `pg_stat_replication` shows the standby
//! `streaming` and `sync`, and a printout of how to connect to each and what that view shows.
//! Ctrl-C (SIGINT) or SIGTERM stops both with a fast shutdown; if either child dies, the other
//! is stopped too and the exit is an error.
//!
//! Where it runs: in the `lockstep` process started without a subcommand; the servers are
//! children running the same executable, so this module only uses the command line and a
//! client connection — nothing in it reaches into a server's internals. The same steps on two
//! machines are in the README.
//!
//! What it deliberately does not do: supervise or restart the servers (a crashed server is
//! reported, not hidden), or pick free ports (the README promises 5433 and 5434; a port in use
//! is reported by the child that cannot bind it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::datadir::DataDir;

/// The standby's name in `synchronous_standby_names` and its `application_name`.
pub const STANDBY_NAME: &str = "standby1";

/// A first start includes recovery of an empty cluster and, for the standby, a base backup:
/// seconds on this machine. A minute leaves room for a slow disk without hanging forever.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct PairOptions {
    pub exe: PathBuf,
    pub base: PathBuf,
    pub primary_port: u16,
    pub standby_port: u16,
}

/// A child server that is stopped (SIGINT: fast shutdown) when dropped.
struct ChildServer {
    name: &'static str,
    child: Child,
}

impl ChildServer {
    fn start(
        name: &'static str,
        exe: &Path,
        datadir: &Path,
        port: u16,
        log: &Path,
    ) -> anyhow::Result<ChildServer> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("could not create {}", log.display()))?;
        let child = Command::new(exe)
            .arg("start")
            .arg("-D")
            .arg(datadir)
            .arg("-c")
            .arg(format!("port={port}"))
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("could not start the {name}"))?;
        Ok(ChildServer { name, child })
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            // The child may have exited between our check and the signal: nothing to do then.
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.signal(rustix::process::Signal::INT);
        // A fast shutdown ends sessions and checkpoints: well under a second here. After ten
        // seconds something is wrong; SIGQUIT (immediate) still leaves a recoverable cluster.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal(rustix::process::Signal::QUIT);
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_tool(exe: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(exe)
        .args(args)
        .output()
        .with_context(|| format!("could not run lockstep {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "lockstep {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

async fn connect(port: u16) -> anyhow::Result<tokio_postgres::Client> {
    let conn =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn wait_ready(server: &mut ChildServer, port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = server.exited() {
            bail!(
                "the {} exited ({status}) while starting; its log is {}",
                server.name,
                log.display()
            );
        }
        if connect(port).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the {} did not accept connections within {READY_TIMEOUT:?}; its log is {}",
                server.name,
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `pg_stat_replication` on the primary, as a small table.
async fn replication_table(port: u16) -> anyhow::Result<(bool, String)> {
    let client = connect(port).await?;
    let rows = client
        .simple_query(
            "SELECT application_name, state, sync_state, sent_lsn, write_lsn, flush_lsn, replay_lsn \
             FROM pg_stat_replication",
        )
        .await?;
    let mut out = String::from(
        " application_name |   state   | sync_state | sent_lsn  | write_lsn | flush_lsn | replay_lsn\n",
    );
    let mut synced = false;
    for msg in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = msg {
            let col = |i| r.get(i).unwrap_or("").to_owned();
            if col(0) == STANDBY_NAME && col(1) == "streaming" && col(2) == "sync" {
                synced = true;
            }
            out.push_str(&format!(
                " {:<16} | {:<9} | {:<10} | {:<9} | {:<9} | {:<9} | {}\n",
                col(0),
                col(1),
                col(2),
                col(3),
                col(4),
                col(5),
                col(6)
            ));
        }
    }
    Ok((synced, out))
}

/// Runs the pair until Ctrl-C or SIGTERM.
pub fn run_local_pair(opts: PairOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(run_pair(opts))
}

async fn run_pair(opts: PairOptions) -> anyhow::Result<()> {
    let exe = opts.exe.as_path();
    std::fs::create_dir_all(&opts.base)
        .with_context(|| format!("could not create {}", opts.base.display()))?;
    let primary_dir = opts.base.join("primary");
    let standby_dir = opts.base.join("standby");
    let primary_log = opts.base.join("primary.log");
    let standby_log = opts.base.join("standby.log");
    let path = |p: &Path| p.display().to_string();

    if !DataDir::new(&primary_dir).is_initialized() {
        run_tool(exe, &["init", "-D", &path(&primary_dir)])?;
        let conf = DataDir::new(&primary_dir).config_file();
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text.push_str(&format!(
            "\n# Added by `lockstep` (the local primary + standby pair): every commit waits\n\
             # for {STANDBY_NAME} to flush it.\nsynchronous_standby_names = '{STANDBY_NAME}'\n"
        ));
        std::fs::write(&conf, text)
            .with_context(|| format!("could not write {}", conf.display()))?;
    }
    let mut primary = ChildServer::start(
        "primary",
        exe,
        &primary_dir,
        opts.primary_port,
        &primary_log,
    )?;
    wait_ready(&mut primary, opts.primary_port, &primary_log).await?;

    if !DataDir::new(&standby_dir).is_initialized() {
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres application_name={STANDBY_NAME}",
            opts.primary_port
        );
        run_tool(
            exe,
            &[
                "basebackup",
                "-d",
                &conninfo,
                "-D",
                &path(&standby_dir),
                "-R",
            ],
        )?;
    }
    let mut standby = ChildServer::start(
        "standby",
        exe,
        &standby_dir,
        opts.standby_port,
        &standby_log,
    )?;
    wait_ready(&mut standby, opts.standby_port, &standby_log).await?;

    let deadline = Instant::now() + READY_TIMEOUT;
    let table = loop {
        let (synced, table) = replication_table(opts.primary_port).await?;
        if synced {
            break table;
        }
        if Instant::now() > deadline {
            bail!(
                "the standby did not become synchronous within {READY_TIMEOUT:?}; logs: {} and {}\n{table}",
                primary_log.display(),
                standby_log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "lockstep is ready: a primary and one synchronous standby.\n\n\
         Primary (read-write; every COMMIT waits for the standby's flush):\n\n    \
         psql -h 127.0.0.1 -p {} -U postgres\n\n\
         Standby (hot standby, read-only):\n\n    \
         psql -h 127.0.0.1 -p {} -U postgres\n\n\
         SELECT ... FROM pg_stat_replication on the primary:\n\n{table}\n\
         Data and logs are in {}. Stop both with Ctrl-C.",
        opts.primary_port,
        opts.standby_port,
        opts.base.display()
    );

    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let died = loop {
        tokio::select! {
            _ = sigint.recv() => break None,
            _ = sigterm.recv() => break None,
            _ = tick.tick() => {
                if let Some(s) = primary.exited() {
                    break Some(format!("the primary exited ({s}); its log is {}", primary_log.display()));
                }
                if let Some(s) = standby.exited() {
                    break Some(format!("the standby exited ({s}); its log is {}", standby_log.display()));
                }
            }
        }
    };
    eprintln!("stopping the standby and the primary");
    standby.stop();
    primary.stop();
    match died {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}
