//! The connect scenario's command-line help ([`args`]); its events are the recorder's core
//! counts (`recorder/aggregate.rs`) and its run-file sections the core ones.

pub mod args;
