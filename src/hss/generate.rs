//! `authplane data generate`: a data directory holding N synthetic
//! subscribers, written straight as snapshots (one per shard), for startup
//! and load tests. Each subscriber is an AuC on its IMSI's shard with its
//! IMSI index entry; keys are derived from the IMSI (test data only).
//!
//! Streamed in bounded memory: IMSIs ascend, so a shard's AuC ids and
//! IMSI keys both come out in key order, and each shard's snapshot is
//! written as it goes (its counter first, then its AuCs, then its IMSI
//! index), one thread per shard. What is held is the shard of each IMSI
//! (2 bytes per subscriber) and each writer's block index (32 bytes per
//! 4 KiB block).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::auc::Auc;
use super::tables;
use crate::domain::keywrap::KeyMaterial;
use crate::domain::shard::{shard_of, ShardId};
use crate::domain::sqn::SqnState;
use crate::runtime::DataDir;
use crate::storage::record::Record;
use crate::storage::snapshot::{self, SnapHeader};

/// The Ki and OPc of synthetic subscriber `imsi` (test data only).
pub fn synthetic_keys(imsi: u64) -> ([u8; 16], [u8; 16]) {
    let mut ki = [0u8; 16];
    let mut opc = [0u8; 16];
    ki[..8].copy_from_slice(&imsi.to_be_bytes());
    ki[8..].copy_from_slice(&(!imsi).to_be_bytes());
    opc[..8].copy_from_slice(&imsi.rotate_left(17).to_be_bytes());
    opc[8..].copy_from_slice(&imsi.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    (ki, opc)
}

/// `imsi` as 15 ASCII digits.
fn imsi_digits(mut imsi: u64) -> [u8; 15] {
    let mut out = [b'0'; 15];
    for d in out.iter_mut().rev() {
        *d = b'0' + (imsi % 10) as u8;
        imsi /= 10;
    }
    out
}

/// The peak resident memory of this process so far (VmHWM), in bytes.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

pub fn generate(
    dir: &Path,
    subscribers: u64,
    cores: u16,
    first_imsi: u64,
    progress: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(!dir.exists(), "{} exists already", dir.display());
    anyhow::ensure!(cores > 0, "--cores must be at least 1");
    anyhow::ensure!(
        first_imsi
            .checked_add(subscribers)
            .is_some_and(|end| end <= 1_000_000_000_000_000),
        "--first-imsi and --subscribers go past 15 digits"
    );
    let n = usize::try_from(subscribers)?;
    let data = DataDir::open(dir, cores)?;
    let started = crate::runtime::clock::now();
    let bar = crate::table::bulk::progress_bar(
        progress,
        subscribers * 2,
        "{msg:10} {bar:40} {human_pos}/{human_len} {per_sec} eta {eta}",
    );
    bar.set_message("placing");
    let mut shard = vec![0u16; n];
    let mut counts = vec![0u64; usize::from(cores)];
    for (i, s) in shard.iter_mut().enumerate() {
        let k = shard_of(&imsi_digits(first_imsi + i as u64), cores).0;
        *s = k;
        if let Some(c) = counts.get_mut(usize::from(k)) {
            *c += 1;
        }
    }
    bar.set_message("writing");
    let bytes = AtomicU64::new(0);
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|k| {
                let (data, shard, bar, bytes) = (&data, &shard, &bar, &bytes);
                let count = counts.get(usize::from(k)).copied().unwrap_or(0);
                scope.spawn(move || -> anyhow::Result<()> {
                    let len = write_shard(data, ShardId(k), shard, count, first_imsi, bar)?;
                    bytes.fetch_add(len, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a shard's writer failed")))
            })
            .collect()
    });
    bar.finish_and_clear();
    for r in results {
        r?;
    }
    let bytes = bytes.into_inner();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{subscribers} subscribers on {cores} shards in {secs:.1} s ({:.0} per second): {bytes} bytes, {:.1} bytes per subscriber, peak memory {} MiB",
        subscribers as f64 / secs.max(1e-9),
        bytes as f64 / subscribers.max(1) as f64,
        peak_memory().unwrap_or(0) >> 20
    );
    Ok(())
}

/// Writes shard `k`'s snapshot: its AuC counter, its AuCs, its IMSI index.
fn write_shard(
    data: &DataDir,
    k: ShardId,
    shard: &[u16],
    count: u64,
    first_imsi: u64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let shard_dir = data.shard_dir(k);
    std::fs::create_dir_all(&shard_dir)?;
    let id = data.shard_identity(k);
    let header = SnapHeader::identity(id.shard, id.shards, id.hash_version, 1);
    let tmp = shard_dir.join(format!("table-{:016}.snap.tmp", 1));
    let mut w = snapshot::Writer::create(&tmp, header, None)?;
    w.push(
        tables::META,
        tables::META_AUC_NEXT,
        &(count + 1).to_be_bytes(),
    )?;
    let cores = u64::from(id.shards);
    // The subscribers of this shard, in IMSI order, with their auc_id.
    let mine = || {
        shard
            .iter()
            .enumerate()
            .filter(move |(_, s)| **s == k.0)
            .enumerate()
            .map(move |(counter, (i, _))| {
                let imsi = first_imsi + i as u64;
                (imsi, (counter as u64 + 1) * cores + u64::from(k.0))
            })
    };
    let mut done = 0u64;
    let mut tick = |bar: &indicatif::ProgressBar| {
        done += 1;
        if done.is_multiple_of(65_536) {
            bar.inc(65_536 * cores);
        }
    };
    for (imsi, auc_id) in mine() {
        let (ki, opc) = synthetic_keys(imsi);
        let auc = Auc {
            id: auc_id,
            ki: KeyMaterial::seal(&ki, None),
            opc: KeyMaterial::seal(&opc, None),
            amf: [0x80, 0],
            sqn: SqnState::at(0),
            imsi: Some(String::from_utf8_lossy(&imsi_digits(imsi)).into_owned()),
            esim: false,
            text: Default::default(),
            last_modified: 0,
        };
        w.push(tables::AUC, &auc_id.to_be_bytes(), &auc.to_bytes())?;
        tick(bar);
    }
    for (imsi, auc_id) in mine() {
        w.push(
            tables::IMSI_INDEX,
            &imsi_digits(imsi),
            &auc_id.to_be_bytes(),
        )?;
        tick(bar);
    }
    w.finish()?;
    let path = shard_dir.join(format!("table-{:016}.snap", 1));
    std::fs::rename(&tmp, &path)?;
    Ok(std::fs::metadata(&path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_digits_are_fifteen() {
        assert_eq!(&imsi_digits(1010000000001), b"001010000000001");
        assert_eq!(&imsi_digits(999_999_999_999_999), b"999999999999999");
    }
}
