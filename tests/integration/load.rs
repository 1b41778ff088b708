//! The bundled load generator (authplane-load) against the real server and
//! against test servers with known faults.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use authplane_load::engine::{run, Mode, Plan, Stats};
use authplane_load::scenario::{Kind, Pick, Population};

use crate::harness::Server;

fn plan(target: SocketAddr, kind: Kind, mode: Mode, secs: f64) -> Plan {
    let mut p = crate::harness::short_plan(target, kind);
    p.mode = mode;
    p.connections = 8;
    p.threads = 2;
    p.warmup = Duration::from_millis(200);
    p.duration = Duration::from_secs_f64(secs);
    p.scenario.population = Population {
        seed: 7,
        first_imsi: 1_010_700_000_000,
        size: 500,
    };
    p
}

fn consistent(s: &Stats) {
    assert_eq!(
        s.latency_us.len(),
        s.ok + s.error_count(),
        "histogram and request counts disagree"
    );
    let reported = s.throughput();
    let counted = (s.ok + s.error_count()) as f64 / s.measured_secs;
    assert!((reported - counted).abs() < 1e-6);
}

/// S6a AIRs over Diameter (CER per connection, answers matched by their
/// Session-Id), one per round trip and pipelined, every vector recomputed.
#[test]
fn s6a_cx_and_s13_scenarios_run_over_diameter_without_a_wrong_answer() {
    let s = Server::start(&["--cores", "2"], &[]);
    let mut provision = plan(s.addr, Kind::HssProvision, Mode::Closed, 0.0);
    provision.requests = Some(50);
    provision.scenario.population.size = 50;
    assert_eq!(run(&provision).unwrap().ok, 50);
    let apn = s.send_json(
        "PUT",
        "/apn/",
        r#"{"apn":"internet","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
    );
    let apn = apn.json()["apn_id"].as_u64().unwrap();
    for a in s.get("/auc/list?page_size=100").json().as_array().unwrap() {
        let body = format!(
            r#"{{"imsi":"{}","auc_id":{},"default_apn":{apn},"apn_list":"{apn}"}}"#,
            a["imsi"].as_str().unwrap(),
            a["auc_id"]
        );
        assert_eq!(s.send_json("PUT", "/subscriber/", &body).status, 200);
    }
    for pipeline in [1, 8] {
        let mut air = plan(s.diameter.unwrap(), Kind::S6aAir, Mode::Closed, 0.5);
        air.scenario.population.size = 50;
        air.pipeline = pipeline;
        let r = run(&air).unwrap();
        assert!(r.ok > 50, "{r:?}");
        assert_eq!(r.error_count(), 0, "{:?}", r.errors);
        consistent(&r);
    }
    // IMS subscribers for Cx, EIR rules for S13.
    let mut ims = plan(s.addr, Kind::ImsProvision, Mode::Closed, 0.0);
    ims.requests = Some(50);
    ims.scenario.population.size = 50;
    assert_eq!(run(&ims).unwrap().ok, 50);
    let mut eir = plan(s.addr, Kind::EirProvision, Mode::Closed, 0.0);
    eir.requests = Some(300);
    eir.scenario.eir_rules = 300;
    let r = run(&eir).unwrap();
    assert_eq!((r.ok, r.error_count()), (300, 0), "{:?}", r.errors);
    for kind in [Kind::CxMar, Kind::S13Ecr] {
        let mut p = plan(s.diameter.unwrap(), kind, Mode::Closed, 0.5);
        p.scenario.population.size = 50;
        p.scenario.eir_rules = 300;
        p.pipeline = 4;
        let r = run(&p).unwrap();
        assert!(r.ok > 50, "{kind:?}: {r:?}");
        assert_eq!(r.error_count(), 0, "{kind:?}: {:?}", r.errors);
        consistent(&r);
    }
}

#[test]
fn every_built_scenario_runs_against_the_server_without_a_wrong_answer() {
    let s = Server::start(&["--cores", "2"], &[]);
    let ping = run(&plan(s.addr, Kind::Ping, Mode::Closed, 0.5)).unwrap();
    assert!(ping.ok > 100, "{ping:?}");
    assert_eq!(ping.error_count(), 0, "{:?}", ping.errors);
    consistent(&ping);
    // A closed loop has no send clock to be late.
    assert!(ping.clock_late_us.is_empty());

    let mut provision = plan(s.addr, Kind::HssProvision, Mode::Closed, 0.0);
    provision.requests = Some(500);
    provision.warmup = Duration::ZERO;
    let p = run(&provision).unwrap();
    assert_eq!((p.ok, p.error_count()), (500, 0), "{:?}", p.errors);

    let aka = run(&plan(s.addr, Kind::Aka, Mode::Open { rate: 2000.0 }, 1.0)).unwrap();
    assert_eq!(aka.error_count(), 0, "{:?}", aka.errors);
    // Open loop: the schedule, not the server, sets the count: never more
    // than the 2000 due (a closed loop sends far more here). Fewer when the
    // machine is loaded: requests still due when the run ends are not sent
    // (as wrk2); with the tests in parallel on 2 CPUs that took up to a
    // third, so the lower bound only tells a sending schedule from none.
    assert!((1000..=2200).contains(&aka.ok), "{}", aka.ok);
    consistent(&aka);
    // The send clock ticked every 0.5 ms over the 1.2 s run, on both threads,
    // and its lateness was recorded for each tick.
    assert!(
        aka.clock_late_us.len() >= 100,
        "{}",
        aka.clock_late_us.len()
    );

    // Resync with AUTS built as a USIM would, Zipf-distributed subscribers,
    // one connection per request.
    let mut resync = plan(s.addr, Kind::Resync, Mode::Closed, 0.5);
    resync.scenario.pick = Pick::Zipf(1.1);
    resync.scenario.close_each = true;
    let r = run(&resync).unwrap();
    assert!(r.ok > 50, "{r:?}");
    assert_eq!(r.error_count(), 0, "{:?}", r.errors);
    consistent(&r);

    // Pipelining, and a weighted mix of kinds.
    let mut piped = plan(s.addr, Kind::Ping, Mode::Closed, 0.5);
    piped.pipeline = 16;
    let p16 = run(&piped).unwrap();
    assert!(p16.ok > 1000 && p16.error_count() == 0, "{p16:?}");
    consistent(&p16);
    let mut mixed = plan(s.addr, Kind::Ping, Mode::Closed, 0.5);
    let mix: authplane_load::scenario::MixFile = toml::from_str(
        "[[scenario]]\nkind = \"aka\"\nweight = 3\n[[scenario]]\nkind = \"ping\"\nweight = 1\n",
    )
    .unwrap();
    mixed.scenario.mix = Some(mix.cumulative().unwrap());
    let m = run(&mixed).unwrap();
    assert!(m.ok > 100 && m.error_count() == 0, "{:?}", m.errors);
    let bad: authplane_load::scenario::MixFile =
        toml::from_str("[[scenario]]\nkind = \"hss-provision\"\nweight = 1\n").unwrap();
    assert!(bad.cumulative().is_err());
}

/// A test server answering `/oam/ping` at once, except that the first
/// request after `stall_after` waits `stall` before its answer.
fn stalling_server(stall_after: Duration, stall: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stalled = Arc::new(AtomicBool::new(false));
    let began = std::time::Instant::now();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let stalled = stalled.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if began.elapsed() >= stall_after && !stalled.swap(true, Ordering::SeqCst) {
                            std::thread::sleep(stall);
                        }
                        let answer =
                            b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"result\":\"OK\"}";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn open_loop_latency_includes_a_stall_for_every_request_scheduled_during_it() {
    let stall = Duration::from_millis(400);
    let addr = stalling_server(Duration::from_millis(600), stall);
    let mut p = plan(addr, Kind::Ping, Mode::Open { rate: 400.0 }, 1.5);
    p.connections = 1;
    p.threads = 1;
    p.warmup = Duration::ZERO;
    let s = run(&p).unwrap();
    assert_eq!(s.error_count(), 0, "{:?}", s.errors);
    // One connection at 400/s: about 160 requests were due during the stall,
    // their latencies falling from 400 ms to 0; about half of them ≥ 200 ms.
    // Without the correction only the one stalled request would be slow.
    let slow = s.latency_us.count_between(200_000, 1_000_000);
    assert!(
        slow >= 50,
        "only {slow} requests show the stall (max {} µs)",
        s.latency_us.max()
    );
    assert!(s.latency_us.max() >= 380_000);
    // The schedule catches up: the whole run still sends ~600 requests.
    assert!((540..=660).contains(&s.ok), "{}", s.ok);
}

#[test]
fn a_wrong_vector_is_an_error_not_throughput() {
    // Answers every vector request with a well-formed vector that no
    // subscriber's keys produce.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                let body = br#"[{"rand":"00112233445566778899aabbccddeeff","autn":"0102030405068000a1a2a3a4a5a6a7a8","xres":"1122334455667788","ck":"00000000000000000000000000000000","ik":"00000000000000000000000000000000"}]"#;
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let mut answer =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    answer.extend_from_slice(body);
                    if stream.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut p = plan(addr, Kind::Aka, Mode::Closed, 0.3);
    p.connections = 1;
    p.threads = 1;
    let s = run(&p).unwrap();
    assert_eq!(s.ok, 0);
    assert!(
        s.errors.get("wrong_vector").copied().unwrap_or(0) > 10,
        "{:?}",
        s.errors
    );
}
