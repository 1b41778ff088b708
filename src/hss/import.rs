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
//!    snapshot, and each line becomes its AuC (new ones take ids in IMSI
//!    order) with its IMSI and ICCID index entries, spooled per shard in
//!    key order (sorted where the order differs); the lines that carry an
//!    ICCID go to a second sort by (ICCID, line);
//! 3. in ICCID order, an ICCID held by another AuC, or claimed by an
//!    earlier line, refuses its line: what that line spooled is dropped
//!    with its id (a new AuC's id is then never used);
//! 4. each shard's snapshot is merged with its spools into a new one.
//!
//! An AuC whose ICCID changes releases its old ICCID's index entry.

use rustc_hash::FxHashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::auc::Auc;
use super::tables;
use crate::domain::ids::{hex_exact, Iccid, Imsi, InvalidId};
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

use crate::table::bulk::pipelined;
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

/// A field's text, trimmed; a field that is not UTF-8 reads as U+FFFD, so
/// it fails the check of its column.
fn field(r: &csv::ByteRecord, i: usize) -> &str {
    r.get(i)
        .map_or("", |b| std::str::from_utf8(b).map_or("\u{FFFD}", str::trim))
}

/// One line checked as `PUT /auc/` checks it, into its sort row.
fn parse_row(c: &Columns, r: &csv::ByteRecord, line: u64) -> Result<Row, String> {
    let opt = |i: Option<usize>| i.map(|i| field(r, i)).filter(|v| !v.is_empty());
    let e = |e: InvalidId| e.to_string();
    let imsi = padded(Imsi::check(field(r, c.imsi)).map_err(e)?);
    let ki = hex_exact::<16>("ki", field(r, c.ki)).map_err(e)?;
    let opc = match (opt(c.opc), opt(c.op)) {
        (Some(opc), _) => hex_exact::<16>("opc", opc).map_err(e)?,
        (None, Some(op)) => opc_from_op(&ki, &hex_exact::<16>("op", op).map_err(e)?),
        (None, None) => return Err("opc: required (or op)".into()),
    };
    let iccid = match opt(c.iccid) {
        Some(i) => {
            let mut p: [u8; 22] = padded(Iccid::check(i).map_err(e)?);
            p.make_ascii_uppercase();
            p
        }
        None => [0; 22],
    };
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
    Ok(Row {
        imsi,
        line,
        ki,
        opc,
        amf,
        sqn,
        iccid,
    })
}

/// Rows per run of a sort (a row is 87 bytes; two runs are in memory, one
/// filling while the other is sorted and written): about 350 MiB, so the
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
}

const ROW_BYTES: usize = 15 + 8 + 16 + 16 + 2 + 8 + 22;

impl Row {
    fn imsi(&self) -> &str {
        padded_text(&self.imsi).unwrap_or_default()
    }

    fn iccid(&self) -> Option<&str> {
        padded_text(&self.iccid)
    }
}

/// `parts` one after the other in `N` bytes (a fixed-size sort item).
fn packed<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut b = [0u8; N];
    let mut at = 0;
    for part in parts {
        let end = (at + part.len()).min(N);
        b[at..end].copy_from_slice(&part[..end - at]);
        at = end;
    }
    b
}

/// Reads fixed-size fields in turn.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N.min(self.0.len()));
        self.0 = rest;
        let mut out = [0u8; N];
        out[..head.len()].copy_from_slice(head);
        out
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
}

impl Sortable for Row {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&packed::<ROW_BYTES>(&[
            &self.imsi,
            &self.line.to_be_bytes(),
            &self.ki,
            &self.opc,
            &self.amf,
            &self.sqn.to_be_bytes(),
            &self.iccid,
        ]))
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<Row> {
        let mut b = [0u8; ROW_BYTES];
        r.read_exact(&mut b)?;
        let mut f = Fields(&b);
        Ok(Row {
            imsi: f.take(),
            line: f.u64(),
            ki: f.take(),
            opc: f.take(),
            amf: f.take(),
            sqn: f.u64(),
            iccid: f.take(),
        })
    }
}

/// What a kept line does to its AuC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created = 0,
    Updated = 1,
    Unchanged = 2,
}

/// A line's claim of its ICCID, for the sort by (ICCID, line).
#[derive(Debug, Clone)]
struct Claim {
    iccid: [u8; 22],
    line: u64,
    imsi: [u8; 15],
    /// auc_id provisioned for the line's IMSI before the import (0: none).
    existing: u64,
    /// auc_id the line wrote (or left unchanged).
    id: u64,
    outcome: Outcome,
}

const CLAIM_BYTES: usize = 22 + 8 + 15 + 8 + 8 + 1;

impl Claim {
    fn iccid(&self) -> Option<&str> {
        padded_text(&self.iccid)
    }
}

impl Sortable for Claim {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&packed::<CLAIM_BYTES>(&[
            &self.iccid,
            &self.line.to_be_bytes(),
            &self.imsi,
            &self.existing.to_be_bytes(),
            &self.id.to_be_bytes(),
            &[self.outcome as u8],
        ]))
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<Claim> {
        let mut b = [0u8; CLAIM_BYTES];
        r.read_exact(&mut b)?;
        let mut f = Fields(&b);
        Ok(Claim {
            iccid: f.take(),
            line: f.u64(),
            imsi: f.take(),
            existing: f.u64(),
            id: f.u64(),
            outcome: match f.take::<1>() {
                [0] => Outcome::Created,
                [1] => Outcome::Updated,
                _ => Outcome::Unchanged,
            },
        })
    }
}

/// An ICCID index entry written (`put`) or released by an AuC whose ICCID
/// changed, fixed-size for its sort.
#[derive(Debug, Clone, Copy)]
struct IccidEntry {
    iccid: [u8; 22],
    id: u64,
    put: bool,
}

const ICCID_ENTRY_BYTES: usize = 22 + 8 + 1;

impl Sortable for IccidEntry {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&packed::<ICCID_ENTRY_BYTES>(&[
            &self.iccid,
            &self.id.to_be_bytes(),
            &[u8::from(self.put)],
        ]))
    }

    fn decode<R: Read>(r: &mut R) -> std::io::Result<IccidEntry> {
        let mut b = [0u8; ICCID_ENTRY_BYTES];
        r.read_exact(&mut b)?;
        let mut f = Fields(&b);
        Ok(IccidEntry {
            iccid: f.take(),
            id: f.u64(),
            put: f.take::<1>() == [1],
        })
    }
}

/// By ICCID, a release before a put (the put is what stays).
fn by_iccid_entry(a: &IccidEntry, b: &IccidEntry) -> std::cmp::Ordering {
    (a.iccid, a.put).cmp(&(b.iccid, b.put))
}

/// A key and a value, for the sorts and spools of changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Sortable for Pair {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        Pair::write(w, &self.key, &self.value)
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

impl Pair {
    /// Writes `key` and `value` as a pair is encoded (each with its
    /// length), without building one.
    fn write<W: Write>(w: &mut W, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        for field in [key, value] {
            let len = u32::try_from(field.len()).map_err(std::io::Error::other)?;
            w.write_all(&len.to_be_bytes())?;
            w.write_all(field)?;
        }
        Ok(())
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
        Pair::write(&mut self.out, key, value)
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
    fn read(&self, table: u8, key: &[u8]) -> anyhow::Result<Option<&[u8]>> {
        Ok(match &self.snapshot {
            Some(s) => s.get(table, key)?,
            None => None,
        })
    }

    /// The AuC provisioned for `imsi` before the import: the one its index
    /// entry leads to, if that AuC still has this IMSI.
    fn provisioned(&self, imsi: &str) -> anyhow::Result<Option<Auc>> {
        let Some(id) = id_of(self.read(tables::IMSI_INDEX, imsi.as_bytes())?) else {
            return Ok(None);
        };
        Ok(self
            .read(tables::AUC, &id.to_be_bytes())?
            .and_then(|b| Auc::from_bytes(b).ok())
            .filter(|a| a.imsi.as_deref() == Some(imsi)))
    }
}

fn id_of(v: Option<&[u8]>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
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

/// Progress counted locally and handed to the bar now and then (the bar
/// reads the clock on every update).
struct Ticks<'a> {
    bar: &'a indicatif::ProgressBar,
    pending: u64,
}

impl Ticks<'_> {
    fn one(&mut self) {
        self.pending += 1;
        if self.pending == 1 << 14 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.bar.inc(std::mem::take(&mut self.pending));
    }
}

impl Drop for Ticks<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Prints how long a pass took (with the progress bars only).
struct Phases {
    show: bool,
    at: std::time::Instant,
}

impl Phases {
    fn done(&mut self, what: std::fmt::Arguments) {
        let now = crate::runtime::clock::now();
        if self.show {
            eprintln!("{what}: {:.1} s", (now - self.at).as_secs_f64());
        }
        self.at = now;
    }
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

/// Settings of one import's passes.
struct Pass<'a> {
    shards: u16,
    kek: Option<&'a Kek>,
    now: u64,
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
    let mut phases = Phases {
        show: progress,
        at: crate::runtime::clock::now(),
    };
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
    let pass = Pass { shards, kek, now };

    // 1. Every valid line, by (IMSI, line).
    let rows = read_lines(file, work, progress, &mut report)?;
    let total = rows.count();
    phases.done(format_args!("{total} lines checked and sorted"));
    let rows = rows.done()?;
    let bar = crate::table::bulk::progress_bar(
        progress,
        total,
        "{bar:40} {human_pos}/{human_len} lines {per_sec} eta {eta}",
    );

    // 2. Each line's AuC, in IMSI order.
    let mut claims: Sorter<Claim> = sorter(work, "claims", by_iccid)?;
    let mut ticks = Ticks {
        bar: &bar,
        pending: 0,
    };
    let mut first: Option<([u8; 15], u64)> = None;
    // The runs are merged on a thread of their own.
    let mut rows = rows;
    pipelined::<Vec<Row>, anyhow::Error>(
        "authplane-merge",
        |batch| {
            batch.clear();
            while batch.len() < BATCH {
                match rows.next() {
                    Some(row) => batch.push(row?),
                    None => return Ok(false),
                }
            }
            Ok(true)
        },
        |batch| {
            for row in batch.drain(..) {
                ticks.one();
                match first {
                    Some((imsi, line)) if imsi == row.imsi => {
                        report
                            .errors
                            .push((row.line, format!("imsi {} repeats line {line}", row.imsi())));
                        continue;
                    }
                    _ => first = Some((row.imsi, row.line)),
                }
                let (existing, id, outcome) = apply(&pass, &mut parts, &row)?;
                match outcome {
                    Outcome::Created => report.created += 1,
                    Outcome::Updated => report.updated += 1,
                    Outcome::Unchanged => report.unchanged += 1,
                }
                if row.iccid().is_some() {
                    claims.push(Claim {
                        iccid: row.iccid,
                        line: row.line,
                        imsi: row.imsi,
                        existing,
                        id,
                        outcome,
                    })?;
                }
            }
            Ok(())
        },
    )?;
    drop(ticks);
    bar.finish_and_clear();
    phases.done(format_args!("{total} AuCs built"));

    // 3. ICCIDs held elsewhere or claimed by an earlier line: the line is
    // refused, and what it wrote is dropped with its id.
    let refused = check_claims(&pass, &parts, claims, &mut report)?;
    phases.done(format_args!("ICCIDs checked"));

    // 4. Each shard's new snapshot, a thread per shard.
    std::thread::scope(|scope| {
        let refused = &refused;
        let writers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || write_shard(part, refused)))
            .collect();
        writers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a shard's writer failed")))
        })
    })?;
    phases.done(format_args!("snapshots written"));
    report.errors.sort_by_key(|(line, _)| *line);
    Ok(report)
}

/// Pass 1: every line checked, the valid ones into a sort by (IMSI, line).
fn read_lines(
    file: &Path,
    work: &Work,
    progress: bool,
    report: &mut ImportReport,
) -> anyhow::Result<Sorter<Row>> {
    let (mut reader, bar) = crate::table::bulk::csv_with_progress(file, progress)?;
    let cols = columns(reader.headers()?)?;
    let mut rows: Sorter<Row> = sorter(work, "rows", by_imsi)?;
    // The CSV is split into records on a thread of its own.
    pipelined::<Records, anyhow::Error>(
        "authplane-csv",
        |batch| {
            batch.len = 0;
            while batch.len < BATCH {
                if batch.records.len() == batch.len {
                    batch.records.push(csv::ByteRecord::new());
                }
                let Some(record) = batch.records.get_mut(batch.len) else {
                    break;
                };
                match reader.read_byte_record(record) {
                    Ok(true) => batch.len += 1,
                    Ok(false) => return Ok(false),
                    Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(e.into()),
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        batch.errors.push((line, format!("unreadable: {e}")));
                    }
                }
            }
            Ok(true)
        },
        |batch| {
            report.errors.append(&mut batch.errors);
            for record in batch.records.iter().take(batch.len) {
                let line = record.position().map_or(0, |p| p.line());
                match parse_row(&cols, record, line) {
                    Ok(row) => rows.push(row)?,
                    Err(e) => report.errors.push((line, e)),
                }
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    Ok(rows)
}

/// Records split from the CSV, for the pass that checks them.
#[derive(Default)]
struct Records {
    /// The first `len` are this batch's (the others are kept for reuse).
    records: Vec<csv::ByteRecord>,
    len: usize,
    /// Lines that could not be read, with why.
    errors: Vec<(u64, String)>,
}

/// Lines or rows handed between a pass's two threads at a time.
const BATCH: usize = 4096;

/// Pass 2 for one line (its IMSI's first): the AuC it creates, updates or
/// leaves as it is, spooled with its index entries. Answers the id the
/// IMSI had before (0: none), the line's id and what it did.
fn apply(pass: &Pass, parts: &mut [ShardImport], row: &Row) -> anyhow::Result<(u64, u64, Outcome)> {
    let owner = shard_of(unpadded(&row.imsi), pass.shards).index();
    let (mut auc, outcome) = match parts[owner].provisioned(row.imsi())? {
        Some(a) => (a, Outcome::Updated),
        None => {
            let part = &mut parts[owner];
            let id = part.next_counter * u64::from(pass.shards) + owner as u64;
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
                last_modified: pass.now,
            };
            (auc, Outcome::Created)
        }
    };
    let id = auc.id;
    let existing = if outcome == Outcome::Updated { id } else { 0 };
    let kek = pass.kek;
    if outcome == Outcome::Updated
        && auc.ki.open(kek).is_ok_and(|k| *k == row.ki)
        && auc.opc.open(kek).is_ok_and(|k| *k == row.opc)
        && auc.amf == row.amf
        && auc.sqn.floor(0) >= row.sqn
        && auc.iccid() == row.iccid()
    {
        return Ok((existing, id, Outcome::Unchanged));
    }
    // The old ICCID's index entry, when it leads here.
    let released = match auc.iccid().filter(|&old| Some(old) != row.iccid()) {
        Some(old) => {
            let holder = &parts[shard_of(old.as_bytes(), pass.shards).index()];
            (id_of(holder.read(tables::ICCID_INDEX, old.as_bytes())?) == Some(id))
                .then(|| padded::<22>(old))
        }
        None => None,
    };
    auc.ki = KeyMaterial::seal(&row.ki, kek);
    auc.opc = KeyMaterial::seal(&row.opc, kek);
    auc.amf = row.amf;
    // Never lower an SQN: one may have been issued since (the lease, taken
    // by a server that has stopped, still bounds it).
    auc.sqn.last = auc.sqn.last.max(row.sqn);
    auc.text[16] = row.iccid().map(str::to_owned);
    auc.last_modified = pass.now;
    let value = auc.to_bytes();
    let part = &mut parts[owner];
    if outcome == Outcome::Created {
        part.created.push(&id.to_be_bytes(), &value)?;
        part.imsis.push(unpadded(&row.imsi), &id.to_be_bytes())?;
    } else {
        part.updated.push(Pair {
            key: id.to_be_bytes().to_vec(),
            value,
        })?;
    }
    for (iccid, put) in [(Some(row.iccid), true), (released, false)] {
        let Some(iccid) = iccid.filter(|i| i[0] != 0) else {
            continue;
        };
        parts[shard_of(unpadded(&iccid), pass.shards).index()]
            .iccids
            .push(IccidEntry { iccid, id, put })?;
    }
    Ok((existing, id, outcome))
}

/// Pass 3, in (ICCID, line) order: a claim of an ICCID another AuC holds,
/// or that an earlier line claimed, refuses its line. Answers the ids
/// whose changes are dropped.
fn check_claims(
    pass: &Pass,
    parts: &[ShardImport],
    claims: Sorter<Claim>,
    report: &mut ImportReport,
) -> anyhow::Result<FxHashSet<u64>> {
    let mut refused: FxHashSet<u64> = FxHashSet::default();
    let mut claimed: Option<([u8; 22], [u8; 15])> = None;
    for claim in claims.done()? {
        let claim = claim?;
        let Some(iccid) = claim.iccid() else { continue };
        if claimed.is_some_and(|(c, _)| c != claim.iccid) {
            claimed = None;
        }
        let holder_shard = &parts[shard_of(iccid.as_bytes(), pass.shards).index()];
        let holder = id_of(holder_shard.read(tables::ICCID_INDEX, iccid.as_bytes())?);
        let reason =
            if let Some(other) = holder.filter(|&h| h != claim.existing || claim.existing == 0) {
                format!("iccid {iccid} already provisioned (auc_id {other})")
            } else if let Some((_, by)) = claimed {
                format!(
                    "iccid {iccid} repeats the line of imsi {}",
                    String::from_utf8_lossy(unpadded(&by))
                )
            } else {
                claimed = Some((claim.iccid, claim.imsi));
                continue;
            };
        report.errors.push((claim.line, reason));
        let count = match claim.outcome {
            Outcome::Created => &mut report.created,
            Outcome::Updated => &mut report.updated,
            Outcome::Unchanged => &mut report.unchanged,
        };
        *count = count.saturating_sub(1);
        if claim.outcome != Outcome::Unchanged {
            refused.insert(claim.id);
        }
    }
    Ok(refused)
}

/// Merges a shard's snapshot with its spooled changes into a new one (its
/// tables in order: the AuC counter, the AuCs, the IMSI index, the ICCID
/// index), without the changes of `refused` ids, and drops the files it
/// replaces.
fn write_shard(part: ShardImport, refused: &FxHashSet<u64>) -> anyhow::Result<()> {
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
    let kept = |id: Option<u64>| !id.is_some_and(|id| refused.contains(&id));
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
    .filter(move |r| r.as_ref().map_or(true, |p| kept(id_of(Some(&p.key)))))
    .map(|r| r.map(as_change(tables::AUC)));
    let imsis_path = imsis.path.clone();
    let imsis = imsis
        .read()?
        .filter(move |r| r.as_ref().map_or(true, |p| kept(id_of(Some(&p.value)))))
        .map(move |r| {
            r.map_err(io(&imsis_path))
                .map(as_change(tables::IMSI_INDEX))
        });
    // Of the entries left for an ICCID, the last (a put after a release).
    let mut entries = iccids
        .done()?
        .filter(move |r| r.as_ref().map_or(true, |e| kept(Some(e.id))))
        .peekable();
    let iccids = std::iter::from_fn(move || loop {
        let entry = entries.next()?;
        if let (Ok(e), Some(Ok(next))) = (&entry, entries.peek()) {
            if next.iccid == e.iccid {
                continue;
            }
        }
        return Some(entry);
    })
    .map(|r| {
        r.map_err(io(Path::new("import.tmp"))).map(|e| -> Change {
            (
                tables::ICCID_INDEX,
                unpadded(&e.iccid).to_vec(),
                e.put.then(|| e.id.to_be_bytes().to_vec()),
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
