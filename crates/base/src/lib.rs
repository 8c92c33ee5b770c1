//! The shared vocabulary of lockstep.
//!
//! Every other crate speaks in these types: log sequence numbers and timelines (`lsn`), the
//! PostgreSQL error shape that reaches clients (`error`), SQL data types and values (`types`,
//! `value`), and the compact binary encoding of values that the WAL and checkpoints share
//! (`codec`). Nothing here does IO, takes a lock, or knows about sessions; it only defines what
//! the words mean, so that a change in meaning happens in one place.

pub mod cast;
pub mod catalog;
pub mod codec;
pub mod error;
pub mod failpoint;
pub mod lsn;
pub mod types;
pub mod tz;
pub mod value;

pub use error::{PgError, SqlState};
pub use lsn::{Lsn, TimelineId};
pub use types::DataType;
pub use value::{Interval, Row, Value};
pub mod pgio;
pub mod spin;
pub mod sync;
pub mod testing;
pub use sync::SyncCommitLevel;
