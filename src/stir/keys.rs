//! Signing keys: loaded once per credential, behind the `Es256` trait so the
//! backend is a configuration choice (`stir.backend`; decision 0004).

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::domain::passport::{Es256, SignError};

/// Which library signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// AWS-LC through aws-lc-rs: P-256 in assembly, the fastest here (the
    /// default: see decision 0004).
    AwsLc,
    /// ring: P-256 in assembly.
    Ring,
    /// RustCrypto p256 (pure Rust, RFC 6979 deterministic nonces).
    P256,
}

/// ring's key pair with its CSPRNG (ECDSA nonces are random in ring).
pub struct RingKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Es256 for RingKey {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        let sig = self.pair.sign(&self.rng, msg).map_err(|_| SignError)?;
        <[u8; 64]>::try_from(sig.as_ref()).map_err(|_| SignError)
    }
}

/// AWS-LC's key pair with its CSPRNG.
pub struct AwsLcKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl Es256 for AwsLcKey {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        let sig = self.pair.sign(&self.rng, msg).map_err(|_| SignError)?;
        <[u8; 64]>::try_from(sig.as_ref()).map_err(|_| SignError)
    }
}

/// The DER of a PKCS#8 PEM private key.
fn pkcs8_der(pem: &str) -> Result<Vec<u8>, String> {
    let (label, der) =
        pem_rfc7468::decode_vec(pem.as_bytes()).map_err(|e| format!("not a PEM document: {e}"))?;
    if label != "PRIVATE KEY" {
        return Err(format!(
            "PEM label {label:?}: expected PRIVATE KEY (PKCS#8)"
        ));
    }
    Ok(der)
}

/// Loads a PKCS#8 PEM P-256 private key for `backend`.
pub fn load(pem: &str, backend: Backend) -> Result<Arc<dyn Es256>, String> {
    match backend {
        Backend::P256 => {
            use p256::pkcs8::DecodePrivateKey;
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("not a PKCS#8 P-256 key: {e}"))?;
            Ok(Arc::new(key))
        }
        Backend::AwsLc => {
            let der = pkcs8_der(pem)?;
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
            )
            .map_err(|e| format!("not a PKCS#8 P-256 key: {e}"))?;
            Ok(Arc::new(AwsLcKey {
                pair,
                rng: aws_lc_rs::rand::SystemRandom::new(),
            }))
        }
        Backend::Ring => {
            let der = pkcs8_der(pem)?;
            let rng = SystemRandom::new();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                .map_err(|e| format!("not a PKCS#8 P-256 key: {e}"))?;
            Ok(Arc::new(RingKey { pair, rng }))
        }
    }
}

/// A development credential: the key and self-signed certificate in `dir`
/// (created on first use, kept across restarts). Not for production: the
/// certificate chains to no STI-CA.
pub fn development(
    dir: &std::path::Path,
    backend: Backend,
) -> Result<(Arc<dyn Es256>, String), String> {
    let key_path = dir.join("dev-key.pem");
    let cert_path = dir.join("dev-cert.pem");
    if !key_path.exists() || !cert_path.exists() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let made = rcgen::generate_simple_self_signed(vec!["authplane-development".to_owned()])
            .map_err(|e| format!("cannot create a development certificate: {e}"))?;
        // Key first: a certificate never exists without its key.
        write_private(&key_path, &made.key_pair.serialize_pem())?;
        std::fs::write(&cert_path, made.cert.pem())
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    }
    let key_pem =
        std::fs::read_to_string(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let cert_pem =
        std::fs::read_to_string(&cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    Ok((load(&key_pem, backend)?, cert_pem))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(pem.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    /// Both backends sign the fixture key so that p256's verifier accepts.
    #[test]
    fn both_backends_produce_valid_signatures() {
        let pem = include_str!("../../tests/fixtures/stir/keys/sp-key.pem");
        use p256::pkcs8::DecodePrivateKey;
        let vk =
            p256::ecdsa::VerifyingKey::from(&p256::ecdsa::SigningKey::from_pkcs8_pem(pem).unwrap());
        for backend in [Backend::AwsLc, Backend::Ring, Backend::P256] {
            let key = load(pem, backend).unwrap();
            let sig = key.sign(b"header.payload").unwrap();
            let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
            vk.verify(b"header.payload", &sig)
                .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        }
        assert!(load("garbage", Backend::Ring).is_err());
        assert!(load("garbage", Backend::P256).is_err());
    }
}
