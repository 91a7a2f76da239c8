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

use super::{OutputArgs, PacingArgs, TargetArgs, parse_count, parse_duration, parse_rate};

pub const CAPACITY_HELP: &str = "\
Examples:
  swarm capacity http://127.0.0.1:3000 --scenario echo --vary rate --clients 100 \\
        --slo 'echo.latency.p99 < 50ms' --slo 'echo.timeouts == 0'
  swarm capacity ws://127.0.0.1:3000/ws/echo --vary clients --rate 10/s --from 100 --max 10k
  swarm capacity http://127.0.0.1:3000 --scenario broadcast --vary publish-rate \\
        --subscribers 1000 --from 10/s --step-duration 10s
  swarm capacity http://127.0.0.1:3000 --scenario connect --vary clients --connect-rate 500/s

The search grows the load geometrically (x2) from --from until a step breaks an SLO, then
bisects between the last pass and the first fail until they are within --precision. Each
step is a run of its own (in step-NN/ of the output folder): a warm-up, then a measured
window whose histograms are its own; SLOs are thresholds evaluated on that window (connect.*
on the whole step). A window too short for its percentile (fewer than 1,000 samples for a
p99) is lengthened, and the output says so. Clients are kept from the warm-up into the
measured window; each step connects its clients afresh.

Default SLOs: echo: echo.latency.p99 < 100ms, echo.timeouts == 0, connect.failed == 0;
broadcast: broadcast.reach >= 0.999, broadcast.latency.p99 < 200ms; connect:
connect.failed == 0, connect.total.p99 < 1s. A connect the server refuses or a connection it
closes fails the step whatever the SLOs.

Loads: --vary rate is echo messages per second, all --clients together; publish-rate is
publishes per second, all --publishers together; clients is connected clients (broadcast:
subscribers).

A step in which the swarm itself saturated (CPU, scheduler lag, send lag, dropped samples)
is neither a pass nor a fail: the search stops and says the generator ran out.

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
    /// Target URL (required: the server must not share the swarm's process).
    pub url: Option<String>,
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
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
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
        let url = &self.url;
        if scenario == Scenario::Broadcast {
            return RawPlan {
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
            event: Some(self.target.event.clone()),
            reply_event: self.target.reply_event.clone(),
            phases: vec![phase],
            ..self.target.raw_plan(scenario.name(), url)
        }
    }

    /// The search this command asks for.
    pub fn request(&self) -> capacity::Request {
        let me = self.clone();
        let mut output: crate::plan::RawOutput = (&self.output).into();
        output.thresholds.clear();
        capacity::Request {
            base: Box::new(move || me.base_plan()),
            output,
            spec: Spec {
                scenario: self.scenario(),
                vary: self.vary.map(|v| match v {
                    VaryArg::Clients => Vary::Clients,
                    VaryArg::Rate => Vary::Rate,
                    VaryArg::PublishRate => Vary::PublishRate,
                }),
                slos: self.slos.clone(),
                from: self.from,
                max: self.max,
                step: self.step_duration,
                warmup: self.warmup,
                precision: self.precision,
            },
        }
    }

    /// `--threshold` is the run commands' pass/fail rule; a search takes `--slo`.
    pub fn thresholds_given(&self) -> bool {
        !self.output.thresholds.is_empty()
    }
}
