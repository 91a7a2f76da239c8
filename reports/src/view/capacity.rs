//! The capacity section (`swarm capacity`): what the search found, the latency percentiles
//! and the throughput of every step against its load, with the SLO line and the knee (the
//! capacity) marked, the failing SLO named, and the table of steps.
//!
//! Receives a [`RunFile`] with a `capacity` section (absent otherwise). Emits a
//! [`Section`] drawn by the same chart code as every other section (`chart/`).
//! Must not: panic on a hostile section (non-finite loads are dropped by the chart layer;
//! an SLO that does not parse just draws no line).

use super::Section;
use super::common::{Table, color};
use crate::chart::{Axis, Body, Chart, Marker, Scale, Series, Unit};
use crate::format::format_us;
use crate::schema::{CapacityStep, RunFile};
use crate::threshold::{self, Kind, Unit as TUnit};

/// The latency distribution of a step (echo, broadcast, else its connects).
fn latency(s: &CapacityStep) -> Option<&crate::Distribution> {
    s.section
        .echo
        .as_ref()
        .map(|e| &e.latency)
        .or(s.section.broadcast.as_ref().map(|b| &b.latency))
        .or(s.section.connect.phases.total.as_ref())
}

/// A statistic of a distribution, in µs.
type Stat = fn(&crate::Distribution) -> u64;

/// The horizontal lines of the duration SLOs, in µs.
fn slo_lines(slos: &[String]) -> Vec<Marker> {
    slos.iter()
        .filter_map(|s| threshold::parse(s).ok())
        .filter(|t| matches!(t.path.kind, Kind::Distribution | Kind::Duration))
        .filter_map(|t| {
            let us = match t.unit {
                TUnit::Micros => t.value,
                TUnit::Millis => t.value * 1e3,
                TUnit::Seconds => t.value * 1e6,
                _ => return None,
            };
            Some(Marker {
                at: us,
                label: format!("SLO {}", t.expr),
            })
        })
        .collect()
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The section, when the run is a capacity search.
pub fn section(run: &RunFile) -> Option<Section> {
    let c = run.capacity.as_ref()?;
    let mut s = Section::new("capacity", "Capacity");
    s.lead.push(c.summary.clone());
    if !c.failed_slos.is_empty() {
        s.lead.push(format!(
            "The first failing step broke: {}.",
            c.failed_slos.join(", ")
        ));
    }
    s.lead.push(format!(
        "{} step(s) in {:.1} s, {} varying {} ({}) from {} to at most {}, precision {}%; this \
         file's other sections are the run of the capacity step (else the first step).",
        c.steps.len(),
        c.wall_s,
        c.scenario,
        c.vary.replace('_', "-"),
        c.unit,
        num(c.from),
        num(c.max),
        num(c.precision * 100.0)
    ));
    // A step that was run again (the swarm saturated in it) is superseded by its repeat:
    // the charts draw one point per load; the table keeps every step.
    let mut steps: Vec<&CapacityStep> = c.steps.iter().filter(|s| s.repeated.is_none()).collect();
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    // One line at the knee (the first fail is usually within the precision of it, and
    // two labels there would overlap), one where the generator ran out.
    let knee: Vec<Marker> = c
        .capacity
        .map(|cap| Marker {
            at: cap,
            label: match c.first_fail {
                Some(f) => format!("capacity {} (first fail {})", num(cap), num(f)),
                None => format!("capacity {}", num(cap)),
            },
        })
        .into_iter()
        .chain(c.saturated_at.map(|f| Marker {
            at: f,
            label: format!("generator saturated at {}", num(f)),
        }))
        .collect();
    let judged: Vec<&&CapacityStep> = steps.iter().filter(|s| latency(s).is_some()).collect();
    let picks: [(&str, Stat); 3] = [
        ("p50", |d| d.p50_us),
        ("p99", |d| d.p99_us),
        ("max", |d| d.max_us),
    ];
    let series: Vec<Series> = picks
        .iter()
        .enumerate()
        .map(|(i, (name, f))| Series {
            name: name.to_string(),
            color: color(i),
            points: judged
                .iter()
                .filter_map(|s| latency(s).map(|d| (s.load, f(d).max(1) as f64)))
                .collect(),
            dashed: false,
        })
        .collect();
    if series.iter().any(|s| !s.points.is_empty()) {
        s.charts.push(Chart {
            id: "capacity-latency".into(),
            title: "Latency against load".into(),
            caption: format!(
                "p50, p99 and max of each step's measured window against its load ({}); the \
                 horizontal lines are the latency SLOs, the vertical ones the capacity (the \
                 knee) and the first failing load.",
                c.unit
            ),
            x: Axis::new(&format!("load ({})", c.unit), Unit::Count, Scale::Linear),
            y: Axis::new("latency", Unit::Micros, Scale::Log),
            body: Body::Lines { series },
            markers: knee.clone(),
            guides: slo_lines(&c.slos),
        });
    }
    let offered: Vec<(f64, f64)> = if c.unit == "msg/s" {
        steps.iter().map(|s| (s.load, s.load)).collect()
    } else {
        Vec::new()
    };
    let mut tput = vec![Series {
        name: "throughput".into(),
        color: color(0),
        points: steps.iter().map(|s| (s.load, s.throughput_per_s)).collect(),
        dashed: false,
    }];
    if !offered.is_empty() {
        tput.push(Series {
            name: "offered".into(),
            color: color(7),
            points: offered,
            dashed: true,
        });
    }
    s.charts.push(Chart {
        id: "capacity-throughput".into(),
        title: "Throughput against load".into(),
        caption: "Replies (echo), deliveries (broadcast) or connects per second in each step \
                  against its load; where it leaves the offered load (dashed), the server no \
                  longer keeps up."
            .into(),
        x: Axis::new(&format!("load ({})", c.unit), Unit::Count, Scale::Linear),
        y: Axis::new("per second", Unit::Rate, Scale::Linear),
        body: Body::Lines { series: tput },
        markers: knee,
        guides: Vec::new(),
    });
    let mut t = Table::new(
        "Every step, in the order run",
        &[
            "step",
            "load",
            "clients",
            "samples",
            "p50",
            "p99",
            "per second",
            "errors",
            "verdict",
            "why",
        ],
    );
    for st in &c.steps {
        let d = latency(st);
        let mut why: Vec<String> = st
            .slos
            .iter()
            .filter(|t| !t.pass)
            .map(|t| match t.observed {
                Some(v) => format!("{} (observed {v:.2}{})", t.expr, t.unit),
                None => format!("{} ({})", t.expr, t.note.clone().unwrap_or_default()),
            })
            .collect();
        why.extend(st.reasons.iter().cloned());
        if !st.saturated_by.is_empty() {
            why.push(format!("swarm saturated: {}", st.saturated_by.join(", ")));
        }
        if let Some(l) = &st.lengthened {
            why.push(l.clone());
        }
        if let Some(r) = &st.repeated {
            why.push(r.clone());
        }
        if let Some(of) = st.repeat_of {
            why.push(format!("repeat of step {of}"));
        }
        t.push(vec![
            st.index.to_string(),
            num(st.load),
            st.clients.to_string(),
            st.samples.to_string(),
            d.map_or_else(|| "-".into(), |d| format_us(d.p50_us)),
            d.map_or_else(|| "-".into(), |d| format_us(d.p99_us)),
            format!("{:.0}", st.throughput_per_s),
            st.errors.to_string(),
            st.verdict.clone(),
            why.join("; "),
        ]);
    }
    s.tables.push(t);
    Some(s)
}
