//! The recorder's counters: what one span (a phase, one interval, the whole run) counted,
//! and everything kept for one plan phase.
//!
//! Receives nothing by itself: the recorder's aggregator (`recorder/aggregate.rs`) and each
//! scenario's accounting (`scenario/*/record.rs`, routed by `scenario/mod.rs`) add to these.
//! Emits the totals that `recorder/recorded.rs` and the scenarios' sections turn into the
//! run file.
//! Must not: import the modules that fill it (they import it; no cycle): it imports only
//! [`super`] and [`crate::sample`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Hist, METRICS};
use crate::sample::{DisconnectReason, ErrorKind};

/// Counters of one span (a phase, or one interval).
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub sent: u64,
    pub received: u64,
    pub timeouts: u64,
    pub late: u64,
    pub unanswered: u64,
    pub errors: u64,
    pub disconnects: u64,
    /// Echo sends meant while the client had no connection.
    pub skipped: u64,
    /// Lost connections and reconnects ([`reports::OutageStats`]).
    pub lost: u64,
    pub reconnect_attempts: u64,
    pub reconnect_failures: u64,
    pub restored: u64,
    pub not_restored: u64,
    /// Any echo event happened in the span.
    pub echo_seen: bool,
    /// Broadcast, heartbeat and churn counters.
    pub fan: FanCounts,
}

/// Everything recorded for one plan phase.
#[derive(Default)]
pub struct PhaseAgg {
    pub hists: [Hist; METRICS],
    pub counts: Counts,
    pub failed_by_kind: HashMap<ErrorKind, u64>,
    pub errors: HashMap<ErrorKind, u64>,
    pub disconnects: HashMap<DisconnectReason, u64>,
    pub peak_connected: u64,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
    /// First connection lost and last one restored in the span.
    pub first_loss: Option<Instant>,
    pub last_restore: Option<Instant>,
    /// Most clients away at once (end of an interval) while the span had samples.
    pub peak_away: u64,
    /// Broadcast counts and latency per planned room size.
    pub classes: Vec<ClassAgg>,
    /// Flow steps, by run-wide step number (grown on a step's first sample).
    pub flow: Vec<FlowAgg>,
}

/// One flow step's counts (by `FlowOutcome::ALL` index) and latency in one span.
#[derive(Default)]
pub struct FlowAgg {
    /// The step's name; `None` until its first sample.
    pub name: Option<std::sync::Arc<str>>,
    pub outcomes: [u64; 7],
    pub latency: Hist,
}

/// Broadcast, heartbeat and churn counters of one span.
#[derive(Debug, Default, Clone)]
pub struct FanCounts {
    pub broadcast_seen: bool,
    pub published: u64,
    pub foreign: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub recovered: u64,
    /// First arrivals (samples), for the per-second series.
    pub delivered_arrivals: u64,
    pub expected: u64,
    pub delivered: u64,
    pub missed: u64,
    pub lost: u64,
    pub outside: u64,
    pub ambiguous: u64,
    pub heartbeat_seen: bool,
    pub pings: u64,
    pub muted: u64,
    pub muted_closes: u64,
    pub muted_never_closed: u64,
    pub false_timeouts: u64,
    pub client_timeouts: u64,
    pub advertised: Option<(Duration, Duration)>,
    pub churn_seen: bool,
    pub drops: u64,
    pub reconnects: u64,
    pub reconnect_failures: u64,
    pub recovered_sessions: u64,
    pub away: u64,
    pub away_max: u64,
}

impl FanCounts {
    /// Adds `o` (whole run = sum of phases).
    pub fn add(&mut self, o: &FanCounts) {
        self.broadcast_seen |= o.broadcast_seen;
        self.heartbeat_seen |= o.heartbeat_seen;
        self.churn_seen |= o.churn_seen;
        for (a, b) in [
            (&mut self.published, o.published),
            (&mut self.foreign, o.foreign),
            (&mut self.duplicates, o.duplicates),
            (&mut self.reordered, o.reordered),
            (&mut self.recovered, o.recovered),
            (&mut self.delivered_arrivals, o.delivered_arrivals),
            (&mut self.expected, o.expected),
            (&mut self.delivered, o.delivered),
            (&mut self.missed, o.missed),
            (&mut self.lost, o.lost),
            (&mut self.outside, o.outside),
            (&mut self.ambiguous, o.ambiguous),
            (&mut self.pings, o.pings),
            (&mut self.muted, o.muted),
            (&mut self.muted_closes, o.muted_closes),
            (&mut self.muted_never_closed, o.muted_never_closed),
            (&mut self.false_timeouts, o.false_timeouts),
            (&mut self.client_timeouts, o.client_timeouts),
            (&mut self.drops, o.drops),
            (&mut self.reconnects, o.reconnects),
            (&mut self.reconnect_failures, o.reconnect_failures),
            (&mut self.recovered_sessions, o.recovered_sessions),
            (&mut self.away, o.away),
        ] {
            *a += b;
        }
        self.away_max = self.away_max.max(o.away_max);
        self.advertised = self.advertised.or(o.advertised);
    }
}

/// Broadcast counts of the rooms of one planned size.
#[derive(Default)]
pub struct ClassAgg {
    pub class: u32,
    pub expected: u64,
    pub delivered: u64,
    pub recovered: u64,
    pub missed: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub outside: u64,
    pub latency: Hist,
}

pub fn class_of(classes: &mut Vec<ClassAgg>, class: u32) -> &mut ClassAgg {
    let i = match classes.iter().position(|c| c.class == class) {
        Some(i) => i,
        None => {
            classes.push(ClassAgg {
                class,
                ..ClassAgg::default()
            });
            classes.len() - 1
        }
    };
    &mut classes[i]
}

/// Adds the room size classes of `from` into `into` (whole run).
pub fn add_classes(into: &mut Vec<ClassAgg>, from: &[ClassAgg]) {
    for c in from {
        let d = class_of(into, c.class);
        d.expected += c.expected;
        d.delivered += c.delivered;
        d.recovered += c.recovered;
        d.missed += c.missed;
        d.lost += c.lost;
        d.duplicates += c.duplicates;
        d.reordered += c.reordered;
        d.outside += c.outside;
        if let Some(h) = c.latency.h.as_ref() {
            let target = d
                .latency
                .h
                .get_or_insert_with(reports::distribution::new_histogram);
            if let Err(e) = target.add(h) {
                tracing::error!("cannot add broadcast class histograms: {e:?}");
            }
            d.latency.out_of_range += c.latency.out_of_range;
        }
    }
}
