//! Fuzz target: the replication decoders (both directions' CopyData messages, replication
//! commands, synchronous_standby_names, connection strings, timeline history files) never
//! panic, and what decodes survives a round trip. Run: `cargo fuzz run replication_message
//! -s none` (stable Rust); the seed corpus is `fuzz/corpus/replication_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    replication::fuzzing::decode_any(data);
});
