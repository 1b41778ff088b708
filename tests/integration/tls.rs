//! HTTPS listeners through the real binary: a test PKI made by the
//! `openssl` command (a root, an intermediate, the server's chain, client
//! CAs), and clients independent of the server's rustls: curl, Python's
//! `ssl` (OpenSSL; tests/tools/tls_probe.py) and raw TCP for what no
//! client would send. The load generator's TLS runs too.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{temp_dir, Client, Server, WAIT};

const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/tls_probe.py");

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key and a certificate signed by `ca` (None: self-signed, a CA).
fn issue(dir: &Path, name: &str, subject: &str, ca: Option<&str>, ext: &str) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    let extfile = format!("{name}.ext");
    std::fs::write(dir.join(&extfile), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-days",
        "30",
        "-out",
        &pem,
        "-extfile",
        &extfile,
        "-set_serial",
    ];
    let serial = format!("{}", 1000 + dir.read_dir().unwrap().count());
    args.push(&serial);
    let (ca_pem, ca_key);
    match ca {
        Some(ca) => {
            ca_pem = format!("{ca}.pem");
            ca_key = format!("{ca}.key");
            args.extend(["-CA", &ca_pem, "-CAkey", &ca_key]);
        }
        None => args.extend(["-key", &key]),
    }
    openssl(dir, &args);
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";
const CLIENT_EXT: &str =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";

/// The test PKI: root → intermediate → server (chain.pem: leaf then
/// intermediate; server.key), a second server certificate (server2) for
/// reloads, a client CA with a client, and another CA with a client.
fn pki() -> PathBuf {
    let dir = temp_dir("pki");
    issue(&dir, "root", "/CN=authplane test root", None, CA_EXT);
    issue(
        &dir,
        "inter",
        "/CN=authplane test intermediate",
        Some("root"),
        CA_EXT,
    );
    for server in ["server", "server2"] {
        issue(&dir, server, "/CN=localhost", Some("inter"), SERVER_EXT);
        let chain = [server, "inter"]
            .map(|n| std::fs::read_to_string(dir.join(format!("{n}.pem"))).unwrap())
            .concat();
        std::fs::write(dir.join(format!("{server}-chain.pem")), chain).unwrap();
    }
    std::fs::copy(dir.join("server-chain.pem"), dir.join("chain.pem")).unwrap();
    std::fs::copy(dir.join("server.key"), dir.join("live.key")).unwrap();
    issue(&dir, "clientca", "/CN=authplane test clients", None, CA_EXT);
    issue(
        &dir,
        "client",
        "/CN=provisioner",
        Some("clientca"),
        CLIENT_EXT,
    );
    issue(&dir, "otherca", "/CN=someone else", None, CA_EXT);
    issue(
        &dir,
        "stranger",
        "/CN=stranger",
        Some("otherca"),
        CLIENT_EXT,
    );
    dir
}

const TLS: &str = "certificate = \"chain.pem\"\nkey = \"live.key\"\n";

/// A server with a plain listener (every API), a TLS one (every API), a
/// TLS one requiring client certificates, a TLS one where only clients
/// with a certificate provision, and a TLS one serving STIR alone.
fn start(pki: &Path, extra: &str) -> Server {
    let config = format!(
        "[server]\nheader_timeout_ms = 600\n\n\
         [stir]\ntrusted_hosts = [\"127.0.0.1\"]\n\n\
         [[server.listeners]]\nname = \"plain\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[server.listeners]]\nname = \"tls\"\nlisten = \"127.0.0.1:0\"\n[server.listeners.tls]\n{TLS}\n\
         [[server.listeners]]\nname = \"mtls\"\nlisten = \"127.0.0.1:0\"\napis = [\"hss\", \"server\"]\n\
         [server.listeners.tls]\n{TLS}client_ca = \"clientca.pem\"\n\n\
         [[server.listeners]]\nname = \"prov\"\nlisten = \"127.0.0.1:0\"\napis = [\"hss\"]\n\
         [server.listeners.tls]\n{TLS}client_ca = \"clientca.pem\"\nclient_certificate = \"optional\"\n\
         provisioning_requires_client_certificate = true\n\n\
         [[server.listeners]]\nname = \"stir\"\nlisten = \"127.0.0.1:0\"\napis = [\"stir\"]\n\
         [server.listeners.tls]\n{TLS}\n{extra}"
    );
    let path = pki.join("authplane.toml");
    std::fs::write(&path, config).unwrap();
    Server::start(&["--config", path.to_str().unwrap()], &[])
}

/// tls_probe.py aimed at `addr`, trusting the test root.
fn probe_command(pki: &Path, addr: SocketAddr) -> Command {
    let mut c = Command::new("python3");
    c.arg(PROBE)
        .args(["--port", &addr.port().to_string(), "--ca"])
        .arg(pki.join("root.pem"))
        .current_dir(pki);
    c
}

/// What tls_probe.py printed for one request.
fn probe(pki: &Path, addr: SocketAddr, opts: &[&str], req: &[&str]) -> serde_json::Value {
    let out = probe_command(pki, addr)
        .args(opts)
        .args(req)
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .unwrap_or_else(|_| panic!("probe: {line} {}", String::from_utf8_lossy(&out.stderr)))
}

/// A probe holding one keep-alive connection: each `again` sends the
/// request once more on it.
struct Held {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Held {
    fn open(pki: &Path, addr: SocketAddr, path: &str) -> (Held, serde_json::Value) {
        let mut child = probe_command(pki, addr)
            .args(["--hold", "GET", path])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut held = Held { child, lines };
        let first = held.next();
        (held, first)
    }

    fn next(&mut self) -> serde_json::Value {
        let line = self.lines.next().expect("a probe line").unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn again(&mut self) -> serde_json::Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        self.next()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(pki: &Path, url: &str, resolve: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(pki.join("root.pem"))
        .args(["--resolve", resolve, url])
        .output()
        .expect("run curl (Debian: apt-get install curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Polls `metric` until it is at least `want`.
fn wait_metric(s: &Server, metric: &str, want: f64) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s.metric(metric);
        if v >= want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{metric} stayed at {v}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn https_listeners_verify_their_chain_refuse_old_protocols_and_serve_only_their_apis() {
    let pki = pki();
    let s = start(&pki, "");
    let tls = s.listener("tls");
    let port = tls.port();

    // curl verifies the chain (leaf + intermediate, root trusted) and the name.
    let (code, out) = curl(
        &pki,
        &format!("https://localhost:{port}/oam/ping"),
        &format!("localhost:{port}:127.0.0.1"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"result\":\"OK\""), "{out}");
    // A name the certificate does not carry: curl refuses (60: peer
    // certificate cannot be authenticated).
    let (code, out) = curl(
        &pki,
        &format!("https://wrong.example:{port}/oam/ping"),
        &format!("wrong.example:{port}:127.0.0.1"),
    );
    assert_eq!(code, 60, "{out}");

    // Python's ssl: TLS 1.3 by default, TLS 1.2 when capped there, ALPN.
    let r = probe(&pki, tls, &[], &["GET", "/oam/ping"]);
    assert_eq!(
        (r["ok"].as_bool(), r["status"].as_u64()),
        (Some(true), Some(200)),
        "{r}"
    );
    assert_eq!(r["version"], "TLSv1.3");
    let r = probe(
        &pki,
        tls,
        &["--max-version", "TLSv1_2"],
        &["GET", "/oam/ping"],
    );
    assert_eq!(
        (r["status"].as_u64(), r["version"].as_str()),
        (Some(200), Some("TLSv1.2")),
        "{r}"
    );
    // TLS 1.1 and 1.0 offered: the server refuses with an alert (OpenSSL
    // names the alert it received).
    for old in ["TLSv1_1", "TLSv1"] {
        let r = probe(&pki, tls, &["--max-version", old], &["GET", "/oam/ping"]);
        assert_eq!(r["ok"], false, "{old}: {r}");
        let e = r["error"].as_str().unwrap().to_ascii_lowercase();
        assert!(e.contains("alert"), "{old}: {e}");
    }

    // A listener serves its APIs only: STIR's listener has no /oam, and
    // answers a path of another API 404 in that API's shape.
    let stir = s.listener("stir");
    let r = probe(&pki, stir, &[], &["GET", "/oam/ping"]);
    assert_eq!(r["status"], 404, "{r}");
    assert!(
        r["body"]
            .as_str()
            .unwrap()
            .contains("\"result\": \"Failed\""),
        "{r}"
    );
    let r = probe(&pki, stir, &[], &["GET", "/metrics"]);
    assert_eq!(r["status"], 404, "{r}");
    // Its own API is served, and the STI-VS trusted-host list sees the TCP
    // peer (127.0.0.1) through TLS: an empty request is refused as a bad
    // request (400), not as an untrusted host (403).
    let r = probe(&pki, stir, &[], &["POST", "/stir/v1/verification", "{}"]);
    assert_eq!(r["status"], 400, "{r}");
    assert!(r["body"].as_str().unwrap().contains("requestError"), "{r}");
    // The plain listener still serves everything.
    assert_eq!(
        Client::get_from(s.listener("plain"), "/oam/ping").status,
        200
    );
    assert_eq!(s.addr, s.listener("plain"));

    // Bytes that are not TLS, and a plain HTTP request, are closed
    // without an HTTP answer; a keep-alive TLS connection beside them is
    // not harmed. A handshake that never finishes is timed out.
    let (mut held, first) = Held::open(&pki, tls, "/oam/ping");
    assert_eq!(first["status"], 200, "{first}");
    for junk in [
        &b"THIS IS NOT TLS\r\n\r\n"[..],
        b"GET /oam/ping HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3][..],
    ] {
        let mut c = Client::connect(tls);
        c.send(junk);
        let got = c.read_all();
        assert!(!got.starts_with(b"HTTP/"), "{junk:?} got an HTTP answer");
    }
    let silent = Instant::now();
    let mut idle = Client::connect(tls);
    assert!(idle.is_closed(), "a silent client was not closed");
    assert!(silent.elapsed() < WAIT);
    let mut half = Client::connect(tls);
    half.send(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01]);
    assert!(half.is_closed(), "a half ClientHello was not closed");
    assert_eq!(held.again()["status"], 200);
    let failures = s.metric("authplane_tls_handshake_failures_total{listener=\"tls\"}");
    assert!(failures >= 7.0, "handshake failures counted: {failures}");
    assert!(s.metric("authplane_tls_handshakes_total{listener=\"tls\"}") >= 4.0);
    let not_after = s.metric("authplane_tls_certificate_not_after_seconds{listener=\"tls\"}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(not_after > now + 20.0 * 86_400.0 && not_after < now + 40.0 * 86_400.0);
}

#[test]
fn client_certificates_are_required_or_gate_provisioning() {
    let pki = pki();
    let s = start(&pki, "");
    let client = ["--cert", "client.pem", "--key", "client.key"];
    let stranger = ["--cert", "stranger.pem", "--key", "stranger.key"];

    // Required: a client of the CA is served; none, or another CA's, not.
    let mtls = s.listener("mtls");
    let r = probe(&pki, mtls, &client, &["GET", "/oam/ping"]);
    assert_eq!(r["status"], 200, "{r}");
    for (what, opts) in [("no certificate", &[][..]), ("another CA's", &stranger[..])] {
        let r = probe(&pki, mtls, opts, &["GET", "/oam/ping"]);
        assert_eq!(r["ok"], false, "{what}: {r}");
    }

    // Optional, with provisioning restricted: anyone reads, only a client
    // with a certificate writes.
    let prov = s.listener("prov");
    let apn = r#"{"apn":"internet","apn_ambr_dl":9999999,"apn_ambr_ul":9999999}"#;
    let r = probe(&pki, prov, &[], &["GET", "/oam/ping"]);
    assert_eq!(r["status"], 200, "{r}");
    let r = probe(&pki, prov, &[], &["PUT", "/apn/", apn]);
    assert_eq!(r["status"], 403, "{r}");
    assert!(
        r["body"]
            .as_str()
            .unwrap()
            .contains("needs a client certificate"),
        "{r}"
    );
    assert_eq!(s.get("/apn/list").json().as_array().map(Vec::len), Some(0));
    let r = probe(&pki, prov, &stranger, &["PUT", "/apn/", apn]);
    assert_eq!(r["ok"], false, "another CA's certificate: {r}");
    let r = probe(&pki, prov, &client, &["PUT", "/apn/", apn]);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(s.get("/apn/1").json()["apn"], "internet");
    // The certificate replaces the Provisioning-Key only where it was checked.
    drop(s);
    let s = start(
        &pki,
        "[hss]\nlock_provisioning = true\nprovisioning_key = \"k\"\n",
    );
    let r = probe(&pki, s.listener("mtls"), &client, &["PUT", "/apn/", apn]);
    assert_eq!(r["status"], 200, "{r}");
    let r = probe(&pki, s.listener("tls"), &[], &["PUT", "/apn/", apn]);
    assert_eq!(r["status"], 401, "{r}");
}

#[test]
fn sighup_replaces_the_certificate_and_keeps_connections_and_a_bad_file_keeps_the_old() {
    let pki = pki();
    let s = start(&pki, "");
    let tls = s.listener("tls");
    let (mut held, first) = Held::open(&pki, tls, "/oam/ping");
    assert_eq!(first["status"], 200, "{first}");
    let old = first["cert_sha256"].as_str().unwrap().to_owned();

    // New files, then SIGHUP.
    std::fs::copy(pki.join("server2-chain.pem"), pki.join("chain.pem")).unwrap();
    std::fs::copy(pki.join("server2.key"), pki.join("live.key")).unwrap();
    s.signal("HUP");
    wait_metric(&s, "authplane_tls_reloads_total{listener=\"tls\"}", 1.0);
    assert_eq!(
        s.metric("authplane_tls_last_reload_failed{listener=\"tls\"}"),
        0.0
    );
    // The open connection goes on, with the session it has.
    let again = held.again();
    assert_eq!(
        (again["status"].as_u64(), again["cert_sha256"].as_str()),
        (Some(200), Some(old.as_str()))
    );
    // A new connection gets the new certificate.
    let r = probe(&pki, tls, &[], &["GET", "/oam/ping"]);
    let new = r["cert_sha256"].as_str().unwrap().to_owned();
    assert_eq!(r["status"], 200, "{r}");
    assert_ne!(new, old);

    // A corrupt certificate: refused, the one in use stays.
    std::fs::write(
        pki.join("chain.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    s.signal("HUP");
    wait_metric(
        &s,
        "authplane_tls_reload_failures_total{listener=\"tls\"}",
        1.0,
    );
    assert_eq!(
        s.metric("authplane_tls_last_reload_failed{listener=\"tls\"}"),
        1.0
    );
    let r = probe(&pki, tls, &[], &["GET", "/oam/ping"]);
    assert_eq!(
        (r["status"].as_u64(), r["cert_sha256"].as_str()),
        (Some(200), Some(new.as_str())),
        "{r}"
    );
    assert_eq!(held.again()["status"], 200);
    let logs = s.logs().join("\n");
    assert!(logs.contains("TLS reload refused"), "{logs}");
    // A key that does not match the certificate: refused too.
    std::fs::copy(pki.join("server-chain.pem"), pki.join("chain.pem")).unwrap();
    std::fs::copy(pki.join("server2.key"), pki.join("live.key")).unwrap();
    s.signal("HUP");
    wait_metric(
        &s,
        "authplane_tls_reload_failures_total{listener=\"tls\"}",
        2.0,
    );
    let r = probe(&pki, tls, &[], &["GET", "/oam/ping"]);
    assert_eq!(r["cert_sha256"].as_str(), Some(new.as_str()), "{r}");
}

#[test]
fn the_load_generator_speaks_tls_with_and_without_resumption() {
    use authplane_load::engine::{run, TlsClient};
    use authplane_load::scenario::Kind;
    let pki = pki();
    let s = start(&pki, "");
    let tls = s.listener("tls");
    let ca = std::fs::read(pki.join("root.pem")).unwrap();
    let metric = |name: &str| s.metric(&format!("authplane_tls_{name}{{listener=\"tls\"}}"));

    // Keep-alive: every answer checked.
    let mut plan = crate::harness::short_plan(tls, Kind::Ping);
    plan.tls = Some(TlsClient::new(Some(&ca), "localhost", true).unwrap());
    let stats = run(&plan).unwrap();
    assert!(
        stats.ok > 0 && stats.error_count() == 0,
        "{:?}",
        stats.errors
    );

    // A connection per request, no resumption: every one a full handshake.
    let (before, resumed_before) = (metric("handshakes_total"), metric("resumed_total"));
    plan.scenario.close_each = true;
    plan.tls = Some(TlsClient::new(Some(&ca), "localhost", false).unwrap());
    let stats = run(&plan).unwrap();
    assert!(
        stats.ok > 0 && stats.error_count() == 0,
        "{:?}",
        stats.errors
    );
    assert!(metric("handshakes_total") - before >= stats.ok as f64);
    assert_eq!(metric("resumed_total"), resumed_before);

    // With resumption, reconnections resume.
    plan.tls = Some(TlsClient::new(Some(&ca), "localhost", true).unwrap());
    let stats = run(&plan).unwrap();
    assert!(
        stats.ok > 0 && stats.error_count() == 0,
        "{:?}",
        stats.errors
    );
    assert!(metric("resumed_total") - resumed_before >= stats.ok as f64 / 2.0);

    // The wrong name: every connection refused by the client.
    plan.scenario.close_each = false;
    plan.tls = Some(TlsClient::new(Some(&ca), "wrong.example", true).unwrap());
    let stats = run(&plan).unwrap();
    assert_eq!(stats.ok, 0);
}
