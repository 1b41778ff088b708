//! The HTTP/1.1 codec, pipelined (authplane_fuzz::http1).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::http1(data));
