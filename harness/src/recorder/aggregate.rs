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

use crate::health::HealthReading;
use crate::metric::counts::{Counts, PhaseAgg};
use crate::metric::{Hist, METRICS, Metric};
use crate::sample::{ConnectPhases, ErrorKind, Event, Sample};

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
            self.phase_mut(phase).counts.unanswered += u64::from(n);
            self.totals.unanswered += u64::from(n);
        }
        let ph = self.phase_mut(s.phase);
        ph.first_at = Some(ph.first_at.map_or(s.at, |f| f.min(s.at)));
        ph.last_at = Some(ph.last_at.map_or(s.at, |l| l.max(s.at)));
        let idx = usize::from(s.phase);
        let ph = &mut self.phases[idx];
        ph.peak_connected = ph.peak_connected.max(self.connected);
        let ic = &mut self.interval_counts;
        let ih = &mut self.interval_hists;
        let t = &mut self.totals;
        if let Event::Sent { intended } | Event::Published { intended } = &s.event {
            let lag = s.at.saturating_duration_since(*intended);
            ph.hists[Metric::SendLag as usize].record(lag);
            ih[Metric::SendLag as usize].record(lag);
        }
        if !echo(ph, ic, ih, t, s) {
            self.connection(idx, s);
        }
        // A phase's peak is the most clients connected while it had samples (before and
        // after each), whichever phase connected them.
        let ph = &mut self.phases[idx];
        ph.peak_connected = ph.peak_connected.max(self.connected);
    }

    /// The phase at `index`, added (with any before it) if samples name it first.
    fn phase_mut(&mut self, index: u16) -> &mut PhaseAgg {
        let idx = usize::from(index);
        if idx >= self.phases.len() {
            self.phases.resize_with(idx + 1, PhaseAgg::default);
        }
        &mut self.phases[idx]
    }

    /// Connection, error and outage events of phase `idx` (which exists), and the
    /// broadcast, heartbeat and churn events ([`crate::scenario`]).
    fn connection(&mut self, idx: usize, s: &Sample) {
        let ph = &mut self.phases[idx];
        let ic = &mut self.interval_counts;
        let ih = &mut self.interval_hists;
        let t = &mut self.totals;
        match &s.event {
            Event::Connected { phases, .. } => {
                each(&mut ph.counts, ic, t, |c| {
                    c.attempted += 1;
                    c.connected += 1;
                });
                record_phases(&mut ph.hists, ih, phases, true);
                self.connected += 1;
                self.peak_connected = self.peak_connected.max(self.connected);
            }
            Event::ConnectFailed { phases, error, .. } => {
                each(&mut ph.counts, ic, t, |c| {
                    c.attempted += 1;
                    c.failed += 1;
                });
                record_phases(&mut ph.hists, ih, phases, false);
                bump(&mut ph.failed_by_kind, error);
            }
            Event::Disconnected { reason } => {
                crate::scenario::disconnected(ph, reason);
                each(&mut ph.counts, ic, t, |c| c.disconnects += 1);
                bump(&mut ph.disconnects, reason);
                self.connected = self.connected.saturating_sub(1);
            }
            Event::Error { error } => {
                each(&mut ph.counts, ic, t, |c| c.errors += 1);
                bump(&mut ph.errors, error);
            }
            Event::ConnectionLost => {
                each(&mut ph.counts, ic, t, |c| c.lost += 1);
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
                each(&mut ph.counts, ic, t, |c| c.restored += 1);
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
            other => crate::scenario::record(ph, ih, ic, t, s.at, other),
        }
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

/// Applies one counter change to a phase's counts, the open interval's and the totals.
#[inline]
fn each(phase: &mut Counts, interval: &mut Counts, totals: &mut Counts, f: impl Fn(&mut Counts)) {
    f(phase);
    f(interval);
    f(totals);
}

/// Records an echo event (sent, reply, timeout, late, unanswered, skipped); false for any
/// other event.
fn echo(
    ph: &mut PhaseAgg,
    ic: &mut Counts,
    ih: &mut [Hist; METRICS],
    t: &mut Counts,
    s: &Sample,
) -> bool {
    match &s.event {
        Event::Sent { .. } => each(&mut ph.counts, ic, t, |c| c.sent += 1),
        Event::Reply { intended, sent } => {
            each(&mut ph.counts, ic, t, |c| c.received += 1);
            let latency = s.at.saturating_duration_since(*intended);
            let service = s.at.saturating_duration_since(*sent);
            for hists in [&mut ph.hists, ih] {
                hists[Metric::EchoLatency as usize].record(latency);
                hists[Metric::EchoService as usize].record(service);
            }
        }
        Event::Timeout { .. } => each(&mut ph.counts, ic, t, |c| c.timeouts += 1),
        Event::Late { .. } => each(&mut ph.counts, ic, t, |c| c.late += 1),
        Event::Unanswered { count } => {
            ph.counts.unanswered += u64::from(*count);
            t.unanswered += u64::from(*count);
        }
        Event::SkippedDisconnected { count } => {
            each(&mut ph.counts, ic, t, |c| c.skipped += u64::from(*count));
        }
        _ => return false,
    }
    ph.counts.echo_seen = true;
    true
}

#[inline]
fn bump<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, u64>, key: &K) {
    if let Some(v) = map.get_mut(key) {
        *v += 1;
    } else {
        map.insert(key.clone(), 1);
    }
}
