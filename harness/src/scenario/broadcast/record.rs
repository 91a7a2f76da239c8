//! The broadcast scenario in the recorder: publishes, deliveries (latency per room size),
//! duplicates, reorders and the receivers' tallies; and the run file's `broadcast` section.
//!
//! Receives the broadcast [`Event`]s of one phase from [`crate::scenario`]. Emits counts and
//! histograms of the phase, the section at the end, and (from the phase's plan options)
//! its run-file settings (`meta.phases[].settings`).
//! Must not: allocate per sample (room size classes are a short vector found by scan), or
//! recompute what the receivers decided (tallies are summed as they come).

use std::collections::BTreeMap;
use std::time::Duration;

use reports::{BroadcastStats, Distribution, RoomSizeStats};

use crate::metric::counts::{Counts, PhaseAgg, class_of};
use crate::metric::{Hist, METRICS, Metric};
use crate::plan::Fanout;
use crate::sample::Event;

fn ns(d: u64) -> Duration {
    Duration::from_nanos(d)
}

/// Publishes, deliveries (latency by room size), duplicates, reorders, tallies.
pub(crate) fn record(
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
            f.ambiguous += x.ambiguous;
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

/// The `broadcast` section of a span (`h` encodes one of its histograms, `encode` a room
/// size's).
pub(crate) fn section(
    p: &PhaseAgg,
    h: &dyn Fn(Metric) -> Option<Distribution>,
    encode: &dyn Fn(&Hist) -> Option<Distribution>,
    empty: &dyn Fn() -> Distribution,
) -> BroadcastStats {
    let f = &p.counts.fan;
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
        ambiguous: f.ambiguous,
        service: h(Metric::BroadcastService),
        by_room_size,
    }
}

/// The broadcast settings of a phase for the run file (`room_size` is the largest planned
/// room; reports label broadcast phases with it).
pub(crate) fn settings(f: &Fanout, s: &mut reports::PhaseSettings) {
    s.subscribers = Some(u64::from(f.subscribers));
    s.publishers = Some(u64::from(f.publishers));
    s.rooms = Some(u64::from(f.rooms));
    let largest = match f.room_size {
        Some(m) => m.min(f.subscribers),
        None => f.subscribers.div_ceil(f.rooms.max(1)),
    };
    s.room_size = Some(u64::from(largest));
    s.server_publisher = f.server_publisher.clone();
}
