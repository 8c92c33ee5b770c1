//! Binding and planning: a parsed statement plus the catalog → a `Plan` the executor runs.
//!
//! Where it runs: in the session, at Parse (extended protocol) or at the first execution of
//! a simple-query statement shape, and again whenever a table the plan uses has changed
//! shape (its `TableDef` is no longer the one the plan was made for).
//!
//! A plan holds everything execution needs without looking at SQL again: bound expressions
//! (`expr::Expr`), the access path (`access`), the result columns, and the types of the
//! parameter slots. It does not hold `Arc<Table>`s: tables are opened per execution through
//! the transaction (which registers the transaction as a user of the table, so DDL waits for
//! it), and the plan is checked against the opened table's definition.
//!
//! Deliberately not supported (0A000 naming the construct): joins, subqueries, set
//! operations, CTEs, window functions.

pub mod access;
pub mod bind_expr;
pub mod coerce;
pub mod dml;
pub mod select;
pub mod types;

use std::sync::Arc;

use base::catalog::TableDef;
use base::{DataType, PgError};
use sqlparser::ast;
use storage::Table;

use crate::api::FieldInfo;
use crate::expr::Expr;
use crate::expr::agg::AggCall;
pub use access::Access;
use bind_expr::name_parts;

/// The table a plan was made for: execution re-opens it by name and re-plans if the opened
/// definition is not this one.
#[derive(Clone, Debug)]
pub struct TableBinding {
    pub name: String,
    pub def: Arc<TableDef>,
}

/// A virtual relation answered by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    StatActivity,
    StatReplication,
    StatWalReceiver,
    ReplicationSlots,
    Settings,
    StatWal,
}

#[derive(Clone, Debug)]
pub enum Source {
    /// No FROM clause: one empty input row.
    None,
    Table(Access),
    View(View),
    /// `FROM pg_create_physical_replication_slot(...)`: one row (slot_name, lsn) from the
    /// call with these bound arguments (name, immediately_reserve, temporary).
    CreateSlot(Vec<Expr>),
    /// Several FROM items joined (`a JOIN b ON ...`, `a, b`): the input row is the items'
    /// columns side by side, in FROM order.
    Join(Box<JoinPlan>),
    /// `left UNION/INTERSECT/EXCEPT [ALL] right`: the input rows are the combined result
    /// rows (both sides already converted to the result's column types).
    SetOp(Box<SetOpPlan>),
}

#[derive(Clone, Debug)]
pub struct SetOpPlan {
    pub op: SetOp,
    /// `ALL`: keep duplicates (multiset semantics for INTERSECT/EXCEPT).
    pub all: bool,
    pub left: SelectPlan,
    pub right: SelectPlan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Intersect,
    Except,
}

/// A subquery in an expression. An uncorrelated one runs once per execution, before the
/// statement reads anything, and its result stands in for it (`Expr::Subquery` and
/// friends); a correlated one runs for each row that evaluates it.
#[derive(Clone, Debug)]
pub struct SubPlan {
    pub plan: SelectPlan,
    pub kind: SubKind,
    /// It refers to the enclosing query's row (`Expr::OuterColumn`): it runs once per row
    /// that evaluates it (`Expr::Correlated`), not once before the statement.
    pub correlated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKind {
    /// `(SELECT x ...)`: its one value (NULL for no row, 21000 for more than one).
    Scalar,
    /// `EXISTS (SELECT ...)`.
    Exists,
    /// `x IN (SELECT y ...)`: its values, already of the comparison's type.
    In,
    /// `FROM (SELECT ...) AS s`: all its rows.
    Rows,
}

/// FROM items joined left to right (see `exec::select` for how they run).
#[derive(Clone, Debug)]
pub struct JoinPlan {
    /// The first item is the starting input; each later one is joined to everything left of
    /// it.
    pub items: Vec<JoinItem>,
}

#[derive(Clone, Debug)]
pub struct JoinItem {
    pub rel: JoinRel,
    /// Its number of columns.
    pub width: usize,
    /// How it joins the items to its left (`Inner` for the first item).
    pub kind: JoinKind,
    /// The join condition, over the row `[items to the left..., this item...]`; `None` for a
    /// cross join.
    pub on: Option<Expr>,
    /// Column pairs (left-row position, position in this item's row) that `on` requires to
    /// be equal, same type on both sides: the join hashes this item's rows on them instead of
    /// testing every pair. `on` is still evaluated on each candidate pair.
    pub hash_keys: Vec<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub enum JoinRel {
    /// A table, by the name it was opened under (in `Plan::tables`).
    Table(String),
    View(View),
    /// A subquery in FROM: the rows of `Plan::subplans[i]`.
    Derived(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

#[derive(Clone, Debug)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

#[derive(Clone, Debug)]
pub struct AggPlan {
    /// GROUP BY expressions over the input row; the aggregate row is
    /// `[group values..., aggregate results...]`.
    pub groups: Vec<Expr>,
    pub aggs: Vec<AggCall>,
    /// Over the aggregate row.
    pub having: Option<Expr>,
}

#[derive(Clone, Debug)]
pub struct SelectPlan {
    pub source: Source,
    /// Over the input row.
    pub filter: Option<Expr>,
    pub agg: Option<AggPlan>,
    /// Over the input row, or the aggregate row when `agg` is set.
    pub projection: Vec<Expr>,
    /// Same row as `projection`.
    pub order: Vec<SortKey>,
    pub distinct: bool,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
    pub for_update: bool,
    /// The table read (name as opened), for `Source::Table`.
    pub table: Option<String>,
}

#[derive(Clone, Debug)]
pub enum ConflictAction {
    Nothing,
    /// Assignments and filter over `[existing row..., excluded row...]`.
    Update {
        sets: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

#[derive(Clone, Debug)]
pub struct OnConflict {
    /// Positions in `def.indexes` of the arbiter indexes.
    pub arbiters: Vec<usize>,
    pub action: ConflictAction,
}

#[derive(Clone, Debug)]
pub enum InsertSource {
    /// One expression per table column per row (defaults already filled in, each coerced to
    /// its column's type).
    Values(Vec<Vec<Expr>>),
    /// A query; `map` builds the table row from the query's output row.
    Query {
        query: Box<SelectPlan>,
        map: Vec<Expr>,
    },
}

#[derive(Clone, Debug)]
pub struct InsertPlan {
    pub source: InsertSource,
    pub on_conflict: Option<OnConflict>,
    /// Over the inserted (or updated) row.
    pub returning: Option<Vec<Expr>>,
    /// The table's CHECK constraints over a new row (`dml::bind_checks`).
    pub checks: Vec<(String, Expr)>,
}

#[derive(Clone, Debug)]
pub struct UpdatePlan {
    pub access: Access,
    pub filter: Option<Expr>,
    /// Column position → new value over the old row (coerced to the column type).
    pub sets: Vec<(usize, Expr)>,
    pub returning: Option<Vec<Expr>>,
    /// The table's CHECK constraints over the new row.
    pub checks: Vec<(String, Expr)>,
}

#[derive(Clone, Debug)]
pub struct DeletePlan {
    pub access: Access,
    pub filter: Option<Expr>,
    pub returning: Option<Vec<Expr>>,
}

#[derive(Clone, Debug)]
pub enum PlanKind {
    Select(Box<SelectPlan>),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub kind: PlanKind,
    /// Every table the plan uses (the target first for writes).
    pub tables: Vec<TableBinding>,
    /// Types of every parameter slot (client parameters, then literal slots).
    pub slot_types: Vec<DataType>,
    /// The client parameters' types (what Describe reports).
    pub param_types: Vec<DataType>,
    /// Result columns (`None`: the statement returns no rows).
    pub fields: Option<Vec<FieldInfo>>,
    /// Subqueries of its expressions, in the order they must run (a nested one first).
    pub subplans: Vec<SubPlan>,
}

/// Looks tables up by name for the binder.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<Arc<Table>>;

/// What a table reference names.
pub enum Relation {
    Table(String),
    View(View),
}

/// Resolves a written relation name: `t`, `public.t`, `pg_catalog.pg_stat_activity`.
pub fn relation_name(name: &ast::ObjectName) -> Result<Relation, PgError> {
    let parts = name_parts(name);
    let (schema, rel) = match parts.as_slice() {
        [r] => (None, r.clone()),
        [s, r] => (Some(s.clone()), r.clone()),
        [_db, s, r] => (Some(s.clone()), r.clone()),
        _ => {
            return Err(PgError::syntax(format!(
                "improper relation name (too many dotted names): {name}"
            )));
        }
    };
    match (schema.as_deref(), rel.as_str()) {
        (None | Some("pg_catalog"), r) if crate::views::by_name(r).is_some() => {
            crate::views::by_name(r)
                .map(Relation::View)
                .ok_or_else(|| PgError::internal("view vanished"))
        }
        (Some("pg_catalog" | "information_schema"), other) => Err(PgError::feature_not_supported(
            format!("system catalog {}", other),
        )),
        (None | Some("public"), _) => Ok(Relation::Table(rel)),
        (Some(s), _) => Err(PgError::new(
            INVALID_SCHEMA_NAME,
            format!("schema \"{s}\" does not exist"),
        )),
    }
}

/// SQLSTATE 3F000, not in base's list.
const INVALID_SCHEMA_NAME: base::SqlState = base::SqlState("3F000");

/// Opens `name` through the resolver or reports 42P01.
pub fn resolve_table(resolve: Resolver<'_>, name: &str) -> Result<Arc<Table>, PgError> {
    resolve(name).ok_or_else(|| PgError::undefined_table(name))
}

/// Binds a statement that has a plan (SELECT, INSERT, UPDATE, DELETE). `slot_types` are the
/// parameter slots' types as known so far (declared client types, literal types, `Unknown`
/// for client parameters to infer).
pub fn plan_statement(
    stmt: &ast::Statement,
    slot_types: Vec<DataType>,
    client_params: usize,
    declared: Vec<bool>,
    resolve: Resolver<'_>,
) -> Result<Plan, PgError> {
    let mut binder = bind_expr::Binder::new(slot_types, client_params, declared);
    binder.resolve = Some(resolve);
    let mut tables: Vec<TableBinding> = Vec::new();
    let mut add = |t: Option<TableBinding>| {
        if let Some(t) = t
            && !tables.iter().any(|x| x.name == t.name)
        {
            tables.push(t);
        }
    };
    let (kind, fields) = match stmt {
        ast::Statement::Query(q) => {
            let (plan, fields, read) = select::bind_query(&mut binder, q, resolve)?;
            for t in read {
                add(Some(t));
            }
            (PlanKind::Select(Box::new(plan)), Some(fields))
        }
        ast::Statement::Insert(ins) => {
            let (plan, table, fields, source) = dml::bind_insert(&mut binder, ins, resolve)?;
            add(Some(table));
            for t in source {
                add(Some(t));
            }
            (PlanKind::Insert(plan), fields)
        }
        ast::Statement::Update(upd) => {
            let (plan, table, fields) = dml::bind_update(&mut binder, upd, resolve)?;
            add(Some(table));
            (PlanKind::Update(plan), fields)
        }
        ast::Statement::Delete(del) => {
            let (plan, table, fields) = dml::bind_delete(&mut binder, del, resolve)?;
            add(Some(table));
            (PlanKind::Delete(plan), fields)
        }
        _ => return Err(PgError::internal("statement has no plan")),
    };
    for t in std::mem::take(&mut binder.sub_tables) {
        add(Some(t));
    }
    let param_types = binder.client_param_types();
    let mut slot_types = binder.params.clone();
    for t in slot_types.iter_mut().take(client_params) {
        if *t == DataType::Unknown {
            *t = DataType::Text;
        }
    }
    Ok(Plan {
        kind,
        tables,
        slot_types,
        param_types,
        fields,
        subplans: std::mem::take(&mut binder.subplans),
    })
}

/// Result columns for RETURNING / SELECT lists.
pub(crate) fn field(name: String, ty: DataType, source: Option<(u32, i16)>) -> FieldInfo {
    let (table_oid, column_id) = source.unwrap_or((0, 0));
    FieldInfo {
        name,
        table_oid,
        column_id,
        data_type: if ty == DataType::Unknown {
            DataType::Text
        } else {
            ty
        },
    }
}
