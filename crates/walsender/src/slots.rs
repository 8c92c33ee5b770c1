//! Physical replication slots: persistent `restart_lsn`s that keep WAL for a standby while
//! it is away. Modelled on PostgreSQL's `slot.c` (physical slots only).
//!
//! Storage: `DIR/pg_replslot/<name>/state`, written atomically (temp file, fsync, rename,
//! fsync of the directory) with a CRC32C, so a crash leaves the old or the new state, never a
//! torn one. Temporary slots live only in memory and die with their connection.
//!
//! Where it runs: slot commands on walsender tasks; `restart_lsn` advances from standby flush
//! reports (in memory, marked dirty, saved at each checkpoint, as PostgreSQL's
//! `CheckPointReplicationSlots`); the checkpointer asks [`SlotStore::retention`] for the
//! oldest LSN to keep, which is also where a slot that fell more than
//! `max_slot_wal_keep_size` behind becomes `lost` (persisted) and stops holding WAL.
//!
//! Invariants: `restart_lsn` only grows; a lost slot never becomes valid again; a slot is
//! active on at most one walsender.
//!
//! Failure: IO errors on save are reported to the caller (a command fails with 58030); a
//! state file with a bad CRC is skipped at load with a log message, as PostgreSQL refuses
//! to start on one but lockstep prefers to keep serving (the slot's WAL is then not kept).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base::error::{SqlState, sqlstate};
use base::{Lsn, PgError};

const MAGIC: &[u8; 8] = b"LSSLOT01";
pub const SLOT_DIR: &str = "pg_replslot";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub temporary: bool,
    /// `Lsn::ZERO`: reserves no WAL yet.
    pub restart_lsn: Lsn,
    pub lost: bool,
    pub active_pid: Option<i32>,
    /// The connection that created a temporary slot (dropped with it).
    pub owner: Option<u64>,
    dirty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("could not write replication slot file \"{path}\": {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl SlotError {
    pub fn to_pg_error(&self) -> PgError {
        PgError::new(sqlstate::IO_ERROR, self.to_string())
    }
}

fn encode(name: &str, restart_lsn: Lsn, lost: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&restart_lsn.0.to_le_bytes());
    b.push(u8::from(lost));
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(name.as_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<(String, Lsn, bool)> {
    if b.len() < 8 + 8 + 1 + 2 + 4 || &b[..8] != MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return None;
    }
    let lsn = u64::from_le_bytes(body[8..16].try_into().ok()?);
    let lost = body[16] != 0;
    let n = u16::from_le_bytes(body[17..19].try_into().ok()?) as usize;
    let name = std::str::from_utf8(body.get(19..19 + n)?).ok()?.to_owned();
    Some((name, Lsn(lsn), lost))
}

/// Every slot of this server.
pub struct SlotStore {
    dir: PathBuf,
    slots: BTreeMap<String, Slot>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SlotError + '_ {
    move |e| SlotError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

impl SlotStore {
    /// Loads the persistent slots of `data_dir` (temporary leftovers do not exist on disk).
    pub fn load(data_dir: &Path) -> SlotStore {
        let dir = data_dir.join(SLOT_DIR);
        let mut slots = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let state = e.path().join("state");
                match fs::read(&state).ok().as_deref().and_then(decode) {
                    Some((name, restart_lsn, lost)) => {
                        slots.insert(
                            name.clone(),
                            Slot {
                                name,
                                temporary: false,
                                restart_lsn,
                                lost,
                                active_pid: None,
                                owner: None,
                                dirty: false,
                            },
                        );
                    }
                    None => tracing::warn!(
                        "ignoring replication slot directory \"{}\": missing or damaged state file",
                        e.path().display()
                    ),
                }
            }
        }
        SlotStore { dir, slots }
    }

    fn save(&self, s: &Slot) -> Result<(), SlotError> {
        if s.temporary {
            return Ok(());
        }
        let sdir = self.dir.join(&s.name);
        fs::create_dir_all(&sdir).map_err(io_err(&sdir))?;
        let tmp = sdir.join("state.tmp");
        let fin = sdir.join("state");
        {
            let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&encode(&s.name, s.restart_lsn, s.lost))
                .map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &fin).map_err(io_err(&fin))?;
        wal::segment::fsync_dir(&sdir).map_err(io_err(&sdir))?;
        wal::segment::fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    pub fn list(&self) -> Vec<Slot> {
        self.slots.values().cloned().collect()
    }

    pub fn create(
        &mut self,
        name: &str,
        temporary: bool,
        restart_lsn: Lsn,
        owner: Option<u64>,
        max_slots: usize,
    ) -> Result<(), PgError> {
        replication::commands::validate_slot_name(name)?;
        if self.slots.contains_key(name) {
            return Err(PgError::new(
                sqlstate::DUPLICATE_OBJECT,
                format!("replication slot \"{name}\" already exists"),
            ));
        }
        if self.slots.len() >= max_slots {
            return Err(
                PgError::new(SqlState("53400"), "all replication slots are in use")
                    .with_hint("Free one or increase max_replication_slots."),
            );
        }
        let s = Slot {
            name: name.to_owned(),
            temporary,
            restart_lsn,
            lost: false,
            active_pid: None,
            owner: if temporary { owner } else { None },
            dirty: false,
        };
        self.save(&s).map_err(|e| e.to_pg_error())?;
        self.slots.insert(name.to_owned(), s);
        Ok(())
    }

    pub fn drop_slot(&mut self, name: &str) -> Result<(), PgError> {
        let Some(s) = self.slots.get(name) else {
            return Err(PgError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("replication slot \"{name}\" does not exist"),
            ));
        };
        if let Some(pid) = s.active_pid {
            return Err(PgError::new(
                SqlState("55006"),
                format!("replication slot \"{name}\" is active for PID {pid}"),
            ));
        }
        if !s.temporary {
            let sdir = self.dir.join(name);
            fs::remove_dir_all(&sdir)
                .map_err(io_err(&sdir))
                .map_err(|e| e.to_pg_error())?;
            let _ = wal::segment::fsync_dir(&self.dir);
        }
        self.slots.remove(name);
        Ok(())
    }

    /// Marks the slot in use by `pid` (START_REPLICATION SLOT).
    pub fn acquire(&mut self, name: &str, pid: i32) -> Result<Lsn, PgError> {
        let Some(s) = self.slots.get_mut(name) else {
            return Err(PgError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("replication slot \"{name}\" does not exist"),
            ));
        };
        if s.lost {
            return Err(PgError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("can no longer get changes from replication slot \"{name}\""),
            )
            .with_detail(
                "This slot has been invalidated because it exceeded the maximum reserved size.",
            ));
        }
        if let Some(other) = s.active_pid
            && other != pid
        {
            return Err(PgError::new(
                SqlState("55006"),
                format!("replication slot \"{name}\" is active for PID {other}"),
            ));
        }
        s.active_pid = Some(pid);
        Ok(s.restart_lsn)
    }

    pub fn release(&mut self, name: &str) {
        if let Some(s) = self.slots.get_mut(name) {
            s.active_pid = None;
        }
        self.flush_dirty();
    }

    /// Drops the temporary slots `owner` created; releases slots active for `pid`.
    pub fn connection_ended(&mut self, owner: u64, pid: i32) {
        self.slots
            .retain(|_, s| !(s.temporary && s.owner == Some(owner)));
        for s in self.slots.values_mut() {
            if s.active_pid == Some(pid) {
                s.active_pid = None;
            }
        }
        self.flush_dirty();
    }

    /// The standby flushed up to `lsn` (PostgreSQL's `PhysicalConfirmReceivedLocation`).
    pub fn advance(&mut self, name: &str, lsn: Lsn) {
        if let Some(s) = self.slots.get_mut(name)
            && !s.lost
            && lsn > s.restart_lsn
        {
            s.restart_lsn = lsn;
            s.dirty = true;
        }
    }

    /// Saves slots whose `restart_lsn` moved (at checkpoints and when a walsender ends).
    pub fn flush_dirty(&mut self) {
        let dirty: Vec<String> = self
            .slots
            .values()
            .filter(|s| s.dirty)
            .map(|s| s.name.clone())
            .collect();
        for name in dirty {
            if let Some(s) = self.slots.get(&name).cloned() {
                match self.save(&s) {
                    Ok(()) => {
                        if let Some(s) = self.slots.get_mut(&name) {
                            s.dirty = false;
                        }
                    }
                    Err(e) => tracing::error!("{e}"),
                }
            }
        }
    }

    /// The oldest LSN the slots still need, given the current flush LSN and
    /// `max_slot_wal_keep_size` (`None` = unlimited). A slot further behind becomes lost
    /// (logged, persisted) and no longer counts.
    pub fn retention(&mut self, flush_lsn: Lsn, max_keep: Option<u64>) -> Option<Lsn> {
        let mut oldest: Option<Lsn> = None;
        let mut newly_lost = Vec::new();
        for s in self.slots.values_mut() {
            if s.lost || s.restart_lsn == Lsn::ZERO {
                continue;
            }
            if let Some(max) = max_keep
                && flush_lsn.distance_from(s.restart_lsn) > max
            {
                s.lost = true;
                s.dirty = true;
                newly_lost.push(s.name.clone());
                continue;
            }
            oldest = Some(oldest.map_or(s.restart_lsn, |o| o.min(s.restart_lsn)));
        }
        for name in &newly_lost {
            tracing::warn!(
                "invalidating replication slot \"{name}\": its restart_lsn is more than max_slot_wal_keep_size behind the WAL flush position {flush_lsn}"
            );
        }
        self.flush_dirty();
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persist_reload_lose() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut st = SlotStore::load(tmp.path());
        st.create("s1", false, Lsn(1000), None, 10).expect("create");
        st.create("t1", true, Lsn(500), Some(7), 10)
            .expect("create");
        assert!(st.create("s1", false, Lsn(0), None, 10).is_err());
        assert!(st.create("Bad-Name", false, Lsn(0), None, 10).is_err());
        st.advance("s1", Lsn(2000));
        assert_eq!(st.retention(Lsn(3000), None), Some(Lsn(500)));
        st.connection_ended(7, 1);
        let st2 = SlotStore::load(tmp.path());
        assert_eq!(st2.get("s1").expect("s1").restart_lsn, Lsn(2000));
        assert!(st2.get("t1").is_none());
        let mut st = st2;
        assert_eq!(st.retention(Lsn(10_000), Some(100)), None);
        assert!(st.get("s1").expect("s1").lost);
        assert_eq!(st.acquire("s1", 5).expect_err("lost").code.code(), "55000");
        let st3 = SlotStore::load(tmp.path());
        assert!(st3.get("s1").expect("s1").lost);
    }

    #[test]
    fn damaged_state_is_skipped() {
        let b = encode("abc", Lsn(5), false);
        assert_eq!(decode(&b), Some(("abc".into(), Lsn(5), false)));
        let mut bad = b.clone();
        bad[10] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&b[..5]), None);
    }
}
