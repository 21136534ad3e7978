//! Fuzz target `rule_yaml`: see `keytrail_fuzz::rule_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::rule_yaml(data));
