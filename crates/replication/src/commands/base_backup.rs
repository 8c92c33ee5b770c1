//! BASE_BACKUP's options, as `basebackup.c`'s `parse_basebackup_options` checks them: known
//! names, no duplicates, Boolean and numeric values, MAX_RATE bounds, manifest and checksum
//! choices, TARGET and compression specifications, with PostgreSQL's error wording.

use super::*;

pub(super) fn check_max_rate(v: u64) -> Result<u32, PgError> {
    match u32::try_from(v) {
        Ok(r) if (MAX_RATE_LOWER..=MAX_RATE_UPPER).contains(&r) => Ok(r),
        _ => Err(PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!(
                "{v} is outside the valid range for parameter \"MAX_RATE\" ({MAX_RATE_LOWER} .. {MAX_RATE_UPPER})"
            ),
        )),
    }
}

/// PostgreSQL's `parse_bool`: true/false/yes/no/on/off and their unique prefixes, 1/0.
pub fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| lower.len() >= min && word.starts_with(&lower);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || lower == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || lower == "0" {
        Some(false)
    } else {
        None
    }
}

pub(super) fn parse_manifest(s: &str) -> Result<ManifestOption, PgError> {
    match parse_bool(s) {
        Some(true) => Ok(ManifestOption::Yes),
        Some(false) => Ok(ManifestOption::No),
        None if s.eq_ignore_ascii_case("force-encode") => Ok(ManifestOption::ForceEncode),
        None => Err(PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("unrecognized manifest option: \"{s}\""),
        )),
    }
}

pub(super) fn parse_checksum(s: &str) -> Result<ManifestChecksum, PgError> {
    ManifestChecksum::ALL
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("unrecognized checksum algorithm: \"{s}\""),
            )
        })
}

/// `basebackup.c` `parse_basebackup_options` for the parenthesized (PostgreSQL 15) form.
pub(super) fn resolve_base_backup_options(
    options: &[DefElem],
) -> Result<BaseBackupOptions, PgError> {
    let mut opts = BaseBackupOptions::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut target: Option<String> = None;
    let mut target_detail: Option<String> = None;
    let mut compression: Option<CompressionAlgorithm> = None;
    let mut compression_detail: Option<String> = None;
    for o in options {
        let known = [
            "label",
            "progress",
            "checkpoint",
            "wait",
            "wal",
            "max_rate",
            "tablespace_map",
            "verify_checksums",
            "manifest",
            "manifest_checksums",
            "target",
            "target_detail",
            "compression",
            "compression_detail",
        ];
        let Some(name) = known.into_iter().find(|k| *k == o.name) else {
            return Err(syntax(format!(
                "unrecognized base backup option: \"{}\"",
                o.name
            )));
        };
        if seen.contains(&name) {
            return Err(syntax(format!("duplicate option \"{name}\"")));
        }
        seen.push(name);
        match name {
            "label" => opts.label = o.string()?,
            "progress" => opts.progress = o.boolean()?,
            "checkpoint" => {
                let v = o.string()?;
                opts.fast_checkpoint = if v.eq_ignore_ascii_case("fast") {
                    true
                } else if v.eq_ignore_ascii_case("spread") {
                    false
                } else {
                    return Err(syntax(format!("unrecognized checkpoint type: \"{v}\"")));
                };
            }
            "wait" => opts.wait_for_wal_archive = o.boolean()?,
            "wal" => opts.include_wal = o.boolean()?,
            "max_rate" => opts.max_rate = Some(check_max_rate(o.integer()?)?),
            "tablespace_map" => opts.tablespace_map = o.boolean()?,
            "verify_checksums" => opts.verify_checksums = o.boolean()?,
            "manifest" => opts.manifest = parse_manifest(&o.string()?)?,
            "manifest_checksums" => opts.manifest_checksums = parse_checksum(&o.string()?)?,
            "target" => target = Some(o.string()?),
            "target_detail" => target_detail = Some(o.string()?),
            "compression" => {
                let v = o.string()?;
                compression = Some(
                    [
                        CompressionAlgorithm::None,
                        CompressionAlgorithm::Gzip,
                        CompressionAlgorithm::Lz4,
                        CompressionAlgorithm::Zstd,
                    ]
                    .into_iter()
                    .find(|a| a.as_str() == v)
                    .ok_or_else(|| {
                        PgError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("unrecognized compression algorithm: \"{v}\""),
                        )
                    })?,
                );
            }
            _ => compression_detail = Some(o.string()?),
        }
    }
    if opts.manifest == ManifestOption::No && seen.contains(&"manifest_checksums") {
        return Err(syntax("manifest checksums require a backup manifest"));
    }
    opts.target = match (target.as_deref(), target_detail) {
        (None, Some(_)) => return Err(syntax("target detail cannot be used without target")),
        (None, None) => BackupTarget::Unspecified,
        (Some(t @ ("client" | "blackhole")), Some(_)) => {
            return Err(syntax(format!(
                "target \"{t}\" does not accept a target detail"
            )));
        }
        (Some("client"), None) => BackupTarget::Client,
        (Some("blackhole"), None) => BackupTarget::Blackhole,
        (Some("server"), Some(path)) => BackupTarget::Server { path },
        (Some("server"), None) => {
            return Err(syntax("target \"server\" requires a target detail"));
        }
        (Some(other), _) => {
            return Err(PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("unrecognized target: \"{other}\""),
            ));
        }
    };
    opts.compression = match (compression, compression_detail) {
        (None, Some(_)) => {
            return Err(syntax(
                "compression detail cannot be specified unless compression is enabled",
            ));
        }
        (None, None) => None,
        (Some(algorithm), detail) => Some(
            parse_compression_detail(algorithm, detail.as_deref())
                .map_err(|e| syntax(format!("invalid compression specification: {e}")))?,
        ),
    };
    Ok(opts)
}

/// PostgreSQL 15's `parse_bc_specification` + `validate_bc_specification`: the detail is a
/// bare integer (the level) or `keyword[=value]` items separated by commas.
fn parse_compression_detail(
    algorithm: CompressionAlgorithm,
    detail: Option<&str>,
) -> Result<CompressionSpec, String> {
    let mut spec = CompressionSpec {
        algorithm,
        level: None,
        workers: None,
    };
    let int = |s: &str| -> Option<i32> { s.trim().parse::<i32>().ok() };
    if let Some(detail) = detail {
        if let Ok(level) = detail.parse::<i32>() {
            spec.level = Some(level);
        } else {
            for item in detail.split(',') {
                let (keyword, value) = match item.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim())),
                    None => (item.trim(), None),
                };
                if keyword.is_empty() {
                    return Err("found empty string where a compression option was expected".into());
                }
                let slot = match keyword {
                    "level" => &mut spec.level,
                    "workers" => &mut spec.workers,
                    other => return Err(format!("unrecognized compression option: \"{other}\"")),
                };
                let Some(value) = value else {
                    return Err(format!("compression option \"{keyword}\" requires a value"));
                };
                *slot = Some(int(value).ok_or_else(|| {
                    format!("value for compression option \"{keyword}\" must be an integer")
                })?);
            }
        }
    }
    let name = algorithm.as_str();
    if let Some(level) = spec.level {
        match algorithm.level_range() {
            None => {
                return Err(format!(
                    "compression algorithm \"{name}\" does not accept a compression level"
                ));
            }
            Some((min, max)) if !(min..=max).contains(&i64::from(level)) => {
                return Err(format!(
                    "compression algorithm \"{name}\" expects a compression level between {min} and {max}"
                ));
            }
            Some(_) => {}
        }
    }
    if spec.workers.is_some() && algorithm != CompressionAlgorithm::Zstd {
        return Err(format!(
            "compression algorithm \"{name}\" does not accept a worker count"
        ));
    }
    Ok(spec)
}
