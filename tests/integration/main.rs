//! Integration tests: the real `authplane` binary on 127.0.0.1 (ephemeral
//! ports, so they run in parallel), spoken to over real sockets.

// Tests fail loudly: unwrap and expect are how they assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The one-door rules for the clock and threads are for the server, not its tests.
#![allow(clippy::disallowed_methods)]

mod aaa;
mod backup;
mod cli;
mod crash;
mod diameter;
mod diameter_ims;
mod diameter_peers;
mod fuzz_seeds;
mod harness;
mod hss_apn;
mod hss_auc;
mod hss_geored;
mod hss_geored_peers;
mod hss_import;
mod hss_oplog;
mod hss_seed_examples;
mod hss_subscriber;
mod hss_vectors;
mod http;
mod layers;
mod lifecycle;
mod load;
mod mesh;
mod openapi;
mod sim;
mod stir;
mod stir_verify;
mod storage;
mod tables;
mod tls;
