//! How an AuC moves its SQN (TS 33.102 Annex C).
//!
//! The AuC stores the last SQN it issued. [`SqnScheme::AnnexC`] splits the
//! 48 bits into SEQ ‖ IND (IND `ind_bits` wide, default 5): each vector
//! takes SEQ + 1, and the vectors of one request share one IND, taken
//! cyclically (C.3.4). [`SqnScheme::Fixed`] adds a fixed increment per
//! vector, for data migrated from AuCs that count that way (PyHSS: 100).
//! Either way SQNs strictly increase in issue order and are never reused.
//!
//! **Leases.** Waiting for a sync before every vector puts the disk's
//! slowest `fdatasync` into the tail of every request. An AuC instead
//! holds a lease: its stored record says "SQNs up to `leased` may have
//! left the server, in process `epoch`". A vector whose SQN the durable
//! lease covers leaves without waiting; its own record is synced in the
//! next group commit. A process that finds a lease taken by another
//! (after a crash, or any restart) resumes above it, so a crash at any
//! instant never reissues an SQN. The price: a restart moves each AuC's
//! SQN forward by at most one lease, far inside the USIM's freshness
//! window (Δ, 2^28 SEQ values in Annex C).

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

/// An AuC's SQN bookkeeping as stored in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqnState {
    /// The last SQN issued, as this record knows it.
    pub last: u64,
    /// End of the lease: once the record is durable, no SQN above this
    /// left the server in process `epoch` without being synced first.
    pub leased: u64,
    /// The process that took the lease (0: none, e.g. imported or provisioned).
    pub epoch: u64,
}

impl SqnState {
    /// A provisioned state: nothing issued beyond `last`.
    pub fn at(last: u64) -> Self {
        SqnState {
            last,
            leased: last,
            epoch: 0,
        }
    }

    /// The SQN the next vector builds on in process `epoch`: the last one
    /// issued, or, under a lease an earlier process took, the lease's end
    /// (SQNs up to it may have left before that process stopped).
    pub fn floor(&self, epoch: u64) -> u64 {
        if self.epoch == epoch {
            self.last
        } else {
            self.last.max(self.leased)
        }
    }

    /// The state after a verified resync to `sqn_ms` in process `epoch`
    /// (stored and synced before the answer).
    pub fn resynced(&self, sqn_ms: u64, epoch: u64) -> SqnState {
        let last = after_resync(self.floor(epoch), sqn_ms);
        SqnState {
            last,
            leased: self.leased.max(last),
            epoch,
        }
    }
}

/// What [`SqnScheme::issue`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub sqns: Vec<u64>,
    /// The record to store.
    pub state: SqnState,
    /// A new lease was taken: the record must be logged and the vectors
    /// wait until it is durable. Otherwise this process's lease covers
    /// them: they wait only until that lease is durable, and the record
    /// need not be logged at all (losing it loses nothing: a restart
    /// resumes above the lease).
    pub new_lease: bool,
}

impl SqnScheme {
    /// The end of a lease of `n` vectors past `last`: at or above every
    /// SQN of the next `n` vectors, below the one after them (Annex C:
    /// SEQ + n with the highest IND, so the lease ends on a SEQ whatever
    /// IND the requests take). Saturates at [`MAX_SQN`].
    pub fn lease_end(self, last: u64, n: u64) -> u64 {
        let end = match self {
            SqnScheme::AnnexC { ind_bits } => {
                let ind_bits = u32::from(ind_bits.min(16));
                let mask = (1u64 << ind_bits) - 1;
                (last >> ind_bits)
                    .checked_add(n)
                    .filter(|&s| s <= MAX_SQN >> ind_bits)
                    .map(|s| (s << ind_bits) | mask)
            }
            SqnScheme::Fixed { increment } => n
                .checked_mul(increment.max(1))
                .and_then(|d| last.checked_add(d)),
        };
        end.map_or(MAX_SQN, |s| s.min(MAX_SQN))
    }

    /// Issues `n` SQNs in process `epoch` from `state`, the record as
    /// this core sees it now. Inside this process's lease the lease
    /// stands; otherwise a new one reaches `lease` vectors past the last
    /// SQN issued. `lease` 0: every vector takes a new (empty) lease, so
    /// every vector waits until its own SQN is durable.
    pub fn issue(
        self,
        state: SqnState,
        n: u64,
        lease: u64,
        epoch: u64,
    ) -> Result<Issued, SqnError> {
        let (sqns, last) = self.next(state.floor(epoch), n)?;
        if lease > 0 && state.epoch == epoch && last <= state.leased {
            return Ok(Issued {
                sqns,
                state: SqnState { last, ..state },
                new_lease: false,
            });
        }
        let leased = if lease == 0 {
            last
        } else {
            self.lease_end(last, lease)
        };
        Ok(Issued {
            sqns,
            state: SqnState {
                last,
                leased,
                epoch,
            },
            new_lease: true,
        })
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

    /// The default scheme, Annex C without IND, and PyHSS's counting.
    const SCHEMES: [SqnScheme; 3] = [
        SqnScheme::AnnexC { ind_bits: 5 },
        SqnScheme::AnnexC { ind_bits: 0 },
        SqnScheme::Fixed { increment: 100 },
    ];

    #[test]
    fn sqns_strictly_increase_across_requests() {
        for s in SCHEMES {
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

    #[test]
    fn a_lease_covers_exactly_its_vectors() {
        for s in SCHEMES {
            for last in [0, 31, 32 << 5 | 31, 123_456_789] {
                for n in [1, 2, 32, 1000] {
                    let end = s.lease_end(last, n);
                    // One request at a time, each taking the next IND.
                    let mut l = last;
                    for i in 0..=n {
                        let (v, next) = s.next(l, 1).unwrap();
                        assert_eq!(v[0] <= end, i < n, "{s:?} last {last} n {n} vector {i}");
                        l = next;
                    }
                }
            }
            assert_eq!(s.lease_end(MAX_SQN - 1, 1000), MAX_SQN);
        }
    }

    #[test]
    fn a_lease_stands_only_within_its_end_and_its_process() {
        let s = SqnScheme::AnnexC { ind_bits: 0 };
        // No lease yet: take one of 10 past the SQN issued.
        let i = s.issue(SqnState::at(5), 1, 10, 7).unwrap();
        assert_eq!(i.sqns, vec![6]);
        assert_eq!(
            i.state,
            SqnState {
                last: 6,
                leased: 16,
                epoch: 7
            }
        );
        assert!(i.new_lease);
        // Inside it: the lease stands.
        let j = s.issue(i.state, 2, 10, 7).unwrap();
        assert_eq!((j.sqns.clone(), j.new_lease), (vec![7, 8], false));
        assert_eq!(
            j.state,
            SqnState {
                last: 8,
                leased: 16,
                epoch: 7
            }
        );
        // Up to its end exactly, then past it: a new lease.
        let k = s
            .issue(
                SqnState {
                    last: 14,
                    ..i.state
                },
                2,
                10,
                7,
            )
            .unwrap();
        assert_eq!((k.sqns.clone(), k.new_lease), (vec![15, 16], false));
        let k = s
            .issue(
                SqnState {
                    last: 15,
                    ..i.state
                },
                2,
                10,
                7,
            )
            .unwrap();
        assert_eq!(k.sqns, vec![16, 17]);
        assert_eq!((k.state.leased, k.new_lease), (27, true));
        // Another process's lease: resume above its end.
        let l = s.issue(j.state, 1, 10, 8).unwrap();
        assert_eq!(l.sqns, vec![17]);
        assert_eq!(
            l.state,
            SqnState {
                last: 17,
                leased: 27,
                epoch: 8
            }
        );
        assert!(l.new_lease);
        // No leases: every vector takes a new one, ending at its own SQN.
        let m = s.issue(SqnState::at(5), 1, 0, 7).unwrap();
        assert_eq!(
            m.state,
            SqnState {
                last: 6,
                leased: 6,
                epoch: 7
            }
        );
        assert!(m.new_lease && s.issue(m.state, 1, 0, 7).unwrap().new_lease);
    }

    #[test]
    fn resync_moves_above_a_foreign_lease() {
        let st = SqnState {
            last: 40,
            leased: 100,
            epoch: 3,
        };
        assert_eq!(
            st.resynced(50, 3),
            SqnState {
                last: 50,
                leased: 100,
                epoch: 3
            }
        );
        assert_eq!(
            st.resynced(50, 4),
            SqnState {
                last: 100,
                leased: 100,
                epoch: 4
            }
        );
        assert_eq!(
            st.resynced(200, 4),
            SqnState {
                last: 200,
                leased: 200,
                epoch: 4
            }
        );
    }

    #[derive(Debug, Clone)]
    enum Step {
        Issue(u64),
        /// A group commit: every logged record is durable.
        Sync,
        /// A compaction: the snapshot keeps what the core holds, logged or not.
        Compact,
        /// The process dies: what was not durable is gone; a new process starts.
        Crash,
        Resync(u64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (1u64..5).prop_map(Step::Issue),
            3 => Just(Step::Sync),
            1 => Just(Step::Compact),
            1 => Just(Step::Crash),
            1 => (0u64..4000).prop_map(Step::Resync),
        ]
    }

    proptest::proptest! {
        /// A model of the server and its store: a new lease is logged and
        /// waited for; a covered issue is not logged and waits only for
        /// its lease. Whatever the interleaving of issues, group syncs,
        /// compactions, crashes (losing everything not durable) and
        /// resyncs, every SQN that leaves is above every one before it.
        #[test]
        fn no_crash_reissues_an_sqn(
            steps in proptest::collection::vec(step(), 1..200),
            lease in 0u64..20,
            fixed in proptest::bool::ANY,
        ) {
            let s = if fixed {
                SqnScheme::Fixed { increment: 3 }
            } else {
                SqnScheme::AnnexC { ind_bits: 2 }
            };
            let mut epoch = 1;
            // What the core holds, the newest logged record, what a crash keeps.
            let mut current = SqnState::at(0);
            let mut logged = current;
            let mut durable = current;
            let mut highest: Option<u64> = None;
            for st in steps {
                match st {
                    Step::Issue(n) => {
                        let i = s.issue(current, n, lease, epoch).unwrap();
                        current = i.state;
                        if i.new_lease {
                            logged = current;
                        }
                        // Either way the reply waits for the newest logged record.
                        durable = logged;
                        for sqn in i.sqns {
                            proptest::prop_assert!(
                                highest.is_none_or(|h| sqn > h),
                                "{} reissued after {:?}", sqn, highest
                            );
                            highest = Some(sqn);
                        }
                    }
                    Step::Sync => durable = logged,
                    Step::Compact => {
                        logged = current;
                        durable = current;
                    }
                    Step::Crash => {
                        current = durable;
                        logged = durable;
                        epoch += 1;
                    }
                    Step::Resync(ms) => {
                        current = current.resynced(ms, epoch);
                        logged = current;
                        durable = current;
                        highest = highest.max(Some(current.last));
                    }
                }
            }
        }
    }
}
