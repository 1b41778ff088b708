//! Runs the real `authplane` binary on 127.0.0.1 with an ephemeral port and
//! speaks raw HTTP/1.1 to it over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_authplane");

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The Diameter listener's address (when it runs).
    pub diameter: Option<SocketAddr>,
    /// Every HTTP listener by name, with its address.
    pub listeners: Vec<(String, SocketAddr)>,
    pub data_dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

/// A fresh, empty temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("authplane-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs `authplane data check` on `data_dir`: (exited 0, its stdout).
pub fn data_check(data_dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["data", "check"])
        .arg(data_dir)
        .output()
        .expect("run authplane data check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `authplane serve` on `data_dir` with `--cores cores` and the
/// extra environment, expecting it to refuse to start; returns its stderr.
pub fn refused_start(
    data_dir: &std::path::Path,
    cores: u16,
    env: &[(&str, &std::ffi::OsStr)],
) -> String {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cores",
            &cores.to_string(),
            "--data-dir",
        ])
        .arg(data_dir)
        .envs(env.iter().copied())
        .output()
        .expect("run authplane serve");
    assert!(!out.status.success(), "the start was not refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Server {
    /// Starts `authplane serve` with extra arguments and environment, on a
    /// fresh data directory.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(temp_dir("data"), args, env)
    }

    /// Starts `authplane serve` on `data_dir` (kept across restarts).
    pub fn start_in(data_dir: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        // Only the configuration a test gives: nothing inherited.
        for (k, _) in std::env::vars() {
            if k.starts_with("AUTHPLANE_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            // Tests run in parallel: every Diameter listener on a free port.
            .env("AUTHPLANE_DIAMETER__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn authplane");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let mut diameter = None;
        let mut listeners = Vec::new();
        let line = loop {
            let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
                let err: Vec<String> = erx.try_iter().collect();
                panic!("server did not print 'listening on': {err:?}")
            });
            if let Some(d) = line.strip_prefix("diameter listening on ") {
                diameter = Some(d.parse().expect("diameter address"));
            } else if let Some(l) = line.strip_prefix("listener ") {
                // listener NAME listening on ADDR (SCHEME; APIS)
                let (name, rest) = l.split_once(" listening on ").expect("listener line");
                let addr = rest.split(' ').next().expect("listener address");
                listeners.push((name.to_owned(), addr.parse().expect("listener address")));
            } else {
                break line;
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        Server {
            child,
            addr,
            diameter,
            listeners,
            data_dir,
            stderr: erx,
        }
    }

    /// The address of the listener named `name`.
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.listeners))
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a new connection.
    pub fn get(&self, path: &str) -> Response {
        let mut c = self.connect();
        c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        c.response()
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The value of a metric line that starts with `prefix`, summed.
    pub fn metric(&self, prefix: &str) -> f64 {
        let m = self.get("/metrics");
        assert_eq!(m.status, 200);
        m.text()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Server {
    /// SIGKILLs the server and keeps its data directory.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut self.data_dir)
    }

    /// Sends `method path` with a JSON body on a new connection.
    pub fn send_json(&self, method: &str, path: &str, body: &str) -> Response {
        self.connect().json(method, path, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The Identity value of a 200 `signingResponse` (fails the test on
    /// any other answer).
    pub fn identity(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text());
        match self.json()["signingResponse"]["identity"].as_str() {
            Some(id) => id.to_owned(),
            None => panic!("no signingResponse.identity in {}", self.text()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// A keep-alive connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one response (a HEAD response when `head`: no body).
    pub fn response_to(&mut self, head: bool) -> Response {
        self.read_response(head)
            .unwrap_or_else(|e| panic!("no whole response: {e}"))
    }

    /// Reads one response, or says why there was none (closed, reset,
    /// timed out).
    pub fn try_response(&mut self) -> Result<Response, String> {
        self.read_response(false)
    }

    fn read_response(&mut self, head: bool) -> Result<Response, String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).map_err(|e| e.to_string())? {
                let status = r.code.expect("status");
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect();
                let len: usize = if head || status == 100 {
                    0
                } else {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().expect("content-length"))
                        .expect("Content-Length in every response")
                };
                while self.buf.len() < n + len {
                    self.fill()?;
                }
                let body = self.buf[n..n + len].to_vec();
                self.buf.drain(..n + len);
                return Ok(Response {
                    status,
                    headers,
                    body,
                });
            }
            self.fill()?;
        }
    }

    pub fn response(&mut self) -> Response {
        self.response_to(false)
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a whole response".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// `method path` with a JSON body on this (keep-alive) connection.
    pub fn json(&mut self, method: &str, path: &str, body: &str) -> Response {
        self.try_json(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer"))
    }

    /// As [`Client::json`]; None when no whole answer came (the server
    /// died, say): the request was not acknowledged.
    pub fn try_json(&mut self, method: &str, path: &str, body: &str) -> Option<Response> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes()).ok()?;
        self.try_response().ok()
    }

    /// One GET on a new connection to `addr`.
    pub fn get_from(addr: SocketAddr, path: &str) -> Response {
        let mut c = Client::connect(addr);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        c.response()
    }

    /// Everything the server sends until it closes (or the read timeout).
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = self.stream.read(&mut chunk) {
            out.extend_from_slice(&chunk[..n]);
        }
        out
    }

    /// True when the server has closed the connection (EOF), waiting up
    /// to the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// A short closed-loop run of the bundled load generator against `target`
/// (4 connections, one thread, half a second), for checking a scenario's
/// answers; callers set what the scenario needs.
pub fn short_plan(
    target: SocketAddr,
    kind: authplane_load::scenario::Kind,
) -> authplane_load::engine::Plan {
    use authplane_load::scenario::{Pick, Population, Scenario};
    authplane_load::engine::Plan {
        target,
        tls: None,
        mode: authplane_load::engine::Mode::Closed,
        connections: 4,
        threads: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        requests: None,
        scenario: Scenario {
            kind,
            population: Population {
                seed: 1,
                first_imsi: 0,
                size: 1,
            },
            host: target.to_string(),
            pick: Pick::Uniform,
            close_each: false,
            mix: None,
            stir_key: None,
            sim: Default::default(),
            verify_body: Default::default(),
            stir_verify_every: 1,
            aaa_run: 1,
            aaa_session: Default::default(),
            eir_rules: 1,
            ecr_new_pairs: false,
        },
        pipeline: 1,
        progress: None,
    }
}

/// SIGKILLs per run of a kill test: `CRASH_SOAK_KILLS` when set (the long
/// soak, `bench/crash_soak.sh`), else `default`.
pub fn soak_kills(default: usize) -> usize {
    std::env::var("CRASH_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
