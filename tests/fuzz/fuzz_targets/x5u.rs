//! PEM chains and CRLs as x5u URLs and CRL distribution points answer them (authplane_fuzz::x5u).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::x5u(data));
