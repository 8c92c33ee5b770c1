//! A transaction's DDL: the global and per-table DDL locks, staging new catalog meanings
//! (CREATE/DROP/TRUNCATE TABLE, CREATE INDEX, ADD COLUMN, sequences, constraint-only
//! ALTERs), each also recorded as a change for the commit record.
//!
//! Locks: DDL takes the global DDL lock (one DDL transaction at a time, so catalog names
//! cannot race) and the table's DDL lock, and waits for every other transaction that used
//! the table to finish; transactions that want to use a table under DDL wait for the DDL
//! transaction (`Transaction::open_table`). Every wait goes through deadlock detection.

use std::sync::Arc;

use base::Value;
use base::catalog::{CheckDef, ColumnDef, ForeignKeyDef, IndexDef, SequenceDef, TableDef};
use storage::table::IndexBuildError;
use storage::{Table, TxnShared};
use wal::record::Change;

use super::{NewIndex, Transaction, Undo};
use crate::error::TxnError;

impl Transaction {
    async fn acquire_global_ddl(&mut self) -> Result<(), TxnError> {
        if self.holds_global_ddl {
            return Ok(());
        }
        loop {
            let holder = {
                let mut owner = self.mgr.ddl_owner.lock();
                match owner.as_ref() {
                    Some(o) if !o.is_finished() && !Arc::ptr_eq(o, &self.shared) => Some(o.clone()),
                    _ => {
                        *owner = Some(self.shared.clone());
                        None
                    }
                }
            };
            match holder {
                None => {
                    self.holds_global_ddl = true;
                    return Ok(());
                }
                Some(h) => self.wait_for(&h, "the catalog").await?,
            }
        }
    }

    /// Takes the DDL lock of `table`: waits for a DDL holder, then for every other user.
    async fn lock_table_for_ddl(&mut self, table: &Arc<Table>) -> Result<(), TxnError> {
        let what = format!("relation {}", table.name());
        loop {
            let holder = {
                let mut owner = table.locks.ddl_owner.lock();
                match owner.as_ref() {
                    Some(o) if !o.is_finished() && !Arc::ptr_eq(o, &self.shared) => Some(o.clone()),
                    _ => {
                        *owner = Some(self.shared.clone());
                        None
                    }
                }
            };
            match holder {
                None => break,
                Some(h) => self.wait_for(&h, &what).await?,
            }
        }
        if !self.ddl_locked.iter().any(|l| Arc::ptr_eq(l, &table.locks)) {
            self.ddl_locked.push(table.locks.clone());
        }
        loop {
            let others: Vec<Arc<TxnShared>> = table
                .locks
                .users
                .lock()
                .iter()
                .filter(|u| !Arc::ptr_eq(u, &self.shared) && !u.is_finished())
                .cloned()
                .collect();
            if others.is_empty() {
                return Ok(());
            }
            for u in others {
                self.wait_for(&u, &what).await?;
            }
        }
    }

    fn table_for_ddl(&self, name: &str) -> Result<Arc<Table>, TxnError> {
        self.mgr
            .catalog
            .latest(name, Some(&self.shared))
            .ok_or_else(|| TxnError::UndefinedTable(name.to_owned()))
    }

    fn stage(&mut self, name: &str, table: Option<Arc<Table>>) {
        if !self.savepoints.is_empty() {
            let prior = self.mgr.catalog.staged_by(name, &self.shared);
            self.undo.push(Undo::Catalog {
                name: name.to_owned(),
                prior,
            });
        }
        self.mgr.catalog.stage(name, &self.shared, table.clone());
        if !self.staged_names.iter().any(|n| n == name) {
            self.staged_names.push(name.to_owned());
        }
        if let Some(t) = table
            && !self.touched.iter().any(|(o, _)| *o == t.oid())
        {
            self.touched.push((t.oid(), t.locks.clone()));
        }
    }

    /// CREATE TABLE. Returns `false` if it exists and `if_not_exists` is set.
    pub async fn create_table(
        &mut self,
        name: &str,
        columns: Vec<ColumnDef>,
        indexes: Vec<NewIndex>,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        self.create_relation(name, columns, indexes, Vec::new(), None, if_not_exists)
            .await
    }

    /// CREATE TABLE with CHECK and FOREIGN KEY constraints (validated by the caller, which
    /// also holds the DDL lock of every referenced table).
    pub async fn create_table_with_constraints(
        &mut self,
        name: &str,
        columns: Vec<ColumnDef>,
        indexes: Vec<NewIndex>,
        checks: Vec<CheckDef>,
        foreign_keys: Vec<ForeignKeyDef>,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        let created = self
            .create_relation(name, columns, indexes, checks, None, if_not_exists)
            .await?;
        if created && !foreign_keys.is_empty() {
            let table = self.table_for_ddl(name)?;
            let mut def = (*table.def).clone();
            def.foreign_keys = foreign_keys;
            // A self-reference was defined before the table had an OID (0 stands for it).
            for fk in &mut def.foreign_keys {
                if fk.ref_table == 0 {
                    fk.ref_table = def.oid;
                }
            }
            // Part of the same CreateTable change: the definition is staged before commit.
            self.restage(name, def)?;
        }
        Ok(created)
    }

    /// Stages a new definition of table `name` with its rows unchanged, and logs it.
    fn restage(&mut self, name: &str, def: TableDef) -> Result<(), TxnError> {
        let table = self.table_for_ddl(name)?;
        let replaced = Arc::new(table.with_def(def.clone()));
        self.stage(name, Some(replaced));
        self.record_change(|e| Change::ReplaceDef { def }.encode(e))
    }

    /// ALTER TABLE that changes only the definition (ADD FOREIGN KEY, ADD CHECK): takes the
    /// table's DDL lock; the caller validated the rows under it (`lock_for_ddl` first).
    pub async fn replace_definition(&mut self, name: &str, def: TableDef) -> Result<(), TxnError> {
        self.check_writable("ALTER TABLE")?;
        self.lock_for_ddl(name).await?;
        self.restage(name, def)
    }

    /// Takes the DDL lock of table `name` (as ALTER TABLE does, and as adding a foreign key
    /// does for the table it references): until this transaction ends nobody else writes it
    /// or changes its definition. Returns the table as this transaction now sees it.
    pub async fn lock_for_ddl(&mut self, name: &str) -> Result<Arc<Table>, TxnError> {
        self.acquire_global_ddl().await?;
        let table = self.table_for_ddl(name)?;
        self.lock_table_for_ddl(&table).await?;
        self.table_for_ddl(name)
    }

    /// Waits until `holder` (a transaction with an uncommitted change to a row this one
    /// must judge, e.g. a foreign key's referenced row) has finished.
    pub async fn wait_for_writer(
        &self,
        holder: &Arc<TxnShared>,
        what: &str,
    ) -> Result<(), TxnError> {
        self.wait_for(holder, what).await
    }

    /// CREATE SEQUENCE (also for serial and identity columns): a relation of one row, which
    /// starts unused at `seq.start`. Returns `false` if the name exists and `if_not_exists`.
    pub async fn create_sequence(
        &mut self,
        name: &str,
        seq: SequenceDef,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        let start = seq.start;
        let created = self
            .create_relation(
                name,
                SequenceDef::columns(),
                Vec::new(),
                Vec::new(),
                Some(seq),
                if_not_exists,
            )
            .await?;
        if created {
            let table = self.table_for_ddl(name)?;
            self.insert(&table, Table::sequence_row(start, false))
                .await?;
        }
        Ok(created)
    }

    async fn create_relation(
        &mut self,
        name: &str,
        columns: Vec<ColumnDef>,
        indexes: Vec<NewIndex>,
        checks: Vec<CheckDef>,
        sequence: Option<SequenceDef>,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        self.check_writable(if sequence.is_some() {
            "CREATE SEQUENCE"
        } else {
            "CREATE TABLE"
        })?;
        self.acquire_global_ddl().await?;
        if self.mgr.catalog.latest(name, Some(&self.shared)).is_some() {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TxnError::DuplicateTable(name.to_owned()));
        }
        let oid = self.mgr.catalog.allocate_oid();
        let mut def = TableDef {
            oid,
            name: name.to_owned(),
            columns,
            indexes: Vec::new(),
            sequence,
            checks,
            foreign_keys: Vec::new(),
        };
        for ix in indexes {
            if ix.primary {
                for &c in &ix.columns {
                    def.columns[usize::from(c)].not_null = true;
                }
            }
            def.indexes.push(IndexDef {
                oid: self.mgr.catalog.allocate_oid(),
                name: ix.name,
                columns: ix.columns,
                unique: ix.unique || ix.primary,
                primary: ix.primary,
            });
        }
        let table = Arc::new(Table::new(def.clone()));
        self.stage(name, Some(table));
        self.record_change(|e| Change::CreateTable { def }.encode(e))?;
        Ok(true)
    }

    /// DROP TABLE. Returns `false` if it does not exist and `if_exists` is set.
    pub async fn drop_table(&mut self, name: &str, if_exists: bool) -> Result<bool, TxnError> {
        self.check_writable("DROP TABLE")?;
        self.acquire_global_ddl().await?;
        let table = match self.table_for_ddl(name) {
            Ok(t) => t,
            Err(_) if if_exists => return Ok(false),
            Err(e) => return Err(e),
        };
        self.lock_table_for_ddl(&table).await?;
        self.stage(name, None);
        let oid = table.oid();
        self.record_change(|e| Change::DropTable { table: oid }.encode(e))?;
        Ok(true)
    }

    /// TRUNCATE one table.
    pub async fn truncate(&mut self, name: &str) -> Result<(), TxnError> {
        self.check_writable("TRUNCATE TABLE")?;
        self.acquire_global_ddl().await?;
        let table = self.table_for_ddl(name)?;
        self.lock_table_for_ddl(&table).await?;
        let fresh = Arc::new(table.truncated());
        self.stage(name, Some(fresh));
        let oid = table.oid();
        self.record_change(|e| Change::Truncate { table: oid }.encode(e))
    }

    /// ALTER TABLE ADD COLUMN: `column` goes last, and every existing row gets `fill`.
    /// Returns `false` if a column of that name exists and `if_not_exists` is set.
    pub async fn add_column(
        &mut self,
        table_name: &str,
        column: ColumnDef,
        fill: Value,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        self.check_writable("ALTER TABLE")?;
        self.acquire_global_ddl().await?;
        let table = self.table_for_ddl(table_name)?;
        self.lock_table_for_ddl(&table).await?;
        let table = self.table_for_ddl(table_name)?;
        if table.def.column_index(&column.name).is_some() {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TxnError::DuplicateColumn {
                table: table_name.to_owned(),
                column: column.name,
            });
        }
        if column.not_null && fill.is_null() {
            let me = &self.shared;
            let mut any = false;
            table.rows.for_each_slot(|_, s| {
                any = s.latest_for_writer(me).is_some_and(|v| v.data.is_some());
                !any
            });
            if any {
                return Err(TxnError::NullInColumn {
                    table: table_name.to_owned(),
                    column: column.name,
                });
            }
        }
        let mut def = (*table.def).clone();
        def.columns.push(column);
        let wider = table.with_added_column(def.clone(), &fill);
        self.stage(table_name, Some(Arc::new(wider)));
        self.record_change(|e| Change::AddColumn { def, fill }.encode(e))?;
        Ok(true)
    }

    /// CREATE INDEX / ADD PRIMARY KEY on `table_name`. Returns `false` if an index of that
    /// name exists and `if_not_exists` is set.
    pub async fn create_index(
        &mut self,
        table_name: &str,
        index: NewIndex,
        if_not_exists: bool,
    ) -> Result<bool, TxnError> {
        self.check_writable("CREATE INDEX")?;
        self.acquire_global_ddl().await?;
        let table = self.table_for_ddl(table_name)?;
        if table.def.indexes.iter().any(|i| i.name == index.name) {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TxnError::DuplicateTable(index.name));
        }
        self.lock_table_for_ddl(&table).await?;
        let table = self.table_for_ddl(table_name)?;
        let def = IndexDef {
            oid: self.mgr.catalog.allocate_oid(),
            name: index.name,
            columns: index.columns,
            unique: index.unique || index.primary,
            primary: index.primary,
        };
        let built = table
            .with_index(def.clone(), Some(&self.shared))
            .map_err(|e| match e {
                IndexBuildError::Duplicate { index, key } => TxnError::IndexBuild {
                    index,
                    detail: format!("Key {key} is duplicated."),
                },
                IndexBuildError::NullInKey { column, .. } => TxnError::NullInPrimaryKey {
                    table: table.name().to_owned(),
                    column,
                },
            })?;
        self.stage(table_name, Some(Arc::new(built)));
        let oid = table.oid();
        self.record_change(|e| {
            Change::CreateIndex {
                table: oid,
                index: def,
            }
            .encode(e)
        })?;
        Ok(true)
    }
}
