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
//!
//! Streamed, in memory bounded by the sort's segments (not by the file):
//!
//! 1. every valid line goes, fixed-size, into an external sort by (IMSI,
//!    line) whose segments spill to `import.tmp/` in the data directory;
//! 2. in IMSI order, a repeated IMSI is refused (its first line wins), the
//!    AuC already provisioned for each IMSI is looked up in the shard's
//!    snapshot, and the lines that carry an ICCID go to a second sort by
//!    (ICCID, line);
//! 3. in ICCID order, an ICCID held by another AuC, or claimed by an
//!    earlier line, is refused;
//! 4. in IMSI order again, each kept line becomes its AuC (new ones take
//!    ids in IMSI order) with its IMSI and ICCID index entries, spooled
//!    per shard in key order (sorted where the order differs);
//! 5. each shard's snapshot is merged with its spools into a new one.

use rustc_hash::FxHashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
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
use crate::storage::snapshot::Snapshot;
use crate::storage::sort::{next_item, ExternalSort, Order, Sortable};
use crate::storage::store::{compact_recovered, merge_snapshot, recover, remove_replaced, Removal};
use crate::storage::{Identity, StoreError, TableId};

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

/// Rows per run of a sort (a row is 95 bytes; two runs are in memory, one
/// filling while the other is sorted and written): about 380 MiB, so the
/// import stays well inside 2 GiB (`--sort-lines`).
pub const SEGMENT_ROWS: usize = 2_000_000;

/// `s` zero-padded to `N` bytes (digits sort above the padding, so the
/// order is the strings').
fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn unpadded(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// A padded field as text (None: empty).
fn padded_text(b: &[u8]) -> Option<&str> {
    Some(unpadded(b))
        .filter(|t| !t.is_empty())
        .and_then(|t| std::str::from_utf8(t).ok())
}

/// One validated line, fixed-size for the sorts.
#[derive(Debug, Clone)]
struct Row {
    imsi: [u8; 15],
    line: u64,
    ki: [u8; 16],
    opc: [u8; 16],
    amf: [u8; 2],
    sqn: u64,
    /// All zero: none.
    iccid: [u8; 22],
    /// auc_id provisioned for this IMSI before the import (0: none).
    existing: u64,
}

const ROW_BYTES: usize = 15 + 8 + 16 + 16 + 2 + 8 + 22 + 8;

impl Row {
    fn from_line(l: &Line, line: u64) -> Row {
        Row {
            imsi: padded(&l.imsi),
            line,
            ki: l.ki,
            opc: l.opc,
            amf: l.amf,
            sqn: l.sqn,
            iccid: l.iccid.as_deref().map(padded).unwrap_or([0; 22]),
            existing: 0,
        }
    }

    fn imsi(&self) -> &str {
        padded_text(&self.imsi).unwrap_or_default()
    }

    fn iccid(&self) -> Option<&str> {
        padded_text(&self.iccid)
    }
}

impl Sortable for Row {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut b = [0u8; ROW_BYTES];
        let mut at = 0;
        for part in [
            &self.imsi[..],
            &self.line.to_be_bytes(),
            &self.ki,
            &self.opc,
            &self.amf,
            &self.sqn.to_be_bytes(),
            &self.iccid,
            &self.existing.to_be_bytes(),
        ] {
            b[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        w.write_all(&b)
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<Row> {
        let mut b = [0u8; ROW_BYTES];
        r.read_exact(&mut b)?;
        let mut at = 0;
        let mut take = |n: usize| {
            let s = &b[at..at + n];
            at += n;
            s
        };
        let mut row = Row {
            imsi: [0; 15],
            line: 0,
            ki: [0; 16],
            opc: [0; 16],
            amf: [0; 2],
            sqn: 0,
            iccid: [0; 22],
            existing: 0,
        };
        row.imsi.copy_from_slice(take(15));
        row.line = u64::from_be_bytes(take(8).try_into().unwrap_or_default());
        row.ki.copy_from_slice(take(16));
        row.opc.copy_from_slice(take(16));
        row.amf.copy_from_slice(take(2));
        row.sqn = u64::from_be_bytes(take(8).try_into().unwrap_or_default());
        row.iccid.copy_from_slice(take(22));
        row.existing = u64::from_be_bytes(take(8).try_into().unwrap_or_default());
        Ok(row)
    }
}

/// A line's claim of its ICCID, for the sort by (ICCID, line).
#[derive(Debug, Clone)]
struct Claim {
    iccid: [u8; 22],
    line: u64,
    imsi: [u8; 15],
    /// auc_id provisioned for the line's IMSI before the import (0: none).
    existing: u64,
}

const CLAIM_BYTES: usize = 22 + 8 + 15 + 8;

impl Claim {
    fn iccid(&self) -> Option<&str> {
        padded_text(&self.iccid)
    }
}

impl Sortable for Claim {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut b = [0u8; CLAIM_BYTES];
        b[..22].copy_from_slice(&self.iccid);
        b[22..30].copy_from_slice(&self.line.to_be_bytes());
        b[30..45].copy_from_slice(&self.imsi);
        b[45..].copy_from_slice(&self.existing.to_be_bytes());
        w.write_all(&b)
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<Claim> {
        let mut b = [0u8; CLAIM_BYTES];
        r.read_exact(&mut b)?;
        let mut c = Claim {
            iccid: [0; 22],
            line: 0,
            imsi: [0; 15],
            existing: 0,
        };
        c.iccid.copy_from_slice(&b[..22]);
        c.line = u64::from_be_bytes(b[22..30].try_into().unwrap_or_default());
        c.imsi.copy_from_slice(&b[30..45]);
        c.existing = u64::from_be_bytes(b[45..].try_into().unwrap_or_default());
        Ok(c)
    }
}

/// An ICCID index entry, fixed-size for its sort.
#[derive(Debug, Clone, Copy)]
struct IccidEntry {
    iccid: [u8; 22],
    id: u64,
}

impl Sortable for IccidEntry {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut b = [0u8; 30];
        b[..22].copy_from_slice(&self.iccid);
        b[22..].copy_from_slice(&self.id.to_be_bytes());
        w.write_all(&b)
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<IccidEntry> {
        let mut b = [0u8; 30];
        r.read_exact(&mut b)?;
        let mut iccid = [0u8; 22];
        iccid.copy_from_slice(&b[..22]);
        Ok(IccidEntry {
            iccid,
            id: u64::from_be_bytes(b[22..].try_into().unwrap_or_default()),
        })
    }
}

fn by_iccid_entry(a: &IccidEntry, b: &IccidEntry) -> std::cmp::Ordering {
    a.iccid.cmp(&b.iccid)
}

/// A key and a value, for the sorts and spools of changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Sortable for Pair {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let len = |n: usize| u32::try_from(n).map_err(std::io::Error::other);
        w.write_all(&len(self.key.len())?.to_be_bytes())?;
        w.write_all(&self.key)?;
        w.write_all(&len(self.value.len())?.to_be_bytes())?;
        w.write_all(&self.value)
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<Pair> {
        let field = |r: &mut R| -> std::io::Result<Vec<u8>> {
            let mut n = [0u8; 4];
            r.read_exact(&mut n)?;
            let mut v = vec![0u8; u32::from_be_bytes(n) as usize];
            r.read_exact(&mut v)?;
            Ok(v)
        };
        Ok(Pair {
            key: field(r)?,
            value: field(r)?,
        })
    }
}

type Sorter<T> = ExternalSort<T>;

/// A sort spilling to its own directory `work/name` (segment files are
/// named by number: two sorts must not share a directory).
fn sorter<T: Sortable>(work: &Work, name: &str, by: Order<T>) -> std::io::Result<Sorter<T>> {
    ExternalSort::new(work.dir.join(name), work.segment_rows, by)
}

/// Where the sorts and spools go, and how many lines a sort holds.
struct Work {
    dir: PathBuf,
    segment_rows: usize,
}

/// A file of [`Pair`]s written and then read back in the same order.
struct Spool {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Spool {
    fn create(path: PathBuf) -> anyhow::Result<Spool> {
        let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        Ok(Spool { path, out })
    }

    /// Appends a pair, encoded as [`Pair`] is.
    fn push(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        for field in [key, value] {
            let len = u32::try_from(field.len()).map_err(std::io::Error::other)?;
            self.out.write_all(&len.to_be_bytes())?;
            self.out.write_all(field)?;
        }
        Ok(())
    }

    /// Reads the pairs back.
    fn read(self) -> anyhow::Result<impl Iterator<Item = std::io::Result<Pair>>> {
        self.out.into_inner().map_err(|e| e.into_error())?;
        let mut r = BufReader::with_capacity(1 << 20, File::open(&self.path)?);
        Ok(std::iter::from_fn(move || {
            next_item::<Pair>(&mut r).transpose()
        }))
    }
}

/// One shard being imported into: its snapshot (its logs folded in
/// first) and the changes, spooled in key order per table.
struct ShardImport {
    dir: PathBuf,
    identity: Identity,
    snapshot: Option<std::sync::Arc<Snapshot>>,
    /// Generation the new snapshot takes.
    generation: u64,
    next_counter: u64,
    /// New AuCs, ids ascending.
    created: Spool,
    /// IMSI index entries of the new AuCs, IMSIs ascending.
    imsis: Spool,
    /// AuCs changed in place (ids in any order).
    updated: Sorter<Pair>,
    /// ICCID index entries (ICCIDs in any order).
    iccids: Sorter<IccidEntry>,
}

impl ShardImport {
    fn read(&self, table: u8, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(match &self.snapshot {
            Some(s) => s.get(table, key)?.map(<[u8]>::to_vec),
            None => None,
        })
    }
}

fn id_of(v: Option<Vec<u8>>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
}

/// A padded IMSI as one integer of the same order (a 16-byte compare).
fn imsi_order(imsi: &[u8; 15]) -> u128 {
    let mut b = [0u8; 16];
    b[..15].copy_from_slice(imsi);
    u128::from_be_bytes(b)
}

fn by_imsi(a: &Row, b: &Row) -> std::cmp::Ordering {
    (imsi_order(&a.imsi), a.line).cmp(&(imsi_order(&b.imsi), b.line))
}

fn by_iccid(a: &Claim, b: &Claim) -> std::cmp::Ordering {
    (a.iccid, a.line).cmp(&(b.iccid, b.line))
}

fn by_key(a: &Pair, b: &Pair) -> std::cmp::Ordering {
    a.key.cmp(&b.key)
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
    segment_rows: usize,
) -> anyhow::Result<ImportReport> {
    let shards = crate::table::bulk::shard_count(dir, cores)?;
    let data = DataDir::open(dir, shards)?;
    let work = Work {
        dir: dir.join("import.tmp"),
        segment_rows,
    };
    let _ = std::fs::remove_dir_all(&work.dir);
    std::fs::create_dir_all(&work.dir)?;
    let result = import_into(file, &data, shards, &work, kek, now, progress);
    let _ = std::fs::remove_dir_all(&work.dir);
    result
}

#[allow(clippy::too_many_arguments)]
fn import_into(
    file: &Path,
    data: &DataDir,
    shards: u16,
    work: &Work,
    kek: Option<&Kek>,
    now: u64,
    progress: bool,
) -> anyhow::Result<ImportReport> {
    let mut parts = Vec::with_capacity(usize::from(shards));
    for k in 0..shards {
        let dir = data.shard_dir(ShardId(k));
        let identity = data.shard_identity(ShardId(k));
        let mut rec = recover(&dir, identity, true)?;
        if compact_recovered(&dir, identity, &rec)?.is_some() {
            rec = recover(&dir, identity, true)?;
        }
        let generation = rec
            .generation
            .max(rec.report.snapshot_generation.unwrap_or(0) + 1);
        let mut part = ShardImport {
            identity,
            snapshot: rec.snapshot,
            generation,
            next_counter: 1,
            created: Spool::create(work.dir.join(format!("created-{k}")))?,
            imsis: Spool::create(work.dir.join(format!("imsis-{k}")))?,
            updated: sorter(work, &format!("updated-{k}"), by_key)?,
            iccids: sorter(work, &format!("iccids-{k}"), by_iccid_entry)?,
            dir,
        };
        part.next_counter = id_of(part.read(tables::META, tables::META_AUC_NEXT)?).unwrap_or(1);
        parts.push(part);
    }
    let mut report = ImportReport::default();

    // 1. Every valid line, by (IMSI, line).
    let (mut reader, bar) = crate::table::bulk::csv_with_progress(file, progress)?;
    let cols = columns(reader.headers()?)?;
    let mut rows: Sorter<Row> = sorter(work, "rows", by_imsi)?;
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
        match parse_line(&cols, &record) {
            Ok(l) => rows.push(Row::from_line(&l, line_no))?,
            Err(e) => report.errors.push((line_no, e)),
        }
    }
    bar.finish_and_clear();
    let total = rows.count();
    let rows = rows.done()?;
    let bar = crate::table::bulk::progress_bar(
        progress,
        total * 2,
        "{bar:40} {human_pos}/{human_len} lines {per_sec} eta {eta}",
    );

    // 2. Repeated IMSIs; the AuC each IMSI has; the ICCID claims.
    let mut kept = Spool::create(work.dir.join("kept"))?;
    let mut claims: Sorter<Claim> = sorter(work, "claims", by_iccid)?;
    let mut first: Option<([u8; 15], u64)> = None;
    for row in rows {
        let mut row = row?;
        bar.inc(1);
        match first {
            Some((imsi, line)) if imsi == row.imsi => {
                report
                    .errors
                    .push((row.line, format!("imsi {} repeats line {line}", row.imsi())));
                continue;
            }
            _ => first = Some((row.imsi, row.line)),
        }
        let owner = &parts[shard_of(unpadded(&row.imsi), shards).index()];
        let existing = id_of(owner.read(tables::IMSI_INDEX, unpadded(&row.imsi))?);
        row.existing = match existing {
            Some(id) => owner
                .read(tables::AUC, &id.to_be_bytes())?
                .and_then(|b| Auc::from_bytes(&b).ok())
                .filter(|a| a.imsi.as_deref() == Some(row.imsi()))
                .map_or(0, |_| id),
            None => 0,
        };
        if row.iccid().is_some() {
            claims.push(Claim {
                iccid: row.iccid,
                line: row.line,
                imsi: row.imsi,
                existing: row.existing,
            })?;
        }
        Sortable::encode(&row, &mut kept.out)?;
    }

    // 3. ICCIDs held elsewhere or claimed by an earlier line.
    let mut refused: FxHashSet<u64> = FxHashSet::default();
    let mut claimed: Option<([u8; 22], [u8; 15])> = None;
    for claim in claims.done()? {
        let claim = claim?;
        let Some(iccid) = claim.iccid() else { continue };
        if claimed.is_some_and(|(c, _)| c != claim.iccid) {
            claimed = None;
        }
        let holder_shard = &parts[shard_of(iccid.as_bytes(), shards).index()];
        let holder = id_of(holder_shard.read(tables::ICCID_INDEX, iccid.as_bytes())?);
        if let Some(other) = holder.filter(|&h| h != claim.existing || claim.existing == 0) {
            report.errors.push((
                claim.line,
                format!("iccid {iccid} already provisioned (auc_id {other})"),
            ));
            refused.insert(claim.line);
            continue;
        }
        if let Some((_, by)) = claimed {
            report.errors.push((
                claim.line,
                format!(
                    "iccid {iccid} repeats the line of imsi {}",
                    String::from_utf8_lossy(unpadded(&by))
                ),
            ));
            refused.insert(claim.line);
            continue;
        }
        claimed = Some((claim.iccid, claim.imsi));
    }

    // 4. Each kept line's AuC and index entries.
    let kept_path = kept.path.clone();
    kept.out.into_inner().map_err(|e| e.into_error())?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&kept_path)?);
    while let Some(row) = next_item::<Row>(&mut reader)? {
        bar.inc(1);
        if refused.contains(&row.line) {
            continue;
        }
        let owner = shard_of(unpadded(&row.imsi), shards).index();
        let existing = match row.existing {
            0 => None,
            id => parts[owner]
                .read(tables::AUC, &id.to_be_bytes())?
                .and_then(|b| Auc::from_bytes(&b).ok())
                .map(|a| (id, a)),
        };
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
                    imsi: Some(row.imsi().to_owned()),
                    esim: false,
                    text: Default::default(),
                    last_modified: now,
                };
                (id, auc, true)
            }
        };
        let same = !created
            && auc.ki.open(kek).is_ok_and(|k| *k == row.ki)
            && auc.opc.open(kek).is_ok_and(|k| *k == row.opc)
            && auc.amf == row.amf
            && auc.sqn.floor(0) >= row.sqn
            && auc.iccid() == row.iccid();
        if same {
            report.unchanged += 1;
            continue;
        }
        auc.ki = KeyMaterial::seal(&row.ki, kek);
        auc.opc = KeyMaterial::seal(&row.opc, kek);
        auc.amf = row.amf;
        // Never lower an SQN: one may have been issued since (the lease,
        // taken by a server that has stopped, still bounds it).
        auc.sqn.last = auc.sqn.last.max(row.sqn);
        auc.text[16] = row.iccid().map(str::to_owned);
        auc.last_modified = now;
        let value = auc.to_bytes();
        let part = &mut parts[owner];
        if created {
            part.created.push(&id.to_be_bytes(), &value)?;
            part.imsis.push(unpadded(&row.imsi), &id.to_be_bytes())?;
            report.created += 1;
        } else {
            part.updated.push(Pair {
                key: id.to_be_bytes().to_vec(),
                value,
            })?;
            report.updated += 1;
        }
        if let Some(iccid) = row.iccid() {
            parts[shard_of(iccid.as_bytes(), shards).index()]
                .iccids
                .push(IccidEntry {
                    iccid: row.iccid,
                    id,
                })?;
        }
    }
    bar.finish_and_clear();
    drop(reader);
    let _ = std::fs::remove_file(&kept_path);

    // 5. Each shard's new snapshot.
    // One thread per shard.
    std::thread::scope(|scope| {
        let writers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || write_shard(part)))
            .collect();
        writers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a shard's writer failed")))
        })
    })?;
    report.errors.sort_by_key(|(line, _)| *line);
    Ok(report)
}

/// Merges a shard's snapshot with its spooled changes into a new one (its
/// tables in order: the AuC counter, the AuCs, the IMSI index, the ICCID
/// index) and drops the files it replaces.
fn write_shard(part: ShardImport) -> anyhow::Result<()> {
    let ShardImport {
        dir,
        identity,
        snapshot,
        generation,
        next_counter,
        created,
        imsis,
        updated,
        iccids,
    } = part;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            path: path.clone(),
            source,
        }
    };
    type Change = (TableId, Vec<u8>, Option<Vec<u8>>);
    let as_change = |table: TableId| move |p: Pair| -> Change { (table, p.key, Some(p.value)) };
    let counter = std::iter::once(Ok::<Change, StoreError>((
        tables::META,
        tables::META_AUC_NEXT.to_vec(),
        Some(next_counter.to_be_bytes().to_vec()),
    )));
    // New AuCs (ids above every earlier one) after the changed ones.
    let created_path = created.path.clone();
    let mut new = created
        .read()?
        .map(move |r| r.map_err(io(&created_path)))
        .peekable();
    let mut changed = updated
        .done()?
        .map(|r| r.map_err(io(Path::new("import.tmp"))))
        .peekable();
    let aucs = std::iter::from_fn(move || {
        let take_changed = match (changed.peek(), new.peek()) {
            (Some(Ok(c)), Some(Ok(n))) => c.key < n.key,
            (Some(_), _) => true,
            (None, _) => false,
        };
        if take_changed {
            changed.next()
        } else {
            new.next()
        }
    })
    .map(|r| r.map(as_change(tables::AUC)));
    let imsis_path = imsis.path.clone();
    let imsis = imsis.read()?.map(move |r| {
        r.map_err(io(&imsis_path))
            .map(as_change(tables::IMSI_INDEX))
    });
    let iccids = iccids.done()?.map(|r| {
        r.map_err(io(Path::new("import.tmp"))).map(|e| -> Change {
            (
                tables::ICCID_INDEX,
                unpadded(&e.iccid).to_vec(),
                Some(e.id.to_be_bytes().to_vec()),
            )
        })
    });
    merge_snapshot(
        &dir,
        identity,
        generation,
        snapshot.as_deref(),
        counter.chain(aucs).chain(imsis).chain(iccids),
        None,
    )?;
    drop(snapshot);
    remove_replaced(&dir, generation, Removal::default())?;
    Ok(())
}
