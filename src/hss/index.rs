//! Unique secondary indexes across shards (IMSI → AuC, ICCID → AuC,
//! MSISDN → subscriber): the entry lives on the shard of its own key and
//! names the id of the record, which lives on the id's shard.
//!
//! Writes claim the index entry first (durably), then write the record,
//! then release the claim; reads go through the entry and check that the
//! record still carries the key. A crash between the two writes leaves an
//! entry whose record does not carry the key: it reads as absent, and the
//! next claim of that key takes it over. While a claim is in flight, the
//! key is pending on its shard and a second claim is refused, so two
//! concurrent creates cannot both win.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use crate::domain::api_error::ApiError;
use crate::domain::shard::{shard_of, ShardId};
use crate::runtime::{Core, MeshError};
use crate::server::{mesh_error, store_error};
use crate::storage::{Op, StoreError, TableId};

/// Whether record `id` (read on its own shard) still carries `key`.
pub type Holds = fn(&Core, u64, &[u8]) -> bool;

/// Why a claim failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("already used by id {0}")]
    Taken(u64),
    #[error("being provisioned by a concurrent request")]
    Pending,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Mesh(#[from] MeshError),
}

thread_local! {
    /// Keys with a claim in flight, on this core's shard.
    static PENDING: RefCell<HashSet<(TableId, Vec<u8>)>> = RefCell::new(HashSet::new());
}

fn decode_id(v: Option<&[u8]>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// The shard owning record `id` (ids encode their shard).
pub fn owner_of(id: u64, shards: u16) -> ShardId {
    ShardId(u16::try_from(id % u64::from(shards.max(1))).unwrap_or(0))
}

/// Claims `key` in index `table` for record `id`. On success the caller
/// writes the record, then calls [`release`].
pub async fn claim(
    core: &Core,
    table: TableId,
    key: Vec<u8>,
    id: u64,
    holds: Holds,
) -> Result<(), ClaimError> {
    let shard = shard_of(&key, core.shards());
    core.on(shard, move |ic| async move {
        claim_here(ic, table, key, id, holds).await
    })
    .await?
}

async fn claim_here(
    ic: Rc<Core>,
    table: TableId,
    key: Vec<u8>,
    id: u64,
    holds: Holds,
) -> Result<(), ClaimError> {
    let pending_key = (table, key.clone());
    if PENDING.with(|p| p.borrow().contains(&pending_key)) {
        return Err(ClaimError::Pending);
    }
    PENDING.with(|p| p.borrow_mut().insert(pending_key.clone()));
    let result = async {
        let existing = ic.store.read(table, &key, decode_id);
        if let Some(other) = existing.filter(|&e| e != id) {
            let k = key.clone();
            let alive = ic
                .on(owner_of(other, ic.shards()), move |oc| async move {
                    holds(&oc, other, &k)
                })
                .await?;
            if alive {
                return Err(ClaimError::Taken(other));
            }
        }
        if existing != Some(id) {
            ic.store
                .commit(&[Op::Put {
                    table,
                    key: key.clone(),
                    value: id.to_be_bytes().to_vec(),
                }])
                .await?;
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        PENDING.with(|p| p.borrow_mut().remove(&pending_key));
    }
    result
}

/// Ends a claim after the record was written (or abandoned).
pub async fn release(core: &Core, table: TableId, key: Vec<u8>) {
    let shard = shard_of(&key, core.shards());
    let _ = core
        .on(shard, move |_| async move {
            PENDING.with(|p| p.borrow_mut().remove(&(table, key)));
        })
        .await;
}

/// Removes the entry of `key` if it still names `id`, and any claim.
pub async fn remove(core: &Core, table: TableId, key: Vec<u8>, id: u64) -> Result<(), ClaimError> {
    let shard = shard_of(&key, core.shards());
    core.on(shard, move |ic| async move {
        PENDING.with(|p| p.borrow_mut().remove(&(table, key.clone())));
        if ic.store.read(table, &key, decode_id) == Some(id) {
            ic.store.commit(&[Op::Delete { table, key }]).await?;
        }
        Ok(())
    })
    .await?
}

/// The id the entry of `key` names (durable), if any. The caller checks
/// that the record still carries the key.
pub async fn lookup(core: &Core, table: TableId, key: Vec<u8>) -> Result<Option<u64>, ClaimError> {
    let shard = shard_of(&key, core.shards());
    core.on(shard, move |ic| async move {
        Ok(ic.store.read_durable(table, &key, decode_id).await?)
    })
    .await?
}

/// The client's error for a failed claim of `what` (`holder` names the kind
/// of record holding it).
pub fn claim_error(what: &str, holder: &str, e: ClaimError) -> ApiError {
    match e {
        ClaimError::Taken(id) => {
            ApiError::bad_request(format!("{what} already provisioned ({holder} {id})"))
        }
        ClaimError::Pending => ApiError::bad_request(format!(
            "{what} is being provisioned by a concurrent request"
        )),
        ClaimError::Store(s) => store_error(s),
        ClaimError::Mesh(m) => mesh_error(m),
    }
}

/// The record whose unique key `key` is, through index `table`: the entry's
/// id, the record loaded on its shard by `load`, kept only if `carries`
/// says it still holds the key (so a stale entry reads as absent).
pub async fn find<'c, T, Fut>(
    core: &'c Core,
    table: TableId,
    key: &str,
    (what, holder): (&str, &str),
    load: impl FnOnce(&'c Core, u64) -> Fut,
    carries: impl FnOnce(&T) -> bool,
) -> Result<Option<T>, ApiError>
where
    Fut: std::future::Future<Output = Result<Option<T>, ApiError>>,
{
    let id = lookup(core, table, key.as_bytes().to_vec())
        .await
        .map_err(|e| claim_error(what, holder, e))?;
    let Some(id) = id else { return Ok(None) };
    Ok(load(core, id).await?.filter(carries))
}

/// One unique key of a record: its index, the new value, the value before
/// the change, how to check a holder, and its name for errors.
pub struct Wanted {
    pub table: TableId,
    pub new: Option<String>,
    pub old: Option<String>,
    pub holds: Holds,
    pub what: &'static str,
}

/// Claims, for record `id`, every key whose value changes; on a failure the
/// claims made so far are removed. Returns the claims to release after the
/// record is written.
pub async fn claim_changed(
    core: &Core,
    id: u64,
    holder: &str,
    wanted: Vec<Wanted>,
) -> Result<Vec<(TableId, Vec<u8>)>, ApiError> {
    let mut claimed = Vec::new();
    for w in wanted {
        let Some(key) = w.new.filter(|k| Some(k) != w.old.as_ref()) else {
            continue;
        };
        match claim(core, w.table, key.clone().into_bytes(), id, w.holds).await {
            Ok(()) => claimed.push((w.table, key.into_bytes())),
            Err(e) => {
                for (t, k) in claimed {
                    let _ = remove(core, t, k, id).await;
                }
                return Err(claim_error(w.what, holder, e));
            }
        }
    }
    Ok(claimed)
}
