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

/// Every answer a rollback must restore, by path.
fn snapshot(s: &Server, paths: &[String]) -> Vec<(String, u16, String)> {
    paths
        .iter()
        .map(|p| {
            let r = s.get(p);
            (p.clone(), r.status, r.text())
        })
        .collect()
}

fn rollback(s: &Server, what: &str) -> String {
    let r = s.get(&format!("/oam/rollback_operation/{what}"));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    r.json().as_str().unwrap().to_owned()
}

#[test]
fn rollback_of_a_multi_table_operation_restores_every_row_and_twice_changes_nothing() {
    let s = Server::start(&["--cores", "2"], &[]);
    // The state before: an APN, a TFT, an AuC and its subscriber.
    let apn = s.send_json("PUT", "/apn/", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let tft = s.send_json(
        "PUT",
        "/tft/",
        r#"{"tft_group_id":1,"tft_string":"permit out ip from any to any","direction":1}"#,
    );
    assert_eq!(tft.status, 200, "{}", tft.text());
    let tft = tft.json()["tft_id"].as_u64().unwrap();
    let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000031", "auc_id": auc, "default_apn": apn, "apn_list": apn.to_string(), "msisdn": "61400000031"});
    let r = s.send_json("PUT", "/subscriber/", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = r.json()["subscriber_id"].as_u64().unwrap();
    let paths: Vec<String> = vec![
        format!("/apn/{apn}"),
        format!("/tft/{tft}"),
        format!("/auc/{auc}"),
        format!("/subscriber/{sub}"),
        "/subscriber/imsi/001010000000031".into(),
        "/subscriber/msisdn/61400000031".into(),
        "/tft/list".into(),
        "/subscriber/list".into(),
    ];
    let before = snapshot(&s, &paths);
    // Timestamps are in seconds: let the operation's differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // One operation over four tables, two sites: an update, a delete, a
    // new APN and a subscriber that references it, a changed MSISDN.
    let op = "op-multi";
    let r = s.send_json(
        "PATCH",
        &format!("/apn/{apn}?operation_id={op}"),
        r#"{"qci":7}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.send_json("DELETE", &format!("/tft/{tft}?operation_id={op}"), "")
            .status,
        200
    );
    let apn2 = s
        .send_json(
            "PUT",
            &format!("/apn/?operation_id={op}"),
            r#"{"apn":"ims","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
        )
        .json()["apn_id"]
        .as_u64()
        .unwrap();
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{sub}?operation_id={op}"),
        &json!({"msisdn": "61400000099", "apn_list": format!("{apn},{apn2}")}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let auc2 = s
        .send_json(
            "PUT",
            &format!("/auc/?operation_id={op}"),
            &AUC.replace("031", "032"),
        )
        .json()["auc_id"]
        .as_u64()
        .unwrap();
    let body = json!({"imsi": "001010000000032", "auc_id": auc2, "default_apn": apn2, "apn_list": apn2.to_string()});
    let r = s.send_json(
        "PUT",
        &format!("/subscriber/?operation_id={op}"),
        &body.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sub2 = r.json()["subscriber_id"].as_u64().unwrap();
    assert_ne!(snapshot(&s, &paths), before);

    // A write after it, of another operation, is kept.
    let r = s.send_json(
        "PUT",
        "/apn/?operation_id=later",
        r#"{"apn":"later","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let later = r.json()["apn_id"].as_u64().unwrap();

    let message = rollback(&s, op);
    assert!(
        message.starts_with(&format!("Rolled back operation with operation_id: {op}")),
        "{message}"
    );
    assert!(message.contains("6 row(s) changed"), "{message}");
    // A rollback is not logged.
    assert_eq!(
        s.get("/operation_logs/last").json()["operation_id"],
        "later"
    );
    let restored = snapshot(&s, &paths);
    for ((p, st, a), (_, st2, b)) in before.iter().zip(&restored) {
        assert_eq!((st, a), (st2, b), "{p}");
    }
    // The rows the operation created are gone, with their index entries.
    assert_eq!(s.get(&format!("/subscriber/{sub2}")).status, 404);
    assert_eq!(s.get(&format!("/apn/{apn2}")).status, 404);
    assert_eq!(s.get(&format!("/apn/{later}")).status, 200);
    assert_eq!(s.get(&format!("/auc/{auc2}")).status, 404);
    assert_eq!(s.get("/subscriber/imsi/001010000000032").status, 404);
    assert_eq!(s.get("/subscriber/msisdn/61400000099").status, 404);
    assert_eq!(s.get("/auc/imsi/001010000000032").status, 404);

    // Twice changes nothing, and neither does a restart.
    assert!(rollback(&s, op).contains("\n0 row(s) changed"));
    let dir = s.kill();
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    assert_eq!(snapshot(&s, &paths), restored);
    assert!(rollback(&s, op).contains("\n0 row(s) changed"));
    // The freed keys can be provisioned again; the ids are not reused.
    let again = s.send_json("PUT", "/auc/", &AUC.replace("031", "032"));
    assert_eq!(again.status, 200, "{}", again.text());
    assert!(again.json()["auc_id"].as_u64().unwrap() > auc2);
    assert_eq!(
        s.get("/oam/rollback_operation/no-such-operation").status,
        404
    );
}

#[test]
fn rollback_last_undoes_the_newest_operation_and_keeps_the_sqn() {
    let s = Server::start(&["--cores", "2"], &[]);
    assert_eq!(
        s.get("/oam/rollback_operation/last").json(),
        "No operations to roll back."
    );
    let auc = s.send_json("PUT", "/auc/", AUC).json()["auc_id"]
        .as_u64()
        .unwrap();
    let r = s.send_json("PATCH", &format!("/auc/{auc}"), r#"{"amf":"9000"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    // Vectors issued after the PATCH move the SQN on.
    let r = s.get("/auc/aka/vector_count/3/imsi/001010000000031?plmn=00101");
    assert_eq!(r.status, 200, "{}", r.text());
    let sqn = s.get(&format!("/auc/{auc}")).json()["sqn"]
        .as_u64()
        .unwrap();
    assert!(sqn > 0);
    rollback(&s, "last");
    let a = s.get(&format!("/auc/{auc}")).json();
    assert_eq!(a["amf"], "8000", "{a}");
    assert_eq!(
        a["sqn"].as_u64().unwrap(),
        sqn,
        "a rollback never takes the SQN back"
    );
    // Again: the same operation, nothing more.
    assert!(rollback(&s, "last").contains("\n0 row(s) changed"));
    // Deleting, then rolling the delete back, keeps the SQN too.
    assert_eq!(
        s.send_json("DELETE", &format!("/auc/{auc}?operation_id=del"), "")
            .status,
        200
    );
    assert_eq!(s.get("/auc/imsi/001010000000031").status, 404);
    assert!(rollback(&s, "del").contains("Re-inserted item"));
    let a = s.get("/auc/imsi/001010000000031").json();
    assert_eq!(a["auc_id"], auc);
    assert_eq!(a["sqn"].as_u64().unwrap(), sqn);
}

#[test]
fn rollback_refuses_what_would_break_a_reference_and_needs_the_key() {
    let s = Server::start(
        &["--cores", "2"],
        &[
            ("AUTHPLANE_HSS__LOCK_PROVISIONING", "true"),
            ("AUTHPLANE_HSS__PROVISIONING_KEY", "s3cret"),
        ],
    );
    let send = |method: &str, path: &str, body: &str| {
        let mut c = s.connect();
        c.send(
            format!(
                "{method} {path} HTTP/1.1\r\nProvisioning-Key: s3cret\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        c.response()
    };
    let apn = send("PUT", "/apn/?operation_id=make-apn", APN).json()["apn_id"]
        .as_u64()
        .unwrap();
    let auc = send("PUT", "/auc/", AUC).json()["auc_id"].as_u64().unwrap();
    let body = json!({"imsi": "001010000000031", "auc_id": auc, "default_apn": apn, "apn_list": apn.to_string()});
    assert_eq!(send("PUT", "/subscriber/", &body.to_string()).status, 200);
    // A GET, yet it writes: the key is needed.
    assert_eq!(s.get("/oam/rollback_operation/make-apn").status, 401);
    assert_eq!(s.get("/oam/rollback_operation/last").status, 401);
    // Undoing the APN's creation would leave the subscriber pointing nowhere.
    let r = send("GET", "/oam/rollback_operation/make-apn", "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("referenced by subscriber"),
        "{}",
        r.text()
    );
    assert_eq!(s.get(&format!("/apn/{apn}")).status, 200);
}
