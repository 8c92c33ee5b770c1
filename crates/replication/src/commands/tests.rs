//! Table-driven tests of the replication command parser.

use base::error::sqlstate;
use base::{Lsn, TimelineId};

use super::*;

fn slot(name: &str, temporary: bool, reserve_wal: bool) -> ReplicationCommand {
    ReplicationCommand::CreateReplicationSlot {
        slot_name: name.into(),
        temporary,
        reserve_wal,
    }
}

fn start(slot: Option<&str>, lsn: u64, tli: Option<u32>) -> ReplicationCommand {
    ReplicationCommand::StartReplication {
        slot_name: slot.map(Into::into),
        start_lsn: Lsn(lsn),
        timeline: tli.map(TimelineId),
    }
}

fn backup(f: impl FnOnce(&mut BaseBackupOptions)) -> ReplicationCommand {
    let mut o = BaseBackupOptions::default();
    f(&mut o);
    ReplicationCommand::BaseBackup(o)
}

#[test]
fn accepted_commands() {
    use ReplicationCommand::*;
    let cases: Vec<(&str, ReplicationCommand)> = vec![
        ("IDENTIFY_SYSTEM", IdentifySystem),
        ("identify_system;", IdentifySystem),
        ("  Identify_System ;  \n", IdentifySystem),
        (
            "SHOW wal_segment_size",
            Show {
                name: "wal_segment_size".into(),
            },
        ),
        (
            "SHOW Server_Version;",
            Show {
                name: "server_version".into(),
            },
        ),
        (
            "SHOW \"Foo\".bar",
            Show {
                name: "Foo.bar".into(),
            },
        ),
        (
            "SHOW timeline",
            Show {
                name: "timeline".into(),
            },
        ),
        (
            "TIMELINE_HISTORY 2",
            TimelineHistory {
                timeline: TimelineId(2),
            },
        ),
        (
            "TIMELINE_HISTORY 4294967295",
            TimelineHistory {
                timeline: TimelineId(u32::MAX),
            },
        ),
        (
            "CREATE_REPLICATION_SLOT s1 PHYSICAL",
            slot("s1", false, false),
        ),
        (
            "CREATE_REPLICATION_SLOT s1 TEMPORARY PHYSICAL RESERVE_WAL",
            slot("s1", true, true),
        ),
        (
            "CREATE_REPLICATION_SLOT \"s_1\" PHYSICAL (RESERVE_WAL)",
            slot("s_1", false, true),
        ),
        (
            "CREATE_REPLICATION_SLOT S1 PHYSICAL (RESERVE_WAL true)",
            slot("s1", false, true),
        ),
        (
            "CREATE_REPLICATION_SLOT s1 PHYSICAL (reserve_wal 0)",
            slot("s1", false, false),
        ),
        (
            "CREATE_REPLICATION_SLOT s1 PHYSICAL (RESERVE_WAL 'OFF')",
            slot("s1", false, false),
        ),
        // Keywords are contextual: a slot may be called `slot` or `temporary`.
        (
            "CREATE_REPLICATION_SLOT slot PHYSICAL",
            slot("slot", false, false),
        ),
        (
            "CREATE_REPLICATION_SLOT temporary TEMPORARY PHYSICAL",
            slot("temporary", true, false),
        ),
        (
            "DROP_REPLICATION_SLOT s1",
            DropReplicationSlot {
                slot_name: "s1".into(),
                wait: false,
            },
        ),
        (
            "DROP_REPLICATION_SLOT \"Odd Name\" WAIT;",
            DropReplicationSlot {
                slot_name: "Odd Name".into(),
                wait: true,
            },
        ),
        (
            "READ_REPLICATION_SLOT s1",
            ReadReplicationSlot {
                slot_name: "s1".into(),
            },
        ),
        ("START_REPLICATION 0/3000000", start(None, 0x300_0000, None)),
        (
            "START_REPLICATION SLOT s1 PHYSICAL 1/A8 TIMELINE 3",
            start(Some("s1"), 0x1_0000_00A8, Some(3)),
        ),
        (
            "start_replication physical 0/1a2b3c timeline 1;",
            start(None, 0x1A_2B3C, Some(1)),
        ),
        // A slot name made of hex digits is still a name (no slash, no LSN).
        (
            "START_REPLICATION SLOT deadbeef 0/0",
            start(Some("deadbeef"), 0, None),
        ),
        (
            "START_REPLICATION FFFFFFFF/FFFFFFFF",
            start(None, u64::MAX, None),
        ),
        ("BASE_BACKUP", backup(|_| {})),
        ("BASE_BACKUP;", backup(|_| {})),
        // What pg_basebackup 15 sends for `pg_basebackup -D x -P -c fast` (default -X stream).
        (
            "BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  CHECKPOINT 'fast',  WAIT 0,  MANIFEST 'yes',  TARGET 'client')",
            backup(|o| {
                o.label = "pg_basebackup base backup".into();
                o.progress = true;
                o.fast_checkpoint = true;
                o.wait_for_wal_archive = false;
                o.manifest = ManifestOption::Yes;
                o.target = BackupTarget::Client;
            }),
        ),
        // What pg_basebackup 14 sends for `-P -c fast -X fetch -r 1024 -Ft --no-verify-checksums`.
        (
            "BASE_BACKUP LABEL 'pg_basebackup base backup' PROGRESS FAST WAL NOWAIT MAX_RATE 1024 TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'",
            backup(|o| {
                o.label = "pg_basebackup base backup".into();
                o.progress = true;
                o.fast_checkpoint = true;
                o.include_wal = true;
                o.wait_for_wal_archive = false;
                o.max_rate = Some(1024);
                o.tablespace_map = true;
                o.verify_checksums = false;
                o.manifest = ManifestOption::Yes;
                o.manifest_checksums = ManifestChecksum::Sha256;
            }),
        ),
        (
            "BASE_BACKUP (label 'it''s', wal, max_rate 32, tablespace_map false, verify_checksums off, checkpoint SPREAD, manifest 'force-encode', manifest_checksums 'none')",
            backup(|o| {
                o.label = "it's".into();
                o.include_wal = true;
                o.max_rate = Some(32);
                o.verify_checksums = false;
                o.manifest = ManifestOption::ForceEncode;
                o.manifest_checksums = ManifestChecksum::None;
            }),
        ),
        (
            "BASE_BACKUP (MANIFEST 'n', PROGRESS 1, WAIT true)",
            backup(|o| o.progress = true),
        ),
        (
            "BASE_BACKUP (TARGET 'server', TARGET_DETAIL '/backups/x')",
            backup(|o| {
                o.target = BackupTarget::Server {
                    path: "/backups/x".into(),
                }
            }),
        ),
        (
            "BASE_BACKUP (TARGET blackhole)",
            backup(|o| o.target = BackupTarget::Blackhole),
        ),
        (
            "BASE_BACKUP (COMPRESSION 'gzip', COMPRESSION_DETAIL '5')",
            backup(|o| {
                o.compression = Some(CompressionSpec {
                    algorithm: CompressionAlgorithm::Gzip,
                    level: Some(5),
                    workers: None,
                })
            }),
        ),
        (
            "BASE_BACKUP (COMPRESSION zstd, COMPRESSION_DETAIL 'level = 3, workers=4')",
            backup(|o| {
                o.compression = Some(CompressionSpec {
                    algorithm: CompressionAlgorithm::Zstd,
                    level: Some(3),
                    workers: Some(4),
                })
            }),
        ),
        (
            "BASE_BACKUP (COMPRESSION 'none')",
            backup(|o| {
                o.compression = Some(CompressionSpec {
                    algorithm: CompressionAlgorithm::None,
                    level: None,
                    workers: None,
                })
            }),
        ),
    ];
    for (query, want) in cases {
        assert_eq!(parse_command(query), Ok(want.clone()), "{query}");
        // The rendering parses back to the same command.
        let text = want.to_string();
        assert_eq!(parse_command(&text), Ok(want), "{query} rendered as {text}");
    }
}

#[test]
fn rejected_commands_read_like_postgres() {
    const SYNTAX: &str = "42601";
    let cases: &[(&str, &str, &str)] = &[
        // Not a replication command at all.
        (
            "SELECT 1",
            "0A000",
            "cannot execute SQL commands in WAL sender for physical replication",
        ),
        (
            "",
            "0A000",
            "cannot execute SQL commands in WAL sender for physical replication",
        ),
        (
            "\"IDENTIFY_SYSTEM\"",
            "0A000",
            "cannot execute SQL commands in WAL sender for physical replication",
        ),
        (
            "ALTER_REPLICATION_SLOT s (FAILOVER)",
            "0A000",
            "cannot execute SQL commands in WAL sender for physical replication",
        ),
        // Logical replication.
        (
            "START_REPLICATION SLOT s LOGICAL 0/0",
            "0A000",
            "logical replication is not supported",
        ),
        (
            "CREATE_REPLICATION_SLOT s TEMPORARY LOGICAL pgoutput",
            "0A000",
            "logical replication is not supported",
        ),
        // Syntax.
        ("IDENTIFY_SYSTEM x", SYNTAX, "syntax error at or near \"x\""),
        ("IDENTIFY_SYSTEM;;", SYNTAX, "syntax error at or near \";\""),
        (
            "IDENTIFY_SYSTEM 'oops",
            SYNTAX,
            "unterminated quoted string",
        ),
        ("'oops", SYNTAX, "unterminated quoted string"),
        ("SHOW", SYNTAX, "syntax error at end of input"),
        ("SHOW a.", SYNTAX, "syntax error at end of input"),
        ("SHOW 'a'", SYNTAX, "syntax error at or near \"'a'\""),
        ("START_REPLICATION", SYNTAX, "syntax error at end of input"),
        (
            "START_REPLICATION SLOT ab/cd",
            SYNTAX,
            "syntax error at or near \"ab/cd\"",
        ),
        (
            "START_REPLICATION 12",
            SYNTAX,
            "syntax error at or near \"12\"",
        ),
        (
            "START_REPLICATION 123456789/0",
            SYNTAX,
            "invalid streaming start location",
        ),
        (
            "START_REPLICATION 0/0 TIMELINE 0",
            SYNTAX,
            "invalid timeline 0",
        ),
        (
            "START_REPLICATION 0/0 TIMELINE",
            SYNTAX,
            "syntax error at end of input",
        ),
        ("TIMELINE_HISTORY 0", SYNTAX, "invalid timeline 0"),
        (
            "TIMELINE_HISTORY 4294967296",
            SYNTAX,
            "invalid timeline 4294967296",
        ),
        (
            "TIMELINE_HISTORY 99999999999999999999999",
            SYNTAX,
            "invalid timeline 99999999999999999999999",
        ),
        (
            "TIMELINE_HISTORY -1",
            SYNTAX,
            "syntax error at or near \"-\"",
        ),
        (
            "CREATE_REPLICATION_SLOT s",
            SYNTAX,
            "syntax error at end of input",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL RESERVE_WAL",
            SYNTAX,
            "conflicting or redundant options",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL EXPORT_SNAPSHOT",
            SYNTAX,
            "conflicting or redundant options",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL (TWO_PHASE)",
            SYNTAX,
            "conflicting or redundant options",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL (FOO)",
            SYNTAX,
            "unrecognized option: foo",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL 2)",
            SYNTAX,
            "reserve_wal requires a Boolean value",
        ),
        (
            "CREATE_REPLICATION_SLOT s PHYSICAL ()",
            SYNTAX,
            "syntax error at or near \")\"",
        ),
        (
            "CREATE_REPLICATION_SLOT \"Bad\" PHYSICAL",
            "42602",
            "replication slot name \"Bad\" contains invalid character",
        ),
        (
            "CREATE_REPLICATION_SLOT \"\" PHYSICAL",
            "42602",
            "replication slot name \"\" is too short",
        ),
        (
            "DROP_REPLICATION_SLOT",
            SYNTAX,
            "syntax error at end of input",
        ),
        (
            "DROP_REPLICATION_SLOT s NOWAIT",
            SYNTAX,
            "syntax error at or near \"NOWAIT\"",
        ),
        // BASE_BACKUP options.
        ("BASE_BACKUP ()", SYNTAX, "syntax error at or near \")\""),
        (
            "BASE_BACKUP (LABEL 'a'",
            SYNTAX,
            "syntax error at end of input",
        ),
        (
            "BASE_BACKUP (FOO)",
            SYNTAX,
            "unrecognized base backup option: \"foo\"",
        ),
        (
            "BASE_BACKUP (FAST)",
            SYNTAX,
            "unrecognized base backup option: \"fast\"",
        ),
        (
            "BASE_BACKUP (LABEL 'a', label 'b')",
            SYNTAX,
            "duplicate option \"label\"",
        ),
        ("BASE_BACKUP (LABEL)", SYNTAX, "label requires a parameter"),
        (
            "BASE_BACKUP (PROGRESS maybe)",
            SYNTAX,
            "progress requires a Boolean value",
        ),
        (
            "BASE_BACKUP (WAIT 'yes')",
            SYNTAX,
            "wait requires a Boolean value",
        ),
        (
            "BASE_BACKUP (CHECKPOINT 'slow')",
            SYNTAX,
            "unrecognized checkpoint type: \"slow\"",
        ),
        (
            "BASE_BACKUP (MAX_RATE 31)",
            "22003",
            "31 is outside the valid range for parameter \"MAX_RATE\" (32 .. 1048576)",
        ),
        (
            "BASE_BACKUP (MAX_RATE 1048577)",
            "22003",
            "1048577 is outside the valid range for parameter \"MAX_RATE\" (32 .. 1048576)",
        ),
        (
            "BASE_BACKUP (MAX_RATE '100')",
            SYNTAX,
            "max_rate requires a numeric value",
        ),
        (
            "BASE_BACKUP (MANIFEST 'maybe')",
            "22023",
            "unrecognized manifest option: \"maybe\"",
        ),
        (
            "BASE_BACKUP (MANIFEST 'yes', MANIFEST_CHECKSUMS 'md5')",
            "22023",
            "unrecognized checksum algorithm: \"md5\"",
        ),
        (
            "BASE_BACKUP (MANIFEST_CHECKSUMS 'sha256')",
            SYNTAX,
            "manifest checksums require a backup manifest",
        ),
        (
            "BASE_BACKUP (TARGET 'server')",
            SYNTAX,
            "target \"server\" requires a target detail",
        ),
        (
            "BASE_BACKUP (TARGET 'client', TARGET_DETAIL 'x')",
            SYNTAX,
            "target \"client\" does not accept a target detail",
        ),
        (
            "BASE_BACKUP (TARGET_DETAIL 'x')",
            SYNTAX,
            "target detail cannot be used without target",
        ),
        (
            "BASE_BACKUP (TARGET 'tape')",
            "22023",
            "unrecognized target: \"tape\"",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'bzip2')",
            "22023",
            "unrecognized compression algorithm: \"bzip2\"",
        ),
        (
            "BASE_BACKUP (COMPRESSION_DETAIL '1')",
            SYNTAX,
            "compression detail cannot be specified unless compression is enabled",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'gzip', COMPRESSION_DETAIL 'level=10')",
            SYNTAX,
            "invalid compression specification: compression algorithm \"gzip\" expects a compression level between 1 and 9",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'none', COMPRESSION_DETAIL '1')",
            SYNTAX,
            "invalid compression specification: compression algorithm \"none\" does not accept a compression level",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'lz4', COMPRESSION_DETAIL 'workers=2')",
            SYNTAX,
            "invalid compression specification: compression algorithm \"lz4\" does not accept a worker count",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'zstd', COMPRESSION_DETAIL 'speed=1')",
            SYNTAX,
            "invalid compression specification: unrecognized compression option: \"speed\"",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'zstd', COMPRESSION_DETAIL 'level')",
            SYNTAX,
            "invalid compression specification: compression option \"level\" requires a value",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=x')",
            SYNTAX,
            "invalid compression specification: value for compression option \"level\" must be an integer",
        ),
        (
            "BASE_BACKUP (COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=1,')",
            SYNTAX,
            "invalid compression specification: found empty string where a compression option was expected",
        ),
        // Legacy form.
        (
            "BASE_BACKUP LABEL 'a' LABEL 'b'",
            SYNTAX,
            "duplicate option \"label\"",
        ),
        (
            "BASE_BACKUP LABEL x",
            SYNTAX,
            "syntax error at or near \"x\"",
        ),
        (
            "BASE_BACKUP MAX_RATE 10",
            "22003",
            "10 is outside the valid range for parameter \"MAX_RATE\" (32 .. 1048576)",
        ),
        (
            "BASE_BACKUP MANIFEST_CHECKSUMS 'CRC32C'",
            SYNTAX,
            "manifest checksums require a backup manifest",
        ),
        (
            "BASE_BACKUP CHECKPOINT",
            SYNTAX,
            "syntax error at or near \"CHECKPOINT\"",
        ),
    ];
    for (query, code, message) in cases {
        let err = parse_command(query).expect_err(query);
        assert_eq!(err.code.code(), *code, "{query}: {err:?}");
        assert_eq!(err.message, *message, "{query}");
    }
}

#[test]
fn syntax_errors_carry_the_token_position() {
    let e = parse_command("IDENTIFY_SYSTEM x").expect_err("x");
    assert_eq!(e.position, Some(17));
    // Characters, not bytes.
    let e = parse_command("SHOW \"ä\" ü").expect_err("two names");
    assert_eq!(e.message, "syntax error at or near \"ü\"");
    assert_eq!(e.position, Some(10));
    let e = parse_command("START_REPLICATION").expect_err("end");
    assert_eq!(e.position, Some(18));
}

#[test]
fn identifiers_are_folded_and_truncated() {
    let long = "a".repeat(70);
    let Ok(ReplicationCommand::Show { name }) = parse_command(&format!("SHOW {long}")) else {
        panic!("show");
    };
    assert_eq!(name.len(), NAME_MAX_BYTES);
    // Truncation never splits a character: 31 two-byte characters fit in 63 bytes, 32 don't.
    let wide = "é".repeat(40);
    let Ok(ReplicationCommand::Show { name }) = parse_command(&format!("SHOW \"{wide}\"")) else {
        panic!("show");
    };
    assert_eq!(name, "é".repeat(31));
    let Ok(ReplicationCommand::Show { name }) = parse_command("SHOW \"a\"\"b\".\"\"") else {
        panic!("show");
    };
    assert_eq!(name, "a\"b.");
    assert_eq!(
        parse_command(&ReplicationCommand::Show { name: name.clone() }.to_string()),
        Ok(ReplicationCommand::Show { name })
    );
}

#[test]
fn slot_names_follow_postgres_rules() {
    assert!(validate_slot_name("standby_1").is_ok());
    assert!(validate_slot_name(&"a".repeat(63)).is_ok());
    let e = validate_slot_name(&"a".repeat(64)).expect_err("long");
    assert_eq!(e.code.code(), "42622");
    let e = validate_slot_name("a-b").expect_err("dash");
    assert_eq!(
        e.hint.as_deref(),
        Some(
            "Replication slot names may only contain lower case letters, numbers, and the underscore character."
        )
    );
}

#[test]
fn parse_bool_accepts_postgres_spellings() {
    for s in ["t", "TRUE", "tr", "y", "yes", "on", "ON", "1"] {
        assert_eq!(parse_bool(s), Some(true), "{s}");
    }
    for s in ["f", "false", "n", "NO", "of", "off", "0"] {
        assert_eq!(parse_bool(s), Some(false), "{s}");
    }
    for s in ["", "o", "2", "truee", "yess", "maybe", " on"] {
        assert_eq!(parse_bool(s), None, "{s:?}");
    }
    assert_eq!(sqlstate::SYNTAX_ERROR.code(), "42601");
}

/// A hostile client may send a huge command; positions are tracked incrementally, so lexing
/// stays linear (an O(n) position count per token made 100k tokens take minutes).
#[test]
fn long_commands_parse_in_linear_time() {
    let n = 100_000;
    let mut query = String::from("SHOW a");
    for _ in 0..n {
        query.push_str(".b");
    }
    let started = std::time::Instant::now();
    let Ok(ReplicationCommand::Show { name }) = parse_command(&query) else {
        panic!("show");
    };
    assert_eq!(name.len(), 1 + 2 * n);
    query.push_str(" x");
    let e = parse_command(&query).expect_err("trailing word");
    assert_eq!(e.position, Some(u32::try_from(query.len()).expect("fits")));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
