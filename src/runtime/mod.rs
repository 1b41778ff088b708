//! The runtime layer: one pinned executor per core, a `SO_REUSEPORT`
//! listener on each, the shard mesh, graceful shutdown. It moves bytes and
//! messages; what a request means is the [`App`]'s business.
//!
//! Every call into the executor (monoio, with io_uring set up with
//! `IORING_SETUP_COOP_TASKRUN`; see docs/decisions/0001) lives in this
//! folder, so the executor can be swapped without touching services.

pub use crate::clock;
pub mod backup;
mod conn;
pub mod data;
pub mod event;
pub mod fetch;
pub mod mesh;
pub mod metrics;
pub mod stream;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{IoDriver, ListenerConfig, ServerConfig};
use crate::domain::api_error::{ApiError, ApiSet};
use crate::domain::http1::{ClientAuth, Request};
use crate::domain::shard::ShardId;
use crate::storage::{Op, ShardStore, StoreError, StoreOptions};

pub use data::{CatalogView, DataDir, SharedView};
pub use event::Event;
pub use mesh::{LocalBoxFuture, Mesh, MeshError};
pub use metrics::CoreMetrics;

/// What serves requests on a core. One instance per core, made on that
/// core by the factory given to [`run`].
pub trait App: 'static {
    /// Serves one request, writing the whole response into `out`.
    /// `received` is when its last bytes were read (latency starts there).
    fn serve<'a>(
        &'a self,
        req: Request<'a>,
        received: std::time::Instant,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = ()> + 'a;

    /// Writes the error response for a request that could not be parsed
    /// or timed out (the connection closes after it). `path` is what is
    /// known of the target, to pick the API's error shape.
    fn reject(&self, err: ApiError, path: &str, out: &mut Vec<u8>);

    /// The same application serving only `apis` (one listener's): a path
    /// of another API is not found.
    fn serving(&self, apis: ApiSet) -> Self
    where
        Self: Sized;
}

/// The TLS configuration of each HTTP listener (None: plain HTTP), in the
/// order of `server.listeners`.
#[derive(Debug, Default)]
pub struct TlsListeners(pub Vec<Option<Arc<tls::TlsServer>>>);

impl TlsListeners {
    /// Loads every TLS listener's files.
    pub fn load(listeners: &[ListenerConfig]) -> Result<TlsListeners, StartError> {
        listeners
            .iter()
            .map(|l| {
                l.tls
                    .as_ref()
                    .map(|t| {
                        tls::TlsServer::load(&l.name, t).map(Arc::new).map_err(|e| {
                            StartError::Tls {
                                listener: l.name.clone(),
                                message: e.to_string(),
                            }
                        })
                    })
                    .transpose()
            })
            .collect::<Result<_, _>>()
            .map(TlsListeners)
    }

    /// The TLS listeners.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<tls::TlsServer>> {
        self.0.iter().flatten()
    }

    /// SIGHUP: every TLS listener reads its files again; one that does not
    /// load keeps what it has, and the log says why.
    pub fn reload(&self) {
        for server in self.servers() {
            match server.reload() {
                Ok(()) => {
                    tracing::info!(listener = %server.name, "TLS certificate and key reloaded")
                }
                Err(e) => tracing::error!(
                    listener = %server.name,
                    error = %e,
                    "TLS reload refused: the certificate in use is kept"
                ),
            }
        }
    }
}

/// A listener as bound, for the start-up lines.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: bool,
    pub apis: ApiSet,
}

/// A stop registered by something started on a core; stops run in reverse
/// order of registration when the core shuts down.
type Stop = Box<dyn FnOnce() -> LocalBoxFuture<'static, ()>>;

/// The state of one core, shared by every task on it (not `Send`: it never
/// leaves its core).
pub struct Core {
    pub shard: ShardId,
    pub mesh: Mesh,
    pub metrics: RefCell<CoreMetrics>,
    /// This core's shard of the durable state.
    pub store: Rc<ShardStore>,
    /// The catalog's store: on core 0 only.
    catalog_store: Option<Rc<ShardStore>>,
    /// The newest catalog view this core has been given.
    catalog: RefCell<SharedView>,
    /// On core 0: the catalog with every commit applied, durable or not
    /// (commits build on it; readers see `catalog`).
    catalog_latest: RefCell<SharedView>,
    shutdown: Event,
    open_connections: Cell<u32>,
    stops: RefCell<Vec<(&'static str, Stop)>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("shard", &self.shard).finish()
    }
}

thread_local! {
    static CURRENT_SHARD: Cell<Option<ShardId>> = const { Cell::new(None) };
}

/// The shard of the core this code runs on (None off the cores).
pub fn current_shard() -> Option<ShardId> {
    CURRENT_SHARD.with(Cell::get)
}

impl Core {
    /// Number of shards (= cores).
    pub fn shards(&self) -> u16 {
        self.mesh.shards()
    }

    /// Runs `f` on the core owning `shard` and returns its result; in place
    /// when that is this core.
    pub async fn submit_to<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, MeshError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if shard == self.shard {
            return Ok(f().await);
        }
        self.metrics.borrow_mut().mesh_hops += 1;
        self.mesh.call(shard, f).await
    }

    /// A copy of this core's statistics, with its open connections.
    pub fn metrics_snapshot(&self) -> CoreMetrics {
        let mut m = self.metrics.borrow().clone();
        m.connections_open = u64::from(self.open_connections.get());
        let s = self.store.scrub();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        m.snapshots = vec![metrics::SnapshotFigures {
            shard: self.shard.0,
            generation: load(&s.generation),
            bytes: load(&s.snapshot_bytes),
            checked_bytes: load(&s.checked_bytes),
            passes: load(&s.passes),
            damaged: load(&s.damaged),
            read_errors: load(&s.read_errors),
        }];
        m
    }

    /// The catalog as this core sees it (lock-free: an immutable view).
    pub fn catalog(&self) -> SharedView {
        self.catalog.borrow().clone()
    }

    /// Changes the catalog through core 0: `change` runs there against
    /// the newest view (so ids and checks see every earlier change) and
    /// returns the ops to commit and a result. Once they are durable, the
    /// new view is published to every core; returns the result after every
    /// core has it.
    pub async fn catalog_update<T, E, F>(&self, change: F) -> Result<Result<T, E>, CommitError>
    where
        F: FnOnce(&CatalogView) -> Result<(Vec<Op>, T), E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let shards = self.shards();
        let committed = self
            .submit_to(ShardId(0), move || async move {
                let Some((store, latest)) = with_current_core(|c| {
                    Some((c.catalog_store.clone()?, c.catalog_latest.borrow().clone()))
                })
                .flatten() else {
                    return Err(CommitError::Stopped);
                };
                let (ops, out) = match change(&latest) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(e)),
                };
                let next = Arc::new(latest.with(&ops));
                with_current_core(|c| *c.catalog_latest.borrow_mut() = next.clone());
                store.commit(&ops).await.map_err(CommitError::Store)?;
                Ok(Ok((next, out)))
            })
            .await
            .map_err(CommitError::Mesh)??;
        let (view, out) = match committed {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        // Every core gets the new version at once (one message each, sent
        // before any is awaited), so publishing costs one round trip, not
        // one per core.
        let install = |view: SharedView| {
            with_current_core(|c| {
                let mut current = c.catalog.borrow_mut();
                // Views may arrive out of order; never go back.
                if view.version > current.version {
                    *current = view;
                }
            });
        };
        let mut acks = Vec::with_capacity(usize::from(shards));
        for k in (0..shards).map(ShardId) {
            if k == self.shard {
                install(view.clone());
                continue;
            }
            let (tx, rx) = futures_channel::oneshot::channel();
            let view = view.clone();
            self.mesh
                .send(
                    k,
                    Box::new(move || {
                        Box::pin(async move {
                            install(view);
                            let _ = tx.send(());
                        })
                    }),
                )
                .map_err(CommitError::Mesh)?;
            acks.push((k, rx));
        }
        for (k, rx) in acks {
            rx.await
                .map_err(|_| CommitError::Mesh(MeshError::Stopped(k)))?;
        }
        Ok(Ok(out))
    }

    /// Runs `f` with the core owning `shard` (its store, its catalog) and
    /// returns its result.
    pub async fn on<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, MeshError>
    where
        F: FnOnce(Rc<Core>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        self.submit_to(shard, move || async move {
            match current_core() {
                Some(core) => Ok(f(core).await),
                None => Err(MeshError::Stopped(shard)),
            }
        })
        .await?
    }

    /// True once shutdown has begun on this core.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_set()
    }

    /// Resolves once shutdown has begun on this core.
    pub fn stopping(&self) -> event::Wait {
        self.shutdown.wait()
    }

    /// Registers a stop, run in reverse order of registration at shutdown.
    pub fn on_stop<F, Fut>(&self, name: &'static str, f: F)
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.stops
            .borrow_mut()
            .push((name, Box::new(move || Box::pin(f()))));
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "io_uring is not available on this host ({source}). Fix: allow it \
         (sysctl kernel.io_uring_disabled=0; a container's seccomp profile must permit \
         io_uring_setup), or run on epoll with server.io_driver = \"epoll\" \
         (AUTHPLANE_SERVER__IO_DRIVER=epoll)"
    )]
    IoUringUnavailable { source: std::io::Error },
    #[error(
        "io_uring could not allocate its rings ({source}): the locked-memory limit is too \
         low. Fix: raise it (ulimit -l unlimited; LimitMEMLOCK=infinity in the systemd unit, \
         see tuning/), or run on epoll with server.io_driver = \"epoll\""
    )]
    MemlockTooLow { source: std::io::Error },
    #[error("cannot start the executor of core {core}: {source}")]
    Executor { core: u16, source: std::io::Error },
    #[error("cannot start thread for core {core}: {source}")]
    Thread { core: u16, source: std::io::Error },
    #[error("cannot install the signal handler: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Data(#[from] data::DataError),
    #[error("listener {listener:?}: TLS: {message}")]
    Tls { listener: String, message: String },
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Mesh(MeshError),
    #[error("the catalog has stopped")]
    Stopped,
}

/// The durable state the cores serve: the locked data directory, the store
/// settings and the catalog as it was at start.
#[derive(Debug)]
pub struct Storage {
    pub data: DataDir,
    pub options: StoreOptions,
    pub catalog: SharedView,
}

fn classify_executor_error(core: u16, e: std::io::Error) -> StartError {
    match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES) => {
            StartError::IoUringUnavailable { source: e }
        }
        Some(libc::ENOMEM) => StartError::MemlockTooLow { source: e },
        _ => StartError::Executor { core, source: e },
    }
}

/// Binds one `SO_REUSEPORT` listener per core on `addr`. With port 0 the
/// first bind picks the port and the others join it.
fn bind_listeners(addr: SocketAddr, n: u16) -> Result<Vec<std::net::TcpListener>, StartError> {
    let mut out = Vec::with_capacity(usize::from(n));
    let mut bound = addr;
    for _ in 0..n {
        let err = |source| StartError::Listen {
            addr: bound,
            source,
        };
        let domain = socket2::Domain::for_address(bound);
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
            .map_err(err)?;
        s.set_reuse_address(true).map_err(err)?;
        s.set_reuse_port(true).map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        s.bind(&bound.into()).map_err(err)?;
        s.listen(4096).map_err(err)?;
        let l: std::net::TcpListener = s.into();
        if bound.port() == 0 {
            bound = l.local_addr().map_err(err)?;
        }
        out.push(l);
    }
    Ok(out)
}

/// What each core needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ConnSettings {
    pub limits: crate::domain::http1::Limits,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

/// Runs the server until SIGTERM/SIGINT: one thread per core, each pinned,
/// each serving its own listener with an `App` made by `make_app` on that
/// core. Calls `ready` with the bound address once every core serves, and
/// `reload` (on the signal thread) for every SIGHUP. Returns after every
/// core has drained and run its stops.
pub fn run<A, F>(
    cfg: &ServerConfig,
    tls: &TlsListeners,
    storage: Storage,
    routes: usize,
    make_app: F,
    ready: impl FnOnce(&[Bound]),
    reload: impl Fn() + Send + 'static,
) -> Result<(), StartError>
where
    A: App,
    F: Fn(Rc<Core>) -> A + Send + Sync + 'static,
{
    let cores = cfg.cores.max(1);
    // Each listener bound once per core; per core, every listener's socket.
    let mut per_core: Vec<Vec<std::net::TcpListener>> = (0..cores).map(|_| Vec::new()).collect();
    let mut serving = Vec::with_capacity(cfg.listeners.len());
    let mut bound = Vec::with_capacity(cfg.listeners.len());
    for (i, l) in cfg.listeners.iter().enumerate() {
        let sockets = bind_listeners(l.listen, cores)?;
        bound.push(Bound {
            name: l.name.clone(),
            addr: sockets
                .first()
                .and_then(|s| s.local_addr().ok())
                .unwrap_or(l.listen),
            tls: l.tls.is_some(),
            apis: l.apis,
        });
        serving.push((l.apis, tls.0.get(i).cloned().flatten()));
        for (k, socket) in sockets.into_iter().enumerate() {
            if let Some(list) = per_core.get_mut(k) {
                list.push(socket);
            }
        }
    }
    let (mesh, inboxes) = Mesh::new(cores);
    let make_app = Arc::new(make_app);
    let storage = Arc::new(storage);
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let settings = ConnSettings {
        limits: cfg.limits,
        header_timeout: cfg.header_timeout,
        idle_timeout: cfg.idle_timeout,
        max_connections: cfg.max_connections_per_core,
    };

    let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<u16, StartError>>();
    let mut threads = Vec::with_capacity(usize::from(cores));
    for (k, (sockets, inbox)) in (0..cores).zip(per_core.into_iter().zip(inboxes)) {
        let shard = ShardId(k);
        let serving = serving.clone();
        let mesh = mesh.clone();
        let make_app = make_app.clone();
        let cpu = cpus.get(usize::from(k)).copied();
        let started = started_tx.clone();
        let settings = settings.clone();
        let driver = cfg.io_driver;
        let grace = cfg.shutdown_grace;
        let storage = storage.clone();
        let spawn = std::thread::Builder::new()
            .name(format!("authplane-core-{k}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    core_affinity::set_for_current(cpu);
                }
                CURRENT_SHARD.with(|c| c.set(Some(shard)));
                // Recovery runs on every core at once, before serving.
                let opened =
                    data::open_shard(&storage.data, shard, storage.options).and_then(|s| {
                        let catalog = if k == 0 {
                            Some(data::open_catalog(&storage.data, storage.options)?)
                        } else {
                            None
                        };
                        Ok((s, catalog))
                    });
                let (store, catalog_store) = match opened {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = started.send(Err(StartError::Data(e)));
                        return;
                    }
                };
                let core = Rc::new(Core {
                    shard,
                    mesh,
                    metrics: RefCell::new(CoreMetrics::new(routes)),
                    store,
                    catalog_store,
                    catalog: RefCell::new(storage.catalog.clone()),
                    catalog_latest: RefCell::new(storage.catalog.clone()),
                    shutdown: Event::default(),
                    open_connections: Cell::new(0),
                    stops: RefCell::new(Vec::new()),
                });
                let body = core_main(
                    core,
                    sockets.into_iter().zip(serving).collect(),
                    inbox,
                    settings,
                    grace,
                    make_app,
                    started.clone(),
                );
                let result = match driver {
                    IoDriver::IoUring => {
                        let mut uring = io_uring::IoUring::builder();
                        uring.setup_coop_taskrun().setup_taskrun_flag();
                        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                            .uring_builder(uring)
                            .with_entries(1024)
                            .enable_timer()
                            .build()
                            .map(|mut rt| rt.block_on(body))
                    }
                    IoDriver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .build()
                        .map(|mut rt| rt.block_on(body)),
                };
                if let Err(e) = result {
                    let _ = started.send(Err(classify_executor_error(k, e)));
                }
            })
            .map_err(|source| StartError::Thread { core: k, source })?;
        threads.push(spawn);
    }
    drop(started_tx);

    // Signals: the first SIGTERM/SIGINT starts the shutdown of every core.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(StartError::Signals)?;
    let signal_handle = signals.handle();

    let mut failure = None;
    for _ in 0..cores {
        match started_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => break,
        }
    }
    if failure.is_none() {
        ready(&bound);
        let signal_mesh = mesh.clone();
        let signal_thread = std::thread::Builder::new()
            .name("authplane-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == signal_hook::consts::SIGHUP {
                        tracing::info!("SIGHUP: reloading");
                        reload();
                        continue;
                    }
                    tracing::info!(signal = sig, "shutting down");
                    shutdown_all(&signal_mesh);
                    break;
                }
            });
        if let Err(e) = signal_thread {
            tracing::error!(error = %e, "cannot start the signal thread");
            shutdown_all(&mesh);
        }
    } else {
        shutdown_all(&mesh);
    }
    for t in threads {
        let _ = t.join();
    }
    signal_handle.close();
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A job that starts the shutdown of the core it runs on.
fn shutdown_job() -> mesh::Job {
    Box::new(|| {
        Box::pin(async {
            CURRENT_CORE.with(|c| {
                if let Some(core) = c.borrow().as_ref() {
                    core.shutdown.set();
                }
            })
        })
    })
}

/// Asks every core to shut down. A full inbox is retried for a second, so
/// the stop gets through even under load.
fn shutdown_all(mesh: &Mesh) {
    for k in 0..mesh.shards() {
        for _ in 0..1000 {
            match mesh.send(ShardId(k), shutdown_job()) {
                Err(MeshError::Busy(_)) => std::thread::sleep(Duration::from_millis(1)),
                _ => break,
            }
        }
    }
}

thread_local! {
    static CURRENT_CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// What one core serves on one listener.
type Listening = (std::net::TcpListener, (ApiSet, Option<Arc<tls::TlsServer>>));

async fn core_main<A, F>(
    core: Rc<Core>,
    listeners: Vec<Listening>,
    inbox: async_channel::Receiver<mesh::Job>,
    settings: ConnSettings,
    grace: Duration,
    make_app: Arc<F>,
    started: std::sync::mpsc::Sender<Result<u16, StartError>>,
) where
    A: App,
    F: Fn(Rc<Core>) -> A,
{
    CURRENT_CORE.with(|c| *c.borrow_mut() = Some(core.clone()));
    let mut sockets = Vec::with_capacity(listeners.len());
    for (listener, serving) in listeners {
        if monoio::utils::is_legacy() {
            let _ = listener.set_nonblocking(true);
        }
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => sockets.push((l, serving)),
            Err(source) => {
                let _ = started.send(Err(StartError::Listen { addr, source }));
                return;
            }
        }
    }
    // The inbox: run every job that other cores send to this one. It is
    // closed and awaited before the executor ends, so no task of this core
    // is left for another thread's wake-up to drop.
    let inbox_task = {
        let inbox = inbox.clone();
        monoio::spawn(async move {
            while let Ok(job) = inbox.recv().await {
                monoio::spawn(job());
            }
        })
    };
    // The stores: progress from their I/O threads, and a final sync that
    // runs last at shutdown (registered first).
    let mut stores = vec![core.store.clone()];
    stores.extend(core.catalog_store.clone());
    for store in stores {
        let pump = monoio::spawn(store.clone().pump());
        core.on_stop("store", move || async move {
            store.close().await;
            drop(pump);
        });
    }
    let app = make_app(core.clone());
    let lag_probe = monoio::spawn(probe_lag(core.clone()));
    core.on_stop("lag probe", move || lag_probe);
    let settings = Rc::new(settings);
    let accepting: Vec<_> = sockets
        .into_iter()
        .map(|(listener, (apis, tls))| {
            let app = Rc::new(app.serving(apis));
            monoio::spawn(accept_http(
                core.clone(),
                listener,
                app,
                settings.clone(),
                tls,
            ))
        })
        .collect();
    let _ = started.send(Ok(core.shard.0));
    core.shutdown.wait().await;
    // Every listener closed before the drain.
    for a in accepting {
        a.await;
    }

    // Drain: in-flight requests finish, bounded by the grace period.
    let deadline = clock::now() + grace;
    while core.open_connections.get() > 0 && clock::now() < deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    if core.open_connections.get() > 0 {
        tracing::warn!(
            core = core.shard.0,
            open = core.open_connections.get(),
            "grace period over: closing connections still open"
        );
    }
    let stops: Vec<_> = core.stops.borrow_mut().drain(..).collect();
    for (name, stop) in stops.into_iter().rev() {
        tracing::debug!(core = core.shard.0, stop = name, "stopping");
        stop().await;
    }
    inbox.close();
    inbox_task.await;
    CURRENT_CORE.with(|c| *c.borrow_mut() = None);
}

/// Accepts HTTP connections on one listener of this core until shutdown,
/// each served in its own task (after its TLS handshake, on a TLS
/// listener, which must finish within the header timeout).
async fn accept_http<A: App>(
    core: Rc<Core>,
    listener: monoio::net::TcpListener,
    app: Rc<A>,
    settings: Rc<ConnSettings>,
    tls: Option<Arc<tls::TlsServer>>,
) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = core.shutdown.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, core = core.shard.0, "accept failed");
                monoio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let open = core.open_connections.get();
        {
            let mut m = core.metrics.borrow_mut();
            m.connections_accepted += 1;
            if open >= settings.max_connections {
                m.connections_refused += 1;
            }
        }
        if open >= settings.max_connections {
            // A TLS client is not worth a handshake then: it is closed.
            if tls.is_none() {
                monoio::spawn(conn::refuse(stream, app.clone()));
            }
            continue;
        }
        core.open_connections.set(open + 1);
        let (core2, app2, settings2, tls2) =
            (core.clone(), app.clone(), settings.clone(), tls.clone());
        monoio::spawn(async move {
            let ip = peer.ip();
            match tls2 {
                None => {
                    conn::serve(&core2, &*app2, stream, (ip, ClientAuth::None), &settings2).await
                }
                Some(tls) => {
                    match tls::TlsConn::accept(stream, &tls, settings2.header_timeout).await {
                        Ok((conn, auth)) => {
                            conn::serve(&core2, &*app2, conn, (ip, auth), &settings2).await
                        }
                        Err(e) => {
                            tracing::debug!(listener = %tls.name, peer = %peer, error = %e.0, "TLS handshake failed");
                        }
                    }
                }
            }
            core2
                .open_connections
                .set(core2.open_connections.get().saturating_sub(1));
        });
    }
}

/// Measures the executor's lag: a timer due every [`metrics::LAG_PROBE`]
/// and how late it ran. Whatever holds the core up (a long task, a blocking
/// call, the machine not running the thread) delays every request on it by
/// as much, so the lag bounds what any request's latency can be.
async fn probe_lag(core: Rc<Core>) {
    // One shutdown waiter for the probe's life, not one per probe.
    let mut stop = std::pin::pin!(core.shutdown.wait());
    loop {
        let due = clock::now() + metrics::LAG_PROBE;
        monoio::select! {
            _ = monoio::time::sleep(metrics::LAG_PROBE) => {}
            _ = &mut stop => return,
        }
        let lag = clock::now().saturating_duration_since(due);
        core.metrics
            .borrow_mut()
            .record_lag(u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// Runs `f` on this core's executor, detached: a service's background task
/// (it ends when `f` does, or with the core).
pub fn spawn_task(f: impl Future<Output = ()> + 'static) {
    drop(monoio::spawn(f));
}

/// Awaits `f` for at most `limit` on this core's timer (None: time ran out).
pub async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    monoio::time::timeout(limit, f).await.ok()
}

/// The core this code runs on (None off the cores).
pub fn current_core() -> Option<Rc<Core>> {
    CURRENT_CORE.with(|c| c.borrow().clone())
}

/// Runs `f` with the core this code runs on (None off the cores). For work
/// sent over the mesh, which runs on the target core.
pub fn with_current_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CURRENT_CORE.with(|c| c.borrow().as_ref().map(|core| f(core)))
}
