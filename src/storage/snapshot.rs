//! A shard's snapshot: every live (table, key) → value at one generation,
//! as an rkyv archive, memory-mapped and read in place.
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
use std::io::Write;
use std::path::Path;

use rkyv::rancor;

use super::codec::{Reader, TableId};
use super::paced;
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

/// An open, validated snapshot, read in place through the mapping.
pub struct Snapshot {
    map: memmap2::Mmap,
    pub header: SnapHeader,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .finish()
    }
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

    /// The value of (table, key), borrowed from the mapping.
    pub fn get(&self, table: TableId, key: &[u8]) -> Option<&[u8]> {
        let body = self.body();
        let buckets = body.index.len();
        if buckets == 0 {
            return None;
        }
        let mask = buckets - 1;
        let mut b = (bucket_hash(table, key) as usize) & mask;
        for _ in 0..buckets {
            let tag = body.index.get(b)?.to_native();
            if tag == 0 {
                return None;
            }
            let e = body.entries.get(tag as usize - 1)?;
            if e.table == table && e.key.as_slice() == key {
                return Some(e.value.as_slice());
            }
            b = (b + 1) & mask;
        }
        None
    }

    /// Every entry, in (table, key) order.
    pub fn iter(&self) -> impl Iterator<Item = (TableId, &[u8], &[u8])> {
        self.body()
            .entries
            .iter()
            .map(|e| (e.table, e.key.as_slice(), e.value.as_slice()))
    }

    /// Entries of `table` with keys after `after` (all when None), in key
    /// order.
    pub fn range<'s>(
        &'s self,
        table: TableId,
        after: Option<&'s [u8]>,
    ) -> impl Iterator<Item = (&'s [u8], &'s [u8])> + 's {
        let entries = &self.body().entries;
        let start = entries.partition_point(|e| match after {
            Some(a) => (e.table, e.key.as_slice()) <= (table, a),
            None => e.table < table,
        });
        entries
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(move |e| e.table == table)
            .map(|e| (e.key.as_slice(), e.value.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.body().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SnapHeader {
        SnapHeader {
            format: SNAP_FORMAT,
            shard: 0,
            shards: 1,
            hash_version: 1,
            generation: 3,
            body_len: 0,
            body_crc: 0,
            entries: 0,
        }
    }

    fn entries(n: u32) -> Vec<Entry> {
        let mut v: Vec<Entry> = (0..n)
            .map(|i| Entry {
                table: (i % 3) as u8,
                key: format!("key{i:06}").into_bytes(),
                value: i.to_le_bytes().to_vec(),
            })
            .collect();
        v.sort_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
        v
    }

    #[test]
    fn a_paced_write_is_the_same_file() {
        let dir = std::env::temp_dir().join(format!("authplane-paced-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // About 3 MiB of body: several 1 MiB steps.
        let big: Vec<Entry> = (0..3000u32)
            .map(|i| Entry {
                table: 1,
                key: format!("key{i:06}").into_bytes(),
                value: vec![i as u8; 1000],
            })
            .collect();
        let (a, b) = (dir.join("a.rkyv"), dir.join("b.rkyv"));
        write(&a, identity(), big.clone(), None).unwrap();
        let started = crate::clock::now();
        write(&b, identity(), big, Some(64 << 20)).unwrap();
        // Three or more steps at 64 MiB/s take at least 2 step times.
        assert!(started.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let s = Snapshot::open(&b).unwrap();
        assert_eq!(
            s.get(1, b"key002999"),
            Some(vec![2999u32 as u8; 1000].as_slice())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_maps_and_finds_every_entry() {
        let dir = std::env::temp_dir().join(format!("authplane-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.rkyv");
        write(&path, identity(), entries(1000), None).unwrap();
        let s = Snapshot::open(&path).unwrap();
        assert_eq!(s.len(), 1000);
        assert_eq!(s.header.generation, 3);
        for i in 0..1000u32 {
            let key = format!("key{i:06}");
            assert_eq!(
                s.get((i % 3) as u8, key.as_bytes()),
                Some(i.to_le_bytes().as_slice())
            );
            assert_eq!(s.get(((i + 1) % 3) as u8, key.as_bytes()), None);
        }
        assert_eq!(s.iter().count(), 1000);

        // Damage anywhere is refused.
        let bytes = std::fs::read(&path).unwrap();
        for at in [0, 9, 30, SNAP_HEADER_BYTES + 5, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(Snapshot::open(&path).is_err(), "damage at {at} accepted");
        }
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Snapshot::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_snapshot_works() {
        let dir = std::env::temp_dir().join(format!("authplane-snap-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.rkyv");
        write(&path, identity(), Vec::new(), Some(1 << 20)).unwrap();
        let s = Snapshot::open(&path).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.get(0, b"x"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
