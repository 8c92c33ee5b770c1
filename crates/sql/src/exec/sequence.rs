//! Sequences in SQL: CREATE/DROP SEQUENCE, serial and identity columns, and the
//! nextval/currval/setval/lastval functions' link to the session.
//!
//! Parameters follow PostgreSQL's `init_params`: an ascending sequence defaults to
//! 1..max-of-type starting at 1, a descending one to min-of-type..-1 starting at -1; bad
//! combinations are 22023 with PostgreSQL's words. A serial column (`serial`, `bigserial`,
//! `smallserial`) or identity column (`GENERATED ... AS IDENTITY`) gets a sequence named
//! `<table>_<column>_seq`, owned by the column (dropped with its table), and the column
//! defaults to `nextval('<sequence>')` and is NOT NULL. Deliberately not done: `ALTER
//! SEQUENCE`, `GENERATED ALWAYS` refusing explicit values (it behaves as BY DEFAULT), CACHE
//! (accepted; values are not cached per session) and temporary sequences.
//!
//! The values themselves are `storage::sequence` (decisions) and `txn::sequence` (logging);
//! here names are resolved and errors worded. currval/lastval read what this session's
//! nextval/setval left in `SessionSequences`.

use std::collections::HashMap;
use std::sync::Arc;

use base::catalog::{Oid, SequenceDef};
use base::error::sqlstate;
use base::{DataType, Lsn, PgError};
use parking_lot::Mutex;
use sqlparser::ast;
use storage::Table;
use storage::sequence::SequenceError;
use txn::{Transaction, TxnError};

use crate::plan::bind_expr::ident_name;
use crate::plan::{Relation, relation_name, types};

/// What this session's nextval/setval calls left, for currval and lastval.
#[derive(Debug, Default)]
pub struct SessionSequences {
    inner: Mutex<SeqSeen>,
}

#[derive(Debug, Default)]
struct SeqSeen {
    current: HashMap<Oid, i64>,
    last: Option<(Oid, i64)>,
    /// The end of the newest sequence WAL record this transaction wrote.
    logged: Option<Lsn>,
}

impl SessionSequences {
    fn note(&self, oid: Oid, value: i64) {
        let mut s = self.inner.lock();
        s.current.insert(oid, value);
        s.last = Some((oid, value));
    }

    fn note_logged(&self, lsn: Option<Lsn>) {
        if let Some(l) = lsn {
            let mut s = self.inner.lock();
            s.logged = Some(s.logged.map_or(l, |o| o.max(l)));
        }
    }

    /// At the end of a transaction: the sequence WAL it wrote, which a commit must see
    /// acknowledged (see `TxnManager::nextval`); cleared for the next transaction.
    pub fn take_logged(&self) -> Option<Lsn> {
        self.inner.lock().logged.take()
    }
}

fn invalid(msg: String) -> PgError {
    PgError::new(sqlstate::INVALID_PARAMETER_VALUE, msg)
}

fn type_name(t: DataType) -> &'static str {
    match t {
        DataType::Int2 => "smallint",
        DataType::Int4 => "integer",
        _ => "bigint",
    }
}

fn type_bounds(t: DataType) -> (i64, i64) {
    match t {
        DataType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DataType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// An integer literal of a sequence option (`-5`, `+5`, `5`).
fn option_int(e: &ast::Expr) -> Result<i64, PgError> {
    let (neg, inner) = match e {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => (true, expr.as_ref()),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Plus,
            expr,
        } => (false, expr.as_ref()),
        other => (false, other),
    };
    let text = match inner {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let text = if neg { format!("-{text}") } else { text };
    text.parse::<i64>()
        .map_err(|_| PgError::syntax(format!("syntax error at or near \"{e}\"")))
}

/// The sequence type named by `AS type` (smallint, integer or bigint).
fn sequence_type(dt: &ast::DataType) -> Result<DataType, PgError> {
    match types::resolve(dt)? {
        t @ (DataType::Int2 | DataType::Int4 | DataType::Int8) => Ok(t),
        _ => Err(invalid(
            "sequence type must be smallint, integer, or bigint".into(),
        )),
    }
}

/// PostgreSQL's `init_params` for a new sequence: defaults, then checks.
pub fn sequence_def(
    data_type: DataType,
    options: &[ast::SequenceOptions],
) -> Result<(SequenceDef, Option<ast::ObjectName>), PgError> {
    let mut data_type = data_type;
    let mut increment = 1i64;
    let (mut min, mut max, mut start, mut cache) = (None, None, None, 1i64);
    let mut cycle = false;
    let mut owned_by = None;
    for o in options {
        match o {
            ast::SequenceOptions::DataType(t) => data_type = sequence_type(t)?,
            ast::SequenceOptions::IncrementBy(e, _) => increment = option_int(e)?,
            ast::SequenceOptions::MinValue(e) => min = e.as_ref().map(option_int).transpose()?,
            ast::SequenceOptions::MaxValue(e) => max = e.as_ref().map(option_int).transpose()?,
            ast::SequenceOptions::StartWith(e, _) => start = Some(option_int(e)?),
            ast::SequenceOptions::Cache(e) => cache = option_int(e)?,
            ast::SequenceOptions::Cycle(no) => cycle = !*no,
            ast::SequenceOptions::OwnedBy(o) => owned_by = o.clone(),
        }
    }
    if increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let (tmin, tmax) = type_bounds(data_type);
    let max = max.unwrap_or(if increment > 0 { tmax } else { -1 });
    let min = min.unwrap_or(if increment > 0 { 1 } else { tmin });
    let tname = type_name(data_type);
    if max < tmin || max > tmax {
        return Err(invalid(format!(
            "MAXVALUE ({max}) is out of range for sequence data type {tname}"
        )));
    }
    if min < tmin || min > tmax {
        return Err(invalid(format!(
            "MINVALUE ({min}) is out of range for sequence data type {tname}"
        )));
    }
    if min >= max {
        return Err(invalid(format!(
            "MINVALUE ({min}) must be less than MAXVALUE ({max})"
        )));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(invalid(format!(
            "START value ({start}) cannot be less than MINVALUE ({min})"
        )));
    }
    if start > max {
        return Err(invalid(format!(
            "START value ({start}) cannot be greater than MAXVALUE ({max})"
        )));
    }
    if cache <= 0 {
        return Err(invalid(format!(
            "CACHE ({cache}) must be greater than zero"
        )));
    }
    Ok((
        SequenceDef {
            data_type,
            start,
            increment,
            min,
            max,
            cache,
            cycle,
            owned_by: None,
        },
        owned_by,
    ))
}

fn relation(name: &ast::ObjectName) -> Result<String, PgError> {
    match relation_name(name)? {
        Relation::Table(t) => Ok(t),
        Relation::View(_) => Err(PgError::feature_not_supported("changing a system view")),
    }
}

/// `OWNED BY table.column`: the owning column, which must be in the same schema.
fn owner(txn: &Transaction, name: &ast::ObjectName) -> Result<(Oid, u16), PgError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(ident_name))
        .collect();
    let [.., table, column] = parts.as_slice() else {
        return Err(invalid("invalid OWNED BY option".into())
            .with_hint("Specify OWNED BY table.column or OWNED BY NONE."));
    };
    let t = txn
        .manager()
        .catalog
        .latest(table, Some(txn.shared()))
        .ok_or_else(|| PgError::undefined_table(table))?;
    let col = t.def.column_index(column).ok_or_else(|| {
        PgError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{column}\" of relation \"{table}\" does not exist"),
        )
    })?;
    Ok((t.oid(), u16::try_from(col).unwrap_or(u16::MAX)))
}

/// CREATE SEQUENCE.
pub async fn create_sequence(
    name: &ast::ObjectName,
    options: &[ast::SequenceOptions],
    if_not_exists: bool,
    temporary: bool,
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    if temporary {
        return Err(PgError::feature_not_supported("temporary sequences"));
    }
    let seq_name = relation(name)?;
    let (mut def, owned) = sequence_def(DataType::Int8, options)?;
    if let Some(o) = owned {
        def.owned_by = Some(owner(txn, &o)?);
    }
    let created = txn
        .create_sequence(&seq_name, def, if_not_exists)
        .await
        .map_err(PgError::from)?;
    if !created {
        let mut n = PgError::notice(format!("relation \"{seq_name}\" already exists, skipping"));
        n.code = sqlstate::DUPLICATE_TABLE;
        notices.push(n);
    }
    Ok(())
}

/// DROP SEQUENCE a, b.
pub async fn drop_sequences(
    names: &[ast::ObjectName],
    if_exists: bool,
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    for n in names {
        let name = relation(n)?;
        check_kind(txn, &name, true)?;
        match txn.drop_table(&name, if_exists).await {
            Ok(true) => {}
            Ok(false) => notices.push(PgError::notice(format!(
                "sequence \"{name}\" does not exist, skipping"
            ))),
            Err(TxnError::UndefinedTable(_)) => {
                return Err(PgError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("sequence \"{name}\" does not exist"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A serial or identity column's sequence: created after its table, owned by the column.
pub struct ColumnSequence {
    pub column: u16,
    pub name: String,
    pub def: SequenceDef,
}

/// The sequence a column's type or options ask for (`serial`, `GENERATED ... AS IDENTITY`),
/// with the column's type and default adjusted, or `None`.
pub fn column_sequence(
    table: &str,
    col: &ast::ColumnDef,
    position: usize,
) -> Result<Option<(DataType, ColumnSequence)>, PgError> {
    let serial = types::is_serial(&col.data_type);
    let identity = col.options.iter().find_map(|o| match &o.option {
        ast::ColumnOption::Generated {
            generated_as: ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault,
            sequence_options,
            generation_expr: None,
            ..
        } => Some(sequence_options.clone().unwrap_or_default()),
        _ => None,
    });
    if !serial && identity.is_none() {
        return Ok(None);
    }
    let data_type = if serial {
        serial_type(&col.data_type)
    } else {
        match types::resolve(&col.data_type)? {
            t @ (DataType::Int2 | DataType::Int4 | DataType::Int8) => t,
            _ => {
                return Err(invalid(
                    "identity column type must be smallint, integer, or bigint".into(),
                ));
            }
        }
    };
    let (def, _) = sequence_def(data_type, identity.as_deref().unwrap_or(&[]))?;
    let column = ident_name(&col.name);
    let name = crate::exec::ddl::key_name_parts(&[table, &column, "seq"]);
    Ok(Some((
        data_type,
        ColumnSequence {
            column: u16::try_from(position).unwrap_or(u16::MAX),
            name,
            def,
        },
    )))
}

fn serial_type(dt: &ast::DataType) -> DataType {
    let text = dt.to_string().to_ascii_lowercase();
    match text.as_str() {
        "bigserial" | "serial8" => DataType::Int8,
        "smallserial" | "serial2" => DataType::Int2,
        _ => DataType::Int4,
    }
}

/// The DEFAULT text of a column fed by sequence `name`: PostgreSQL shows
/// `nextval('name'::regclass)`; lockstep stores the call on the quoted name.
pub fn nextval_default(name: &str) -> String {
    format!("nextval('{}')", quote_ident(name).replace('\'', "''"))
}

fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_lowercase() || (i > 0 && c.is_ascii_digit()));
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Creates the sequences of a new table's serial/identity columns.
pub async fn create_column_sequences(
    table: &str,
    seqs: Vec<ColumnSequence>,
    txn: &mut Transaction,
) -> Result<(), PgError> {
    if seqs.is_empty() {
        return Ok(());
    }
    let oid = txn
        .manager()
        .catalog
        .latest(table, Some(txn.shared()))
        .map(|t| t.oid())
        .ok_or_else(|| PgError::undefined_table(table))?;
    for mut s in seqs {
        s.def.owned_by = Some((oid, s.column));
        txn.create_sequence(&s.name, s.def, false)
            .await
            .map_err(PgError::from)?;
    }
    Ok(())
}

/// The sequences owned by columns of table `oid` (dropped with it).
pub fn owned_sequences(txn: &Transaction, oid: Oid) -> Vec<String> {
    txn.tables()
        .into_iter()
        .filter(|t| {
            t.def
                .sequence
                .as_ref()
                .is_some_and(|s| s.owned_by.is_some_and(|(o, _)| o == oid))
        })
        .map(|t| t.name().to_owned())
        .collect()
}

/// 42809 when DROP TABLE names a sequence or DROP SEQUENCE a table.
pub fn check_kind(txn: &Transaction, name: &str, want_sequence: bool) -> Result<(), PgError> {
    let Some(t) = txn.manager().catalog.latest(name, Some(txn.shared())) else {
        return Ok(());
    };
    let is_seq = t.def.sequence.is_some();
    if is_seq == want_sequence {
        return Ok(());
    }
    let (what, hint) = if want_sequence {
        ("sequence", "Use DROP TABLE to remove a table.")
    } else {
        ("table", "Use DROP SEQUENCE to remove a sequence.")
    };
    Err(PgError::new(
        sqlstate::WRONG_OBJECT_TYPE,
        format!("\"{name}\" is not a {what}"),
    )
    .with_hint(hint))
}

/// Resolves a sequence named by text as `regclass` input does: an identifier, folded to
/// lower case unless quoted, optionally qualified by `public.` or `pg_catalog.`.
pub fn resolve(
    engine: &crate::engine::Engine,
    snapshot: &storage::Snapshot,
    text: &str,
) -> Result<Arc<Table>, PgError> {
    let name = parse_name(text)?;
    let table = engine
        .mgr
        .catalog
        .lookup(&name, snapshot)
        .ok_or_else(|| PgError::undefined_table(&name))?;
    if table.def.sequence.is_none() {
        return Err(PgError::new(
            sqlstate::WRONG_OBJECT_TYPE,
            format!("\"{name}\" is not a sequence"),
        ));
    }
    Ok(table)
}

fn parse_name(text: &str) -> Result<String, PgError> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    loop {
        let (part, after) = if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if q[i + 1..].starts_with('"') {
                        out.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
            let end = end.ok_or_else(|| PgError::syntax("invalid name syntax"))?;
            (out, &q[end..])
        } else {
            let stop = rest.find('.').unwrap_or(rest.len());
            (rest[..stop].trim().to_lowercase(), &rest[stop..])
        };
        if part.is_empty() {
            return Err(PgError::syntax("invalid name syntax"));
        }
        parts.push(part);
        match after.trim_start().strip_prefix('.') {
            Some(r) => rest = r.trim_start(),
            None if after.trim().is_empty() => break,
            None => return Err(PgError::syntax("invalid name syntax")),
        }
    }
    match parts.as_slice() {
        [n] => Ok(n.clone()),
        [schema, n] if schema == "public" || schema == "pg_catalog" => Ok(n.clone()),
        [schema, _] => Err(PgError::new(
            sqlstate::INVALID_SCHEMA_NAME,
            format!("schema \"{schema}\" does not exist"),
        )),
        _ => Err(PgError::syntax(
            "improper relation name (too many dotted names)",
        )),
    }
}

pub(crate) fn sequence_error(e: SequenceError<TxnError>, func: &str, name: &str) -> PgError {
    match e {
        SequenceError::Exhausted { max, limit } => PgError::new(
            sqlstate::SEQUENCE_GENERATOR_LIMIT_EXCEEDED,
            format!(
                "nextval: reached {} value of sequence \"{name}\" ({limit})",
                if max { "maximum" } else { "minimum" }
            ),
        ),
        SequenceError::OutOfBounds { value, min, max } => PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!(
                "{func}: value {value} is out of bounds for sequence \"{name}\" ({min}..{max})"
            ),
        ),
        SequenceError::Log(e) => e.into(),
    }
}

/// The sequence a column default `nextval('name')` (or `nextval('name'::regclass)`) takes
/// its values from, as written: COPY asks it for a value per row.
pub fn nextval_target(default: &str) -> Option<String> {
    let inner = default
        .trim()
        .strip_prefix("nextval(")?
        .strip_suffix(')')?
        .trim();
    let inner = inner.strip_suffix("::regclass").unwrap_or(inner).trim();
    let quoted = inner.strip_prefix('\'')?.strip_suffix('\'')?;
    if quoted.contains('\'') && !quoted.contains("''") {
        return None;
    }
    Some(quoted.replace("''", "'"))
}

/// `nextval(name)`.
pub fn nextval(
    engine: &crate::engine::Engine,
    snapshot: &storage::Snapshot,
    seen: &SessionSequences,
    read_only: bool,
    text: &str,
) -> Result<i64, PgError> {
    let t = resolve(engine, snapshot, text)?;
    if read_only {
        return Err(PgError::read_only("nextval()"));
    }
    let (v, logged) = engine
        .mgr
        .nextval(&t)
        .map_err(|e| sequence_error(e, "nextval", t.name()))?;
    seen.note_logged(logged);
    seen.note(t.oid(), v);
    Ok(v)
}

/// `setval(name, value [, is_called])`.
pub fn setval(
    engine: &crate::engine::Engine,
    snapshot: &storage::Snapshot,
    seen: &SessionSequences,
    read_only: bool,
    text: &str,
    value: i64,
    is_called: bool,
) -> Result<i64, PgError> {
    let t = resolve(engine, snapshot, text)?;
    if read_only {
        return Err(PgError::read_only("setval()"));
    }
    let logged = engine
        .mgr
        .setval(&t, value, is_called)
        .map_err(|e| sequence_error(e, "setval", t.name()))?;
    seen.note_logged(logged);
    if is_called {
        seen.note(t.oid(), value);
    }
    Ok(value)
}

/// `currval(name)`: this session's last nextval of it.
pub fn currval(
    engine: &crate::engine::Engine,
    snapshot: &storage::Snapshot,
    seen: &SessionSequences,
    text: &str,
) -> Result<i64, PgError> {
    let t = resolve(engine, snapshot, text)?;
    seen.inner
        .lock()
        .current
        .get(&t.oid())
        .copied()
        .ok_or_else(|| {
            PgError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "currval of sequence \"{}\" is not yet defined in this session",
                    t.name()
                ),
            )
        })
}

/// `lastval()`: this session's last nextval of any sequence.
pub fn lastval(seen: &SessionSequences) -> Result<i64, PgError> {
    seen.inner.lock().last.map(|(_, v)| v).ok_or_else(|| {
        PgError::new(
            sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
            "lastval is not yet defined in this session",
        )
    })
}

/// `pg_get_serial_sequence(table, column)`: the sequence owned by the column, qualified.
pub fn serial_sequence(
    engine: &crate::engine::Engine,
    snapshot: &storage::Snapshot,
    table: &str,
    column: &str,
) -> Result<Option<String>, PgError> {
    let tname = parse_name(table)?;
    let t = engine
        .mgr
        .catalog
        .lookup(&tname, snapshot)
        .ok_or_else(|| PgError::undefined_table(&tname))?;
    let col = t.def.column_index(column).ok_or_else(|| {
        PgError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{column}\" of relation \"{tname}\" does not exist"),
        )
    })?;
    let col = u16::try_from(col).unwrap_or(u16::MAX);
    Ok(engine
        .mgr
        .catalog
        .tables(snapshot)
        .into_iter()
        .find(|s| {
            s.def
                .sequence
                .as_ref()
                .is_some_and(|d| d.owned_by == Some((t.oid(), col)))
        })
        .map(|s| format!("public.{}", quote_ident(s.name()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_regclass_input() {
        assert_eq!(parse_name("Foo").expect("name"), "foo");
        assert_eq!(parse_name("\"Foo\"").expect("name"), "Foo");
        assert_eq!(parse_name("public.t_id_seq").expect("name"), "t_id_seq");
        assert_eq!(parse_name("\"a\"\"b\"").expect("name"), "a\"b");
        assert!(parse_name("x.y.z").is_err());
        assert!(parse_name("other.s").is_err());
        assert!(parse_name("").is_err());
        assert_eq!(nextval_default("t_id_seq"), "nextval('t_id_seq')");
        assert_eq!(nextval_default("T_id_seq"), "nextval('\"T_id_seq\"')");
        for name in ["t_id_seq", "T_id_seq", "it's"] {
            let target = nextval_target(&nextval_default(name)).expect("target");
            assert_eq!(parse_name(&target).expect("name"), name);
        }
        assert_eq!(
            nextval_target("nextval('s'::regclass)").as_deref(),
            Some("s")
        );
        assert_eq!(nextval_target("now()"), None);
    }
}
