//! SQL data types, with PostgreSQL's OIDs, names and type modifiers.
//!
//! The set is what lockstep stores: booleans, 2/4/8-byte integers, 4/8-byte floats, `numeric`
//! (exact decimal, stored with `rust_decimal`, so at most 28 significant digits, a documented
//! narrowing of PostgreSQL's arbitrary precision), `text`, `varchar(n)`, `char(n)`, `bytea`,
//! `date`, `timestamp` and `timestamptz`, and two types for monitoring views and WAL functions:
//! `interval` (as PostgreSQL's: months, days, microseconds) and `pg_lsn`. `Unknown` is the type of an untyped literal or parameter
//! before context resolves it, as in PostgreSQL's parser.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DataType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric` or `numeric(precision, scale)`.
    Numeric(Option<(u16, u16)>),
    Text,
    /// `varchar` or `varchar(n)`.
    Varchar(Option<u32>),
    /// `char(n)` (PostgreSQL's `bpchar`): blank-padded to `n` on output.
    Char(u32),
    Bytea,
    /// `date`: a calendar day.
    Date,
    Timestamp,
    TimestampTz,
    /// `interval`: months, days and microseconds, kept apart as PostgreSQL keeps them.
    Interval,
    /// `pg_lsn`: a WAL position, printed `X/Y`.
    PgLsn,
    /// An untyped literal or parameter whose type context has not decided yet.
    Unknown,
}

/// PostgreSQL type OIDs (from `pg_type.dat`), as sent in `RowDescription` and
/// `ParameterDescription` and as clients send them in `Parse`.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const PG_LSN: u32 = 3220;
    pub const NUMERIC: u32 = 1700;
}

impl DataType {
    pub fn oid(self) -> u32 {
        match self {
            DataType::Bool => oid::BOOL,
            DataType::Int2 => oid::INT2,
            DataType::Int4 => oid::INT4,
            DataType::Int8 => oid::INT8,
            DataType::Float4 => oid::FLOAT4,
            DataType::Float8 => oid::FLOAT8,
            DataType::Numeric(_) => oid::NUMERIC,
            DataType::Text => oid::TEXT,
            DataType::Varchar(_) => oid::VARCHAR,
            DataType::Char(_) => oid::BPCHAR,
            DataType::Bytea => oid::BYTEA,
            DataType::Date => oid::DATE,
            DataType::Timestamp => oid::TIMESTAMP,
            DataType::TimestampTz => oid::TIMESTAMPTZ,
            DataType::Interval => oid::INTERVAL,
            DataType::PgLsn => oid::PG_LSN,
            // An unresolved result column is reported as text, as PostgreSQL does for
            // `SELECT 'abc'`.
            DataType::Unknown => oid::TEXT,
        }
    }

    /// The type for an OID a client sent in `Parse`; `None` for OIDs lockstep does not store
    /// (0, "unspecified", is mapped to `Unknown` so context decides).
    pub fn from_oid(type_oid: u32) -> Option<DataType> {
        Some(match type_oid {
            0 | oid::UNKNOWN => DataType::Unknown,
            oid::BOOL => DataType::Bool,
            oid::INT2 => DataType::Int2,
            oid::INT4 => DataType::Int4,
            oid::INT8 => DataType::Int8,
            oid::FLOAT4 => DataType::Float4,
            oid::FLOAT8 => DataType::Float8,
            oid::NUMERIC => DataType::Numeric(None),
            oid::TEXT | oid::NAME => DataType::Text,
            oid::VARCHAR => DataType::Varchar(None),
            oid::BPCHAR => DataType::Char(1),
            oid::BYTEA => DataType::Bytea,
            oid::DATE => DataType::Date,
            oid::TIMESTAMP => DataType::Timestamp,
            oid::TIMESTAMPTZ => DataType::TimestampTz,
            oid::INTERVAL => DataType::Interval,
            oid::PG_LSN => DataType::PgLsn,
            _ => return None,
        })
    }

    /// `pg_type.typlen`: the fixed size in bytes, or -1 for variable-length types.
    pub fn type_len(self) -> i16 {
        match self {
            DataType::Bool => 1,
            DataType::Int2 => 2,
            DataType::Int4 | DataType::Float4 | DataType::Date => 4,
            DataType::Int8
            | DataType::Float8
            | DataType::Timestamp
            | DataType::TimestampTz
            | DataType::PgLsn => 8,
            DataType::Interval => 16,
            _ => -1,
        }
    }

    /// `atttypmod` as PostgreSQL encodes it (-1 when there is none).
    pub fn type_modifier(self) -> i32 {
        const VARHDRSZ: i32 = 4;
        match self {
            DataType::Varchar(Some(n)) | DataType::Char(n) => n as i32 + VARHDRSZ,
            DataType::Numeric(Some((p, s))) => ((i32::from(p) << 16) | i32::from(s)) + VARHDRSZ,
            _ => -1,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    pub fn is_numeric_family(self) -> bool {
        matches!(
            self,
            DataType::Int2
                | DataType::Int4
                | DataType::Int8
                | DataType::Float4
                | DataType::Float8
                | DataType::Numeric(_)
        )
    }

    pub fn is_string(self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown
        )
    }

    /// The type without its modifier (`varchar(10)` → `varchar`), for comparing "same type".
    pub fn base(self) -> DataType {
        match self {
            DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Char(_) => DataType::Char(1),
            other => other,
        }
    }

    /// PostgreSQL's `format_type` output, e.g. `character varying(10)`.
    pub fn sql_name(self) -> String {
        match self {
            DataType::Bool => "boolean".into(),
            DataType::Int2 => "smallint".into(),
            DataType::Int4 => "integer".into(),
            DataType::Int8 => "bigint".into(),
            DataType::Float4 => "real".into(),
            DataType::Float8 => "double precision".into(),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "character varying".into(),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(n) => format!("character({n})"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp without time zone".into(),
            DataType::TimestampTz => "timestamp with time zone".into(),
            DataType::Interval => "interval".into(),
            DataType::PgLsn => "pg_lsn".into(),
            DataType::Unknown => "unknown".into(),
        }
    }

    /// PostgreSQL's `format_type` without the modifier (`character varying`,
    /// `timestamp without time zone`), as `pg_typeof` and cast errors print it.
    pub fn unmodified_sql_name(self) -> &'static str {
        match self {
            DataType::Timestamp => "timestamp without time zone",
            other => other.short_name(),
        }
    }

    /// The short name used in error messages such as "integer out of range".
    pub fn short_name(self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp",
            DataType::TimestampTz => "timestamp with time zone",
            DataType::Interval => "interval",
            DataType::PgLsn => "pg_lsn",
            DataType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip() {
        for t in [
            DataType::Bool,
            DataType::Int2,
            DataType::Int4,
            DataType::Int8,
            DataType::Float4,
            DataType::Float8,
            DataType::Text,
            DataType::Bytea,
            DataType::Date,
            DataType::Timestamp,
            DataType::TimestampTz,
            DataType::Interval,
            DataType::PgLsn,
        ] {
            assert_eq!(DataType::from_oid(t.oid()), Some(t));
        }
        assert_eq!(DataType::from_oid(0), Some(DataType::Unknown));
        assert_eq!(DataType::from_oid(999_999), None);
    }

    #[test]
    fn typmods_match_postgres() {
        assert_eq!(DataType::Varchar(Some(10)).type_modifier(), 14);
        assert_eq!(DataType::Char(84).type_modifier(), 88);
        assert_eq!(DataType::Numeric(Some((10, 2))).type_modifier(), 655_366);
        assert_eq!(DataType::Int4.type_modifier(), -1);
    }
}
