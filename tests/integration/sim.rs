//! pysim's sim-rest-server API through the real server, real pcscd, real
//! vsmartcard vpcd readers (Debian's package: "Virtual PCD 00 00" and "00
//! 01", moved here to TCP 32000/32001) and `authplane vcard` as the card.
//!
//! The two vpcd readers and pcscd are one machine-wide test bed, so these
//! tests take it one at a time (`bed()`); each starts its own server and
//! cards. pcscd is started when none runs (no systemd needed) and left
//! running for the next test; scripts/test stops it afterwards.
//!
//! Golden values: the seed's two exchanges, recorded from real
//! sysmoISIM-SJA2 cards (K/OPc as given in the seed). Everything else the
//! cards answer is recomputed by tests/tools/aka_check.py (Python, its own
//! Milenage) or accepted by the HSS's resync endpoint.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{temp_dir, Client, Server, BIN, WAIT};

/// The seed's slot 0 card (sysmoISIM-SJA2).
const K0: &str = "841EAD87BC9D974ECA1C167409357601";
const OPC0: &str = "3211CACDD64F51C3FD3013ECD9A582A0";
/// The seed's slot 1 card.
const K1: &str = "5C2CE9633FF9B502B519A4EACD16D9DF";
const OPC1: &str = "9834D619E71A02CD76F00CC7AA34FB32";

const SEED0: &str =
    r#"{"rand": "fb195c7873b20affa278887920b9dd57", "autn": "d420895a6aa2000089cd016f8d8ae67c"}"#;
const SEED1: &str =
    r#"{"rand": "433dc5553db95588f1d8b93870930b66", "autn": "126bafdcbe9e00000026a208da61075d"}"#;

/// The first vpcd port of the test bed's pcscd. Debian's reader.conf
/// puts vpcd on 35963, inside Linux's ephemeral port range: a client
/// socket of any other test may hold that port when pcscd binds it. The
/// bed's pcscd reads a copy of that configuration moved to 32000, below
/// the range.
const VPCD_BASE: u16 = 32000;

/// vpcd's port for slot `n`.
fn vpcd_port(slot: usize) -> u16 {
    VPCD_BASE + u16::try_from(slot).unwrap()
}

const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
const PCSCD_PID: &str = "/run/pcscd/pcscd.pid";

/// The machine's PC/SC test bed, one test at a time.
pub struct Bed {
    pcscd: Option<Child>,
}

static BED: Mutex<Bed> = Mutex::new(Bed { pcscd: None });

/// Takes the test bed, starting its pcscd when it does not run.
pub fn bed() -> MutexGuard<'static, Bed> {
    let mut b = BED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    b.ensure_pcscd();
    b
}

fn pcscd_alive() -> bool {
    std::os::unix::net::UnixStream::connect(PCSCD_SOCKET).is_ok()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A reader.conf.d with Debian's vpcd entry moved to `VPCD_BASE`.
fn reader_conf() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("authplane-test-pcscd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let debian = std::fs::read_to_string("/etc/reader.conf.d/vpcd")
        .expect("/etc/reader.conf.d/vpcd (apt-get install vsmartcard-vpcd; scripts/test does)");
    std::fs::write(
        dir.join("vpcd"),
        debian.replace("0x8C7B", &format!("{VPCD_BASE:#06X}").replace("0X", "0x")),
    )
    .unwrap();
    dir
}

impl Bed {
    fn ensure_pcscd(&mut self) {
        let ours = self
            .pcscd
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if ours && pcscd_alive() && listening(vpcd_port(1)) {
            return;
        }
        // Another pcscd (the system's, or one left by an earlier run) has
        // other readers: the bed needs its own.
        if pcscd_alive() {
            self.stop_pcscd();
        }
        // Files left by a pcscd that was killed make a new one refuse to
        // start.
        let _ = std::fs::remove_file(PCSCD_SOCKET);
        let _ = std::fs::remove_file(PCSCD_PID);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join("authplane-test-pcscd.log"))
            .expect("pcscd log");
        let child = Command::new("pcscd")
            .arg("--foreground")
            .arg("--config")
            .arg(reader_conf())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pcscd (apt-get install pcscd vsmartcard-vpcd; scripts/test does)");
        self.pcscd = Some(child);
        wait_for("pcscd's socket", pcscd_alive);
        wait_for("vpcd's listeners", || listening(vpcd_port(1)));
    }

    /// Stops pcscd (whoever started it) and waits until it is gone, its
    /// ports included.
    fn stop_pcscd(&mut self) {
        if let Some(mut c) = self.pcscd.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        } else if let Ok(pid) = std::fs::read_to_string(PCSCD_PID) {
            let pid = pid.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            let _ = Command::new("kill").arg(pid).status();
        }
        wait_for("pcscd to stop", || {
            !pcscd_alive() && !listening(vpcd_port(0)) && !listening(vpcd_port(1))
        });
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A virtual card process in a vpcd slot, killed when dropped.
pub struct Card(Child);

impl Card {
    pub fn start(slot: usize, k: &str, opc: &str, extra: &[&str]) -> Card {
        let child = Command::new(BIN)
            .args(["vcard", "--port", &vpcd_port(slot).to_string()])
            .args(["--ki", k, "--opc", opc])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("authplane vcard");
        Card(child)
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // vpcd looks for its card every 400 ms; a card that goes and comes
        // back within one look is one card to pcscd, which then never
        // powers the new one up. Let the removal be seen (a few polls).
        std::thread::sleep(Duration::from_millis(1500));
    }
}

fn sim_server(extra_env: &[(&str, &str)]) -> Server {
    let mut env = vec![("AUTHPLANE_SIM__RESCAN_MS", "100")];
    env.extend_from_slice(extra_env);
    Server::start(&["--cores", "1"], &env)
}

/// The common bed: the test bed held, a server, and the TS 35.208-style
/// card K0/OPC0 in slot 0, seen by the server. Bind in this order, so
/// that the card is dropped (removed) before the bed is released:
/// `let (_bed, s, c) = one_card();` drops c, then s, then the guard.
fn one_card() -> (MutexGuard<'static, Bed>, Server, Card) {
    let bed = bed();
    let s = sim_server(&[]);
    let c = Card::start(0, K0, OPC0, &[]);
    wait_card(&s, 0);
    (bed, s, c)
}

fn slots(s: &Server) -> Value {
    let r = s.get("/sim-auth-api/v1/slots");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Waits until the server sees a card in `slot`.
fn wait_card(s: &Server, slot: usize) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = s.get("/sim-auth-api/v1/slots");
        if r.status == 200 {
            let v = r.json();
            if v["slots"][slot]["card_present"] == json!(true) {
                return v["slots"][slot].clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no card in slot {slot}: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the server sees no card in `slot`.
fn wait_no_card(s: &Server, slot: usize) {
    wait_for("the card to go", || {
        let r = s.get("/sim-auth-api/v1/slots");
        r.status == 200 && r.json()["slots"][slot]["card_present"] == json!(false)
    });
}

fn auth(s: &Server, slot: usize, body: &str) -> (u16, Value) {
    auth_at(s.addr, slot, body)
}

/// `auth` by address (for other threads: a `Server` stays on its own).
fn auth_at(addr: SocketAddr, slot: usize, body: &str) -> (u16, Value) {
    let mut c = Client::connect(addr);
    c.send(
        format!(
            "POST /sim-auth-api/v1/slot/{slot} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.response();
    (r.status, r.json())
}

#[test]
fn the_seeds_two_exchanges_come_back_exactly() {
    let _bed = bed();
    let s = sim_server(&[]);
    let _c0 = Card::start(0, K0, OPC0, &[]);
    let _c1 = Card::start(1, K1, OPC1, &["--t1"]);
    let slot0 = wait_card(&s, 0);
    let slot1 = wait_card(&s, 1);
    assert_eq!(slot0["protocol"], "T=0");
    assert_eq!(slot1["protocol"], "T=1");
    assert_eq!(slot0["reader"], "Virtual PCD 00 00");
    assert_eq!(
        slot0["applications"],
        json!([{"name": "USIM", "aid": "a0000000871002ff49ff0589"},
               {"name": "ISIM", "aid": "a0000000871004ff49ff0589"}])
    );

    assert_eq!(
        auth(&s, 0, SEED0),
        (
            200,
            json!({"successful_3g_authentication": {
                "res": "131004db2ff1ce8e", "ck": "d42eb5aa085307903271b2422b698bad",
                "ik": "485f81e6fd957fe3cad374adf12fe1ca", "kc": "64d3f2a32f801214"}})
        )
    );
    assert_eq!(
        auth(&s, 1, SEED1),
        (
            200,
            json!({"successful_3g_authentication": {
                "res": "026d7ac42d379207", "ck": "83a90ba331f47a95c27a550b174c4a1f",
                "ik": "31e1d10329ffaf0ca1684a1bf0b0a14a", "kc": "d15ac5b0fff73ecc"}})
        )
    );
    // The same AUTN again: its SQN is no longer fresh. pysim's server gave
    // this same AUTS against the same card state.
    assert_eq!(
        auth(&s, 0, SEED0),
        (
            200,
            json!({"synchronisation_failure": {"auts": "e253c422d5c18a10b53dc04971d1"}})
        )
    );
    // After the first request: AUTHENTICATE + GET RESPONSE only (T=0).
    let before = slots(&s)["slots"][0]["apdus"].as_u64().unwrap();
    auth(&s, 0, SEED0);
    let after = slots(&s)["slots"][0]["apdus"].as_u64().unwrap();
    assert_eq!(after - before, 2, "APDUs per authentication on a T=0 card");
}

/// Provisions the card's K/OPc in the HSS and returns one vector.
fn hss_vector(s: &Server, imsi: &str, k: &str, opc: &str) -> Value {
    let body = format!(r#"{{"ki":"{k}","opc":"{opc}","amf":"8000","sqn":0,"imsi":"{imsi}"}}"#);
    let r = s.send_json("PUT", "/auc/", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    vector(s, imsi)
}

fn vector(s: &Server, imsi: &str) -> Value {
    let r = s.get(&format!("/auc/aka/vector_count/1/imsi/{imsi}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()[0].clone()
}

fn body_of(v: &Value) -> String {
    json!({"rand": v["rand"], "autn": v["autn"]}).to_string()
}

#[test]
fn hss_vectors_authenticate_on_the_card_and_a_stale_sqn_resyncs_through_the_hss() {
    let _bed = bed();
    let s = sim_server(&[]);
    // The card has already seen SQN 32·1000: the HSS's first vectors are stale.
    let _c = Card::start(0, K0, OPC0, &["--sqn", "32000"]);
    wait_card(&s, 0);
    let imsi = "001010000000042";
    let v = hss_vector(&s, imsi, K0, OPC0);
    let (status, answer) = auth(&s, 0, &body_of(&v));
    assert_eq!(status, 200, "{answer}");
    let auts = answer["synchronisation_failure"]["auts"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a sync failure: {answer}"));
    let r = s.get(&format!(
        "/auc/aka/resync/imsi/{imsi}/auts/{auts}/rand/{}",
        v["rand"].as_str().unwrap()
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sqn_ms"], 32000);
    // The next vectors are fresh for the card; its answers equal the
    // vector's XRES/CK/IK and an independent Milenage agrees.
    for _ in 0..3 {
        let v = vector(&s, imsi);
        let (status, answer) = auth(&s, 0, &body_of(&v));
        assert_eq!(status, 200, "{answer}");
        let ok = &answer["successful_3g_authentication"];
        assert_eq!(ok["res"], v["xres"], "{answer}");
        assert_eq!(ok["ck"], v["ck"]);
        assert_eq!(ok["ik"], v["ik"]);
        let case = json!({"k": K0.to_lowercase(), "opc": OPC0.to_lowercase(), "amf": "8000", "kind": "eps",
            "vector": {"rand": v["rand"], "autn": v["autn"], "xres": ok["res"], "ck": ok["ck"], "ik": ok["ik"]}});
        assert!(crate::hss_vectors::check_cases(&[case])[0] > 32000);
    }
}

#[test]
fn every_status_word_the_card_answers_is_reported_with_pysims_words() {
    let _bed = bed();
    let s = sim_server(&[]);
    for (sw, message) in [
        ("9862", "Card Authentication Error - Incorrect MAC"),
        ("6982", "Security Status not satisfied - Card PIN enabled?"),
        (
            "9864",
            "Card Communication Error SW match failed! Expected 9000 and got 9864.",
        ),
        (
            "9865",
            "Card Communication Error SW match failed! Expected 9000 and got 9865.",
        ),
        (
            "6f00",
            "Card Communication Error SW match failed! Expected 9000 and got 6f00.",
        ),
    ] {
        let c = Card::start(0, K0, OPC0, &["--auth-sw", sw]);
        wait_card(&s, 0);
        assert_eq!(
            auth(&s, 0, SEED0),
            (
                500,
                json!({"error": {"message": message, "status_word": sw}})
            ),
            "status word {sw}"
        );
        drop(c);
        wait_no_card(&s, 0);
    }
    // A real MAC failure (wrong AUTN for this card's keys), not forced.
    let _c = Card::start(0, K1, OPC1, &[]);
    wait_card(&s, 0);
    let (status, body) = auth(&s, 0, SEED0);
    assert_eq!(
        (status, &body["error"]["status_word"]),
        (500, &json!("9862"))
    );
}

#[test]
fn a_removed_card_is_410_and_a_new_one_works_without_a_restart() {
    let (_bed, s, c) = one_card();
    assert_eq!(auth(&s, 0, SEED0).0, 200);
    drop(c);
    wait_no_card(&s, 0);
    assert_eq!(
        auth(&s, 0, SEED0),
        (
            410,
            json!({"error": {"message": "No SIM card inserted in slot"}})
        )
    );
    // A fresh card (new process): the server reconnects by itself.
    let _c = Card::start(0, K0, OPC0, &[]);
    wait_card(&s, 0);
    let (status, body) = auth(&s, 0, SEED0);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["successful_3g_authentication"]["res"],
        "131004db2ff1ce8e"
    );
    // The card is removed while the server holds it, and another is put
    // in before the next request: the server's handle is stale, it
    // reconnects and re-selects within the request.
    drop(_c);
    let _c = Card::start(0, K0, OPC0, &[]);
    std::thread::sleep(Duration::from_millis(1000));
    let (status, body) = auth(&s, 0, SEED0);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn two_slots_are_served_in_parallel_and_a_full_queue_is_503() {
    let _bed = bed();
    let s = sim_server(&[("AUTHPLANE_SIM__QUEUE_DEPTH", "1")]);
    // Each card takes 300 ms per AUTHENTICATE, like a slow real card.
    let _c0 = Card::start(0, K0, OPC0, &["--auth-delay-ms", "300"]);
    let _c1 = Card::start(1, K1, OPC1, &["--auth-delay-ms", "300"]);
    wait_card(&s, 0);
    wait_card(&s, 1);
    let addr = s.addr;
    let started = Instant::now();
    let (a, b) = std::thread::scope(|t| {
        let a = t.spawn(|| auth_at(addr, 0, SEED0));
        let b = t.spawn(|| auth_at(addr, 1, SEED1));
        (a.join().unwrap(), b.join().unwrap())
    });
    let wall = started.elapsed();
    assert_eq!(
        a.1["successful_3g_authentication"]["res"],
        "131004db2ff1ce8e"
    );
    assert_eq!(
        b.1["successful_3g_authentication"]["res"],
        "026d7ac42d379207"
    );
    eprintln!("two slots, 300 ms cards, in parallel: {wall:?} wall");
    // Five at once on one slot with a queue of one: one runs, one waits,
    // the rest are refused at once with 503 (never queued without bound).
    let answers: Vec<(u16, Value)> = std::thread::scope(|t| {
        let hs: Vec<_> = (0..5)
            .map(|_| t.spawn(|| auth_at(addr, 0, SEED0)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy = answers.iter().filter(|(st, _)| *st == 503).count();
    assert!(busy >= 1, "{answers:?}");
    for (st, body) in &answers {
        match st {
            503 => assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("slot busy")),
            200 => assert!(body["synchronisation_failure"]["auts"].is_string()),
            other => panic!("unexpected {other}: {body}"),
        }
    }
}

#[test]
fn malformed_requests_are_400_and_unknown_slots_404() {
    let (_bed, s, _c) = one_card();
    let good_rand = "fb195c7873b20affa278887920b9dd57";
    for body in [
        String::new(),
        "{".into(),
        "[1,2]".into(),
        "{}".into(),
        format!(r#"{{"rand": "{good_rand}"}}"#),
        r#"{"rand": "fb19", "autn": "d420895a6aa2000089cd016f8d8ae67c"}"#.into(),
        r#"{"rand": "zz195c7873b20affa278887920b9dd57", "autn": "d420895a6aa2000089cd016f8d8ae67c"}"#.into(),
        r#"{"rand": 5, "autn": "d420895a6aa2000089cd016f8d8ae67c"}"#.into(),
        format!(r#"{{"rand": "{good_rand}", "autn": "d420895a6aa2000089cd016f8d8ae67c00"}}"#),
        format!(r#"{{"rand": "{good_rand}", "autn": "d420895a6aa2000089cd016f8d8ae67c", "application": "GSM"}}"#),
    ] {
        let (status, v) = auth(&s, 0, &body);
        assert_eq!(status, 400, "{body:?} -> {v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.starts_with("Malformed Request"), "{m}");
    }
    assert_eq!(
        auth(&s, 7, SEED0),
        (
            404,
            json!({"error": {"message": "Reader Error: Specified SIM Slot doesn't exist"}})
        )
    );
    let r = s.send_json("POST", "/sim-auth-api/v1/slot/abc", SEED0);
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());
    // Nothing above reached the card: the seed's request still succeeds.
    assert_eq!(auth(&s, 0, SEED0).0, 200);
}

#[test]
fn the_isim_is_selected_from_ef_dir_and_answers_without_kc() {
    let (_bed, s, _c) = one_card();
    let body = r#"{"rand": "fb195c7873b20affa278887920b9dd57", "autn": "d420895a6aa2000089cd016f8d8ae67c", "application": "isim"}"#;
    let (status, v) = auth(&s, 0, body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"successful_3g_authentication": {
            "res": "131004db2ff1ce8e", "ck": "d42eb5aa085307903271b2422b698bad",
            "ik": "485f81e6fd957fe3cad374adf12fe1ca", "kc": null}})
    );
}

/// A directory whose `pcscd.comm` is, for now, nothing.
fn absent_pcscd_socket() -> PathBuf {
    temp_dir("pcscd-sock").join("pcscd.comm")
}

#[test]
fn without_pcscd_the_server_serves_the_rest_and_recovers_when_it_appears() {
    let _bed = bed();
    // libpcsclite finds pcscd through this path: nothing there yet.
    let socket = absent_pcscd_socket();
    let s = sim_server(&[("PCSCLITE_CSOCK_NAME", socket.to_str().unwrap())]);
    let _c = Card::start(0, K0, OPC0, &[]);
    let (status, v) = auth(&s, 0, SEED0);
    assert_eq!(status, 503, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("PC/SC unavailable"));
    assert_eq!(s.get("/sim-auth-api/v1/slots").status, 503);
    // Every other service is up.
    assert_eq!(s.get("/oam/ping").status, 200);
    assert_eq!(
        s.send_json(
            "PUT",
            "/auc/",
            r#"{"ki":"000102030405060708090a0b0c0d0e0f","opc":"000102030405060708090a0b0c0d0e0f","amf":"8000","imsi":"001010000000001"}"#
        )
        .status,
        200
    );
    // pcscd "appears" at that path: the SIM service comes up by itself.
    std::os::unix::fs::symlink(PCSCD_SOCKET, &socket).unwrap();
    wait_card(&s, 0);
    assert_eq!(auth(&s, 0, SEED0).0, 200);
    let _ = std::fs::remove_dir_all(socket.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn a_pcscd_restart_is_survived_without_restarting_the_server() {
    let mut bed = bed();
    let s = sim_server(&[]);
    let c = Card::start(0, K0, OPC0, &[]);
    wait_card(&s, 0);
    assert_eq!(auth(&s, 0, SEED0).0, 200);
    bed.stop_pcscd();
    // pcscd removes its readers as it goes down (a slot may briefly be
    // 404), then it is gone: 503 until it is back.
    wait_for("503 without pcscd", || {
        let (status, v) = auth(&s, 0, SEED0);
        status == 503
            && v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("PC/SC unavailable"))
    });
    bed.ensure_pcscd();
    // The card reconnects to the new vpcd by itself (a new card state:
    // its SQN memory is the process's, which lives on).
    wait_card(&s, 0);
    let (status, v) = auth(&s, 0, SEED0);
    assert_eq!(status, 200, "{v}");
    assert!(v["synchronisation_failure"]["auts"].is_string(), "{v}");
    drop(c);
}

#[test]
fn ts_35_208_test_sets_authenticate_through_pcsc_with_the_published_outputs() {
    let _bed = bed();
    let s = sim_server(&[]);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/milenage.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let gsm: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/gsm_milenage.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let hex = |v: &Value, k: &str| v[k].as_str().unwrap().to_owned();
    let sets: Vec<&Value> = file["vectors"].as_array().unwrap().iter().take(4).collect();
    let mut kc_checked = 0;
    for pair in sets.chunks(2) {
        let mut cards = Vec::new();
        for (slot, v) in pair.iter().enumerate() {
            // A card that has accepted SQN − 32: the set's SQN is the next fresh one.
            let sqn = u64::from_str_radix(&hex(v, "SQN"), 16).unwrap();
            let before = (sqn - 32).to_string();
            cards.push(Card::start(
                slot,
                &hex(v, "K"),
                &hex(v, "OPc"),
                &["--sqn", &before],
            ));
        }
        for (slot, v) in pair.iter().enumerate() {
            wait_card(&s, slot);
            // AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A, all from the published set.
            let sqn = ::hex::decode(hex(v, "SQN")).unwrap();
            let ak = ::hex::decode(hex(v, "f5")).unwrap();
            let conc: Vec<u8> = sqn.iter().zip(&ak).map(|(a, b)| a ^ b).collect();
            let autn = format!("{}{}{}", ::hex::encode(conc), hex(v, "AMF"), hex(v, "f1"));
            let body = json!({"rand": hex(v, "RAND"), "autn": autn}).to_string();
            let (status, answer) = auth(&s, slot, &body);
            assert_eq!(status, 200, "{} {answer}", hex(v, "id"));
            let ok = &answer["successful_3g_authentication"];
            assert_eq!(ok["res"], v["f2"], "{}", hex(v, "id"));
            assert_eq!(ok["ck"], v["f3"]);
            assert_eq!(ok["ik"], v["f4"]);
            // Kc = c3(CK, IK) where TS 55.205 publishes it for this K and RAND.
            if let Some(g) = gsm["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["K"] == v["K"] && g["RAND"] == v["RAND"])
            {
                assert_eq!(ok["kc"], g["Kc"], "{}", hex(v, "id"));
                kc_checked += 1;
            }
        }
        drop(cards);
    }
    assert!(kc_checked >= 2, "Kc checked for {kc_checked} sets");
}

#[test]
fn vcard_refuses_bad_keys_with_a_clear_error() {
    let out = Command::new(BIN)
        .args(["vcard", "--ki", "zz", "--opc", OPC0])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ki: expected 32 hex digits"), "{err}");
    let out = Command::new(BIN)
        .args(["vcard", "--ki", K0, "--opc", OPC0, "--auth-sw", "98"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--auth-sw: expected 4 hex digits"));
}

#[test]
fn the_load_generator_checks_every_card_answer() {
    use authplane_load::engine::run;
    use authplane_load::scenario::{Kind, SimCards};
    let (_bed, s, _c) = one_card();
    let plan = |k: &str| {
        let mut p = crate::harness::short_plan(s.addr, Kind::SimAuth);
        p.scenario.sim = SimCards {
            k: ::hex::decode(k).unwrap().try_into().unwrap(),
            ..SimCards::default()
        };
        p
    };
    // The generator's AUTNs, fresh SQN after fresh SQN, all accepted, every
    // RES/CK/IK recomputed.
    let good = run(&plan(K0)).unwrap();
    assert!(good.ok > 50, "{good:?}");
    assert_eq!(good.error_count(), 0, "{:?}", good.errors);
    // Another K: every AUTN fails the card's MAC check (a 500 with 9862).
    let bad = run(&plan(K1)).unwrap();
    assert_eq!(bad.ok, 0);
    assert!(
        bad.errors.get("http_5xx").copied().unwrap_or(0) > 50,
        "{:?}",
        bad.errors
    );
}
