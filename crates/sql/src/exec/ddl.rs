//! DDL: CREATE TABLE, DROP TABLE, TRUNCATE, ALTER TABLE ADD COLUMN / PRIMARY KEY / UNIQUE, CREATE
//! INDEX — translated to the transaction's catalog operations, which are transactional
//! (visible to others at commit, undone by rollback) and take the table's DDL lock.
//!
//! Names follow PostgreSQL: unquoted names fold to lower case and are truncated to 63 bytes
//! with a notice; constraint indexes are named `t_pkey` and `t_a_b_key`, plain indexes
//! `t_a_b_idx` (with a number appended on collision). Column defaults are validated by
//! binding them, then stored as SQL text. Table options (`WITH (fillfactor=100)`) are
//! accepted and ignored: the storage has no pages to fill. Serial and identity columns get
//! their sequences from `exec::sequence`. CHECK constraints are checked on every stored row
//! (`exec::check_constraints`); adding one to an existing table, FOREIGN KEY, temporary and
//! partitioned tables are 0A000.

use base::catalog::{CheckDef, ColumnDef, TableDef};
use base::error::sqlstate;
use base::{PgError, SqlState};
use sqlparser::ast;
use txn::{NewIndex, Transaction, TxnError};

use crate::exec::{foreign_key, sequence};
use crate::plan::bind_expr::ident_name;
use crate::plan::dml::bind_default;
use crate::plan::{Relation, relation_name, types};

/// PostgreSQL's NAMEDATALEN - 1.
const NAME_BYTES_MAX: usize = 63;

fn unsupported(what: &str) -> PgError {
    PgError::feature_not_supported(what)
}

/// Truncates an over-long identifier as PostgreSQL does, with its NOTICE.
pub fn truncate_ident(name: String, notices: &mut Vec<PgError>) -> String {
    if name.len() <= NAME_BYTES_MAX {
        return name;
    }
    let mut end = NAME_BYTES_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let short = name[..end].to_owned();
    let mut n = PgError::notice(format!(
        "identifier \"{name}\" will be truncated to \"{short}\""
    ));
    n.code = SqlState("42622");
    notices.push(n);
    short
}

fn table_name(name: &ast::ObjectName, notices: &mut Vec<PgError>) -> Result<String, PgError> {
    match relation_name(name)? {
        Relation::Table(t) => Ok(truncate_ident(t, notices)),
        Relation::View(_) => Err(unsupported("changing a system view")),
    }
}

fn index_columns(cols: &[ast::IndexColumn], def: &TableDef) -> Result<Vec<u16>, PgError> {
    let mut out = Vec::with_capacity(cols.len());
    for c in cols {
        if c.operator_class.is_some() {
            return Err(unsupported("operator classes"));
        }
        let name = match &c.column.expr {
            ast::Expr::Identifier(id) => ident_name(id),
            _ => return Err(unsupported("indexes on expressions")),
        };
        let pos = def.column_index(&name).ok_or_else(|| {
            PgError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" named in key does not exist"),
            )
        })?;
        let pos = u16::try_from(pos).unwrap_or(u16::MAX);
        if out.contains(&pos) {
            return Err(PgError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{name}\" appears twice in primary key constraint"),
            ));
        }
        out.push(pos);
    }
    Ok(out)
}

fn key_name(table: &str, def: &TableDef, cols: &[u16], suffix: &str) -> String {
    let mut parts = vec![table];
    parts.extend(
        cols.iter()
            .map(|&c| def.columns[usize::from(c)].name.as_str()),
    );
    parts.push(suffix);
    key_name_parts(&parts)
}

fn multiple_pk(table: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_TABLE_DEFINITION,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}

/// An index from a PRIMARY KEY or UNIQUE table constraint.
fn constraint_index(
    c: &ast::TableConstraint,
    table: &str,
    def: &TableDef,
) -> Result<NewIndex, PgError> {
    match c {
        ast::TableConstraint::PrimaryKey(pk) => {
            let cols = index_columns(&pk.columns, def)?;
            Ok(NewIndex {
                name: pk
                    .name
                    .as_ref()
                    .map(ident_name)
                    .unwrap_or_else(|| format!("{table}_pkey")),
                columns: cols,
                unique: true,
                primary: true,
            })
        }
        ast::TableConstraint::Unique(u) => {
            let cols = index_columns(&u.columns, def)?;
            Ok(NewIndex {
                name: u
                    .name
                    .as_ref()
                    .map(ident_name)
                    .unwrap_or_else(|| key_name(table, def, &cols, "key")),
                columns: cols,
                unique: true,
                primary: false,
            })
        }
        ast::TableConstraint::ForeignKey(_) => Err(unsupported("FOREIGN KEY constraints")),
        ast::TableConstraint::Check(_) => Err(unsupported("ALTER TABLE ... ADD CHECK")),
        _ => Err(unsupported("this kind of constraint")),
    }
}

/// Names and validates CHECK constraints as PostgreSQL does: an unnamed one is
/// `<table>_<column>_check` when it is written on a column or uses exactly one column, else
/// `<table>_check`, with a number appended on collision; the expression must bind over the
/// table's columns as a boolean (42804 otherwise, 42703 for an unknown column).
fn check_defs(
    table: &str,
    def: &TableDef,
    checks: Vec<(Option<String>, String, Option<String>)>,
) -> Result<Vec<CheckDef>, PgError> {
    let mut out: Vec<CheckDef> = Vec::with_capacity(checks.len());
    for (given, expr, column) in checks {
        let probe = TableDef {
            checks: vec![CheckDef {
                name: String::new(),
                expr: expr.clone(),
            }],
            ..def.clone()
        };
        let bound = crate::plan::dml::bind_checks(&probe)?;
        let name = match given {
            Some(n) => {
                if out.iter().any(|c| c.name == n) {
                    return Err(PgError::new(
                        sqlstate::DUPLICATE_OBJECT,
                        format!("check constraint \"{n}\" already exists"),
                    ));
                }
                n
            }
            None => {
                let column = column.or_else(|| {
                    let mut used: Vec<usize> = Vec::new();
                    if let Some((_, e)) = bound.first() {
                        e.walk(&mut |x| {
                            if let crate::expr::Expr::Column(i) = x
                                && !used.contains(i)
                            {
                                used.push(*i);
                            }
                        });
                    }
                    match used.as_slice() {
                        [one] => def.columns.get(*one).map(|c| c.name.clone()),
                        _ => None,
                    }
                });
                let base = match column {
                    Some(c) => key_name_parts(&[table, &c, "check"]),
                    None => key_name_parts(&[table, "check"]),
                };
                let mut name = base.clone();
                let mut n = 0;
                while out.iter().any(|c| c.name == name) {
                    n += 1;
                    name = format!("{base}{n}");
                }
                name
            }
        };
        out.push(CheckDef { name, expr });
    }
    Ok(out)
}

/// `a_b_c`, truncated to the name limit.
pub fn key_name_parts(parts: &[&str]) -> String {
    let mut name = parts.join("_");
    if name.len() > NAME_BYTES_MAX {
        let mut end = NAME_BYTES_MAX;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

pub async fn create_table(
    ct: &ast::CreateTable,
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    if ct.temporary {
        return Err(unsupported("temporary tables"));
    }
    if ct.query.is_some() {
        return Err(unsupported("CREATE TABLE AS"));
    }
    if ct.like.is_some() || ct.clone.is_some() {
        return Err(unsupported("CREATE TABLE LIKE"));
    }
    if ct.inherits.is_some() {
        return Err(unsupported("table inheritance"));
    }
    if ct.partition_by.is_some() || ct.partition_of.is_some() {
        return Err(unsupported("partitioned tables"));
    }
    if ct.or_replace || ct.external {
        return Err(unsupported("this CREATE TABLE form"));
    }
    let name = table_name(&ct.name, notices)?;
    let mut def = TableDef {
        oid: 0,
        name: name.clone(),
        columns: Vec::with_capacity(ct.columns.len()),
        indexes: Vec::new(),
        sequence: None,
        checks: Vec::new(),
        foreign_keys: Vec::new(),
    };
    // CHECK constraints: (given name, expression, the column it was written on).
    let mut checks: Vec<(Option<String>, String, Option<String>)> = Vec::new();
    // FOREIGN KEY constraints: (the column it was written on, its syntax).
    let mut fks: Vec<(Option<String>, ast::ForeignKeyConstraint)> = Vec::new();
    let mut indexes: Vec<NewIndex> = Vec::new();
    let mut column_keys: Vec<(usize, bool)> = Vec::new();
    let mut column_seqs = Vec::new();
    for col in &ct.columns {
        let cname = truncate_ident(ident_name(&col.name), notices);
        if def.columns.iter().any(|c| c.name == cname) {
            return Err(PgError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{cname}\" specified more than once"),
            ));
        }
        let seq = sequence::column_sequence(&name, col, def.columns.len())?;
        let data_type = match &seq {
            Some((t, _)) => *t,
            None => types::resolve(&col.data_type)?,
        };
        let mut c = ColumnDef {
            name: cname,
            data_type,
            not_null: false,
            default: None,
        };
        if let Some((_, s)) = seq {
            c.not_null = true;
            c.default = Some(sequence::nextval_default(&s.name));
            column_seqs.push(s);
        }
        for opt in &col.options {
            match &opt.option {
                // Identity: handled by `column_sequence` above.
                ast::ColumnOption::Generated {
                    generated_as: ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault,
                    generation_expr: None,
                    ..
                } => {}
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => c.not_null = true,
                ast::ColumnOption::Default(e) => c.default = Some(e.to_string()),
                ast::ColumnOption::PrimaryKey(_) => column_keys.push((def.columns.len(), true)),
                ast::ColumnOption::Unique(_) => column_keys.push((def.columns.len(), false)),
                ast::ColumnOption::ForeignKey(fk) => fks.push((Some(c.name.clone()), fk.clone())),
                ast::ColumnOption::Check(ch) => checks.push((
                    opt.name.as_ref().or(ch.name.as_ref()).map(ident_name),
                    ch.expr.to_string(),
                    Some(c.name.clone()),
                )),
                ast::ColumnOption::Generated { .. } | ast::ColumnOption::Identity(_) => {
                    return Err(unsupported("identity and generated columns"));
                }
                ast::ColumnOption::Collation(_) => return Err(unsupported("COLLATE")),
                _ => return Err(unsupported("this column option")),
            }
        }
        if c.default.is_some() {
            bind_default(&c)?;
        }
        def.columns.push(c);
    }
    for (pos, primary) in column_keys {
        let cols = vec![u16::try_from(pos).unwrap_or(u16::MAX)];
        let idx_name = if primary {
            format!("{name}_pkey")
        } else {
            key_name(&name, &def, &cols, "key")
        };
        indexes.push(NewIndex {
            name: idx_name,
            columns: cols,
            unique: true,
            primary,
        });
    }
    for c in &ct.constraints {
        if let ast::TableConstraint::Check(ch) = c {
            checks.push((ch.name.as_ref().map(ident_name), ch.expr.to_string(), None));
            continue;
        }
        if let ast::TableConstraint::ForeignKey(fk) = c {
            fks.push((None, fk.clone()));
            continue;
        }
        indexes.push(constraint_index(c, &name, &def)?);
    }
    def.checks = check_defs(&name, &def, checks)?;
    if indexes.iter().filter(|i| i.primary).count() > 1 {
        return Err(multiple_pk(&name));
    }
    let mut foreign_keys = Vec::with_capacity(fks.len());
    if !fks.is_empty() {
        let child = foreign_key::Child {
            name: &name,
            def: &def,
            unique_keys: indexes
                .iter()
                .filter(|i| i.unique || i.primary)
                .map(|i| i.columns.clone())
                .collect(),
        };
        let mut taken: Vec<String> = def
            .checks
            .iter()
            .map(|c| c.name.clone())
            .chain(indexes.iter().map(|i| i.name.clone()))
            .collect();
        let mut parents = Vec::new();
        for (column, fk) in &fks {
            let (fk, parent) = foreign_key::definition(txn, &child, fk, column.as_deref(), &taken)?;
            taken.push(fk.name.clone());
            foreign_keys.push(fk);
            parents.extend(parent);
        }
        for p in parents {
            txn.lock_for_ddl(&p).await.map_err(PgError::from)?;
        }
    }
    let created = txn
        .create_table_with_constraints(
            &name,
            def.columns,
            indexes,
            def.checks,
            foreign_keys,
            ct.if_not_exists,
        )
        .await
        .map_err(PgError::from)?;
    if !created {
        let mut n = PgError::notice(format!("relation \"{name}\" already exists, skipping"));
        n.code = sqlstate::DUPLICATE_TABLE;
        notices.push(n);
        return Ok(());
    }
    sequence::create_column_sequences(&name, column_seqs, txn).await
}

/// DROP TABLE a, b: PostgreSQL's messages for missing tables. Sequences owned by a dropped
/// table's columns (serial, identity, OWNED BY) go with it.
pub async fn drop_tables(
    names: &[ast::ObjectName],
    if_exists: bool,
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    let mut dropping = Vec::with_capacity(names.len());
    for n in names {
        dropping.push(table_name(n, &mut Vec::new())?);
    }
    for n in names {
        let name = table_name(n, notices)?;
        sequence::check_kind(txn, &name, false)?;
        if let Some(t) = txn.manager().catalog.latest(&name, Some(txn.shared())) {
            foreign_key::check_unreferenced(txn, &t, &dropping, false)?;
        }
        let oid = txn
            .manager()
            .catalog
            .latest(&name, Some(txn.shared()))
            .map(|t| t.oid());
        match txn.drop_table(&name, if_exists).await {
            Ok(true) => {
                if let Some(oid) = oid {
                    for seq in sequence::owned_sequences(txn, oid) {
                        txn.drop_table(&seq, true).await.map_err(PgError::from)?;
                    }
                }
            }
            Ok(false) => notices.push(PgError::notice(format!(
                "table \"{name}\" does not exist, skipping"
            ))),
            Err(TxnError::UndefinedTable(_)) => {
                return Err(PgError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("table \"{name}\" does not exist"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub async fn truncate(t: &ast::Truncate, txn: &mut Transaction) -> Result<(), PgError> {
    if t.partitions.is_some() {
        return Err(unsupported("TRUNCATE PARTITION"));
    }
    let mut ignored = Vec::new();
    let mut names = Vec::with_capacity(t.table_names.len());
    for target in &t.table_names {
        names.push(table_name(&target.name, &mut ignored)?);
    }
    for name in &names {
        if let Some(table) = txn.manager().catalog.latest(name, Some(txn.shared())) {
            foreign_key::check_unreferenced(txn, &table, &names, true)?;
        }
        txn.truncate(name).await.map_err(PgError::from)?;
    }
    Ok(())
}

/// The column ALTER TABLE ADD COLUMN adds: its type and NULL/NOT NULL/DEFAULT. Constraints
/// that need more (a key, a check over existing rows, a sequence) are 0A000 here.
pub fn added_column(col: &ast::ColumnDef) -> Result<ColumnDef, PgError> {
    if types::is_serial(&col.data_type) {
        return Err(unsupported(
            "ALTER TABLE ... ADD COLUMN with a serial column",
        ));
    }
    let mut c = ColumnDef {
        name: ident_name(&col.name),
        data_type: types::resolve(&col.data_type)?,
        not_null: false,
        default: None,
    };
    for opt in &col.options {
        match &opt.option {
            ast::ColumnOption::Null => {}
            ast::ColumnOption::NotNull => c.not_null = true,
            ast::ColumnOption::Default(e) => c.default = Some(e.to_string()),
            _ => {
                return Err(unsupported(
                    "ALTER TABLE ... ADD COLUMN with a constraint other than NULL, NOT NULL or DEFAULT",
                ));
            }
        }
    }
    Ok(c)
}

/// ALTER TABLE ... ADD [CONSTRAINT name] FOREIGN KEY: under the DDL locks of the table and
/// the referenced table, every existing row must reference an existing row (23503).
async fn add_foreign_key(
    txn: &mut Transaction,
    name: &str,
    fk: &ast::ForeignKeyConstraint,
) -> Result<(), PgError> {
    let table = txn.lock_for_ddl(name).await.map_err(PgError::from)?;
    let mut def = (*table.def).clone();
    let child = foreign_key::Child {
        name,
        def: &def,
        unique_keys: def
            .indexes
            .iter()
            .filter(|i| i.unique)
            .map(|i| i.columns.clone())
            .collect(),
    };
    let taken: Vec<String> = def
        .checks
        .iter()
        .map(|c| c.name.clone())
        .chain(def.indexes.iter().map(|i| i.name.clone()))
        .chain(def.foreign_keys.iter().map(|f| f.name.clone()))
        .collect();
    let (fk, parent) = foreign_key::definition(txn, &child, fk, None, &taken)?;
    if taken.contains(&fk.name) {
        return Err(PgError::new(
            sqlstate::DUPLICATE_OBJECT,
            format!(
                "constraint \"{}\" for relation \"{name}\" already exists",
                fk.name
            ),
        ));
    }
    if let Some(p) = parent {
        txn.lock_for_ddl(&p).await.map_err(PgError::from)?;
    }
    def.foreign_keys.push(fk);
    let probe = std::sync::Arc::new(table.with_def(def.clone()));
    foreign_key::validate_existing(txn, &probe, def.foreign_keys.len() - 1).await?;
    txn.replace_definition(name, def)
        .await
        .map_err(PgError::from)
}

/// ALTER TABLE. `added` holds, for each ADD COLUMN in order, the column (`added_column`) and
/// the value existing rows get: its DEFAULT, bound and evaluated once by the session.
pub async fn alter_table(
    at: &ast::AlterTable,
    added: &[(ColumnDef, base::Value)],
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    let mut added = added.iter();
    let name = table_name(&at.name, notices)?;
    let Some(table) = txn.manager().catalog.latest(&name, Some(txn.shared())) else {
        if at.if_exists {
            notices.push(PgError::notice(format!(
                "relation \"{name}\" does not exist, skipping"
            )));
            return Ok(());
        }
        return Err(PgError::undefined_table(&name));
    };
    for op in &at.operations {
        match op {
            ast::AlterTableOperation::AddConstraint {
                constraint: ast::TableConstraint::ForeignKey(fk),
                ..
            } => add_foreign_key(txn, &name, fk).await?,
            ast::AlterTableOperation::AddConstraint { constraint, .. } => {
                // Each operation sees the table as the previous one left it.
                let def = txn
                    .manager()
                    .catalog
                    .latest(&name, Some(txn.shared()))
                    .map(|t| t.def.clone())
                    .unwrap_or_else(|| table.def.clone());
                let idx = constraint_index(constraint, &name, &def)?;
                if idx.primary && def.primary_key().is_some() {
                    return Err(multiple_pk(&name));
                }
                if def.indexes.iter().any(|i| i.name == idx.name) {
                    return Err(PgError::new(
                        sqlstate::DUPLICATE_TABLE,
                        format!("relation \"{}\" already exists", idx.name),
                    ));
                }
                txn.create_index(&name, idx, false)
                    .await
                    .map_err(PgError::from)?;
            }
            ast::AlterTableOperation::AddColumn {
                if_not_exists,
                column_position: None,
                ..
            } => {
                let Some((column, fill)) = added.next().cloned() else {
                    return Err(PgError::internal("ADD COLUMN without its prepared column"));
                };
                let column = ColumnDef {
                    name: truncate_ident(column.name, notices),
                    ..column
                };
                let was_added = txn
                    .add_column(&name, column.clone(), fill, *if_not_exists)
                    .await
                    .map_err(PgError::from)?;
                if !was_added {
                    let mut n = PgError::notice(format!(
                        "column \"{}\" of relation \"{name}\" already exists, skipping",
                        column.name
                    ));
                    n.code = sqlstate::DUPLICATE_COLUMN;
                    notices.push(n);
                }
            }
            ast::AlterTableOperation::DropColumn { .. } => {
                return Err(unsupported("ALTER TABLE ... DROP COLUMN"));
            }
            ast::AlterTableOperation::RenameTable { .. } => {
                return Err(unsupported("ALTER TABLE ... RENAME"));
            }
            _ => return Err(unsupported("this ALTER TABLE action")),
        }
    }
    Ok(())
}

pub async fn create_index(
    ci: &ast::CreateIndex,
    txn: &mut Transaction,
    notices: &mut Vec<PgError>,
) -> Result<(), PgError> {
    if ci.predicate.is_some() {
        return Err(unsupported("partial indexes"));
    }
    if !ci.include.is_empty() {
        return Err(unsupported("INCLUDE columns"));
    }
    match &ci.using {
        None | Some(ast::IndexType::BTree) | Some(ast::IndexType::Hash) => {}
        Some(other) => {
            return Err(unsupported(&format!(
                "index access method \"{}\"",
                other.to_string().to_ascii_lowercase()
            )));
        }
    }
    let tname = table_name(&ci.table_name, notices)?;
    let table = txn
        .manager()
        .catalog
        .latest(&tname, Some(txn.shared()))
        .ok_or_else(|| PgError::undefined_table(&tname))?;
    let cols = index_columns(&ci.columns, &table.def)?;
    let name = match &ci.name {
        Some(n) => match n.0.last() {
            Some(ast::ObjectNamePart::Identifier(id)) => truncate_ident(ident_name(id), notices),
            _ => return Err(PgError::syntax("invalid index name")),
        },
        None => {
            let base = key_name(&tname, &table.def, &cols, "idx");
            let mut candidate = base.clone();
            let mut n = 0;
            while table.def.indexes.iter().any(|i| i.name == candidate) {
                n += 1;
                candidate = format!("{base}{n}");
            }
            candidate
        }
    };
    let created = txn
        .create_index(
            &tname,
            NewIndex {
                name: name.clone(),
                columns: cols,
                unique: ci.unique,
                primary: false,
            },
            ci.if_not_exists,
        )
        .await
        .map_err(PgError::from)?;
    if !created {
        let mut n = PgError::notice(format!("relation \"{name}\" already exists, skipping"));
        n.code = sqlstate::DUPLICATE_TABLE;
        notices.push(n);
    }
    Ok(())
}
