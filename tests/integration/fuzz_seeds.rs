//! The fuzz targets' own checks (tests/fuzz/src/lib.rs) over every
//! committed seed (tests/fuzz/seeds/TARGET), each seed also cut short at
//! a few lengths and with single bytes flipped: the bounded smoke run of
//! every target, with no fuzzing toolchain. `tests/fuzz/run.sh` runs them
//! long under libFuzzer.

#[path = "../fuzz/src/lib.rs"]
mod checks;

/// A seed and a few deterministic variants of it.
fn variants(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    let n = seed.len();
    for cut in [
        0,
        1,
        2,
        3,
        4,
        8,
        16,
        20,
        24,
        32,
        64,
        n / 2,
        n.saturating_sub(1),
    ] {
        if cut < n {
            out.push(seed[..cut].to_vec());
        }
    }
    for i in (0..n).step_by((n / 32).max(1)).take(32) {
        for bits in [0x01u8, 0x80, 0xff] {
            let mut v = seed.to_vec();
            v[i] ^= bits;
            out.push(v);
        }
    }
    out
}

#[test]
fn every_fuzz_target_passes_its_committed_seeds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/seeds");
    for (name, check) in checks::TARGETS {
        let mut seeds: Vec<_> = std::fs::read_dir(format!("{dir}/{name}"))
            .unwrap_or_else(|e| panic!("{name}: no seed directory: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "{name} has no seed");
        for path in seeds {
            let seed = std::fs::read(&path).unwrap();
            for (k, input) in variants(&seed).iter().enumerate() {
                let ran = std::panic::catch_unwind(|| check(input));
                assert!(
                    ran.is_ok(),
                    "{name}: {} (variant {k}) fails its check",
                    path.display()
                );
            }
        }
    }
}
