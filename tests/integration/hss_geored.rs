//! GeoRed, inbound: a peer's pushed serving state and SQN applied through
//! the tables, in PyHSS's bodies.

use serde_json::json;

use crate::harness::Server;

const AUC: &str = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","sqn":100,"imsi":"001010000000061"}"#;
const APN: &str = r#"{"apn":"internet","apn_ambr_dl":1,"apn_ambr_ul":1}"#;

#[test]
fn a_peer_sets_and_clears_serving_state_and_never_lowers_an_sqn() {
    let s = Server::start(&["--cores", "2"], &[]);
    let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000061", "msisdn": "4917400061", "auc_id": auc,
                      "default_apn": apn, "apn_list": apn.to_string()});
    assert_eq!(
        s.send_json("PUT", "/subscriber/", &body.to_string()).status,
        200
    );
    let ims = json!({"imsi": "001010000000061", "msisdn": "4917400061"});
    assert_eq!(
        s.send_json("PUT", "/ims_subscriber/", &ims.to_string())
            .status,
        200
    );

    // Serving MME, as PyHSS's GeoRed tests push it.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000061","serving_mme":"test1234","serving_mme_realm":"test_realm","serving_mme_peer":"test_peer"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = s.get("/subscriber/imsi/001010000000061").json();
    assert_eq!(sub["serving_mme"], "test1234");
    assert_eq!(sub["serving_mme_peer"], "test_peer");
    assert!(sub["serving_mme_timestamp"].is_string());
    // The OAM view of who is served, through the served-rows index.
    let served = s.get("/oam/serving_subs").json();
    assert_eq!(
        served["001010000000061"]["serving_mme"], "test1234",
        "{served}"
    );
    assert_eq!(served.as_object().unwrap().len(), 1);
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000061","serving_mme":null,"serving_mme_realm":null,"serving_mme_peer":null}"#,
    );
    assert_eq!(r.status, 200);
    let sub = s.get("/subscriber/imsi/001010000000061").json();
    assert!(
        sub["serving_mme"].is_null() && sub["serving_mme_timestamp"].is_null(),
        "{sub}"
    );

    // Location, S-CSCF.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000061","last_seen_eci":"1","last_seen_enodeb_id":"2","last_seen_cell_id":"3","last_seen_tac":"4","last_seen_mcc":"001","last_seen_mnc":"01","last_location_update_timestamp":"2026-12-01T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get("/subscriber/imsi/001010000000061").json()["last_seen_tac"],
        "4"
    );
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000061","scscf":"sip:scscf.ims:6060","scscf_realm":"ims","scscf_peer":"scscf"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s
        .get("/ims_subscriber/ims_subscriber_imsi/001010000000061")
        .json();
    assert_eq!(got["scscf"], "sip:scscf.ims:6060");
    assert!(got["scscf_timestamp"].is_null());
    let served = s.get("/oam/serving_subs_ims").json();
    assert_eq!(
        served["001010000000061"]["scscf"], "sip:scscf.ims:6060",
        "{served}"
    );

    // An SQN learned from a peer moves the AuC forward, never back.
    let sqn = |s: &Server| {
        s.get(&format!("/auc/{auc}")).json()["sqn"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(sqn(&s), 100);
    let push = |v: u64| json!({"auc_id": auc, "sqn": v, "imsi": "001010000000061"}).to_string();
    assert_eq!(s.send_json("PATCH", "/geored/", &push(5000)).status, 200);
    assert_eq!(sqn(&s), 5000);
    assert_eq!(s.send_json("PATCH", "/geored/", &push(10)).status, 200);
    assert_eq!(sqn(&s), 5000);
    let v = s.get("/auc/aka/vector_count/1/imsi/001010000000061");
    assert_eq!(v.status, 200);
    assert!(sqn(&s) > 5000);

    // What is not kept is refused, and nothing else in the body applied.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000061","serving_mme":"other","emergency_subscriber_ip":"10.0.0.1"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("emergency_subscriber_ip"));
    assert!(s.get("/subscriber/imsi/001010000000061").json()["serving_mme"].is_null());
    // Unknown IMSI.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        r#"{"imsi":"001010000000099","serving_mme":"x"}"#,
    );
    assert_eq!(r.status, 404);
}

/// With the Diameter listener off, what needs a Diameter peer says so,
/// and changes nothing.
#[test]
fn de_registration_without_a_diameter_peer_is_a_clear_503() {
    let s = Server::start(&[], &[("AUTHPLANE_SERVICES__DIAMETER", "false")]);
    assert_eq!(s.get("/oam/diameter_peers").json(), json!({}));
    assert_eq!(s.get("/oam/serving_subs_pcrf").json(), json!({}));
    for (method, path) in [
        ("GET", "/oam/deregister/001010000000061"),
        ("PUT", "/push/clr/001010000000061"),
    ] {
        let r = s.send_json(method, path, "{}");
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert_eq!(r.json()["result"], "Failed");
        assert!(
            r.json()["reason"].as_str().unwrap().contains("Diameter"),
            "{}",
            r.text()
        );
    }
}

/// PCRF sessions, as a peer pushes them: opened, read by IMSI, APN and UE
/// address, moved to another UE address, closed by their session id only.
#[test]
fn a_peer_opens_moves_and_closes_pcrf_sessions() {
    let s = Server::start(&["--cores", "2"], &[]);
    let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let apn = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let ims_apn = s
        .send_json("PUT", "/apn/", &APN.replace("internet", "ims"))
        .json()["apn_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000061", "auc_id": auc,
                      "default_apn": apn, "apn_list": format!("{apn},{ims_apn}")});
    let sub = s.send_json("PUT", "/subscriber/", &body.to_string()).json()["subscriber_id"]
        .as_u64()
        .unwrap();
    let session = |apn: &str, id: &str, pgw: Option<&str>, ip: &str| {
        json!({"imsi": "001010000000061", "serving_apn": apn, "pcrf_session_id": id,
               "serving_pgw": pgw, "serving_pgw_realm": "epc.mnc001.mcc001.3gppnetwork.org",
               "serving_pgw_peer": "pgw01;hss01", "subscriber_routing": ip})
        .to_string()
    };
    assert_eq!(
        s.get("/pcrf/pcrf_serving_apn_ip/10.45.0.2").json(),
        json!({})
    );
    assert_eq!(s.get("/pcrf/subscriber_routing/10.45.0.2").status, 404);
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("internet", "s1", Some("pgw01"), "10.45.0.2"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let opened = r.json()[0].clone();
    assert_eq!(opened["subscriber_id"], sub);
    assert_eq!(opened["apn"], apn);
    assert_eq!(opened["pcrf_session_id"], "s1");
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("IMS", "s2", Some("pgw01"), "fd00::2"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["ip_version"], 1);

    let all = s.get("/pcrf/pcrf_subscriber_imsi/001010000000061").json();
    assert_eq!(all["subscriber_data"]["subscriber_id"], sub);
    assert_eq!(all["apns"]["internet"]["pcrf_session_id"], "s1");
    assert_eq!(all["apns"]["ims"]["pcrf_session_id"], "s2");
    let one = s
        .get(&format!("/pcrf/pcrf_subscriber_imsi/001010000000061/{apn}"))
        .json();
    assert_eq!(one["subscriber_routing"], "10.45.0.2");
    assert_eq!(
        s.get("/pcrf/pcrf_serving_apn_ip/10.45.0.2").json()["pcrf_session_id"],
        "s1"
    );
    assert_eq!(
        s.get("/pcrf/subscriber_routing/fd00::2").json()["pcrf_session_id"],
        "s2"
    );
    assert_eq!(s.get("/pcrf/subscriber_routing/not-there").status, 404);
    let served = s.get("/pcrf/pcrf_subscriber/list").json();
    assert_eq!(
        served["001010000000061"]["apns"]["ims"]["pcrf_session_id"],
        "s2"
    );
    let oam = s.get("/oam/serving_subs_pcrf").json();
    assert_eq!(
        oam["001010000000061"]["subscriber_info"]["subscriber_id"],
        sub
    );
    // A subscriber with a session is not deleted from under it.
    let r = s.send_json("DELETE", &format!("/subscriber/{sub}"), "");
    assert_eq!(r.status, 400, "{}", r.text());

    // The same session on a new UE address: one row, the old address free.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("internet", "s1", Some("pgw01"), "10.45.0.9"),
    );
    assert_eq!(r.json()[0]["serving_apn_id"], opened["serving_apn_id"]);
    assert_eq!(s.get("/pcrf/subscriber_routing/10.45.0.2").status, 404);
    // A close naming another session id leaves this one open.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("internet", "old", None, "10.45.0.9"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get("/pcrf/subscriber_routing/10.45.0.9").json()["pcrf_session_id"],
        "s1"
    );
    // Durable, then closed.
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(
        s.get("/pcrf/subscriber_routing/10.45.0.9").json()["pcrf_session_id"],
        "s1"
    );
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("internet", "s1", None, "10.45.0.9"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/pcrf/subscriber_routing/10.45.0.9").status, 404);
    assert_eq!(
        s.get(&format!("/pcrf/pcrf_subscriber_imsi/001010000000061/{apn}"))
            .status,
        404
    );
    // An APN the subscriber does not have.
    let r = s.send_json(
        "PATCH",
        "/geored/",
        &session("nope", "s3", Some("pgw01"), "10.45.0.3"),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no APN named nope"), "{}", r.text());
}

/// `hss.pyhss_quirks` reproduces what PyHSS's own suite asserts; without
/// it the same requests are refused or corrected.
#[test]
fn pyhss_quirks_are_off_by_default_and_one_setting_turns_them_on() {
    for quirks in [false, true] {
        let env = [(
            "AUTHPLANE_HSS__PYHSS_QUIRKS",
            if quirks { "true" } else { "false" },
        )];
        let s = Server::start(&[], &env);
        let rule = s.send_json(
            "PUT",
            "/eir/",
            r#"{"imei":"35345678901234","imsi":"","regex_mode":0,"match_response_code":3}"#,
        );
        assert_eq!(
            rule.status,
            if quirks { 200 } else { 400 },
            "{}",
            rule.text()
        );
        let ims = s.send_json(
            "PUT",
            "/ims_subscriber/",
            r#"{"imsi":"001010000000091","msisdn":"4917400091"}"#,
        );
        let id = ims.json()["ims_subscriber_id"].as_u64().unwrap();
        let r = s.send_json(
            "PATCH",
            "/geored/",
            r#"{"imsi":"001010000000091","scscf":"scscf1"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let peer = s.get(&format!("/ims_subscriber/{id}")).json()["scscf_peer"].clone();
        assert_eq!(peer, if quirks { json!("None") } else { json!(null) });
        let r = s.send_json(
            "PATCH",
            "/geored/",
            r#"{"imsi":"001010000000091","scscf":null}"#,
        );
        assert_eq!(r.status, 200);
        assert!(s.get(&format!("/ims_subscriber/{id}")).json()["scscf_peer"].is_null());
        // A missing APN id in apn_list.
        let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
            .as_u64()
            .unwrap();
        let apn = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
            .as_u64()
            .unwrap();
        let body = json!({"imsi": "001010000000061", "auc_id": auc, "default_apn": apn, "apn_list": format!("{apn},999")});
        let sub = s.send_json("PUT", "/subscriber/", &body.to_string());
        assert_eq!(sub.status, if quirks { 200 } else { 400 }, "{}", sub.text());
    }
}
