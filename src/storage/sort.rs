//! An external sort for bulk imports: items pushed in any order come back
//! in order, in memory bounded by two runs. A full run is sorted and
//! written to its own file on a second thread while the next one fills;
//! the runs are then merged through a heap, one buffered reader each.
//!
//! (extsort 0.5 was tried first: when the items fill its segments exactly,
//! its `done` drops every segment on disk and returns nothing.)

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;

/// An item's encoding in a run file. `decode` answers `UnexpectedEof` at
/// the end of a run (and only there).
pub trait Sortable: Sized + Send + 'static {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()>;
    fn decode<R: Read>(r: &mut R) -> std::io::Result<Self>;
}

/// The order of a sort.
pub type Order<T> = fn(&T, &T) -> Ordering;

type Pending = std::thread::JoinHandle<std::io::Result<PathBuf>>;

/// Items being pushed.
pub struct ExternalSort<T: Sortable> {
    dir: PathBuf,
    run_items: usize,
    order: Order<T>,
    buffer: Vec<T>,
    runs: Vec<PathBuf>,
    pending: Option<Pending>,
    count: u64,
}

impl<T: Sortable> ExternalSort<T> {
    /// A sort whose runs of `run_items` go to files in `dir` (created; its
    /// own: run files are named by number).
    pub fn new(dir: PathBuf, run_items: usize, order: Order<T>) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let run_items = run_items.max(1);
        Ok(ExternalSort {
            dir,
            run_items,
            order,
            buffer: Vec::with_capacity(run_items.min(1 << 16)),
            runs: Vec::new(),
            pending: None,
            count: 0,
        })
    }

    pub fn push(&mut self, item: T) -> std::io::Result<()> {
        self.buffer.push(item);
        self.count += 1;
        if self.buffer.len() >= self.run_items {
            self.spill()?;
        }
        Ok(())
    }

    /// Items pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Hands the buffer to a thread that sorts and writes it as a run.
    fn spill(&mut self) -> std::io::Result<()> {
        self.wait()?;
        let mut run = std::mem::take(&mut self.buffer);
        let path = self.dir.join(format!("run-{}", self.runs.len()));
        let order = self.order;
        self.pending = Some(
            std::thread::Builder::new()
                .name("authplane-sort".into())
                .spawn(move || {
                    run.sort_unstable_by(order);
                    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
                    for item in &run {
                        item.encode(&mut w)?;
                    }
                    w.into_inner().map_err(|e| e.into_error())?;
                    Ok(path)
                })?,
        );
        Ok(())
    }

    /// Waits for the run being written.
    fn wait(&mut self) -> std::io::Result<()> {
        if let Some(p) = self.pending.take() {
            let path = p
                .join()
                .map_err(|_| std::io::Error::other("a sort run failed"))??;
            self.runs.push(path);
        }
        Ok(())
    }

    /// Every item pushed, in order (equal items in the order pushed when
    /// they were in one run; `order` should tell every pair apart).
    pub fn done(mut self) -> std::io::Result<Sorted<T>> {
        self.wait()?;
        if self.runs.is_empty() {
            let mut items = std::mem::take(&mut self.buffer);
            items.sort_unstable_by(self.order);
            return Ok(Sorted {
                memory: items.into_iter(),
                heap: BinaryHeap::new(),
                readers: Vec::new(),
                runs: Vec::new(),
                failed: false,
            });
        }
        if !self.buffer.is_empty() {
            self.spill()?;
            self.wait()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for (run, path) in self.runs.iter().enumerate() {
            let mut r = BufReader::with_capacity(1 << 18, File::open(path)?);
            if let Some(item) = next_item(&mut r)? {
                heap.push(Head {
                    item,
                    run,
                    order: self.order,
                });
            }
            readers.push(r);
        }
        Ok(Sorted {
            memory: Vec::new().into_iter(),
            heap,
            readers,
            runs: std::mem::take(&mut self.runs),
            failed: false,
        })
    }
}

/// The next item of a file of encoded items (None at its end).
pub fn next_item<T: Sortable>(r: &mut impl Read) -> std::io::Result<Option<T>> {
    match T::decode(r) {
        Ok(item) => Ok(Some(item)),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// A run's next item in the merge (the heap's greatest is the least item).
struct Head<T> {
    item: T,
    run: usize,
    order: Order<T>,
}

impl<T> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.order)(&other.item, &self.item).then(other.run.cmp(&self.run))
    }
}

impl<T> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Head<T> {}

/// The sorted items; the run files are removed when it is dropped.
pub struct Sorted<T: Sortable> {
    memory: std::vec::IntoIter<T>,
    heap: BinaryHeap<Head<T>>,
    readers: Vec<BufReader<File>>,
    runs: Vec<PathBuf>,
    failed: bool,
}

impl<T: Sortable> Iterator for Sorted<T> {
    type Item = std::io::Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.memory.next() {
            return Some(Ok(item));
        }
        if self.failed {
            return None;
        }
        // The least head is replaced in place by its run's next item (one
        // sift down), or taken out at its run's end.
        let mut head = self.heap.peek_mut()?;
        let next = match self.readers.get_mut(head.run) {
            Some(r) => next_item(r),
            None => Ok(None),
        };
        match next {
            Ok(Some(item)) => Some(Ok(std::mem::replace(&mut head.item, item))),
            Ok(None) => Some(Ok(PeekMut::pop(head).item)),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl<T: Sortable> Drop for Sorted<T> {
    fn drop(&mut self) {
        for path in &self.runs {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Sortable for u64 {
        fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
            w.write_all(&self.to_be_bytes())
        }

        fn decode<R: Read>(r: &mut R) -> std::io::Result<u64> {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            Ok(u64::from_be_bytes(b))
        }
    }

    #[test]
    fn every_item_comes_back_in_order_whatever_the_run_size() {
        let dir = std::env::temp_dir().join(format!("authplane-sort-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for n in [0u64, 1, 7, 44, 100, 1000] {
            for run in [1usize, 3, 4, 10, 11, 44, 45, 5000] {
                let mut s =
                    ExternalSort::new(dir.join(format!("{n}-{run}")), run, u64::cmp).unwrap();
                for i in 0..n {
                    s.push((i * 7919) % n.max(1)).unwrap();
                }
                assert_eq!(s.count(), n);
                let got: Vec<u64> = s.done().unwrap().map(Result::unwrap).collect();
                let mut want: Vec<u64> = (0..n).map(|i| (i * 7919) % n.max(1)).collect();
                want.sort_unstable();
                assert_eq!(got, want, "{n} items in runs of {run}");
            }
        }
        // The run files are gone once read.
        let left: usize = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).unwrap().count())
            .sum();
        assert_eq!(left, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
