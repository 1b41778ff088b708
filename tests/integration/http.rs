//! HTTP/1.1 behaviour of the real server: keep-alive, pipelining, bodies,
//! limits, timeouts, error shapes.

use crate::harness::{Client, Server};

#[test]
fn ping_answers_like_pyhss() {
    let s = Server::start(&[], &[]);
    let r = s.get("/oam/ping");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), serde_json::json!({"result": "OK"}));
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    for _ in 0..200 {
        c.send(b"GET /oam/ping HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    let mut burst = Vec::new();
    for i in 0..64 {
        burst.extend_from_slice(
            format!("GET /oam/shard/key{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
    }
    c.send(&burst);
    for i in 0..64 {
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["key"], format!("key{i}"));
    }
}

#[test]
fn a_request_split_into_single_bytes_is_served() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    for b in b"GET /oam/ping HTTP/1.1\r\nHost: t\r\n\r\n" {
        c.send(&[*b]);
    }
    assert_eq!(c.response().json()["result"], "OK");
}

#[test]
fn chunked_request_bodies_are_framed_and_the_connection_reused() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n");
    assert_eq!(c.response().status, 200);
    c.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().status, 200);
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(c.response().status, 100);
    c.send(b"hello");
    assert_eq!(c.response().status, 200);
}

#[test]
fn head_gets_the_length_without_the_body() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    c.send(b"HEAD /oam/ping HTTP/1.1\r\n\r\n");
    let r = c.response_to(true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("15"));
    // The next response starts right after the head: no stray body bytes.
    c.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().json()["result"], "OK");
}

#[test]
fn connection_close_and_http10_close_after_the_response() {
    let s = Server::start(&[], &[]);
    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());

    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.0\r\n\r\n");
    assert_eq!(c.response().status, 200);
    assert!(c.is_closed());

    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response().status, 200);
    c.send(b"GET /oam/ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response().status, 200);
}

fn expect_error(s: &Server, raw: &[u8], status: u16) -> serde_json::Value {
    let mut c = s.connect();
    c.send(raw);
    let r = c.response();
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(), "connection must close after a framing error");
    r.json()
}

#[test]
fn each_limit_plus_one_is_refused_with_a_json_body() {
    let s = Server::start(&[], &[]);
    let line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(8192));
    let body = expect_error(&s, line.as_bytes(), 414);
    assert_eq!(body["result"], "Failed");

    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    expect_error(&s, head.as_bytes(), 431);

    let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
    expect_error(&s, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 431);

    let big = format!(
        "PUT /auc/ HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        1024 * 1024 + 1
    );
    expect_error(&s, big.as_bytes(), 413);

    // Just inside every limit is served.
    let many: String = (0..64).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut c = s.connect();
    c.send(format!("GET /oam/ping HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert_eq!(c.response().status, 200);
}

#[test]
fn malformed_requests_get_400_in_the_apis_shape() {
    let s = Server::start(&[], &[]);
    expect_error(&s, b"GET /oam/ping HTTP/1.1\r\nBad Header\r\n\r\n", 400);
    expect_error(&s, b"BR@KEN\r\n\r\n", 400);
    expect_error(
        &s,
        b"GET /oam/ping HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
    let stir = expect_error(
        &s,
        b"POST /stir/v1/signing HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        400,
    );
    assert_eq!(
        stir["requestError"]["serviceException"]["messageId"],
        "SVC4006"
    );
    let aaa = expect_error(
        &s,
        b"POST /aaa_authorize HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    assert_eq!(aaa["status"], "error");
    expect_error(&s, b"GET /oam/ping HTTP/3.0\r\n\r\n", 505);
    // Not HTTP at all: 400, as nginx answers.
    expect_error(&s, b"THIS IS NOT HTTP\r\n\r\n", 400);
}

#[test]
fn unknown_routes_and_methods_answer_in_each_apis_shape() {
    let s = Server::start(&[], &[]);
    let r = s.get("/no/such/route");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        serde_json::json!({"result": "Failed", "reason": "Not Found"})
    );
    let r = s.get("/stir/v1/nothing");
    assert_eq!(r.status, 404);
    assert!(r.json()["requestError"]["serviceException"]["messageId"].is_string());
    let r = s.get("/aaa_nothing");
    assert_eq!(r.json()["status"], "error");
    let r = s.get("/sim-auth-api/v1/nothing");
    assert!(r.json()["error"]["message"].is_string());

    let mut c = s.connect();
    c.send(b"DELETE /oam/ping HTTP/1.1\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    // A 405 keeps the connection.
    c.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().status, 200);
}

#[test]
fn a_client_stalling_mid_headers_gets_408_and_frees_its_task() {
    let s = Server::start(&[], &[("AUTHPLANE_SERVER__HEADER_TIMEOUT_MS", "300")]);
    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.1\r\nHost: t\r\n");
    let r = c.response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
    // The stalled connection is gone: only the metrics scrape is open.
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    while s.metric("authplane_connections_open") > 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled connection still open"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let s = Server::start(&[], &[("AUTHPLANE_SERVER__IDLE_TIMEOUT_MS", "200")]);
    let mut c = s.connect();
    c.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().status, 200);
    assert!(c.is_closed());
}

#[test]
fn connections_over_the_per_core_limit_get_503() {
    let s = Server::start(
        &["--cores", "1"],
        &[("AUTHPLANE_SERVER__MAX_CONNECTIONS_PER_CORE", "2")],
    );
    let mut a = s.connect();
    let mut b = s.connect();
    a.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    b.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(a.response().status, 200);
    assert_eq!(b.response().status, 200);
    let mut c = s.connect();
    let r = c.response();
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["result"], "Failed");
    drop((a, b));
}

#[test]
fn the_epoll_driver_serves_too() {
    let s = Server::start(&[], &[("AUTHPLANE_SERVER__IO_DRIVER", "epoll")]);
    let mut c: Client = s.connect();
    for _ in 0..10 {
        c.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
        assert_eq!(c.response().status, 200);
    }
}

/// PyHSS's API answers any origin (CORS, preflight included) and names
/// this HSS in an `HSS` header; other APIs carry neither.
#[test]
fn pyhss_answers_carry_cors_and_the_hss_identity() {
    let s = Server::start(
        &[],
        &[(
            "AUTHPLANE_HSS__ORIGIN_HOST",
            "hss01.mnc001.mcc001.3gppnetwork.org",
        )],
    );
    for path in ["/oam/ping", "/apn/999", "/no/such/path"] {
        let r = s.get(path);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert_eq!(
            r.header("hss"),
            Some("hss01.mnc001.mcc001.3gppnetwork.org"),
            "{path}"
        );
    }
    let mut c = s.connect();
    c.send(
        b"OPTIONS /subscriber/1 HTTP/1.1\r\nHost: t\r\nOrigin: https://ui.example\r\nAccess-Control-Request-Method: PATCH\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 200);
    let methods = r
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_owned();
    assert!(
        methods.contains("PATCH") && methods.contains("DELETE"),
        "{methods}"
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .contains("Provisioning-Key"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // The connection stays usable.
    c.send(b"GET /oam/ping HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().status, 200);
    let stir = s.send_json("POST", "/stir/v1/verification", "{}");
    assert!(stir.header("hss").is_none());
}
