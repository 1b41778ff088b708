//! Stored rows of every table and the AAA's records (authplane_fuzz::rows).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::rows(data));
