//! The columns an expression may name: each with its qualifier (table name or alias), type
//! and origin, resolved as PostgreSQL resolves names (qualified, or unqualified and then
//! unambiguous).

use base::catalog::TableDef;
use base::error::sqlstate;
use base::{DataType, PgError};

#[derive(Clone, Debug)]
pub struct ScopeCol {
    pub name: String,
    pub qualifier: Option<String>,
    pub ty: DataType,
    pub table_oid: u32,
    pub attnum: i16,
    /// Reachable only through its qualifier (ON CONFLICT's `excluded`).
    pub qualified_only: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub cols: Vec<ScopeCol>,
}

impl Scope {
    pub fn empty() -> Scope {
        Scope::default()
    }

    pub fn for_table(def: &TableDef, qualifier: &str) -> Scope {
        let mut s = Scope::empty();
        s.add_table(def, qualifier, false);
        s
    }

    pub fn add_table(&mut self, def: &TableDef, qualifier: &str, qualified_only: bool) {
        for (i, c) in def.columns.iter().enumerate() {
            self.cols.push(ScopeCol {
                name: c.name.clone(),
                qualifier: Some(qualifier.to_owned()),
                ty: c.data_type,
                table_oid: def.oid,
                attnum: i16::try_from(i + 1).unwrap_or(i16::MAX),
                qualified_only,
            });
        }
    }

    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<usize, PgError> {
        match qualifier {
            Some(q) => {
                if !self.cols.iter().any(|c| c.qualifier.as_deref() == Some(q)) {
                    return Err(PgError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{q}\""),
                    ));
                }
                self.cols
                    .iter()
                    .position(|c| c.qualifier.as_deref() == Some(q) && c.name == name)
                    .ok_or_else(|| {
                        PgError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column {q}.{name} does not exist"),
                        )
                    })
            }
            None => {
                let mut found = None;
                for (i, c) in self.cols.iter().enumerate() {
                    if c.name == name && !c.qualified_only {
                        if found.is_some() {
                            return Err(PgError::new(
                                sqlstate::AMBIGUOUS_COLUMN,
                                format!("column reference \"{name}\" is ambiguous"),
                            ));
                        }
                        found = Some(i);
                    }
                }
                found.ok_or_else(|| PgError::undefined_column(name))
            }
        }
    }
}
