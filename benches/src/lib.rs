//! Helpers of the swarmbench benchmarks (`benches/benches/*.rs`, `benches/examples/*.rs`
//! and the peer comparison under `benches/peers/`).
//!
//! Receives: bench parameters. Emits: an in-process target-server ([`server`]), minimal
//! reference clients speaking raw WebSocket echo and Socket.IO ack echo ([`client`]), the
//! swarm's own client session opened from a command line ([`swarm`]), and percentile
//! summaries ([`stats`]).
//! Must not: print (the bench binaries do), or talk to anything outside 127.0.0.0/8.

pub mod client;
pub mod server;
pub mod stats;
pub mod swarm;
