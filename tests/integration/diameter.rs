//! S6a through the real server, against real Diameter peers:
//! python-diameter 0.9.0 as the MME (tests/tools/diameter_peer.py: its own
//! CER/DWR/DPR and message classes), every vector recomputed by the
//! independent Milenage of tests/tools/aka_check.py; and raw TCP for what
//! a well-behaved peer never sends.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use authplane::domain::diameter::dict::avp;
use authplane::domain::diameter::{app, command, flag, Builder, Message};
use serde_json::{json, Value};

use crate::harness::Server;
use crate::hss_vectors::check_cases;

/// TS 35.208 test set 1.
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const HSS: &str = "hss.authplane.localdomain";

/// An MME: python-diameter's node in a child process.
pub struct Mme {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Mme {
    pub fn connect(s: &Server, origin_host: &str) -> Mme {
        Mme::connect_to(s.diameter.expect("the Diameter listener runs"), origin_host)
    }

    /// Through a relay listening on `port` as `relay`.
    pub fn connect_via(port: u16, relay: &str, origin_host: &str) -> Mme {
        Mme::start(
            json!({"op": "connect", "port": port, "origin_host": origin_host,
            "realm": "epc.test", "peer_host": relay, "peer_realm": "authplane.localdomain"}),
        )
    }

    pub fn connect_to(addr: std::net::SocketAddr, origin_host: &str) -> Mme {
        Mme::start(
            json!({"op": "connect", "port": addr.port(), "origin_host": origin_host,
            "realm": "epc.test", "peer_host": HSS}),
        )
    }

    /// Another kind of peer (an S-CSCF, an AAA server) in `realm`, for
    /// applications `apps`.
    pub fn connect_as(s: &Server, origin_host: &str, realm: &str, apps: &[u32]) -> Mme {
        let addr = s.diameter.expect("the Diameter listener runs");
        Mme::start(
            json!({"op": "connect", "port": addr.port(), "origin_host": origin_host,
            "realm": realm, "peer_host": HSS, "apps": apps}),
        )
    }

    fn start(connect: Value) -> Mme {
        let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/diameter_peer.py");
        let mut child = Command::new("python3")
            .arg(tool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with python-diameter (scripts/deps test installs it)");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut m = Mme { child, stdin, out };
        let r = m.cmd(connect);
        assert_eq!(r["ok"], true, "{r}");
        m
    }

    pub fn cmd(&mut self, c: Value) -> Value {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("MME tool: {e}: {line:?} for {c}"));
        assert!(v.get("error").is_none(), "MME tool error {v} for {c}");
        v
    }

    /// The command's result; None when the tool is gone or the command
    /// failed (a peer that may be killed).
    pub fn try_cmd(&mut self, c: Value) -> Option<Value> {
        writeln!(self.stdin, "{c}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        let v: Value = serde_json::from_str(&line).ok()?;
        v.get("error").is_none().then_some(v)
    }

    /// The tool's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        let _ = self.cmd(json!({"op": "stop"}));
        let _ = self.child.wait();
    }
}

impl Drop for Mme {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AVPs `code` of a dumped AVP list.
pub fn all(avps: &Value, code: u64) -> Vec<&Value> {
    avps.as_array()
        .map(|a| a.iter().filter(|x| x["code"] == code).collect())
        .unwrap_or_default()
}

pub fn one(avps: &Value, code: u64) -> Option<&Value> {
    all(avps, code).into_iter().next()
}

pub fn u32_of(a: &Value) -> u32 {
    u32::from_str_radix(a["hex"].as_str().unwrap(), 16).unwrap()
}

pub fn hex_of(a: &Value) -> String {
    a["hex"].as_str().unwrap().to_owned()
}

/// (Result-Code, Experimental-Result-Code) of an answer.
pub fn codes(answer: &Value) -> (Option<u32>, Option<u32>) {
    let avps = &answer["avps"];
    let rc = one(avps, 268).map(u32_of);
    let exp = one(avps, 297)
        .and_then(|e| one(&e["avps"], 298))
        .map(u32_of);
    (rc, exp)
}

pub fn provision(s: &Server, imsi: &str, k: &str, opc: &str) -> u64 {
    let auc = s.send_json(
        "PUT",
        "/auc/",
        &format!(r#"{{"ki":"{k}","opc":"{opc}","amf":"8000","sqn":0,"imsi":"{imsi}"}}"#),
    );
    assert_eq!(auc.status, 200, "{}", auc.text());
    let auc_id = auc.json()["auc_id"].as_u64().unwrap();
    let apn = s
        .get("/apn/list")
        .json()
        .as_array()
        .and_then(|a| a.first().cloned())
        .map(|a| a["apn_id"].as_u64().unwrap());
    let apn = apn.unwrap_or_else(|| {
        let r = s.send_json(
            "PUT",
            "/apn/",
            r#"{"apn":"internet","apn_ambr_dl":200000,"apn_ambr_ul":100000,"qci":8,"arp_priority":3,"ip_version":0,"pgw_address":"10.9.0.1"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["apn_id"].as_u64().unwrap()
    });
    let msisdn = format!("61{}", &imsi[6..]);
    let sub = s.send_json(
        "PUT",
        "/subscriber/",
        &format!(
            r#"{{"imsi":"{imsi}","auc_id":{auc_id},"default_apn":{apn},"apn_list":"{apn}","msisdn":"{msisdn}","ue_ambr_dl":50000000,"ue_ambr_ul":20000000,"nam":2}}"#
        ),
    );
    assert_eq!(sub.status, 200, "{}", sub.text());
    sub.json()["subscriber_id"].as_u64().unwrap()
}

/// The E-UTRAN vectors of an AIA, as aka_check cases.
fn eutran_cases(answer: &Value, k: &str, opc: &str, plmn: &str) -> Vec<Value> {
    let info = one(&answer["avps"], 1413).expect("Authentication-Info");
    all(&info["avps"], 1414)
        .iter()
        .map(|v| {
            let f = |c| hex_of(one(&v["avps"], c).unwrap());
            json!({"k": k, "opc": opc, "amf": "8000", "kind": "s6a", "plmn": plmn,
                "item": u32_of(one(&v["avps"], 1419).unwrap()),
                "vector": {"rand": f(1447), "xres": f(1448), "autn": f(1449), "kasme": f(1450)}})
        })
        .collect()
}

#[test]
fn air_vectors_are_verified_by_an_independent_milenage() {
    let s = Server::start(&["--cores", "2"], &[]);
    provision(&s, "001010000000001", K, OPC);
    let mut mme = Mme::connect(&s, "mme1.epc.test");
    let mut cases = Vec::new();
    for n in [1u32, 3, 5] {
        let a = mme.cmd(json!({"op": "air", "imsi": "001010000000001", "n": n, "plmn": "00101"}));
        assert_eq!(codes(&a), (Some(2001), None), "{a}");
        let c = eutran_cases(&a, K, OPC, "00101");
        assert_eq!(c.len(), n as usize);
        let items: Vec<u64> = c.iter().map(|x| x["item"].as_u64().unwrap()).collect();
        assert_eq!(items, (1..=u64::from(n)).collect::<Vec<_>>());
        cases.extend(c);
    }
    // Another serving network: KASME follows the Visited-PLMN-Id.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000001", "n": 1, "plmn": "310410"}));
    cases.extend(eutran_cases(&a, K, OPC, "310410"));
    let sqns = check_cases(&cases);
    let distinct: BTreeSet<u64> = sqns.iter().copied().collect();
    assert_eq!(distinct.len(), sqns.len(), "an SQN repeats: {sqns:?}");
    assert!(sqns.windows(2).all(|w| w[0] < w[1]), "{sqns:?}");

    // UTRAN vectors carry CK and IK, recomputed too.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000001", "n": 0, "utran": 2}));
    let info = one(&a["avps"], 1413).unwrap();
    let utran: Vec<Value> = all(&info["avps"], 1415)
        .iter()
        .map(|v| {
            let f = |c| hex_of(one(&v["avps"], c).unwrap());
            json!({"k": K, "opc": OPC, "amf": "8000", "kind": "utran",
                "vector": {"rand": f(1447), "xres": f(1448), "autn": f(1449), "ck": f(625), "ik": f(626)}})
        })
        .collect();
    assert_eq!(utran.len(), 2, "{a}");
    assert!(check_cases(&utran)
        .iter()
        .all(|sqn| sqn > sqns.last().unwrap()));

    // Asking for more than hss.max_vectors_per_request gives that many.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000001", "n": 1000}));
    assert_eq!(eutran_cases(&a, K, OPC, "00101").len(), 32);

    // Unknown IMSI: Experimental-Result 5001.
    let a = mme.cmd(json!({"op": "air", "imsi": "001019999999999", "n": 1}));
    assert_eq!(codes(&a), (None, Some(5001)), "{a}");
    assert!(one(&a["avps"], 1413).is_none());
    mme.stop();
}

#[test]
fn disabled_and_roaming_subscribers_are_refused() {
    let s = Server::start(&[], &[]);
    let id = provision(&s, "001010000000002", K, OPC);
    let mut mme = Mme::connect(&s, "mme1.epc.test");
    // A network no rule names is allowed by default.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000002", "n": 1, "plmn": "20801"}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    // A rule denying that network.
    let net = s.send_json(
        "PUT",
        "/roaming/network/",
        r#"{"mcc":"208","mnc":"01","name":"FR"}"#,
    );
    let net_id = net.json()["roaming_network_id"].as_u64().unwrap();
    let rule = s.send_json(
        "PUT",
        "/roaming/rule/",
        &format!(r#"{{"roaming_network_id":{net_id},"allow":false}}"#),
    );
    assert_eq!(rule.status, 200, "{}", rule.text());
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000002", "n": 1, "plmn": "20801"}));
    assert_eq!(codes(&a), (None, Some(5004)), "{a}");
    let u = mme.cmd(json!({"op": "ulr", "imsi": "001010000000002", "plmn": "20801"}));
    assert_eq!(codes(&u), (None, Some(5004)), "{u}");
    // At home, still served.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000002", "n": 1, "plmn": "00101"}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    // Disabled: 5420, and nothing is issued.
    let before = s.get("/auc/imsi/001010000000002").json()["sqn"].clone();
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{id}"),
        r#"{"enabled":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000002", "n": 1}));
    assert_eq!(codes(&a), (None, Some(5420)), "{a}");
    assert_eq!(s.get("/auc/imsi/001010000000002").json()["sqn"], before);
    mme.stop();
}

/// The line tests/tools/aka_check.py prints for one helper `case` (an
/// AUTS, CK'/IK'): its own computation, nothing of authplane's.
pub fn aka_tool(case: &Value) -> String {
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/aka_check.py");
    let mut child = Command::new("python3")
        .arg(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    writeln!(child.stdin.take().unwrap(), "{case}").unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    out.trim().to_owned()
}

/// An AUTS as a USIM computes it, by the independent Milenage of
/// tests/tools/aka_check.py.
pub fn usim_auts(k: &str, opc: &str, rand: &str, sqn_ms: u64) -> String {
    let case = json!({"kind": "auts", "k": k, "opc": opc, "rand": rand, "sqn_ms": sqn_ms});
    aka_tool(&case)
        .strip_prefix("auts ")
        .expect("auts")
        .to_owned()
}

#[test]
fn an_air_with_resynchronization_info_resyncs_before_its_vectors() {
    let s = Server::start(&[], &[]);
    // The published case first (auts_resync.json, auts-libosmocore-1:
    // K = OPc = 000102..0f, RAND 0, SQN_MS 31).
    let k = "000102030405060708090a0b0c0d0e0f";
    provision(&s, "001010000000005", k, k);
    let mut mme = Mme::connect(&s, "mme1.epc.test");
    let zero = "00000000000000000000000000000000";
    assert_eq!(usim_auts(k, k, zero, 31), "8711a0ec9e1637df17f80b384ee4");
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000005", "n": 1,
        "resync": format!("{zero}8711a0ec9e1637df17f80b384ee4")}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    assert!(check_cases(&eutran_cases(&a, k, k, "00101"))[0] > 31);

    // A USIM far ahead of the HSS (SEQ 100000): vectors above SQN_MS.
    provision(&s, "001010000000007", K, OPC);
    let rand = "0123456789abcdef0123456789abcdef";
    let sqn_ms = 100_000 << 5 | 7;
    let auts = usim_auts(K, OPC, rand, sqn_ms);
    // A forged MAC-S: vectors all the same (TS 33.102 §6.3.5), SQN kept.
    let mut forged = auts.clone();
    forged.replace_range(26..28, if &auts[26..28] == "00" { "01" } else { "00" });
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000007", "n": 1,
        "resync": format!("{rand}{forged}")}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let sqn = check_cases(&eutran_cases(&a, K, OPC, "00101"))[0];
    assert!(sqn < sqn_ms, "a forged AUTS moved the SQN to {sqn}");
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000007", "n": 3,
        "resync": format!("{rand}{auts}")}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let sqns = check_cases(&eutran_cases(&a, K, OPC, "00101"));
    assert!(
        sqns.iter().all(|s| *s > sqn_ms),
        "{sqns:?} not above {sqn_ms}"
    );
    assert_eq!(sqns.len(), 3);
    // A Re-Synchronization-Info of the wrong size: 5004.
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000007", "n": 1, "resync": "0011"}));
    assert_eq!(codes(&a), (Some(5004), None), "{a}");
    mme.stop();
}

#[test]
fn rest_and_air_requests_for_one_imsi_never_share_an_sqn() {
    let s = Server::start(&["--cores", "2"], &[]);
    provision(&s, "001010000000003", K, OPC);
    let per_client = 30;
    let (http, dia) = (s.addr, s.diameter.unwrap());
    let sqns = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..3 {
            handles.push(scope.spawn(move || {
                let mut mme = Mme::connect_to(dia, &format!("mme{i}.epc.test"));
                let mut cases = Vec::new();
                for _ in 0..per_client {
                    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000003", "n": 1}));
                    cases.extend(eutran_cases(&a, K, OPC, "00101"));
                }
                mme.stop();
                check_cases(&cases)
            }));
        }
        for _ in 0..3 {
            handles.push(scope.spawn(move || {
                let mut cases = Vec::new();
                let mut c = crate::harness::Client::connect(http);
                for _ in 0..per_client {
                    c.send(b"GET /auc/aka/vector_count/1/imsi/001010000000003?plmn=00101 HTTP/1.1\r\nHost: t\r\n\r\n");
                    let r = c.response();
                    assert_eq!(r.status, 200, "{}", r.text());
                    cases.push(json!({"k": K, "opc": OPC, "amf": "8000", "kind": "eps",
                        "plmn": "00101", "vector": r.json()[0]}));
                }
                check_cases(&cases)
            }));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<u64>>()
    });
    let distinct: BTreeSet<u64> = sqns.iter().copied().collect();
    assert_eq!(sqns.len(), 6 * per_client);
    assert_eq!(distinct.len(), sqns.len(), "REST and S6a shared an SQN");
}

#[test]
fn ulr_answers_the_provisioned_subscription_and_a_new_mme_cancels_the_old() {
    let s = Server::start(&["--cores", "2"], &[]);
    let id = provision(&s, "001010000000004", K, OPC);
    let apn = s.get("/apn/list").json()[0]["apn_id"].as_u64().unwrap();
    let r = s.send_json(
        "PUT",
        "/subscriber/routing/",
        &format!(
            r#"{{"subscriber_id":{id},"apn_id":{apn},"ip_version":0,"ip_address":"100.64.1.7"}}"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut mme1 = Mme::connect(&s, "mme1.epc.test");
    let u = mme1.cmd(json!({"op": "ulr", "imsi": "001010000000004"}));
    assert_eq!(codes(&u), (Some(2001), None), "{u}");
    let sd = one(&u["avps"], 1400).expect("Subscription-Data");
    // MSISDN 61000000004 in TBCD.
    assert_eq!(hex_of(one(&sd["avps"], 701).unwrap()), "1600000000f4");
    assert_eq!(
        u32_of(one(&sd["avps"], 1417).unwrap()),
        2,
        "Network-Access-Mode"
    );
    let ambr = one(&sd["avps"], 1435).unwrap();
    assert_eq!(u32_of(one(&ambr["avps"], 516).unwrap()), 20_000_000);
    assert_eq!(u32_of(one(&ambr["avps"], 515).unwrap()), 50_000_000);
    let profile = one(&sd["avps"], 1429).unwrap();
    assert_eq!(u32_of(one(&profile["avps"], 1423).unwrap()), 1);
    let conf = one(&profile["avps"], 1430).unwrap();
    assert_eq!(u32_of(one(&conf["avps"], 1423).unwrap()), 1);
    assert_eq!(
        hex_of(one(&conf["avps"], 493).unwrap()),
        hex::encode("internet")
    );
    assert_eq!(
        u32_of(one(&conf["avps"], 1456).unwrap()),
        0,
        "PDN-Type IPv4"
    );
    let qos = one(&conf["avps"], 1431).unwrap();
    assert_eq!(u32_of(one(&qos["avps"], 1028).unwrap()), 8);
    let arp = one(&qos["avps"], 1034).unwrap();
    assert_eq!(u32_of(one(&arp["avps"], 1046).unwrap()), 3);
    // The static address from subscriber routing, as an Address AVP.
    assert_eq!(
        hex_of(one(&conf["avps"], 848).unwrap()),
        "00016440_0107".replace('_', "")
    );
    let mip = one(&conf["avps"], 486).unwrap();
    assert_eq!(hex_of(one(&mip["avps"], 334).unwrap()), "00010a090001");
    // The serving MME is stored.
    let sub = s.get("/subscriber/imsi/001010000000004").json();
    assert_eq!(sub["serving_mme"], "mme1.epc.test");
    assert_eq!(sub["serving_mme_realm"], "epc.test");
    assert!(s.get("/oam/serving_subs").json()["001010000000004"].is_object());
    // Skip-Subscriber-Data.
    let u = mme1.cmd(json!({"op": "ulr", "imsi": "001010000000004", "flags": 4}));
    assert_eq!(codes(&u), (Some(2001), None));
    assert!(one(&u["avps"], 1400).is_none(), "{u}");

    // A second MME: the first gets a CLR (MME_UPDATE_PROCEDURE).
    let mut mme2 = Mme::connect(&s, "mme2.epc.test");
    let u = mme2.cmd(json!({"op": "ulr", "imsi": "001010000000004"}));
    assert_eq!(codes(&u), (Some(2001), None));
    let clrs = mme1.cmd(json!({"op": "clrs", "wait": 10, "count": 1}));
    let clr = &clrs["clrs"][0];
    assert_eq!(clr["imsi"], "001010000000004", "{clrs}");
    assert_eq!(clr["cancellation_type"], 0);
    assert_eq!(clr["origin_host"], HSS);
    assert_eq!(clr["destination_host"], "mme1.epc.test");
    assert_eq!(
        s.get("/subscriber/imsi/001010000000004").json()["serving_mme"],
        "mme2.epc.test"
    );
    // A PUR from the MME the subscriber left changes nothing.
    let p = mme1.cmd(json!({"op": "pur", "imsi": "001010000000004"}));
    assert_eq!(codes(&p), (Some(2001), None));
    assert_eq!(u32_of(one(&p["avps"], 1442).unwrap()), 0);
    assert_eq!(
        s.get("/subscriber/imsi/001010000000004").json()["serving_mme"],
        "mme2.epc.test"
    );
    // From the serving one it clears the MME.
    let p = mme2.cmd(json!({"op": "pur", "imsi": "001010000000004"}));
    assert_eq!(u32_of(one(&p["avps"], 1442).unwrap()), 1);
    assert!(s.get("/subscriber/imsi/001010000000004").json()["serving_mme"].is_null());
    // NOR is accepted; an unknown IMSI is 5001 (not PyHSS's 5030).
    let n = mme2.cmd(json!({"op": "nor", "imsi": "001010000000004"}));
    assert_eq!(codes(&n), (Some(2001), None));
    let u = mme2.cmd(json!({"op": "ulr", "imsi": "001019999999999"}));
    assert_eq!(codes(&u), (None, Some(5001)), "{u}");
    mme1.stop();
    mme2.stop();
}

#[test]
fn a_clr_sent_from_rest_answers_once_the_cla_is_back() {
    let s = Server::start(&["--cores", "2"], &[]);
    provision(&s, "001010000000006", K, OPC);
    // No MME connected: 503, nothing changed.
    let r = s.send_json(
        "PUT",
        "/push/clr/001010000000006",
        r#"{"diameterPeer":"mme1.epc.test","DestinationRealm":"epc.test","cancellationType":2,"immediateReattach":true}"#,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    let mut mme = Mme::connect(&s, "mme1.epc.test");
    let peers = s.get("/oam/diameter_peers").json();
    let open: Vec<&Value> = peers
        .as_object()
        .unwrap()
        .values()
        .filter(|p| p["Hostname"] == "mme1.epc.test" && p["Connected"] == true)
        .collect();
    assert_eq!(open.len(), 1, "{peers}");
    assert_eq!(open[0]["State"], "Open");
    assert_eq!(open[0]["Applications"], json!(["S6a"]));
    let u = mme.cmd(json!({"op": "ulr", "imsi": "001010000000006"}));
    assert_eq!(codes(&u), (Some(2001), None));
    let r = s.send_json(
        "PUT",
        "/push/clr/001010000000006",
        r#"{"diameterPeer":"mme1.epc.test","DestinationHost":"mme1.epc.test","DestinationRealm":"epc.test","cancellationType":2,"immediateReattach":true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result_code"], 2001);
    let clrs = mme.cmd(json!({"op": "clrs", "wait": 5, "count": 1}));
    assert_eq!(clrs["clrs"][0]["cancellation_type"], 2, "{clrs}");
    assert_eq!(clrs["clrs"][0]["clr_flags"], 2, "Reattach-Required");
    assert!(s.get("/subscriber/imsi/001010000000006").json()["serving_mme"].is_null());
    // /oam/deregister: a CLR to the serving MME, and the outcome reported.
    mme.cmd(json!({"op": "ulr", "imsi": "001010000000006"}));
    let r = s.get("/oam/deregister/001010000000006");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["clr"]["outcome"], "answered", "{body}");
    assert_eq!(body["clr"]["result_code"], 2001);
    assert!(body["subscriber"]["serving_mme"].is_null());
    let clrs = mme.cmd(json!({"op": "clrs", "wait": 5, "count": 2}));
    assert_eq!(clrs["clrs"].as_array().unwrap().len(), 2, "{clrs}");
    mme.stop();
    // Once the MME has left (DPR), the registry says so.
    std::thread::sleep(Duration::from_millis(200));
    let peers = s.get("/oam/diameter_peers").json();
    assert!(
        peers
            .as_object()
            .unwrap()
            .values()
            .all(|p| p["Connected"] == false),
        "{peers}"
    );
}

/// A raw connection for what real peers never send.
struct Raw(TcpStream);

impl Raw {
    fn open(s: &Server) -> Raw {
        let t = TcpStream::connect(s.diameter.unwrap()).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(t)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// The next message, or None when the server closed the connection.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut head = [0u8; 20];
        self.0.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let mut rest = vec![0u8; len - 20];
        self.0.read_exact(&mut rest).ok()?;
        let mut m = head.to_vec();
        m.extend(rest);
        Some(m)
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0) | Err(_))
    }
}

fn cer(origin_host: &str, apps: &[u32]) -> Vec<u8> {
    let mut b = Builder::request(command::CAPABILITIES_EXCHANGE, app::BASE, 0, 1, 1);
    b.text(&avp::ORIGIN_HOST, origin_host)
        .text(&avp::ORIGIN_REALM, "epc.test")
        .address(&avp::HOST_IP_ADDRESS, &[127, 0, 0, 1])
        .u32(&avp::VENDOR_ID, 0)
        .text(&avp::PRODUCT_NAME, "raw");
    for a in apps {
        b.u32(&avp::AUTH_APPLICATION_ID, *a);
    }
    b.finish()
}

fn result_code(frame: &[u8]) -> (u32, bool) {
    let m = Message::parse(frame).unwrap();
    (m.u32(&avp::RESULT_CODE).unwrap(), m.header.is_error())
}

fn air(hop: u32, extra: impl FnOnce(&mut Builder)) -> Vec<u8> {
    let mut b = Builder::request(
        command::AUTHENTICATION_INFORMATION,
        app::S6A,
        flag::PROXIABLE,
        hop,
        hop,
    );
    b.text(&avp::SESSION_ID, &format!("raw;{hop}"))
        .u32(&avp::AUTH_SESSION_STATE, 1)
        .text(&avp::ORIGIN_HOST, "raw.epc.test")
        .text(&avp::ORIGIN_REALM, "epc.test")
        .text(&avp::DESTINATION_REALM, "authplane.localdomain")
        .text(&avp::USER_NAME, "001010000000001")
        .bytes(&avp::VISITED_PLMN_ID, &[0x00, 0xf1, 0x10]);
    extra(&mut b);
    b.finish()
}

#[test]
fn malformed_and_out_of_place_messages_get_the_rfc_6733_answer() {
    let s = Server::start(&[], &[]);
    provision(&s, "001010000000001", K, OPC);

    // Anything before the CER closes the connection.
    let mut r = Raw::open(&s);
    r.send(&air(5, |_| {}));
    assert!(r.closed(), "a request before CER was served");

    // No common application: CEA 5010, closed.
    let mut r = Raw::open(&s);
    r.send(&cer("raw.epc.test", &[4]));
    assert_eq!(result_code(&r.recv().unwrap()), (5010, false));
    assert!(r.closed());

    // A good CER, then what a broken peer sends.
    let mut r = Raw::open(&s);
    r.send(&cer("raw.epc.test", &[app::S6A]));
    let cea = r.recv().unwrap();
    assert_eq!(result_code(&cea), (2001, false));
    let cea = Message::parse(&cea).unwrap();
    assert_eq!(cea.text(&avp::ORIGIN_HOST), Some(HSS));
    assert!(cea.u32(&avp::ORIGIN_STATE_ID).is_some());

    // An unknown AVP with the M bit: 5001 naming it in Failed-AVP.
    r.send(&air(10, |b| {
        b.raw(&[0, 0, 0x30, 0x39, 0x40, 0, 0, 12, 1, 2, 3, 4]);
    }));
    let a = r.recv().unwrap();
    assert_eq!(result_code(&a), (5001, false));
    let m = Message::parse(&a).unwrap();
    assert_eq!(m.header.hop_by_hop, 10);
    let failed = m.get(&avp::FAILED_AVP).unwrap();
    assert_eq!(failed.data, &[0, 0, 0x30, 0x39, 0x40, 0, 0, 12, 1, 2, 3, 4]);

    // An Unsigned32 of 2 bytes: 5014.
    r.send(&air(11, |b| {
        b.bytes(&avp::ULR_FLAGS, &[0, 1]);
    }));
    assert_eq!(result_code(&r.recv().unwrap()), (5014, false));

    // The E bit on a request: 3008 with the E bit.
    let mut bad = air(12, |_| {});
    bad[4] |= flag::ERROR;
    r.send(&bad);
    assert_eq!(result_code(&r.recv().unwrap()), (3008, true));

    // Another Destination-Host: 3002. An application not negotiated: 3007.
    r.send(&air(13, |b| {
        b.text(&avp::DESTINATION_HOST, "other.hss");
    }));
    assert_eq!(result_code(&r.recv().unwrap()), (3002, true));
    let mut b = Builder::request(300, app::CX, 0, 14, 14);
    b.text(&avp::SESSION_ID, "x")
        .text(&avp::ORIGIN_HOST, "raw")
        .text(&avp::ORIGIN_REALM, "r");
    r.send(&b.finish());
    assert_eq!(result_code(&r.recv().unwrap()), (3007, true));
    // A command S6a does not answer here: 3001.
    let mut b = Builder::request(320, app::S6A, 0, 15, 15);
    b.text(&avp::SESSION_ID, "x")
        .text(&avp::ORIGIN_HOST, "raw")
        .text(&avp::ORIGIN_REALM, "r");
    r.send(&b.finish());
    assert_eq!(result_code(&r.recv().unwrap()), (3001, true));

    // DWR: DWA 2001; the connection still serves a good AIR.
    let mut b = Builder::request(command::DEVICE_WATCHDOG, app::BASE, 0, 16, 16);
    b.text(&avp::ORIGIN_HOST, "raw")
        .text(&avp::ORIGIN_REALM, "r");
    r.send(&b.finish());
    assert_eq!(result_code(&r.recv().unwrap()), (2001, false));
    r.send(&air(17, |b| {
        b.begin(&avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO)
            .u32(&avp::NUMBER_OF_REQUESTED_VECTORS, 2)
            .end();
    }));
    let a = r.recv().unwrap();
    assert_eq!(result_code(&a), (2001, false));
    let m = Message::parse(&a).unwrap();
    let vectors = m
        .get(&avp::AUTHENTICATION_INFO)
        .unwrap()
        .group()
        .filter(|v| v.is_ok_and(|v| v.is(&avp::E_UTRAN_VECTOR)))
        .count();
    assert_eq!(vectors, 2);

    // Pipelined: ten AIRs in one write, ten answers by hop-by-hop id.
    let mut burst = Vec::new();
    for hop in 100..110 {
        burst.extend(air(hop, |_| {}));
    }
    r.send(&burst);
    let hops: BTreeSet<u32> = (0..10)
        .map(|_| {
            Message::parse(&r.recv().unwrap())
                .unwrap()
                .header
                .hop_by_hop
        })
        .collect();
    assert_eq!(hops, (100..110).collect());

    // A version 2 header: 5011, and the stream is closed.
    let mut v2 = air(18, |_| {});
    v2[0] = 2;
    r.send(&v2);
    assert_eq!(result_code(&r.recv().unwrap()).0, 5011);
    assert!(r.closed());

    // A length that is not a multiple of 4: 5015, closed.
    let mut r = Raw::open(&s);
    r.send(&cer("raw.epc.test", &[app::S6A]));
    r.recv().unwrap();
    let mut odd = air(19, |_| {});
    odd[3] = odd[3].wrapping_add(1);
    r.send(&odd);
    assert_eq!(result_code(&r.recv().unwrap()).0, 5015);
    assert!(r.closed());

    // DPR: DPA, then the server closes.
    let mut r = Raw::open(&s);
    r.send(&cer("raw.epc.test", &[app::S6A]));
    r.recv().unwrap();
    let mut b = Builder::request(command::DISCONNECT_PEER, app::BASE, 0, 20, 20);
    b.text(&avp::ORIGIN_HOST, "raw")
        .text(&avp::ORIGIN_REALM, "r")
        .u32(&avp::DISCONNECT_CAUSE, 2);
    r.send(&b.finish());
    assert_eq!(result_code(&r.recv().unwrap()), (2001, false));
    assert!(r.closed());

    // The server is still up.
    assert_eq!(s.get("/oam/ping").status, 200);
}

#[test]
fn only_named_peers_are_accepted_when_peers_are_configured() {
    let dir = crate::harness::temp_dir("diameter-peers");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("peers.toml");
    std::fs::write(
        &cfg,
        "[[diameter.peers]]\norigin_host = \"mme1.epc.test\"\napplications = [\"s6a\"]\n",
    )
    .unwrap();
    let s = Server::start(&["--config", cfg.to_str().unwrap()], &[]);
    let mut r = Raw::open(&s);
    r.send(&cer("intruder.epc.test", &[app::S6A]));
    assert_eq!(result_code(&r.recv().unwrap()), (3010, true));
    assert!(r.closed());
    let mut r = Raw::open(&s);
    r.send(&cer("mme1.epc.test", &[app::S6A]));
    assert_eq!(result_code(&r.recv().unwrap()), (2001, false));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_origin_state_id_grows_across_restarts_and_shutdown_sends_dpr() {
    let s = Server::start(&[], &[]);
    let state = |s: &Server| {
        let mut r = Raw::open(s);
        r.send(&cer("raw.epc.test", &[app::S6A]));
        let cea = r.recv().unwrap();
        (
            Message::parse(&cea)
                .unwrap()
                .u32(&avp::ORIGIN_STATE_ID)
                .unwrap(),
            r,
        )
    };
    let (first, mut r) = state(&s);
    // SIGTERM: a DPR (REBOOTING) on the open connection.
    s.signal("TERM");
    let dpr = r.recv().expect("a DPR at shutdown");
    let m = Message::parse(&dpr).unwrap();
    assert!(m.header.is_request());
    assert_eq!(m.header.code, command::DISCONNECT_PEER);
    assert_eq!(m.u32(&avp::DISCONNECT_CAUSE), Some(0));
    let mut b = Builder::answer(&m.header);
    b.u32(&avp::RESULT_CODE, 2001)
        .text(&avp::ORIGIN_HOST, "raw")
        .text(&avp::ORIGIN_REALM, "r");
    r.send(&b.finish());
    let dir = s.kill();
    let s = Server::start_in(dir, &[], &[]);
    let (second, _) = state(&s);
    assert!(second > first, "Origin-State-Id {first} then {second}");
}

#[test]
fn a_clr_that_gets_no_cla_times_out_and_says_so() {
    let s = Server::start(&[], &[("AUTHPLANE_DIAMETER__REQUEST_TIMEOUT_MS", "500")]);
    provision(&s, "001010000000008", K, OPC);
    // A peer that takes CLRs and never answers them.
    let mut r = Raw::open(&s);
    r.send(&cer("mute.epc.test", &[app::S6A]));
    assert_eq!(result_code(&r.recv().unwrap()), (2001, false));
    let push = s.send_json(
        "PUT",
        "/push/clr/001010000000008",
        r#"{"diameterPeer":"mute.epc.test","DestinationRealm":"epc.test","cancellationType":2,"immediateReattach":false}"#,
    );
    assert_eq!(push.status, 504, "{}", push.text());
    assert!(push.text().contains("no CLA"), "{}", push.text());
    // The CLR did go out, addressed as asked.
    let clr = r.recv().unwrap();
    let m = Message::parse(&clr).unwrap();
    assert!(m.header.is_request());
    assert_eq!(m.header.code, command::CANCEL_LOCATION);
    assert_eq!(m.text(&avp::USER_NAME), Some("001010000000008"));
    assert_eq!(m.text(&avp::DESTINATION_HOST), Some("mute.epc.test"));
    assert_eq!(m.u32(&avp::CANCELLATION_TYPE), Some(2));
    assert_eq!(m.get(&avp::CLR_FLAGS), None);
    // A CLA arriving after the timeout is dropped; the connection stays.
    let mut b = Builder::answer(&m.header);
    b.u32(&avp::RESULT_CODE, 2001)
        .text(&avp::ORIGIN_HOST, "mute.epc.test")
        .text(&avp::ORIGIN_REALM, "epc.test");
    r.send(&b.finish());
    let mut dwr = Builder::request(command::DEVICE_WATCHDOG, app::BASE, 0, 77, 77);
    dwr.text(&avp::ORIGIN_HOST, "mute.epc.test")
        .text(&avp::ORIGIN_REALM, "epc.test");
    r.send(&dwr.finish());
    assert_eq!(result_code(&r.recv().unwrap()), (2001, false));
}
