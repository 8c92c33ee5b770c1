//! The data directory: its layout, `lockstep init`, and the lock that keeps two servers out.
//!
//! ```text
//! DIR/lockstep.conf          settings (PostgreSQL parameter names, `name = value`)
//! DIR/pg_hba.conf            client authentication rules
//! DIR/global/lockstep.control  control file (storage::controlfile)
//! DIR/global/pg_authid       roles and password verifiers (auth crate)
//! DIR/base/snapshot.<LSN>    checkpoint snapshots (storage::checkpoint)
//! DIR/pg_wal/                WAL segments
//! DIR/postmaster.pid         lock file of the running server
//! DIR/standby.signal         present on a standby: start in recovery and stay there
//! DIR/promote.signal         `lockstep promote` asks a running standby to promote
//! DIR/pg_wal/NNNNNNNN.history  timeline history files (replication::timeline)
//! ```
//!
//! `init` builds a cluster that is already consistent: an empty snapshot at the first LSN, a
//! WAL segment holding one shutdown checkpoint record, and a control file pointing at both,
//! so the first start goes through the same recovery path as every later one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base::{Lsn, TimelineId};
use storage::Catalog;
use storage::checkpoint::{SnapshotHeader, write_snapshot};
use storage::controlfile::{ClusterState, ControlFile};
use wal::record::{CheckpointRecord, WalRecord};
use wal::{Wal, WalConfig};

#[derive(Clone, Debug)]
pub struct DataDir {
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("directory \"{0}\" exists but is not empty")]
    NotEmpty(String),
    #[error(
        "\"{0}\" is not a lockstep data directory (no control file); run `lockstep init -D {0}` first"
    )]
    NotInitialized(String),
    #[error("invalid WAL segment size {0}: must be a power of two between 1 MB and 1 GB")]
    BadSegmentSize(u64),
    #[error(
        "lock file \"{path}\" is held by another server (pid {pid}); is another server running in this data directory?"
    )]
    Locked { path: String, pid: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DataDirError {
    let context = context.into();
    move |source| DataDirError::Io { context, source }
}

/// A standby's connection settings (PostgreSQL's names; read from `lockstep.conf` and `-c`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StandbySettings {
    /// `primary_conninfo`: empty means no streaming — the standby replays whatever valid WAL
    /// appears in `pg_wal` (archive-recovery style, see `standby` module header).
    pub primary_conninfo: String,
    /// `primary_slot_name`: the slot to stream from (empty: none).
    pub primary_slot_name: String,
    /// `recovery_target_timeline`: `latest`, `current` or a number.
    pub recovery_target_timeline: String,
    /// `wal_receiver_status_interval` (0 disables periodic replies).
    pub status_interval: std::time::Duration,
    /// `wal_receiver_timeout` (0 disables it).
    pub receiver_timeout: std::time::Duration,
    /// `cluster_name`: the walreceiver's application_name when primary_conninfo sets none.
    pub cluster_name: String,
}

impl StandbySettings {
    pub fn from_config(config: &sql::guc::ServerConfig) -> StandbySettings {
        StandbySettings {
            primary_conninfo: config.get_str("primary_conninfo").trim().to_owned(),
            primary_slot_name: config.get_str("primary_slot_name").trim().to_owned(),
            recovery_target_timeline: config.get_str("recovery_target_timeline"),
            status_interval: std::time::Duration::from_secs(
                config.get_int("wal_receiver_status_interval").max(0) as u64,
            ),
            receiver_timeout: std::time::Duration::from_millis(
                config.get_int("wal_receiver_timeout").max(0) as u64,
            ),
            cluster_name: config.get_str("cluster_name").trim().to_owned(),
        }
    }

    /// Streaming from a primary is configured (a walreceiver will run).
    pub fn streaming(&self) -> bool {
        !self.primary_conninfo.is_empty()
    }
}

/// Options of `lockstep init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub segment_size: u64,
    /// Extra text appended to the default configuration file.
    pub config_text: String,
    /// pg_hba.conf contents.
    pub hba_text: String,
}

/// The held lock on `postmaster.pid`; released when dropped (and by the OS on exit or crash).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl DataDir {
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        DataDir { path: path.into() }
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.path.join("pg_wal")
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join("lockstep.conf")
    }

    pub fn hba_file(&self) -> PathBuf {
        self.path.join("pg_hba.conf")
    }

    pub fn roles_file(&self) -> PathBuf {
        self.path.join("global/pg_authid")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.path.join("postmaster.pid")
    }

    pub fn standby_signal(&self) -> PathBuf {
        self.path.join("standby.signal")
    }

    pub fn promote_signal(&self) -> PathBuf {
        self.path.join("promote.signal")
    }

    /// `standby.signal` exists: the server starts as a standby (PostgreSQL 12+).
    pub fn is_standby(&self) -> bool {
        self.standby_signal().exists()
    }

    /// `promote.signal` exists: promotion was requested by `lockstep promote`.
    pub fn promote_requested(&self) -> bool {
        self.promote_signal().exists()
    }

    /// Removes a signal file; a missing file is fine (the request may be served twice).
    pub fn remove_signal(&self, path: &Path) -> Result<(), DataDirError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DataDirError::Io {
                context: format!("could not remove \"{}\"", path.display()),
                source: e,
            }),
        }
    }

    /// The pid in `postmaster.pid` (first line), if the file exists and is well formed.
    pub fn running_pid(&self) -> Option<i32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub fn is_initialized(&self) -> bool {
        ControlFile::path(&self.path).exists()
    }

    /// Locks the directory for one server. The lock is an OS file lock (released even on
    /// `kill -9`); the file also records the pid and port, as `postmaster.pid` does.
    pub fn lock(&self, port: u16) -> Result<DirLock, DataDirError> {
        let path = self.pid_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!(
                "could not open lock file \"{}\"",
                path.display()
            )))?;
        if file.try_lock().is_err() {
            let pid = fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.lines().next().map(str::to_owned))
                .unwrap_or_default();
            return Err(DataDirError::Locked {
                path: path.display().to_string(),
                pid,
            });
        }
        file.set_len(0).map_err(io(format!(
            "could not write lock file \"{}\"",
            path.display()
        )))?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        write!(
            file,
            "{}\n{}\n{}\n{}\n",
            std::process::id(),
            self.path.display(),
            started,
            port
        )
        .map_err(io(format!(
            "could not write lock file \"{}\"",
            path.display()
        )))?;
        Ok(DirLock { _file: file, path })
    }

    /// Creates a new cluster in an empty or missing directory.
    pub fn init(&self, opts: &InitOptions) -> Result<ControlFile, DataDirError> {
        if !base::lsn::valid_segment_size(opts.segment_size) {
            return Err(DataDirError::BadSegmentSize(opts.segment_size));
        }
        if self.path.exists() {
            let mut entries = fs::read_dir(&self.path)
                .map_err(io(format!("could not read \"{}\"", self.path.display())))?;
            if entries.next().is_some() {
                return Err(DataDirError::NotEmpty(self.path.display().to_string()));
            }
        }
        for d in ["", "global", "base", "pg_wal"] {
            let p = self.path.join(d);
            fs::create_dir_all(&p).map_err(io(format!("could not create \"{}\"", p.display())))?;
        }
        let timeline = TimelineId::FIRST;
        let start = Lsn::FIRST;
        let catalog = Catalog::new();
        let header = SnapshotHeader {
            snapshot_lsn: start,
            redo_lsn: start,
            timeline,
            next_xid: 1,
            next_oid: catalog.next_oid(),
            time: txn::transaction::now_pg_micros(),
            sync_confirmed_lsn: start,
        };
        let (snapshot_file, _) = write_snapshot(&self.path, &catalog, &header)
            .map_err(|e| DataDirError::Other(e.to_string()))?;
        let wal = Wal::open(
            WalConfig {
                dir: self.wal_dir(),
                segment_size: opts.segment_size,
                timeline,
                fsync: true,
                on_fatal: Box::new(|e| tracing::error!("WAL failure during init: {e}")),
            },
            start,
        )
        .map_err(|e| DataDirError::Other(e.to_string()))?;
        wal.spawn_threads();
        let rec = WalRecord::Checkpoint(CheckpointRecord {
            redo_lsn: start,
            snapshot_lsn: start,
            timeline,
            next_xid: 1,
            next_oid: catalog.next_oid(),
            time: header.time,
            shutdown: true,
        });
        let mut checkpoint_lsn = start;
        wal.insert(rec.kind(), 0, 0, &rec.encode(), &mut |s, _| {
            checkpoint_lsn = s
        })
        .map_err(|e| DataDirError::Other(e.to_string()))?;
        wal.shutdown()
            .map_err(|e| DataDirError::Other(e.to_string()))?;
        let control = ControlFile {
            system_identifier: new_system_identifier(),
            segment_size: opts.segment_size,
            state: ClusterState::ShutDown,
            timeline,
            checkpoint_lsn,
            redo_lsn: start,
            snapshot_lsn: start,
            snapshot_file,
            next_xid: 1,
            next_oid: catalog.next_oid(),
            time: header.time,
            min_recovery_point: Lsn(0),
            sync_confirmed_lsn: checkpoint_lsn,
        };
        control
            .write(&self.path)
            .map_err(|e| DataDirError::Other(e.to_string()))?;
        write_new(&self.config_file(), &default_config(opts))?;
        write_new(&self.hba_file(), &opts.hba_text)?;
        Ok(control)
    }
}

fn write_new(path: &Path, text: &str) -> Result<(), DataDirError> {
    storage::controlfile::write_atomically(path, text.as_bytes())
        .map_err(io(format!("could not write \"{}\"", path.display())))
}

/// PostgreSQL's way: seconds and microseconds of the creation time plus the pid, so two
/// clusters made on one machine differ.
fn new_system_identifier() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() << 32)
        | (u64::from(now.subsec_micros()) << 12)
        | u64::from(std::process::id() & 0xFFF)
}

fn default_config(opts: &InitOptions) -> String {
    let mut s = String::from(
        "# lockstep configuration file (PostgreSQL parameter names; `name = value`).\n\
         # Values here are read at start and on SIGHUP / pg_reload_conf(); `-c name=value`\n\
         # on the command line overrides them.\n\
         \n\
         #listen_addresses = 'localhost'\n\
         #port = 5433\n\
         #max_connections = 100\n\
         \n\
         # Durability\n\
         #fsync = on\n\
         #synchronous_commit = on          # off, local, remote_write, on, remote_apply\n\
         #wal_mirror_directory = ''        # a second, identical copy of the WAL\n\
         \n\
         # Checkpoints\n\
         #checkpoint_timeout = 5min\n\
         #max_wal_size = 1GB\n\
         \n\
         # Replication\n\
         #synchronous_standby_names = ''\n\
         #max_wal_senders = 10\n\
         #wal_sender_timeout = 60s\n",
    );
    s.push_str(&opts.config_text);
    s
}

/// A catalog handle for tests and tools.
pub fn empty_catalog() -> Arc<Catalog> {
    Arc::new(Catalog::new())
}
