//! The run summary as JSON (`swarm ... --json`): the figures of the terminal table, by
//! name.
//!
//! Receives a [`RunFile`]; emits a compact JSON value. Must not: hold anything the run file
//! does not (full detail stays in `results.json`).

use serde_json::json;

use crate::schema::{RunFile, Section};

fn section_json(s: &Section) -> serde_json::Value {
    let secs = s.duration_ms as f64 / 1000.0;
    json!({
        "duration_ms": s.duration_ms,
        "connect": {
            "attempted": s.connect.attempted,
            "connected": s.connect.connected,
            "failed": s.connect.failed,
            "peak_connected": s.connect.peak_connected,
            "total_p50_us": s.connect.phases.total.as_ref().map(|d| d.p50_us),
            "total_p99_us": s.connect.phases.total.as_ref().map(|d| d.p99_us),
        },
        "echo": s.echo.as_ref().map(|e| json!({
            "planned": e.planned,
            "skipped_disconnected": e.skipped_disconnected,
            "sent": e.sent,
            "received": e.received,
            "timeouts": e.timeouts,
            "late": e.late,
            "unanswered_at_stop": e.unanswered_at_stop,
            "received_per_s": if secs > 0.0 { e.received as f64 / secs } else { 0.0 },
            "latency_p50_us": e.latency.p50_us,
            "latency_p90_us": e.latency.p90_us,
            "latency_p99_us": e.latency.p99_us,
            "latency_max_us": e.latency.max_us,
            "service_p50_us": e.service.p50_us,
            "service_p99_us": e.service.p99_us,
        })),
        "broadcast": s.broadcast.as_ref().map(|b| json!({
            "published": b.published,
            "expected": b.expected,
            "delivered": b.delivered,
            "recovered": b.recovered,
            "missed_while_disconnected": b.missed_while_disconnected,
            "lost": b.lost,
            "duplicates": b.duplicates,
            "reordered": b.reordered,
            "foreign": b.foreign,
            "reach": if b.expected > 0 { b.delivered as f64 / b.expected as f64 } else { 0.0 },
            "latency_p50_us": b.latency.p50_us,
            "latency_p99_us": b.latency.p99_us,
            "latency_max_us": b.latency.max_us,
        })),
        "heartbeat": s.heartbeat.as_ref().map(|h| json!({
            "pings": h.pings,
            "ping_interval_deviation_p50_us": h.ping_interval_deviation.p50_us,
            "ping_interval_deviation_p99_us": h.ping_interval_deviation.p99_us,
            "muted": h.muted,
            "muted_closes": h.muted_closes,
            "muted_never_closed": h.muted_never_closed,
            "false_timeouts": h.false_timeouts,
            "client_timeouts": h.client_timeouts,
        })),
        "churn": s.churn.as_ref().map(|c| json!({
            "drops": c.drops,
            "reconnects": c.reconnects,
            "reconnect_failures": c.reconnect_failures,
            "reconnect_p50_us": c.reconnect.p50_us,
            "reconnect_p99_us": c.reconnect.p99_us,
            "recovered_sessions": c.recovered_sessions,
            "away_messages": c.away_messages,
        })),
        "outage": s.outage.as_ref().map(|o| json!({
            "connections_lost": o.connections_lost,
            "restored": o.restored,
            "clients_not_restored": o.clients_not_restored,
            "reconnect_attempts": o.reconnect_attempts,
            "reconnect_failures": o.reconnect_failures,
            "peak_clients_away": o.peak_clients_away,
            "restore_p50_us": o.restore.p50_us,
            "restore_max_us": o.restore.max_us,
        })),
        "errors": s.errors,
        "disconnects": s.disconnects,
    })
}

/// The run summary as JSON (what `--json` prints): status, target, per phase and whole-run
/// key figures, thresholds and saturation. Full detail stays in `results.json`.
pub fn summary_json(run: &RunFile) -> serde_json::Value {
    let m = &run.meta;
    json!({
        "schema_version": run.schema_version,
        "status": m.status,
        "interrupted": m.interrupted,
        "target_url": m.target_url,
        "protocol": m.protocol,
        "transport": m.transport,
        "scenarios": m.scenarios,
        "started_at_unix_ms": m.started_at_unix_ms,
        "ended_at_unix_ms": m.ended_at_unix_ms,
        "run": section_json(&run.run),
        "phases": run.phases.iter().map(|p| json!({
            "name": p.name,
            "scenario": p.scenario,
            "stats": section_json(&p.stats),
        })).collect::<Vec<_>>(),
        "thresholds": run.thresholds,
        "thresholds_passed": run.thresholds.iter().all(|t| t.pass),
        "swarm": {
            "saturated": run.health.summary.saturated,
            "saturated_by": run.health.summary.saturated_by,
            "cpu_percent_max": run.health.summary.cpu_percent_max,
            "rss_bytes_max": run.health.summary.rss_bytes_max,
            "sched_lag_max_us": run.health.summary.sched_lag_max_us,
            "samples_dropped": run.health.summary.samples_dropped,
            "send_lag_p50_us": run.run.send_lag.as_ref().map(|d| d.p50_us),
            "send_lag_p99_us": run.run.send_lag.as_ref().map(|d| d.p99_us),
            "send_lag_max_us": run.run.send_lag.as_ref().map(|d| d.max_us),
        },
    })
}
