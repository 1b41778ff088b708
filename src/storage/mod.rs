//! Durable state, per shard: a memory-mapped snapshot of checksummed blocks, a write-ahead
//! log with group commit, and the overlay of changes since the snapshot.
//! See `store.rs` for the files and the recovery rules, `codec.rs` for the
//! change format, `wal.rs` and `snapshot.rs` for the file formats.

pub mod codec;
pub mod legacy;
pub mod paced;
pub mod record;
pub mod snapshot;
pub mod sort;
pub mod store;
pub mod wal;

pub use codec::{Op, TableId};
pub use store::{Durability, Held, Identity, ShardStore, StoreError, StoreOptions};
