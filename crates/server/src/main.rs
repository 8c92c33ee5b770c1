//! `lockstep`: the command line, modelled on PostgreSQL's tools (`initdb`, `postgres`,
//! `pg_waldump`, `pg_ctl`).
//!
//! Without a subcommand it runs the default local setup: a primary on port 5433 and one
//! synchronous standby on port 5434 under `./lockstep-data`, created on first use, printing how
//! to connect to each (see `server::cluster`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base::Lsn;
use clap::{Parser, Subcommand};
use server::datadir::{DataDir, InitOptions};

/// mimalloc instead of glibc malloc: per-thread free lists suit a server whose session loops
/// allocate and free small rows, plans and buffers on every statement.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lockstep",
    version,
    about = "A PostgreSQL-compatible server built for synchronous WAL-shipping replication"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new data directory (like initdb).
    Init {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        /// WAL segment size in megabytes (power of two, 1 to 1024), like initdb --wal-segsize.
        #[arg(long = "wal-segsize", default_value_t = 16)]
        wal_segsize: u64,
        /// Name of the bootstrap superuser.
        #[arg(short = 'U', long = "username", default_value = "postgres")]
        username: String,
        /// Authentication method for local and loopback connections in pg_hba.conf.
        #[arg(short = 'A', long = "auth", default_value = "trust")]
        auth: String,
        /// Read the superuser's password from this file (first line).
        #[arg(long = "pwfile")]
        pwfile: Option<PathBuf>,
    },
    /// Run the server in the foreground (like postgres -D).
    Start {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        /// Set a configuration parameter, overriding lockstep.conf (repeatable).
        #[arg(short = 'c', value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
    /// Print WAL records (like pg_waldump).
    Waldump {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        /// First LSN to print (default: the last checkpoint's redo LSN).
        #[arg(short = 's', long = "start")]
        start: Option<String>,
        /// Stop before this LSN (default: the end of valid WAL).
        #[arg(short = 'e', long = "end")]
        end: Option<String>,
        /// Timeline to read (default: the control file's).
        #[arg(short = 't', long = "timeline")]
        timeline: Option<u32>,
    },
    /// Force a checkpoint on the server running in DIR (like the CHECKPOINT command).
    Checkpoint {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        #[arg(short = 'U', long = "username", default_value = "postgres")]
        username: String,
    },
    /// Copy a running primary's data directory over a replication connection (like
    /// pg_basebackup -Fp -X fetch).
    Basebackup {
        /// Connection string of the server to copy.
        #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
        conninfo: String,
        /// Directory to create (must not exist or be empty).
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        /// Write standby.signal and primary_conninfo to lockstep.conf.
        #[arg(short = 'R', long = "write-recovery-conf")]
        write_recovery_conf: bool,
        /// Show progress.
        #[arg(short = 'P', long = "progress")]
        progress: bool,
        /// Replication slot for the standby (written as primary_slot_name with -R).
        #[arg(short = 'S', long = "slot")]
        slot: Option<String>,
        /// Checkpoint mode on the server.
        #[arg(short = 'c', long = "checkpoint", value_parser = ["fast", "spread"], default_value = "spread")]
        checkpoint: String,
    },
    /// Set a role's password in the roles file (a running server picks it up on SIGHUP).
    Passwd {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        username: String,
        /// Read the password from this file instead of prompting.
        #[arg(long = "pwfile")]
        pwfile: Option<PathBuf>,
    },
    /// Promote the standby running in DIR to primary (like pg_ctl promote).
    Promote {
        #[arg(short = 'D', long = "pgdata")]
        datadir: PathBuf,
        /// Do not wait for the promotion to finish.
        #[arg(short = 'W', long = "no-wait")]
        no_wait: bool,
        /// Seconds to wait (pg_ctl's default is 60).
        #[arg(short = 't', long = "timeout", default_value_t = 60)]
        timeout: u64,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOCKSTEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn parse_settings(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|s| sql::guc::ServerConfig::parse_override(s).map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}

fn read_password_file(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

fn init(
    datadir: PathBuf,
    wal_segsize: u64,
    username: &str,
    auth: &str,
    pwfile: Option<PathBuf>,
) -> anyhow::Result<()> {
    let method = match auth {
        "trust" | "scram-sha-256" | "password" | "md5" => auth,
        other => bail!(
            "invalid authentication method \"{other}\" (trust, scram-sha-256, md5 or password)"
        ),
    };
    let password = pwfile.as_ref().map(read_password_file).transpose()?;
    if method != "trust" && password.is_none() {
        bail!("authentication method \"{method}\" needs a superuser password: use --pwfile");
    }
    let dir = DataDir::new(&datadir);
    let hba = if method == "trust" {
        auth::hba::DEFAULT_PG_HBA.to_owned()
    } else {
        auth::hba::DEFAULT_PG_HBA.replace(" trust", &format!(" {method}"))
    };
    dir.init(&InitOptions {
        segment_size: wal_segsize << 20,
        config_text: String::new(),
        hba_text: hba,
    })?;
    let mut role = auth::roles::Role::bootstrap_superuser(username);
    if let Some(p) = &password {
        role.password = Some(auth::scram::scram_verifier(
            p,
            auth::scram::SCRAM_ITERATIONS_DEFAULT,
        ));
    }
    auth::roles::RoleStore::initialize(&dir.path, vec![role])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Success. You can now start the database server using:\n\n    lockstep start -D {}\n",
        datadir.display()
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lockstep")
        .build()
        .context("could not start the async runtime")
}

fn start(datadir: PathBuf, settings: Vec<(String, String)>) -> anyhow::Result<()> {
    // Readiness is logged by the node ("database system is ready to accept connections").
    runtime()?.block_on(server::node::run(DataDir::new(datadir), settings, |_| {}))
}

fn waldump(
    datadir: PathBuf,
    start: Option<String>,
    end: Option<String>,
    timeline: Option<u32>,
) -> anyhow::Result<()> {
    let dir = DataDir::new(&datadir);
    let control = storage::controlfile::ControlFile::read(&dir.path)?;
    let parse = |s: &str| s.parse::<Lsn>().map_err(|e| anyhow::anyhow!("{e}"));
    let start = start
        .as_deref()
        .map(parse)
        .transpose()?
        .unwrap_or(control.redo_lsn);
    let end = end.as_deref().map(parse).transpose()?;
    let tli = timeline.map(base::TimelineId).unwrap_or(control.timeline);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match wal::dump::dump(
        &dir.wal_dir(),
        control.segment_size,
        tli,
        start,
        end,
        &mut out,
    )? {
        wal::ReadOutcome::EndOfWal(lsn) => {
            if end.is_none_or(|e| lsn < e) {
                eprintln!("end of valid WAL at {lsn}");
            }
            Ok(())
        }
        wal::ReadOutcome::Corrupt {
            lsn,
            segment,
            reason,
            ..
        } => {
            bail!(
                "invalid record at {lsn} in segment file \"{segment}\": {reason} (followed by valid WAL: corruption)"
            )
        }
        wal::ReadOutcome::Record(_) => Ok(()),
    }
}

fn checkpoint(datadir: PathBuf, username: String) -> anyhow::Result<()> {
    let pidfile = DataDir::new(&datadir).pid_file();
    let text = std::fs::read_to_string(&pidfile).with_context(|| {
        format!(
            "no server running in {} (no {})",
            datadir.display(),
            pidfile.display()
        )
    })?;
    let port: u16 = text
        .lines()
        .nth(3)
        .and_then(|l| l.trim().parse().ok())
        .context("cannot read the port from postmaster.pid")?;
    runtime()?.block_on(async move {
        let conn = format!("host=127.0.0.1 port={port} user={username} dbname=postgres");
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("could not connect to the server on port {port}"))?;
        tokio::spawn(connection);
        client
            .batch_execute("CHECKPOINT")
            .await
            .context("CHECKPOINT failed")?;
        println!("checkpoint complete");
        Ok(())
    })
}

fn basebackup(opts: walreceiver::BaseBackupOptions, show_progress: bool) -> anyhow::Result<()> {
    use walreceiver::BaseBackupProgress as P;
    let bar = indicatif::ProgressBar::hidden();
    if show_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bytes}/{total_bytes} ({percent}%) {wide_bar} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let result = runtime()?.block_on(walreceiver::basebackup(&opts, &mut |p| match p {
        P::Started { total_bytes, .. } => bar.set_length(total_bytes.unwrap_or(0)),
        P::Archive { name, .. } => bar.set_message(name),
        // The estimate can be low (files grow during the backup), as pg_basebackup's is.
        P::Bytes { done, .. } => {
            if bar.length().is_some_and(|l| done > l) {
                bar.set_length(done);
            }
            bar.set_position(done);
        }
        P::Finished { .. } => bar.finish(),
    }))?;
    println!(
        "base backup of {} bytes complete in {}: WAL {} to {} on timeline {}",
        result.bytes,
        opts.target_dir.display(),
        result.start_lsn,
        result.end_lsn,
        result.timeline
    );
    Ok(())
}

/// `pg_ctl promote`: write `promote.signal`, send SIGUSR1 to the server named in
/// `postmaster.pid`, and (unless told not to) wait until the control file says "in
/// production" and `standby.signal` is gone.
fn promote(datadir: PathBuf, wait: bool, timeout: u64) -> anyhow::Result<()> {
    let dd = DataDir::new(&datadir);
    let pid = dd.running_pid().with_context(|| {
        format!(
            "PID file \"{}\" does not exist; is the server running?",
            dd.pid_file().display()
        )
    })?;
    if !dd.is_standby() {
        bail!("cannot promote server; server is not in standby mode");
    }
    std::fs::write(dd.promote_signal(), b"").with_context(|| {
        format!(
            "could not write promote signal file \"{}\"",
            dd.promote_signal().display()
        )
    })?;
    // SAFETY: kill(2) with a pid read from the lock file and a signal number; no memory is
    // shared. The server installs its SIGUSR1 handler before it writes that file.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGUSR1) };
    if rc != 0 {
        let _ = std::fs::remove_file(dd.promote_signal());
        bail!(
            "could not send promote signal (PID: {pid}): {}",
            std::io::Error::last_os_error()
        );
    }
    if !wait {
        println!("server promoting");
        return Ok(());
    }
    print!("waiting for server to promote...");
    // Poll like pg_ctl (it checks the control file every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    while std::time::Instant::now() < deadline {
        let promoted = !dd.is_standby()
            && storage::controlfile::ControlFile::read(&datadir)
                .is_ok_and(|c| c.state == storage::controlfile::ClusterState::InProduction);
        if promoted {
            println!(" done\nserver promoted");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!(" stopped waiting");
    bail!("server did not promote in time");
}

fn passwd(datadir: PathBuf, username: String, pwfile: Option<PathBuf>) -> anyhow::Result<()> {
    let password = match pwfile {
        Some(p) => read_password_file(&p)?,
        None => {
            let a = rpassword::prompt_password(format!("New password for role \"{username}\": "))?;
            let b = rpassword::prompt_password("Enter it again: ")?;
            if a != b {
                bail!("passwords didn't match");
            }
            a
        }
    };
    let store = auth::roles::RoleStore::open(&datadir).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .set_password(&username, Some(&password))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "password of role \"{username}\" changed; send SIGHUP to a running server (or SELECT pg_reload_conf()) to use it"
    );
    Ok(())
}

/// The README's main job: a primary and a synchronous standby under ./lockstep-data.
fn local_default() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the lockstep executable")?;
    server::cluster::run_local_pair(server::cluster::PairOptions {
        exe,
        base: PathBuf::from("lockstep-data"),
        primary_port: 5433,
        standby_port: 5434,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        None => local_default(),
        Some(Command::Init {
            datadir,
            wal_segsize,
            username,
            auth,
            pwfile,
        }) => init(datadir, wal_segsize, &username, &auth, pwfile),
        Some(Command::Start { datadir, settings }) => {
            parse_settings(&settings).and_then(|s| start(datadir, s))
        }
        Some(Command::Waldump {
            datadir,
            start,
            end,
            timeline,
        }) => waldump(datadir, start, end, timeline),
        Some(Command::Checkpoint { datadir, username }) => checkpoint(datadir, username),
        Some(Command::Basebackup {
            conninfo,
            datadir,
            write_recovery_conf,
            progress,
            slot,
            checkpoint,
        }) => basebackup(
            walreceiver::BaseBackupOptions {
                conninfo,
                target_dir: datadir,
                write_recovery_conf,
                slot,
                fast_checkpoint: checkpoint == "fast",
            },
            progress,
        ),
        Some(Command::Passwd {
            datadir,
            username,
            pwfile,
        }) => passwd(datadir, username, pwfile),
        Some(Command::Promote {
            datadir,
            no_wait,
            timeout,
        }) => promote(datadir, !no_wait, timeout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockstep: {e:#}");
            ExitCode::FAILURE
        }
    }
}
