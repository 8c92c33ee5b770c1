//! Table and index definitions: the catalog's data, as stored in checkpoints and carried by
//! DDL changes in WAL records.
//!
//! These are plain values. Who may change them, and when a change becomes visible, is the
//! storage layer's business (`storage::catalog`); here they only have a meaning and an
//! encoding.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::types::DataType;

/// Object identifier of a table or index. User objects start at `FIRST_USER_OID`, as in
/// PostgreSQL, so that clients that compare OIDs with 16384 classify them as user objects.
pub type Oid = u32;
pub const FIRST_USER_OID: Oid = 16384;

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: DataType,
    pub not_null: bool,
    /// The `DEFAULT` expression as SQL text, evaluated by the SQL layer for each insert.
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IndexDef {
    pub oid: Oid,
    pub name: String,
    /// Column positions (0-based) in key order.
    pub columns: Vec<u16>,
    pub unique: bool,
    /// The table's primary key (implies unique and NOT NULL columns).
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableDef {
    pub oid: Oid,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub indexes: Vec<IndexDef>,
    /// Set for a sequence (a relation of one row: `last_value`, `log_cnt`, `is_called`).
    pub sequence: Option<SequenceDef>,
    /// CHECK constraints, in creation order.
    pub checks: Vec<CheckDef>,
    /// FOREIGN KEY constraints this table's rows must satisfy.
    pub foreign_keys: Vec<ForeignKeyDef>,
}

/// What a FOREIGN KEY does to referencing rows when a referenced row goes or changes key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FkAction {
    /// Refuse, checked at the end of the statement.
    NoAction,
    /// Refuse at once.
    Restrict,
    Cascade,
    SetNull,
}

/// A FOREIGN KEY: `columns` of this table reference `ref_columns` (a unique key) of table
/// `ref_table`; MATCH SIMPLE (a key with a NULL references nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKeyDef {
    pub name: String,
    pub columns: Vec<u16>,
    pub ref_table: Oid,
    pub ref_columns: Vec<u16>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
}

impl FkAction {
    fn code(self) -> u8 {
        match self {
            FkAction::NoAction => 0,
            FkAction::Restrict => 1,
            FkAction::Cascade => 2,
            FkAction::SetNull => 3,
        }
    }

    fn from_code(c: u8) -> Option<FkAction> {
        Some(match c {
            0 => FkAction::NoAction,
            1 => FkAction::Restrict,
            2 => FkAction::Cascade,
            3 => FkAction::SetNull,
            _ => return None,
        })
    }
}

fn encode_columns(e: &mut Encoder, cols: &[u16]) {
    e.varint(cols.len() as u64);
    for c in cols {
        e.u16(*c);
    }
}

fn decode_columns(d: &mut Decoder<'_>) -> Result<Vec<u16>, DecodeError> {
    let n = d.len()?;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        cols.push(d.u16()?);
    }
    Ok(cols)
}

impl ForeignKeyDef {
    fn encode(&self, e: &mut Encoder) {
        e.str(&self.name);
        encode_columns(e, &self.columns);
        e.u32(self.ref_table);
        encode_columns(e, &self.ref_columns);
        e.u8(self.on_delete.code());
        e.u8(self.on_update.code());
    }

    fn decode(d: &mut Decoder<'_>) -> Result<ForeignKeyDef, DecodeError> {
        let name = d.str()?.to_owned();
        let columns = decode_columns(d)?;
        let ref_table = d.u32()?;
        let ref_columns = decode_columns(d)?;
        let mut action = || {
            let at = d.offset();
            let c = d.u8()?;
            FkAction::from_code(c).ok_or(DecodeError::BadTag { offset: at, tag: c })
        };
        let on_delete = action()?;
        let on_update = action()?;
        if columns.is_empty() || columns.len() != ref_columns.len() {
            return Err(DecodeError::Invalid {
                offset: d.offset(),
                what: "foreign key column counts differ",
            });
        }
        Ok(ForeignKeyDef {
            name,
            columns,
            ref_table,
            ref_columns,
            on_delete,
            on_update,
        })
    }
}

/// A CHECK constraint: every stored row must not make `expr` false (NULL passes).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckDef {
    pub name: String,
    /// The condition as SQL text over the table's columns, bound by the SQL layer.
    pub expr: String,
}

/// A sequence's parameters (`CREATE SEQUENCE`, or implied by a serial or identity column).
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceDef {
    /// `smallint`, `integer` or `bigint`: bounds the default MINVALUE/MAXVALUE.
    pub data_type: DataType,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns it (serial/identity, `OWNED BY`): dropped with its table.
    pub owned_by: Option<(Oid, u16)>,
}

impl SequenceDef {
    /// The columns of a sequence relation, as `SELECT * FROM seq` shows them.
    pub fn columns() -> Vec<ColumnDef> {
        let col = |name: &str, data_type| ColumnDef {
            name: name.to_owned(),
            data_type,
            not_null: true,
            default: None,
        };
        vec![
            col("last_value", DataType::Int8),
            col("log_cnt", DataType::Int8),
            col("is_called", DataType::Bool),
        ]
    }

    fn encode(&self, e: &mut Encoder) {
        encode_type(e, self.data_type);
        for v in [self.start, self.increment, self.min, self.max, self.cache] {
            e.i64(v);
        }
        e.bool(self.cycle);
        match self.owned_by {
            None => e.u8(0),
            Some((oid, col)) => {
                e.u8(1);
                e.u32(oid);
                e.u16(col);
            }
        }
    }

    fn decode(d: &mut Decoder<'_>) -> Result<SequenceDef, DecodeError> {
        let data_type = decode_type(d)?;
        let (start, increment, min, max, cache) =
            (d.i64()?, d.i64()?, d.i64()?, d.i64()?, d.i64()?);
        let cycle = d.bool()?;
        let at = d.offset();
        let owned_by = match d.u8()? {
            0 => None,
            1 => Some((d.u32()?, d.u16()?)),
            tag => return Err(DecodeError::BadTag { offset: at, tag }),
        };
        if increment == 0 || min > max || start < min || start > max {
            return Err(DecodeError::Invalid {
                offset: d.offset(),
                what: "sequence parameters out of range",
            });
        }
        Ok(SequenceDef {
            data_type,
            start,
            increment,
            min,
            max,
            cache,
            cycle,
            owned_by,
        })
    }
}

impl TableDef {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn primary_key(&self) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.primary)
    }

    /// `Key (a, b)=(1, x)`: PostgreSQL's way of showing the values `key` of columns `cols`
    /// in unique- and foreign-key error details.
    pub fn show_key<'v>(
        &self,
        cols: &[u16],
        key: impl IntoIterator<Item = &'v crate::Value>,
    ) -> String {
        let names: Vec<&str> = cols
            .iter()
            .map(|&c| self.columns[usize::from(c)].name.as_str())
            .collect();
        let values: Vec<String> = cols
            .iter()
            .zip(key)
            .map(|(&c, v)| {
                crate::pgio::format_text_string(v, self.columns[usize::from(c)].data_type)
            })
            .collect();
        format!("Key ({})=({})", names.join(", "), values.join(", "))
    }
}

fn encode_type(e: &mut Encoder, t: DataType) {
    match t {
        DataType::Bool => e.u8(1),
        DataType::Int2 => e.u8(2),
        DataType::Int4 => e.u8(3),
        DataType::Int8 => e.u8(4),
        DataType::Float4 => e.u8(5),
        DataType::Float8 => e.u8(6),
        DataType::Numeric(None) => e.u8(7),
        DataType::Numeric(Some((p, s))) => {
            e.u8(8);
            e.u16(p);
            e.u16(s);
        }
        DataType::Text => e.u8(9),
        DataType::Varchar(None) => e.u8(10),
        DataType::Varchar(Some(n)) => {
            e.u8(11);
            e.u32(n);
        }
        DataType::Char(n) => {
            e.u8(12);
            e.u32(n);
        }
        DataType::Bytea => e.u8(13),
        DataType::Timestamp => e.u8(14),
        DataType::TimestampTz => e.u8(15),
        DataType::Unknown => e.u8(16),
        DataType::Interval => e.u8(17),
        DataType::PgLsn => e.u8(18),
        DataType::Date => e.u8(19),
    }
}

fn decode_type(d: &mut Decoder<'_>) -> Result<DataType, DecodeError> {
    let at = d.offset();
    Ok(match d.u8()? {
        1 => DataType::Bool,
        2 => DataType::Int2,
        3 => DataType::Int4,
        4 => DataType::Int8,
        5 => DataType::Float4,
        6 => DataType::Float8,
        7 => DataType::Numeric(None),
        8 => DataType::Numeric(Some((d.u16()?, d.u16()?))),
        9 => DataType::Text,
        10 => DataType::Varchar(None),
        11 => DataType::Varchar(Some(d.u32()?)),
        12 => DataType::Char(d.u32()?),
        13 => DataType::Bytea,
        14 => DataType::Timestamp,
        15 => DataType::TimestampTz,
        16 => DataType::Unknown,
        17 => DataType::Interval,
        18 => DataType::PgLsn,
        19 => DataType::Date,
        tag => return Err(DecodeError::BadTag { offset: at, tag }),
    })
}

impl IndexDef {
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.oid);
        e.str(&self.name);
        e.varint(self.columns.len() as u64);
        for c in &self.columns {
            e.u16(*c);
        }
        e.bool(self.unique);
        e.bool(self.primary);
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<IndexDef, DecodeError> {
        let oid = d.u32()?;
        let name = d.str()?.to_owned();
        let n = d.len()?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(d.u16()?);
        }
        Ok(IndexDef {
            oid,
            name,
            columns,
            unique: d.bool()?,
            primary: d.bool()?,
        })
    }
}

impl TableDef {
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.oid);
        e.str(&self.name);
        e.varint(self.columns.len() as u64);
        for c in &self.columns {
            e.str(&c.name);
            encode_type(e, c.data_type);
            e.bool(c.not_null);
            match &c.default {
                None => e.u8(0),
                Some(s) => {
                    e.u8(1);
                    e.str(s);
                }
            }
        }
        e.varint(self.indexes.len() as u64);
        for i in &self.indexes {
            i.encode(e);
        }
        match &self.sequence {
            None => e.u8(0),
            Some(seq) => {
                e.u8(1);
                seq.encode(e);
            }
        }
        e.varint(self.checks.len() as u64);
        for c in &self.checks {
            e.str(&c.name);
            e.str(&c.expr);
        }
        e.varint(self.foreign_keys.len() as u64);
        for fk in &self.foreign_keys {
            fk.encode(e);
        }
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<TableDef, DecodeError> {
        Self::decode_layout(d, true)
    }

    /// The layout written before sequences, CHECK and FOREIGN KEY constraints existed (no
    /// trailing constraint fields): still read from older snapshots and WAL.
    pub fn decode_v1(d: &mut Decoder<'_>) -> Result<TableDef, DecodeError> {
        Self::decode_layout(d, false)
    }

    fn decode_layout(d: &mut Decoder<'_>, constraints: bool) -> Result<TableDef, DecodeError> {
        let oid = d.u32()?;
        let name = d.str()?.to_owned();
        let n = d.len()?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let name = d.str()?.to_owned();
            let data_type = decode_type(d)?;
            let not_null = d.bool()?;
            let at = d.offset();
            let default = match d.u8()? {
                0 => None,
                1 => Some(d.str()?.to_owned()),
                tag => return Err(DecodeError::BadTag { offset: at, tag }),
            };
            columns.push(ColumnDef {
                name,
                data_type,
                not_null,
                default,
            });
        }
        let n = d.len()?;
        let mut indexes = Vec::with_capacity(n);
        for _ in 0..n {
            indexes.push(IndexDef::decode(d)?);
        }
        for idx in &indexes {
            if idx.columns.iter().any(|c| usize::from(*c) >= columns.len()) {
                return Err(DecodeError::Invalid {
                    offset: d.offset(),
                    what: "index column out of range",
                });
            }
        }
        if !constraints {
            return Ok(TableDef {
                oid,
                name,
                columns,
                indexes,
                sequence: None,
                checks: Vec::new(),
                foreign_keys: Vec::new(),
            });
        }
        let at = d.offset();
        let sequence = match d.u8()? {
            0 => None,
            1 => Some(SequenceDef::decode(d)?),
            tag => return Err(DecodeError::BadTag { offset: at, tag }),
        };
        let n = d.len()?;
        let mut checks = Vec::with_capacity(n);
        for _ in 0..n {
            checks.push(CheckDef {
                name: d.str()?.to_owned(),
                expr: d.str()?.to_owned(),
            });
        }
        let n = d.len()?;
        let mut foreign_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let fk = ForeignKeyDef::decode(d)?;
            if fk.columns.iter().any(|c| usize::from(*c) >= columns.len()) {
                return Err(DecodeError::Invalid {
                    offset: d.offset(),
                    what: "foreign key column out of range",
                });
            }
            foreign_keys.push(fk);
        }
        Ok(TableDef {
            oid,
            name,
            columns,
            indexes,
            sequence,
            checks,
            foreign_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_def_round_trips() {
        let t = TableDef {
            oid: 16390,
            name: "pgbench_accounts".into(),
            columns: vec![
                ColumnDef {
                    name: "aid".into(),
                    data_type: DataType::Int4,
                    not_null: true,
                    default: None,
                },
                ColumnDef {
                    name: "filler".into(),
                    data_type: DataType::Char(84),
                    not_null: false,
                    default: Some("'x'".into()),
                },
                ColumnDef {
                    name: "n".into(),
                    data_type: DataType::Numeric(Some((10, 2))),
                    not_null: false,
                    default: None,
                },
            ],
            indexes: vec![IndexDef {
                oid: 16391,
                name: "pgbench_accounts_pkey".into(),
                columns: vec![0],
                unique: true,
                primary: true,
            }],
            sequence: None,
            checks: vec![CheckDef {
                name: "pgbench_accounts_n_check".into(),
                expr: "n > 0".into(),
            }],
            foreign_keys: vec![ForeignKeyDef {
                name: "pgbench_accounts_aid_fkey".into(),
                columns: vec![0],
                ref_table: 16_000,
                ref_columns: vec![1],
                on_delete: FkAction::Cascade,
                on_update: FkAction::Restrict,
            }],
        };
        let mut e = Encoder::new();
        t.encode(&mut e);
        let mut d = Decoder::new(&e.buf);
        assert_eq!(TableDef::decode(&mut d), Ok(t));
        assert!(d.is_empty());
    }

    #[test]
    fn the_layout_before_constraints_is_still_read() {
        let t = TableDef {
            oid: 16390,
            name: "old".into(),
            columns: vec![ColumnDef {
                name: "a".into(),
                data_type: DataType::Int4,
                not_null: true,
                default: None,
            }],
            indexes: Vec::new(),
            sequence: None,
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        };
        let mut e = Encoder::new();
        t.encode(&mut e);
        // The older layout is this one without the three trailing (empty) constraint fields.
        let old = &e.buf[..e.buf.len() - 3];
        let mut d = Decoder::new(old);
        assert_eq!(TableDef::decode_v1(&mut d), Ok(t));
        assert!(d.is_empty());
        assert!(TableDef::decode(&mut Decoder::new(old)).is_err());
    }

    #[test]
    fn sequence_def_round_trips_and_bad_parameters_are_refused() {
        let mut t = TableDef {
            oid: 16400,
            name: "t_id_seq".into(),
            columns: SequenceDef::columns(),
            indexes: Vec::new(),
            sequence: Some(SequenceDef {
                data_type: DataType::Int4,
                start: 1,
                increment: 1,
                min: 1,
                max: i64::from(i32::MAX),
                cache: 1,
                cycle: false,
                owned_by: Some((16399, 0)),
            }),
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        };
        let mut e = Encoder::new();
        t.encode(&mut e);
        assert_eq!(TableDef::decode(&mut Decoder::new(&e.buf)), Ok(t.clone()));
        if let Some(s) = t.sequence.as_mut() {
            s.increment = 0;
        }
        let mut e = Encoder::new();
        t.encode(&mut e);
        assert!(TableDef::decode(&mut Decoder::new(&e.buf)).is_err());
    }
}
