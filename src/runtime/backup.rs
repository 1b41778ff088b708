//! Online backup: a copy of the data directory taken while the cores
//! serve reads and writes.
//!
//! Every store (each shard's, and the catalog's on core 0) holds its
//! compactions off and names its files: the newest snapshot and the logs
//! after it. Snapshots are never written again once renamed into place, and
//! logs only grow, so while the holds last those files are a complete
//! record of the store, short only of what is appended meanwhile. They are
//! copied off the cores (each file fsync'd, then each directory), and the
//! holds released.
//!
//! The cut is the moment the request arrives: a write acknowledged before
//! it is durable in a log, so it is in the copy. Writes acknowledged while
//! the copy runs may be in it or not; a record half copied at the end of a
//! log is a torn tail, which the start on the copy cuts as it cuts one
//! after a crash.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Core, MeshError};
use crate::domain::shard::ShardId;
use crate::storage::store::recover;
use crate::storage::{Identity, ShardStore, StoreError};

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

/// Files to copy, by the directory (relative to the data directory) they
/// go to, with the store's identity.
type Held = Vec<(String, Identity, Vec<PathBuf>)>;

/// The stores of the core this runs on, with their directory names.
fn stores_here(core: &Core) -> Vec<(String, Rc<ShardStore>)> {
    let mut out = vec![(format!("shard-{}", core.shard.0), core.store.clone())];
    if let Some(c) = &core.catalog_store {
        out.push(("catalog".into(), c.clone()));
    }
    out
}

/// Holds every store of this core, once none is compacting.
async fn hold_here(core: Rc<Core>) -> Result<Held, StoreError> {
    loop {
        let stores = stores_here(&core);
        let mut held: Held = Vec::with_capacity(stores.len());
        let mut taken = Vec::with_capacity(stores.len());
        let mut busy = false;
        for (name, store) in &stores {
            match store.hold() {
                Ok(Some(files)) => {
                    held.push((name.clone(), store.identity(), files));
                    taken.push(store.clone());
                }
                Ok(None) => busy = true,
                Err(e) => {
                    taken.iter().for_each(|s| s.release());
                    return Err(e);
                }
            }
            if busy {
                break;
            }
        }
        if !busy {
            return Ok(held);
        }
        taken.iter().for_each(|s| s.release());
        super::stream::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Copies the data directory `data` into `to` (absent, or an empty
/// directory) while the server runs.
pub async fn backup(core: &Core, data: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    check_destination(data, to)?;
    let shards = core.shards();
    let mut held: Held = Vec::new();
    let mut holding = Vec::new();
    let mut failure = None;
    for k in (0..shards).map(ShardId) {
        match core.on(k, hold_here).await {
            Ok(Ok(h)) => {
                held.extend(h);
                holding.push(k);
            }
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
        None => copy_off_core(data.to_owned(), to.to_owned(), held).await,
    };
    for k in holding {
        let released = core
            .on(k, |c| async move {
                stores_here(&c).iter().for_each(|(_, s)| s.release());
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
    held: Held,
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

/// Copies FORMAT and every held file, each fsync'd, then the directories.
fn copy(data: &Path, to: &Path, held: &Held) -> Result<BackupReport, BackupError> {
    let mut report = BackupReport::default();
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut copy_file = |from: &Path, into: &Path| -> Result<(), BackupError> {
        let name = from.file_name().unwrap_or_default();
        let dest = into.join(name);
        let bytes = std::fs::copy(from, &dest).map_err(io(from))?;
        std::fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(io(&dest))?;
        report.files += 1;
        report.bytes += bytes;
        Ok(())
    };
    for (dir, identity, files) in held {
        let into = to.join(dir);
        std::fs::create_dir_all(&into).map_err(io(&into))?;
        for f in files {
            copy_file(f, &into)?;
        }
        trim_torn_tail(&into, *identity)?;
        sync_dir(&into)?;
    }
    // FORMAT last: a copy without it is not taken for a data directory.
    copy_file(&data.join("FORMAT"), to)?;
    sync_dir(to)?;
    Ok(report)
}

/// Reads the copied store as a start would, and cuts the record the copy
/// caught half written at the end of the active log, if any: the copy then
/// checks clean. Damage anywhere else fails the backup.
fn trim_torn_tail(dir: &Path, identity: Identity) -> Result<(), BackupError> {
    let rec = recover(dir, identity, false)?;
    for log in rec.report.logs.iter().filter(|l| l.damage.is_some()) {
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
