//! Section "The run": what ran, against what, where and when, and the plan phase by phase.
//!
//! Receives a [`RunFile`]'s `meta`; emits the `run` [`Section`] (two tables, the saturation
//! banner when the swarm was the bottleneck).
//! Must not: leave out the target, the swarm version or the times: they identify a run.

use super::Section;
use super::common::Table;
use crate::format::{self, count, format_bytes, format_us, unix_ms_to_utc};
use crate::schema::{RunFile, RunMeta, Scenario};

pub fn section(run: &RunFile) -> Section {
    let m = &run.meta;
    let mut s = Section::new("run", "The run");
    let mut facts = Table::new("", &[]);
    facts.pair(
        "target",
        if m.embedded_target {
            format!("{} (embedded target-server)", m.target_url)
        } else {
            m.target_url.clone()
        },
    );
    facts.pair("protocol", format!("{} over {}", m.protocol, m.transport));
    facts.pair("scenarios", Scenario::join(&m.scenarios, ", "));
    facts.pair(
        "started",
        format!(
            "{} (ended {}, {})",
            unix_ms_to_utc(m.started_at_unix_ms),
            unix_ms_to_utc(m.ended_at_unix_ms),
            format::seconds(
                m.ended_at_unix_ms.saturating_sub(m.started_at_unix_ms) as f64 / 1000.0
            )
        ),
    );
    facts.pair(
        "status",
        match &m.status_detail {
            Some(d) => format!("{:?}: {d}", m.status).to_lowercase(),
            None => format!("{:?}", m.status).to_lowercase(),
        },
    );
    facts.pair("swarm version", m.swarm_version.clone());
    facts.pair(
        "machine",
        format!(
            "{} ({} cores, {}, {} {})",
            m.machine.hostname,
            m.machine.cores,
            format_bytes(m.machine.memory_bytes),
            m.machine.os,
            m.machine.os_version
        )
        .replace(",  ", ", ")
        .trim_end()
        .to_string(),
    );
    let h = &run.health.summary;
    if h.saturated {
        facts.pair(
            "swarm saturated",
            format!(
                "yes, for {} (by {}): see the warning above and Swarm health",
                format::plural(h.saturated_seconds, "second", "seconds"),
                h.saturated_by.join(" and ")
            ),
        );
    }
    if m.shards > 1 {
        facts.pair("merged from", format!("{} swarm processes", m.shards));
    }
    if !run.targets.is_empty() {
        facts.pair(
            "targets",
            format!(
                "{} (clients spread round-robin; each worker drove one; see Targets below)",
                run.targets.len()
            ),
        );
    }
    if !m.run_id.is_empty() {
        facts.pair("run id", m.run_id.clone());
    }
    if !m.args.is_empty() {
        facts.pair("command", format!("swarm {}", m.args.join(" ")));
    }
    if !m.options.is_empty() {
        let opts: Vec<String> = m
            .options
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        facts.pair("options", opts.join(", "));
    }
    s.tables.push(facts);
    if !m.plan.is_empty() {
        s.tables.push(plan_table(m));
    }
    if !run.targets.is_empty() {
        s.tables.push(targets_table(run));
    }
    s
}

/// A run against several targets: each target's share, from its own workers' figures.
fn targets_table(run: &RunFile) -> Table {
    let mut t = Table::new(
        "Targets (each from the workers that drove it)",
        &[
            "target",
            "workers",
            "clients",
            "connected",
            "connect failed",
            "echo sent / answered",
            "echo timeouts",
            "echo latency p50 / p99",
            "broadcast delivered / expected",
            "broadcast lost",
        ],
    );
    let dash = || "-".to_string();
    for x in &run.targets {
        let r = &x.run;
        let workers: Vec<String> = x.workers.iter().map(u32::to_string).collect();
        t.push(vec![
            x.url.clone(),
            workers.join(", "),
            count(x.clients),
            count(r.connect.connected),
            count(r.connect.failed),
            r.echo.as_ref().map_or_else(dash, |e| {
                format!("{} / {}", count(e.sent), count(e.received))
            }),
            r.echo.as_ref().map_or_else(dash, |e| count(e.timeouts)),
            r.echo.as_ref().map_or_else(dash, |e| {
                format!(
                    "{} / {}",
                    format_us(e.latency.p50_us),
                    format_us(e.latency.p99_us)
                )
            }),
            r.broadcast.as_ref().map_or_else(dash, |b| {
                format!("{} / {}", count(b.delivered), count(b.expected))
            }),
            r.broadcast.as_ref().map_or_else(dash, |b| count(b.lost)),
        ]);
    }
    t
}

/// The plan, phase by phase.
fn plan_table(m: &RunMeta) -> Table {
    let mut plan = Table::new(
        "Plan",
        &[
            "phase",
            "scenario",
            "clients",
            "duration",
            "ramp",
            "connect rate",
            "rate per client",
            "payload",
            "arrival",
            "other settings",
        ],
    );
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for p in &m.plan {
        plan.push(vec![
            p.name.clone(),
            p.scenario.to_string(),
            count(p.clients),
            format_us(p.duration_ms.saturating_mul(1000)),
            opt(p
                .ramp_ms
                .filter(|r| *r > 0)
                .map(|r| format_us(r.saturating_mul(1000)))),
            opt(p.connect_rate_per_s.map(format::rate)),
            opt(p.rate_per_s.map(format::rate)),
            opt(p.payload_size_bytes.map(|b| format!("{} B", count(b)))),
            opt(p.arrival.as_ref().map(ToString::to_string)),
            opt((!p.settings.is_empty()).then(|| {
                p.settings
                    .pairs()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })),
        ]);
    }
    plan
}
