//! Fuzz target `git_object`: see `keytrail_fuzz::git_object`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::git_object(data));
