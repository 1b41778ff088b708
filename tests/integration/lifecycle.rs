//! Start-up and graceful shutdown of the real process.

use std::time::Duration;

use crate::harness::Server;

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let mut s = Server::start(&["--cores", "2"], &[]);
    // A request in flight: head and half its body sent.
    let mut busy = s.connect();
    busy.send(b"GET /oam/ping HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello");
    // An idle keep-alive connection.
    let mut idle = s.connect();
    idle.send(b"GET /oam/ping HTTP/1.1\r\n\r\n");
    assert_eq!(idle.response().status, 200);
    std::thread::sleep(Duration::from_millis(100));

    s.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    // The idle connection is closed; the in-flight one is still served.
    assert!(idle.is_closed());
    busy.send(b"world");
    let r = busy.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.is_closed());

    let status = s.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    // No new connections once stopped.
    assert!(std::net::TcpStream::connect(s.addr).is_err());
    let logs = s.logs().join("\n");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

#[test]
fn sigint_stops_an_idle_server_with_exit_0() {
    let mut s = Server::start(&[], &[]);
    s.signal("INT");
    assert_eq!(s.wait_exit().code(), Some(0));
}

#[test]
fn the_grace_period_bounds_a_stalled_request() {
    let mut s = Server::start(
        &[],
        &[
            ("AUTHPLANE_SERVER__SHUTDOWN_GRACE_MS", "300"),
            ("AUTHPLANE_SERVER__HEADER_TIMEOUT_MS", "60000"),
        ],
    );
    let mut stalled = s.connect();
    stalled.send(b"GET /oam/ping HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let began = std::time::Instant::now();
    s.signal("TERM");
    assert_eq!(s.wait_exit().code(), Some(0));
    assert!(began.elapsed() < Duration::from_secs(15));
    assert!(stalled.is_closed());
}
