//! FOREIGN KEY constraints: their definitions (CREATE TABLE, ALTER TABLE ... ADD) and their
//! enforcement by INSERT, UPDATE, DELETE and COPY.
//!
//! A referencing (child) row whose key has no NULL must find a row with that key in the
//! referenced (parent) table; a parent row may not disappear or change key while children
//! reference it, unless its action says what happens to them (CASCADE deletes them, SET
//! NULL clears their key). Keys are MATCH SIMPLE.
//!
//! When checks run, as PostgreSQL's RI triggers: RESTRICT, CASCADE and SET NULL act on each
//! parent row as it changes; the child-side check and NO ACTION are judged at the end of the
//! statement (`FkChecks::verify`), so one statement may insert a child before its parent, or
//! delete both, and a NO ACTION key that is back at the end of the statement is fine.
//! DEFERRABLE constraints are accepted and judged at the end of each statement too — a
//! documented difference from PostgreSQL, which would wait for COMMIT.
//!
//! Concurrency without extra locks: both sides write first and look second, and a look that
//! meets another transaction's uncommitted change to a row carrying the key waits for that
//! transaction (as a unique-index check does). So a child insert and a parent delete running
//! at once cannot both miss each other: whichever looks second sees the other's pending
//! change and waits (or the deadlock detector picks one). Looks read the newest committed
//! state, not the statement's snapshot, as PostgreSQL's crosscheck snapshot does.
//! Adding a foreign key takes the DDL lock of the referenced table, so its definition and
//! rows hold still until the new constraint is committed.
//!
//! Not done: ON UPDATE CASCADE/SET NULL and SET DEFAULT actions, MATCH FULL, DROP ... CASCADE
//! of dependent constraints (0A000 / 2BP01 as below).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base::catalog::{FkAction, ForeignKeyDef, TableDef};
use base::error::sqlstate;
use base::{PgError, Row, Value};
use sqlparser::ast;
use storage::{RowId, Table};
use txn::Transaction;

use crate::plan::bind_expr::ident_name;
use crate::plan::{Relation, relation_name};

/// A child row's key that must exist in the parent: (child, foreign key, key).
type ChildCheck = (Arc<Table>, usize, Vec<Value>);
/// A parent key that, if gone, must have no children: (parent, child, foreign key, key).
type ParentCheck = (Arc<Table>, Arc<Table>, usize, Vec<Value>);

/// The end-of-statement checks a statement owes (see the module header).
#[derive(Default)]
pub struct FkChecks {
    child: Vec<ChildCheck>,
    parent: Vec<ParentCheck>,
}

/// The values of `cols` in `row`, or `None` if one is NULL (MATCH SIMPLE: no reference).
fn key_of(row: &[Value], cols: &[u16]) -> Option<Vec<Value>> {
    let key: Vec<Value> = cols.iter().map(|&c| row[usize::from(c)].clone()).collect();
    (!key.iter().any(Value::is_null)).then_some(key)
}

fn carries(row: &[Value], cols: &[u16], key: &[Value]) -> bool {
    cols.iter()
        .zip(key)
        .all(|(&c, k)| row.get(usize::from(c)).is_some_and(|v| v == k))
}

/// The tables whose foreign keys reference `parent`, with the key's position in each.
pub fn referencing(txn: &Transaction, parent: &Table) -> Vec<(Arc<Table>, usize)> {
    if !txn.manager().catalog.may_have_foreign_keys() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in txn.tables() {
        for (i, fk) in t.def.foreign_keys.iter().enumerate() {
            if fk.ref_table == parent.oid() {
                out.push((t.clone(), i));
            }
        }
    }
    out
}

/// Rows of `table` whose current version (committed, or this transaction's own) has `key`
/// in `cols`. Another transaction's uncommitted change to a row carrying the key is waited
/// for first, then the search starts over.
async fn rows_with_key(
    txn: &mut Transaction,
    table: &Arc<Table>,
    cols: &[u16],
    key: &[Value],
) -> Result<Vec<(RowId, Row)>, PgError> {
    let me = txn.shared().clone();
    loop {
        let candidates: Vec<RowId> = match table.indexes.iter().find(|i| i.def.columns == cols) {
            Some(idx) => idx
                .key_from_values(key)
                .map(|k| idx.lookup(&k).to_vec())
                .unwrap_or_default(),
            None => {
                let mut ids = Vec::new();
                table.rows.for_each_slot(|id, s| {
                    if s.versions
                        .iter()
                        .any(|v| v.data.as_deref().is_some_and(|d| carries(d, cols, key)))
                    {
                        ids.push(id);
                    }
                    true
                });
                ids
            }
        };
        let mut found = Vec::new();
        let mut busy = None;
        for id in candidates {
            let seen = table.rows.with_slot(id, |s| {
                let carried = s
                    .versions
                    .iter()
                    .any(|v| v.data.as_deref().is_some_and(|d| carries(d, cols, key)));
                if carried && let Some(holder) = s.lock_holder_other_than(&me) {
                    return Err(holder);
                }
                Ok(s.latest_for_writer(&me)
                    .and_then(|v| v.data.clone())
                    .filter(|d| carries(d, cols, key)))
            });
            match seen {
                Some(Err(holder)) => {
                    busy = Some(holder);
                    break;
                }
                Some(Ok(Some(row))) => found.push((id, row)),
                _ => {}
            }
        }
        match busy {
            Some(holder) => txn
                .wait_for_writer(&holder, &format!("tuple in relation {}", table.name()))
                .await
                .map_err(PgError::from)?,
            None => return Ok(found),
        }
    }
}

/// The referenced table of `fk` as this transaction sees it.
fn parent_of(txn: &Transaction, fk: &ForeignKeyDef) -> Result<Arc<Table>, PgError> {
    txn.manager()
        .catalog
        .latest_by_oid(fk.ref_table, Some(txn.shared()))
        .ok_or_else(|| PgError::internal(format!("table of foreign key \"{}\" is gone", fk.name)))
}

/// Whether the parent of `child`'s foreign key `i` has a row with `key`.
async fn parent_has(
    txn: &mut Transaction,
    child: &Arc<Table>,
    i: usize,
    key: &[Value],
) -> Result<bool, PgError> {
    let fk = &child.def.foreign_keys[i];
    let parent = parent_of(txn, fk)?;
    // The child's values, as the parent's column types (int4 referencing int8, ...).
    let mut cast = Vec::with_capacity(key.len());
    for (v, &c) in key.iter().zip(&fk.ref_columns) {
        let to = parent.def.columns[usize::from(c)].data_type;
        cast.push(base::cast::cast(v, to, base::cast::CastKind::Implicit)?);
    }
    Ok(!rows_with_key(txn, &parent, &fk.ref_columns, &cast)
        .await?
        .is_empty())
}

fn child_violation(child: &Table, fk: &ForeignKeyDef, key: &[Value], parent: &str) -> PgError {
    PgError::new(
        sqlstate::FOREIGN_KEY_VIOLATION,
        format!(
            "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
            child.name(),
            fk.name
        ),
    )
    .with_detail(format!(
        "{} is not present in table \"{parent}\".",
        child.def.show_key(&fk.columns, key)
    ))
    .with_table(child.name())
    .with_constraint(fk.name.clone())
}

fn parent_violation(parent: &Table, child: &Table, fk: &ForeignKeyDef, key: &[Value]) -> PgError {
    PgError::new(
        sqlstate::FOREIGN_KEY_VIOLATION,
        format!(
            "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
            parent.name(),
            fk.name,
            child.name()
        ),
    )
    .with_detail(format!(
        "{} is still referenced from table \"{}\".",
        parent.def.show_key(&fk.ref_columns, key),
        child.name()
    ))
    .with_table(child.name())
    .with_constraint(fk.name.clone())
}

impl FkChecks {
    /// Notes what a new or changed row of `table` owes its own foreign keys (nothing when
    /// the key is NULL or unchanged).
    pub fn note_child(&mut self, table: &Arc<Table>, old: Option<&[Value]>, new: &[Value]) {
        for (i, fk) in table.def.foreign_keys.iter().enumerate() {
            let Some(key) = key_of(new, &fk.columns) else {
                continue;
            };
            if old.and_then(|o| key_of(o, &fk.columns)).as_ref() == Some(&key) {
                continue;
            }
            self.child.push((table.clone(), i, key));
        }
    }

    /// A row of `parent` changed from `old` to `new` (`None`: deleted): acts on the rows of
    /// the referencing tables `refs` as each foreign key says.
    pub fn on_parent_change<'a>(
        &'a mut self,
        txn: &'a mut Transaction,
        parent: &'a Arc<Table>,
        refs: &'a [(Arc<Table>, usize)],
        old: &'a [Value],
        new: Option<&'a [Value]>,
    ) -> Pin<Box<dyn Future<Output = Result<(), PgError>> + Send + 'a>> {
        Box::pin(async move {
            for (child, i) in refs {
                let fk = &child.def.foreign_keys[*i];
                let Some(key) = key_of(old, &fk.ref_columns) else {
                    continue;
                };
                if new.and_then(|n| key_of(n, &fk.ref_columns)).as_ref() == Some(&key) {
                    continue;
                }
                let action = if new.is_some() {
                    fk.on_update
                } else {
                    fk.on_delete
                };
                if action == FkAction::NoAction {
                    self.parent
                        .push((parent.clone(), child.clone(), *i, key.clone()));
                    continue;
                }
                let rows = rows_with_key(txn, child, &fk.columns, &key).await?;
                if rows.is_empty() {
                    continue;
                }
                if action == FkAction::Restrict {
                    return Err(parent_violation(parent, child, fk, &key));
                }
                let child_refs = referencing(txn, child);
                for (id, _) in rows {
                    let Some(current) = txn.lock_row(child, id).await.map_err(PgError::from)?
                    else {
                        continue;
                    };
                    if !carries(&current, &fk.columns, &key) {
                        continue;
                    }
                    if action == FkAction::Cascade {
                        txn.delete(child, id).map_err(PgError::from)?;
                        self.on_parent_change(txn, child, &child_refs, &current, None)
                            .await?;
                    } else {
                        let mut cleared = current.to_vec();
                        for &c in &fk.columns {
                            cleared[usize::from(c)] = Value::Null;
                        }
                        super::check_not_null(child, &cleared)?;
                        let cleared: Row = Arc::from(cleared);
                        txn.update(child, id, &current, cleared.clone())
                            .await
                            .map_err(PgError::from)?;
                        self.on_parent_change(txn, child, &child_refs, &current, Some(&cleared))
                            .await?;
                    }
                }
            }
            Ok(())
        })
    }

    /// End of statement: every noted child key has its parent row, and every parent key
    /// that went away (and did not come back) has no children left.
    pub async fn verify(&mut self, txn: &mut Transaction) -> Result<(), PgError> {
        for (child, i, key) in std::mem::take(&mut self.child) {
            if !parent_has(txn, &child, i, &key).await? {
                let fk = &child.def.foreign_keys[i];
                let parent = parent_of(txn, fk)?;
                return Err(child_violation(&child, fk, &key, parent.name()));
            }
        }
        for (parent, child, i, key) in std::mem::take(&mut self.parent) {
            let fk = &child.def.foreign_keys[i];
            if !rows_with_key(txn, &parent, &fk.ref_columns, &key)
                .await?
                .is_empty()
            {
                continue;
            }
            if !rows_with_key(txn, &child, &fk.columns, &key)
                .await?
                .is_empty()
            {
                return Err(parent_violation(&parent, &child, fk, &key));
            }
        }
        Ok(())
    }
}

// ----- definitions -----

fn unsupported(what: &str) -> PgError {
    PgError::feature_not_supported(what)
}

fn undefined_fk_column(name: &str) -> PgError {
    PgError::new(
        sqlstate::UNDEFINED_COLUMN,
        format!("column \"{name}\" referenced in foreign key constraint does not exist"),
    )
}

fn columns_of(def: &TableDef, names: &[ast::Ident]) -> Result<Vec<u16>, PgError> {
    names
        .iter()
        .map(|n| {
            let name = ident_name(n);
            def.column_index(&name)
                .map(|p| u16::try_from(p).unwrap_or(u16::MAX))
                .ok_or_else(|| undefined_fk_column(&name))
        })
        .collect()
}

fn action(a: Option<&ast::ReferentialAction>, on_update: bool) -> Result<FkAction, PgError> {
    Ok(match a {
        None | Some(ast::ReferentialAction::NoAction) => FkAction::NoAction,
        Some(ast::ReferentialAction::Restrict) => FkAction::Restrict,
        Some(ast::ReferentialAction::Cascade) if !on_update => FkAction::Cascade,
        Some(ast::ReferentialAction::SetNull) if !on_update => FkAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => {
            return Err(unsupported("foreign key action SET DEFAULT"));
        }
        Some(other) => return Err(unsupported(&format!("ON UPDATE {other}"))),
    })
}

/// What a new table (or the table ALTER TABLE changes) looks like to a foreign key being
/// defined on it: its definition and the unique keys it has or is about to get.
pub struct Child<'a> {
    pub name: &'a str,
    pub def: &'a TableDef,
    pub unique_keys: Vec<Vec<u16>>,
}

/// Builds a foreign key of table `child` from its syntax (`columns` given for a column
/// constraint). Returns it and the referenced table's name (for its DDL lock; `None` for a
/// self-reference). `taken` are constraint names already used on the table.
pub fn definition(
    txn: &Transaction,
    child: &Child<'_>,
    fk: &ast::ForeignKeyConstraint,
    column: Option<&str>,
    taken: &[String],
) -> Result<(ForeignKeyDef, Option<String>), PgError> {
    if fk
        .match_kind
        .as_ref()
        .is_some_and(|m| !matches!(m, ast::ConstraintReferenceMatchKind::Simple))
    {
        return Err(unsupported("MATCH FULL and MATCH PARTIAL foreign keys"));
    }
    let parent_name = match relation_name(&fk.foreign_table)? {
        Relation::Table(t) => t,
        Relation::View(_) => return Err(unsupported("foreign keys referencing system views")),
    };
    let columns = match column {
        Some(c) => vec![
            child
                .def
                .column_index(c)
                .map(|p| u16::try_from(p).unwrap_or(u16::MAX))
                .ok_or_else(|| undefined_fk_column(c))?,
        ],
        None => columns_of(child.def, &fk.columns)?,
    };
    let self_ref = parent_name == child.name;
    let parent_table;
    let (parent_def, parent_keys): (&TableDef, Vec<Vec<u16>>) = if self_ref {
        (child.def, child.unique_keys.clone())
    } else {
        parent_table = txn
            .manager()
            .catalog
            .latest(&parent_name, Some(txn.shared()))
            .ok_or_else(|| PgError::undefined_table(&parent_name))?;
        if parent_table.def.sequence.is_some() {
            return Err(PgError::new(
                sqlstate::WRONG_OBJECT_TYPE,
                format!("referenced relation \"{parent_name}\" is not a table"),
            ));
        }
        let keys = parent_table
            .def
            .indexes
            .iter()
            .filter(|i| i.unique)
            .map(|i| i.columns.clone())
            .collect();
        (&*parent_table.def, keys)
    };
    let ref_columns = if fk.referred_columns.is_empty() {
        let pk = if self_ref {
            child.unique_keys.first().cloned()
        } else {
            parent_def.primary_key().map(|i| i.columns.clone())
        };
        pk.ok_or_else(|| {
            PgError::new(
                sqlstate::INVALID_FOREIGN_KEY,
                format!("there is no primary key for referenced table \"{parent_name}\""),
            )
        })?
    } else {
        columns_of(parent_def, &fk.referred_columns)?
    };
    // PostgreSQL looks for the unique key first, then compares the column counts.
    let mut wanted = ref_columns.clone();
    wanted.sort_unstable();
    let unique = parent_keys.iter().any(|k| {
        let mut k = k.clone();
        k.sort_unstable();
        k == wanted
    });
    if !unique {
        return Err(PgError::new(
            sqlstate::INVALID_FOREIGN_KEY,
            format!(
                "there is no unique constraint matching given keys for referenced table \"{parent_name}\""
            ),
        ));
    }
    if columns.len() != ref_columns.len() {
        return Err(PgError::new(
            sqlstate::INVALID_FOREIGN_KEY,
            "number of referencing and referenced columns for foreign key disagree",
        ));
    }
    let name = match &fk.name {
        Some(n) => ident_name(n),
        None => {
            let mut parts = vec![child.name];
            parts.extend(
                columns
                    .iter()
                    .map(|&c| child.def.columns[usize::from(c)].name.as_str()),
            );
            parts.push("fkey");
            let base = super::ddl::key_name_parts(&parts);
            let mut name = base.clone();
            let mut n = 0;
            while taken.contains(&name) {
                n += 1;
                name = format!("{base}{n}");
            }
            name
        }
    };
    for (&c, &r) in columns.iter().zip(&ref_columns) {
        let (ct, rt) = (
            child.def.columns[usize::from(c)].data_type,
            parent_def.columns[usize::from(r)].data_type,
        );
        if !crate::plan::coerce::comparable(ct, rt) {
            return Err(PgError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("foreign key constraint \"{name}\" cannot be implemented"),
            )
            .with_detail(format!(
                "Key columns \"{}\" and \"{}\" are of incompatible types: {} and {}.",
                child.def.columns[usize::from(c)].name,
                parent_def.columns[usize::from(r)].name,
                ct.sql_name(),
                rt.sql_name()
            )));
        }
    }
    Ok((
        ForeignKeyDef {
            name,
            columns,
            ref_table: if self_ref {
                child.def.oid
            } else {
                parent_def.oid
            },
            ref_columns,
            on_delete: action(fk.on_delete.as_ref(), false)?,
            on_update: action(fk.on_update.as_ref(), true)?,
        },
        (!self_ref).then_some(parent_name),
    ))
}

/// ALTER TABLE ... ADD FOREIGN KEY: every existing row of `child` must already reference an
/// existing parent row (23503 otherwise, as PostgreSQL's validation reports).
pub async fn validate_existing(
    txn: &mut Transaction,
    child: &Arc<Table>,
    i: usize,
) -> Result<(), PgError> {
    let fk = child.def.foreign_keys[i].clone();
    let me = txn.shared().clone();
    let mut keys: Vec<Vec<Value>> = Vec::new();
    child.rows.for_each_slot(|_, s| {
        if let Some(row) = s.latest_for_writer(&me).and_then(|v| v.data.as_ref())
            && let Some(k) = key_of(row, &fk.columns)
            && !keys.contains(&k)
        {
            keys.push(k);
        }
        true
    });
    for key in keys {
        if !parent_has(txn, child, i, &key).await? {
            let parent = parent_of(txn, &fk)?;
            return Err(child_violation(child, &fk, &key, parent.name()));
        }
    }
    Ok(())
}

/// DROP TABLE / TRUNCATE of `parent` while tables outside `dropping` reference it: 2BP01
/// for DROP (no CASCADE), 0A000 for TRUNCATE, as PostgreSQL.
pub fn check_unreferenced(
    txn: &Transaction,
    parent: &Table,
    dropping: &[String],
    truncate: bool,
) -> Result<(), PgError> {
    let Some((child, i)) = referencing(txn, parent)
        .into_iter()
        .find(|(c, _)| !dropping.iter().any(|d| d == c.name()))
    else {
        return Ok(());
    };
    let fk = &child.def.foreign_keys[i];
    Err(if truncate {
        PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "cannot truncate a table referenced in a foreign key constraint",
        )
        .with_detail(format!(
            "Table \"{}\" references \"{}\".",
            child.name(),
            parent.name()
        ))
        .with_hint(format!(
            "Truncate table \"{}\" at the same time, or use TRUNCATE ... CASCADE.",
            child.name()
        ))
    } else {
        PgError::new(
            sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot drop table {} because other objects depend on it",
                parent.name()
            ),
        )
        .with_detail(format!(
            "constraint {} on table {} depends on table {}",
            fk.name,
            child.name(),
            parent.name()
        ))
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too.")
    })
}
