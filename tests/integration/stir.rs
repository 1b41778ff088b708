//! STIR/SHAKEN STI-AS signing through the real server: every signing case
//! of the REST fixtures, and every token verified by an independent
//! implementation (tests/tools/passport_check.py, Python `cryptography`).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::{temp_dir, Server};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stir");
const X5U: &str = "http://127.0.0.1:8787/certs/sp.pem";

fn start() -> Server {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> Server {
    let dir = temp_dir("stir-config");
    let config = dir.join("authplane.toml");
    std::fs::write(
        &config,
        format!(
            "[stir]\ndefault_attest = \"B\"\n\n[[stir.attestation]]\nprefix = \"1215\"\nattest = \"A\"\n\n\
             [[stir.credentials]]\nkey = \"{FIXTURES}/keys/sp-key.pem\"\nx5u = \"{X5U}\"\n"
        ),
    )
    .unwrap();
    Server::start(&["--config", config.to_str().unwrap()], env)
}

/// Verifies identities independently; returns (header, claims) of each.
fn verify(identities: &[String]) -> Vec<(Value, Value)> {
    verify_with("certs/sp.pem", identities)
}

/// Verifies identities independently with the certificate `cert` (a
/// fixture path).
fn verify_with(cert: &str, identities: &[String]) -> Vec<(Value, Value)> {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/passport_check.py"
        ))
        .arg(format!("{FIXTURES}/{cert}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in identities {
        writeln!(stdin, "{i}").unwrap();
    }
    drop(stdin);
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), identities.len(), "{out}");
    lines
        .iter()
        .map(|l| {
            let rest = l
                .strip_prefix("ok ")
                .unwrap_or_else(|| panic!("independent verification: {l}"));
            let mut de = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            (de.next().unwrap().unwrap(), de.next().unwrap().unwrap())
        })
        .collect()
}

/// Sends one REST case; returns the response.
fn send(s: &Server, case: &Value) -> crate::harness::Response {
    let method = case["method"].as_str().unwrap();
    let path = case["path"].as_str().unwrap();
    let body = match &case["body"] {
        Value::Null => None,
        Value::String(text) if text == "<any good case>" => {
            let cases: Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{FIXTURES}/passports.json")).unwrap(),
            )
            .unwrap();
            Some(cases["cases"][0]["verification_request"].to_string())
        }
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n");
    let mut chunked = false;
    for (k, v) in case["headers"].as_object().unwrap() {
        chunked |= k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap()));
    }
    let mut raw = head.into_bytes();
    match (body, chunked) {
        (Some(b), true) => {
            raw.extend_from_slice(format!("\r\n{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).as_bytes());
        }
        (Some(b), false) => {
            raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n{b}", b.len()).as_bytes())
        }
        (None, _) => raw.extend_from_slice(b"\r\n"),
    }
    let mut c = s.connect();
    c.send(&raw);
    c.response()
}

#[test]
fn every_rest_case_of_both_endpoints() {
    let s = start();
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/rest_cases.json")).unwrap(),
    )
    .unwrap();
    let mut identities = Vec::new();
    let mut checked = 0;
    for case in cases["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let expect = &case["expect"];
        let r = send(&s, case);
        assert_eq!(
            r.status,
            expect["http_status"].as_u64().unwrap() as u16,
            "{id}: {}",
            r.text()
        );
        if r.status != 405 {
            assert!(
                r.header("x-requestid").is_some_and(|v| !v.is_empty()),
                "{id}: no X-RequestID"
            );
        }
        if let Some(mid) = expect["message_id"].as_str() {
            let e = &r.json()["requestError"];
            let exc = if mid.starts_with("POL") {
                &e["policyException"]
            } else {
                &e["serviceException"]
            };
            assert_eq!(exc["messageId"], mid, "{id}: {}", r.text());
            if let Some(vars) = expect.get("variables") {
                assert_eq!(&exc["variables"], vars, "{id}");
            }
        }
        if r.status == 200 && case["path"].as_str().unwrap().ends_with("/verification") {
            assert!(
                r.json()["verificationResponse"]["verstat"].is_string(),
                "{id}"
            );
        } else if r.status == 200 {
            identities.push((id.to_owned(), case.clone(), r.identity()));
        }
        checked += 1;
    }
    assert_eq!(checked, 15, "every REST case");
    assert_eq!(identities.len(), 3);
    let verified = verify(
        &identities
            .iter()
            .map(|(_, _, i)| i.clone())
            .collect::<Vec<_>>(),
    );
    for ((id, case, _), (header, claims)) in identities.iter().zip(verified) {
        let req = &case["body"]["signingRequest"];
        assert_eq!(header["x5u"], X5U, "{id}");
        assert_eq!(claims["iat"], req["iat"], "{id}: iat echoed");
        assert_eq!(claims["orig"], req["orig"], "{id}");
        assert_eq!(claims["dest"], req["dest"], "{id}");
        match req.get("attest") {
            Some(a) => assert_eq!(&claims["attest"], a, "{id}"),
            // No attest in the request: the per-TN table (prefix 1215 → A).
            None => assert_eq!(claims["attest"], "A", "{id}"),
        }
        let origid = claims["origid"].as_str().unwrap();
        match req.get("origid") {
            Some(o) => assert_eq!(origid, o.as_str().unwrap(), "{id}"),
            None => assert_eq!(origid.len(), 36, "{id}: generated UUID"),
        }
    }
}

#[test]
fn request_ids_are_echoed_and_attestation_defaults_apply() {
    let s = start();
    let body = json!({"signingRequest": {"orig": {"tn": "19995551212"}, "dest": {"tn": ["12355551212", "12355551213"]}, "iat": 1767225600}}).to_string();
    let mut c = s.connect();
    c.send(
        format!(
            "POST /stir/v1/signing HTTP/1.1\r\nContent-Type: application/json\r\nX-RequestID: 12345678\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-requestid"), Some("12345678"));
    let identity = r.identity();
    let (_, claims) = verify(&[identity]).pop().unwrap();
    // 1999… matches no prefix: the default attestation.
    assert_eq!(claims["attest"], "B");
    assert_eq!(claims["dest"]["tn"], json!(["12355551212", "12355551213"]));
    // An orig TN that is not digits is an invalid value.
    let bad = json!({"signingRequest": {"orig": {"tn": "+1215"}, "dest": {"tn": ["1"]}, "iat": 1}})
        .to_string();
    let r = s.send_json("POST", "/stir/v1/signing", &bad);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["requestError"]["serviceException"]["variables"],
        json!(["orig"])
    );
}

#[test]
fn a_tn_no_credential_covers_is_a_policy_error_not_a_crash() {
    let dir = temp_dir("stir-prefix");
    let config = dir.join("authplane.toml");
    std::fs::write(
        &config,
        format!("[[stir.credentials]]\nkey = \"{FIXTURES}/keys/sp-key.pem\"\nx5u = \"{X5U}\"\ntn_prefixes = [\"44\"]\n"),
    )
    .unwrap();
    let s = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let body = json!({"signingRequest": {"attest": "A", "orig": {"tn": "12155551212"}, "dest": {"tn": ["1"]}, "iat": 1}}).to_string();
    let r = s.send_json("POST", "/stir/v1/signing", &body);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["requestError"]["policyException"]["messageId"],
        "POL5000"
    );
    let ok = json!({"signingRequest": {"attest": "A", "orig": {"tn": "447700900123"}, "dest": {"tn": ["1"]}, "iat": 1}}).to_string();
    assert_eq!(s.send_json("POST", "/stir/v1/signing", &ok).status, 200);
}

#[test]
fn the_ring_and_p256_backends_sign_verifiable_tokens_too() {
    for backend in ["ring", "p256", "aws_lc"] {
        let s = start_with(&[("AUTHPLANE_STIR__BACKEND", backend)]);
        let body = json!({"signingRequest": {"attest": "A", "orig": {"tn": "12155551212"}, "dest": {"tn": ["12355551212"]}, "iat": 1767225600}}).to_string();
        let r = s.send_json("POST", "/stir/v1/signing", &body);
        assert_eq!(r.status, 200, "{backend}: {}", r.text());
        let identity = r.identity();
        let (_, claims) = verify(&[identity]).pop().unwrap();
        assert_eq!(claims["attest"], "A", "{backend}");
    }
}

#[test]
fn the_load_generator_verifies_every_signed_token() {
    use authplane_load::engine::run;
    use authplane_load::scenario::{key_of_certificate, Kind};
    let s = start();
    let cert = std::fs::read_to_string(format!("{FIXTURES}/certs/sp.pem")).unwrap();
    let mut plan = crate::harness::short_plan(s.addr, Kind::StirSign);
    plan.scenario.stir_key = Some(key_of_certificate(&cert).unwrap());
    let stats = run(&plan).unwrap();
    assert!(stats.ok > 50, "{stats:?}");
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    // Another certificate's key: every token is a bad signature.
    let mut wrong = plan.clone();
    let other = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    wrong.scenario.stir_key = Some(
        p256::ecdsa::VerifyingKey::from(&other)
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    );
    let bad = run(&wrong).unwrap();
    assert_eq!(bad.ok, 0);
    assert!(
        bad.errors.get("bad_signature").copied().unwrap_or(0) > 50,
        "{:?}",
        bad.errors
    );
}

#[test]
fn without_a_credential_a_development_certificate_signs_out_of_the_box() {
    let s = Server::start(&[], &[]);
    let body = json!({"signingRequest": {"attest": "A", "orig": {"tn": "12155551212"}, "dest": {"tn": ["1"]}, "iat": 1}}).to_string();
    let r = s.send_json("POST", "/stir/v1/signing", &body);
    let identity = r.identity();
    // x5u names the configured listen address (port 0 in tests) and the
    // path this server serves the certificate at.
    let x5u = format!("http://127.0.0.1:0{}", "/stir/v1/certs/dev.pem");
    assert!(identity.contains(&format!("info=<{x5u}>")), "{identity}");
    let cert = s.get("/stir/v1/certs/dev.pem");
    assert_eq!(cert.status, 200);
    let cert_path = s.data_dir.join("served-dev-cert.pem");
    std::fs::write(&cert_path, &cert.body).unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/passport_check.py"
        ))
        .arg(&cert_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            writeln!(c.stdin.take().unwrap(), "{identity}")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(s.logs().iter().any(|l| l.contains("DEVELOPMENT key")));
    // The key is the owner's alone, and survives a restart.
    let key = s.data_dir.join("stir-dev/dev-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&key).unwrap();
    let dir = s.kill();
    let s = Server::start_in(dir, &[], &[]);
    assert_eq!(
        std::fs::read(s.data_dir.join("stir-dev/dev-key.pem")).unwrap(),
        before
    );
}

#[test]
fn sighup_rotates_the_signing_key_without_a_restart_and_a_bad_reload_keeps_the_old_one() {
    let dir = temp_dir("stir-rotate");
    let config = dir.join("authplane.toml");
    let write = |key: &str, x5u: &str| {
        std::fs::write(
            &config,
            format!("[[stir.credentials]]\nkey = \"{FIXTURES}/{key}\"\nx5u = \"{x5u}\"\n"),
        )
        .unwrap();
    };
    write("keys/sp-key.pem", X5U);
    let s = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let sign = || {
        let r = s.send_json(
            "POST",
            "/stir/v1/signing",
            r#"{"signingRequest":{"attest":"A","orig":{"tn":"12155551212"},"dest":{"tn":["12355551212"]},"iat":1767225600}}"#,
        );
        r.identity()
    };
    assert!(sign().contains(&format!("info=<{X5U}>")));
    // A new key and certificate URL, then SIGHUP.
    let new_x5u = "http://127.0.0.1:8787/certs/untrusted-sp.pem";
    write("keys/untrusted-sp-key.pem", new_x5u);
    s.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rotated = loop {
        let id = sign();
        if id.contains(new_x5u) {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "not rotated");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Signed by the new key: checked independently with its certificate.
    let (header, _) = &verify_with("certs/untrusted-sp.pem", &[rotated])[0];
    assert_eq!(header["x5u"], new_x5u);
    // A reload that cannot load (missing key) changes nothing.
    write("keys/no-such-key.pem", X5U);
    s.signal("HUP");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(sign().contains(new_x5u));
    assert_eq!(s.get("/oam/ping").status, 200);
}
