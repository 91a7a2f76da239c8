//! The churn scenario: a broadcast during which subscribers drop and reconnect. [`args`]
//! holds its command-line argument (the drop rate; the rest are the broadcast's), [`record`]
//! its accounting and the run file's `churn` section. Its plan options are
//! `plan/churn.rs`; the drops themselves are the driver's (`driver/conn/roles.rs`).
//!
//! Receives and emits through its submodules. Must not: import the recorder, the driver,
//! `run` or `cli` (see `scenario/mod.rs`).

pub mod args;
pub mod record;
