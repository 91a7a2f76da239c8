//! Unit tests of the terminal and JSON summaries.

use super::*;
use crate::fixture::example_run;

#[test]
fn formats_durations_and_bytes() {
    assert_eq!(format_us(850), "850us");
    assert_eq!(format_us(4_100), "4.10ms");
    assert_eq!(format_us(1_200_000), "1.20s");
    assert_eq!(format_bytes(512), "512 B");
    assert_eq!(format_bytes(20 << 20), "20.0 MiB");
}

#[test]
fn table_has_a_row_per_phase_and_totals() {
    let mut run = example_run(100);
    run.thresholds.push(crate::ThresholdResult {
        expr: "echo.latency.p99 < 1ms".into(),
        observed: Some(4.1),
        unit: "ms".into(),
        pass: false,
        note: None,
    });
    let t = summary_table(&run);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[1].starts_with("phase"), "{t}");
    assert!(lines[2].starts_with("ramp"), "{t}");
    assert!(lines[3].starts_with("steady"), "{t}");
    assert!(lines[4].starts_with("(all)"), "{t}");
    assert!(lines[3].contains("4000"), "sent count shown: {t}");
    assert!(
        t.contains("FAIL echo.latency.p99 < 1ms  observed 4.1ms"),
        "{t}"
    );
    assert!(!t.contains("SATURATED"));
}

#[test]
fn table_has_broadcast_heartbeat_and_churn_lines_when_present() {
    let plain = summary_table(&example_run(100));
    assert!(!plain.contains("broadcast:"), "{plain}");
    let run = crate::fixture::example_full_run(100);
    let b = run.run.broadcast.as_ref().expect("fixture has broadcast");
    let t = summary_table(&run);
    let line = t.lines().find(|l| l.starts_with("broadcast:")).expect(&t);
    assert!(line.contains(&format!("expected {}", b.expected)), "{line}");
    assert!(
        line.contains(&format!("delivered {}", b.delivered)),
        "{line}"
    );
    assert!(line.contains(&format!("lost {}", b.lost)), "{line}");
    assert!(t.lines().any(|l| l.starts_with("heartbeat:")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("churn:")), "{t}");
    let j = summary_json(&run);
    assert_eq!(j["run"]["broadcast"]["delivered"], b.delivered);
    assert_eq!(j["run"]["broadcast"]["lost"], b.lost);
    assert!(j["run"]["heartbeat"].is_object() && j["run"]["churn"].is_object());
    assert!(summary_json(&example_run(10))["run"]["broadcast"].is_null());
    assert!(!t.contains("ambiguous"), "{t}");
    let mut split = run.clone();
    if let Some(b) = split.run.broadcast.as_mut() {
        b.ambiguous = 7;
    }
    let t = summary_table(&split);
    assert!(
        t.lines()
            .any(|l| l.starts_with("broadcast ambiguous: 7 not received")),
        "{t}"
    );
}

#[test]
fn table_shows_lost_connections_and_the_outage() {
    let mut run = example_run(100);
    let t = summary_table(&run);
    assert!(t.lines().nth(1).expect(&t).contains("disconn"), "{t}");
    assert!(!t.contains("outage:"), "{t}");
    run.meta.status = crate::RunStatus::Degraded;
    run.run.outage = Some(crate::OutageStats {
        connections_lost: 37,
        restored: 30,
        clients_not_restored: 7,
        reconnect_attempts: 90,
        reconnect_failures: 60,
        peak_clients_away: 37,
        first_loss_offset_ms: Some(2_000),
        last_restore_offset_ms: Some(4_300),
        ..Default::default()
    });
    if let Some(e) = run.run.echo.as_mut() {
        e.skipped_disconnected = 55;
        e.planned = e.sent + 55;
    }
    let t = summary_table(&run);
    assert!(
        t.lines().next().expect(&t).ends_with("status degraded"),
        "{t}"
    );
    let all = t.lines().find(|l| l.starts_with("(all)")).expect(&t);
    let cells: Vec<&str> = all.split_whitespace().collect();
    // (all), peak_conn, conn_fail, disconn: the scenario cell is empty.
    assert_eq!(cells[3], "37", "{all}");
    let line = t.lines().find(|l| l.starts_with("outage:")).expect(&t);
    assert!(line.contains("37 connections lost"), "{line}");
    assert!(line.contains("7 not restored"), "{line}");
    assert!(line.contains("from 2.0s to 4.3s"), "{line}");
    assert!(line.contains("skipped while disconnected 55"), "{line}");
    let j = summary_json(&run);
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["run"]["outage"]["connections_lost"], 37);
    assert_eq!(j["run"]["echo"]["skipped_disconnected"], 55);
}

#[test]
fn json_carries_key_figures() {
    let run = example_run(10);
    let v = summary_json(&run);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["run"]["echo"]["sent"], 400);
    assert_eq!(v["phases"][1]["name"], "steady");
    assert_eq!(v["thresholds_passed"], true);
    assert_eq!(v["swarm"]["saturated"], false);
}

/// The machine's steal shows on the swarm line, in the report's health table and in the
/// saturation banner when there was any, and not at all when there was none.
#[test]
fn the_machines_steal_is_shown_when_there_was_some() {
    let mut run = example_run(10);
    assert!(!summary_table(&run).contains("steal"));
    run.health.summary.steal_percent_max = 23.6;
    run.health.summary.saturated = true;
    run.health.summary.saturated_seconds = 3;
    run.health.summary.saturated_by = vec!["sched_lag".into()];
    let t = summary_table(&run);
    assert!(t.contains("machine steal max 23.6%"), "{t}");
    let html = crate::html::render_html(&run).expect("report");
    let at = html.find("steal up to").map(|i| &html[i..i + 30]);
    assert!(
        html.contains("steal up to 23.6%"),
        "the saturation banner names it: {at:?}"
    );
    assert!(html.contains("machine steal"), "the health table names it");
}
