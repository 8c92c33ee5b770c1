//! The replication command language: what a client sends, as a simple Query, on a
//! `replication=true` (physical) connection. Modelled on PostgreSQL 15's `repl_scanner.l`,
//! `repl_gram.y`, and the option checks of `basebackup.c` / `walsender.c`.
//!
//! ```text
//! IDENTIFY_SYSTEM
//! SHOW name[.name]...
//! TIMELINE_HISTORY tli
//! CREATE_REPLICATION_SLOT slot [TEMPORARY] PHYSICAL [RESERVE_WAL | (RESERVE_WAL [bool])]
//! DROP_REPLICATION_SLOT slot [WAIT]
//! READ_REPLICATION_SLOT slot
//! START_REPLICATION [SLOT slot] [PHYSICAL] X/X [TIMELINE tli]
//! BASE_BACKUP [(option [value] [, ...])]            -- PostgreSQL 15
//! BASE_BACKUP [LABEL 'x'] [PROGRESS] [FAST] [WAL] [NOWAIT] [MAX_RATE n] [TABLESPACE_MAP]
//!             [NOVERIFY_CHECKSUMS] [MANIFEST 'x'] [MANIFEST_CHECKSUMS 'x']   -- pg_basebackup ≤ 14
//! ```
//! each optionally followed by one `;`.
//!
//! Lexical rules follow PostgreSQL's scanner: whitespace `[ \t\n\r\f\v]`; identifiers
//! `[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*` are folded to lower case (ASCII only) and
//! truncated to 63 bytes (`NAMEDATALEN - 1`); `"..."` is an identifier kept as written (`""`
//! inside it is a `"`; `""` alone is the empty identifier); `'...'` is a string (`''` is a `'`); digits are an unsigned integer; `hex/hex`
//! is an LSN. Where this parser is deliberately more lenient than PostgreSQL: keywords are
//! recognised in any case (PostgreSQL's scanner wants them in upper case) and only where
//! the grammar expects them, so `SHOW timeline` or a slot named `slot` parse; `""` inside a
//! quoted identifier is accepted (PostgreSQL 15 ends the identifier there).
//!
//! Errors are [`PgError`]s as the client should see them: 42601 for syntax (with the
//! 1-based character position of the offending token), 0A000 `cannot execute SQL commands in
//! WAL sender for physical replication` when the first word is not a replication command,
//! and 0A000 for logical replication, which lockstep does not offer. Option checks keep
//! PostgreSQL's wording (`unrecognized base backup option: "x"`, `duplicate option "x"`,
//! `x requires a Boolean value`, `conflicting or redundant options`, ...).
//!
//! What this module does not do: execute anything, check privileges, look slots up, or
//! decide whether a TARGET or compression is supported (the driver refuses what it cannot
//! serve). It never panics on any input, and lexing is linear in the input's length.
//!
//! Invariant: every parsed command renders (`Display`) to PostgreSQL 15 syntax that parses
//! back to an equal command; the fuzz target checks it. Where it runs: the walsender driver,
//! once per simple Query on a replication connection.
//!
//! Rooms: the command types, the parser and rendering are here; the scanner is
//! `commands/scanner.rs`, BASE_BACKUP's option checks `commands/base_backup.rs`, the result
//! rows the commands answer with `commands/results.rs`.

use std::fmt;

use base::error::{PgError, SqlState, sqlstate};
use base::{Lsn, TimelineId};

mod base_backup;
pub(crate) mod scanner;

pub use base_backup::parse_bool;
use base_backup::{check_max_rate, parse_checksum, parse_manifest, resolve_base_backup_options};
use scanner::{Lexer, Tok, Token, is_ident_cont, is_ident_start};

/// PostgreSQL's `NAMEDATALEN - 1`: identifiers and slot names are at most this many bytes,
/// because they are stored in fixed-size `name` columns (`pg_replication_slots.slot_name`).
pub const NAME_MAX_BYTES: usize = 63;

/// `MAX_RATE` bounds in kB/s, PostgreSQL's `MAX_RATE_LOWER`/`MAX_RATE_UPPER`: below 32 kB/s
/// the throttling sleeps become too coarse to be meaningful, above 1 GB/s it is not a limit.
pub const MAX_RATE_LOWER: u32 = 32;
pub const MAX_RATE_UPPER: u32 = 1_048_576;

const INVALID_NAME: SqlState = SqlState("42602");
const NAME_TOO_LONG: SqlState = SqlState("42622");

/// One parsed replication command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ReplicationCommand {
    /// Answer with one row: systemid, timeline, xlogpos (the flush LSN), dbname (NULL).
    IdentifySystem,
    /// Answer with one row holding the setting's value; `name` is lower-cased unless quoted.
    Show {
        name: String,
    },
    /// Send the history file of `timeline` (filename, content).
    TimelineHistory {
        timeline: TimelineId,
    },
    /// Create a physical slot. The name was checked with [`validate_slot_name`].
    CreateReplicationSlot {
        slot_name: String,
        temporary: bool,
        reserve_wal: bool,
    },
    DropReplicationSlot {
        slot_name: String,
        wait: bool,
    },
    /// Answer with slot_type, restart_lsn, restart_tli (NULLs if there is no such slot).
    ReadReplicationSlot {
        slot_name: String,
    },
    /// Enter CopyBoth and stream WAL from `start_lsn`; `timeline: None` means the current one.
    StartReplication {
        slot_name: Option<String>,
        start_lsn: Lsn,
        timeline: Option<TimelineId>,
    },
    BaseBackup(BaseBackupOptions),
}

/// `MANIFEST`: whether to send a backup manifest, and whether to hex-encode every file name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ManifestOption {
    #[default]
    No,
    Yes,
    ForceEncode,
}

/// `MANIFEST_CHECKSUMS`: the per-file checksum in the manifest (`pg_checksum_type`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ManifestChecksum {
    None,
    #[default]
    Crc32c,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl ManifestChecksum {
    const ALL: [ManifestChecksum; 6] = [
        ManifestChecksum::None,
        ManifestChecksum::Crc32c,
        ManifestChecksum::Sha224,
        ManifestChecksum::Sha256,
        ManifestChecksum::Sha384,
        ManifestChecksum::Sha512,
    ];

    /// PostgreSQL's spelling (`pg_checksum_type_name`).
    pub fn as_str(self) -> &'static str {
        match self {
            ManifestChecksum::None => "NONE",
            ManifestChecksum::Crc32c => "CRC32C",
            ManifestChecksum::Sha224 => "SHA224",
            ManifestChecksum::Sha256 => "SHA256",
            ManifestChecksum::Sha384 => "SHA384",
            ManifestChecksum::Sha512 => "SHA512",
        }
    }
}

/// `TARGET`: where the backup goes.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum BackupTarget {
    /// No `TARGET` option: the protocol of PostgreSQL ≤ 14, one CopyOutResponse per
    /// tablespace (PostgreSQL's `use_copytblspc`). pg_basebackup 15 always sends a TARGET.
    #[default]
    Unspecified,
    /// `TARGET 'client'`: one CopyOutResponse carrying archive/progress messages.
    Client,
    /// `TARGET 'server'` with `TARGET_DETAIL` = a directory on the server.
    Server { path: String },
    /// `TARGET 'blackhole'`: read everything, send nothing (testing).
    Blackhole,
}

/// `COMPRESSION` algorithms (`pg_compress_algorithm`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CompressionAlgorithm {
    None,
    Gzip,
    Lz4,
    Zstd,
}

impl CompressionAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionAlgorithm::None => "none",
            CompressionAlgorithm::Gzip => "gzip",
            CompressionAlgorithm::Lz4 => "lz4",
            CompressionAlgorithm::Zstd => "zstd",
        }
    }

    /// The accepted `level` range, PostgreSQL 15's `validate_bc_specification`; `None` if the
    /// algorithm takes no level.
    fn level_range(self) -> Option<(i64, i64)> {
        match self {
            CompressionAlgorithm::None => None,
            CompressionAlgorithm::Gzip => Some((1, 9)),
            CompressionAlgorithm::Lz4 => Some((1, 12)),
            CompressionAlgorithm::Zstd => Some((1, 22)),
        }
    }
}

/// `COMPRESSION` plus the parsed `COMPRESSION_DETAIL`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CompressionSpec {
    pub algorithm: CompressionAlgorithm,
    pub level: Option<i32>,
    pub workers: Option<i32>,
}

/// Every option of `BASE_BACKUP`, resolved and checked; defaults are PostgreSQL 15's.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BaseBackupOptions {
    /// `LABEL`, default `base backup`.
    pub label: String,
    /// `PROGRESS`: estimate sizes first, for a progress report.
    pub progress: bool,
    /// `CHECKPOINT 'fast'` (legacy `FAST`) instead of a spread checkpoint.
    pub fast_checkpoint: bool,
    /// `WAIT` (default true; legacy `NOWAIT` = false): wait for the WAL to be archived.
    pub wait_for_wal_archive: bool,
    /// `WAL`: include the WAL needed to make the backup consistent.
    pub include_wal: bool,
    /// `MAX_RATE` in kB/s, within [`MAX_RATE_LOWER`]..=[`MAX_RATE_UPPER`].
    pub max_rate: Option<u32>,
    /// `TABLESPACE_MAP`: include `tablespace_map`.
    pub tablespace_map: bool,
    /// `VERIFY_CHECKSUMS` (default true; legacy `NOVERIFY_CHECKSUMS` = false).
    pub verify_checksums: bool,
    pub manifest: ManifestOption,
    pub manifest_checksums: ManifestChecksum,
    pub target: BackupTarget,
    pub compression: Option<CompressionSpec>,
}

impl Default for BaseBackupOptions {
    fn default() -> Self {
        BaseBackupOptions {
            label: "base backup".to_owned(),
            progress: false,
            fast_checkpoint: false,
            wait_for_wal_archive: true,
            include_wal: false,
            max_rate: None,
            tablespace_map: false,
            verify_checksums: true,
            manifest: ManifestOption::No,
            manifest_checksums: ManifestChecksum::Crc32c,
            target: BackupTarget::Unspecified,
            compression: None,
        }
    }
}

/// Parses one replication command (the whole text of a simple Query).
///
/// ```
/// use base::{Lsn, TimelineId};
/// use replication::commands::{parse_command, ReplicationCommand};
///
/// assert_eq!(
///     parse_command("START_REPLICATION SLOT s1 PHYSICAL 0/3000000 TIMELINE 2;"),
///     Ok(ReplicationCommand::StartReplication {
///         slot_name: Some("s1".into()),
///         start_lsn: Lsn(0x300_0000),
///         timeline: Some(TimelineId(2)),
///     })
/// );
/// let err = parse_command("SELECT 1").unwrap_err();
/// assert_eq!(err.code.code(), "0A000");
/// ```
pub fn parse_command(query: &str) -> Result<ReplicationCommand, PgError> {
    let mut lexer = Lexer::new(query);
    // Like PostgreSQL's `replication_scanner_is_replication_command`, look at the first token
    // only before deciding this is not a replication command at all: SQL text may not scan
    // under the replication scanner's rules.
    let first = lexer.next_token()?;
    let keyword = match &first.tok {
        Tok::Word { lower, .. } => lower.as_str(),
        _ => "",
    };
    let is_command = matches!(
        keyword,
        "identify_system"
            | "base_backup"
            | "start_replication"
            | "create_replication_slot"
            | "drop_replication_slot"
            | "read_replication_slot"
            | "timeline_history"
            | "show"
    );
    if !is_command {
        return Err(PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "cannot execute SQL commands in WAL sender for physical replication",
        ));
    }
    let mut tokens = vec![first];
    loop {
        let t = lexer.next_token()?;
        let end = t.tok == Tok::End;
        tokens.push(t);
        if end {
            break;
        }
    }
    let mut p = Parser {
        tokens: &tokens,
        pos: 1,
    };
    let command = match tokens[0].tok.keyword() {
        "identify_system" => ReplicationCommand::IdentifySystem,
        "show" => ReplicationCommand::Show {
            name: p.var_name()?,
        },
        "timeline_history" => ReplicationCommand::TimelineHistory {
            timeline: p.timeline()?,
        },
        "create_replication_slot" => p.create_replication_slot()?,
        "drop_replication_slot" => {
            let slot_name = p.ident()?;
            let wait = p.accept_keyword("wait");
            ReplicationCommand::DropReplicationSlot { slot_name, wait }
        }
        "read_replication_slot" => ReplicationCommand::ReadReplicationSlot {
            slot_name: p.var_name()?,
        },
        "start_replication" => p.start_replication()?,
        _ => ReplicationCommand::BaseBackup(p.base_backup()?),
    };
    if p.peek() == &Tok::Punct(';') {
        p.pos += 1;
    }
    if p.peek() != &Tok::End {
        return Err(p.syntax_error());
    }
    Ok(command)
}

/// Checks a replication slot name as PostgreSQL's `ReplicationSlotValidateName` does: 1 to 63
/// bytes of lower-case ASCII letters, digits and underscores (slot names become directory
/// names, so they must be portable file names).
pub fn validate_slot_name(name: &str) -> Result<(), PgError> {
    if name.is_empty() {
        return Err(PgError::new(
            INVALID_NAME,
            format!("replication slot name \"{name}\" is too short"),
        ));
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(PgError::new(
            NAME_TOO_LONG,
            format!("replication slot name \"{name}\" is too long"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(PgError::new(
            INVALID_NAME,
            format!("replication slot name \"{name}\" contains invalid character"),
        )
        .with_hint(
            "Replication slot names may only contain lower case letters, numbers, and the underscore character.",
        ));
    }
    Ok(())
}

fn syntax(message: impl Into<String>) -> PgError {
    PgError::new(sqlstate::SYNTAX_ERROR, message)
}

fn logical_not_supported() -> PgError {
    PgError::feature_not_supported("logical replication")
        .with_detail("lockstep serves physical replication only.")
}

// ----------------------------------------------------------------------------------------
// Parser
// ----------------------------------------------------------------------------------------

/// A generic option's value (PostgreSQL's `DefElem.arg`).
#[derive(Clone, PartialEq, Eq, Debug)]
enum OptValue {
    None,
    /// From an identifier or a quoted string.
    Str(String),
    Int(u64),
}

struct DefElem {
    name: String,
    value: OptValue,
}

impl DefElem {
    /// `defGetBoolean`: no value is true; 0/1; true/false/on/off in any case.
    fn boolean(&self) -> Result<bool, PgError> {
        let b = match &self.value {
            OptValue::None => Some(true),
            OptValue::Int(0) => Some(false),
            OptValue::Int(1) => Some(true),
            OptValue::Int(_) => None,
            OptValue::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "on" => Some(true),
                "false" | "off" => Some(false),
                _ => None,
            },
        };
        b.ok_or_else(|| syntax(format!("{} requires a Boolean value", self.name)))
    }

    /// `defGetString`: integers are printed; a missing value is an error.
    fn string(&self) -> Result<String, PgError> {
        match &self.value {
            OptValue::None => Err(syntax(format!("{} requires a parameter", self.name))),
            OptValue::Str(s) => Ok(s.clone()),
            OptValue::Int(i) => Ok(i.to_string()),
        }
    }

    /// `defGetInt64` for an option that must be an integer.
    fn integer(&self) -> Result<u64, PgError> {
        match &self.value {
            OptValue::Int(i) => Ok(*i),
            _ => Err(syntax(format!("{} requires a numeric value", self.name))),
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::End, |t| &t.tok)
    }

    fn syntax_error(&self) -> PgError {
        let Some(t) = self.tokens.get(self.pos) else {
            return syntax("syntax error at end of input");
        };
        let message = match t.tok {
            Tok::End => "syntax error at end of input".to_owned(),
            _ => format!("syntax error at or near \"{}\"", t.tok.text()),
        };
        syntax(message).with_position(t.position)
    }

    fn accept_keyword(&mut self, keyword: &str) -> bool {
        if self.peek().keyword() == keyword {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), PgError> {
        if self.accept_keyword(keyword) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<(), PgError> {
        if self.peek() == &Tok::Punct(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// `IDENT`: an unquoted (folded) or quoted identifier.
    fn ident(&mut self) -> Result<String, PgError> {
        let s = match self.peek() {
            Tok::Word { lower, .. } => lower.clone(),
            Tok::Quoted(s) => s.clone(),
            _ => return Err(self.syntax_error()),
        };
        self.pos += 1;
        Ok(s)
    }

    /// `var_name: IDENT | var_name '.' IDENT`.
    fn var_name(&mut self) -> Result<String, PgError> {
        let mut name = self.ident()?;
        while self.peek() == &Tok::Punct('.') {
            self.pos += 1;
            name.push('.');
            name.push_str(&self.ident()?);
        }
        Ok(name)
    }

    /// `UCONST` as a timeline: 1 to 2^32-1 (`invalid timeline %u` otherwise).
    fn timeline(&mut self) -> Result<TimelineId, PgError> {
        let Tok::Num { value, raw } = self.peek() else {
            return Err(self.syntax_error());
        };
        let tli = value
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| syntax(format!("invalid timeline {raw}")))?;
        self.pos += 1;
        Ok(TimelineId(tli))
    }

    fn create_replication_slot(&mut self) -> Result<ReplicationCommand, PgError> {
        let slot_name = self.ident()?;
        let temporary = self.accept_keyword("temporary");
        if self.accept_keyword("logical") {
            return Err(logical_not_supported());
        }
        self.expect_keyword("physical")?;
        let options = if self.peek() == &Tok::Punct('(') {
            self.generic_options()?
        } else {
            // create_slot_legacy_opt: bare keywords.
            let mut options = Vec::new();
            loop {
                let name = match self.peek().keyword() {
                    "reserve_wal" => "reserve_wal",
                    "export_snapshot" | "noexport_snapshot" | "use_snapshot" => "snapshot",
                    "two_phase" => "two_phase",
                    _ => break,
                };
                self.pos += 1;
                options.push(DefElem {
                    name: name.to_owned(),
                    value: OptValue::None,
                });
            }
            options
        };
        // walsender.c `parseCreateReplSlotOptions` for a physical slot.
        let mut reserve_wal = None;
        for o in &options {
            match o.name.as_str() {
                "reserve_wal" if reserve_wal.is_none() => reserve_wal = Some(o.boolean()?),
                "reserve_wal" | "snapshot" | "two_phase" => {
                    return Err(syntax("conflicting or redundant options"));
                }
                other => return Err(syntax(format!("unrecognized option: {other}"))),
            }
        }
        validate_slot_name(&slot_name)?;
        Ok(ReplicationCommand::CreateReplicationSlot {
            slot_name,
            temporary,
            reserve_wal: reserve_wal.unwrap_or(false),
        })
    }

    fn start_replication(&mut self) -> Result<ReplicationCommand, PgError> {
        let slot_name = if self.accept_keyword("slot") {
            Some(self.ident()?)
        } else {
            None
        };
        if self.accept_keyword("logical") {
            return Err(logical_not_supported());
        }
        self.accept_keyword("physical");
        let Tok::Lsn { value, .. } = self.peek() else {
            return Err(self.syntax_error());
        };
        let start_lsn = value.ok_or_else(|| syntax("invalid streaming start location"))?;
        self.pos += 1;
        let timeline = if self.accept_keyword("timeline") {
            Some(self.timeline()?)
        } else {
            None
        };
        Ok(ReplicationCommand::StartReplication {
            slot_name,
            start_lsn,
            timeline,
        })
    }

    /// `'(' generic_option [',' generic_option]... ')'`, where
    /// `generic_option: ident_or_keyword [IDENT | SCONST | UCONST]`.
    fn generic_options(&mut self) -> Result<Vec<DefElem>, PgError> {
        self.expect_punct('(')?;
        let mut options = Vec::new();
        loop {
            let name = self.ident()?;
            let value = match self.peek().clone() {
                Tok::Word { lower, .. } => OptValue::Str(lower),
                Tok::Quoted(s) | Tok::Str(s) => OptValue::Str(s),
                Tok::Num { value: Some(v), .. } => OptValue::Int(v),
                Tok::Num { value: None, .. } => return Err(self.syntax_error()),
                _ => OptValue::None,
            };
            if value != OptValue::None {
                self.pos += 1;
            }
            options.push(DefElem { name, value });
            if self.peek() == &Tok::Punct(',') {
                self.pos += 1;
                continue;
            }
            self.expect_punct(')')?;
            return Ok(options);
        }
    }

    fn base_backup(&mut self) -> Result<BaseBackupOptions, PgError> {
        if self.peek() == &Tok::Punct('(') {
            let options = self.generic_options()?;
            return resolve_base_backup_options(&options);
        }
        self.legacy_base_backup()
    }

    /// The unparenthesized options of pg_basebackup ≤ 14 (`base_backup_legacy_opt`).
    fn legacy_base_backup(&mut self) -> Result<BaseBackupOptions, PgError> {
        let mut opts = BaseBackupOptions::default();
        let mut seen: Vec<&'static str> = Vec::new();
        loop {
            let name: &'static str = match self.peek().keyword() {
                "label" => "label",
                "progress" => "progress",
                "fast" => "fast",
                "wal" => "wal",
                "nowait" => "nowait",
                "max_rate" => "max_rate",
                "tablespace_map" => "tablespace_map",
                "noverify_checksums" => "noverify_checksums",
                "manifest" => "manifest",
                "manifest_checksums" => "manifest_checksums",
                _ => break,
            };
            self.pos += 1;
            if seen.contains(&name) {
                return Err(syntax(format!("duplicate option \"{name}\"")));
            }
            seen.push(name);
            match name {
                "label" => opts.label = self.legacy_string()?,
                "progress" => opts.progress = true,
                "fast" => opts.fast_checkpoint = true,
                "wal" => opts.include_wal = true,
                "nowait" => opts.wait_for_wal_archive = false,
                "max_rate" => {
                    let Tok::Num { value: Some(v), .. } = self.peek() else {
                        return Err(self.syntax_error());
                    };
                    let v = *v;
                    self.pos += 1;
                    opts.max_rate = Some(check_max_rate(v)?);
                }
                "tablespace_map" => opts.tablespace_map = true,
                "noverify_checksums" => opts.verify_checksums = false,
                "manifest" => opts.manifest = parse_manifest(&self.legacy_string()?)?,
                _ => opts.manifest_checksums = parse_checksum(&self.legacy_string()?)?,
            }
        }
        if opts.manifest == ManifestOption::No && seen.contains(&"manifest_checksums") {
            return Err(syntax("manifest checksums require a backup manifest"));
        }
        Ok(opts)
    }

    fn legacy_string(&mut self) -> Result<String, PgError> {
        let Tok::Str(s) = self.peek() else {
            return Err(self.syntax_error());
        };
        let s = s.clone();
        self.pos += 1;
        Ok(s)
    }
}

// ----------------------------------------------------------------------------------------
// Rendering
// ----------------------------------------------------------------------------------------

/// Writes an identifier so that the scanner reads it back unchanged: bare if it is a
/// lower-case word, quoted otherwise.
fn write_ident(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let mut chars = name.chars();
    let bare = chars
        .next()
        .is_some_and(|c| is_ident_start(c) && !c.is_ascii_uppercase())
        && chars.all(|c| is_ident_cont(c) && !c.is_ascii_uppercase());
    if bare {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    }
}

fn write_str_lit(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

/// Renders the command in PostgreSQL 15 syntax. `parse_command` of the output gives back an
/// equal command (names that needed quoting are quoted).
impl fmt::Display for ReplicationCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicationCommand::IdentifySystem => f.write_str("IDENTIFY_SYSTEM"),
            ReplicationCommand::Show { name } => {
                // Every dot separates parts; a part that was quoted with dots inside splits
                // into shorter (possibly empty) parts, which still read back the same.
                f.write_str("SHOW ")?;
                for (i, part) in name.split('.').enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write_ident(f, part)?;
                }
                Ok(())
            }
            ReplicationCommand::TimelineHistory { timeline } => {
                write!(f, "TIMELINE_HISTORY {timeline}")
            }
            ReplicationCommand::CreateReplicationSlot {
                slot_name,
                temporary,
                reserve_wal,
            } => {
                f.write_str("CREATE_REPLICATION_SLOT ")?;
                write_ident(f, slot_name)?;
                if *temporary {
                    f.write_str(" TEMPORARY")?;
                }
                f.write_str(" PHYSICAL")?;
                if *reserve_wal {
                    f.write_str(" (RESERVE_WAL)")?;
                }
                Ok(())
            }
            ReplicationCommand::DropReplicationSlot { slot_name, wait } => {
                f.write_str("DROP_REPLICATION_SLOT ")?;
                write_ident(f, slot_name)?;
                if *wait {
                    f.write_str(" WAIT")?;
                }
                Ok(())
            }
            ReplicationCommand::ReadReplicationSlot { slot_name } => {
                f.write_str("READ_REPLICATION_SLOT ")?;
                write_ident(f, slot_name)
            }
            ReplicationCommand::StartReplication {
                slot_name,
                start_lsn,
                timeline,
            } => {
                f.write_str("START_REPLICATION ")?;
                if let Some(s) = slot_name {
                    f.write_str("SLOT ")?;
                    write_ident(f, s)?;
                    f.write_str(" ")?;
                }
                write!(f, "PHYSICAL {start_lsn}")?;
                if let Some(t) = timeline {
                    write!(f, " TIMELINE {t}")?;
                }
                Ok(())
            }
            ReplicationCommand::BaseBackup(o) => write!(f, "BASE_BACKUP{o}"),
        }
    }
}

/// Renders the options that differ from the defaults as ` (OPTION value, ...)`, or nothing.
impl fmt::Display for BaseBackupOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = BaseBackupOptions::default();
        let mut items: Vec<String> = Vec::new();
        struct Lit<'a>(&'a str);
        impl fmt::Display for Lit<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_str_lit(f, self.0)
            }
        }
        if self.label != d.label {
            items.push(format!("LABEL {}", Lit(&self.label)));
        }
        if self.progress {
            items.push("PROGRESS".into());
        }
        if self.fast_checkpoint {
            items.push("CHECKPOINT 'fast'".into());
        }
        if !self.wait_for_wal_archive {
            items.push("WAIT false".into());
        }
        if self.include_wal {
            items.push("WAL".into());
        }
        if let Some(r) = self.max_rate {
            items.push(format!("MAX_RATE {r}"));
        }
        if self.tablespace_map {
            items.push("TABLESPACE_MAP".into());
        }
        if !self.verify_checksums {
            items.push("VERIFY_CHECKSUMS false".into());
        }
        match self.manifest {
            ManifestOption::No => {}
            ManifestOption::Yes => items.push("MANIFEST 'yes'".into()),
            ManifestOption::ForceEncode => items.push("MANIFEST 'force-encode'".into()),
        }
        if self.manifest_checksums != d.manifest_checksums {
            items.push(format!(
                "MANIFEST_CHECKSUMS '{}'",
                self.manifest_checksums.as_str()
            ));
        }
        match &self.target {
            BackupTarget::Unspecified => {}
            BackupTarget::Client => items.push("TARGET 'client'".into()),
            BackupTarget::Blackhole => items.push("TARGET 'blackhole'".into()),
            BackupTarget::Server { path } => {
                items.push("TARGET 'server'".into());
                items.push(format!("TARGET_DETAIL {}", Lit(path)));
            }
        }
        if let Some(c) = &self.compression {
            items.push(format!("COMPRESSION '{}'", c.algorithm.as_str()));
            let mut detail = Vec::new();
            if let Some(l) = c.level {
                detail.push(format!("level={l}"));
            }
            if let Some(w) = c.workers {
                detail.push(format!("workers={w}"));
            }
            if !detail.is_empty() {
                items.push(format!("COMPRESSION_DETAIL '{}'", detail.join(",")));
            }
        }
        if items.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", items.join(", "))
        }
    }
}

pub mod results;

#[cfg(test)]
mod tests;
