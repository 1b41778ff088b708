//! Per-core request statistics: counts by route and status, latency in an
//! HdrHistogram per route. Each core owns its own (no locks); `/metrics`
//! collects a copy from every core over the mesh and merges them.

use hdrhistogram::Histogram;

/// Latency is recorded in nanoseconds, from 1 ns to 60 s, 3 significant
/// digits.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// The statistics of one route on one core.
#[derive(Debug, Clone, Default)]
pub struct RouteStats {
    /// (status code, count), in first-seen order.
    pub statuses: Vec<(u16, u64)>,
    pub latency: Option<Histogram<u64>>,
}

/// The statistics one core keeps; lives on that core.
#[derive(Debug, Clone, Default)]
pub struct CoreMetrics {
    /// Indexed by route; the last slot counts requests that matched none.
    pub routes: Vec<RouteStats>,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub connections_open: u64,
    /// Requests this core sent to another core's shard.
    pub mesh_hops: u64,
    /// Vector requests that took a new SQN lease (and waited for its sync).
    pub sqn_leases_taken: u64,
    /// Vector requests served under a standing SQN lease.
    pub sqn_under_lease: u64,
    /// How late the core's executor ran a timer due every
    /// [`LAG_PROBE`] (ns): time it spent on one task, or not running at all.
    pub executor_lag: Option<Histogram<u64>>,
    /// The background check of each shard's snapshot (one per core).
    pub snapshots: Vec<SnapshotFigures>,
}

/// A shard's mapped snapshot and its background check
/// (`storage::store::ScrubState`).
#[derive(Debug, Clone, Default)]
pub struct SnapshotFigures {
    pub shard: u16,
    pub generation: u64,
    pub bytes: u64,
    pub checked_bytes: u64,
    pub passes: u64,
    pub damaged: u64,
    pub read_errors: u64,
}

/// The executor-lag probe's period.
pub const LAG_PROBE: std::time::Duration = std::time::Duration::from_millis(1);

impl CoreMetrics {
    /// Statistics for `routes` routes (and one slot for unmatched requests).
    pub fn new(routes: usize) -> CoreMetrics {
        CoreMetrics {
            routes: vec![RouteStats::default(); routes + 1],
            ..CoreMetrics::default()
        }
    }

    /// Counts one request of `route` (out of range: unmatched).
    pub fn record(&mut self, route: usize, status: u16, latency_ns: u64) {
        let last = self.routes.len().saturating_sub(1);
        let Some(stats) = self.routes.get_mut(route.min(last)) else {
            return;
        };
        match stats.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => stats.statuses.push((status, 1)),
        }
        record_into(&mut stats.latency, latency_ns);
    }

    /// Records one executor-lag probe.
    pub fn record_lag(&mut self, lag_ns: u64) {
        record_into(&mut self.executor_lag, lag_ns);
    }

    /// Adds another core's statistics into these.
    pub fn merge(&mut self, other: &CoreMetrics) {
        if self.routes.len() < other.routes.len() {
            self.routes
                .resize(other.routes.len(), RouteStats::default());
        }
        for (mine, theirs) in self.routes.iter_mut().zip(&other.routes) {
            for &(status, n) in &theirs.statuses {
                match mine.statuses.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, m)) => *m += n,
                    None => mine.statuses.push((status, n)),
                }
            }
            add_histogram(&mut mine.latency, &theirs.latency);
        }
        add_histogram(&mut self.executor_lag, &other.executor_lag);
        self.connections_accepted += other.connections_accepted;
        self.connections_refused += other.connections_refused;
        self.connections_open += other.connections_open;
        self.mesh_hops += other.mesh_hops;
        self.sqn_leases_taken += other.sqn_leases_taken;
        self.sqn_under_lease += other.sqn_under_lease;
        self.snapshots.extend(other.snapshots.iter().cloned());
    }
}

/// Records `ns` in `hist`, created at the first value.
fn record_into(hist: &mut Option<Histogram<u64>>, ns: u64) {
    if hist.is_none() {
        *hist = new_histogram();
    }
    if let Some(h) = hist {
        h.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }
}

fn add_histogram(mine: &mut Option<Histogram<u64>>, theirs: &Option<Histogram<u64>>) {
    if let Some(h) = theirs {
        match mine {
            // Same bounds on both sides: adding cannot fail.
            Some(dst) => {
                let _ = dst.add(h);
            }
            None => *mine = Some(h.clone()),
        }
    }
}

fn new_histogram() -> Option<Histogram<u64>> {
    // Constant, valid bounds: this is always Some.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = CoreMetrics::new(2);
        let mut b = CoreMetrics::new(2);
        a.record(0, 200, 1_000);
        a.record(0, 200, 3_000);
        b.record(0, 200, 2_000);
        b.record(0, 404, 5_000);
        b.record(99, 404, 10);
        b.mesh_hops = 3;
        b.sqn_leases_taken = 2;
        a.sqn_under_lease = 5;
        a.record_lag(5_000);
        b.record_lag(2_000_000);
        a.merge(&b);
        let lag = a.executor_lag.as_ref().unwrap();
        assert_eq!(lag.len(), 2);
        assert!(lag.max() >= 1_999_000, "{}", lag.max());
        assert_eq!(a.routes[0].statuses, vec![(200, 3), (404, 1)]);
        assert_eq!(a.routes[0].latency.as_ref().unwrap().len(), 4);
        assert_eq!(a.routes[2].statuses, vec![(404, 1)]);
        assert_eq!(a.mesh_hops, 3);
        assert_eq!((a.sqn_leases_taken, a.sqn_under_lease), (2, 5));
    }
}
