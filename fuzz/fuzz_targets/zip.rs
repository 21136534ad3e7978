//! Fuzz target `zip`: see `keytrail_fuzz::zip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::zip(data));
