//! GeoRed between two real servers, each the other's peer: serving state
//! and SQN set on one reach the other in PyHSS's body, are not echoed
//! back, and the SQN a peer learned keeps it from issuing below it. A
//! peer that is down holds back only its own pushes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::Server;

const AUC: &str = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","imsi":"001010000000081"}"#;
const APN: &str = r#"{"apn":"internet","apn_ambr_dl":1,"apn_ambr_ul":1}"#;

/// The same subscriber, provisioned on `s`; returns (auc, subscriber,
/// IMS subscriber) ids.
fn provision(s: &Server) -> (u64, u64, u64) {
    let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000081", "msisdn": "4917400081", "auc_id": auc,
                      "default_apn": apn, "apn_list": apn.to_string()});
    let sub = s.send_json("PUT", "/subscriber/", &body.to_string()).json()["subscriber_id"]
        .as_u64()
        .unwrap();
    let ims = json!({"imsi": "001010000000081", "msisdn": "4917400081"});
    let ims = s
        .send_json("PUT", "/ims_subscriber/", &ims.to_string())
        .json()["ims_subscriber_id"]
        .as_u64()
        .unwrap();
    (auc, sub, ims)
}

/// Waits (bounded) until `read` gives what `done` accepts; returns it.
fn eventually(what: &str, read: impl Fn() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = read();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: still {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn url(s: &Server) -> String {
    format!("http://{}", s.addr)
}

fn sqn(s: &Server, auc: u64) -> u64 {
    s.get(&format!("/auc/{auc}")).json()["sqn"]
        .as_u64()
        .unwrap()
}

#[test]
fn two_servers_converge_without_echo_and_never_issue_below_a_peers_sqn() {
    let a = Server::start(&["--cores", "2"], &[]);
    let b = Server::start(&["--cores", "2"], &[]);
    let (auc_a, sub_a, ims_a) = provision(&a);
    let (auc_b, _, _) = provision(&b);
    // A also names a peer that is down: it must not hold back B's pushes.
    let dead = "http://127.0.0.1:1";
    let r = a.send_json(
        "PATCH",
        "/geored/peers",
        &json!({"peers": [url(&b), dead]}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = b.send_json(
        "PATCH",
        "/geored/peers",
        &json!({"peers": [url(&a)]}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(b.get("/geored/peers").json()["peers"], json!([url(&a)]));
    let bad = a.send_json("PATCH", "/geored/peers", r#"{"peers": ["ftp://x"]}"#);
    assert_eq!(bad.status, 400);

    // Serving MME set on A reaches B.
    let r = a.send_json(
        "PATCH",
        &format!("/subscriber/{sub_a}"),
        r#"{"serving_mme": "mme-a.example", "serving_mme_realm": "epc.example", "serving_mme_peer": "mme-a;hss-a"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let on_b = eventually(
        "serving MME on B",
        || b.get("/subscriber/imsi/001010000000081").json(),
        |v| v["serving_mme"] == "mme-a.example",
    );
    assert_eq!(on_b["serving_mme_realm"], "epc.example");
    assert_eq!(on_b["serving_mme_peer"], "mme-a;hss-a");
    // The S-CSCF too.
    let r = a.send_json(
        "PATCH",
        &format!("/ims_subscriber/{ims_a}"),
        r#"{"scscf": "sip:scscf-a.example:6060", "scscf_realm": "ims.example"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    eventually(
        "S-CSCF on B",
        || {
            b.get("/ims_subscriber/ims_subscriber_imsi/001010000000081")
                .json()
        },
        |v| v["scscf"] == "sip:scscf-a.example:6060",
    );

    // Reconciliation: A, B and a third server C that disagrees.
    let c = Server::start(&[], &[]);
    let (_, _, ims_c) = provision(&c);
    let r = c.send_json(
        "PATCH",
        &format!("/ims_subscriber/{ims_c}"),
        r#"{"scscf": "sip:scscf-c.example"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let peers = json!({"peers": [url(&b), dead, url(&c)]}).to_string();
    assert_eq!(a.send_json("PATCH", "/geored/peers", &peers).status, 200);
    let rec = a.get("/oam/reconcile/ims/001010000000081").json();
    assert_eq!(
        rec["localhost"]["scscf"], "sip:scscf-a.example:6060",
        "{rec}"
    );
    assert_eq!(rec[url(&b)]["scscf"], "sip:scscf-a.example:6060", "{rec}");
    assert_eq!(rec[url(&c)]["scscf"], "sip:scscf-c.example", "{rec}");
    assert!(rec[dead].is_string(), "{rec}");
    assert!(rec["localhost"].get("ims_subscriber_id").is_none());
    let mismatches = rec["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 2, "{rec}");
    assert!(mismatches.iter().all(|m| m.get(url(&c)).is_some()), "{rec}");
    let peers = json!({"peers": [url(&b), dead]}).to_string();
    assert_eq!(a.send_json("PATCH", "/geored/peers", &peers).status, 200);
    assert_eq!(a.get("/oam/reconcile/ims/001010000000099").status, 404);
    // The ENUM records of A's IMS subscribers.
    let e = a.get("/oam/reconcile/enum").json();
    assert_eq!(e["count"], 1, "{e}");
    assert_eq!(e["records"][0]["name"], "1.8.0.0.0.4.7.1.9.4.e164.arpa.");
    assert_eq!(
        e["records"][0]["regexp"],
        "!^.*$!sip:+4917400081@ims.mnc001.mcc001.3gppnetwork.org!"
    );

    // SQNs issued on A: B learns them, and issues above them.
    let r = a.get("/auc/aka/vector_count/5/imsi/001010000000081?plmn=00101");
    assert_eq!(r.status, 200, "{}", r.text());
    let issued_a = sqn(&a, auc_a);
    assert!(issued_a > 0);
    eventually(
        "SQN on B",
        || json!(sqn(&b, auc_b)),
        |v| v.as_u64().unwrap() >= issued_a,
    );
    let r = b.get("/auc/aka/vector_count/1/imsi/001010000000081?plmn=00101");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = &r.json()[0];
    // The vector's SQN, recomputed independently with set 1's keys.
    let c = json!({"k": "465b5ce8b199b49faa5f0a2ee238a6bc", "opc": "cd63cb71954a9f4e48a5994e37a02baf",
                   "amf": "8000", "kind": "eps", "vector": v});
    let sqn_b = crate::hss_vectors::check_cases(&[c])[0];
    assert!(
        sqn_b > issued_a,
        "B issued SQN {sqn_b}, not above A's {issued_a}"
    );
    // ... and A learns B's.
    eventually(
        "SQN back on A",
        || json!(sqn(&a, auc_a)),
        |v| v.as_u64().unwrap() >= sqn_b,
    );

    // A subscriber B does not have: B refuses the push (404), A drops it
    // rather than retrying it for ever.
    let auc2 = a
        .send_json("PUT", "/auc/", &AUC.replace("081", "082"))
        .json()["auc_id"]
        .as_u64()
        .unwrap();
    let body =
        json!({"imsi": "001010000000082", "auc_id": auc2, "default_apn": 1, "apn_list": "1"});
    let only_a = a.send_json("PUT", "/subscriber/", &body.to_string());
    assert_eq!(only_a.status, 200, "{}", only_a.text());
    let only_a = only_a.json()["subscriber_id"].as_u64().unwrap();
    let r = a.send_json(
        "PATCH",
        &format!("/subscriber/{only_a}"),
        r#"{"serving_mme": "mme-a.example"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = eventually(
        "the refused push dropped",
        || a.get("/geored/peers").json()["status"][url(&b)].clone(),
        |v| v["failed"].as_u64().unwrap_or(0) >= 1 && v["pending"] == 0,
    );
    assert!(
        refused["last_error"].as_str().unwrap().contains("404"),
        "{refused}"
    );

    // Nothing B applied from A was pushed back to A: B's pushes are its
    // own SQN only.
    let status_b = b.get("/geored/peers").json();
    let sent_b = status_b["status"][url(&a)]["sent"].as_u64().unwrap();
    assert_eq!(sent_b, 1, "{status_b}");
    let status_a = eventually(
        "A's counters",
        || a.get("/geored/peers").json(),
        |v| v["status"][dead]["failed"].as_u64().unwrap_or(0) > 0,
    );
    assert!(
        status_a["status"][url(&b)]["sent"].as_u64().unwrap() >= 3,
        "{status_a}"
    );
    assert!(
        status_a["status"][dead]["pending"].as_u64().unwrap() > 0,
        "{status_a}"
    );
    assert!(
        status_a["status"][dead]["last_error"].is_string(),
        "{status_a}"
    );
    // A's own state is unchanged by its peer.
    assert_eq!(
        a.get("/subscriber/imsi/001010000000081").json()["serving_mme"],
        "mme-a.example"
    );

    // The peer list is kept across a restart.
    let dir = b.kill();
    let b = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(b.get("/geored/peers").json()["peers"], json!([url(&a)]));
    assert!(b.get("/geored").json()["serving_mme"] == "string");
    assert_eq!(b.get("/geored/webhooks").status, 200);
}
