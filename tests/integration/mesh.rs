//! The shard mesh on two cores: connections spread over both cores, a key
//! owned by the other core is served by its owner and answered on the
//! accepting core.

use std::collections::BTreeSet;

use crate::harness::Server;

/// The placement function, computed independently of the server (FNV-1a
/// 64 then MurmurHash3 fmix64, HASH_VERSION 1).
fn owner(key: &str, shards: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h % shards
}

#[test]
fn keys_are_served_by_their_owner_across_cores() {
    let s = Server::start(&["--cores", "2"], &[]);
    let hops_before = s.metric("authplane_mesh_hops_total");
    let mut accepted = BTreeSet::new();
    let mut crossed = 0;
    // Many connections: SO_REUSEPORT spreads them over both cores.
    for i in 0..200 {
        let key = format!("00101{i:010}");
        let r = s.get(&format!("/oam/shard/{key}"));
        assert_eq!(r.status, 200);
        let v = r.json();
        let expected = owner(&key, 2);
        assert_eq!(v["shards"], 2);
        assert_eq!(v["owner"], expected, "{v}");
        assert_eq!(
            v["served_on"], expected,
            "served by a core that does not own the key: {v}"
        );
        accepted.insert(v["accepted_on"].as_u64().unwrap());
        if v["accepted_on"] != v["owner"] {
            crossed += 1;
        }
    }
    assert_eq!(
        accepted,
        BTreeSet::from([0, 1]),
        "connections never reached both cores"
    );
    assert!(crossed > 0, "no request crossed cores");
    let hops = s.metric("authplane_mesh_hops_total") - hops_before;
    // Each scrape of /metrics also hops to the other core once.
    assert!(
        hops >= f64::from(crossed),
        "mesh hops {hops} < crossed requests {crossed}"
    );
}

#[test]
fn metrics_merge_every_core() {
    let s = Server::start(&["--cores", "2"], &[]);
    for _ in 0..50 {
        assert_eq!(s.get("/oam/ping").status, 200);
    }
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    let count = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        count("authplane_requests_total{route=\"GET /oam/ping\",status=\"200\"}"),
        50.0
    );
    assert_eq!(
        count("authplane_request_duration_seconds_count{route=\"GET /oam/ping\"}"),
        50.0
    );
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        assert!(
            text.contains(&format!("route=\"GET /oam/ping\",quantile=\"{q}\"")),
            "{text}"
        );
    }
    assert!(text.contains("authplane_connections_open{core=\"0\"}"));
    assert!(text.contains("authplane_connections_open{core=\"1\"}"));
    // 50 connections plus this scrape were accepted, over both cores.
    assert!(count("authplane_connections_accepted_total") >= 51.0);
}

#[test]
fn executor_lag_shows_a_stopped_server() {
    let s = Server::start(&["--cores", "2"], &[]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The process does not run for 400 ms, as when a hypervisor deschedules
    // its vCPU: every core's next probe is late by about that much.
    s.signal("STOP");
    std::thread::sleep(std::time::Duration::from_millis(400));
    s.signal("CONT");
    let text = s.get("/metrics").text();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    let count = value("authplane_executor_lag_seconds_count");
    assert!(count >= 2.0, "{text}");
    assert_eq!(
        value("authplane_executor_lag_seconds_bucket{le=\"+Inf\"}"),
        count
    );
    // Buckets are cumulative.
    let mut last = 0.0;
    for le in [
        "0.0015", "0.002", "0.003", "0.005", "0.01", "0.02", "0.05", "0.1",
    ] {
        let n = value(&format!(
            "authplane_executor_lag_seconds_bucket{{le=\"{le}\"}}"
        ));
        assert!(n >= last, "le {le}: {n} < {last}");
        last = n;
    }
    // Both cores' probes came late by the stop, beyond the last bucket.
    assert!(count - last >= 2.0, "{text}");
    assert!(value("authplane_executor_lag_seconds_max") >= 0.3, "{text}");
    assert!(value("authplane_executor_lag_seconds_sum") >= 0.6, "{text}");
}
