//! Online backup (`POST /oam/backup`) through the real binary: taken under
//! a concurrent write load, with compactions coming due, then checked by
//! `authplane data check` and by a server started on the copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{temp_dir, Client, Server};

/// One acknowledged create: where to read it, the field and value it must
/// have, and when its answer came.
type Created = (String, &'static str, String, Instant);

#[test]
fn a_backup_under_write_load_holds_every_write_acknowledged_before_it_and_starts() {
    let s = Server::start_in(
        temp_dir("backup-src"),
        &["--cores", "2"],
        &[("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")],
    );
    let auc = s.send_json(
        "PUT",
        "/auc/",
        r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"E8ED289DEBA952E4283B54E88E6183CA","amf":"8000"}"#,
    );
    let auc = auc.json()["auc_id"].as_u64().unwrap();
    let acked: Arc<Mutex<Vec<Created>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // A client that makes an APN (catalog), then a subscriber on a shard
    // naming it: the copy must never hold the subscriber without its APN.
    let pairs = {
        let (stop, addr) = (stop.clone(), s.addr);
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut put = |path: &str, body: String, id: &str| {
                let r = c.json("PUT", path, &body);
                assert_eq!(r.status, 200, "{path}: {}", r.text());
                r.json()[id].as_u64().unwrap()
            };
            let mut made = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let apn = put(
                    "/apn/",
                    format!(r#"{{"apn":"pair-{made}","apn_ambr_dl":1,"apn_ambr_ul":1}}"#),
                    "apn_id",
                );
                put(
                    "/subscriber/",
                    format!(
                        r#"{{"imsi":"00102{made:010}","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#
                    ),
                    "subscriber_id",
                );
                made += 1;
            }
            made
        })
    };
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (stop, acked, addr) = (stop.clone(), acked.clone(), s.addr);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = w * 1_000_000 + i;
                    // IMS subscribers on the shards, EIR rules in the catalog.
                    let (path, body, id_field, key_field, key) = if i % 2 == 0 {
                        let msisdn = format!("61{n:010}");
                        let body = format!(r#"{{"msisdn":"{msisdn}"}}"#);
                        (
                            "/ims_subscriber/",
                            body,
                            "ims_subscriber_id",
                            "msisdn",
                            msisdn,
                        )
                    } else {
                        let imei = format!("35{n:012}");
                        let body = format!(
                            r#"{{"imei":"{imei}","regex_mode":0,"match_response_code":1}}"#
                        );
                        ("/eir/", body, "eir_id", "imei", imei)
                    };
                    let r = c.json("PUT", path, &body);
                    let at = Instant::now();
                    assert_eq!(r.status, 200, "{path}: {}", r.text());
                    let id = r.json()[id_field].as_u64().unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .push((format!("{path}{id}"), key_field, key, at));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // The cut: everything acknowledged before the request must be in.
    let cut = Instant::now();
    let dest = temp_dir("backup-dest").join("copy");
    let r = s.send_json(
        "POST",
        "/oam/backup",
        &format!(r#"{{"to":"{}"}}"#, dest.display()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let done = r.json();
    assert!(done["files"].as_u64().unwrap() >= 4, "{done}");
    assert!(done["bytes"].as_u64().unwrap() > 0, "{done}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("a writer failed");
    }
    let pairs = pairs.join().expect("the APN and subscriber client failed");
    let acked = acked.lock().unwrap();
    let before: Vec<&Created> = acked.iter().filter(|(.., at)| *at < cut).collect();
    assert!(
        before.len() > 100 && before.len() < acked.len(),
        "{} of {} writes before the cut: too few to mean anything",
        before.len(),
        acked.len()
    );
    // Compactions came due during the load (the log rolled).
    let logs = s.logs().join("\n");
    assert!(logs.contains("compaction done"), "no compaction ran");

    // A second backup into the same place, a relative path, or a place
    // inside the data directory: refused, in PyHSS's error shape.
    for to in [
        dest.display().to_string(),
        "relative/copy".to_owned(),
        s.data_dir.join("inside").display().to_string(),
    ] {
        let r = s.send_json("POST", "/oam/backup", &format!(r#"{{"to":"{to}"}}"#));
        assert_eq!(r.status, 400, "{to}: {}", r.text());
        assert_eq!(r.json()["result"], "Failed", "{to}");
    }

    // The copy checks clean, with the server still running on the source.
    let (ok, text) = crate::harness::data_check(&dest);
    assert!(ok, "data check: {text}");
    assert!(
        !text.contains("DAMAGED") && !text.contains("torn"),
        "{text}"
    );

    // A server on the copy has every write acknowledged before the cut.
    drop(s);
    let b = Server::start_in(dest, &["--cores", "2"], &[]);
    for (path, field, key, _) in before {
        let r = b.get(path);
        assert_eq!(
            r.status, 200,
            "{path} acknowledged before the backup, not in it"
        );
        assert_eq!(r.json()[*field], key.as_str(), "{path} changed");
    }
    // The cut is consistent: every subscriber in the copy has its APN.
    let mut subscribers = 0;
    for made in 0..pairs {
        let r = b.get(&format!("/subscriber/imsi/00102{made:010}"));
        if r.status != 200 {
            continue;
        }
        subscribers += 1;
        let apn = r.json()["default_apn"].as_u64().unwrap();
        assert_eq!(
            b.get(&format!("/apn/{apn}")).status,
            200,
            "subscriber {made}'s APN {apn} is not in the copy"
        );
    }
    assert!(
        subscribers > 0,
        "no subscriber of the pairs in the copy ({pairs} made)"
    );
}
