//! Section "Connections": connected clients over time against the plan, and how long each
//! connect phase (tcp, tls, ws upgrade, Engine.IO open, upgrade, namespace connect) took.
//!
//! Receives a [`RunFile`]; emits the `connections` [`Section`], or none when nothing
//! connected and nothing was attempted.
//! Must not: invent a phase that was not recorded (absent phases are not drawn).

use super::Section;
use super::common::{
    DIST_HEAD, Pick, Table, color, dist_row, phase_markers, planned_clients, time_axis,
};
use crate::chart::{Axis, BarSeries, Body, Chart, Scale, Series, Unit};
use crate::format::{self, count, format_us};
use crate::schema::{ConnectPhaseTimes, ConnectStats, RunFile};

pub fn section(run: &RunFile) -> Option<Section> {
    let c = &run.run.connect;
    let any_series = run
        .series
        .iter()
        .any(|p| p.connected > 0 || p.attempted > 0);
    if c.attempted == 0 && c.peak_connected == 0 && !any_series {
        return None;
    }
    let mut s = Section::new("connections", "Connections");
    let total = c.phases.total.as_ref().filter(|d| d.count > 0);
    s.lead.push(format!(
        "{} of {} connects succeeded ({} failed); at most {} clients were connected at once{}.",
        count(c.connected),
        count(c.attempted),
        count(c.failed),
        count(c.peak_connected),
        total
            .map(|d| format!(
                "; a whole connect took {} at the median and {} at p99",
                format_us(d.p50_us),
                format_us(d.p99_us)
            ))
            .unwrap_or_default()
    ));
    if !run.series.is_empty() {
        s.charts.push(over_time_chart(run));
    }
    connect_phases(&mut s, c);
    s.tables.push(counts_table(run));
    Some(s)
}

/// Connected clients per second against the plan's target.
fn over_time_chart(run: &RunFile) -> Chart {
    let connected = run
        .series
        .iter()
        .map(|p| (p.second.saturating_add(1) as f64, p.connected as f64))
        .collect();
    let mut series = vec![Series {
        name: "connected".into(),
        color: color(0),
        points: connected,
        dashed: false,
    }];
    let plan = planned_clients(run);
    if plan.len() > 1 {
        series.insert(
            0,
            Series {
                name: "target (plan)".into(),
                color: color(7),
                points: plan,
                dashed: true,
            },
        );
    }
    Chart {
        id: "connections-over-time".into(),
        title: "Connected clients over time".into(),
        caption: "Clients connected at the end of each second, against the number the plan \
                      intended (dashed)."
            .into(),
        x: time_axis(),
        y: Axis::new("clients", Unit::Count, Scale::Linear),
        body: Body::Lines { series },
        markers: phase_markers(run),
        guides: Vec::new(),
    }
}

/// Percentiles of each recorded connect phase, as a chart and a table.
fn connect_phases(s: &mut Section, c: &ConnectStats) {
    let present: Vec<(&str, &crate::Distribution)> = ConnectPhaseTimes::NAMES
        .iter()
        .filter_map(|n| c.phases.get(n).filter(|d| d.count > 0).map(|d| (*n, d)))
        .collect();
    if !present.is_empty() {
        let stats: [Pick<crate::Distribution>; 4] = [
            ("p50", |d| d.p50_us),
            ("p90", |d| d.p90_us),
            ("p99", |d| d.p99_us),
            ("max", |d| d.max_us),
        ];
        s.charts.push(Chart {
            id: "connect-phases".into(),
            title: "Connect phases".into(),
            caption: "How long each step of a connect took, as percentiles over every \
                      successful connect (log scale)."
                .into(),
            x: Axis::new("connect phase", Unit::Category, Scale::Linear),
            y: Axis::new("duration", Unit::Micros, Scale::Log),
            body: Body::Bars {
                categories: present.iter().map(|(n, _)| n.to_string()).collect(),
                series: stats
                    .iter()
                    .enumerate()
                    .map(|(i, (name, f))| BarSeries {
                        name: name.to_string(),
                        color: color(i),
                        values: present.iter().map(|(_, d)| Some(f(d) as f64)).collect(),
                    })
                    .collect(),
            },
            markers: Vec::new(),
            guides: Vec::new(),
        });
        let mut t = Table::new("Connect phases (whole run)", &DIST_HEAD);
        for (n, d) in &present {
            t.push(dist_row(n, d));
        }
        s.tables.push(t);
    }
}

/// Connects per plan phase and for the whole run.
fn counts_table(run: &RunFile) -> Table {
    let mut counts = Table::new(
        "Connects by phase",
        &[
            "phase",
            "attempted",
            "connected",
            "failed",
            "peak connected",
            "failed by kind",
        ],
    );
    let phases = run.phases.iter().map(|p| (p.name.as_str(), &p.stats));
    for (name, st) in phases.chain(std::iter::once(("whole run", &run.run))) {
        let k = &st.connect;
        counts.push(vec![
            name.to_string(),
            count(k.attempted),
            count(k.connected),
            format!(
                "{} ({})",
                count(k.failed),
                format::share(k.failed, k.attempted)
            ),
            count(k.peak_connected),
            k.failed_by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {}", count(*n)))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    counts
}
