//! authplane: one thread-per-core server for the hot path of subscriber
//! authentication (HSS/AuC, USIM over PC/SC), carrier AAA and STIR/SHAKEN.
//!
//! The flow of one request:
//!
//! ```text
//!  NIC ─► core k: SO_REUSEPORT listener ─► connection task (pinned executor)
//!           │  read into the connection's buffer
//!           │  domain::http1: method, path, headers borrowed from the buffer
//!           │  domain::router: match on path segments ─► handler
//!           │  body: simd-json parses in place into borrowed serde types
//!           ▼
//!         handler ─ needs key X? shard = shard_of(X) % cores
//!           │        local  ─► this core's state (no locks)
//!           │        remote ─► Core::submit_to over the mesh, await the reply
//!           ▼
//!         response serialized into the connection's write buffer;
//!         pipelined requests answered in order
//! ```
//!
//! Layers, each depending only on those before it: [`domain`] (pure) ←
//! [`runtime`] ← [`server`] and the services ← `main`. [`config`] is built
//! once and passed explicitly.

pub mod aaa;
pub mod clock;
pub mod config;
pub mod diameter;
pub mod domain;
pub mod hss;
pub mod oam;
pub mod runtime;
pub mod server;
pub mod services;
pub mod sim;
pub mod stir;
pub mod storage;
pub mod table;
