//! One peer connection (RFC 6733 §5): the CER/CEA exchange first (anything
//! else before it closes the connection), then application requests, each
//! served in its own task so pipelined requests proceed together, answers
//! to this server's own requests matched by hop-by-hop id, the watchdog
//! (DWR after Tw of silence, closed after another Tw without an answer),
//! and DPR/DPA both ways.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{answer, finish, Diameter, Incoming, PeerId, SendError, Watchdog};
use crate::domain::diameter::dict::{avp, TGPP};
use crate::domain::diameter::{
    self as wire, app, check, command, frame_len, peek_header, result, Builder, Message,
};
use crate::runtime::stream::{first, sleep, Either, Reader, Writer};
use crate::runtime::{clock, spawn_task, Event};
use crate::server::Ctx;

/// Bytes a read asks for at least.
const READ_CHUNK: usize = 16 * 1024;
/// How long a DPR waits for its DPA at shutdown.
pub(super) const DPA_WAIT: Duration = Duration::from_secs(2);
/// Disconnect-Cause REBOOTING.
const REBOOTING: u32 = 0;

/// What other tasks of this core need of a connection: its writer and the
/// requests it has sent that wait for their answers.
struct Conn {
    /// Frames to write; `true` marks an answer to a request of the peer,
    /// counted in flight until written.
    tx: async_channel::Sender<(Vec<u8>, bool)>,
    pending: RefCell<HashMap<u32, futures_channel::oneshot::Sender<Vec<u8>>>>,
    next_hop: Cell<u32>,
    /// When the peer last sent anything.
    last_heard: Cell<Instant>,
    /// The hop-by-hop id of an unanswered DWR, and when it was sent.
    watchdog: Cell<Option<(u32, Instant)>>,
    /// Set to end the connection (the watchdog found it dead).
    dead: Event,
}

impl Conn {
    fn hop(&self) -> u32 {
        let h = self.next_hop.get();
        self.next_hop.set(h.wrapping_add(1));
        h
    }

    fn send(&self, frame: Vec<u8>) {
        let _ = self.tx.try_send((frame, false));
    }

    /// Queues the answer to an application request (it stays counted in
    /// flight until written, so a peer that stops reading stops being read).
    fn send_answer(&self, frame: Vec<u8>) {
        let _ = self.tx.try_send((frame, true));
    }
}

thread_local! {
    /// This core's open connections, by id.
    static CONNS: RefCell<HashMap<u64, Rc<Conn>>> = RefCell::new(HashMap::new());
}

/// End-to-end ids: the Origin-State-Id in the high 12 bits (RFC 6733
/// §3: unique across restarts), a counter below.
fn end_to_end(state_id: u32) -> u32 {
    thread_local! {
        static NEXT: Cell<u32> = const { Cell::new(0) };
    }
    let n = NEXT.with(|c| {
        let v = c.get();
        c.set(v.wrapping_add(1));
        v
    });
    let core = crate::runtime::current_shard().map_or(0, |s| u32::from(s.0));
    (state_id << 20) | ((core & 0xf) << 16) ^ (n & 0xf_ffff)
}

/// Sends a request on connection `conn` of this core and waits for its
/// answer.
pub(super) async fn request_here(
    conn: u64,
    build: impl FnOnce(u32, u32) -> Vec<u8>,
    timeout: Duration,
    state_id: u32,
) -> Result<Vec<u8>, SendError> {
    let c = CONNS
        .with(|m| m.borrow().get(&conn).cloned())
        .ok_or(SendError::Closed)?;
    let (tx, rx) = futures_channel::oneshot::channel();
    let hop = c.hop();
    c.pending.borrow_mut().insert(hop, tx);
    c.send(build(hop, end_to_end(state_id)));
    let answer = crate::runtime::timeout(timeout, rx).await;
    c.pending.borrow_mut().remove(&hop);
    match answer {
        None => Err(SendError::Timeout),
        Some(Err(_)) => Err(SendError::Closed),
        Some(Ok(a)) => Ok(a),
    }
}

/// What the writer shares with the reader: answers still in flight, a
/// tick for each one written, and the connection's end.
struct Flight {
    in_flight: Rc<Cell<usize>>,
    done: async_channel::Sender<()>,
    dead: Event,
}

/// Writes every frame queued for the connection, coalescing what is
/// queued together into one write; ends when the queue closes (or the
/// write fails, which ends the connection).
async fn write_loop(mut w: Writer, rx: async_channel::Receiver<(Vec<u8>, bool)>, f: Flight) {
    let mut batch: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    while let Ok((frame, answer)) = rx.recv().await {
        batch.extend_from_slice(&frame);
        let mut answers = usize::from(answer);
        while batch.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok((more, answer)) => {
                    batch.extend_from_slice(&more);
                    answers += usize::from(answer);
                }
                Err(_) => break,
            }
        }
        let (res, b) = w.write_all(batch).await;
        batch = b;
        batch.clear();
        f.in_flight.set(f.in_flight.get().saturating_sub(answers));
        for _ in 0..answers {
            let _ = f.done.try_send(());
        }
        if res.is_err() {
            rx.close();
            f.dead.set();
            return;
        }
    }
    w.shutdown().await;
}

/// A base-protocol request (DWR, DPR) from this server: its header and
/// Origin-Host/Realm.
fn base_request(d: &Diameter, code: u32, hop: u32) -> Builder {
    let mut b = Builder::request(code, app::BASE, 0, hop, end_to_end(d.identity.state_id));
    b.text(&avp::ORIGIN_HOST, &d.identity.host)
        .text(&avp::ORIGIN_REALM, &d.identity.realm);
    b
}

/// Sends DWRs and ends a connection that stops answering.
async fn watchdog(d: Arc<Diameter>, c: Rc<Conn>, conn_id: u64) {
    let tw = Duration::from_millis(d.config.watchdog_ms);
    loop {
        sleep(tw / 4).await;
        if c.tx.is_closed() || c.dead.is_set() {
            return;
        }
        let now = clock::now();
        match c.watchdog.get() {
            Some((_, sent)) if now.saturating_duration_since(sent) >= tw => {
                tracing::warn!("Diameter peer did not answer its DWR: closing");
                c.dead.set();
                return;
            }
            Some(_) => {}
            None if now.saturating_duration_since(c.last_heard.get()) >= tw => {
                let hop = c.hop();
                c.watchdog.set(Some((hop, now)));
                let mut b = base_request(&d, command::DEVICE_WATCHDOG, hop);
                b.u32(&avp::ORIGIN_STATE_ID, d.identity.state_id);
                c.send(b.finish());
                d.watchdog(conn_id, Watchdog::RequestSent);
            }
            None => {}
        }
    }
}

/// Where the connection's state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the CER.
    Closed,
    Open,
    /// A DPR was sent or answered: closing once the queue is written.
    Closing,
}

struct Session {
    d: Arc<Diameter>,
    ctx: Rc<Ctx>,
    conn_id: u64,
    conn: Rc<Conn>,
    addr: SocketAddr,
    local: SocketAddr,
    phase: Phase,
    peer: Option<Rc<PeerId>>,
    apps: Vec<u32>,
    /// Answers being computed or waiting to be written.
    in_flight: Rc<Cell<usize>>,
}

/// Serves one accepted connection until it closes.
pub(super) async fn serve(
    d: Arc<Diameter>,
    ctx: Rc<Ctx>,
    mut r: Reader,
    w: Writer,
    (addr, local): (SocketAddr, SocketAddr),
) {
    let conn_id = d.conn_id();
    let (tx, rx) = async_channel::unbounded();
    let (done_tx, done_rx) = async_channel::unbounded::<()>();
    let in_flight = Rc::new(Cell::new(0usize));
    let dead = Event::default();
    let flight = Flight {
        in_flight: in_flight.clone(),
        done: done_tx,
        dead: dead.clone(),
    };
    spawn_task(write_loop(w, rx, flight));
    let conn = Rc::new(Conn {
        tx,
        pending: RefCell::new(HashMap::new()),
        next_hop: Cell::new(rand_hop(conn_id)),
        last_heard: Cell::new(clock::now()),
        watchdog: Cell::new(None),
        dead,
    });
    CONNS.with(|m| m.borrow_mut().insert(conn_id, conn.clone()));
    spawn_task(watchdog(d.clone(), conn.clone(), conn_id));
    let mut s = Session {
        d: d.clone(),
        ctx: ctx.clone(),
        conn_id,
        conn: conn.clone(),
        addr,
        local,
        phase: Phase::Closed,
        peer: None,
        apps: Vec::new(),
        in_flight,
    };
    let max = d.config.max_message_bytes;
    let max_in_flight = d.config.max_in_flight;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut dpr_deadline: Option<Instant> = None;
    'conn: loop {
        // Every complete message in the buffer, in order.
        let mut start = 0usize;
        loop {
            let pending = buf.get(start..).unwrap_or_default();
            match frame_len(pending, max) {
                Ok(Some(n)) if pending.len() >= n => {
                    let frame = pending.get(..n).unwrap_or_default().to_vec();
                    start += n;
                    if !s.handle(frame) {
                        break 'conn;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    // The stream cannot be cut any further: answer and close.
                    if let Some(h) = peek_header(pending).filter(|h| h.is_request()) {
                        let mut b = Builder::answer(&h);
                        b.text(&avp::ORIGIN_HOST, &d.identity.host)
                            .text(&avp::ORIGIN_REALM, &d.identity.realm)
                            .u32(&avp::RESULT_CODE, e.result_code())
                            .text(&avp::ERROR_MESSAGE, &e.to_string());
                        conn.send(b.finish());
                    }
                    tracing::warn!(peer = %addr, error = %e, "malformed Diameter stream: closing");
                    break 'conn;
                }
            }
        }
        if start > 0 {
            buf.drain(..start);
        }
        if s.phase == Phase::Closing {
            break;
        }
        while let Ok(()) = done_rx.try_recv() {}
        // Too many requests in flight: read again only once one is done.
        while s.in_flight.get() >= max_in_flight {
            match first(done_rx.recv(), conn.dead.wait()).await {
                Either::Left(Ok(())) => {}
                _ => break 'conn,
            }
        }
        let stop = async {
            match dpr_deadline {
                Some(t) => {
                    sleep(t.saturating_duration_since(clock::now())).await;
                    false
                }
                None => match first(conn.dead.wait(), ctx.core.stopping()).await {
                    Either::Left(()) => false,
                    Either::Right(()) => true,
                },
            }
        };
        match first(r.read(buf, READ_CHUNK), stop).await {
            Either::Left((Ok(n), b)) if n > 0 => {
                buf = b;
                conn.last_heard.set(clock::now());
            }
            Either::Left(_) => break,
            // Shutting down: DPR, then whatever comes until its DPA or the
            // deadline (a request cut by the cancelled read is dropped).
            Either::Right(true) => {
                buf = Vec::with_capacity(READ_CHUNK);
                if s.phase != Phase::Open {
                    break;
                }
                let mut b = base_request(&d, command::DISCONNECT_PEER, conn.hop());
                b.u32(&avp::DISCONNECT_CAUSE, REBOOTING);
                conn.send(b.finish());
                dpr_deadline = Some(clock::now() + DPA_WAIT);
            }
            Either::Right(false) => break,
        }
    }
    CONNS.with(|m| m.borrow_mut().remove(&conn_id));
    // Waiting requests see the connection closed.
    conn.pending.borrow_mut().clear();
    conn.dead.set();
    if s.peer.is_some() {
        d.closed(conn_id);
    }
    // Answers still being computed are written before the close.
    while s.in_flight.get() > 0 && !conn.tx.is_closed() {
        if done_rx.recv().await.is_err() {
            break;
        }
    }
    conn.tx.close();
}

/// Waits (at most `limit`) until this core's connections have closed.
pub(super) async fn drain(limit: Duration) {
    let deadline = clock::now() + limit;
    while CONNS.with(|m| !m.borrow().is_empty()) && clock::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
}

/// A per-connection start for this server's hop-by-hop ids.
fn rand_hop(conn: u64) -> u32 {
    let t = clock::unix_micros();
    (t as u32).wrapping_mul(2_654_435_761) ^ (conn as u32)
}

impl Session {
    /// Handles one message; false closes the connection.
    fn handle(&mut self, frame: Vec<u8>) -> bool {
        let Ok(msg) = Message::parse(&frame) else {
            return false;
        };
        let h = msg.header;
        if !h.is_request() {
            if self.phase == Phase::Closed {
                return false;
            }
            if h.code == command::DISCONNECT_PEER {
                self.phase = Phase::Closing;
                return true;
            }
            if let Some((hop, _)) = self.conn.watchdog.get() {
                if hop == h.hop_by_hop {
                    self.conn.watchdog.set(None);
                    self.d.watchdog(self.conn_id, Watchdog::AnswerReceived);
                    return true;
                }
            }
            if let Some(tx) = self.conn.pending.borrow_mut().remove(&h.hop_by_hop) {
                let _ = tx.send(frame);
            } else {
                tracing::debug!(hop = h.hop_by_hop, "Diameter answer to no pending request");
            }
            return true;
        }
        if self.phase == Phase::Closed && h.code != command::CAPABILITIES_EXCHANGE {
            tracing::warn!(peer = %self.addr, code = h.code, "Diameter request before CER: closing");
            return false;
        }
        if let Err(fault) = check(&msg) {
            tracing::info!(peer = %self.addr, code = h.code, result = fault.result_code, why = %fault.why, "malformed Diameter request");
            let keep = h.code != command::CAPABILITIES_EXCHANGE;
            self.conn.send(self.fault_answer(&msg, &fault));
            return keep;
        }
        match h.code {
            command::CAPABILITIES_EXCHANGE => self.cer(&msg),
            command::DEVICE_WATCHDOG => {
                self.d.watchdog(self.conn_id, Watchdog::RequestReceived);
                let mut b = answer(&self.d.identity, &msg);
                b.u32(&avp::RESULT_CODE, result::SUCCESS)
                    .u32(&avp::ORIGIN_STATE_ID, self.d.identity.state_id);
                self.conn.send(finish(b, &msg));
                true
            }
            command::DISCONNECT_PEER => {
                let mut b = answer(&self.d.identity, &msg);
                b.u32(&avp::RESULT_CODE, result::SUCCESS);
                self.conn.send(finish(b, &msg));
                self.phase = Phase::Closing;
                tracing::info!(peer = %self.addr, cause = ?msg.u32(&avp::DISCONNECT_CAUSE), "Diameter peer disconnects (DPR)");
                true
            }
            _ => self.application(frame, h),
        }
    }

    /// An answer to a malformed request.
    fn fault_answer(&self, msg: &Message<'_>, fault: &wire::Fault) -> Vec<u8> {
        let mut b = if fault.is_protocol_error() {
            Builder::error_answer(&msg.header)
        } else {
            Builder::answer(&msg.header)
        };
        if let Some(s) = msg.get(&avp::SESSION_ID) {
            b.bytes(&avp::SESSION_ID, s.data);
        }
        b.text(&avp::ORIGIN_HOST, &self.d.identity.host)
            .text(&avp::ORIGIN_REALM, &self.d.identity.realm)
            .u32(&avp::RESULT_CODE, fault.result_code)
            .text(&avp::ERROR_MESSAGE, &fault.why);
        if let Some(failed) = &fault.failed_avp {
            b.begin(&avp::FAILED_AVP).raw(failed).end();
        }
        finish(b, msg)
    }

    /// A protocol error (E bit) answer naming `code`.
    fn protocol_error(&self, msg: &Message<'_>, code: u32, why: &str) -> Vec<u8> {
        let fault = wire::Fault {
            result_code: code,
            failed_avp: None,
            why: why.to_owned(),
        };
        self.fault_answer(msg, &fault)
    }

    /// CER: who the peer is, whether it is allowed, and the applications
    /// both sides support.
    fn cer(&mut self, msg: &Message<'_>) -> bool {
        if self.phase != Phase::Closed {
            // A second CER on an open connection (RFC 6733 §5.6: not in
            // this state): 3008, the connection stays.
            let a = self.protocol_error(msg, result::INVALID_HDR_BITS, "CER on an open connection");
            self.conn.send(a);
            return true;
        }
        let (Some(host), Some(realm)) = (msg.text(&avp::ORIGIN_HOST), msg.text(&avp::ORIGIN_REALM))
        else {
            let mut b = answer(&self.d.identity, msg);
            b.u32(&avp::RESULT_CODE, result::MISSING_AVP).text(
                &avp::ERROR_MESSAGE,
                "Origin-Host and Origin-Realm are required",
            );
            self.conn.send(finish(b, msg));
            return false;
        };
        let Some(allowed) = self.d.allowed(host, self.addr) else {
            tracing::warn!(peer = %self.addr, origin_host = host, "Diameter peer not allowed: CEA 3010");
            let a = self.protocol_error(msg, result::UNKNOWN_PEER, "this peer is not configured");
            self.conn.send(a);
            return false;
        };
        let mut offered: Vec<u32> = msg
            .all(&avp::AUTH_APPLICATION_ID)
            .filter_map(|a| a.u32())
            .collect();
        for v in msg.all(&avp::VENDOR_SPECIFIC_APPLICATION_ID) {
            offered.extend(
                v.group()
                    .filter_map(Result::ok)
                    .filter(|a| a.is(&avp::AUTH_APPLICATION_ID))
                    .filter_map(|a| a.u32()),
            );
        }
        let relay = offered.contains(&app::RELAY);
        let common: Vec<u32> = allowed
            .into_iter()
            .filter(|a| relay || offered.contains(a))
            .collect();
        let mut b = answer(&self.d.identity, msg);
        if common.is_empty() {
            tracing::warn!(peer = %self.addr, origin_host = host, ?offered, "no common Diameter application: CEA 5010");
            b.u32(&avp::RESULT_CODE, result::NO_COMMON_APPLICATION);
            self.cea_capabilities(&mut b, &self.d.apps.ids());
            self.conn.send(finish(b, msg));
            return false;
        }
        b.u32(&avp::RESULT_CODE, result::SUCCESS);
        self.cea_capabilities(&mut b, &common);
        self.conn.send(finish(b, msg));
        let peer = Rc::new(PeerId {
            origin_host: host.to_owned(),
            origin_realm: realm.to_owned(),
            addr: self.addr,
        });
        self.d.opened(
            self.conn_id,
            self.ctx.core.shard,
            &peer,
            msg,
            (&common, relay),
        );
        tracing::info!(peer = %self.addr, origin_host = host, apps = ?common, "Diameter peer open");
        self.peer = Some(peer);
        self.apps = common;
        self.phase = Phase::Open;
        true
    }

    fn cea_capabilities(&self, b: &mut Builder, apps: &[u32]) {
        let ip: Vec<u8> = match self.local.ip() {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        b.address(&avp::HOST_IP_ADDRESS, &ip)
            .u32(&avp::VENDOR_ID, 0)
            .text(&avp::PRODUCT_NAME, &self.d.identity.product)
            .u32(&avp::ORIGIN_STATE_ID, self.d.identity.state_id)
            .u32(&avp::SUPPORTED_VENDOR_ID, TGPP);
        for a in apps {
            b.begin(&avp::VENDOR_SPECIFIC_APPLICATION_ID)
                .u32(&avp::VENDOR_ID, TGPP)
                .u32(&avp::AUTH_APPLICATION_ID, *a)
                .end();
        }
    }

    /// An application request: served in its own task, its answer queued
    /// when ready.
    fn application(&mut self, frame: Vec<u8>, h: wire::Header) -> bool {
        let Ok(msg) = Message::parse(&frame) else {
            return false;
        };
        if let Some(dest) = msg.text(&avp::DESTINATION_HOST) {
            if !dest.eq_ignore_ascii_case(&self.d.identity.host) {
                let a = self.protocol_error(
                    &msg,
                    result::UNABLE_TO_DELIVER,
                    "Destination-Host is not this server",
                );
                self.conn.send(a);
                return true;
            }
        }
        if !self.apps.contains(&h.app_id) {
            let a = self.protocol_error(
                &msg,
                result::APPLICATION_UNSUPPORTED,
                "application not negotiated on this connection",
            );
            self.conn.send(a);
            return true;
        }
        let Some(handler) = self.d.apps.find(h.app_id, h.code) else {
            let a = self.protocol_error(&msg, result::COMMAND_UNSUPPORTED, "command not supported");
            self.conn.send(a);
            return true;
        };
        let Some(peer) = self.peer.clone() else {
            return false;
        };
        let (ctx, conn) = (self.ctx.clone(), self.conn.clone());
        self.in_flight.set(self.in_flight.get() + 1);
        spawn_task(async move {
            let answer = handler(ctx, Incoming { frame, peer }).await;
            conn.send_answer(answer);
        });
        true
    }
}
