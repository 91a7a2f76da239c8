//! What the recorder measures: the [`Metric`]s with a histogram (their `.hlog` tags, which
//! are also their threshold names), [`Hist`], one lazily allocated µs histogram, and the
//! counters of a span ([`counts`]).
//!
//! Receives durations; emits histograms and counters for the recorder, the scenarios'
//! accounting (`scenario/*/record.rs`), the `.hlog` writer and the run file. A leaf below
//! both the recorder and the scenarios: it imports nothing of either (only
//! [`crate::sample`]'s error and reason kinds), so both can use it without a cycle.
//! Must not: allocate per sample (a histogram is allocated on its first value) or panic on
//! a value out of range (clamped and counted).

pub mod counts;

use std::time::Duration;

use hdrhistogram::Histogram;
use reports::distribution::{HIGHEST_US, new_histogram};

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

    pub fn reset(&mut self) {
        if let Some(h) = self.h.as_mut() {
            h.reset();
        }
        self.out_of_range = 0;
    }

    pub fn percentile(&self, p: f64) -> Option<u64> {
        self.h
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_percentile(p))
    }
}
