//! Utility statements: SET / RESET / SHOW, SET TRANSACTION, VACUUM / ANALYZE (accepted, no
//! work), CHECKPOINT (through the server hook), COPY FROM STDIN (start), DISCARD.

use std::sync::Arc;

use base::error::sqlstate;
use base::{DataType, PgError, Value};

use super::{Session, XactKind};
use crate::api::{ExecOutcome, FieldInfo, RowSink};
use crate::copy::CopyIn;
use crate::copy_to::CopyToSink;
use crate::expr::{Env, EvalCx, eval};
use crate::guc::SessionGucs;
use crate::parse::{CopyStmt, CopyToStmt, SetValue, Statement, TxnModes};
use crate::plan::dml::bind_default;

fn text_field(name: &str) -> FieldInfo {
    FieldInfo {
        name: name.to_owned(),
        table_oid: 0,
        column_id: 0,
        data_type: DataType::Text,
    }
}

/// SHOW's result columns.
pub(super) fn show_fields(name: Option<&str>) -> Vec<FieldInfo> {
    match name {
        None => vec![
            text_field("name"),
            text_field("setting"),
            text_field("description"),
        ],
        Some(n) => vec![text_field(&show_column_name(n))],
    }
}

fn show_column_name(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "transaction_isolation" => "transaction_isolation".into(),
        "transaction_read_only" => "transaction_read_only".into(),
        _ => SessionGucs::canonical_name(name),
    }
}

impl Session {
    pub(super) async fn utility(
        &mut self,
        stmt: &Statement,
        sink: &mut dyn RowSink,
    ) -> Result<ExecOutcome, PgError> {
        let command = |tag: &str| Ok(ExecOutcome::Command(tag.to_owned()));
        match stmt {
            Statement::Set { name, value, local } => {
                self.set(name, value, *local)?;
                command("SET")
            }
            Statement::Reset { name } => {
                match name {
                    None => self.gucs.reset_all(),
                    Some(n) => match n.to_ascii_lowercase().as_str() {
                        "transaction_isolation" | "transaction_read_only" => {}
                        _ => self.gucs.set(n, None, false)?,
                    },
                }
                command("RESET")
            }
            Statement::Show { name } => {
                self.show(name.as_deref(), sink)?;
                command("SHOW")
            }
            Statement::SetTransaction(modes) => {
                self.set_transaction(modes)?;
                command("SET")
            }
            Statement::SetSessionCharacteristics(modes) => {
                Self::check_isolation(modes)?;
                if let Some(ro) = modes.read_only {
                    self.gucs.set(
                        "default_transaction_read_only",
                        Some(if ro { "on" } else { "off" }),
                        false,
                    )?;
                }
                if let Some(level) = &modes.isolation {
                    self.gucs
                        .set("default_transaction_isolation", Some(level), false)?;
                }
                command("SET")
            }
            Statement::Vacuum { tables, .. } => {
                if self.in_block() {
                    return Err(PgError::new(
                        sqlstate::ACTIVE_SQL_TRANSACTION,
                        "VACUUM cannot run inside a transaction block",
                    ));
                }
                self.check_tables_exist(tables)?;
                command("VACUUM")
            }
            Statement::Analyze { tables } => {
                self.check_tables_exist(tables)?;
                command("ANALYZE")
            }
            Statement::Checkpoint => {
                if !self.superuser {
                    return Err(PgError::new(
                        sqlstate::INSUFFICIENT_PRIVILEGE,
                        "must be superuser or have privileges of pg_checkpoint to do CHECKPOINT",
                    ));
                }
                self.engine.hooks.request_checkpoint().await?;
                command("CHECKPOINT")
            }
            Statement::CreateRole { .. }
            | Statement::AlterRole { .. }
            | Statement::DropRole { .. } => self.role_command(stmt),
            Statement::AlterSystem { name, value } => {
                self.alter_system(name.as_deref(), value.as_deref())?;
                command("ALTER SYSTEM")
            }
            Statement::Copy(c) => self.copy_start(c).await,
            Statement::Discard(what) => {
                if self.in_block() {
                    return Err(PgError::new(
                        sqlstate::ACTIVE_SQL_TRANSACTION,
                        format!("DISCARD {what} cannot run inside a transaction block"),
                    ));
                }
                if what == "ALL" {
                    self.gucs.reset_all();
                    self.cache.clear();
                }
                Ok(ExecOutcome::Command(format!("DISCARD {what}")))
            }
            Statement::DeallocateAll => command("DEALLOCATE ALL"),
            Statement::Unsupported(e) => Err(e.clone()),
            Statement::Empty
            | Statement::Begin(_)
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint(_)
            | Statement::Release(_)
            | Statement::RollbackTo(_)
            | Statement::CopyTo(_)
            | Statement::Sql(_) => Err(PgError::internal("statement routed to the wrong handler")),
        }
    }

    /// `CREATE/ALTER/DROP ROLE`: changes the roles file at once. Role changes are not
    /// transactional in lockstep (the roles file is not in the WAL), so they are refused
    /// inside a transaction block rather than silently surviving a ROLLBACK.
    fn role_command(&mut self, stmt: &Statement) -> Result<ExecOutcome, PgError> {
        use crate::parse::RoleOption;
        let command = |tag: &str| Ok(ExecOutcome::Command(tag.to_owned()));
        let what = match stmt {
            Statement::CreateRole { .. } => "CREATE ROLE",
            Statement::AlterRole { .. } => "ALTER ROLE",
            _ => "DROP ROLE",
        };
        if self.in_block() {
            return Err(PgError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                format!("{what} cannot run inside a transaction block"),
            ));
        }
        if self.engine.mgr.is_read_only() {
            return Err(PgError::read_only(what));
        }
        if !self.superuser {
            return Err(PgError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to {}", what.to_lowercase()),
            ));
        }
        let store = self.engine.role_store().ok_or_else(|| {
            PgError::feature_not_supported(format!("{what} without a roles file"))
        })?;
        let apply = |role: &mut auth::Role, options: &[RoleOption]| -> Result<(), PgError> {
            for o in options {
                match o {
                    RoleOption::Superuser(v) => role.superuser = *v,
                    RoleOption::Login(v) => role.login = *v,
                    RoleOption::Replication(v) => role.replication = *v,
                    RoleOption::Password(None) => role.password = None,
                    RoleOption::Password(Some(p)) => {
                        // A value that already is a SCRAM verifier is stored as given, as
                        // PostgreSQL does (pg_dump output, `lockstep passwd` elsewhere).
                        role.password = Some(match p.parse::<auth::scram::ScramVerifier>() {
                            Ok(v) => v,
                            Err(_) => auth::scram::scram_verifier(
                                p,
                                auth::scram::SCRAM_ITERATIONS_DEFAULT,
                            ),
                        });
                    }
                    RoleOption::Ignored(_) => {}
                }
            }
            Ok(())
        };
        match stmt {
            Statement::CreateRole {
                name,
                user,
                options,
            } => {
                let mut role = auth::Role::new(name.clone());
                role.login = *user;
                apply(&mut role, options)?;
                store.create_role(role).map_err(|e| e.to_pg_error())?;
                command(what)
            }
            Statement::AlterRole { name, options } => {
                let mut err = None;
                store
                    .alter_role(name, |role| {
                        if let Err(e) = apply(role, options) {
                            err = Some(e);
                        }
                    })
                    .map_err(|e| e.to_pg_error())?;
                if let Some(e) = err {
                    return Err(e);
                }
                command(what)
            }
            Statement::DropRole { names, if_exists } => {
                for name in names {
                    if name == &self.gucs.get("session_authorization").unwrap_or_default() {
                        return Err(PgError::new(
                            sqlstate::OBJECT_IN_USE,
                            "current user cannot be dropped",
                        ));
                    }
                    match store.drop_role(name) {
                        Ok(()) => {}
                        Err(e) if *if_exists && store.get(name).is_none() => {
                            let _ = e;
                            self.notices.push(PgError::notice(format!(
                                "role \"{name}\" does not exist, skipping"
                            )));
                        }
                        Err(e) => return Err(e.to_pg_error()),
                    }
                }
                command(what)
            }
            _ => Err(PgError::internal("not a role command")),
        }
    }

    fn check_tables_exist(&self, tables: &[String]) -> Result<(), PgError> {
        let snapshot = self.catalog_snapshot_public();
        for t in tables {
            if self.engine.mgr.catalog.lookup(t, &snapshot).is_none() {
                return Err(PgError::undefined_table(t));
            }
        }
        Ok(())
    }

    fn catalog_snapshot_public(&self) -> storage::Snapshot {
        let xid = self
            .xact
            .as_ref()
            .and_then(|x| x.txn.as_ref())
            .map_or(0, |t| t.xid());
        storage::Snapshot {
            watermark: self.engine.mgr.watermarks.snapshot(),
            xid,
        }
    }

    fn set(&mut self, name: &str, value: &SetValue, local: bool) -> Result<(), PgError> {
        let lower = name.to_ascii_lowercase();
        let text = match value {
            SetValue::Default => None,
            SetValue::Value(v) => Some(v.as_str()),
        };
        match lower.as_str() {
            "transaction_isolation" | "transaction_read_only" | "transaction_deferrable" => {
                let mut modes = TxnModes::default();
                match (lower.as_str(), text) {
                    ("transaction_isolation", Some(v)) => {
                        modes.isolation = Some(v.to_ascii_lowercase())
                    }
                    ("transaction_read_only", Some(v)) => {
                        modes.read_only = Some(crate::guc::parse_bool(v).ok_or_else(|| {
                            PgError::new(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("parameter \"{lower}\" requires a Boolean value"),
                            )
                        })?)
                    }
                    _ => {}
                }
                return self.set_transaction(&modes);
            }
            _ => {}
        }
        if local && !self.in_block() && self.batch_len <= 1 {
            self.notices.push(PgError::warning(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "SET LOCAL can only be used in transaction blocks",
            ));
            // Still validate the name and value, as PostgreSQL does.
            let mut probe = self.gucs.clone_for_probe();
            probe.set(name, text, true)?;
            return Ok(());
        }
        self.gucs.set(name, text, local)
    }

    fn set_transaction(&mut self, modes: &TxnModes) -> Result<(), PgError> {
        Self::check_isolation(modes)?;
        // PostgreSQL's check_transaction_read_only runs even outside a transaction block
        // (the implicit transaction is read-only during recovery), so a standby refuses
        // read-write mode before the "only in transaction blocks" warning matters.
        if modes.read_only == Some(false) && self.engine.mgr.is_read_only() {
            return Err(PgError::new(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                "cannot set transaction read-write mode during recovery",
            ));
        }
        if !self.in_block() {
            self.notices.push(PgError::warning(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "SET TRANSACTION can only be used in transaction blocks",
            ));
            return Ok(());
        }
        let standby = self.engine.mgr.is_read_only();
        let Some(x) = self.xact.as_mut() else {
            return Ok(());
        };
        if let Some(ro) = modes.read_only {
            if !ro && standby {
                return Err(PgError::new(
                    sqlstate::READ_ONLY_SQL_TRANSACTION,
                    "cannot set transaction read-write mode during recovery",
                ));
            }
            if !ro && x.read_only && x.queries > 0 {
                return Err(PgError::new(
                    sqlstate::ACTIVE_SQL_TRANSACTION,
                    "transaction read-write mode must be set before any query",
                ));
            }
            x.read_only = ro;
        }
        if modes.isolation.is_some() && x.queries > 0 {
            return Err(PgError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                "SET TRANSACTION ISOLATION LEVEL must be called before any query",
            ));
        }
        Ok(())
    }

    fn show(&mut self, name: Option<&str>, sink: &mut dyn RowSink) -> Result<(), PgError> {
        let fields = show_fields(name);
        match name {
            None => {
                sink.begin(&fields)?;
                for (n, v, d) in self.gucs.show_all() {
                    sink.row(&[Value::text(&n), Value::text(&v), Value::text(&d)])?;
                }
            }
            Some(n) => {
                let value = match n.to_ascii_lowercase().as_str() {
                    "transaction_isolation" => "read committed".to_owned(),
                    "transaction_read_only" => {
                        let ro = match &self.xact {
                            Some(x) if x.kind != XactKind::Implicit || x.txn.is_some() => {
                                x.read_only
                            }
                            _ => self.default_read_only(),
                        };
                        if ro { "on" } else { "off" }.to_owned()
                    }
                    "transaction_deferrable" => "off".to_owned(),
                    _ => self.gucs.get(n)?,
                };
                sink.begin(&fields)?;
                sink.row(&[Value::Text(value.into())])?;
            }
        }
        Ok(())
    }

    /// COPY ... TO STDOUT: runs the query through the normal executor with a sink that
    /// writes CopyData lines (see `copy_to`).
    pub(super) async fn copy_to(
        &mut self,
        c: &CopyToStmt,
        sink: &mut dyn RowSink,
        stmt_start: i64,
        deadline: Option<std::time::Instant>,
    ) -> Result<ExecOutcome, PgError> {
        // A fresh template: COPY is not a hot path, and its query's plan is not worth a
        // cache entry of its own.
        let template = Arc::new(crate::parse::Template::new(
            Statement::Sql(c.query.clone()),
            0,
            Vec::new(),
            Vec::new(),
        ));
        let prepared = crate::api::Prepared {
            text: Arc::from(c.query.to_string()),
            template: Arc::clone(&template),
            literals: Vec::new(),
            param_types: Vec::new(),
            fields: None,
        };
        let mut copy_sink = CopyToSink::new(sink, &c.format);
        self.run_sql(
            &template,
            &c.query,
            &prepared,
            &[],
            &mut copy_sink,
            stmt_start,
            deadline,
        )
        .await?;
        Ok(ExecOutcome::Command(copy_sink.finish()?))
    }

    async fn copy_start(&mut self, c: &CopyStmt) -> Result<ExecOutcome, PgError> {
        if self.xact.as_ref().is_some_and(|x| x.read_only) || self.engine.mgr.is_read_only() {
            return Err(PgError::read_only("COPY FROM"));
        }
        let txn = self.statement_txn();
        let table = txn
            .open_table(&c.table)
            .await
            .map_err(PgError::from)?
            .ok_or_else(|| PgError::undefined_table(&c.table))?;
        let def = &table.def;
        let fields: Vec<usize> = match &c.columns {
            None => (0..def.columns.len()).collect(),
            Some(cols) => {
                let mut v: Vec<usize> = Vec::with_capacity(cols.len());
                for name in cols {
                    let p = def.column_index(name).ok_or_else(|| {
                        PgError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!(
                                "column \"{name}\" of relation \"{}\" does not exist",
                                def.name
                            ),
                        )
                    })?;
                    if v.contains(&p) {
                        return Err(PgError::new(
                            sqlstate::DUPLICATE_COLUMN,
                            format!("column \"{name}\" specified more than once"),
                        ));
                    }
                    v.push(p);
                }
                v
            }
        };
        // Defaults of the columns not in the file, evaluated once (PostgreSQL evaluates
        // them per row; lockstep's defaults are constants or now(), which is fixed per
        // transaction, so once is the same).
        let txn_start = self.xact.as_ref().map_or(0, |x| x.start);
        let read_only = self.read_only();
        let snapshot = self
            .xact
            .as_ref()
            .and_then(|x| x.txn.as_ref())
            .map_or(storage::Snapshot::ALL, |t| *t.snapshot());
        let env = self.plain_env(&self.sequences, snapshot, read_only);
        let cx = EvalCx {
            subqueries: &[],
            exec: None,
            outer: &[],
            params: &[],
            env: &env,
        };
        let mut defaults = Vec::with_capacity(def.columns.len());
        let mut sequences = Vec::new();
        for (i, col) in def.columns.iter().enumerate() {
            if fields.contains(&i) {
                defaults.push(None);
            } else if let Some(seq) = col
                .default
                .as_deref()
                .and_then(crate::exec::sequence::nextval_target)
            {
                // A serial/identity column: a new value for every row.
                let t = crate::exec::sequence::resolve(&self.engine, &snapshot, &seq)?;
                if read_only {
                    return Err(PgError::read_only("nextval()"));
                }
                sequences.push((i, t));
                defaults.push(Some(base::Value::Null));
            } else {
                let e = bind_default(col)?;
                defaults.push(Some(eval(&e, &[], &cx)?));
            }
        }
        drop(env);
        let columns = fields.len();
        let mut copy = CopyIn::new(Arc::clone(&table), fields, defaults, c)
            .with_sequences(self.engine.mgr.clone(), sequences);
        let checks = crate::plan::dml::bind_checks(def)?;
        if !checks.is_empty() {
            copy = copy.with_checks(crate::copy::CopyChecks {
                checks,
                engine: self.engine.clone(),
                gucs: self.gucs.clone(),
                pid: self.backend.pid,
                user: self.user.clone(),
                database: self.database.clone(),
                superuser: self.superuser,
                txn_start,
                snapshot,
            });
        }
        self.copy = Some(copy);
        Ok(ExecOutcome::CopyIn { columns })
    }
}

impl Session {
    /// An evaluation environment outside a planned statement (COPY defaults, ADD COLUMN
    /// defaults): the session's settings and identity, now() at the transaction's start.
    fn plain_env<'a>(
        &'a self,
        seen: &'a crate::exec::sequence::SessionSequences,
        snapshot: storage::Snapshot,
        read_only: bool,
    ) -> Env<'a> {
        Env {
            engine: &self.engine,
            gucs: &self.gucs,
            pid: self.backend.pid,
            user: &self.user,
            database: &self.database,
            superuser: self.superuser,
            txn_start: self.xact.as_ref().map_or(0, |x| x.start),
            stmt_start: crate::engine::now_micros(),
            effects: parking_lot::Mutex::new(Vec::new()),
            promote_result: parking_lot::Mutex::new(None),
            sequences: crate::expr::SequenceEnv {
                snapshot,
                read_only,
                seen,
            },
        }
    }

    /// For each ADD COLUMN of an ALTER TABLE, the column and the value existing rows get:
    /// the column's DEFAULT evaluated once (PostgreSQL evaluates a non-volatile default once
    /// too), or NULL. A volatile default (nextval, random, clock_timestamp) would need a value
    /// per row and is refused.
    pub(super) fn added_columns(
        &self,
        at: &sqlparser::ast::AlterTable,
    ) -> Result<Vec<(base::catalog::ColumnDef, base::Value)>, PgError> {
        let mut added = Vec::new();
        for op in &at.operations {
            let sqlparser::ast::AlterTableOperation::AddColumn { column_def, .. } = op else {
                continue;
            };
            let col = crate::exec::ddl::added_column(column_def)?;
            let e = bind_default(&col)?;
            if !e.is_row_independent() {
                return Err(PgError::feature_not_supported(
                    "ALTER TABLE ... ADD COLUMN with a volatile DEFAULT",
                ));
            }
            let seen = crate::exec::sequence::SessionSequences::default();
            let env = self.plain_env(&seen, storage::Snapshot::ALL, true);
            let cx = EvalCx {
                subqueries: &[],
                exec: None,
                outer: &[],
                params: &[],
                env: &env,
            };
            let fill = eval(&e, &[], &cx)?;
            added.push((col, fill));
        }
        Ok(added)
    }

    /// `ALTER SYSTEM`: checks as PostgreSQL does (superuser, outside a transaction block, a
    /// known parameter that may be set in the configuration file, a valid value), then has
    /// the server record it in its auto configuration file. Like PostgreSQL, the new value
    /// takes effect at the next reload (`pg_reload_conf()`) or restart.
    fn alter_system(&mut self, name: Option<&str>, value: Option<&str>) -> Result<(), PgError> {
        if !self.superuser {
            return Err(PgError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "must be superuser to execute ALTER SYSTEM command",
            ));
        }
        if self.in_block() {
            return Err(PgError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                "ALTER SYSTEM cannot run inside a transaction block",
            ));
        }
        let name = match name {
            None => None,
            Some(n) => {
                let n = n.to_ascii_lowercase();
                match crate::guc::lookup(&n) {
                    Some(def) => {
                        if def.context == crate::guc::GucContext::Internal {
                            return Err(PgError::new(
                                sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                                format!("parameter \"{}\" cannot be changed", def.name),
                            ));
                        }
                        if let Some(v) = value {
                            crate::guc::parse_value(def, v)?;
                        }
                        Some(def.name.to_owned())
                    }
                    None if crate::guc::is_custom_name(&n) => Some(n),
                    None => {
                        return Err(PgError::new(
                            sqlstate::UNDEFINED_OBJECT,
                            format!("unrecognized configuration parameter \"{n}\""),
                        ));
                    }
                }
            }
        };
        self.engine.hooks.alter_system(name.as_deref(), value)
    }
}
