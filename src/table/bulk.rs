//! What every offline bulk load shares (`authplane hss import`,
//! `authplane aaa import-rates`): the data directory's shard count, a CSV
//! reader with a progress bar, the report of what was loaded, and the
//! hand-over of batches between a pass's two threads.

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

/// Runs `fill` on a thread of its own (named `name`) and `consume` on this
/// one, so that both work at once: each batch `fill` fills is consumed,
/// then handed back to be filled again (three batches in all, so memory
/// stays that of three). `fill` answers false with its last batch. An
/// error on either side stops both and is answered.
pub fn pipelined<B, E>(
    name: &str,
    mut fill: impl FnMut(&mut B) -> Result<bool, E> + Send,
    mut consume: impl FnMut(&mut B) -> Result<(), E>,
) -> Result<(), E>
where
    B: Default + Send,
    E: Send + From<std::io::Error>,
{
    use std::sync::mpsc::sync_channel;
    let (full_tx, full_rx) = sync_channel::<B>(2);
    let (empty_tx, empty_rx) = sync_channel::<B>(3);
    for _ in 0..3 {
        // The channel holds all three: this cannot block or fail.
        let _ = empty_tx.send(B::default());
    }
    std::thread::scope(|scope| {
        let filler = std::thread::Builder::new().name(name.into()).spawn_scoped(
            scope,
            move || -> Result<(), E> {
                while let Ok(mut batch) = empty_rx.recv() {
                    let more = fill(&mut batch)?;
                    if full_tx.send(batch).is_err() || !more {
                        break;
                    }
                }
                Ok(())
            },
        )?;
        let mut consumed = Ok(());
        for mut batch in full_rx.iter() {
            if let Err(e) = consume(&mut batch) {
                consumed = Err(e);
                break;
            }
            let _ = empty_tx.send(batch);
        }
        // A filler waiting on either channel now stops.
        drop(full_rx);
        drop(empty_tx);
        let filled = filler
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other(format!("{name} failed")).into()));
        consumed.and(filled)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_hands_over_every_batch_in_order_and_stops_on_errors() {
        let mut next = 0u32;
        let mut got = Vec::new();
        pipelined::<Vec<u32>, std::io::Error>(
            "test-fill",
            |b| {
                b.clear();
                while b.len() < 7 && next < 1000 {
                    b.push(next);
                    next += 1;
                }
                Ok(next < 1000)
            },
            |b| {
                got.append(b);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        // The consumer fails: the filler stops (it would run forever).
        let failed = pipelined::<Vec<u32>, std::io::Error>(
            "test-fill",
            |_| Ok(true),
            |_| Err(std::io::Error::other("consumer")),
        );
        assert_eq!(failed.unwrap_err().to_string(), "consumer");
        // The filler fails: the consumer has what came before.
        let mut batches = 0;
        let failed = pipelined::<Vec<u32>, std::io::Error>(
            "test-fill",
            {
                let mut n = 0;
                move |_| {
                    n += 1;
                    if n == 5 {
                        Err(std::io::Error::other("filler"))
                    } else {
                        Ok(true)
                    }
                }
            },
            |_| {
                batches += 1;
                Ok(())
            },
        );
        assert_eq!(failed.unwrap_err().to_string(), "filler");
        assert_eq!(batches, 4);
    }
}
