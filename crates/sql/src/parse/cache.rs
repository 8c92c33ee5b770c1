//! A session's statement cache: parsed statements (and their plans) by text.
//!
//! Keys are exact statement text, or for normalised DML statements the normalised text plus
//! the literals' types (`normalize`). Values are `Template`s, which carry the parsed
//! statement and, once planned, its plan; a negative entry remembers a normalised shape that
//! did not parse, so it is not tried again. The cache is per session (no locking, no
//! cross-session invalidation); plans validate themselves against the catalog on use.
//!
//! Bound: `CAPACITY` entries, least recently used evicted first. Eviction scans the map
//! (O(n)), which only happens when a new shape arrives in a full cache.

use std::collections::HashMap;
use std::sync::Arc;

use super::Template;

/// Shapes kept per session. pgbench uses 7; applications with hundreds of distinct queries
/// re-parse the rarest ones. A parsed statement is a few kilobytes, so 256 entries cost about
/// a megabyte per session at most.
pub const CAPACITY: usize = 256;

#[derive(Clone, Debug)]
pub enum Entry {
    Template(Arc<Template>),
    /// A normalised shape that did not parse: use the exact text instead.
    NoNormalize,
}

#[derive(Debug, Default)]
pub struct StatementCache {
    map: HashMap<String, (Entry, u64)>,
    tick: u64,
}

impl StatementCache {
    pub fn get(&mut self, key: &str) -> Option<Entry> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(e, used)| {
            *used = tick;
            e.clone()
        })
    }

    pub fn insert(&mut self, key: String, entry: Entry) {
        self.tick += 1;
        if self.map.len() >= CAPACITY
            && !self.map.contains_key(&key)
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
        self.map.insert(key, (entry, self.tick));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}
