//! STI-VS, the pure part: the Identity header and its PASSporT checked in
//! the order of ATIS-1000082's error cases (E3–E16, E19), every failure
//! mapped to the seed's reason code, reason text and verstat. What needs
//! the network or a trust store (E8 fetch, E17 chain, E18 signature) is the
//! caller's, with the pieces this module hands over; E1/E2 (the request's
//! own fields) are checked where the request is parsed.
//!
//! The signature is verified over the bytes received, never over a
//! re-serialization (RFC 8225 §9 binds signers, not verifiers).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// Longest Identity value accepted (as SIP stacks bound it).
pub const MAX_IDENTITY_BYTES: usize = 8192;

/// An error case of the verification table (ATIS-1000082 / the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ECase {
    E3,
    E4,
    E5,
    E6,
    E7,
    E8,
    E9,
    E10,
    E11,
    E12,
    E13,
    E14,
    E15,
    E16,
    E17,
    E18,
    E19,
}

/// `verstat` values (3GPP TS 24.229).
pub const PASSED: &str = "TN-Validation-Passed";
pub const FAILED: &str = "TN-Validation-Failed";
pub const NO_VALIDATION: &str = "No-TN-Validation";

impl ECase {
    /// The SIP reason code (RFC 8224 §6.2.2).
    pub fn reason_code(self) -> u16 {
        use ECase::*;
        match self {
            E3 | E15 => 403,
            E6 | E7 | E8 | E9 | E10 => 436,
            E11 | E12 | E17 => 437,
            E4 | E5 | E13 | E14 | E16 | E18 | E19 => 438,
        }
    }

    /// The reason phrase (RFC 8224 §6.2.2, as the seed's example response).
    pub fn reason_text(self) -> &'static str {
        match self.reason_code() {
            403 => "Stale Date",
            436 => "Bad Identity Info",
            437 => "Unsupported Credential",
            _ => "Invalid Identity Header",
        }
    }

    /// Only a failed chain of trust or signature is a failed validation;
    /// everything else reached no outcome.
    pub fn verstat(self) -> &'static str {
        match self {
            ECase::E17 | ECase::E18 => FAILED,
            _ => NO_VALIDATION,
        }
    }
}

/// A verification that did not pass: the case and its `reasondesc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub case: ECase,
    pub desc: String,
}

fn reject(case: ECase, desc: impl Into<String>) -> Reject {
    Reject {
        case,
        desc: desc.into(),
    }
}

/// The request fields the checks use (already validated: E1/E2).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub from_tn: &'a str,
    pub to_tns: &'a [String],
    pub time: u64,
    pub identity: &'a str,
}

/// What passed the checks and is left for the caller: fetch `x5u` (E8),
/// check its chain at `iat` (E17), verify `signature` over
/// `signing_input` with its key (E18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<'a> {
    pub x5u: &'a str,
    pub signing_input: &'a str,
    /// The decoded signature; None when it is not base64url (an E18).
    pub signature: Option<Vec<u8>>,
    pub iat: u64,
    pub attest: String,
}

/// An absolute http(s) URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl<'a> {
    pub https: bool,
    pub host: &'a str,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: &'a str,
}

/// Parses an absolute `http://` or `https://` URL with a host, refusing
/// userinfo and fragments (an x5u is attacker-chosen: nothing clever).
pub fn parse_url(url: &str) -> Option<HttpUrl<'_>> {
    let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
        (true, r)
    } else {
        (false, strip_prefix_ci(url, "http://")?)
    };
    if url.bytes().any(|b| b <= b' ' || b == b'#' || b >= 0x7f) {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some(HttpUrl {
        https,
        host,
        port,
        path,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Runs checks 3–16 of the verification order (research §1.10) on a
/// request whose fields are valid. `x5u_allowed` is the scheme/host policy
/// (an `info` it refuses is an invalid URI, E7).
pub fn check<'a>(
    req: &Request<'a>,
    now: u64,
    window: u64,
    x5u_allowed: impl Fn(&HttpUrl<'_>) -> bool,
) -> Result<Checked<'a>, Reject> {
    // E3: the request's own time against the verifier's clock.
    if req.time.abs_diff(now) > window {
        return Err(reject(ECase::E3, "Received 'iat' value is not fresh"));
    }
    let identity = req.identity.trim();
    if identity.len() > MAX_IDENTITY_BYTES {
        return Err(reject(ECase::E4, "Identity header longer than 8192 bytes"));
    }
    let (jws, params) = identity.split_once(';').unwrap_or((identity, ""));
    let jws = jws.trim();
    // E4: the full form, three non-empty segments.
    let mut segments = jws.split('.');
    let (Some(h), Some(p), Some(s), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(reject(
            ECase::E4,
            "Identity header in compact form instead of required by SHAKEN spec full form",
        ));
    };
    // (An empty signature is not the compact form: it fails later, as E12
    // for alg "none" or as E18.)
    if h.is_empty() || p.is_empty() {
        return Err(reject(
            ECase::E4,
            "Identity header in compact form instead of required by SHAKEN spec full form",
        ));
    }
    let params = parse_params(params)?;
    // E5: ppt=shaken (quoted accepted, as deployed stacks send it).
    match params.get("ppt") {
        Some(v) if unquote(v) == "shaken" => {}
        _ => {
            return Err(reject(
                ECase::E5,
                "Identity header is received with 'ppt' parameter value that is not 'shaken'",
            ))
        }
    }
    if let Some(alg) = params.get("alg") {
        if unquote(alg) != "ES256" {
            return Err(reject(
                ECase::E12,
                "'alg' parameter of the identity is not 'ES256'",
            ));
        }
    }
    // E6/E7: info = <absoluteURI>, and a URL the policy lets us fetch.
    let info = params
        .get("info")
        .ok_or_else(|| reject(ECase::E6, "Missing 'info' parameter in the 'identity'"))?;
    let info = info
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .ok_or_else(|| reject(ECase::E7, "Invalid 'info' URI"))?;
    let url = parse_url(info).ok_or_else(|| reject(ECase::E7, "Invalid 'info' URI"))?;
    if !x5u_allowed(&url) {
        return Err(reject(
            ECase::E7,
            "Invalid 'info' URI: scheme or host not allowed",
        ));
    }
    let header = decode_json(h).ok_or_else(|| {
        reject(
            ECase::E4,
            "PASSporT header is not base64url-encoded JSON object",
        )
    })?;
    let payload = decode_json(p).ok_or_else(|| {
        reject(
            ECase::E4,
            "PASSporT payload is not base64url-encoded JSON object",
        )
    })?;
    // E9: the four header claims.
    for claim in ["ppt", "typ", "alg", "x5u"] {
        if header.get(claim).is_none() {
            return Err(reject(
                ECase::E9,
                format!("Missing '{claim}' claim in the PASSporT header"),
            ));
        }
    }
    if header.get("x5u").and_then(Value::as_str) != Some(info) {
        return Err(reject(
            ECase::E10,
            "'x5u' from PASSporT header doesn't match the 'info' parameter of identity header value",
        ));
    }
    if header.get("typ").and_then(Value::as_str) != Some("passport") {
        return Err(reject(
            ECase::E11,
            "'typ' from PASSporT header is not 'passport'",
        ));
    }
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(reject(
            ECase::E12,
            "'alg' from PASSporT header is not 'ES256'",
        ));
    }
    if header.get("ppt").and_then(Value::as_str) != Some("shaken") {
        return Err(reject(
            ECase::E13,
            "'ppt' from PASSporT header is not 'shaken'",
        ));
    }
    // E14: the five payload claims (an iat that is not a NumericDate is
    // as good as missing).
    for claim in ["dest", "orig", "attest", "origid", "iat"] {
        let present = match claim {
            "iat" => payload.get("iat").is_some_and(Value::is_u64),
            c => payload.get(c).is_some_and(|v| !v.is_null()),
        };
        if !present {
            return Err(reject(
                ECase::E14,
                format!("Missing '{claim}' mandatory claim in PASSporT payload"),
            ));
        }
    }
    let attest = payload.get("attest").and_then(Value::as_str).unwrap_or("");
    if !matches!(attest, "A" | "B" | "C") {
        return Err(reject(
            ECase::E19,
            "'attest' claim in PASSporT payload is not valid",
        ));
    }
    let iat = payload.get("iat").and_then(Value::as_u64).unwrap_or(0);
    if iat.abs_diff(req.time) > window {
        return Err(reject(
            ECase::E15,
            "'iat' from PASSporT payload is not fresh",
        ));
    }
    // E16: orig is the caller, dest covers every called number.
    let orig_tn = payload.get("orig").and_then(|o| o.get("tn"));
    if orig_tn.and_then(Value::as_str) != Some(req.from_tn) {
        return Err(reject(
            ECase::E16,
            "'orig' claim from PASSporT payload doesn't match the received in the verification request claim",
        ));
    }
    let dest: Vec<&str> = payload
        .get("dest")
        .and_then(|d| d.get("tn"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if req.to_tns.is_empty() || !req.to_tns.iter().all(|t| dest.contains(&t.as_str())) {
        return Err(reject(
            ECase::E16,
            "'dest' claim from PASSporT payload doesn't match the received in the verification request claim",
        ));
    }
    let signing_input = &jws[..h.len() + 1 + p.len()];
    Ok(Checked {
        x5u: info,
        signing_input,
        signature: URL_SAFE_NO_PAD.decode(s).ok(),
        iat,
        attest: attest.to_owned(),
    })
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// The Identity parameters, names in lower case; a repeated one is
/// refused.
fn parse_params(params: &str) -> Result<std::collections::BTreeMap<String, &str>, Reject> {
    let mut out = std::collections::BTreeMap::new();
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let name = name.trim().to_ascii_lowercase();
        if out.insert(name.clone(), value.trim()).is_some() {
            return Err(reject(
                ECase::E4,
                format!("Identity header repeats the '{name}' parameter"),
            ));
        }
    }
    Ok(out)
}

fn decode_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.is_object().then_some(v)
}

/// The service provider code of a TNAuthList extension value (RFC 8226,
/// EXPLICIT tags): `SEQUENCE { [0] { IA5String } }`. SHAKEN wants exactly
/// one entry, an SPC of upper-case letters and digits (ATIS-1000080).
pub fn tn_auth_list_spc(der: &[u8]) -> Option<String> {
    let (seq, rest) = der_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (entry, more) = der_tlv(seq, 0xa0)?;
    if !more.is_empty() {
        return None;
    }
    let (spc, tail) = der_tlv(entry, 0x16)?;
    if !tail.is_empty() || spc.is_empty() {
        return None;
    }
    spc.iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        .then(|| String::from_utf8_lossy(spc).into_owned())
}

/// One DER TLV with tag `tag` at the start of `data`: (value, rest).
fn der_tlv(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = data.split_first()?;
    if t != tag {
        return None;
    }
    let (&l, rest) = rest.split_first()?;
    let (len, rest) = match l {
        l if l < 0x80 => (usize::from(l), rest),
        0x81 => {
            let (&b, r) = rest.split_first()?;
            (usize::from(b), r)
        }
        0x82 => {
            let (b, r) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*b)), r)
        }
        _ => return None,
    };
    Some((rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    const X5U: &str = "https://cr.example.net/sp.pem";

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64(&"s".repeat(64)))
    }

    fn good_header() -> String {
        format!(r#"{{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"{X5U}"}}"#)
    }

    const PAYLOAD: &str = r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":1000,"orig":{"tn":"12155551212"},"origid":"u"}"#;

    fn run(identity: &str, time: u64, now: u64) -> Result<Checked<'_>, Reject> {
        static TO: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let to = TO.get_or_init(|| vec!["12355551212".to_owned()]);
        check(
            &Request {
                from_tn: "12155551212",
                to_tns: to,
                time,
                identity,
            },
            now,
            60,
            |u| u.https,
        )
    }

    fn case(identity: &str) -> Option<ECase> {
        run(identity, 1000, 1005).err().map(|r| r.case)
    }

    #[test]
    fn a_good_identity_passes_and_hands_over_the_received_bytes() {
        let jws = token(&good_header(), PAYLOAD);
        let id = format!("{jws};info=<{X5U}>;alg=ES256;ppt=shaken");
        let c = run(&id, 1000, 1005).unwrap();
        assert_eq!(c.x5u, X5U);
        assert_eq!(c.signing_input, &jws[..jws.rfind('.').unwrap()]);
        assert_eq!(c.signature.as_deref(), Some("s".repeat(64).as_bytes()));
        assert_eq!((c.iat, c.attest.as_str()), (1000, "A"));
        // Parameters in any order, quoted ppt, spaces around ';'.
        let id = format!("{jws} ; ppt=\"shaken\" ;info=<{X5U}>");
        assert!(run(&id, 1000, 1005).is_ok());
    }

    #[test]
    fn each_fault_gives_its_case_in_the_documented_order() {
        let jws = token(&good_header(), PAYLOAD);
        let id = |params: &str| format!("{jws};{params}");
        let full = format!("info=<{X5U}>;alg=ES256;ppt=shaken");
        assert_eq!(run(&id(&full), 1000, 2000).unwrap_err().case, ECase::E3);
        assert_eq!(case(&format!("..sig;{full}")), Some(ECase::E4));
        assert_eq!(case(&format!("a.b;{full}")), Some(ECase::E4));
        assert_eq!(case(&id(&format!("info=<{X5U}>;ppt=div"))), Some(ECase::E5));
        assert_eq!(case(&id("alg=ES256;ppt=shaken")), Some(ECase::E6));
        assert_eq!(
            case(&id(&format!("info={X5U};ppt=shaken"))),
            Some(ECase::E7)
        );
        assert_eq!(case(&id("info=<sp.pem>;ppt=shaken")), Some(ECase::E7));
        // The policy refuses http here.
        assert_eq!(
            case(&id("info=<http://cr.example.net/sp.pem>;ppt=shaken")),
            Some(ECase::E7)
        );
        assert_eq!(case(&id(&format!("{full};ppt=shaken"))), Some(ECase::E4));
        let with_header = |h: &str| format!("{};{full}", token(h, PAYLOAD));
        assert_eq!(
            case(&with_header(&format!(
                r#"{{"alg":"ES256","typ":"passport","x5u":"{X5U}"}}"#
            ))),
            Some(ECase::E9)
        );
        assert_eq!(
            case(&with_header(
                r#"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://other/x.pem"}"#
            )),
            Some(ECase::E10)
        );
        assert_eq!(
            case(&with_header(&format!(
                r#"{{"alg":"ES256","ppt":"shaken","typ":"JWT","x5u":"{X5U}"}}"#
            ))),
            Some(ECase::E11)
        );
        assert_eq!(
            case(&with_header(&format!(
                r#"{{"alg":"none","ppt":"shaken","typ":"passport","x5u":"{X5U}"}}"#
            ))),
            Some(ECase::E12)
        );
        assert_eq!(
            case(&with_header(&format!(
                r#"{{"alg":"ES256","ppt":"div","typ":"passport","x5u":"{X5U}"}}"#
            ))),
            Some(ECase::E13)
        );
        let with_payload = |p: &str| format!("{};{full}", token(&good_header(), p));
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":1000,"orig":{"tn":"12155551212"}}"#
            )),
            Some(ECase::E14)
        );
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":"1000","orig":{"tn":"12155551212"},"origid":"u"}"#
            )),
            Some(ECase::E14)
        );
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"a","dest":{"tn":["12355551212"]},"iat":1000,"orig":{"tn":"12155551212"},"origid":"u"}"#
            )),
            Some(ECase::E19)
        );
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":4600,"orig":{"tn":"12155551212"},"origid":"u"}"#
            )),
            Some(ECase::E15)
        );
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"A","dest":{"tn":["12355551212"]},"iat":1000,"orig":{"tn":"19995551212"},"origid":"u"}"#
            )),
            Some(ECase::E16)
        );
        assert_eq!(
            case(&with_payload(
                r#"{"attest":"A","dest":{"tn":["19995551212"]},"iat":1000,"orig":{"tn":"12155551212"},"origid":"u"}"#
            )),
            Some(ECase::E16)
        );
    }

    #[test]
    fn reason_codes_texts_and_verstat_follow_the_table() {
        assert_eq!(
            (ECase::E3.reason_code(), ECase::E3.reason_text()),
            (403, "Stale Date")
        );
        assert_eq!(ECase::E7.reason_text(), "Bad Identity Info");
        assert_eq!(ECase::E12.reason_text(), "Unsupported Credential");
        assert_eq!(ECase::E19.reason_code(), 438);
        assert_eq!(ECase::E17.verstat(), FAILED);
        assert_eq!(ECase::E18.verstat(), FAILED);
        assert_eq!(ECase::E16.verstat(), NO_VALIDATION);
    }

    #[test]
    fn urls_are_parsed_strictly() {
        let u = parse_url("https://cr.example.net:8443/a/b.pem?x=1").unwrap();
        assert_eq!(
            (u.https, u.host, u.port, u.path),
            (true, "cr.example.net", 8443, "/a/b.pem?x=1")
        );
        let u = parse_url("http://127.0.0.1:8787/certs/sp.pem").unwrap();
        assert_eq!((u.https, u.port), (false, 8787));
        assert_eq!(parse_url("HTTP://[::1]/x").unwrap().host, "::1");
        for bad in [
            "ftp://x/y",
            "https://",
            "https://u@h/x",
            "https://h/x#f",
            "https://h:0/",
            "https://h:99999/",
            "https://h/ x",
            "/rel",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn tn_auth_list_is_read_with_explicit_tags() {
        assert_eq!(
            tn_auth_list_spc(&[0x30, 0x08, 0xa0, 0x06, 0x16, 0x04, b'1', b'2', b'3', b'4'])
                .as_deref(),
            Some("1234")
        );
        // Implicit tagging, lower case, two entries, trailing bytes: refused.
        assert_eq!(
            tn_auth_list_spc(&[0x30, 0x06, 0x80, 0x04, b'1', b'2', b'3', b'4']),
            None
        );
        assert_eq!(
            tn_auth_list_spc(&[0x30, 0x05, 0xa0, 0x03, 0x16, 0x01, b'a']),
            None
        );
        assert_eq!(
            tn_auth_list_spc(&[
                0x30, 0x0a, 0xa0, 0x03, 0x16, 0x01, b'1', 0xa0, 0x03, 0x16, 0x01, b'2'
            ]),
            None
        );
        assert_eq!(
            tn_auth_list_spc(&[0x30, 0x05, 0xa0, 0x03, 0x16, 0x01, b'1', 0]),
            None
        );
        for n in 0..10 {
            let _ = tn_auth_list_spc(
                &[0x30, 0x08, 0xa0, 0x06, 0x16, 0x04, b'1', b'2', b'3', b'4'][..n],
            );
        }
    }

    proptest::proptest! {
        /// Whatever the Identity value, the checks answer and never panic;
        /// a token cut anywhere never passes as the whole one does.
        #[test]
        fn any_identity_gets_an_answer(
            id in "[ -~]{0,300}",
            cut in 0usize..400,
        ) {
            let _ = run(&id, 1000, 1005);
            let jws = token(&good_header(), PAYLOAD);
            let whole = format!("{jws};info=<{X5U}>;alg=ES256;ppt=shaken");
            let cut = cut.min(whole.len());
            if let Some(prefix) = whole.get(..cut) {
                if let Ok(c) = run(prefix, 1000, 1005) {
                    // Only a cut in the trailing parameters can still pass.
                    proptest::prop_assert!(prefix.len() >= jws.len());
                    proptest::prop_assert_eq!(c.x5u, X5U);
                }
            }
        }

        #[test]
        fn any_der_gets_an_answer(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = tn_auth_list_spc(&bytes);
        }
    }
}
