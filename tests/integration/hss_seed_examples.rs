//! Every `curl` example of the PyHSS API seed's endpoint reference
//! (`pyhss-api.txt`), replayed in the seed's order against a fresh server.
//! The examples whose body is elided in the seed (`{ ... }`) are left out;
//! the rest are copied here as data, with the status each must get.

use serde_json::Value;

use crate::harness::Server;

/// (method, path, body, status): the seed's examples, in its order.
const EXAMPLES: &[(&str, &str, &str, u16)] = &[
    ("GET", "/subscriber/list?page=0&page_size=50", "", 200),
    (
        "PUT",
        "/auc/",
        r#"{"ki": "465B5CE8B199B49FAA5F0A2EE238A6BC", "opc": "E8ED289DEBA952E4283B54E88E6183CA", "amf": "8000", "sqn": 0}"#,
        200,
    ),
    (
        "PUT",
        "/apn/",
        r#"{"apn": "internet", "apn_ambr_dl": 9999999, "apn_ambr_ul": 9999999, "qci": 9, "arp_priority": 1, "arp_preemption_capability": true, "arp_preemption_vulnerability": false}"#,
        200,
    ),
    (
        "PUT",
        "/subscriber/",
        r#"{"imsi": "001010000000001", "enabled": true, "auc_id": 1, "default_apn": 1, "apn_list": "1", "apn_list_swx": "1", "msisdn": "491792021244", "ue_ambr_dl": 9999999, "ue_ambr_ul": 9999999, "nam": 0, "subscribed_rau_tau_timer": 600}"#,
        200,
    ),
    (
        "PUT",
        "/ifc_template/",
        r#"{"name": "default_ifc", "description": "Default VoLTE iFC", "template_content": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>...</IMSSubscription>"}"#,
        200,
    ),
    (
        "PUT",
        "/ims_subscriber/",
        r#"{"imsi": "001010000000001", "msisdn": "491792021244", "msisdn_list": "491792021244", "ifc_template_id": 1, "xcap_profile": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><simservs>...</simservs>"}"#,
        200,
    ),
    (
        "PUT",
        "/apn/",
        r#"{"apn":"ims","apn_ambr_dl":256000,"apn_ambr_ul":256000,"qci":5, "arp_priority":1,"arp_preemption_capability":true,"arp_preemption_vulnerability":false}"#,
        200,
    ),
    ("GET", "/apn/1", "", 200),
    (
        "GET",
        "/auc/aka/vector_count/3/imsi/001010000000001",
        "",
        200,
    ),
    ("GET", "/subscriber/imsi/001010000000001", "", 200),
    (
        "PUT",
        "/tft/",
        r#"{"tft_group_id":1,"tft_string":"permit out ip from any to any","direction":1}"#,
        200,
    ),
    (
        "PUT",
        "/charging_rule/",
        r#"{"rule_name":"voice","qci":1,"arp_priority":5, "arp_preemption_capability":true,"arp_preemption_vulnerability":false, "mbr_dl":128000,"mbr_ul":128000,"gbr_dl":128000,"gbr_ul":128000, "tft_group_id":1,"precedence":100,"rating_group":4000}"#,
        200,
    ),
    (
        "PUT",
        "/eir/",
        r#"{"imei":"^777.*","imsi":"^001010000000001$","regex_mode":1,"match_response_code":1}"#,
        200,
    ),
    (
        "PUT",
        "/subscriber_attributes/",
        r#"{"subscriber_id":1,"key":"CustomerName","value":"Example Corp"}"#,
        200,
    ),
    (
        "PUT",
        "/roaming/network/",
        r#"{"name":"Partner DE","preference":1,"mcc":"262","mnc":"02"}"#,
        200,
    ),
    (
        "PUT",
        "/roaming/rule/",
        r#"{"roaming_network_id":1,"allow":true,"enabled":true}"#,
        200,
    ),
    // The same template name a second time: names are unique.
    (
        "PUT",
        "/ifc_template/",
        r#"{"name":"default_ifc","description":"Default VoLTE iFC", "template_content":"<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>...</IMSSubscription>"}"#,
        400,
    ),
    ("GET", "/oam/ping", "", 200),
    ("GET", "/oam/diameter_peers", "", 200),
    // Both need a Diameter peer: a clear 503 while none is connected.
    (
        "PUT",
        "/pcrf/",
        r#"{"imsi":"001010000000001","apn_id":1,"charging_rule_id":1}"#,
        503,
    ),
    (
        "PUT",
        "/push/clr/001010000000001",
        r#"{"DestinationRealm": "epc.mnc001.mcc001.3gppnetwork.org", "DestinationHost": "mme01", "cancellationType": 2, "diameterPeer": "mme01.epc...", "immediateReattach": true}"#,
        503,
    ),
];

#[test]
fn every_seed_curl_example_answers_as_the_seed_says() {
    let s = Server::start(&["--cores", "1"], &[]);
    for (method, path, body, status) in EXAMPLES {
        let r = if *method == "GET" {
            s.get(path)
        } else {
            s.send_json(method, path, body)
        };
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        let v: Value = r.json();
        if *status != 200 {
            assert!(v["reason"].is_string(), "{method} {path}: {v}");
        }
    }
    // The PCRF's other pushes need a Diameter peer too.
    for path in [
        "/pcrf/clr_subscriber",
        "/pcrf/pcscf_restoration_subscriber",
        "/pcrf/pcscf_restoration",
    ] {
        let r = s.send_json("PUT", path, r#"{"imsi":"001010000000001"}"#);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert!(r.text().contains("Diameter"), "{path}: {}", r.text());
    }
    // The walkthrough's results: the vectors and the subscriber with its
    // attribute.
    let v = s.get("/auc/aka/vector_count/3/imsi/001010000000001").json();
    assert_eq!(v.as_array().unwrap().len(), 3);
    let sub = s.get("/subscriber/imsi/001010000000001").json();
    assert_eq!(sub["msisdn"], "491792021244");
    assert_eq!(sub["apn_list_swx"], "1");
    let ims = s
        .get("/ims_subscriber/ims_subscriber_msisdn/491792021244")
        .json();
    assert_eq!(ims["ifc_template_id"], 1);
    let rule = s.get("/pcrf/1").json();
    assert_eq!(
        rule["tft"][0]["tft_string"],
        "permit out ip from any to any"
    );
}
