//! The scenarios, one folder each: what a scenario adds to every layer above the plan.
//! `broadcast/` (roles and rooms, the publish log, each subscriber's accounting, the
//! `broadcast` section), `heartbeat/`, `churn/`, `flow/` (their events and sections; `flow/`
//! also runs a client's message flow for the driver), `echo/` and
//! `connect/` (their command-line help; their events are the recorder's core counts); each
//! folder also holds its command-line arguments (`args.rs`, plain clap structs that
//! `cli/` assembles into commands) and its run-file phase settings.
//!
//! This file is the router the recorder calls: broadcast, heartbeat and churn events go to
//! `broadcast/record.rs`, `heartbeat/record.rs` and `churn/record.rs`, their run-file
//! sections are built there, and a disconnect's meaning for heartbeat and churn is decided
//! here.
//!
//! Receives the events the aggregator does not count itself (connect, echo and outage
//! events stay in `recorder/aggregate.rs`). Emits the per-scenario counts and sections.
//! Layering (docs/ARCHITECTURE.md#scenarios): above `plan`, `schedule`, `sample` and
//! [`crate::metric`]; below `driver`, `recorder`, `run` and `cli`, which import it.
//! Must not: import the recorder, the driver, `run` or `cli` (they import this; no cycle),
//! or allocate per sample.

pub mod broadcast;
pub mod churn;
pub mod connect;
pub mod echo;
pub mod flow;
pub mod heartbeat;

use std::time::Instant;

use reports::{BroadcastStats, ChurnStats, Distribution, HeartbeatStats};

use crate::metric::counts::{Counts, PhaseAgg};
use crate::metric::{Hist, METRICS, Metric};
use crate::plan::Phase;
use crate::sample::{DisconnectReason, Event};

/// Records one broadcast, heartbeat or churn event of phase `ph`; `ih` / `ic` are the
/// open interval's histograms and counters, `t` the running totals.
pub fn record(
    ph: &mut PhaseAgg,
    ih: &mut [Hist; METRICS],
    ic: &mut Counts,
    t: &mut Counts,
    _at: Instant,
    event: &Event,
) {
    match event {
        Event::Published { .. }
        | Event::Delivered { .. }
        | Event::Duplicate { .. }
        | Event::Reordered { .. }
        | Event::Foreign
        | Event::Tally(_) => broadcast::record::record(ph, ih, ic, t, event),
        Event::Reconnected { .. } | Event::ReconnectFailed => churn::record::record(ph, ih, event),
        Event::FlowStep { .. } => flow::record::record(ph, event),
        _ => heartbeat::record::record(ph, ih, event),
    }
}

/// What a disconnect means for heartbeat and churn: client deadlines and churn drops.
pub fn disconnected(ph: &mut PhaseAgg, reason: &DisconnectReason) {
    let f = &mut ph.counts.fan;
    match reason {
        DisconnectReason::ClientDeadline => {
            f.heartbeat_seen = true;
            f.client_timeouts += 1;
        }
        DisconnectReason::ClientDrop => {
            f.churn_seen = true;
            f.drops += 1;
        }
        _ => {}
    }
}

/// The broadcast, heartbeat and churn settings of a phase, for the run file's
/// `meta.phases[].settings`; each scenario writes its own.
pub fn phase_settings(p: &Phase) -> reports::PhaseSettings {
    let mut s = reports::PhaseSettings::default();
    if let Some(f) = &p.fanout {
        broadcast::record::settings(f, &mut s);
    }
    if let Some(c) = &p.churn {
        churn::record::settings(c, &mut s);
    }
    heartbeat::record::settings(&p.heartbeat, &mut s);
    s
}

/// The broadcast, heartbeat and churn sections of a span.
pub struct Sections {
    pub broadcast: Option<BroadcastStats>,
    pub heartbeat: Option<HeartbeatStats>,
    pub churn: Option<ChurnStats>,
    pub flow: Option<reports::FlowStats>,
}

/// Builds the sections from a span's counters, histograms and classes. `h` encodes one
/// histogram (absent when never recorded).
/// `scenarios`: the scenarios of the span (their sections appear even when empty).
pub fn sections(
    p: &PhaseAgg,
    scenarios: &[&str],
    h: &dyn Fn(Metric) -> Option<Distribution>,
    encode: &dyn Fn(&Hist) -> Option<Distribution>,
    empty: &dyn Fn() -> Distribution,
) -> Sections {
    let f = &p.counts.fan;
    let ran = |s: &str| scenarios.contains(&s);
    let broadcast_seen = f.broadcast_seen || ran("broadcast") || ran("churn");
    let broadcast = broadcast_seen.then(|| broadcast::record::section(p, h, encode, empty));
    let heartbeat =
        (f.heartbeat_seen || ran("heartbeat")).then(|| heartbeat::record::section(p, h, empty));
    // Reconnects of echo and connect clients are in the `outage` section; churn is about
    // drops, and re-joins of rooms (broadcast, heartbeat with --reconnect).
    let churn_here = f.drops > 0 || ran("churn") || ran("broadcast") || ran("heartbeat");
    let churn =
        ((f.churn_seen && churn_here) || ran("churn")).then(|| churn::record::section(p, h, empty));
    Sections {
        broadcast,
        heartbeat,
        churn,
        flow: flow::record::section(p, encode, empty),
    }
}
