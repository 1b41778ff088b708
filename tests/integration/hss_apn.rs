//! PyHSS's /apn API: APNs live in the catalog, written through core 0 and
//! read on every core.

use crate::harness::Server;

const SEED_APN: &str = r#"{"apn":"internet","apn_ambr_dl":9999999,"apn_ambr_ul":9999999,"qci":9,"arp_priority":1,"arp_preemption_capability":true,"arp_preemption_vulnerability":false}"#;

#[test]
fn apn_crud_with_pyhss_shape_and_every_core_sees_writes() {
    let s = Server::start(&["--cores", "2"], &[]);
    let r = s.send_json("PUT", "/apn/", SEED_APN);
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["apn_id"], 1);
    // PyHSS 2.0.0's keys and defaults.
    assert_eq!(a["charging_characteristics"], "0800");
    assert_eq!(a["ip_version"], 0);
    assert_eq!(a["nbiot"], false);
    for k in [
        "pgw_address",
        "sgw_address",
        "charging_rule_list",
        "nidd_scef_id",
        "nidd_scef_realm",
        "nidd_mechanism",
        "nidd_rds",
        "nidd_preferred_data_mode",
        "last_modified",
    ] {
        assert!(a.get(k).is_some(), "{k} missing");
    }
    // Every connection (spread over both cores) sees it at once.
    for _ in 0..20 {
        assert_eq!(s.get("/apn/1").json()["apn"], "internet");
    }
    let r = s.send_json(
        "PUT",
        "/apn/",
        r#"{"apn":"ims","apn_ambr_dl":256000,"apn_ambr_ul":256000,"qci":5}"#,
    );
    assert_eq!(r.json()["apn_id"], 2);
    let r = s.send_json("PATCH", "/apn/2", r#"{"qci":1,"pgw_address":"10.0.0.1"}"#);
    assert_eq!(r.json()["qci"], 1);
    assert_eq!(r.json()["apn"], "ims");
    for _ in 0..20 {
        assert_eq!(s.get("/apn/2").json()["pgw_address"], "10.0.0.1");
    }
    let list = s.get("/apn/list?page=0&page_size=1").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(s.get("/apn/list").json().as_array().unwrap().len(), 2);
    assert_eq!(
        s.send_json("DELETE", "/apn/1", "").json(),
        serde_json::json!({"Result": "OK"})
    );
    assert_eq!(s.get("/apn/1").status, 404);
    assert_eq!(s.send_json("PATCH", "/apn/1", r#"{"qci":2}"#).status, 404);
    // Validation.
    assert_eq!(
        s.send_json(
            "PUT",
            "/apn/",
            r#"{"apn":"x","apn_ambr_dl":1,"apn_ambr_ul":1,"qci":0}"#
        )
        .status,
        400
    );
    assert_eq!(s.send_json("PUT", "/apn/", r#"{"apn":"x"}"#).status, 400);
    assert_eq!(
        s.send_json(
            "PUT",
            "/apn/",
            r#"{"apn":"x","apn_ambr_dl":1,"apn_ambr_ul":1,"bogus":1}"#
        )
        .status,
        400
    );
}

#[test]
fn the_catalog_survives_a_restart_and_ids_are_not_reused() {
    let s = Server::start(&["--cores", "2"], &[]);
    s.send_json("PUT", "/apn/", SEED_APN);
    s.send_json("PUT", "/apn/", SEED_APN);
    s.send_json("DELETE", "/apn/2", "");
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(s.get("/apn/1").json()["apn"], "internet");
    assert_eq!(s.get("/apn/2").status, 404);
    assert_eq!(s.send_json("PUT", "/apn/", SEED_APN).json()["apn_id"], 3);
}
