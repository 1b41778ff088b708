//! The table layer, through the real binary: the generic CRUD contract
//! every declared table keeps, references and unique keys, and that no
//! acknowledged create is lost or its id reused across graceful and
//! SIGKILL restarts under concurrency.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::harness::{Client, Response, Server};

const AUC: &str = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","sqn":0}"#;
const APN: &str = r#"{"apn":"internet","apn_ambr_dl":9999999,"apn_ambr_ul":9999999}"#;

/// One request on a new connection to `addr`.
fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let mut c = Client::connect(addr);
    c.send(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    c.response()
}

fn reason(r: &Response) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_owned()
}

/// What the contract needs to know of a table.
struct Contract {
    base: &'static str,
    id_field: &'static str,
    /// A valid create body; `n` makes its unique keys distinct.
    create: Box<dyn Fn(u64) -> Value>,
    /// A field and another valid value for it.
    change: (&'static str, Value),
    /// A field that may be `null` (set by `create`), if any.
    optional: Option<&'static str>,
    required: &'static str,
    wrong_type: (&'static str, Value),
    unique: Option<&'static str>,
}

fn without_last_modified(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("last_modified");
    }
    v
}

/// The generic CRUD contract, against a running server.
fn contract(s: &Server, c: &Contract) {
    let (base, idf) = (c.base, c.id_field);
    let item = |id: u64| format!("{base}/{id}");
    // Create: the answer is the row with its id; GET answers the same.
    let mut rows = Vec::new();
    for n in 0..5 {
        let r = s.send_json("PUT", &format!("{base}/"), &(c.create)(n).to_string());
        assert_eq!(r.status, 200, "{base} create {n}: {}", r.text());
        let row = r.json();
        let id = row[idf].as_u64().expect("id");
        assert_eq!(s.get(&item(id)).json(), row, "{base}: GET after PUT");
        rows.push(row);
    }
    let ids: Vec<u64> = rows.iter().map(|r| r[idf].as_u64().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{base}: ids repeat {ids:?}"
    );
    let id = ids[0];
    // PATCH: absent keys unchanged.
    let r = s.send_json("PATCH", &item(id), "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        without_last_modified(&r.json()),
        without_last_modified(&rows[0])
    );
    // A change.
    let (field, value) = &c.change;
    let r = s.send_json("PATCH", &item(id), &json!({ *field: value }).to_string());
    assert_eq!(r.status, 200, "{base} patch {field}: {}", r.text());
    assert_eq!(&r.json()[*field], value);
    assert_eq!(&s.get(&item(id)).json()[*field], value);
    // The row's own answer sent back: its id and last_modified are ignored.
    let mut back = s.get(&item(id)).json();
    back["last_modified"] = json!("1999-01-01T00:00:00Z");
    let r = s.send_json("PATCH", &item(id), &back.to_string());
    assert_eq!(r.status, 200, "{base} patch with own answer: {}", r.text());
    assert_eq!(r.json()[idf], id);
    // null clears an optional field, and is a 400 for a required one.
    if let Some(opt) = c.optional {
        let r = s.send_json("PATCH", &item(id), &json!({ opt: null }).to_string());
        assert_eq!(r.status, 200, "{base} null {opt}: {}", r.text());
        assert_eq!(s.get(&item(id)).json()[opt], Value::Null);
    }
    let bad = [
        (json!({ c.required: null }), c.required),
        (json!({ "no_such_field": 1 }), "no_such_field"),
        (json!({ c.wrong_type.0: c.wrong_type.1 }), c.wrong_type.0),
    ];
    let before = s.get(&item(id)).json();
    for (body, named) in bad {
        let r = s.send_json("PATCH", &item(id), &body.to_string());
        assert_eq!(r.status, 400, "{base} PATCH {body}: {}", r.text());
        assert!(
            reason(&r).contains(named),
            "{base} PATCH {body}: {}",
            r.text()
        );
        assert_eq!(r.json()["result"], "Failed");
    }
    assert_eq!(
        s.get(&item(id)).json(),
        before,
        "{base}: a refused PATCH changed the row"
    );
    // A create without a required field.
    let mut missing = (c.create)(100);
    missing.as_object_mut().unwrap().remove(c.required);
    let r = s.send_json("PUT", &format!("{base}/"), &missing.to_string());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(reason(&r).contains(c.required), "{}", r.text());
    // A unique key another row holds.
    if let Some(u) = c.unique {
        let mut dup = (c.create)(101);
        dup[u] = rows[1][u].clone();
        let r = s.send_json("PUT", &format!("{base}/"), &dup.to_string());
        assert_eq!(r.status, 400, "{base} duplicate {u}: {}", r.text());
        assert!(reason(&r).contains(u), "{}", r.text());
        let r = s.send_json("PATCH", &item(id), &json!({ u: rows[1][u] }).to_string());
        assert_eq!(r.status, 400, "{base} PATCH duplicate {u}: {}", r.text());
    }
    // Pages: in id order, disjoint, covering every row.
    let mut seen = Vec::new();
    for page in 0..4 {
        let l = s
            .get(&format!("{base}/list?page={page}&page_size=2"))
            .json();
        let l = l.as_array().unwrap().clone();
        assert!(l.len() <= 2);
        seen.extend(l.iter().map(|r| r[idf].as_u64().unwrap()));
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(seen, sorted, "{base}: pages out of id order");
    assert_eq!(seen.len(), 5, "{base}: pages {seen:?}");
    // Missing rows.
    let none = 987_654_321;
    assert_eq!(s.get(&item(none)).status, 404);
    assert_eq!(s.send_json("PATCH", &item(none), "{}").status, 404);
    assert_eq!(s.send_json("DELETE", &item(none), "").status, 404);
    assert_eq!(s.get(&format!("{base}/x")).status, 400);
    // Delete.
    let last = ids[4];
    let r = s.send_json("DELETE", &item(last), "");
    assert_eq!(r.json(), json!({"Result": "OK"}));
    assert_eq!(s.get(&item(last)).status, 404);
    let l = s.get(&format!("{base}/list?page_size=100")).json();
    assert_eq!(l.as_array().unwrap().len(), 4);
}

fn create_id(s: &Server, path: &str, body: &str, idf: &str) -> u64 {
    let r = s.send_json("PUT", path, body);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()[idf].as_u64().unwrap()
}

#[test]
fn tft_keeps_the_crud_contract() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/tft",
            id_field: "tft_id",
            create: Box::new(
                |n| json!({"tft_group_id": n % 2, "tft_string": "permit out ip from any to any", "direction": n % 4}),
            ),
            change: (
                "tft_string",
                json!("permit out ip from 10.98.0.20 80 to any 1-65535"),
            ),
            optional: None,
            required: "tft_string",
            wrong_type: ("direction", json!("downlink")),
            unique: None,
        },
    );
    // The field rules.
    for (body, named) in [
        (
            json!({"tft_group_id": 1, "tft_string": "x", "direction": 4}),
            "direction",
        ),
        (
            json!({"tft_group_id": 1, "tft_string": "", "direction": 1}),
            "tft_string",
        ),
        (
            json!({"tft_group_id": 1, "tft_string": "x".repeat(101), "direction": 1}),
            "tft_string",
        ),
    ] {
        let r = s.send_json("PUT", "/tft/", &body.to_string());
        assert_eq!(r.status, 400, "{body}");
        assert!(reason(&r).contains(named), "{}", r.text());
    }
}

#[test]
fn apn_keeps_the_crud_contract() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/apn",
            id_field: "apn_id",
            create: Box::new(
                |n| json!({"apn": format!("apn{n}"), "apn_ambr_dl": 1000, "apn_ambr_ul": 1000, "pgw_address": "10.0.0.1"}),
            ),
            change: ("qci", json!(5)),
            optional: Some("pgw_address"),
            required: "apn",
            wrong_type: ("apn_ambr_dl", json!("fast")),
            unique: None,
        },
    );
}

#[test]
fn subscriber_keeps_the_crud_contract_and_its_references() {
    let s = Server::start(&["--cores", "2"], &[]);
    let auc = create_id(&s, "/auc/", AUC, "auc_id");
    let apn = create_id(&s, "/apn/", APN, "apn_id");
    contract(
        &s,
        &Contract {
            base: "/subscriber",
            id_field: "subscriber_id",
            create: Box::new(move |n| {
                json!({"imsi": format!("00101{:010}", n), "msisdn": format!("49170{:07}", n),
                       "auc_id": auc, "default_apn": apn, "apn_list": apn.to_string()})
            }),
            change: ("ue_ambr_dl", json!(5000)),
            optional: Some("msisdn"),
            required: "imsi",
            wrong_type: ("enabled", json!("yes")),
            unique: Some("imsi"),
        },
    );
    // Rows still referenced cannot be deleted; the answer names who holds them.
    for path in [format!("/apn/{apn}"), format!("/auc/{auc}")] {
        let r = s.send_json("DELETE", &path, "");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(reason(&r).contains("subscriber"), "{}", r.text());
        assert_eq!(s.get(&path).status, 200, "{path} was deleted");
    }
    // A reference to a missing row names the field.
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{}", {
            let l = s.get("/subscriber/list").json();
            l[0]["subscriber_id"].as_u64().unwrap()
        }),
        &json!({"default_apn": apn + 50}).to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("default_apn"), "{}", r.text());
    // Once nothing references them, they go.
    for sub in s
        .get("/subscriber/list?page_size=100")
        .json()
        .as_array()
        .unwrap()
    {
        let id = sub["subscriber_id"].as_u64().unwrap();
        assert_eq!(
            s.send_json("DELETE", &format!("/subscriber/{id}"), "")
                .status,
            200
        );
    }
    assert_eq!(
        s.send_json("DELETE", &format!("/apn/{apn}"), "").status,
        200
    );
    assert_eq!(
        s.send_json("DELETE", &format!("/auc/{auc}"), "").status,
        200
    );
}

/// 64 concurrent creates per round, ten rounds, a restart after each:
/// SIGTERM for five, SIGKILL for five. Every acknowledged subscriber is
/// found afterwards by id, IMSI and MSISDN, every acknowledged TFT by id,
/// and no id is handed out twice.
#[test]
fn acknowledged_creates_survive_restarts_and_no_id_repeats() {
    let mut s = Server::start(&["--cores", "2"], &[]);
    let auc = create_id(&s, "/auc/", AUC, "auc_id");
    let apn = create_id(&s, "/apn/", APN, "apn_id");
    let mut subs: Vec<(u64, String, String)> = Vec::new();
    let mut tfts: Vec<(u64, u64)> = Vec::new();
    for round in 0..10u64 {
        let addr = s.addr;
        let workers: Vec<_> = (0..64u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let n = round * 64 + i;
                    let (imsi, msisdn) = (format!("00101{n:010}"), format!("49171{n:07}"));
                    let body = json!({"imsi": imsi, "msisdn": msisdn, "auc_id": auc,
                                      "default_apn": apn, "apn_list": apn.to_string()});
                    let r = send(addr, "PUT", "/subscriber/", &body.to_string());
                    let sub = (r.status == 200)
                        .then(|| (r.json()["subscriber_id"].as_u64().unwrap(), imsi, msisdn));
                    let body = json!({"tft_group_id": n, "tft_string": "permit out ip from any to any", "direction": 1});
                    let r = send(addr, "PUT", "/tft/", &body.to_string());
                    let tft = (r.status == 200).then(|| (r.json()["tft_id"].as_u64().unwrap(), n));
                    (sub, tft)
                })
            })
            .collect();
        for w in workers {
            let (sub, tft) = w.join().unwrap();
            subs.extend(sub);
            tfts.extend(tft);
        }
        assert!(
            subs.len() as u64 > round * 60,
            "too few creates acknowledged"
        );
        let dir = if round < 5 {
            s.signal("TERM");
            assert!(s.wait_exit().success());
            s.kill()
        } else {
            s.kill()
        };
        s = Server::start_in(dir, &["--cores", "2"], &[]);
        for (id, imsi, msisdn) in &subs {
            let r = s.get(&format!("/subscriber/{id}"));
            assert_eq!(r.status, 200, "round {round}: subscriber {id} lost");
            assert_eq!(r.json()["imsi"], *imsi, "subscriber {id} overwritten");
            assert_eq!(
                s.get(&format!("/subscriber/imsi/{imsi}")).json()["subscriber_id"],
                *id
            );
            assert_eq!(
                s.get(&format!("/subscriber/msisdn/{msisdn}")).json()["subscriber_id"],
                *id
            );
        }
        for (id, group) in &tfts {
            let r = s.get(&format!("/tft/{id}"));
            assert_eq!(r.status, 200, "round {round}: TFT {id} lost");
            assert_eq!(r.json()["tft_group_id"], *group, "TFT {id} overwritten");
        }
    }
    let ids: HashSet<u64> = subs.iter().map(|s| s.0).collect();
    assert_eq!(
        ids.len(),
        subs.len(),
        "a subscriber id was handed out twice"
    );
    let ids: HashSet<u64> = tfts.iter().map(|t| t.0).collect();
    assert_eq!(ids.len(), tfts.len(), "a TFT id was handed out twice");
    let listed = s.get("/subscriber/list?page_size=10000").json();
    assert_eq!(listed.as_array().unwrap().len(), subs.len());
}

#[derive(Debug, Clone)]
enum Step {
    Create(u8),
    Patch(usize, u8),
    Delete(usize),
    Restart { kill: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..4).prop_map(Step::Create),
        3 => (any::<usize>(), 0u8..4).prop_map(|(i, d)| Step::Patch(i, d)),
        2 => any::<usize>().prop_map(Step::Delete),
        1 => any::<bool>().prop_map(|kill| Step::Restart { kill }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random creates, patches and deletes of sharded and catalog rows,
    /// with restarts (graceful or SIGKILL) between them, against a model:
    /// the server always lists exactly the model's rows.
    #[test]
    fn random_changes_across_restarts_match_a_model(steps in prop::collection::vec(step(), 1..24)) {
        let mut s = Server::start(&["--cores", "2"], &[]);
        let auc = create_id(&s, "/auc/", AUC, "auc_id");
        let apn = create_id(&s, "/apn/", APN, "apn_id");
        let mut tfts: BTreeMap<u64, u8> = BTreeMap::new();
        let mut subs: BTreeMap<u64, u8> = BTreeMap::new();
        let mut next = 0u64;
        for st in steps {
            match st {
                Step::Create(d) => {
                    next += 1;
                    let r = s.send_json("PUT", "/tft/", &json!({"tft_group_id": 7, "tft_string": "permit out ip from any to any", "direction": d}).to_string());
                    prop_assert_eq!(r.status, 200);
                    prop_assert!(tfts.insert(r.json()["tft_id"].as_u64().unwrap(), d).is_none());
                    let body = json!({"imsi": format!("00102{next:010}"), "auc_id": auc, "default_apn": apn,
                                      "apn_list": apn.to_string(), "nam": d});
                    let r = s.send_json("PUT", "/subscriber/", &body.to_string());
                    prop_assert_eq!(r.status, 200);
                    prop_assert!(subs.insert(r.json()["subscriber_id"].as_u64().unwrap(), d).is_none());
                }
                Step::Patch(i, d) => {
                    if let Some(&id) = tfts.keys().nth(i % tfts.len().max(1)) {
                        let r = s.send_json("PATCH", &format!("/tft/{id}"), &json!({"direction": d}).to_string());
                        prop_assert_eq!(r.status, 200);
                        tfts.insert(id, d);
                    }
                    if let Some(&id) = subs.keys().nth(i % subs.len().max(1)) {
                        let r = s.send_json("PATCH", &format!("/subscriber/{id}"), &json!({"nam": d}).to_string());
                        prop_assert_eq!(r.status, 200);
                        subs.insert(id, d);
                    }
                }
                Step::Delete(i) => {
                    if let Some(&id) = tfts.keys().nth(i % tfts.len().max(1)) {
                        prop_assert_eq!(s.send_json("DELETE", &format!("/tft/{id}"), "").status, 200);
                        tfts.remove(&id);
                    }
                    if let Some(&id) = subs.keys().nth(i % subs.len().max(1)) {
                        prop_assert_eq!(s.send_json("DELETE", &format!("/subscriber/{id}"), "").status, 200);
                        subs.remove(&id);
                    }
                }
                Step::Restart { kill } => {
                    if !kill {
                        s.signal("TERM");
                        prop_assert!(s.wait_exit().success());
                    }
                    let dir = s.kill();
                    s = Server::start_in(dir, &["--cores", "2"], &[]);
                }
            }
            let listed: BTreeMap<u64, u8> = s.get("/tft/list?page_size=1000").json().as_array().unwrap().iter()
                .map(|t| (t["tft_id"].as_u64().unwrap(), t["direction"].as_u64().unwrap() as u8)).collect();
            prop_assert_eq!(&listed, &tfts);
            let listed: BTreeMap<u64, u8> = s.get("/subscriber/list?page_size=1000").json().as_array().unwrap().iter()
                .map(|t| (t["subscriber_id"].as_u64().unwrap(), t["nam"].as_u64().unwrap() as u8)).collect();
            prop_assert_eq!(&listed, &subs);
        }
    }
}

#[test]
fn charging_rule_keeps_the_crud_contract() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/charging_rule",
            id_field: "charging_rule_id",
            create: Box::new(|n| {
                json!({"rule_name": format!("rule{n}"), "qci": 1, "mbr_dl": 128000, "mbr_ul": 128000,
                       "gbr_dl": 128000, "gbr_ul": 128000, "tft_group_id": 1, "precedence": 100})
            }),
            change: ("rating_group", json!(4000)),
            optional: Some("rule_name"),
            required: "mbr_dl",
            wrong_type: ("qci", json!("best")),
            unique: None,
        },
    );
}

/// A rule's TFTs come from the TFTs' group index, kept in the same commit
/// as each TFT: moved, deleted, and after a restart.
#[test]
fn a_charging_rule_lists_the_tfts_of_its_group() {
    let s = Server::start(&["--cores", "2"], &[]);
    let tft = |group: u64, dir: u64| {
        let body = json!({"tft_group_id": group, "tft_string": "permit out ip from any to any", "direction": dir});
        create_id(&s, "/tft/", &body.to_string(), "tft_id")
    };
    let (a, b, other) = (tft(7, 1), tft(7, 2), tft(8, 3));
    let rule = json!({"rule_name": "voice", "qci": 1, "mbr_dl": 1, "mbr_ul": 1, "gbr_dl": 1,
                      "gbr_ul": 1, "tft_group_id": 7});
    let id = create_id(&s, "/charging_rule/", &rule.to_string(), "charging_rule_id");
    let tfts = |s: &Server| -> Vec<u64> {
        let r = s.get(&format!("/pcrf/{id}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["rule_name"], "voice");
        v["tft"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tft_id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(tfts(&s), [a, b]);
    assert_eq!(
        s.send_json("PATCH", &format!("/tft/{other}"), r#"{"tft_group_id":7}"#)
            .status,
        200
    );
    assert_eq!(
        s.send_json("PATCH", &format!("/tft/{a}"), r#"{"tft_group_id":9}"#)
            .status,
        200
    );
    assert_eq!(tfts(&s), [b, other]);
    assert_eq!(s.send_json("DELETE", &format!("/tft/{b}"), "").status, 200);
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(tfts(&s), [other]);
    assert_eq!(s.get("/pcrf/999").status, 404);
}

#[test]
fn ifc_template_keeps_the_crud_contract_and_refuses_what_is_not_jinja2() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/ifc_template",
            id_field: "ifc_template_id",
            create: Box::new(|n| {
                json!({"name": format!("ifc{n}"), "description": "VoLTE",
                       "template_content": "<IMSSubscription><PrivateID>{{ imsi }}@ims</PrivateID></IMSSubscription>"})
            }),
            change: ("template_content", json!("<IMSSubscription>{% for m in msisdns %}<m>{{ m }}</m>{% endfor %}</IMSSubscription>")),
            optional: Some("description"),
            required: "name",
            wrong_type: ("template_content", json!(5)),
            unique: Some("name"),
        },
    );
    let r = s.send_json(
        "PUT",
        "/ifc_template/",
        r#"{"name":"broken","template_content":"<x>{% for m in msisdns %}</x>"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(reason(&r).contains("template_content"), "{}", r.text());
    let by_name = s.get("/ifc_template/name/ifc1").json();
    assert_eq!(by_name["name"], "ifc1");
    assert_eq!(s.get("/ifc_template/name/nothing").status, 404);
    assert_eq!(
        s.send_json("POST", "/ifc_template/cache/invalidate", "")
            .json()["result"],
        "OK"
    );
    let id = by_name["ifc_template_id"].as_u64().unwrap();
    assert_eq!(
        s.send_json("POST", &format!("/ifc_template/cache/invalidate/{id}"), "")
            .status,
        200
    );
    assert_eq!(
        s.send_json("POST", "/ifc_template/cache/invalidate/999", "")
            .status,
        404
    );
}

#[test]
fn ims_subscriber_keeps_the_crud_contract_and_names_its_template() {
    let s = Server::start(&["--cores", "2"], &[]);
    let ifc = create_id(
        &s,
        "/ifc_template/",
        r#"{"name":"default_ifc","template_content":"<IMSSubscription/>"}"#,
        "ifc_template_id",
    );
    contract(
        &s,
        &Contract {
            base: "/ims_subscriber",
            id_field: "ims_subscriber_id",
            create: Box::new(move |n| {
                json!({"imsi": format!("00101{n:010}"), "msisdn": format!("49172{n:07}"),
                       "msisdn_list": format!("49172{n:07}"), "ifc_template_id": ifc})
            }),
            change: (
                "scscf",
                json!("sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060"),
            ),
            optional: Some("imsi"),
            required: "msisdn",
            wrong_type: ("ifc_template_id", json!("default_ifc")),
            unique: Some("msisdn"),
        },
    );
    let got = s
        .get("/ims_subscriber/ims_subscriber_msisdn/491720000001")
        .json();
    assert_eq!(got["imsi"], "001010000000001");
    let id = got["ims_subscriber_id"].as_u64().unwrap();
    assert_eq!(
        s.get("/ims_subscriber/ims_subscriber_imsi/001010000000001")
            .json()["ims_subscriber_id"],
        id
    );
    // The template is referenced: it cannot go while a subscriber names it,
    // and a missing one is refused.
    let r = s.send_json("DELETE", &format!("/ifc_template/{ifc}"), "");
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("IMS subscriber"), "{}", r.text());
    let r = s.send_json(
        "PATCH",
        &format!("/ims_subscriber/{id}"),
        &json!({"ifc_template_id": ifc + 9}).to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("ifc_template_id"), "{}", r.text());
    // PyHSS 2.0.0's shape: no ifc_template_id key unless set.
    let r = s.send_json(
        "PUT",
        "/ims_subscriber/",
        r#"{"imsi":"5231231","msisdn":"5231231","ifc_path":"x.xml"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("ifc_template_id").is_none());
}

#[test]
fn roaming_networks_and_rules_keep_the_crud_contract() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/roaming/network",
            id_field: "roaming_network_id",
            create: Box::new(
                |n| json!({"name": format!("Partner {n}"), "preference": 1, "mcc": "262", "mnc": "02"}),
            ),
            change: ("preference", json!(7)),
            optional: Some("name"),
            required: "mcc",
            wrong_type: ("preference", json!("high")),
            unique: None,
        },
    );
    let net = create_id(
        &s,
        "/roaming/network/",
        r#"{"mcc":"001","mnc":"01"}"#,
        "roaming_network_id",
    );
    contract(
        &s,
        &Contract {
            base: "/roaming/rule",
            id_field: "roaming_rule_id",
            create: Box::new(
                move |n| json!({"roaming_network_id": net, "allow": n % 2 == 0, "enabled": true}),
            ),
            change: ("allow", json!(false)),
            optional: None,
            required: "roaming_network_id",
            wrong_type: ("enabled", json!("yes")),
            unique: None,
        },
    );
    assert_eq!(
        s.send_json("PUT", "/roaming/network/", r#"{"mcc":"1","mnc":"01"}"#)
            .status,
        400
    );
    // A rule names an existing network; a subscriber names existing rules.
    let r = s.send_json(
        "PUT",
        "/roaming/rule/",
        &json!({"roaming_network_id": net + 50}).to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("roaming_network_id"), "{}", r.text());
    let rule = s.get("/roaming/rule/list").json()[0]["roaming_rule_id"]
        .as_u64()
        .unwrap();
    let auc = create_id(&s, "/auc/", AUC, "auc_id");
    let apn = create_id(&s, "/apn/", APN, "apn_id");
    let sub = |rules: String| {
        json!({"imsi": "001010000000088", "auc_id": auc, "default_apn": apn,
               "apn_list": apn.to_string(), "roaming_rule_list": rules})
        .to_string()
    };
    let r = s.send_json("PUT", "/subscriber/", &sub(format!("{rule},{}", rule + 99)));
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("roaming_rule_list"), "{}", r.text());
    assert_eq!(
        s.send_json("PUT", "/subscriber/", &sub(rule.to_string()))
            .status,
        200
    );
    let r = s.send_json("DELETE", &format!("/roaming/rule/{rule}"), "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        s.send_json("DELETE", &format!("/roaming/network/{net}"), "")
            .status,
        400
    );
}

/// Attributes live with their subscriber and come with its reads by IMSI
/// and MSISDN.
#[test]
fn subscriber_attributes_come_with_their_subscriber() {
    let s = Server::start(&["--cores", "2"], &[]);
    let auc = create_id(&s, "/auc/", AUC, "auc_id");
    let apn = create_id(&s, "/apn/", APN, "apn_id");
    let mut subs = Vec::new();
    for n in 0..3 {
        let body = json!({"imsi": format!("0010100000005{n:02}"), "msisdn": format!("4917300000{n}"),
                          "auc_id": auc, "default_apn": apn, "apn_list": apn.to_string()});
        subs.push(create_id(
            &s,
            "/subscriber/",
            &body.to_string(),
            "subscriber_id",
        ));
    }
    let attr = |sid: u64, k: &str| {
        let body = json!({"subscriber_id": sid, "key": k, "value": format!("{k} of {sid}")});
        create_id(
            &s,
            "/subscriber_attributes/",
            &body.to_string(),
            "subscriber_attributes_id",
        )
    };
    let a = attr(subs[0], "CustomerName");
    let b = attr(subs[0], "ExternalId");
    attr(subs[1], "CustomerName");
    let keys = |s: &Server, sid: u64| -> Vec<String> {
        let r = s.get(&format!("/subscriber_attributes/{sid}"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&s, subs[0]), ["CustomerName", "ExternalId"]);
    assert_eq!(keys(&s, subs[2]), Vec::<String>::new());
    let by_imsi = s.get("/subscriber/imsi/001010000000500").json();
    assert_eq!(by_imsi["attributes"].as_array().unwrap().len(), 2);
    assert_eq!(
        by_imsi["attributes"][0]["value"],
        format!("CustomerName of {}", subs[0])
    );
    let by_msisdn = s.get("/subscriber/msisdn/49173000001").json();
    assert_eq!(by_msisdn["attributes"][0]["key"], "CustomerName");
    // PATCH and its rules; an attribute does not move to another subscriber.
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber_attributes/{b}"),
        r#"{"value":"42"}"#,
    );
    assert_eq!(r.json()["value"], "42");
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber_attributes/{b}"),
        &json!({"subscriber_id": subs[2]}).to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("subscriber_id"), "{}", r.text());
    let r = s.send_json(
        "PUT",
        "/subscriber_attributes/",
        &json!({"subscriber_id": 9999, "key": "k"}).to_string(),
    );
    assert_eq!(r.status, 400);
    let r = s.send_json(
        "PUT",
        "/subscriber_attributes/",
        &json!({"subscriber_id": subs[0], "key": "k".repeat(61)}).to_string(),
    );
    assert_eq!(r.status, 400);
    // A subscriber with attributes is not deleted from under them.
    let r = s.send_json("DELETE", &format!("/subscriber/{}", subs[1]), "");
    assert_eq!(r.status, 400);
    assert!(reason(&r).contains("subscriber attribute"), "{}", r.text());
    assert_eq!(
        s.send_json("DELETE", &format!("/subscriber_attributes/{a}"), "")
            .json(),
        json!({"Result": "OK"})
    );
    assert_eq!(
        s.get("/subscriber_attributes/list?page_size=100")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(keys(&s, subs[0]), ["ExternalId"]);
    assert_eq!(
        s.get("/subscriber/imsi/001010000000500").json()["attributes"][0]["value"],
        "42"
    );
}

#[test]
fn eir_rules_keep_the_crud_contract_and_check_their_patterns() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/eir",
            id_field: "eir_id",
            create: Box::new(
                |n| json!({"imei": format!("^77{n}.*"), "imsi": "^001010000000001$", "regex_mode": 1, "match_response_code": 1}),
            ),
            change: ("match_response_code", json!(2)),
            optional: None,
            required: "imei",
            wrong_type: ("regex_mode", json!("regex")),
            unique: None,
        },
    );
    for (body, named) in [
        (
            json!({"imei": "([", "regex_mode": 1, "match_response_code": 1}),
            "imei",
        ),
        (
            json!({"imei": "1234", "regex_mode": 2, "match_response_code": 1}),
            "regex_mode",
        ),
        (
            json!({"imei": "1234", "regex_mode": 0, "match_response_code": 3}),
            "match_response_code",
        ),
        (
            json!({"imei": "(\\w{1000}){1000}", "regex_mode": 1, "match_response_code": 1}),
            "imei",
        ),
    ] {
        let r = s.send_json("PUT", "/eir/", &body.to_string());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(reason(&r).contains(named), "{}", r.text());
    }
    // Without a TAC database the look-up is gone, as PyHSS answers.
    let r = s.get("/eir/lookup_imei/353456789012345");
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["result"], "Failed");
}

#[test]
fn imei_lookups_answer_from_the_tac_database() {
    let dir = crate::harness::temp_dir("tac");
    let csv = dir.join("tac.csv");
    std::fs::write(&csv, "35345678,Acme, Phone 1\n353457,Acme,Older\n").unwrap();
    let s = Server::start(
        &[],
        &[("AUTHPLANE_HSS__TAC_DATABASE_CSV", csv.to_str().unwrap())],
    );
    let r = s.get("/eir/lookup_imei/353456789012345");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"tacPrefix": "35345678", "name": "Acme", "model": "Phone 1"})
    );
    assert_eq!(
        s.get("/eir/lookup_imei/353457000000000").json()["model"],
        "Older"
    );
    assert_eq!(s.get("/eir/lookup_imei/999999999999999").status, 404);
    // A file that is not there stops the start, naming the key.
    let missing = dir.join("missing.csv");
    let err = crate::harness::refused_start(
        &dir.join("data"),
        1,
        &[("AUTHPLANE_HSS__TAC_DATABASE_CSV", missing.as_os_str())],
    );
    assert!(err.contains("hss.tac_database_csv"), "{err}");
}

/// The EIR history: filled by equipment checks (here: a GeoRed peer's
/// push, as PyHSS sends it), read by IMSI or IMEI, cleared by either.
#[test]
fn eir_history_keeps_each_pair_once_and_is_read_and_cleared_by_imsi_or_imei() {
    let dir = crate::harness::temp_dir("tac");
    let csv = dir.join("tac.csv");
    std::fs::write(&csv, "35345678,Acme, Phone 1\n").unwrap();
    let env = [("AUTHPLANE_HSS__TAC_DATABASE_CSV", csv.to_str().unwrap())];
    let s = Server::start(&["--cores", "2"], &env);
    let push = |s: &Server, imsi: &str, imei: &str, code: Value| {
        let body = json!({"imsi": imsi, "imei": imei, "match_response_code": code});
        let r = s.send_json("PATCH", "/geored/", &body.to_string());
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()[0].clone()
    };
    let a = push(&s, "001010000000071", "353456789012345", json!(0));
    assert_eq!(a["imsi_imei"], "001010000000071,353456789012345");
    assert_eq!(a["imsi"], "001010000000071");
    assert_eq!(a["imei"], "353456789012345");
    assert_eq!(a["match_response_code"], 0);
    // The same pair with the same answer: the same entry, unchanged.
    let again = push(&s, "001010000000071", "353456789012345", json!("0"));
    assert_eq!(again, a);
    // Another device for the IMSI, and the first device in another SIM.
    push(&s, "001010000000071", "490154203237518", json!(1));
    push(&s, "001010000000072", "353456789012345", json!(2));
    // A changed answer updates the pair's entry.
    let changed = push(&s, "001010000000071", "490154203237518", json!(2));
    assert_eq!(changed["match_response_code"], 2);
    let list = s.get("/eir/eir_history/list").json();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    let by_imsi = s.get("/eir/eir_history/001010000000071").json();
    assert_eq!(by_imsi.as_array().unwrap().len(), 2, "{by_imsi}");
    let by_imei = s.get("/eir/eir_history/353456789012345").json();
    let by_imei = by_imei.as_array().unwrap();
    assert_eq!(by_imei.len(), 2);
    assert_eq!(by_imei[0]["imei_result"]["model"], "Phone 1");
    assert!(s
        .get("/eir/eir_history/999")
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    // Not digits, or an answer that is not 0, 1 or 2: a 400, nothing kept.
    for bad in [
        json!({"imsi": "001010000000073", "imei": "35345678901234x", "match_response_code": 0}),
        json!({"imsi": "001010000000073", "imei": "353456789012345", "match_response_code": 7}),
        json!({"imsi": "001010000000073", "imei": "353456789012345"}),
    ] {
        let r = s.send_json("PATCH", "/geored/", &bad.to_string());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // Durable before the answer.
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &env);
    assert_eq!(
        s.get("/eir/eir_history/list")
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Cleared by IMEI: both SIMs' entries of that device go.
    let r = s.send_json("DELETE", "/eir/eir_history/353456789012345", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let left = s.get("/eir/eir_history/list").json();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["imei"], "490154203237518");
    assert!(s
        .get("/eir/eir_history/001010000000072")
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    // The pair can be seen again, as a new entry.
    let b = push(&s, "001010000000071", "353456789012345", json!(0));
    assert!(b["imsi_imei_history_id"].as_u64() > a["imsi_imei_history_id"].as_u64());
}

#[test]
fn emergency_subscriber_keeps_the_crud_contract() {
    let s = Server::start(&["--cores", "2"], &[]);
    contract(
        &s,
        &Contract {
            base: "/pcrf/emergency_subscriber",
            id_field: "emergency_subscriber_id",
            create: Box::new(|n| {
                json!({"imsi": format!("00101{n:010}"), "serving_pgw": "pgw01", "ip": format!("10.0.0.{}", n + 1),
                       "rat_type": "EUTRAN"})
            }),
            change: ("serving_pcscf", json!("pcscf01")),
            optional: Some("imsi"),
            required: "ip",
            wrong_type: ("rat_type", json!(6)),
            unique: None,
        },
    );
}
