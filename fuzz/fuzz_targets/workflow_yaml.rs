//! Fuzz target `workflow_yaml`: see `keytrail_fuzz::workflow_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::workflow_yaml(data));
