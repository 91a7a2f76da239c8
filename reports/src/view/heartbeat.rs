//! Section "Heartbeat": how regular the server's pings were, which clients were closed for
//! a ping timeout (muted on purpose, or healthy: false timeouts), and how long the server
//! took to close muted clients.
//!
//! Receives a [`RunFile`]; emits the `heartbeat` [`Section`], or none when no heartbeat
//! scenario ran.
//! Must not: merge muted and false timeouts into one number (they mean opposite things).

use super::Section;
use super::common::{DIST_HEAD, Table, color, dist_row};
use crate::chart::{Axis, BarSeries, Body, Chart, Marker, Scale, Unit, derive};
use crate::distribution::Distribution;
use crate::format::{count, format_us, plural, seconds};
use crate::schema::{HeartbeatStats, RunFile};

/// Most bins of a histogram (fewer for few values: about the square root of the count).
const MAX_BINS: usize = 24;

/// What a histogram chart shows.
struct Hist<'a> {
    id: &'a str,
    title: &'a str,
    caption: &'a str,
    /// The x axis (a duration).
    what: &'a str,
    /// What is counted (`pings`, `clients`).
    unit: &'a str,
    /// Vertical lines, e.g. the expected close delay.
    markers: Vec<Marker>,
}

fn histogram(s: &mut Section, h: Hist<'_>, d: &Distribution) {
    let bins = ((d.count as f64).sqrt().ceil() as usize).clamp(5, MAX_BINS);
    match derive::histogram(d, bins) {
        Ok(bins) if !bins.is_empty() => s.charts.push(Chart {
            id: h.id.into(),
            title: h.title.into(),
            caption: h.caption.into(),
            x: Axis::new(h.what, Unit::Micros, Scale::Linear),
            y: Axis::new(h.unit, Unit::Count, Scale::Linear),
            body: Body::Histogram {
                name: h.unit.into(),
                bins,
            },
            markers: h.markers,
            guides: Vec::new(),
        }),
        Ok(_) => {}
        Err(e) => s.notes.push(format!("{}: {e}", h.title)),
    }
}

pub fn section(run: &RunFile) -> Option<Section> {
    let h = run.run.heartbeat.as_ref()?;
    let mut s = Section::new("heartbeat", "Heartbeat");
    lead(&mut s, h);
    let dev = &h.ping_interval_deviation;
    histogram(
        &mut s,
        Hist {
            id: "heartbeat-deviation",
            title: "Ping interval deviation",
            caption: "How far each ping-to-ping interval was from the advertised ping interval.",
            what: "|interval − advertised|",
            unit: "pings",
            markers: Vec::new(),
        },
        dev,
    );
    s.charts.push(timeouts_chart(h));
    close_delay_chart(&mut s, h);
    let mut t = Table::new("Heartbeat timings", &DIST_HEAD);
    if let Some(d) = &h.ping_interval {
        t.push(dist_row("ping interval", d));
    }
    t.push(dist_row("ping interval deviation", dev));
    if let Some(d) = &h.pong_rtt {
        t.push(dist_row("pong round trip", d));
    }
    if let Some(d) = &h.muted_close_delay {
        t.push(dist_row("muted close delay (from muting)", d));
    }
    if let Some(d) = &h.muted_close_after_last_pong {
        t.push(dist_row("muted close delay (from last pong)", d));
    }
    s.tables.push(t);
    Some(s)
}

/// Pings and their deviation; what happened to muted and healthy clients.
fn lead(s: &mut Section, h: &HeartbeatStats) {
    let dev = &h.ping_interval_deviation;
    let advertised = match (h.advertised_ping_interval_ms, h.advertised_ping_timeout_ms) {
        (Some(i), Some(t)) => format!(
            " (advertised: ping every {}, timeout {})",
            seconds(i as f64 / 1000.0),
            seconds(t as f64 / 1000.0)
        ),
        (Some(i), None) => format!(" (advertised: ping every {})", seconds(i as f64 / 1000.0)),
        _ => String::new(),
    };
    s.lead.push(format!(
        "{} server pings{advertised}; the ping-to-ping interval strayed from the advertised one \
         by {} at the median, {} at p99 and {} at most.",
        count(h.pings),
        format_us(dev.p50_us),
        format_us(dev.p99_us),
        format_us(dev.max_us)
    ));
    let muted = if h.muted > 0 {
        format!(
            "Of {} that stopped answering pings, {} closed by the server",
            plural(h.muted, "muted client", "muted clients"),
            count(h.muted_closes)
        )
    } else {
        format!(
            "{} closed by the server",
            plural(h.muted_closes, "muted client was", "muted clients were")
        )
    };
    s.lead.push(format!(
        "{muted}{}{}; false timeouts (healthy clients closed as if they had timed out): {}; \
         clients that saw no ping in time (client-side deadline): {}.",
        h.muted_close_delay
            .as_ref()
            .filter(|d| d.count > 0)
            .map(|d| format!(", {} after muting at the median", format_us(d.p50_us)))
            .unwrap_or_default(),
        if h.muted_never_closed > 0 {
            format!(" ({} never closed)", count(h.muted_never_closed))
        } else {
            String::new()
        },
        count(h.false_timeouts),
        count(h.client_timeouts)
    ));
}

/// Muted clients closed (and never closed) beside false timeouts and client deadlines.
fn timeouts_chart(h: &HeartbeatStats) -> Chart {
    let mut categories = vec!["muted, closed".to_string()];
    let mut values = vec![Some(h.muted_closes as f64)];
    if h.muted_never_closed > 0 {
        categories.push("muted, never closed".into());
        values.push(Some(h.muted_never_closed as f64));
    }
    categories.extend(["false timeouts".to_string(), "client deadline".to_string()]);
    values.extend([
        Some(h.false_timeouts as f64),
        Some(h.client_timeouts as f64),
    ]);
    Chart {
        id: "heartbeat-timeouts".into(),
        title: "Timeouts".into(),
        caption: "Muted clients closed by the server (expected) beside healthy clients closed \
                  like a ping timeout (false) and client-side deadlines."
            .into(),
        x: Axis::new("", Unit::Category, Scale::Linear),
        y: Axis::new("clients", Unit::Count, Scale::Linear),
        body: Body::Bars {
            categories,
            series: vec![BarSeries {
                name: "clients".into(),
                color: color(1),
                values,
            }],
        },
        markers: Vec::new(),
        guides: Vec::new(),
    }
}

/// How long the server took to close muted clients (from the last pong when known).
fn close_delay_chart(s: &mut Section, h: &HeartbeatStats) {
    let expected_close = match (h.advertised_ping_interval_ms, h.advertised_ping_timeout_ms) {
        (Some(i), Some(t)) => vec![Marker {
            at: i.saturating_add(t).saturating_mul(1000) as f64,
            label: "pingInterval + pingTimeout".into(),
        }],
        _ => Vec::new(),
    };
    if let Some(d) = h
        .muted_close_after_last_pong
        .as_ref()
        .filter(|d| d.count > 0)
    {
        histogram(
            s,
            Hist {
                id: "heartbeat-close-delay",
                title: "Close delay of muted clients",
                caption: "From a muted client's last answered ping to the server closing it; a \
                          server that follows its own settings closes near pingInterval + \
                          pingTimeout.",
                what: "last pong to close",
                unit: "clients",
                markers: expected_close,
            },
            d,
        );
    } else if let Some(d) = h.muted_close_delay.as_ref().filter(|d| d.count > 0) {
        histogram(
            s,
            Hist {
                id: "heartbeat-close-delay",
                title: "Close delay of muted clients",
                caption: "From the moment a client stopped answering pings to the server closing it.",
                what: "delay",
                unit: "clients",
                markers: Vec::new(),
            },
            d,
        );
    }
}
