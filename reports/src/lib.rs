//! The swarmbench run file and its renderings.
//!
//! Pipeline: the harness recorder builds a [`RunFile`] ([`schema`], with [`Distribution`]s
//! for histograms) -> [`RunFile::write`] saves `results.json` -> anything that reports reads it
//! back with [`RunFile::read`]: [`threshold`] checks, [`merge`] combines shards,
//! [`summary`] prints the terminal table / JSON, [`html`] renders `report.html`.
//! This crate depends on no other workspace crate and never prints.

pub mod chart;
pub mod compare;
pub mod distribution;
pub mod file;
pub mod fixture;
pub mod format;
pub mod hdr;
pub mod hlog;
pub mod html;
pub mod intervals;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod redact;
pub mod saturation;
pub mod schema;
pub mod summary;
pub mod templates;
pub mod threshold;
pub mod view;

pub use distribution::{Distribution, DistributionError};
pub use file::RunFileError;
pub use html::{RenderError, render_html};
pub use markdown::render_markdown;
pub use merge::{MergeError, merge};
pub use saturation::summarize_health;
pub use schema::*;
pub use summary::{summary_json, summary_table};
pub use threshold::{Threshold, ThresholdError, parse as parse_threshold};
