//! `synchronous_commit` levels: when a commit may be acknowledged, and so when it becomes
//! visible to other sessions (DESIGN.md decision 5: visibility follows acknowledgement).

use std::fmt;
use std::str::FromStr;

/// PostgreSQL's `synchronous_commit` values, ordered from weakest to strongest.
///
/// `Off`: acknowledged once the commit record is written to the OS (not flushed). `Local`:
/// flushed here. `RemoteWrite`, `On` (remote flush) and `RemoteApply`: flushed here and
/// confirmed by the synchronous standby set at that stage; without synchronous standbys they
/// behave as `Local`, as in PostgreSQL.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum SyncCommitLevel {
    Off = 0,
    Local = 1,
    RemoteWrite = 2,
    #[default]
    On = 3,
    RemoteApply = 4,
}

impl SyncCommitLevel {
    /// Number of levels; visibility keeps one watermark per level.
    pub const COUNT: usize = 5;

    pub const ALL: [SyncCommitLevel; 5] = [
        SyncCommitLevel::Off,
        SyncCommitLevel::Local,
        SyncCommitLevel::RemoteWrite,
        SyncCommitLevel::On,
        SyncCommitLevel::RemoteApply,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: u8) -> Option<SyncCommitLevel> {
        Self::ALL.get(usize::from(i)).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncCommitLevel::Off => "off",
            SyncCommitLevel::Local => "local",
            SyncCommitLevel::RemoteWrite => "remote_write",
            SyncCommitLevel::On => "on",
            SyncCommitLevel::RemoteApply => "remote_apply",
        }
    }
}

impl fmt::Display for SyncCommitLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncCommitLevel {
    type Err = ();

    /// Accepts PostgreSQL's spellings, including the boolean aliases of `on` and `off`.
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "no" | "0" => SyncCommitLevel::Off,
            "local" => SyncCommitLevel::Local,
            "remote_write" => SyncCommitLevel::RemoteWrite,
            "on" | "true" | "yes" | "1" => SyncCommitLevel::On,
            "remote_apply" => SyncCommitLevel::RemoteApply,
            _ => return Err(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_spellings() {
        assert_eq!("ON".parse(), Ok(SyncCommitLevel::On));
        assert_eq!("true".parse(), Ok(SyncCommitLevel::On));
        assert_eq!("remote_apply".parse(), Ok(SyncCommitLevel::RemoteApply));
        assert_eq!(" off ".parse(), Ok(SyncCommitLevel::Off));
        assert_eq!("bogus".parse::<SyncCommitLevel>(), Err(()));
        for l in SyncCommitLevel::ALL {
            assert_eq!(SyncCommitLevel::from_index(l as u8), Some(l));
        }
    }
}
