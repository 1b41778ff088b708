//! Online backup: a copy of the data directory taken while the cores
//! serve reads and writes.
//!
//! Every store holds its compactions off and fixes its cut: its newest
//! snapshot, the logs after it, and where the records of its active log
//! end at that moment. Snapshots are never written again once renamed into
//! place and logs are only appended to, so those bytes stay as they are
//! while the hold lasts. Once they are durable, they are copied off the
//! cores (the active log up to its cut), each file fsync'd, then each
//! directory, and the holds released.
//!
//! - Every write acknowledged before the request is durable in a log
//!   before the cut, so it is in the copy; writes after a store's cut are
//!   not, so the copy ends on whole records.
//! - The shards are cut first and the catalog last. A row on a shard that
//!   names a catalog row (a subscriber's APN) was written after that
//!   catalog row was durable, so the copy never holds the one without the
//!   other.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Core, MeshError};
use crate::domain::shard::ShardId;
use crate::storage::store::recover;
use crate::storage::{Held, Identity, ShardStore, StoreError};

/// What a backup copied.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackupReport {
    pub files: u64,
    pub bytes: u64,
}

/// Why a backup failed (the source is untouched either way).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Mesh(#[from] MeshError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What to copy of each store: the directory (relative to the data
/// directory) it goes to, the store's identity and its cut.
type Cuts = Vec<(String, Identity, Held)>;

/// A store of a core: its shard's, or the catalog (core 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Shard,
    Catalog,
}

fn store_of(core: &Core, which: Which) -> Option<Rc<ShardStore>> {
    match which {
        Which::Shard => Some(core.store.clone()),
        Which::Catalog => core.catalog_store.clone(),
    }
}

/// Holds one store of this core once it is not compacting, and waits until
/// everything before its cut is durable; its identity and cut.
async fn hold_here(core: Rc<Core>, which: Which) -> Result<Option<(Identity, Held)>, StoreError> {
    let Some(store) = store_of(&core, which) else {
        return Ok(None);
    };
    loop {
        if let Some(held) = store.hold()? {
            if let Err(e) = store.durable_through(held.last_lsn).await {
                store.release();
                return Err(e);
            }
            return Ok(Some((store.identity(), held)));
        }
        super::stream::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Copies the data directory `data` into `to` (absent, or an empty
/// directory) while the server runs.
pub async fn backup(core: &Core, data: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    check_destination(data, to)?;
    // The shards first, the catalog last (see the module's comment).
    let order: Vec<(ShardId, Which, String)> = (0..core.shards())
        .map(|k| (ShardId(k), Which::Shard, format!("shard-{k}")))
        .chain(std::iter::once((
            ShardId(0),
            Which::Catalog,
            "catalog".to_owned(),
        )))
        .collect();
    let mut cuts: Cuts = Vec::with_capacity(order.len());
    let mut holding = Vec::with_capacity(order.len());
    let mut failure = None;
    for (k, which, dir) in order {
        match core.on(k, move |c| hold_here(c, which)).await {
            Ok(Ok(Some((identity, held)))) => {
                holding.push((k, which));
                cuts.push((dir, identity, held));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                failure = Some(BackupError::Store(e));
                break;
            }
            Err(e) => {
                failure = Some(BackupError::Mesh(e));
                break;
            }
        }
    }
    let copied = match failure {
        Some(e) => Err(e),
        None => copy_off_core(data.to_owned(), to.to_owned(), cuts).await,
    };
    for (k, which) in holding {
        let released = core
            .on(k, move |c| async move {
                if let Some(s) = store_of(&c, which) {
                    s.release();
                }
            })
            .await;
        if let Err(e) = released {
            tracing::error!(shard = k.0, error = %e, "cannot release a backup's hold");
        }
    }
    copied
}

/// The destination must be new (or an empty directory) and outside the
/// data directory.
fn check_destination(data: &Path, to: &Path) -> Result<(), BackupError> {
    if !to.is_absolute() {
        return Err(BackupError::Refused(format!(
            "backup destination {}: give an absolute path",
            to.display()
        )));
    }
    let data = data.canonicalize().map_err(io(data))?;
    let parent = to.parent().unwrap_or(to);
    let parent = parent.canonicalize().map_err(io(parent))?;
    if parent.starts_with(&data) {
        return Err(BackupError::Refused(format!(
            "backup destination {} is inside the data directory",
            to.display()
        )));
    }
    match std::fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Refused(format!(
                    "backup destination {} is not empty",
                    to.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(to)(e)),
    }
}

/// Runs the copy on a thread of its own and awaits it.
async fn copy_off_core(
    data: PathBuf,
    to: PathBuf,
    held: Cuts,
) -> Result<BackupReport, BackupError> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("authplane-backup".into())
        .spawn(move || {
            let _ = tx.send(copy(&data, &to, &held));
        })
        .map_err(io(Path::new("backup thread")))?;
    rx.await
        .map_err(|_| BackupError::Refused("the backup thread stopped".into()))?
}

/// Copies FORMAT and every store's files up to its cut, each fsync'd,
/// then the directories.
fn copy(data: &Path, to: &Path, cuts: &Cuts) -> Result<BackupReport, BackupError> {
    let mut report = BackupReport::default();
    std::fs::create_dir_all(to).map_err(io(to))?;
    // `limit`: the bytes to take (None: all).
    let mut copy_file = |from: &Path, into: &Path, limit: Option<u64>| -> Result<(), BackupError> {
        let name = from.file_name().unwrap_or_default();
        let dest = into.join(name);
        let mut source = std::fs::File::open(from).map_err(io(from))?;
        let mut out = std::fs::File::create(&dest).map_err(io(&dest))?;
        let bytes = match limit {
            Some(n) => std::io::copy(&mut std::io::Read::take(&mut source, n), &mut out),
            None => std::io::copy(&mut source, &mut out),
        }
        .map_err(io(from))?;
        out.sync_all().map_err(io(&dest))?;
        report.files += 1;
        report.bytes += bytes;
        Ok(())
    };
    for (dir, identity, held) in cuts {
        let into = to.join(dir);
        std::fs::create_dir_all(&into).map_err(io(&into))?;
        for f in &held.files {
            let limit = (*f == held.active.0).then_some(held.active.1);
            copy_file(f, &into, limit)?;
        }
        verify(&into, *identity)?;
        sync_dir(&into)?;
    }
    // FORMAT last: a copy without it is not taken for a data directory.
    copy_file(&data.join("FORMAT"), to, None)?;
    sync_dir(to)?;
    Ok(report)
}

/// Reads the copied store as a start would. With `Durability::Sync` every
/// log ends on a whole record (the cut is between durable records). With
/// `none`, records before the cut may not have reached the file yet when
/// it was copied: the copy is then cut after the last whole record, as a
/// start after a crash would cut it. Damage anywhere else fails the backup.
fn verify(dir: &Path, identity: Identity) -> Result<(), BackupError> {
    let rec = recover(dir, identity, false)?;
    // Every block of the copied snapshot is read against its checksum.
    if let Some(snap) = &rec.snapshot {
        let report = snap.check(0, |_| true);
        if let Some(e) = report.damaged.first() {
            return Err(BackupError::Refused(format!(
                "the copied snapshot of {} is damaged: {e}",
                dir.display()
            )));
        }
    }
    for log in rec.report.logs.iter().filter(|l| l.damage.is_some()) {
        tracing::warn!(
            log = %log.path.display(),
            offset = log.good_end,
            "backup: the copied log ends inside a record (durability none?); cut there"
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&log.path)
            .map_err(io(&log.path))?;
        f.set_len(log.good_end)
            .and_then(|()| f.sync_all())
            .map_err(io(&log.path))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
