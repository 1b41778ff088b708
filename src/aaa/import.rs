//! `authplane aaa import-rates FILE.csv`: a rate deck into the catalog,
//! offline (the data directory is locked against a running server).
//!
//! Columns are found by header name, case-insensitively: `i_tariff`,
//! `prefix`, `price_1`, and optionally `price_n` (default `price_1`),
//! `interval_1`, `interval_n` (default 1), `connect_fee`, `free_seconds`,
//! `grace_seconds` (default 0) and `forbidden` (0/1, true/false); other
//! columns are ignored. Every line is checked by the rules of
//! `PUT /aaa/rate/`, and its tariff must exist; a bad line is reported
//! with its number and skipped. Re-running a file changes nothing: a line
//! whose tariff and prefix are already rated updates that rate in place
//! (same id). The catalog is then written as a fresh snapshot in one pass.
//! An import is not in the operation log.

use std::path::Path;

use rustc_hash::FxHashMap;

use super::rows::{Rate, Tariff};
use super::tables;
use crate::domain::money;
use crate::runtime::data::{DataDir, CATALOG_IDENTITY};
use crate::storage::store::{compact_recovered, recover, Recovered};
use crate::table::{ids, Row};

pub use crate::table::bulk::ImportReport;

const COLUMNS: [&str; 10] = [
    "i_tariff",
    "prefix",
    "price_1",
    "price_n",
    "interval_1",
    "interval_n",
    "connect_fee",
    "free_seconds",
    "grace_seconds",
    "forbidden",
];

fn read(rec: &Recovered, table: u8, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match rec.overlay.lookup(table, key) {
        Some(v) => v.map(<[u8]>::to_vec),
        None => match rec.snapshot.as_ref() {
            Some(s) => s.get(table, key)?.map(<[u8]>::to_vec),
            None => None,
        },
    })
}

fn id_of(v: Option<Vec<u8>>) -> Option<u64> {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
}

fn parse_line(cols: &[Option<usize>; 10], r: &csv::StringRecord) -> Result<Rate, String> {
    let field = |i: usize| cols[i].and_then(|c| r.get(c)).map(str::trim).unwrap_or("");
    let number = |i: usize, default: u32| -> Result<u32, String> {
        match field(i) {
            "" => Ok(default),
            v => v
                .parse()
                .map_err(|_| format!("{}: must be a non-negative integer", COLUMNS[i])),
        }
    };
    let amount = |i: usize| -> Result<Option<i64>, String> {
        match field(i) {
            "" => Ok(None),
            v => money::parse(v)
                .map(Some)
                .map_err(|e| format!("{}: {v:?} {e}", COLUMNS[i])),
        }
    };
    let i_tariff = field(0)
        .parse::<u64>()
        .map_err(|_| "i_tariff: must be a tariff id".to_owned())?;
    let price_1 = amount(2)?.ok_or("price_1: required")?;
    let rate = Rate {
        i_rate: 0,
        i_tariff,
        prefix: field(1).to_owned(),
        price_1,
        price_n: amount(3)?.unwrap_or(price_1),
        interval_1: number(4, 1)?,
        interval_n: number(5, 1)?,
        connect_fee: amount(6)?.unwrap_or(0),
        free_seconds: number(7, 0)?,
        grace_seconds: number(8, 0)?,
        forbidden: match field(9) {
            "" | "0" | "false" => false,
            "1" | "true" => true,
            _ => return Err("forbidden: must be 0, 1, true or false".into()),
        },
        last_modified: String::new(),
    };
    rate.check().map_err(|e| e.to_string())?;
    Ok(rate)
}

/// Imports `file` into the catalog of the data directory at `dir`
/// (created for `cores` shards if new).
pub fn import_rates(
    file: &Path,
    dir: &Path,
    cores: u16,
    now: u64,
    progress: bool,
) -> anyhow::Result<ImportReport> {
    let shards = crate::table::bulk::shard_count(dir, cores)?;
    let data = DataDir::open(dir, shards)?;
    let catalog_dir = data.catalog_dir();
    let mut rec = recover(&catalog_dir, CATALOG_IDENTITY, true)?;
    let counter: &'static [u8] = <Rate as Row>::DEF.counter;
    let mut next = id_of(read(&rec, ids::META, counter)?).unwrap_or(1);

    let (mut reader, bar) = crate::table::bulk::csv_with_progress(file, progress)?;
    let header = reader.headers()?.clone();
    let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let cols: [Option<usize>; 10] = COLUMNS.map(find);
    for need in [0, 1, 2] {
        anyhow::ensure!(
            cols[need].is_some(),
            "the header has no {} column",
            COLUMNS[need]
        );
    }
    let mut report = ImportReport::default();
    // About one rate per 24 bytes of file: sized once, not regrown.
    let size = std::fs::metadata(file)?.len();
    let lines = usize::try_from(size / 24).unwrap_or(0).min(50_000_000);
    let mut seen: FxHashMap<String, u64> =
        FxHashMap::with_capacity_and_hasher(lines, Default::default());
    let mut tariffs: FxHashMap<u64, bool> = FxHashMap::default();
    let stamp = crate::table::json::timestamp(now);
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
        let mut rate = match parse_line(&cols, &record) {
            Ok(r) => r,
            Err(e) => {
                report.errors.push((line_no, e));
                continue;
            }
        };
        let known = match tariffs.get(&rate.i_tariff) {
            Some(&k) => k,
            None => {
                let k = read(&rec, tables::TARIFF, &rate.i_tariff.to_be_bytes())?
                    .is_some_and(|b| Tariff::decode(&b).is_ok());
                tariffs.insert(rate.i_tariff, k);
                k
            }
        };
        if !known {
            report.errors.push((
                line_no,
                format!("i_tariff: tariff {} does not exist", rate.i_tariff),
            ));
            continue;
        }
        let key = Rate::key(rate.i_tariff, &rate.prefix);
        if let Some(first) = seen.insert(key.clone(), line_no) {
            report.errors.push((
                line_no,
                format!(
                    "tariff {} prefix {} repeats line {first}",
                    rate.i_tariff, rate.prefix
                ),
            ));
            continue;
        }
        let existing = id_of(read(&rec, tables::RATE_PREFIX_INDEX, key.as_bytes())?)
            .map(|id| read(&rec, tables::RATE, &id.to_be_bytes()).map(|b| b.map(|b| (id, b))))
            .transpose()?
            .flatten()
            .and_then(|(id, b)| Rate::decode(&b).ok().map(|r| (id, r)))
            .filter(|(_, r)| r.i_tariff == rate.i_tariff && r.prefix == rate.prefix);
        let created = existing.is_none();
        match existing {
            Some((id, old)) => {
                rate.i_rate = id;
                rate.last_modified = old.last_modified.clone();
                if old == rate {
                    report.unchanged += 1;
                    continue;
                }
            }
            None => {
                rate.i_rate = next;
                next += 1;
            }
        }
        rate.last_modified = stamp.clone();
        let id = rate.i_rate.to_be_bytes().to_vec();
        let bytes = rate
            .encode()
            .map_err(|e| anyhow::anyhow!("line {line_no}: {e}"))?;
        rec.overlay.put_offline(tables::RATE, id.clone(), bytes);
        rec.overlay
            .put_offline(tables::RATE_PREFIX_INDEX, key.into_bytes(), id);
        if created {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    bar.finish_and_clear();
    rec.overlay
        .put_offline(ids::META, counter.to_vec(), next.to_be_bytes().to_vec());
    compact_recovered(&catalog_dir, CATALOG_IDENTITY, &rec)?;
    Ok(report)
}
