//! The recorder's part-2 aggregation: broadcast deliveries and tallies, heartbeats,
//! churn; and their sections in the run file.
//!
//! Receives the broadcast / heartbeat / churn [`Event`]s of one phase (the aggregator
//! routes them here) with the phase's histograms. Emits counters, per-room-size
//! aggregates, and at the end the `broadcast`, `heartbeat` and `churn` sections.
//! Must not: allocate per sample (room size classes are a short vector found by scan), or
//! compute anything the drivers already decided (tallies are summed as they come).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reports::{BroadcastStats, ChurnStats, Distribution, HeartbeatStats, RoomSizeStats};

use super::aggregate::{Counts, Hist, METRICS, Metric, PhaseAgg};
use crate::sample::{DisconnectReason, Event};

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

fn class_of(classes: &mut Vec<ClassAgg>, class: u32) -> &mut ClassAgg {
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

fn ns(d: u64) -> Duration {
    Duration::from_nanos(d)
}

/// Records one part-2 event of phase `ph`; `ih` / `ic` are the open interval's
/// histograms and counters, `t` the running totals.
pub fn record(
    ph: &mut PhaseAgg,
    ih: &mut [Hist; METRICS],
    ic: &mut Counts,
    t: &mut Counts,
    _at: Instant,
    event: &Event,
) {
    let f = &mut ph.counts.fan;
    match event {
        Event::Published { .. } => {
            f.broadcast_seen = true;
            f.published += 1;
            ic.fan.published += 1;
            t.fan.published += 1;
        }
        Event::Delivered {
            intended_ns,
            sent_ns,
            received_ns,
            class,
            recovered,
        } => {
            f.broadcast_seen = true;
            f.delivered_arrivals += 1;
            ic.fan.delivered_arrivals += 1;
            t.fan.delivered_arrivals += 1;
            let latency = ns(received_ns.saturating_sub(*intended_ns));
            let service = ns(received_ns.saturating_sub(*sent_ns));
            for hists in [&mut ph.hists, ih] {
                hists[Metric::BroadcastLatency as usize].record(latency);
                hists[Metric::BroadcastService as usize].record(service);
            }
            let c = class_of(&mut ph.classes, *class);
            c.latency.record(latency);
            if *recovered {
                ph.counts.fan.recovered += 1;
                c.recovered += 1;
            }
        }
        Event::Duplicate { class } => {
            f.broadcast_seen = true;
            f.duplicates += 1;
            class_of(&mut ph.classes, *class).duplicates += 1;
        }
        Event::Reordered { class } => {
            f.broadcast_seen = true;
            f.reordered += 1;
            class_of(&mut ph.classes, *class).reordered += 1;
        }
        Event::Foreign => {
            f.broadcast_seen = true;
            f.foreign += 1;
        }
        Event::Tally(x) => {
            f.broadcast_seen = true;
            f.expected += x.expected;
            f.delivered += x.delivered;
            f.missed += x.missed;
            f.lost += x.lost;
            f.outside += x.outside;
            let c = class_of(&mut ph.classes, x.class);
            c.expected += x.expected;
            c.delivered += x.delivered;
            c.missed += x.missed;
            c.lost += x.lost;
            c.outside += x.outside;
        }
        Event::Ping {
            interval,
            advertised,
        } => {
            f.heartbeat_seen = true;
            f.pings += 1;
            if advertised.is_some() {
                f.advertised = *advertised;
            }
            if let Some(i) = interval {
                for hists in [&mut ph.hists, ih] {
                    hists[Metric::PingInterval as usize].record(*i);
                    if let Some((adv, _)) = advertised {
                        hists[Metric::PingDeviation as usize].record(i.abs_diff(*adv));
                    }
                }
            }
        }
        Event::PongRtt { rtt } => {
            f.heartbeat_seen = true;
            ph.hists[Metric::PongRtt as usize].record(*rtt);
            ih[Metric::PongRtt as usize].record(*rtt);
        }
        Event::Muted => {
            f.heartbeat_seen = true;
            f.muted += 1;
        }
        Event::MutedClosed {
            after_mute,
            after_last_pong,
        } => {
            f.heartbeat_seen = true;
            f.muted_closes += 1;
            ph.hists[Metric::MutedCloseDelay as usize].record(*after_mute);
            if let Some(d) = after_last_pong {
                ph.hists[Metric::MutedAfterPong as usize].record(*d);
            }
        }
        Event::MutedNeverClosed => {
            f.heartbeat_seen = true;
            f.muted_never_closed += 1;
        }
        Event::FalseTimeout => {
            f.heartbeat_seen = true;
            f.false_timeouts += 1;
        }
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

/// The part-2 meaning of a disconnect: client deadlines and churn drops.
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

/// The part-2 sections of a span.
pub struct Sections {
    pub broadcast: Option<BroadcastStats>,
    pub heartbeat: Option<HeartbeatStats>,
    pub churn: Option<ChurnStats>,
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
    let broadcast = broadcast_seen.then(|| {
        let mut by_room_size = BTreeMap::new();
        for c in p.classes.iter().filter(|c| c.class > 0) {
            by_room_size.insert(
                c.class.to_string(),
                RoomSizeStats {
                    expected: c.expected,
                    delivered: c.delivered,
                    recovered: c.recovered,
                    missed_while_disconnected: c.missed,
                    lost: c.lost,
                    duplicates: c.duplicates,
                    reordered: c.reordered,
                    outside_membership: c.outside,
                    latency: encode(&c.latency).unwrap_or_else(empty),
                },
            );
        }
        BroadcastStats {
            published: f.published,
            expected: f.expected,
            delivered: f.delivered,
            recovered: f.recovered,
            missed_while_disconnected: f.missed,
            lost: f.lost,
            duplicates: f.duplicates,
            reordered: f.reordered,
            latency: h(Metric::BroadcastLatency).unwrap_or_else(empty),
            foreign: f.foreign,
            outside_membership: f.outside,
            service: h(Metric::BroadcastService),
            by_room_size,
        }
    });
    let heartbeat = (f.heartbeat_seen || ran("heartbeat")).then(|| HeartbeatStats {
        pings: f.pings,
        ping_interval_deviation: h(Metric::PingDeviation).unwrap_or_else(empty),
        pong_rtt: h(Metric::PongRtt),
        muted_closes: f.muted_closes,
        muted_close_delay: h(Metric::MutedCloseDelay),
        false_timeouts: f.false_timeouts,
        client_timeouts: f.client_timeouts,
        ping_interval: h(Metric::PingInterval),
        advertised_ping_interval_ms: f.advertised.map(|(i, _)| i.as_millis() as u64),
        advertised_ping_timeout_ms: f
            .advertised
            .map(|(_, t)| t.as_millis() as u64)
            .filter(|t| *t > 0),
        muted: f.muted,
        muted_never_closed: f.muted_never_closed,
        muted_close_after_last_pong: h(Metric::MutedAfterPong),
    });
    // Reconnects of echo and connect clients are in the `outage` section; churn is about
    // drops, and re-joins of rooms (broadcast, heartbeat with --reconnect).
    let churn_here = f.drops > 0 || ran("churn") || ran("broadcast") || ran("heartbeat");
    let churn = ((f.churn_seen && churn_here) || ran("churn")).then(|| ChurnStats {
        drops: f.drops,
        reconnects: f.reconnects,
        reconnect_failures: f.reconnect_failures,
        reconnect: h(Metric::Reconnect).unwrap_or_else(empty),
        recovered_sessions: f.recovered_sessions,
        away_messages: f.away,
        away_messages_max: f.away_max,
    });
    Sections {
        broadcast,
        heartbeat,
        churn,
    }
}
