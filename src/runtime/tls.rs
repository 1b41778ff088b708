//! HTTPS on the cores: rustls driven over monoio's owned-buffer I/O.
//!
//! One [`TlsServer`] per TLS listener holds its rustls configuration,
//! shared by every core; SIGHUP builds a new one from the same files
//! ([`TlsServer::reload`]) and swaps it in for the handshakes that follow,
//! while established connections keep the session they have. A file that
//! does not load keeps the configuration in use (the log and `/metrics`
//! say why). Session tickets come from one rotating key (rustls's
//! `Ticketer`: a new key every 6 hours, the previous one still accepted)
//! and TLS 1.2 session ids from one cache, both shared by every core and
//! kept across reloads: `SO_REUSEPORT` spreads a client's connections over
//! the cores, and any core resumes any session.
//!
//! [`TlsConn`] is one connection: its handshake, then reads and writes of
//! plaintext for the HTTP loop, with direct access to the rustls session
//! (the client's certificate, the protocol version, how it shook hands).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::server::{
    NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::ServerConnection;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientCertificate, TlsSettings};
use crate::domain::http1::ClientAuth;

/// TLS 1.2 sessions remembered for resumption by id (TLS 1.3 resumes with
/// tickets, which need no memory on the server).
const SESSION_CACHE: usize = 16 * 1024;

/// Bytes a connection reads off the socket at a time.
const TLS_READ: usize = 16 * 1024 + 512;

/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// A TLS listener's configuration, reloadable.
pub struct TlsServer {
    /// The listener's name (log, metrics).
    pub name: String,
    settings: TlsSettings,
    config: RwLock<Arc<rustls::ServerConfig>>,
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<dyn StoresServerSessions>,
    pub stats: TlsStats,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a TLS listener counted, over every core.
#[derive(Debug, Default)]
pub struct TlsStats {
    pub handshakes: AtomicU64,
    /// Handshakes that resumed a session.
    pub resumed: AtomicU64,
    /// Handshakes refused, failed or timed out.
    pub handshake_failures: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    /// The last reload failed: the configuration before it is in use.
    pub last_reload_failed: AtomicBool,
    /// The leaf certificate's notAfter (Unix seconds) in use.
    pub not_after: AtomicU64,
}

impl TlsServer {
    /// Loads the listener's certificate, key and client CA.
    pub fn load(name: &str, settings: &TlsSettings) -> Result<TlsServer, TlsError> {
        let ticketer: Arc<dyn ProducesTickets> = if settings.resumption {
            rustls::crypto::ring::Ticketer::new()
                .map_err(|e| TlsError(format!("session tickets: {e}")))?
        } else {
            Arc::new(NoTickets)
        };
        let cache: Arc<dyn StoresServerSessions> = if settings.resumption {
            ServerSessionMemoryCache::new(SESSION_CACHE)
        } else {
            Arc::new(NoServerSessionStorage {})
        };
        let (config, not_after) = build(settings, &ticketer, &cache)?;
        let stats = TlsStats::default();
        stats.not_after.store(not_after, Ordering::Relaxed);
        Ok(TlsServer {
            name: name.to_owned(),
            settings: settings.clone(),
            config: RwLock::new(Arc::new(config)),
            ticketer,
            cache,
            stats,
        })
    }

    /// Reads the files again and, when they load, uses them for every
    /// handshake from now on. When they do not, the configuration in use
    /// stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        match build(&self.settings, &self.ticketer, &self.cache) {
            Ok((config, not_after)) => {
                if let Ok(mut current) = self.config.write() {
                    *current = Arc::new(config);
                }
                self.stats.not_after.store(not_after, Ordering::Relaxed);
                self.stats
                    .last_reload_failed
                    .store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.stats.reload_failures.fetch_add(1, Ordering::Relaxed);
                self.stats.last_reload_failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The configuration for the next handshake.
    fn current(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.config.read().ok().map(|c| c.clone())
    }

    /// What the client's certificate (or its absence) allows it.
    fn client_auth(&self, conn: &ServerConnection) -> ClientAuth {
        if self.settings.client_certificate == ClientCertificate::None {
            ClientAuth::None
        } else if conn.peer_certificates().is_some_and(|c| !c.is_empty()) {
            ClientAuth::Verified
        } else if self.settings.provisioning_requires_client_certificate {
            ClientAuth::Missing
        } else {
            ClientAuth::None
        }
    }
}

/// Tickets off: rustls then resumes nothing by ticket.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("{what} {}: {e}", path.display())))
}

/// Every certificate in a PEM file (at least one).
fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// A rustls server configuration from `settings`, and the leaf's notAfter.
fn build(
    settings: &TlsSettings,
    ticketer: &Arc<dyn ProducesTickets>,
    cache: &Arc<dyn StoresServerSessions>,
) -> Result<(rustls::ServerConfig, u64), TlsError> {
    let chain = certificates("certificate", &settings.certificate)?;
    let not_after = chain.first().map_or(Ok(0), |leaf| not_after(leaf))?;
    let key_pem = zeroize::Zeroizing::new(read_file("key", &settings.key)?);
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError(format!("key {}: {e}", settings.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match (&settings.client_ca, settings.client_certificate) {
        (Some(ca), ClientCertificate::Optional | ClientCertificate::Required) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates("client_ca", ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsError(format!("client_ca {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.client_certificate == ClientCertificate::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError(format!("client_ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "certificate {} and key {}: {e}",
            settings.certificate.display(),
            settings.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = ticketer.clone();
    config.session_storage = cache.clone();
    if !settings.resumption {
        config.send_tls13_tickets = 0;
    }
    Ok((config, not_after))
}

/// The notAfter of a certificate, in Unix seconds.
fn not_after(der: &CertificateDer<'_>) -> Result<u64, TlsError> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .map_err(|e| TlsError(format!("certificate: {e}")))?;
    Ok(cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs())
}

/// One TLS connection over TCP.
pub(crate) struct TlsConn {
    io: TcpStream,
    tls: ServerConnection,
    /// TLS bytes read off the socket; rustls has taken `inbuf[taken..]`
    /// not yet.
    inbuf: Vec<u8>,
    taken: usize,
    outbuf: Vec<u8>,
    /// Plaintext rustls holds for the reader.
    plain: usize,
    /// The client sent close_notify, or the socket reached its end.
    closed: bool,
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub(crate) struct HandshakeFailed(pub io::Error);

impl TlsConn {
    /// Runs the server side of the handshake on `io` with `server`'s
    /// configuration, within `limit`; returns the connection and what the
    /// client's certificate allows it.
    pub(crate) async fn accept(
        io: TcpStream,
        server: &TlsServer,
        limit: std::time::Duration,
    ) -> Result<(TlsConn, ClientAuth), HandshakeFailed> {
        let config = server
            .current()
            .ok_or_else(|| HandshakeFailed(io::Error::other("TLS configuration unavailable")))?;
        let mut tls = ServerConnection::new(config)
            .map_err(|e| HandshakeFailed(io::Error::other(e.to_string())))?;
        // Answers are bounded by the server's own limits.
        tls.set_buffer_limit(None);
        let mut conn = TlsConn {
            io,
            tls,
            inbuf: Vec::with_capacity(TLS_READ),
            taken: 0,
            outbuf: Vec::with_capacity(TLS_READ),
            plain: 0,
            closed: false,
        };
        let outcome = async {
            while conn.tls.is_handshaking() {
                conn.flush().await?;
                if conn.tls.is_handshaking() {
                    if conn.closed {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "closed during the handshake",
                        ));
                    }
                    conn.fill().await?;
                }
            }
            conn.flush().await
        };
        let outcome = monoio::time::timeout(limit, outcome)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake timed out",
                ))
            });
        let stats = &server.stats;
        if let Err(e) = outcome {
            stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
            return Err(HandshakeFailed(e));
        }
        stats.handshakes.fetch_add(1, Ordering::Relaxed);
        if conn.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            stats.resumed.fetch_add(1, Ordering::Relaxed);
        }
        let auth = server.client_auth(&conn.tls);
        Ok((conn, auth))
    }

    /// Gives rustls more TLS bytes (those already read, else one read of
    /// the socket) and processes them. A protocol error is answered with
    /// its alert, then returned.
    async fn fill(&mut self) -> io::Result<()> {
        if self.taken == self.inbuf.len() {
            self.inbuf.clear();
            self.taken = 0;
            let buf = std::mem::take(&mut self.inbuf);
            let cap = buf.capacity();
            let (res, slice) = self.io.read(buf.slice_mut(0..cap)).await;
            self.inbuf = SliceMut::into_inner(slice);
            if res? == 0 {
                // The end of the stream: rustls notes it.
                let _ = self.tls.read_tls(&mut io::empty());
                self.closed = true;
            }
        }
        if let Some(mut rest) = self.inbuf.get(self.taken..).filter(|r| !r.is_empty()) {
            let n = self.tls.read_tls(&mut rest)?;
            self.taken += n;
        }
        match self.tls.process_new_packets() {
            Ok(state) => {
                self.plain = state.plaintext_bytes_to_read();
                self.closed |= state.peer_has_closed();
                Ok(())
            }
            Err(e) => {
                let _ = self.flush().await;
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Writes whatever rustls has to send.
    async fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.outbuf.clear();
            self.tls.write_tls(&mut self.outbuf)?;
            let (res, buf) = self.io.write_all(std::mem::take(&mut self.outbuf)).await;
            self.outbuf = buf;
            res?;
        }
        Ok(())
    }

    /// Reads plaintext into the spare capacity of `buf`; 0 at the end.
    pub(crate) async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let len = buf.len();
            if buf.capacity() == len {
                buf.reserve(TLS_READ);
            }
            let room = buf.capacity() - len;
            if self.plain > 0 {
                buf.resize(len + self.plain.min(room), 0);
                let got = self
                    .tls
                    .reader()
                    .read(buf.get_mut(len..).unwrap_or_default());
                match got {
                    Ok(n) => {
                        buf.truncate(len + n);
                        self.plain -= n.min(self.plain);
                        return (Ok(n), buf);
                    }
                    Err(e) => {
                        buf.truncate(len);
                        return (Err(e), buf);
                    }
                }
            }
            if self.closed && self.taken == self.inbuf.len() {
                return (Ok(0), buf);
            }
            if let Err(e) = self.fill().await {
                return (Err(e), buf);
            }
        }
    }

    /// Encrypts and sends all of `buf`; gives it back for reuse.
    pub(crate) async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if let Err(e) = self.tls.writer().write_all(&buf) {
            return (Err(e), buf);
        }
        (self.flush().await, buf)
    }

    /// Sends close_notify.
    pub(crate) async fn close(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush().await;
    }
}
