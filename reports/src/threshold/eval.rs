//! Resolves metric names against a run file and checks thresholds.
//!
//! Receives a [`MetricPath`] or [`Threshold`] and a [`RunFile`]; emits the observed value
//! (in the metric's canonical unit: µs, bytes, ratio, percent, count, per second) or a
//! [`ThresholdResult`]. A value that cannot be computed (no such phase, no echo data, a
//! percentage of zero) is a failed threshold with a note, never a pass.
//! Must not: panic on any run file (hostile histograms become notes).

use super::{Kind, MetricPath, Stat, Threshold, Unit};
use crate::distribution::Distribution;
use crate::schema::{BroadcastStats, HeartbeatStats, RunFile, Section, ThresholdResult};

/// Evaluates every threshold against `run`.
pub fn evaluate(thresholds: &[Threshold], run: &RunFile) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(run)).collect()
}

impl Threshold {
    /// Checks this threshold against `run`.
    pub fn evaluate(&self, run: &RunFile) -> ThresholdResult {
        let mut result = ThresholdResult {
            expr: self.expr.clone(),
            observed: None,
            unit: self.unit_label.to_string(),
            pass: false,
            note: None,
        };
        match self.observed_in_unit(run) {
            Ok(v) => {
                result.observed = Some(v);
                result.pass = self.op.holds(v, self.value);
            }
            Err(note) => result.note = Some(note),
        }
        result
    }

    fn observed_in_unit(&self, run: &RunFile) -> Result<f64, String> {
        let p = &self.path;
        if self.unit == Unit::Percent && p.kind == Kind::Count {
            let base_name = p.percent_of.unwrap_or("");
            // A flow step's base is that step's (`STEP.runs`).
            let base_metric = match p.metric.rsplit_once('.') {
                Some((step, _)) if p.scenario == "flow" => format!("{step}.{base_name}"),
                _ => base_name.to_string(),
            };
            let base_path = MetricPath {
                metric: base_metric,
                stat: None,
                ..p.clone()
            };
            let base = base_path.observe(run)?;
            if base <= 0.0 {
                return Err(format!(
                    "{} is 0, so no percentage of it can be computed",
                    base_path.name()
                ));
            }
            return Ok(p.observe(run)? / base * 100.0);
        }
        let v = p.observe(run)?;
        Ok(match self.unit {
            Unit::Millis => v / 1_000.0,
            Unit::Seconds => v / 1_000_000.0,
            Unit::Bytes(f) => v / f as f64,
            Unit::Percent if p.kind == Kind::Ratio => v * 100.0,
            _ => v,
        })
    }
}

impl MetricPath {
    /// The observed value in canonical units (µs for durations).
    pub fn observe(&self, run: &RunFile) -> Result<f64, String> {
        // `swarm.send_lag` is per span (run or phase); the rest of `swarm` is run health.
        if self.scenario == "swarm" && self.metric != "send_lag" {
            return observe_swarm(self, run);
        }
        let section = match &self.phase {
            None => &run.run,
            Some(name) => {
                &run.phases
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = run.phases.iter().map(|p| p.name.as_str()).collect();
                        format!(
                            "this run has no phase `{name}` (phases: {})",
                            names.join(", ")
                        )
                    })?
                    .stats
            }
        };
        observe_section(self, section)
    }
}

fn absent(p: &MetricPath) -> String {
    let span = p
        .phase
        .as_deref()
        .map_or("this run".to_string(), |n| format!("phase `{n}`"));
    format!("{span} has no {} data", p.scenario)
}

fn stat_of(p: &MetricPath, d: Option<&Distribution>) -> Result<f64, String> {
    let d = d.ok_or_else(|| format!("{} was not recorded", p.name()))?;
    if d.count == 0 && !matches!(p.stat, Some(Stat::Count)) {
        return Err(format!("{} has no values", p.name()));
    }
    Ok(match p.stat {
        Some(Stat::Count) | None => d.count as f64,
        Some(Stat::Min) => d.min_us as f64,
        Some(Stat::Mean) => d.mean_us,
        Some(Stat::Max) => d.max_us as f64,
        Some(Stat::Percentile(q)) => d.value_at_percentile(q).map_err(|e| e.to_string())? as f64,
    })
}

fn observe_section(p: &MetricPath, s: &Section) -> Result<f64, String> {
    let n = |v: u64| Ok(v as f64);
    match p.scenario.as_str() {
        "connect" => {
            let c = &s.connect;
            match p.metric.as_str() {
                "attempted" => n(c.attempted),
                "connected" => n(c.connected),
                "failed" => n(c.failed),
                "peak_connected" => n(c.peak_connected),
                phase => stat_of(p, c.phases.get(phase)),
            }
        }
        "swarm" => stat_of(p, s.send_lag.as_ref()),
        "echo" => {
            let e = s.echo.as_ref().ok_or_else(|| absent(p))?;
            match p.metric.as_str() {
                "sent" => n(e.sent),
                "received" => n(e.received),
                "timeouts" => n(e.timeouts),
                "late" => n(e.late),
                "unanswered_at_stop" => n(e.unanswered_at_stop),
                "throughput" => {
                    if s.duration_ms == 0 {
                        return Err("the span lasted 0 ms, so no rate can be computed".into());
                    }
                    Ok(e.received as f64 * 1000.0 / s.duration_ms as f64)
                }
                "latency" => stat_of(p, Some(&e.latency)),
                "service" => stat_of(p, Some(&e.service)),
                other => Err(format!("unknown echo metric `{other}`")),
            }
        }
        "broadcast" => observe_broadcast(p, s.broadcast.as_ref().ok_or_else(|| absent(p))?),
        "heartbeat" => observe_heartbeat(p, s.heartbeat.as_ref().ok_or_else(|| absent(p))?),
        "churn" => {
            let c = s.churn.as_ref().ok_or_else(|| absent(p))?;
            match p.metric.as_str() {
                "drops" => n(c.drops),
                "reconnects" => n(c.reconnects),
                "reconnect_failures" => n(c.reconnect_failures),
                "reconnect" => stat_of(p, Some(&c.reconnect)),
                "recovered_sessions" => n(c.recovered_sessions),
                "away_messages" => n(c.away_messages),
                other => Err(format!("unknown churn metric `{other}`")),
            }
        }
        "flow" => {
            let f = s.flow.as_ref().ok_or_else(|| absent(p))?;
            let (step, metric) = p.metric.rsplit_once('.').unwrap_or(("", ""));
            let st = f.step(step).ok_or_else(|| {
                let names: Vec<&str> = f.steps.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no flow step `{step}` was recorded (steps: {})",
                    names.join(", ")
                )
            })?;
            match metric {
                "runs" => n(st.runs),
                "ok" => n(st.ok),
                "timeouts" => n(st.timeouts),
                "unmatched" => n(st.unmatched),
                "bad_path" => n(st.bad_path),
                "server_errors" => n(st.server_errors),
                "disconnected" => n(st.disconnected),
                "unanswered_at_stop" => n(st.unanswered_at_stop),
                "errors" => n(st.errors()),
                "latency" => stat_of(p, Some(&st.latency)),
                other => Err(format!("unknown flow metric `{other}`")),
            }
        }
        "errors" => match p.metric.as_str() {
            "total" => n(sat_sum(s.errors.values())),
            key => n(s.errors.get(key).copied().unwrap_or(0)),
        },
        "disconnects" => match p.metric.as_str() {
            "total" => n(sat_sum(s.disconnects.values())),
            "failures" => n(sat_sum(
                s.disconnects
                    .iter()
                    .filter(|(k, _)| !crate::schema::is_orderly_disconnect(k))
                    .map(|(_, v)| v),
            )),
            key => n(s.disconnects.get(key).copied().unwrap_or(0)),
        },
        other => Err(format!("unknown scenario `{other}`")),
    }
}

fn observe_broadcast(p: &MetricPath, b: &BroadcastStats) -> Result<f64, String> {
    let n = |v: u64| Ok(v as f64);
    match p.metric.as_str() {
        "published" => n(b.published),
        "expected" => n(b.expected),
        "delivered" => n(b.delivered),
        "reach" if b.expected == 0 => {
            Err("no deliveries were expected, so reach is undefined".into())
        }
        "reach" => Ok(b.delivered as f64 / b.expected as f64),
        "recovered" => n(b.recovered),
        "missed_while_disconnected" => n(b.missed_while_disconnected),
        "lost" => n(b.lost),
        "duplicates" => n(b.duplicates),
        "reordered" => n(b.reordered),
        "latency" => stat_of(p, Some(&b.latency)),
        "service" => stat_of(p, b.service.as_ref()),
        "foreign" => n(b.foreign),
        "outside_membership" => n(b.outside_membership),
        "ambiguous" => n(b.ambiguous),
        other => Err(format!("unknown broadcast metric `{other}`")),
    }
}

fn observe_heartbeat(p: &MetricPath, h: &HeartbeatStats) -> Result<f64, String> {
    let n = |v: u64| Ok(v as f64);
    match p.metric.as_str() {
        "pings" => n(h.pings),
        "ping_interval_deviation" => stat_of(p, Some(&h.ping_interval_deviation)),
        "muted_closes" => n(h.muted_closes),
        "false_timeouts" => n(h.false_timeouts),
        "client_timeouts" => n(h.client_timeouts),
        "ping_interval" => stat_of(p, h.ping_interval.as_ref()),
        "pong_rtt" => stat_of(p, h.pong_rtt.as_ref()),
        "muted" => n(h.muted),
        "muted_never_closed" => n(h.muted_never_closed),
        "muted_close_delay" => stat_of(p, h.muted_close_delay.as_ref()),
        "muted_close_after_last_pong" => stat_of(p, h.muted_close_after_last_pong.as_ref()),
        other => Err(format!("unknown heartbeat metric `{other}`")),
    }
}

fn sat_sum<'a>(values: impl Iterator<Item = &'a u64>) -> u64 {
    values.fold(0u64, |a, b| a.saturating_add(*b))
}

fn observe_swarm(p: &MetricPath, run: &RunFile) -> Result<f64, String> {
    let h = &run.health.summary;
    let none_yet = || "no swarm health was recorded in this run".to_string();
    let recorded = !run.health.series.is_empty();
    match (p.metric.as_str(), p.stat) {
        ("saturated", _) => Ok(if h.saturated { 1.0 } else { 0.0 }),
        ("saturated_seconds", _) => Ok(h.saturated_seconds as f64),
        (_, _) if !recorded => Err(none_yet()),
        ("cpu_percent", Some(Stat::Max)) => Ok(h.cpu_percent_max),
        ("cpu_percent", Some(Stat::Mean)) => Ok(h.cpu_percent_mean),
        ("rss_bytes", Some(Stat::Max)) => Ok(h.rss_bytes_max as f64),
        ("sched_lag", Some(Stat::Max)) => Ok(h.sched_lag_max_us as f64),
        ("sched_lag", Some(Stat::Mean)) => Ok(h.sched_lag_mean_us as f64),
        _ => Err(format!("unknown swarm metric `{}`", p.name())),
    }
}
