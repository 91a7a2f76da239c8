//! What the run file says about the run itself: `meta` (plan phases, options, the machine).
//!
//! Receives: the validated [`Plan`], the URL, the command line and the run's times.
//! Emits: [`reports::RunMeta`], the run file's `meta` section (docs/results-format.md).
//! Must not: do I/O beyond reading /proc for the machine facts.

use std::collections::BTreeMap;
use std::time::SystemTime;

use reports::{RunMeta, RunStatus};

use crate::model::{Arrival, Protocol, Transport};
use crate::plan::{Plan, Scenario};

pub fn meta(
    plan: &Plan,
    url: &str,
    embedded: bool,
    run_id: u32,
    args: Vec<String>,
    started: SystemTime,
    interrupted: bool,
) -> RunMeta {
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    let mut scenarios: Vec<reports::Scenario> = Vec::new();
    for p in &plan.phases {
        let s = scenario(p.scenario);
        if !scenarios.contains(&s) {
            scenarios.push(s);
        }
    }
    let t = &plan.target;
    RunMeta {
        swarm_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_id.to_string(),
        scenarios,
        target_url: reports::redact::redact_url(url),
        embedded_target: embedded,
        protocol: match t.protocol {
            Protocol::Ws => reports::Protocol::Ws,
            Protocol::Socketio => reports::Protocol::Socketio,
        },
        transport: match (t.protocol, t.transport) {
            (Protocol::Socketio, Transport::Polling) => reports::Transport::Polling,
            _ => reports::Transport::Websocket,
        },
        plan: plan_phases(plan),
        options: options(plan),
        args: reports::redact::redact_args(&args),
        machine: machine(),
        started_at_unix_ms: ms(started),
        ended_at_unix_ms: ms(SystemTime::now()),
        interrupted,
        status: if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Completed
        },
        status_detail: interrupted
            .then(|| "stopped by a signal; everything recorded until then is here".to_string()),
        shards: 1,
        split_rooms: false,
    }
}

/// `meta.options`: the run-wide settings that shaped the run (docs/results-format.md).
fn options(plan: &Plan) -> BTreeMap<String, serde_json::Value> {
    let mut options = BTreeMap::new();
    let t = &plan.target;
    options.insert(
        "timeout_ms".into(),
        serde_json::json!(plan.timeout.as_millis() as u64),
    );
    options.insert(
        "grace_ms".into(),
        serde_json::json!(plan.grace.as_millis() as u64),
    );
    if t.protocol == Protocol::Socketio {
        options.insert("event".into(), serde_json::json!(t.event));
        options.insert("reply_event".into(), serde_json::json!(t.reply_event));
        options.insert("path".into(), serde_json::json!(t.eio_path));
        let parser = match t.parser {
            crate::model::ParserKind::Default => "default",
            crate::model::ParserKind::Msgpack => "msgpack",
        };
        options.insert("parser".into(), serde_json::json!(parser));
    }
    options.insert("insecure".into(), serde_json::json!(t.insecure));
    options.insert(
        "threads".into(),
        serde_json::json!(tokio::runtime::Handle::current().metrics().num_workers()),
    );
    if plan.phases.iter().any(|p| p.scenario.fans_out()) {
        let f = &t.fan;
        if t.protocol == Protocol::Socketio {
            options.insert("join_event".into(), serde_json::json!(f.join_event));
            options.insert("join_args".into(), serde_json::json!(f.join_args.text));
            options.insert("publish_event".into(), serde_json::json!(f.publish_event));
            options.insert(
                "publish_args".into(),
                serde_json::json!(f.publish_args.text),
            );
            options.insert(
                "subscribe_event".into(),
                serde_json::json!(f.subscribe_event),
            );
        }
    }
    if t.fan.reconnect || plan.phases.iter().any(|p| p.churn.is_some()) {
        options.insert(
            "reconnect_delay_ms".into(),
            serde_json::json!(t.fan.reconnect_delay.as_millis() as u64),
        );
    }
    if t.fan.reconnect {
        options.insert(
            "reconnect_max_delay_ms".into(),
            serde_json::json!(t.fan.reconnect_max_delay.as_millis() as u64),
        );
        options.insert(
            "reconnect_jitter".into(),
            serde_json::json!(t.fan.reconnect_jitter.name()),
        );
        options.insert(
            "reconnect_max_attempts".into(),
            serde_json::json!(t.fan.reconnect_max_attempts),
        );
    }
    options.insert("reconnect".into(), serde_json::json!(t.fan.reconnect));
    if let Some(d) = &t.data {
        options.insert("data".into(), data_option(d, t.record_data));
    }
    options
}

/// Records of a data file written by `--record-data`, at most.
pub const RECORDED_DATA_MAX: usize = 10_000;

/// `meta.options.data`: the data file's shape; its values only with `--record-data`
/// (docs/results-format.md, "Per-connection data").
fn data_option(d: &crate::data::Data, record: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "file": d.path,
        "format": d.format.name(),
        "mode": d.mode.name(),
        "fields": d.fields,
        "records": d.len(),
        "recorded": record,
    });
    if record {
        let values: Vec<&[String]> = d.records().take(RECORDED_DATA_MAX).collect();
        v["values"] = serde_json::json!(values);
        v["values_truncated"] = serde_json::json!(d.len() > RECORDED_DATA_MAX);
    }
    v
}

/// `meta.plan`: each phase as planned, with the new clients' connect rate.
fn plan_phases(plan: &Plan) -> Vec<reports::PlanPhase> {
    let mut prev = 0;
    plan.phases
        .iter()
        .map(|p| {
            let new = p.clients.saturating_sub(prev);
            prev = p.clients;
            let echo = p.scenario == Scenario::Echo || p.scenario.fans_out();
            reports::PlanPhase {
                name: p.name.clone(),
                scenario: scenario(p.scenario),
                clients: u64::from(p.clients),
                duration_ms: (p.ramp + p.duration).as_millis() as u64,
                ramp_ms: Some(p.ramp.as_millis() as u64),
                connect_rate_per_s: (new > 0 && !p.ramp.is_zero())
                    .then(|| f64::from(new) / p.ramp.as_secs_f64()),
                rate_per_s: echo.then_some(p.rate_per_s),
                payload_size_bytes: echo.then_some(p.payload_size as u64),
                arrival: echo.then_some(match p.arrival {
                    Arrival::Constant => reports::Arrival::Constant,
                    Arrival::Poisson => reports::Arrival::Poisson,
                }),
                max_in_flight: (p.scenario == Scenario::Echo).then_some(p.max_in_flight),
                settings: crate::scenario::phase_settings(p),
            }
        })
        .collect()
}

/// The run file's name for a scenario.
fn scenario(s: Scenario) -> reports::Scenario {
    match s {
        Scenario::Connect => reports::Scenario::Connect,
        Scenario::Echo => reports::Scenario::Echo,
        Scenario::Broadcast => reports::Scenario::Broadcast,
        Scenario::Heartbeat => reports::Scenario::Heartbeat,
        Scenario::Churn => reports::Scenario::Churn,
        Scenario::Flow => reports::Scenario::Flow,
    }
}

fn machine() -> reports::Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    reports::Machine {
        hostname: read("/proc/sys/kernel/hostname"),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes,
        os: std::env::consts::OS.to_string(),
        os_version: read("/proc/sys/kernel/osrelease"),
    }
}
