//! Transactions over the in-memory storage: locks, unique checks, commit and rollback.
//!
//! The SQL executor drives a `Transaction` (open tables, insert/lock/update/delete rows, DDL,
//! commit); the `TxnManager` holds what transactions share. See `transaction` for the commit
//! protocol and its visibility guarantee.

pub mod error;
pub mod interrupt;
pub mod manager;
pub mod sequence;
pub mod testing;
pub mod transaction;
pub mod waiters;

pub use error::TxnError;
pub use interrupt::Interrupt;
pub use manager::{CommitLog, TxnManager, TxnSettings};
pub use transaction::{CommitOutcome, InsertOutcome, NewIndex, Transaction};
pub use waiters::CommitWaiters;
