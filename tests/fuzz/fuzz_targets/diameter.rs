//! Diameter framing, AVPs and the RFC 6733 check (authplane_fuzz::diameter).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::diameter(data));
