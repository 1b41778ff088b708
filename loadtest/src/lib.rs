//! authplane-load: the bundled load generator. Open loop at a fixed rate
//! with coordinated-omission correction, or closed loop at maximum
//! throughput; every answer is validated (a wrong vector is an error, not
//! throughput); HdrHistogram percentiles as a table, JSON and `.hgrm`.

pub mod engine;
pub mod report;
pub mod scenario;
