//! Test-only failpoints: named places where a test can make the server pause, so that a
//! `kill -9` or a standby stall lands exactly there (PostgreSQL's injection points in `wait`
//! mode).
//!
//! Set `LOCKSTEP_FAILPOINTS=name=sleep(ms)[,name=sleep(ms)...]` in the server's environment.
//! When the variable is absent — always, outside tests — `hit` is one relaxed load of a
//! cached "nothing configured" flag. Each hit is logged, so a test can wait for the log line
//! before acting.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

fn table() -> &'static HashMap<String, Duration> {
    static TABLE: OnceLock<HashMap<String, Duration>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        if let Ok(spec) = std::env::var("LOCKSTEP_FAILPOINTS") {
            for item in spec.split(',') {
                let Some((name, action)) = item.split_once('=') else {
                    continue;
                };
                let ms = action
                    .trim()
                    .strip_prefix("sleep(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(ms) = ms {
                    m.insert(name.trim().to_owned(), Duration::from_millis(ms));
                }
            }
        }
        m
    })
}

/// Pauses the calling thread if failpoint `name` is configured (blocking code only).
pub fn hit(name: &str) {
    let t = table();
    if t.is_empty() {
        return;
    }
    if let Some(d) = t.get(name) {
        tracing::info!(
            "failpoint \"{name}\" reached: sleeping {} ms",
            d.as_millis()
        );
        std::thread::sleep(*d);
    }
}
