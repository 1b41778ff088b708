//! PC/SC off the cores. The `pcsc` crate blocks, so no executor ever calls
//! it: a supervisor thread owns the PC/SC context that watches the reader
//! list (and pcscd itself), and each reader (slot) has one thread that owns
//! that slot's card handle and its own context, fed by a bounded queue.
//! Executors `try_send` a job and await a oneshot reply; a full queue is an
//! immediate 503.
//!
//! One context per slot thread, not one for all: pcsc-lite holds a
//! context's lock for the whole of `SCardTransmit`, so slots sharing a
//! context would run one at a time (docs/decisions/0005).
//!
//! Card handles are long-lived: connected (exclusively) on first use, EF.DIR
//! read once, the application selected once, then each authentication is
//! AUTHENTICATE (+ GET RESPONSE on T=0). A removed or reset card is
//! reconnected and re-selected; a context that lost pcscd is re-established.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_channel::oneshot;

use crate::config::SimConfig;
use crate::domain::apdu::{self, ApduError, App, AuthResult, Protocol};

/// Why a SIM request failed; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("Reader Error: Specified SIM Slot doesn't exist")]
    NoSlot,
    #[error("No SIM card inserted in slot")]
    NoCard,
    #[error("PC/SC unavailable: {0}")]
    Unavailable(String),
    #[error("slot busy: {0} requests already waiting")]
    Busy(u32),
    #[error("card did not answer within {0} ms")]
    Timeout(u64),
    #[error("reader in use by another application (sharing violation)")]
    InUse,
    /// The card refused with a status word.
    #[error("{message}")]
    Card { sw: u16, message: String },
    #[error("Protocol Error: {0}")]
    Protocol(String),
}

impl SimError {
    pub fn status(&self) -> u16 {
        match self {
            SimError::NoSlot => 404,
            SimError::NoCard => 410,
            SimError::Unavailable(_)
            | SimError::Busy(_)
            | SimError::Timeout(_)
            | SimError::InUse => 503,
            SimError::Card { .. } | SimError::Protocol(_) => 500,
        }
    }
}

/// What a slot is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// AUTHENTICATE in the 3G context on `app`.
    Authenticate {
        app: App,
        rand: [u8; 16],
        autn: [u8; 16],
    },
    /// Report the reader, the card's ATR and applications.
    Describe,
}

/// A slot's answer.
#[derive(Debug)]
pub enum Answer {
    Auth(AuthResult),
    Slot(SlotInfo),
}

/// What `GET /sim-auth-api/v1/slots` shows of one slot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotInfo {
    pub slot: usize,
    pub reader: String,
    pub card_present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    pub applications: Vec<AppInfo>,
    /// Authentications answered by the card since the server started.
    pub authentications: u64,
    /// APDUs (TPDUs) exchanged with the card since the server started.
    pub apdus: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AppInfo {
    pub name: &'static str,
    pub aid: String,
}

type Reply = oneshot::Sender<Result<Answer, SimError>>;

struct Job {
    task: Task,
    reply: Reply,
}

/// The state of PC/SC as the supervisor last saw it.
enum Service {
    /// Not looked at yet.
    Starting,
    Unavailable(String),
    Ready,
}

struct Slot {
    reader: CString,
    queue: async_channel::Sender<Job>,
}

#[derive(Default)]
struct SlotStats {
    authentications: AtomicU64,
    apdus: AtomicU64,
}

struct State {
    service: Service,
    slots: Vec<Slot>,
}

/// The readers: shared by every core (`Send + Sync`).
pub struct Readers {
    state: Mutex<State>,
    config: SimConfig,
    stopping: AtomicBool,
    supervisor: Mutex<Option<std::thread::Thread>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

impl Readers {
    /// Starts the supervisor thread. The server starts whatever PC/SC's
    /// state: without pcscd or readers the SIM endpoints answer 503/404
    /// until they appear.
    pub fn start(config: SimConfig) -> std::io::Result<Arc<Readers>> {
        let readers = Arc::new(Readers {
            state: Mutex::new(State {
                service: Service::Starting,
                slots: Vec::new(),
            }),
            config,
            stopping: AtomicBool::new(false),
            supervisor: Mutex::new(None),
        });
        let r = readers.clone();
        let handle = std::thread::Builder::new()
            .name("authplane-pcsc".into())
            .spawn(move || supervise(&r))?;
        *lock(&readers.supervisor) = Some(handle.thread().clone());
        Ok(readers)
    }

    /// Stops the supervisor and every slot thread (each finishes the job
    /// it is on; jobs still queued are answered "unavailable").
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = lock(&self.supervisor).as_ref() {
            t.unpark();
        }
        lock(&self.state).slots.clear();
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// Number of slots, or why there are none to speak of.
    pub fn slots(&self) -> Result<usize, SimError> {
        let st = lock(&self.state);
        match &st.service {
            Service::Ready => Ok(st.slots.len()),
            Service::Starting => Err(SimError::Unavailable("starting".into())),
            Service::Unavailable(why) => Err(SimError::Unavailable(why.clone())),
        }
    }

    /// Queues `task` on `slot` without blocking; the receiver gets the
    /// answer.
    pub fn submit(
        &self,
        slot: usize,
        task: Task,
    ) -> Result<oneshot::Receiver<Result<Answer, SimError>>, SimError> {
        let st = lock(&self.state);
        match &st.service {
            Service::Ready => {}
            Service::Starting => return Err(SimError::Unavailable("starting".into())),
            Service::Unavailable(why) => return Err(SimError::Unavailable(why.clone())),
        }
        let s = st.slots.get(slot).ok_or(SimError::NoSlot)?;
        let (tx, rx) = oneshot::channel();
        match s.queue.try_send(Job { task, reply: tx }) {
            Ok(()) => Ok(rx),
            Err(async_channel::TrySendError::Full(_)) => {
                Err(SimError::Busy(self.config.queue_depth))
            }
            Err(async_channel::TrySendError::Closed(_)) => {
                Err(SimError::Unavailable("reader went away".into()))
            }
        }
    }
}

/// A poisoned lock only means a thread panicked while holding it; the
/// state is still consistent (every update is a single assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn describe_error(e: pcsc::Error) -> String {
    format!("{e} ({e:?})")
}

/// The supervisor: keeps the slot list equal to pcscd's reader list.
fn supervise(readers: &Readers) {
    let mut ctx: Option<pcsc::Context> = None;
    let interval = Duration::from_millis(readers.config.rescan_ms);
    while !readers.stopping.load(Ordering::SeqCst) {
        let listed = match &ctx {
            Some(c) => c.list_readers_owned(),
            None => match pcsc::Context::establish(pcsc::Scope::User) {
                Ok(c) => {
                    let l = c.list_readers_owned();
                    ctx = Some(c);
                    l
                }
                Err(e) => Err(e),
            },
        };
        let update = match listed {
            Ok(names) => Ok(names),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => {
                // pcscd gone or restarted: a context that outlived it
                // answers NoService while claiming to be valid.
                ctx = None;
                Err(describe_error(e))
            }
        };
        apply(readers, update);
        std::thread::park_timeout(interval);
    }
    lock(&readers.state).slots.clear();
}

/// Makes the slot list match `update`, starting and ending slot threads.
fn apply(readers: &Readers, update: Result<Vec<CString>, String>) {
    let mut st = lock(&readers.state);
    let names = match update {
        Ok(n) => n,
        Err(why) => {
            if !matches!(&st.service, Service::Unavailable(w) if *w == why) {
                tracing::warn!(reason = %why, "PC/SC unavailable: SIM requests answer 503 until it is back");
            }
            st.service = Service::Unavailable(why);
            st.slots.clear();
            return;
        }
    };
    if !matches!(st.service, Service::Ready) {
        tracing::info!(readers = names.len(), "PC/SC available");
    }
    st.service = Service::Ready;
    let same =
        st.slots.len() == names.len() && st.slots.iter().zip(&names).all(|(s, n)| s.reader == *n);
    if same {
        return;
    }
    // Readers are slots by position: keep a slot whose reader is unchanged.
    let mut old: Vec<Option<Slot>> = std::mem::take(&mut st.slots)
        .into_iter()
        .map(Some)
        .collect();
    for (i, name) in names.into_iter().enumerate() {
        if let Some(s) = old.get_mut(i).and_then(|o| o.take_if(|s| s.reader == name)) {
            st.slots.push(s);
            continue;
        }
        match start_slot(i, name.clone(), readers.config.queue_depth) {
            Ok(s) => st.slots.push(s),
            Err(e) => {
                tracing::error!(slot = i, error = %e, "cannot start a slot thread");
                st.service = Service::Unavailable(format!("cannot start a slot thread: {e}"));
                st.slots.clear();
                return;
            }
        }
        tracing::info!(slot = i, reader = %name.to_string_lossy(), "slot ready");
    }
}

fn start_slot(index: usize, reader: CString, depth: u32) -> std::io::Result<Slot> {
    let (tx, rx) = async_channel::bounded(usize::try_from(depth).unwrap_or(64));
    let stats = Arc::new(SlotStats::default());
    let worker = SlotWorker {
        index,
        reader: reader.clone(),
        ctx: None,
        conn: None,
        stats,
    };
    std::thread::Builder::new()
        .name(format!("authplane-sim-{index}"))
        .spawn(move || worker.run(&rx))?;
    Ok(Slot { reader, queue: tx })
}

/// A connected card.
struct Conn {
    card: pcsc::Card,
    protocol: Protocol,
    atr: Vec<u8>,
    /// Full AIDs from EF.DIR.
    apps: Vec<(App, Vec<u8>)>,
    selected: Option<App>,
}

/// One slot's thread: its own context and card handle.
struct SlotWorker {
    index: usize,
    reader: CString,
    ctx: Option<pcsc::Context>,
    conn: Option<Conn>,
    stats: Arc<SlotStats>,
}

/// What went wrong talking to the card, and whether a retry may help.
enum Failure {
    /// Card removed or reset: reconnect and try once more.
    Card(pcsc::Error),
    /// The context lost pcscd: establish a new one and try once more.
    Context(pcsc::Error),
    Final(SimError),
}

fn classify(e: pcsc::Error) -> Failure {
    use pcsc::Error as E;
    match e {
        // A card swapped under a held handle can also show as a protocol
        // mismatch (the old card's protocol): reconnect once.
        E::RemovedCard
        | E::ResetCard
        | E::UnpoweredCard
        | E::UnresponsiveCard
        | E::ProtoMismatch => Failure::Card(e),
        E::NoService | E::ServiceStopped | E::InvalidHandle | E::CommError => Failure::Context(e),
        E::NoSmartcard => Failure::Final(SimError::NoCard),
        E::SharingViolation => Failure::Final(SimError::InUse),
        E::UnknownReader | E::ReaderUnavailable => {
            Failure::Final(SimError::Unavailable(describe_error(e)))
        }
        e => Failure::Final(SimError::Protocol(describe_error(e))),
    }
}

impl From<ApduError<pcsc::Error>> for Failure {
    fn from(e: ApduError<pcsc::Error>) -> Failure {
        match e {
            ApduError::Link(e) => classify(e),
            ApduError::Protocol(why) => Failure::Final(SimError::Protocol(why.into())),
            ApduError::Status(sw) => Failure::Final(SimError::Card {
                sw,
                message: apdu::status_message(sw),
            }),
        }
    }
}

impl SlotWorker {
    fn run(mut self, queue: &async_channel::Receiver<Job>) {
        while let Ok(job) = queue.recv_blocking() {
            if job.reply.is_canceled() {
                continue; // the client gave up while it waited
            }
            let answer = self.serve(job.task);
            let _ = job.reply.send(answer);
        }
        tracing::debug!(slot = self.index, "slot thread ends");
    }

    fn serve(&mut self, task: Task) -> Result<Answer, SimError> {
        let mut retried = false;
        loop {
            let failure = match self.attempt(task) {
                Ok(a) => return Ok(a),
                Err(f) => f,
            };
            match failure {
                Failure::Final(e) => {
                    if let (SimError::NoCard, Task::Describe) = (&e, task) {
                        return Ok(Answer::Slot(self.info(None)));
                    }
                    return Err(e);
                }
                Failure::Card(e) | Failure::Context(e) if retried => {
                    self.conn = None;
                    return Err(match e {
                        pcsc::Error::RemovedCard => SimError::NoCard,
                        e => SimError::Unavailable(describe_error(e)),
                    });
                }
                Failure::Card(e) => {
                    tracing::info!(slot = self.index, event = ?e, "card removed or reset: reconnecting");
                    self.conn = None;
                }
                Failure::Context(e) => {
                    tracing::info!(slot = self.index, event = ?e, "PC/SC context lost: establishing a new one");
                    self.conn = None;
                    self.ctx = None;
                }
            }
            retried = true;
        }
    }

    fn attempt(&mut self, task: Task) -> Result<Answer, Failure> {
        self.connect()?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Final(SimError::NoCard));
        };
        match task {
            Task::Describe => {
                // A card pulled while idle is only noticed by asking.
                conn.card.status2_owned().map_err(classify)?;
                let info = info_of(self.index, &self.reader, &self.stats, Some(conn));
                Ok(Answer::Slot(info))
            }
            Task::Authenticate { app, rand, autn } => {
                let stats = &self.stats;
                let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
                let card = &conn.card;
                let mut transmit = |tpdu: &[u8]| {
                    stats.apdus.fetch_add(1, Ordering::Relaxed);
                    card.transmit(tpdu, &mut buf).map(<[u8]>::to_vec)
                };
                if conn.selected != Some(app) {
                    conn.selected = None;
                    let aid = conn
                        .apps
                        .iter()
                        .find(|(a, _)| *a == app)
                        .map_or(app.aid_prefix(), |(_, aid)| aid.as_slice());
                    let select = apdu::select_aid(aid).ok_or(Failure::Final(
                        SimError::Protocol("bad AID in EF.DIR".into()),
                    ))?;
                    match apdu::exchange(conn.protocol, &select, &mut transmit) {
                        Ok(_) => conn.selected = Some(app),
                        Err(ApduError::Status(sw)) => {
                            return Err(Failure::Final(SimError::Card {
                                sw,
                                message: format!("cannot select ADF.{}", app.name()),
                            }))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let command = apdu::authenticate(&rand, &autn);
                let data = apdu::exchange(conn.protocol, &command, &mut transmit);
                zeroize::Zeroize::zeroize(&mut buf[..]);
                let data = data?;
                let result = apdu::parse_auth(&data).ok_or(Failure::Final(SimError::Protocol(
                    "AUTHENTICATE answer is neither DB nor DC".into(),
                )))?;
                stats.authentications.fetch_add(1, Ordering::Relaxed);
                Ok(Answer::Auth(result))
            }
        }
    }

    /// Connects the card if it is not: context, exclusive connection,
    /// protocol and ATR, then EF.DIR's applications.
    fn connect(&mut self) -> Result<(), Failure> {
        if self.conn.is_some() {
            return Ok(());
        }
        if self.ctx.is_none() {
            let c = pcsc::Context::establish(pcsc::Scope::User).map_err(classify)?;
            self.ctx = Some(c);
        }
        let Some(ctx) = self.ctx.as_ref() else {
            return Err(Failure::Final(SimError::Unavailable("no context".into())));
        };
        let card = ctx
            .connect(
                &self.reader,
                pcsc::ShareMode::Exclusive,
                pcsc::Protocols::ANY,
            )
            .map_err(classify)?;
        let status = card.status2_owned().map_err(classify)?;
        let protocol = match status.protocol2() {
            Some(pcsc::Protocol::T0) => Protocol::T0,
            Some(pcsc::Protocol::T1) => Protocol::T1,
            other => {
                return Err(Failure::Final(SimError::Protocol(format!(
                    "card protocol {other:?} is neither T=0 nor T=1"
                ))))
            }
        };
        let atr = status.atr().to_vec();
        let apps = read_ef_dir(&card, protocol, &self.stats);
        tracing::info!(
            slot = self.index,
            atr = %hex::encode(&atr),
            ?protocol,
            applications = ?apps.iter().map(|(a, _)| a.name()).collect::<Vec<_>>(),
            "card connected"
        );
        self.conn = Some(Conn {
            card,
            protocol,
            atr,
            apps,
            selected: None,
        });
        Ok(())
    }

    fn info(&self, conn: Option<&Conn>) -> SlotInfo {
        info_of(self.index, &self.reader, &self.stats, conn)
    }
}

fn info_of(index: usize, reader: &CString, stats: &SlotStats, conn: Option<&Conn>) -> SlotInfo {
    SlotInfo {
        slot: index,
        reader: reader.to_string_lossy().into_owned(),
        card_present: conn.is_some(),
        atr: conn.map(|c| hex::encode(&c.atr)),
        protocol: conn.map(|c| match c.protocol {
            Protocol::T0 => "T=0",
            Protocol::T1 => "T=1",
        }),
        applications: conn
            .map(|c| {
                c.apps
                    .iter()
                    .map(|(a, aid)| AppInfo {
                        name: a.name(),
                        aid: hex::encode(aid),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        authentications: stats.authentications.load(Ordering::Relaxed),
        apdus: stats.apdus.load(Ordering::Relaxed),
    }
}

/// The USIM and ISIM AIDs listed in EF.DIR. A card without a readable
/// EF.DIR gets an empty list (applications are then selected by their
/// AID prefix, as pysim does).
fn read_ef_dir(card: &pcsc::Card, protocol: Protocol, stats: &SlotStats) -> Vec<(App, Vec<u8>)> {
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut transmit = |tpdu: &[u8]| {
        stats.apdus.fetch_add(1, Ordering::Relaxed);
        card.transmit(tpdu, &mut buf).map(<[u8]>::to_vec)
    };
    let Ok(fcp) = apdu::exchange(protocol, &apdu::select_fid(apdu::EF_DIR), &mut transmit) else {
        return Vec::new();
    };
    let Some((len, n)) = apdu::record_layout(&fcp) else {
        return Vec::new();
    };
    let mut apps = Vec::new();
    for i in 1..=n {
        let Ok(rec) = apdu::exchange(protocol, &apdu::read_record(i, len), &mut transmit) else {
            break;
        };
        if let Some(aid) = apdu::dir_record_aid(&rec) {
            if let Some(app) = App::of_aid(aid) {
                if !apps.iter().any(|(a, _)| *a == app) {
                    apps.push((app, aid.to_vec()));
                }
            }
        }
    }
    apps
}
