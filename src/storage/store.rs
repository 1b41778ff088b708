//! One shard's store: the mapped snapshot, the WAL and the overlay of
//! changes since the snapshot. Lives on its core (not `Send`); its I/O
//! thread owns the WAL file.
//!
//! Files in the shard's directory:
//!
//! ```text
//! table-<g>.snap   snapshot holding every change of the logs up to generation g
//!                  (`table-<g>.rkyv`: format 1, converted when the store opens)
//! wal-<g>.log      the changes made while generation g was active
//! *.tmp            a snapshot being written, or the next log being
//!                  zero-filled (`wal-next.tmp`); deleted at open
//! ```
//!
//! Recovery: the newest snapshot, then every log of a later generation in
//! order. A torn or corrupt tail of the newest log is cut (and logged with
//! file and offset); damage anywhere else is refused.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rustc_hash::FxBuildHasher;

use super::codec::{decode_batch, encode_batch, EncodeError, Op, TableId};
use super::legacy;
use super::paced;
use super::snapshot::{self, SnapError, SnapHeader, Snapshot, SNAP_FORMATS_READ};
use super::wal::{self, read_records, Tail, WalHeader, KIND_BATCH, WAL_FORMAT, WAL_HEADER_BYTES};

/// Whose data a store holds, under which placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub shard: u16,
    pub shards: u16,
    pub hash_version: u32,
}

/// Whether a commit waits for `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Replies wait until the change is on disk (group commit).
    Sync,
    /// Written without waiting or syncing: for benchmarks only.
    None,
}

/// Settings of a store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Past this many WAL bytes a new snapshot is written in the background.
    pub compact_wal_bytes: u64,
    /// Most commits not yet durable before further commits are refused.
    pub max_queued_commits: usize,
    /// Zeros a log is extended by ahead of its writes (see `prefill`).
    pub wal_prefill_bytes: u64,
    /// Rate of the background writes: a compaction's snapshot, the WAL's
    /// zero fill and the removal of replaced files (bytes per second; None:
    /// as fast as they can). See `paced`.
    pub background_write_bytes_per_s: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Sync,
            compact_wal_bytes: 64 * 1024 * 1024,
            max_queued_commits: 65_536,
            wal_prefill_bytes: WAL_PREFILL_BYTES,
            background_write_bytes_per_s: Some(128 << 20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}. Fix: {fix}")]
    Refused {
        path: PathBuf,
        message: String,
        fix: &'static str,
    },
    #[error("snapshot {path}: {source}")]
    Snapshot { path: PathBuf, source: SnapError },
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("the write queue is full")]
    Busy,
    #[error("writes failed on this shard ({0}); it serves reads only until restarted")]
    Failed(String),
    #[error("the store has stopped")]
    Stopped,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Heap and table overhead of an overlay entry beyond its key and value
/// (two boxes, the slot, the hash table's share): an estimate for the
/// compaction trigger.
const SLOT_OVERHEAD_BYTES: usize = 64;

/// One overlay entry: the value (None: deleted) and the commit that set it.
#[derive(Debug, Clone)]
struct Slot {
    value: Option<Box<[u8]>>,
    lsn: u64,
}

/// Changes since the snapshot, by table then key: hashed for point reads,
/// with each table's keys also kept in order, so a scan reads only the
/// keys it returns (a new key costs one ordered insert; a changed one
/// nothing more).
#[derive(Debug, Default)]
pub struct Overlay {
    tables: Vec<HashMap<Box<[u8]>, Slot, FxBuildHasher>>,
    order: Vec<std::collections::BTreeSet<Box<[u8]>>>,
}

impl Overlay {
    /// An empty overlay whose tables have room for as many keys as this
    /// one's, so that the changes after a compaction starts do not grow
    /// their tables through every size again. Measured at 100M under load:
    /// growing a table past 917k keys on the core (a rehash into 2M new
    /// buckets, their pages faulted in while the new snapshot filled the
    /// page cache) stalled both executors 167–200 ms.
    fn sized_like(&self) -> Overlay {
        Overlay {
            tables: self
                .tables
                .iter()
                .map(|t| HashMap::with_capacity_and_hasher(t.len(), FxBuildHasher))
                .collect(),
            order: self.order.iter().map(|_| Default::default()).collect(),
        }
    }

    fn table(&self, t: TableId) -> Option<&HashMap<Box<[u8]>, Slot, FxBuildHasher>> {
        self.tables.get(usize::from(t))
    }

    fn get(&self, t: TableId, key: &[u8]) -> Option<&Slot> {
        self.table(t)?.get(key)
    }

    fn get_mut(&mut self, t: TableId, key: &[u8]) -> Option<&mut Slot> {
        self.tables.get_mut(usize::from(t))?.get_mut(key)
    }

    /// Sets (table `t`, `key`) to `slot`.
    fn insert(&mut self, t: usize, key: Box<[u8]>, slot: Slot) {
        if self.tables.len() <= t {
            self.tables.resize_with(t + 1, HashMap::default);
        }
        if self.order.len() <= t {
            self.order.resize_with(t + 1, Default::default);
        }
        let (Some(table), Some(order)) = (self.tables.get_mut(t), self.order.get_mut(t)) else {
            return;
        };
        match table.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.insert(slot);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                order.insert(e.key().clone());
                e.insert(slot);
            }
        }
    }

    /// Table `t`'s changes after `after` (all without), in key order:
    /// each key with its value (None: deleted).
    fn range<'a>(
        &'a self,
        t: TableId,
        after: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        use std::ops::Bound;
        let t = usize::from(t);
        let table = self.tables.get(t);
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.order
            .get(t)
            .into_iter()
            .flat_map(move |o| o.range::<[u8], _>((lower, Bound::Unbounded)))
            .filter_map(move |k| table?.get(k).map(|s| (&**k, s.value.as_deref())))
    }

    fn apply(&mut self, op: &Op, lsn: u64) {
        let value = match op {
            Op::Put { value, .. } => Some(value.clone().into_boxed_slice()),
            Op::Delete { .. } => None,
        };
        self.insert(
            usize::from(op.table()),
            op.key().into(),
            Slot { value, lsn },
        );
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts a value offline (by a command, not a request), moving key and
    /// value in.
    pub fn put_offline(&mut self, table: TableId, key: Vec<u8>, value: Vec<u8>) {
        self.insert(
            usize::from(table),
            key.into_boxed_slice(),
            Slot {
                value: Some(value.into_boxed_slice()),
                lsn: 0,
            },
        );
    }

    /// The value of (table, key) if the overlay changed it: `Some(None)`
    /// for a deletion.
    pub fn lookup(&self, table: TableId, key: &[u8]) -> Option<Option<&[u8]>> {
        self.get(table, key).map(|s| s.value.as_deref())
    }

    /// Every key and its final value (None: deleted).
    pub fn values(&self) -> impl Iterator<Item = (TableId, &[u8], Option<&[u8]>)> {
        self.entries().map(|(t, k, s)| (t, k, s.value.as_deref()))
    }

    fn entries(&self) -> impl Iterator<Item = (TableId, &[u8], &Slot)> {
        self.tables.iter().enumerate().flat_map(|(t, m)| {
            m.iter()
                .map(move |(k, s)| (u8::try_from(t).unwrap_or(u8::MAX), &**k, s))
        })
    }
}

/// What the I/O thread reports back to the core.
#[derive(Debug)]
enum IoEvent {
    /// Every commit up to this LSN is durable.
    Durable(u64),
    /// Writing failed; commits from this LSN on are not durable.
    Failed { from_lsn: u64, error: String },
}

/// Requests to the I/O thread.
enum IoRequest {
    Append { lsn: u64, record: Vec<u8> },
    Roll { generation: u64 },
    Stop,
}

/// Commit bookkeeping on the core: which LSN is durable, who waits.
#[derive(Debug, Default)]
struct Progress {
    durable: Cell<u64>,
    failed: RefCell<Option<(u64, String)>>,
    waiters: RefCell<VecDeque<(u64, Waker)>>,
}

impl Progress {
    fn advance(&self, lsn: u64) {
        if lsn > self.durable.get() {
            self.durable.set(lsn);
        }
        let mut w = self.waiters.borrow_mut();
        while w.front().is_some_and(|(l, _)| *l <= lsn) {
            if let Some((_, waker)) = w.pop_front() {
                waker.wake();
            }
        }
    }

    fn fail(&self, from_lsn: u64, error: String) {
        *self.failed.borrow_mut() = Some((from_lsn, error));
        for (_, w) in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Resolves when commit `lsn` is durable.
struct WaitDurable {
    progress: Rc<Progress>,
    lsn: u64,
    registered: bool,
}

impl Future for WaitDurable {
    type Output = Result<(), StoreError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.progress.durable.get() >= self.lsn {
            return Poll::Ready(Ok(()));
        }
        if let Some((from, e)) = &*self.progress.failed.borrow() {
            if *from <= self.lsn {
                return Poll::Ready(Err(StoreError::Failed(e.clone())));
            }
        }
        if !self.registered {
            let lsn = self.lsn;
            let mut w = self.progress.waiters.borrow_mut();
            // LSNs are issued in order, so the queue stays sorted.
            let at = w.partition_point(|(l, _)| *l <= lsn);
            w.insert(at, (lsn, cx.waker().clone()));
            drop(w);
            self.registered = true;
        } else {
            let lsn = self.lsn;
            for (l, w) in self.progress.waiters.borrow_mut().iter_mut() {
                if *l == lsn {
                    w.clone_from(cx.waker());
                }
            }
        }
        Poll::Pending
    }
}

/// Resolves when a change is durable (at once when nothing is pending or
/// the store does not wait for syncs).
#[must_use = "a change is durable only once this resolves"]
pub struct Durable {
    wait: Option<WaitDurable>,
}

impl Future for Durable {
    type Output = Result<(), StoreError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.wait {
            Some(w) => Pin::new(w).poll(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A key and its value, copied out of the store.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A snapshot entry in a scan: the key rebuilt, the value in the mapping.
type Based<'s> = (Vec<u8>, &'s [u8]);

/// What a backup copies of a store ([`ShardStore::hold`]).
#[derive(Debug, Clone)]
pub struct Held {
    /// The newest snapshot and the logs after it.
    pub files: Vec<PathBuf>,
    /// The active log and the end of its records at the hold: the copy
    /// takes that many bytes of it.
    pub active: (PathBuf, u64),
    /// The newest change at the hold.
    pub last_lsn: u64,
}

/// The background check of the mapped snapshot (a pass when the store
/// opens and after each compaction, at the background rate), and the
/// reads refused for damage: `/metrics` shows them.
#[derive(Debug, Default)]
pub struct ScrubState {
    /// Generation of the snapshot mapped now; a pass over an older one stops.
    pub generation: AtomicU64,
    /// Bytes of blocks checked by this pass so far.
    pub checked_bytes: AtomicU64,
    /// Bytes of blocks in the mapped snapshot.
    pub snapshot_bytes: AtomicU64,
    /// Damaged parts the last complete pass found.
    pub damaged: AtomicU64,
    /// Complete passes.
    pub passes: AtomicU64,
    /// Reads refused because their block is damaged.
    pub read_errors: AtomicU64,
}

/// A compaction under way: the frozen changes being merged into a new
/// snapshot.
#[derive(Debug)]
struct Compaction {
    frozen: Arc<Overlay>,
}

/// One shard's store.
pub struct ShardStore {
    dir: PathBuf,
    identity: Identity,
    options: StoreOptions,
    snapshot: RefCell<Option<Arc<Snapshot>>>,
    overlay: RefCell<Overlay>,
    compaction: RefCell<Option<Compaction>>,
    /// Backups copying this store's files: no compaction starts while
    /// one does (it would roll the log and remove files being copied).
    holds: Cell<u32>,
    next_lsn: Cell<u64>,
    /// Generation of the active log.
    generation: Cell<u64>,
    wal_bytes: Cell<u64>,
    /// Memory that unlogged puts added to the overlay (new keys) since the
    /// last compaction: it counts toward the compaction threshold like
    /// the log, so the overlay stays bounded without log growth.
    unlogged_bytes: Cell<u64>,
    progress: Rc<Progress>,
    /// Records committed this tick, handed to the I/O thread as one
    /// message by the pump (after every task already ready on the core).
    pending: RefCell<Vec<u8>>,
    pending_lsn: Cell<u64>,
    flush_waker: RefCell<Option<Waker>>,
    io_tx: std::sync::mpsc::Sender<IoRequest>,
    io_events: async_channel::Receiver<IoEvent>,
    io_thread: RefCell<Option<std::thread::JoinHandle<()>>>,
    compacted: async_channel::Sender<Result<(u64, Arc<Snapshot>), String>>,
    compacted_rx: async_channel::Receiver<Result<(u64, Arc<Snapshot>), String>>,
    scrub: Arc<ScrubState>,
}

impl std::fmt::Debug for ShardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardStore")
            .field("dir", &self.dir)
            .field("identity", &self.identity)
            .finish()
    }
}

/// What recovery found, for logs and `data check`.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub snapshot_generation: Option<u64>,
    pub snapshot_entries: u64,
    pub logs: Vec<LogReport>,
}

#[derive(Debug, Clone)]
pub struct LogReport {
    pub path: PathBuf,
    pub records: u64,
    /// Offset just past the last good record.
    pub good_end: u64,
    /// Why reading stopped early, if it did.
    pub damage: Option<&'static str>,
}

fn table_path(dir: &Path, g: u64) -> PathBuf {
    dir.join(format!("table-{g:016}.snap"))
}

fn legacy_path(dir: &Path, g: u64) -> PathBuf {
    dir.join(format!("table-{g:016}.rkyv"))
}

/// Rewrites the format-1 snapshot of generation `g` in the block format
/// (same generation), then removes it. Run once, when a store opens a
/// data directory written by an earlier version.
fn convert_legacy(dir: &Path, identity: Identity, g: u64) -> Result<(), StoreError> {
    let old = legacy_path(dir, g);
    let snap_err = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Snapshot { path, source }
    };
    let legacy = legacy::Snapshot::open(&old).map_err(|e| StoreError::Snapshot {
        path: old.clone(),
        source: SnapError::Conversion(e.to_string()),
    })?;
    let h = legacy.header;
    if h.shard != identity.shard || h.shards != identity.shards || h.generation != g {
        return Err(StoreError::Refused {
            path: old,
            message: format!(
                "format-1 snapshot of shard {}/{} (generation {}); this server is shard {}/{}",
                h.shard, h.shards, h.generation, identity.shard, identity.shards
            ),
            fix: "start with the --cores the data was written with, or restore the right data directory",
        });
    }
    tracing::info!(file = %old.display(), entries = h.entries, "converting a format-1 snapshot");
    let tmp = dir.join(format!("table-{g:016}.snap.tmp"));
    let header = SnapHeader::identity(h.shard, h.shards, h.hash_version, g);
    snapshot::write(&tmp, header, legacy.iter(), None).map_err(snap_err(&tmp))?;
    let path = table_path(dir, g);
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    drop(legacy);
    std::fs::remove_file(&old).map_err(io_err(&old))?;
    sync_dir(dir)
}

fn wal_path(dir: &Path, g: u64) -> PathBuf {
    dir.join(format!("wal-{g:016}.log"))
}

/// The generations of the files named `prefix-<g>.suffix` in `dir`.
fn generations(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(g) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(g);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The state found on disk, before the store starts writing.
pub struct Recovered {
    pub snapshot: Option<Arc<Snapshot>>,
    pub overlay: Overlay,
    /// Generation of the log to append to, and its length (0: the log does
    /// not exist yet).
    pub generation: u64,
    pub wal_len: u64,
    pub report: RecoveryReport,
}

/// Reads a shard directory: newest snapshot, then later logs. With
/// `repair`, a torn tail of the newest log is cut off the file; without,
/// the directory is only read.
pub fn recover(dir: &Path, identity: Identity, repair: bool) -> Result<Recovered, StoreError> {
    if repair {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let mut report = RecoveryReport::default();
    let mut tables = generations(dir, "table-", ".snap")?;
    if let Some(&g) = generations(dir, "table-", ".rkyv")?.last() {
        if tables.last().is_none_or(|&t| t < g) {
            if !repair {
                return Err(StoreError::Refused {
                    path: legacy_path(dir, g),
                    message: "a format-1 snapshot, not yet converted".into(),
                    fix: "start the server once (or run `authplane data compact`): it converts the snapshot",
                });
            }
            convert_legacy(dir, identity, g)?;
            tables.push(g);
        }
    }
    let snapshot = match tables.last() {
        Some(&g) => {
            let path = table_path(dir, g);
            let s = Snapshot::open(&path).map_err(|source| StoreError::Snapshot {
                path: path.clone(),
                source,
            })?;
            let h = s.header;
            if !SNAP_FORMATS_READ.contains(&h.format)
                || h.shard != identity.shard
                || h.shards != identity.shards
                || h.hash_version != identity.hash_version
                || h.generation != g
            {
                return Err(StoreError::Refused {
                    path,
                    message: format!(
                        "snapshot is format {} of shard {}/{} under hash version {} (generation {}); this server reads formats {SNAP_FORMATS_READ:?}, shard {}/{}, hash version {}",
                        h.format, h.shard, h.shards, h.hash_version, h.generation,
                        identity.shard, identity.shards, identity.hash_version
                    ),
                    fix: "start with the --cores the data was written with, or restore the right data directory",
                });
            }
            report.snapshot_generation = Some(g);
            report.snapshot_entries = h.entries;
            Some(Arc::new(s))
        }
        None => None,
    };
    let base = report.snapshot_generation.unwrap_or(0);
    let logs: Vec<u64> = generations(dir, "wal-", ".log")?
        .into_iter()
        .filter(|&g| g > base)
        .collect();
    let mut overlay = Overlay::default();
    // The newest log, when it is usable for appending: (generation, length).
    let mut append_to = None;
    for (i, &g) in logs.iter().enumerate() {
        let newest = i + 1 == logs.len();
        let path = wal_path(dir, g);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_err(&path))?;
        let header = match WalHeader::decode(&bytes) {
            Ok(h) => h,
            // A log whose header never reached the disk holds no commits.
            Err(wal::HeaderError::Truncated) if newest && repair => {
                tracing::warn!(file = %path.display(), "log has no complete header; recreating it");
                let _ = std::fs::remove_file(&path);
                continue;
            }
            Err(e) => {
                return Err(StoreError::Refused {
                    path,
                    message: format!("bad log header: {e}"),
                    fix: "restore the data directory from a backup",
                })
            }
        };
        if header.format != WAL_FORMAT
            || header.shard != identity.shard
            || header.shards != identity.shards
            || header.hash_version != identity.hash_version
            || header.generation != g
        {
            return Err(StoreError::Refused {
                path,
                message: format!(
                    "log is format {} of shard {}/{} under hash version {} (generation {}); this server is format {WAL_FORMAT}, shard {}/{}, hash version {}",
                    header.format, header.shard, header.shards, header.hash_version,
                    header.generation, identity.shard, identity.shards, identity.hash_version
                ),
                fix: "start with the --cores the data was written with, or restore the right data directory",
            });
        }
        let body = &bytes[WAL_HEADER_BYTES..];
        let mut records = 0u64;
        let mut bad_batch = None;
        let mut good_end = 0usize;
        let tail = read_records(body, |r| {
            if bad_batch.is_some() {
                return;
            }
            if r.kind != KIND_BATCH {
                bad_batch = Some((good_end, "unknown record kind"));
                return;
            }
            match decode_batch(r.payload) {
                Ok(ops) => {
                    for op in &ops {
                        overlay.apply(op, 0);
                    }
                    records += 1;
                    good_end = r.end;
                }
                Err(_) => bad_batch = Some((good_end, "record does not decode")),
            }
        });
        let damage = match (bad_batch, tail) {
            (Some((offset, reason)), _) => Some((offset, reason)),
            (None, Tail::Damaged { offset, reason }) => Some((offset, reason)),
            (None, Tail::Clean) => None,
        };
        let abs_end = (WAL_HEADER_BYTES + good_end) as u64;
        report.logs.push(LogReport {
            path: path.clone(),
            records,
            good_end: abs_end,
            damage: damage.map(|d| d.1),
        });
        if let Some((offset, reason)) = damage {
            if !newest {
                return Err(StoreError::Refused {
                    path,
                    message: format!(
                        "damaged at offset {} ({reason}) and later logs exist",
                        WAL_HEADER_BYTES + offset
                    ),
                    fix: "restore the data directory from a backup; the changes after the damage cannot be trusted",
                });
            }
            tracing::warn!(
                file = %path.display(),
                offset = WAL_HEADER_BYTES + offset,
                reason,
                "cutting the torn tail of the log"
            );
            if repair {
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| {
                        f.set_len(abs_end)?;
                        f.sync_all()
                    })
                    .map_err(io_err(&path))?;
            }
        }
        if newest {
            append_to = Some((g, abs_end));
        }
    }
    // Appends go to the newest log; without one, to a new log after every
    // generation seen.
    let (generation, wal_len) = append_to.unwrap_or_else(|| {
        let g = logs.last().copied().unwrap_or(base).max(base) + 1;
        (g, 0)
    });
    Ok(Recovered {
        snapshot,
        overlay,
        generation,
        wal_len,
        report,
    })
}

/// Creates a new, empty log of generation `g` (header fsynced, directory
/// fsynced) and returns it open for appending.
fn create_log(
    dir: &Path,
    identity: Identity,
    g: u64,
    prefill_bytes: u64,
) -> Result<File, StoreError> {
    let path = wal_path(dir, g);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let header = WalHeader {
        format: WAL_FORMAT,
        shard: identity.shard,
        shards: identity.shards,
        hash_version: identity.hash_version,
        generation: g,
    };
    f.write_all(&header.encode())
        .and_then(|_| prefill(&f, WAL_HEADER_BYTES as u64, prefill_bytes, None))
        .and_then(|_| f.sync_all())
        .map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Default bytes of zeros a log is extended by ahead of its writes, so that an
/// fdatasync flushes data only, never a size change (and no journal commit).
pub const WAL_PREFILL_BYTES: u64 = 16 * 1024 * 1024;

/// Writes `len` zero bytes at `from` (real zeros: preallocated extents
/// would still need a metadata change when first written), at most `rate`
/// bytes per second.
fn prefill(f: &File, from: u64, len: u64, rate: Option<u64>) -> std::io::Result<()> {
    paced::write_zeros(f, from, len, rate)
}

impl ShardStore {
    /// Recovers the shard in `dir` and starts its I/O thread. Call
    /// [`ShardStore::pump`] on the core to receive commit progress.
    pub fn open(
        dir: &Path,
        identity: Identity,
        options: StoreOptions,
    ) -> Result<Rc<ShardStore>, StoreError> {
        let rec = recover(dir, identity, true)?;
        tracing::info!(
            dir = %dir.display(),
            snapshot_generation = ?rec.report.snapshot_generation,
            snapshot_entries = rec.report.snapshot_entries,
            replayed = rec.report.logs.iter().map(|l| l.records).sum::<u64>(),
            "shard recovered"
        );
        let (file, position) = if rec.wal_len > 0 {
            let path = wal_path(dir, rec.generation);
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            (f, rec.wal_len)
        } else {
            (
                create_log(dir, identity, rec.generation, options.wal_prefill_bytes)?,
                WAL_HEADER_BYTES as u64,
            )
        };
        let (io_tx, io_rx) = std::sync::mpsc::channel();
        let (ev_tx, ev_rx) = async_channel::unbounded();
        let thread = {
            let owned = dir.to_owned();
            let durability = options.durability;
            let prefill_bytes = options.wal_prefill_bytes;
            let fill_rate = options.background_write_bytes_per_s;
            let prepare_at = options.compact_wal_bytes / 2;
            std::thread::Builder::new()
                .name(format!("authplane-wal-{}", identity.shard))
                .spawn(move || {
                    let log = LogFile {
                        dir: owned,
                        identity,
                        size: file.metadata().map(|m| m.len()).unwrap_or(0),
                        file,
                        position,
                        prefill_bytes,
                        fill_rate,
                        epoch: 0,
                        prepare_at,
                    };
                    io_thread(log, durability, io_rx, ev_tx)
                })
                .map_err(io_err(dir))?
        };
        let (compacted, compacted_rx) = async_channel::bounded(1);
        let store = Rc::new(ShardStore {
            dir: dir.to_owned(),
            identity,
            options,
            snapshot: RefCell::new(rec.snapshot),
            overlay: RefCell::new(rec.overlay),
            compaction: RefCell::new(None),
            holds: Cell::new(0),
            next_lsn: Cell::new(1),
            generation: Cell::new(rec.generation),
            wal_bytes: Cell::new(rec.wal_len.max(WAL_HEADER_BYTES as u64)),
            unlogged_bytes: Cell::new(0),
            progress: Rc::new(Progress::default()),
            pending: RefCell::new(Vec::with_capacity(64 * 1024)),
            pending_lsn: Cell::new(0),
            flush_waker: RefCell::new(None),
            io_tx,
            io_events: ev_rx,
            io_thread: RefCell::new(Some(thread)),
            compacted,
            compacted_rx,
            scrub: Arc::default(),
        });
        store.start_scrub();
        Ok(store)
    }

    /// The background check's figures.
    pub fn scrub(&self) -> &ScrubState {
        &self.scrub
    }

    /// Starts a pass of the background check over the mapped snapshot.
    fn start_scrub(&self) {
        let Some(snap) = self.snapshot.borrow().clone() else {
            return;
        };
        let state = self.scrub.clone();
        let g = snap.header.generation;
        state.generation.store(g, Ordering::Relaxed);
        state.checked_bytes.store(0, Ordering::Relaxed);
        state
            .snapshot_bytes
            .store(snap.header.index_offset, Ordering::Relaxed);
        let rate = self.options.background_write_bytes_per_s;
        let path = table_path(&self.dir, g);
        let spawned = std::thread::Builder::new()
            .name(format!("authplane-scrub-{}", self.identity.shard))
            .spawn(move || {
                background_priority();
                let mut started = crate::clock::now();
                let report = snap.check(64, |bytes| {
                    state.checked_bytes.fetch_add(bytes, Ordering::Relaxed);
                    if let Some(rate) = rate.filter(|r| *r > 0) {
                        paced::pause(started, bytes, rate);
                    }
                    started = crate::clock::now();
                    state.generation.load(Ordering::Relaxed) == g
                });
                if !report.complete {
                    return;
                }
                for e in &report.damaged {
                    tracing::error!(file = %path.display(), error = %e, "snapshot damaged: restore the shard from a backup");
                }
                state
                    .damaged
                    .store(report.damaged.len() as u64, Ordering::Relaxed);
                state.passes.fetch_add(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the snapshot check");
        }
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The store's task on its core: hands each tick's commits to the I/O
    /// thread as one message, and receives the I/O thread's reports and
    /// finished compactions. Run it for the store's whole life.
    pub async fn pump(self: Rc<Self>) {
        loop {
            let event = {
                let mut io = std::pin::pin!(self.io_events.recv());
                let mut compacted = std::pin::pin!(self.compacted_rx.recv());
                std::future::poll_fn(|cx| {
                    if self.pending_lsn.get() != 0 {
                        return Poll::Ready(PumpEvent::Flush);
                    }
                    *self.flush_waker.borrow_mut() = Some(cx.waker().clone());
                    if let Poll::Ready(e) = io.as_mut().poll(cx) {
                        return Poll::Ready(PumpEvent::Io(e.ok()));
                    }
                    if let Poll::Ready(r) = compacted.as_mut().poll(cx) {
                        return Poll::Ready(PumpEvent::Compacted(r.ok()));
                    }
                    Poll::Pending
                })
                .await
            };
            match event {
                PumpEvent::Flush => self.flush(),
                PumpEvent::Io(Some(IoEvent::Durable(lsn))) => self.progress.advance(lsn),
                PumpEvent::Io(Some(IoEvent::Failed { from_lsn, error })) => {
                    tracing::error!(dir = %self.dir.display(), %error, "WAL write failed: the shard refuses writes");
                    self.progress.fail(from_lsn, error);
                }
                PumpEvent::Io(None) => return,
                PumpEvent::Compacted(Some(result)) => self.finish_compaction(result),
                PumpEvent::Compacted(None) => {}
            }
        }
    }

    /// Hands the records committed so far to the I/O thread.
    fn flush(&self) {
        let lsn = self.pending_lsn.replace(0);
        if lsn == 0 {
            return;
        }
        let record = std::mem::replace(
            &mut *self.pending.borrow_mut(),
            Vec::with_capacity(64 * 1024),
        );
        if self.io_tx.send(IoRequest::Append { lsn, record }).is_err() {
            self.progress.fail(lsn, "the WAL writer has stopped".into());
        }
    }

    /// Reads (table, key): the overlay, the frozen overlay of a running
    /// compaction, then the snapshot through the mapping (no copy).
    ///
    /// An error only when the snapshot block that holds the key is damaged
    /// (never a wrong or missing value in its place).
    pub fn read<R>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError> {
        if let Some(slot) = self.overlay.borrow().get(table, key) {
            return Ok(f(slot.value.as_deref()));
        }
        if let Some(c) = &*self.compaction.borrow() {
            if let Some(slot) = c.frozen.get(table, key) {
                return Ok(f(slot.value.as_deref()));
            }
        }
        match &*self.snapshot.borrow() {
            Some(s) => s
                .get(table, key)
                .map(f)
                .map_err(|source| self.damaged(s, source)),
            None => Ok(f(None)),
        }
    }

    fn damaged(&self, s: &Snapshot, source: SnapError) -> StoreError {
        self.scrub.read_errors.fetch_add(1, Ordering::Relaxed);
        StoreError::Snapshot {
            path: table_path(&self.dir, s.header.generation),
            source,
        }
    }

    /// Like [`read`](Self::read), but first waits until the value read is
    /// durable, so a reply never shows a change a crash could lose.
    pub async fn read_durable<R>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError> {
        if let Some(lsn) = self.pending_lsn(table, key) {
            self.wait_durable(lsn).await?;
        }
        self.read(table, key, f)
    }

    fn wait_durable(&self, lsn: u64) -> WaitDurable {
        WaitDurable {
            progress: self.progress.clone(),
            lsn,
            registered: false,
        }
    }

    /// Applies `ops` atomically. Later reads on this core see them at once;
    /// the future resolves when they are durable (with `Durability::Sync`).
    pub fn commit(&self, ops: &[Op]) -> impl Future<Output = Result<(), StoreError>> + 'static {
        let started = self.begin_commit(ops);
        async move { started?.await }
    }

    /// Like [`commit`](Self::commit), but a refusal (a failed store, a
    /// full queue) is known at once, and the caller chooses whether to
    /// wait for durability.
    pub fn begin_commit(&self, ops: &[Op]) -> Result<Durable, StoreError> {
        let wait = self.start_commit(ops)?;
        Ok(self.durable(Some(wait)))
    }

    fn durable(&self, wait: Option<WaitDurable>) -> Durable {
        Durable {
            wait: wait.filter(|_| self.options.durability == Durability::Sync),
        }
    }

    /// Sets (table, key) on this core without logging it: reads here see
    /// it at once; a restart may lose it (a compaction that runs first
    /// keeps it). For state a logged bound makes safe to lose, such as an
    /// SQN under its durable lease. The future resolves when the key's
    /// newest logged change is durable.
    pub fn put_unlogged(&self, table: TableId, key: &[u8], value: Vec<u8>) -> Durable {
        // The common case, a key already in the overlay: its value is
        // replaced in place (one lookup, no new key), and the slot keeps
        // the LSN of its logged change, so durability checks still see it.
        let mut overlay = self.overlay.borrow_mut();
        if let Some(slot) = overlay.get_mut(table, key) {
            slot.value = Some(value.into_boxed_slice());
            let pending = Some(slot.lsn).filter(|&l| l > self.progress.durable.get());
            drop(overlay);
            return self.durable(pending.map(|lsn| self.wait_durable(lsn)));
        }
        drop(overlay);
        // A new key in the overlay (its logged change, if any, is in a
        // running compaction's frozen changes or in the snapshot).
        let pending = self.pending_lsn(table, key);
        let added = (key.len() + value.len() + SLOT_OVERHEAD_BYTES) as u64;
        let op = Op::Put {
            table,
            key: key.to_vec(),
            value,
        };
        self.overlay.borrow_mut().apply(&op, pending.unwrap_or(0));
        self.unlogged_bytes.set(self.unlogged_bytes.get() + added);
        self.compact_if_due();
        self.durable(pending.map(|lsn| self.wait_durable(lsn)))
    }

    /// Starts a compaction once the log, plus what unlogged puts added to
    /// the overlay, passes `compact_wal_bytes`.
    fn compact_if_due(&self) {
        if self.wal_bytes.get() + self.unlogged_bytes.get() >= self.options.compact_wal_bytes {
            self.start_compaction();
        }
    }

    /// The LSN of the newest change to (table, key), if it is not durable
    /// yet: in the overlay, else in a running compaction's frozen changes.
    fn pending_lsn(&self, table: TableId, key: &[u8]) -> Option<u64> {
        let lsn = match self.overlay.borrow().get(table, key) {
            Some(slot) => Some(slot.lsn),
            None => self
                .compaction
                .borrow()
                .as_ref()
                .and_then(|c| c.frozen.get(table, key).map(|slot| slot.lsn)),
        };
        lsn.filter(|&l| l > self.progress.durable.get())
    }

    fn start_commit(&self, ops: &[Op]) -> Result<WaitDurable, StoreError> {
        if let Some((_, e)) = &*self.progress.failed.borrow() {
            return Err(StoreError::Failed(e.clone()));
        }
        let lsn = self.next_lsn.get();
        let in_flight = lsn.saturating_sub(self.progress.durable.get() + 1);
        if in_flight >= self.options.max_queued_commits as u64 {
            return Err(StoreError::Busy);
        }
        let mut payload = Vec::with_capacity(64);
        encode_batch(ops, &mut payload)?;
        let record_len = {
            let mut pending = self.pending.borrow_mut();
            let before = pending.len();
            wal::encode_record(KIND_BATCH, &payload, &mut pending);
            pending.len() - before
        };
        self.next_lsn.set(lsn + 1);
        if self.pending_lsn.replace(lsn) == 0 {
            if let Some(w) = self.flush_waker.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
        {
            let mut overlay = self.overlay.borrow_mut();
            for op in ops {
                overlay.apply(op, lsn);
            }
        }
        self.wal_bytes.set(self.wal_bytes.get() + record_len as u64);
        self.compact_if_due();
        Ok(self.wait_durable(lsn))
    }

    /// Up to `limit` live entries of `table` with keys after `after`, in
    /// key order: the overlay, a running compaction's frozen changes and
    /// the snapshot merged (newest wins, deletions hide older values).
    pub fn scan(
        &self,
        table: TableId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.scan_while(table, after, limit, |_| true)
    }

    /// [`scan`](Self::scan), stopping at the first key `keep` refuses
    /// (a prefix's entries: nothing beyond them is read or copied).
    pub fn scan_while(
        &self,
        table: TableId,
        after: Option<&[u8]>,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        // The overlay's changes over the frozen ones (a running
        // compaction's), merged lazily in key order.
        let overlay = self.overlay.borrow();
        let compaction = self.compaction.borrow();
        let mut newer = overlay.range(table, after).peekable();
        let mut older = compaction
            .as_ref()
            .map(|c| c.frozen.range(table, after))
            .into_iter()
            .flatten()
            .peekable();
        let mut changes = std::iter::from_fn(move || match (newer.peek(), older.peek()) {
            (Some((n, _)), Some((o, _))) if n == o => {
                older.next();
                newer.next()
            }
            (Some((n, _)), Some((o, _))) if o < n => older.next(),
            (Some(_), _) => newer.next(),
            (None, _) => older.next(),
        })
        .peekable();
        let snapshot = self.snapshot.borrow().clone();
        let mut out = Vec::new();
        let mut base = snapshot.as_deref().map(|s| (s, s.range(table, after)));
        let mut next_base = || -> Result<Option<Based<'_>>, StoreError> {
            let Some((s, range)) = base.as_mut() else {
                return Ok(None);
            };
            range
                .next()
                .transpose()
                .map_err(|source| self.damaged(s, source))
        };
        let mut peeked = next_base()?;
        while out.len() < limit {
            let next_change = changes.peek().map(|(k, _)| *k);
            match (&peeked, next_change) {
                (None, None) => break,
                (Some((bk, _)), c) if c.is_none_or(|ck| bk.as_slice() < ck) => {
                    if !keep(bk) {
                        break;
                    }
                    if let Some((bk, bv)) = peeked.take() {
                        out.push((bk, bv.to_vec()));
                    }
                    peeked = next_base()?;
                }
                (b, Some(ck)) => {
                    if !keep(ck) {
                        break;
                    }
                    if b.as_ref().is_some_and(|(bk, _)| bk.as_slice() == ck) {
                        peeked = next_base()?;
                    }
                    if let Some((k, Some(v))) = changes.next() {
                        out.push((k.to_vec(), v.to_vec()));
                    }
                }
                (Some(_), None) => break,
            }
        }
        Ok(out)
    }

    /// Number of keys in the overlay (changes since the snapshot).
    pub fn overlay_len(&self) -> usize {
        self.overlay.borrow().len()
    }

    /// Entries in the mapped snapshot.
    pub fn snapshot_len(&self) -> usize {
        self.snapshot.borrow().as_ref().map_or(0, |s| s.len())
    }

    /// True while a compaction runs.
    pub fn compacting(&self) -> bool {
        self.compaction.borrow().is_some()
    }

    /// Holds compactions off (for a backup copying the files) and fixes
    /// what the copy is: the newest snapshot, the logs after it, and the
    /// end of the active log's records at this moment. Those bytes stay
    /// as they are (records are only appended past them) until
    /// [`ShardStore::release`]; they are durable once
    /// [`ShardStore::durable_through`] of [`Held::last_lsn`] resolves. None,
    /// and no hold, while a compaction is under way: ask again once it has
    /// finished.
    pub fn hold(&self) -> Result<Option<Held>, StoreError> {
        if self.compacting() {
            return Ok(None);
        }
        let snapshot = generations(&self.dir, "table-", ".snap")?.last().copied();
        let mut files: Vec<PathBuf> = snapshot
            .map(|g| table_path(&self.dir, g))
            .into_iter()
            .collect();
        for g in generations(&self.dir, "wal-", ".log")? {
            if snapshot.is_none_or(|s| g > s) {
                files.push(wal_path(&self.dir, g));
            }
        }
        let active = (
            wal_path(&self.dir, self.generation.get()),
            self.wal_bytes.get(),
        );
        // This tick's commits go to the log now: `last_lsn` covers them.
        self.flush();
        self.holds.set(self.holds.get() + 1);
        Ok(Some(Held {
            files,
            active,
            last_lsn: self.next_lsn.get().saturating_sub(1),
        }))
    }

    /// Resolves once every change up to `lsn` is durable (at once without
    /// `Durability::Sync`).
    pub fn durable_through(&self, lsn: u64) -> Durable {
        self.durable((lsn > 0).then(|| self.wait_durable(lsn)))
    }

    /// Ends a [`ShardStore::hold`]; a compaction that came due meanwhile
    /// starts now.
    pub fn release(&self) {
        self.holds.set(self.holds.get().saturating_sub(1));
        if self.holds.get() == 0 {
            self.compact_if_due();
        }
    }

    /// Freezes the overlay, rolls the log and writes a new snapshot in the
    /// background; requests keep being served meanwhile.
    pub fn start_compaction(&self) {
        if self.compaction.borrow().is_some() || self.holds.get() > 0 {
            return;
        }
        // Everything committed so far belongs to the log being closed.
        self.flush();
        let frozen = {
            let mut overlay = self.overlay.borrow_mut();
            let next = overlay.sized_like();
            Arc::new(std::mem::replace(&mut *overlay, next))
        };
        let generation = self.generation.get();
        if self
            .io_tx
            .send(IoRequest::Roll {
                generation: generation + 1,
            })
            .is_err()
        {
            // The I/O thread is gone: put the changes back.
            if let Ok(o) = Arc::try_unwrap(frozen) {
                *self.overlay.borrow_mut() = o;
            }
            return;
        }
        self.generation.set(generation + 1);
        self.wal_bytes.set(WAL_HEADER_BYTES as u64);
        self.unlogged_bytes.set(0);
        *self.compaction.borrow_mut() = Some(Compaction {
            frozen: frozen.clone(),
        });
        let base = self.snapshot.borrow().clone();
        let dir = self.dir.clone();
        let identity = self.identity;
        let done = self.compacted.clone();
        let pace = self.options.background_write_bytes_per_s;
        let spawned = std::thread::Builder::new()
            .name(format!("authplane-compact-{}", identity.shard))
            .spawn(move || {
                background_priority();
                // One snapshot written at a time in the process: the free
                // disk a compaction needs is one shard's snapshot, not one
                // per shard compacting at once.
                let turn = COMPACTION_TURN.lock().unwrap_or_else(|e| e.into_inner());
                let result =
                    write_snapshot(&dir, identity, generation, base.as_deref(), &frozen, pace)
                        .map(|s| (generation, Arc::new(s)))
                        .map_err(|e| e.to_string());
                drop(turn);
                // Before the core hears of it: the cleanup can then hold
                // the last reference to the replaced snapshot.
                drop(base);
                let _ = done.send_blocking(result);
            });
        if let Err(e) = spawned {
            self.finish_compaction(Err(e.to_string()));
        }
    }

    fn finish_compaction(&self, result: Result<(u64, Arc<Snapshot>), String>) {
        let Some(c) = self.compaction.borrow_mut().take() else {
            return;
        };
        match result {
            Ok((g, snap)) => {
                let old = self.snapshot.borrow_mut().replace(snap);
                self.start_scrub();
                // Freeing a large overlay and removing the replaced files
                // take milliseconds: both happen off the core, the files
                // paced (see `paced`).
                let frozen = c.frozen;
                let dir = self.dir.clone();
                let pace = self.options.background_write_bytes_per_s;
                let cleanup = move || {
                    background_priority();
                    drop(frozen);
                    // The replaced snapshot may be shrunk only once nothing
                    // maps it: when this is the last reference. The check
                    // of the old snapshot stops within 64 blocks of the
                    // switch; a scan may hold it a moment.
                    let deadline = crate::clock::now() + std::time::Duration::from_secs(5);
                    while old.as_ref().is_some_and(|s| Arc::strong_count(s) > 1)
                        && crate::clock::now() < deadline
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    // Unmapped in steps (see `Snapshot::release`).
                    let unmapped = old.is_none_or(|s| match Arc::into_inner(s) {
                        Some(s) => {
                            s.release();
                            true
                        }
                        None => false,
                    });
                    let removal = Removal {
                        logs: pace,
                        snapshots: pace.filter(|_| unmapped),
                    };
                    if let Err(e) = remove_replaced(&dir, g, removal) {
                        tracing::warn!(error = %e, "cannot remove replaced files");
                    }
                };
                if let Err(e) = std::thread::Builder::new()
                    .name("authplane-cleanup".into())
                    .spawn(cleanup)
                {
                    tracing::warn!(error = %e, "cannot start the cleanup thread; old files stay until the next compaction");
                }
                tracing::info!(dir = %self.dir.display(), generation = g, "compaction done");
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "compaction failed; will retry");
                // Put the frozen changes back under the newer ones.
                let mut overlay = self.overlay.borrow_mut();
                for (t, key, slot) in c.frozen.entries() {
                    if overlay.get(t, key).is_none() {
                        overlay.insert(usize::from(t), key.into(), slot.clone());
                    }
                }
            }
        }
    }

    /// Waits for every commit so far to be durable, then stops the I/O
    /// thread. A registered stop of the store's core.
    pub async fn close(&self) {
        self.flush();
        let last = self.next_lsn.get().saturating_sub(1);
        if last > 0 {
            let _ = self.wait_durable(last).await;
        }
        let _ = self.io_tx.send(IoRequest::Stop);
        if let Some(t) = self.io_thread.borrow_mut().take() {
            let _ = t.join();
        }
    }
}

/// Held by the compaction writing a snapshot (see `start_compaction`).
static COMPACTION_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Lowers the calling thread to the lowest priority (nice 19), for
/// background work (compaction, cleanup) that must not take CPU time from
/// an executor sharing its CPU: measured, a compaction on the executor's
/// CPU at normal priority raised vector p99 at 70 % load from 12.7 ms to
/// 114 ms.
fn background_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of
    // ours; on Linux, PRIO_PROCESS with who = 0 changes the calling thread.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        tracing::debug!("cannot lower the priority of a background thread");
    }
}

/// How replaced files are removed: the pace of each kind (bytes per
/// second; None: unlinked at once). See `paced::remove_file`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removal {
    pub logs: Option<u64>,
    pub snapshots: Option<u64>,
}

/// Removes the logs and snapshots that snapshot generation `g` replaces.
pub fn remove_replaced(dir: &Path, g: u64, removal: Removal) -> Result<(), StoreError> {
    for old in generations(dir, "wal-", ".log")? {
        if old <= g {
            let path = wal_path(dir, old);
            paced::remove_file(&path, removal.logs).map_err(io_err(&path))?;
        }
    }
    for old in generations(dir, "table-", ".snap")? {
        if old < g {
            let path = table_path(dir, old);
            paced::remove_file(&path, removal.snapshots).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Offline (no server running): writes what `rec` recovered, with its
/// changes, as a new snapshot and removes the files it replaces. Returns
/// the new snapshot, or None when there was nothing to fold in.
pub fn compact_recovered(
    dir: &Path,
    identity: Identity,
    rec: &Recovered,
) -> Result<Option<Snapshot>, StoreError> {
    if rec.overlay.is_empty() {
        return Ok(None);
    }
    let g = rec
        .generation
        .max(rec.report.snapshot_generation.unwrap_or(0) + 1);
    let snap = write_snapshot(
        dir,
        identity,
        g,
        rec.snapshot.as_deref(),
        &rec.overlay,
        None,
    )?;
    remove_replaced(dir, g, Removal::default())?;
    Ok(Some(snap))
}

/// Merges `base` and `frozen` into `table-<generation>.snap` (temp file,
/// fsync, rename, directory fsync) and opens it. Streamed: the memory it
/// takes is the sorted list of changes, not the snapshot; the disk, one
/// new snapshot beside the old.
pub fn write_snapshot(
    dir: &Path,
    identity: Identity,
    generation: u64,
    base: Option<&Snapshot>,
    frozen: &Overlay,
    pace_bytes_per_s: Option<u64>,
) -> Result<Snapshot, StoreError> {
    /// A change: table, key, new value (None: deleted).
    type Change<'c> = (TableId, &'c [u8], Option<&'c [u8]>);
    let mut changes: Vec<Change<'_>> = frozen
        .entries()
        .map(|(t, k, s)| (t, k, s.value.as_deref()))
        .collect();
    changes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    merge_snapshot(
        dir,
        identity,
        generation,
        base,
        changes.into_iter().map(Ok),
        pace_bytes_per_s,
    )
}

/// Writes `table-<generation>.snap` as `base` with `changes` applied: each
/// (table, key, new value or None for deleted), in (table, key) order,
/// each key once. Temp file, fsync, rename, directory fsync; then opens
/// it. The memory it takes is one block and the block index.
pub fn merge_snapshot<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    dir: &Path,
    identity: Identity,
    generation: u64,
    base: Option<&Snapshot>,
    mut changes: impl Iterator<Item = Result<(TableId, K, Option<V>), StoreError>>,
    pace_bytes_per_s: Option<u64>,
) -> Result<Snapshot, StoreError> {
    let tmp = dir.join(format!("table-{generation:016}.snap.tmp"));
    let snap_err = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Snapshot { path, source }
    };
    let header = SnapHeader::identity(
        identity.shard,
        identity.shards,
        identity.hash_version,
        generation,
    );
    let mut out =
        snapshot::Writer::create(&tmp, header, pace_bytes_per_s).map_err(snap_err(&tmp))?;
    let mut push = |t: TableId, k: &[u8], v: Option<&[u8]>| match v {
        Some(v) => out.push(t, k, v).map_err(snap_err(&tmp)),
        None => Ok(()),
    };
    let mut pending = changes.next().transpose()?;
    if let Some(base) = base {
        let base_path = table_path(dir, base.header.generation);
        let mut cursor = base.cursor().map_err(snap_err(&base_path))?;
        while let Some((ck, v)) = cursor.next_entry().map_err(snap_err(&base_path))? {
            let (&t, k) = ck.split_first().unwrap_or((&0, &[]));
            // Changes before this entry, then this entry or its change.
            let mut replaced = false;
            while let Some((ct, ck, cv)) = &pending {
                let at = (*ct, ck.as_ref());
                if at > (t, k) {
                    break;
                }
                replaced = at == (t, k);
                push(*ct, ck.as_ref(), cv.as_ref().map(AsRef::as_ref))?;
                pending = changes.next().transpose()?;
                if replaced {
                    break;
                }
            }
            if !replaced {
                push(t, k, Some(v))?;
            }
        }
    }
    while let Some((ct, ck, cv)) = pending {
        push(ct, ck.as_ref(), cv.as_ref().map(AsRef::as_ref))?;
        pending = changes.next().transpose()?;
    }
    out.finish().map_err(snap_err(&tmp))?;
    let path = table_path(dir, generation);
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Snapshot::open(&path).map_err(snap_err(&path))
}

/// Zero-filling done off the WAL thread, so that no group commit waits
/// for it: the next stretch of the active log (asked for when less than
/// half of one prefill is left) and the whole next log (ready before the
/// roll that needs it). Writing 16 MiB of zeros and syncing them takes
/// about 10 ms here, and on the WAL thread every commit behind it waited.
struct Filler {
    tx: std::sync::mpsc::Sender<FillJob>,
    rx: std::sync::mpsc::Receiver<FillDone>,
    /// An extension of the active log is under way.
    extending: bool,
    /// The next log is being prepared.
    preparing: bool,
    /// The next log, zero-filled and synced, its header not yet written.
    ready: Option<File>,
}

enum FillJob {
    /// Zeros at `[from, from + len)` of the log of `epoch`, then fsync.
    Extend {
        epoch: u64,
        file: File,
        from: u64,
        len: u64,
    },
    /// A new file at `path` of `len` zeros, fsynced.
    Prepare { path: PathBuf, len: u64 },
}

enum FillDone {
    /// The log of `epoch` now holds synced zeros up to the new size.
    Extended {
        epoch: u64,
        size: std::io::Result<u64>,
    },
    Prepared(std::io::Result<File>),
}

/// Where the next log is prepared (`*.tmp`, so a crash leaves nothing that
/// recovery reads: it deletes it at open).
fn next_log_path(dir: &Path) -> PathBuf {
    dir.join("wal-next.tmp")
}

impl Filler {
    /// Starts the filler thread (at the lowest priority: it has seconds of
    /// slack). None when no thread can be started; logs are then extended
    /// on the WAL thread.
    fn start(shard: u16, rate: Option<u64>) -> Option<Filler> {
        let (tx, jobs) = std::sync::mpsc::channel::<FillJob>();
        let (done, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("authplane-fill-{shard}"))
            .spawn(move || {
                background_priority();
                for job in jobs {
                    let answer = match job {
                        FillJob::Extend {
                            epoch,
                            file,
                            from,
                            len,
                        } => FillDone::Extended {
                            epoch,
                            size: prefill(&file, from, len, rate)
                                .and_then(|_| file.sync_all())
                                .map(|_| from + len),
                        },
                        FillJob::Prepare { path, len } => FillDone::Prepared(
                            OpenOptions::new()
                                .create(true)
                                .truncate(true)
                                .write(true)
                                .open(&path)
                                .and_then(|f| {
                                    prefill(&f, 0, len, rate)?;
                                    f.sync_all()?;
                                    Ok(f)
                                }),
                        ),
                    };
                    if done.send(answer).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Filler {
                tx,
                rx,
                extending: false,
                preparing: false,
                ready: None,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the WAL fill thread; logs are extended inline");
                None
            }
        }
    }

    fn take(&mut self, log: &mut LogFile, done: FillDone) {
        match done {
            FillDone::Extended { epoch, size } => {
                if epoch != log.epoch {
                    return;
                }
                self.extending = false;
                match size {
                    Ok(size) => log.size = log.size.max(size),
                    Err(e) => {
                        tracing::warn!(dir = %log.dir.display(), error = %e, "extending the WAL ahead failed; extending inline")
                    }
                }
            }
            FillDone::Prepared(file) => {
                self.preparing = false;
                match file {
                    Ok(f) => self.ready = Some(f),
                    Err(e) => {
                        tracing::warn!(dir = %log.dir.display(), error = %e, "preparing the next WAL failed; it will be created at the roll")
                    }
                }
            }
        }
    }

    /// Takes the reports that have arrived.
    fn poll(&mut self, log: &mut LogFile) {
        while let Ok(done) = self.rx.try_recv() {
            self.take(log, done);
        }
    }

    /// Waits for one report (false when the thread is gone).
    fn wait(&mut self, log: &mut LogFile) -> bool {
        match self.rx.recv() {
            Ok(done) => {
                self.take(log, done);
                true
            }
            Err(_) => {
                self.extending = false;
                self.preparing = false;
                false
            }
        }
    }

    /// Asks for the next stretch of the active log when less than half of
    /// one prefill is left.
    fn keep_ahead(&mut self, log: &LogFile) {
        if self.extending || log.size.saturating_sub(log.position) >= log.prefill_bytes / 2 {
            return;
        }
        let Ok(file) = log.file.try_clone() else {
            return;
        };
        let job = FillJob::Extend {
            epoch: log.epoch,
            file,
            from: log.size,
            len: log.prefill_bytes,
        };
        self.extending = self.tx.send(job).is_ok();
    }

    /// Asks for the next log to be prepared once the active one is past
    /// `prepare_at`, unless one is.
    fn prepare_next(&mut self, log: &LogFile) {
        if self.preparing || self.ready.is_some() || log.position < log.prepare_at {
            return;
        }
        let job = FillJob::Prepare {
            path: next_log_path(&log.dir),
            len: WAL_HEADER_BYTES as u64 + log.prefill_bytes,
        };
        self.preparing = self.tx.send(job).is_ok();
    }

    /// The prepared next log, waiting for it if it is being prepared.
    fn next_log(&mut self, log: &mut LogFile) -> Option<File> {
        while self.ready.is_none() && self.preparing {
            if !self.wait(log) {
                break;
            }
        }
        self.ready.take()
    }
}

impl LogFile {
    /// Writes `buf` at the end of the records, inside the zero-filled part
    /// of the log: normally filled ahead by the filler; when the writes
    /// overtook it, after waiting for it, and inline as a last resort.
    fn append(&mut self, filler: &mut Option<Filler>, buf: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = self.position + buf.len() as u64;
        if let Some(f) = filler.as_mut() {
            f.poll(self);
            while end > self.size && f.extending {
                if !f.wait(self) {
                    break;
                }
            }
        }
        if end > self.size {
            let grow = (end - self.size).max(self.prefill_bytes);
            prefill(&self.file, self.size, grow, None)?;
            self.file.sync_all()?;
            self.size += grow;
        }
        self.file.write_all_at(buf, self.position)?;
        self.position = end;
        if let Some(f) = filler.as_mut() {
            f.keep_ahead(self);
            f.prepare_next(self);
        }
        Ok(())
    }

    /// Moves to a new log of generation `g`: the prepared one (header
    /// written and synced, then renamed into place), or a new one made
    /// here.
    fn roll(&mut self, filler: &mut Option<Filler>, g: u64) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        self.file.sync_all().map_err(io_err(&self.dir))?;
        let prepared = filler.as_mut().and_then(|f| f.next_log(self));
        let file = match prepared {
            Some(f) => {
                let header = WalHeader {
                    format: WAL_FORMAT,
                    shard: self.identity.shard,
                    shards: self.identity.shards,
                    hash_version: self.identity.hash_version,
                    generation: g,
                };
                let tmp = next_log_path(&self.dir);
                let path = wal_path(&self.dir, g);
                f.write_all_at(&header.encode(), 0)
                    .and_then(|_| f.sync_data())
                    .map_err(io_err(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
                sync_dir(&self.dir)?;
                f
            }
            None => create_log(&self.dir, self.identity, g, self.prefill_bytes)?,
        };
        self.file = file;
        self.epoch += 1;
        self.position = WAL_HEADER_BYTES as u64;
        self.size = WAL_HEADER_BYTES as u64 + self.prefill_bytes;
        if let Some(f) = filler.as_mut() {
            f.extending = false;
            f.prepare_next(self);
        }
        Ok(())
    }
}

/// The active log, as its I/O thread sees it.
struct LogFile {
    dir: PathBuf,
    identity: Identity,
    file: File,
    /// Where the next record goes.
    position: u64,
    /// Length of the file (records and zero fill).
    size: u64,
    prefill_bytes: u64,
    /// Rate of the filler's writes (see `paced`).
    fill_rate: Option<u64>,
    /// Counts rolls, so an extension of an older log is told apart.
    epoch: u64,
    /// Past this offset the next log is prepared (half the compaction
    /// threshold: a store that rarely compacts, like the catalog, does
    /// not hold a spare log).
    prepare_at: u64,
}

/// The I/O thread of one shard: appends queued records, one write and one
/// `fdatasync` per group, and reports progress to the core.
fn io_thread(
    mut log: LogFile,
    durability: Durability,
    rx: std::sync::mpsc::Receiver<IoRequest>,
    events: async_channel::Sender<IoEvent>,
) {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut failed = false;
    let mut next: Option<IoRequest> = None;
    let mut filler = Filler::start(log.identity.shard, log.fill_rate);
    if let Some(f) = filler.as_mut() {
        f.keep_ahead(&log);
        f.prepare_next(&log);
    }
    loop {
        let first = match next.take() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => return,
            },
        };
        let mut last_lsn = None;
        let mut first_lsn = None;
        let mut pending = Some(first);
        buf.clear();
        // Gather every append queued now; a roll or stop ends the group.
        while let Some(req) = pending.take() {
            match req {
                IoRequest::Append { lsn, record } => {
                    first_lsn.get_or_insert(lsn);
                    last_lsn = Some(lsn);
                    buf.extend_from_slice(&record);
                    if buf.len() < (8 << 20) {
                        pending = rx.try_recv().ok();
                    }
                }
                other => next = Some(other),
            }
        }
        if let (Some(first), Some(last)) = (first_lsn, last_lsn) {
            if failed {
                let _ = events.send_blocking(IoEvent::Failed {
                    from_lsn: first,
                    error: "an earlier write failed".into(),
                });
            } else {
                let written = log
                    .append(&mut filler, &buf)
                    .and_then(|_| match durability {
                        Durability::Sync => log.file.sync_data(),
                        Durability::None => Ok(()),
                    });
                match written {
                    Ok(()) => {
                        let _ = events.send_blocking(IoEvent::Durable(last));
                    }
                    Err(e) => {
                        failed = true;
                        let _ = events.send_blocking(IoEvent::Failed {
                            from_lsn: first,
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
        match next.take() {
            Some(IoRequest::Roll { generation }) if !failed => {
                if let Err(e) = log.roll(&mut filler, generation) {
                    failed = true;
                    let _ = events.send_blocking(IoEvent::Failed {
                        from_lsn: last_lsn.map_or(0, |l| l + 1),
                        error: e.to_string(),
                    });
                }
            }
            Some(IoRequest::Roll { .. }) => {}
            Some(IoRequest::Stop) => {
                let _ = log.file.sync_all();
                return;
            }
            Some(append) => next = Some(append),
            None => {}
        }
    }
}

enum PumpEvent {
    Flush,
    Io(Option<IoEvent>),
    Compacted(Option<Result<(u64, Arc<Snapshot>), String>>),
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use futures_executor::LocalPool;
    use futures_util_free::spawn_local;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    mod futures_util_free {
        use futures_executor::LocalSpawner;
        use std::future::Future;
        /// Spawns a local task on the pool.
        pub fn spawn_local(spawner: &LocalSpawner, f: impl Future<Output = ()> + 'static) {
            use futures_task::LocalSpawn;
            let _ = spawner.spawn_local_obj(futures_task::LocalFutureObj::new(Box::new(f)));
        }
    }

    const IDENTITY: Identity = Identity {
        shard: 0,
        shards: 1,
        hash_version: 1,
    };

    fn temp(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("authplane-store-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A copy of the files as they are now: what a crash would leave.
    fn crash_image(dir: &Path) -> PathBuf {
        let img = temp("image");
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let _ = std::fs::copy(e.path(), img.join(e.file_name()));
        }
        img
    }

    struct Harness {
        pool: LocalPool,
        store: Rc<ShardStore>,
        dir: PathBuf,
    }

    fn open(dir: &Path, compact_wal_bytes: u64) -> Harness {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        let options = StoreOptions {
            compact_wal_bytes,
            wal_prefill_bytes: 64 * 1024,
            ..StoreOptions::default()
        };
        let store = ShardStore::open(dir, IDENTITY, options).unwrap();
        spawn_local(&spawner, store.clone().pump());
        Harness {
            pool,
            store,
            dir: dir.to_owned(),
        }
    }

    #[test]
    fn a_format_1_snapshot_is_converted_when_the_store_opens() {
        let dir = temp("legacy");
        let entries: Vec<legacy::Entry> = (0..3000u32)
            .map(|i| legacy::Entry {
                table: 1,
                key: i.to_be_bytes().to_vec(),
                value: vec![i as u8; 20],
            })
            .collect();
        let header = legacy::SnapHeader {
            format: 1,
            shard: 0,
            shards: 1,
            hash_version: 1,
            generation: 2,
            body_len: 0,
            body_crc: 0,
            entries: 0,
        };
        legacy::write(&legacy_path(&dir, 2), header, entries, None).unwrap();
        // Read-only recovery refuses it with the way out.
        let e = recover(&dir, IDENTITY, false).err().unwrap().to_string();
        assert!(
            e.contains("format-1") && e.contains("start the server once"),
            "{e}"
        );
        let mut h = open(&dir, 1 << 30);
        assert!(!legacy_path(&dir, 2).exists());
        assert!(table_path(&dir, 2).exists());
        for i in (0..3000u32).step_by(7) {
            assert_eq!(h.get(&i.to_be_bytes()), Some(vec![i as u8; 20]));
        }
        h.commit(&[Op::Put {
            table: 1,
            key: vec![9],
            value: vec![9],
        }]);
        h.close();
        let h = open(&dir, 1 << 30);
        assert_eq!(h.get(&[9]), Some(vec![9]));
        assert_eq!(h.get(&5u32.to_be_bytes()), Some(vec![5; 20]));
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    impl Harness {
        fn commit(&mut self, ops: &[Op]) {
            let f = self.store.commit(ops);
            self.pool.run_until(f).unwrap();
        }

        fn wait_compaction(&mut self) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while self.store.compacting() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "compaction never finished"
                );
                self.pool.run_until_stalled();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }

        fn close(mut self) {
            let store = self.store.clone();
            self.pool.run_until(async move { store.close().await });
        }

        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.store.read(1, key, |v| v.map(<[u8]>::to_vec)).unwrap()
        }
    }

    fn check_model(dir: &Path, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
        let h = Harness {
            pool: LocalPool::new(),
            store: ShardStore::open(dir, IDENTITY, StoreOptions::default()).unwrap(),
            dir: dir.to_owned(),
        };
        for k in 0u8..16 {
            let key = vec![k];
            assert_eq!(
                h.get(&key),
                model.get(&key).cloned(),
                "key {k} in {}",
                dir.display()
            );
        }
        h.close();
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put(u8, Vec<u8>),
        Delete(u8),
        Compact,
        Reopen,
        CrashImage,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u8..16, prop::collection::vec(any::<u8>(), 0..24)).prop_map(|(k, v)| Step::Put(k, v)),
            2 => (0u8..16).prop_map(Step::Delete),
            1 => Just(Step::Compact),
            1 => Just(Step::Reopen),
            1 => Just(Step::CrashImage),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn store_matches_a_btreemap_through_compactions_reopens_and_crashes(
            steps in prop::collection::vec(step(), 1..40)
        ) {
            let dir = temp("model");
            let mut model = BTreeMap::new();
            let mut h = open(&dir, 1 << 30);
            for s in steps {
                match s {
                    Step::Put(k, v) => {
                        h.commit(&[Op::Put { table: 1, key: vec![k], value: v.clone() }]);
                        model.insert(vec![k], v);
                    }
                    Step::Delete(k) => {
                        h.commit(&[Op::Delete { table: 1, key: vec![k] }]);
                        model.remove(&vec![k]);
                    }
                    Step::Compact => {
                        h.store.start_compaction();
                        // A crash image in the middle of the compaction.
                        let mid = crash_image(&h.dir);
                        h.wait_compaction();
                        check_model(&mid, &model);
                        let _ = std::fs::remove_dir_all(mid);
                    }
                    Step::Reopen => {
                        h.wait_compaction();
                        h.close();
                        h = open(&dir, 1 << 30);
                    }
                    Step::CrashImage => {
                        let img = crash_image(&h.dir);
                        check_model(&img, &model);
                        let _ = std::fs::remove_dir_all(img);
                    }
                }
                for k in 0u8..16 {
                    prop_assert_eq!(h.get(&[k]), model.get(&vec![k]).cloned());
                }
            }
            h.wait_compaction();
            h.close();
            check_model(&dir, &model);
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn the_overlay_after_a_freeze_has_room_for_as_many_keys() {
        let mut o = Overlay::default();
        for i in 0..5000u32 {
            let slot = Slot {
                value: Some(Box::from(&b"v"[..])),
                lsn: 1,
            };
            o.insert(3, Box::from(&i.to_le_bytes()[..]), slot);
        }
        let next = o.sized_like();
        assert_eq!(next.tables.len(), o.tables.len());
        assert!(next.tables.iter().all(|t| t.is_empty()));
        assert!(next.order.iter().all(|t| t.is_empty()));
        assert!(
            next.tables[3].capacity() >= 5000,
            "{}",
            next.tables[3].capacity()
        );
    }

    #[test]
    fn a_batch_is_atomic_and_compaction_triggers_by_size() {
        let dir = temp("size");
        let mut h = open(&dir, 4096);
        for i in 0..200u32 {
            let key = i.to_le_bytes().to_vec();
            h.commit(&[
                Op::Put {
                    table: 1,
                    key: key.clone(),
                    value: vec![7; 40],
                },
                Op::Put {
                    table: 2,
                    key,
                    value: vec![8; 4],
                },
            ]);
        }
        h.wait_compaction();
        assert!(h.store.snapshot_len() > 0, "no compaction happened");
        h.close();
        let h = open(&dir, 1 << 30);
        for i in 0..200u32 {
            let key = i.to_le_bytes();
            assert_eq!(
                h.store.read(1, &key, |v| v.map(<[u8]>::len)).unwrap(),
                Some(40)
            );
            assert_eq!(
                h.store.read(2, &key, |v| v.map(<[u8]>::len)).unwrap(),
                Some(4)
            );
        }
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An unlogged put is read back at once and waits for the key's
    /// logged change; a restart keeps the logged value only, unless a
    /// compaction took the unlogged one into its snapshot first.
    #[test]
    fn an_unlogged_put_waits_for_the_logged_change_and_a_restart_drops_it() {
        let dir = temp("unlogged");
        let mut h = open(&dir, 1 << 30);
        let put = |key: &[u8], value: &[u8]| Op::Put {
            table: 1,
            key: key.to_vec(),
            value: value.to_vec(),
        };
        // Logged, not yet synced: the unlogged put waits for it.
        let logged = h.store.begin_commit(&[put(b"a", b"logged")]).unwrap();
        let mut unlogged = Box::pin(h.store.put_unlogged(1, b"a", b"unlogged".to_vec()));
        assert_eq!(h.get(b"a").as_deref(), Some(&b"unlogged"[..]));
        let waker = futures_task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(unlogged.as_mut().poll(&mut cx).is_pending());
        h.pool.run_until(logged).unwrap();
        h.pool.run_until(unlogged).unwrap();
        // With the logged change durable, the next one resolves at once,
        // and so does one for a key never logged.
        let mut again = Box::pin(h.store.put_unlogged(1, b"a", b"unlogged 2".to_vec()));
        assert!(again.as_mut().poll(&mut cx).is_ready());
        let mut fresh = Box::pin(h.store.put_unlogged(1, b"b", b"only here".to_vec()));
        assert!(fresh.as_mut().poll(&mut cx).is_ready());
        h.close();
        let mut h = open(&dir, 1 << 30);
        assert_eq!(h.get(b"a").as_deref(), Some(&b"logged"[..]));
        assert_eq!(h.get(b"b"), None);
        // A compaction keeps what the core holds, logged or not.
        let done = h.store.put_unlogged(1, b"a", b"unlogged 3".to_vec());
        h.pool.run_until(done).unwrap();
        h.store.start_compaction();
        h.wait_compaction();
        h.close();
        let h = open(&dir, 1 << 30);
        assert_eq!(h.get(b"a").as_deref(), Some(&b"unlogged 3"[..]));
        h.close();
        // Unlogged puts of new keys count toward the compaction threshold
        // (the overlay stays bounded); rewriting one key does not.
        let mut h = open(&dir, 8192);
        for i in 0..2000u32 {
            let done = h.store.put_unlogged(1, b"a", i.to_le_bytes().to_vec());
            h.pool.run_until(done).unwrap();
        }
        assert!(!h.store.compacting() && h.store.overlay_len() == 1);
        for i in 0..200u32 {
            let done = h.store.put_unlogged(2, &i.to_le_bytes(), vec![1; 40]);
            h.pool.run_until(done).unwrap();
        }
        h.wait_compaction();
        assert!(h.store.overlay_len() < 200, "{}", h.store.overlay_len());
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn replaced_files_are_removed_paced_after_each_compaction() {
        let dir = temp("remove");
        let mut h = open(&dir, 1 << 30);
        let put = |i: u32| Op::Put {
            table: 1,
            key: i.to_le_bytes().to_vec(),
            value: vec![i as u8; 1000],
        };
        for round in 0..3u32 {
            for i in 0..300 {
                h.commit(&[put(round * 1000 + i)]);
            }
            h.store.start_compaction();
            h.wait_compaction();
        }
        // Three compactions: snapshot 3 and log 4 stay; the earlier logs
        // and snapshots 1 and 2 (the latter mapped until the swap) go, in
        // the background, shrunk in steps first.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let left = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".tmp"))
                .collect();
            names.sort();
            names
        };
        while left().len() > 2 {
            assert!(std::time::Instant::now() < deadline, "left: {:?}", left());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            left(),
            [
                "table-0000000000000003.snap".to_string(),
                "wal-0000000000000004.log".to_string()
            ]
        );
        for round in 0..3u32 {
            let k = round * 1000 + 299;
            assert_eq!(h.get(&k.to_le_bytes()), Some(vec![k as u8; 1000]));
        }
        h.close();
        let h = open(&dir, 1 << 30);
        assert_eq!(
            h.get(&2299u32.to_le_bytes()),
            Some(vec![2299u32 as u8; 1000])
        );
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn logs_are_extended_and_rolled_ahead_of_the_writes() {
        let dir = temp("fill");
        std::fs::create_dir_all(&dir).unwrap();
        // A stray prepared log (a crash while it was filled) is not read.
        std::fs::write(next_log_path(&dir), b"not a log").unwrap();
        // Compaction at 1 MiB: the next log is prepared past 512 KiB.
        let mut h = open(&dir, 1 << 20);
        // 600 records of ~1 KiB: ten times the 64 KiB fill, so the log is
        // extended many times while commits go on.
        for i in 0..600u32 {
            h.commit(&[Op::Put {
                table: 1,
                key: i.to_le_bytes().to_vec(),
                value: vec![i as u8; 1000],
            }]);
        }
        let log = wal_path(&dir, 1);
        assert!(std::fs::metadata(&log).unwrap().len() > 600 * 1000);
        // A roll onto the prepared log (zero-filled, header written now).
        h.store.start_compaction();
        h.wait_compaction();
        h.commit(&[Op::Put {
            table: 1,
            key: b"after".to_vec(),
            value: b"roll".to_vec(),
        }]);
        h.close();
        let rolled = std::fs::read(wal_path(&dir, 2)).unwrap();
        let header = WalHeader::decode(&rolled[..WAL_HEADER_BYTES]).unwrap();
        assert_eq!(header.generation, 2);
        assert!(rolled.len() as u64 >= WAL_HEADER_BYTES as u64 + 64 * 1024);
        let h = open(&dir, 1 << 30);
        for i in 0..600u32 {
            assert_eq!(h.get(&i.to_le_bytes()), Some(vec![i as u8; 1000]), "{i}");
        }
        assert_eq!(h.get(b"after"), Some(b"roll".to_vec()));
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scans_match_a_model_across_the_snapshot_a_running_compaction_and_the_overlay() {
        let dir = temp("scanmodel");
        let mut h = open(&dir, 1 << 30);
        let mut model = std::collections::BTreeMap::new();
        let mut x: u32 = 12345;
        let mut step =
            |h: &mut Harness, model: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let key = vec![(x >> 16) as u8 % 64];
                if x.is_multiple_of(4) {
                    h.commit(&[Op::Delete {
                        table: 1,
                        key: key.clone(),
                    }]);
                    model.remove(&key);
                } else {
                    let value = vec![(x >> 8) as u8];
                    h.commit(&[Op::Put {
                        table: 1,
                        key: key.clone(),
                        value: value.clone(),
                    }]);
                    model.insert(key, value);
                }
            };
        let check = |h: &Harness, model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>| {
            let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
            assert_eq!(h.store.scan(1, None, usize::MAX).unwrap(), want);
            // In pages of 5, each after the last key of the one before.
            let mut paged = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = h.store.scan(1, after.as_deref(), 5).unwrap();
                after = page.last().map(|(k, _)| k.clone());
                let done = page.len() < 5;
                paged.extend(page);
                if done {
                    break;
                }
            }
            assert_eq!(paged, want);
            // The keys below 32, stopping at the first beyond.
            let low: Vec<_> = want.iter().filter(|(k, _)| k[0] < 32).cloned().collect();
            assert_eq!(
                h.store
                    .scan_while(1, None, usize::MAX, |k| k[0] < 32)
                    .unwrap(),
                low
            );
        };
        for round in 0..4 {
            for _ in 0..150 {
                step(&mut h, &mut model);
            }
            check(&h, &model);
            h.store.start_compaction();
            // Changes while the compaction runs: three layers to merge.
            for _ in 0..100 {
                step(&mut h, &mut model);
            }
            check(&h, &model);
            h.wait_compaction();
            check(&h, &model);
            let _ = round;
        }
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scan_merges_snapshot_and_overlay_in_key_order() {
        let dir = temp("scan");
        let mut h = open(&dir, 1 << 30);
        for k in [1u8, 3, 5, 7] {
            h.commit(&[Op::Put {
                table: 1,
                key: vec![k],
                value: vec![k],
            }]);
        }
        h.commit(&[Op::Put {
            table: 2,
            key: vec![0],
            value: vec![0],
        }]);
        h.store.start_compaction();
        h.wait_compaction();
        h.commit(&[Op::Put {
            table: 1,
            key: vec![4],
            value: vec![44],
        }]);
        h.commit(&[Op::Put {
            table: 1,
            key: vec![5],
            value: vec![55],
        }]);
        h.commit(&[Op::Delete {
            table: 1,
            key: vec![3],
        }]);
        let all = h.store.scan(1, None, 100).unwrap();
        let keys: Vec<(u8, u8)> = all.iter().map(|(k, v)| (k[0], v[0])).collect();
        assert_eq!(keys, vec![(1, 1), (4, 44), (5, 55), (7, 7)]);
        let after: Vec<u8> = h
            .store
            .scan(1, Some(&[4]), 2)
            .unwrap()
            .iter()
            .map(|(k, _)| k[0])
            .collect();
        assert_eq!(after, vec![5, 7]);
        assert_eq!(h.store.scan(2, None, 10).unwrap().len(), 1);
        h.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_tail_is_cut_and_earlier_commits_survive() {
        let dir = temp("torn");
        let mut h = open(&dir, 1 << 30);
        for i in 0..10u8 {
            h.commit(&[Op::Put {
                table: 1,
                key: vec![i],
                value: vec![i; 10],
            }]);
        }
        h.close();
        let log = wal_path(&dir, 1);
        let mut full = std::fs::read(&log).unwrap();
        // The data ends where the zero fill begins.
        let mut data_end = WAL_HEADER_BYTES;
        read_records(&full[WAL_HEADER_BYTES..], |r| {
            data_end = WAL_HEADER_BYTES + r.end
        });
        full.truncate(data_end);
        // Cut the log at every byte of its last record: the first 9 survive.
        let record = 9 + 2 + 1 + 1 + 2 + 1 + 4 + 10;
        for cut in full.len() - record..full.len() {
            let img = temp("cut");
            std::fs::write(wal_path(&img, 1), &full[..cut]).unwrap();
            let h = open(&img, 1 << 30);
            for i in 0..9u8 {
                assert_eq!(h.get(&[i]), Some(vec![i; 10]), "cut {cut}");
            }
            assert_eq!(h.get(&[9]), None);
            h.close();
            // The file was cut back to its last whole record (zeros after
            // it: the log is extended ahead of the next write).
            let after = std::fs::read(wal_path(&img, 1)).unwrap();
            let whole = full.len() - record;
            assert_eq!(&after[..whole], &full[..whole], "cut {cut}");
            assert!(after[whole..].iter().all(|&b| b == 0), "cut {cut}");
            let _ = std::fs::remove_dir_all(img);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn damage_in_an_older_log_is_refused() {
        let dir = temp("older");
        let mut h = open(&dir, 1 << 30);
        h.commit(&[Op::Put {
            table: 1,
            key: vec![1],
            value: vec![1],
        }]);
        h.close();
        // A second log exists, so damage in the first is not a torn tail.
        let mut second = create_log(&dir, IDENTITY, 2, 4096).unwrap();
        second.flush().unwrap();
        let first = wal_path(&dir, 1);
        let mut bytes = std::fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        let err = ShardStore::open(&dir, IDENTITY, StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StoreError::Refused { .. }), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn another_shard_count_is_refused() {
        let dir = temp("identity");
        let mut h = open(&dir, 1 << 30);
        h.commit(&[Op::Put {
            table: 1,
            key: vec![1],
            value: vec![1],
        }]);
        h.close();
        let other = Identity {
            shards: 2,
            ..IDENTITY
        };
        let err = ShardStore::open(&dir, other, StoreOptions::default()).unwrap_err();
        assert!(err.to_string().contains("--cores"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
