//! Storage decoders on arbitrary bytes (what a damaged or hostile data
//! directory holds): a log's records, the batches in them, and the log
//! and snapshot headers. Never a panic; every batch and header that
//! decodes encodes back to what decodes the same.
#![no_main]

use authplane::storage::codec::{decode_batch, encode_batch};
use authplane::storage::snapshot::SnapHeader;
use authplane::storage::wal::{read_records, WalHeader};
use libfuzzer_sys::fuzz_target;

fn batch_round_trip(bytes: &[u8]) {
    if let Ok(ops) = decode_batch(bytes) {
        let mut out = Vec::new();
        if encode_batch(&ops, &mut out).is_ok() {
            assert_eq!(decode_batch(&out).ok(), Some(ops));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = WalHeader::decode(data) {
        assert_eq!(WalHeader::decode(&h.encode()), Ok(h));
    }
    if let Ok(h) = SnapHeader::decode(data) {
        assert_eq!(SnapHeader::decode(&h.encode()).ok(), Some(h));
    }
    let mut seen = 0usize;
    let _ = read_records(data, |r| {
        assert!(r.end <= data.len() && r.end > seen);
        seen = r.end;
        batch_round_trip(r.payload);
    });
    batch_round_trip(data);
});
