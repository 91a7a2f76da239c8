//! The run file's `capacity` section: what `swarm capacity` searched, every step it ran, and
//! what it found (docs/results-format.md#capacity).
//!
//! Receives nothing (plain data); written by the harness (`harness/src/capacity/`), read by
//! the report's capacity section (`view/capacity.rs`).
//! Must not: hold anything a report could not show (every step's histograms are in its
//! `section`, as the run's are in `run`).

use serde::{Deserialize, Serialize};

use super::{Section, ThresholdResult};

/// A capacity search: the load grown geometrically from `from` until an SLO failed, then
/// bisected between the last pass and the first fail to within `precision`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CapacitySection {
    /// `echo`, `broadcast` or `connect`.
    pub scenario: String,
    /// What was varied: `clients`, `rate` (echo messages per second, all clients
    /// together) or `publish_rate` (publishes per second, all publishers together).
    pub vary: String,
    /// Unit of every `load` below: `clients` or `msg/s`.
    pub unit: String,
    pub from: f64,
    pub max: f64,
    /// Relative gap between the last pass and the first fail at which the search stops.
    pub precision: f64,
    /// Growth factor of the first stage.
    pub growth: f64,
    /// Times a step in which the swarm saturated is run again at the same load before the
    /// search ends with `generator_saturated` (absent in files from before repeats: 0).
    #[serde(default)]
    pub saturation_repeats: u32,
    /// Warm-up and (planned) measured window of every step, in seconds.
    pub warmup_s: f64,
    pub step_s: f64,
    /// The service-level objectives, as written (threshold expressions).
    pub slos: Vec<String>,
    /// `found`, `from_fails`, `max_passes`, `generator_saturated`, `could_not_run` or
    /// `interrupted`.
    pub outcome: String,
    /// The highest load that passed every SLO (absent when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
    /// The lowest load that failed an SLO (absent when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fail: Option<f64>,
    /// The SLOs the first failing step broke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_slos: Vec<String>,
    /// The load at which the swarm itself saturated at every attempt (then the search
    /// stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_at: Option<f64>,
    /// One sentence: what the outcome means and, when the generator ran out, the remedy.
    pub summary: String,
    /// Wall time of the whole search, in seconds.
    pub wall_s: f64,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// One step of the search: a warm-up and a measured window at one load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CapacityStep {
    /// 1-based, in the order run.
    pub index: u32,
    /// The load, in the section's `unit`.
    pub load: f64,
    /// Clients connected, and each echo client's (or publisher's) rate per second.
    pub clients: u64,
    pub rate_per_client: f64,
    /// `pass`, `fail`, `saturated` (the swarm ran out: neither pass nor fail) or
    /// `could_not_run`.
    pub verdict: String,
    /// Set on a `saturated` step that was run again at the same load (the next step):
    /// why, and which repeat that is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<String>,
    /// Set on a repeat: the index of the first step at this load whose saturation it
    /// repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<u32>,
    /// Every SLO, evaluated on the measured window (connect SLOs on the whole step).
    pub slos: Vec<ThresholdResult>,
    /// Failures beyond the SLOs: connections the server refused or closed, a step that
    /// could not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The measured window in seconds, and why it was made longer than `step_s`.
    pub measured_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengthened: Option<String>,
    /// Samples behind the SLO's percentile (replies, deliveries or connects), measured.
    pub samples: u64,
    /// Messages (replies or deliveries) or connects per second in the measured window.
    pub throughput_per_s: f64,
    /// Timeouts, lost messages, connect failures and errors in the step.
    pub errors: u64,
    /// Why the swarm counted as saturated (`cpu`, `sched_lag`, `send_lag`, `recorder`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturated_by: Vec<String>,
    /// The step's own results folder, relative to this file.
    pub dir: String,
    /// The measured window's figures, with every histogram (as a phase's are).
    pub section: Section,
}
