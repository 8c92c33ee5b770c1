//! BASE_BACKUP, server side, in PostgreSQL 15's new-style protocol (`TARGET 'client'`).
//!
//! Sequence on the wire (protocol.sgml, "BASE_BACKUP"):
//! 1. result set `recptr` (text) `tli` (int8): the start LSN (the checkpoint's redo LSN);
//! 2. result set `spcoid` (oid) `spclocation` (text) `size` (int8): one row, the main
//!    tablespace (NULL, NULL, size in kB with PROGRESS, else NULL);
//! 3. CopyOutResponse, then CopyData messages: `'n'` archive name + tablespace location
//!    (`base.tar`, empty), `'d'` archive bytes, `'p'` Int64 bytes sent so far (PROGRESS);
//!    then CopyDone;
//! 4. result set `recptr` `tli`: the end LSN; CommandComplete `BASE_BACKUP`.
//!
//! The archive, `base.tar` (ustar), holds what a standby needs to start, in this order:
//! `backup_label`, `global/` `global/lockstep.control`, `global/pg_authid`, `lockstep.conf`,
//! `pg_hba.conf`, the checkpoint snapshot file (its name relative to the data directory, as
//! the control file names it), `pg_replslot/` and `pg_tblspc/` (empty), `pg_wal/` and, with `WAL`, the
//! segment files from the redo LSN's segment to the end LSN's segment (whole files) plus
//! timeline history files.
//!
//! Where it runs: the replication connection's task; the checkpoint runs on the
//! checkpointer's blocking thread; the primary keeps serving meanwhile.
//!
//! Invariants: end LSN ≥ checkpoint LSN and is flushed; WAL from the redo LSN on is pinned
//! (like a temporary slot) from before the checkpoint until the backup ends, so the
//! checkpointer cannot remove it; the control file and the snapshot are captured right after
//! the checkpoint (the snapshot file is opened at once, so a later checkpoint deleting it does
//! not matter).
//!
//! What it deliberately does not do: manifests (`MANIFEST 'yes'` is refused with 0A000; use
//! `pg_basebackup --no-manifest`), compression, server-side targets, throttling (`MAX_RATE`
//! is accepted and ignored), tablespaces (there are none).

use std::fs::File;
use std::io::Read;

use base::error::sqlstate;
use base::{Lsn, PgError};
use replication::commands::results::{ResultColumn, ResultRow};
use replication::commands::{
    BackupTarget, BaseBackupOptions, CompressionAlgorithm, ManifestOption,
};
use replication::walsender::WalSndState;

use crate::handler::{Conn, End, StreamEnd};
use crate::wire;

/// CopyData payload size for archive bytes: PostgreSQL's walsender uses 32 kB-ish chunks; 64
/// KiB keeps per-message overhead negligible without large buffers.
const CHUNK: usize = 64 << 10;

fn unsupported(what: &str) -> StreamEnd {
    StreamEnd::Command(PgError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        what.to_owned(),
    ))
}

fn lsn_row(lsn: Lsn, tli: base::TimelineId) -> ResultRow {
    ResultRow {
        columns: vec![
            ResultColumn {
                name: "recptr".into(),
                type_oid: base::types::oid::TEXT,
            },
            ResultColumn {
                name: "tli".into(),
                type_oid: base::types::oid::INT8,
            },
        ],
        values: vec![
            Some(lsn.to_string().into_bytes()),
            Some(tli.to_string().into_bytes()),
        ],
    }
}

/// One ustar header block.
pub fn tar_header(name: &str, size: u64, dir: bool, mtime: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (prefix, name) = if name.len() > 100 {
        match name[..name.len().min(155)].rfind('/') {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => ("", name),
        }
    } else {
        ("", name)
    };
    let nb = name.as_bytes();
    h[..nb.len().min(100)].copy_from_slice(&nb[..nb.len().min(100)]);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}", width = len - 1);
        h[at..at + len - 1].copy_from_slice(&s.as_bytes()[s.len() - (len - 1)..]);
    };
    octal(&mut h, 100, 8, if dir { 0o700 } else { 0o600 });
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime);
    h[156] = if dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..273].copy_from_slice(b"postgres");
    h[297..305].copy_from_slice(b"postgres");
    let pb = prefix.as_bytes();
    h[345..345 + pb.len().min(155)].copy_from_slice(&pb[..pb.len().min(155)]);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

enum Content {
    Dir,
    Bytes(Vec<u8>),
    File(File, u64),
}

struct Entry {
    name: String,
    content: Content,
}

impl Entry {
    fn size(&self) -> u64 {
        match &self.content {
            Content::Dir => 0,
            Content::Bytes(b) => b.len() as u64,
            Content::File(_, n) => *n,
        }
    }
}

struct Archive<'a> {
    c: &'a mut Conn,
    buf: Vec<u8>,
    sent: u64,
    progress: bool,
}

impl Archive<'_> {
    async fn push(&mut self, b: &[u8]) -> Result<(), End> {
        self.buf.extend_from_slice(b);
        while self.buf.len() >= CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.send(&chunk).await?;
        }
        Ok(())
    }

    async fn send(&mut self, chunk: &[u8]) -> Result<(), End> {
        let mut payload = Vec::with_capacity(chunk.len() + 1);
        payload.push(b'd');
        payload.extend_from_slice(chunk);
        wire::copy_data(&mut self.c.out, &payload);
        self.sent += chunk.len() as u64;
        if self.progress {
            let mut p = vec![b'p'];
            p.extend_from_slice(&self.sent.to_be_bytes());
            wire::copy_data(&mut self.c.out, &p);
        }
        self.c.flush().await
    }

    async fn finish(&mut self) -> Result<(), End> {
        let chunk = std::mem::take(&mut self.buf);
        if !chunk.is_empty() {
            self.send(&chunk).await?;
        }
        Ok(())
    }

    async fn entry(&mut self, e: Entry, mtime: u64) -> Result<(), StreamEnd> {
        let size = e.size();
        let name = match e.content {
            Content::Dir => format!("{}/", e.name.trim_end_matches('/')),
            _ => e.name.clone(),
        };
        self.push(&tar_header(
            &name,
            size,
            matches!(e.content, Content::Dir),
            mtime,
        ))
        .await?;
        match e.content {
            Content::Dir => {}
            Content::Bytes(b) => self.push(&b).await?,
            Content::File(mut f, n) => {
                let mut left = n;
                let mut buf = vec![0u8; CHUNK];
                while left > 0 {
                    let want = (left as usize).min(CHUNK);
                    f.read_exact(&mut buf[..want]).map_err(|e| {
                        StreamEnd::Conn(End::Fatal(PgError::fatal(
                            sqlstate::IO_ERROR,
                            format!("could not read file \"{}\": {e}", name),
                        )))
                    })?;
                    self.push(&buf[..want]).await?;
                    left -= want as u64;
                }
            }
        }
        let pad = (512 - (size % 512) as usize) % 512;
        self.push(&vec![0u8; pad]).await?;
        Ok(())
    }
}

fn open(path: &std::path::Path) -> Result<(File, u64), StreamEnd> {
    let f = File::open(path).map_err(|e| {
        StreamEnd::Command(PgError::new(
            sqlstate::IO_ERROR,
            format!("could not open file \"{}\": {e}", path.display()),
        ))
    })?;
    let n = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((f, n))
}

pub(crate) async fn run(c: &mut Conn, opts: BaseBackupOptions) -> Result<(), StreamEnd> {
    match &opts.target {
        BackupTarget::Unspecified | BackupTarget::Client => {}
        BackupTarget::Server { .. } | BackupTarget::Blackhole => {
            return Err(unsupported(
                "backup targets other than \"client\" are not supported",
            ));
        }
    }
    if let Some(spec) = &opts.compression
        && spec.algorithm != CompressionAlgorithm::None
    {
        return Err(unsupported(
            "server-side backup compression is not supported",
        ));
    }
    if opts.manifest != ManifestOption::No {
        return Err(StreamEnd::Command(
            PgError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "backup manifests are not supported",
            )
            .with_hint("Use pg_basebackup --no-manifest."),
        ));
    }
    let ctl = c.ctl.clone();
    let Some(checkpoint) = ctl.checkpoint_requester() else {
        return Err(unsupported("base backups are not available on this server"));
    };
    let slot = c.slot;
    ctl.update(slot, |e| e.state = WalSndState::Backup);
    let pin = ctl.next_id();
    // Keep all WAL until the checkpoint tells us its redo LSN.
    ctl.pin_backup(pin, Lsn::ZERO);
    let r = run_pinned(c, &opts, checkpoint, pin).await;
    ctl.unpin_backup(pin);
    ctl.update(slot, |e| e.state = WalSndState::Startup);
    r
}

async fn run_pinned(
    c: &mut Conn,
    opts: &BaseBackupOptions,
    checkpoint: crate::ctl::CheckpointRequester,
    pin: u64,
) -> Result<(), StreamEnd> {
    let ctl = c.ctl.clone();
    let cp = checkpoint(opts.fast_checkpoint).await.map_err(|e| {
        StreamEnd::Command(PgError::new(
            sqlstate::IO_ERROR,
            format!("checkpoint for base backup failed: {e}"),
        ))
    })?;
    ctl.pin_backup(pin, cp.redo_lsn);
    let tli = ctl.wal.timeline();
    let dd = ctl.data_dir.clone();
    // Capture the control file and open the snapshot at once (see the module header).
    let control_path = storage::controlfile::ControlFile::path(&dd);
    let control = std::fs::read(&control_path).map_err(|e| {
        StreamEnd::Command(PgError::new(
            sqlstate::IO_ERROR,
            format!("could not read file \"{}\": {e}", control_path.display()),
        ))
    })?;
    let (snap_file, snap_len) = open(&dd.join(&cp.snapshot_file))?;
    let small = |name: &str| -> Result<Entry, StreamEnd> {
        let (f, n) = open(&dd.join(name))?;
        Ok(Entry {
            name: name.to_owned(),
            content: Content::File(f, n),
        })
    };
    let seg = ctl.wal.segment_size();
    let start_time = chrono_like_now();
    let label = format!(
        "START WAL LOCATION: {} (file {})\nCHECKPOINT LOCATION: {}\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: {}\nLABEL: {}\nSTART TIMELINE: {}\n",
        cp.redo_lsn,
        base::lsn::segment_file_name(tli, cp.redo_lsn.segment_number(seg), seg),
        cp.checkpoint_lsn,
        start_time,
        opts.label,
        tli.0
    );
    let mut entries = vec![
        Entry {
            name: "backup_label".into(),
            content: Content::Bytes(label.into_bytes()),
        },
        Entry {
            name: "global".into(),
            content: Content::Dir,
        },
        Entry {
            name: storage::controlfile::CONTROL_FILE.into(),
            content: Content::Bytes(control),
        },
        small("global/pg_authid")?,
        small("lockstep.conf")?,
        small("pg_hba.conf")?,
    ];
    // The snapshot may sit in a subdirectory: add its parent directories first.
    let mut parents = Vec::new();
    let mut p = std::path::Path::new(&cp.snapshot_file).parent();
    while let Some(d) = p {
        if !d.as_os_str().is_empty() && d != std::path::Path::new("global") {
            parents.push(d.to_string_lossy().into_owned());
        }
        p = d.parent();
    }
    for d in parents.into_iter().rev() {
        entries.push(Entry {
            name: d,
            content: Content::Dir,
        });
    }
    entries.push(Entry {
        name: cp.snapshot_file.clone(),
        content: Content::File(snap_file, snap_len),
    });
    // Empty directories PostgreSQL clients expect in a data directory (pg_basebackup's
    // plain format syncs pg_tblspc).
    for d in ["pg_replslot", "pg_tblspc"] {
        entries.push(Entry {
            name: d.into(),
            content: Content::Dir,
        });
    }
    entries.push(Entry {
        name: "pg_wal".into(),
        content: Content::Dir,
    });

    wire::result_row(&mut c.out, &lsn_row(cp.redo_lsn, tli));
    wire::command_complete(&mut c.out, "SELECT");
    let total: u64 = entries.iter().map(|e| e.size() + 512).sum();
    let ts = ResultRow {
        columns: vec![
            ResultColumn {
                name: "spcoid".into(),
                type_oid: base::types::oid::OID,
            },
            ResultColumn {
                name: "spclocation".into(),
                type_oid: base::types::oid::TEXT,
            },
            ResultColumn {
                name: "size".into(),
                type_oid: base::types::oid::INT8,
            },
        ],
        values: vec![
            None,
            None,
            opts.progress
                .then(|| (total / 1024 + 1).to_string().into_bytes()),
        ],
    };
    wire::result_row(&mut c.out, &ts);
    wire::command_complete(&mut c.out, "SELECT");
    wire::copy_response(&mut c.out, b'H');
    let mut n = vec![b'n'];
    n.extend_from_slice(b"base.tar\0\0");
    wire::copy_data(&mut c.out, &n);
    c.flush().await?;

    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut ar = Archive {
        c,
        buf: Vec::new(),
        sent: 0,
        progress: opts.progress,
    };
    for e in entries {
        ar.entry(e, mtime).await?;
    }
    // The end LSN: everything flushed now, which includes the checkpoint record.
    let end_lsn = ctl.wal.flush_lsn().max(cp.checkpoint_lsn);
    if opts.include_wal {
        let mut names = Vec::new();
        for segno in cp.redo_lsn.segment_number(seg)..=end_lsn.segment_number(seg) {
            names.push(base::lsn::segment_file_name(tli, segno, seg));
        }
        if let Ok(rd) = std::fs::read_dir(ctl.wal.dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".history") {
                    names.push(name);
                }
            }
        }
        for name in names {
            let (f, len) = open(&ctl.wal.dir().join(&name))?;
            ar.entry(
                Entry {
                    name: format!("pg_wal/{name}"),
                    content: Content::File(f, len),
                },
                mtime,
            )
            .await?;
        }
    }
    ar.push(&[0u8; 1024]).await?;
    ar.finish().await?;
    let c = ar.c;
    wire::copy_done(&mut c.out);
    wire::result_row(&mut c.out, &lsn_row(end_lsn, tli));
    wire::command_complete(&mut c.out, "SELECT");
    wire::command_complete(&mut c.out, "BASE_BACKUP");
    tracing::info!(
        "base backup \"{}\" sent: start {}, end {}",
        opts.label,
        cp.redo_lsn,
        end_lsn
    );
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS UTC` without a date library: enough for `backup_label`.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ustar_header_checksum() {
        let h = tar_header("global/pg_authid", 1234, false, 0);
        assert_eq!(&h[257..262], b"ustar");
        let stored = std::str::from_utf8(&h[148..154]).expect("utf8");
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).expect("octal"), sum);
        assert_eq!(&h[124..135], b"00000002322");
        assert!(chrono_like_now().ends_with("UTC"));
    }
}
