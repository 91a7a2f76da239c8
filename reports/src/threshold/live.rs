//! Thresholds checked while the run goes on, once per second
//! (docs/results-format.md#live-thresholds-and-abort).
//!
//! Receives a [`Threshold`] and [`LiveFigures`]: the second's series point (the same
//! [`SecondPoint`] that results.json's `series` holds) and the run's counters so far.
//! Emits whether the threshold held this second, or `None` when this second has no figure
//! for it (no echo reply in it, say). [`supported`] says, before the run, which names can be
//! checked live: whole-run names whose figure the second carries: `echo.latency` and
//! `broadcast.latency` at p50, p90, p99 or max (of that second), and the run's counters so
//! far (`connect.attempted|connected|failed`, `echo.sent|received|timeouts|late`,
//! `errors.<kind>`, `disconnects.<reason>`, also as a percentage of their base).
//! Must not: guess a figure the second does not carry.

use std::collections::BTreeMap;

use super::{Kind, Stat, Threshold, Unit};
use crate::schema::SecondPoint;

/// One second of a running swarm, as thresholds see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFigures {
    /// The second's series point.
    pub point: SecondPoint,
    /// Which latency the point's percentiles are: `echo` (the second had echo replies),
    /// `broadcast`, or `None` (no latency this second).
    pub latency_of: Option<&'static str>,
    /// The run's counters so far, by threshold name (`connect.failed`, `errors.timeout`...).
    pub counts: BTreeMap<String, u64>,
}

/// Counters a live figure set carries besides `errors.*` and `disconnects.*`.
pub const LIVE_COUNTS: [&str; 7] = [
    "connect.attempted",
    "connect.connected",
    "connect.failed",
    "echo.sent",
    "echo.received",
    "echo.timeouts",
    "echo.late",
];

fn latency_stat(stat: Option<Stat>) -> Option<fn(&SecondPoint) -> Option<u64>> {
    Some(match stat? {
        Stat::Percentile(50.0) => |s: &SecondPoint| s.latency_p50_us,
        Stat::Percentile(90.0) => |s: &SecondPoint| s.latency_p90_us,
        Stat::Percentile(99.0) => |s: &SecondPoint| s.latency_p99_us,
        Stat::Max => |s: &SecondPoint| s.latency_max_us,
        _ => return None,
    })
}

fn keyed(scenario: &str) -> bool {
    super::catalog::KEYED_SCENARIOS.contains(&scenario)
}

/// Whether `t` can be checked each second; the reason when it cannot.
pub fn supported(t: &Threshold) -> Result<(), String> {
    let p = &t.path;
    let name = p.name();
    let why = |what: &str| {
        Err(format!(
            "`{name}` cannot be checked while the run goes on ({what}); live checks take \
             echo.latency or broadcast.latency at p50, p90, p99 or max, {}, errors.<kind> and \
             disconnects.<reason>",
            LIVE_COUNTS.join(", ")
        ))
    };
    if p.phase.is_some() {
        return why("a phase's figure is known only once the phase is over");
    }
    match p.kind {
        Kind::Distribution => {
            if !matches!(p.scenario.as_str(), "echo" | "broadcast") || p.metric != "latency" {
                return why("no per-second figure of that distribution");
            }
            if latency_stat(p.stat).is_none() {
                return why("a second carries only p50, p90, p99 and max");
            }
            Ok(())
        }
        Kind::Count => {
            let key = format!("{}.{}", p.scenario, p.metric);
            if !keyed(&p.scenario) && !LIVE_COUNTS.contains(&key.as_str()) {
                return why("not one of the counters a second carries");
            }
            if t.unit == Unit::Percent {
                let base = format!("{}.{}", p.scenario, p.percent_of.unwrap_or(""));
                if !LIVE_COUNTS.contains(&base.as_str()) {
                    return why("its base is not a live counter");
                }
            }
            Ok(())
        }
        _ => why("not a latency or a counter"),
    }
}

/// The threshold's value this second, in its written unit; `None` when the second has
/// none (or the name is not live: [`supported`] says so before the run).
pub fn live_value(t: &Threshold, f: &LiveFigures) -> Option<f64> {
    let p = &t.path;
    if p.phase.is_some() {
        return None;
    }
    match p.kind {
        Kind::Distribution => {
            if f.latency_of != Some(p.scenario.as_str()) || p.metric != "latency" {
                return None;
            }
            let us = latency_stat(p.stat)?(&f.point)? as f64;
            Some(match t.unit {
                Unit::Millis => us / 1_000.0,
                Unit::Seconds => us / 1_000_000.0,
                _ => us,
            })
        }
        Kind::Count => {
            let key = format!("{}.{}", p.scenario, p.metric);
            let known = keyed(&p.scenario) || LIVE_COUNTS.contains(&key.as_str());
            if !known {
                return None;
            }
            let v = f.counts.get(&key).copied().unwrap_or(0) as f64;
            if t.unit == Unit::Percent {
                let base_key = format!("{}.{}", p.scenario, p.percent_of?);
                let base = *f.counts.get(&base_key)? as f64;
                return (base > 0.0).then(|| v / base * 100.0);
            }
            Some(v)
        }
        _ => None,
    }
}

/// Whether `t` held this second (`None`: no figure this second).
pub fn live_check(t: &Threshold, f: &LiveFigures) -> Option<bool> {
    live_value(t, f).map(|v| t.op.holds(v, t.value))
}
