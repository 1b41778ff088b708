//! PyHSS's /subscriber API and the seed's provisioning walkthrough.

use serde_json::json;

use crate::harness::Server;

const AUC: &str = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","sqn":0}"#;
const APN: &str = r#"{"apn":"internet","apn_ambr_dl":9999999,"apn_ambr_ul":9999999,"qci":9,"arp_priority":1,"arp_preemption_capability":true,"arp_preemption_vulnerability":false}"#;

fn subscriber(auc_id: u64, apn_id: u64, imsi: &str, msisdn: &str) -> String {
    json!({
        "imsi": imsi, "enabled": true, "auc_id": auc_id, "default_apn": apn_id,
        "apn_list": apn_id.to_string(), "apn_list_swx": apn_id.to_string(), "msisdn": msisdn,
        "ue_ambr_dl": 999999, "ue_ambr_ul": 999999, "nam": 0, "roaming_enabled": true,
        "subscribed_rau_tau_timer": 600
    })
    .to_string()
}

#[test]
fn the_seed_walkthrough_provisions_a_subscriber_that_gets_vectors() {
    let s = Server::start(&["--cores", "2"], &[]);
    // 1. AuC without an IMSI; 2. APN; 3. subscriber referencing both.
    let auc_id = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn_id = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let r = s.send_json(
        "PUT",
        "/subscriber/",
        &subscriber(auc_id, apn_id, "001010000000001", "491792021244"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = r.json();
    let id = sub["subscriber_id"].as_u64().unwrap();
    // PyHSS 2.0.0's keys (plus the seed's apn_list_swx).
    for k in [
        "ue_ambr_ul",
        "serving_mme_peer",
        "last_seen_enodeb_id",
        "nam",
        "serving_msc",
        "enabled",
        "roaming_enabled",
        "serving_vlr_timestamp",
        "imsi",
        "roaming_rule_list",
        "subscriber_id",
        "auc_id",
        "subscribed_rau_tau_timer",
        "msisdn",
        "default_apn",
        "apn_list",
        "last_modified",
        "last_location_update_timestamp",
        "apn_list_swx",
    ] {
        assert!(sub.get(k).is_some(), "{k} missing: {sub}");
    }
    assert_eq!(
        s.get(&format!("/subscriber/{id}")).json()["imsi"],
        "001010000000001"
    );
    let by_imsi = s.get("/subscriber/imsi/001010000000001").json();
    assert_eq!(by_imsi["subscriber_id"], id);
    assert_eq!(by_imsi["attributes"], json!([]));
    assert_eq!(
        s.get("/subscriber/msisdn/491792021244").json()["subscriber_id"],
        id
    );
    // 4. The AuC is found through the subscriber: vectors by IMSI.
    assert_eq!(s.get("/auc/imsi/001010000000001").json()["auc_id"], auc_id);
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000001");
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(v.json().as_array().unwrap().len(), 1);

    // PATCH: a new MSISDN frees the old one.
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{id}"),
        r#"{"msisdn":"491790000000"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/subscriber/msisdn/491792021244").status, 404);
    assert_eq!(
        s.get("/subscriber/msisdn/491790000000").json()["subscriber_id"],
        id
    );
    assert_eq!(
        s.get("/subscriber/list").json().as_array().unwrap().len(),
        1
    );

    assert_eq!(
        s.send_json("DELETE", &format!("/subscriber/{id}"), "")
            .json(),
        json!({"Result": "OK"})
    );
    assert_eq!(s.get(&format!("/subscriber/{id}")).status, 404);
    assert_eq!(s.get("/subscriber/imsi/001010000000001").status, 404);
    assert_eq!(
        s.get("/auc/aka/vector_count/1/imsi/001010000000001").status,
        404
    );
}

#[test]
fn references_and_uniqueness_are_checked() {
    let s = Server::start(&[], &[]);
    let auc_id = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn_id = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let cases = [
        (subscriber(auc_id + 1000, apn_id, "001010000000002", "4917900001"), "auc_id"),
        (subscriber(auc_id, apn_id + 1000, "001010000000002", "4917900001"), "default_apn"),
        (subscriber(auc_id, apn_id, "bad", "4917900001"), "imsi"),
        (subscriber(auc_id, apn_id, "001010000000002", "12"), "msisdn"),
        (r#"{"imsi":"001010000000002"}"#.to_string(), "required"),
        (json!({"imsi": "001010000000002", "auc_id": auc_id, "default_apn": apn_id, "apn_list": "1,x"}).to_string(), "apn_list"),
        (json!({"imsi": "001010000000002", "auc_id": auc_id, "default_apn": apn_id, "apn_list": "1", "colour": "red"}).to_string(), "colour"),
    ];
    for (body, reason) in cases {
        let r = s.send_json("PUT", "/subscriber/", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let text = r.json()["reason"].as_str().unwrap().to_owned();
        assert!(text.contains(reason), "{body}: {text}");
    }
    assert_eq!(s.get("/subscriber/list").json(), json!([]));
    let ok = s.send_json(
        "PUT",
        "/subscriber/",
        &subscriber(auc_id, apn_id, "001010000000002", "4917900001"),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let dup = s.send_json(
        "PUT",
        "/subscriber/",
        &subscriber(auc_id, apn_id, "001010000000002", "4917900002"),
    );
    assert_eq!(dup.status, 400);
    let dup = s.send_json(
        "PUT",
        "/subscriber/",
        &subscriber(auc_id, apn_id, "001010000000003", "4917900001"),
    );
    assert_eq!(dup.status, 400);
    assert!(dup.json()["reason"].as_str().unwrap().contains("msisdn"));
}

#[test]
fn subscriber_routing_entries() {
    let s = Server::start(&["--cores", "2"], &[]);
    let auc_id = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn_id = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let sub = s
        .send_json(
            "PUT",
            "/subscriber/",
            &subscriber(auc_id, apn_id, "001010000000009", "4917900009"),
        )
        .json();
    let sid = sub["subscriber_id"].as_u64().unwrap();
    let body =
        json!({"subscriber_id": sid, "apn_id": apn_id, "ip_version": 0, "ip_address": "10.45.0.7"})
            .to_string();
    let r = s.send_json("PUT", "/subscriber/routing/", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let rid = r.json()["subscriber_routing_id"].as_u64().unwrap();
    // One entry per (subscriber, APN).
    assert_eq!(
        s.send_json("PUT", "/subscriber/routing/", &body).status,
        400
    );
    let got = s.get(&format!("/subscriber/routing/{sid}/{apn_id}")).json();
    assert_eq!(got["ip_address"], "10.45.0.7");
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/routing/{rid}"),
        r#"{"ip_address":"2001:db8::7","ip_version":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get(&format!("/subscriber/routing/{sid}/{apn_id}")).json()["ip_address"],
        "2001:db8::7"
    );
    // References and validation.
    for bad in [
        json!({"subscriber_id": sid + 100, "apn_id": apn_id}),
        json!({"subscriber_id": sid, "apn_id": apn_id + 100}),
        json!({"subscriber_id": sid, "apn_id": apn_id, "ip_address": "not-an-ip"}),
    ] {
        assert_eq!(
            s.send_json("PUT", "/subscriber/routing/", &bad.to_string())
                .status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        s.send_json(
            "PATCH",
            &format!("/subscriber/routing/{rid}"),
            r#"{"ip_version":9}"#
        )
        .status,
        400
    );
    assert_eq!(
        s.send_json("DELETE", &format!("/subscriber/routing/{sid}/{apn_id}"), "")
            .json(),
        json!({"Result": "OK"})
    );
    assert_eq!(
        s.get(&format!("/subscriber/routing/{sid}/{apn_id}")).status,
        404
    );
    assert_eq!(
        s.send_json(
            "PATCH",
            &format!("/subscriber/routing/{rid}"),
            r#"{"ip_version":0}"#
        )
        .status,
        404
    );
}
