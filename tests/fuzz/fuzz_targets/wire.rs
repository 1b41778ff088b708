//! Form parameters, JSON bodies, APDU answers, Identity headers, x5u URLs, TNAuthList, Cx identities (authplane_fuzz::wire).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::wire(data));
