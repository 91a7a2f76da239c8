//! `swarm capacity`: its arguments, its `--help` text, and their conversion into a
//! [`capacity::Request`] (the scenario's one-phase raw plan, as `swarm echo|broadcast|connect`
//! would build it, plus the search).
//!
//! Receives parsed arguments. Emits a [`capacity::Request`].
//! Must not: check the search (`capacity::check` does) or touch sockets.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::capacity::{self, Spec, Vary};
use crate::plan::{RawPhase, RawPlan, Scenario};
use crate::scenario::broadcast::args::FanoutArgs;

use super::{
    DrainArgs, EchoEventArgs, OutputArgs, PacingArgs, TargetArgs, parse_count, parse_duration,
    parse_rate,
};

pub const CAPACITY_HELP: &str = "\
Examples:
  swarm capacity http://127.0.0.1:3000 --scenario echo --vary rate --clients 100 \\
        --slo 'echo.latency.p99 < 50ms' --slo 'echo.timeouts == 0'
  swarm capacity ws://127.0.0.1:3000/ws/echo --vary clients --rate 10/s --from 100 --max 10k
  swarm capacity http://127.0.0.1:3000 --scenario broadcast --vary publish-rate \\
        --subscribers 1000 --from 10/s --step-duration 10s
  swarm capacity http://127.0.0.1:3000 --scenario connect --vary clients --connect-rate 500/s
  swarm capacity http://127.0.0.1:3000 --plan capacity.toml

A plan file (--plan) holds the run-wide keys of `swarm run`, exactly one [[phase]] (its
scenario is the search's) and the search:

  [capacity]
  vary = \"rate\"                      # clients | rate | publish-rate
  slo = [\"echo.latency.p99 < 50ms\", \"echo.timeouts == 0\"]
  from = \"1000/s\"                    # or a count of clients: 100
  max = \"100000/s\"
  step-duration = \"20s\"
  warmup = \"5s\"
  precision = \"5%\"

The search grows the load geometrically (x2) from --from until a step breaks an SLO, then
bisects between the last pass and the first fail until they are within --precision. Each
step is a warm-up, then a measured window whose histograms are its own; SLOs are thresholds
evaluated on that window (connect.* on the whole step). A window too short for its
percentile (fewer than 1,000 samples for a p99) is lengthened, and the output says so.
Echo searches and broadcast publish-rate and subscriber-count searches keep their clients:
the whole search is one run whose phases warmup_NN / measure_NN are the steps (between steps
the clients wait, connected and idle, while the last window drains and is judged); a
client-count step connects the clients it adds in its warm-up, at --connect-rate, and lets
those above its count go (a subscriber-count step's publishers stay; its subscribers join
the same --rooms). A connect search's step (no warm-up) connects the clients from the
highest count that held up to its own, the held ones staying connected: after a failed
step the clients above that count close, and the next step connects its own again.
With --procs N (above 1) the search runs over N local worker processes, its clients kept
the same way: every worker runs its share of the one run and takes each step's decision;
a step is judged on the workers' records merged, and each worker is judged for saturation on
its own (a worker lost ends the search: the generator ran out). --expect-workers N (with
--listen and --token) waits for N `swarm worker --join` processes on other machines and
runs the search over them the same way. Subscriber-count searches with --room-size or
heartbeat-only clients run each step as a run of its own in step-NN/, connecting afresh
(over --procs workers too; they refuse --expect-workers).

Default SLOs: echo: echo.latency.p99 < 100ms, echo.timeouts == 0, connect.failed == 0;
broadcast: broadcast.reach >= 0.999, broadcast.latency.p99 < 200ms; connect:
connect.failed == 0, connect.total.p99 < 1s. A connect the server refuses or a connection it
closes fails the step whatever the SLOs.

Loads: --vary rate is echo messages per second, all --clients together; publish-rate is
publishes per second, all --publishers together; clients is connected clients (broadcast:
subscribers).

A step in which the swarm itself saturated (CPU, scheduler lag, send lag, dropped samples)
is neither a pass nor a fail: it is run again at the same load, up to 2 times (a moment of
CPU taken from outside, as on a shared VM, stalls one step; a step whose machine lost CPU
to the hypervisor says so, with its steal), and the search goes on from the repeat; when
all 3 attempts saturate, the search stops and says the generator ran out.

Exit codes: 0 a capacity was found (or --max held), 1 even --from fails, 2 bad usage,
3 the target cannot be reached, 4 the generator saturated before the SLOs broke,
130 interrupted.";

/// Scenarios a capacity search can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CapacityScenario {
    Echo,
    Broadcast,
    Connect,
}

/// `--vary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VaryArg {
    Clients,
    Rate,
    PublishRate,
}

/// `swarm capacity` arguments.
#[derive(Debug, Args, Clone)]
pub struct CapacityArgs {
    /// Target URL (required here or as the --plan file's `url`: the server must not share
    /// the swarm's process).
    pub url: Option<String>,
    /// A plan file (TOML) with one [[phase]] (echo, broadcast or connect) and a [capacity]
    /// table (vary, slo = [...], from, max, step-duration, warmup, precision), whose keys
    /// win over the flags; the URL argument wins over the file's `url`.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Scenario each step runs.
    #[arg(long, value_enum, default_value_t = CapacityScenario::Echo)]
    pub scenario: CapacityScenario,
    /// What grows from step to step [default: rate for echo, publish-rate for broadcast,
    /// clients for connect].
    #[arg(long, value_enum)]
    pub vary: Option<VaryArg>,
    /// Service-level objective, a threshold expression (repeatable), e.g.
    /// 'echo.latency.p99 < 50ms' [default: the scenario's, see below].
    #[arg(long = "slo", value_name = "EXPR")]
    pub slos: Vec<String>,
    /// First load: clients (100, 1k) or a rate (100/s) [default: 100 clients, 100/s
    /// echo, 10/s publishes].
    #[arg(long, value_parser = parse_load)]
    pub from: Option<f64>,
    /// Highest load tried [default: 15k clients, 1000000/s echo, 100000/s publishes].
    #[arg(long, value_parser = parse_load)]
    pub max: Option<f64>,
    /// Measured window of each step (lengthened when its percentile needs more samples).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// Warm-up of each step before its measured window (connects happen in it); 0s: none.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Stop when the first fail is within this of the last pass, e.g. 5% or 0.05.
    #[arg(long, default_value = "5%", value_parser = parse_precision)]
    pub precision: f64,
    /// Echo / connect clients (the fixed count when --vary rate).
    #[arg(long, short = 'c', default_value = "100", value_parser = parse_count)]
    pub clients: u32,
    /// Connect attempts per second at the start of each step, e.g. 500/s [default: 1000/s].
    #[arg(long, value_parser = parse_rate)]
    pub connect_rate: Option<f64>,
    /// Cap of outstanding messages per echo client (closed model). 0 = no cap.
    #[arg(long, default_value_t = 0)]
    pub max_in_flight: u32,
    /// Broadcast: subscribers, rooms, publishers, events. --rate is per echo client (with
    /// --vary clients) or per publisher (broadcast with --vary clients).
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub events: EchoEventArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Internal: the load of the one step a worker of a `--procs` search runs (the
    /// coordinator adds it to the command line it hands its workers).
    #[arg(long, hide = true)]
    pub step_load: Option<f64>,
    /// Internal: that step's measured window (after lengthening); in a search that keeps
    /// its clients, step 1's.
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub step_window: Option<Duration>,
    /// Internal: a worker of a `--procs` search that keeps its clients runs ONE steered
    /// run: step 1's load, the load the later steps are placed at, and the steps it has
    /// room for (capacity/kept.rs).
    #[arg(long, hide = true, num_args = 3, value_names = ["LOAD", "LATER", "STEPS"])]
    pub kept_run: Option<Vec<f64>>,
}

impl CapacityArgs {
    /// The plan of the one step a worker of a `--procs` search runs, when this command line
    /// names one (`--step-load`, `--step-window`): built by the same code as the
    /// coordinator's step ([`capacity::step_plan`]). `None`: not a worker's command line.
    pub fn worker_step_plan(&self) -> Option<Result<crate::plan::Plan, String>> {
        let window = self.step_window.unwrap_or(Duration::ZERO);
        if let Some(k) = &self.kept_run {
            let (load, later, steps) = match k.as_slice() {
                &[load, later, steps] if (1.0..=10_000.0).contains(&steps) => {
                    (load, later, steps as u32)
                }
                _ => return Some(Err(format!("--kept-run {k:?}: LOAD LATER STEPS"))),
            };
            return Some(self.request().and_then(|r| {
                capacity::kept_plan(&r, (load, later), window, steps).map_err(|e| e.to_string())
            }));
        }
        let load = self.step_load?;
        Some(
            self.request()
                .and_then(|r| capacity::step_plan(&r, load, window).map_err(|e| e.to_string())),
        )
    }
}

/// The `[capacity]` table of a plan file (`--plan`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CapacityTable {
    vary: Option<String>,
    #[serde(default)]
    slo: Vec<String>,
    from: Option<toml::Value>,
    max: Option<toml::Value>,
    step_duration: Option<String>,
    warmup: Option<String>,
    precision: Option<toml::Value>,
}

fn vary_of(v: VaryArg) -> Vary {
    match v {
        VaryArg::Clients => Vary::Clients,
        VaryArg::Rate => Vary::Rate,
        VaryArg::PublishRate => Vary::PublishRate,
    }
}

/// A load: a rate (`100/s`) or a count (`100`, `1.5k`).
fn parse_load(s: &str) -> Result<f64, String> {
    if s.contains('/') {
        parse_rate(s)
    } else {
        parse_count(s).map(f64::from)
    }
}

/// `5%` or `0.05`.
fn parse_precision(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match v {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "invalid precision {s:?}: give a share above 0 and at most 100%, e.g. 5% or 0.05"
        )),
    }
}

impl CapacityArgs {
    fn scenario(&self) -> Scenario {
        match self.scenario {
            CapacityScenario::Echo => Scenario::Echo,
            CapacityScenario::Broadcast => Scenario::Broadcast,
            CapacityScenario::Connect => Scenario::Connect,
        }
    }

    /// The scenario's one-phase raw plan, as its own command builds it.
    fn base_plan(&self) -> RawPlan {
        let scenario = self.scenario();
        let pacing = PacingArgs {
            connect_rate: self.connect_rate,
            ramp: None,
            duration: Duration::from_secs(1),
        };
        let phase = pacing.raw_phase(scenario);
        let url: &[String] = self.url.as_slice();
        if scenario == Scenario::Broadcast {
            return RawPlan {
                grace: Some(Ok(self.drain.grace)),
                phases: vec![self.fanout.phase_keys(phase)],
                ..self
                    .fanout
                    .plan_keys(self.target.raw_plan(scenario.name(), url))
            };
        }
        let phase = RawPhase {
            clients: Some(Ok(self.clients)),
            rate: Some(Ok(self.fanout.rate)),
            payload_size: Some(self.fanout.payload_size),
            arrival: Some(self.fanout.arrival),
            max_in_flight: Some(self.max_in_flight),
            ..phase
        };
        RawPlan {
            event: Some(self.events.event.clone()),
            reply_event: self.events.reply_event.clone(),
            grace: Some(Ok(self.drain.grace)),
            phases: vec![phase],
            ..self.target.raw_plan(scenario.name(), url)
        }
    }

    /// The search this command asks for (with `--plan`, read from the file: a problem
    /// with it is a usage error).
    pub fn request(&self) -> Result<capacity::Request, String> {
        let mut output: crate::plan::RawOutput = (&self.output).into();
        output.thresholds.clear();
        let mut spec = Spec {
            scenario: self.scenario(),
            vary: self.vary.map(vary_of),
            slos: self.slos.clone(),
            from: self.from,
            max: self.max,
            step: self.step_duration,
            warmup: self.warmup,
            precision: self.precision,
        };
        let Some(path) = &self.plan else {
            let me = self.clone();
            return Ok(capacity::Request {
                base: Box::new(move || me.base_plan()),
                output,
                spec,
            });
        };
        let bad = |why: String| format!("plan {}: {why}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let search = match table.remove("capacity") {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(bad("it has no [capacity] table".into())),
        };
        let search: CapacityTable = search
            .try_into()
            .map_err(|e: toml::de::Error| bad(format!("[capacity]: {e}")))?;
        let rest = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
        let raw: RawPlan = toml::from_str(&rest).map_err(|e| bad(e.to_string()))?;
        if raw.phases.len() != 1 {
            return Err(bad(format!(
                "a capacity plan has exactly one [[phase]] (each step runs it at its load), \
                 not {}",
                raw.phases.len()
            )));
        }
        spec.scenario = raw.phases[0].scenario.unwrap_or(Scenario::Connect);
        if let Some(v) = &search.vary {
            spec.vary = Some(match v.as_str() {
                "clients" => Vary::Clients,
                "rate" => Vary::Rate,
                "publish-rate" | "publish_rate" => Vary::PublishRate,
                other => {
                    return Err(bad(format!(
                        "[capacity] vary = {other:?}: use clients, rate or publish-rate"
                    )));
                }
            });
        }
        if !search.slo.is_empty() {
            spec.slos = search.slo.clone();
        }
        let load = |v: &Option<toml::Value>, key: &str| -> Result<Option<f64>, String> {
            Ok(match v {
                None => None,
                Some(toml::Value::Integer(n)) => Some(*n as f64),
                Some(toml::Value::Float(f)) => Some(*f),
                Some(toml::Value::String(s)) => {
                    Some(parse_load(s).map_err(|e| bad(format!("[capacity] {key}: {e}")))?)
                }
                Some(other) => return Err(bad(format!("[capacity] {key} = {other}: not a load"))),
            })
        };
        spec.from = load(&search.from, "from")?.or(spec.from);
        spec.max = load(&search.max, "max")?.or(spec.max);
        let dur = |v: &Option<String>, key: &str| -> Result<Option<Duration>, String> {
            v.as_deref()
                .map(|s| parse_duration(s).map_err(|e| bad(format!("[capacity] {key}: {e}"))))
                .transpose()
        };
        spec.step = dur(&search.step_duration, "step-duration")?.unwrap_or(spec.step);
        spec.warmup = dur(&search.warmup, "warmup")?.unwrap_or(spec.warmup);
        if let Some(p) = &search.precision {
            spec.precision = match p {
                toml::Value::Float(f) => *f,
                toml::Value::String(s) => {
                    parse_precision(s).map_err(|e| bad(format!("[capacity] precision: {e}")))?
                }
                other => return Err(bad(format!("[capacity] precision = {other}: e.g. \"5%\""))),
            };
        }
        let url = self.url.clone();
        let name = path
            .file_stem()
            .map_or_else(|| "capacity".into(), |s| s.to_string_lossy().into_owned());
        Ok(capacity::Request {
            base: Box::new(move || {
                // Parsed once above; the text does not change.
                let mut raw: RawPlan = toml::from_str(&rest).unwrap_or_default();
                if let Some(u) = &url {
                    raw.url = Some(crate::plan::Urls::One(u.clone()));
                }
                if raw.name.is_none() {
                    raw.name = Some(name.clone());
                }
                raw
            }),
            output,
            spec,
        })
    }

    /// `--threshold` is the run commands' pass/fail rule; a search takes `--slo`.
    pub fn thresholds_given(&self) -> bool {
        !self.output.thresholds.is_empty()
    }

    /// `--abort-on-fail` / `--abort-delay` (hidden here): a search stops on its own when a
    /// step breaks an SLO, so they would do nothing.
    pub fn abort_given(&self) -> bool {
        self.output.live.abort_on_fail || self.output.live.abort_delay.is_some()
    }
}
