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
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(50 + x % 250));
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
