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

use Direction::LowerIsBetter as Lower;

mod metrics;

pub use metrics::METRICS;

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
pub const SCENARIOS: [&str; 9] = [
    "connect",
    "echo",
    "broadcast",
    "heartbeat",
    "churn",
    "errors",
    "disconnects",
    "swarm",
    "flow",
];

/// Statistics of a distribution (any `pNN` also works: `p95`, `p999` = 99.9, `p9999` = 99.99).
pub const DISTRIBUTION_STATS: [&str; 9] = [
    "count", "min", "mean", "max", "p50", "p90", "p95", "p99", "p999",
];

/// The scenario whose second segment is a flow step name: `flow.STEP.metric[.stat]`.
pub const STEP_SCENARIO: &str = "flow";

/// Scenarios whose metric names are open-ended keys (`errors.io`, `disconnects.eof`).
pub const KEYED_SCENARIOS: [&str; 2] = ["errors", "disconnects"];

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
