//! `swarm compare`: two runs side by side, every shared metric with its change and a verdict.
//!
//! Receives a base and a new [`RunFile`] and [`CompareOptions`]; emits a [`Comparison`]
//! (a view-model, rendered by [`render`] as HTML or Markdown). Each metric has a direction
//! (the catalog's, listed in `docs/results-format.md`). A relative change within `noise` is
//! unchanged; beyond it, better is improved and worse is regressed; worse beyond
//! `max_regression` fails the comparison (the CLI exits 1). Runs of different scenarios or
//! plans are compared on what they share, and the differences are listed.
//! Must not: judge the offered load or the swarm's own resources as the server's
//! regressions (they are shown for information), or panic on hostile files.

pub mod metrics;
pub mod render;

use serde::Serialize;

use crate::chart::{Axis, Body, Chart, Scale, Series, Unit, derive};
use crate::format;
use crate::schema::{RunFile, Scenario};
use crate::threshold::{Direction, Kind};
use metrics::{MetricSpec, Reading};

/// Tolerances of a comparison, in percent of the base value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Changes up to this are noise ("unchanged").
    pub noise_pct: f64,
    /// Worse by more than this fails the comparison.
    pub max_regression_pct: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            noise_pct: 5.0,
            max_regression_pct: 10.0,
        }
    }
}

/// What happened to one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Unchanged,
    Improved,
    Regressed,
    /// Not judged: offered load, the swarm's own resources, or a value missing on one side.
    Info,
}

/// One metric, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Name in the threshold grammar, e.g. `steady.echo.latency.p99`.
    pub name: String,
    /// `lower` or `higher` is better.
    pub direction: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub base_text: String,
    pub new_text: String,
    /// Signed relative change in percent; `None` when the base is 0 (or a side is missing).
    pub change_pct: Option<f64>,
    pub delta_text: String,
    pub change: Change,
    /// Regressed beyond `max_regression`.
    pub fails: bool,
    pub note: String,
}

/// Rows of one scope (the whole run, a phase, the swarm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub title: String,
    pub rows: Vec<Row>,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLabel {
    pub role: &'static str,
    pub path: String,
    pub scenarios: String,
    pub target: String,
    pub started: String,
    pub swarm_version: String,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub base: RunLabel,
    pub new: RunLabel,
    pub options: CompareOptions,
    /// `noise ±5% · fails when worse by more than 10%`.
    pub rules: String,
    pub headline: String,
    /// True unless a metric regressed beyond `max_regression`.
    pub passed: bool,
    pub regressed: usize,
    pub failing: usize,
    pub improved: usize,
    pub unchanged: usize,
    /// The worst failing rows, for the headline.
    pub worst: Vec<Row>,
    /// Every judged row that changed beyond the noise: regressions first, larger first.
    pub changes: Vec<Row>,
    /// What the runs do not share, and warnings that change how the numbers read.
    pub differences: Vec<String>,
    pub groups: Vec<Group>,
    pub charts: Vec<Chart>,
}

fn text(m: &MetricSpec, v: f64) -> String {
    if m.reading == Reading::PercentOfBase {
        return format!(
            "{} of {}",
            format::percent(v),
            m.path.percent_of.unwrap_or("base")
        );
    }
    match m.path.kind {
        Kind::Distribution | Kind::Duration => format::micros(v),
        Kind::Ratio => format::percent(v * 100.0),
        Kind::Percent => format::percent(v),
        Kind::PerSecond => format::rate(v),
        Kind::Bytes if v.is_finite() && v >= 0.0 => format::format_bytes(v as u64),
        Kind::Flag => if v != 0.0 { "yes" } else { "no" }.into(),
        _ => format::number(v),
    }
}

/// Judges a change from `base` to `new`: (change, relative change in %, fails).
pub fn judge(
    direction: Direction,
    base: f64,
    new: f64,
    o: &CompareOptions,
) -> (Change, Option<f64>, bool) {
    if base == new {
        return (Change::Unchanged, Some(0.0), false);
    }
    let pct = (base != 0.0).then(|| (new - base) / base.abs() * 100.0);
    let better = match direction {
        Direction::LowerIsBetter => new < base,
        Direction::HigherIsBetter => new > base,
    };
    match pct {
        Some(p) if p.abs() <= o.noise_pct => (Change::Unchanged, Some(p), false),
        _ if better => (Change::Improved, pct, false),
        Some(p) => (Change::Regressed, Some(p), p.abs() > o.max_regression_pct),
        None => (Change::Regressed, None, true),
    }
}

fn row(m: &MetricSpec, base: &RunFile, new: &RunFile, o: &CompareOptions) -> Option<Row> {
    let a = metrics::observe(m, base);
    let b = metrics::observe(m, new);
    let (a, b) = match (a, b) {
        (Err(_), Err(_)) => return None,
        (a, b) => (
            a.ok().filter(|v| v.is_finite()),
            b.ok().filter(|v| v.is_finite()),
        ),
    };
    let short = format!("{}.{}", m.path.scenario, m.path.metric);
    if a == Some(0.0) && b == Some(0.0) && !metrics::ALWAYS.contains(&short.as_str()) {
        return None;
    }
    let mut r = Row {
        name: m.name.clone(),
        direction: m.path.direction.as_str(),
        base: a,
        new: b,
        base_text: a.map_or_else(|| "n/a".into(), |v| text(m, v)),
        new_text: b.map_or_else(|| "n/a".into(), |v| text(m, v)),
        change_pct: None,
        delta_text: "-".into(),
        change: Change::Info,
        fails: false,
        note: match m.reading {
            Reading::Info if m.path.scenario == "swarm" => "the swarm's own resources".into(),
            Reading::Info => "offered load".into(),
            _ => String::new(),
        },
    };
    let (Some(a), Some(b)) = (a, b) else {
        r.note = format!("missing in {}", if a.is_none() { "base" } else { "new" });
        return Some(r);
    };
    let (change, pct, fails) = judge(m.path.direction, a, b, o);
    r.change_pct = pct;
    r.delta_text = match pct {
        Some(0.0) => "0%".into(),
        Some(p) => format!(
            "{}{}",
            if p > 0.0 { "+" } else { "−" },
            format::percent(p.abs())
        ),
        None => "from 0".into(),
    };
    if m.reading == Reading::Info {
        return Some(r);
    }
    r.change = change;
    r.fails = fails;
    Some(r)
}

fn label(role: &'static str, path: &str, run: &RunFile) -> RunLabel {
    let m = &run.meta;
    RunLabel {
        role,
        path: path.to_string(),
        scenarios: Scenario::join(&m.scenarios, ", "),
        target: format!("{} ({} over {})", m.target_url, m.protocol, m.transport),
        started: format::unix_ms_to_utc(m.started_at_unix_ms),
        swarm_version: m.swarm_version.clone(),
    }
}

fn differences(base: &RunFile, new: &RunFile) -> Vec<String> {
    let (a, b) = (&base.meta, &new.meta);
    let mut out = Vec::new();
    if a.target_url != b.target_url {
        out.push(format!(
            "targets differ: base {}, new {}",
            a.target_url, b.target_url
        ));
    }
    if (&a.protocol, &a.transport) != (&b.protocol, &b.transport) {
        out.push(format!(
            "protocols differ: base {} over {}, new {} over {}",
            a.protocol, a.transport, b.protocol, b.transport
        ));
    }
    for (role, s, other) in [("base", &base.run, &new.run), ("new", &new.run, &base.run)] {
        let theirs = metrics::scenarios_in(other);
        for sc in metrics::scenarios_in(s)
            .into_iter()
            .filter(|x| !theirs.contains(x))
        {
            out.push(format!("only the {role} run has {sc} data: not compared"));
        }
    }
    for (role, r, other) in [("base", base, new), ("new", new, base)] {
        for p in r
            .phases
            .iter()
            .filter(|p| !other.phases.iter().any(|q| q.name == p.name))
        {
            out.push(format!(
                "phase {} ({}) is only in the {role} run: not compared",
                p.name, p.scenario
            ));
        }
    }
    for pa in &a.plan {
        let Some(pb) = b.plan.iter().find(|p| p.name == pa.name) else {
            continue;
        };
        let mut diffs = Vec::new();
        if pa.scenario != pb.scenario {
            diffs.push(format!("scenario {} vs {}", pa.scenario, pb.scenario));
        }
        if pa.clients != pb.clients {
            diffs.push(format!(
                "clients {} vs {}",
                format::count(pa.clients),
                format::count(pb.clients)
            ));
        }
        if pa.duration_ms != pb.duration_ms {
            diffs.push(format!(
                "duration {} vs {}",
                format::seconds(pa.duration_ms as f64 / 1000.0),
                format::seconds(pb.duration_ms as f64 / 1000.0)
            ));
        }
        if pa.rate_per_s != pb.rate_per_s {
            let r = |v: Option<f64>| v.map_or_else(|| "-".into(), format::rate);
            diffs.push(format!("rate {} vs {}", r(pa.rate_per_s), r(pb.rate_per_s)));
        }
        if pa.payload_size_bytes != pb.payload_size_bytes {
            let r = |v: Option<u64>| v.map_or_else(|| "-".into(), |b| format!("{b} B"));
            diffs.push(format!(
                "payload {} vs {}",
                r(pa.payload_size_bytes),
                r(pb.payload_size_bytes)
            ));
        }
        if !diffs.is_empty() {
            out.push(format!(
                "phase {} was planned differently: {}",
                pa.name,
                diffs.join(", ")
            ));
        }
    }
    for (role, r) in [("base", base), ("new", new)] {
        if r.health.summary.saturated {
            out.push(format!(
                "the {role} run's swarm was saturated: its numbers describe the swarm, not the server"
            ));
        }
        if r.meta.status != crate::RunStatus::Completed {
            out.push(
                format!("the {role} run did not complete ({:?})", r.meta.status).to_lowercase(),
            );
        }
    }
    out
}

fn spectrum_chart(base: &RunFile, new: &RunFile) -> Option<Chart> {
    let (a, b) = (base.run.echo.as_ref()?, new.run.echo.as_ref()?);
    let mut series = Vec::new();
    for (i, (name, d)) in [("base", &a.latency), ("new", &b.latency)]
        .into_iter()
        .enumerate()
    {
        if let Ok(points) = derive::spectrum(d)
            && !points.is_empty()
        {
            series.push(Series {
                name: format!("{name} latency"),
                color: crate::chart::PALETTE[i],
                points,
                dashed: i == 0,
            });
        }
    }
    (series.len() == 2).then(|| Chart {
        id: "compare-latency-spectrum".into(),
        title: "Echo latency by percentile: base and new".into(),
        caption: "Every percentile of the echo round trip (from the intended send) in both runs; \
                  base dashed. Both axes are logarithmic."
            .into(),
        x: Axis::new("percentile", Unit::Percentile, Scale::PercentileLog),
        y: Axis::new("round trip", Unit::Micros, Scale::Log),
        body: Body::Lines { series },
        markers: Vec::new(),
        guides: Vec::new(),
    })
}

/// Compares `new` against `base`; paths name the files in the output.
pub fn compare(
    base: &RunFile,
    base_path: &str,
    new: &RunFile,
    new_path: &str,
    o: CompareOptions,
) -> Comparison {
    let mut groups = Vec::new();
    let rows = |specs: Vec<MetricSpec>| -> Vec<Row> {
        specs.iter().filter_map(|m| row(m, base, new, &o)).collect()
    };
    groups.push(Group {
        title: "whole run".into(),
        rows: rows(metrics::shared(None, &base.run, &new.run)),
    });
    for pa in &base.phases {
        let Some(pb) = new.phases.iter().find(|p| p.name == pa.name) else {
            continue;
        };
        let r = rows(metrics::shared(Some(&pa.name), &pa.stats, &pb.stats));
        if !r.is_empty() {
            groups.push(Group {
                title: format!("phase {} ({})", pa.name, pa.scenario),
                rows: r,
            });
        }
    }
    groups.push(Group {
        title: "swarm (for information: was the swarm the limit?)".into(),
        rows: rows(metrics::swarm()),
    });
    groups.retain(|g| !g.rows.is_empty());
    let all = || groups.iter().flat_map(|g| g.rows.iter());
    let count = |c: Change| all().filter(|r| r.change == c).count();
    let mut worst: Vec<Row> = all().filter(|r| r.fails).cloned().collect();
    worst.sort_by(|x, y| {
        let m = |r: &Row| r.change_pct.map_or(f64::INFINITY, f64::abs);
        m(y).total_cmp(&m(x))
    });
    worst.truncate(5);
    let mut changes: Vec<Row> = all()
        .filter(|r| matches!(r.change, Change::Regressed | Change::Improved))
        .cloned()
        .collect();
    changes.sort_by(|x, y| {
        let m = |r: &Row| r.change_pct.map_or(f64::INFINITY, f64::abs);
        (y.change == Change::Regressed)
            .cmp(&(x.change == Change::Regressed))
            .then(m(y).total_cmp(&m(x)))
    });
    let failing = all().filter(|r| r.fails).count();
    let (regressed, improved, unchanged) = (
        count(Change::Regressed),
        count(Change::Improved),
        count(Change::Unchanged),
    );
    let limit = format::percent(o.max_regression_pct);
    let headline = if failing > 0 {
        format!(
            "FAIL: {} regressed beyond {limit} ({})",
            format::plural(failing as u64, "metric", "metrics"),
            worst
                .iter()
                .take(3)
                .map(|r| format!("{} {}", r.name, r.delta_text))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "PASS: no metric regressed beyond {limit} ({regressed} regressed within it, {improved} improved, {unchanged} unchanged)"
        )
    };
    Comparison {
        base: label("base", base_path, base),
        new: label("new", new_path, new),
        options: o,
        rules: format!(
            "noise ±{} · fails when worse by more than {limit}",
            format::percent(o.noise_pct)
        ),
        headline,
        passed: failing == 0,
        regressed,
        failing,
        improved,
        unchanged,
        worst,
        changes,
        differences: differences(base, new),
        charts: spectrum_chart(base, new).into_iter().collect(),
        groups,
    }
}

#[cfg(test)]
mod tests;
