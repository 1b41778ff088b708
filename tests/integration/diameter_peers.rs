//! authplane among real Diameter nodes: freeDiameterd 1.2.1 as a peer
//! (its own watchdog, DPR when it stops) and as a relay between an MME
//! (python-diameter) and authplane, with every message on the wire
//! captured by dumpcap and decoded by tshark (Wireshark's own dissector).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::diameter::Mme;
use crate::harness::{temp_dir, Server};

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// freeDiameterd in a child process.
struct FreeDiameter {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl FreeDiameter {
    /// A node `identity` in realm epc.test that connects to authplane's
    /// listener and accepts any *.epc.test peer without TLS.
    fn start(identity: &str, hss: std::net::SocketAddr, tw: u32) -> FreeDiameter {
        let dir = temp_dir("freediameter");
        std::fs::create_dir_all(&dir).unwrap();
        // freeDiameterd needs TLS credentials even when no peer uses TLS.
        let cert = rcgen::generate_simple_self_signed(vec![identity.to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        std::fs::write(dir.join("acl.conf"), "ALLOW_IPSEC *.epc.test\n").unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            r#"Identity = "{identity}";
Realm = "epc.test";
Port = {port};
SecPort = 0;
No_SCTP;
No_IPv6;
ListenOn = "127.0.0.1";
TwTimer = {tw};
TLS_Cred = "{d}/cert.pem", "{d}/key.pem";
TLS_CA = "{d}/cert.pem";
LoadExtension = "/usr/lib/freeDiameter/acl_wl.fdx" : "{d}/acl.conf";
ConnectPeer = "hss.authplane.localdomain" {{ ConnectTo = "127.0.0.1"; No_TLS; Port = {hp}; Realm = "authplane.localdomain"; }};
"#,
            hp = hss.port()
        );
        std::fs::write(dir.join("fd.conf"), conf).unwrap();
        let child = Command::new("freeDiameterd")
            .arg("-c")
            .arg(dir.join("fd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("freeDiameterd (scripts/deps test installs freediameterd)");
        FreeDiameter { child, port, dir }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FreeDiameter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The registry entry of the peer `host` once `ready` says so.
fn wait_peer(s: &Server, host: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let peers = s.get("/oam/diameter_peers").json();
        let found = peers
            .as_object()
            .unwrap()
            .values()
            .filter(|p| p["Hostname"] == host)
            .max_by_key(|p| p["Port"].as_str().unwrap_or_default().to_owned())
            .cloned();
        if let Some(p) = found.filter(|p| ready(p)) {
            return p;
        }
        assert!(Instant::now() < deadline, "peer {host}: {peers}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn free_diameter_keeps_the_watchdog_both_ways_and_leaves_with_dpr() {
    // Any traffic restarts a watchdog (RFC 3539), so each side is seen
    // sending DWRs against a peer whose own timer is longer.
    let ours = Server::start(&[], &[("AUTHPLANE_DIAMETER__WATCHDOG_MS", "1000")]);
    let theirs = Server::start(&[], &[]);
    let mut fd1 = FreeDiameter::start("fd1.epc.test", ours.diameter.unwrap(), 30);
    let mut fd2 = FreeDiameter::start("fd2.epc.test", theirs.diameter.unwrap(), 6);
    let p = wait_peer(&ours, "fd1.epc.test", |p| p["Connected"] == true);
    assert_eq!(p["State"], "Open");
    assert_eq!(p["PeerType"], "Relay", "{p}");
    // Our DWRs (after 1 s of silence) are answered.
    let p = wait_peer(&ours, "fd1.epc.test", |p| {
        p["WatchdogAnswersReceived"].as_u64() >= Some(3)
    });
    assert_eq!(p["Connected"], true, "{p}");
    // freeDiameterd's own DWRs (every 6 s) are answered: it stays open.
    let p = wait_peer(&theirs, "fd2.epc.test", |p| {
        p["WatchdogRequestsReceived"].as_u64() >= Some(1)
    });
    assert_eq!(p["Connected"], true, "{p}");
    std::thread::sleep(Duration::from_secs(1));
    let p = wait_peer(&theirs, "fd2.epc.test", |_| true);
    assert_eq!(
        p["Connected"], true,
        "freeDiameterd left after its DWR: {p}"
    );
    // Stopping, freeDiameterd sends a DPR: answered, the peer closed.
    for (s, fd, host) in [
        (&ours, &mut fd1, "fd1.epc.test"),
        (&theirs, &mut fd2, "fd2.epc.test"),
    ] {
        fd.terminate();
        wait_peer(s, host, |p| p["Connected"] == false);
        assert!(
            s.logs()
                .iter()
                .any(|l| l.contains("Diameter peer disconnects (DPR)")),
            "no DPR logged"
        );
    }
}

/// dumpcap capturing one TCP port on the loopback interface.
pub struct Capture {
    dumpcap: std::process::Child,
    /// dumpcap's stderr, kept open until it has written the file.
    _err: std::io::BufReader<std::process::ChildStderr>,
    pcap: PathBuf,
}

impl Capture {
    /// Starts capturing `port`, once dumpcap listens.
    pub fn start(name: &str, port: u16) -> Capture {
        let dir = temp_dir("diameter-capture");
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join(format!("{name}.pcapng"));
        // Capturing needs root (or sudo without a password).
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap_or(false);
        let mut dumpcap = if root {
            Command::new("dumpcap")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "dumpcap"]);
            c
        };
        let mut dumpcap = dumpcap
            .args(["-q", "-i", "lo", "-f"])
            .arg(format!("tcp port {port}"))
            .arg("-w")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dumpcap (tshark's capture tool)");
        // dumpcap prints "Capturing on" once it listens.
        let mut err = std::io::BufReader::new(dumpcap.stderr.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(line.contains("Capturing"), "dumpcap: {line}");
        Capture {
            dumpcap,
            _err: err,
            pcap,
        }
    }

    /// Stops capturing; the capture file.
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.dumpcap.id().to_string())
            .status();
        let _ = self.dumpcap.wait();
        self.pcap.clone()
    }
}

/// Every Diameter message of a capture, decoded by tshark: one JSON
/// object per message with the fields asked for.
pub fn tshark(pcap: &Path, port: u16, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .arg("-d")
        .arg(format!("tcp.port=={port},diameter"))
        .args([
            "-Y",
            "diameter",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark (scripts/deps test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

#[test]
fn a_relay_carries_s6a_both_ways_and_tshark_decodes_every_message() {
    let s = Server::start(&["--cores", "2"], &[]);
    let hss = s.diameter.unwrap();
    let r = s.send_json(
        "PUT",
        "/auc/",
        r#"{"ki":"465b5ce8b199b49faa5f0a2ee238a6bc","opc":"cd63cb71954a9f4e48a5994e37a02baf","amf":"8000","imsi":"001010000000041"}"#,
    );
    let auc = r.json()["auc_id"].as_u64().unwrap();
    let apn = s.send_json(
        "PUT",
        "/apn/",
        r#"{"apn":"internet","apn_ambr_dl":1,"apn_ambr_ul":1}"#,
    );
    let apn = apn.json()["apn_id"].as_u64().unwrap();
    let sub = s.send_json(
        "PUT",
        "/subscriber/",
        &format!(
            r#"{{"imsi":"001010000000041","auc_id":{auc},"default_apn":{apn},"apn_list":"{apn}"}}"#
        ),
    );
    assert_eq!(sub.status, 200, "{}", sub.text());

    // Capture authplane's side of every exchange.
    let capture = Capture::start("s6a", hss.port());

    let fd = FreeDiameter::start("relay.epc.test", hss, 30);
    wait_peer(&s, "relay.epc.test", |p| p["Connected"] == true);
    // The MME talks to the relay only.
    let mut mme = Mme::connect_via(fd.port, "relay.epc.test", "mme1.epc.test");
    let a = mme.cmd(json!({"op": "air", "imsi": "001010000000041", "n": 2, "plmn": "00101"}));
    let info = a["avps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == 1413)
        .unwrap()
        .clone();
    let kasmes: Vec<String> = info["avps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["avps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["code"] == 1450)
                .unwrap()["hex"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kasmes.len(), 2, "{a}");
    let u = mme.cmd(json!({"op": "ulr", "imsi": "001010000000041"}));
    assert!(u.to_string().contains("\"code\":1400"), "{u}");
    let sub = s.get("/subscriber/imsi/001010000000041").json();
    assert_eq!(sub["serving_mme"], "mme1.epc.test");
    assert_eq!(sub["serving_mme_peer"], "relay.epc.test");
    // Another MME attaches directly: the CLR goes back through the relay.
    let mut mme2 = Mme::connect(&s, "mme2.epc.test");
    mme2.cmd(json!({"op": "ulr", "imsi": "001010000000041"}));
    let clrs = mme.cmd(json!({"op": "clrs", "wait": 10, "count": 1}));
    assert_eq!(clrs["clrs"][0]["imsi"], "001010000000041", "{clrs}");
    assert_eq!(clrs["clrs"][0]["destination_host"], "mme1.epc.test");
    mme.stop();
    mme2.stop();
    let pcap = capture.stop();

    let rows = tshark(
        &pcap,
        hss.port(),
        &[
            "diameter.cmd.code",
            "diameter.flags.request",
            "diameter.Route-Record",
            "diameter.KASME",
            "diameter.Destination-Host",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
    );
    assert!(rows.len() >= 8, "{rows:?}");
    // Nothing malformed, nothing Wireshark calls an error.
    for r in &rows {
        assert!(r[5].is_empty(), "malformed: {r:?}");
        assert!(
            !r[6].split(',').any(|s| s == "8388608"),
            "expert error: {r:?}"
        );
    }
    let is = |r: &Vec<String>, code: &str, request: bool| {
        r[0].split(',').next() == Some(code) && (r[1].starts_with('1') || r[1] == "True") == request
    };
    // The AIR came through the relay, which added the Route-Record of
    // the peer it got it from (RFC 6733 §6.1.9).
    let air = rows.iter().find(|r| is(r, "318", true)).expect("AIR");
    assert_eq!(air[2], "mme1.epc.test", "{air:?}");
    // tshark's KASMEs are the ones the MME received.
    let aia = rows.iter().find(|r| is(r, "318", false)).expect("AIA");
    let decoded: Vec<String> = aia[3].split(',').map(|k| k.replace(':', "")).collect();
    assert_eq!(decoded, kasmes);
    // The CLR to mme1 left on the relay's connection.
    let clr = rows.iter().find(|r| is(r, "317", true)).expect("CLR");
    assert!(clr[4].contains("mme1.epc.test"), "{clr:?}");
    assert!(rows.iter().any(|r| is(r, "317", false)), "no CLA");
    let _ = std::fs::remove_file(&pcap);
}
