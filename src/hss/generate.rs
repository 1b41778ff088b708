//! `authplane data generate`: a data directory holding N synthetic
//! subscribers, written straight as snapshots (one per shard), for startup
//! and load tests. Each subscriber is an AuC on its IMSI's shard with its
//! IMSI index entry; keys are derived from the IMSI (test data only).

use std::path::Path;

use super::auc::Auc;
use super::tables;
use crate::domain::shard::{shard_of, ShardId};
use crate::runtime::DataDir;
use crate::storage::record::Record;
use crate::storage::snapshot::{self, Entry, SnapHeader, SNAP_FORMAT};

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

pub fn generate(dir: &Path, subscribers: u64, cores: u16, first_imsi: u64) -> anyhow::Result<()> {
    anyhow::ensure!(!dir.exists(), "{} exists already", dir.display());
    anyhow::ensure!(cores > 0, "--cores must be at least 1");
    let data = DataDir::open(dir, cores)?;
    let started = crate::runtime::clock::now();
    let mut per_shard: Vec<Vec<Entry>> = (0..cores).map(|_| Vec::new()).collect();
    let mut counters = vec![1u64; usize::from(cores)];
    for n in 0..subscribers {
        let imsi_num = first_imsi + n;
        let imsi = format!("{imsi_num:015}");
        let shard = shard_of(imsi.as_bytes(), cores);
        let k = shard.index();
        let id = counters[k] * u64::from(cores) + u64::from(shard.0);
        counters[k] += 1;
        let (ki, opc) = synthetic_keys(imsi_num);
        let auc = Auc {
            id,
            ki: crate::domain::keywrap::KeyMaterial::seal(&ki, None),
            opc: crate::domain::keywrap::KeyMaterial::seal(&opc, None),
            amf: [0x80, 0],
            sqn: crate::domain::sqn::SqnState::at(0),
            imsi: Some(imsi.clone()),
            esim: false,
            text: Default::default(),
            last_modified: 0,
        };
        per_shard[k].push(Entry {
            table: tables::AUC,
            key: id.to_be_bytes().to_vec(),
            value: auc.to_bytes(),
        });
        per_shard[k].push(Entry {
            table: tables::IMSI_INDEX,
            key: imsi.into_bytes(),
            value: id.to_be_bytes().to_vec(),
        });
    }
    let mut bytes = 0u64;
    for (k, mut entries) in per_shard.into_iter().enumerate() {
        let shard = ShardId(u16::try_from(k)?);
        entries.push(Entry {
            table: tables::META,
            key: tables::META_AUC_NEXT.to_vec(),
            value: counters[k].to_be_bytes().to_vec(),
        });
        entries.sort_unstable_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
        let shard_dir = data.shard_dir(shard);
        std::fs::create_dir_all(&shard_dir)?;
        let id = data.shard_identity(shard);
        let header = SnapHeader {
            format: SNAP_FORMAT,
            shard: id.shard,
            shards: id.shards,
            hash_version: id.hash_version,
            generation: 1,
            body_len: 0,
            body_crc: 0,
            entries: 0,
        };
        let path = shard_dir.join(format!("table-{:016}.rkyv", 1));
        snapshot::write(&path, header, entries, None)?;
        bytes += std::fs::metadata(&path)?.len();
    }
    println!(
        "{subscribers} subscribers on {cores} shards in {:.1} s: {bytes} bytes, {:.1} bytes per subscriber",
        started.elapsed().as_secs_f64(),
        bytes as f64 / subscribers.max(1) as f64
    );
    Ok(())
}
