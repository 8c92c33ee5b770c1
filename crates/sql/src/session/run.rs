//! Running SQL statements: planned DML/queries and DDL, with plan caching.
//!
//! Plan reuse: a template's plan is used as long as every table it names opens (through the
//! transaction, which registers the transaction as the table's user) to the very definition
//! the plan was made for (`Arc::ptr_eq` on the `TableDef`); any DDL that changes a table
//! gives it a new definition, so the next execution re-plans. A re-plan that would change a
//! prepared statement's parameter or result types fails with PostgreSQL's 0A000 `cached plan
//! must not change result type`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use base::error::sqlstate;
use base::{PgError, Value};
use parking_lot::Mutex;
use sqlparser::ast;
use storage::Snapshot;

use super::{Session, XactKind};
use crate::api::{ExecOutcome, Prepared, RowSink};
use crate::exec::select::Input;
use crate::exec::{Check, Tables, ddl, dml, select, sequence};
use crate::expr::{Effect, Env, EvalCx, SubExec, SubResult};
use crate::parse::Template;
use crate::plan::{Plan, PlanKind, SubKind, plan_statement};

/// Statements that are bound and planned (as opposed to DDL, executed from the syntax tree).
pub(super) fn has_plan(ast: &ast::Statement) -> bool {
    matches!(
        ast,
        ast::Statement::Query(_)
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_)
    )
}

fn no_parameter(n: usize) -> PgError {
    PgError::new(
        sqlstate::UNDEFINED_PARAMETER,
        format!("there is no parameter ${n}"),
    )
}

impl Session {
    /// A snapshot for binding outside a statement: current watermarks, seeing this session's
    /// own uncommitted DDL.
    fn catalog_snapshot(&self) -> Snapshot {
        let xid = self
            .xact
            .as_ref()
            .and_then(|x| x.txn.as_ref())
            .map_or(0, |t| t.xid());
        Snapshot {
            watermark: self.engine.mgr.watermarks.snapshot(),
            xid,
        }
    }

    fn bind(
        &self,
        template: &Template,
        ast: &ast::Statement,
        opened: &Tables,
    ) -> Result<Plan, PgError> {
        let snapshot = match self.xact.as_ref().and_then(|x| x.txn.as_ref()) {
            Some(t) => *t.snapshot(),
            None => self.catalog_snapshot(),
        };
        let catalog = &self.engine.mgr.catalog;
        let resolve = |name: &str| {
            opened
                .get(name)
                .cloned()
                .or_else(|| catalog.lookup(name, &snapshot))
        };
        plan_statement(
            ast,
            template.slot_types(),
            template.client_params,
            template.declared_mask(),
            &resolve,
        )
    }

    /// The template's plan for Describe (planned now if needed, checked against the catalog).
    pub(super) fn plan_without_txn(
        &mut self,
        template: &Arc<Template>,
        ast: &ast::Statement,
    ) -> Result<Arc<Plan>, PgError> {
        use std::sync::atomic::Ordering;
        let generation = self.engine.mgr.catalog.generation();
        if template.plan_checked_at.load(Ordering::Acquire) == generation
            && let Some(p) = template.plan.lock().clone()
        {
            return Ok(p);
        }
        let snapshot = self.catalog_snapshot();
        if let Some(p) = template.plan.lock().clone() {
            let current = p.tables.iter().all(|b| {
                self.engine
                    .mgr
                    .catalog
                    .lookup(&b.name, &snapshot)
                    .is_some_and(|t| Arc::ptr_eq(&t.def, &b.def))
            });
            if current {
                template
                    .plan_checked_at
                    .store(generation, Ordering::Release);
                return Ok(p);
            }
        }
        let plan = Arc::new(self.bind(template, ast, &Tables::default())?);
        *template.plan.lock() = Some(plan.clone());
        template
            .plan_checked_at
            .store(generation, Ordering::Release);
        Ok(plan)
    }

    pub(super) fn read_only(&self) -> bool {
        self.xact.as_ref().is_some_and(|x| x.read_only) || self.engine.mgr.is_read_only()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_sql(
        &mut self,
        template: &Arc<Template>,
        ast: &ast::Statement,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
        stmt_start: i64,
        deadline: Option<Instant>,
    ) -> Result<ExecOutcome, PgError> {
        if has_plan(ast) {
            return self
                .run_plan(template, ast, stmt, params, sink, stmt_start, deadline)
                .await;
        }
        let tag = match ast {
            ast::Statement::CreateTable(_) => "CREATE TABLE",
            ast::Statement::Drop {
                object_type: ast::ObjectType::Table,
                ..
            } => "DROP TABLE",
            ast::Statement::CreateSequence { .. } => "CREATE SEQUENCE",
            ast::Statement::Drop {
                object_type: ast::ObjectType::Sequence,
                ..
            } => "DROP SEQUENCE",
            ast::Statement::Truncate(_) => "TRUNCATE TABLE",
            ast::Statement::AlterTable(_) => "ALTER TABLE",
            ast::Statement::CreateIndex(_) => "CREATE INDEX",
            ast::Statement::Drop { object_type, .. } => {
                return Err(PgError::feature_not_supported(format!(
                    "DROP {}",
                    object_type.to_string().to_uppercase()
                )));
            }
            other => {
                return Err(PgError::feature_not_supported(
                    crate::parse::statement_kind(other),
                ));
            }
        };
        if self.read_only() {
            return Err(PgError::read_only(tag));
        }
        let added = match ast {
            ast::Statement::AlterTable(at) => self.added_columns(at)?,
            _ => Vec::new(),
        };
        let mut notices = Vec::new();
        let txn = self.statement_txn();
        let result = match ast {
            ast::Statement::CreateTable(ct) => ddl::create_table(ct, txn, &mut notices).await,
            ast::Statement::Drop {
                object_type: ast::ObjectType::Sequence,
                names,
                if_exists,
                ..
            } => sequence::drop_sequences(names, *if_exists, txn, &mut notices).await,
            ast::Statement::Drop {
                names, if_exists, ..
            } => ddl::drop_tables(names, *if_exists, txn, &mut notices).await,
            ast::Statement::CreateSequence {
                temporary,
                if_not_exists,
                name,
                sequence_options,
            } => {
                sequence::create_sequence(
                    name,
                    sequence_options,
                    *if_not_exists,
                    *temporary,
                    txn,
                    &mut notices,
                )
                .await
            }
            ast::Statement::Truncate(t) => ddl::truncate(t, txn).await,
            ast::Statement::AlterTable(at) => ddl::alter_table(at, &added, txn, &mut notices).await,
            ast::Statement::CreateIndex(ci) => ddl::create_index(ci, txn, &mut notices).await,
            _ => Ok(()),
        };
        txn.end_statement();
        self.notices.append(&mut notices);
        result?;
        if let Some(x) = self.xact.as_mut() {
            x.queries += 1;
        }
        Ok(ExecOutcome::Command(tag.to_owned()))
    }

    /// Finds a valid plan and opens its tables.
    async fn plan_and_open(
        &mut self,
        template: &Arc<Template>,
        ast: &ast::Statement,
        stmt: &Prepared,
    ) -> Result<(Arc<Plan>, Tables), PgError> {
        // Re-planning is retried once per concurrent DDL the statement runs into; three
        // attempts in a row means DDL keeps racing with us, which is worth an error.
        const PLAN_ATTEMPTS_MAX: usize = 3;
        let mut tables = Tables::default();
        let mut cached = template.plan.lock().clone();
        let mut first_open = true;
        for _ in 0..PLAN_ATTEMPTS_MAX {
            let (plan, fresh) = match cached.take() {
                Some(p) => (p, false),
                None => (Arc::new(self.bind(template, ast, &tables)?), true),
            };
            if !plan.tables.is_empty() {
                let txn = if first_open {
                    first_open = false;
                    self.statement_txn()
                } else {
                    match self.xact.as_mut().and_then(|x| x.txn.as_mut()) {
                        Some(t) => t,
                        None => return Err(PgError::internal("transaction vanished")),
                    }
                };
                for b in &plan.tables {
                    if tables.get(&b.name).is_none()
                        && let Some(t) = txn.open_table(&b.name).await.map_err(PgError::from)?
                    {
                        tables.list.push((b.name.clone(), t));
                    }
                }
                if !tables.matches(&plan.tables) {
                    continue;
                }
            }
            if fresh {
                if !stmt.param_types.is_empty() && stmt.param_types != plan.param_types {
                    return Err(PgError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "cached plan must not change result type",
                    )
                    .with_detail("A table the statement uses changed its column types."));
                }
                if let (Some(old), Some(new)) = (&stmt.fields, &plan.fields)
                    && old
                        .iter()
                        .map(|f| f.data_type)
                        .ne(new.iter().map(|f| f.data_type))
                {
                    return Err(PgError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "cached plan must not change result type",
                    ));
                }
                *template.plan.lock() = Some(plan.clone());
                // Planned inside a transaction (possibly against its own uncommitted DDL):
                // Describe must check it against the catalog again.
                template
                    .plan_checked_at
                    .store(0, std::sync::atomic::Ordering::Release);
            }
            return Ok((plan, tables));
        }
        Err(PgError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not plan the statement: its tables kept changing under concurrent DDL",
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_plan(
        &mut self,
        template: &Arc<Template>,
        ast: &ast::Statement,
        stmt: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
        stmt_start: i64,
        deadline: Option<Instant>,
    ) -> Result<ExecOutcome, PgError> {
        if params.len() < template.client_params {
            return Err(no_parameter(params.len() + 1));
        }
        let slots: Cow<'_, [Value]> = if stmt.literals.is_empty() {
            Cow::Borrowed(params)
        } else if template.client_params == 0 {
            Cow::Borrowed(&stmt.literals)
        } else {
            let mut v = params[..template.client_params].to_vec();
            v.extend_from_slice(&stmt.literals);
            Cow::Owned(v)
        };
        let write = match ast {
            ast::Statement::Query(q) => (!q.locks.is_empty()).then_some("SELECT FOR UPDATE"),
            ast::Statement::Insert(_) => Some("INSERT"),
            ast::Statement::Update(_) => Some("UPDATE"),
            _ => Some("DELETE"),
        };
        if let Some(what) = write
            && self.read_only()
        {
            return Err(PgError::read_only(what));
        }
        let (plan, tables) = self.plan_and_open(template, ast, stmt).await?;
        let read_only = self.read_only();

        let Session {
            engine,
            gucs,
            xact,
            backend,
            user,
            database,
            superuser,
            notices,
            sequences,
            ..
        } = self;
        let txn_start = xact.as_ref().map_or(stmt_start, |x| x.start);
        let mut txn = xact.as_mut().and_then(|x| x.txn.as_mut());
        let snapshot = txn.as_ref().map_or(Snapshot::ALL, |t| *t.snapshot());
        let env = Env {
            sequences: crate::expr::SequenceEnv {
                snapshot,
                read_only,
                seen: sequences,
            },
            engine,
            gucs,
            pid: backend.pid,
            user,
            database,
            superuser: *superuser,
            txn_start,
            stmt_start,
            effects: Mutex::new(Vec::new()),
            promote_result: Mutex::new(None),
        };
        let check = Check {
            interrupt: &backend.interrupt,
            deadline,
        };
        // Subqueries run first, each once, in order (a nested one before its parent), with
        // the statement's snapshot; their results stand in for them while the statement runs.
        let sub_exec = SubExec {
            plans: &plan.subplans,
            tables: &tables,
            snapshot,
            engine,
            check: &check,
        };
        let mut subqueries: Vec<SubResult> = Vec::with_capacity(plan.subplans.len());
        for sp in &plan.subplans {
            if sp.correlated {
                // Runs per row, when evaluated (see `Expr::Correlated`).
                subqueries.push(SubResult::Correlated);
                continue;
            }
            let cx = EvalCx {
                params: &slots,
                env: &env,
                subqueries: &subqueries,
                exec: Some(&sub_exec),
                outer: &[],
            };
            let cap = match sp.kind {
                SubKind::Exists => 1,
                SubKind::Scalar => 2,
                SubKind::In | SubKind::Rows => u64::MAX,
            };
            let rows = sub_exec.rows(subqueries.len(), &[], &cx, cap)?;
            subqueries.push(match sp.kind {
                SubKind::Exists => SubResult::Exists(!rows.is_empty()),
                SubKind::Scalar => SubResult::Scalar(crate::expr::scalar_of(rows)?),
                SubKind::Rows => SubResult::Rows(rows),
                SubKind::In => {
                    let mut values = std::collections::BTreeSet::new();
                    let mut has_null = false;
                    for r in rows {
                        match r.into_iter().next() {
                            Some(v) if !v.is_null() => {
                                values.insert(v);
                            }
                            _ => has_null = true,
                        }
                    }
                    SubResult::Set { values, has_null }
                }
            });
        }
        let cx = EvalCx {
            params: &slots,
            env: &env,
            subqueries: &subqueries,
            exec: Some(&sub_exec),
            outer: &[],
        };
        if let PlanKind::Select(sp) = &plan.kind {
            await_promote(sp, &cx).await?;
        }
        let need_txn = || PgError::internal("statement without its transaction");
        let result: Result<String, PgError> = async {
            match &plan.kind {
                PlanKind::Select(sp) => {
                    sink.begin(plan.fields.as_deref().unwrap_or(&[]))?;
                    let input = Input {
                        table: sp.table.as_deref().and_then(|n| tables.get(n)),
                        tables: Some(&tables),
                        snapshot,
                        engine,
                    };
                    let n = select::run(sp, txn.as_deref_mut(), &input, &cx, &check, &mut |row| {
                        sink.row(&row)
                    })
                    .await?;
                    Ok(format!("SELECT {n}"))
                }
                PlanKind::Insert(ip) => {
                    let target = plan
                        .tables
                        .first()
                        .and_then(|b| tables.get(&b.name))
                        .ok_or_else(need_txn)?;
                    if let Some(f) = &plan.fields {
                        sink.begin(f)?;
                    }
                    let txn = txn.as_deref_mut().ok_or_else(need_txn)?;
                    let n = dml::insert(
                        ip,
                        txn,
                        target,
                        &tables,
                        snapshot,
                        engine,
                        &cx,
                        &check,
                        &mut |row| sink.row(&row),
                    )
                    .await?;
                    Ok(format!("INSERT 0 {n}"))
                }
                PlanKind::Update(up) => {
                    let target = plan
                        .tables
                        .first()
                        .and_then(|b| tables.get(&b.name))
                        .ok_or_else(need_txn)?;
                    if let Some(f) = &plan.fields {
                        sink.begin(f)?;
                    }
                    let txn = txn.as_deref_mut().ok_or_else(need_txn)?;
                    let n = dml::update(up, txn, target, snapshot, &cx, &check, &mut |row| {
                        sink.row(&row)
                    })
                    .await?;
                    Ok(format!("UPDATE {n}"))
                }
                PlanKind::Delete(dp) => {
                    let target = plan
                        .tables
                        .first()
                        .and_then(|b| tables.get(&b.name))
                        .ok_or_else(need_txn)?;
                    if let Some(f) = &plan.fields {
                        sink.begin(f)?;
                    }
                    let txn = txn.as_deref_mut().ok_or_else(need_txn)?;
                    let n = dml::delete(dp, txn, target, snapshot, &cx, &check, &mut |row| {
                        sink.row(&row)
                    })
                    .await?;
                    Ok(format!("DELETE {n}"))
                }
            }
        }
        .await;
        if let Some(t) = txn {
            t.end_statement();
        }
        let effects = std::mem::take(&mut *env.effects.lock());
        drop(env);
        let tag = result?;
        for e in effects {
            match e {
                Effect::SetConfig { name, value, local } => {
                    gucs.set(&name, Some(&value), local)?;
                }
                Effect::Notice(n) => notices.push(n),
            }
        }
        if let Some(x) = xact.as_mut()
            && x.kind != XactKind::Failed
        {
            x.queries += 1;
        }
        Ok(ExecOutcome::Command(tag))
    }
}

/// `pg_promote(wait, wait_seconds)` waits for the promotion, but expressions are evaluated
/// synchronously: for a SELECT without FROM (how pg_promote is called), the session awaits
/// the hook here, before the statement runs, and evaluation picks the outcome up from
/// `Env::promote_result`. Arguments must not depend on a row (there is none); privilege and
/// argument checks happen here too so that a refused call never requests promotion.
async fn await_promote(sp: &crate::plan::SelectPlan, cx: &EvalCx<'_>) -> Result<(), PgError> {
    if !matches!(sp.source, crate::plan::Source::None) || sp.agg.is_some() {
        return Ok(());
    }
    let mut call: Option<Vec<crate::expr::Expr>> = None;
    for e in &sp.projection {
        e.walk(&mut |node| {
            if let crate::expr::Expr::Func(crate::expr::func::Func::Promote, args) = node
                && call.is_none()
            {
                call = Some(args.clone());
            }
        });
    }
    let Some(args) = call else {
        return Ok(());
    };
    if !cx.env.superuser {
        return Err(PgError::new(
            base::error::sqlstate::INSUFFICIENT_PRIVILEGE,
            "permission denied for function pg_promote",
        ));
    }
    let arg = |i: usize| match args.get(i) {
        Some(e) => crate::expr::eval(e, &[], cx),
        None => Ok(Value::Null),
    };
    let (wait, secs) = (arg(0)?, arg(1)?);
    let (Value::Bool(wait), Some(secs)) = (wait, secs.as_i64()) else {
        // NULL arguments: the function is strict and returns NULL without promoting.
        return Ok(());
    };
    if secs <= 0 {
        return Err(PgError::new(
            base::error::sqlstate::INVALID_PARAMETER_VALUE,
            "\"wait_seconds\" must not be negative or zero",
        ));
    }
    let secs = i32::try_from(secs).unwrap_or(i32::MAX);
    let outcome = cx.env.engine.hooks.promote(wait, secs).await;
    *cx.env.promote_result.lock() = Some(outcome);
    Ok(())
}
