//! STI-VS: `POST /stir/v1/verification`. The pure checks are in
//! `domain::shaken`; here are the parts that need the outside: the x5u
//! certificate (fetched on the runtime, cached), the chain to the trusted
//! STI-CA roots with CRLs and TNAuthList (E17), and the ES256 signature
//! over the received bytes (E18).
//!
//! Certificate cache: each URL has an owner core (its shard by hash), which
//! alone fetches it (one fetch in flight per URL: later askers wait for that
//! fetch), caches the parsed chain and negative answers, and hands the
//! result to the asking core, which keeps its own copy for lock-free hits.
//! TTL = max(24 h, Cache-Control max-age) (ATIS-1000074), never past the
//! leaf's notAfter; failures are remembered for `negative_cache_s`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use x509_cert::der::{Decode, Encode};

use crate::domain::shaken::{self, ECase, Reject};

/// TNAuthList (RFC 8226).
const TN_AUTH_LIST: x509_cert::der::asn1::ObjectIdentifier =
    x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.26");
const EC_PUBLIC_KEY: x509_cert::der::asn1::ObjectIdentifier =
    x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: x509_cert::der::asn1::ObjectIdentifier =
    x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// The least a fetched certificate is cached (ATIS-1000074).
const MIN_TTL_S: u64 = 24 * 3600;

/// The DER certificates of every CERTIFICATE block of a PEM text.
pub fn pem_certificates(text: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, BEGIN) {
        let Some(len) = find(&rest[start..], END) else {
            break;
        };
        let block = &rest[start..start + len + END.len()];
        if let Ok((_, der)) = pem_rfc7468::decode_vec(block) {
            out.push(der);
        }
        rest = &rest[start + len + END.len()..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A CRL, parsed and ready to check.
#[derive(Debug)]
pub struct Crl {
    issuer: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    revoked: Vec<Vec<u8>>,
    /// nextUpdate, unix seconds.
    next_update: Option<u64>,
    /// The issuer key that verified the signature (checked once).
    verified_by: std::sync::OnceLock<Vec<u8>>,
}

impl Crl {
    pub fn parse(bytes: &[u8]) -> Result<Crl, String> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            pem_rfc7468::decode_vec(bytes)
                .map_err(|e| format!("not a PEM CRL: {e}"))?
                .1
        } else {
            bytes.to_vec()
        };
        let list = x509_cert::crl::CertificateList::from_der(&der)
            .map_err(|e| format!("not a CRL: {e}"))?;
        Ok(Crl {
            issuer: list
                .tbs_cert_list
                .issuer
                .to_der()
                .map_err(|e| e.to_string())?,
            tbs: list.tbs_cert_list.to_der().map_err(|e| e.to_string())?,
            signature: list.signature.raw_bytes().to_vec(),
            next_update: list
                .tbs_cert_list
                .next_update
                .map(|t| t.to_unix_duration().as_secs()),
            revoked: list
                .tbs_cert_list
                .revoked_certificates
                .unwrap_or_default()
                .iter()
                .map(|r| r.serial_number.as_bytes().to_vec())
                .collect(),
            verified_by: std::sync::OnceLock::new(),
        })
    }
}

/// The verifier's trust: STI-CA roots, known intermediates, CRLs.
#[derive(Default)]
pub struct Trust {
    anchors: Vec<TrustAnchor<'static>>,
    /// Roots and intermediates as DER (CRL issuers are looked up here).
    known: Vec<Vec<u8>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<Crl>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("roots", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl Trust {
    /// Loads roots (a PEM file, or a directory of them), intermediates (a
    /// PEM file) and CRLs (DER or PEM files).
    pub fn load(
        roots: Option<&Path>,
        intermediates: Option<&Path>,
        crls: &[std::path::PathBuf],
    ) -> Result<Trust, String> {
        let mut t = Trust::default();
        if let Some(path) = roots {
            let files = if path.is_dir() {
                let mut v: Vec<_> = std::fs::read_dir(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                v.sort();
                v
            } else {
                vec![path.to_path_buf()]
            };
            for f in files {
                let text = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                for der in pem_certificates(&text) {
                    let cert = CertificateDer::from(der.clone());
                    let anchor = webpki::anchor_from_trusted_cert(&cert)
                        .map_err(|e| format!("{}: not a usable root: {e:?}", f.display()))?
                        .to_owned();
                    t.anchors.push(anchor);
                    t.known.push(der);
                }
            }
            if t.anchors.is_empty() {
                return Err(format!("{}: no certificate", path.display()));
            }
        }
        if let Some(path) = intermediates {
            let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for der in pem_certificates(&text) {
                t.intermediates.push(CertificateDer::from(der.clone()));
                t.known.push(der);
            }
        }
        for path in crls {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            t.crls
                .push(Crl::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        Ok(t)
    }

    pub fn roots(&self) -> usize {
        self.anchors.len()
    }
}

/// A certificate (chain) served at an x5u, parsed.
#[derive(Debug)]
pub struct CertEntry {
    chain: Vec<CertificateDer<'static>>,
    /// The leaf's P-256 key, SEC1 uncompressed.
    key: Vec<u8>,
    /// The http(s) URLs of the leaf's CRL distribution points.
    crl_urls: Vec<String>,
    not_after: u64,
    /// A chain check that passed: the SPC, and the times it holds for
    /// (the latest notBefore and the earliest notAfter of the certificates
    /// it could have used). Revocation comes from CRLs loaded at start, so
    /// a pass stands for the process within that window.
    passed: std::sync::OnceLock<(String, u64, u64)>,
    /// The leaf's issuer name and serial and the keys of the certificates
    /// that could have issued it, found once (the trust store is fixed for
    /// the process): CRL checks then parse nothing.
    issuer: std::sync::OnceLock<IssuerInfo>,
}

/// What a CRL check needs of a leaf.
#[derive(Debug, Default)]
struct IssuerInfo {
    name: Vec<u8>,
    serial: Vec<u8>,
    keys: Vec<Vec<u8>>,
}

impl CertEntry {
    /// Every certificate of a PEM body; the first is the signer.
    pub fn parse(body: &[u8]) -> Result<CertEntry, String> {
        let ders = pem_certificates(body);
        let leaf_der = ders.first().ok_or("no PEM certificate in the x5u answer")?;
        let leaf = x509_cert::Certificate::from_der(leaf_der)
            .map_err(|e| format!("x5u certificate does not parse: {e}"))?;
        let spki = &leaf.tbs_certificate.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok());
        if spki.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
            return Err("x5u certificate key is not P-256".into());
        }
        let not_after = leaf
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs();
        Ok(CertEntry {
            crl_urls: crl_urls(&leaf),
            key: spki.subject_public_key.raw_bytes().to_vec(),
            not_after,
            passed: std::sync::OnceLock::new(),
            issuer: std::sync::OnceLock::new(),
            chain: ders.into_iter().map(CertificateDer::from).collect(),
        })
    }

    /// Checks the chain at `at` (unix seconds) against `trust`, the CRLs,
    /// and the leaf's TNAuthList; the SPC on success.
    pub fn validate(&self, trust: &Trust, at: u64) -> Result<String, String> {
        if let Some((spc, from, until)) = self.passed.get() {
            if (*from..=*until).contains(&at) {
                return Ok(spc.clone());
            }
        }
        let spc = self.validate_now(trust, at)?;
        let _ = self
            .passed
            .set((spc.clone(), self.window(trust).0, self.window(trust).1));
        Ok(spc)
    }

    /// The latest notBefore and earliest notAfter over the leaf, the
    /// served chain and the configured intermediates (a window within
    /// which every path found at one time stays valid).
    fn window(&self, trust: &Trust) -> (u64, u64) {
        self.chain
            .iter()
            .map(|c| c.as_ref())
            .chain(trust.intermediates.iter().map(|c| c.as_ref()))
            .filter_map(|der| x509_cert::Certificate::from_der(der).ok())
            .fold((0, u64::MAX), |(from, until), c| {
                let v = &c.tbs_certificate.validity;
                (
                    from.max(v.not_before.to_unix_duration().as_secs()),
                    until.min(v.not_after.to_unix_duration().as_secs()),
                )
            })
    }

    fn validate_now(&self, trust: &Trust, at: u64) -> Result<String, String> {
        let leaf = self.chain.first().ok_or("empty chain")?;
        let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("leaf: {e:?}"))?;
        let mut intermediates: Vec<CertificateDer<'_>> = self.chain[1..].to_vec();
        intermediates.extend(trust.intermediates.iter().cloned());
        ee.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &trust.anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(at)),
            AnyUsage,
            None,
            None,
        )
        .map_err(|e| format!("chain: {e:?}"))?;
        let cert = x509_cert::Certificate::from_der(leaf).map_err(|e| e.to_string())?;
        self.check_revocation(trust)?;
        let spc = cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == TN_AUTH_LIST)
            .and_then(|e| shaken::tn_auth_list_spc(e.extn_value.as_bytes()))
            .ok_or("leaf has no TNAuthList with one service provider code")?;
        Ok(spc)
    }

    /// Refuses a leaf listed in a configured CRL of its issuer.
    fn check_revocation(&self, trust: &Trust) -> Result<(), String> {
        for crl in &trust.crls {
            match self.status_in(crl, trust) {
                Revocation::Revoked => return Err("leaf certificate revoked".into()),
                Revocation::Good | Revocation::NotIssuer => {}
            }
        }
        Ok(())
    }

    /// The leaf's status in a CRL fetched from its distribution point: it
    /// must come from the leaf's issuer (name and signature).
    pub fn check_fetched_crl(&self, crl: &Crl, trust: &Trust) -> Result<(), String> {
        match self.status_in(crl, trust) {
            Revocation::Good => Ok(()),
            Revocation::Revoked => Err("leaf certificate revoked".into()),
            Revocation::NotIssuer => {
                Err("the CRL at the distribution point is not signed by the leaf's issuer".into())
            }
        }
    }

    /// The leaf's issuer, serial and candidate issuer keys (found once).
    fn issuer_info(&self, trust: &Trust) -> &IssuerInfo {
        self.issuer.get_or_init(|| {
            let Some(leaf) = self
                .chain
                .first()
                .and_then(|der| x509_cert::Certificate::from_der(der).ok())
            else {
                return IssuerInfo::default();
            };
            let Ok(name) = leaf.tbs_certificate.issuer.to_der() else {
                return IssuerInfo::default();
            };
            let keys = self
                .chain
                .iter()
                .skip(1)
                .map(|c| c.as_ref())
                .chain(trust.known.iter().map(Vec::as_slice))
                .filter_map(|der| x509_cert::Certificate::from_der(der).ok())
                .filter(|c| c.tbs_certificate.subject.to_der().ok().as_deref() == Some(&name[..]))
                .map(|c| {
                    c.tbs_certificate
                        .subject_public_key_info
                        .subject_public_key
                        .raw_bytes()
                        .to_vec()
                })
                .collect();
            IssuerInfo {
                serial: leaf.tbs_certificate.serial_number.as_bytes().to_vec(),
                name,
                keys,
            }
        })
    }

    /// Whether `crl`, if issued (named and signed) by the leaf's issuer,
    /// lists the leaf.
    fn status_in(&self, crl: &Crl, trust: &Trust) -> Revocation {
        let info = self.issuer_info(trust);
        if info.name.is_empty() || crl.issuer != info.name {
            return Revocation::NotIssuer;
        }
        let signed = match crl.verified_by.get() {
            Some(k) => info.keys.contains(k),
            None => info.keys.iter().any(|key| {
                let ok = ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_ASN1,
                    key,
                )
                .verify(&crl.tbs, &crl.signature)
                .is_ok();
                if ok {
                    let _ = crl.verified_by.set(key.clone());
                }
                ok
            }),
        };
        match (signed, crl.revoked.contains(&info.serial)) {
            (false, _) => Revocation::NotIssuer,
            (true, true) => Revocation::Revoked,
            (true, false) => Revocation::Good,
        }
    }

    /// The http(s) CRL distribution points of the leaf.
    pub fn crl_urls(&self) -> &[String] {
        &self.crl_urls
    }

    /// ES256 over the received signing input.
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &self.key,
        )
        .verify(signing_input, signature)
        .is_ok()
    }
}

enum Revocation {
    Good,
    Revoked,
    NotIssuer,
}

/// The http(s) URIs of a certificate's CRL distribution points.
fn crl_urls(cert: &x509_cert::Certificate) -> Vec<String> {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::CrlDistributionPoints;
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == CrlDistributionPoints::OID)
    else {
        return Vec::new();
    };
    let Ok(points) = CrlDistributionPoints::from_der(ext.extn_value.as_bytes()) else {
        return Vec::new();
    };
    points
        .0
        .iter()
        .filter_map(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            _ => None,
        })
        .filter(|u| shaken::parse_url(u).is_some())
        .collect()
}

/// SHAKEN certificates carry no extended key usage to insist on.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// How long an answer is cached: max(24 h, max-age / s-maxage), capped
/// at the leaf's notAfter.
pub fn ttl(cache_control: Option<&str>, now: u64, not_after: u64) -> u64 {
    let max_age = cache_control
        .into_iter()
        .flat_map(|c| c.split(','))
        .filter_map(|d| {
            let (k, v) = d.trim().split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            (k == "max-age" || k == "s-maxage")
                .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .max()
        .unwrap_or(0);
    MIN_TTL_S.max(max_age).min(not_after.saturating_sub(now))
}

/// What a URL serves: a certificate (chain) or a CRL.
#[derive(Debug)]
pub enum Doc {
    Cert(CertEntry),
    Crl(Crl),
}

/// Which kind of document a URL is fetched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cert = 0,
    Crl = 1,
}

/// A cached answer for one URL.
#[derive(Debug, Clone)]
pub struct Cached {
    pub entry: Result<Arc<Doc>, String>,
    /// Unix seconds after which it is fetched again.
    pub expires: u64,
}

enum Owned {
    Ready(Cached),
    Pending(Vec<futures_channel::oneshot::Sender<Cached>>),
}

/// Most x5u fetches one core runs at once.
const MAX_FETCHES_PER_CORE: usize = 256;

thread_local! {
    /// Fetches this core runs now.
    static FETCHING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// This core's copies of answers (from the owners).
    /// (Certificates, CRLs), by URL.
    static LOCAL: RefCell<[HashMap<String, Cached>; 2]> = RefCell::new([HashMap::new(), HashMap::new()]);
    /// The URLs this core owns: their answers and fetches in flight.
    static OWNED: RefCell<HashMap<String, Owned>> = RefCell::new(HashMap::new());
}

/// How the owner fetches.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub limits: crate::runtime::fetch::Limits,
    /// URL prefix rewrites for the fetch only (labs and tests; the cache
    /// key and every check keep the x5u as signed).
    pub rewrite: Vec<(String, String)>,
    pub negative_ttl_s: u64,
    pub max_entries: usize,
}

/// Fetches and parses `url` (the owner's work).
async fn fetch(url: &str, kind: Kind, policy: &FetchPolicy, now: u64) -> Cached {
    let target = policy
        .rewrite
        .iter()
        .find_map(|(from, to)| {
            url.strip_prefix(from.as_str())
                .map(|rest| format!("{to}{rest}"))
        })
        .unwrap_or_else(|| url.to_owned());
    let failed = |why: String| Cached {
        entry: Err(why),
        expires: now + policy.negative_ttl_s,
    };
    let Some(u) = shaken::parse_url(&target) else {
        return failed(format!("cannot fetch {target}"));
    };
    let answer = match crate::runtime::fetch::http_get(
        u.https,
        u.host,
        u.port,
        u.path,
        &policy.limits,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return failed(format!("fetch failed: {e}")),
    };
    if answer.status != 200 {
        return failed(format!("answered HTTP {}", answer.status));
    }
    let parsed = match kind {
        Kind::Cert => CertEntry::parse(&answer.body).map(|e| (e.not_after, Doc::Cert(e))),
        Kind::Crl => {
            Crl::parse(&answer.body).map(|c| (c.next_update.unwrap_or(u64::MAX), Doc::Crl(c)))
        }
    };
    match parsed {
        Ok((until, doc)) => Cached {
            expires: now + ttl(answer.cache_control.as_deref(), now, until).max(1),
            entry: Ok(Arc::new(doc)),
        },
        Err(why) => failed(why),
    }
}

/// The owner core's answer for `url`: cached, joined to the fetch in
/// flight, or fetched now.
async fn owner_get(key: String, policy: Arc<FetchPolicy>) -> Cached {
    let (kind, url) = match key.split_at_checked(2) {
        Some(("r|", url)) => (Kind::Crl, url.to_owned()),
        Some((_, url)) => (Kind::Cert, url.to_owned()),
        None => (Kind::Cert, key.clone()),
    };
    let url_key = key;
    let now = crate::runtime::clock::unix_seconds();
    let waiter = OWNED.with(|o| {
        let mut o = o.borrow_mut();
        match o.get_mut(&url_key) {
            Some(Owned::Ready(c)) if c.expires > now => Some(Ok(c.clone())),
            Some(Owned::Pending(waiters)) => {
                let (tx, rx) = futures_channel::oneshot::channel();
                waiters.push(tx);
                Some(Err(rx))
            }
            _ => {
                if o.len() >= policy.max_entries {
                    o.retain(|_, v| matches!(v, Owned::Pending(_)));
                }
                o.insert(url_key.clone(), Owned::Pending(Vec::new()));
                None
            }
        }
    });
    match waiter {
        Some(Ok(c)) => return c,
        Some(Err(rx)) => {
            return rx.await.unwrap_or(Cached {
                entry: Err("x5u fetch abandoned".into()),
                expires: 0,
            })
        }
        None => {}
    }
    // Fetches in flight on this core are bounded: x5u URLs are
    // attacker-chosen, each fetch holds a connection for up to the timeout.
    let c = if FETCHING.with(std::cell::Cell::get) >= MAX_FETCHES_PER_CORE {
        Cached {
            entry: Err(format!(
                "{MAX_FETCHES_PER_CORE} certificate fetches already in flight"
            )),
            expires: 0,
        }
    } else {
        FETCHING.with(|f| f.set(f.get() + 1));
        let c = fetch(&url, kind, &policy, now).await;
        FETCHING.with(|f| f.set(f.get().saturating_sub(1)));
        c
    };
    let waiters = OWNED.with(|o| {
        match o
            .borrow_mut()
            .insert(url_key.clone(), Owned::Ready(c.clone()))
        {
            Some(Owned::Pending(w)) => w,
            _ => Vec::new(),
        }
    });
    for w in waiters {
        let _ = w.send(c.clone());
    }
    c
}

/// The document at `url`, through this core's copy and the owner.
pub async fn document(
    core: &crate::runtime::Core,
    url: &str,
    kind: Kind,
    policy: &Arc<FetchPolicy>,
) -> Result<Arc<Doc>, String> {
    let slot = kind as usize;
    let now = crate::runtime::clock::unix_seconds();
    let hit = LOCAL.with(|l| {
        l.borrow()[slot]
            .get(url)
            .filter(|c| c.expires > now)
            .map(|c| c.entry.clone())
    });
    if let Some(entry) = hit {
        return entry;
    }
    // The owner's key names the kind too.
    let key = match kind {
        Kind::Cert => format!("c|{url}"),
        Kind::Crl => format!("r|{url}"),
    };
    let owner = crate::domain::shard::shard_of(url.as_bytes(), core.shards());
    let (k, p) = (key.clone(), policy.clone());
    let c = core
        .submit_to(owner, move || owner_get(k, p))
        .await
        .map_err(|e| format!("certificate cache unavailable: {e}"))?;
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let l = &mut l[slot];
        if l.len() >= policy.max_entries {
            l.clear();
        }
        l.insert(url.to_owned(), c.clone());
    });
    c.entry
}

/// The certificate (chain) at `url`.
pub async fn certificate(
    core: &crate::runtime::Core,
    url: &str,
    policy: &Arc<FetchPolicy>,
) -> Result<Arc<Doc>, String> {
    let doc = document(core, url, Kind::Cert, policy).await?;
    match &*doc {
        Doc::Cert(_) => Ok(doc),
        Doc::Crl(_) => Err("not a certificate".into()),
    }
}

/// A file the configuration names that does not load: the key, for the
/// configuration's own error (with the key's origin).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct LoadError {
    pub key: &'static str,
    pub message: String,
}

pub fn load_error(key: &'static str) -> impl Fn(String) -> LoadError {
    move |message| LoadError { key, message }
}

/// STI-VS settings with the trust store and fetch policy loaded.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub trust: std::sync::Arc<Trust>,
    /// A fixed verifier clock (labs and tests; None: the real clock).
    pub fixed_now: Option<u64>,
    pub freshness_s: u64,
    pub allow_http_x5u: bool,
    /// Hosts an x5u may name (empty: any).
    pub x5u_hosts: Vec<String>,
    pub fetch: std::sync::Arc<FetchPolicy>,
    /// Fetch each leaf's CRL distribution points (cached) and refuse a
    /// revoked leaf, or one whose CRL cannot be had.
    pub crl_fetch: bool,
    /// Clients allowed to ask for verification (empty: any).
    pub trusted_hosts: Vec<std::net::IpAddr>,
}

impl VerifySettings {
    /// Loads the trust store and the fetch policy `v` names.
    pub fn load(v: &crate::config::VerifyConfig) -> Result<VerifySettings, LoadError> {
        let trust = Trust::load(
            v.trust_roots.as_deref(),
            v.intermediates.as_deref(),
            &v.crls,
        )
        .map_err(load_error("stir.trust_roots"))?;
        let roots = match &v.x5u_tls_roots {
            Some(p) => {
                let bad = load_error("stir.x5u_tls_roots");
                let text = std::fs::read(p).map_err(|e| bad(format!("{}: {e}", p.display())))?;
                let certs = pem_certificates(&text);
                if certs.is_empty() {
                    return Err(bad(format!("{}: no certificate", p.display())));
                }
                certs
            }
            None => Vec::new(),
        };
        let tls = crate::runtime::fetch::tls_client_config(&roots)
            .map_err(load_error("stir.x5u_tls_roots"))?;
        Ok(VerifySettings {
            trust: std::sync::Arc::new(trust),
            fixed_now: v.fixed_now,
            freshness_s: v.freshness_s,
            allow_http_x5u: v.allow_http_x5u,
            x5u_hosts: v.x5u_hosts.clone(),
            fetch: std::sync::Arc::new(FetchPolicy {
                limits: crate::runtime::fetch::Limits {
                    timeout: v.x5u_timeout,
                    max_body: v.x5u_max_bytes,
                    allow_internal: v.allow_http_x5u,
                    tls,
                },
                rewrite: v.x5u_rewrite.clone(),
                negative_ttl_s: v.negative_cache_s,
                max_entries: v.cache_entries,
            }),
            crl_fetch: v.crl_fetch,
            trusted_hosts: v.trusted_hosts.clone(),
        })
    }
}

/// The outcome of one verification.
pub type Outcome = Result<(), Reject>;

/// The whole STI-VS check: the pure part, then the certificate, its
/// chain at `iat`, and the signature.
pub async fn verify(
    core: &crate::runtime::Core,
    settings: &VerifySettings,
    req: &shaken::Request<'_>,
) -> Outcome {
    let now = settings
        .fixed_now
        .unwrap_or_else(crate::runtime::clock::unix_seconds);
    let allow_http = settings.allow_http_x5u;
    let hosts = &settings.x5u_hosts;
    let checked = shaken::check(req, now, settings.freshness_s, |u| {
        (u.https || allow_http)
            && (hosts.is_empty() || hosts.iter().any(|h| h.eq_ignore_ascii_case(u.host)))
    })?;
    let doc = certificate(core, checked.x5u, &settings.fetch)
        .await
        .map_err(|why| Reject {
            case: ECase::E8,
            desc: format!("Failed to dereference 'info' URI: {why}"),
        })?;
    let Doc::Cert(entry) = &*doc else {
        return Err(Reject {
            case: ECase::E8,
            desc: "Failed to dereference 'info' URI: not a certificate".into(),
        });
    };
    let ca = |why: String| Reject {
        case: ECase::E17,
        desc: format!("Failed to authenticate CA: {why}"),
    };
    entry.validate(&settings.trust, checked.iat).map_err(ca)?;
    if settings.crl_fetch {
        // Fail closed: a revocation status that cannot be had is no pass.
        for url in entry.crl_urls() {
            let allowed = shaken::parse_url(url).is_some_and(|u| {
                (u.https || allow_http)
                    && (hosts.is_empty() || hosts.iter().any(|h| h.eq_ignore_ascii_case(u.host)))
            });
            if !allowed {
                return Err(ca(format!("CRL distribution point {url} not allowed")));
            }
            let crl = document(core, url, Kind::Crl, &settings.fetch)
                .await
                .map_err(|why| ca(format!("CRL {url}: {why}")))?;
            let Doc::Crl(crl) = &*crl else {
                return Err(ca(format!("CRL {url}: not a CRL")));
            };
            entry.check_fetched_crl(crl, &settings.trust).map_err(ca)?;
        }
    }
    let ok = checked
        .signature
        .as_deref()
        .is_some_and(|s| entry.verify(checked.signing_input.as_bytes(), s));
    if !ok {
        return Err(Reject {
            case: ECase::E18,
            desc: "Signature validation failed".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_at_least_a_day_and_never_past_not_after() {
        assert_eq!(ttl(None, 0, u64::MAX), MIN_TTL_S);
        assert_eq!(ttl(Some("public, max-age=600"), 0, u64::MAX), MIN_TTL_S);
        assert_eq!(ttl(Some("max-age=172800"), 0, u64::MAX), 172_800);
        assert_eq!(
            ttl(Some("s-maxage=200000, max-age=10"), 0, u64::MAX),
            200_000
        );
        assert_eq!(ttl(Some("max-age=172800"), 1000, 2000), 1000);
        assert_eq!(ttl(Some("max-age=bogus"), 0, 10), 10);
    }

    #[test]
    fn pem_blocks_are_found_among_other_text() {
        let text = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\nmore\n-----BEGIN CERTIFICATE-----\nAwQ=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nunterminated";
        assert_eq!(pem_certificates(text), vec![vec![0, 1, 2], vec![3, 4]]);
        assert!(pem_certificates(b"no pem").is_empty());
    }
}
