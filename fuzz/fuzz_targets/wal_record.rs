//! Fuzz target: the WAL record header and payload decoders never panic, and what decodes
//! re-encodes to the same record. Run: `cargo fuzz run wal_record -s none` (stable Rust).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wal::fuzzing::decode_record_bytes(data);
});
