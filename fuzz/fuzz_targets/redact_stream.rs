//! Fuzz target `redact_stream`: see `keytrail_fuzz::redact_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::redact_stream(data));
