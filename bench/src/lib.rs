//! Criterion micro-benchmarks of authplane's hot paths live in `benches/`
//! (`cargo bench -p authplane-bench`); end-to-end scripts beside them.
