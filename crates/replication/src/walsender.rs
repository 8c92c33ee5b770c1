//! walsender (placeholder, filled in below).

/// The states of a walsender, with PostgreSQL's names (`WalSndState`,
/// `pg_stat_replication.state`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WalSndState {
    /// Connected; running replication commands (IDENTIFY_SYSTEM, ...), not streaming yet.
    Startup,
    /// Sending a base backup.
    Backup,
    /// Streaming, but the standby has not caught up with the primary yet.
    Catchup,
    /// Streaming and caught up: eligible as a synchronous standby.
    Streaming,
    /// The primary is shutting down; sending what is left before the walsender exits.
    Stopping,
}

impl WalSndState {
    /// The word `pg_stat_replication.state` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            WalSndState::Startup => "startup",
            WalSndState::Backup => "backup",
            WalSndState::Catchup => "catchup",
            WalSndState::Streaming => "streaming",
            WalSndState::Stopping => "stopping",
        }
    }
}
