//! A shard's snapshot: every live (table, key) → value at one generation,
//! in checksummed blocks, memory-mapped and read in place.
//!
//! ```text
//! header (64 bytes)  magic "APSNAP\0\x03" | format u32 | shard u16 | shards u16
//!                    | hash version u32 | generation u64 | entries u64 | blocks u64
//!                    | index offset u64 | page checksums' crc32c u32 | reserved
//!                    | header crc32c u32
//! data blocks        entries sorted by (table, key), about 4 KiB each
//! block index        32 bytes per block: the first 16 bytes of its first key
//!                    (table byte, then key, zero padded) | offset u64 | length u32
//!                    | crc32c u32
//! page checksums     crc32c u32 of each page of 128 index entries
//! page fences        the 16-byte prefix of each index page's first entry
//! ```
//!
//! An entry is `shared | rest length | rest | value length | value` (LEB128
//! lengths), its key being the table byte followed by the key, of which the
//! first `shared` bytes are the previous entry's in the same block (0 for a
//! block's first entry). Keys sharing an operator's IMSI prefix or an id's
//! high bytes so take a few bytes each.
//!
//! Opening reads the header, the page checksums and the page fences (20
//! bytes per 128 blocks, about 0.004 % of the file), so its time does not
//! grow with the population in any way that matters (about 350 KiB for
//! 100 M subscribers). A lookup finds its index page among the fences, then
//! its block within that one page: two 4 KiB pages of the index and one
//! block are all it touches, whatever the population. Each
//! index page and each block is checked against its CRC the first time it
//! is read (a bit per page and per block remembers it); a damaged one
//! answers [`SnapError::Damaged`] for the rows in it, never a wrong row.
//! [`Snapshot::check`] reads everything (`authplane data check`, and the
//! store's background scrub).
//!
//! Format 2 is format 3 without the page fences (and magic
//! "APSNAP\0\x02"): it is read as it is, searching the whole block index,
//! until a compaction rewrites it as format 3.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::codec::TableId;
use super::paced;

pub const SNAP_MAGIC: [u8; 8] = *b"APSNAP\0\x03";
/// The format written.
pub const SNAP_FORMAT: u32 = 3;
/// Format 2: no page fences.
const SNAP_MAGIC_2: [u8; 8] = *b"APSNAP\0\x02";
/// The formats read.
pub const SNAP_FORMATS_READ: [u32; 2] = [2, 3];
pub const SNAP_HEADER_BYTES: usize = 64;
/// A block is closed once the next entry would take it past this size.
pub const BLOCK_BYTES: usize = 4096;
const PREFIX: usize = 16;
const INDEX_ENTRY: usize = 32;
const PAGE_ENTRIES: usize = 128;
const PAGE_BYTES: usize = PAGE_ENTRIES * INDEX_ENTRY;

/// Identity and layout of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapHeader {
    pub format: u32,
    pub shard: u16,
    pub shards: u16,
    pub hash_version: u32,
    pub generation: u64,
    pub entries: u64,
    pub blocks: u64,
    pub index_offset: u64,
    pub pages_crc: u32,
}

impl SnapHeader {
    /// A header naming a shard and generation, its layout still unknown
    /// (for [`Writer::create`]).
    pub fn identity(shard: u16, shards: u16, hash_version: u32, generation: u64) -> SnapHeader {
        SnapHeader {
            format: SNAP_FORMAT,
            shard,
            shards,
            hash_version,
            generation,
            entries: 0,
            blocks: 0,
            index_offset: 0,
            pages_crc: 0,
        }
    }

    fn pages(&self) -> u64 {
        self.blocks.div_ceil(PAGE_ENTRIES as u64)
    }

    /// Bytes per index page after the index: its checksum, and from format
    /// 3 its fence.
    fn page_trailer(&self) -> u64 {
        if self.format >= 3 {
            4 + PREFIX as u64
        } else {
            4
        }
    }

    /// The file length this header describes.
    fn file_len(&self) -> Option<u64> {
        self.index_offset
            .checked_add(self.blocks.checked_mul(INDEX_ENTRY as u64)?)?
            .checked_add(self.pages().checked_mul(self.page_trailer())?)
    }

    pub fn encode(&self) -> [u8; SNAP_HEADER_BYTES] {
        let mut h = [0u8; SNAP_HEADER_BYTES];
        h[..8].copy_from_slice(if self.format == 2 {
            &SNAP_MAGIC_2
        } else {
            &SNAP_MAGIC
        });
        h[8..12].copy_from_slice(&self.format.to_le_bytes());
        h[12..14].copy_from_slice(&self.shard.to_le_bytes());
        h[14..16].copy_from_slice(&self.shards.to_le_bytes());
        h[16..20].copy_from_slice(&self.hash_version.to_le_bytes());
        h[20..28].copy_from_slice(&self.generation.to_le_bytes());
        h[28..36].copy_from_slice(&self.entries.to_le_bytes());
        h[36..44].copy_from_slice(&self.blocks.to_le_bytes());
        h[44..52].copy_from_slice(&self.index_offset.to_le_bytes());
        h[52..56].copy_from_slice(&self.pages_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(bytes: &[u8]) -> Result<SnapHeader, SnapError> {
        let h: &[u8; SNAP_HEADER_BYTES] = bytes
            .get(..SNAP_HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .ok_or(SnapError::Truncated)?;
        if h[..8] == super::legacy::SNAP_MAGIC {
            return Err(SnapError::Legacy);
        }
        let magic_format = match &h[..8] {
            m if m == SNAP_MAGIC => 3,
            m if m == SNAP_MAGIC_2 => 2,
            _ => return Err(SnapError::NotASnapshot),
        };
        let crc = u32::from_le_bytes(le(h, 60));
        if crc32c::crc32c(&h[..60]) != crc {
            return Err(SnapError::HeaderChecksum);
        }
        let format = u32::from_le_bytes(le(h, 8));
        if format != magic_format {
            return Err(SnapError::NotASnapshot);
        }
        Ok(SnapHeader {
            format,
            shard: u16::from_le_bytes(le(h, 12)),
            shards: u16::from_le_bytes(le(h, 14)),
            hash_version: u32::from_le_bytes(le(h, 16)),
            generation: u64::from_le_bytes(le(h, 20)),
            entries: u64::from_le_bytes(le(h, 28)),
            blocks: u64::from_le_bytes(le(h, 36)),
            index_offset: u64::from_le_bytes(le(h, 44)),
            pages_crc: u32::from_le_bytes(le(h, 52)),
        })
    }
}

/// `N` bytes of `h` from `at` (within the fixed header: never short).
fn le<const N: usize>(h: &[u8; SNAP_HEADER_BYTES], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = h.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Which part of a snapshot failed its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A data block, by number.
    Block(u64),
    /// A page of the block index, by number.
    IndexPage(u64),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Block(n) => write!(f, "block {n}"),
            Part::IndexPage(n) => write!(f, "index page {n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an authplane snapshot (bad magic)")]
    NotASnapshot,
    #[error("a snapshot of the earlier format 1 (it is converted when the store opens)")]
    Legacy,
    #[error("file too short, or longer than its header says")]
    Truncated,
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("the index's page checksums are damaged")]
    PageChecksums,
    #[error("{part} (bytes {offset}..{end}) fails its checksum: the rows in it cannot be read")]
    Damaged { part: Part, offset: u64, end: u64 },
    #[error("{part} is malformed: {what}")]
    Malformed { part: Part, what: &'static str },
    #[error("entries out of order: each key must follow the previous one")]
    OutOfOrder,
    #[error("a block would exceed 4 GiB")]
    TooLarge,
    #[error("snapshot conversion: {0}")]
    Conversion(String),
}

/// The composite key of (table, key): the table byte, then the key.
fn composite<'b>(
    table: TableId,
    key: &[u8],
    small: &'b mut [u8; 64],
    big: &'b mut Vec<u8>,
) -> &'b [u8] {
    if key.len() < small.len() {
        small[0] = table;
        small[1..=key.len()].copy_from_slice(key);
        &small[..=key.len()]
    } else {
        big.clear();
        big.push(table);
        big.extend_from_slice(key);
        big
    }
}

fn prefix_of(ck: &[u8]) -> [u8; PREFIX] {
    let mut p = [0u8; PREFIX];
    let n = ck.len().min(PREFIX);
    p[..n].copy_from_slice(&ck[..n]);
    p
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes one entry of a block at `*pos`: (shared, rest, value).
fn next_entry<'b>(block: &'b [u8], pos: &mut usize) -> Option<(usize, &'b [u8], &'b [u8])> {
    fn varint(b: &[u8], pos: &mut usize) -> Option<usize> {
        let mut v = 0usize;
        for shift in (0..35).step_by(7) {
            let byte = *b.get(*pos)?;
            *pos += 1;
            v |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let shared = varint(block, pos)?;
    let rest_len = varint(block, pos)?;
    let rest = block.get(*pos..pos.checked_add(rest_len)?)?;
    *pos += rest_len;
    let value_len = varint(block, pos)?;
    let value = block.get(*pos..pos.checked_add(value_len)?)?;
    *pos += value_len;
    Some((shared, rest, value))
}

/// Writes a snapshot as a stream of entries in (table, key) order, in
/// memory bounded by one block, one write step and the block index (32
/// bytes per 4 KiB block).
///
/// With `pace_bytes_per_s`, the file goes to the disk in steps at that
/// rate, each written back before the next (`paced`), instead of all at
/// the final fsync: unpaced, the WAL's syncs waited up to 21 ms behind a
/// compaction's writeback on a virtio disk.
pub struct Writer {
    file: File,
    header: SnapHeader,
    pace: Option<u64>,
    /// Bytes not yet written, from file offset `staged_at`.
    staged: Vec<u8>,
    staged_at: u64,
    block: Vec<u8>,
    block_prefix: [u8; PREFIX],
    prev: Vec<u8>,
    cur: Vec<u8>,
    index: Vec<u8>,
}

impl Writer {
    /// Creates `path` for a snapshot of `identity` (see
    /// [`SnapHeader::identity`]). The caller renames it into place after
    /// [`Writer::finish`].
    pub fn create(
        path: &Path,
        identity: SnapHeader,
        pace_bytes_per_s: Option<u64>,
    ) -> Result<Writer, SnapError> {
        let file = File::create(path)?;
        let mut staged = Vec::with_capacity(paced::STEP + BLOCK_BYTES);
        // The header is written last: until then the file is no snapshot.
        staged.resize(SNAP_HEADER_BYTES, 0);
        Ok(Writer {
            file,
            header: SnapHeader {
                format: SNAP_FORMAT,
                entries: 0,
                blocks: 0,
                index_offset: 0,
                pages_crc: 0,
                ..identity
            },
            pace: pace_bytes_per_s,
            staged,
            staged_at: 0,
            block: Vec::with_capacity(BLOCK_BYTES * 2),
            block_prefix: [0; PREFIX],
            prev: Vec::new(),
            cur: Vec::new(),
            index: Vec::new(),
        })
    }

    /// Appends (table, key) → value; keys must come in strictly increasing
    /// (table, key) order.
    pub fn push(&mut self, table: TableId, key: &[u8], value: &[u8]) -> Result<(), SnapError> {
        self.cur.clear();
        self.cur.push(table);
        self.cur.extend_from_slice(key);
        if self.header.entries > 0 && self.cur <= self.prev {
            return Err(SnapError::OutOfOrder);
        }
        let mut shared = if self.block.is_empty() {
            0
        } else {
            common_prefix(&self.prev, &self.cur)
        };
        let size = self.cur.len() - shared + value.len() + 15;
        if !self.block.is_empty() && self.block.len() + size > BLOCK_BYTES {
            self.close_block()?;
            shared = 0;
        }
        if self.block.is_empty() {
            self.block_prefix = prefix_of(&self.cur);
        }
        put_varint(&mut self.block, shared);
        put_varint(&mut self.block, self.cur.len() - shared);
        self.block.extend_from_slice(&self.cur[shared..]);
        put_varint(&mut self.block, value.len());
        self.block.extend_from_slice(value);
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.header.entries += 1;
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.staged_at + self.staged.len() as u64
    }

    fn close_block(&mut self) -> Result<(), SnapError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.block.len()).map_err(|_| SnapError::TooLarge)?;
        self.index.extend_from_slice(&self.block_prefix);
        self.index.extend_from_slice(&self.offset().to_le_bytes());
        self.index.extend_from_slice(&len.to_le_bytes());
        self.index
            .extend_from_slice(&crc32c::crc32c(&self.block).to_le_bytes());
        self.header.blocks += 1;
        let block = std::mem::take(&mut self.block);
        self.stage(&block)?;
        self.block = block;
        self.block.clear();
        Ok(())
    }

    fn stage(&mut self, bytes: &[u8]) -> Result<(), SnapError> {
        self.staged.extend_from_slice(bytes);
        if self.staged.len() >= paced::STEP {
            self.write_staged()?;
        }
        Ok(())
    }

    fn write_staged(&mut self) -> Result<(), SnapError> {
        paced::write_steps(
            &self.file,
            self.staged_at,
            std::iter::once(&self.staged[..]),
            self.pace,
        )?;
        self.staged_at += self.staged.len() as u64;
        self.staged.clear();
        Ok(())
    }

    /// Entries pushed so far.
    pub fn entries(&self) -> u64 {
        self.header.entries
    }

    /// Writes the index, the page checksums and fences, and the header, and
    /// fsyncs.
    pub fn finish(mut self) -> Result<SnapHeader, SnapError> {
        self.close_block()?;
        self.header.index_offset = self.offset();
        let index = std::mem::take(&mut self.index);
        // Each page's checksum, then each page's fence (its first entry's
        // key prefix), one checksum over both.
        let pages = index.len().div_ceil(PAGE_BYTES);
        let mut crcs = Vec::with_capacity(pages * (4 + PREFIX));
        for page in index.chunks(PAGE_BYTES) {
            crcs.extend_from_slice(&crc32c::crc32c(page).to_le_bytes());
        }
        for page in index.chunks(PAGE_BYTES) {
            crcs.extend_from_slice(&page[..PREFIX.min(page.len())]);
        }
        self.header.pages_crc = crc32c::crc32c(&crcs);
        for step in index.chunks(paced::STEP) {
            self.stage(step)?;
        }
        self.stage(&crcs)?;
        self.write_staged()?;
        self.file.write_all_at(&self.header.encode(), 0)?;
        self.file.sync_all()?;
        Ok(self.header)
    }
}

/// One entry of the block index.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    prefix: [u8; PREFIX],
    offset: u64,
    len: u32,
    crc: u32,
}

/// A bit per page or block: checked already.
struct Checked(Box<[AtomicU64]>);

impl Checked {
    fn new(n: u64) -> Checked {
        Checked((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
    }

    fn set(&self, i: u64) {
        if let Some(w) = self.0.get((i / 64) as usize) {
            w.fetch_or(1 << (i % 64), Ordering::Relaxed);
        }
    }
}

/// What a full read of a snapshot found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub blocks: u64,
    pub entries: u64,
    pub bytes: u64,
    /// The damaged parts, each with the reason.
    pub damaged: Vec<SnapError>,
    /// Every part was read (the check was not stopped).
    pub complete: bool,
}

/// An open snapshot, read in place through the mapping.
pub struct Snapshot {
    map: memmap2::Mmap,
    pub header: SnapHeader,
    checked_blocks: Checked,
    checked_pages: Checked,
    crcs_offset: u64,
    /// Where the page fences start (format 3; checked with the page
    /// checksums at open).
    fences_offset: Option<u64>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .finish()
    }
}

impl Snapshot {
    /// Maps the snapshot at `path`, checking its header, its length and the
    /// index's page checksums; blocks are checked when first read.
    pub fn open(path: &Path) -> Result<Snapshot, SnapError> {
        let file = File::open(path)?;
        // SAFETY: snapshot files are written once (temp file, fsync, rename)
        // and never modified in place; the data directory is locked by this
        // process (LOCK), so no other authplane writes it while mapped.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let header = SnapHeader::decode(&map)?;
        if header.file_len() != Some(map.len() as u64)
            || header.index_offset < SNAP_HEADER_BYTES as u64
        {
            return Err(SnapError::Truncated);
        }
        let crcs_offset = header.index_offset + header.blocks * INDEX_ENTRY as u64;
        let crcs = map
            .get(crcs_offset as usize..)
            .ok_or(SnapError::Truncated)?;
        if crc32c::crc32c(crcs) != header.pages_crc {
            return Err(SnapError::PageChecksums);
        }
        Ok(Snapshot {
            checked_blocks: Checked::new(header.blocks),
            checked_pages: Checked::new(header.pages()),
            map,
            header,
            crcs_offset,
            fences_offset: (header.format >= 3).then(|| crcs_offset + header.pages() * 4),
        })
    }

    /// Unmaps the snapshot, its pages dropped from this process in 64 MiB
    /// steps first. An munmap clears every page table entry of the mapping
    /// while it holds the process's memory-map lock for writing: for a
    /// 6.5 GB snapshot, measured, an executor that mapped memory then (a
    /// thread's stack, a large allocation) waited 364–456 ms. A step of
    /// `MADV_DONTNEED` holds that lock only for reading.
    pub fn release(self) {
        const STEP: usize = 64 << 20;
        let len = self.map.len();
        let mut at = 0;
        while at < len {
            let n = STEP.min(len - at);
            // SAFETY: the mapping is read-only and of a file that is never
            // changed in place (see `open`), and this is its last user (the
            // snapshot is consumed): dropping its pages only makes a later
            // read fault them in again from the file, and none follows.
            #[allow(unsafe_code)]
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, at, n)
            };
            at += n;
        }
    }

    fn bytes(&self, from: u64, len: u64) -> Option<&[u8]> {
        let from = usize::try_from(from).ok()?;
        self.map
            .get(from..from.checked_add(usize::try_from(len).ok()?)?)
    }

    fn check_page(&self, page: u64) -> Result<(), SnapError> {
        if self.checked_pages.get(page) {
            return Ok(());
        }
        let first = page * PAGE_ENTRIES as u64;
        let n = (self.header.blocks - first).min(PAGE_ENTRIES as u64);
        let offset = self.header.index_offset + first * INDEX_ENTRY as u64;
        let len = n * INDEX_ENTRY as u64;
        let part = Part::IndexPage(page);
        let damaged = || SnapError::Damaged {
            part,
            offset,
            end: offset + len,
        };
        let bytes = self.bytes(offset, len).ok_or_else(damaged)?;
        let want = self
            .bytes(self.crcs_offset + page * 4, 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(damaged)?;
        if crc32c::crc32c(bytes) != want {
            return Err(damaged());
        }
        self.checked_pages.set(page);
        Ok(())
    }

    fn index_entry(&self, i: u64) -> Result<IndexEntry, SnapError> {
        self.check_page(i / PAGE_ENTRIES as u64)?;
        let at = self.header.index_offset + i * INDEX_ENTRY as u64;
        let e: &[u8; INDEX_ENTRY] = self
            .bytes(at, INDEX_ENTRY as u64)
            .and_then(|b| b.try_into().ok())
            .ok_or(SnapError::Truncated)?;
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&e[..PREFIX]);
        let mut w8 = [0u8; 8];
        w8.copy_from_slice(&e[16..24]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&e[24..28]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&e[28..32]);
        Ok(IndexEntry {
            prefix,
            offset: u64::from_le_bytes(w8),
            len: u32::from_le_bytes(len),
            crc: u32::from_le_bytes(crc),
        })
    }

    /// Block `i`'s bytes, checked against its CRC on first use.
    fn block(&self, i: u64) -> Result<&[u8], SnapError> {
        let e = self.index_entry(i)?;
        let end = e.offset + u64::from(e.len);
        let damaged = || SnapError::Damaged {
            part: Part::Block(i),
            offset: e.offset,
            end,
        };
        if e.offset < SNAP_HEADER_BYTES as u64 || end > self.header.index_offset {
            return Err(damaged());
        }
        let bytes = self.bytes(e.offset, u64::from(e.len)).ok_or_else(damaged)?;
        if !self.checked_blocks.get(i) {
            if crc32c::crc32c(bytes) != e.crc {
                return Err(damaged());
            }
            self.checked_blocks.set(i);
        }
        Ok(bytes)
    }

    /// The (composite) first key of block `i`.
    fn first_key(&self, i: u64) -> Result<&[u8], SnapError> {
        let block = self.block(i)?;
        match next_entry(block, &mut 0) {
            Some((0, key, _)) => Ok(key),
            _ => Err(SnapError::Malformed {
                part: Part::Block(i),
                what: "its first entry is not whole",
            }),
        }
    }

    /// The blocks among which the first one whose prefix fails `pred` lies
    /// (prefixes ascend), from the page fences: the pages before the first
    /// fence failing `pred` pass, those from it fail (all blocks without
    /// fences).
    fn fenced(&self, pred: impl Fn(&[u8]) -> bool) -> (u64, u64) {
        let blocks = self.header.blocks;
        let pages = self.header.pages();
        let Some(fences) = self
            .fences_offset
            .and_then(|at| self.bytes(at, pages * PREFIX as u64))
        else {
            return (0, blocks);
        };
        let (mut lo, mut hi) = (0u64, pages);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = (mid as usize) * PREFIX;
            if fences.get(at..at + PREFIX).is_some_and(&pred) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let page = PAGE_ENTRIES as u64;
        (lo.saturating_sub(1) * page, (lo * page).min(blocks))
    }

    /// The last block whose first key is at most `ck` (None: `ck` is
    /// before every block).
    fn locate(&self, ck: &[u8]) -> Result<Option<u64>, SnapError> {
        let p = prefix_of(ck);
        // Blocks whose prefix is below p start below ck; above, above it.
        let (lo, hi) = self.fenced(|f| f < &p[..]);
        let below = self.partition(lo, hi, |e| Ok(e.prefix < p))?;
        let (lo, hi) = self.fenced(|f| f <= &p[..]);
        let upto = self.partition(below.max(lo), hi.max(below), |e| Ok(e.prefix <= p))?;
        // Equal prefixes: decided by the whole first keys.
        let mut lo = below;
        let mut hi = upto;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.first_key(mid)? <= ck {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// The first block in `[lo, hi)` whose index entry fails `pred` (all
    /// before it pass), as `partition_point`.
    fn partition(
        &self,
        mut lo: u64,
        mut hi: u64,
        pred: impl Fn(&IndexEntry) -> Result<bool, SnapError>,
    ) -> Result<u64, SnapError> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.index_entry(mid)?)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The value of (table, key), borrowed from the mapping; an error when
    /// the block that would hold it is damaged.
    pub fn get(&self, table: TableId, key: &[u8]) -> Result<Option<&[u8]>, SnapError> {
        let (mut small, mut big) = ([0u8; 64], Vec::new());
        let ck = composite(table, key, &mut small, &mut big);
        let Some(b) = self.locate(ck)? else {
            return Ok(None);
        };
        let block = self.block(b)?;
        let malformed = || SnapError::Malformed {
            part: Part::Block(b),
            what: "an entry is cut short",
        };
        // `matched`: bytes the previous key shares with ck. Keys ascend, so
        // a key sharing less than that is past ck; one sharing more is
        // still before it; only an equal share needs its bytes compared.
        let mut matched = 0usize;
        let mut pos = 0usize;
        while pos < block.len() {
            let (shared, rest, value) = next_entry(block, &mut pos).ok_or_else(malformed)?;
            if shared < matched {
                return Ok(None);
            }
            if shared > matched {
                continue;
            }
            let want = ck.get(matched..).unwrap_or_default();
            let l = common_prefix(rest, want);
            if l == rest.len() && l == want.len() {
                return Ok(Some(value));
            }
            if l == want.len() || (l < rest.len() && rest[l] > want[l]) {
                return Ok(None);
            }
            matched += l;
        }
        Ok(None)
    }

    /// A cursor at the first entry whose composite key is at least `ck`.
    fn seek(&self, ck: &[u8]) -> Result<Cursor<'_>, SnapError> {
        let mut c = Cursor::at(self, self.locate(ck)?.unwrap_or(0))?;
        loop {
            match c.next_entry()? {
                Some((k, _)) if k < ck => {}
                Some(_) => {
                    // Served again by the next call.
                    c.pending = true;
                    return Ok(c);
                }
                None => return Ok(c),
            }
        }
    }

    /// Every entry, in (table, key) order, as (composite key, value).
    pub fn cursor(&self) -> Result<Cursor<'_>, SnapError> {
        Cursor::at(self, 0)
    }

    /// Entries of `table` with keys after `after` (all when None), in key
    /// order.
    pub fn range<'s>(
        &'s self,
        table: TableId,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, &'s [u8]), SnapError>> + 's {
        let mut start = vec![table];
        start.extend_from_slice(after.unwrap_or_default());
        let skip_equal = after.is_some();
        let mut cursor = match self.seek(&start) {
            Ok(c) => Some(c),
            Err(e) => return RangeIter::Failed(Some(e)),
        };
        let mut first = true;
        RangeIter::Running(std::iter::from_fn(move || {
            let c = cursor.as_mut()?;
            loop {
                match c.next_entry() {
                    Err(e) => {
                        cursor = None;
                        return Some(Err(e));
                    }
                    Ok(None) => return None,
                    Ok(Some((k, v))) => {
                        if first && skip_equal && k == start.as_slice() {
                            first = false;
                            continue;
                        }
                        first = false;
                        if k.first() != Some(&table) {
                            return None;
                        }
                        return Some(Ok((k[1..].to_vec(), v)));
                    }
                }
            }
        }))
    }

    /// Entries in the snapshot.
    pub fn len(&self) -> usize {
        usize::try_from(self.header.entries).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.header.entries == 0
    }

    /// Size of the mapped file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Reads and checks every index page and block, `step` blocks at a
    /// time with `between` called after each step with the bytes read
    /// (a scrub's pacing; false stops the check, leaving `complete`
    /// false). Damaged parts are listed, not fatal.
    pub fn check(&self, step: u64, mut between: impl FnMut(u64) -> bool) -> CheckReport {
        let mut report = CheckReport::default();
        for page in 0..self.header.pages() {
            if let Err(e) = self.check_page(page) {
                report.damaged.push(e);
            }
        }
        let mut since = 0u64;
        for b in 0..self.header.blocks {
            match self.block(b) {
                Ok(bytes) => {
                    report.blocks += 1;
                    report.bytes += bytes.len() as u64;
                    since += bytes.len() as u64;
                    let mut pos = 0;
                    while pos < bytes.len() {
                        if next_entry(bytes, &mut pos).is_none() {
                            report.damaged.push(SnapError::Malformed {
                                part: Part::Block(b),
                                what: "an entry is cut short",
                            });
                            break;
                        }
                        report.entries += 1;
                    }
                }
                // Reported with its page above.
                Err(SnapError::Damaged {
                    part: Part::IndexPage(_),
                    ..
                }) => {}
                Err(e) => report.damaged.push(e),
            }
            if step > 0 && (b + 1) % step == 0 && !between(std::mem::take(&mut since)) {
                return report;
            }
        }
        between(since);
        report.complete = true;
        report
    }
}

enum RangeIter<I> {
    Running(I),
    Failed(Option<SnapError>),
}

impl<'s, I: Iterator<Item = Result<(Vec<u8>, &'s [u8]), SnapError>>> Iterator for RangeIter<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        match self {
            RangeIter::Running(i) => i.next(),
            RangeIter::Failed(e) => e.take().map(Err),
        }
    }
}

/// A key borrowed from a cursor and a value borrowed from the mapping.
pub type Pair<'k, 's> = (&'k [u8], &'s [u8]);

/// Reads entries in order across blocks, rebuilding each key.
pub struct Cursor<'s> {
    snap: &'s Snapshot,
    block: u64,
    bytes: &'s [u8],
    pos: usize,
    key: Vec<u8>,
    value: &'s [u8],
    /// The entry last read is returned again by the next call.
    pending: bool,
    failed: bool,
}

impl<'s> Cursor<'s> {
    fn at(snap: &'s Snapshot, block: u64) -> Result<Cursor<'s>, SnapError> {
        let mut c = Cursor {
            snap,
            block,
            bytes: &[],
            pos: 0,
            key: Vec::new(),
            value: &[],
            pending: false,
            failed: false,
        };
        c.load()?;
        Ok(c)
    }

    fn load(&mut self) -> Result<(), SnapError> {
        self.pos = 0;
        self.key.clear();
        self.bytes = if self.block < self.snap.header.blocks {
            self.snap.block(self.block)?
        } else {
            &[]
        };
        Ok(())
    }

    /// The next entry as (composite key, value); the key is borrowed until
    /// the next call. After an error, None.
    pub fn next_entry(&mut self) -> Result<Option<Pair<'_, 's>>, SnapError> {
        if self.failed {
            return Ok(None);
        }
        if self.pending {
            self.pending = false;
            return Ok(Some((&self.key, self.value)));
        }
        while self.pos >= self.bytes.len() {
            if self.block >= self.snap.header.blocks {
                return Ok(None);
            }
            self.block += 1;
            if let Err(e) = self.load() {
                self.failed = true;
                return Err(e);
            }
        }
        let part = Part::Block(self.block);
        let Some((shared, rest, value)) = next_entry(self.bytes, &mut self.pos) else {
            self.failed = true;
            return Err(SnapError::Malformed {
                part,
                what: "an entry is cut short",
            });
        };
        if shared > self.key.len() {
            self.failed = true;
            return Err(SnapError::Malformed {
                part,
                what: "a key shares more than its predecessor has",
            });
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(rest);
        self.value = value;
        Ok(Some((&self.key, value)))
    }
}

/// Writes `entries` (sorted by (table, key), unique) as a snapshot at
/// `path`: a convenience over [`Writer`] for tests and small tables.
pub fn write<'e>(
    path: &Path,
    identity: SnapHeader,
    entries: impl IntoIterator<Item = (TableId, &'e [u8], &'e [u8])>,
    pace_bytes_per_s: Option<u64>,
) -> Result<SnapHeader, SnapError> {
    let mut w = Writer::create(path, identity, pace_bytes_per_s)?;
    for (t, k, v) in entries {
        w.push(t, k, v)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SnapHeader {
        SnapHeader::identity(0, 1, 1, 3)
    }

    type Owned = (TableId, Vec<u8>, Vec<u8>);

    fn entries(n: u32) -> Vec<Owned> {
        let mut v: Vec<Owned> = (0..n)
            .map(|i| {
                (
                    (i % 3) as u8,
                    format!("key{i:06}").into_bytes(),
                    i.to_le_bytes().to_vec(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn borrowed(v: &[Owned]) -> impl Iterator<Item = (TableId, &[u8], &[u8])> {
        v.iter().map(|(t, k, v)| (*t, k.as_slice(), v.as_slice()))
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("authplane-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_paced_write_is_the_same_file() {
        let dir = temp("paced");
        // About 3 MiB: several 1 MiB steps.
        let big: Vec<Owned> = (0..3000u32)
            .map(|i| (1, format!("key{i:06}").into_bytes(), vec![i as u8; 1000]))
            .collect();
        let (a, b) = (dir.join("a.snap"), dir.join("b.snap"));
        write(&a, identity(), borrowed(&big), None).unwrap();
        let started = crate::clock::now();
        write(&b, identity(), borrowed(&big), Some(64 << 20)).unwrap();
        // Three or more steps at 64 MiB/s take at least 2 step times.
        assert!(started.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let s = Snapshot::open(&b).unwrap();
        assert_eq!(
            s.get(1, b"key002999").unwrap(),
            Some(vec![2999u32 as u8; 1000].as_slice())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_maps_and_finds_every_entry() {
        let dir = temp("snap");
        let path = dir.join("t.snap");
        let all = entries(20_000);
        write(&path, identity(), borrowed(&all), None).unwrap();
        let s = Snapshot::open(&path).unwrap();
        assert_eq!(s.len(), 20_000);
        assert!(s.header.blocks > 20, "{}", s.header.blocks);
        assert_eq!(s.header.generation, 3);
        for i in 0..20_000u32 {
            let key = format!("key{i:06}");
            assert_eq!(
                s.get((i % 3) as u8, key.as_bytes()).unwrap(),
                Some(i.to_le_bytes().as_slice())
            );
            assert_eq!(s.get(((i + 1) % 3) as u8, key.as_bytes()).unwrap(), None);
        }
        // Keys between, before and after the stored ones.
        for probe in ["", "k", "key", "key0000005", "key1", "kez", "zzz"] {
            for t in 0..4u8 {
                assert_eq!(s.get(t, probe.as_bytes()).unwrap(), None, "{t} {probe}");
            }
        }
        let report = s.check(64, |_| true);
        assert!(report.damaged.is_empty());
        assert_eq!(report.entries, 20_000);
        // Ranges: every table whole, and from inside.
        for t in 0..3u8 {
            let want: Vec<_> = all.iter().filter(|e| e.0 == t).collect();
            let got: Vec<_> = s.range(t, None).map(Result::unwrap).collect();
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(&want).all(|(g, w)| g.0 == w.1 && g.1 == w.2));
            let mid = &want[want.len() / 2].1;
            let after: Vec<_> = s.range(t, Some(mid)).map(Result::unwrap).collect();
            assert_eq!(after.len(), want.len() - want.len() / 2 - 1);
            assert_eq!(after[0].0, want[want.len() / 2 + 1].1);
            let between = [mid.as_slice(), b"5"].concat();
            let from_between: Vec<_> = s.range(t, Some(&between)).map(Result::unwrap).collect();
            assert_eq!(from_between, after);
        }
        assert_eq!(s.range(7, None).count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_keys_sharing_their_first_16_bytes_are_found() {
        let dir = temp("snap-long");
        let path = dir.join("l.snap");
        // Several index pages whose entries all share one prefix.
        let all: Vec<Owned> = (0..20_000u32)
            .map(|i| {
                (
                    4,
                    format!("a-common-prefix-much-longer-{i:08}").into_bytes(),
                    vec![7; 100],
                )
            })
            .collect();
        write(&path, identity(), borrowed(&all), None).unwrap();
        let s = Snapshot::open(&path).unwrap();
        assert!(s.header.pages() > 3, "{}", s.header.pages());
        for (t, k, v) in &all {
            assert_eq!(s.get(*t, k).unwrap(), Some(v.as_slice()));
        }
        assert_eq!(s.get(4, b"a-common-prefix-much-longer-").unwrap(), None);
        assert_eq!(
            s.get(4, b"a-common-prefix-much-longer-99999999").unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `bytes` (a format 3 snapshot) in format 2: without the page fences.
    fn as_format_2(bytes: &[u8]) -> Vec<u8> {
        let mut h = SnapHeader::decode(bytes).unwrap();
        let crcs_at = (h.index_offset + h.blocks * INDEX_ENTRY as u64) as usize;
        let crcs_end = crcs_at + h.pages() as usize * 4;
        h.format = 2;
        h.pages_crc = crc32c::crc32c(&bytes[crcs_at..crcs_end]);
        let mut out = bytes[..crcs_end].to_vec();
        out[..SNAP_HEADER_BYTES].copy_from_slice(&h.encode());
        out
    }

    #[test]
    fn both_formats_find_every_key_across_many_index_pages() {
        let dir = temp("snap-pages");
        let path = dir.join("p.snap");
        let mut all: Vec<Owned> = entries(60_000)
            .into_iter()
            .map(|(t, k, v)| (t, k, v.repeat(10)))
            .collect();
        all.sort();
        write(&path, identity(), borrowed(&all), None).unwrap();
        let old = dir.join("p2.snap");
        std::fs::write(&old, as_format_2(&std::fs::read(&path).unwrap())).unwrap();
        let (s3, s2) = (
            Snapshot::open(&path).unwrap(),
            Snapshot::open(&old).unwrap(),
        );
        assert_eq!((s3.header.format, s2.header.format), (3, 2));
        assert!(s3.header.pages() > 5, "{}", s3.header.pages());
        assert!(s3.fences_offset.is_some() && s2.fences_offset.is_none());
        for s in [&s3, &s2] {
            for (t, k, v) in &all {
                assert_eq!(s.get(*t, k).unwrap(), Some(v.as_slice()));
                // A key just past each: absent.
                let mut after = k.clone();
                after.push(b'0');
                assert_eq!(s.get(*t, &after).unwrap(), None);
            }
            for t in 0..4u8 {
                assert_eq!(s.get(t, b"").unwrap(), None);
                assert_eq!(s.get(t, b"zzz").unwrap(), None);
            }
            assert!(s.check(64, |_| true).damaged.is_empty());
        }
        // A damaged fence is damage to the page checksums' region: the
        // snapshot does not open.
        let mut bad = std::fs::read(&path).unwrap();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        std::fs::write(dir.join("bad.snap"), &bad).unwrap();
        assert!(matches!(
            Snapshot::open(&dir.join("bad.snap")),
            Err(SnapError::PageChecksums)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damage_in_any_block_is_an_error_for_its_rows_only() {
        let dir = temp("snap-damage");
        let path = dir.join("d.snap");
        let all = entries(6000);
        write(&path, identity(), borrowed(&all), None).unwrap();
        let good = std::fs::read(&path).unwrap();
        let h = Snapshot::open(&path).unwrap().header;
        let bad_path = dir.join("bad.snap");
        for b in 0..h.blocks {
            let e = Snapshot::open(&path).unwrap().index_entry(b).unwrap();
            let mut bad = good.clone();
            bad[(e.offset + u64::from(e.len) / 2) as usize] ^= 0x10;
            std::fs::write(&bad_path, &bad).unwrap();
            // Opening is cheap and succeeds.
            let s = Snapshot::open(&bad_path).unwrap();
            let report = s.check(0, |_| true);
            assert_eq!(report.damaged.len(), 1);
            assert!(
                matches!(report.damaged[0], SnapError::Damaged { part: Part::Block(n), .. } if n == b)
            );
            let s = Snapshot::open(&bad_path).unwrap();
            for (t, k, v) in &all {
                match s.get(*t, k) {
                    Ok(got) => assert_eq!(got, Some(v.as_slice())),
                    Err(SnapError::Damaged { part, .. }) => assert_eq!(part, Part::Block(b)),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        // A damaged index page or header.
        let mut bad = good.clone();
        bad[h.index_offset as usize + 40] ^= 1;
        std::fs::write(&bad_path, &bad).unwrap();
        let s = Snapshot::open(&bad_path).unwrap();
        assert!(matches!(
            s.get(0, b"key000000"),
            Err(SnapError::Damaged {
                part: Part::IndexPage(0),
                ..
            })
        ));
        for at in [0, 9, 30, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            std::fs::write(&bad_path, &bad).unwrap();
            assert!(
                Snapshot::open(&bad_path).is_err(),
                "damage at {at} accepted"
            );
        }
        std::fs::write(&bad_path, &good[..good.len() - 1]).unwrap();
        assert!(Snapshot::open(&bad_path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn out_of_order_pushes_are_refused() {
        let dir = temp("snap-order");
        let mut w = Writer::create(&dir.join("o.snap"), identity(), None).unwrap();
        w.push(1, b"b", b"").unwrap();
        assert!(matches!(w.push(1, b"a", b""), Err(SnapError::OutOfOrder)));
        assert!(matches!(w.push(1, b"b", b""), Err(SnapError::OutOfOrder)));
        assert!(matches!(w.push(0, b"z", b""), Err(SnapError::OutOfOrder)));
        w.push(2, b"", b"").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_snapshot_works() {
        let dir = temp("snap-empty");
        let path = dir.join("e.snap");
        write(&path, identity(), std::iter::empty(), Some(1 << 20)).unwrap();
        let s = Snapshot::open(&path).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.get(0, b"x").unwrap(), None);
        assert_eq!(s.range(0, None).count(), 0);
        assert!(s.cursor().unwrap().next_entry().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
