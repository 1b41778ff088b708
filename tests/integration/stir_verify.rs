//! STI-VS through the real server: every labelled case of the fixture PKI
//! (tests/fixtures/stir/passports.json), with the fixture folder served
//! over real HTTP by a file server in the test (an ephemeral port; the
//! server's fetch-only rewrite maps the tokens' fixed x5u base to it), the
//! fixtures' fixed clock, sign-then-verify round trips, one fetch for a
//! burst, and the trusted-hosts rule.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{temp_dir, Client, Server};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stir");
/// The verifier's clock of every fixture case (iat + 5).
const NOW: u64 = 1_767_225_605;

/// Serves the fixture folder over HTTP/1.1 (one request per connection),
/// counting requests per path; `delay` holds every answer back.
pub struct FileServer {
    pub addr: SocketAddr,
    hits: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileServer {
    pub fn start(delay: Duration) -> FileServer {
        FileServer::start_tls(delay, None)
    }

    /// Over TLS with `tls`'s certificate when given.
    pub fn start_tls(delay: Duration, tls: Option<Arc<rustls::ServerConfig>>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let h = h.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let stream: Box<dyn ReadWrite> = match tls {
                        Some(cfg) => Box::new(rustls::StreamOwned::new(
                            rustls::ServerConnection::new(cfg).unwrap(),
                            stream,
                        )),
                        None => Box::new(stream),
                    };
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    loop {
                        let mut l = String::new();
                        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                            break;
                        }
                    }
                    h.lock().unwrap().push(path.clone());
                    std::thread::sleep(delay);
                    let file = std::path::Path::new(FIXTURES).join(path.trim_start_matches('/'));
                    let mut stream = reader.into_inner();
                    let _ = match std::fs::read(&file).ok().filter(|_| !path.contains("..")) {
                        Some(body) => stream
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-pem-file\r\nContent-Length: {}\r\nCache-Control: max-age=3600\r\nConnection: close\r\n\r\n",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .and_then(|()| stream.write_all(&body)),
                        None => stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        ),
                    };
                    let _ = stream.flush();
                    let _ = stream.read(&mut [0u8; 1]);
                });
            }
        });
        FileServer { addr, hits }
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn config(files: &FileServer, extra: &str) -> String {
    config_at(files, extra, NOW)
}

fn config_at(files: &FileServer, extra: &str, now: u64) -> String {
    let dir = temp_dir("stir-vs");
    let path = dir.join("authplane.toml");
    std::fs::write(
        &path,
        format!(
            "[stir]\ntrust_roots = \"{FIXTURES}/trust/sti-ca-roots.pem\"\nintermediates = \"{FIXTURES}/trust/intermediates.pem\"\ncrls = [\"{FIXTURES}/crl/intermediate.crl\"]\n\
             freshness_s = 60\nallow_http_x5u = true\nfixed_now = {now}\n{extra}\n\
             [[stir.x5u_rewrite]]\nfrom = \"http://127.0.0.1:8787/\"\nto = \"http://{}/\"\n\n\
             [[stir.credentials]]\nkey = \"{FIXTURES}/keys/sp-key.pem\"\nx5u = \"http://127.0.0.1:8787/certs/sp.pem\"\n",
            files.addr
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn verify_at(addr: SocketAddr, body: &str) -> (u16, Value) {
    let mut c = Client::connect(addr);
    c.send(
        format!(
            "POST /stir/v1/verification HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.response();
    assert!(r.header("x-requestid").is_some(), "no X-RequestID");
    (r.status, r.json())
}

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/passports.json")).unwrap(),
    )
    .unwrap();
    v["cases"].as_array().unwrap().clone()
}

#[test]
fn every_labelled_passport_gets_its_e_case() {
    let files = FileServer::start(Duration::ZERO);
    let s = Server::start(&["--cores", "2", "--config", &config(&files, "")], &[]);
    let all = cases();
    assert_eq!(all.len(), 53);
    let mut by_case = std::collections::BTreeMap::<String, usize>::new();
    let mut others = Vec::new();
    for case in &all {
        let id = case["id"].as_str().unwrap();
        // Each case names the verifier's clock; all but the seed's own
        // example share one.
        let now = case["now"].as_u64().unwrap();
        let other;
        let s = if now == NOW {
            &s
        } else {
            other = Server::start(&["--config", &config_at(&files, "", now)], &[]);
            others.push(id.to_owned());
            &other
        };
        let expect = &case["expect"];
        let (status, body) = verify_at(s.addr, &case["verification_request"].to_string());
        assert_eq!(
            status as u64,
            expect["http_status"].as_u64().unwrap(),
            "{id}: {body}"
        );
        if status == 400 {
            let e = &body["requestError"]["serviceException"];
            assert_eq!(e["messageId"], expect["message_id"], "{id}: {body}");
            assert_eq!(e["variables"], expect["variables"], "{id}: {body}");
        } else {
            let v = &body["verificationResponse"];
            assert_eq!(v["verstat"], expect["verstat"], "{id}: {body}");
            if let Some(code) = expect.get("reasoncode") {
                assert_eq!(&v["reasoncode"], code, "{id}: {body}");
                assert_eq!(v["reasontext"], expect["reasontext"], "{id}: {body}");
                let desc = v["reasondesc"].as_str().unwrap();
                assert!(
                    desc.starts_with(expect["reasondesc"].as_str().unwrap()),
                    "{id}: {desc}"
                );
            } else if let Some(any) = expect.get("reasoncode_any_of") {
                assert!(
                    any.as_array().unwrap().contains(&v["reasoncode"]),
                    "{id}: {body}"
                );
            } else {
                assert!(v.get("reasoncode").is_none(), "{id}: {body}");
            }
        }
        *by_case
            .entry(case["e_case"].as_str().unwrap_or("good").to_owned())
            .or_default() += 1;
    }
    // Every E-case of the seed is exercised.
    for e in 1..=19 {
        assert!(by_case.contains_key(&format!("E{e}")), "no E{e} case");
    }
    assert_eq!(others, ["seed-example-malformed"]);
    // Cached: the signer's certificate was fetched once for all its cases.
    assert_eq!(files.hits("/certs/sp.pem"), 1);
}

#[test]
fn what_the_server_signs_it_verifies_and_a_burst_makes_one_fetch() {
    // Each answer held back 300 ms: every verification of the burst
    // arrives while the first fetch is in flight.
    let files = FileServer::start(Duration::from_millis(300));
    let s = Server::start(&["--cores", "2", "--config", &config(&files, "")], &[]);
    let signed = s.send_json(
        "POST",
        "/stir/v1/signing",
        r#"{"signingRequest":{"attest":"A","orig":{"tn":"12155551212"},"dest":{"tn":["12355551212","12355550000"]},"iat":1767225600}}"#,
    );
    let identity = signed.identity();
    let body = json!({"verificationRequest": {"from": {"tn": "12155551212"},
        "to": {"tn": ["12355551212"]}, "time": 1_767_225_602u64, "identity": identity}})
    .to_string();
    let passed = AtomicUsize::new(0);
    std::thread::scope(|t| {
        for _ in 0..20 {
            t.spawn(|| {
                let (status, v) = verify_at(s.addr, &body);
                assert_eq!(status, 200);
                assert_eq!(
                    v,
                    json!({"verificationResponse": {"verstat": "TN-Validation-Passed"}})
                );
                passed.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(passed.load(Ordering::Relaxed), 20);
    assert_eq!(files.hits("/certs/sp.pem"), 1, "one fetch for the burst");
    // The signed token, altered by one claim, no longer verifies.
    let mut parts: Vec<String> = identity.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    let body = json!({"verificationRequest": {"from": {"tn": "12155551212"},
        "to": {"tn": ["12355551212"]}, "time": 1_767_225_602u64, "identity": parts.join(".")}})
    .to_string();
    let (_, v) = verify_at(s.addr, &body);
    assert_ne!(
        v["verificationResponse"]["verstat"], "TN-Validation-Passed",
        "{v}"
    );
}

#[test]
fn only_trusted_hosts_may_verify_and_http_x5u_needs_the_lab_switch() {
    let files = FileServer::start(Duration::ZERO);
    let good = cases()[0]["verification_request"].to_string();
    let s = Server::start(
        &[
            "--config",
            &config(&files, "trusted_hosts = [\"10.9.9.9\"]"),
        ],
        &[],
    );
    let (status, body) = verify_at(s.addr, &good);
    assert_eq!(status, 403, "{body}");
    assert!(body["requestError"]["policyException"]["messageId"].is_string());
    let s = Server::start(
        &[
            "--config",
            &config(&files, "trusted_hosts = [\"127.0.0.1\"]"),
        ],
        &[],
    );
    assert_eq!(
        verify_at(s.addr, &good).1["verificationResponse"]["verstat"],
        "TN-Validation-Passed"
    );
    // Without allow_http_x5u an http x5u is an invalid info URI (E7), and
    // nothing is fetched.
    let cfg = config(&files, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("allow_http_x5u = true", "allow_http_x5u = false"),
    )
    .unwrap();
    let s = Server::start(&["--config", &cfg], &[]);
    let (_, v) = verify_at(s.addr, &good);
    assert_eq!(v["verificationResponse"]["reasoncode"], 436, "{v}");
    assert_eq!(
        files.hits("/certs/sp.pem"),
        1,
        "only the second server fetched"
    );
}

#[test]
fn an_https_x5u_is_fetched_over_tls_checked_against_the_roots() {
    // A TLS server for "localhost" with its own self-signed certificate.
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![ck.cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into()),
    )
    .unwrap();
    let files = FileServer::start_tls(Duration::ZERO, Some(Arc::new(tls)));
    let dir = temp_dir("stir-tls");
    let roots = dir.join("tls-roots.pem");
    std::fs::write(&roots, ck.cert.pem()).unwrap();
    // The server signs for an https x5u serving leaf + intermediate.
    let x5u = format!("https://localhost:{}/certs/sp-chain.pem", files.addr.port());
    let write = |with_roots: bool| {
        let path = dir.join(format!("tls-{with_roots}.toml"));
        let roots_line = if with_roots {
            format!("x5u_tls_roots = \"{}\"\n", roots.display())
        } else {
            String::new()
        };
        std::fs::write(
            &path,
            format!(
                "[stir]\ntrust_roots = \"{FIXTURES}/trust/sti-ca-roots.pem\"\nallow_http_x5u = true\nfixed_now = {NOW}\n{roots_line}\n\
                 [[stir.credentials]]\nkey = \"{FIXTURES}/keys/sp-key.pem\"\nx5u = \"{x5u}\"\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    };
    let sign_and_verify = |s: &Server| {
        let signed = s.send_json(
            "POST",
            "/stir/v1/signing",
            r#"{"signingRequest":{"attest":"B","orig":{"tn":"12155551212"},"dest":{"tn":["12355551212"]},"iat":1767225600}}"#,
        );
        let identity = signed.identity();
        assert!(identity.contains(&format!("info=<{x5u}>")));
        let body = json!({"verificationRequest": {"from": {"tn": "12155551212"},
            "to": {"tn": ["12355551212"]}, "time": 1_767_225_602u64, "identity": identity}})
        .to_string();
        verify_at(s.addr, &body).1
    };
    let s = Server::start(&["--config", &write(true)], &[]);
    assert_eq!(
        sign_and_verify(&s),
        json!({"verificationResponse": {"verstat": "TN-Validation-Passed"}})
    );
    assert_eq!(files.hits("/certs/sp-chain.pem"), 1);
    // Without the lab root the TLS server is not trusted: E8.
    let s = Server::start(&["--config", &write(false)], &[]);
    let v = sign_and_verify(&s);
    assert_eq!(v["verificationResponse"]["reasoncode"], 436, "{v}");
    assert!(
        v["verificationResponse"]["reasondesc"]
            .as_str()
            .unwrap()
            .contains("TLS"),
        "{v}"
    );
}

#[test]
fn crls_fetched_from_the_distribution_point_revoke_and_are_cached() {
    let files = FileServer::start(Duration::ZERO);
    let cfg = config(&files, "crl_fetch = true");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // No CRL file: only the distribution point tells.
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("crls ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&cfg, text).unwrap();
    let s = Server::start(&["--cores", "2", "--config", &cfg], &[]);
    let all = cases();
    let case =
        |id: &str| all.iter().find(|c| c["id"] == id).unwrap()["verification_request"].to_string();
    for _ in 0..3 {
        let (_, v) = verify_at(s.addr, &case("e17-revoked-sp"));
        let v = &v["verificationResponse"];
        assert_eq!(v["verstat"], "TN-Validation-Failed", "{v}");
        assert!(v["reasondesc"].as_str().unwrap().contains("revoked"), "{v}");
        let (_, v) = verify_at(s.addr, &case("good-attest-a"));
        assert_eq!(
            v["verificationResponse"]["verstat"], "TN-Validation-Passed",
            "{v}"
        );
    }
    assert_eq!(files.hits("/crl/intermediate.crl"), 1, "the CRL is cached");
}

#[test]
fn the_load_generator_checks_every_verification() {
    use authplane_load::engine::run;
    use authplane_load::scenario::Kind;
    let files = FileServer::start(Duration::ZERO);
    let s = Server::start(&["--config", &config(&files, "")], &[]);
    let plan = |body: String| {
        let mut p = crate::harness::short_plan(s.addr, Kind::StirVerify);
        p.scenario.verify_body = Arc::new(body);
        p
    };
    let all = cases();
    let good = run(&plan(all[0]["verification_request"].to_string())).unwrap();
    assert!(good.ok > 50, "{good:?}");
    assert_eq!(good.error_count(), 0, "{:?}", good.errors);
    // A token that does not pass is an error of the generator's, never
    // throughput.
    let revoked = all.iter().find(|c| c["id"] == "e17-revoked-sp").unwrap();
    let bad = run(&plan(revoked["verification_request"].to_string())).unwrap();
    assert_eq!(bad.ok, 0);
    assert!(
        bad.errors.get("not_passed").copied().unwrap_or(0) > 50,
        "{:?}",
        bad.errors
    );
}
