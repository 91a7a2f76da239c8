//! The recorder's pure aggregation state: samples in, per-phase totals and per-second
//! points out.
//!
//! Receives [`Sample`]s (and health readings) with their instants; keeps one HDR histogram
//! per (phase, metric), allocated on first use, one per metric for the open interval, and
//! counters keyed by the `ErrorKind` / `DisconnectReason` enums themselves. Closing an
//! interval emits a [`SecondPoint`], hands the interval histograms to a callback (the
//! `.hlog` writer) and resets them.
//! Must not: allocate or format strings per sample, touch the network or the clock (every
//! instant comes from the caller), or panic on odd samples (unknown phase indices grow the
//! phase list; instants before the start count as 0).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reports::SecondPoint;
use reports::distribution::{HIGHEST_US, new_histogram};

use crate::health::HealthReading;
use crate::sample::{ConnectPhases, DisconnectReason, ErrorKind, Event, Sample};

/// Metrics with a histogram; the index into every histogram array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Tcp,
    Tls,
    WsUpgrade,
    EioOpen,
    Upgrade,
    SioConnect,
    ConnectTotal,
    EchoLatency,
    EchoService,
    BroadcastLatency,
    BroadcastService,
    PingInterval,
    PingDeviation,
    PongRtt,
    MutedCloseDelay,
    MutedAfterPong,
    Reconnect,
    Restore,
    /// The swarm's own lateness: actual send instant minus intended, echo and publish.
    SendLag,
}

/// Number of [`Metric`]s.
pub const METRICS: usize = 19;

impl Metric {
    pub const ALL: [Metric; METRICS] = [
        Metric::Tcp,
        Metric::Tls,
        Metric::WsUpgrade,
        Metric::EioOpen,
        Metric::Upgrade,
        Metric::SioConnect,
        Metric::ConnectTotal,
        Metric::EchoLatency,
        Metric::EchoService,
        Metric::BroadcastLatency,
        Metric::BroadcastService,
        Metric::PingInterval,
        Metric::PingDeviation,
        Metric::PongRtt,
        Metric::MutedCloseDelay,
        Metric::MutedAfterPong,
        Metric::Reconnect,
        Metric::Restore,
        Metric::SendLag,
    ];

    /// The `.hlog` tag, also the threshold name of the metric.
    pub fn tag(self) -> &'static str {
        match self {
            Metric::Tcp => "connect.tcp",
            Metric::Tls => "connect.tls",
            Metric::WsUpgrade => "connect.ws_upgrade",
            Metric::EioOpen => "connect.eio_open",
            Metric::Upgrade => "connect.upgrade",
            Metric::SioConnect => "connect.sio_connect",
            Metric::ConnectTotal => "connect.total",
            Metric::EchoLatency => "echo.latency",
            Metric::EchoService => "echo.service",
            Metric::BroadcastLatency => "broadcast.latency",
            Metric::BroadcastService => "broadcast.service",
            Metric::PingInterval => "heartbeat.ping_interval",
            Metric::PingDeviation => "heartbeat.ping_interval_deviation",
            Metric::PongRtt => "heartbeat.pong_rtt",
            Metric::MutedCloseDelay => "heartbeat.muted_close_delay",
            Metric::MutedAfterPong => "heartbeat.muted_close_after_last_pong",
            Metric::Reconnect => "churn.reconnect",
            Metric::Restore => "outage.restore",
            Metric::SendLag => "swarm.send_lag",
        }
    }
}

/// A lazily allocated histogram of µs that clamps values above its range and counts them.
#[derive(Default)]
pub struct Hist {
    pub h: Option<Histogram<u64>>,
    pub out_of_range: u64,
}

impl Hist {
    #[inline]
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let h = self.h.get_or_insert_with(new_histogram);
        if us > HIGHEST_US {
            self.out_of_range += 1;
            h.saturating_record(HIGHEST_US);
        } else {
            h.saturating_record(us);
        }
    }

    pub(super) fn reset(&mut self) {
        if let Some(h) = self.h.as_mut() {
            h.reset();
        }
        self.out_of_range = 0;
    }

    pub(super) fn percentile(&self, p: f64) -> Option<u64> {
        self.h
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_percentile(p))
    }
}

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
    pub fan: super::fanout::FanCounts,
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
    pub classes: Vec<super::fanout::ClassAgg>,
}

/// The whole aggregation state.
pub struct Aggregator {
    pub start: Instant,
    pub phases: Vec<PhaseAgg>,
    /// Clients connected now.
    pub connected: u64,
    pub peak_connected: u64,
    /// Clients whose connection was lost and not yet replaced, now.
    pub away: u64,
    pub peak_away: u64,
    /// Index of the open interval (0 = [0, interval) from `start`).
    pub open_interval: u64,
    pub interval: Duration,
    pub interval_hists: [Hist; METRICS],
    pub interval_counts: Counts,
    pub series: Vec<SecondPoint>,
    pub health: Vec<HealthReading>,
    /// Running totals for the live view.
    pub totals: Counts,
    pub samples: u64,
    /// Samples dropped because the sample channel was full (set by the recorder task).
    pub samples_dropped: u64,
    /// Per client: echo messages sent and not yet answered, timed out or written off, with
    /// the phase of the last send. A client whose task dies (`client_panic`,
    /// `forced_drop`) takes its in-flight set with it; these are what it had, written off
    /// as `unanswered` so that `sent = received + timeouts + unanswered` still holds.
    outstanding: Vec<(u16, u32)>,
}

/// Clients tracked in [`Aggregator::outstanding`] (far above any run's client count; a
/// sample naming a larger index is not tracked rather than growing the table).
const MAX_TRACKED_CLIENTS: usize = 1 << 24;

fn record_phases(
    hists: &mut [Hist; METRICS],
    ih: &mut [Hist; METRICS],
    p: &ConnectPhases,
    with_total: bool,
) {
    let pairs = [
        (Metric::Tcp, p.tcp),
        (Metric::Tls, p.tls),
        (Metric::WsUpgrade, p.ws_upgrade),
        (Metric::EioOpen, p.eio_open),
        (Metric::Upgrade, p.upgrade),
        (Metric::SioConnect, p.sio_connect),
        (
            Metric::ConnectTotal,
            if with_total { p.total } else { None },
        ),
    ];
    for (m, d) in pairs {
        if let Some(d) = d {
            hists[m as usize].record(d);
            ih[m as usize].record(d);
        }
    }
}

impl Aggregator {
    /// Keeps each client's in-flight echo count; for a client that died, returns what it
    /// had in flight (and the phase of its last send) to write off.
    fn track_outstanding(&mut self, s: &Sample) -> Option<(u16, u32)> {
        let c = s.client as usize;
        let delta_down = match &s.event {
            Event::Sent { .. } => {
                if c >= MAX_TRACKED_CLIENTS {
                    return None;
                }
                if c >= self.outstanding.len() {
                    self.outstanding.resize(c + 1, (0, 0));
                }
                let slot = &mut self.outstanding[c];
                *slot = (s.phase, slot.1.saturating_add(1));
                return None;
            }
            Event::Reply { .. } | Event::Timeout { .. } => 1,
            Event::Unanswered { count } => *count,
            Event::Error {
                error: ErrorKind::ClientPanic | ErrorKind::ForcedDrop,
            } => {
                let slot = self.outstanding.get_mut(c)?;
                let (phase, n) = std::mem::take(slot);
                return (n > 0).then_some((phase, n));
            }
            _ => return None,
        };
        if let Some(slot) = self.outstanding.get_mut(c) {
            slot.1 = slot.1.saturating_sub(delta_down);
        }
        None
    }

    /// `phases` = number of plan phases; more are added if samples name them.
    pub fn new(start: Instant, phases: usize, interval: Duration) -> Aggregator {
        Aggregator {
            start,
            phases: (0..phases.max(1)).map(|_| PhaseAgg::default()).collect(),
            connected: 0,
            peak_connected: 0,
            away: 0,
            peak_away: 0,
            open_interval: 0,
            interval: if interval.is_zero() {
                Duration::from_secs(1)
            } else {
                interval
            },
            interval_hists: Default::default(),
            interval_counts: Counts::default(),
            series: Vec::new(),
            health: Vec::new(),
            totals: Counts::default(),
            samples: 0,
            samples_dropped: 0,
            outstanding: Vec::new(),
        }
    }

    /// Index of the interval containing `at`.
    pub fn interval_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.start);
        u64::try_from(since.as_nanos() / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// Records one sample. The caller first closes every interval before the sample's own
    /// (see [`Aggregator::interval_of`]); samples from an already closed interval count in
    /// the open one.
    pub fn record(&mut self, s: &Sample) {
        self.samples += 1;
        if let Some((phase, n)) = self.track_outstanding(s) {
            let idx = usize::from(phase);
            if idx >= self.phases.len() {
                self.phases.resize_with(idx + 1, PhaseAgg::default);
            }
            self.phases[idx].counts.unanswered += u64::from(n);
            self.totals.unanswered += u64::from(n);
        }
        let idx = usize::from(s.phase);
        if idx >= self.phases.len() {
            self.phases.resize_with(idx + 1, PhaseAgg::default);
        }
        let ph = &mut self.phases[idx];
        ph.first_at = Some(ph.first_at.map_or(s.at, |f| f.min(s.at)));
        ph.last_at = Some(ph.last_at.map_or(s.at, |l| l.max(s.at)));
        ph.peak_connected = ph.peak_connected.max(self.connected);
        let ic = &mut self.interval_counts;
        let ih = &mut self.interval_hists;
        let t = &mut self.totals;
        if let Event::Sent { intended } | Event::Published { intended } = &s.event {
            let lag = s.at.saturating_duration_since(*intended);
            ph.hists[Metric::SendLag as usize].record(lag);
            ih[Metric::SendLag as usize].record(lag);
        }
        match &s.event {
            Event::Connected { phases, .. } => {
                ph.counts.attempted += 1;
                ph.counts.connected += 1;
                ic.attempted += 1;
                ic.connected += 1;
                t.attempted += 1;
                t.connected += 1;
                record_phases(&mut ph.hists, ih, phases, true);
                self.connected += 1;
                self.peak_connected = self.peak_connected.max(self.connected);
            }
            Event::ConnectFailed { phases, error, .. } => {
                ph.counts.attempted += 1;
                ph.counts.failed += 1;
                ic.attempted += 1;
                ic.failed += 1;
                t.attempted += 1;
                t.failed += 1;
                record_phases(&mut ph.hists, ih, phases, false);
                bump(&mut ph.failed_by_kind, error);
            }
            Event::Sent { .. } => {
                ph.counts.echo_seen = true;
                ph.counts.sent += 1;
                ic.sent += 1;
                t.sent += 1;
            }
            Event::Reply { intended, sent } => {
                ph.counts.echo_seen = true;
                ph.counts.received += 1;
                ic.received += 1;
                t.received += 1;
                let latency = s.at.saturating_duration_since(*intended);
                let service = s.at.saturating_duration_since(*sent);
                ph.hists[Metric::EchoLatency as usize].record(latency);
                ph.hists[Metric::EchoService as usize].record(service);
                ih[Metric::EchoLatency as usize].record(latency);
                ih[Metric::EchoService as usize].record(service);
            }
            Event::Timeout { .. } => {
                ph.counts.echo_seen = true;
                ph.counts.timeouts += 1;
                ic.timeouts += 1;
                t.timeouts += 1;
            }
            Event::Late { .. } => {
                ph.counts.echo_seen = true;
                ph.counts.late += 1;
                ic.late += 1;
                t.late += 1;
            }
            Event::Unanswered { count } => {
                ph.counts.echo_seen = true;
                ph.counts.unanswered += u64::from(*count);
                t.unanswered += u64::from(*count);
            }
            Event::Disconnected { reason } => {
                super::fanout::disconnected(ph, reason);
                ph.counts.disconnects += 1;
                ic.disconnects += 1;
                t.disconnects += 1;
                bump(&mut ph.disconnects, reason);
                self.connected = self.connected.saturating_sub(1);
            }
            Event::Error { error } => {
                ph.counts.errors += 1;
                ic.errors += 1;
                t.errors += 1;
                bump(&mut ph.errors, error);
            }
            Event::SkippedDisconnected { count } => {
                ph.counts.echo_seen = true;
                ph.counts.skipped += u64::from(*count);
                ic.skipped += u64::from(*count);
                t.skipped += u64::from(*count);
            }
            Event::ConnectionLost => {
                ph.counts.lost += 1;
                ic.lost += 1;
                t.lost += 1;
                ph.first_loss.get_or_insert(s.at);
                self.away += 1;
                self.peak_away = self.peak_away.max(self.away);
                ph.peak_away = ph.peak_away.max(self.away);
            }
            Event::ReconnectAttempt { ok } => {
                ph.counts.reconnect_attempts += 1;
                ph.counts.reconnect_failures += u64::from(!ok);
                t.reconnect_attempts += 1;
            }
            Event::Restored { took } => {
                ph.counts.restored += 1;
                ic.restored += 1;
                t.restored += 1;
                ph.last_restore = Some(ph.last_restore.map_or(s.at, |l| l.max(s.at)));
                ph.hists[Metric::Restore as usize].record(*took);
                ih[Metric::Restore as usize].record(*took);
                self.away = self.away.saturating_sub(1);
            }
            Event::NotRestored => {
                ph.counts.not_restored += 1;
                t.not_restored += 1;
                self.away = self.away.saturating_sub(1);
            }
            other => super::fanout::record(ph, ih, ic, t, s.at, other),
        }
        // A phase's peak is the most clients connected while it had samples (before and
        // after each), whichever phase connected them.
        ph.peak_connected = ph.peak_connected.max(self.connected);
    }

    /// Keeps a health reading.
    pub fn record_health(&mut self, r: HealthReading) {
        self.health.push(r);
    }

    /// Closes the open interval, emitting its point and handing each non-empty interval
    /// histogram to `sink(metric, histogram, offset, length)`; `length` is shorter than the
    /// interval for the last, partial one.
    pub fn close_interval(
        &mut self,
        length: Duration,
        mut sink: impl FnMut(Metric, &Histogram<u64>, Duration, Duration),
    ) -> &SecondPoint {
        let idx = self.open_interval;
        let offset = self
            .interval
            .saturating_mul(u32::try_from(idx).unwrap_or(u32::MAX));
        // Echo latency when the interval had echo replies, else broadcast latency.
        let echo = &self.interval_hists[Metric::EchoLatency as usize];
        let lat = if echo.h.as_ref().is_some_and(|h| !h.is_empty()) {
            echo
        } else {
            &self.interval_hists[Metric::BroadcastLatency as usize]
        };
        let c = &self.interval_counts;
        let point = SecondPoint {
            second: idx * self.interval.as_secs().max(1),
            connected: self.connected,
            attempted: c.attempted,
            connect_failed: c.failed,
            sent: c.sent,
            received: c.received,
            timeouts: c.timeouts,
            late: c.late,
            errors: c.errors,
            disconnects: c.disconnects,
            latency_p50_us: lat.percentile(50.0),
            latency_p90_us: lat.percentile(90.0),
            latency_p99_us: lat.percentile(99.0),
            latency_max_us: lat.h.as_ref().filter(|h| !h.is_empty()).map(Histogram::max),
            delivered: c.fan.delivered_arrivals,
            connections_lost: c.lost,
            restored: c.restored,
            clients_away: self.away,
            skipped_disconnected: c.skipped,
            send_lag_p99_us: self.interval_hists[Metric::SendLag as usize].percentile(99.0),
            send_lag_max_us: self.interval_hists[Metric::SendLag as usize]
                .h
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(Histogram::max),
        };
        for m in Metric::ALL {
            let hist = &mut self.interval_hists[m as usize];
            if let Some(h) = hist.h.as_ref().filter(|h| !h.is_empty()) {
                sink(m, h, offset, length);
            }
            hist.reset();
        }
        self.interval_counts = Counts::default();
        self.open_interval += 1;
        self.series.push(point);
        // Just pushed, so the series is not empty.
        &self.series[self.series.len() - 1]
    }
}

#[inline]
fn bump<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, u64>, key: &K) {
    if let Some(v) = map.get_mut(key) {
        *v += 1;
    } else {
        map.insert(key.clone(), 1);
    }
}
