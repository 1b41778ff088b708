//! Authentication vectors through the real server, each recomputed by an
//! independent implementation (tests/tools/aka_check.py: Python with the
//! `cryptography` package's AES).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::{Client, Server};

/// TS 35.208 test set 1.
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";

fn provision(s: &Server, imsi: &str) -> u64 {
    let body = format!(r#"{{"ki":"{K}","opc":"{OPC}","amf":"8000","sqn":0,"imsi":"{imsi}"}}"#);
    let r = s.send_json("PUT", "/auc/", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["auc_id"].as_u64().unwrap()
}

/// Runs the independent checker over `cases`; returns the SQN of each.
pub fn check_cases(cases: &[Value]) -> Vec<u64> {
    check(cases)
}

/// Runs the independent checker over `cases`; returns the SQN of each.
fn check(cases: &[Value]) -> Vec<u64> {
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/aka_check.py");
    let mut child = Command::new("python3")
        .arg(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    for c in cases {
        writeln!(stdin, "{c}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len(), "checker output: {text}");
    lines
        .iter()
        .zip(cases)
        .map(|(l, c)| match l.strip_prefix("ok ") {
            Some(sqn) => sqn.parse().unwrap(),
            None => panic!("independent check failed: {l} for {c}"),
        })
        .collect()
}

fn case(kind: &str, vector: &Value, plmn: Option<&str>, role: Option<&str>) -> Value {
    json!({"k": K, "opc": OPC, "amf": "8000", "kind": kind, "vector": vector, "plmn": plmn, "role": role})
}

#[test]
fn vector_count_gives_distinct_vectors_checked_independently() {
    let s = Server::start(&["--cores", "2"], &[]);
    provision(&s, "001010000000001");
    let r = s.get("/auc/aka/vector_count/5/imsi/001010000000001?plmn=00101");
    assert_eq!(r.status, 200, "{}", r.text());
    let vectors = r.json();
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    let rands: BTreeSet<&str> = vectors
        .iter()
        .map(|v| v["rand"].as_str().unwrap())
        .collect();
    assert_eq!(rands.len(), 5, "RANDs repeat");
    for v in vectors {
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["rand", "autn", "xres", "ck", "ik", "kasme"])
        );
    }
    let cases: Vec<Value> = vectors
        .iter()
        .map(|v| case("eps", v, Some("00101"), None))
        .collect();
    let sqns = check(&cases);
    // Annex C, IND 5 bits: SEQ 1..5 sharing IND 1.
    assert_eq!(
        sqns,
        vec![1 << 5 | 1, 2 << 5 | 1, 3 << 5 | 1, 4 << 5 | 1, 5 << 5 | 1]
    );
    // Without plmn: PyHSS's exact key set.
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000001").json();
    assert!(v[0].get("kasme").is_none());
    let next = check(&[case("eps", &v[0], None, None)]);
    assert_eq!(next, vec![6 << 5 | 2]);
    // The stored SQN is the last one issued.
    let auc = s.get("/auc/imsi/001010000000001").json();
    assert_eq!(auc["sqn"], 6 << 5 | 2);
}

#[test]
fn eap_aka_and_5g_shapes_checked_independently() {
    let s = Server::start(&[], &[]);
    provision(&s, "001010000000002");
    let eap = s.get("/auc/eap_aka/plmn/00101/imsi/001010000000002").json();
    let keys: BTreeSet<&str> = eap
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["rand", "autn", "xres", "mac", "ak"]));
    let g = s.get("/auc/5g_aka/plmn/00101/imsi/001010000000002").json();
    assert_eq!(
        g["serving_network_name"],
        "5G:mnc001.mcc001.3gppnetwork.org"
    );
    assert!(g.get("xres_star").is_none());
    let ausf = s
        .get("/auc/5g_aka/plmn/310410/imsi/001010000000002?role=ausf")
        .json();
    assert!(ausf.get("hxres_star").is_none());
    let sqns = check(&[
        case("eap", &eap, None, None),
        case("5g", &g, Some("00101"), Some("seaf")),
        case("5g", &ausf, Some("310410"), Some("ausf")),
    ]);
    assert!(sqns.windows(2).all(|w| w[0] < w[1]), "{sqns:?}");
}

#[test]
fn errors_are_pyhss_shaped_and_nothing_is_issued() {
    let s = Server::start(&[], &[]);
    provision(&s, "001010000000003");
    for (path, status) in [
        ("/auc/aka/vector_count/1/imsi/001019999999999", 404),
        ("/auc/aka/vector_count/abc/imsi/001010000000003", 400),
        ("/auc/aka/vector_count/33/imsi/001010000000003", 400),
        ("/auc/aka/vector_count/1/imsi/12x", 400),
        ("/auc/aka/vector_count/1/imsi/001010000000003?plmn=1", 400),
        ("/auc/eap_aka/plmn/0010/imsi/001010000000003", 400),
        ("/auc/5g_aka/plmn/00101/imsi/001010000000003?role=amf", 400),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.json()["result"], "Failed", "{path}");
    }
    assert_eq!(
        s.get("/auc/aka/vector_count/0/imsi/001010000000003").json(),
        json!([])
    );
    assert_eq!(
        s.get("/auc/imsi/001010000000003").json()["sqn"],
        0,
        "an error or 0 vectors issued an SQN"
    );
}

#[test]
fn two_hundred_parallel_requests_for_one_imsi_get_two_hundred_sqns() {
    let s = Server::start(&["--cores", "2"], &[]);
    provision(&s, "001010000000004");
    let addr = s.addr;
    let vectors: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    let mut c = Client::connect(addr);
                    (0..25)
                        .map(|_| {
                            c.send(b"GET /auc/aka/vector_count/1/imsi/001010000000004 HTTP/1.1\r\n\r\n");
                            let r = c.response();
                            assert_eq!(r.status, 200, "{}", r.text());
                            r.json()[0].clone()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let cases: Vec<Value> = vectors.iter().map(|v| case("eps", v, None, None)).collect();
    let mut sqns = check(&cases);
    sqns.sort_unstable();
    // Exactly the first 200 SQNs of the scheme: none twice, none skipped.
    let mut expected = Vec::new();
    let mut last = 0u64;
    for _ in 0..200 {
        let ind = ((last & 31) + 1) & 31;
        last = ((last >> 5) + 1) << 5 | ind;
        expected.push(last);
    }
    assert_eq!(sqns, expected);
}

#[test]
fn resync_with_a_valid_auts_moves_the_sqn_and_a_forged_one_is_refused() {
    // auts_resync.json, case auts-libosmocore-1: K = OPc = 000102..0f, RAND 0, SQN_MS 31.
    let s = Server::start(&[], &[]);
    let body = r#"{"ki":"000102030405060708090a0b0c0d0e0f","opc":"000102030405060708090a0b0c0d0e0f","amf":"8000","imsi":"001010000000005"}"#;
    assert_eq!(s.send_json("PUT", "/auc/", body).status, 200);
    let rand = "00000000000000000000000000000000";
    // MAC-S computed with AMF 8000 instead of 0000: must not verify.
    let forged = s.get(&format!(
        "/auc/aka/resync/imsi/001010000000005/auts/8711a0ec9e0931fd3d163d2c96c2/rand/{rand}"
    ));
    assert_eq!(forged.status, 400, "{}", forged.text());
    assert_eq!(s.get("/auc/imsi/001010000000005").json()["sqn"], 0);
    let r = s.get(&format!(
        "/auc/aka/resync/imsi/001010000000005/auts/8711a0ec9e1637df17f80b384ee4/rand/{rand}"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"result": "OK", "sqn_ms": 31, "sqn": 31}));
    // The next vector is beyond SQN_MS, checked independently.
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000005").json();
    let c = json!({"k": "000102030405060708090a0b0c0d0e0f", "opc": "000102030405060708090a0b0c0d0e0f", "amf": "8000", "kind": "eps", "vector": v[0]});
    assert!(check(&[c])[0] > 31);
    assert_eq!(
        s.get("/auc/aka/resync/imsi/001010000000005/auts/zz/rand/00")
            .status,
        400
    );
}

#[test]
fn sqns_issued_after_a_sigkill_exceed_every_sqn_returned_before() {
    sigkills_never_reissue(&[]);
}

/// The same without SQN leases: every vector waits for its own sync.
#[test]
fn without_leases_sqns_issued_after_a_sigkill_exceed_every_sqn_returned_before() {
    sigkills_never_reissue(&[("AUTHPLANE_HSS__SQN_LEASE", "0")]);
}

/// Vector load on two cores, SIGKILLed in mid-flight five times
/// (`CRASH_SOAK_KILLS` for the long soak): every SQN returned after a
/// restart is above every SQN returned before.
fn sigkills_never_reissue(env: &[(&str, &str)]) {
    let mut dir = crate::harness::temp_dir("sqn-crash");
    let mut max_before = 0u64;
    let mut provisioned = false;
    let kills = crate::harness::soak_kills(5);
    let mut issued = 0usize;
    for round in 0..kills {
        let s = Server::start_in(dir.clone(), &["--cores", "2"], env);
        if !provisioned {
            provision(&s, "001010000000006");
            provisioned = true;
        }
        let addr = s.addr;
        // Clients ask until the kill cuts them off (a reply not received
        // whole is not counted).
        let (got, killed): (Vec<Value>, _) = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(move || {
                        let mut c = Client::connect(addr);
                        let mut out = Vec::new();
                        for _ in 0..100_000 {
                            c.send(b"GET /auc/aka/vector_count/2/imsi/001010000000006 HTTP/1.1\r\n\r\n");
                            match c.try_response() {
                                Ok(r) if r.status == 200 => out.extend(r.json().as_array().unwrap().clone()),
                                _ => break,
                            }
                        }
                        out
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(
                30 + 20 * (round as u64 % 8),
            ));
            let killed = s.kill();
            (
                hs.into_iter().flat_map(|h| h.join().unwrap()).collect(),
                killed,
            )
        });
        dir = killed;
        let sqns = check(
            &got.iter()
                .map(|v| case("eps", v, None, None))
                .collect::<Vec<_>>(),
        );
        for sqn in &sqns {
            assert!(
                *sqn > max_before,
                "round {round}: SQN {sqn} issued again (max before kill {max_before})"
            );
        }
        let unique: BTreeSet<u64> = sqns.iter().copied().collect();
        assert_eq!(unique.len(), sqns.len(), "round {round}: duplicate SQN");
        max_before = max_before.max(sqns.iter().copied().max().unwrap_or(0));
        issued += sqns.len();
    }
    eprintln!("{kills} kills: {issued} SQNs returned, none issued twice");
}

/// Under a lease of 8 vectors, a restart (SIGKILL or clean) resumes just
/// above the lease: never on an SQN that may have left, and never further
/// than one lease ahead. Annex C, IND 5: SQN = SEQ × 32 + IND; a lease
/// ends on a SEQ with the highest IND.
#[test]
fn a_restart_resumes_just_above_the_sqn_lease() {
    let env = [("AUTHPLANE_HSS__SQN_LEASE", "8")];
    let imsi = "001010000000007";
    let s = Server::start(&[], &env);
    provision(&s, imsi);
    let seq_ind = |s: &Server| -> Vec<(u64, u64)> {
        let v = s
            .get(&format!("/auc/aka/vector_count/1/imsi/{imsi}"))
            .json();
        check(&[case("eps", &v[0], None, None)])
            .into_iter()
            .map(|sqn| (sqn >> 5, sqn & 31))
            .collect()
    };
    // SEQ 1 takes the lease (to SEQ 9); SEQ 2 and 3 are under it.
    let got: Vec<_> = (0..3).flat_map(|_| seq_ind(&s)).collect();
    assert_eq!(got, vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        s.get(&format!("/auc/imsi/{imsi}")).json()["sqn"],
        3 * 32 + 3
    );
    assert_eq!(s.metric("authplane_sqn_leases_taken_total"), 1.0);
    assert_eq!(s.metric("authplane_sqn_under_lease_total"), 2.0);
    let dir = s.kill();
    // A new process resumes above the lease's end, SEQ 9, and shows it.
    let mut s = Server::start_in(dir, &[], &env);
    assert_eq!(
        s.get(&format!("/auc/imsi/{imsi}")).json()["sqn"],
        9 * 32 + 31
    );
    assert_eq!(seq_ind(&s), vec![(10, 0)]);
    // A clean stop as well: the new lease ends at SEQ 18.
    s.signal("TERM");
    assert!(s.wait_exit().success());
    let s = Server::start_in(s.kill(), &[], &env);
    assert_eq!(seq_ind(&s), vec![(19, 0)]);
    // A lease ends where it ends: 8 more vectors stay under the lease
    // taken at SEQ 19 (to SEQ 27), the next takes a new one.
    let got: Vec<_> = (0..9).flat_map(|_| seq_ind(&s)).collect();
    assert_eq!(got.first(), Some(&(20, 1)));
    assert_eq!(got.last(), Some(&(28, 9)));
    let dir = s.kill();
    let s = Server::start_in(dir, &[], &env);
    assert_eq!(seq_ind(&s), vec![(37, 0)]);
}

/// Every file under `dir`, concatenated.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn ki_and_opc_are_wrapped_at_rest_and_a_wrong_kek_is_a_clear_error() {
    let kek = (
        "AUTHPLANE_HSS__KEY_ENCRYPTION_KEY",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    );
    let s = Server::start_in(crate::harness::temp_dir("kek"), &["--cores", "1"], &[kek]);
    provision(&s, "001010000000007");
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000007").json();
    check(&[case("eps", &v[0], None, None)]);
    let dir = s.kill();
    let stored = all_bytes(&dir);
    for secret in [K, OPC] {
        let raw = hex::decode(secret).unwrap();
        assert!(
            !stored.windows(16).any(|w| w == raw.as_slice()),
            "a key is stored in clear"
        );
    }
    // Another KEK: a 500 that names the problem, and no SQN is used.
    let other = (
        "AUTHPLANE_HSS__KEY_ENCRYPTION_KEY",
        "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    );
    let s = Server::start_in(dir, &["--cores", "1"], &[other]);
    let r = s.get("/auc/aka/vector_count/1/imsi/001010000000007");
    assert_eq!(r.status, 500);
    assert!(
        r.json()["reason"]
            .as_str()
            .unwrap()
            .contains("key-encryption key"),
        "{}",
        r.text()
    );
    let sqn_before = s.get("/auc/imsi/001010000000007").json()["sqn"].clone();
    let dir = s.kill();
    // No KEK: the start warns, and the keys cannot be opened.
    let s = Server::start_in(dir, &["--cores", "1"], &[]);
    assert_eq!(
        s.get("/auc/aka/vector_count/1/imsi/001010000000007").status,
        500
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(s.logs().iter().any(|l| l.contains("UNENCRYPTED")));
    let dir = s.kill();
    // The right KEK again: vectors, continuing after the last SQN.
    let s = Server::start_in(dir, &["--cores", "1"], &[kek]);
    assert_eq!(s.get("/auc/imsi/001010000000007").json()["sqn"], sqn_before);
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000007").json();
    check(&[case("eps", &v[0], None, None)]);
}

/// A vector request for an IMSI whose AuC lives on the IMSI's shard
/// reaches that core once: from the other core it costs one mesh hop (the
/// index entry and the AuC read in one visit), from the owner none.
#[test]
fn a_vector_request_costs_at_most_one_hop() {
    let s = Server::start(&["--cores", "2"], &[]);
    let body = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","imsi":"001010000000077"}"#;
    assert_eq!(s.send_json("PUT", "/auc/", body).status, 200);
    let path = "/auc/aka/vector_count/1/imsi/001010000000077";
    assert_eq!(s.get(path).status, 200);
    let hops = || s.metric("authplane_mesh_hops_total");
    // A scrape itself costs a hop or two (which core takes it varies).
    const SCRAPE: f64 = 2.0;
    const N: usize = 20;
    let mut remote_seen = false;
    for _ in 0..16 {
        let before = hops();
        let mut c = s.connect();
        for _ in 0..N {
            c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            assert_eq!(c.response().status, 200);
        }
        let spent = hops() - before;
        // Each request on one connection is served by one core: all local
        // (no hop) or all remote (one hop each, never two).
        assert!(
            spent <= SCRAPE || (spent >= N as f64 && spent <= N as f64 + SCRAPE),
            "{spent} hops for {N} vector requests on one connection"
        );
        if spent > SCRAPE {
            remote_seen = true;
            break;
        }
    }
    assert!(remote_seen, "no connection landed on the other core");
}
