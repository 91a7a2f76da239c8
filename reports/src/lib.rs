//! The swarmbench run file and its renderings.
//!
//! Pipeline: the harness recorder builds a [`RunFile`] ([`schema`], with [`Distribution`]s
//! for histograms) -> [`RunFile::write`] saves `results.json` -> anything that reports reads it
//! back with [`RunFile::read`]: [`threshold`] checks, [`merge`] combines shards,
//! [`summary`] prints the terminal table / JSON, [`html`] renders `report.html`.
//! This crate depends on no other workspace crate and never prints.

pub mod distribution;
pub mod file;
pub mod fixture;
pub mod html;
pub mod merge;
pub mod saturation;
pub mod schema;
pub mod summary;
pub mod threshold;

pub use distribution::{Distribution, DistributionError};
pub use file::RunFileError;
pub use merge::{MergeError, merge};
pub use saturation::summarize_health;
pub use schema::*;
pub use summary::{summary_json, summary_table};
pub use threshold::{Threshold, ThresholdError, parse as parse_threshold};
