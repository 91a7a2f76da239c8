//! The echo scenario's folder. It holds only its command-line help ([`args`]): its
//! arguments are groups shared with other commands (`cli.rs`), its events the recorder's
//! core counts (`recorder/aggregate.rs`) and its run-file sections the core ones.
//!
//! Receives and emits nothing by itself. Must not: import the recorder, the driver, `run`
//! or `cli` (see `scenario/mod.rs`).

pub mod args;
