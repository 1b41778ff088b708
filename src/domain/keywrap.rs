//! Ki and OPc at rest: AES key wrap (RFC 3394) under a key-encryption key
//! (KEK). A wrapped key carries the fingerprint of the KEK that wrapped it,
//! so opening it under another KEK is a clear error, never a wrong key.

use aes_kw::{KekAes128, KekAes256};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ids::InvalidId;

/// A key-encryption key (AES-128 or AES-256). Never printed.
pub struct Kek {
    inner: Inner,
    fingerprint: [u8; 4],
}

// One KEK per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Aes128(KekAes128),
    Aes256(KekAes256),
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Kek {{ fingerprint: {} }}",
            hex::encode(self.fingerprint)
        )
    }
}

/// Why a stored key cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the key is wrapped, and no key-encryption key is configured (hss.key_encryption_key)"
    )]
    NoKek,
    #[error("the key was wrapped under another key-encryption key (fingerprint {0})")]
    WrongKek(u32),
    #[error("the wrapped key fails its integrity check")]
    Integrity,
}

impl Kek {
    /// A KEK of 32 or 64 hex digits (AES-128 or AES-256).
    pub fn from_hex(s: &str) -> Result<Kek, InvalidId> {
        let bytes = Zeroizing::new(hex::decode(s.trim()).map_err(|_| InvalidId {
            field: "hss.key_encryption_key",
            problem: "must be 32 or 64 hex digits",
        })?);
        let inner = match bytes.len() {
            16 => Inner::Aes128(KekAes128::try_from(bytes.as_slice()).map_err(|_| bad())?),
            32 => Inner::Aes256(KekAes256::try_from(bytes.as_slice()).map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        let mut h = Sha256::new();
        h.update(b"authplane-kek-fingerprint");
        h.update(bytes.as_slice());
        let d = h.finalize();
        Ok(Kek {
            inner,
            fingerprint: [d[0], d[1], d[2], d[3]],
        })
    }

    pub fn fingerprint(&self) -> [u8; 4] {
        self.fingerprint
    }

    /// Wraps a 16-byte key (24 bytes out).
    pub fn wrap(&self, key: &[u8; 16]) -> [u8; 24] {
        let mut out = [0u8; 24];
        // 16 bytes is a whole number of semiblocks: wrapping cannot fail.
        let _ = match &self.inner {
            Inner::Aes128(k) => k.wrap(key, &mut out),
            Inner::Aes256(k) => k.wrap(key, &mut out),
        };
        out
    }

    /// Unwraps a key wrapped by [`Kek::wrap`] with this KEK.
    pub fn unwrap(&self, wrapped: &[u8; 24]) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        let mut out = Zeroizing::new([0u8; 16]);
        match &self.inner {
            // ok-panic: RFC 3394 key unwrap (aes-kw), which returns a Result.
            Inner::Aes128(k) => k.unwrap(wrapped, out.as_mut_slice()),
            // ok-panic: RFC 3394 key unwrap (aes-kw), which returns a Result.
            Inner::Aes256(k) => k.unwrap(wrapped, out.as_mut_slice()),
        }
        .map_err(|_| KeyError::Integrity)?;
        Ok(out)
    }
}

fn bad() -> InvalidId {
    InvalidId {
        field: "hss.key_encryption_key",
        problem: "must be 32 or 64 hex digits",
    }
}

/// A subscriber key as stored: in clear (no KEK configured) or wrapped.
#[derive(Clone)]
pub enum KeyMaterial {
    Clear(Zeroizing<[u8; 16]>),
    Wrapped { bytes: [u8; 24], kek: [u8; 4] },
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Clear(_) => "KeyMaterial::Clear(..)",
            KeyMaterial::Wrapped { .. } => "KeyMaterial::Wrapped(..)",
        })
    }
}

impl KeyMaterial {
    /// Stores `key`: wrapped when a KEK is given.
    pub fn seal(key: &[u8; 16], kek: Option<&Kek>) -> KeyMaterial {
        match kek {
            Some(k) => KeyMaterial::Wrapped {
                bytes: k.wrap(key),
                kek: k.fingerprint(),
            },
            None => KeyMaterial::Clear(Zeroizing::new(*key)),
        }
    }

    /// The key, unwrapped with `kek` when it is wrapped.
    pub fn open(&self, kek: Option<&Kek>) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        match self {
            KeyMaterial::Clear(k) => Ok(k.clone()),
            KeyMaterial::Wrapped { bytes, kek: fp } => {
                let k = kek.ok_or(KeyError::NoKek)?;
                if k.fingerprint() != *fp {
                    return Err(KeyError::WrongKek(u32::from_be_bytes(*fp)));
                }
                // ok-panic: Kek::unwrap (RFC 3394), which returns a Result.
                k.unwrap(bytes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3394 §4.1: wrap 128 bits of key data with a 128-bit KEK.
    #[test]
    fn rfc3394_4_1() {
        let kek = Kek::from_hex("000102030405060708090A0B0C0D0E0F").unwrap();
        let data: [u8; 16] = hex::decode("00112233445566778899AABBCCDDEEFF")
            .unwrap()
            .try_into()
            .unwrap();
        let wrapped = kek.wrap(&data);
        assert_eq!(
            hex::encode_upper(wrapped),
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
        );
        assert_eq!(*kek.unwrap(&wrapped).unwrap(), data);
    }

    /// RFC 3394 §4.3: 128 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_4_3() {
        let kek = Kek::from_hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
            .unwrap();
        let data: [u8; 16] = hex::decode("00112233445566778899AABBCCDDEEFF")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            hex::encode_upper(kek.wrap(&data)),
            "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"
        );
    }

    #[test]
    fn sealed_keys_open_only_under_their_kek() {
        let a = Kek::from_hex(&"11".repeat(32)).unwrap();
        let b = Kek::from_hex(&"22".repeat(32)).unwrap();
        let key = [7u8; 16];
        let sealed = KeyMaterial::seal(&key, Some(&a));
        assert_eq!(*sealed.open(Some(&a)).unwrap(), key);
        assert!(matches!(sealed.open(Some(&b)), Err(KeyError::WrongKek(_))));
        assert_eq!(sealed.open(None).unwrap_err(), KeyError::NoKek);
        assert_eq!(*KeyMaterial::seal(&key, None).open(Some(&a)).unwrap(), key);
        let mut tampered = sealed.clone();
        if let KeyMaterial::Wrapped { bytes, .. } = &mut tampered {
            bytes[3] ^= 1;
        }
        assert_eq!(tampered.open(Some(&a)).unwrap_err(), KeyError::Integrity);
        assert!(Kek::from_hex("abc").is_err());
        assert!(!format!("{a:?}").contains("11111111"));
    }
}
