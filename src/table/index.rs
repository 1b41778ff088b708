//! Unique secondary indexes of sharded tables (IMSI → AuC, ICCID → AuC,
//! MSISDN → subscriber, ...): the entry lives on the shard of its own key
//! and names the id of the row, which lives on the id's shard.
//!
//! Writes claim the index entry first (durably), then write the row, then
//! release the claim; reads go through the entry and check that the row
//! still carries the key. A crash between the two writes leaves an entry
//! whose row does not carry the key: it reads as absent, and the next
//! claim of that key takes it over. While a claim is in flight, the key is
//! pending on its shard and a second claim is refused, so two concurrent
//! creates cannot both win.
//!
//! Catalog tables keep their unique entries in the catalog itself, in the
//! same commit as the row (see [`super`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use super::TableError;
use crate::domain::shard::{shard_of, ShardId};
use crate::runtime::Core;
use crate::storage::{Op, TableId};

/// Whether row `id` (read on its own shard) still carries `key`.
pub type Holds = Box<dyn FnOnce(&Core, u64, &[u8]) -> bool + Send>;

thread_local! {
    /// Keys with a claim in flight, on this core's shard.
    static PENDING: RefCell<HashSet<(TableId, Vec<u8>)>> = RefCell::new(HashSet::new());
}

/// The id an index entry names.
pub fn decode_id(v: Option<&[u8]>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// The shard owning row `id` of a sharded table (ids encode their shard).
pub fn owner_of(id: u64, shards: u16) -> ShardId {
    ShardId(u16::try_from(id % u64::from(shards.max(1))).unwrap_or(0))
}

/// Why a claim failed, before it is named for the client.
enum Claim {
    Taken(u64),
    Pending,
    Failed(TableError),
}

/// Claims `key` in index `table` for row `id`. On success the caller
/// writes the row, then calls [`release`].
async fn claim(
    core: &Core,
    table: TableId,
    key: Vec<u8>,
    id: u64,
    holds: Holds,
) -> Result<(), Claim> {
    let shard = shard_of(&key, core.shards());
    match core
        .on(shard, move |ic| async move {
            claim_here(ic, table, key, id, holds).await
        })
        .await
    {
        Ok(r) => r,
        Err(e) => Err(Claim::Failed(e.into())),
    }
}

async fn claim_here(
    ic: Rc<Core>,
    table: TableId,
    key: Vec<u8>,
    id: u64,
    holds: Holds,
) -> Result<(), Claim> {
    let pending_key = (table, key.clone());
    if PENDING.with(|p| p.borrow().contains(&pending_key)) {
        return Err(Claim::Pending);
    }
    PENDING.with(|p| p.borrow_mut().insert(pending_key.clone()));
    let result = async {
        let existing = ic
            .store
            .read(table, &key, decode_id)
            .map_err(|e| Claim::Failed(e.into()))?;
        if let Some(other) = existing.filter(|&e| e != id) {
            let k = key.clone();
            let alive = ic
                .on(owner_of(other, ic.shards()), move |oc| async move {
                    holds(&oc, other, &k)
                })
                .await
                .map_err(|e| Claim::Failed(e.into()))?;
            if alive {
                return Err(Claim::Taken(other));
            }
        }
        if existing != Some(id) {
            ic.store
                .commit(&[Op::Put {
                    table,
                    key: key.clone(),
                    value: id.to_be_bytes().to_vec(),
                }])
                .await
                .map_err(|e| Claim::Failed(e.into()))?;
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        PENDING.with(|p| p.borrow_mut().remove(&pending_key));
    }
    result
}

/// Ends a claim after the row was written (or abandoned).
pub async fn release(core: &Core, table: TableId, key: Vec<u8>) {
    let shard = shard_of(&key, core.shards());
    let _ = core
        .on(shard, move |_| async move {
            PENDING.with(|p| p.borrow_mut().remove(&(table, key)));
        })
        .await;
}

/// Removes the entry of `key` if it still names `id`, and any claim.
pub async fn remove(core: &Core, table: TableId, key: Vec<u8>, id: u64) -> Result<(), TableError> {
    let shard = shard_of(&key, core.shards());
    core.on(shard, move |ic| async move {
        PENDING.with(|p| p.borrow_mut().remove(&(table, key.clone())));
        if ic.store.read(table, &key, decode_id)? == Some(id) {
            ic.store.commit(&[Op::Delete { table, key }]).await?;
        }
        Ok(())
    })
    .await?
}

/// The id the entry of `key` names (durable), read on the core this runs
/// on (the key's own shard).
pub async fn lookup_here(
    core: &Core,
    table: TableId,
    key: &[u8],
) -> Result<Option<u64>, TableError> {
    Ok(core.store.read_durable(table, key, decode_id).await?)
}

/// The id the entry of `key` names (durable), if any. The caller checks
/// that the row still carries the key.
pub async fn lookup(core: &Core, table: TableId, key: Vec<u8>) -> Result<Option<u64>, TableError> {
    let shard = shard_of(&key, core.shards());
    core.on(shard, move |ic| async move {
        lookup_here(&ic, table, &key).await
    })
    .await?
}

/// One unique key of a row: its index, the new value, the value before
/// the change, how to check a holder, and its field name for errors.
pub struct Wanted {
    pub table: TableId,
    pub new: Option<String>,
    pub old: Option<String>,
    pub holds: Holds,
    pub field: &'static str,
}

/// Claims, for row `id`, every key whose value changes; on a failure the
/// claims made so far are removed. Returns the claims to release after the
/// row is written.
pub async fn claim_changed(
    core: &Core,
    id: u64,
    holder: &'static str,
    wanted: Vec<Wanted>,
) -> Result<Vec<(TableId, Vec<u8>)>, TableError> {
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
                return Err(match e {
                    Claim::Taken(other) => TableError::Taken {
                        field: w.field,
                        holder,
                        id: other,
                    },
                    Claim::Pending => TableError::Pending(w.field),
                    Claim::Failed(e) => e,
                });
            }
        }
    }
    Ok(claimed)
}
