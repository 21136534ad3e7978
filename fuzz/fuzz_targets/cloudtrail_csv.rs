//! Fuzz target `cloudtrail_csv`: see `keytrail_fuzz::cloudtrail_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::cloudtrail_csv(data));
