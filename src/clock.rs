//! The one clock. Everything else takes time as a parameter; clippy's
//! `disallowed-methods` keeps `Instant::now` and `SystemTime::now` here.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic now, for deadlines and latency.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
