//! Section "Latency": echo round trips as percentile spectra (`latency` from the intended
//! send instant beside `service` from the actual send), percentiles over time, and
//! throughput over time.
//!
//! Receives a [`RunFile`]; emits the `latency` [`Section`], or none when no echo ran.
//! Must not: show percentiles without the timeouts beside them (a percentile covers only
//! the replies that arrived).

use super::Section;
use super::common::{
    DIST_HEAD, Pick, Table, color, dist_row, phase_markers, phases_with, time_axis,
};
use crate::chart::{Axis, Body, Chart, Scale, Series, Unit, derive};
use crate::format::{self, count, format_us};
use crate::schema::{EchoStats, RunFile};

pub fn section(run: &RunFile) -> Option<Section> {
    let e = run.run.echo.as_ref()?;
    let mut s = Section::new("latency", "Latency and throughput");
    s.lead.push(format!(
        "Round trips took {} at the median, {} at p99 and {} at most, counted from the instant \
         each message was meant to be sent (latency); from the actual send (service) p99 was {}.",
        format_us(e.latency.p50_us),
        format_us(e.latency.p99_us),
        format_us(e.latency.max_us),
        format_us(e.service.p99_us)
    ));
    s.lead.push(format!(
        "{} sent, {} answered in time, {} timed out, {} unanswered at the stop, {} late; \
         percentiles cover the answered ones.",
        count(e.sent),
        count(e.received),
        count(e.timeouts),
        count(e.unanswered_at_stop),
        count(e.late)
    ));
    spectrum_chart(&mut s, e);
    percentiles_chart(&mut s, run);
    throughput_chart(&mut s, run);
    tables(&mut s, run);
    Some(s)
}

/// Every percentile of `latency` beside `service`.
fn spectrum_chart(s: &mut Section, e: &EchoStats) {
    let mut spectra = Vec::new();
    for (i, (name, d)) in [("latency", &e.latency), ("service", &e.service)]
        .into_iter()
        .enumerate()
    {
        match derive::spectrum(d) {
            Ok(points) if !points.is_empty() => spectra.push(Series {
                name: name.into(),
                color: color(i),
                points,
                dashed: i == 1,
            }),
            Ok(_) => {}
            Err(err) => s.notes.push(format!("echo.{name}: {err}")),
        }
    }
    if !spectra.is_empty() {
        s.charts.push(Chart {
            id: "latency-spectrum".into(),
            title: "Latency by percentile".into(),
            caption: "Every percentile of the round trip, from the intended send (latency) and \
                      from the actual send (service, dashed); the gap between them is time spent \
                      waiting to send. Both axes are logarithmic."
                .into(),
            x: Axis::new("percentile", Unit::Percentile, Scale::PercentileLog),
            y: Axis::new("round trip", Unit::Micros, Scale::Log),
            body: Body::Lines { series: spectra },
            markers: Vec::new(),
            guides: Vec::new(),
        });
    }
}

/// Per-second percentiles of `latency` (log axis when they span a wide range).
fn percentiles_chart(s: &mut Section, run: &RunFile) {
    let stats: [Pick<crate::SecondPoint, Option<u64>>; 4] = [
        ("p50", |p| p.latency_p50_us),
        ("p90", |p| p.latency_p90_us),
        ("p99", |p| p.latency_p99_us),
        ("max", |p| p.latency_max_us),
    ];
    let over_time: Vec<Series> = stats
        .iter()
        .enumerate()
        .map(|(i, (name, f))| Series {
            name: name.to_string(),
            color: color(i),
            points: run
                .series
                .iter()
                .filter_map(|p| f(p).map(|v| (p.second as f64, v as f64)))
                .collect(),
            dashed: false,
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if !over_time.is_empty() {
        let lo = over_time[0]
            .points
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min);
        let hi = over_time
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let scale = if lo > 0.0 && hi / lo > 20.0 {
            Scale::Log
        } else {
            Scale::Linear
        };
        s.charts.push(Chart {
            id: "latency-over-time".into(),
            title: "Latency percentiles over time".into(),
            caption: "p50, p90, p99 and max of the round trips answered in each second (latency, \
                      from the intended send)."
                .into(),
            x: time_axis(),
            y: Axis::new("round trip", Unit::Micros, scale),
            body: Body::Lines { series: over_time },
            markers: phase_markers(run),
            guides: Vec::new(),
        });
    }
}

/// Sent, received (and timeouts) per second.
fn throughput_chart(s: &mut Section, run: &RunFile) {
    if run.series.iter().any(|p| p.sent > 0 || p.received > 0) {
        let mut series = vec![
            Series {
                name: "sent".into(),
                color: color(0),
                points: run
                    .series
                    .iter()
                    .map(|p| (p.second as f64, p.sent as f64))
                    .collect(),
                dashed: true,
            },
            Series {
                name: "received".into(),
                color: color(2),
                points: run
                    .series
                    .iter()
                    .map(|p| (p.second as f64, p.received as f64))
                    .collect(),
                dashed: false,
            },
        ];
        if run.series.iter().any(|p| p.timeouts > 0) {
            series.push(Series {
                name: "timeouts".into(),
                color: color(1),
                points: run
                    .series
                    .iter()
                    .map(|p| (p.second as f64, p.timeouts as f64))
                    .collect(),
                dashed: false,
            });
        }
        s.charts.push(Chart {
            id: "throughput-over-time".into(),
            title: "Throughput over time".into(),
            caption: "Messages sent (dashed) and replies received in time, per second; timeouts \
                      when there were any."
                .into(),
            x: time_axis(),
            y: Axis::new("messages per second", Unit::Rate, Scale::Linear),
            body: Body::Lines { series },
            markers: phase_markers(run),
            guides: Vec::new(),
        });
    }
}

/// Round-trip percentiles and message counts, per echo phase and for the whole run.
fn tables(s: &mut Section, run: &RunFile) {
    let mut dist = Table::new("Round trips", &DIST_HEAD);
    let mut counts = Table::new(
        "Messages",
        &[
            "phase",
            "sent",
            "received",
            "timeouts",
            "late",
            "unanswered at stop",
            "received/s",
        ],
    );
    let echo_phases: Vec<_> = phases_with(run, |s| s.echo.is_some()).collect();
    let scopes = echo_phases
        .iter()
        .copied()
        .chain((echo_phases.len() != 1).then_some(("whole run", &run.run)));
    for (name, st) in scopes {
        let Some(e) = &st.echo else { continue };
        dist.push(dist_row(&format!("{name} latency"), &e.latency));
        dist.push(dist_row(&format!("{name} service"), &e.service));
        let secs = st.duration_ms as f64 / 1000.0;
        counts.push(vec![
            name.to_string(),
            count(e.sent),
            count(e.received),
            format!(
                "{} ({})",
                count(e.timeouts),
                format::share(e.timeouts, e.sent)
            ),
            count(e.late),
            count(e.unanswered_at_stop),
            if secs > 0.0 {
                format::rate(e.received as f64 / secs)
            } else {
                "-".into()
            },
        ]);
    }
    s.tables.push(dist);
    s.tables.push(counts);
}
