//! Placement of keys on shards: a pure, versioned function.
//!
//! Every persisted structure that depends on placement records
//! [`HASH_VERSION`] and the shard count; a file written under another
//! version or count is refused, never misread.

/// Version of [`shard_of`]. Bump it (and keep the old function readable)
/// whenever the hash changes: placement is persisted.
pub const HASH_VERSION: u32 = 1;

/// Index of a shard (one shard per core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The shard as an index into per-shard arrays.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// 64-bit FNV-1a over the key, finished with MurmurHash3's `fmix64` so that
/// keys differing only in their last digits spread over all shards.
pub fn key_hash(key: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    fmix64(h)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The shard that owns `key` among `shards` shards (`shards` ≥ 1; 0 is
/// treated as 1).
pub fn shard_of(key: &[u8], shards: u16) -> ShardId {
    let n = u64::from(shards.max(1));
    // The remainder is < n ≤ u16::MAX, so the conversion cannot fail.
    ShardId(u16::try_from(key_hash(key) % n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placement is persisted: these values must never change under
    /// HASH_VERSION 1.
    #[test]
    fn golden_values_of_hash_version_1() {
        assert_eq!(HASH_VERSION, 1);
        assert_eq!(key_hash(b""), fmix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(key_hash(b"001010123456789"), 0x3ef8_d7f2_7a66_7926);
        assert_eq!(shard_of(b"001010123456789", 2), ShardId(0));
        assert_eq!(shard_of(b"001010123456780", 7), ShardId(2));
    }

    #[test]
    fn spreads_sequential_imsis_evenly() {
        let mut counts = [0u32; 4];
        for i in 0..40_000u64 {
            let imsi = format!("00101{i:010}");
            counts[shard_of(imsi.as_bytes(), 4).index()] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn zero_shards_means_one() {
        assert_eq!(shard_of(b"x", 0), ShardId(0));
    }
}
