//! The heartbeat scenario in the recorder: pings (their interval and its deviation from
//! the advertised one), pong round trips, muted clients and how the server closed them;
//! and the run file's `heartbeat` section.
//!
//! Receives the heartbeat [`Event`]s of one phase from [`crate::scenario`]. Emits counts and
//! histograms of the phase, the section at the end, and (from the phase's plan options)
//! its run-file settings (`meta.phases[].settings`).
//! Must not: allocate per sample.

use reports::{Distribution, HeartbeatStats};

use crate::metric::counts::PhaseAgg;
use crate::metric::{Hist, METRICS, Metric};
use crate::plan::HeartbeatOpts;
use crate::sample::Event;

/// Pings (interval and its deviation from the advertised one), pong round trips, mutes.
pub(crate) fn record(ph: &mut PhaseAgg, ih: &mut [Hist; METRICS], event: &Event) {
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

/// The `heartbeat` section of a span.
pub(crate) fn section(
    p: &PhaseAgg,
    h: &dyn Fn(Metric) -> Option<Distribution>,
    empty: &dyn Fn() -> Distribution,
) -> HeartbeatStats {
    let f = &p.counts.fan;
    HeartbeatStats {
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
    }
}

/// The heartbeat settings of a phase for the run file (none when it has no heartbeat
/// clients and no mute or client ping).
pub(crate) fn settings(hb: &HeartbeatOpts, s: &mut reports::PhaseSettings) {
    s.heartbeat_clients = (hb.clients > 0).then_some(u64::from(hb.clients));
    if let Some(m) = hb.mute {
        s.mute_fraction = Some(m.fraction);
        s.mute_at_ms = Some(m.at.as_millis() as u64);
    }
    s.client_ping_interval_ms = hb.client_ping_interval.map(|d| d.as_millis() as u64);
}
