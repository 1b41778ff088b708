//! GeoRed, outbound: each change of serving state (MME, location, S-CSCF,
//! P-CSCF, PCRF sessions), EIR history and SQN is pushed to the GeoRed
//! peers in PyHSS's `PATCH /geored/` body, so a peer HSS (PyHSS or
//! authplane) serves the subscriber where it moves and never issues an
//! SQN below one issued here.
//!
//! - Never in a request's way: a change is queued on its core and sent by
//!   that core's sender task; the request has its answer already.
//! - Coalesced: one pending push per peer and subject (an SQN per AuC,
//!   the MME per subscriber, ...); a newer change replaces it, so a
//!   thousand vectors in a second are one SQN push.
//! - Retried with backoff (0.1 s doubling to 30 s) per peer: a peer that
//!   is down holds back only its own pushes. A push the peer refuses (a
//!   4xx: it has no such subscriber) is dropped and counted. A queue beyond
//!   `hss.geored_queue` per core drops its oldest push (counted).
//! - Not echoed: a change a peer pushed here is not pushed on.
//! - Not durable: pushes waiting at a restart are gone (the peer catches
//!   up with the next change of that subject).
//!
//! The peers are `hss.geored_peers`, or the list `PATCH /geored/peers`
//! stored in the catalog (kept across restarts).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::apn::Apn;
use super::subscriber::Subscriber;
use super::tables;
use crate::domain::shaken::parse_url;
use crate::runtime::fetch::{http_request, tls_client_config, Limits, Outgoing};
use crate::runtime::{CatalogView, Core};
use crate::storage::Op;
use crate::table::{self, Change, Site, WriteHook};

/// The catalog's key of the peers `PATCH /geored/peers` set.
pub const PEERS_KEY: &[u8] = b"geored_peers";

/// The process's GeoRed settings (from the config, at start).
#[derive(Debug, Clone)]
pub struct Settings {
    pub peers: Vec<String>,
    pub key: String,
    pub timeout: Duration,
    pub queue: usize,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the process's settings (once, at start).
pub fn configure(config: &crate::config::HssConfig) {
    let _ = SETTINGS.set(Settings {
        peers: config.geored_peers.clone(),
        key: config.geored_peer_key.clone(),
        timeout: Duration::from_millis(config.geored_timeout_ms),
        queue: config.geored_queue,
    });
}

/// The peers in force: the catalog's list when one was set, else the
/// configured one.
pub fn peers(view: &CatalogView) -> Vec<String> {
    match view.get(tables::CATALOG_META, PEERS_KEY) {
        Some(bytes) => serde_json::from_slice(bytes).unwrap_or_default(),
        None => SETTINGS.get().map(|s| s.peers.clone()).unwrap_or_default(),
    }
}

/// A peer's counters, as `GET /geored/peers` shows them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PeerStatus {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
}

impl PeerStatus {
    fn add(&mut self, o: &PeerStatus) {
        self.pending += o.pending;
        self.sent += o.sent;
        self.failed += o.failed;
        self.dropped += o.dropped;
        if o.last_error.is_some() {
            self.last_error.clone_from(&o.last_error);
        }
    }
}

/// One core's pushes waiting, by (peer, subject).
#[derive(Default)]
struct Outbox {
    /// The catalog's stored peer list and its parse, for the hot path.
    cached: Option<(Option<Vec<u8>>, Vec<String>)>,
    pending: HashMap<(String, String), (u64, Value)>,
    /// Push order: seq → (peer, subject).
    order: BTreeMap<u64, (String, String)>,
    seq: u64,
    stats: HashMap<String, PeerStatus>,
    /// Per peer: not before this instant, and the next delay.
    backoff: HashMap<String, (Instant, Duration)>,
    wake: Option<async_channel::Sender<()>>,
}

thread_local! {
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
}

fn current_peers(view: &CatalogView, o: &mut Outbox) -> Vec<String> {
    let stored = view.get(tables::CATALOG_META, PEERS_KEY);
    if let Some((raw, list)) = &o.cached {
        if raw.as_deref() == stored {
            return list.clone();
        }
    }
    let list = peers(view);
    o.cached = Some((stored.map(<[u8]>::to_vec), list.clone()));
    list
}

/// Whether this core has peers to push to (the hot path's check: no row
/// is decoded for pushes when there are none).
fn has_peers(core: &Core) -> bool {
    let view = core.catalog();
    OUTBOX.with(|cell| {
        cell.try_borrow_mut()
            .map(|mut o| !current_peers(&view, &mut o).is_empty())
            .unwrap_or(false)
    })
}

/// Queues `body` for every peer, replacing a pending push of `subject`.
pub fn push(core: &Core, subject: String, body: Value) {
    let Some(settings) = SETTINGS.get() else {
        return;
    };
    let view = core.catalog();
    OUTBOX.with(|cell| {
        let Ok(mut o) = cell.try_borrow_mut() else {
            return;
        };
        let peers = current_peers(&view, &mut o);
        if peers.is_empty() {
            return;
        }
        for peer in peers {
            o.seq += 1;
            let seq = o.seq;
            let k = (peer.clone(), subject.clone());
            if let Some((old, _)) = o.pending.insert(k.clone(), (seq, body.clone())) {
                o.order.remove(&old);
            }
            o.order.insert(seq, k);
            while o.pending.len() > settings.queue {
                let Some((_, oldest)) = o.order.pop_first() else {
                    break;
                };
                o.pending.remove(&oldest);
                o.stats.entry(oldest.0).or_default().dropped += 1;
            }
        }
        match &o.wake {
            Some(w) => {
                let _ = w.try_send(());
            }
            None => {
                let (tx, rx) = async_channel::bounded(1);
                o.wake = Some(tx);
                crate::runtime::spawn_task(send_loop(rx, settings.clone()));
            }
        }
    });
}

/// The next push to send: the oldest whose peer is not backing off; or
/// how long until one is.
fn next_push() -> Result<(String, String, u64, Value), Option<Duration>> {
    OUTBOX.with(|cell| {
        let o = cell.borrow();
        let now = crate::clock::now();
        let mut wait: Option<Duration> = None;
        for (peer, subject) in o.order.values() {
            if let Some((until, _)) = o.backoff.get(peer) {
                if *until > now {
                    let d = *until - now;
                    wait = Some(wait.map_or(d, |w| w.min(d)));
                    continue;
                }
            }
            if let Some((seq, body)) = o.pending.get(&(peer.clone(), subject.clone())) {
                return Ok((peer.clone(), subject.clone(), *seq, body.clone()));
            }
        }
        Err(wait)
    })
}

/// How a push ended.
enum Outcome {
    Sent,
    /// The peer refused it (a 4xx: it has no such subscriber, or the
    /// body is not its): dropped, not retried.
    Refused(String),
    /// Not delivered (no connection, a timeout, a 5xx): retried.
    Failed(String),
}

fn done(peer: &str, subject: &str, seq: u64, outcome: Outcome) {
    OUTBOX.with(|cell| {
        let mut o = cell.borrow_mut();
        let k = (peer.to_owned(), subject.to_owned());
        match outcome {
            Outcome::Refused(e) => {
                if o.pending.get(&k).is_some_and(|(s, _)| *s == seq) {
                    o.pending.remove(&k);
                    o.order.remove(&seq);
                }
                let s = o.stats.entry(peer.to_owned()).or_default();
                s.failed += 1;
                s.last_error = Some(e);
            }
            Outcome::Sent => {
                let k = (peer.to_owned(), subject.to_owned());
                if o.pending.get(&k).is_some_and(|(s, _)| *s == seq) {
                    o.pending.remove(&k);
                    o.order.remove(&seq);
                }
                o.backoff.remove(peer);
                o.stats.entry(peer.to_owned()).or_default().sent += 1;
            }
            Outcome::Failed(e) => {
                let delay = o
                    .backoff
                    .get(peer)
                    .map_or(Duration::from_millis(100), |(_, d)| {
                        (*d * 2).min(Duration::from_secs(30))
                    });
                o.backoff
                    .insert(peer.to_owned(), (crate::clock::now() + delay, delay));
                let s = o.stats.entry(peer.to_owned()).or_default();
                s.failed += 1;
                s.last_error = Some(e);
            }
        }
    });
}

async fn send_loop(wake: async_channel::Receiver<()>, settings: Settings) {
    let tls = match tls_client_config(&[]) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "GeoRed: no TLS client; pushes stop");
            return;
        }
    };
    let limits = Limits {
        timeout: settings.timeout,
        max_body: 1 << 20,
        allow_internal: true,
        tls,
    };
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if !settings.key.is_empty() {
        headers.push(("Provisioning-Key", settings.key.as_str()));
    }
    loop {
        match next_push() {
            Ok((peer, subject, seq, body)) => {
                let outcome = send(&peer, &body, &headers, &limits).await;
                match &outcome {
                    Outcome::Sent => {}
                    Outcome::Refused(e) => {
                        tracing::warn!(peer = %peer, error = %e, "GeoRed push refused; dropped")
                    }
                    Outcome::Failed(e) => {
                        tracing::warn!(peer = %peer, error = %e, "GeoRed push failed; retrying")
                    }
                }
                done(&peer, &subject, seq, outcome);
            }
            Err(None) => {
                if wake.recv().await.is_err() {
                    return;
                }
            }
            Err(Some(wait)) => {
                let _ = crate::runtime::timeout(wait, wake.recv()).await;
            }
        }
    }
}

async fn send(peer: &str, body: &Value, headers: &[(&str, &str)], limits: &Limits) -> Outcome {
    let Some(url) = parse_url(peer) else {
        return Outcome::Refused(format!("{peer}: not a URL"));
    };
    let path = format!("{}/geored/", url.path.trim_end_matches('/'));
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let req = Outgoing {
        method: "PATCH",
        path: &path,
        accept: "application/json",
        headers,
        body: Some(("application/json", &bytes)),
    };
    let answer = match http_request(url.https, url.host, url.port, &req, limits).await {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let why = || {
        let text: String = String::from_utf8_lossy(&answer.body)
            .chars()
            .take(200)
            .collect();
        format!("HTTP {}: {text}", answer.status)
    };
    match answer.status {
        200..=299 => Outcome::Sent,
        400..=499 => Outcome::Refused(why()),
        _ => Outcome::Failed(why()),
    }
}

/// This core's counters per peer.
pub fn status_here() -> HashMap<String, PeerStatus> {
    OUTBOX.with(|cell| {
        let o = cell.borrow();
        let mut s = o.stats.clone();
        for (peer, _) in o.pending.keys() {
            s.entry(peer.clone()).or_default().pending += 1;
        }
        s
    })
}

/// Adds one core's counters into `into`.
pub fn merge(into: &mut BTreeMap<String, PeerStatus>, part: HashMap<String, PeerStatus>) {
    for (peer, s) in part {
        into.entry(peer).or_default().add(&s);
    }
}

/// The SQN issued for AuC `id` (of `imsi`) moved to `sqn`.
pub fn sqn_issued(core: &Core, id: u64, imsi: Option<&str>, sqn: u64) {
    // Every vector request comes here: nothing is built without a peer.
    if !has_peers(core) {
        return;
    }
    let mut body = json!({"auc_id": id, "sqn": sqn});
    if let Some(i) = imsi {
        body["imsi"] = Value::from(i);
    }
    push(core, format!("sqn:{id}"), body);
}

const MME: [&str; 4] = [
    "serving_mme",
    "serving_mme_realm",
    "serving_mme_peer",
    "serving_mme_timestamp",
];
const LOCATION: [&str; 7] = [
    "last_seen_eci",
    "last_seen_enodeb_id",
    "last_seen_cell_id",
    "last_seen_tac",
    "last_seen_mcc",
    "last_seen_mnc",
    "last_location_update_timestamp",
];
const SCSCF: [&str; 4] = ["scscf", "scscf_realm", "scscf_peer", "scscf_timestamp"];
const PCSCF: [&str; 5] = [
    "pcscf",
    "pcscf_realm",
    "pcscf_peer",
    "pcscf_timestamp",
    "pcscf_active_session",
];

/// Queues the pushes a change of a row makes (its serving state, EIR
/// history or SQN), unless a peer or a rollback made it.
#[derive(Debug, Default)]
pub struct GeoRedHook;

fn pick(row: &Map<String, Value>, keys: &[&str], imsi: &str) -> Value {
    let mut body: Map<String, Value> = keys
        .iter()
        .map(|k| ((*k).to_owned(), row.get(*k).cloned().unwrap_or(Value::Null)))
        .collect();
    body.insert("imsi".into(), Value::from(imsi));
    Value::Object(body)
}

impl WriteHook for GeoRedHook {
    fn on_change(&self, site: Site<'_>, c: &Change<'_>) -> Vec<Op> {
        let Site::Shard(core) = site else {
            return Vec::new();
        };
        if c.undo || c.from_peer || SETTINGS.get().is_none() {
            return Vec::new();
        }
        let watched = [
            "subscriber",
            "ims_subscriber",
            "auc",
            "eir_history",
            "serving_apn",
        ];
        if !watched.contains(&c.table.name) || !has_peers(core) {
            return Vec::new();
        }
        let fields = |b: Option<&[u8]>| b.and_then(c.table.fields).unwrap_or_default();
        let (before, after) = (fields(c.before), fields(c.after));
        // A key absent before (a new row) counts as `null`: a row created
        // without serving state pushes nothing.
        let null = Value::Null;
        let changed = |keys: &[&str]| {
            keys.iter()
                .any(|k| before.get(*k).unwrap_or(&null) != after.get(*k).unwrap_or(&null))
        };
        let text = |row: &Map<String, Value>, k: &str| {
            row.get(k).and_then(Value::as_str).map(str::to_owned)
        };
        let id = c.id;
        match c.table.name {
            "subscriber" if c.after.is_some() => {
                let Some(imsi) = text(&after, "imsi") else {
                    return Vec::new();
                };
                if changed(&MME) {
                    push(core, format!("mme:{id}"), pick(&after, &MME, &imsi));
                }
                if changed(&LOCATION) {
                    push(core, format!("loc:{id}"), pick(&after, &LOCATION, &imsi));
                }
            }
            "ims_subscriber" if c.after.is_some() => {
                let Some(imsi) = text(&after, "imsi") else {
                    return Vec::new();
                };
                if changed(&SCSCF) {
                    push(core, format!("scscf:{id}"), pick(&after, &SCSCF, &imsi));
                }
                if changed(&PCSCF) {
                    push(core, format!("pcscf:{id}"), pick(&after, &PCSCF, &imsi));
                }
            }
            "auc" if c.after.is_some() && changed(&["sqn"]) => {
                if let Some(sqn) = after.get("sqn").and_then(Value::as_u64) {
                    sqn_issued(core, id, text(&after, "imsi").as_deref(), sqn);
                }
            }
            "eir_history" if c.after.is_some() => {
                let body = json!({"imsi": after.get("imsi"), "imei": after.get("imei"),
                                  "match_response_code": after.get("match_response_code")});
                push(core, format!("eir:{id}"), body);
            }
            "serving_apn" => {
                let row = if c.after.is_some() { &after } else { &before };
                let (Some(sub), Some(apn)) = (
                    row.get("subscriber_id").and_then(Value::as_u64),
                    row.get("apn").and_then(Value::as_u64),
                ) else {
                    return Vec::new();
                };
                let imsi = table::read_here::<Subscriber>(core, sub)
                    .ok()
                    .flatten()
                    .map(|s| s.imsi);
                let name = table::catalog_row::<Apn>(&core.catalog(), apn)
                    .ok()
                    .flatten()
                    .map(|a| a.apn);
                let (Some(imsi), Some(name)) = (imsi, name) else {
                    return Vec::new();
                };
                let mut body = pick(
                    row,
                    &[
                        "pcrf_session_id",
                        "serving_pgw",
                        "serving_pgw_realm",
                        "serving_pgw_peer",
                        "serving_pgw_timestamp",
                        "subscriber_routing",
                    ],
                    &imsi,
                );
                body["serving_apn"] = Value::from(name);
                if c.after.is_none() {
                    body["serving_pgw"] = Value::Null;
                }
                push(core, format!("pcrf:{sub}:{apn}"), body);
            }
            _ => {}
        }
        Vec::new()
    }
}
