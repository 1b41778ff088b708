//! What the STIR service loads from its configuration: the signing keys
//! (replaceable while serving: SIGHUP), the development credential when
//! none is configured, and STI-VS's trust store and fetch policy. Loaded
//! once at start by the entry level, handed to handlers by type
//! ([`crate::server::Ctx::extension`]).

use std::sync::Arc;

use super::keys;
use super::verify::{load_error, LoadError, VerifySettings};
use crate::config::{Config, CredentialConfig};
use crate::domain::passport::{self, Es256};

/// A signing credential: its key (parsed once) and certificate URL.
#[derive(Clone)]
pub struct Credential {
    pub key: Arc<dyn Es256>,
    pub x5u: String,
    /// The PASSporT header for this x5u, base64url, computed once.
    pub header_b64: String,
    pub tn_prefixes: Vec<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("x5u", &self.x5u)
            .field("tn_prefixes", &self.tn_prefixes)
            .finish_non_exhaustive()
    }
}

/// Signing credentials that can be replaced while the server runs. Each
/// core keeps its own reference and looks at a generation counter per
/// request (one relaxed load), so signing takes no lock.
#[derive(Debug, Default)]
pub struct LiveCredentials {
    generation: std::sync::atomic::AtomicU64,
    current: std::sync::Mutex<Arc<Vec<Credential>>>,
}

type CoreCopy = (usize, u64, Arc<Vec<Credential>>);

thread_local! {
    static CORE_COPY: std::cell::RefCell<Option<CoreCopy>> =
        const { std::cell::RefCell::new(None) };
}

impl LiveCredentials {
    pub fn new(credentials: Vec<Credential>) -> LiveCredentials {
        // Generations never repeat across sets, so a core's copy of a
        // dropped set is never mistaken for a new one at the same address.
        static SETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let first = SETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 32;
        LiveCredentials {
            generation: std::sync::atomic::AtomicU64::new(first),
            current: std::sync::Mutex::new(Arc::new(credentials)),
        }
    }

    /// Replaces the set; every core uses it from its next request on.
    pub fn replace(&self, credentials: Vec<Credential>) {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(credentials);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Runs `f` with the current set (this thread's copy, refreshed when
    /// the generation moved).
    pub fn with<R>(&self, f: impl FnOnce(&[Credential]) -> R) -> R {
        let me = std::ptr::from_ref(self) as usize;
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        CORE_COPY.with(|c| {
            let mut c = c.borrow_mut();
            let fresh = matches!(&*c, Some((who, g, _)) if *who == me && *g == generation);
            if !fresh {
                let set = self
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                *c = Some((me, generation, set));
            }
            match &*c {
                Some((_, _, set)) => f(set),
                None => f(&[]),
            }
        })
    }
}

/// The credential signing for an originating TN: the longest matching
/// prefix (a credential without prefixes matches every TN).
pub fn credential_for<'c>(credentials: &'c [Credential], tn: &str) -> Option<&'c Credential> {
    credentials
        .iter()
        .filter_map(|c| {
            if c.tn_prefixes.is_empty() {
                Some((0, c))
            } else {
                c.tn_prefixes
                    .iter()
                    .filter(|p| tn.starts_with(p.as_str()))
                    .map(|p| (p.len() + 1, c))
                    .max_by_key(|(l, _)| *l)
            }
        })
        .max_by_key(|(l, _)| *l)
        .map(|(_, c)| c)
}

/// The STIR service's loaded state, shared by every core.
#[derive(Debug)]
pub struct Stir {
    /// The credentials in use (replaced by [`Stir::reload`]).
    pub live: LiveCredentials,
    /// The development certificate (PEM), served at
    /// [`super::DEV_CERT_PATH`] when no credential is configured.
    pub dev_certificate: Option<Arc<String>>,
    pub verify: VerifySettings,
}

impl Stir {
    /// Loads every key, the trust store and the fetch policy.
    pub fn load(config: &Config) -> Result<Stir, LoadError> {
        let (credentials, dev_certificate) = credentials(config)?;
        Ok(Stir {
            live: LiveCredentials::new(credentials),
            dev_certificate,
            verify: VerifySettings::load(&config.stir.verify)?,
        })
    }

    /// Replaces the signing credentials with those `config` names (a
    /// failure changes nothing); returns how many are in use.
    pub fn reload(&self, config: &Config) -> Result<usize, LoadError> {
        let (credentials, _) = credentials(config)?;
        let n = credentials.len();
        self.live.replace(credentials);
        Ok(n)
    }

    /// Runs `f` with the credential signing for an originating TN, from
    /// the live set.
    pub fn with_credential<R>(&self, tn: &str, f: impl FnOnce(Option<&Credential>) -> R) -> R {
        self.live.with(|creds| f(credential_for(creds, tn)))
    }
}

fn credential(
    c: &CredentialConfig,
    backend: crate::config::SigningBackend,
) -> Result<Credential, LoadError> {
    let bad = load_error("stir.credentials");
    let pem = std::fs::read_to_string(&c.key)
        .map_err(|e| bad(format!("key {}: {e}", c.key.display())))?;
    let key =
        keys::load(&pem, backend).map_err(|e| bad(format!("key {}: {e}", c.key.display())))?;
    Ok(Credential {
        key,
        header_b64: passport::header_b64(&c.x5u),
        x5u: c.x5u.clone(),
        tn_prefixes: c.tn_prefixes.clone(),
    })
}

/// The configured credentials; when none is configured, the development
/// credential: a key and a self-signed certificate under
/// `data_dir/stir-dev`, served by this server, with a loud warning, so
/// signing works out of the box.
fn credentials(config: &Config) -> Result<(Vec<Credential>, Option<Arc<String>>), LoadError> {
    let stir = &config.stir;
    if !stir.credentials.is_empty() {
        let loaded = stir
            .credentials
            .iter()
            .map(|c| credential(c, stir.backend))
            .collect::<Result<_, _>>()?;
        return Ok((loaded, None));
    }
    let dir = config.storage.data_dir.join("stir-dev");
    let (key, cert) =
        keys::development(&dir, stir.backend).map_err(load_error("stir.credentials"))?;
    let x5u = format!("http://{}{}", config.server.listen, super::DEV_CERT_PATH);
    let warning = format!(
        "no [[stir.credentials]] configured: signing with a DEVELOPMENT key and self-signed \
         certificate ({}), x5u {x5u}. Not for production: no verifier will trust it.",
        dir.display()
    );
    tracing::warn!("{warning}");
    eprintln!("WARNING: {warning}");
    let dev = Credential {
        key,
        header_b64: passport::header_b64(&x5u),
        x5u,
        tn_prefixes: Vec::new(),
    };
    Ok((vec![dev], Some(Arc::new(cert))))
}
