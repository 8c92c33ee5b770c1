//! Entry points shared by the cargo-fuzz target (`fuzz/fuzz_targets/replication_message.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`), so what the fuzzer explores and what
//! CI checks are the same code.
//!
//! Every decoder and parser of this crate sees the same bytes: both directions' CopyData
//! messages, the replication command parser, `synchronous_standby_names`, connection strings
//! and timeline history files. None may panic; whatever decodes must survive a round trip
//! (encode or render, then decode or parse again, and get an equal value).

use base::{Lsn, TimelineId};

use crate::commands::parse_command;
use crate::conninfo::ConnInfo;
use crate::messages::{PrimaryMessage, StandbyMessage};
use crate::syncrep::{SyncRepConfig, WaitMode, WalSenderSnapshot, evaluate};
use crate::timeline::TimelineHistory;
use crate::walsender::WalSndState;

/// Runs every decoder on `data`. Panics (only) when an invariant breaks, which is what the
/// fuzzer looks for.
pub fn decode_any(data: &[u8]) {
    match PrimaryMessage::decode_slice(data) {
        Ok(m) => {
            let again = m.encode();
            assert_eq!(PrimaryMessage::decode_slice(&again).as_ref(), Ok(&m));
            // Only the replyRequested byte may be normalised (any nonzero value is true).
            if !matches!(m, PrimaryMessage::Keepalive(_)) {
                assert_eq!(again, data);
            }
        }
        Err(e) => {
            let _ = e.to_pg_error();
        }
    }
    match StandbyMessage::decode(data) {
        Ok(m) => {
            let again = m.encode();
            assert_eq!(StandbyMessage::decode(&again), Ok(m));
            assert_eq!(again.len(), data.len());
        }
        Err(e) => {
            let _ = e.to_pg_error();
        }
    }

    let text = String::from_utf8_lossy(data);
    match parse_command(&text) {
        Ok(cmd) => {
            let rendered = cmd.to_string();
            assert_eq!(
                parse_command(&rendered).as_ref(),
                Ok(&cmd),
                "{text:?} rendered as {rendered:?}"
            );
        }
        Err(e) => assert!(!e.message.is_empty()),
    }

    match SyncRepConfig::parse(&text) {
        Ok(Some(config)) => {
            let rendered = config.to_string();
            assert_eq!(
                SyncRepConfig::parse(&rendered).as_ref(),
                Ok(&Some(config.clone())),
                "{text:?} rendered as {rendered:?}"
            );
            check_evaluate(&config);
        }
        Ok(None) => assert!(text.is_empty()),
        Err(e) => {
            let _ = e.to_pg_error();
        }
    }

    match ConnInfo::parse(&text) {
        Ok(info) => {
            let rendered = info.to_string();
            assert_eq!(
                ConnInfo::parse(&rendered).as_ref(),
                Ok(&info),
                "{text:?} rendered as {rendered:?}"
            );
            let _ = info.validate();
            let _ = info.hosts();
            let _ = info.connect_timeout();
        }
        Err(e) => {
            let _ = e.to_pg_error("primary_conninfo");
        }
    }

    // The first byte picks the history's own timeline, so both valid and invalid parents
    // get explored.
    let tli = TimelineId(u32::from(data.first().copied().unwrap_or(2)));
    match TimelineHistory::parse(tli, &text) {
        Ok(h) => {
            assert_eq!(TimelineHistory::parse(tli, &h.render()).as_ref(), Ok(&h));
            let segments = h.segments();
            for s in &segments {
                // A timeline left at the LSN it began owns no LSN at all.
                if s.end != Some(s.begin) {
                    assert_eq!(h.timeline_of(s.begin), s.timeline);
                }
                let _ = h.switch_point(s.timeline);
                let _ = h.check_continuation(s.timeline, s.begin);
                let _ = h.plan_start_replication(Some(s.timeline), s.begin, Lsn::MAX);
            }
        }
        Err(e) => {
            let _ = e.to_pg_error();
        }
    }
}

/// Evaluates `config` against a fixed set of walsenders and checks the synced positions are
/// confirmed by enough synchronous standbys.
fn check_evaluate(config: &SyncRepConfig) {
    let names = ["standby1", "STANDBY2", "s3", "first", "", "*"];
    let states = [
        WalSndState::Streaming,
        WalSndState::Catchup,
        WalSndState::Streaming,
        WalSndState::Stopping,
        WalSndState::Streaming,
        WalSndState::Backup,
    ];
    let walsenders: Vec<WalSenderSnapshot<'_>> = names
        .iter()
        .zip(states)
        .enumerate()
        .map(|(i, (name, state))| {
            let base = 100 * (i as u64 + 1);
            WalSenderSnapshot {
                slot: i,
                application_name: name,
                state,
                write_lsn: Lsn(base + 30),
                flush_lsn: Lsn(base + 20),
                apply_lsn: Lsn(if i == 2 { 0 } else { base + 10 }),
            }
        })
        .collect();
    let ev = evaluate(Some(config), &walsenders);
    assert_eq!(ev.standbys.len(), walsenders.len());
    let k = config.num_sync() as usize;
    for mode in WaitMode::ALL {
        if let Some(lsn) = ev.synced.get(mode) {
            let confirmed = walsenders
                .iter()
                .filter(|w| {
                    let at = match mode {
                        WaitMode::Write => w.write_lsn,
                        WaitMode::Flush => w.flush_lsn,
                        WaitMode::Apply => w.apply_lsn,
                    };
                    ev.is_sync(w.slot) && at >= lsn
                })
                .count();
            assert!(confirmed >= k);
        }
    }
}
