//! Integration tests: the real `authplane` binary on 127.0.0.1 (ephemeral
//! ports, so they run in parallel), spoken to over real sockets.

mod harness;
mod http;
