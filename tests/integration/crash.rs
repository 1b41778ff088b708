//! SIGKILL at random moments during a concurrent write load: after each
//! restart, every write whose reply was received is there, intact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{temp_dir, Client, Server};

/// Kills per run; `CRASH_SOAK_KILLS` raises it for long soaks.
fn kills() -> usize {
    crate::harness::soak_kills(20)
}

/// The next of a small pseudo-random sequence (xorshift: kill delays with
/// no clock-seeded RNG, the same in every run).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn no_acknowledged_write_is_lost_across_sigkills() {
    let mut dir = temp_dir("crash");
    // (auc_id, imsi) of every acknowledged create.
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut next_imsi = 0u64;
    // A small pseudo-random sequence of kill delays (no clock-seeded RNG).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..kills() {
        let s = Server::start_in(
            dir.clone(),
            &["--cores", "2"],
            &[("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")],
        );
        // Everything acknowledged so far must be here.
        for (id, imsi) in acked.lock().unwrap().iter() {
            let r = s.get(&format!("/auc/{id}"));
            assert_eq!(r.status, 200, "round {round}: auc {id} lost");
            assert_eq!(
                r.json()["imsi"],
                imsi.as_str(),
                "round {round}: auc {id} changed"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (stop, acked, addr) = (stop.clone(), acked.clone(), s.addr);
                let base = next_imsi + w * 1_000_000;
                std::thread::spawn(move || {
                    let Ok(stream) = std::net::TcpStream::connect(addr) else { return };
                    drop(stream);
                    let mut c = Client::connect(addr);
                    c.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let imsi = format!("0010{:011}", base + i);
                        let body = format!(
                            r#"{{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"E8ED289DEBA952E4283B54E88E6183CA","amf":"8000","imsi":"{imsi}"}}"#
                        );
                        let req = format!("PUT /auc/ HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        if std::io::Write::write_all(&mut c.stream, req.as_bytes()).is_err() {
                            return;
                        }
                        // A reply that does not arrive whole is not an acknowledgement.
                        let Ok(r) = c.try_response() else {
                            return;
                        };
                        if r.status == 200 {
                            let id = r.json()["auc_id"].as_u64().unwrap();
                            acked.lock().unwrap().push((id, imsi));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + next(&mut x) % 250));
        dir = s.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = w.join();
        }
        next_imsi += 10_000_000;
    }
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > kills(),
        "too few writes to mean anything: {}",
        acked.len()
    );
    for (id, imsi) in acked.iter() {
        let r = s.get(&format!("/auc/imsi/{imsi}"));
        assert_eq!(r.status, 200, "auc {id} ({imsi}) lost");
        assert_eq!(r.json()["auc_id"], *id);
    }
}

/// What the writers of the table soak have had acknowledged.
#[derive(Default)]
struct Acked {
    /// (path, id field, id, key field, key) of every create.
    created: Vec<(&'static str, &'static str, u64, &'static str, String)>,
    /// Every id handed out, by path: none may be handed out twice.
    ids: std::collections::HashSet<(&'static str, u64)>,
    /// Subscriber id → the last `ue_ambr_dl` a PATCH set.
    patched: std::collections::HashMap<u64, u64>,
    /// EIR rules whose DELETE was acknowledged.
    deleted: std::collections::HashSet<u64>,
    /// EIR rules whose DELETE was sent (acknowledged or not: gone or not).
    delete_sent: std::collections::HashSet<u64>,
}

impl Acked {
    /// Checks the server against everything acknowledged.
    fn check(&self, s: &Server, round: usize) {
        for (path, _, id, key_field, key) in &self.created {
            let r = s.get(&format!("{path}{id}"));
            if *path == "/eir/" && self.deleted.contains(id) {
                assert_eq!(
                    r.status, 404,
                    "round {round}: deleted EIR rule {id} is back"
                );
                continue;
            }
            if *path == "/eir/" && self.delete_sent.contains(id) && r.status == 404 {
                // Its DELETE was applied, its reply lost in the kill.
                continue;
            }
            assert_eq!(r.status, 200, "round {round}: {path}{id} lost");
            assert_eq!(
                r.json()[*key_field],
                key.as_str(),
                "round {round}: {path}{id} changed"
            );
        }
        for (id, v) in &self.patched {
            let r = s.get(&format!("/subscriber/{id}")).json();
            let stored = r["ue_ambr_dl"].as_u64().unwrap();
            // A later PATCH may have been applied without its reply.
            assert!(
                stored >= *v,
                "round {round}: subscriber {id} PATCH lost ({stored} < {v})"
            );
        }
    }
}

/// One request on `c`; None when no whole reply came (not acknowledged).
fn ask(c: &mut Client, method: &str, path: &str, body: &str) -> Option<crate::harness::Response> {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut c.stream, req.as_bytes()).ok()?;
    c.try_response().ok()
}

#[test]
fn every_table_keeps_every_acknowledged_write_across_sigkills() {
    let mut dir = temp_dir("crash-tables");
    let s = Server::start_in(dir.clone(), &["--cores", "2"], &[]);
    let auc = s.send_json(
        "PUT",
        "/auc/",
        r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"E8ED289DEBA952E4283B54E88E6183CA","amf":"8000"}"#,
    );
    let auc = auc.json()["auc_id"].as_u64().unwrap();
    let apn = s.send_json(
        "PUT",
        "/apn/",
        r#"{"apn":"base","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
    );
    let apn = apn.json()["apn_id"].as_u64().unwrap();
    dir = s.kill();
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..kills() {
        let s = Server::start_in(
            dir.clone(),
            &["--cores", "2"],
            &[("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")],
        );
        acked.lock().unwrap().check(&s, round);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (stop, acked, addr) = (stop.clone(), acked.clone(), s.addr);
                let base = (round as u64 * 4 + w) * 100_000;
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    c.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let (mut last_sub, mut last_eir) = (None, None);
                    for i in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = base + i;
                        let (method, path, body, id_field, key_field, key) = match i % 5 {
                            0 => {
                                let name = format!("apn-{n}");
                                let body = format!(r#"{{"apn":"{name}","apn_ambr_dl":1,"apn_ambr_ul":1}}"#);
                                ("PUT", "/apn/".to_owned(), body, "apn_id", "apn", name)
                            }
                            1 => {
                                let imsi = format!("00101{n:010}");
                                let body = format!(
                                    r#"{{"imsi":"{imsi}","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#
                                );
                                ("PUT", "/subscriber/".to_owned(), body, "subscriber_id", "imsi", imsi)
                            }
                            2 => {
                                let msisdn = format!("61{n:010}");
                                let body = format!(r#"{{"msisdn":"{msisdn}"}}"#);
                                ("PUT", "/ims_subscriber/".to_owned(), body, "ims_subscriber_id", "msisdn", msisdn)
                            }
                            3 => {
                                let imei = format!("35{n:012}");
                                let body = format!(r#"{{"imei":"{imei}","regex_mode":0,"match_response_code":1}}"#);
                                ("PUT", "/eir/".to_owned(), body, "eir_id", "imei", imei)
                            }
                            _ if i % 10 == 4 => match last_sub {
                                Some(id) => (
                                    "PATCH",
                                    format!("/subscriber/{id}"),
                                    format!(r#"{{"ue_ambr_dl":{n}}}"#),
                                    "",
                                    "",
                                    String::new(),
                                ),
                                None => continue,
                            },
                            _ => match last_eir.take() {
                                Some(id) => ("DELETE", format!("/eir/{id}"), String::new(), "", "", String::new()),
                                None => continue,
                            },
                        };
                        if method == "DELETE" {
                            let id: u64 = path.trim_start_matches("/eir/").parse().unwrap();
                            acked.lock().unwrap().delete_sent.insert(id);
                        }
                        let Some(r) = ask(&mut c, method, &path, &body) else {
                            return;
                        };
                        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
                        let mut a = acked.lock().unwrap();
                        match method {
                            "PUT" => {
                                let id = r.json()[id_field].as_u64().unwrap();
                                let table: &'static str = match id_field {
                                    "apn_id" => "/apn/",
                                    "subscriber_id" => "/subscriber/",
                                    "ims_subscriber_id" => "/ims_subscriber/",
                                    _ => "/eir/",
                                };
                                assert!(a.ids.insert((table, id)), "{table}{id} handed out twice");
                                a.created.push((table, id_field, id, key_field, key));
                                match table {
                                    "/subscriber/" => last_sub = Some(id),
                                    "/eir/" => last_eir = Some(id),
                                    _ => {}
                                }
                            }
                            "PATCH" => {
                                if let Some(id) = last_sub {
                                    a.patched.insert(id, n);
                                }
                            }
                            _ => {
                                let id: u64 = path.trim_start_matches("/eir/").parse().unwrap();
                                a.deleted.insert(id);
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + next(&mut x) % 300));
        dir = s.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("a writer's assertion failed");
        }
    }
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let a = acked.lock().unwrap();
    a.check(&s, kills());
    assert!(
        a.created.len() > 4 * kills() && !a.patched.is_empty() && !a.deleted.is_empty(),
        "too few writes to mean anything: {} creates, {} patched, {} deleted",
        a.created.len(),
        a.patched.len(),
        a.deleted.len()
    );
    eprintln!(
        "table soak: {} kills, {} creates, {} subscribers patched, {} EIR rules deleted acknowledged: none lost, no id reused",
        kills(),
        a.created.len(),
        a.patched.len(),
        a.deleted.len()
    );
}
