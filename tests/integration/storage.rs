//! Snapshots at scale through the real binary: `authplane data generate`
//! streams in bounded memory (measured from /proc), and a damaged block of
//! a snapshot answers an error for its rows, never a wrong or missing one,
//! while `data check`, the background check and `/metrics` name it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{data_check, temp_dir, Client, Server, BIN};

const FIRST_IMSI: u64 = 1_010_000_000_000;

/// Runs `authplane data generate`; returns its output and the highest
/// VmHWM seen in /proc while it ran (kB).
fn generate(dir: &std::path::Path, subscribers: u64, cores: u16) -> (String, u64) {
    let mut child = Command::new(BIN)
        .args(["data", "generate"])
        .arg(dir)
        .args(["--subscribers", &subscribers.to_string()])
        .args(["--cores", &cores.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "generate failed: {out}");
    (out, peak_kb)
}

#[test]
fn a_million_subscribers_generate_in_bounded_memory_within_128_bytes_each_and_serve() {
    let dir = temp_dir("gen").join("data");
    let (out, peak_kb) = generate(&dir, 1_000_000, 2);
    // The population alone, held as rows, would be hundreds of MiB.
    assert!(
        peak_kb > 0 && peak_kb < 96 * 1024,
        "peak {peak_kb} kB: {out}"
    );
    let per = out
        .split(", ")
        .find_map(|p| p.strip_suffix(" bytes per subscriber"))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no size in: {out}"));
    assert!(per <= 128.0, "{per} bytes per subscriber");
    let on_disk: u64 = ["shard-0", "shard-1"]
        .iter()
        .flat_map(|s| std::fs::read_dir(dir.join(s)).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 128 * 1_000_000, "{on_disk} bytes");
    let (ok, report) = data_check(&dir);
    assert!(ok, "{report}");
    assert!(
        report.contains("shard 0: snapshot generation 1"),
        "{report}"
    );

    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let mut c = Client::connect(s.addr);
    for n in [0u64, 1, 499_999, 999_999] {
        let imsi = format!("{:015}", FIRST_IMSI + n);
        let r = c.json("GET", &format!("/auc/imsi/{imsi}"), "");
        assert_eq!(r.status, 200, "{imsi}: {}", r.text());
        assert_eq!(r.json()["imsi"], imsi.as_str());
        let v = c.json("GET", &format!("/auc/aka/vector_count/1/imsi/{imsi}"), "");
        assert_eq!(v.status, 200, "{imsi}: {}", v.text());
    }
    let missing = format!("{:015}", FIRST_IMSI + 1_000_000);
    assert_eq!(
        c.json("GET", &format!("/auc/imsi/{missing}"), "").status,
        404
    );
}

/// The layout of a snapshot file: (index offset, blocks).
fn layout(file: &[u8]) -> (usize, usize) {
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    (u64_at(44), u64_at(36))
}

/// Block `i`'s (offset, length) from the index.
fn block(file: &[u8], i: usize) -> (usize, usize) {
    let (index, _) = layout(file);
    let e = &file[index + i * 32..index + i * 32 + 32];
    (
        u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize,
        u32::from_le_bytes(e[24..28].try_into().unwrap()) as usize,
    )
}

#[test]
fn a_damaged_block_is_an_error_for_its_rows_never_a_wrong_row_and_is_named() {
    let n = 20_000u64;
    let dir = temp_dir("damage").join("data");
    generate(&dir, n, 1);
    let snap = dir.join("shard-0/table-0000000000000001.snap");
    let mut bytes = std::fs::read(&snap).unwrap();
    let (_, blocks) = layout(&bytes);
    assert!(blocks > 100, "{blocks} blocks");
    // A block of AuC records (they come first, after the counter).
    let damaged = blocks / 4;
    let (offset, len) = block(&bytes, damaged);
    bytes[offset + len / 2] ^= 0x20;
    std::fs::write(&snap, &bytes).unwrap();

    let (ok, report) = data_check(&dir);
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!(
            "DAMAGED snapshot generation 1: block {damaged} (bytes {offset}.."
        )),
        "{report}"
    );

    // The server starts (opening reads no block), and every subscriber
    // reads right or answers the damage: none is missing or wrong.
    let s = Server::start_in(dir.clone(), &["--cores", "1"], &[]);
    let mut c = Client::connect(s.addr);
    let mut refused = 0;
    for i in 0..n {
        let imsi = format!("{:015}", FIRST_IMSI + i);
        let r = c.json("GET", &format!("/auc/imsi/{imsi}"), "");
        match r.status {
            200 => assert_eq!(r.json()["imsi"], imsi.as_str()),
            500 => {
                assert!(r.text().contains("stored data damaged"), "{}", r.text());
                refused += 1;
            }
            other => panic!("{imsi}: {other} {}", r.text()),
        }
    }
    // The rows of one 4 KiB block: about 50 AuC records.
    assert!((1..200).contains(&refused), "{refused} refused");
    assert_eq!(
        s.metric("authplane_snapshot_damaged_reads_total"),
        refused as f64
    );
    // The background check finds it too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.metric("authplane_snapshot_check_passes_total") < 1.0 {
        assert!(Instant::now() < deadline, "no background check finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.metric("authplane_snapshot_damaged_parts"), 1.0);
    assert!(s
        .logs()
        .iter()
        .any(|l| l.contains("snapshot damaged") && l.contains(&format!("block {damaged}"))));
    let dir = s.kill();

    // A damaged page of the block index: named too.
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[offset + len / 2] ^= 0x20;
    let (index, _) = layout(&bytes);
    bytes[index + 5] ^= 1;
    std::fs::write(&snap, &bytes).unwrap();
    let (ok, report) = data_check(&dir);
    assert!(!ok && report.contains("index page 0"), "{report}");
    // A damaged header: the start is refused, saying why.
    bytes[index + 5] ^= 1;
    bytes[20] ^= 1;
    std::fs::write(&snap, &bytes).unwrap();
    let err = crate::harness::refused_start(&dir, 1, &[]);
    assert!(err.contains("header checksum mismatch"), "{err}");
}
