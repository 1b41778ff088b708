//! What every offline bulk load shares (`authplane hss import`,
//! `authplane aaa import-rates`): the data directory's shard count, a CSV
//! reader with a progress bar, and the report of what was loaded.

use std::path::Path;

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// (line number, reason), in file order.
    pub errors: Vec<(u64, String)>,
}

impl ImportReport {
    /// Prints the refused lines (`FILE:LINE: reason`) and one summary
    /// line counting `what`, with the rate over `secs`.
    pub fn print(&self, file: &Path, what: &str, secs: f64) {
        for (line, reason) in &self.errors {
            eprintln!("{}:{line}: {reason}", file.display());
        }
        let total = self.created + self.updated + self.unchanged;
        println!(
            "{total} {what} imported in {secs:.2} s ({:.0}/s): {} created, {} updated, {} unchanged; {} refused",
            total as f64 / secs.max(1e-9),
            self.created,
            self.updated,
            self.unchanged,
            self.errors.len()
        );
    }
}

/// The shard count of the data directory at `dir`: its `FORMAT`'s, or
/// `cores` for a new one.
pub fn shard_count(dir: &Path, cores: u16) -> anyhow::Result<u16> {
    match std::fs::read_to_string(dir.join("FORMAT")) {
        Ok(f) => f
            .lines()
            .find_map(|l| l.strip_prefix("shards "))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{}/FORMAT names no shard count", dir.display())),
        Err(_) => Ok(cores),
    }
}

/// A CSV reader of `file` (flexible rows, trimmed fields) behind a
/// progress bar in bytes (hidden unless `progress`).
pub type CsvReader = csv::Reader<indicatif::ProgressBarIter<std::fs::File>>;

pub fn csv_with_progress(
    file: &Path,
    progress: bool,
) -> anyhow::Result<(CsvReader, indicatif::ProgressBar)> {
    let size = std::fs::metadata(file)?.len();
    let bar = progress_bar(
        progress,
        size,
        "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
    );
    let reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bar.wrap_read(std::fs::File::open(file)?));
    Ok((reader, bar))
}

/// A progress bar of `len` steps drawn with `template` (indicatif's
/// syntax), or a hidden one unless `progress` (stderr not a terminal).
pub fn progress_bar(progress: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = if progress {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
