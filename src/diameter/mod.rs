//! The Diameter peer layer (RFC 6733): a listener on every core, the peer
//! state machine of each connection ([`peer`]), the registry of connected
//! peers, requests this server sends (correlated by hop-by-hop id, with a
//! timeout), and the table of application handlers the services register
//! (S6a in the HSS). What a request means is its handler's business; the
//! bytes are `domain::diameter`'s.

mod peer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::config::{DiameterApp, DiameterConfig};
use crate::domain::diameter::dict::{avp, TGPP};
use crate::domain::diameter::{app, Builder, Message};
use crate::domain::shard::ShardId;
use crate::runtime::{clock, stream, LocalBoxFuture, MeshError, StartError};
use crate::server::Ctx;

/// A request as its handler gets it: the whole message (checked against
/// the dictionary already) and the peer it came from.
#[derive(Debug)]
pub struct Incoming {
    pub frame: Vec<u8>,
    pub peer: Rc<PeerId>,
}

/// Who a connection's peer is, once its CER was accepted.
#[derive(Debug, Clone)]
pub struct PeerId {
    pub origin_host: String,
    pub origin_realm: String,
    pub addr: SocketAddr,
}

/// Serves one application request: returns the whole answer.
pub type Handler = fn(Rc<Ctx>, Incoming) -> LocalBoxFuture<'static, Vec<u8>>;

/// The application requests this server answers, by application and
/// command code.
#[derive(Default)]
pub struct Applications {
    entries: Vec<(u32, u32, Handler)>,
}

impl std::fmt::Debug for Applications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Applications({})", self.entries.len())
    }
}

impl Applications {
    /// Registers `handler` for requests of `command` in application `app`.
    pub fn add(&mut self, app: u32, command: u32, handler: Handler) {
        self.entries.retain(|(a, c, _)| (*a, *c) != (app, command));
        self.entries.push((app, command, handler));
    }

    fn find(&self, app: u32, command: u32) -> Option<Handler> {
        self.entries
            .iter()
            .find(|(a, c, _)| (*a, *c) == (app, command))
            .map(|(_, _, h)| *h)
    }

    /// The application ids with at least one handler.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.entries.iter().map(|(a, _, _)| *a).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// This server's identity as its peers see it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub host: String,
    pub realm: String,
    pub product: String,
    /// Origin-State-Id: one more at every start (kept in the data
    /// directory), so a peer knows when this server has restarted.
    pub state_id: u32,
}

/// What `GET /oam/diameter_peers` shows of a connection (PyHSS's keys,
/// and this server's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerRecord {
    pub ip_address: String,
    pub port: String,
    pub hostname: String,
    pub realm: String,
    pub connected: bool,
    pub transport_protocol: &'static str,
    pub peer_type: String,
    /// Open (after CER/CEA), or Closed.
    pub state: &'static str,
    pub applications: Vec<String>,
    pub product_name: String,
    pub origin_state_id: Option<u32>,
    pub last_connect_timestamp: String,
    pub last_disconnect_timestamp: String,
    pub reconnection_count: u64,
    pub metadata: String,
    /// DWRs the peer sent, DWRs this server sent it, and its DWAs.
    pub watchdog_requests_received: u64,
    pub watchdog_requests_sent: u64,
    pub watchdog_answers_received: u64,
    #[serde(skip)]
    conn: u64,
    #[serde(skip)]
    core: u16,
}

/// A watchdog message, counted per peer.
#[derive(Debug, Clone, Copy)]
enum Watchdog {
    RequestReceived,
    RequestSent,
    AnswerReceived,
}

/// Disconnected peers kept in the registry (the oldest is dropped).
const KEEP_CLOSED: usize = 1024;

/// The process-wide Diameter state, shared by every core.
pub struct Diameter {
    pub config: DiameterConfig,
    pub identity: Identity,
    pub bound: SocketAddr,
    apps: Applications,
    listeners: Mutex<Vec<Option<std::net::TcpListener>>>,
    peers: Mutex<BTreeMap<String, PeerRecord>>,
    next_conn: AtomicU64,
}

impl std::fmt::Debug for Diameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diameter")
            .field("bound", &self.bound)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Why the Diameter listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiameterStartError {
    #[error("{0}")]
    Listen(#[from] StartError),
    #[error("cannot keep the Origin-State-Id in {path}: {source}")]
    State {
        path: String,
        source: std::io::Error,
    },
}

/// The file keeping the Origin-State-Id.
const STATE_FILE: &str = "diameter-origin-state";

/// Reads the last Origin-State-Id from `dir`, and durably writes and
/// returns the next one.
fn next_state_id(dir: &Path) -> Result<u32, DiameterStartError> {
    let path = dir.join(STATE_FILE);
    let fail = |source| DiameterStartError::State {
        path: path.display().to_string(),
        source,
    };
    let last: u32 = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(fail(e)),
    };
    // Never 0 (a peer may read 0 as "absent"), wrapping past u32::MAX.
    let next = last.checked_add(1).unwrap_or(1).max(1);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{next}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(fail)?;
    Ok(next)
}

impl Diameter {
    /// Binds the listener on every core and takes the next Origin-State-Id
    /// from `data_dir`.
    pub fn start(
        config: &DiameterConfig,
        cores: u16,
        data_dir: &Path,
        apps: Applications,
    ) -> Result<Diameter, DiameterStartError> {
        let state_id = next_state_id(data_dir)?;
        let listeners = stream::bind(config.listen_addr, cores)?;
        let bound = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(config.listen_addr);
        if config.development() {
            let warning = "diameter.peers names no peer: any Diameter peer connecting from a \
                           loopback address is accepted, with every application. Name the \
                           peers in production.";
            tracing::warn!("{warning}");
            eprintln!("WARNING: {warning}");
        }
        Ok(Diameter {
            identity: Identity {
                host: config.origin_host.clone(),
                realm: config.origin_realm.clone(),
                product: config.product_name.clone(),
                state_id,
            },
            config: config.clone(),
            bound,
            apps,
            listeners: Mutex::new(listeners.into_iter().map(Some).collect()),
            peers: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
        })
    }

    /// Starts serving on the core of `ctx` (called once per core).
    pub fn serve_on_core(self: &Arc<Self>, ctx: Ctx) {
        let k = usize::from(ctx.core.shard.0);
        let listener = self
            .listeners
            .lock()
            .ok()
            .and_then(|mut l| l.get_mut(k).and_then(Option::take));
        let Some(listener) = listener else {
            tracing::error!(core = k, "no Diameter listener for this core");
            return;
        };
        let d = self.clone();
        let ctx = Rc::new(ctx);
        let core = ctx.core.clone();
        // At shutdown each connection sends its DPR; the core waits for
        // them (and the answers they still write) before its store closes.
        core.on_stop("diameter", || peer::drain(peer::DPA_WAIT * 2));
        stream::accept_loop(core, listener, move |r, w, addrs| {
            peer::serve(d.clone(), ctx.clone(), r, w, addrs)
        });
    }

    /// The applications `peer` may use, among those served: None if the
    /// peer is not allowed at all.
    fn allowed(&self, origin_host: &str, addr: SocketAddr) -> Option<Vec<u32>> {
        let served = self.apps.ids();
        if self.config.development() {
            return addr.ip().is_loopback().then_some(served);
        }
        let p = self.config.peers.iter().find(|p| {
            p.origin_host.eq_ignore_ascii_case(origin_host)
                && (p.addresses.is_empty() || p.addresses.contains(&addr.ip()))
        })?;
        Some(
            p.applications
                .iter()
                .map(|a| a.id())
                .filter(|id| served.contains(id))
                .collect(),
        )
    }

    fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PeerRecord>> {
        // A panic elsewhere cannot leave a half-written record: each update
        // is one insert or one field change.
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an accepted CER.
    fn opened(
        &self,
        conn: u64,
        core: ShardId,
        p: &PeerId,
        cer: &Message<'_>,
        (apps, relay): (&[u32], bool),
    ) {
        let key = format!("{}-{}", p.addr.ip(), p.addr.port());
        let names: Vec<String> = apps.iter().map(|a| app_name(*a).to_owned()).collect();
        let peer_type = if relay {
            "Relay"
        } else if apps.contains(&app::S6A) {
            "MME"
        } else if apps.contains(&app::CX) {
            "CSCF"
        } else if apps.contains(&app::SWX) {
            "AAA"
        } else if apps.contains(&app::S13) {
            "EIR client"
        } else {
            "Unknown"
        };
        let mut reg = self.registry();
        let reconnections = reg
            .values()
            .filter(|r| r.hostname == p.origin_host)
            .map(|r| r.reconnection_count + 1)
            .max()
            .unwrap_or(0);
        reg.insert(
            key,
            PeerRecord {
                ip_address: p.addr.ip().to_string(),
                port: p.addr.port().to_string(),
                hostname: p.origin_host.clone(),
                realm: p.origin_realm.clone(),
                connected: true,
                transport_protocol: "TCP",
                peer_type: peer_type.to_owned(),
                state: "Open",
                applications: names,
                product_name: cer.text(&avp::PRODUCT_NAME).unwrap_or_default().to_owned(),
                origin_state_id: cer.u32(&avp::ORIGIN_STATE_ID),
                last_connect_timestamp: crate::table::json::timestamp(clock::unix_seconds()),
                last_disconnect_timestamp: String::new(),
                reconnection_count: reconnections,
                metadata: format!("{{\"DiameterPeerType\": \"{peer_type}\"}}"),
                watchdog_requests_received: 0,
                watchdog_requests_sent: 0,
                watchdog_answers_received: 0,
                conn,
                core: core.0,
            },
        );
    }

    /// Records a closed connection (kept, marked, until KEEP_CLOSED newer
    /// ones push it out).
    fn closed(&self, conn: u64) {
        let mut reg = self.registry();
        if let Some(r) = reg.values_mut().find(|r| r.conn == conn) {
            r.connected = false;
            r.state = "Closed";
            r.last_disconnect_timestamp = crate::table::json::timestamp(clock::unix_seconds());
        }
        let closed: Vec<(String, String)> = reg
            .iter()
            .filter(|(_, r)| !r.connected)
            .map(|(k, r)| (r.last_disconnect_timestamp.clone(), k.clone()))
            .collect();
        if closed.len() > KEEP_CLOSED {
            let mut closed = closed;
            closed.sort();
            for (_, k) in closed.iter().take(closed.len() - KEEP_CLOSED) {
                reg.remove(k);
            }
        }
    }

    /// Counts a watchdog message of connection `conn`.
    fn watchdog(&self, conn: u64, what: Watchdog) {
        let mut reg = self.registry();
        if let Some(r) = reg.values_mut().find(|r| r.conn == conn) {
            match what {
                Watchdog::RequestReceived => r.watchdog_requests_received += 1,
                Watchdog::RequestSent => r.watchdog_requests_sent += 1,
                Watchdog::AnswerReceived => r.watchdog_answers_received += 1,
            }
        }
    }

    /// Every peer, by `ip-port`.
    pub fn peers(&self) -> BTreeMap<String, PeerRecord> {
        self.registry().clone()
    }

    /// The newest open connection to `origin_host`: (core, connection).
    fn route(&self, origin_host: &str) -> Option<(ShardId, u64)> {
        self.registry()
            .values()
            .filter(|r| r.connected && r.hostname.eq_ignore_ascii_case(origin_host))
            .max_by_key(|r| r.conn)
            .map(|r| (ShardId(r.core), r.conn))
    }

    /// Sends the request `build` makes (given its hop-by-hop and
    /// end-to-end ids) to the peer `origin_host`, and returns its answer.
    pub async fn request(
        &self,
        ctx: &Ctx,
        origin_host: &str,
        build: impl FnOnce(u32, u32) -> Vec<u8> + Send + 'static,
    ) -> Result<Vec<u8>, SendError> {
        let (core, conn) = self
            .route(origin_host)
            .ok_or_else(|| SendError::NoPeer(origin_host.to_owned()))?;
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let state = self.identity.state_id;
        ctx.core
            .on(core, move |_| {
                peer::request_here(conn, build, timeout, state)
            })
            .await
            .map_err(SendError::Mesh)?
    }
}

/// Why a request to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no open connection to Diameter peer {0:?}")]
    NoPeer(String),
    #[error("the connection closed before the answer came")]
    Closed,
    #[error("no answer within the request timeout")]
    Timeout,
    #[error("{0}")]
    Mesh(MeshError),
}

/// An application's name.
pub fn app_name(id: u32) -> &'static str {
    match id {
        app::S6A => "S6a",
        app::S13 => "S13",
        app::CX => "Cx",
        app::SWX => "SWx",
        app::RELAY => "Relay",
        _ => "Unknown",
    }
}

/// The applications of `config` by name, for logs.
pub fn app_names(apps: &[DiameterApp]) -> String {
    apps.iter()
        .map(|a| app_name(a.id()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Starts an answer to `req`: Session-Id (first, when the request has
/// one), Origin-Host and Origin-Realm.
pub fn answer(id: &Identity, req: &Message<'_>) -> Builder {
    let mut b = Builder::answer(&req.header);
    if let Some(s) = req.get(&avp::SESSION_ID) {
        b.bytes(&avp::SESSION_ID, s.data);
    }
    b.text(&avp::ORIGIN_HOST, &id.host)
        .text(&avp::ORIGIN_REALM, &id.realm);
    b
}

/// Ends an answer to `req`: its Proxy-Info AVPs copied, as RFC 6733
/// requires, and every length written.
pub fn finish(mut b: Builder, req: &Message<'_>) -> Vec<u8> {
    for p in req.all(&avp::PROXY_INFO) {
        b.raw(p.raw);
    }
    b.finish()
}

/// Adds a 3GPP Experimental-Result.
pub fn experimental(b: &mut Builder, code: u32) {
    b.begin(&avp::EXPERIMENTAL_RESULT)
        .u32(&avp::VENDOR_ID, TGPP)
        .u32(&avp::EXPERIMENTAL_RESULT_CODE, code)
        .end();
}
