//! SHAKEN PASSporTs (RFC 8225, RFC 8588): canonical JSON, the JWS signing
//! input, and the full-form Identity header (RFC 8224). Pure: the signature
//! is produced by a key given in, the clock and `origid` are parameters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

/// An ES256 signing key, whichever library computes it (docs/decisions/0004).
pub trait Es256: Send + Sync {
    /// The JWS signature (R ‖ S) over `msg` (SHA-256 inside).
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignError>;
}

/// Signing failed (a library error; not expected for a valid key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ES256 signing failed")]
pub struct SignError;

/// RustCrypto's p256: deterministic nonces (RFC 6979).
impl Es256 for SigningKey {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        let sig: Signature = Signer::sign(self, msg);
        Ok(sig.to_bytes().into())
    }
}

/// SHAKEN attestation levels (RFC 8588 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attest {
    A,
    B,
    C,
}

impl Attest {
    pub fn parse(s: &str) -> Option<Attest> {
        match s {
            "A" => Some(Attest::A),
            "B" => Some(Attest::B),
            "C" => Some(Attest::C),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Attest::A => "A",
            Attest::B => "B",
            Attest::C => "C",
        }
    }
}

/// A telephone number as SHAKEN carries it: digits only (RFC 8225 §5.2.1,
/// canonicalized: no `+`, no separators), 1 to 15 of them.
pub fn valid_tn(tn: &str) -> bool {
    (1..=15).contains(&tn.len()) && tn.bytes().all(|b| b.is_ascii_digit())
}

/// The claims of one SHAKEN PASSporT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub attest: Attest,
    pub dest_tns: Vec<String>,
    pub iat: u64,
    pub orig_tn: String,
    pub origid: String,
}

/// A JSON string literal (TNs and UUIDs need no escaping, x5u may).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// The protected header, base64url: canonical JSON (keys sorted, no
/// whitespace). Computed once per credential.
pub fn header_b64(x5u: &str) -> String {
    let json = format!(
        r#"{{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":{}}}"#,
        json_str(x5u)
    );
    URL_SAFE_NO_PAD.encode(json)
}

/// The claims as canonical JSON (keys sorted lexicographically at every
/// level, no whitespace: RFC 8225 §9).
pub fn claims_json(c: &Claims) -> String {
    let mut out = String::with_capacity(160 + 16 * c.dest_tns.len());
    out.push_str(r#"{"attest":""#);
    out.push_str(c.attest.as_str());
    out.push_str(r#"","dest":{"tn":["#);
    for (i, t) in c.dest_tns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, t);
    }
    out.push_str(r#"]},"iat":"#);
    out.push_str(itoa::Buffer::new().format(c.iat));
    out.push_str(r#","orig":{"tn":"#);
    push_json_str(&mut out, &c.orig_tn);
    out.push_str(r#"},"origid":"#);
    push_json_str(&mut out, &c.origid);
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    let _ = write!(out, "{}", super::api_error::Json(s));
}

/// Signs `claims` under `header_b64` with ES256 and returns the compact
/// JWS `h.p.s` (signature as R ‖ S, base64url).
pub fn sign(key: &dyn Es256, header_b64: &str, claims: &Claims) -> Result<String, SignError> {
    let mut jws = String::with_capacity(header_b64.len() + 400);
    sign_into(key, header_b64, claims, &mut jws)?;
    Ok(jws)
}

/// Appends the compact JWS of `claims` to `out`.
fn sign_into(
    key: &dyn Es256,
    header_b64: &str,
    claims: &Claims,
    out: &mut String,
) -> Result<(), SignError> {
    let from = out.len();
    out.push_str(header_b64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json(claims), out);
    let sig = key.sign(out.get(from..).unwrap_or_default().as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, out);
    Ok(())
}

/// Signs `claims` and returns the full-form Identity header value (RFC
/// 8224 §4.1, RFC 8588), `h.p.s;info=<x5u>;alg=ES256;ppt=shaken`, built in
/// one buffer.
pub fn sign_identity(
    key: &dyn Es256,
    header_b64: &str,
    claims: &Claims,
    x5u: &str,
) -> Result<String, SignError> {
    let mut out = String::with_capacity(header_b64.len() + 420 + x5u.len());
    sign_into(key, header_b64, claims, &mut out)?;
    push_identity_params(&mut out, x5u);
    Ok(out)
}

fn push_identity_params(out: &mut String, x5u: &str) {
    out.push_str(";info=<");
    out.push_str(x5u);
    out.push_str(">;alg=ES256;ppt=shaken");
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;
    use p256::pkcs8::DecodePrivateKey;

    fn claims() -> Claims {
        Claims {
            attest: Attest::A,
            dest_tns: vec!["12355551212".into()],
            iat: 1_767_225_600,
            orig_tn: "12155551212".into(),
            origid: "123e4567-e89b-12d3-a456-426655440000".into(),
        }
    }

    #[test]
    fn canonical_json_has_sorted_keys_and_no_whitespace() {
        assert_eq!(
            claims_json(&claims()),
            r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":1767225600,"orig":{"tn":"12155551212"},"origid":"123e4567-e89b-12d3-a456-426655440000"}"#
        );
        let h = URL_SAFE_NO_PAD
            .decode(header_b64("http://127.0.0.1:8787/certs/sp.pem"))
            .unwrap();
        assert_eq!(
            String::from_utf8(h).unwrap(),
            r#"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"http://127.0.0.1:8787/certs/sp.pem"}"#
        );
    }

    #[test]
    fn signatures_verify_over_the_exact_bytes() {
        let key =
            SigningKey::from_pkcs8_pem(include_str!("../../tests/fixtures/stir/keys/sp-key.pem"))
                .unwrap();
        let x5u = "http://127.0.0.1:8787/certs/sp.pem";
        let jws = sign(&key, &header_b64(x5u), &claims()).unwrap();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        VerifyingKey::from(&key)
            .verify(input.as_bytes(), &sig)
            .unwrap();
        // RFC 6979: the same claims give the same token.
        assert_eq!(jws, sign(&key, &header_b64(x5u), &claims()).unwrap());
        // The Identity value is the same token with its parameters.
        let id = sign_identity(&key, &header_b64(x5u), &claims(), x5u).unwrap();
        assert_eq!(
            id,
            format!("{jws};info=<http://127.0.0.1:8787/certs/sp.pem>;alg=ES256;ppt=shaken")
        );
        assert_eq!(id.matches('.').count(), 2 + x5u.matches('.').count());
    }

    #[test]
    fn tn_and_attest_rules() {
        assert!(valid_tn("12155551212"));
        assert!(!valid_tn("+12155551212"));
        assert!(!valid_tn(""));
        assert!(!valid_tn("1234567890123456"));
        assert_eq!(Attest::parse("B"), Some(Attest::B));
        assert_eq!(Attest::parse("D"), None);
    }
}
