//! The pure core: protocol codecs, placement, wire shapes.
//!
//! Nothing here touches the runtime, the file system, the network, threads
//! or the clock; time and randomness are parameters. Everything is unit
//! tested and never panics on input. `tests/integration/layers.rs` keeps
//! this true.
#![forbid(unsafe_code)]

pub mod apdu;
pub mod api_error;
pub mod diameter;
pub mod http1;
pub mod ids;
pub mod kdf;
pub mod keywrap;
pub mod milenage;
pub mod money;
pub mod passport;
pub mod router;
pub mod shaken;
pub mod shard;
pub mod sqn;
pub mod tcxc;
pub mod usim;
