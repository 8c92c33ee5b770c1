//! Helpers for tests that start real servers (used by the server and walreceiver test
//! suites; nothing in the server calls them).

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Test ports come from here: below Linux's ephemeral range (32768-60999 by default), so no
/// client connection's local port can take a test server's port between the pick and the
/// server's bind, or while the server restarts on it.
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// A port on 127.0.0.1 that is free now and that this process has not handed out before, so
/// tests running in parallel threads never share one (a server keeps its port across
/// restarts in a test, when it is briefly unbound).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    // Start at a place that differs between processes, so test binaries run one after
    // another do not all walk the same ports.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let first = (std::process::id().wrapping_mul(7919) ^ nanos) % span;
    for i in 0..span {
        let port = TEST_PORTS.start + ((first + i) % span) as u16;
        if handed.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
    panic!("no free test port in {TEST_PORTS:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_in_range_and_free() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        for p in ports {
            assert!(TEST_PORTS.contains(&p));
            std::net::TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}
