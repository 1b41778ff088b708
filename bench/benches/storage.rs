//! Storage: point reads from a mapped snapshot and from the overlay, and
//! an unlogged overlay update (criterion), then durable writes per second with group commit at 1, 16
//! and 256 commits in flight on this machine's disk (one shard, one core,
//! its I/O thread), printed as a table.

// A benchmark fails loudly: unwrap is how it asserts; it times with the std clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use futures_executor::LocalPool;
use futures_task::LocalSpawn;

use authplane::storage::snapshot::{self, SnapHeader, Snapshot};
use authplane::storage::{Durability, Identity, Op, ShardStore, StoreError, StoreOptions};

const IDENTITY: Identity = Identity {
    shard: 0,
    shards: 1,
    hash_version: 1,
};

fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("authplane-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn imsi_key(i: u64) -> Vec<u8> {
    format!("00101{i:010}").into_bytes()
}

fn bench_reads(c: &mut Criterion) {
    let n = 1_000_000u64;
    let dir = temp("reads");
    let path = dir.join("t.snap");
    let value = [0xabu8; 100];
    // Keys ascend with i: written as a stream.
    let mut w = snapshot::Writer::create(&path, SnapHeader::identity(0, 1, 1, 1), None).unwrap();
    for i in 0..n {
        w.push(2, &imsi_key(i), &value).unwrap();
    }
    w.finish().unwrap();
    let snap = Snapshot::open(&path).unwrap();
    let mut i = 0u64;
    let keys: Vec<Vec<u8>> = (0..4096).map(|k| imsi_key((k * 7919) % n)).collect();
    c.bench_function("snapshot_get_1M_entries", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            std::hint::black_box(snap.get(2, &keys[i as usize]).map(|v| v.map(<[u8]>::len)))
        })
    });

    let store_dir = temp("overlay");
    let store = ShardStore::open(
        &store_dir,
        IDENTITY,
        StoreOptions {
            durability: Durability::None,
            // No pump runs here: nothing is ever marked durable.
            max_queued_commits: usize::MAX,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut pool = LocalPool::new();
    for k in 0..100_000u64 {
        let f = store.commit(&[Op::Put {
            table: 2,
            key: imsi_key(k),
            value: vec![1; 100],
        }]);
        pool.run_until(f).unwrap();
    }
    let keys: Vec<Vec<u8>> = (0..4096).map(|k| imsi_key((k * 7919) % 100_000)).collect();
    c.bench_function("overlay_get_100k_entries", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            std::hint::black_box(store.read(2, &keys[i as usize], |v| v.map(<[u8]>::len)))
        })
    });
    // What a vector under its SQN lease does to its AuC record.
    c.bench_function("overlay_put_unlogged_100k_entries", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let done = store.put_unlogged(2, &keys[i as usize], vec![2; 100]);
            pool.run_until(done).unwrap()
        })
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// Durable commits per second with `in_flight` commits outstanding.
fn durable_writes(in_flight: usize, seconds: f64) -> f64 {
    let dir = temp(&format!("writes-{in_flight}"));
    let store = ShardStore::open(&dir, IDENTITY, StoreOptions::default()).unwrap();
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let _ = spawner.spawn_local_obj(futures_task::LocalFutureObj::new(Box::new(
        store.clone().pump(),
    )));
    let done = Rc::new(std::cell::Cell::new(0u64));
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    for w in 0..in_flight {
        let (store, done) = (store.clone(), done.clone());
        let task = async move {
            let mut k = w as u64 * 1_000_000_000;
            while Instant::now() < stop {
                k += 1;
                store
                    .commit(&[Op::Put {
                        table: 2,
                        key: imsi_key(k),
                        value: vec![7; 100],
                    }])
                    .await
                    .unwrap();
                done.set(done.get() + 1);
            }
        };
        let _ = spawner.spawn_local_obj(futures_task::LocalFutureObj::new(Box::new(task)));
    }
    while Instant::now() < stop {
        pool.run_until_stalled();
        std::thread::yield_now();
    }
    pool.run_until_stalled();
    let rate = done.get() as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// The longest time the core is busy with compaction (freezing the
/// overlay, then switching to the new snapshot) with `changes` keys in the
/// overlay, while the merge itself runs on its own thread.
fn compaction_pause(changes: u64) -> (Duration, Duration, Duration) {
    let dir = temp("compaction");
    let store = ShardStore::open(
        &dir,
        IDENTITY,
        StoreOptions {
            durability: Durability::None,
            compact_wal_bytes: u64::MAX,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let _ = spawner.spawn_local_obj(futures_task::LocalFutureObj::new(Box::new(
        store.clone().pump(),
    )));
    for k in 0..changes {
        let op = Op::Put {
            table: 2,
            key: imsi_key(k),
            value: vec![3; 100],
        };
        // A full commit queue (the log writer behind on a slow disk):
        // let the pump and the writer catch up, then retry.
        while let Err(e) = pool.run_until(store.commit(std::slice::from_ref(&op))) {
            assert!(matches!(e, StoreError::Busy), "{e}");
            pool.run_until_stalled();
            std::thread::sleep(Duration::from_millis(1));
        }
        if k % 4096 == 0 {
            pool.run_until_stalled();
        }
    }
    pool.run_until_stalled();
    let t = Instant::now();
    store.start_compaction();
    let start = t.elapsed();
    let began = Instant::now();
    let mut longest = Duration::ZERO;
    while store.compacting() {
        let t = Instant::now();
        pool.run_until_stalled();
        longest = longest.max(t.elapsed());
        std::thread::sleep(Duration::from_micros(200));
    }
    let total = began.elapsed();
    let _ = std::fs::remove_dir_all(dir);
    (start, longest, total)
}

criterion_group!(benches, bench_reads);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\ndurable writes (fdatasync per group) on one shard:");
    println!("{:>10} {:>14}", "in flight", "writes/s");
    for n in [1usize, 16, 256] {
        println!("{n:>10} {:>14.0}", durable_writes(n, 3.0));
    }
    let (start, longest_tick, total) = compaction_pause(1_000_000);
    println!(
        "\ncompaction of 1M changes: start on core {:?}, longest core tick meanwhile {:?} (includes the switch), merge in background {:?}",
        start, longest_tick, total
    );
}
