//! The plain `report.html` renderer (the report issue replaces it with a richer one).
//!
//! Receives a [`RunFile`]; builds one view-model ([`ReportModel`]) of display strings and
//! renders it through a minijinja template with HTML auto-escaping, into one self-contained
//! file (no script, style or font fetched from anywhere).
//! Must not: assemble HTML with `format!`, or emit any string from the run unescaped.

use serde::Serialize;

use crate::schema::{ConnectPhaseTimes, RunFile, RunStatus, Section};
use crate::summary::{format_bytes, format_us};

const TEMPLATE: &str = include_str!("../templates/report.html");

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the HTML report: {0}")]
pub struct RenderError(#[from] minijinja::Error);

/// Everything the template shows, as display-ready text.
#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    pub title: String,
    pub status: String,
    pub status_ok: bool,
    pub interrupted: bool,
    pub saturated: Option<String>,
    pub thresholds: Vec<ThresholdRow>,
    pub facts: Vec<(String, String)>,
    pub plan: Vec<Vec<String>>,
    pub phases: Vec<PhaseView>,
    pub health: Vec<Vec<String>>,
    pub series: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRow {
    pub expr: String,
    pub pass: bool,
    pub observed: String,
}

/// One phase (or the whole run) as tables.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseView {
    pub name: String,
    pub scenario: String,
    pub counts: Vec<(String, String)>,
    /// Rows: name, count, min, p50, p90, p99, p99.9, max, mean.
    pub distributions: Vec<Vec<String>>,
    pub errors: Vec<(String, String)>,
    pub disconnects: Vec<(String, String)>,
}

fn unix_ms_to_utc(ms: u64) -> String {
    // Civil date from days since 1970-01-01 (proleptic Gregorian), UTC.
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn dist_row(name: &str, d: &crate::Distribution) -> Vec<String> {
    vec![
        name.to_string(),
        d.count.to_string(),
        format_us(d.min_us),
        format_us(d.p50_us),
        format_us(d.p90_us),
        format_us(d.p99_us),
        format_us(d.p999_us),
        format_us(d.max_us),
        format_us(d.mean_us.round() as u64),
    ]
}

fn kv(pairs: &[(&str, u64)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn phase_view(name: &str, scenario: &str, s: &Section) -> PhaseView {
    let c = &s.connect;
    let mut counts = kv(&[
        ("connect attempted", c.attempted),
        ("connected", c.connected),
        ("connect failed", c.failed),
        ("peak connected", c.peak_connected),
    ]);
    counts.extend(
        c.failed_by_kind
            .iter()
            .map(|(k, v)| (format!("failed: {k}"), v.to_string())),
    );
    let mut distributions = Vec::new();
    for n in ConnectPhaseTimes::NAMES {
        if let Some(d) = c.phases.get(n) {
            distributions.push(dist_row(&format!("connect.{n}"), d));
        }
    }
    if let Some(e) = &s.echo {
        let secs = s.duration_ms as f64 / 1000.0;
        counts.extend(kv(&[
            ("echo sent", e.sent),
            ("received", e.received),
            ("timeouts", e.timeouts),
            ("late", e.late),
            ("unanswered at stop", e.unanswered_at_stop),
        ]));
        if secs > 0.0 {
            counts.push((
                "received per second".into(),
                format!("{:.1}", e.received as f64 / secs),
            ));
        }
        distributions.push(dist_row("echo.latency", &e.latency));
        distributions.push(dist_row("echo.service", &e.service));
    }
    if let Some(b) = &s.broadcast {
        counts.extend(kv(&[
            ("broadcast expected", b.expected),
            ("delivered", b.delivered),
            ("lost", b.lost),
        ]));
        distributions.push(dist_row("broadcast.latency", &b.latency));
    }
    PhaseView {
        name: name.to_string(),
        scenario: scenario.to_string(),
        counts,
        distributions,
        errors: s
            .errors
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        disconnects: s
            .disconnects
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    }
}

impl ReportModel {
    /// Builds the view-model of `run`.
    pub fn new(run: &RunFile) -> ReportModel {
        let m = &run.meta;
        let status = match m.status {
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        };
        let all_pass = run.thresholds.iter().all(|t| t.pass);
        let h = &run.health.summary;
        let mut facts = vec![
            ("target".to_string(), m.target_url.clone()),
            (
                "protocol".into(),
                format!("{} / {}", m.protocol, m.transport),
            ),
            ("scenarios".into(), m.scenarios.join(", ")),
            ("swarm version".into(), m.swarm_version.clone()),
            (
                "machine".into(),
                format!(
                    "{} ({} cores, {}, {} {})",
                    m.machine.hostname,
                    m.machine.cores,
                    format_bytes(m.machine.memory_bytes),
                    m.machine.os,
                    m.machine.os_version
                ),
            ),
            ("started".into(), unix_ms_to_utc(m.started_at_unix_ms)),
            ("ended".into(), unix_ms_to_utc(m.ended_at_unix_ms)),
        ];
        if let Some(d) = &m.status_detail {
            facts.push(("status detail".into(), d.clone()));
        }
        if m.shards > 1 {
            facts.push(("shards merged".into(), m.shards.to_string()));
        }
        let plan = m
            .plan
            .iter()
            .map(|p| {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                vec![
                    p.name.clone(),
                    p.scenario.clone(),
                    p.clients.to_string(),
                    format_us(p.duration_ms * 1000),
                    opt(p.ramp_ms.map(|r| format_us(r * 1000))),
                    opt(p.connect_rate_per_s.map(|r| format!("{r}/s"))),
                    opt(p.rate_per_s.map(|r| format!("{r}/s"))),
                    opt(p.payload_size_bytes.map(|b| format!("{b} B"))),
                ]
            })
            .collect();
        let mut phases: Vec<PhaseView> = run
            .phases
            .iter()
            .map(|p| phase_view(&p.name, &p.scenario, &p.stats))
            .collect();
        phases.push(phase_view("whole run", &m.scenarios.join(", "), &run.run));
        let opt_us = |v: Option<u64>| v.map_or_else(|| "-".to_string(), format_us);
        ReportModel {
            title: format!("swarm {} against {}", m.scenarios.join(" + "), m.target_url),
            status: status.to_string(),
            status_ok: m.status == RunStatus::Completed && all_pass,
            interrupted: m.interrupted,
            saturated: h.saturated.then(|| h.saturated_by.join(" and ")),
            thresholds: run
                .thresholds
                .iter()
                .map(|t| ThresholdRow {
                    expr: t.expr.clone(),
                    pass: t.pass,
                    observed: match (t.observed, &t.note) {
                        (Some(v), _) => format!("{v:.3}{}", t.unit),
                        (None, Some(n)) => n.clone(),
                        (None, None) => "n/a".into(),
                    },
                })
                .collect(),
            facts,
            plan,
            phases,
            health: run
                .health
                .series
                .iter()
                .map(|p| {
                    vec![
                        p.second.to_string(),
                        format!("{:.1}", p.cpu_percent),
                        format_bytes(p.rss_bytes),
                        format_us(p.sched_lag_max_us),
                        format_us(p.sched_lag_mean_us),
                    ]
                })
                .collect(),
            series: run
                .series
                .iter()
                .map(|p| {
                    vec![
                        p.second.to_string(),
                        p.connected.to_string(),
                        p.sent.to_string(),
                        p.received.to_string(),
                        p.timeouts.to_string(),
                        p.errors.to_string(),
                        opt_us(p.latency_p50_us),
                        opt_us(p.latency_p99_us),
                        opt_us(p.latency_max_us),
                    ]
                })
                .collect(),
        }
    }
}

/// Renders `run` as a self-contained HTML page.
pub fn render_html(run: &RunFile) -> Result<String, RenderError> {
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let tmpl = env.get_template("report.html")?;
    Ok(tmpl.render(minijinja::context! { r => ReportModel::new(run) })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::example_run;

    #[test]
    fn renders_every_section() {
        let html = render_html(&example_run(50)).expect("render");
        assert!(html.starts_with("<!doctype html>"));
        for needle in [
            "ramp",
            "steady",
            "echo.latency",
            "connect.total",
            "whole run",
            "2023-11-14 22:13:20 UTC",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("http://") || html.contains("127.0.0.1:3000"));
        assert!(!html.contains("<script"), "no script in the plain report");
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let mut run = example_run(5);
        run.meta.target_url = "http://x/<script>alert(1)</script>".into();
        run.run
            .disconnects
            .insert("<img src=x onerror=alert(1)>".into(), 1);
        run.phases[0].name = "\"><b>".into();
        let html = render_html(&run).expect("render");
        assert!(!html.contains("<script>alert"), "script tag escaped");
        assert!(!html.contains("<img src=x"), "img tag escaped");
        assert!(!html.contains("\"><b>"), "quotes escaped");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn saturation_banner_and_threshold_verdict() {
        let mut run = example_run(5);
        run.health.summary.saturated = true;
        run.health.summary.saturated_by = vec!["cpu".into()];
        run.thresholds.push(crate::ThresholdResult {
            expr: "connect.failed == 0".into(),
            observed: Some(2.0),
            unit: String::new(),
            pass: false,
            note: None,
        });
        let html = render_html(&run).expect("render");
        assert!(html.contains("class=\"banner saturated\""));
        assert!(html.contains("FAIL"));
        assert!(html.contains("connect.failed == 0"));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(unix_ms_to_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(unix_ms_to_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
