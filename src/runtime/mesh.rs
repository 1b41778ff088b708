//! The shard mesh: one bounded inbox per core. `Core::submit_to` runs a
//! closure on the core that owns a shard and awaits its result (Seastar's
//! `submit_to`); a key owned by the calling core runs in place.

use std::future::Future;
use std::pin::Pin;

use crate::domain::shard::ShardId;

/// A boxed future that stays on its core.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Work sent to another core: called there, its future spawned there.
pub type Job = Box<dyn FnOnce() -> LocalBoxFuture<'static, ()> + Send>;

/// Jobs an inbox holds before senders are told the core is busy.
pub const MAX_INBOX_JOBS: usize = 8192;

/// Why work could not reach its core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    #[error("shard {0} is busy (inbox full)")]
    Busy(ShardId),
    #[error("shard {0} has stopped")]
    Stopped(ShardId),
    #[error("no shard {0}")]
    NoSuchShard(ShardId),
}

/// Senders to every core's inbox; cloned onto every core.
#[derive(Clone, Debug)]
pub struct Mesh {
    inboxes: Vec<async_channel::Sender<Job>>,
}

impl Mesh {
    /// A mesh of `cores` inboxes, and the receiving end of each.
    pub fn new(cores: u16) -> (Mesh, Vec<async_channel::Receiver<Job>>) {
        let (inboxes, receivers) = (0..cores)
            .map(|_| async_channel::bounded(MAX_INBOX_JOBS))
            .unzip();
        (Mesh { inboxes }, receivers)
    }

    /// Number of shards.
    pub fn shards(&self) -> u16 {
        u16::try_from(self.inboxes.len()).unwrap_or(u16::MAX)
    }

    /// Queues `job` on `shard`'s core without waiting.
    pub fn send(&self, shard: ShardId, job: Job) -> Result<(), MeshError> {
        let inbox = self
            .inboxes
            .get(shard.index())
            .ok_or(MeshError::NoSuchShard(shard))?;
        inbox.try_send(job).map_err(|e| match e {
            async_channel::TrySendError::Full(_) => MeshError::Busy(shard),
            async_channel::TrySendError::Closed(_) => MeshError::Stopped(shard),
        })
    }

    /// Runs `f` on `shard`'s core and returns its result.
    pub async fn call<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, MeshError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.send(
            shard,
            Box::new(move || {
                Box::pin(async move {
                    let _ = tx.send(f().await);
                })
            }),
        )?;
        rx.await.map_err(|_| MeshError::Stopped(shard))
    }
}
