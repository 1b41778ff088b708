//! PyHSS's /auc provisioning API on the real server: shapes, validation,
//! indexes, provisioning key, persistence across restarts.

use crate::harness::{temp_dir, Server};

const KI: &str = "465B5CE8B199B49FAA5F0A2EE238A6BC";
const OPC: &str = "E8ED289DEBA952E4283B54E88E6183CA";

fn auc_body(extra: &str) -> String {
    format!(r#"{{"ki":"{KI}","opc":"{OPC}","amf":"8000","sqn":0{extra}}}"#)
}

#[test]
fn create_read_patch_delete_with_pyhss_shapes() {
    let s = Server::start(&[], &[]);
    let r = s.send_json("PUT", "/auc/", &auc_body(""));
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    let id = created["auc_id"].as_u64().unwrap();
    // PyHSS 2.0.0's 19 redacted keys: secrets are never returned.
    for k in ["ki", "opc", "kid", "psk", "des", "adm1"] {
        assert!(created.get(k).is_none(), "{k} returned on create");
    }
    for k in [
        "sim_vendor",
        "esim",
        "lpa",
        "sqn",
        "pin1",
        "pin2",
        "algo",
        "misc1",
        "amf",
        "iccid",
        "puk1",
        "puk2",
        "imsi",
        "batch_name",
        "misc4",
        "last_modified",
    ] {
        assert!(created.get(k).is_some(), "{k} missing: {created}");
    }
    assert_eq!(created["amf"], "8000");
    assert_eq!(created["imsi"], serde_json::Value::Null);

    let got = s.get(&format!("/auc/{id}")).json();
    assert_eq!(got["auc_id"], id);

    // The seed's walkthrough: set the IMSI later, then find by IMSI.
    let r = s.send_json(
        "PATCH",
        &format!("/auc/{id}"),
        r#"{"imsi":"001010000000001","iccid":"8988211000000000001"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/auc/imsi/001010000000001").json()["auc_id"], id);
    assert_eq!(s.get("/auc/iccid/8988211000000000001").json()["auc_id"], id);

    // Moving the IMSI frees the old one.
    s.send_json(
        "PATCH",
        &format!("/auc/{id}"),
        r#"{"imsi":"001010000000002"}"#,
    );
    assert_eq!(s.get("/auc/imsi/001010000000001").status, 404);
    assert_eq!(s.get("/auc/imsi/001010000000002").json()["auc_id"], id);

    let r = s.send_json("DELETE", &format!("/auc/{id}"), "");
    assert_eq!(r.json(), serde_json::json!({"Result": "OK"}));
    let r = s.get(&format!("/auc/{id}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["result"], "Failed");
    assert_eq!(s.get("/auc/imsi/001010000000002").status, 404);
}

#[test]
fn invalid_input_is_a_400_not_stored() {
    let s = Server::start(&[], &[]);
    for (body, reason) in [
        (
            r#"{"ki":"zz","opc":"E8ED289DEBA952E4283B54E88E6183CA","amf":"8000"}"#,
            "ki",
        ),
        (&auc_body(r#","imsi":"not-an-imsi""#) as &str, "imsi"),
        (&auc_body(r#","sqn":281474976710656"#), "sqn"),
        (&auc_body(r#","iccid":"12""#), "iccid"),
        (r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC"}"#, "opc"),
        (&auc_body(r#","apn_list_swx":"1""#), "apn_list_swx"),
        ("{", "JSON"),
        ("", "JSON"),
    ] {
        let r = s.send_json("PUT", "/auc/", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let reason_text = r.json()["reason"].as_str().unwrap().to_owned();
        assert!(reason_text.contains(reason), "{body}: {reason_text}");
    }
    assert_eq!(s.get("/auc/list").json(), serde_json::json!([]));
    assert_eq!(s.get("/auc/abc").status, 400);
}

#[test]
fn an_imsi_belongs_to_one_auc_even_under_concurrency() {
    let s = Server::start(&["--cores", "2"], &[]);
    let addr = s.addr;
    let results: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(move || {
                    let mut c = crate::harness::Client::connect(addr);
                    let body = auc_body(r#","imsi":"001010000000077""#);
                    c.send(
                        format!(
                            "PUT /auc/ HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    c.response().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&s| s == 200).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|&s| s == 200 || s == 400), "{results:?}");
    let list = s.get("/auc/list").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn provisioning_key_guards_writes_when_locked() {
    let s = Server::start(
        &[],
        &[
            ("AUTHPLANE_HSS__LOCK_PROVISIONING", "true"),
            ("AUTHPLANE_HSS__PROVISIONING_KEY", "s3cret"),
        ],
    );
    let body = auc_body("");
    let r = s.send_json("PUT", "/auc/", &body);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        serde_json::json!({"Result": "Unauthorized - Provisioning-Key Invalid"})
    );
    let mut c = s.connect();
    c.send(
        format!(
            "PUT /auc/ HTTP/1.1\r\nProvisioning-Key: wrong\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 401);
    c.send(
        format!(
            "PUT /auc/ HTTP/1.1\r\nProvisioning-Key: s3cret\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 200);
    // Reads need no key.
    assert_eq!(s.get("/auc/list").status, 200);
}

#[test]
fn insecure_mode_returns_ki_and_opc() {
    let s = Server::start(&[], &[("AUTHPLANE_HSS__ENABLE_INSECURE_AUC", "true")]);
    let r = s.send_json("PUT", "/auc/", &auc_body("")).json();
    assert_eq!(r["ki"], KI);
    assert_eq!(r["opc"], OPC);
}

#[test]
fn a_disabled_service_has_no_routes() {
    let s = Server::start(&[], &[("AUTHPLANE_SERVICES__HSS", "false")]);
    assert_eq!(s.get("/auc/list").status, 404);
    assert_eq!(s.get("/oam/ping").status, 200);
}

#[test]
fn data_survive_a_restart_and_data_check_reads_them() {
    let dir = temp_dir("restart");
    let s = Server::start_in(dir.clone(), &["--cores", "2"], &[]);
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = s.send_json(
            "PUT",
            "/auc/",
            &auc_body(&format!(r#","imsi":"00101000000{i:04}""#)),
        );
        ids.push(r.json()["auc_id"].as_u64().unwrap());
    }
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    for (i, id) in ids.iter().enumerate() {
        let r = s.get(&format!("/auc/imsi/00101000000{i:04}"));
        assert_eq!(r.json()["auc_id"], *id);
    }
    // A second server on the same directory is refused.
    let err = crate::harness::refused_start(&s.data_dir, 2, &[]);
    assert!(err.contains("in use by another authplane process"), "{err}");
    // So is another core count.
    let dir = s.kill();
    let err = crate::harness::refused_start(&dir, 1, &[]);
    assert!(err.contains("shards 2") && err.contains("--cores"), "{err}");

    let (ok, text) = crate::harness::data_check(&dir);
    assert!(ok, "{text}");
    assert!(
        text.contains("shard 0") && text.contains("shard 1") && text.contains("clean to offset"),
        "{text}"
    );

    let out = std::process::Command::new(crate::harness::BIN)
        .args(["data", "compact"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(s.get("/auc/list").json().as_array().unwrap().len(), 20);
}
