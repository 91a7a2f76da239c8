//! The live outputs: what a run shows while it happens (README "Watching a run live").
//!
//! Receives one [`LiveSecond`] per closed interval from the recorder (the same series point
//! that results.json's `series` gets, plus that second's latency windows and the run's
//! counters so far) and, from `run/`, the options ([`LiveOptions`]), the rules, the run's
//! labels and the interrupt sender. Emits from that one record: the OpenMetrics endpoint
//! (`endpoint.rs`), Prometheus remote-write pushes (`remote_write.rs`), the NDJSON stream
//! (`ndjson.rs`), and live threshold checks that stop the run (`abort.rs`); at the end a
//! [`reports::LiveOutcome`] for the results file.
//! Must not: slow the recorder (it only sends on an unbounded channel; formatting, HTTP and
//! files happen in this module's tasks), fail the run when a push or a write fails (counted
//! and reported), or export anything of its own in a worker (the coordinator exports).

mod abort;
pub mod endpoint;
mod hub;
mod ndjson;
pub mod remote_write;
pub mod series;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metric::Metric;
pub use hub::{Hub, Lingering, PhaseOf, RunLabels, start};

/// How long the endpoint stays up after the run, by default (`--metrics-linger`): one
/// scrape at the common 15 s scrape interval, so the last scrape sees the final values.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(15);

/// The abort delay when none is given (`--abort-delay`).
pub const DEFAULT_ABORT_DELAY: Duration = Duration::from_secs(30);

/// Where the NDJSON stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    File(PathBuf),
}

/// The live options of a run (validated; `plan::Output::live`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveOptions {
    /// `--metrics-addr`: serve OpenMetrics on this address while the run goes on.
    pub metrics_addr: Option<SocketAddr>,
    /// `--metrics-linger`: how long the endpoint stays up after the run.
    pub metrics_linger: Duration,
    /// `--prometheus-remote-write`: the receiver's URL (http).
    pub remote_write: Option<String>,
    /// `--out ndjson=PATH|-`.
    pub ndjson: Option<Stream>,
    /// `--out junit=PATH`.
    pub junit: Option<PathBuf>,
    /// `--abort-on-fail` / `abort = true`: a rule failing for `abort_delay` stops the run.
    pub abort_on_fail: bool,
    pub abort_delay: Duration,
}

impl Default for LiveOptions {
    fn default() -> LiveOptions {
        LiveOptions {
            metrics_addr: None,
            metrics_linger: DEFAULT_LINGER,
            remote_write: None,
            ndjson: None,
            junit: None,
            abort_on_fail: false,
            abort_delay: DEFAULT_ABORT_DELAY,
        }
    }
}

impl LiveOptions {
    /// Whether any live output runs during the run (the JUnit file is written at the end).
    pub fn any(&self) -> bool {
        self.metrics_addr.is_some()
            || self.remote_write.is_some()
            || self.ndjson.is_some()
            || self.abort_on_fail
    }
}

/// One latency distribution over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Window {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Values recorded in the interval, and their sum.
    pub count: u64,
    pub sum_us: f64,
}

impl Window {
    /// The window of one interval histogram (also of a coordinator's merged one).
    pub fn of(h: &Histogram<u64>) -> Window {
        // The same calls as the series point's (`metric::Hist::percentile`), so the
        // figures are equal.
        Window {
            p50_us: h.value_at_percentile(50.0),
            p90_us: h.value_at_percentile(90.0),
            p99_us: h.value_at_percentile(99.0),
            max_us: h.max(),
            count: h.len(),
            sum_us: h.mean() * h.len() as f64,
        }
    }
}

/// The interval histograms a worker sends its coordinator with each second, by tag: the
/// latencies exported and the send lag of the series point (cluster/live.rs adds them up
/// as the merged results file's per-second figures are, docs/DISTRIBUTED.md).
pub const MERGED_TAGS: [&str; 3] = ["echo.latency", "broadcast.latency", "swarm.send_lag"];

/// The interval's echo and broadcast latency windows, taken from the interval histograms
/// as the recorder closes the interval, and those histograms themselves (a worker sends
/// them to its coordinator).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Windows {
    pub echo: Option<Window>,
    pub broadcast: Option<Window>,
    /// The interval's non-empty histograms of [`MERGED_TAGS`], by tag.
    pub intervals: BTreeMap<&'static str, Histogram<u64>>,
}

impl Windows {
    /// Keeps `h` when it is one of the latencies exported or merged.
    pub fn take(&mut self, m: Metric, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        match m {
            Metric::EchoLatency => self.echo = Some(Window::of(h)),
            Metric::BroadcastLatency => self.broadcast = Some(Window::of(h)),
            _ => {}
        }
        if let Some(tag) = MERGED_TAGS.iter().find(|t| **t == m.tag()) {
            self.intervals.insert(*tag, h.clone());
        }
    }

    /// The windows of merged interval histograms (by tag), as [`Windows::take`] would have
    /// made them in one process.
    pub fn of_intervals(intervals: BTreeMap<&'static str, Histogram<u64>>) -> Windows {
        let get = |tag: &str| intervals.get(tag).filter(|h| !h.is_empty()).map(Window::of);
        Windows {
            echo: get("echo.latency"),
            broadcast: get("broadcast.latency"),
            intervals,
        }
    }
}

/// The run's counters so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Totals {
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
    /// Broadcast first arrivals.
    pub delivered: u64,
    /// Broadcast messages lost (settled as the subscribers' stretches end).
    pub broadcast_lost: u64,
    pub connections_lost: u64,
    pub restored: u64,
}

/// One closed interval, as the live outputs see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSecond {
    /// The interval's series point (equal to results.json's `series` entry).
    pub point: reports::SecondPoint,
    pub windows: Windows,
    pub totals: Totals,
    pub failed_by_kind: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub disconnects_by_reason: BTreeMap<String, u64>,
}

impl LiveSecond {
    /// The figures live thresholds read.
    pub fn figures(&self) -> reports::threshold::LiveFigures {
        let t = &self.totals;
        let mut counts: BTreeMap<String, u64> = [
            ("connect.attempted", t.attempted),
            ("connect.connected", t.connected),
            ("connect.failed", t.failed),
            ("echo.sent", t.sent),
            ("echo.received", t.received),
            ("echo.timeouts", t.timeouts),
            ("echo.late", t.late),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in &self.errors_by_kind {
            counts.insert(format!("errors.{k}"), *v);
        }
        counts.insert("errors.total".into(), self.errors_by_kind.values().sum());
        for (k, v) in &self.disconnects_by_reason {
            counts.insert(format!("disconnects.{k}"), *v);
        }
        counts.insert(
            "disconnects.total".into(),
            self.disconnects_by_reason.values().sum(),
        );
        counts.insert(
            "disconnects.failures".into(),
            self.disconnects_by_reason
                .iter()
                .filter(|(k, _)| !reports::is_orderly_disconnect(k))
                .map(|(_, v)| v)
                .sum(),
        );
        reports::threshold::LiveFigures {
            point: self.point.clone(),
            latency_of: if self.windows.echo.is_some() {
                Some("echo")
            } else if self.windows.broadcast.is_some() {
                Some("broadcast")
            } else {
                None
            },
            counts,
        }
    }
}
