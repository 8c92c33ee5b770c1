//! The base backup client: what `pg_basebackup -Fp -X fetch` does, speaking PostgreSQL 15's
//! new-style BASE_BACKUP protocol, so a standby can be created from a lockstep primary or a
//! PostgreSQL 15 one alike.
//!
//! What it does: sends `BASE_BACKUP (LABEL 'lockstep basebackup', PROGRESS, CHECKPOINT
//! 'fast'|'spread', WAIT false, WAL, MANIFEST 'no')`; reads the first result set (start LSN,
//! timeline) and the tablespace list (whose `size` column, in kB, is the PROGRESS estimate of
//! the total); then, inside CopyOut, CopyData messages typed by their first byte — `'n'` (a
//! new archive: name and tablespace location), `'d'` (archive bytes), `'p'` (bytes done so
//! far) — and after CopyDone the final result set (end LSN, timeline). Each archive is a tar
//! stream, unpacked as it arrives (the `tar` crate on a blocking thread, fed through a
//! bounded channel) into the target directory (the main data directory) or the tablespace's
//! location. With `WAL` the server puts the WAL needed for consistency into the main archive
//! under `pg_wal/`. `-R` ([`BaseBackupOptions::write_recovery_conf`]) then writes
//! `standby.signal` and appends `primary_conninfo` (and `primary_slot_name`) to
//! `lockstep.conf`, quoted as `pg_basebackup -R` quotes them.
//!
//! Where it runs: the `lockstep basebackup` command (and tests), on a tokio runtime.
//!
//! What it does not do: tar or compressed output formats, tablespace mapping, WAL streaming
//! in parallel (`-X stream`), backup manifests, checksum verification, `.pgpass`.
//!
//! Invariants: the target directory is created with mode 0700 (PostgreSQL refuses to start
//! on a group/world-accessible data directory) and must be new or empty, so a backup never
//! mixes with older files; archive bytes are written only through the tar unpacker, which
//! refuses paths that leave the directory (`..`, absolute paths).
//!
//! How it fails: a [`BaseBackupError`]; a backup that fails part-way removes what it
//! created (the directory itself if it made it), as `pg_basebackup` does, so a half-copied
//! data directory is never left to be started by mistake.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base::{Lsn, TimelineId};
use bytes::{Buf, Bytes};
use replication::conninfo::{ConnInfo, quote_config_value};
use tokio::sync::mpsc;

use crate::conn::{
    ConnError, ConnectOptions, CopyKind, CopyMessage, PgConnection, ResultSet, quote_literal,
};

/// Archive chunks in flight between the socket and the unpacking thread: enough to keep
/// both busy (PostgreSQL sends 32 KiB chunks, so ~2 MiB), few enough to bound memory when
/// the disk is slower than the network.
const CHUNKS_IN_FLIGHT: usize = 64;

/// The base backup's settings.
#[derive(Clone, Debug)]
pub struct BaseBackupOptions {
    /// libpq connection string of the server to back up.
    pub conninfo: String,
    /// The data directory to create (must not exist, or be empty).
    pub target_dir: PathBuf,
    /// `-R`: write `standby.signal` and `primary_conninfo` to `lockstep.conf`.
    pub write_recovery_conf: bool,
    /// `-S`: the replication slot the standby will use (written as `primary_slot_name`).
    pub slot: Option<String>,
    /// `-c fast`: ask for an immediate checkpoint instead of a spread one.
    pub fast_checkpoint: bool,
}

/// Progress reports, in order: `Started`, then `Archive` and `Bytes` as data arrives,
/// `Finished` at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseBackupProgress {
    Started {
        start_lsn: Lsn,
        timeline: TimelineId,
        /// The server's estimate of the total size (PROGRESS), if it sent one.
        total_bytes: Option<u64>,
    },
    Archive {
        name: String,
        tablespace_location: String,
    },
    Bytes {
        done: u64,
        total: Option<u64>,
    },
    Finished {
        end_lsn: Lsn,
    },
}

/// What a finished backup reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseBackupResult {
    pub start_lsn: Lsn,
    pub end_lsn: Lsn,
    pub timeline: TimelineId,
    /// Archive bytes received.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaseBackupError {
    #[error(transparent)]
    Connection(#[from] ConnError),
    #[error("directory \"{0}\" exists but is not empty")]
    TargetNotEmpty(PathBuf),
    #[error("could not {what} \"{path}\": {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("could not extract the backup archive: {0}")]
    Extract(io::Error),
    #[error("unexpected base backup protocol data: {0}")]
    Protocol(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BaseBackupError + use<> {
    let path = path.to_owned();
    move |source| BaseBackupError::Io { what, path, source }
}

/// Creates `dir` with mode 0700, or checks that it is empty. Returns whether it was created.
fn prepare_target(dir: &Path) -> Result<bool, BaseBackupError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BaseBackupError::TargetNotEmpty(dir.to_owned()));
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("change permissions of directory", dir))?;
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err("create directory", dir))?;
            Ok(true)
        }
        Err(e) => Err(io_err("open directory", dir)(e)),
    }
}

fn remove_contents(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Start/end position result set: `recptr` (text), `tli` (int8).
fn parse_position(rs: &ResultSet) -> Option<(Lsn, TimelineId)> {
    let lsn = rs.text(0, 0)?.parse::<Lsn>().ok()?;
    let tli = rs.text(0, 1)?.parse::<u32>().ok()?;
    Some((lsn, TimelineId(tli)))
}

/// A `Read` over chunks arriving from the async side.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// One archive being unpacked on a blocking thread.
struct Unpacker {
    tx: mpsc::Sender<Bytes>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Unpacker {
    fn start(dir: PathBuf) -> Unpacker {
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let task = tokio::task::spawn_blocking(move || {
            let mut archive = tar::Archive::new(ChannelReader {
                rx,
                cur: Bytes::new(),
            });
            archive.set_overwrite(true);
            archive.set_preserve_mtime(true);
            let res = archive.unpack(&dir);
            // Drain whatever follows the archive's end so the sender never blocks on a
            // reader that has stopped.
            let mut rest = archive.into_inner();
            let _ = io::copy(&mut rest, &mut io::sink());
            res
        });
        Unpacker { tx, task }
    }

    async fn send(&mut self, data: Bytes) -> Result<(), BaseBackupError> {
        if self.tx.send(data).await.is_err() {
            // The unpacker ended early: its error says why.
            return Err(self.finish_err().await);
        }
        Ok(())
    }

    async fn finish_err(&mut self) -> BaseBackupError {
        match (&mut self.task).await {
            Ok(Err(e)) => BaseBackupError::Extract(e),
            Ok(Ok(())) => BaseBackupError::Extract(io::Error::other("archive ended early")),
            Err(e) => BaseBackupError::Extract(io::Error::other(e.to_string())),
        }
    }

    async fn finish(self) -> Result<(), BaseBackupError> {
        drop(self.tx);
        match self.task.await {
            Ok(r) => r.map_err(BaseBackupError::Extract),
            Err(e) => Err(BaseBackupError::Extract(io::Error::other(e.to_string()))),
        }
    }
}

/// Takes a base backup into `opts.target_dir`. See the module header.
pub async fn basebackup(
    opts: &BaseBackupOptions,
    progress: &mut (dyn FnMut(BaseBackupProgress) + Send),
) -> Result<BaseBackupResult, BaseBackupError> {
    let info = ConnInfo::parse(&opts.conninfo).map_err(ConnError::from)?;
    info.validate().map_err(ConnError::from)?;
    let created = prepare_target(&opts.target_dir)?;
    let result = run_backup(opts, &info, progress).await;
    if result.is_err() {
        if created {
            let _ = fs::remove_dir_all(&opts.target_dir);
        } else {
            remove_contents(&opts.target_dir);
        }
    }
    result
}

async fn run_backup(
    opts: &BaseBackupOptions,
    info: &ConnInfo,
    progress: &mut (dyn FnMut(BaseBackupProgress) + Send),
) -> Result<BaseBackupResult, BaseBackupError> {
    let conn_opts = ConnectOptions {
        replication: Some("true".to_owned()),
        fallback_application_name: Some("lockstep_basebackup".to_owned()),
    };
    let mut conn = PgConnection::connect_info(info, &conn_opts).await?;
    let cmd = format!(
        "BASE_BACKUP (LABEL {}, PROGRESS, CHECKPOINT {}, WAIT false, WAL, MANIFEST 'no')",
        quote_literal("lockstep basebackup"),
        if opts.fast_checkpoint {
            "'fast'"
        } else {
            "'spread'"
        }
    );
    let (sets, kind) = conn.query_until_copy(&cmd).await?;
    if kind != CopyKind::Out {
        return Err(BaseBackupError::Protocol(format!(
            "BASE_BACKUP started a {kind:?} copy"
        )));
    }
    let (start_lsn, timeline) = sets
        .first()
        .and_then(parse_position)
        .ok_or_else(|| BaseBackupError::Protocol("no start position".into()))?;
    // Tablespace list: spcoid, spclocation, size (kB, with PROGRESS).
    let total_bytes = sets.get(1).and_then(|ts| {
        let mut sum = 0u64;
        for r in 0..ts.rows.len() {
            sum = sum.saturating_add(ts.text(r, 2)?.parse::<u64>().ok()?.saturating_mul(1024));
        }
        Some(sum)
    });
    progress(BaseBackupProgress::Started {
        start_lsn,
        timeline,
        total_bytes,
    });

    let mut unpacker: Option<Unpacker> = None;
    let mut bytes = 0u64;
    loop {
        let data = match conn.recv_copy().await? {
            CopyMessage::Done => break,
            CopyMessage::Data(d) => d,
        };
        let Some((&kind, body)) = data.split_first() else {
            return Err(BaseBackupError::Protocol("empty CopyData".into()));
        };
        match kind {
            b'n' => {
                let mut parts = body.splitn(3, |&b| b == 0);
                let (Some(name), Some(location)) = (parts.next(), parts.next()) else {
                    return Err(BaseBackupError::Protocol("malformed 'n' message".into()));
                };
                let name = String::from_utf8_lossy(name).into_owned();
                let location = String::from_utf8_lossy(location).into_owned();
                if let Some(u) = unpacker.take() {
                    u.finish().await?;
                }
                let dir = if location.is_empty() {
                    opts.target_dir.clone()
                } else {
                    // No tablespace mapping: like pg_basebackup -Fp without -T, a tablespace
                    // goes back where it was.
                    let dir = PathBuf::from(&location);
                    prepare_target(&dir)?;
                    dir
                };
                progress(BaseBackupProgress::Archive {
                    name,
                    tablespace_location: location,
                });
                unpacker = Some(Unpacker::start(dir));
            }
            b'd' => {
                let u = unpacker.as_mut().ok_or_else(|| {
                    BaseBackupError::Protocol("archive data before an archive began".into())
                })?;
                bytes += (data.len() - 1) as u64;
                u.send(data.slice(1..)).await?;
            }
            b'p' => {
                let done = body
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(i64::from_be_bytes)
                    .ok_or_else(|| BaseBackupError::Protocol("malformed 'p' message".into()))?;
                progress(BaseBackupProgress::Bytes {
                    done: u64::try_from(done).unwrap_or(0),
                    total: total_bytes,
                });
            }
            // A manifest was not asked for; anything else is not PostgreSQL 15's protocol.
            other => {
                return Err(BaseBackupError::Protocol(format!(
                    "unexpected copy message type 0x{other:02x}"
                )));
            }
        }
    }
    if let Some(u) = unpacker.take() {
        u.finish().await?;
    }
    let sets = conn.finish_copy().await?;
    let (end_lsn, _) = sets
        .iter()
        .find_map(parse_position)
        .ok_or_else(|| BaseBackupError::Protocol("no end position".into()))?;
    conn.close().await;

    // WAL may be absent when the server streams it separately; a data directory needs it.
    let wal = opts.target_dir.join("pg_wal");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&wal)
        .map_err(io_err("create directory", &wal))?;
    if opts.write_recovery_conf {
        write_recovery_conf(&opts.target_dir, info, opts.slot.as_deref())?;
    }
    progress(BaseBackupProgress::Finished { end_lsn });
    Ok(BaseBackupResult {
        start_lsn,
        end_lsn,
        timeline,
        bytes,
    })
}

/// The connection string a standby made from this backup uses: the one given, without the
/// settings that only made sense for the backup connection (`pg_basebackup -R` leaves out
/// `dbname`, `replication` and `fallback_application_name` too).
pub fn standby_conninfo(info: &ConnInfo) -> ConnInfo {
    let mut out = ConnInfo::new();
    for (k, v) in info.iter() {
        if matches!(k, "dbname" | "replication" | "fallback_application_name") {
            continue;
        }
        out.set(k, v);
    }
    out
}

/// `-R`: `standby.signal`, and `primary_conninfo`/`primary_slot_name` appended to
/// `lockstep.conf` (PostgreSQL appends them to `postgresql.auto.conf`).
pub fn write_recovery_conf(
    dir: &Path,
    info: &ConnInfo,
    slot: Option<&str>,
) -> Result<(), BaseBackupError> {
    use std::io::Write;
    let signal = dir.join("standby.signal");
    fs::write(&signal, b"").map_err(io_err("create file", &signal))?;
    let mut text = String::from("# Written by lockstep basebackup -R\n");
    text.push_str(&format!(
        "primary_conninfo = {}\n",
        quote_config_value(&standby_conninfo(info).to_string())
    ));
    if let Some(s) = slot {
        text.push_str(&format!("primary_slot_name = {}\n", quote_config_value(s)));
    }
    let conf = dir.join("lockstep.conf");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&conf)
        .map_err(io_err("open file", &conf))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_err("write file", &conf))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_conf_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        // libpq quoting: a backslash escapes the next character inside quotes.
        let info = ConnInfo::parse(
            "host=db1 port=5433 user=rep password='it\\'s \\\\ x' dbname=replication application_name='standby 1'",
        )
        .expect("parse");
        assert_eq!(info.password(), Some("it's \\ x"));
        write_recovery_conf(dir.path(), &info, Some("slot_1")).expect("write");
        assert!(dir.path().join("standby.signal").exists());
        let text = fs::read_to_string(dir.path().join("lockstep.conf")).expect("read");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("primary_conninfo = "))
            .expect("line");
        // Undo the configuration file's quoting ('' and \\ doubled).
        let inner = line
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
            .expect("quoted")
            .replace("''", "'")
            .replace("\\\\", "\\");
        let back = ConnInfo::parse(&inner).expect("parses back");
        assert_eq!(back, standby_conninfo(&info));
        assert_eq!(back.get("dbname"), None);
        assert_eq!(back.application_name(), Some("standby 1"));
        assert!(text.contains("primary_slot_name = 'slot_1'"));
    }

    #[test]
    fn target_must_be_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("new");
        assert!(prepare_target(&t).expect("create"));
        let mode = fs::metadata(&t).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!prepare_target(&t).expect("empty is fine"));
        fs::write(t.join("x"), b"").expect("file");
        assert!(matches!(
            prepare_target(&t),
            Err(BaseBackupError::TargetNotEmpty(_))
        ));
    }
}
