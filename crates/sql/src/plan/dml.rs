//! Binding INSERT, UPDATE and DELETE.
//!
//! INSERT: target columns (all, or a list without duplicates), VALUES rows with `DEFAULT`,
//! or a query; every stored value is coerced to its column's type with assignment rules
//! (`column "c" is of type integer but expression is of type text` otherwise); columns not
//! given get their DEFAULT expression (stored as SQL text in the catalog, bound here) or
//! NULL. ON CONFLICT picks its arbiter indexes as PostgreSQL's inference does (a unique index
//! on exactly the listed columns, or the named constraint) and binds DO UPDATE over the
//! existing row plus `excluded`. UPDATE/DELETE bind the assignments, the WHERE clause and an
//! access path; RETURNING binds over the table's row.

use std::sync::Arc;

use base::catalog::{ColumnDef, TableDef};
use base::error::sqlstate;
use base::{PgError, Value};
use sqlparser::ast;

use super::bind_expr::{AggMode, Binder, How, Scope, column_name, ident_name, is_default_keyword};
use super::{
    ConflictAction, DeletePlan, InsertPlan, InsertSource, OnConflict, Relation, Resolver,
    TableBinding, UpdatePlan, access, field, relation_name, resolve_table, select,
};
use crate::api::FieldInfo;
use crate::expr::Expr;

fn unsupported(what: &str) -> PgError {
    PgError::feature_not_supported(what)
}

/// Binds a column's DEFAULT expression (or NULL), coerced to the column type.
pub fn bind_default(col: &ColumnDef) -> Result<Expr, PgError> {
    let Some(text) = &col.default else {
        return Ok(Expr::Const(Value::Null));
    };
    let e = crate::parse::parse_expr(text)?;
    let mut b = Binder::plain();
    b.agg_mode = AggMode::Forbidden("DEFAULT expressions");
    let bound = b.expr(&e, &Scope::empty())?;
    b.coerce(bound, col.data_type, How::Assignment { column: &col.name })
}

/// Binds a table's CHECK constraints over its row (names and conditions). A condition must
/// be boolean and may not hold aggregates or subqueries, as PostgreSQL requires.
pub fn bind_checks(def: &TableDef) -> Result<Vec<(String, Expr)>, PgError> {
    let mut out = Vec::with_capacity(def.checks.len());
    for c in &def.checks {
        let e = crate::parse::parse_expr(&c.expr)?;
        let mut b = Binder::plain();
        b.agg_mode = AggMode::Forbidden("check constraints");
        let bound = b.condition(&e, &Scope::for_table(def, &def.name), "CHECK")?;
        if !b.subplans.is_empty() {
            return Err(unsupported("subqueries in check constraints"));
        }
        out.push((c.name.clone(), bound));
    }
    Ok(out)
}

fn target_table(
    name: &ast::ObjectName,
    resolve: Resolver<'_>,
) -> Result<(String, Arc<storage::Table>), PgError> {
    match relation_name(name)? {
        Relation::Table(t) => {
            let table = resolve_table(resolve, &t)?;
            if table.def.sequence.is_some() {
                // A sequence's row changes only through nextval/setval.
                return Err(PgError::new(
                    sqlstate::WRONG_OBJECT_TYPE,
                    format!("cannot change sequence \"{t}\""),
                ));
            }
            Ok((t, table))
        }
        Relation::View(_) => Err(unsupported("changing a system view")),
    }
}

fn column_position(def: &TableDef, name: &str) -> Result<usize, PgError> {
    def.column_index(name).ok_or_else(|| {
        PgError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                def.name
            ),
        )
    })
}

fn object_last(name: &ast::ObjectName) -> String {
    name.0
        .last()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(id) => ident_name(id),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// RETURNING / select-list items over `scope`.
pub fn bind_returning(
    b: &mut Binder,
    items: &[ast::SelectItem],
    scope: &Scope,
) -> Result<(Vec<Expr>, Vec<FieldInfo>), PgError> {
    b.agg_mode = AggMode::Forbidden("RETURNING");
    let mut exprs = Vec::new();
    let mut fields = Vec::new();
    let push_cols = |q: Option<&str>, exprs: &mut Vec<Expr>, fields: &mut Vec<FieldInfo>| {
        for (i, c) in scope.cols.iter().enumerate() {
            if c.qualified_only || q.is_some_and(|q| c.qualifier.as_deref() != Some(q)) {
                continue;
            }
            exprs.push(Expr::Column(i));
            fields.push(field(c.name.clone(), c.ty, Some((c.table_oid, c.attnum))));
        }
    };
    for it in items {
        match it {
            ast::SelectItem::Wildcard(_) => push_cols(None, &mut exprs, &mut fields),
            ast::SelectItem::QualifiedWildcard(
                ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) => {
                let q = object_last(n);
                push_cols(Some(&q), &mut exprs, &mut fields);
            }
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                let (x, ty) = b.expr(e, scope)?;
                let name = match it {
                    ast::SelectItem::ExprWithAlias { alias, .. } => ident_name(alias),
                    _ => column_name(e),
                };
                let source = match &x {
                    Expr::Column(i) => scope.cols.get(*i).map(|c| (c.table_oid, c.attnum)),
                    _ => None,
                };
                exprs.push(x);
                fields.push(field(name, ty, source));
            }
            _ => return Err(unsupported("this RETURNING item")),
        }
    }
    Ok((exprs, fields))
}

/// Binds `col = value` assignments (UPDATE SET, ON CONFLICT DO UPDATE SET).
fn bind_assignments(
    b: &mut Binder,
    def: &TableDef,
    assignments: &[ast::Assignment],
    scope: &Scope,
) -> Result<Vec<(usize, Expr)>, PgError> {
    let mut sets: Vec<(usize, Expr)> = Vec::with_capacity(assignments.len());
    for a in assignments {
        let name = match &a.target {
            ast::AssignmentTarget::ColumnName(n) => object_last(n),
            ast::AssignmentTarget::Tuple(_) => {
                return Err(unsupported("multiple-column assignments"));
            }
        };
        let pos = column_position(def, &name)?;
        if sets.iter().any(|(p, _)| *p == pos) {
            return Err(PgError::syntax(format!(
                "multiple assignments to same column \"{name}\""
            )));
        }
        let col = &def.columns[pos];
        let value = if is_default_keyword(&a.value) {
            bind_default(col)?
        } else {
            let bound = b.expr(&a.value, scope)?;
            b.coerce(bound, col.data_type, How::Assignment { column: &col.name })?
        };
        sets.push((pos, value));
    }
    Ok(sets)
}

/// A bound INSERT: plan, target table, RETURNING columns, and the tables a query source
/// reads.
pub type InsertBinding = (
    InsertPlan,
    TableBinding,
    Option<Vec<FieldInfo>>,
    Vec<TableBinding>,
);

pub fn bind_insert(
    b: &mut Binder,
    ins: &ast::Insert,
    resolve: Resolver<'_>,
) -> Result<InsertBinding, PgError> {
    if ins.or.is_some() || ins.ignore || ins.replace_into {
        return Err(unsupported("INSERT OR / IGNORE / REPLACE"));
    }
    if ins.overriding.is_some() {
        return Err(unsupported("OVERRIDING"));
    }
    if ins.partitioned.is_some() || !ins.after_columns.is_empty() || ins.insert_alias.is_some() {
        return Err(unsupported("this INSERT syntax"));
    }
    let name = match &ins.table {
        ast::TableObject::TableName(n) => n,
        _ => return Err(unsupported("INSERT into a table function")),
    };
    let (table_name, table) = target_table(name, resolve)?;
    let def = table.def.clone();
    let qualifier = ins
        .table_alias
        .as_ref()
        .map(|a| ident_name(&a.alias))
        .unwrap_or_else(|| table_name.clone());

    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        let mut t: Vec<usize> = Vec::with_capacity(ins.columns.len());
        for c in &ins.columns {
            let n = object_last(c);
            let p = column_position(&def, &n)?;
            if t.contains(&p) {
                return Err(PgError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!("column \"{n}\" specified more than once"),
                ));
            }
            t.push(p);
        }
        t
    };
    let defaults = def
        .columns
        .iter()
        .map(bind_default)
        .collect::<Result<Vec<_>, _>>()?;

    let count_error = |exprs: usize| {
        if exprs > targets.len() {
            PgError::syntax("INSERT has more expressions than target columns")
        } else {
            PgError::syntax("INSERT has more target columns than expressions")
        }
    };

    let mut source_table = Vec::new();
    let source = match &ins.source {
        None => {
            if !ins.assignments.is_empty() {
                return Err(unsupported("INSERT ... SET"));
            }
            InsertSource::Values(vec![defaults.clone()])
        }
        Some(q) => match q.body.as_ref() {
            ast::SetExpr::Values(values)
                if q.order_by.is_none() && q.limit_clause.is_none() && q.with.is_none() =>
            {
                b.agg_mode = AggMode::Forbidden("VALUES");
                let scope = Scope::empty();
                let mut rows = Vec::with_capacity(values.rows.len());
                for row in &values.rows {
                    let row = &row.content;
                    // Without a column list, a short row fills the leading columns and the
                    // rest get defaults, as in PostgreSQL.
                    if row.len() > targets.len()
                        || (row.len() < targets.len() && !ins.columns.is_empty())
                    {
                        return Err(count_error(row.len()));
                    }
                    let mut full = defaults.clone();
                    for (e, &pos) in row.iter().zip(&targets) {
                        if is_default_keyword(e) {
                            continue;
                        }
                        let col = &def.columns[pos];
                        let bound = b.expr(e, &scope)?;
                        full[pos] =
                            b.coerce(bound, col.data_type, How::Assignment { column: &col.name })?;
                    }
                    rows.push(full);
                }
                InsertSource::Values(rows)
            }
            _ => {
                let (query, fields, src) = select::bind_query(b, q, resolve)?;
                source_table = src;
                if fields.len() > targets.len()
                    || (fields.len() < targets.len() && !ins.columns.is_empty())
                {
                    return Err(count_error(fields.len()));
                }
                let mut map = defaults.clone();
                for (j, &pos) in targets.iter().enumerate().take(fields.len()) {
                    let col = &def.columns[pos];
                    map[pos] = b.coerce(
                        (Expr::Column(j), fields[j].data_type),
                        col.data_type,
                        How::Assignment { column: &col.name },
                    )?;
                }
                InsertSource::Query {
                    query: Box::new(query),
                    map,
                }
            }
        },
    };

    let on_conflict = match &ins.on {
        None => None,
        Some(ast::OnInsert::DuplicateKeyUpdate(_)) => {
            return Err(unsupported("ON DUPLICATE KEY UPDATE"));
        }
        Some(ast::OnInsert::OnConflict(oc)) => Some(bind_on_conflict(b, oc, &def, &qualifier)?),
        Some(_) => return Err(unsupported("this ON clause")),
    };

    let returning = match &ins.returning {
        Some(items) => {
            let scope = Scope::for_table(&def, &qualifier);
            let (exprs, fields) = bind_returning(b, items, &scope)?;
            Some((exprs, fields))
        }
        None => None,
    };
    let (returning, fields) = match returning {
        Some((e, f)) => (Some(e), Some(f)),
        None => (None, None),
    };
    Ok((
        InsertPlan {
            source,
            on_conflict,
            returning,
            checks: bind_checks(&def)?,
        },
        TableBinding {
            name: table_name,
            def,
        },
        fields,
        source_table,
    ))
}

fn bind_on_conflict(
    b: &mut Binder,
    oc: &ast::OnConflict,
    def: &TableDef,
    qualifier: &str,
) -> Result<OnConflict, PgError> {
    let unique: Vec<usize> = def
        .indexes
        .iter()
        .enumerate()
        .filter(|(_, i)| i.unique)
        .map(|(p, _)| p)
        .collect();
    let arbiters = match &oc.conflict_target {
        Some(ast::ConflictTarget::Columns { columns, predicate }) => {
            if predicate.is_some() {
                return Err(unsupported("ON CONFLICT with a WHERE clause"));
            }
            let mut cols: Vec<u16> = Vec::with_capacity(columns.len());
            for c in columns {
                let p = column_position(def, &ident_name(c))?;
                cols.push(u16::try_from(p).unwrap_or(u16::MAX));
            }
            cols.sort_unstable();
            cols.dedup();
            let found: Vec<usize> = unique
                .iter()
                .copied()
                .filter(|&i| {
                    let mut ic = def.indexes[i].columns.clone();
                    ic.sort_unstable();
                    ic == cols
                })
                .collect();
            if found.is_empty() {
                return Err(PgError::new(
                    sqlstate::INVALID_COLUMN_REFERENCE,
                    "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                ));
            }
            found
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let n = object_last(name);
            match def.indexes.iter().position(|i| i.name == n && i.unique) {
                Some(p) => vec![p],
                None => {
                    return Err(PgError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{n}\" for table \"{}\" does not exist",
                            def.name
                        ),
                    ));
                }
            }
        }
        None => {
            if matches!(oc.action, ast::OnConflictAction::DoUpdate(_)) {
                return Err(PgError::syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .with_hint("For example, ON CONFLICT (column_name)."));
            }
            unique
        }
    };
    let action = match &oc.action {
        ast::OnConflictAction::DoNothing => ConflictAction::Nothing,
        ast::OnConflictAction::DoUpdate(du) => {
            let mut scope = Scope::for_table(def, qualifier);
            scope.add_table(def, "excluded", true);
            b.agg_mode = AggMode::Forbidden("ON CONFLICT DO UPDATE");
            let sets = bind_assignments(b, def, &du.assignments, &scope)?;
            let filter = match &du.selection {
                Some(w) => Some(b.condition(w, &scope, "WHERE")?),
                None => None,
            };
            ConflictAction::Update { sets, filter }
        }
    };
    Ok(OnConflict { arbiters, action })
}

fn single_table(twj: &ast::TableWithJoins) -> Result<(&ast::ObjectName, Option<String>), PgError> {
    if !twj.joins.is_empty() {
        return Err(unsupported("JOIN"));
    }
    match &twj.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            Ok((name, alias.as_ref().map(|a| ident_name(&a.name))))
        }
        _ => Err(unsupported("this kind of target table")),
    }
}

pub fn bind_update(
    b: &mut Binder,
    upd: &ast::Update,
    resolve: Resolver<'_>,
) -> Result<(UpdatePlan, TableBinding, Option<Vec<FieldInfo>>), PgError> {
    if upd.from.is_some() {
        return Err(unsupported("UPDATE ... FROM"));
    }
    if upd.or.is_some() || !upd.order_by.is_empty() || upd.limit.is_some() {
        return Err(unsupported("this UPDATE syntax"));
    }
    let (name, alias) = single_table(&upd.table)?;
    let (table_name, table) = target_table(name, resolve)?;
    let def = table.def.clone();
    let scope = Scope::for_table(&def, alias.as_deref().unwrap_or(&table_name));
    b.agg_mode = AggMode::Forbidden("UPDATE");
    let sets = bind_assignments(b, &def, &upd.assignments, &scope)?;
    b.agg_mode = AggMode::Forbidden("WHERE");
    let filter = match &upd.selection {
        Some(w) => Some(b.condition(w, &scope, "WHERE")?),
        None => None,
    };
    let (returning, fields) = match &upd.returning {
        Some(items) => {
            let (e, f) = bind_returning(b, items, &scope)?;
            (Some(e), Some(f))
        }
        None => (None, None),
    };
    let access = access::choose(&def, filter.as_ref());
    Ok((
        UpdatePlan {
            access,
            filter,
            sets,
            returning,
            checks: bind_checks(&def)?,
        },
        TableBinding {
            name: table_name,
            def,
        },
        fields,
    ))
}

pub fn bind_delete(
    b: &mut Binder,
    del: &ast::Delete,
    resolve: Resolver<'_>,
) -> Result<(DeletePlan, TableBinding, Option<Vec<FieldInfo>>), PgError> {
    if !del.tables.is_empty() {
        return Err(unsupported("multiple-table DELETE"));
    }
    if del.using.is_some() {
        return Err(unsupported("DELETE ... USING"));
    }
    if !del.order_by.is_empty() || del.limit.is_some() {
        return Err(unsupported("DELETE with ORDER BY or LIMIT"));
    }
    let from = match &del.from {
        ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
    };
    let [twj] = from.as_slice() else {
        return Err(unsupported("multiple-table DELETE"));
    };
    let (name, alias) = single_table(twj)?;
    let (table_name, table) = target_table(name, resolve)?;
    let def = table.def.clone();
    let scope = Scope::for_table(&def, alias.as_deref().unwrap_or(&table_name));
    b.agg_mode = AggMode::Forbidden("WHERE");
    let filter = match &del.selection {
        Some(w) => Some(b.condition(w, &scope, "WHERE")?),
        None => None,
    };
    let (returning, fields) = match &del.returning {
        Some(items) => {
            let (e, f) = bind_returning(b, items, &scope)?;
            (Some(e), Some(f))
        }
        None => (None, None),
    };
    let access = access::choose(&def, filter.as_ref());
    Ok((
        DeletePlan {
            access,
            filter,
            returning,
        },
        TableBinding {
            name: table_name,
            def,
        },
        fields,
    ))
}
