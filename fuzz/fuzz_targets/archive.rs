//! Fuzz target `archive`: see `keytrail_fuzz::archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::archive(data));
