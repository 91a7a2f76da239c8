//! The heartbeat scenario: idle clients watch the server's pings; some stop answering.
//! [`args`] holds its command-line arguments, [`record`] its accounting and the run file's
//! `heartbeat` section. Its plan options are `plan/heartbeat.rs`; what a heartbeat
//! client does on its connection (mute, client pings) is the driver's
//! (`driver/conn/roles.rs`, `driver/beat.rs`).
//!
//! Receives and emits through its submodules. Must not: import the recorder, the driver,
//! `run` or `cli` (see `scenario/mod.rs`).

pub mod args;
pub mod record;
