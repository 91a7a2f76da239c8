//! The plan options of the churn scenario: the drop rate of a churn phase (its broadcast
//! options are `broadcast.rs`'s).
//!
//! Receives a raw phase (TOML keys, or `swarm churn` flags converted into one by the CLI).
//! Emits the validated [`ChurnOpts`] and every problem found, as plan errors.
//! Must not: open anything; an error here means nothing was opened.

use super::{RawPhase, Scenario, take};

/// Churn of one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnOpts {
    /// Drops per second over all subscribers.
    pub rate_per_s: f64,
}

/// The churn of a broadcast or churn phase (`None` for a broadcast).
pub(super) fn churn_opts(
    rp: &RawPhase,
    scenario: Scenario,
    errs: &mut Vec<String>,
) -> Option<ChurnOpts> {
    if scenario != Scenario::Churn {
        if rp.churn_rate.is_some() {
            errs.push("churn-rate is for churn phases".into());
        }
        return None;
    }
    let rate = take(&rp.churn_rate, "churn-rate", errs).unwrap_or(1.0);
    if !(rate > 0.0 && rate <= 100_000.0) {
        errs.push(format!(
            "churn-rate {rate}/s must be above 0 and at most 100000"
        ));
    }
    Some(ChurnOpts { rate_per_s: rate })
}
