//! Fuzz target: the SQL entry points (`parse_batch` for the simple protocol, `prepare` for the
//! extended protocol) never panic, whatever the text. Run: `cargo fuzz run sql_parse -s none`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lockstep_fuzz::sql_entry(data);
});
