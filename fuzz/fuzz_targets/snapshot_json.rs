//! Fuzz target `snapshot_json`: see `keytrail_fuzz::snapshot_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::snapshot_json(data));
