//! Section "Heartbeat": how regular the server's pings were, which clients were closed for
//! a ping timeout (muted on purpose, or healthy: false timeouts), and how long the server
//! took to close muted clients.
//!
//! Receives a [`RunFile`]; emits the `heartbeat` [`Section`], or none when no heartbeat
//! scenario ran.
//! Must not: merge muted and false timeouts into one number (they mean opposite things).

use super::Section;
use super::common::{DIST_HEAD, Table, color, dist_row};
use crate::chart::{Axis, BarSeries, Body, Chart, Scale, Unit, derive};
use crate::distribution::Distribution;
use crate::format::{count, format_us, plural};
use crate::schema::RunFile;

/// Most bins of a histogram (fewer for few values: about the square root of the count).
const MAX_BINS: usize = 24;

fn histogram(
    s: &mut Section,
    id: &str,
    title: &str,
    caption: &str,
    what: &str,
    d: &Distribution,
    unit: &str,
) {
    let bins = ((d.count as f64).sqrt().ceil() as usize).clamp(5, MAX_BINS);
    match derive::histogram(d, bins) {
        Ok(bins) if !bins.is_empty() => s.charts.push(Chart {
            id: id.into(),
            title: title.into(),
            caption: caption.into(),
            x: Axis::new(what, Unit::Micros, Scale::Linear),
            y: Axis::new(unit, Unit::Count, Scale::Linear),
            body: Body::Histogram {
                name: unit.into(),
                bins,
            },
            markers: Vec::new(),
            guides: Vec::new(),
        }),
        Ok(_) => {}
        Err(e) => s.notes.push(format!("{title}: {e}")),
    }
}

pub fn section(run: &RunFile) -> Option<Section> {
    let h = run.run.heartbeat.as_ref()?;
    let mut s = Section::new("heartbeat", "Heartbeat");
    let dev = &h.ping_interval_deviation;
    s.lead.push(format!(
        "{} server pings; the ping-to-ping interval strayed from the advertised one by {} at the \
         median, {} at p99 and {} at most.",
        count(h.pings),
        format_us(dev.p50_us),
        format_us(dev.p99_us),
        format_us(dev.max_us)
    ));
    s.lead.push(format!(
        "{} closed by the server{}; false timeouts (healthy clients closed as if they had timed \
         out): {}; clients that saw no ping in time (client-side deadline): {}.",
        plural(h.muted_closes, "muted client was", "muted clients were"),
        h.muted_close_delay
            .as_ref()
            .filter(|d| d.count > 0)
            .map(|d| format!(", {} after muting at the median", format_us(d.p50_us)))
            .unwrap_or_default(),
        count(h.false_timeouts),
        count(h.client_timeouts)
    ));
    histogram(
        &mut s,
        "heartbeat-deviation",
        "Ping interval deviation",
        "How far each ping-to-ping interval was from the advertised ping interval.",
        "|interval − advertised|",
        dev,
        "pings",
    );
    s.charts.push(Chart {
        id: "heartbeat-timeouts".into(),
        title: "Timeouts".into(),
        caption: "Muted clients closed by the server (expected) beside healthy clients closed \
                  like a ping timeout (false) and client-side deadlines."
            .into(),
        x: Axis::new("", Unit::Category, Scale::Linear),
        y: Axis::new("clients", Unit::Count, Scale::Linear),
        body: Body::Bars {
            categories: vec![
                "muted, closed".into(),
                "false timeouts".into(),
                "client deadline".into(),
            ],
            series: vec![BarSeries {
                name: "clients".into(),
                color: color(1),
                values: vec![
                    Some(h.muted_closes as f64),
                    Some(h.false_timeouts as f64),
                    Some(h.client_timeouts as f64),
                ],
            }],
        },
        markers: Vec::new(),
        guides: Vec::new(),
    });
    if let Some(d) = h.muted_close_delay.as_ref().filter(|d| d.count > 0) {
        histogram(
            &mut s,
            "heartbeat-close-delay",
            "Close delay of muted clients",
            "From the moment a client stopped answering pings to the server closing it.",
            "delay",
            d,
            "clients",
        );
    }
    let mut t = Table::new("Heartbeat timings", &DIST_HEAD);
    t.push(dist_row("ping interval deviation", dev));
    if let Some(d) = &h.pong_rtt {
        t.push(dist_row("pong round trip", d));
    }
    if let Some(d) = &h.muted_close_delay {
        t.push(dist_row("muted close delay", d));
    }
    s.tables.push(t);
    Some(s)
}
