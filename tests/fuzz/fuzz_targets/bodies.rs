//! JSON request bodies applied to every table's rows (authplane_fuzz::bodies).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::bodies(data));
