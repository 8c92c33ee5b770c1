//! The write-ahead log: record format (`record`), segment files (`segment`), the
//! group-committing writer and flusher with write hooks (`writer`), reading and the end-of-WAL
//! decision (`reader`), the mirror hook (`mirror`), and pg_waldump-style output (`dump`).

pub mod dump;
pub mod fuzzing;
pub mod mirror;
pub mod reader;
pub mod record;
pub mod segment;
pub mod writer;

pub use reader::{RawRecord, ReadOutcome, WalReader};
pub use writer::{Wal, WalConfig, WalError, WalProgress, WalStats, WalWriteHook};
