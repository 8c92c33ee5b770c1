//! Binding SELECT: one table (or none, or a system view, or
//! `pg_create_physical_replication_slot(...)` as a function in FROM) or tables and views
//! joined (`[INNER|LEFT|RIGHT|FULL] JOIN ... ON/USING`, `CROSS JOIN`, commas), WHERE, the select
//! list (`*`, `t.*`, expressions with aliases), aggregates with GROUP BY / HAVING, DISTINCT,
//! ORDER BY (output names, positions, or expressions), LIMIT/OFFSET, FOR UPDATE.
//!
//! Aggregation: expressions are first bound against the input row, collecting aggregate
//! calls as `Expr::Agg(i)`; then every expression evaluated after grouping is rewritten over
//! the aggregate row `[groups..., aggregates...]`: a subtree equal to a GROUP BY expression
//! becomes that group's column, an aggregate its column, and a column reference left over is
//! PostgreSQL's 42803 "must appear in the GROUP BY clause".

use base::error::sqlstate;
use base::{DataType, PgError, Value};
use sqlparser::ast;

use super::bind_expr::{AggMode, Binder, How, Scope, column_name, ident_name, name_parts};
use super::{
    AggPlan, JoinItem, JoinKind, JoinPlan, JoinRel, Relation, Resolver, SelectPlan, SetOp,
    SetOpPlan, SortKey, Source, SubKind, TableBinding, View, access, field, relation_name,
    resolve_table,
};
use crate::api::FieldInfo;
use crate::expr::Expr;
use crate::views;

fn unsupported(what: &str) -> PgError {
    PgError::feature_not_supported(what)
}

/// A select-list entry after binding.
struct Item {
    expr: Expr,
    ty: DataType,
    name: String,
    source: Option<(u32, i16)>,
}

/// Binds a query. Returns the plan, its result columns, and the tables it reads.
pub fn bind_query(
    b: &mut Binder,
    q: &ast::Query,
    resolve: Resolver<'_>,
) -> Result<(SelectPlan, Vec<FieldInfo>, Vec<TableBinding>), PgError> {
    if let Some(with) = &q.with {
        if with.recursive {
            return Err(unsupported("WITH RECURSIVE"));
        }
        // Each WITH query becomes a subquery in FROM wherever it is named; it sees only
        // the ones before it.
        let depth = b.ctes.len();
        for cte in &with.cte_tables {
            let name = ident_name(&cte.alias.name);
            if b.ctes[depth..].iter().any(|(n, _, _)| *n == name) {
                b.ctes.truncate(depth);
                return Err(PgError::new(
                    sqlstate::DUPLICATE_ALIAS,
                    format!("WITH query name \"{name}\" specified more than once"),
                ));
            }
            let cols = cte
                .alias
                .columns
                .iter()
                .map(|c| ident_name(&c.name))
                .collect();
            b.ctes.push((name, cols, cte.query.clone()));
        }
        let mut inner = q.clone();
        inner.with = None;
        let r = bind_query(b, &inner, resolve);
        b.ctes.truncate(depth);
        return r;
    }
    if q.fetch.is_some() {
        return Err(unsupported("FETCH FIRST"));
    }
    let select = match q.body.as_ref() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::Query(inner) => {
            if q.order_by.is_none() && q.limit_clause.is_none() && q.locks.is_empty() {
                return bind_query(b, inner, resolve);
            }
            return Err(unsupported("parenthesized queries with ORDER BY or LIMIT"));
        }
        ast::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => return bind_set_operation(b, q, op, set_quantifier, left, right, resolve),
        ast::SetExpr::Values(_) => return Err(unsupported("VALUES lists as queries")),
        _ => return Err(unsupported("this kind of query")),
    };
    if select.into.is_some() {
        return Err(unsupported("SELECT INTO"));
    }
    if !select.named_window.is_empty() || select.qualify.is_some() {
        return Err(unsupported("window functions"));
    }
    // FROM.
    let (source_kind, scope, tables) = bind_from(b, &select.from, resolve)?;
    let table = match (&source_kind, tables.first()) {
        (SourceKind::Table, Some(t)) => Some(t.clone()),
        _ => None,
    };

    // WHERE.
    b.agg_mode = AggMode::Forbidden("WHERE");
    let filter = match &select.selection {
        Some(w) => Some(b.condition(w, &scope, "WHERE")?),
        None => None,
    };

    // Select list (aggregates allowed).
    b.agg_mode = AggMode::Allowed;
    let mut items: Vec<Item> = Vec::new();
    for it in &select.projection {
        match it {
            ast::SelectItem::Wildcard(_) => {
                if scope.cols.is_empty() {
                    return Err(PgError::syntax(
                        "SELECT * with no tables specified is not valid",
                    ));
                }
                // A USING column's right-hand copy is reachable only through its qualifier
                // and not part of `*` (PostgreSQL shows the merged column once).
                for (i, c) in scope
                    .cols
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.qualified_only)
                {
                    items.push(Item {
                        expr: Expr::Column(i),
                        ty: c.ty,
                        name: c.name.clone(),
                        source: Some((c.table_oid, c.attnum)),
                    });
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let q = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        n.0.last()
                            .map(|p| match p {
                                ast::ObjectNamePart::Identifier(id) => ident_name(id),
                                other => other.to_string(),
                            })
                            .unwrap_or_default()
                    }
                    ast::SelectItemQualifiedWildcardKind::Expr(_) => {
                        return Err(unsupported("expression.*"));
                    }
                };
                let mut any = false;
                for (i, c) in scope.cols.iter().enumerate() {
                    if c.qualifier.as_deref() == Some(q.as_str()) {
                        any = true;
                        items.push(Item {
                            expr: Expr::Column(i),
                            ty: c.ty,
                            name: c.name.clone(),
                            source: Some((c.table_oid, c.attnum)),
                        });
                    }
                }
                if !any {
                    return Err(PgError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{q}\""),
                    ));
                }
            }
            ast::SelectItem::UnnamedExpr(e) => items.push(bind_item(b, e, None, &scope)?),
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                items.push(bind_item(b, expr, Some(ident_name(alias)), &scope)?)
            }
            ast::SelectItem::ExprWithAliases { .. } => {
                return Err(unsupported("multiple column aliases"));
            }
        }
    }

    // GROUP BY.
    let group_exprs: Vec<&ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(unsupported("GROUP BY modifiers"));
            }
            exprs.iter().collect()
        }
        ast::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    let mut groups: Vec<Expr> = Vec::with_capacity(group_exprs.len());
    for g in &group_exprs {
        let e = match output_reference(g, &items, &scope)? {
            Some(i) => {
                let mut found_agg = false;
                items[i]
                    .expr
                    .walk(&mut |x| found_agg |= matches!(x, Expr::Agg(_)));
                if found_agg {
                    return Err(PgError::new(
                        sqlstate::GROUPING_ERROR,
                        "aggregate functions are not allowed in GROUP BY",
                    ));
                }
                items[i].expr.clone()
            }
            None => {
                b.agg_mode = AggMode::Forbidden("GROUP BY");
                let e = b.expr(g, &scope)?.0;
                b.agg_mode = AggMode::Allowed;
                e
            }
        };
        groups.push(e);
    }

    // HAVING.
    let having = match &select.having {
        Some(h) => Some(b.condition(h, &scope, "HAVING")?),
        None => None,
    };

    // ORDER BY.
    let mut order = Vec::new();
    if let Some(ob) = &q.order_by {
        let exprs = match &ob.kind {
            ast::OrderByKind::Expressions(e) => e,
            ast::OrderByKind::All(_) => return Err(unsupported("ORDER BY ALL")),
        };
        for o in exprs {
            if o.with_fill.is_some() {
                return Err(unsupported("WITH FILL"));
            }
            let expr = match output_reference(&o.expr, &items, &scope)? {
                Some(i) => items[i].expr.clone(),
                None => {
                    let bound = b.expr(&o.expr, &scope)?;
                    if bound.1 == DataType::Unknown {
                        b.coerce(bound, DataType::Text, How::Implicit)?
                    } else {
                        bound.0
                    }
                }
            };
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            // PostgreSQL: NULLs sort as larger than everything (last ascending, first
            // descending) unless NULLS FIRST/LAST says otherwise.
            let nulls_first = o.options.nulls_first.unwrap_or(desc);
            order.push(SortKey {
                expr,
                desc,
                nulls_first,
            });
        }
    }

    let aggregating = !b.aggs.is_empty() || !groups.is_empty() || having.is_some();
    let mut agg = None;
    if aggregating {
        let aggs = std::mem::take(&mut b.aggs);
        let ngroups = groups.len();
        let rewrite = |e: Expr| regroup(e, &groups, ngroups, &scope);
        for it in &mut items {
            it.expr = rewrite(std::mem::replace(&mut it.expr, Expr::Const(Value::Null)))?;
        }
        for k in &mut order {
            k.expr = rewrite(std::mem::replace(&mut k.expr, Expr::Const(Value::Null)))?;
        }
        let having = match having {
            Some(h) => Some(rewrite(h)?),
            None => None,
        };
        agg = Some(AggPlan {
            groups,
            aggs,
            having,
        });
    }

    // DISTINCT.
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(unsupported("DISTINCT ON")),
    };
    if distinct {
        for k in &order {
            if !items.iter().any(|it| it.expr == k.expr) {
                return Err(PgError::new(
                    sqlstate::INVALID_COLUMN_REFERENCE,
                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                ));
            }
        }
    }

    // LIMIT / OFFSET.
    b.agg_mode = AggMode::Forbidden("LIMIT");
    let (limit, offset) = bind_limit(b, q.limit_clause.as_ref())?;

    // FOR UPDATE.
    let mut for_update = false;
    for lock in &q.locks {
        if lock.nonblock.is_some() {
            return Err(unsupported("NOWAIT / SKIP LOCKED"));
        }
        if lock.of.is_some() {
            return Err(unsupported("FOR UPDATE OF"));
        }
        for_update = true;
    }
    if for_update {
        if matches!(source_kind, SourceKind::Join(_)) {
            return Err(unsupported("FOR UPDATE with JOIN"));
        }
        if agg.is_some() {
            return Err(unsupported("FOR UPDATE with aggregate functions"));
        }
        if distinct {
            return Err(unsupported("FOR UPDATE with DISTINCT"));
        }
    }

    let source = match source_kind {
        SourceKind::None => Source::None,
        SourceKind::View(v) => Source::View(v),
        SourceKind::CreateSlot(args) => Source::CreateSlot(args),
        SourceKind::Join(j) => Source::Join(Box::new(j)),
        SourceKind::Table => {
            let access = match &table {
                Some(t) => access::choose(&t.def, filter.as_ref()),
                None => access::Access::Scan,
            };
            Source::Table(access)
        }
    };
    let fields = items
        .iter()
        .map(|it| field(it.name.clone(), it.ty, it.source))
        .collect();
    let plan = SelectPlan {
        source,
        filter,
        agg,
        projection: items.into_iter().map(|it| it.expr).collect(),
        order,
        distinct,
        limit,
        offset,
        for_update: for_update && table.is_some(),
        table: table.as_ref().map(|t| t.name.clone()),
    };
    Ok((plan, fields, tables))
}

/// `left UNION/INTERSECT/EXCEPT [ALL] right` with the query's ORDER BY / LIMIT / OFFSET over
/// the combined rows.
#[allow(clippy::too_many_arguments)]
fn bind_set_operation(
    b: &mut Binder,
    q: &ast::Query,
    op: &ast::SetOperator,
    quantifier: &ast::SetQuantifier,
    left: &ast::SetExpr,
    right: &ast::SetExpr,
    resolve: Resolver<'_>,
) -> Result<(SelectPlan, Vec<FieldInfo>, Vec<TableBinding>), PgError> {
    let (op, name) = match op {
        ast::SetOperator::Union => (SetOp::Union, "UNION"),
        ast::SetOperator::Intersect => (SetOp::Intersect, "INTERSECT"),
        ast::SetOperator::Except => (SetOp::Except, "EXCEPT"),
        other => return Err(unsupported(&other.to_string().to_uppercase())),
    };
    let all = match quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
        other => return Err(unsupported(&format!("{name} {other}"))),
    };
    if !q.locks.is_empty() {
        return Err(PgError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("FOR UPDATE is not allowed with {name}"),
        ));
    }
    let side = |e: &ast::SetExpr| ast::Query {
        with: None,
        body: Box::new(e.clone()),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    };
    let (mut lp, lf, mut tables) = bind_query(b, &side(left), resolve)?;
    let (mut rp, rf, rt) = bind_query(b, &side(right), resolve)?;
    for t in rt {
        if !tables.iter().any(|x| x.name == t.name) {
            tables.push(t);
        }
    }
    if lf.len() != rf.len() {
        return Err(PgError::syntax(format!(
            "each {name} query must have the same number of columns"
        )));
    }
    // Each column takes the type both sides resolve to, as PostgreSQL's
    // select_common_type does; the sides' projections convert to it.
    let mut fields = Vec::with_capacity(lf.len());
    let mut scope = Scope::empty();
    for (i, (l, r)) in lf.iter().zip(&rf).enumerate() {
        let t = super::coerce::common_type(&[l.data_type, r.data_type], name)?;
        for (plan, f) in [(&mut lp, l), (&mut rp, r)] {
            if f.data_type != t {
                let e = std::mem::replace(&mut plan.projection[i], Expr::Const(Value::Null));
                plan.projection[i] = b.coerce((e, f.data_type), t, How::Implicit)?;
            }
        }
        fields.push(field(l.name.clone(), t, None));
        scope.cols.push(super::bind_expr::ScopeCol {
            name: l.name.clone(),
            qualifier: None,
            ty: t,
            table_oid: 0,
            attnum: 0,
            qualified_only: false,
        });
    }
    // ORDER BY: result column names or positions only, as PostgreSQL requires here.
    let mut order = Vec::new();
    if let Some(ob) = &q.order_by {
        let ast::OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            let col = match &o.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let ast::Value::Number(n, _) = &v.value else {
                        return Err(PgError::internal("number literal"));
                    };
                    let pos: usize = n
                        .parse()
                        .map_err(|_| PgError::syntax("non-integer constant in ORDER BY"))?;
                    if pos == 0 || pos > fields.len() {
                        return Err(PgError::new(
                            sqlstate::INVALID_COLUMN_REFERENCE,
                            format!("ORDER BY position {pos} is not in select list"),
                        ));
                    }
                    pos - 1
                }
                ast::Expr::Identifier(id) => scope.resolve(None, &ident_name(id))?,
                _ => {
                    return Err(PgError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "invalid UNION/INTERSECT/EXCEPT ORDER BY clause",
                    )
                    .with_detail("Only result column names can be used, not expressions or functions.")
                    .with_hint(format!(
                        "Add the expression/function to every SELECT, or move the {name} into a FROM clause."
                    )));
                }
            };
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            order.push(SortKey {
                expr: Expr::Column(col),
                desc,
                nulls_first: o.options.nulls_first.unwrap_or(desc),
            });
        }
    }
    b.agg_mode = AggMode::Forbidden("LIMIT");
    let (limit, offset) = bind_limit(b, q.limit_clause.as_ref())?;
    let n = fields.len();
    let plan = SelectPlan {
        source: Source::SetOp(Box::new(SetOpPlan {
            op,
            all,
            left: lp,
            right: rp,
        })),
        filter: None,
        agg: None,
        projection: (0..n).map(Expr::Column).collect(),
        order,
        distinct: false,
        limit,
        offset,
        for_update: false,
        table: None,
    };
    Ok((plan, fields, tables))
}

enum SourceKind {
    None,
    Table,
    View(View),
    CreateSlot(Vec<Expr>),
    Join(JoinPlan),
}

/// Binds FROM: nothing, one item, or several items joined (commas are cross joins).
fn bind_from(
    b: &mut Binder,
    from: &[ast::TableWithJoins],
    resolve: Resolver<'_>,
) -> Result<(SourceKind, Scope, Vec<TableBinding>), PgError> {
    let derived = |f: &ast::TableFactor| {
        matches!(f, ast::TableFactor::Derived { .. }) || cte_ref(b, f).is_some()
    };
    match from {
        [] => return Ok((SourceKind::None, Scope::empty(), Vec::new())),
        // A lone subquery in FROM runs as a one-item join (its rows are materialised).
        [twj] if twj.joins.is_empty() && !derived(&twj.relation) => {
            let (kind, scope, table) = bind_single(b, &twj.relation, resolve)?;
            return Ok((kind, scope, table.into_iter().collect()));
        }
        _ => {}
    }
    let mut scope = Scope::empty();
    let mut tables: Vec<TableBinding> = Vec::new();
    let mut items: Vec<JoinItem> = Vec::new();
    for twj in from {
        join_item(
            b,
            &twj.relation,
            JoinKind::Inner,
            None,
            resolve,
            &mut scope,
            &mut tables,
            &mut items,
        )?;
        for j in &twj.joins {
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(ast::JoinConstraint::None) => (JoinKind::Inner, None),
                other => {
                    let text = other_join_name(other);
                    return Err(unsupported(&text));
                }
            };
            join_item(
                b,
                &j.relation,
                kind,
                constraint,
                resolve,
                &mut scope,
                &mut tables,
                &mut items,
            )?;
        }
    }
    Ok((SourceKind::Join(JoinPlan { items }), scope, tables))
}

fn other_join_name(op: &ast::JoinOperator) -> String {
    use ast::JoinOperator as J;
    match op {
        J::Semi(_) | J::LeftSemi(_) | J::RightSemi(_) => "SEMI JOIN".into(),
        J::Anti(_) | J::LeftAnti(_) | J::RightAnti(_) => "ANTI JOIN".into(),
        J::CrossApply | J::OuterApply => "APPLY".into(),
        J::AsOf { .. } => "ASOF JOIN".into(),
        _ => "this kind of JOIN".into(),
    }
}

/// One FROM item of a join: its columns join the scope, its condition is bound over the
/// items so far, and equal-column pairs become hash keys.
#[allow(clippy::too_many_arguments)]
fn join_item(
    b: &mut Binder,
    factor: &ast::TableFactor,
    kind: JoinKind,
    constraint: Option<&ast::JoinConstraint>,
    resolve: Resolver<'_>,
    scope: &mut Scope,
    tables: &mut Vec<TableBinding>,
    items: &mut Vec<JoinItem>,
) -> Result<(), PgError> {
    if let Some(i) = cte_ref(b, factor) {
        let ast::TableFactor::Table { alias, .. } = factor else {
            return Err(PgError::internal("WITH reference that is not a name"));
        };
        let (name, cols, query) = b.ctes[i].clone();
        let q = alias.as_ref().map_or(name, |a| ident_name(&a.name));
        // Bound as a subquery that sees only the WITH queries before it.
        let later = b.ctes.split_off(i);
        let r = b.subquery(&query, SubKind::Rows, &Scope::empty());
        b.ctes.extend(later);
        let (sub, _) = r?;
        let mut fields = std::mem::take(&mut b.sub_fields);
        if cols.len() > fields.len() {
            return Err(PgError::new(
                sqlstate::INVALID_COLUMN_REFERENCE,
                format!(
                    "WITH query \"{q}\" has {} columns available but {} columns specified",
                    fields.len(),
                    cols.len()
                ),
            ));
        }
        for (f, c) in fields.iter_mut().zip(cols) {
            f.name = c;
        }
        return derived_item(b, sub, fields, q, kind, constraint, scope, items);
    }
    if let ast::TableFactor::Derived {
        lateral,
        subquery,
        alias,
        ..
    } = factor
    {
        if *lateral {
            return Err(unsupported("LATERAL"));
        }
        let Some(alias) = alias else {
            return Err(PgError::syntax("subquery in FROM must have an alias")
                .with_hint("For example, FROM (SELECT ...) [AS] foo."));
        };
        if !alias.columns.is_empty() {
            return Err(unsupported("column aliases in FROM"));
        }
        let q = ident_name(&alias.name);
        // The subquery sees no columns of the FROM items beside it (no LATERAL).
        let (i, _) = b.subquery(subquery, SubKind::Rows, &Scope::empty())?;
        let fields = std::mem::take(&mut b.sub_fields);
        return derived_item(b, i, fields, q, kind, constraint, scope, items);
    }
    let ast::TableFactor::Table {
        name, alias, args, ..
    } = factor
    else {
        return Err(unsupported("this kind of FROM item"));
    };
    if args.is_some() {
        return Err(unsupported("functions in FROM with JOIN"));
    }
    if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
        return Err(unsupported("column aliases in FROM"));
    }
    let alias = alias.as_ref().map(|a| ident_name(&a.name));
    let (rel, qualifier, cols) = match relation_name(name)? {
        Relation::View(v) => {
            let q = alias.unwrap_or_else(|| views::name(v).to_owned());
            (JoinRel::View(v), q.clone(), views::scope(v, &q).cols)
        }
        Relation::Table(t) => {
            let table = resolve_table(resolve, &t)?;
            let q = alias.unwrap_or_else(|| t.clone());
            let cols = Scope::for_table(&table.def, &q).cols;
            if !tables.iter().any(|x| x.name == t) {
                tables.push(TableBinding {
                    name: t.clone(),
                    def: table.def.clone(),
                });
            }
            (JoinRel::Table(t), q, cols)
        }
    };
    add_item(b, rel, &qualifier, cols, kind, constraint, scope, items)
}

/// A subquery's rows (`Plan::subplans[sub]`, columns `fields`) joined as FROM item `q`.
#[allow(clippy::too_many_arguments)]
fn derived_item(
    b: &mut Binder,
    sub: usize,
    fields: Vec<FieldInfo>,
    q: String,
    kind: JoinKind,
    constraint: Option<&ast::JoinConstraint>,
    scope: &mut Scope,
    items: &mut Vec<JoinItem>,
) -> Result<(), PgError> {
    let cols = fields
        .iter()
        .enumerate()
        .map(|(k, f)| super::bind_expr::ScopeCol {
            name: f.name.clone(),
            qualifier: Some(q.clone()),
            ty: f.data_type,
            table_oid: 0,
            attnum: i16::try_from(k + 1).unwrap_or(0),
            qualified_only: false,
        })
        .collect();
    add_item(
        b,
        JoinRel::Derived(sub),
        &q,
        cols,
        kind,
        constraint,
        scope,
        items,
    )
}

/// Adds FROM item `rel` (columns `cols`, qualified `q`) to the scope and the join, binding its
/// condition over everything so far.
#[allow(clippy::too_many_arguments)]
fn add_item(
    b: &mut Binder,
    rel: JoinRel,
    q: &str,
    cols: Vec<super::bind_expr::ScopeCol>,
    kind: JoinKind,
    constraint: Option<&ast::JoinConstraint>,
    scope: &mut Scope,
    items: &mut Vec<JoinItem>,
) -> Result<(), PgError> {
    if scope.cols.iter().any(|c| c.qualifier.as_deref() == Some(q)) {
        return Err(PgError::new(
            sqlstate::DUPLICATE_ALIAS,
            format!("table name \"{q}\" specified more than once"),
        ));
    }
    let left_width = scope.cols.len();
    let width = cols.len();
    scope.cols.extend(cols);
    let on = join_condition(b, kind, constraint, scope, left_width)?;
    let mut hash_keys = Vec::new();
    if let Some(e) = &on {
        equal_columns(e, left_width, scope, &mut hash_keys);
    }
    items.push(JoinItem {
        rel,
        width,
        kind: if items.is_empty() {
            JoinKind::Inner
        } else {
            kind
        },
        on,
        hash_keys,
    });
    Ok(())
}

/// The WITH query a FROM item names, if it is an unqualified name of one in scope.
fn cte_ref(b: &Binder, f: &ast::TableFactor) -> Option<usize> {
    let ast::TableFactor::Table {
        name, args: None, ..
    } = f
    else {
        return None;
    };
    let [part] = name.0.as_slice() else {
        return None;
    };
    let ast::ObjectNamePart::Identifier(id) = part else {
        return None;
    };
    let n = ident_name(id);
    b.ctes.iter().rposition(|(c, _, _)| *c == n)
}

/// Binds a join's ON / USING / NATURAL over the scope that already holds the new item's
/// columns (after `left_width` ones); USING marks the right-hand copies qualified-only.
fn join_condition(
    b: &mut Binder,
    kind: JoinKind,
    constraint: Option<&ast::JoinConstraint>,
    scope: &mut Scope,
    left_width: usize,
) -> Result<Option<Expr>, PgError> {
    Ok(match constraint {
        None | Some(ast::JoinConstraint::None) => None,
        Some(ast::JoinConstraint::On(e)) => {
            b.agg_mode = AggMode::Forbidden("JOIN conditions");
            Some(b.condition(e, scope, "JOIN/ON")?)
        }
        Some(c @ (ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural)) => {
            if matches!(kind, JoinKind::Right | JoinKind::Full) {
                return Err(unsupported("RIGHT/FULL JOIN with USING or NATURAL"));
            }
            let names: Vec<String> = match c {
                ast::JoinConstraint::Using(names) => names
                    .iter()
                    .map(|n| {
                        n.0.last()
                            .map(|p| match p {
                                ast::ObjectNamePart::Identifier(id) => ident_name(id),
                                other => other.to_string(),
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
                // NATURAL: USING every column name both sides have (none: a cross join).
                _ => scope.cols[left_width..]
                    .iter()
                    .filter(|r| {
                        scope.cols[..left_width]
                            .iter()
                            .any(|l| !l.qualified_only && l.name == r.name)
                    })
                    .map(|r| r.name.clone())
                    .collect(),
            };
            let mut cond: Option<Expr> = None;
            for col in names {
                let missing = |side: &str| {
                    PgError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!(
                            "column \"{col}\" specified in USING clause does not exist in {side} table"
                        ),
                    )
                };
                let left = Scope {
                    cols: scope.cols[..left_width].to_vec(),
                };
                let li = left.resolve(None, &col).map_err(|e| {
                    if e.code == sqlstate::AMBIGUOUS_COLUMN {
                        e
                    } else {
                        missing("left")
                    }
                })?;
                let ri = scope.cols[left_width..]
                    .iter()
                    .position(|c| c.name == col)
                    .ok_or_else(|| missing("right"))?
                    + left_width;
                let eq = ast::Expr::BinaryOp {
                    left: Box::new(qualified(&scope.cols[li])),
                    op: ast::BinaryOperator::Eq,
                    right: Box::new(qualified(&scope.cols[ri])),
                };
                b.agg_mode = AggMode::Forbidden("JOIN conditions");
                let c = b.condition(&eq, scope, "JOIN/USING")?;
                cond = Some(match cond {
                    None => c,
                    Some(prev) => Expr::And(prev.boxed(), c.boxed()),
                });
                // The merged column is the left one: the right copy answers only to its
                // qualifier and is not part of `*`.
                scope.cols[ri].qualified_only = true;
            }
            cond
        }
        Some(ast::JoinConstraint::UsingAlias(..)) => return Err(unsupported("USING ... AS")),
    })
}

/// `qualifier.name` as an expression, quoted so it resolves exactly.
fn qualified(c: &super::bind_expr::ScopeCol) -> ast::Expr {
    ast::Expr::CompoundIdentifier(vec![
        ast::Ident::with_quote('"', c.qualifier.clone().unwrap_or_default()),
        ast::Ident::with_quote('"', c.name.clone()),
    ])
}

/// Collects `left_col = right_col` conjuncts of a join condition whose columns have the same
/// type (so equal values are equal keys): (position in the left row, position in the item).
fn equal_columns(e: &Expr, left_width: usize, scope: &Scope, out: &mut Vec<(usize, usize)>) {
    match e {
        Expr::And(a, c) => {
            equal_columns(a, left_width, scope, out);
            equal_columns(c, left_width, scope, out);
        }
        Expr::Cmp(crate::expr::CmpOp::Eq, a, c) => {
            if let (Expr::Column(x), Expr::Column(y)) = (a.as_ref(), c.as_ref()) {
                let (l, r) = if x < y { (*x, *y) } else { (*y, *x) };
                let same_type = scope.cols.get(l).map(|c| c.ty) == scope.cols.get(r).map(|c| c.ty);
                if l < left_width && r >= left_width && same_type {
                    out.push((l, r - left_width));
                }
            }
        }
        _ => {}
    }
}

/// One FROM item without joins.
fn bind_single(
    b: &mut Binder,
    relation: &ast::TableFactor,
    resolve: Resolver<'_>,
) -> Result<(SourceKind, Scope, Option<TableBinding>), PgError> {
    Ok(match relation {
        ast::TableFactor::Table {
            name, alias, args, ..
        } => {
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(unsupported("column aliases in FROM"));
            }
            let alias = alias.as_ref().map(|a| ident_name(&a.name));
            if let Some(fargs) = args {
                let (kind, scope) = bind_from_function(b, name, &fargs.args, alias)?;
                (kind, scope, None)
            } else {
                match relation_name(name)? {
                    Relation::View(v) => {
                        let q = alias.unwrap_or_else(|| views::name(v).to_owned());
                        (SourceKind::View(v), views::scope(v, &q), None)
                    }
                    Relation::Table(t) => {
                        let table = resolve_table(resolve, &t)?;
                        let q = alias.unwrap_or_else(|| t.clone());
                        let scope = Scope::for_table(&table.def, &q);
                        (
                            SourceKind::Table,
                            scope,
                            Some(TableBinding {
                                name: t,
                                def: table.def.clone(),
                            }),
                        )
                    }
                }
            }
        }
        ast::TableFactor::Derived { .. } => return Err(unsupported("subqueries in FROM")),
        _ => return Err(unsupported("this kind of FROM item")),
    })
}

/// A function in FROM. Only `pg_create_physical_replication_slot` is one: PostgreSQL
/// returns its record as a row (slot_name, lsn), and `SELECT * FROM` it is how tools call
/// it. Other functions in FROM (set-returning ones) are not supported.
fn bind_from_function(
    b: &mut Binder,
    name: &ast::ObjectName,
    args: &[ast::FunctionArg],
    alias: Option<String>,
) -> Result<(SourceKind, Scope), PgError> {
    let parts = name_parts(name);
    let fname = match parts.as_slice() {
        [n] => n.as_str(),
        [s, n] if s == "pg_catalog" => n.as_str(),
        _ => return Err(unsupported("table functions")),
    };
    if fname != "pg_create_physical_replication_slot" {
        return Err(unsupported("table functions"));
    }
    let params = crate::expr::func::defaults(fname)
        .ok_or_else(|| PgError::internal("pg_create_physical_replication_slot has defaults"))?;
    let refs: Vec<&ast::FunctionArg> = args.iter().collect();
    let (call, _) = b.call_with_defaults(fname, &refs, params, &Scope::empty())?;
    let Expr::Func(_, call_args) = call else {
        return Err(PgError::internal("a function call bound to something else"));
    };
    let q = alias.unwrap_or_else(|| fname.to_owned());
    Ok((
        SourceKind::CreateSlot(call_args),
        views::columns_scope(views::CREATE_SLOT_COLUMNS, &q),
    ))
}

fn bind_item(
    b: &mut Binder,
    e: &ast::Expr,
    alias: Option<String>,
    scope: &Scope,
) -> Result<Item, PgError> {
    let (expr, ty) = b.expr(e, scope)?;
    let source = match &expr {
        Expr::Column(i) => scope.cols.get(*i).map(|c| (c.table_oid, c.attnum)),
        _ => None,
    };
    Ok(Item {
        expr,
        ty,
        name: alias.unwrap_or_else(|| column_name(e)),
        source,
    })
}

/// An ORDER BY / GROUP BY item that names an output column: a position (`ORDER BY 2`) or an
/// output name that is not also an input column (PostgreSQL's rule for GROUP BY; for
/// ORDER BY output names win, which coincides for the cases that matter).
fn output_reference(
    e: &ast::Expr,
    items: &[Item],
    scope: &Scope,
) -> Result<Option<usize>, PgError> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => {
                let pos: usize = n
                    .parse()
                    .map_err(|_| PgError::syntax("non-integer constant in ORDER BY"))?;
                if pos == 0 || pos > items.len() {
                    return Err(PgError::new(
                        sqlstate::INVALID_COLUMN_REFERENCE,
                        format!("ORDER BY position {pos} is not in select list"),
                    ));
                }
                Ok(Some(pos - 1))
            }
            _ => Ok(None),
        },
        ast::Expr::Identifier(id) => {
            let name = ident_name(id);
            let matches: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, it)| it.name == name)
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [i] => Ok(Some(*i)),
                [] => Ok(None),
                _ => {
                    // Several outputs share the name: fine if it is an input column.
                    if scope.resolve(None, &name).is_ok() {
                        Ok(None)
                    } else {
                        Err(PgError::new(
                            sqlstate::AMBIGUOUS_COLUMN,
                            format!("ORDER BY \"{name}\" is ambiguous"),
                        ))
                    }
                }
            }
        }
        _ => Ok(None),
    }
}

/// LIMIT and OFFSET.
fn bind_limit(
    b: &mut Binder,
    clause: Option<&ast::LimitClause>,
) -> Result<(Option<Expr>, Option<Expr>), PgError> {
    match clause {
        None => Ok((None, None)),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY"));
            }
            let l = match limit {
                Some(e) => Some(bind_count(b, e, "LIMIT")?),
                None => None,
            };
            let o = match offset {
                Some(o) => Some(bind_count(b, &o.value, "OFFSET")?),
                None => None,
            };
            Ok((l, o))
        }
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            Err(PgError::syntax("LIMIT #,# syntax is not supported"))
        }
    }
}

fn bind_count(b: &mut Binder, e: &ast::Expr, what: &str) -> Result<Expr, PgError> {
    // LIMIT ALL arrives as no limit; LIMIT NULL evaluates to NULL (no limit) at run time.
    let bound = b.expr(e, &Scope::empty())?;
    if !(bound.1.is_numeric_family() || bound.1 == DataType::Unknown) {
        return Err(PgError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "argument of {what} must be type bigint, not type {}",
                bound.1.sql_name()
            ),
        ));
    }
    b.coerce(bound, DataType::Int8, How::Assignment { column: what })
}

/// Rewrites an expression bound over the input row to one over the aggregate row, top-down
/// so that a whole subtree equal to a GROUP BY expression is matched before its parts.
#[recursive::recursive]
fn regroup(e: Expr, groups: &[Expr], ngroups: usize, scope: &Scope) -> Result<Expr, PgError> {
    if let Some(i) = groups.iter().position(|g| *g == e) {
        return Ok(Expr::Column(i));
    }
    match e {
        Expr::Agg(i) => Ok(Expr::Column(ngroups + i)),
        // Its outer references index the input row, which no longer exists after grouping.
        Expr::Correlated { .. } => Err(unsupported(
            "correlated subqueries in the select list, HAVING or ORDER BY of a grouped query",
        )),
        Expr::Column(c) => {
            let name = scope
                .cols
                .get(c)
                .map(|col| match &col.qualifier {
                    Some(q) => format!("{q}.{}", col.name),
                    None => col.name.clone(),
                })
                .unwrap_or_default();
            Err(PgError::new(
                sqlstate::GROUPING_ERROR,
                format!(
                    "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
                ),
            ))
        }
        other => other.map_children(&mut |child| regroup(child, groups, ngroups, scope)),
    }
}
