//! Test-only failpoints: named places where a test can make the server pause or fail, so that
//! a `kill -9`, a stalled standby or a failed fsync lands exactly there (PostgreSQL's
//! injection points).
//!
//! Set `LOCKSTEP_FAILPOINTS=name=action[,name=action...]` in the server's environment, where
//! an action is `sleep(ms)` (pause the thread), `error(n)` (from the n-th hit on, `fails`
//! says the operation must fail, e.g. to simulate a failed fsync) or
//! `pause_while_exists(/path)` (wait while that file exists: a test creates the file to stall
//! e.g. a standby's WAL flush, and removes it to release the stall at run time). When the
//! variable is absent — always, outside tests — a check is one load of a cached empty table.
//! Each hit is logged on stderr, so a test can wait for the line before acting.
//!
//! A test that runs the code under test in its own process (no environment to set before
//! start) calls [`configure`] once, before the first check.
//!
//! Async code must not park its runtime thread in [`hit`]: it asks [`pause_file`] for the
//! file and polls it with its runtime's timer (see the walreceiver).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

enum Action {
    Sleep(Duration),
    /// Fail from this hit count on; counts hits.
    ErrorFrom(u64, AtomicU64),
    /// Wait while this file exists.
    PauseWhileExists(PathBuf),
}

static TABLE: OnceLock<HashMap<String, Action>> = OnceLock::new();

/// How often a paused failpoint looks for its file again: short enough that a released stall
/// ends promptly in a test, long enough to cost nothing while it waits.
pub const PAUSE_POLL_INTERVAL: Duration = Duration::from_millis(10);

fn parse_spec(spec: &str) -> HashMap<String, Action> {
    let mut m = HashMap::new();
    for item in spec.split(',') {
        let Some((name, action)) = item.split_once('=') else {
            continue;
        };
        let action = action.trim();
        if let Some(path) = action
            .strip_prefix("pause_while_exists(")
            .and_then(|r| r.strip_suffix(')'))
        {
            m.insert(
                name.trim().to_owned(),
                Action::PauseWhileExists(PathBuf::from(path.trim())),
            );
            continue;
        }
        parse_numeric(&mut m, name, action);
    }
    m
}

/// Installs failpoints from `spec` (the `LOCKSTEP_FAILPOINTS` syntax) instead of the
/// environment. Only before the first check: returns false if the table was already set up
/// (by the environment, an earlier call, or a first check).
pub fn configure(spec: &str) -> bool {
    let mut installed = false;
    TABLE.get_or_init(|| {
        installed = true;
        parse_spec(spec)
    });
    installed
}

fn table() -> &'static HashMap<String, Action> {
    TABLE.get_or_init(|| match std::env::var("LOCKSTEP_FAILPOINTS") {
        Ok(spec) => parse_spec(&spec),
        Err(_) => HashMap::new(),
    })
}

fn parse_numeric(m: &mut HashMap<String, Action>, name: &str, action: &str) {
    let arg = |prefix: &str| {
        action
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse::<u64>().ok())
    };
    if let Some(ms) = arg("sleep(") {
        m.insert(
            name.trim().to_owned(),
            Action::Sleep(Duration::from_millis(ms)),
        );
    } else if let Some(n) = arg("error(") {
        m.insert(
            name.trim().to_owned(),
            Action::ErrorFrom(n, AtomicU64::new(0)),
        );
    }
}

/// Pauses the calling thread if failpoint `name` is a `sleep` or a `pause_while_exists`
/// (blocking code only).
pub fn hit(name: &str) {
    let t = table();
    if t.is_empty() {
        return;
    }
    match t.get(name) {
        Some(Action::Sleep(d)) => {
            eprintln!(
                "failpoint \"{name}\" reached: sleeping {} ms",
                d.as_millis()
            );
            std::thread::sleep(*d);
        }
        Some(Action::PauseWhileExists(path)) if path.exists() => {
            eprintln!(
                "failpoint \"{name}\" reached: paused while {} exists",
                path.display()
            );
            while path.exists() {
                std::thread::sleep(PAUSE_POLL_INTERVAL);
            }
        }
        _ => {}
    }
}

/// The file a `pause_while_exists` failpoint `name` waits on, for async callers that poll it
/// with their own timer ([`PAUSE_POLL_INTERVAL`]); `None` if `name` is not such a failpoint.
pub fn pause_file(name: &str) -> Option<&'static Path> {
    let t = table();
    if t.is_empty() {
        return None;
    }
    match t.get(name) {
        Some(Action::PauseWhileExists(path)) => Some(path.as_path()),
        _ => None,
    }
}

/// Whether the operation at failpoint `name` must fail now: an `error(n)` failpoint that has
/// been hit at least `n` times, counting this one.
pub fn fails(name: &str) -> bool {
    let t = table();
    if t.is_empty() {
        return false;
    }
    match t.get(name) {
        Some(Action::ErrorFrom(n, hits)) => {
            let count = hits.fetch_add(1, Ordering::Relaxed) + 1;
            if count >= *n {
                eprintln!("failpoint \"{name}\" reached: failing (hit {count})");
                return true;
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        let m = parse_spec("a=sleep(5), b=error(2),c=pause_while_exists(/tmp/x y),d=bogus");
        assert!(matches!(m.get("a"), Some(Action::Sleep(d)) if d.as_millis() == 5));
        assert!(matches!(m.get("b"), Some(Action::ErrorFrom(2, _))));
        assert!(
            matches!(m.get("c"), Some(Action::PauseWhileExists(p)) if p == Path::new("/tmp/x y"))
        );
        assert!(!m.contains_key("d"));
    }
}
