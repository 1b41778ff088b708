//! Background writes that keep out of the WAL's way.
//!
//! A WAL `fdatasync` waits for the filesystem's journal commit, and (ext4,
//! `data=ordered`) that commit first writes back every dirty page of the
//! files whose blocks it allocates. A compaction's snapshot or the filler's
//! 16 MiB of zeros, left dirty until their final fsync, so held a WAL sync
//! for 5 to 21 ms on a virtio disk. Written here in 1 MiB steps, each one
//! written back (`sync_file_range`) before the next, a WAL sync issued
//! meanwhile carries at most one step.
//!
//! Removing a file is the same in reverse: freeing a replaced 64 MiB log at
//! once (ext4 mounted with `discard`) made the WAL's syncs take up to 12 ms
//! and stalled commits for 60 ms after every compaction. A file is shrunk
//! in steps first, each one committed before the next.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per step.
pub const STEP: usize = 1 << 20;

/// Bytes a paced removal frees per step.
pub const REMOVE_STEP: u64 = 4 << 20;

/// Writes `steps` one after the other from offset `at`. With a `rate`
/// (bytes per second), each step is written back before the next and the
/// steps are spread to that rate; without, they are only written (left to
/// the caller's fsync).
pub fn write_steps<'a>(
    f: &File,
    mut at: u64,
    steps: impl Iterator<Item = &'a [u8]>,
    rate: Option<u64>,
) -> std::io::Result<()> {
    let rate = rate.filter(|r| *r > 0);
    for step in steps {
        let started = crate::clock::now();
        f.write_all_at(step, at)?;
        if let Some(rate) = rate {
            write_back(f, at, step.len())?;
            pause(started, step.len() as u64, rate);
        }
        at += step.len() as u64;
    }
    Ok(())
}

/// Removes the file at `path`. With a `rate` (bytes per second), it is
/// first shrunk by [`REMOVE_STEP`] at a time, each step fsynced (so the
/// filesystem frees that much in one commit) before the next. The file
/// must not be mapped: a mapping past the new end would fault.
pub fn remove_file(path: &Path, rate: Option<u64>) -> std::io::Result<()> {
    if let Some(rate) = rate.filter(|r| *r > 0) {
        let f = OpenOptions::new().write(true).open(path)?;
        let mut len = f.metadata()?.len();
        while len > 0 {
            let started = crate::clock::now();
            let step = len.min(REMOVE_STEP);
            len -= step;
            f.set_len(len)?;
            f.sync_all()?;
            pause(started, step, rate);
        }
    }
    std::fs::remove_file(path)
}

/// Sleeps out what is left of `bytes`' share of time at `rate` since
/// `started`.
pub fn pause(started: Instant, bytes: u64, rate: u64) {
    let step_time = Duration::from_secs_f64(bytes as f64 / rate as f64);
    if let Some(rest) = step_time.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// Writes `len` zero bytes from offset `at` in steps (see [`write_steps`]).
pub fn write_zeros(f: &File, at: u64, len: u64, rate: Option<u64>) -> std::io::Result<()> {
    let zeros = vec![0u8; STEP];
    let steps = (0..len)
        .step_by(STEP)
        .map(|o| &zeros[..(len - o).min(STEP as u64) as usize]);
    write_steps(f, at, steps, rate)
}

/// Starts the writeback of `[at, at + len)` and waits for it.
fn write_back(f: &File, at: u64, len: usize) -> std::io::Result<()> {
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        return Err(std::io::Error::other("file offset out of range"));
    };
    // SAFETY: sync_file_range takes the file's descriptor (open for the
    // whole call) and plain integers; it touches no memory of ours.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            at,
            len,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_zeros_land_where_asked() {
        let dir =
            std::env::temp_dir().join(format!("authplane-paced-steps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let data: Vec<u8> = (0..(STEP * 2 + 17)).map(|i| (i % 251) as u8 + 1).collect();
        write_steps(&f, 5, data.chunks(STEP), Some(1 << 30)).unwrap();
        let zeros_len = STEP as u64 + 3;
        write_zeros(&f, 5 + data.len() as u64, zeros_len, None).unwrap();
        write_zeros(&f, 5 + data.len() as u64 + zeros_len, 10, Some(1 << 30)).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len() as u64, 5 + data.len() as u64 + zeros_len + 10);
        assert_eq!(&back[5..5 + data.len()], &data[..]);
        assert!(back[5 + data.len()..].iter().all(|b| *b == 0));
        drop(f);
        // A paced removal shrinks the file in steps, then unlinks it.
        remove_file(&path, Some(1 << 30)).unwrap();
        assert!(!path.exists());
        assert!(remove_file(&path, Some(1 << 30)).is_err());
        std::fs::write(&path, b"x").unwrap();
        remove_file(&path, None).unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
