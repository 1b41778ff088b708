//! Log records, batches, log and snapshot headers (authplane_fuzz::storage).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authplane_fuzz::storage(data));
