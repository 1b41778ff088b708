//! The AAA's decoders and rating (authplane_fuzz::aaa).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::aaa(data));
