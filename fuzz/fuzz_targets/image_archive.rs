//! Fuzz target `image_archive`: see `keytrail_fuzz::image_archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keytrail_fuzz::image_archive(data));
