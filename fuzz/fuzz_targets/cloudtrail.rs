//! Fuzz target `cloudtrail`: see `keytrail_fuzz::cloudtrail`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::cloudtrail(data));
