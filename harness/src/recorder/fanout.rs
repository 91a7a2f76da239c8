//! The recorder's broadcast, heartbeat and churn accounting: deliveries and tallies,
//! pings and mutes, reconnects; and their sections in the run file.
//!
//! Receives the broadcast / heartbeat / churn [`Event`]s of one phase (the aggregator
//! routes them here) with the phase's histograms. Emits counters, per-room-size
//! aggregates, and at the end the `broadcast`, `heartbeat` and `churn` sections.
//! Must not: allocate per sample (room size classes are a short vector found by scan), or
//! compute anything the drivers already decided (tallies are summed as they come).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reports::{BroadcastStats, ChurnStats, Distribution, HeartbeatStats, RoomSizeStats};

use super::counts::{Counts, PhaseAgg, class_of};
use super::metric::{Hist, METRICS, Metric};
use crate::sample::{DisconnectReason, Event};

fn ns(d: u64) -> Duration {
    Duration::from_nanos(d)
}

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
        | Event::Tally(_) => broadcast(ph, ih, ic, t, event),
        Event::Reconnected { .. } | Event::ReconnectFailed => churn(ph, ih, event),
        _ => heartbeat(ph, ih, event),
    }
}

/// Publishes, deliveries (latency by room size), duplicates, reorders, tallies.
fn broadcast(
    ph: &mut PhaseAgg,
    ih: &mut [Hist; METRICS],
    ic: &mut Counts,
    t: &mut Counts,
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
        _ => {}
    }
}

/// Pings (interval and its deviation from the advertised one), pong round trips, mutes.
fn heartbeat(ph: &mut PhaseAgg, ih: &mut [Hist; METRICS], event: &Event) {
    let f = &mut ph.counts.fan;
    match event {
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
        _ => {}
    }
}

/// Reconnects after a drop, and how many messages a client missed while away.
fn churn(ph: &mut PhaseAgg, ih: &mut [Hist; METRICS], event: &Event) {
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

/// The broadcast, heartbeat and churn sections of a span.
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
