//! Section "Broadcast": fan-out latency as a CDF per room size (from `by_room_size`, or per
//! phase when the run has no room sizes), what happened to every expected delivery (reach,
//! lost, missed while disconnected, recovered, duplicates, reordered) per room size or
//! phase, and deliveries per second through the run.
//!
//! Receives a [`RunFile`]; emits the `broadcast` [`Section`], or none when no broadcast ran.
//! Must not: hide that `delivered + missed_while_disconnected + lost = expected` (the table
//! shows all three).

use super::Section;
use super::common::{
    DIST_HEAD, Pick, Table, color, dist_row, phase_markers, phases_with, time_axis,
};
use crate::chart::{Axis, BarSeries, Body, Chart, Scale, Series, Unit, derive};
use crate::format::{self, count, format_us};
use crate::schema::{BroadcastStats, RoomSizeStats, RunFile};

fn room_size(run: &RunFile, phase: &str) -> Option<String> {
    let p = run.meta.plan.iter().find(|p| p.name == phase)?;
    p.settings.room_size.map(|n| n.to_string())
}

/// What every part of the section is built from.
struct Scopes<'a> {
    /// The whole run's broadcast counts.
    whole: &'a BroadcastStats,
    /// Phases with broadcast data, in run order.
    phases: Vec<(&'a str, &'a BroadcastStats)>,
    /// `rooms of N`, smallest first (empty when the run has no room sizes).
    rooms: Vec<(String, &'a RoomSizeStats)>,
    /// The phases labelled with their room size, or the whole run when no phase has data.
    labelled: Vec<(String, &'a BroadcastStats)>,
}

impl<'a> Scopes<'a> {
    fn new(run: &'a RunFile, whole: &'a BroadcastStats) -> Scopes<'a> {
        let phases: Vec<(&str, &BroadcastStats)> = phases_with(run, |s| s.broadcast.is_some())
            .filter_map(|(n, st)| st.broadcast.as_ref().map(|b| (n, b)))
            .collect();
        let labelled = if phases.is_empty() {
            vec![("whole run".to_string(), whole)]
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
        Scopes {
            whole,
            phases,
            rooms: room_sizes(whole),
            labelled,
        }
    }
}

pub fn section(run: &RunFile) -> Option<Section> {
    let b = run.run.broadcast.as_ref()?;
    let mut s = Section::new("broadcast", "Broadcast");
    s.lead = lead(b);
    let sc = Scopes::new(run, b);
    cdf_chart(&mut s, &sc);
    problems_chart(&mut s, &sc);
    if run.series.iter().any(|p| p.delivered > 0) {
        s.charts.push(over_time_chart(run));
    }
    tables(&mut s, &sc);
    if let Some(w) = clock_warning(run, b) {
        s.notes.push(w);
    }
    if b.ambiguous > 0 {
        s.notes.push(format!(
            "Not counted as expected: {} messages a subscriber did not receive that were sent \
             within the clocks' uncertainty of one of its joins or leaves (its publisher on \
             another host), so that nobody can say whether it should have had them.",
            count(b.ambiguous)
        ));
    }
    if b.foreign > 0 || b.outside_membership > 0 {
        s.notes.push(format!(
            "Not counted as deliveries: {} messages on the broadcast path that this run did not \
             send, {} received before the receiver's join ack.",
            count(b.foreign),
            count(b.outside_membership)
        ));
    }
    Some(s)
}

/// When a split room's publishers and subscribers sat on different hosts, their one-way
/// latency is read across two clocks, corrected by the offsets the coordinator measured;
/// a bound above a tenth of the fan-out p50 makes that p50 unreliable, and the reader is
/// told so.
fn clock_warning(run: &RunFile, b: &BroadcastStats) -> Option<String> {
    let hosts: std::collections::BTreeSet<&str> =
        run.workers.iter().map(|w| w.host.as_str()).collect();
    if !run.meta.split_rooms || hosts.len() < 2 {
        return None;
    }
    let worst = run
        .workers
        .iter()
        .max_by(|a, b| a.clock_offset_bound_us.total_cmp(&b.clock_offset_bound_us))?;
    let p50 = b.latency.p50_us as f64;
    (worst.clock_offset_bound_us > 0.1 * p50).then(|| {
        format!(
            "Clocks: this run's rooms spanned {} hosts, so one-way latency is read across two \
             clocks, corrected by their measured offsets. Worker {} ({}) knows its offset only \
             to within ±{:.0} µs, more than a tenth of the fan-out p50 ({}): read the \
             latency figures with that margin.",
            hosts.len(),
            worst.index,
            worst.host,
            worst.clock_offset_bound_us,
            format_us(b.latency.p50_us)
        )
    })
}

fn lead(b: &BroadcastStats) -> Vec<String> {
    vec![
        format!(
            "{} of {} expected deliveries arrived (reach {}). Lost: {}; missed while the \
             receiver was disconnected: {}; recovered after a reconnect: {}; duplicates: {}; \
             reordered: {}.",
            count(b.delivered),
            count(b.expected),
            format::share(b.delivered, b.expected),
            count(b.lost),
            count(b.missed_while_disconnected),
            count(b.recovered),
            count(b.duplicates),
            count(b.reordered)
        ),
        format!(
            "One-way latency per delivery: {} at the median, {} at p99, {} at most.",
            format_us(b.latency.p50_us),
            format_us(b.latency.p99_us),
            format_us(b.latency.max_us)
        ),
    ]
}

/// Fan-out latency CDF, one curve per room size (per phase when there are none).
fn cdf_chart(s: &mut Section, sc: &Scopes) {
    let rooms = &sc.rooms;
    let scopes = &sc.labelled;
    let mut curves = Vec::new();
    let latencies: Vec<(String, &crate::Distribution)> = if rooms.is_empty() {
        scopes
            .iter()
            .map(|(l, st)| (l.clone(), &st.latency))
            .collect()
    } else {
        rooms.iter().map(|(l, r)| (l.clone(), &r.latency)).collect()
    };
    for (i, (label, d)) in latencies.iter().enumerate() {
        match derive::cdf(d) {
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
            caption: if rooms.is_empty() {
                "Share of deliveries that arrived within a given one-way latency, one curve per \
                 phase (log latency axis)."
            } else {
                "Share of deliveries that arrived within a given one-way latency, one curve per \
                 room size (log latency axis)."
            }
            .into(),
            x: Axis::new("one-way latency", Unit::Micros, Scale::Log),
            y: Axis::new("deliveries", Unit::Percent, Scale::Linear),
            body: Body::Lines { series: curves },
            markers: Vec::new(),
            guides: Vec::new(),
        });
    }
}

/// Delivery problems as shares of the expected deliveries, per room size (or phase).
fn problems_chart(s: &mut Section, sc: &Scopes) {
    let (rooms, scopes, phases) = (&sc.rooms, &sc.labelled, &sc.phases);
    let kinds: [Pick<BroadcastStats>; 5] = [
        ("lost", |b| b.lost),
        ("missed while disconnected", |b| b.missed_while_disconnected),
        ("recovered", |b| b.recovered),
        ("duplicates", |b| b.duplicates),
        ("reordered", |b| b.reordered),
    ];
    let problem_rows: Vec<(String, [u64; 5], u64)> = if rooms.is_empty() {
        let names = phases
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(std::iter::repeat("whole run".to_string()));
        scopes
            .iter()
            .zip(names)
            .map(|((_, b), name)| (name, kinds.map(|(_, f)| f(b)), b.expected))
            .collect()
    } else {
        rooms
            .iter()
            .map(|(l, r)| {
                let v = [
                    r.lost,
                    r.missed_while_disconnected,
                    r.recovered,
                    r.duplicates,
                    r.reordered,
                ];
                (l.clone(), v, r.expected)
            })
            .collect()
    };
    if problem_rows
        .iter()
        .any(|(_, v, _)| v.iter().any(|n| *n > 0))
    {
        s.charts.push(Chart {
            id: "broadcast-delivery".into(),
            title: if rooms.is_empty() {
                "Delivery problems through the run"
            } else {
                "Delivery problems by room size"
            }
            .into(),
            caption: if rooms.is_empty() {
                "Per phase, in run order: each kind as a percentage of the deliveries expected in \
                 that phase."
            } else {
                "Per room size: each kind as a percentage of the deliveries expected in rooms of \
                 that size."
            }
            .into(),
            x: Axis::new(
                if rooms.is_empty() {
                    "phase"
                } else {
                    "room size"
                },
                Unit::Category,
                Scale::Linear,
            ),
            y: Axis::new("share of expected", Unit::Percent, Scale::Linear),
            body: Body::Bars {
                categories: problem_rows.iter().map(|(n, _, _)| n.clone()).collect(),
                series: kinds
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| BarSeries {
                        name: name.to_string(),
                        color: color(i + 1),
                        values: problem_rows
                            .iter()
                            .map(|(_, v, expected)| {
                                (*expected > 0).then(|| v[i] as f64 * 100.0 / *expected as f64)
                            })
                            .collect(),
                    })
                    .collect(),
            },
            markers: Vec::new(),
            guides: Vec::new(),
        });
    }
}

/// Broadcast deliveries per second through the run.
fn over_time_chart(run: &RunFile) -> Chart {
    Chart {
        id: "broadcast-over-time".into(),
        title: "Deliveries over time".into(),
        caption: "Broadcast deliveries (first arrivals) per second, all receivers together.".into(),
        x: time_axis(),
        y: Axis::new("deliveries per second", Unit::Rate, Scale::Linear),
        body: Body::Lines {
            series: vec![Series {
                name: "delivered".into(),
                color: color(2),
                points: run
                    .series
                    .iter()
                    .map(|p| (p.second as f64, p.delivered as f64))
                    .collect(),
                dashed: false,
            }],
        },
        markers: phase_markers(run),
        guides: Vec::new(),
    }
}

/// The deliveries table (per phase), by room size, and one-way latency.
fn tables(s: &mut Section, sc: &Scopes) {
    let (rooms, b, scopes, phases) = (&sc.rooms, sc.whole, &sc.labelled, &sc.phases);
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
        if rooms.is_empty() || name == "whole run" {
            d.push(dist_row(&name, &st.latency));
        }
    }
    s.tables.push(t);
    if !rooms.is_empty() {
        s.tables.push(room_table(rooms, &mut d));
    }
    if let Some(sv) = &b.service {
        d.push(dist_row("whole run, from the actual send (service)", sv));
    }
    s.tables.push(d);
}

/// The by-room-size table; adds each size's latency row to `d`.
fn room_table(rooms: &[(String, &RoomSizeStats)], d: &mut Table) -> Table {
    let mut r = Table::new(
        "By room size",
        &[
            "room size",
            "expected",
            "delivered",
            "reach",
            "lost",
            "missed while disconnected",
            "recovered",
            "duplicates",
            "reordered",
            "outside membership",
        ],
    );
    for (label, st) in rooms {
        r.push(vec![
            label.clone(),
            count(st.expected),
            count(st.delivered),
            format::share(st.delivered, st.expected),
            count(st.lost),
            count(st.missed_while_disconnected),
            count(st.recovered),
            count(st.duplicates),
            count(st.reordered),
            count(st.outside_membership),
        ]);
        d.push(dist_row(label, &st.latency));
    }
    r
}

/// Room sizes of the whole run, smallest first, labelled `rooms of N`.
fn room_sizes(b: &BroadcastStats) -> Vec<(String, &RoomSizeStats)> {
    let mut v: Vec<(u64, &str, &RoomSizeStats)> = b
        .by_room_size
        .iter()
        .map(|(k, r)| (k.parse().unwrap_or(u64::MAX), k.as_str(), r))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    v.into_iter()
        .map(|(_, k, r)| (format!("rooms of {k}"), r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::WorkerResult;

    fn worker(index: u32, host: &str, bound_us: f64) -> WorkerResult {
        WorkerResult {
            index,
            host: host.into(),
            clock_offset_bound_us: bound_us,
            ..Default::default()
        }
    }

    /// The clock warning: only for split rooms over several hosts, and only when an
    /// offset's bound is above a tenth of the fan-out p50.
    #[test]
    fn a_loose_clock_across_hosts_is_said() {
        let mut run = crate::fixture::example_full_run(50);
        let p50 = run
            .run
            .broadcast
            .as_ref()
            .expect("broadcast")
            .latency
            .p50_us as f64;
        assert!(p50 > 0.0);
        let loose = p50 * 0.2;
        run.workers = vec![worker(0, "a", 5.0), worker(1, "b", loose)];
        let warned = |run: &RunFile| {
            section(run)
                .expect("broadcast")
                .notes
                .iter()
                .any(|n| n.starts_with("Clocks:"))
        };
        assert!(!warned(&run), "rooms whole: no latency crosses clocks");
        run.meta.split_rooms = true;
        assert!(warned(&run));
        let note = clock_warning(&run, run.run.broadcast.as_ref().unwrap()).unwrap();
        assert!(note.contains("Worker 1 (b)"), "{note}");
        run.workers[1].clock_offset_bound_us = p50 * 0.05;
        assert!(!warned(&run), "a tight bound");
        run.workers[1] = worker(1, "a", loose);
        assert!(!warned(&run), "one host: one clock");
    }
}
