//! `authplane hss import FILE.csv`: SIM vendor output files into the AuC
//! tables, offline (the data directory is locked against a running server).
//!
//! Columns are found by header name, case-insensitively: `imsi`, `ki`,
//! `opc` or `op`, and optionally `iccid`, `amf` (default 8000), `sqn`
//! (default 0); other columns are ignored. Every line goes through the same
//! validation as `PUT /auc/`; a bad line is reported with its number and
//! skipped. Re-running a file changes nothing: a line whose IMSI is already
//! provisioned updates that AuC in place (same id, SQN never lowered).
//! Each shard is then written as a fresh snapshot in one pass.

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};

use super::auc::Auc;
use super::tables;
use crate::domain::ids::{hex_exact, Iccid, Imsi};
use crate::domain::keywrap::{Kek, KeyMaterial};
use crate::domain::milenage::opc_from_op;
use crate::domain::shard::{shard_of, ShardId};
use crate::domain::sqn::SqnState;
use crate::runtime::data::DataDir;
use crate::storage::record::Record;
use crate::storage::store::{compact_recovered, recover, Recovered};
use crate::storage::Identity;

pub use crate::table::bulk::ImportReport;

struct Columns {
    imsi: usize,
    ki: usize,
    opc: Option<usize>,
    op: Option<usize>,
    iccid: Option<usize>,
    amf: Option<usize>,
    sqn: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> anyhow::Result<Columns> {
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let need =
        |name: &str| find(name).ok_or_else(|| anyhow::anyhow!("the header has no {name} column"));
    let c = Columns {
        imsi: need("imsi")?,
        ki: need("ki")?,
        opc: find("opc"),
        op: find("op"),
        iccid: find("iccid"),
        amf: find("amf"),
        sqn: find("sqn"),
    };
    anyhow::ensure!(
        c.opc.is_some() || c.op.is_some(),
        "the header has neither an opc nor an op column"
    );
    Ok(c)
}

/// One validated line.
struct Line {
    imsi: String,
    ki: [u8; 16],
    opc: [u8; 16],
    iccid: Option<String>,
    amf: [u8; 2],
    sqn: u64,
}

fn parse_line(c: &Columns, r: &csv::StringRecord) -> Result<Line, String> {
    let field = |i: usize| r.get(i).map(str::trim).unwrap_or("");
    let opt = |i: Option<usize>| i.map(field).filter(|v| !v.is_empty());
    let e = |e: crate::domain::ids::InvalidId| e.to_string();
    let imsi = Imsi::parse(field(c.imsi)).map_err(e)?.as_str().to_owned();
    let ki = hex_exact::<16>("ki", field(c.ki)).map_err(e)?;
    let opc = match (opt(c.opc), opt(c.op)) {
        (Some(opc), _) => hex_exact::<16>("opc", opc).map_err(e)?,
        (None, Some(op)) => opc_from_op(&ki, &hex_exact::<16>("op", op).map_err(e)?),
        (None, None) => return Err("opc: required (or op)".into()),
    };
    let iccid = opt(c.iccid)
        .map(|i| Iccid::parse(i).map(|i| i.as_str().to_owned()))
        .transpose()
        .map_err(e)?;
    let amf = match opt(c.amf) {
        Some(a) => hex_exact::<2>("amf", a).map_err(e)?,
        None => [0x80, 0],
    };
    let sqn = match opt(c.sqn) {
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&s| s <= crate::domain::sqn::MAX_SQN)
            .ok_or("sqn: must be an integer below 2^48")?,
        None => 0,
    };
    Ok(Line {
        imsi,
        ki,
        opc,
        iccid,
        amf,
        sqn,
    })
}

/// One shard being imported into: what is on disk, plus the changes.
struct ShardImport {
    dir: PathBuf,
    identity: Identity,
    rec: Recovered,
    next_counter: u64,
}

impl ShardImport {
    fn read(&self, table: u8, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(match self.rec.overlay.lookup(table, key) {
            Some(v) => v.map(<[u8]>::to_vec),
            None => match self.rec.snapshot.as_ref() {
                Some(s) => s.get(table, key)?.map(<[u8]>::to_vec),
                None => None,
            },
        })
    }

    fn put(&mut self, table: u8, key: Vec<u8>, value: Vec<u8>) {
        self.rec.overlay.put_offline(table, key, value);
    }
}

fn id_of(v: Option<Vec<u8>>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
}

/// Imports `file` into the data directory at `dir` (created for `cores`
/// shards if new). Keys are wrapped under `kek` when given.
pub fn import(
    file: &Path,
    dir: &Path,
    cores: u16,
    kek: Option<&Kek>,
    now: u64,
    progress: bool,
) -> anyhow::Result<ImportReport> {
    let shards = crate::table::bulk::shard_count(dir, cores)?;
    let data = DataDir::open(dir, shards)?;
    let mut parts = Vec::with_capacity(usize::from(shards));
    for k in 0..shards {
        let shard_dir = data.shard_dir(ShardId(k));
        let identity = data.shard_identity(ShardId(k));
        let rec = recover(&shard_dir, identity, true)?;
        let mut part = ShardImport {
            dir: shard_dir,
            identity,
            rec,
            next_counter: 1,
        };
        part.next_counter = id_of(part.read(tables::META, tables::META_AUC_NEXT)?).unwrap_or(1);
        parts.push(part);
    }

    let (mut reader, bar) = crate::table::bulk::csv_with_progress(file, progress)?;
    let cols = columns(reader.headers()?)?;
    let mut report = ImportReport::default();
    // ICCIDs claimed by this file, to refuse a second line with the same one.
    let mut seen_iccid: FxHashMap<String, String> = FxHashMap::default();
    let mut seen_imsi: FxHashMap<String, u64> = FxHashMap::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.errors.push((line, format!("unreadable: {e}")));
                continue;
            }
        }
        let line_no = record.position().map_or(0, |p| p.line());
        let line = match parse_line(&cols, &record) {
            Ok(l) => l,
            Err(e) => {
                report.errors.push((line_no, e));
                continue;
            }
        };
        if let Some(first) = seen_imsi.insert(line.imsi.clone(), line_no) {
            report
                .errors
                .push((line_no, format!("imsi {} repeats line {first}", line.imsi)));
            continue;
        }
        let owner = shard_of(line.imsi.as_bytes(), shards).index();
        let existing = id_of(parts[owner].read(tables::IMSI_INDEX, line.imsi.as_bytes())?)
            .map(|id| {
                parts[owner]
                    .read(tables::AUC, &id.to_be_bytes())
                    .map(|b| b.map(|b| (id, b)))
            })
            .transpose()?
            .flatten()
            .and_then(|(id, b)| Auc::from_bytes(&b).ok().map(|a| (id, a)))
            .filter(|(_, a)| a.imsi.as_deref() == Some(line.imsi.as_str()));
        if let Some(iccid) = &line.iccid {
            let iccid_shard = shard_of(iccid.as_bytes(), shards).index();
            let holder = id_of(parts[iccid_shard].read(tables::ICCID_INDEX, iccid.as_bytes())?);
            let mine = existing.as_ref().map(|(id, _)| *id);
            if let Some(other) = holder.filter(|h| Some(*h) != mine) {
                report.errors.push((
                    line_no,
                    format!("iccid {iccid} already provisioned (auc_id {other})"),
                ));
                continue;
            }
            if let Some(prev) = seen_iccid.insert(iccid.clone(), line.imsi.clone()) {
                report.errors.push((
                    line_no,
                    format!("iccid {iccid} repeats the line of imsi {prev}"),
                ));
                continue;
            }
        }
        let (id, mut auc, created) = match existing {
            Some((id, a)) => (id, a, false),
            None => {
                let part = &mut parts[owner];
                let id = part.next_counter * u64::from(shards) + owner as u64;
                part.next_counter += 1;
                let auc = Auc {
                    id,
                    ki: KeyMaterial::seal(&[0; 16], None),
                    opc: KeyMaterial::seal(&[0; 16], None),
                    amf: [0; 2],
                    sqn: SqnState::at(0),
                    imsi: Some(line.imsi.clone()),
                    esim: false,
                    text: Default::default(),
                    last_modified: now,
                };
                (id, auc, true)
            }
        };
        let same = !created
            && auc.ki.open(kek).is_ok_and(|k| *k == line.ki)
            && auc.opc.open(kek).is_ok_and(|k| *k == line.opc)
            && auc.amf == line.amf
            && auc.sqn.floor(0) >= line.sqn
            && auc.iccid() == line.iccid.as_deref();
        if same {
            report.unchanged += 1;
            continue;
        }
        auc.ki = KeyMaterial::seal(&line.ki, kek);
        auc.opc = KeyMaterial::seal(&line.opc, kek);
        auc.amf = line.amf;
        // Never lower an SQN: one may have been issued since (the lease,
        // taken by a server that has stopped, still bounds it).
        auc.sqn.last = auc.sqn.last.max(line.sqn);
        auc.text[16] = line.iccid.clone();
        auc.last_modified = now;
        parts[owner].put(tables::AUC, id.to_be_bytes().to_vec(), auc.to_bytes());
        parts[owner].put(
            tables::IMSI_INDEX,
            line.imsi.clone().into_bytes(),
            id.to_be_bytes().to_vec(),
        );
        if let Some(iccid) = &line.iccid {
            let s = shard_of(iccid.as_bytes(), shards).index();
            parts[s].put(
                tables::ICCID_INDEX,
                iccid.clone().into_bytes(),
                id.to_be_bytes().to_vec(),
            );
        }
        if created {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    bar.finish_and_clear();

    for part in &mut parts {
        let counter = part.next_counter;
        part.put(
            tables::META,
            tables::META_AUC_NEXT.to_vec(),
            counter.to_be_bytes().to_vec(),
        );
    }
    for part in parts {
        write_shard(part)?;
    }
    Ok(report)
}

/// Writes a shard's state as a new snapshot and drops what it replaces.
fn write_shard(part: ShardImport) -> anyhow::Result<()> {
    compact_recovered(&part.dir, part.identity, &part.rec)?;
    Ok(())
}
