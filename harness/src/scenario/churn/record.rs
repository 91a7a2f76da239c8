//! The churn scenario in the recorder: drops, reconnects (how long they took, recovered
//! sessions) and the messages a client missed while away; and the run file's `churn`
//! section.
//!
//! Receives the churn [`Event`]s of one phase from [`crate::scenario`]. Emits counts and
//! histograms of the phase, the section at the end, and (from the phase's plan options)
//! its run-file settings (`meta.phases[].settings`).
//! Must not: allocate per sample.

use reports::{ChurnStats, Distribution};

use crate::metric::counts::PhaseAgg;
use crate::metric::{Hist, METRICS, Metric};
use crate::plan::ChurnOpts;
use crate::sample::Event;

/// Reconnects after a drop, and how many messages a client missed while away.
pub(crate) fn record(ph: &mut PhaseAgg, ih: &mut [Hist; METRICS], event: &Event) {
    let f = &mut ph.counts.fan;
    match event {
        Event::Reconnected {
            took,
            recovered_session,
            away,
        } => {
            f.churn_seen = true;
            f.reconnects += 1;
            f.recovered_sessions += u64::from(*recovered_session);
            f.away += away;
            f.away_max = f.away_max.max(*away);
            ph.hists[Metric::Reconnect as usize].record(*took);
            ih[Metric::Reconnect as usize].record(*took);
        }
        Event::ReconnectFailed => {
            f.churn_seen = true;
            f.reconnect_failures += 1;
        }
        _ => {}
    }
}

/// The `churn` section of a span.
pub(crate) fn section(
    p: &PhaseAgg,
    h: &dyn Fn(Metric) -> Option<Distribution>,
    empty: &dyn Fn() -> Distribution,
) -> ChurnStats {
    let f = &p.counts.fan;
    ChurnStats {
        drops: f.drops,
        reconnects: f.reconnects,
        reconnect_failures: f.reconnect_failures,
        reconnect: h(Metric::Reconnect).unwrap_or_else(empty),
        recovered_sessions: f.recovered_sessions,
        away_messages: f.away,
        away_messages_max: f.away_max,
    }
}

/// The churn settings of a phase for the run file.
pub(crate) fn settings(c: &ChurnOpts, s: &mut reports::PhaseSettings) {
    s.churn_rate_per_s = Some(c.rate_per_s);
}
