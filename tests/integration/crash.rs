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

/// Rows the table soak's creates refer to.
#[derive(Clone, Copy)]
struct Setup {
    /// The writer's latest subscriber (0: none yet).
    last_subscriber: u64,
    network: u64,
    auc: u64,
    apn: u64,
    subscriber: u64,
    customer: u64,
    tariff: u64,
    connection: u64,
}

/// One kind of create in the table soak: the table's path (PUT there, GET
/// `{path}{id}`), its id field, a field whose value only this create has,
/// and (that value, the body) for the number `n`.
struct Create {
    path: &'static str,
    id_field: &'static str,
    key_field: &'static str,
    body: fn(u64, &Setup) -> (String, String),
}

/// A create of every table a client writes, catalog and shards, HSS and
/// AAA (the EIR history and the AAA's money are written by their own
/// paths: the S13 tests and the accounting soak).
const CREATES: &[Create] = &[
    Create {
        path: "/apn/",
        id_field: "apn_id",
        key_field: "apn",
        body: |n, _| {
            let k = format!("apn-{n}");
            (
                k.clone(),
                format!(r#"{{"apn":"{k}","apn_ambr_dl":1,"apn_ambr_ul":1}}"#),
            )
        },
    },
    Create {
        path: "/subscriber/",
        id_field: "subscriber_id",
        key_field: "imsi",
        body: |n, s| {
            let k = format!("00101{n:010}");
            let (auc, apn) = (s.auc, s.apn);
            (
                k.clone(),
                format!(
                    r#"{{"imsi":"{k}","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#
                ),
            )
        },
    },
    Create {
        path: "/ims_subscriber/",
        id_field: "ims_subscriber_id",
        key_field: "msisdn",
        body: |n, _| {
            let k = format!("61{n:010}");
            (k.clone(), format!(r#"{{"msisdn":"{k}"}}"#))
        },
    },
    Create {
        path: "/eir/",
        id_field: "eir_id",
        key_field: "imei",
        body: |n, _| {
            let k = format!("35{n:012}");
            (
                k.clone(),
                format!(r#"{{"imei":"{k}","regex_mode":0,"match_response_code":1}}"#),
            )
        },
    },
    Create {
        path: "/charging_rule/",
        id_field: "charging_rule_id",
        key_field: "rule_name",
        body: |n, _| {
            let k = format!("r{n}");
            (
                k.clone(),
                format!(
                    r#"{{"rule_name":"{k}","qci":9,"arp_priority":1,"mbr_dl":1,"mbr_ul":1,"gbr_dl":1,"gbr_ul":1}}"#
                ),
            )
        },
    },
    Create {
        path: "/tft/",
        id_field: "tft_id",
        key_field: "tft_string",
        body: |n, _| {
            let k = format!(
                "permit out ip from any to 10.{}.{}.{}",
                n >> 16 & 255,
                n >> 8 & 255,
                n & 255
            );
            (
                k.clone(),
                format!(
                    r#"{{"tft_group_id":{},"tft_string":"{k}","direction":1}}"#,
                    n % 1000 + 1
                ),
            )
        },
    },
    Create {
        path: "/roaming/network/",
        id_field: "roaming_network_id",
        key_field: "name",
        body: |n, _| {
            let k = format!("net-{n}");
            (
                k.clone(),
                format!(
                    r#"{{"mcc":"{:03}","mnc":"{:02}","name":"{k}"}}"#,
                    n % 1000,
                    n / 1000 % 100
                ),
            )
        },
    },
    Create {
        path: "/roaming/rule/",
        id_field: "roaming_rule_id",
        key_field: "roaming_network_id",
        body: |n, s| {
            // A rule has no field of its own: its network and flags.
            let body = format!(
                r#"{{"roaming_network_id":{},"allow":{},"enabled":true}}"#,
                s.network,
                n % 2 == 0
            );
            (s.network.to_string(), body)
        },
    },
    Create {
        path: "/subscriber/routing/",
        id_field: "subscriber_routing_id",
        key_field: "ip_address",
        body: |n, s| {
            // One per subscriber and APN: the writer's newest subscriber.
            if s.last_subscriber == 0 {
                return (String::new(), String::new());
            }
            let ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
            let body = format!(
                r#"{{"subscriber_id":{},"apn_id":{},"ip_version":0,"ip_address":"{ip}"}}"#,
                s.last_subscriber, s.apn
            );
            (format!("{}/{}/{ip}", s.last_subscriber, s.apn), body)
        },
    },
    Create {
        path: "/ifc_template/",
        id_field: "ifc_template_id",
        key_field: "name",
        body: |n, _| {
            let k = format!("ifc-{n}");
            (
                k.clone(),
                format!(r#"{{"name":"{k}","template_content":"<IMSSubscription/>"}}"#),
            )
        },
    },
    Create {
        path: "/subscriber_attributes/",
        id_field: "subscriber_attributes_id",
        key_field: "key",
        body: |n, s| {
            let k = format!("attr-{n}");
            (
                k.clone(),
                format!(
                    r#"{{"subscriber_id":{},"key":"{k}","value":"v"}}"#,
                    s.subscriber
                ),
            )
        },
    },
    Create {
        path: "/pcrf/emergency_subscriber/",
        id_field: "emergency_subscriber_id",
        key_field: "imsi",
        body: |n, _| {
            let k = format!("00102{n:010}");
            (k.clone(), format!(r#"{{"imsi":"{k}","ip":"10.9.9.9"}}"#))
        },
    },
    Create {
        path: "/aaa/nas/",
        id_field: "i_nas",
        key_field: "nas_login",
        body: |n, _| {
            let k = format!("nas-{n}");
            (
                k.clone(),
                format!(r#"{{"nas_login":"{k}","nas_password":"p","sip_ips":["192.0.2.9"]}}"#),
            )
        },
    },
    Create {
        path: "/aaa/customer/",
        id_field: "i_customer",
        key_field: "name",
        body: |n, _| {
            let k = format!("customer-{n}");
            (k.clone(), format!(r#"{{"name":"{k}"}}"#))
        },
    },
    Create {
        path: "/aaa/account/",
        id_field: "i_account",
        key_field: "username",
        body: |n, s| {
            let k = format!("user-{n}");
            (
                k.clone(),
                format!(
                    r#"{{"i_customer":{},"auth_type":"digest","username":"{k}","password":"p"}}"#,
                    s.customer
                ),
            )
        },
    },
    Create {
        path: "/aaa/vendor/",
        id_field: "i_vendor",
        key_field: "name",
        body: |n, _| {
            let k = format!("vendor-{n}");
            (k.clone(), format!(r#"{{"name":"{k}"}}"#))
        },
    },
    Create {
        path: "/aaa/tariff/",
        id_field: "i_tariff",
        key_field: "name",
        body: |n, _| {
            let k = format!("tariff-{n}");
            (k.clone(), format!(r#"{{"name":"{k}","service":"voice"}}"#))
        },
    },
    Create {
        path: "/aaa/rate/",
        id_field: "i_rate",
        key_field: "prefix",
        body: |n, s| {
            let k = format!("{n}");
            (
                k.clone(),
                format!(
                    r#"{{"i_tariff":{},"prefix":"{k}","price_1":"0.010000"}}"#,
                    s.tariff
                ),
            )
        },
    },
    Create {
        path: "/aaa/route/",
        id_field: "i_route",
        key_field: "tech_prefix",
        body: |n, s| {
            let k = format!("{n}");
            (
                k.clone(),
                format!(
                    r#"{{"i_customer":{},"i_connection":{},"i_tariff":{},"tech_prefix":"{k}"}}"#,
                    s.customer, s.connection, s.tariff
                ),
            )
        },
    },
];

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
    /// The subscriber every attribute is created for.
    attribute_owner: u64,
}

impl Acked {
    /// Checks the server against everything acknowledged.
    fn check(&self, s: &Server, round: usize) {
        // Attributes are read per subscriber (PyHSS's API): all at once.
        let attributes = s.get(&format!("/subscriber_attributes/{}", self.attribute_owner));
        let attributes = attributes.json();
        for (path, id_field, id, key_field, key) in &self.created {
            if *path == "/subscriber/routing/" {
                // Read by subscriber and APN (PyHSS's API); the key holds
                // both, then the address.
                let mut parts = key.splitn(3, '/');
                let (sub, apn, ip) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                let r = s.get(&format!("/subscriber/routing/{sub}/{apn}"));
                assert_eq!(r.status, 200, "round {round}: routing {id} lost");
                let r = r.json();
                assert_eq!(
                    (r[*id_field].as_u64(), r[*key_field].as_str()),
                    (Some(*id), Some(ip)),
                    "round {round}: routing {id} changed"
                );
                continue;
            }
            if *path == "/subscriber_attributes/" {
                let found = attributes
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r[*id_field] == *id));
                assert_eq!(
                    found.map(|r| &r[*key_field]),
                    Some(&serde_json::Value::from(key.as_str())),
                    "round {round}: attribute {id} lost or changed"
                );
                continue;
            }
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
            let stored = match &r.json()[*key_field] {
                serde_json::Value::String(v) => v.clone(),
                other => other.to_string(),
            };
            assert_eq!(&stored, key, "round {round}: {path}{id} changed");
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

#[test]
fn every_table_keeps_every_acknowledged_write_across_sigkills() {
    let mut dir = temp_dir("crash-tables");
    let s = Server::start_in(dir.clone(), &["--cores", "2"], &[]);
    let made = |path: &str, body: &str, id: &str| {
        let r = s.send_json("PUT", path, body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()[id].as_u64().unwrap()
    };
    let auc = made(
        "/auc/",
        r#"{"ki":"465B5CE8B199B49FAA5F0A2EE238A6BC","opc":"E8ED289DEBA952E4283B54E88E6183CA","amf":"8000"}"#,
        "auc_id",
    );
    let apn = made(
        "/apn/",
        r#"{"apn":"base","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
        "apn_id",
    );
    let subscriber = made(
        "/subscriber/",
        &format!(
            r#"{{"imsi":"001019999999999","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#
        ),
        "subscriber_id",
    );
    let customer = made("/aaa/customer/", r#"{"name":"soak"}"#, "i_customer");
    let vendor = made("/aaa/vendor/", r#"{"name":"soak"}"#, "i_vendor");
    let tariff = made(
        "/aaa/tariff/",
        r#"{"name":"soak","service":"voice"}"#,
        "i_tariff",
    );
    let connection = made(
        "/aaa/connection/",
        &format!(r#"{{"i_vendor":{vendor},"protocol":"sip","host":"192.0.2.1","port":5060}}"#),
        "i_connection",
    );
    let network = made(
        "/roaming/network/",
        r#"{"mcc":"001","mnc":"01","name":"soak"}"#,
        "roaming_network_id",
    );
    let setup = Setup {
        last_subscriber: 0,
        network,
        auc,
        apn,
        subscriber,
        customer,
        tariff,
        connection,
    };
    dir = s.kill();
    let acked = Arc::new(Mutex::new(Acked {
        attribute_owner: setup.subscriber,
        ..Acked::default()
    }));
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
                    c.stream
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let (mut last_sub, mut last_eir) = (None, None);
                    for i in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = base + i;
                        let k = (i % (CREATES.len() as u64 + 2)) as usize;
                        let (method, path, body, id_field, key_field, key) = match CREATES.get(k) {
                            Some(c) => {
                                let setup = Setup {
                                    last_subscriber: last_sub.unwrap_or(0),
                                    ..setup
                                };
                                let (key, body) = (c.body)(n, &setup);
                                if body.is_empty() {
                                    continue;
                                }
                                ("PUT", c.path.to_owned(), body, c.id_field, c.key_field, key)
                            }
                            None if k == CREATES.len() => match last_sub {
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
                            None => match last_eir.take() {
                                Some(id) => (
                                    "DELETE",
                                    format!("/eir/{id}"),
                                    String::new(),
                                    "",
                                    "",
                                    String::new(),
                                ),
                                None => continue,
                            },
                        };
                        if method == "DELETE" {
                            let id: u64 = path.trim_start_matches("/eir/").parse().unwrap();
                            acked.lock().unwrap().delete_sent.insert(id);
                        }
                        let Some(r) = c.try_json(method, &path, &body) else {
                            return;
                        };
                        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
                        let mut a = acked.lock().unwrap();
                        match method {
                            "PUT" => {
                                let id = r.json()[id_field].as_u64().unwrap();
                                let table = CREATES[k].path;
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
    let mut per_table = std::collections::BTreeMap::<&str, usize>::new();
    for (path, ..) in &a.created {
        *per_table.entry(path).or_default() += 1;
    }
    assert_eq!(
        per_table.len(),
        CREATES.len(),
        "a table had no create acknowledged"
    );
    eprintln!(
        "table soak: {} kills, {} creates ({per_table:?}), {} subscribers patched, {} EIR rules deleted acknowledged: none lost, no id reused",
        kills(),
        a.created.len(),
        a.patched.len(),
        a.deleted.len()
    );
}

/// Every S13 ME Identity Check answered 2001 over Diameter, each a new
/// IMSI/IMEI pair (a new EIR history row, with its unique index and
/// operation-log entry), is in the history after SIGKILLs at random
/// moments, and no history id is handed out twice.
#[test]
fn every_acknowledged_eir_check_is_in_the_history_across_sigkills() {
    use crate::diameter::{codes, Mme};
    use serde_json::json;
    const S6A: u32 = 16_777_251;
    const S13: u32 = 16_777_252;
    let mut dir = temp_dir("crash-eir-history");
    // (imsi, imei) of every check answered 2001.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let check = |s: &Server, acked: &[(String, String)], round: usize| {
        // The whole history, a page at a time: (imsi, imei) → id.
        let mut history = std::collections::HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for page in 0.. {
            let rows = s
                .get(&format!("/eir/eir_history/list?page={page}&page_size=1000"))
                .json();
            let rows = rows.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let id = r["imsi_imei_history_id"].as_u64().unwrap();
                assert!(
                    ids.insert(id),
                    "round {round}: history id {id} handed out twice"
                );
                let pair = (
                    r["imsi"].as_str().unwrap().to_owned(),
                    r["imei"].as_str().unwrap().to_owned(),
                );
                history.insert(pair, id);
            }
        }
        for pair in acked {
            assert!(
                history.contains_key(pair),
                "round {round}: check of {pair:?} lost"
            );
        }
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..kills() {
        let s = Server::start_in(
            dir.clone(),
            &["--cores", "2"],
            &[("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")],
        );
        check(&s, &acked.lock().unwrap(), round);
        let peers: Vec<_> = (0..2u64)
            .map(|p| {
                let mme = Mme::connect_as(&s, &format!("mme{p}.epc.test"), "epc.test", &[S6A, S13]);
                let pid = mme.pid();
                let acked = acked.clone();
                let base = (round as u64 * 2 + p) * 1_000_000;
                let thread = std::thread::spawn(move || {
                    let mut mme = mme;
                    for i in 0u64.. {
                        let n = base + i;
                        let (imsi, imei) = (format!("00101{n:010}"), format!("35{n:012}"));
                        let Some(a) = mme.try_cmd(json!({"op": "ecr", "imei": imei, "imsi": imsi}))
                        else {
                            return;
                        };
                        if codes(&a) == (Some(2001), None) {
                            acked.lock().unwrap().push((imsi, imei));
                        }
                    }
                });
                (pid, thread)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + next(&mut x) % 300));
        dir = s.kill();
        for (pid, thread) in peers {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
            thread.join().expect("a peer thread failed");
        }
    }
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let acked = acked.lock().unwrap();
    check(&s, &acked, kills());
    assert!(
        acked.len() > kills(),
        "too few checks to mean anything: {}",
        acked.len()
    );
    eprintln!(
        "EIR history soak: {} kills, {} checks acknowledged over S13: none lost, no id reused",
        kills(),
        acked.len()
    );
}

/// PCRF sessions (serving APNs), written as GeoRed pushes them (`PATCH
/// /geored/`): each push opens or moves a subscriber's session to a new
/// UE address, so the row and its unique address index change on every
/// write. After SIGKILLs at random moments, each subscriber's session is
/// the last acknowledged one or a later one, and its address leads to it.
#[test]
fn every_acknowledged_pcrf_session_survives_sigkills() {
    let mut dir = temp_dir("crash-pcrf");
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
        r#"{"apn":"internet","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
    );
    let apn = apn.json()["apn_id"].as_u64().unwrap();
    let imsis: Vec<String> = (0..32).map(|k| format!("0010100000000{k:02}")).collect();
    for imsi in &imsis {
        let body =
            format!(r#"{{"imsi":"{imsi}","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#);
        assert_eq!(s.send_json("PUT", "/subscriber/", &body).status, 200);
    }
    dir = s.kill();
    let ip = |n: u64| format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    // IMSI → the session number of its last acknowledged push.
    let acked: Arc<Mutex<std::collections::HashMap<String, u64>>> = Arc::default();
    let check = |s: &Server, acked: &std::collections::HashMap<String, u64>, round: usize| {
        for (imsi, n) in acked {
            let r = s.get(&format!("/pcrf/pcrf_subscriber_imsi/{imsi}/{apn}"));
            assert_eq!(r.status, 200, "round {round}: session of {imsi} lost");
            let text = r.text();
            let stored: u64 = text
                .split("\"pcrf_session_id\":\"s-")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("round {round}: {imsi}: {text}"));
            // A later push may have been applied without its reply.
            assert!(
                stored >= *n,
                "round {round}: {imsi} went back from s-{n} to s-{stored}"
            );
            let by_ip = s
                .get(&format!("/pcrf/pcrf_serving_apn_ip/{}", ip(stored)))
                .json();
            assert_eq!(
                by_ip["pcrf_session_id"],
                format!("s-{stored}"),
                "round {round}: the address of {imsi}'s session leads elsewhere"
            );
        }
    };
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next_n = 1u64;
    let pushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for round in 0..kills() {
        let s = Server::start_in(
            dir.clone(),
            &["--cores", "2"],
            &[("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")],
        );
        check(&s, &acked.lock().unwrap(), round);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4usize)
            .map(|w| {
                let (stop, acked, addr) = (stop.clone(), acked.clone(), s.addr);
                let pushes = pushes.clone();
                let mine: Vec<String> = imsis.iter().skip(w).step_by(4).cloned().collect();
                // Session numbers only grow, across rounds too.
                let first = next_n + w as u64;
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    c.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    for i in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = first + 4 * i;
                        let imsi = &mine[(i as usize) % mine.len()];
                        let body = format!(
                            r#"{{"imsi":"{imsi}","serving_apn":"internet","pcrf_session_id":"s-{n}","serving_pgw":"pgw.test","subscriber_routing":"{}"}}"#,
                            ip(n)
                        );
                        let Some(r) = c.try_json("PATCH", "/geored/", &body) else {
                            return;
                        };
                        assert_eq!(r.status, 200, "{}", r.text());
                        acked.lock().unwrap().insert(imsi.clone(), n);
                        pushes.fetch_add(1, Ordering::Relaxed);
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
        // Past every push a writer may have had applied unanswered (one
        // each), and inside 2^24 addresses.
        next_n = acked.lock().unwrap().values().max().copied().unwrap_or(0) + 100;
    }
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let acked = acked.lock().unwrap();
    check(&s, &acked, kills());
    assert_eq!(
        acked.len(),
        imsis.len(),
        "a subscriber had no push acknowledged"
    );
    eprintln!(
        "PCRF session soak: {} kills, {} pushes acknowledged for {} subscribers: none lost, none went back",
        kills(),
        pushes.load(Ordering::Relaxed),
        acked.len()
    );
}
