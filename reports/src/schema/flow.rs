//! The run file's `flow` section: per named flow step, its counts by outcome and its
//! latency (docs/results-format.md#flow).
//!
//! Receives nothing; emits the serde types. Must not: hold a data or captured value (only
//! step names, which come from the plan).

use serde::{Deserialize, Serialize};

use crate::distribution::Distribution;

/// Every recorded step of the span's flows, in plan order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowStats {
    pub steps: Vec<FlowStepStats>,
}

impl FlowStats {
    pub fn step(&self, name: &str) -> Option<&FlowStepStats> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// One step: `runs = ok + timeouts + bad_path + server_errors + disconnected +
/// unanswered_at_stop` (every run
/// of the step that ended, ended exactly one way); `unmatched` counts replies that no
/// request was waiting for, which are not runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowStepStats {
    pub name: String,
    pub runs: u64,
    pub ok: u64,
    pub timeouts: u64,
    /// Replies whose `match` value no outstanding request of the step carried.
    pub unmatched: u64,
    pub bad_path: u64,
    pub server_errors: u64,
    pub disconnected: u64,
    /// Still waiting when the run's drain ended (files before it have none: 0).
    #[serde(default)]
    pub unanswered_at_stop: u64,
    /// Of the `ok` runs: from the step's intended start to its done instant.
    pub latency: Distribution,
}

impl FlowStepStats {
    /// Runs that did not end `ok`.
    pub fn errors(&self) -> u64 {
        self.runs.saturating_sub(self.ok)
    }
}
