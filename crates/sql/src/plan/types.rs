//! SQL type names as written (sqlparser's `DataType`) → lockstep's `DataType`, with
//! PostgreSQL's spellings (`int4`, `character varying(n)`, `timestamptz`, `float(p)`, ...)
//! and its typmod limits. Types lockstep does not store are 0A000 naming the type; names
//! that are no type at all are 42704 `type "x" does not exist`.

use base::error::sqlstate;
use base::{DataType, PgError};
use sqlparser::ast::{self, CharacterLength, ExactNumberInfo, TimezoneInfo};

/// PostgreSQL's limit on varchar/char lengths (10 MB of characters).
const MAX_CHAR_LENGTH: u64 = 10_485_760;
/// PostgreSQL's NUMERIC_MAX_PRECISION.
const MAX_NUMERIC_PRECISION: u64 = 1000;

fn char_len(l: &Option<CharacterLength>, name: &str) -> Result<Option<u32>, PgError> {
    match l {
        None => Ok(None),
        Some(CharacterLength::Max) => Err(PgError::syntax("syntax error at or near \"max\"")),
        Some(CharacterLength::IntegerLength { length, .. }) => {
            if *length < 1 {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("length for type {name} must be at least 1"),
                ));
            }
            if *length > MAX_CHAR_LENGTH {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("length for type {name} cannot exceed {MAX_CHAR_LENGTH}"),
                ));
            }
            Ok(Some(*length as u32))
        }
    }
}

fn numeric(info: &ExactNumberInfo) -> Result<DataType, PgError> {
    let (p, s) = match info {
        ExactNumberInfo::None => return Ok(DataType::Numeric(None)),
        ExactNumberInfo::Precision(p) => (*p, 0i64),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=MAX_NUMERIC_PRECISION).contains(&p) {
        return Err(PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("NUMERIC precision {p} must be between 1 and {MAX_NUMERIC_PRECISION}"),
        ));
    }
    if s < 0 || s as u64 > p {
        return Err(PgError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("NUMERIC scale {s} must be between 0 and precision {p}"),
        ));
    }
    Ok(DataType::Numeric(Some((p as u16, s as u16))))
}

fn float(info: &ExactNumberInfo) -> Result<DataType, PgError> {
    match info {
        ExactNumberInfo::None => Ok(DataType::Float8),
        ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _) => match *p {
            0 => Err(PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                "precision for type float must be at least 1 bit",
            )),
            1..=24 => Ok(DataType::Float4),
            25..=53 => Ok(DataType::Float8),
            _ => Err(PgError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                "precision for type float must be less than 54 bits",
            )),
        },
    }
}

fn unsupported(name: &str) -> PgError {
    PgError::feature_not_supported(format!("type {name}"))
}

/// Whether the written type is a serial pseudo-type (`serial`, `bigserial`, `smallserial`).
pub fn is_serial(dt: &ast::DataType) -> bool {
    if let ast::DataType::Custom(name, _) = dt {
        let n = name.to_string().to_ascii_lowercase();
        return matches!(
            n.as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
        );
    }
    false
}

/// Resolves a written type.
pub fn resolve(dt: &ast::DataType) -> Result<DataType, PgError> {
    use ast::DataType as A;
    Ok(match dt {
        A::SmallInt(_) | A::Int2(_) => DataType::Int2,
        A::Int(_) | A::Integer(_) | A::Int4(_) => DataType::Int4,
        A::BigInt(_) | A::Int8(_) => DataType::Int8,
        A::Real | A::Float4 => DataType::Float4,
        A::Double(ExactNumberInfo::None) | A::DoublePrecision | A::Float8 => DataType::Float8,
        A::Float(info) => float(info)?,
        A::Numeric(info) | A::Decimal(info) | A::Dec(info) => numeric(info)?,
        A::Text => DataType::Text,
        A::Varchar(l) | A::CharacterVarying(l) | A::CharVarying(l) => {
            DataType::Varchar(char_len(l, "varchar")?)
        }
        A::Char(l) | A::Character(l) => DataType::Char(char_len(l, "char")?.unwrap_or(1)),
        A::Bool | A::Boolean => DataType::Bool,
        A::Bytea => DataType::Bytea,
        // Field restrictions (`INTERVAL HOUR TO SECOND`) are not applied: monitoring casts
        // never use them.
        A::Interval { .. } => DataType::Interval,
        A::Date => DataType::Date,
        A::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => DataType::Timestamp,
        A::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => DataType::TimestampTz,
        A::Custom(name, mods) => {
            let n = name
                .0
                .last()
                .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
                .unwrap_or_default();
            let typmod = mods.first().and_then(|m| match m {
                ast::TypeModifier::Number(n, _) => n.parse::<u64>().ok(),
                _ => None,
            });
            match n.as_str() {
                "timestamptz" => DataType::TimestampTz,
                "int2" => DataType::Int2,
                "int4" => DataType::Int4,
                "int8" => DataType::Int8,
                "float4" => DataType::Float4,
                "float8" => DataType::Float8,
                "bool" => DataType::Bool,
                "bpchar" => DataType::Char(typmod.map_or(1, |l| l as u32)),
                "varchar" => DataType::Varchar(typmod.map(|l| l as u32)),
                "name" => DataType::Text,
                "interval" => DataType::Interval,
                "pg_lsn" => DataType::PgLsn,
                "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2" => {
                    return Err(PgError::feature_not_supported("serial columns (sequences)"));
                }
                "date" => DataType::Date,
                "time" | "timetz" | "json" | "jsonb" | "uuid" | "inet" | "cidr" | "money"
                | "oid" | "regclass" | "xml" | "bit" | "varbit" | "point" | "tsvector" => {
                    return Err(unsupported(&n));
                }
                _ => {
                    return Err(PgError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("type \"{n}\" does not exist"),
                    ));
                }
            }
        }
        A::Array(_) => return Err(PgError::feature_not_supported("arrays")),
        other => {
            let name = other.to_string().to_ascii_lowercase();
            return Err(unsupported(&name));
        }
    })
}

/// PostgreSQL's internal type name, used as the result column name of `CAST(const AS t)`.
pub fn internal_name(t: DataType) -> &'static str {
    match t {
        DataType::Bool => "bool",
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Numeric(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "varchar",
        DataType::Char(_) => "bpchar",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp",
        DataType::TimestampTz => "timestamptz",
        DataType::Interval => "interval",
        DataType::PgLsn => "pg_lsn",
        DataType::Unknown => "unknown",
    }
}

/// `pg_typeof` / `format_type` without a modifier.
pub fn display_name(t: DataType) -> &'static str {
    t.unmodified_sql_name()
}
