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

/// Wall-clock microseconds since the Unix epoch (ordering records written
/// on different cores).
#[allow(clippy::disallowed_methods)]
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
