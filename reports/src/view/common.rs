//! Pieces every section of the view-model uses: tables, distribution rows, phase markers on
//! time axes, the planned number of clients over time.
//!
//! Receives parts of a [`RunFile`]; emits plain rows and chart markers.
//! Must not: overflow on hostile counts (every sum saturates).

use serde::Serialize;

use crate::chart::{self, Axis, Marker, Scale, Unit};
use crate::distribution::Distribution;
use crate::format;
use crate::schema::{RunFile, Section};

/// A table of text cells. `head` empty: a two-column list of name / value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub caption: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(caption: &str, head: &[&str]) -> Table {
        Table {
            caption: caption.to_string(),
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// A name / value row.
    pub fn pair(&mut self, name: &str, value: String) {
        self.rows.push(vec![name.to_string(), value]);
    }
}

/// A named statistic picked from a value (`("p99", |d| d.p99_us)`), for charts that show
/// several statistics of the same thing.
pub type Pick<T, V = u64> = (&'static str, fn(&T) -> V);

/// Header of a distribution table.
pub const DIST_HEAD: [&str; 9] = [
    "", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
];

/// One row of a distribution table.
pub fn dist_row(name: &str, d: &Distribution) -> Vec<String> {
    vec![
        name.to_string(),
        format::count(d.count),
        format::format_us(d.min_us),
        format::format_us(d.p50_us),
        format::format_us(d.p90_us),
        format::format_us(d.p99_us),
        format::format_us(d.p999_us),
        format::format_us(d.max_us),
        format::micros(d.mean_us),
    ]
}

/// How a connect failure kind reads beside other errors: `connect_refused` as is,
/// `tls` as `connect tls`.
pub fn connect_kind(kind: &str) -> String {
    if kind.starts_with("connect") {
        kind.to_string()
    } else {
        format!("connect {kind}")
    }
}

/// Saturating sum of counts.
pub fn sum<'a>(values: impl IntoIterator<Item = &'a u64>) -> u64 {
    values.into_iter().fold(0u64, |a, b| a.saturating_add(*b))
}

/// Phases of the run whose section satisfies `has`, with their name and stats.
pub fn phases_with<'a>(
    run: &'a RunFile,
    has: impl Fn(&Section) -> bool + 'a,
) -> impl Iterator<Item = (&'a str, &'a Section)> + 'a {
    run.phases
        .iter()
        .filter(move |p| has(&p.stats))
        .map(|p| (p.name.as_str(), &p.stats))
}

/// Planned start of each phase, in seconds from the run start (the plan's durations).
pub fn phase_starts(run: &RunFile) -> Vec<(String, f64)> {
    let mut at = 0u64;
    run.meta
        .plan
        .iter()
        .map(|p| {
            let start = at;
            at = at.saturating_add(p.duration_ms);
            (p.name.clone(), start as f64 / 1000.0)
        })
        .collect()
}

/// Last second the run recorded (series or health), for clipping markers.
pub fn last_second(run: &RunFile) -> f64 {
    let s = run.series.last().map_or(0, |p| p.second.saturating_add(1));
    let h = run
        .health
        .series
        .last()
        .map_or(0, |p| p.second.saturating_add(1));
    s.max(h) as f64
}

/// Vertical markers at phase starts that fall within the recorded run.
pub fn phase_markers(run: &RunFile) -> Vec<Marker> {
    let end = last_second(run);
    let starts = phase_starts(run);
    if starts.len() < 2 {
        return Vec::new();
    }
    starts
        .into_iter()
        .filter(|(_, s)| *s <= end)
        .map(|(label, at)| Marker { at, label })
        .collect()
}

/// The plan's intended number of connected clients, as a piecewise-linear line of
/// `(seconds, clients)`: each phase ramps from the previous count to its own over its ramp
/// (or at its connect rate), and a phase with fewer clients closes the surplus at its start.
pub fn planned_clients(run: &RunFile) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0)];
    let mut at_ms = 0f64;
    let mut prev = 0f64;
    for p in &run.meta.plan {
        let target = p.clients as f64;
        let dur = p.duration_ms as f64;
        if target > prev {
            let ramp = match (p.ramp_ms, p.connect_rate_per_s) {
                (Some(r), _) if r > 0 => r as f64,
                (_, Some(rate)) if rate > 0.0 && rate.is_finite() => {
                    (target - prev) / rate * 1000.0
                }
                _ => 0.0,
            }
            .min(dur);
            out.push((at_ms / 1000.0, prev));
            out.push(((at_ms + ramp) / 1000.0, target));
        } else if target < prev {
            out.push((at_ms / 1000.0, prev));
            out.push((at_ms / 1000.0, target));
        }
        at_ms += dur;
        out.push((at_ms / 1000.0, target));
        prev = target;
    }
    let end = last_second(run);
    out.retain(|(x, _)| *x <= end.max(1.0));
    out.dedup();
    chart::finite_points(out)
}

/// The time axis every over-time chart uses.
pub fn time_axis() -> Axis {
    Axis::new("time", Unit::Seconds, Scale::Linear)
}

/// Chart colour `i` of the palette.
pub fn color(i: usize) -> &'static str {
    chart::PALETTE[i % chart::PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::example_run;

    #[test]
    fn planned_clients_ramp_then_hold() {
        let run = example_run(100);
        let p = planned_clients(&run);
        assert_eq!(p.first(), Some(&(0.0, 0.0)));
        assert!(p.contains(&(2.0, 100.0)), "{p:?}");
        assert!(p.iter().all(|(_, c)| *c <= 100.0));
        assert_eq!(
            phase_starts(&run),
            vec![("ramp".into(), 0.0), ("steady".into(), 2.0)]
        );
        assert_eq!(phase_markers(&run).len(), 2);
    }

    #[test]
    fn sums_saturate() {
        assert_eq!(sum(&[u64::MAX, 5]), u64::MAX);
    }
}
