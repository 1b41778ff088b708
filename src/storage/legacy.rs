//! Snapshots of format 1 (an rkyv archive validated whole at open), read
//! only to convert them to the block format of `snapshot.rs` when a store
//! opens a data directory written before it (`store::recover`); the
//! writer is kept for that conversion's tests.
//!
//! ```text
//! header (64 bytes): magic "APSNAP\0\x01" | format u32 | shard u16 | shards u16
//!                    | hash version u32 | generation u64 | body length u64
//!                    | body crc32c u32 | entries u64 | reserved | header crc32c u32
//! body:              rkyv archive of `Body` (entries sorted by (table, key), and an
//!                    open-addressing hash index of entry positions)
//! ```
//!
//! Opening checks the header, the body's CRC and then the archive with
//! rkyv's validation, so a damaged or foreign file is refused, never misread.

use std::fs::File;
#[cfg(test)]
use std::io::Write;
use std::path::Path;

use rkyv::rancor;

use super::codec::{Reader, TableId};
#[cfg(test)]
use super::paced;
#[cfg(test)]
use crate::domain::shard::key_hash;

pub const SNAP_MAGIC: [u8; 8] = *b"APSNAP\0\x01";
pub const SNAP_FORMAT: u32 = 1;
pub const SNAP_HEADER_BYTES: usize = 64;

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct Entry {
    pub table: TableId,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Archived form read in place; built only by the tests' writer.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, rkyv::Archive, rkyv::Serialize)]
struct Body {
    entries: Vec<Entry>,
    /// Buckets (a power of two, at least twice the entries): entry
    /// position + 1, 0 for empty; linear probing from `bucket_of`.
    index: Vec<u32>,
}

/// Identity of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapHeader {
    pub format: u32,
    pub shard: u16,
    pub shards: u16,
    pub hash_version: u32,
    pub generation: u64,
    pub body_len: u64,
    pub body_crc: u32,
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an authplane snapshot (bad magic)")]
    NotASnapshot,
    #[error("file too short")]
    Truncated,
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("body checksum mismatch (the file is damaged)")]
    BodyChecksum,
    #[error("archive fails validation: {0}")]
    Archive(String),
    #[error("too many entries for one snapshot")]
    TooLarge,
}

impl SnapHeader {
    #[cfg(test)]
    pub fn encode(&self) -> [u8; SNAP_HEADER_BYTES] {
        let mut h = [0u8; SNAP_HEADER_BYTES];
        h[..8].copy_from_slice(&SNAP_MAGIC);
        h[8..12].copy_from_slice(&self.format.to_le_bytes());
        h[12..14].copy_from_slice(&self.shard.to_le_bytes());
        h[14..16].copy_from_slice(&self.shards.to_le_bytes());
        h[16..20].copy_from_slice(&self.hash_version.to_le_bytes());
        h[20..28].copy_from_slice(&self.generation.to_le_bytes());
        h[28..36].copy_from_slice(&self.body_len.to_le_bytes());
        h[36..40].copy_from_slice(&self.body_crc.to_le_bytes());
        h[40..48].copy_from_slice(&self.entries.to_le_bytes());
        let crc = crc32c::crc32c(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(bytes: &[u8]) -> Result<SnapHeader, SnapError> {
        let h = bytes.get(..SNAP_HEADER_BYTES).ok_or(SnapError::Truncated)?;
        if h[..8] != SNAP_MAGIC {
            return Err(SnapError::NotASnapshot);
        }
        let mut r = Reader::new(&h[8..]);
        let t = |_| SnapError::Truncated;
        let header = SnapHeader {
            format: r.u32().map_err(t)?,
            shard: r.u16().map_err(t)?,
            shards: r.u16().map_err(t)?,
            hash_version: r.u32().map_err(t)?,
            generation: r.u64().map_err(t)?,
            body_len: r.u64().map_err(t)?,
            body_crc: r.u32().map_err(t)?,
            entries: r.u64().map_err(t)?,
        };
        let crc = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
        if crc32c::crc32c(&h[..60]) != crc {
            return Err(SnapError::HeaderChecksum);
        }
        Ok(header)
    }
}

#[cfg(test)]
fn bucket_hash(table: TableId, key: &[u8]) -> u64 {
    // Decorrelated from shard placement (which uses key_hash % shards).
    let h = key_hash(key) ^ (u64::from(table) << 56) ^ 0x9e37_79b9_7f4a_7c15;
    h.rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Writes a snapshot of `entries` (sorted by (table, key), unique) to
/// `path`: the header says `identity` with the body's length and CRC. The
/// file is fsynced; the caller renames it into place.
///
/// With `pace_bytes_per_s`, the body goes to the disk in steps at that
/// rate, each written back before the next (`paced`), instead of all at
/// the final fsync: unpaced, the WAL's syncs waited up to 21 ms behind a
/// compaction's writeback on a virtio disk.
#[cfg(test)]
pub fn write(
    path: &Path,
    identity: SnapHeader,
    entries: Vec<Entry>,
    pace_bytes_per_s: Option<u64>,
) -> Result<SnapHeader, SnapError> {
    let n = entries.len();
    let buckets = (n.max(1) * 2).next_power_of_two();
    let mask = buckets - 1;
    let mut index = vec![0u32; buckets];
    for (pos, e) in entries.iter().enumerate() {
        let tag = u32::try_from(pos + 1).map_err(|_| SnapError::TooLarge)?;
        let mut b = (bucket_hash(e.table, &e.key) as usize) & mask;
        while index[b] != 0 {
            b = (b + 1) & mask;
        }
        index[b] = tag;
    }
    let body = rkyv::to_bytes::<rancor::Error>(&Body { entries, index })
        .map_err(|e| SnapError::Archive(e.to_string()))?;
    let header = SnapHeader {
        format: SNAP_FORMAT,
        body_len: body.len() as u64,
        body_crc: crc32c::crc32c(&body),
        entries: n as u64,
        ..identity
    };
    let mut f = File::create(path)?;
    f.write_all(&header.encode())?;
    paced::write_steps(
        &f,
        SNAP_HEADER_BYTES as u64,
        body.chunks(paced::STEP),
        pace_bytes_per_s,
    )?;
    f.sync_all()?;
    Ok(header)
}

/// An open, validated format-1 snapshot.
pub struct Snapshot {
    map: memmap2::Mmap,
    pub header: SnapHeader,
}

impl Snapshot {
    /// Maps and validates the snapshot at `path`.
    pub fn open(path: &Path) -> Result<Snapshot, SnapError> {
        let file = File::open(path)?;
        // SAFETY: snapshot files are written once (temp file, fsync, rename)
        // and never modified in place; the data directory is locked by this
        // process (LOCK), so no other authplane writes it while mapped.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let header = SnapHeader::decode(&map)?;
        let body = map.get(SNAP_HEADER_BYTES..).ok_or(SnapError::Truncated)?;
        if body.len() as u64 != header.body_len {
            return Err(SnapError::Truncated);
        }
        if crc32c::crc32c(body) != header.body_crc {
            return Err(SnapError::BodyChecksum);
        }
        rkyv::access::<ArchivedBody, rancor::Error>(body)
            .map_err(|e| SnapError::Archive(e.to_string()))?;
        Ok(Snapshot { map, header })
    }

    fn body(&self) -> &ArchivedBody {
        let bytes = self.map.get(SNAP_HEADER_BYTES..).unwrap_or_default();
        // SAFETY: these exact bytes passed `rkyv::access` (full validation)
        // in `open`, and the mapping is read-only and never changes.
        #[allow(unsafe_code)]
        unsafe {
            rkyv::access_unchecked::<ArchivedBody>(bytes)
        }
    }

    /// Every entry, in (table, key) order.
    pub fn iter(&self) -> impl Iterator<Item = (TableId, &[u8], &[u8])> {
        self.body()
            .entries
            .iter()
            .map(|e| (e.table, e.key.as_slice(), e.value.as_slice()))
    }
}
