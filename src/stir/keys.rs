//! Signing keys: loaded once per credential, behind the `Es256` trait so the
//! backend is a configuration choice (`stir.backend`; decision 0004).

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::domain::passport::{Es256, SignError};

/// Which library signs (a configuration value).
pub use crate::config::SigningBackend as Backend;

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

/// An AWS-LC P-256 key, signed with directly: SHA-256, `ECDSA_do_sign` on
/// the digest (AWS-LC's hedged nonce: private key, digest and its CSPRNG),
/// r and s written out as fixed 32-byte values. Through aws-lc-rs the same
/// signature took 15.8 µs against 14.6 µs here (`cargo bench --bench es256
/// -- aws_lc_layers`): its EVP layer creates a context per call and
/// round-trips the signature through DER.
pub struct AwsLcKey {
    key: std::ptr::NonNull<aws_lc_sys::EC_KEY>,
}

// SAFETY: the EC_KEY is only read after loading (ECDSA_do_sign takes it
// const; AWS-LC allows concurrent use of a const EC_KEY from many threads)
// and freed once, in Drop.
#[allow(unsafe_code)]
unsafe impl Send for AwsLcKey {}
// SAFETY: as for Send: shared use is read-only.
#[allow(unsafe_code)]
unsafe impl Sync for AwsLcKey {}

impl Drop for AwsLcKey {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_PKEY_get1_EC_KEY (one reference,
        // ours) and is freed only here; EC_KEY_free clears the private key.
        #[allow(unsafe_code)]
        unsafe {
            aws_lc_sys::EC_KEY_free(self.key.as_ptr())
        }
    }
}

impl AwsLcKey {
    /// The key of a PKCS#8 DER already checked to hold a P-256 key.
    fn from_pkcs8(der: &[u8]) -> Result<AwsLcKey, String> {
        use aws_lc_sys as sys;
        // SAFETY: CBS_init only records the pointer and length of `der`,
        // which outlives the parse; EVP_parse_private_key reads within
        // them and returns an owned EVP_PKEY or null; get1 returns a new
        // reference to its EC_KEY (or null), so the EVP_PKEY can be freed.
        #[allow(unsafe_code)]
        let key = unsafe {
            let mut cbs = std::mem::MaybeUninit::<sys::CBS>::zeroed().assume_init();
            sys::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let pkey = sys::EVP_parse_private_key(&mut cbs);
            if pkey.is_null() {
                return Err("not a PKCS#8 private key".into());
            }
            let key = sys::EVP_PKEY_get1_EC_KEY(pkey);
            sys::EVP_PKEY_free(pkey);
            key
        };
        std::ptr::NonNull::new(key)
            .map(|key| AwsLcKey { key })
            .ok_or_else(|| "not an EC private key".into())
    }
}

impl Es256 for AwsLcKey {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        use aws_lc_sys as sys;
        let mut out = [0u8; 64];
        let (r_out, s_out) = out.split_at_mut(32);
        // SAFETY: SHA256 writes 32 bytes into `digest`; ECDSA_do_sign reads
        // the 32-byte digest and the live EC_KEY and returns an owned
        // ECDSA_SIG or null; get0 lends r and s for as long as `sig` lives;
        // BN_bn2bin_padded writes exactly 32 bytes into each half of `out`
        // (and fails if a value does not fit); `sig` is freed once.
        #[allow(unsafe_code)]
        let ok = unsafe {
            let mut digest = [0u8; 32];
            sys::SHA256(msg.as_ptr(), msg.len(), digest.as_mut_ptr());
            let sig = sys::ECDSA_do_sign(digest.as_ptr(), digest.len(), self.key.as_ptr());
            if sig.is_null() {
                return Err(SignError);
            }
            let (mut r, mut s) = (std::ptr::null(), std::ptr::null());
            sys::ECDSA_SIG_get0(sig, &mut r, &mut s);
            let ok = !r.is_null()
                && !s.is_null()
                && sys::BN_bn2bin_padded(r_out.as_mut_ptr(), r_out.len(), r) == 1
                && sys::BN_bn2bin_padded(s_out.as_mut_ptr(), s_out.len(), s) == 1;
            sys::ECDSA_SIG_free(sig);
            ok
        };
        if ok {
            Ok(out)
        } else {
            Err(SignError)
        }
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
            // aws-lc-rs checks the key is a valid P-256 key (curve and
            // public point); the signer then holds AWS-LC's key directly.
            aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
            )
            .map_err(|e| format!("not a PKCS#8 P-256 key: {e}"))?;
            Ok(Arc::new(AwsLcKey::from_pkcs8(&der)?))
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
        assert!(load("garbage", Backend::AwsLc).is_err());
        // A P-384 key is refused by the P-256 backends.
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .unwrap()
            .serialize_pem();
        assert!(load(&p384, Backend::AwsLc).is_err());
        assert!(load(&p384, Backend::Ring).is_err());
        // Random nonces: two signatures of one message differ, both valid.
        let key = load(pem, Backend::AwsLc).unwrap();
        let (a, b) = (key.sign(b"m").unwrap(), key.sign(b"m").unwrap());
        assert_ne!(a, b);
        for sig in [a, b] {
            let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
            vk.verify(b"m", &sig).unwrap();
        }
        assert!(load("garbage", Backend::P256).is_err());
    }
}
