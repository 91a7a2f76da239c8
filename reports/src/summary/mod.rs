//! Short summaries of a run for the terminal (`summary_table`) and for `--json`
//! (`summary_json`).
//!
//! Receives a [`RunFile`]; emits a plain-text table or a compact JSON value with the figures
//! a user checks first (per phase: clients, failures, throughput, latency percentiles,
//! timeouts; thresholds; whether the swarm was saturated).
//! Must not: print (the binary does), or show numbers the run file does not hold.

use std::fmt::Write as _;

use crate::schema::{RunFile, Scenario, Section};

mod json;
#[cfg(test)]
mod tests;

pub use json::summary_json;

/// A duration in µs for humans: `850us`, `4.10ms`, `1.20s`.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// Bytes for humans: `512 B`, `20.0 MiB`.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// Columns of the table.
const COLUMNS: usize = 12;

struct Row {
    cells: [String; COLUMNS],
}

fn row(name: &str, scenario: &str, s: &Section) -> Row {
    let secs = s.duration_ms as f64 / 1000.0;
    let (sent, recv, timeouts, rate, p50, p99, max) = match &s.echo {
        Some(e) => (
            e.sent.to_string(),
            e.received.to_string(),
            e.timeouts.to_string(),
            if secs > 0.0 {
                format!("{:.0}", e.received as f64 / secs)
            } else {
                "-".into()
            },
            format_us(e.latency.p50_us),
            format_us(e.latency.p99_us),
            format_us(e.latency.max_us),
        ),
        None => (
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ),
    };
    let (p50, p99, max) = if s.echo.is_none() {
        match &s.connect.phases.total {
            Some(d) if d.count > 0 => (
                format_us(d.p50_us),
                format_us(d.p99_us),
                format_us(d.max_us),
            ),
            _ => (p50, p99, max),
        }
    } else {
        (p50, p99, max)
    };
    Row {
        cells: [
            name.to_string(),
            scenario.to_string(),
            s.connect.peak_connected.to_string(),
            s.connect.failed.to_string(),
            s.outage
                .as_ref()
                .map_or(0, |o| o.connections_lost)
                .to_string(),
            sent,
            recv,
            timeouts,
            rate,
            p50,
            p99,
            max,
        ],
    }
}

/// A short text table: one row per phase and one for the whole run, then thresholds and
/// swarm health. Percentiles are echo `latency` (connect `total` for phases without echo).
pub fn summary_table(run: &RunFile) -> String {
    let m = &run.meta;
    let mut out = String::new();
    let secs = m.ended_at_unix_ms.saturating_sub(m.started_at_unix_ms) as f64 / 1000.0;
    let _ = writeln!(
        out,
        "{} {} ({}/{}), {:.1}s, status {}",
        Scenario::join(&m.scenarios, "+"),
        m.target_url,
        m.protocol,
        m.transport,
        secs,
        serde_json::to_value(m.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    );
    phase_rows(&mut out, run);
    if let Some(e) = run
        .run
        .echo
        .as_ref()
        .filter(|e| e.late > 0 || e.unanswered_at_stop > 0)
    {
        let _ = writeln!(
            out,
            "late replies: {}, unanswered at stop: {}",
            e.late, e.unanswered_at_stop
        );
    }
    outage_line(&mut out, &run.run);
    part_two_lines(&mut out, &run.run);
    let errors: u64 = run.run.errors.values().sum();
    if errors > 0 {
        let list: Vec<String> = run
            .run
            .errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "errors: {}", list.join(", "));
    }
    swarm_lines(&mut out, run);
    threshold_lines(&mut out, run);
    out
}

/// The table itself: a header, one row per phase and one for the whole run, aligned.
fn phase_rows(out: &mut String, run: &RunFile) {
    let header = [
        "phase",
        "scenario",
        "peak_conn",
        "conn_fail",
        "disconn",
        "sent",
        "received",
        "timeouts",
        "recv/s",
        "p50",
        "p99",
        "max",
    ];
    let mut rows = vec![Row {
        cells: header.map(String::from),
    }];
    for p in &run.phases {
        rows.push(row(&p.name, &p.scenario, &p.stats));
    }
    rows.push(row("(all)", "", &run.run));
    let mut widths = [0usize; COLUMNS];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(&r.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.cells.iter().zip(widths).enumerate() {
            if i < 2 {
                let _ = write!(line, "{c:<w$}  ");
            } else {
                let _ = write!(line, "{c:>w$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The swarm's own resources and send lag, with the saturation and dropped-samples warnings.
fn swarm_lines(out: &mut String, run: &RunFile) {
    let h = &run.health.summary;
    let _ = writeln!(
        out,
        "swarm: cpu max {:.0}% (mean {:.0}%, {} cores), rss max {}, sched lag max {}{}{}{}",
        h.cpu_percent_max,
        h.cpu_percent_mean,
        run.health.cores,
        format_bytes(h.rss_bytes_max),
        format_us(h.sched_lag_max_us),
        if h.steal_percent_max > 0.0 {
            format!(", machine steal max {:.1}%", h.steal_percent_max)
        } else {
            String::new()
        },
        run.run
            .send_lag
            .as_ref()
            .filter(|d| d.count > 0)
            .map_or(String::new(), |d| format!(
                ", send lag p50 {} p99 {} max {}",
                format_us(d.p50_us),
                format_us(d.p99_us),
                format_us(d.max_us)
            )),
        if h.saturated {
            format!(
                " -- SATURATED ({}): these numbers describe the swarm, not the server",
                h.saturated_by.join(", ")
            )
        } else {
            String::new()
        }
    );
    if h.samples_dropped > 0 {
        let _ = writeln!(
            out,
            "swarm: {} samples DROPPED: the recorder fell behind and the counts above are short",
            h.samples_dropped
        );
    }
}

/// One PASS/FAIL line per threshold.
fn threshold_lines(out: &mut String, run: &RunFile) {
    for t in &run.thresholds {
        let observed = t.observed.map_or_else(
            || "n/a".to_string(),
            |v| format!("{}{}", trim_float(v), t.unit),
        );
        let note = t
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}  observed {observed}{note}",
            if t.pass { "PASS" } else { "FAIL" },
            t.expr
        );
    }
}

/// The outage line, when connections were lost or reconnects tried: what `disconn` counts,
/// how clients came back, and the echo sends that could not happen meanwhile.
fn outage_line(out: &mut String, s: &Section) {
    let Some(o) = &s.outage else { return };
    let restore = if o.restore.count > 0 {
        format!(
            " (restore p50 {} max {})",
            format_us(o.restore.p50_us),
            format_us(o.restore.max_us)
        )
    } else {
        String::new()
    };
    let when = match (o.first_loss_offset_ms, o.last_restore_offset_ms) {
        (Some(a), Some(b)) => format!(", from {:.1}s to {:.1}s", a as f64 / 1e3, b as f64 / 1e3),
        (Some(a), None) => format!(", from {:.1}s", a as f64 / 1e3),
        _ => String::new(),
    };
    let _ = write!(
        out,
        "outage: {} connections lost (disconn), {} restored{restore}, {} not restored, {} reconnect attempts ({} failed), at most {} clients away at once{when}",
        o.connections_lost,
        o.restored,
        o.clients_not_restored,
        o.reconnect_attempts,
        o.reconnect_failures,
        o.peak_clients_away,
    );
    match &s.echo {
        Some(e) => {
            let _ = writeln!(
                out,
                "; echo: planned {} = sent {} + skipped while disconnected {}",
                e.planned, e.sent, e.skipped_disconnected
            );
        }
        None => {
            let _ = writeln!(out);
        }
    }
}

/// One line each for the broadcast, heartbeat and churn sections of the whole run, when
/// present: the exact delivery counts, heartbeat verdicts and reconnects.
fn part_two_lines(out: &mut String, s: &Section) {
    if let Some(b) = &s.broadcast {
        let reach = if b.expected > 0 {
            format!("{:.6}", b.delivered as f64 / b.expected as f64)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "broadcast: published {}, expected {}, delivered {} (recovered {}), missed while disconnected {}, lost {}, reach {reach}, duplicates {}, reordered {}, fan-out p50 {} p99 {} max {}",
            b.published,
            b.expected,
            b.delivered,
            b.recovered,
            b.missed_while_disconnected,
            b.lost,
            b.duplicates,
            b.reordered,
            format_us(b.latency.p50_us),
            format_us(b.latency.p99_us),
            format_us(b.latency.max_us),
        );
        if b.ambiguous > 0 {
            let _ = writeln!(
                out,
                "broadcast ambiguous: {} not received and sent too near a join or leave for \
                 the hosts' clocks to say (not in expected)",
                b.ambiguous
            );
        }
    }
    if let Some(h) = &s.heartbeat {
        let _ = writeln!(
            out,
            "heartbeat: {} pings, interval deviation p50 {} p99 {}, muted {} (closed {}, never closed {}), false timeouts {}, client-side timeouts {}",
            h.pings,
            format_us(h.ping_interval_deviation.p50_us),
            format_us(h.ping_interval_deviation.p99_us),
            h.muted,
            h.muted_closes,
            h.muted_never_closed,
            h.false_timeouts,
            h.client_timeouts,
        );
    }
    if let Some(c) = &s.churn {
        let _ = writeln!(
            out,
            "churn: {} drops, {} reconnects ({} failed), reconnect p50 {} p99 {}, recovered sessions {}, messages sent while away {}",
            c.drops,
            c.reconnects,
            c.reconnect_failures,
            format_us(c.reconnect.p50_us),
            format_us(c.reconnect.p99_us),
            c.recovered_sessions,
            c.away_messages,
        );
    }
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
