//! How an AuC moves its SQN (TS 33.102 Annex C).
//!
//! The AuC stores the last SQN it issued. [`SqnScheme::AnnexC`] splits the
//! 48 bits into SEQ ‖ IND (IND `ind_bits` wide, default 5): each vector
//! takes SEQ + 1, and the vectors of one request share one IND, taken
//! cyclically (C.3.4). [`SqnScheme::Fixed`] adds a fixed increment per
//! vector, for data migrated from AuCs that count that way (PyHSS: 100).
//! Either way SQNs strictly increase in issue order and are never reused.

/// Largest SQN (48 bits).
pub const MAX_SQN: u64 = (1 << 48) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqnScheme {
    AnnexC { ind_bits: u8 },
    Fixed { increment: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SqnError {
    #[error("SQN space exhausted: the subscriber needs a new key set")]
    Exhausted,
}

impl SqnScheme {
    /// The SQNs of the next `n` vectors after `last`, and the new last.
    pub fn next(self, last: u64, n: u64) -> Result<(Vec<u64>, u64), SqnError> {
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        match self {
            SqnScheme::AnnexC { ind_bits } => {
                let ind_bits = u32::from(ind_bits.min(16));
                let mask = (1u64 << ind_bits) - 1;
                let seq = last >> ind_bits;
                let ind = ((last & mask) + 1) & mask;
                for i in 1..=n {
                    let s = seq.checked_add(i).ok_or(SqnError::Exhausted)?;
                    let sqn = (s << ind_bits) | ind;
                    if s > (MAX_SQN >> ind_bits) {
                        return Err(SqnError::Exhausted);
                    }
                    out.push(sqn);
                }
            }
            SqnScheme::Fixed { increment } => {
                let inc = increment.max(1);
                for i in 1..=n {
                    let sqn = i
                        .checked_mul(inc)
                        .and_then(|d| last.checked_add(d))
                        .filter(|&s| s <= MAX_SQN)
                        .ok_or(SqnError::Exhausted)?;
                    out.push(sqn);
                }
            }
        }
        let new_last = out.last().copied().unwrap_or(last);
        Ok((out, new_last))
    }
}

/// The stored SQN after a verified resync to `sqn_ms`: never backwards, so
/// no SQN is ever issued twice (TS 33.102 would reset to SQN_MS; moving
/// forward past it is what the USIM needs to accept the next vector).
pub fn after_resync(last: u64, sqn_ms: u64) -> u64 {
    last.max(sqn_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_c_steps_seq_and_shares_one_ind_per_batch() {
        let s = SqnScheme::AnnexC { ind_bits: 5 };
        // last: SEQ 3, IND 7 → next batch: SEQ 4, 5, 6 with IND 8.
        let (v, last) = s.next(3 << 5 | 7, 3).unwrap();
        assert_eq!(v, vec![4 << 5 | 8, 5 << 5 | 8, 6 << 5 | 8]);
        assert_eq!(last, 6 << 5 | 8);
        // IND wraps cyclically.
        let (v, _) = s.next(9 << 5 | 31, 1).unwrap();
        assert_eq!(v, vec![10 << 5]);
    }

    #[test]
    fn sqns_strictly_increase_across_requests() {
        for s in [
            SqnScheme::AnnexC { ind_bits: 5 },
            SqnScheme::AnnexC { ind_bits: 0 },
            SqnScheme::Fixed { increment: 100 },
        ] {
            let mut last = 0;
            let mut prev = None;
            for n in [1, 3, 1, 5, 2] {
                let (v, l) = s.next(last, n).unwrap();
                for sqn in v {
                    assert!(prev.is_none_or(|p| sqn > p), "{s:?}: {sqn} after {prev:?}");
                    prev = Some(sqn);
                }
                last = l;
            }
        }
    }

    /// libosmocore's progression (auts_resync.json): after SQN_MS 31 with
    /// ind_bitlen 0 the next is 32.
    #[test]
    fn matches_published_progressions() {
        let (v, _) = SqnScheme::AnnexC { ind_bits: 0 }.next(31, 1).unwrap();
        assert_eq!(v, vec![32]);
        let (v, _) = SqnScheme::AnnexC { ind_bits: 0 }
            .next(after_resync(20, 23), 3)
            .unwrap();
        assert_eq!(v, vec![24, 25, 26]);
    }

    #[test]
    fn exhaustion_is_an_error_and_resync_never_goes_back() {
        assert_eq!(
            SqnScheme::Fixed { increment: 100 }.next(MAX_SQN - 50, 1),
            Err(SqnError::Exhausted)
        );
        assert_eq!(
            SqnScheme::AnnexC { ind_bits: 5 }.next(MAX_SQN, 1),
            Err(SqnError::Exhausted)
        );
        assert_eq!(after_resync(500, 100), 500);
        assert_eq!(after_resync(100, 500), 500);
    }
}
