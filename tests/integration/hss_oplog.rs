//! PyHSS's operation log: every write of every table, in the write's own
//! commit, with PyHSS's keys and change text, never a secret.

use serde_json::{json, Value};

use crate::harness::Server;

const AUC: &str = r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"CD63CB71954A9F4E48A5994E37A02BAF","amf":"8000","imsi":"001010000000031"}"#;
const APN: &str = r#"{"apn":"internet","apn_ambr_dl":9999999,"apn_ambr_ul":9999999}"#;

fn list(s: &Server, path: &str) -> Vec<Value> {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json().as_array().unwrap().clone()
}

#[test]
fn every_write_is_logged_with_its_operation_and_survives_a_sigkill() {
    let s = Server::start(&["--cores", "2"], &[]);
    assert_eq!(s.get("/operation_logs/last").status, 404);
    let apn = s.send_json("PUT", "/apn/?operation_id=op-apn", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let r = s.send_json(
        "PATCH",
        &format!("/apn/{apn}?operation_id=op-apn-2"),
        r#"{"qci":5}"#,
    );
    assert_eq!(r.status, 200);
    // Two writes under one operation id, on a shard.
    let auc = s.send_json("PUT", "/auc/?operation_id=op-sim", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000031", "auc_id": auc, "default_apn": apn, "apn_list": apn.to_string()});
    let r = s.send_json("PUT", "/subscriber/?operation_id=op-sim", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = r.json()["subscriber_id"].as_u64().unwrap();
    // Without an operation id, a write is an operation of its own.
    let r = s.send_json("PATCH", &format!("/subscriber/{sub}"), r#"{"nam":1}"#);
    assert_eq!(r.status, 200);
    // A write that fails is not logged.
    assert_eq!(
        s.send_json(
            "PATCH",
            &format!("/apn/{apn}?operation_id=op-bad"),
            r#"{"qci":0}"#
        )
        .status,
        400
    );
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);

    let last = s.get("/operation_logs/last").json();
    assert_eq!(last["table_name"], "subscriber");
    assert_eq!(last["operation"], "UPDATE");
    assert_eq!(last["item_id"], sub);
    let c = last["changes"].as_str().unwrap();
    assert!(c.contains("nam: [int] 0 ----> [int] 1"), "{c}");
    for k in [
        "id",
        "item_id",
        "operation_id",
        "operation",
        "changes",
        "last_modified",
        "timestamp",
        "table_name",
    ] {
        assert!(last.get(k).is_some(), "{k} missing: {last}");
    }
    assert_eq!(last.as_object().unwrap().len(), 8, "{last}");

    // One entry per operation (its first), most recent first.
    let ops = list(&s, "/operation_logs/list");
    let ids: Vec<&str> = ops
        .iter()
        .map(|o| o["operation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(&ids[1..], ["op-sim", "op-apn-2", "op-apn"], "{ids:?}");
    assert!(!ids.contains(&"op-bad"));
    let sim = &ops[1];
    assert_eq!(sim["table_name"], "auc");
    assert_eq!(sim["operation"], "INSERT");
    let text = sim["changes"].as_str().unwrap();
    assert!(
        text.contains("imsi: [NoneType] None ----> [str] 001010000000031"),
        "{text}"
    );
    // Never a key.
    for secret in [
        "465B5CE8", "465b5ce8", "CD63CB71", "cd63cb71", "ki:", "opc:",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let patched = &ops[2];
    assert_eq!(patched["operation"], "UPDATE");
    assert!(patched["changes"]
        .as_str()
        .unwrap()
        .contains("qci: [int] 9 ----> [int] 5"));
    // By table.
    let apns = list(&s, "/operation_logs/list/table/apn");
    assert_eq!(apns.len(), 2);
    assert!(apns.iter().all(|o| o["table_name"] == "apn"));
    assert_eq!(list(&s, "/operation_logs/list?page=1&page_size=3").len(), 1);
    // A delete.
    let r = s.send_json(
        "DELETE",
        &format!("/subscriber/{sub}?operation_id=op-del"),
        "",
    );
    assert_eq!(r.status, 200);
    let last = s.get("/operation_logs/last").json();
    assert_eq!(
        (last["operation"].as_str(), last["operation_id"].as_str()),
        (Some("DELETE"), Some("op-del"))
    );
    assert!(last["changes"]
        .as_str()
        .unwrap()
        .contains("imsi: [str] 001010000000031 ----> [NoneType] None"));
}

#[test]
fn each_shard_keeps_its_newest_entries() {
    let s = Server::start(
        &["--cores", "1"],
        &[("AUTHPLANE_HSS__OPERATION_LOG_KEEP", "3")],
    );
    for i in 0..7 {
        let body = json!({"tft_group_id": i, "tft_string": "permit out ip from any to any", "direction": 1});
        assert_eq!(
            s.send_json(
                "PUT",
                &format!("/tft/?operation_id=t{i}"),
                &body.to_string()
            )
            .status,
            200
        );
    }
    let ops = list(&s, "/operation_logs/list");
    let ids: Vec<&str> = ops
        .iter()
        .map(|o| o["operation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t6", "t5", "t4"]);
}
