//! Every metric name that thresholds and comparisons can use, with its kind and direction.
//!
//! Receives nothing; emits the static catalog that the parser validates against, the
//! evaluator resolves, and `docs/results-format.md` lists (a test keeps the doc in step).
//! Must not: name a metric that the evaluator cannot resolve.

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::LowerIsBetter => "lower",
            Direction::HigherIsBetter => "higher",
        }
    }
}

/// What a metric's value is, which decides the units a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A distribution of durations in µs; needs a statistic (`p99`, `max`...).
    Distribution,
    /// A plain count; `%` makes it a percentage of `percent_of`.
    Count,
    /// A ratio in 0..=1; `%` compares in percent.
    Ratio,
    /// Already a percentage (CPU: 100 = one core).
    Percent,
    /// Events per second.
    PerSecond,
    /// Bytes; accepts B, KiB, MiB, GiB, kB, MB, GB.
    Bytes,
    /// A duration in µs; needs a duration unit.
    Duration,
    /// 0 or 1.
    Flag,
}

/// A known metric of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub scenario: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub direction: Direction,
    /// For counts: the metric that `%` refers to (e.g. timeouts as % of `sent`).
    pub percent_of: Option<&'static str>,
    /// Statistics accepted after the name, for metrics that are not distributions
    /// (e.g. `swarm.cpu_percent.max`); empty means none.
    pub stats: &'static [&'static str],
    /// One line for the docs.
    pub doc: &'static str,
}

use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

const fn m(
    scenario: &'static str,
    name: &'static str,
    kind: Kind,
    direction: Direction,
    percent_of: Option<&'static str>,
    doc: &'static str,
) -> Metric {
    Metric {
        scenario,
        name,
        kind,
        direction,
        percent_of,
        stats: &[],
        doc,
    }
}

const fn ms(
    scenario: &'static str,
    name: &'static str,
    kind: Kind,
    stats: &'static [&'static str],
    doc: &'static str,
) -> Metric {
    Metric {
        scenario,
        name,
        kind,
        direction: Lower,
        percent_of: None,
        stats,
        doc,
    }
}

/// Scenario names (first segment of a metric name, after the optional phase).
pub const SCENARIOS: [&str; 8] = [
    "connect",
    "echo",
    "broadcast",
    "heartbeat",
    "churn",
    "errors",
    "disconnects",
    "swarm",
];

/// Statistics of a distribution (any `pNN` also works: `p95`, `p999` = 99.9, `p9999` = 99.99).
pub const DISTRIBUTION_STATS: [&str; 9] = [
    "count", "min", "mean", "max", "p50", "p90", "p95", "p99", "p999",
];

/// Scenarios whose metric names are open-ended keys (`errors.io`, `disconnects.eof`).
pub const KEYED_SCENARIOS: [&str; 2] = ["errors", "disconnects"];

/// Every fixed metric name.
pub const METRICS: &[Metric] = &[
    m(
        "connect",
        "attempted",
        Kind::Count,
        Higher,
        None,
        "connection attempts started",
    ),
    m(
        "connect",
        "connected",
        Kind::Count,
        Higher,
        Some("attempted"),
        "attempts that completed every connect phase",
    ),
    m(
        "connect",
        "failed",
        Kind::Count,
        Lower,
        Some("attempted"),
        "attempts that failed (any kind)",
    ),
    m(
        "connect",
        "peak_connected",
        Kind::Count,
        Higher,
        None,
        "most clients connected at once",
    ),
    m(
        "connect",
        "tcp",
        Kind::Distribution,
        Lower,
        None,
        "TCP connect time",
    ),
    m(
        "connect",
        "tls",
        Kind::Distribution,
        Lower,
        None,
        "TLS handshake time",
    ),
    m(
        "connect",
        "ws_upgrade",
        Kind::Distribution,
        Lower,
        None,
        "WebSocket upgrade (HTTP 101) time",
    ),
    m(
        "connect",
        "eio_open",
        Kind::Distribution,
        Lower,
        None,
        "time to the Engine.IO open packet",
    ),
    m(
        "connect",
        "upgrade",
        Kind::Distribution,
        Lower,
        None,
        "polling -> websocket upgrade time",
    ),
    m(
        "connect",
        "sio_connect",
        Kind::Distribution,
        Lower,
        None,
        "time to the namespace CONNECT ack",
    ),
    m(
        "connect",
        "total",
        Kind::Distribution,
        Lower,
        None,
        "whole connect time",
    ),
    m(
        "echo",
        "sent",
        Kind::Count,
        Higher,
        None,
        "timed messages sent",
    ),
    m(
        "echo",
        "received",
        Kind::Count,
        Higher,
        Some("sent"),
        "replies received in time",
    ),
    m(
        "echo",
        "timeouts",
        Kind::Count,
        Lower,
        Some("sent"),
        "messages with no reply within the timeout",
    ),
    m(
        "echo",
        "late",
        Kind::Count,
        Lower,
        Some("sent"),
        "replies after their timeout",
    ),
    m(
        "echo",
        "unanswered_at_stop",
        Kind::Count,
        Lower,
        Some("sent"),
        "messages still unanswered when the run stopped",
    ),
    m(
        "echo",
        "throughput",
        Kind::PerSecond,
        Higher,
        None,
        "replies received per second over the span",
    ),
    m(
        "echo",
        "latency",
        Kind::Distribution,
        Lower,
        None,
        "round trip from the intended send instant",
    ),
    m(
        "echo",
        "service",
        Kind::Distribution,
        Lower,
        None,
        "round trip from the actual send instant",
    ),
    m(
        "broadcast",
        "published",
        Kind::Count,
        Higher,
        None,
        "messages published",
    ),
    m(
        "broadcast",
        "expected",
        Kind::Count,
        Higher,
        None,
        "deliveries expected (members when sent)",
    ),
    m(
        "broadcast",
        "delivered",
        Kind::Count,
        Higher,
        Some("expected"),
        "deliveries received",
    ),
    m(
        "broadcast",
        "reach",
        Kind::Ratio,
        Higher,
        None,
        "delivered / expected",
    ),
    m(
        "broadcast",
        "recovered",
        Kind::Count,
        Higher,
        Some("expected"),
        "deliveries replayed after a reconnect",
    ),
    m(
        "broadcast",
        "missed_while_disconnected",
        Kind::Count,
        Lower,
        Some("expected"),
        "never received, sent while the receiver was away",
    ),
    m(
        "broadcast",
        "lost",
        Kind::Count,
        Lower,
        Some("expected"),
        "every other expected delivery not received",
    ),
    m(
        "broadcast",
        "duplicates",
        Kind::Count,
        Lower,
        Some("expected"),
        "deliveries received more than once",
    ),
    m(
        "broadcast",
        "reordered",
        Kind::Count,
        Lower,
        Some("expected"),
        "deliveries out of order per stream",
    ),
    m(
        "broadcast",
        "latency",
        Kind::Distribution,
        Lower,
        None,
        "one-way latency per delivery",
    ),
    m(
        "broadcast",
        "service",
        Kind::Distribution,
        Lower,
        None,
        "one-way latency from the actual send instant",
    ),
    m(
        "broadcast",
        "foreign",
        Kind::Count,
        Lower,
        None,
        "messages on the broadcast path this run did not send",
    ),
    m(
        "broadcast",
        "outside_membership",
        Kind::Count,
        Lower,
        None,
        "received but sent before the receiver's join ack",
    ),
    m(
        "heartbeat",
        "pings",
        Kind::Count,
        Higher,
        None,
        "server pings received",
    ),
    m(
        "heartbeat",
        "ping_interval_deviation",
        Kind::Distribution,
        Lower,
        None,
        "|ping-to-ping interval - advertised interval|",
    ),
    m(
        "heartbeat",
        "muted_closes",
        Kind::Count,
        Higher,
        None,
        "muted clients closed by the server",
    ),
    m(
        "heartbeat",
        "false_timeouts",
        Kind::Count,
        Lower,
        None,
        "healthy clients closed like a ping timeout",
    ),
    m(
        "heartbeat",
        "client_timeouts",
        Kind::Count,
        Lower,
        None,
        "no ping within pingInterval + pingTimeout",
    ),
    m(
        "heartbeat",
        "ping_interval",
        Kind::Distribution,
        Lower,
        None,
        "observed ping-to-ping interval",
    ),
    m(
        "heartbeat",
        "pong_rtt",
        Kind::Distribution,
        Lower,
        None,
        "round trip of client WS pings",
    ),
    m(
        "heartbeat",
        "muted",
        Kind::Count,
        Higher,
        None,
        "clients that stopped answering pings",
    ),
    m(
        "heartbeat",
        "muted_never_closed",
        Kind::Count,
        Lower,
        Some("muted"),
        "muted clients the server never closed",
    ),
    m(
        "heartbeat",
        "muted_close_delay",
        Kind::Distribution,
        Lower,
        None,
        "from muting to the server's close",
    ),
    m(
        "heartbeat",
        "muted_close_after_last_pong",
        Kind::Distribution,
        Lower,
        None,
        "from the last answered ping to the server's close",
    ),
    m(
        "churn",
        "drops",
        Kind::Count,
        Higher,
        None,
        "connections dropped on purpose",
    ),
    m(
        "churn",
        "reconnects",
        Kind::Count,
        Higher,
        Some("drops"),
        "successful reconnects",
    ),
    m(
        "churn",
        "reconnect_failures",
        Kind::Count,
        Lower,
        Some("drops"),
        "reconnects that failed",
    ),
    m(
        "churn",
        "reconnect",
        Kind::Distribution,
        Lower,
        None,
        "drop to re-join ack",
    ),
    m(
        "churn",
        "recovered_sessions",
        Kind::Count,
        Higher,
        Some("reconnects"),
        "reconnects restored by connection state recovery",
    ),
    m(
        "churn",
        "away_messages",
        Kind::Count,
        Lower,
        None,
        "broadcast messages sent while clients were away",
    ),
    m(
        "errors",
        "total",
        Kind::Count,
        Lower,
        None,
        "non-fatal errors of every kind (errors.<kind> for one kind)",
    ),
    m(
        "disconnects",
        "total",
        Kind::Count,
        Lower,
        None,
        "ended connections, every reason (disconnects.<reason> for one)",
    ),
    m(
        "disconnects",
        "failures",
        Kind::Count,
        Lower,
        None,
        "ended connections other than the swarm's own close",
    ),
    ms(
        "swarm",
        "cpu_percent",
        Kind::Percent,
        &["max", "mean"],
        "swarm CPU per second (100 = one core)",
    ),
    ms(
        "swarm",
        "rss_bytes",
        Kind::Bytes,
        &["max"],
        "swarm resident memory",
    ),
    m(
        "swarm",
        "send_lag",
        Kind::Distribution,
        Lower,
        None,
        "the swarm's own lateness: actual minus intended send instant (echo and publish)",
    ),
    ms(
        "swarm",
        "sched_lag",
        Kind::Duration,
        &["max", "mean"],
        "swarm scheduler lag",
    ),
    m(
        "swarm",
        "saturated",
        Kind::Flag,
        Lower,
        None,
        "1 when the swarm was the bottleneck",
    ),
    m(
        "swarm",
        "saturated_seconds",
        Kind::Count,
        Lower,
        None,
        "seconds in which the swarm was saturated",
    ),
];

/// The catalog entry for `scenario.name`.
pub fn find(scenario: &str, name: &str) -> Option<&'static Metric> {
    METRICS
        .iter()
        .find(|x| x.scenario == scenario && x.name == name)
}

/// Metric names of one scenario, for error messages.
pub fn names_of(scenario: &str) -> Vec<&'static str> {
    METRICS
        .iter()
        .filter(|x| x.scenario == scenario)
        .map(|x| x.name)
        .collect()
}
