//! The base backup client against PostgreSQL 15's BASE_BACKUP.

mod common;

use common::*;
use replication::conninfo::ConnInfo;
use walreceiver::{BaseBackupOptions, BaseBackupProgress, basebackup};

/// Reads a `name = '...'` line of lockstep.conf back (configuration-file quoting undone).
fn conf_value(text: &str, name: &str) -> Option<String> {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))?;
    let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if (c == '\'' || c == '\\') && chars.peek() == Some(&c) {
            chars.next();
        }
        out.push(c);
    }
    Some(out)
}

/// PostgreSQL running on a backup, stopped on drop.
struct PgCopy {
    dir: std::path::PathBuf,
    socket: std::path::PathBuf,
    port: u16,
}

impl PgCopy {
    fn start(pg: &PgCluster, dir: &std::path::Path, port: u16) -> PgCopy {
        let out = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D"])
            .arg(dir)
            .arg("-l")
            .arg(pg.root.join("copy.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl");
        let copy = PgCopy {
            dir: dir.to_owned(),
            socket: pg.root.clone(),
            port,
        };
        assert!(
            out.status.success(),
            "PostgreSQL does not start on the backup: {}",
            std::fs::read_to_string(pg.root.join("copy.log")).unwrap_or_default()
        );
        copy
    }

    fn psql(&self, sql: &str) -> String {
        let out = std::process::Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/psql"),
                "-X",
                "-At",
                "-h",
            ])
            .arg(&self.socket)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgCopy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D"])
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_up_postgres() {
    let pg = PgCluster::start(&[]);
    pg.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 10000)");
    let parent = tempfile::tempdir().expect("tempdir");
    // Inside the cluster's directory (owned by postgres), so PostgreSQL can start the copy.
    let target = pg.root.join("standby");
    let (user, password, _) = AUTH_USERS[0]; // SCRAM
    let conninfo = pg.conninfo(&format!(
        "user={user} password='{password}' application_name='standby one'"
    ));
    let opts = BaseBackupOptions {
        conninfo: conninfo.clone(),
        target_dir: target.clone(),
        write_recovery_conf: true,
        slot: Some("standby_slot".into()),
        fast_checkpoint: true,
    };
    let mut events = Vec::new();
    let result = basebackup(&opts, &mut |p| events.push(p))
        .await
        .expect("base backup");
    assert!(result.end_lsn >= result.start_lsn);
    assert_eq!(result.timeline.0, 1);
    assert!(result.bytes > 1 << 20, "{} bytes", result.bytes);
    assert!(matches!(
        events.first(),
        Some(BaseBackupProgress::Started { total_bytes: Some(t), .. }) if *t > 0
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BaseBackupProgress::Archive { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BaseBackupProgress::Bytes { .. }))
    );
    assert!(matches!(
        events.last(),
        Some(BaseBackupProgress::Finished { .. })
    ));

    // PostgreSQL's files are there, with the WAL needed from start to end.
    assert_eq!(
        std::fs::read_to_string(target.join("PG_VERSION"))
            .expect("PG_VERSION")
            .trim(),
        "15"
    );
    let control = std::fs::read(target.join("global/pg_control")).expect("pg_control");
    assert_eq!(control.len(), 8192, "PostgreSQL's control file is 8 kB");
    assert!(target.join("backup_label").exists());
    let start_seg = result.start_lsn.0 / SEG;
    let wal_name = format!("{:08X}{:08X}{:08X}", 1, start_seg / 256, start_seg % 256);
    let wal = std::fs::read(target.join("pg_wal").join(&wal_name)).expect("WAL segment");
    assert_eq!(wal.len() as u64, SEG);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);

    // -R: standby.signal and a primary_conninfo that parses back to what we gave.
    assert!(target.join("standby.signal").exists());
    let conf = std::fs::read_to_string(target.join("lockstep.conf")).expect("lockstep.conf");
    let written = conf_value(&conf, "primary_conninfo").expect("primary_conninfo line");
    let back = ConnInfo::parse(&written).expect("parses back");
    assert_eq!(back, ConnInfo::parse(&conninfo).expect("parse"));
    assert_eq!(back.application_name(), Some("standby one"));
    assert_eq!(back.password(), Some(password));
    assert_eq!(
        conf_value(&conf, "primary_slot_name").as_deref(),
        Some("standby_slot")
    );

    // PostgreSQL itself starts on the copy (a standby: standby.signal) and sees the data.
    let port = pg.port + 1;
    let auto = target.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).expect("auto.conf");
    text.push_str(&format!("port = {port}\nlisten_addresses = ''\n"));
    std::fs::write(&auto, text).expect("auto.conf");
    let chown = std::process::Command::new("chown")
        .args(["-R", "postgres:"])
        .arg(&target)
        .status()
        .expect("chown");
    assert!(chown.success());
    let copy = PgCopy::start(&pg, &target, port);
    assert_eq!(copy.psql("SELECT count(*) FROM t"), "10000");
    assert_eq!(copy.psql("SELECT pg_is_in_recovery()"), "t");
    drop(copy);

    // A non-empty target is refused and left alone.
    let err = basebackup(&opts, &mut |_| {}).await.expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(target.join("PG_VERSION").exists());

    // A failed backup (wrong password) leaves no directory behind.
    let bad = BaseBackupOptions {
        conninfo: pg.conninfo(&format!("user={user} password=wrong")),
        target_dir: parent.path().join("failed"),
        ..opts
    };
    assert!(basebackup(&bad, &mut |_| {}).await.is_err());
    assert!(!parent.path().join("failed").exists());
}
