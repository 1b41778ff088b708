//! The load engine: a few client threads (one per core, each an io_uring
//! executor), many keep-alive connections on each.
//!
//! Open loop: every connection sends on a fixed schedule (rate ÷
//! connections). When the previous answer came after a request's intended
//! send time, the server held the connection up: latency is measured from
//! the **intended** time, so a stall counts against every request that
//! should have been sent during it (coordinated-omission correction, as
//! wrk2). When the answer came in time, the connection waits for the send
//! clock's next tick (every [`SEND_TICK`], see [`SendClock`]) and latency is
//! measured from the actual send, so the tick's slack is not charged to the
//! server. How late the send clock's ticks ran is reported with the run: it
//! is how long the generator itself was held up (by its own work, or by the
//! machine not running it). Closed loop: each connection sends its next
//! request when the answer arrives.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rand::SeedableRng;

use authplane::runtime::clock;

use crate::scenario::Scenario;

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed,
    Open { rate: f64 },
}

/// One run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    /// Speak TLS with this client configuration (None: plain HTTP).
    pub tls: Option<TlsClient>,
    pub mode: Mode,
    pub connections: usize,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Stop after this many requests in all (provisioning); None: run for
    /// the duration.
    pub requests: Option<u64>,
    pub scenario: Scenario,
    /// Requests per write in closed loop (HTTP pipelining); 1: none.
    pub pipeline: usize,
    /// Counts answered requests as they come (for a progress bar).
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// Latency is recorded in microseconds, 1 µs to 60 s, 3 significant digits.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// What a run (or part of it) measured.
#[derive(Debug, Clone)]
pub struct Stats {
    pub latency_us: Histogram<u64>,
    /// Correct answers counted (after warm-up).
    pub ok: u64,
    /// Errors by kind (after warm-up).
    pub errors: BTreeMap<&'static str, u64>,
    /// Seconds over which `ok` and `errors` were counted.
    pub measured_secs: f64,
    /// Open loop: how late each tick of the send clock ran (µs), the
    /// generator's own hold-ups. Empty in a closed loop.
    pub clock_late_us: Histogram<u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency_us: new_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            measured_secs: 0.0,
            clock_late_us: new_histogram(),
        }
    }

    fn merge(&mut self, other: &Stats) {
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.clock_late_us.add(&other.clock_late_us);
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.measured_secs = self.measured_secs.max(other.measured_secs);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Completed requests per second (correct or not).
    pub fn throughput(&self) -> f64 {
        (self.ok + self.error_count()) as f64 / self.measured_secs.max(1e-9)
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()))
}

/// Records `us` (clamped to the histogram's range).
fn record_us(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

fn unreachable_histogram() -> Histogram<u64> {
    // Histogram::new(3) cannot fail for 3 significant digits.
    Histogram::new_with_max(MAX_LATENCY_US, 2).unwrap_or_else(|_| std::process::abort())
}

/// Runs `plan` and returns what it measured.
pub fn run(plan: &Plan) -> anyhow::Result<Stats> {
    let threads = plan.threads.max(1).min(plan.connections.max(1));
    // Every thread starts on the same schedule.
    let start = clock::now() + Duration::from_millis(100);
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::new();
    for t in 0..threads {
        let plan = plan.clone();
        let cpu = cpus.get(t % cpus.len().max(1)).copied();
        let conns: Vec<usize> = (0..plan.connections).filter(|c| c % threads == t).collect();
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || -> anyhow::Result<Stats> {
                    if let Some(cpu) = cpu {
                        core_affinity::set_for_current(cpu);
                    }
                    let mut uring = io_uring::IoUring::builder();
                    uring.setup_coop_taskrun();
                    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .uring_builder(uring)
                        .enable_timer()
                        .build()?;
                    Ok(rt.block_on(thread_main(plan, conns, start)))
                })?,
        );
    }
    let mut total = Stats::new();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        total.merge(&s);
    }
    Ok(total)
}

async fn thread_main(plan: Plan, conns: Vec<usize>, start: Instant) -> Stats {
    let clock = match plan.mode {
        Mode::Open { .. } => SendClock::start(start),
        Mode::Closed => None,
    };
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|c| {
            let plan = plan.clone();
            let clock = clock.clone();
            monoio::spawn(async move { connection(&plan, c, start, clock.as_deref()).await })
        })
        .collect();
    let mut stats = Stats::new();
    for t in tasks {
        stats.merge(&t.await);
    }
    if let Some(c) = clock {
        let _ = stats.clock_late_us.add(&*c.late_us.borrow());
    }
    stats
}

/// The send clock's period: at 50k requests/s, 25 requests leave together.
pub const SEND_TICK: Duration = Duration::from_micros(500);

/// The open loop's send clock, one per client thread: a timerfd firing
/// every [`SEND_TICK`] from the run's start wakes the connections whose
/// send time has come.
///
/// monoio's timers fire in 1 ms slots, and often a slot late: sends left in
/// 1 to 2 ms bursts, the server held each burst's answers for one group
/// commit, and the answers came back together. At 50k vectors/s the
/// generator's p50 was 0.84 to 0.95 ms, against 0.38 to 0.51 ms with sends
/// on a 500 µs grid (docs/performance.md). A
/// timer per connection, exact to the microsecond, cost more than it
/// measured: every send then woke the server and the generator on its
/// own, which on a 2-vCPU VM doubled the server's CPU per request and
/// tripled the generator's.
struct SendClock {
    waiting: RefCell<Vec<(Instant, Waker)>>,
    /// False once the timerfd failed: connections then use monoio's timers.
    running: std::cell::Cell<bool>,
    /// The first tick; the others follow every [`SEND_TICK`].
    first: Instant,
    /// How late each tick was seen (µs).
    late_us: RefCell<Histogram<u64>>,
}

impl SendClock {
    /// Starts the clock's task; None when no timerfd can be had (monoio's
    /// timers are used then).
    fn start(start: Instant) -> Option<Rc<SendClock>> {
        use rustix::time::{
            timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
            TimerfdTimerFlags, Timespec,
        };
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        let timespec = |d: Duration| Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: d.subsec_nanos().into(),
        };
        // A zero first expiry would disarm the timer.
        let first = start
            .saturating_duration_since(clock::now())
            .max(Duration::from_nanos(1));
        let value = Itimerspec {
            it_interval: timespec(SEND_TICK),
            it_value: timespec(first),
        };
        timerfd_settime(&fd, TimerfdTimerFlags::empty(), &value).ok()?;
        let first = clock::now() + first;
        let file = monoio::fs::File::from_std(std::fs::File::from(fd)).ok()?;
        let clock = Rc::new(SendClock {
            waiting: RefCell::new(Vec::new()),
            running: std::cell::Cell::new(true),
            first,
            late_us: RefCell::new(new_histogram()),
        });
        let ticks = clock.clone();
        // Runs until the thread's connections are done (the runtime then
        // drops it).
        monoio::spawn(async move {
            let mut buf = Vec::with_capacity(8);
            // Expirations before this read (a read returns how many came
            // since the last one).
            let mut fired: u32 = 0;
            loop {
                let (res, back) = file.read_at(buf, 0).await;
                buf = back;
                // Lateness runs from the earliest expiration this read
                // collects: a hold-up of 4 ms is 4 ms late, not the 0.5 ms
                // since the last of the ticks missed during it.
                let due = ticks.first + SEND_TICK * fired;
                if let Some(n) = buf.first_chunk::<8>().map(|b| u64::from_ne_bytes(*b)) {
                    fired = fired.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
                }
                buf.clear();
                if res.is_err() {
                    // Wake everyone; they fall back to monoio's timers.
                    ticks.running.set(false);
                    for (_, w) in ticks.waiting.borrow_mut().drain(..) {
                        w.wake();
                    }
                    return;
                }
                let now = clock::now();
                record_us(
                    &mut ticks.late_us.borrow_mut(),
                    now.saturating_duration_since(due),
                );
                // A wake only queues the task (nothing runs inside the
                // borrow), so the due ones are woken as they are dropped.
                ticks.waiting.borrow_mut().retain(|(at, w)| {
                    let due = *at <= now;
                    if due {
                        w.wake_by_ref();
                    }
                    !due
                });
            }
        });
        Some(clock)
    }

    /// Ready at the first tick at or after `at` (at once if the clock
    /// stopped).
    fn until(&self, at: Instant) -> Tick<'_> {
        Tick { clock: self, at }
    }
}

struct Tick<'a> {
    clock: &'a SendClock,
    at: Instant,
}

impl Future for Tick<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.clock.running.get() || clock::now() >= self.at {
            return Poll::Ready(());
        }
        self.clock
            .waiting
            .borrow_mut()
            .push((self.at, cx.waker().clone()));
        Poll::Pending
    }
}

/// A TLS client configuration and the server name it checks.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: std::sync::Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
}

impl TlsClient {
    /// Trusting the CA certificates of `ca_pem` (None: the Mozilla roots),
    /// checking `name`, resuming sessions or not.
    pub fn new(ca_pem: Option<&[u8]>, name: &str, resume: bool) -> anyhow::Result<TlsClient> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                    roots.add(cert?)?;
                }
                anyhow::ensure!(!roots.is_empty(), "the CA file holds no certificate");
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Ok(TlsClient {
            config: std::sync::Arc::new(config),
            name: rustls_pki_types::ServerName::try_from(name.to_owned())?,
        })
    }

    /// The same configuration checking another name.
    pub fn named(&self, name: &str) -> anyhow::Result<TlsClient> {
        Ok(TlsClient {
            config: self.config.clone(),
            name: rustls_pki_types::ServerName::try_from(name.to_owned())?,
        })
    }
}

/// A connection's byte stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => s.write_all(buf).await,
        }
    }

    async fn read(
        &mut self,
        buf: SliceMut<Vec<u8>>,
    ) -> (std::io::Result<usize>, SliceMut<Vec<u8>>) {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }
}

/// A keep-alive connection with a reusable read buffer.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// Diameter framing instead of HTTP's.
    diameter: bool,
}

impl Conn {
    async fn open(plan: &Plan) -> std::io::Result<Conn> {
        let (addr, scenario) = (plan.target, &plan.scenario);
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let stream = match &plan.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let connector = monoio_rustls::TlsConnector::from(tls.config.clone());
                let s = connector
                    .connect(tls.name.clone(), tcp)
                    .await
                    .map_err(std::io::Error::other)?;
                Stream::Tls(Box::new(s))
            }
        };
        let mut conn = Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            diameter: scenario.diameter(),
        };
        if conn.diameter {
            // One capabilities exchange per connection.
            let (_, cea) = conn.exchange(crate::scenario::cer()).await;
            let refused = || std::io::Error::other("CER refused");
            let (_, frame) = cea.map_err(|_| refused())?;
            let m = authplane::domain::diameter::Message::parse(&frame).map_err(|_| refused())?;
            if m.u32(&authplane::domain::diameter::dict::avp::RESULT_CODE) != Some(2001) {
                return Err(refused());
            }
        }
        Ok(conn)
    }

    /// Sends `req` and reads one whole response: (status, body).
    async fn exchange(&mut self, req: Vec<u8>) -> (Vec<u8>, Result<(u16, Vec<u8>), &'static str>) {
        let (res, req) = self.stream.write_all(req).await;
        if res.is_err() {
            return (req, Err("connection"));
        }
        let answer = self.read_one().await;
        (req, answer)
    }

    /// Reads one whole response: (status, body).
    async fn read_one(&mut self) -> Result<(u16, Vec<u8>), &'static str> {
        loop {
            let parsed = if self.diameter {
                parse_diameter(&mut self.buf)
            } else {
                parse_response(&mut self.buf)
            };
            if let Some(done) = parsed {
                return done;
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let len = self.buf.len();
            let cap = self.buf.capacity();
            let buf = std::mem::take(&mut self.buf);
            let (res, slice) = self.stream.read(buf.slice_mut(len..cap)).await;
            self.buf = SliceMut::into_inner(slice);
            match res {
                Ok(0) | Err(_) => return Err("connection"),
                Ok(_) => {}
            }
        }
    }
}

/// Closed loop with pipelining: `plan.pipeline` requests in one write, then
/// their answers in order; each one's latency runs from the write. Returns
/// false when the connection broke.
async fn pipelined(
    plan: &Plan,
    conn: &mut Conn,
    rng: &mut rand::rngs::SmallRng,
    seq: u64,
    measure_from: Instant,
    stats: &mut Stats,
) -> bool {
    let mut batch = Vec::with_capacity(plan.pipeline * 256);
    let mut one = Vec::with_capacity(256);
    let mut sents = Vec::with_capacity(plan.pipeline);
    for i in 0..plan.pipeline {
        sents.push(plan.scenario.request(rng, seq + i as u64, &mut one));
        batch.extend_from_slice(&one);
    }
    let sent_at = clock::now();
    let (res, _) = conn.stream.write_all(batch).await;
    if res.is_err() {
        *stats.errors.entry("connection").or_default() += 1;
        return false;
    }
    for sent in sents {
        let outcome = conn.read_one().await;
        let counted = sent_at >= measure_from;
        match outcome {
            Ok((status, body)) => {
                if counted {
                    record_us(
                        &mut stats.latency_us,
                        clock::now().saturating_duration_since(sent_at),
                    );
                    match plan.scenario.check(sent, status, &body) {
                        Ok(()) => stats.ok += 1,
                        Err(kind) => *stats.errors.entry(kind).or_default() += 1,
                    }
                }
            }
            Err(kind) => {
                *stats.errors.entry(kind).or_default() += 1;
                return false;
            }
        }
    }
    true
}

/// One whole Diameter message off the front of `buf`, if it has arrived
/// (status 200: the scenario checks its result code).
fn parse_diameter(buf: &mut Vec<u8>) -> Option<Result<(u16, Vec<u8>), &'static str>> {
    match authplane::domain::diameter::frame_len(buf, 1 << 20) {
        Ok(Some(n)) if buf.len() >= n => {
            let frame: Vec<u8> = buf.drain(..n).collect();
            Some(Ok((200, frame)))
        }
        Ok(_) => None,
        Err(_) => Some(Err("bad_diameter")),
    }
}

/// One whole response off the front of `buf`, if it has arrived.
fn parse_response(buf: &mut Vec<u8>) -> Option<Result<(u16, Vec<u8>), &'static str>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Err("bad_http")),
    };
    let status = r.code.unwrap_or(0);
    let len = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    let chunked = r.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        return dechunk(buf, head).map(|r| r.map(|body| (status, body)));
    }
    if buf.len() < head + len {
        return None;
    }
    let body = buf[head..head + len].to_vec();
    buf.drain(..head + len);
    Some(Ok((status, body)))
}

/// A chunked body that starts at `from`, taken off `buf` with its head
/// once complete (servers such as Twisted answer chunked).
fn dechunk(buf: &mut Vec<u8>, from: usize) -> Option<Result<Vec<u8>, &'static str>> {
    match authplane::domain::http1::decode_chunked_body(buf.get(from..)?, usize::MAX / 2) {
        Ok(Some((body, raw))) => {
            buf.drain(..from + raw);
            Some(Ok(body))
        }
        Ok(None) => None,
        Err(_) => Some(Err("bad_http")),
    }
}

async fn connection(
    plan: &Plan,
    index: usize,
    start: Instant,
    send_clock: Option<&SendClock>,
) -> Stats {
    let mut stats = Stats::new();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed ^ index as u64);
    let interval = match plan.mode {
        Mode::Open { rate } => Some(Duration::from_secs_f64(
            plan.connections as f64 / rate.max(1e-9),
        )),
        Mode::Closed => None,
    };
    // Spread the connections' schedules over one interval.
    let offset = interval.map_or(Duration::ZERO, |i| {
        i.mul_f64(index as f64 / plan.connections.max(1) as f64)
    });
    monoio::time::sleep_until(monoio::time::Instant::from_std(start)).await;
    let mut conn = match Conn::open(plan).await {
        Ok(c) => c,
        Err(_) => {
            *stats.errors.entry("connect").or_default() += 1;
            return stats;
        }
    };
    let mut req = Vec::with_capacity(512);
    let mut k: u64 = 0;
    loop {
        let seq = index as u64 + k * plan.connections as u64;
        if plan.requests.is_some_and(|n| seq >= n) {
            break;
        }
        let intended = match interval {
            Some(i) => start + offset + i.mul_f64(k as f64),
            None => clock::now(),
        };
        // A run ends on time even when the server made it fall behind
        // schedule (as wrk2): requests still due then are not sent.
        if plan.requests.is_none() && (intended >= end || clock::now() >= end) {
            break;
        }
        // Behind schedule (held up by the server): measure from the intended
        // time. On time: wait, and measure from the actual send.
        let behind = clock::now() >= intended;
        if !behind {
            if let Some(c) = send_clock {
                c.until(intended).await;
            }
            if clock::now() < intended {
                monoio::time::sleep_until(monoio::time::Instant::from_std(intended)).await;
            }
        }
        let measured_from = if behind { intended } else { clock::now() };
        if plan.pipeline > 1 && interval.is_none() && plan.requests.is_none() {
            if !pipelined(plan, &mut conn, &mut rng, seq, measure_from, &mut stats).await {
                match Conn::open(plan).await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
            k += 1;
            continue;
        }
        let sent = plan.scenario.request(&mut rng, seq, &mut req);
        let (back, outcome) = conn.exchange(std::mem::take(&mut req)).await;
        req = back;
        let done = clock::now();
        if plan.scenario.close_each && outcome.is_ok() {
            // Each request on its own connection, as the server wants.
            match Conn::open(plan).await {
                Ok(c) => conn = c,
                Err(_) => {
                    *stats.errors.entry("connect").or_default() += 1;
                    break;
                }
            }
        }
        let counted = plan.requests.is_some() || intended >= measure_from;
        if let Some(p) = &plan.progress {
            p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match outcome {
            Ok((status, body)) => {
                if counted {
                    record_us(
                        &mut stats.latency_us,
                        done.saturating_duration_since(measured_from),
                    );
                    match plan.scenario.check(sent, status, &body) {
                        Ok(()) => stats.ok += 1,
                        Err(kind) => *stats.errors.entry(kind).or_default() += 1,
                    }
                }
            }
            Err(kind) => {
                if counted {
                    *stats.errors.entry(kind).or_default() += 1;
                }
                match Conn::open(plan).await {
                    Ok(c) => conn = c,
                    Err(_) => {
                        *stats.errors.entry("connect").or_default() += 1;
                        break;
                    }
                }
            }
        }
        k += 1;
    }
    stats.measured_secs = match plan.requests {
        Some(_) => clock::now().saturating_duration_since(start).as_secs_f64(),
        None => plan.duration.as_secs_f64(),
    };
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_sized_responses_are_taken_whole() {
        let mut buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\nHTTP/1.1 204 No\r\nContent-Length: 0\r\n\r\n".to_vec();
        let (status, body) = parse_response(&mut buf).unwrap().unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"{\"a\":1}"[..]));
        let (status, body) = parse_response(&mut buf).unwrap().unwrap();
        assert_eq!((status, body.len()), (204, 0));
        assert!(buf.is_empty());
        // Incomplete at every cut: wait for more, never a wrong answer.
        let whole =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n0\r\n\r\n";
        for cut in 0..whole.len() {
            assert!(
                parse_response(&mut whole[..cut].to_vec()).is_none(),
                "cut {cut}"
            );
        }
        let mut bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
        assert_eq!(parse_response(&mut bad), Some(Err("bad_http")));
    }
}
