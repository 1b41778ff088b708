//! The write-ahead log of one shard: a header, then records.
//!
//! ```text
//! header (32 bytes): magic "APWAL\0\0\x01" | format u32 | shard u16 | shards u16
//!                    | hash version u32 | generation u64 | crc32c of the above u32
//! record:            length u32 | crc32c u32 (of kind and payload) | kind u8 | payload
//! ```
//!
//! A record is one atomic batch. Reading stops at the first record that is
//! incomplete or fails its CRC: everything from there on is a torn tail
//! (cut at recovery in the newest log; a refusal anywhere else).

use super::codec::{DecodeError, Reader};

pub const WAL_MAGIC: [u8; 8] = *b"APWAL\0\0\x01";
/// Version of the WAL layout; another version is refused.
pub const WAL_FORMAT: u32 = 1;
pub const WAL_HEADER_BYTES: usize = 32;
const RECORD_HEAD_BYTES: usize = 9;
/// Largest record payload accepted when reading.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Record kinds.
pub const KIND_BATCH: u8 = 1;

/// Identity of a log file: whose shard, under which placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    pub format: u32,
    pub shard: u16,
    pub shards: u16,
    pub hash_version: u32,
    pub generation: u64,
}

impl WalHeader {
    pub fn encode(&self) -> [u8; WAL_HEADER_BYTES] {
        let mut h = [0u8; WAL_HEADER_BYTES];
        h[..8].copy_from_slice(&WAL_MAGIC);
        h[8..12].copy_from_slice(&self.format.to_le_bytes());
        h[12..14].copy_from_slice(&self.shard.to_le_bytes());
        h[14..16].copy_from_slice(&self.shards.to_le_bytes());
        h[16..20].copy_from_slice(&self.hash_version.to_le_bytes());
        h[20..28].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32c::crc32c(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(bytes: &[u8]) -> Result<WalHeader, HeaderError> {
        let h = bytes
            .get(..WAL_HEADER_BYTES)
            .ok_or(HeaderError::Truncated)?;
        if h[..8] != WAL_MAGIC {
            return Err(HeaderError::NotAWal);
        }
        let mut r = Reader::new(&h[8..]);
        let parsed = (|| -> Result<_, DecodeError> {
            Ok((r.u32()?, r.u16()?, r.u16()?, r.u32()?, r.u64()?, r.u32()?))
        })()
        .map_err(|_| HeaderError::Truncated)?;
        let (format, shard, shards, hash_version, generation, crc) = parsed;
        if crc32c::crc32c(&h[..28]) != crc {
            return Err(HeaderError::Checksum);
        }
        Ok(WalHeader {
            format,
            shard,
            shards,
            hash_version,
            generation,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("file too short for a header")]
    Truncated,
    #[error("not an authplane WAL (bad magic)")]
    NotAWal,
    #[error("header checksum mismatch")]
    Checksum,
}

/// Appends one record to `out`.
pub fn encode_record(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut crc = crc32c::crc32c(&[kind]);
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// One record read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
    /// Offset just past this record.
    pub end: usize,
}

/// Where reading a log's records stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belonged to a whole, valid record, or to the zeros after
    /// the last one.
    Clean,
    /// From `offset` on, the bytes are not a valid record: `reason`.
    Damaged { offset: usize, reason: &'static str },
}

/// Reads the records of `body` (a log after its header), calling `each`
/// for every valid one, and says where and why it stopped. Logs are
/// pre-filled with zeros (so syncs never change the file's size): a tail
/// of zeros is the clean end; anything else that is not a record is damage.
pub fn read_records<'a>(body: &'a [u8], mut each: impl FnMut(Record<'a>)) -> Tail {
    let mut at = 0usize;
    while at < body.len() {
        let rest = &body[at..];
        if rest.iter().all(|&b| b == 0) {
            return Tail::Clean;
        }
        if rest.len() < RECORD_HEAD_BYTES {
            return Tail::Damaged {
                offset: at,
                reason: "incomplete record header",
            };
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_RECORD_BYTES {
            return Tail::Damaged {
                offset: at,
                reason: "record length out of range",
            };
        }
        let Some(kind_and_payload) = rest.get(8..RECORD_HEAD_BYTES + len) else {
            return Tail::Damaged {
                offset: at,
                reason: "incomplete record",
            };
        };
        if crc32c::crc32c(kind_and_payload) != crc {
            return Tail::Damaged {
                offset: at,
                reason: "record checksum mismatch",
            };
        }
        let end = at + RECORD_HEAD_BYTES + len;
        each(Record {
            kind: kind_and_payload[0],
            payload: &kind_and_payload[1..],
            end,
        });
        at = end;
    }
    Tail::Clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> WalHeader {
        WalHeader {
            format: WAL_FORMAT,
            shard: 1,
            shards: 2,
            hash_version: 1,
            generation: 7,
        }
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = header().encode();
        assert_eq!(WalHeader::decode(&h), Ok(header()));
        let mut bad = h;
        bad[13] ^= 1;
        assert_eq!(WalHeader::decode(&bad), Err(HeaderError::Checksum));
        assert_eq!(WalHeader::decode(&h[..10]), Err(HeaderError::Truncated));
        assert_eq!(WalHeader::decode(&[0u8; 32]), Err(HeaderError::NotAWal));
    }

    fn log() -> Vec<u8> {
        let mut body = Vec::new();
        for i in 0..5u8 {
            encode_record(KIND_BATCH, &vec![i; usize::from(i) * 3], &mut body);
        }
        body
    }

    #[test]
    fn a_zero_tail_is_a_clean_end_but_a_zero_gap_before_data_is_damage() {
        let mut body = log();
        let mut n = 0;
        let end = body.len();
        body.resize(end + 4096, 0);
        assert_eq!(read_records(&body, |_| n += 1), Tail::Clean);
        assert_eq!(n, 5);
        // A record that reached the disk after a gap that did not.
        body[end + 100] = 7;
        let mut n = 0;
        assert!(
            matches!(read_records(&body, |_| n += 1), Tail::Damaged { offset, .. } if offset == end)
        );
        assert_eq!(n, 5);
    }

    #[test]
    fn truncation_at_every_byte_keeps_exactly_the_whole_records() {
        let body = log();
        let mut ends = Vec::new();
        read_records(&body, |r| ends.push(r.end));
        assert_eq!(ends.len(), 5);
        for cut in 0..=body.len() {
            let mut n = 0;
            let tail = read_records(&body[..cut], |_| n += 1);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(n, whole, "cut at {cut}");
            // A cut record whose bytes so far are zeros reads as the zero fill.
            let last_end = ends
                .iter()
                .filter(|&&e| e <= cut)
                .max()
                .copied()
                .unwrap_or(0);
            let clean =
                cut == 0 || ends.contains(&cut) || body[last_end..cut].iter().all(|&b| b == 0);
            assert_eq!(tail == Tail::Clean, clean, "cut at {cut}: {tail:?}");
        }
    }

    #[test]
    fn every_flipped_bit_stops_reading_at_or_before_the_damage() {
        let body = log();
        let mut ends = vec![0];
        read_records(&body, |r| ends.push(r.end));
        for byte in 0..body.len() {
            for bit in 0..8 {
                let mut damaged = body.clone();
                damaged[byte] ^= 1 << bit;
                let mut read = Vec::new();
                let tail = read_records(&damaged, |r| read.push(r.end));
                // The record holding the damaged byte, and all after it, are dropped.
                let damaged_record_start = *ends.iter().filter(|&&e| e <= byte).max().unwrap();
                assert!(
                    read.iter().all(|&e| e <= damaged_record_start),
                    "byte {byte} bit {bit}"
                );
                assert!(
                    matches!(tail, Tail::Damaged { offset, .. } if offset <= damaged_record_start)
                );
            }
        }
    }
}
