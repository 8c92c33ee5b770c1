//! Errors of transactional operations, and their SQLSTATEs.

use base::PgError;
use base::error::sqlstate;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TxnError {
    #[error("deadlock detected")]
    Deadlock { detail: String },
    #[error("canceling statement due to lock timeout")]
    LockTimeout,
    #[error("canceling statement due to user request")]
    Canceled,
    #[error("canceling statement due to statement timeout")]
    StatementTimeout,
    #[error("terminating connection due to administrator command")]
    Terminated,
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation {
        table: String,
        constraint: String,
        detail: String,
    },
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    #[error("could not create unique index \"{index}\"")]
    IndexBuild { index: String, detail: String },
    #[error("column \"{column}\" of relation \"{table}\" contains null values")]
    NullInPrimaryKey { table: String, column: String },
    #[error("column \"{column}\" of relation \"{table}\" contains null values")]
    NullInColumn { table: String, column: String },
    #[error("column \"{column}\" of relation \"{table}\" already exists")]
    DuplicateColumn { table: String, column: String },
    #[error("cannot execute {0} in a read-only transaction")]
    ReadOnly(&'static str),
    #[error("table \"{0}\" was dropped or changed by a concurrent transaction")]
    ConcurrentDdl(String),
    #[error("the write-ahead log is not accepting records: {0}")]
    LogUnavailable(String),
    #[error(
        "ROLLBACK TO SAVEPOINT cannot undo DDL once the transaction's changes since the savepoint outgrew the change buffer"
    )]
    SavepointAfterSpilledDdl,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TxnError> for PgError {
    fn from(e: TxnError) -> PgError {
        let msg = e.to_string();
        match e {
            TxnError::Deadlock { detail } => {
                PgError::new(sqlstate::DEADLOCK_DETECTED, msg).with_detail(detail)
            }
            TxnError::LockTimeout => PgError::new(sqlstate::LOCK_NOT_AVAILABLE, msg),
            TxnError::Canceled | TxnError::StatementTimeout => {
                PgError::new(sqlstate::QUERY_CANCELED, msg)
            }
            TxnError::Terminated => PgError::fatal(sqlstate::ADMIN_SHUTDOWN, msg),
            TxnError::UniqueViolation {
                table,
                constraint,
                detail,
            } => PgError::new(sqlstate::UNIQUE_VIOLATION, msg)
                .with_detail(detail)
                .with_table(table)
                .with_constraint(constraint),
            TxnError::UndefinedTable(_) => PgError::new(sqlstate::UNDEFINED_TABLE, msg),
            TxnError::DuplicateTable(_) => PgError::new(sqlstate::DUPLICATE_TABLE, msg),
            TxnError::IndexBuild { detail, .. } => {
                PgError::new(sqlstate::UNIQUE_VIOLATION, msg).with_detail(detail)
            }
            TxnError::NullInPrimaryKey { .. } | TxnError::NullInColumn { .. } => {
                PgError::new(sqlstate::NOT_NULL_VIOLATION, msg)
            }
            TxnError::DuplicateColumn { .. } => PgError::new(sqlstate::DUPLICATE_COLUMN, msg),
            TxnError::ReadOnly(_) => PgError::new(sqlstate::READ_ONLY_SQL_TRANSACTION, msg),
            TxnError::ConcurrentDdl(_) => PgError::new(sqlstate::SERIALIZATION_FAILURE, msg),
            TxnError::LogUnavailable(_) => PgError::new(sqlstate::IO_ERROR, msg),
            TxnError::SavepointAfterSpilledDdl => PgError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                msg,
            )
            .with_hint(
                "Roll back the whole transaction, or set the savepoint after the bulk of the data.",
            ),
            TxnError::Internal(_) => PgError::new(sqlstate::INTERNAL_ERROR, msg),
        }
    }
}
