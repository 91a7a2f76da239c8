//! Section "Broadcast": fan-out latency as a CDF per phase (rooms of a size per phase), and
//! what happened to every expected delivery: reach, lost, missed while disconnected,
//! recovered, duplicates, reordered, phase by phase through the run.
//!
//! Receives a [`RunFile`]; emits the `broadcast` [`Section`], or none when no broadcast ran.
//! Must not: hide that `delivered + missed_while_disconnected + lost = expected` (the table
//! shows all three).

use super::Section;
use super::common::{DIST_HEAD, Pick, Table, color, dist_row, phases_with};
use crate::chart::{Axis, BarSeries, Body, Chart, Scale, Series, Unit, derive};
use crate::format::{self, count, format_us};
use crate::schema::{BroadcastStats, RunFile};

fn room_size(run: &RunFile, phase: &str) -> Option<String> {
    let p = run.meta.plan.iter().find(|p| p.name == phase)?;
    ["room_size", "room-size", "room_clients"]
        .iter()
        .find_map(|k| p.settings.get(*k))
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

pub fn section(run: &RunFile) -> Option<Section> {
    let b = run.run.broadcast.as_ref()?;
    let mut s = Section::new("broadcast", "Broadcast");
    s.lead.push(format!(
        "{} of {} expected deliveries arrived (reach {}). Lost: {}; missed while the receiver \
         was disconnected: {}; recovered after a reconnect: {}; duplicates: {}; reordered: {}.",
        count(b.delivered),
        count(b.expected),
        format::share(b.delivered, b.expected),
        count(b.lost),
        count(b.missed_while_disconnected),
        count(b.recovered),
        count(b.duplicates),
        count(b.reordered)
    ));
    s.lead.push(format!(
        "One-way latency per delivery: {} at the median, {} at p99, {} at most.",
        format_us(b.latency.p50_us),
        format_us(b.latency.p99_us),
        format_us(b.latency.max_us)
    ));
    let phases: Vec<(&str, &BroadcastStats)> = phases_with(run, |s| s.broadcast.is_some())
        .filter_map(|(n, st)| st.broadcast.as_ref().map(|b| (n, b)))
        .collect();
    let scopes: Vec<(String, &BroadcastStats)> = if phases.is_empty() {
        vec![("whole run".to_string(), b)]
    } else {
        phases
            .iter()
            .map(|(n, b)| {
                let label = match room_size(run, n) {
                    Some(size) => format!("{n} (rooms of {size})"),
                    None => n.to_string(),
                };
                (label, *b)
            })
            .collect()
    };
    let mut curves = Vec::new();
    for (i, (label, st)) in scopes.iter().enumerate() {
        match derive::cdf(&st.latency) {
            Ok(points) if !points.is_empty() => curves.push(Series {
                name: label.clone(),
                color: color(i),
                points,
                dashed: false,
            }),
            Ok(_) => {}
            Err(e) => s.notes.push(format!("broadcast.latency of {label}: {e}")),
        }
    }
    if !curves.is_empty() {
        s.charts.push(Chart {
            id: "broadcast-cdf".into(),
            title: "Fan-out latency".into(),
            caption: "Share of deliveries that arrived within a given one-way latency, one curve \
                      per phase (log latency axis)."
                .into(),
            x: Axis::new("one-way latency", Unit::Micros, Scale::Log),
            y: Axis::new("deliveries", Unit::Percent, Scale::Linear),
            body: Body::Lines { series: curves },
            markers: Vec::new(),
            guides: Vec::new(),
        });
    }
    let kinds: [Pick<BroadcastStats>; 5] = [
        ("lost", |b| b.lost),
        ("missed while disconnected", |b| b.missed_while_disconnected),
        ("recovered", |b| b.recovered),
        ("duplicates", |b| b.duplicates),
        ("reordered", |b| b.reordered),
    ];
    if scopes
        .iter()
        .any(|(_, b)| kinds.iter().any(|(_, f)| f(b) > 0))
    {
        s.charts.push(Chart {
            id: "broadcast-delivery".into(),
            title: "Delivery problems through the run".into(),
            caption: "Per phase, in run order: each kind as a percentage of the deliveries \
                      expected in that phase."
                .into(),
            x: Axis::new("phase", Unit::Category, Scale::Linear),
            y: Axis::new("share of expected", Unit::Percent, Scale::Linear),
            body: Body::Bars {
                categories: if phases.is_empty() {
                    vec!["whole run".into()]
                } else {
                    phases.iter().map(|(n, _)| n.to_string()).collect()
                },
                series: kinds
                    .iter()
                    .enumerate()
                    .map(|(i, (name, f))| BarSeries {
                        name: name.to_string(),
                        color: color(i + 1),
                        values: scopes
                            .iter()
                            .map(|(_, b)| {
                                (b.expected > 0).then(|| f(b) as f64 * 100.0 / b.expected as f64)
                            })
                            .collect(),
                    })
                    .collect(),
            },
            markers: Vec::new(),
            guides: Vec::new(),
        });
    }
    let mut t = Table::new(
        "Deliveries",
        &[
            "phase",
            "published",
            "expected",
            "delivered",
            "reach",
            "lost",
            "missed while disconnected",
            "recovered",
            "duplicates",
            "reordered",
        ],
    );
    let mut d = Table::new("One-way latency", &DIST_HEAD);
    let whole = (phases.len() > 1).then(|| ("whole run".to_string(), b));
    for (name, st) in scopes.iter().cloned().chain(whole) {
        t.push(vec![
            name.clone(),
            count(st.published),
            count(st.expected),
            count(st.delivered),
            format::share(st.delivered, st.expected),
            count(st.lost),
            count(st.missed_while_disconnected),
            count(st.recovered),
            count(st.duplicates),
            count(st.reordered),
        ]);
        d.push(dist_row(&name, &st.latency));
    }
    s.tables.push(t);
    s.tables.push(d);
    Some(s)
}
