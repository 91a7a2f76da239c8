//! The recorder's side of flows: per step outcome counts and latency, the run file's
//! `flow` section, and the whole run's sum of the phases' steps.
//!
//! Receives `FlowStep` samples (routed by `scenario/mod.rs`). Emits [`reports::FlowStats`].
//! Must not: allocate per sample beyond a step's first one (its slot and histogram), or
//! keep anything but the step's name from the sample (no captured or data value ever
//! reaches it).

use reports::{Distribution, FlowStats, FlowStepStats};

use crate::metric::Hist;
use crate::metric::counts::{FlowAgg, PhaseAgg};
use crate::sample::{Event, FlowOutcome};

/// Most steps the recorder keeps (the plan allows fewer: plan/flow.rs MAX_STEPS).
const MAX_SLOTS: usize = 1024;

/// Records one flow step sample of phase `ph`.
pub fn record(ph: &mut PhaseAgg, event: &Event) {
    let Event::FlowStep {
        step,
        name,
        outcome,
        latency,
    } = event
    else {
        return;
    };
    let i = usize::from(*step);
    if i >= MAX_SLOTS {
        return;
    }
    if ph.flow.len() <= i {
        ph.flow.resize_with(i + 1, FlowAgg::default);
    }
    let agg = &mut ph.flow[i];
    if agg.name.is_none() {
        agg.name = Some(name.clone());
    }
    let k = FlowOutcome::ALL
        .iter()
        .position(|o| o == outcome)
        .unwrap_or(0);
    agg.outcomes[k] += 1;
    if *outcome == FlowOutcome::Ok {
        agg.latency.record(*latency);
    }
}

/// Adds the steps of `from` into `into` (the whole run from its phases).
pub fn add(into: &mut Vec<FlowAgg>, from: &[FlowAgg]) {
    if into.len() < from.len() {
        into.resize_with(from.len(), FlowAgg::default);
    }
    for (a, b) in into.iter_mut().zip(from) {
        if a.name.is_none() {
            a.name.clone_from(&b.name);
        }
        for (x, y) in a.outcomes.iter_mut().zip(b.outcomes) {
            *x += y;
        }
        if let Some(h) = b.latency.h.as_ref() {
            let target = a
                .latency
                .h
                .get_or_insert_with(reports::distribution::new_histogram);
            if let Err(e) = target.add(h) {
                tracing::error!("cannot add flow histograms: {e:?}");
            }
            a.latency.out_of_range += b.latency.out_of_range;
        }
    }
}

/// The `flow` section of a span; `None` when no step ran in it.
pub fn section(
    p: &PhaseAgg,
    encode: &dyn Fn(&Hist) -> Option<Distribution>,
    empty: &dyn Fn() -> Distribution,
) -> Option<FlowStats> {
    let steps: Vec<FlowStepStats> = p
        .flow
        .iter()
        .filter_map(|a| {
            let name = a.name.as_ref()?;
            let o = a.outcomes;
            Some(FlowStepStats {
                name: name.to_string(),
                // Unmatched replies are not runs: no request of the step ended by them.
                runs: o[0] + o[1] + o[3] + o[4] + o[5] + o[6],
                ok: o[0],
                timeouts: o[1],
                unmatched: o[2],
                bad_path: o[3],
                server_errors: o[4],
                disconnected: o[5],
                unanswered_at_stop: o[6],
                latency: encode(&a.latency).unwrap_or_else(empty),
            })
        })
        .collect();
    (!steps.is_empty()).then_some(FlowStats { steps })
}
