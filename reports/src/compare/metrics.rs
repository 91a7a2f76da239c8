//! Which metrics two runs share, named in the threshold grammar, and their values.
//!
//! Receives two [`Section`]s of the same scope (the whole run, or one phase present in both
//! runs) and their [`RunFile`]s; emits [`MetricSpec`]s: a name such as
//! `steady.echo.latency.p99`, how to read it (raw, as a percentage of its base, or for
//! information only) and both observed values, resolved by [`MetricPath::observe`] exactly
//! as thresholds are.
//! Must not: compare a scenario that only one side ran (the caller reports it instead).

use crate::schema::{RunFile, Section};
use crate::threshold::catalog;
use crate::threshold::{Kind, MetricPath};

/// How a metric is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The value itself, judged by its direction.
    Raw,
    /// As a percentage of its base metric (`echo.timeouts` as % of `echo.sent`), so runs
    /// of different lengths compare; this is what `echo.timeouts <= 0.1%` means too.
    PercentOfBase,
    /// Shown with its change but never judged: the offered load (`echo.sent`) or the
    /// swarm's own resources (`swarm.cpu_percent.max`).
    Info,
}

/// One metric to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub path: MetricPath,
    pub reading: Reading,
}

/// Metrics that describe the load offered, not how the server coped.
pub const LOAD: [&str; 8] = [
    "connect.attempted",
    "echo.sent",
    "broadcast.published",
    "broadcast.expected",
    "churn.drops",
    "churn.away_messages",
    "heartbeat.pings",
    "heartbeat.muted",
];

/// Metrics shown even when both runs have 0 (their absence would read as "not measured").
pub const ALWAYS: [&str; 6] = [
    "connect.failed",
    "echo.timeouts",
    "broadcast.lost",
    "errors.total",
    "disconnects.failures",
    "swarm.saturated",
];

/// Statistics compared for each distribution.
fn stats_of(scenario: &str, metric: &str) -> &'static [&'static str] {
    match (scenario, metric) {
        ("echo", "latency") | ("broadcast", "latency") => &["p50", "p90", "p99", "p999", "max"],
        ("echo", "service") => &["p50", "p99", "max"],
        _ => &["p50", "p99", "max"],
    }
}

fn spec(prefix: Option<&str>, tail: &str) -> Option<MetricSpec> {
    let name = match prefix {
        Some(p) => format!("{p}.{tail}"),
        None => tail.to_string(),
    };
    let path = MetricPath::parse(&name).ok()?;
    let short = format!("{}.{}", path.scenario, path.metric);
    let reading = if path.scenario == "swarm" || LOAD.contains(&short.as_str()) {
        Reading::Info
    } else if path.kind == Kind::Count && path.percent_of.is_some() {
        Reading::PercentOfBase
    } else {
        Reading::Raw
    };
    Some(MetricSpec {
        name,
        path,
        reading,
    })
}

/// Scenarios with data in a section.
pub fn scenarios_in(s: &Section) -> Vec<&'static str> {
    let mut v = Vec::new();
    if s.connect.attempted > 0 || s.connect.peak_connected > 0 {
        v.push("connect");
    }
    if s.echo.is_some() {
        v.push("echo");
    }
    if s.broadcast.is_some() {
        v.push("broadcast");
    }
    if s.heartbeat.is_some() {
        v.push("heartbeat");
    }
    if s.churn.is_some() {
        v.push("churn");
    }
    v
}

/// The metrics both sections can be compared on; `prefix` is the phase name (none for the
/// whole run).
pub fn shared(prefix: Option<&str>, a: &Section, b: &Section) -> Vec<MetricSpec> {
    let sa = scenarios_in(a);
    let sb = scenarios_in(b);
    let mut out = Vec::new();
    for scenario in sa.iter().filter(|s| sb.contains(s)) {
        for m in catalog::METRICS.iter().filter(|m| m.scenario == *scenario) {
            if m.kind == Kind::Distribution {
                let present = |s: &Section| match (m.scenario, m.name) {
                    ("connect", n) => s.connect.phases.get(n).is_some_and(|d| d.count > 0),
                    _ => true,
                };
                if !(present(a) && present(b)) {
                    continue;
                }
                for st in stats_of(m.scenario, m.name) {
                    out.extend(spec(prefix, &format!("{}.{}.{st}", m.scenario, m.name)));
                }
            } else {
                out.extend(spec(prefix, &format!("{}.{}", m.scenario, m.name)));
            }
        }
    }
    out.extend(spec(prefix, "errors.total"));
    for k in largest_keys(&a.errors, &b.errors) {
        out.extend(spec(prefix, &format!("errors.{k}")));
    }
    out.extend(spec(prefix, "disconnects.failures"));
    for k in largest_keys(&a.disconnects, &b.disconnects) {
        if !crate::schema::is_orderly_disconnect(k) {
            out.extend(spec(prefix, &format!("disconnects.{k}")));
        }
    }
    out
}

/// Most error kinds or disconnect reasons compared one by one (the totals cover the rest).
pub const MAX_KEYS: usize = 30;

/// Keys of either map, the largest counts first, at most [`MAX_KEYS`], then sorted by name.
fn largest_keys<'a>(
    a: &'a std::collections::BTreeMap<String, u64>,
    b: &'a std::collections::BTreeMap<String, u64>,
) -> Vec<&'a str> {
    let mut keys: Vec<(&str, u64)> = a
        .keys()
        .chain(b.keys())
        .map(|k| {
            let n = a
                .get(k)
                .copied()
                .unwrap_or(0)
                .max(b.get(k).copied().unwrap_or(0));
            (k.as_str(), n)
        })
        .collect();
    keys.sort_by(|x, y| x.0.cmp(y.0));
    keys.dedup_by(|x, y| x.0 == y.0);
    keys.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    keys.truncate(MAX_KEYS);
    let mut names: Vec<&str> = keys.into_iter().map(|(k, _)| k).collect();
    names.sort_unstable();
    names
}

/// The swarm's own metrics (whole run only).
pub fn swarm() -> Vec<MetricSpec> {
    [
        "swarm.cpu_percent.max",
        "swarm.cpu_percent.mean",
        "swarm.rss_bytes.max",
        "swarm.sched_lag.max",
        "swarm.saturated",
        "swarm.saturated_seconds",
    ]
    .iter()
    .filter_map(|n| spec(None, n))
    .collect()
}

/// The value of `m` in `run`: canonical units, or percent of its base for
/// [`Reading::PercentOfBase`].
pub fn observe(m: &MetricSpec, run: &RunFile) -> Result<f64, String> {
    let v = m.path.observe(run)?;
    if m.reading != Reading::PercentOfBase {
        return Ok(v);
    }
    let base_path = MetricPath {
        metric: m.path.percent_of.unwrap_or("").to_string(),
        stat: None,
        ..m.path.clone()
    };
    let base = base_path.observe(run)?;
    if base <= 0.0 {
        return Err(format!("{} is 0", base_path.name()));
    }
    Ok(v / base * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::example_run;

    #[test]
    fn shared_names_follow_the_grammar() {
        let run = example_run(10);
        let names: Vec<String> = shared(None, &run.run, &run.run)
            .into_iter()
            .map(|m| m.name)
            .collect();
        for n in [
            "connect.failed",
            "connect.total.p99",
            "echo.latency.p99",
            "echo.latency.p999",
            "echo.throughput",
            "errors.unmatched",
            "disconnects.eof",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("broadcast.")));
        assert!(!names.iter().any(|n| n == "disconnects.client_close"));
        let phase: Vec<String> = shared(Some("steady"), &run.phases[1].stats, &run.phases[1].stats)
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert!(
            phase.iter().any(|n| n == "steady.echo.latency.p99"),
            "{phase:?}"
        );
    }

    #[test]
    fn counts_with_a_base_read_as_percentages() {
        let run = example_run(10);
        let m = spec(None, "echo.timeouts").expect("spec");
        assert_eq!(m.reading, Reading::PercentOfBase);
        let v = observe(&m, &run).expect("value");
        assert!((v - 3.0 / 400.0 * 100.0).abs() < 1e-9, "{v}");
        assert_eq!(
            spec(None, "echo.sent").expect("sent").reading,
            Reading::Info
        );
        assert_eq!(
            spec(None, "swarm.saturated").expect("s").reading,
            Reading::Info
        );
        assert_eq!(
            spec(None, "echo.latency.p99").expect("l").reading,
            Reading::Raw
        );
    }
}
