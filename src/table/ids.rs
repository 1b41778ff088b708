//! The one id allocator of sharded tables. A row's id names its shard:
//! `counter * shards + shard`. Each shard keeps, per table, the next unused
//! counter in its `META` table.
//!
//! An id handed out is never handed out again, whatever the concurrency,
//! crash or restart:
//! - on a core, counters are taken from a per-core cursor, never twice;
//! - the stored counter is written in the same commit as the row, as the
//!   larger of what is stored *at commit time* and the counter used, so two
//!   creates that commit in the other order than they took their ids never
//!   lower it;
//! - a restart starts the cursor at the stored counter, which every
//!   acknowledged row's commit raised past its own id.
//!
//! An id taken but never committed (a create that failed) may be taken
//! again after a restart: no one was ever told of it.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::runtime::Core;
use crate::storage::StoreError;
use crate::storage::{Op, TableId};

/// Per-shard counters (in every shard store, and in the catalog).
pub const META: TableId = 1;

thread_local! {
    /// This core's next counter per table (its counter key).
    static CURSORS: RefCell<HashMap<&'static [u8], u64>> = RefCell::new(HashMap::new());
}

/// The counter stored on this core's shard for `counter` (1 when none).
pub fn stored(core: &Core, counter: &[u8]) -> Result<u64, StoreError> {
    core.store.read(META, counter, |v| {
        v.and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(1, u64::from_be_bytes)
    })
}

/// Takes the next id of the table counted by `counter` on this core's
/// shard; returns the id and the counter to pass to [`persist`].
///
/// An error, and no id, when the stored counter cannot be read (its
/// snapshot block is damaged): an id is never guessed.
pub fn next(core: &Core, counter: &'static [u8]) -> Result<(u64, u64), StoreError> {
    Ok(next_after(core, counter, stored(core, counter)?))
}

/// [`next`] with the stored counter read already (by [`stored`], on this
/// core, with no await since).
pub fn next_after(core: &Core, counter: &'static [u8], stored: u64) -> (u64, u64) {
    // A bulk import may have raised the stored counter since.
    let used = CURSORS.with(|c| {
        let mut c = c.borrow_mut();
        let cursor = c.entry(counter).or_insert(stored);
        let used = (*cursor).max(stored);
        *cursor = used + 1;
        used
    });
    (
        used * u64::from(core.shards()) + u64::from(core.shard.0),
        used,
    )
}

/// The write that records counter `used` as taken, built on the owning
/// core when the row is committed, with no await between this call and
/// the commit: it never lowers the stored counter.
pub fn persist(core: &Core, counter: &'static [u8], used: u64) -> Op {
    Op::Put {
        table: META,
        key: counter.to_vec(),
        // `used` came from a successful read of the stored counter.
        value: stored(core, counter)
            .unwrap_or(0)
            .max(used + 1)
            .to_be_bytes()
            .to_vec(),
    }
}

fn catalog_next(view: &crate::runtime::CatalogView, counter: &[u8]) -> u64 {
    view.get(META, counter)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(1, u64::from_be_bytes)
}

/// The next id of a catalog table, from the newest catalog view's counter
/// (catalog changes are serialized on core 0), and the counter write.
pub fn next_in_catalog(view: &crate::runtime::CatalogView, counter: &'static [u8]) -> (u64, Op) {
    let next = catalog_next(view, counter);
    (next, counter_at(counter, next + 1))
}

/// Id `id` of a catalog table, given by the client: taken when it is at
/// or above the next id (the counter moves past it), else `None`.
pub fn claim_in_catalog(
    view: &crate::runtime::CatalogView,
    counter: &'static [u8],
    id: u64,
) -> Option<(u64, Op)> {
    (id >= catalog_next(view, counter) && id < u64::MAX).then(|| (id, counter_at(counter, id + 1)))
}

fn counter_at(counter: &[u8], next: u64) -> Op {
    Op::Put {
        table: META,
        key: counter.to_vec(),
        value: next.to_be_bytes().to_vec(),
    }
}
