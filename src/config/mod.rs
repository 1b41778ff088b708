//! Configuration: raw (as written, merged from every source) → validated
//! (typed). Built once at start and passed explicitly; nothing reads it as
//! a global.
//!
//! Sources, later ones win: the embedded `default.toml`, the `--config`
//! file, `AUTHPLANE_*` environment variables, command-line flags. Every key
//! remembers where its value came from, so an unknown key or a bad value
//! is reported with its origin.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

use crate::domain::api_error::{Api, ApiSet};
use crate::domain::http1::{Limits, MAX_HEADERS};
pub use crate::storage::Durability;

/// The embedded defaults.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Prefix of the environment variables that override the configuration.
pub const ENV_PREFIX: &str = "AUTHPLANE_";

/// Keys whose values are secrets: `config print` shows them redacted.
const SECRET_KEYS: &[&str] = &["hss.provisioning_key", "hss.key_encryption_key"];

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the embedded default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A configuration that cannot be used, with the key and its origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}` (from {origin}): {message}")]
    Key {
        key: String,
        origin: Origin,
        message: String,
    },
}

/// The merged configuration before validation, with each key's origin.
#[derive(Debug, Clone)]
pub struct Layers {
    merged: Table,
    origins: BTreeMap<String, Origin>,
    /// The directory of the config file: relative paths in it resolve there.
    base_dir: Option<PathBuf>,
}

impl Default for Layers {
    fn default() -> Self {
        Self::new()
    }
}

impl Layers {
    /// The embedded defaults alone.
    pub fn new() -> Layers {
        let merged: Table = toml::from_str(DEFAULT_TOML).unwrap_or_default();
        let mut layers = Layers {
            merged: Table::new(),
            origins: BTreeMap::new(),
            base_dir: None,
        };
        layers.merge(merged, &Origin::Default);
        layers
    }

    /// Merges a TOML file over the current values.
    pub fn with_file(mut self, path: &Path) -> Result<Layers, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        self.merge(table, &Origin::File(path.to_owned()));
        self.base_dir = path.parent().map(Path::to_path_buf);
        Ok(self)
    }

    /// Merges `AUTHPLANE_*` variables: `AUTHPLANE_SERVER__CORES=2` sets
    /// `server.cores`. A value that parses as a TOML value (a number, a
    /// boolean, a quoted string) is taken as that; anything else as a
    /// string.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Layers {
        for (name, raw) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let value = toml::from_str::<Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(Value::String(raw));
            self.set(&key, value, Origin::Env(name.clone()));
        }
        self
    }

    /// Sets one key from a command-line flag.
    pub fn with_flag(mut self, key: &str, value: Value, flag: &'static str) -> Layers {
        self.set(key, value, Origin::Flag(flag));
        self
    }

    fn merge(&mut self, table: Table, origin: &Origin) {
        let mut flat = Vec::new();
        flatten("", table, &mut flat);
        for (key, value) in flat {
            self.set(&key, value, origin.clone());
        }
    }

    fn set(&mut self, key: &str, value: Value, origin: Origin) {
        let mut table = &mut self.merged;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part.to_owned(), value);
                break;
            }
            let entry = table
                .entry(part.to_owned())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            match entry {
                Value::Table(t) => table = t,
                _ => return,
            }
        }
        self.origins.insert(key.to_owned(), origin);
    }

    fn origin_of(&self, key: &str) -> Origin {
        // The key itself, or the nearest enclosing key that has an origin.
        let mut k = key;
        loop {
            if let Some(o) = self.origins.get(k) {
                return o.clone();
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return Origin::Default,
            }
        }
    }

    /// Validates the merged values into the typed configuration.
    pub fn build(&self) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_path_to_error::deserialize(Value::Table(self.merged.clone()))
            .map_err(|e| {
                let mut key = e.path().to_string();
                let message = e.inner().to_string();
                // An unknown key: serde names it in the message, not the path.
                if let Some(field) = message
                    .strip_prefix("unknown field `")
                    .and_then(|m| m.split('`').next())
                {
                    let already = key == field || key.ends_with(&format!(".{field}"));
                    if key == "." {
                        key = field.to_owned();
                    } else if !already {
                        key = format!("{key}.{field}");
                    }
                }
                ConfigError::Key {
                    origin: self.origin_of(&key),
                    key,
                    message,
                }
            })?;
        let base = self.base_dir.clone().unwrap_or_default();
        raw.validate(&base, |key, message| ConfigError::Key {
            key: key.to_owned(),
            origin: self.origin_of(key),
            message,
        })
    }

    /// An error about `key` found after validation (a file it names that
    /// does not load), with the key's origin.
    pub fn key_error(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Key {
            key: key.to_owned(),
            origin: self.origin_of(key),
            message,
        }
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        let mut shown = self.merged.clone();
        for key in SECRET_KEYS {
            let mut parts = key.split('.');
            if let (Some(section), Some(name)) = (parts.next(), parts.next()) {
                if let Some(Value::Table(t)) = shown.get_mut(section) {
                    if let Some(v) = t.get_mut(name) {
                        if v.as_str().is_some_and(|s| !s.is_empty()) {
                            *v = Value::String("<redacted>".into());
                        }
                    }
                }
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

fn flatten(prefix: &str, table: Table, out: &mut Vec<(String, Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(t) => flatten(&key, t, out),
            v => out.push((key, v)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    storage: RawStorage,
    services: Services,
    hss: HssConfig,
    sim: SimConfig,
    stir: RawStir,
    log: RawLog,
    diameter: DiameterConfig,
}

/// A Diameter application a peer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiameterApp {
    S6a,
    S13,
    Cx,
    Swx,
}

impl DiameterApp {
    /// Its Auth-Application-Id.
    pub fn id(self) -> u32 {
        use crate::domain::diameter::app;
        match self {
            DiameterApp::S6a => app::S6A,
            DiameterApp::S13 => app::S13,
            DiameterApp::Cx => app::CX,
            DiameterApp::Swx => app::SWX,
        }
    }
}

/// A peer allowed to connect, by its Origin-Host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiameterPeer {
    pub origin_host: String,
    /// The applications it may use.
    pub applications: Vec<DiameterApp>,
    /// Addresses it may connect from (empty: any).
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
}

/// The Diameter listener's settings (`[diameter]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiameterConfig {
    listen: String,
    /// The parsed `listen` (set at validation).
    #[serde(skip, default = "unspecified")]
    pub listen_addr: SocketAddr,
    /// Empty: `hss.origin_host` (set at validation).
    pub origin_host: String,
    pub origin_realm: String,
    pub product_name: String,
    /// Tw: a DWR is sent after this long without traffic from a peer.
    pub watchdog_ms: u64,
    /// How long a request this server sends (CLR) waits for its answer.
    pub request_timeout_ms: u64,
    pub max_message_bytes: usize,
    /// Requests of one connection served at once; reading pauses beyond.
    pub max_in_flight: usize,
    /// Allowed peers. Empty: any peer from a loopback address, with every
    /// application (development; a warning at start).
    pub peers: Vec<DiameterPeer>,
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl DiameterConfig {
    /// Whether no peer is named (any loopback peer is accepted).
    pub fn development(&self) -> bool {
        self.peers.is_empty()
    }
}

/// Which library signs PASSporTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningBackend {
    /// AWS-LC through aws-lc-rs: P-256 in assembly, the fastest here (the
    /// default: see decision 0004).
    AwsLc,
    /// ring: P-256 in assembly.
    Ring,
    /// RustCrypto p256 (pure Rust, RFC 6979 deterministic nonces).
    P256,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStir {
    backend: SigningBackend,
    default_attest: String,
    attestation: Vec<RawAttestation>,
    credentials: Vec<RawCredential>,
    trust_roots: String,
    intermediates: String,
    crls: Vec<String>,
    freshness_s: u64,
    allow_http_x5u: bool,
    x5u_hosts: Vec<String>,
    x5u_timeout_ms: u64,
    x5u_max_bytes: usize,
    cache_entries: usize,
    negative_cache_s: u64,
    trusted_hosts: Vec<String>,
    fixed_now: u64,
    x5u_rewrite: Vec<RawRewrite>,
    x5u_tls_roots: String,
    crl_fetch: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRewrite {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    prefix: String,
    attest: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    key: PathBuf,
    x5u: String,
    #[serde(default)]
    tn_prefixes: Vec<String>,
}

/// A signing credential as configured: its key file and certificate URL
/// (the STIR service loads the key).
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    pub key: PathBuf,
    pub x5u: String,
    pub tn_prefixes: Vec<String>,
}

/// The STIR service's settings (values: the service loads the keys, the
/// trust store and the fetch policy from them).
#[derive(Debug, Clone)]
pub struct StirConfig {
    pub backend: SigningBackend,
    pub default_attest: crate::domain::passport::Attest,
    /// (orig TN prefix, attestation).
    pub attestation: Vec<(String, crate::domain::passport::Attest)>,
    pub credentials: Vec<CredentialConfig>,
    pub verify: VerifyConfig,
}

/// STI-VS settings.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// PEM files: the STI-CA roots, intermediates, CRLs.
    pub trust_roots: Option<PathBuf>,
    pub intermediates: Option<PathBuf>,
    pub crls: Vec<PathBuf>,
    /// A fixed verifier clock (labs and tests; None: the real clock).
    pub fixed_now: Option<u64>,
    pub freshness_s: u64,
    pub allow_http_x5u: bool,
    /// Hosts an x5u may name (empty: any).
    pub x5u_hosts: Vec<String>,
    pub x5u_timeout: Duration,
    pub x5u_max_bytes: usize,
    /// Extra roots for https x5u fetches (PEM).
    pub x5u_tls_roots: Option<PathBuf>,
    /// (URL prefix, replacement) applied to x5u URLs before fetching.
    pub x5u_rewrite: Vec<(String, String)>,
    pub negative_cache_s: u64,
    pub cache_entries: usize,
    /// Fetch each leaf's CRL distribution points (cached) and refuse a
    /// revoked leaf, or one whose CRL cannot be had.
    pub crl_fetch: bool,
    /// Clients allowed to ask for verification (empty: any).
    pub trusted_hosts: Vec<std::net::IpAddr>,
}

impl StirConfig {
    /// The attestation for an originating TN: the longest matching prefix.
    pub fn attest_for(&self, tn: &str) -> crate::domain::passport::Attest {
        self.attestation
            .iter()
            .filter(|(p, _)| tn.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map_or(self.default_attest, |(_, a)| *a)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    cores: u16,
    io_driver: IoDriver,
    max_connections_per_core: u32,
    header_timeout_ms: u64,
    idle_timeout_ms: u64,
    shutdown_grace_ms: u64,
    max_request_line_bytes: usize,
    max_header_bytes: usize,
    max_headers: usize,
    max_body_bytes: usize,
    #[serde(default)]
    listeners: Vec<RawListener>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    #[serde(default)]
    name: String,
    listen: String,
    #[serde(default)]
    apis: Vec<String>,
    #[serde(default)]
    tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: PathBuf,
    key: PathBuf,
    #[serde(default)]
    client_ca: PathBuf,
    #[serde(default)]
    client_certificate: Option<ClientCertificate>,
    #[serde(default)]
    provisioning_requires_client_certificate: bool,
    #[serde(default = "yes")]
    resumption: bool,
}

fn yes() -> bool {
    true
}

/// Whether a TLS listener asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificate {
    /// Not asked for.
    None,
    /// Asked for; a client without one is served, one with a certificate
    /// the CA did not issue is refused.
    Optional,
    /// A client without a certificate from the CA is refused.
    Required,
}

/// One HTTP listener (`[[server.listeners]]`).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// For the log, the metrics and the start-up lines.
    pub name: String,
    pub listen: SocketAddr,
    /// The APIs served on it; a path of another answers 404.
    pub apis: ApiSet,
    pub tls: Option<TlsSettings>,
}

/// A TLS listener's certificate, key and client policy.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain, leaf first (PEM).
    pub certificate: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA certificates client certificates must chain to (PEM).
    pub client_ca: Option<PathBuf>,
    pub client_certificate: ClientCertificate,
    /// Provisioning only for clients with a verified certificate.
    pub provisioning_requires_client_certificate: bool,
    /// Session tickets and a session cache (resumed handshakes).
    pub resumption: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: PathBuf,
    durability: Durability,
    compact_wal_bytes: u64,
    snapshot_write_mib_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
    format: LogFormat,
}

/// The HSS service's settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HssConfig {
    /// This HSS's identity, echoed in the `HSS` answer header.
    pub origin_host: String,
    pub lock_provisioning: bool,
    pub provisioning_key: String,
    key_encryption_key: String,
    /// The parsed `key_encryption_key` (set at validation).
    #[serde(skip)]
    pub kek: Option<std::sync::Arc<crate::domain::keywrap::Kek>>,
    pub enable_insecure_auc: bool,
    pub default_page_size: u32,
    pub sqn_scheme: SqnSchemeName,
    pub sqn_ind_bits: u8,
    pub sqn_fixed_increment: u64,
    /// Vectors per SQN lease (0: every vector waits for its own sync).
    pub sqn_lease: u64,
    pub max_vectors_per_request: u32,
    /// Accept APN ids in `apn_list`/`apn_list_swx` that name no APN.
    pub accept_missing_apn_list_ids: bool,
    /// Operation log entries kept per shard and for the catalog.
    pub operation_log_keep: u64,
    /// Equipment-Status when no EIR rule matches.
    pub eir_no_match_response: u8,
    /// `tac,make,model` lines for `/eir/lookup_imei` (relative to the
    /// config file; empty: none).
    pub tac_database_csv: PathBuf,
    /// GeoRed peers (`http(s)://host:port`): each change of serving state
    /// or SQN is pushed to them (`PATCH /geored/peers` replaces the list).
    pub geored_peers: Vec<String>,
    /// Reproduce what PyHSS 2.0.0 does that its own API tests assert and
    /// authplane otherwise refuses or corrects (docs/api/hss.md): for
    /// running that suite, never in production.
    pub pyhss_quirks: bool,
    /// The SIP domain of the ENUM records `/oam/reconcile/enum` builds.
    pub ims_domain: String,
    /// The S-CSCFs (SIP URIs) a UAR or LIR names for an IMS subscriber no
    /// S-CSCF serves (one chosen by the public identity, so a retry names
    /// the same). Empty: `sip:scscf.<ims_domain>`.
    pub scscf_pool: Vec<String>,
    /// The `Provisioning-Key` sent with pushes (empty: none).
    pub geored_peer_key: String,
    /// How long one push may take before it is retried.
    pub geored_timeout_ms: u64,
    /// The home networks (MCC and MNC digits, "00101"): a Visited-PLMN-Id
    /// elsewhere is roaming, checked against the roaming rules.
    pub home_plmns: Vec<String>,
    /// Whether a roaming subscriber may attach in a network no roaming
    /// rule names.
    pub roaming_allow_undefined_networks: bool,
    /// Pushes waiting per core; beyond it the oldest waiting for a peer is
    /// dropped (and counted in `GET /geored/peers`).
    pub geored_queue: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SqnSchemeName {
    AnnexC,
    Fixed,
}

impl HssConfig {
    /// The SQN scheme the configuration selects.
    pub fn sqn_scheme(&self) -> crate::domain::sqn::SqnScheme {
        match self.sqn_scheme {
            SqnSchemeName::AnnexC => crate::domain::sqn::SqnScheme::AnnexC {
                ind_bits: self.sqn_ind_bits,
            },
            SqnSchemeName::Fixed => crate::domain::sqn::SqnScheme::Fixed {
                increment: self.sqn_fixed_increment,
            },
        }
    }
}

impl std::fmt::Debug for HssConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HssConfig")
            .field("lock_provisioning", &self.lock_provisioning)
            .field("provisioning_key", &"<redacted>")
            .field("kek", &self.kek)
            .field("enable_insecure_auc", &self.enable_insecure_auc)
            .field("default_page_size", &self.default_page_size)
            .field("sqn_scheme", &self.sqn_scheme)
            .field("geored_peers", &self.geored_peers)
            .field("geored_peer_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The SIM service's settings (PC/SC readers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Requests waiting per slot; beyond it a request gets 503.
    pub queue_depth: u32,
    /// How long a request waits for its card (queue included) before 503.
    pub timeout_ms: u64,
    /// How often the reader list is read again (readers and pcscd coming
    /// and going).
    pub rescan_ms: u64,
}

/// Which APIs are served.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub hss: bool,
    pub sim: bool,
    pub aaa: bool,
    pub stir: bool,
    /// The HSS's Diameter interfaces (with `hss` only).
    pub diameter: bool,
}

/// The I/O driver of every core.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    IoUring,
    Epoll,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub services: Services,
    pub hss: HssConfig,
    pub sim: SimConfig,
    pub stir: StirConfig,
    pub log: LogConfig,
    pub diameter: DiameterConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The HTTP listeners: `[[server.listeners]]`, or else one on `listen`
    /// serving every API in plain HTTP.
    pub listeners: Vec<ListenerConfig>,
    /// Cores to run on; resolved from 0 ("all") at validation.
    pub cores: u16,
    pub io_driver: IoDriver,
    pub max_connections_per_core: u32,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub limits: Limits,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub compact_wal_bytes: u64,
    /// MiB per second of the background writes (a compaction's snapshot,
    /// the logs' zero fill, the removal of replaced files); 0: unpaced.
    pub snapshot_write_mib_s: u64,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// The validated `[[server.listeners]]`; none: one on `listen` with every
/// API in plain HTTP. Paths are relative to the config file.
fn listeners<E>(
    listen: SocketAddr,
    raw: Vec<RawListener>,
    base: &Path,
    err: &impl Fn(&str, String) -> E,
) -> Result<Vec<ListenerConfig>, E> {
    const KEY: &str = "server.listeners";
    if raw.is_empty() {
        return Ok(vec![ListenerConfig {
            name: "http".into(),
            listen,
            apis: ApiSet::all(),
            tls: None,
        }]);
    }
    let mut out: Vec<ListenerConfig> = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let name = if l.name.is_empty() {
            format!("listener-{i}")
        } else {
            l.name
        };
        let bad = |m: String| err(KEY, format!("{name:?}: {m}"));
        let addr: SocketAddr = l
            .listen
            .parse()
            .map_err(|e| bad(format!("listen {:?}: {e}: expected IP:PORT", l.listen)))?;
        let mut apis = if l.apis.is_empty() {
            ApiSet::all()
        } else {
            ApiSet::EMPTY
        };
        for a in &l.apis {
            let api = Api::from_name(a).ok_or_else(|| {
                bad(format!(
                    "unknown API {a:?}: expected hss, sim, aaa, stir or server"
                ))
            })?;
            apis = apis.with(api);
        }
        if let Some(other) = out.iter().find(|o| o.name == name) {
            return Err(bad(format!("a second listener named {:?}", other.name)));
        }
        if addr.port() != 0 && out.iter().any(|o| o.listen == addr) {
            return Err(bad(format!("{addr} is already another listener's")));
        }
        let tls = match l.tls {
            None => None,
            Some(t) => {
                let path = |p: &Path| base.join(p);
                let client_ca = (!t.client_ca.as_os_str().is_empty()).then(|| path(&t.client_ca));
                let client_certificate = t.client_certificate.unwrap_or(if client_ca.is_some() {
                    ClientCertificate::Required
                } else {
                    ClientCertificate::None
                });
                if client_certificate != ClientCertificate::None && client_ca.is_none() {
                    return Err(bad("tls.client_certificate needs tls.client_ca".into()));
                }
                if t.provisioning_requires_client_certificate
                    && client_certificate == ClientCertificate::None
                {
                    return Err(bad("tls.provisioning_requires_client_certificate needs \
                         tls.client_ca and a client_certificate of optional or required"
                        .into()));
                }
                if t.certificate.as_os_str().is_empty() || t.key.as_os_str().is_empty() {
                    return Err(bad("tls needs a certificate and a key".into()));
                }
                Some(TlsSettings {
                    certificate: path(&t.certificate),
                    key: path(&t.key),
                    client_ca,
                    client_certificate,
                    provisioning_requires_client_certificate: t
                        .provisioning_requires_client_certificate,
                    resumption: t.resumption,
                })
            }
        };
        out.push(ListenerConfig {
            name,
            listen: addr,
            apis,
            tls,
        });
    }
    Ok(out)
}

/// Cores this machine offers the process.
pub fn available_cores() -> u16 {
    std::thread::available_parallelism()
        .map(|n| u16::try_from(n.get()).unwrap_or(u16::MAX))
        .unwrap_or(1)
}

impl RawConfig {
    fn validate<E>(mut self, base: &Path, err: impl Fn(&str, String) -> E) -> Result<Config, E> {
        use crate::domain::passport::Attest;
        let attest = |key: &str, v: &str| {
            Attest::parse(v).ok_or_else(|| err(key, format!("{v:?}: expected A, B or C")))
        };
        let optional_path = |p: &str| (!p.is_empty()).then(|| base.join(p));
        if !(1..=86_400).contains(&self.stir.freshness_s) {
            return Err(err("stir.freshness_s", "must be 1 to 86400".into()));
        }
        if self.stir.x5u_timeout_ms == 0 {
            return Err(err("stir.x5u_timeout_ms", "must be greater than 0".into()));
        }
        if !(1024..=1 << 20).contains(&self.stir.x5u_max_bytes) {
            return Err(err("stir.x5u_max_bytes", "must be 1024 to 1048576".into()));
        }
        if self.stir.cache_entries == 0 {
            return Err(err("stir.cache_entries", "must be greater than 0".into()));
        }
        let trusted_hosts = self
            .stir
            .trusted_hosts
            .iter()
            .map(|h| {
                h.parse::<std::net::IpAddr>().map_err(|_| {
                    err(
                        "stir.trusted_hosts",
                        format!("{h:?}: expected an IP address"),
                    )
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        let verify = VerifyConfig {
            trust_roots: optional_path(&self.stir.trust_roots),
            intermediates: optional_path(&self.stir.intermediates),
            crls: self.stir.crls.iter().map(|c| base.join(c)).collect(),
            fixed_now: (self.stir.fixed_now > 0).then_some(self.stir.fixed_now),
            freshness_s: self.stir.freshness_s,
            allow_http_x5u: self.stir.allow_http_x5u,
            x5u_hosts: self.stir.x5u_hosts.clone(),
            x5u_timeout: Duration::from_millis(self.stir.x5u_timeout_ms),
            x5u_max_bytes: self.stir.x5u_max_bytes,
            x5u_tls_roots: optional_path(&self.stir.x5u_tls_roots),
            x5u_rewrite: self
                .stir
                .x5u_rewrite
                .iter()
                .map(|r| (r.from.clone(), r.to.clone()))
                .collect(),
            negative_cache_s: self.stir.negative_cache_s,
            cache_entries: self.stir.cache_entries,
            crl_fetch: self.stir.crl_fetch,
            trusted_hosts,
        };
        let stir = StirConfig {
            verify,
            backend: self.stir.backend,
            default_attest: attest("stir.default_attest", &self.stir.default_attest)?,
            attestation: self
                .stir
                .attestation
                .iter()
                .map(|a| Ok((a.prefix.clone(), attest("stir.attestation", &a.attest)?)))
                .collect::<Result<_, E>>()?,
            credentials: self
                .stir
                .credentials
                .iter()
                .map(|c| {
                    if !(c.x5u.starts_with("https://") || c.x5u.starts_with("http://")) {
                        return Err(err(
                            "stir.credentials",
                            format!("x5u {:?}: must be an http(s) URL", c.x5u),
                        ));
                    }
                    Ok(CredentialConfig {
                        key: base.join(&c.key),
                        x5u: c.x5u.clone(),
                        tn_prefixes: c.tn_prefixes.clone(),
                    })
                })
                .collect::<Result<_, E>>()?,
        };
        if !self.hss.key_encryption_key.is_empty() {
            let kek = crate::domain::keywrap::Kek::from_hex(&self.hss.key_encryption_key)
                .map_err(|e| err("hss.key_encryption_key", e.problem.into()))?;
            self.hss.kek = Some(std::sync::Arc::new(kek));
            self.hss.key_encryption_key.clear();
        }
        let s = self.server;
        let listen: SocketAddr = s
            .listen
            .parse()
            .map_err(|e| err("server.listen", format!("{e}: expected IP:PORT")))?;
        let available = available_cores();
        let cores = match s.cores {
            0 => available,
            n if n > available => {
                return Err(err(
                    "server.cores",
                    format!("{n} cores asked, this machine offers {available}"),
                ))
            }
            n => n,
        };
        let positive = |key: &str, v: u64| {
            if v == 0 {
                Err(err(key, "must be greater than 0".into()))
            } else {
                Ok(Duration::from_millis(v))
            }
        };
        if s.max_headers == 0 || s.max_headers > MAX_HEADERS {
            return Err(err(
                "server.max_headers",
                format!("must be between 1 and {MAX_HEADERS}"),
            ));
        }
        for (key, v) in [
            ("server.max_request_line_bytes", s.max_request_line_bytes),
            ("server.max_header_bytes", s.max_header_bytes),
            ("server.max_body_bytes", s.max_body_bytes),
        ] {
            if !(64..=64 * 1024 * 1024).contains(&v) {
                return Err(err(key, "must be between 64 and 67108864".into()));
            }
        }
        if s.max_connections_per_core == 0 {
            return Err(err(
                "server.max_connections_per_core",
                "must be greater than 0".into(),
            ));
        }
        let level = self.log.level.to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
            return Err(err(
                "log.level",
                "expected error, warn, info, debug or trace".into(),
            ));
        }
        if self.hss.lock_provisioning && self.hss.provisioning_key.is_empty() {
            return Err(err(
                "hss.provisioning_key",
                "must be set when hss.lock_provisioning is true".into(),
            ));
        }
        if self.hss.sqn_ind_bits > 16 {
            return Err(err("hss.sqn_ind_bits", "must be 0 to 16".into()));
        }
        if self.hss.sqn_fixed_increment == 0 {
            return Err(err(
                "hss.sqn_fixed_increment",
                "must be greater than 0".into(),
            ));
        }
        if self.hss.sqn_lease > 1_000_000 {
            return Err(err("hss.sqn_lease", "must be 0 to 1000000".into()));
        }
        if self.hss.origin_host.is_empty()
            || self.hss.origin_host.len() > 255
            || !self
                .hss
                .origin_host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(err(
                "hss.origin_host",
                "must be a host name (letters, digits, '.', '-'; at most 255)".into(),
            ));
        }
        if self.hss.eir_no_match_response > 2 {
            return Err(err(
                "hss.eir_no_match_response",
                "must be 0 (whitelisted), 1 (blacklisted) or 2 (greylisted)".into(),
            ));
        }
        if !self.hss.tac_database_csv.as_os_str().is_empty() {
            self.hss.tac_database_csv = base.join(&self.hss.tac_database_csv);
        }
        for peer in &self.hss.geored_peers {
            if crate::domain::shaken::parse_url(peer).is_none() {
                return Err(err(
                    "hss.geored_peers",
                    format!("{peer}: not an http:// or https:// URL with a host"),
                ));
            }
        }
        if self.hss.ims_domain.is_empty()
            || !self
                .hss
                .ims_domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(err(
                "hss.ims_domain",
                "must be a domain name (letters, digits, '.', '-')".into(),
            ));
        }
        if let Some(s) = self.hss.scscf_pool.iter().find(|s| {
            !(s.starts_with("sip:") || s.starts_with("sips:"))
                || s.len() > 512
                || s.bytes().any(|b| b.is_ascii_control() || b == b' ')
        }) {
            return Err(err(
                "hss.scscf_pool",
                format!("{s:?}: not a sip: or sips: URI"),
            ));
        }
        if let Some(p) = self
            .hss
            .home_plmns
            .iter()
            .find(|p| !(5..=6).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err(
                "hss.home_plmns",
                format!("{p:?}: expected MCC and MNC, 5 or 6 digits"),
            ));
        }
        if self.hss.geored_timeout_ms == 0 || self.hss.geored_queue == 0 {
            return Err(err(
                "hss.geored_timeout_ms",
                "hss.geored_timeout_ms and hss.geored_queue must be above 0".into(),
            ));
        }
        if self.hss.operation_log_keep > 1_000_000 {
            return Err(err(
                "hss.operation_log_keep",
                "must be at most 1000000".into(),
            ));
        }
        if !(1..=1024).contains(&self.hss.max_vectors_per_request) {
            return Err(err(
                "hss.max_vectors_per_request",
                "must be 1 to 1024".into(),
            ));
        }
        if self.hss.default_page_size == 0 {
            return Err(err(
                "hss.default_page_size",
                "must be greater than 0".into(),
            ));
        }
        if self.sim.queue_depth == 0 {
            return Err(err("sim.queue_depth", "must be greater than 0".into()));
        }
        if self.sim.timeout_ms == 0 {
            return Err(err("sim.timeout_ms", "must be greater than 0".into()));
        }
        if !(10..=60_000).contains(&self.sim.rescan_ms) {
            return Err(err("sim.rescan_ms", "must be 10 to 60000".into()));
        }
        if self.storage.snapshot_write_mib_s > 1 << 20 {
            return Err(err(
                "storage.snapshot_write_mib_s",
                "must be 0 (unpaced) to 1048576".into(),
            ));
        }
        if self.storage.compact_wal_bytes < 4096 {
            return Err(err(
                "storage.compact_wal_bytes",
                "must be at least 4096".into(),
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(err("storage.data_dir", "must not be empty".into()));
        }
        let mut diameter = self.diameter;
        diameter.listen_addr = diameter
            .listen
            .parse()
            .map_err(|e| err("diameter.listen", format!("{e}: expected IP:PORT")))?;
        if diameter.origin_host.is_empty() {
            diameter.origin_host = self.hss.origin_host.clone();
        }
        if diameter.origin_realm.is_empty() || diameter.origin_realm.len() > 255 {
            return Err(err(
                "diameter.origin_realm",
                "must be 1 to 255 characters".into(),
            ));
        }
        if diameter.watchdog_ms < 1000 || diameter.request_timeout_ms == 0 {
            return Err(err(
                "diameter.watchdog_ms",
                "must be at least 1000 (and request_timeout_ms above 0)".into(),
            ));
        }
        if !(4096..=16 << 20).contains(&diameter.max_message_bytes) {
            return Err(err(
                "diameter.max_message_bytes",
                "must be 4096 to 16777216".into(),
            ));
        }
        if !(1..=65_536).contains(&diameter.max_in_flight) {
            return Err(err("diameter.max_in_flight", "must be 1 to 65536".into()));
        }
        if let Some(p) = diameter
            .peers
            .iter()
            .find(|p| p.origin_host.is_empty() || p.applications.is_empty())
        {
            return Err(err(
                "diameter.peers",
                format!(
                    "{:?}: each peer needs an origin_host and at least one application",
                    p.origin_host
                ),
            ));
        }
        let listeners = listeners(listen, s.listeners, base, &err)?;
        Ok(Config {
            server: ServerConfig {
                listen,
                listeners,
                cores,
                io_driver: s.io_driver,
                max_connections_per_core: s.max_connections_per_core,
                header_timeout: positive("server.header_timeout_ms", s.header_timeout_ms)?,
                idle_timeout: positive("server.idle_timeout_ms", s.idle_timeout_ms)?,
                shutdown_grace: positive("server.shutdown_grace_ms", s.shutdown_grace_ms)?,
                limits: Limits {
                    request_line_bytes: s.max_request_line_bytes,
                    header_bytes: s.max_header_bytes,
                    headers: s.max_headers,
                    body_bytes: s.max_body_bytes,
                },
            },
            storage: StorageConfig {
                data_dir: self.storage.data_dir,
                durability: self.storage.durability,
                compact_wal_bytes: self.storage.compact_wal_bytes,
                snapshot_write_mib_s: self.storage.snapshot_write_mib_s,
            },
            services: self.services,
            hss: self.hss,
            sim: self.sim,
            stir,
            log: LogConfig {
                level,
                format: self.log.format,
            },
            diameter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn embedded_defaults_validate() {
        let c = Layers::new().build().unwrap();
        assert_eq!(
            c.server.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(c.server.cores, available_cores());
        assert_eq!(c.storage.data_dir, PathBuf::from("./authplane-data"));
        assert!(c.services.hss && c.services.stir);
    }

    #[test]
    fn env_overrides_with_double_underscore_nesting() {
        let c = Layers::new()
            .with_env(env(&[
                ("AUTHPLANE_SERVER__LISTEN", "127.0.0.1:0"),
                ("AUTHPLANE_SERVICES__STIR", "false"),
                ("AUTHPLANE_SERVER__HEADER_TIMEOUT_MS", "250"),
                ("OTHER", "x"),
            ]))
            .build()
            .unwrap();
        assert_eq!(c.server.listen.port(), 0);
        assert!(!c.services.stir);
        assert_eq!(c.server.header_timeout, Duration::from_millis(250));
    }

    #[test]
    fn flags_win_over_env() {
        let c = Layers::new()
            .with_env(env(&[("AUTHPLANE_SERVER__LISTEN", "127.0.0.1:1")]))
            .with_flag(
                "server.listen",
                Value::String("127.0.0.1:2".into()),
                "--listen",
            )
            .build()
            .unwrap();
        assert_eq!(c.server.listen.port(), 2);
    }

    #[test]
    fn unknown_key_names_key_and_origin() {
        let e = Layers::new()
            .with_env(env(&[("AUTHPLANE_SERVER__LISTN", "x")]))
            .build()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("server.listn"), "{text}");
        assert!(text.contains("AUTHPLANE_SERVER__LISTN"), "{text}");
    }

    #[test]
    fn an_unknown_top_level_key_is_named_once() {
        let e = Layers::new()
            .with_env(env(&[("AUTHPLANE_COLOUR", "red")]))
            .build()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("config key `colour` "), "{text}");
    }

    #[test]
    fn bad_value_names_key_and_origin() {
        let e = Layers::new()
            .with_env(env(&[("AUTHPLANE_SERVER__CORES", "many")]))
            .build()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("server.cores"), "{text}");
        assert!(text.contains("AUTHPLANE_SERVER__CORES"), "{text}");
        let e = Layers::new()
            .with_flag("server.listen", Value::String("nowhere".into()), "--listen")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("flag --listen"), "{e}");
    }

    #[test]
    fn the_diameter_section_is_checked_and_its_identity_defaults_to_the_hss() {
        let c = Layers::new().build().unwrap();
        assert_eq!(c.diameter.origin_host, c.hss.origin_host);
        assert_eq!(c.diameter.listen_addr.port(), 3868);
        assert!(c.diameter.development());
        for (key, value) in [
            ("AUTHPLANE_DIAMETER__LISTEN", "nowhere"),
            ("AUTHPLANE_DIAMETER__WATCHDOG_MS", "10"),
            ("AUTHPLANE_DIAMETER__MAX_IN_FLIGHT", "0"),
        ] {
            let e = Layers::new().with_env(env(&[(key, value)])).build();
            assert!(e.is_err(), "{key}={value} accepted");
        }
        let dir = std::env::temp_dir().join(format!("authplane-dia-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.toml");
        std::fs::write(
            &path,
            "[[diameter.peers]]\norigin_host = \"mme\"\napplications = []\n",
        )
        .unwrap();
        let e = Layers::new().with_file(&path).unwrap().build().unwrap_err();
        assert!(e.to_string().contains("diameter.peers"), "{e}");
        std::fs::write(&path, "[hss]\nhome_plmns = [\"0010\"]\n").unwrap();
        let e = Layers::new().with_file(&path).unwrap().build().unwrap_err();
        assert!(e.to_string().contains("hss.home_plmns"), "{e}");
        std::fs::write(
            &path,
            "[[diameter.peers]]\norigin_host = \"mme\"\napplications = [\"s6a\"]\n",
        )
        .unwrap();
        let c = Layers::new().with_file(&path).unwrap().build().unwrap();
        assert!(!c.diameter.development());
        assert_eq!(c.diameter.peers[0].applications[0].id(), 16_777_251);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listeners_default_to_one_on_listen_and_are_checked() {
        use crate::domain::api_error::{Api, ApiSet};
        let c = Layers::new().build().unwrap();
        assert_eq!(c.server.listeners.len(), 1);
        let l = &c.server.listeners[0];
        assert_eq!(
            (l.listen, l.apis, l.tls.is_none()),
            (c.server.listen, ApiSet::all(), true)
        );

        let dir = std::env::temp_dir().join(format!("authplane-listeners-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Layers::new().with_file(&path).unwrap().build()
        };
        let c = load(
            "[[server.listeners]]\nlisten = \"127.0.0.1:8080\"\napis = [\"hss\"]\n\
             [[server.listeners]]\nname = \"stir\"\nlisten = \"127.0.0.1:3333\"\napis = [\"stir\"]\n\
             [server.listeners.tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n",
        )
        .unwrap();
        let [hss, stir] = &c.server.listeners[..] else {
            panic!("two listeners")
        };
        assert_eq!(hss.name, "listener-0");
        assert!(hss.apis.contains(Api::Pyhss) && !hss.apis.contains(Api::Stir));
        assert_eq!(stir.apis.names(), "stir");
        let tls = stir.tls.as_ref().unwrap();
        // Paths are the config file's; a client CA alone means required.
        assert_eq!(tls.certificate, dir.join("c.pem"));
        assert_eq!(tls.client_certificate, ClientCertificate::Required);
        assert!(tls.resumption);
        for (text, complaint) in [
            ("listen = \"127.0.0.1:1\"\napis = [\"pyhss\"]\n", "unknown API"),
            ("listen = \"nowhere\"\n", "expected IP:PORT"),
            (
                "listen = \"127.0.0.1:1\"\n[server.listeners.tls]\ncertificate = \"c\"\nkey = \"k\"\nclient_certificate = \"optional\"\n",
                "needs tls.client_ca",
            ),
            (
                "listen = \"127.0.0.1:1\"\n[server.listeners.tls]\ncertificate = \"c\"\nkey = \"k\"\nprovisioning_requires_client_certificate = true\n",
                "provisioning_requires_client_certificate",
            ),
        ] {
            let e = load(&format!("[[server.listeners]]\n{text}")).unwrap_err();
            assert!(e.to_string().contains(complaint), "{text}: {e}");
        }
        let twice = "[[server.listeners]]\nlisten = \"127.0.0.1:7\"\n[[server.listeners]]\nlisten = \"127.0.0.1:7\"\n";
        assert!(load(twice).unwrap_err().to_string().contains("already"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_values_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("authplane-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[server]\ncores = 1\n[log]\nlevel = \"loud\"\n").unwrap();
        let e = Layers::new().with_file(&path).unwrap().build().unwrap_err();
        assert!(e.to_string().contains("log.level"), "{e}");
        assert!(e.to_string().contains("c.toml"), "{e}");
        std::fs::write(&path, "[server\n").unwrap();
        assert!(matches!(
            Layers::new().with_file(&path),
            Err(ConfigError::Syntax { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
