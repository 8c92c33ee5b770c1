//! Test-only failpoints: named places where a test can make the server pause or fail, so that
//! a `kill -9`, a stalled standby or a failed fsync lands exactly there (PostgreSQL's
//! injection points).
//!
//! Set `LOCKSTEP_FAILPOINTS=name=action[,name=action...]` in the server's environment, where
//! an action is `sleep(ms)` (pause the thread) or `error(n)` (from the n-th hit on, `fails`
//! says the operation must fail, e.g. to simulate a failed fsync). When the variable is
//! absent — always, outside tests — a check is one load of a cached empty table. Each hit is
//! logged on stderr, so a test can wait for the line before acting.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

enum Action {
    Sleep(Duration),
    /// Fail from this hit count on; counts hits.
    ErrorFrom(u64, AtomicU64),
}

fn table() -> &'static HashMap<String, Action> {
    static TABLE: OnceLock<HashMap<String, Action>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        if let Ok(spec) = std::env::var("LOCKSTEP_FAILPOINTS") {
            for item in spec.split(',') {
                let Some((name, action)) = item.split_once('=') else {
                    continue;
                };
                let action = action.trim();
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
        }
        m
    })
}

/// Pauses the calling thread if failpoint `name` is a `sleep` (blocking code only).
pub fn hit(name: &str) {
    let t = table();
    if t.is_empty() {
        return;
    }
    if let Some(Action::Sleep(d)) = t.get(name) {
        eprintln!(
            "failpoint \"{name}\" reached: sleeping {} ms",
            d.as_millis()
        );
        std::thread::sleep(*d);
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
