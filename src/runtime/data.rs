//! The data directory: its lock, its format file, one store per shard and
//! the catalog.
//!
//! ```text
//! <data_dir>/LOCK          held (flock) by the one process using the directory
//! <data_dir>/FORMAT        data format, shard count and hash version
//! <data_dir>/shard-<k>/    shard k's snapshot and logs (storage::store)
//! <data_dir>/catalog/      the global tables, written by core 0
//! ```
//!
//! The catalog (APNs, templates, rates, routes: small, read-mostly) is
//! written through core 0's catalog store; after each committed change core
//! 0 publishes an immutable view to every core and waits until each has it,
//! so a reply to a catalog write means every core reads the new version.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::shard::{ShardId, HASH_VERSION};
use crate::storage::store::{recover, Recovered};
use crate::storage::{Identity, Op, ShardStore, StoreError, StoreOptions, TableId};

/// Version of the directory layout (FORMAT file).
pub const DATA_FORMAT: u32 = 1;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another authplane process (LOCK is held). Fix: stop that process, or use another --data-dir")]
    Locked(PathBuf),
    #[error("data directory {path} was written {found}; this server runs {expected}. Fix: {fix}")]
    Format {
        path: PathBuf,
        found: String,
        expected: String,
        fix: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A locked data directory. The lock is released when this is dropped.
#[derive(Debug)]
pub struct DataDir {
    pub path: PathBuf,
    pub shards: u16,
    _lock: File,
}

fn format_text(shards: u16) -> String {
    format!("authplane-data {DATA_FORMAT}\nshards {shards}\nhash_version {HASH_VERSION}\n")
}

impl DataDir {
    /// Creates (if needed) and locks `path` for `shards` shards; refuses a
    /// directory held by another process or written with another shard
    /// count, format or hash version.
    pub fn open(path: &Path, shards: u16) -> Result<DataDir, DataError> {
        std::fs::create_dir_all(path).map_err(io(path))?;
        let lock_path = path.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.try_lock()
            .map_err(|_| DataError::Locked(path.to_owned()))?;
        let format_path = path.join("FORMAT");
        let expected = format_text(shards);
        match std::fs::read_to_string(&format_path) {
            Ok(found) if found == expected => {}
            Ok(found) => {
                let found_shards = found
                    .lines()
                    .find_map(|l| l.strip_prefix("shards "))
                    .unwrap_or("?")
                    .to_owned();
                return Err(DataError::Format {
                    path: path.to_owned(),
                    found: found.replace('\n', ", ").trim_end_matches(", ").to_owned(),
                    expected: expected
                        .replace('\n', ", ")
                        .trim_end_matches(", ")
                        .to_owned(),
                    fix: if found.starts_with(&format!("authplane-data {DATA_FORMAT}\n")) {
                        if found_shards == shards.to_string() {
                            "restore a directory written by this version"
                        } else {
                            "start with --cores equal to the shards it was written with"
                        }
                    } else {
                        "use an authplane release that reads this format"
                    },
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tmp = path.join("FORMAT.tmp");
                std::fs::write(&tmp, &expected).map_err(io(&tmp))?;
                File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io(&tmp))?;
                std::fs::rename(&tmp, &format_path).map_err(io(&format_path))?;
                File::open(path)
                    .and_then(|d| d.sync_all())
                    .map_err(io(path))?;
            }
            Err(e) => return Err(io(&format_path)(e)),
        }
        Ok(DataDir {
            path: path.to_owned(),
            shards,
            _lock: lock,
        })
    }

    pub fn shard_dir(&self, shard: ShardId) -> PathBuf {
        self.path.join(format!("shard-{}", shard.0))
    }

    pub fn catalog_dir(&self) -> PathBuf {
        self.path.join("catalog")
    }

    pub fn shard_identity(&self, shard: ShardId) -> Identity {
        Identity {
            shard: shard.0,
            shards: self.shards,
            hash_version: HASH_VERSION,
        }
    }
}

/// The catalog is one shard of its own, whatever the core count.
pub const CATALOG_IDENTITY: Identity = Identity {
    shard: 0,
    shards: 1,
    hash_version: HASH_VERSION,
};

/// Typed structures kept beside the catalog's bytes, by key (decoded rows
/// of a table, a prefix trie, ...): built by the [`Deriver`] the view
/// carries, for every change, from the previous structure and the change.
pub type Derived = Arc<dyn std::any::Any + Send + Sync>;

/// Builds the derived structures of a new version: given the new view (its
/// entries updated, its structures still the previous version's) and the
/// ops that made it, returns the structures to replace.
pub type Deriver = Arc<dyn Fn(&CatalogView, &[Op]) -> Vec<(u32, Derived)> + Send + Sync>;

/// An immutable version of the catalog, shared by every core. The maps are
/// persistent (imbl's B-tree with structural sharing): the next version
/// shares every node a change does not touch, so publishing a change costs
/// O(log n) whatever the size of the catalog, not a copy of it.
#[derive(Default, Clone)]
pub struct CatalogView {
    pub version: u64,
    pub entries: imbl::OrdMap<(TableId, Vec<u8>), Arc<[u8]>>,
    derived: imbl::OrdMap<u32, Derived>,
    deriver: Option<Deriver>,
}

impl std::fmt::Debug for CatalogView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogView")
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .field("derived", &self.derived.len())
            .finish()
    }
}

impl CatalogView {
    pub fn get(&self, table: TableId, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(&(table, key.to_vec())).map(|v| &**v)
    }

    /// Every entry of `table`, in key order.
    pub fn table(&self, table: TableId) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.range(table, &[])
    }

    /// The entries of `table` from key `from` on, in key order.
    pub fn range<'v>(
        &'v self,
        table: TableId,
        from: &[u8],
    ) -> impl Iterator<Item = (&'v [u8], &'v [u8])> + 'v {
        self.entries
            .range((table, from.to_vec())..)
            .take_while(move |((t, _), _)| *t == table)
            .map(|((_, k), v)| (k.as_slice(), &**v))
    }

    /// The derived structure under `key`, if any.
    pub fn derived(&self, key: u32) -> Option<&Derived> {
        self.derived.get(&key)
    }

    /// This view with `deriver` set and every structure built from all
    /// the entries (at start).
    pub fn with_deriver(mut self, deriver: Deriver) -> CatalogView {
        let all: Vec<Op> = self
            .entries
            .iter()
            .map(|((t, k), v)| Op::Put {
                table: *t,
                key: k.clone(),
                value: v.to_vec(),
            })
            .collect();
        for (key, d) in deriver(&self, &all) {
            self.derived.insert(key, d);
        }
        self.deriver = Some(deriver);
        self
    }

    /// The next version: this one with `ops` applied.
    pub fn with(&self, ops: &[Op]) -> CatalogView {
        let mut entries = self.entries.clone();
        for op in ops {
            match op {
                Op::Put { table, key, value } => {
                    entries.insert((*table, key.clone()), Arc::from(value.as_slice()));
                }
                Op::Delete { table, key } => {
                    entries.remove(&(*table, key.clone()));
                }
            }
        }
        let mut next = CatalogView {
            version: self.version + 1,
            entries,
            derived: self.derived.clone(),
            deriver: self.deriver.clone(),
        };
        if let Some(d) = &self.deriver {
            for (key, value) in d(&next, ops) {
                next.derived.insert(key, value);
            }
        }
        next
    }
}

/// Reads the catalog as it is on disk (repairing a torn tail), for the
/// first view every core starts with.
pub fn load_catalog(dir: &Path) -> Result<CatalogView, DataError> {
    let Recovered {
        snapshot, overlay, ..
    } = recover(dir, CATALOG_IDENTITY, true)?;
    let mut entries = imbl::OrdMap::new();
    if let Some(s) = &snapshot {
        let damaged = |source| crate::storage::StoreError::Snapshot {
            path: dir.to_owned(),
            source,
        };
        let mut cursor = s.cursor().map_err(damaged)?;
        while let Some((ck, v)) = cursor.next_entry().map_err(damaged)? {
            if let Some((&t, k)) = ck.split_first() {
                entries.insert((t, k.to_vec()), Arc::from(v));
            }
        }
    }
    for (t, k, v) in overlay.values() {
        match v {
            Some(v) => {
                entries.insert((t, k.to_vec()), Arc::from(v));
            }
            None => {
                entries.remove(&(t, k.to_vec()));
            }
        }
    }
    Ok(CatalogView {
        version: 1,
        entries,
        ..CatalogView::default()
    })
}

/// Opens one shard's store on its core.
pub fn open_shard(
    data: &DataDir,
    shard: ShardId,
    options: StoreOptions,
) -> Result<std::rc::Rc<ShardStore>, DataError> {
    Ok(ShardStore::open(
        &data.shard_dir(shard),
        data.shard_identity(shard),
        options,
    )?)
}

/// Opens the catalog's store (core 0 only).
pub fn open_catalog(
    data: &DataDir,
    options: StoreOptions,
) -> Result<std::rc::Rc<ShardStore>, DataError> {
    Ok(ShardStore::open(
        &data.catalog_dir(),
        CATALOG_IDENTITY,
        options,
    )?)
}

/// A shared handle to a view, sent between cores.
pub type SharedView = Arc<CatalogView>;
