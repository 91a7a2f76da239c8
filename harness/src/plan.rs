//! Raw CLI arguments or a TOML plan file -> a validated [`Plan`].
//!
//! Receives: a parsed [`crate::cli::Command`] (and the plan file's text for `swarm run`).
//! Emits: a [`Plan`] in which every value has been checked (URL, protocol options, phases,
//! payload size, thresholds), or a [`PlanError`] listing every problem at once.
//! Must not: open sockets or files other than the plan file, or start anything: a plan
//! error means nothing was opened (exit code 2).
//!
//! Every CLI scenario is a one-phase plan; `swarm run` without a file runs [`DEFAULT_PLAN`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{Command, OutputArgs, ScenarioArgs};
use crate::model::{Arrival, ParserKind, Protocol, Transport};
use crate::payload::MIN_PAYLOAD_SIZE;

mod endpoint;
mod fanout;
mod validate;
pub use endpoint::Endpoint;
pub use fanout::{ChurnOpts, FanTarget, Fanout, HeartbeatOpts, Mute};
use validate::validate;

/// The built-in plan of `swarm run` without a file: connect ramp, steady echo, short
/// spike. At most 2,000 clients, about a minute.
pub const DEFAULT_PLAN: &str = include_str!("../plans/default.toml");

/// Connect attempts per second when neither `connect-rate` nor `ramp` is given.
pub const DEFAULT_CONNECT_RATE: f64 = 1000.0;

/// What a phase does once its clients are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Hold the connections.
    Connect,
    /// Send timed messages and match the replies.
    Echo,
    /// Publishers send into rooms; every delivery at every subscriber is accounted.
    Broadcast,
    /// Idle clients watch the server's heartbeat (some may stop answering it).
    Heartbeat,
    /// A broadcast during which subscribers drop and reconnect.
    Churn,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Echo => "echo",
            Scenario::Broadcast => "broadcast",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Churn => "churn",
        }
    }

    /// Broadcast or churn: publishers and subscribers.
    pub fn fans_out(self) -> bool {
        matches!(self, Scenario::Broadcast | Scenario::Churn)
    }
}

/// How to talk to the target, for the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `None`: start an embedded target-server and target it.
    pub endpoint: Option<Endpoint>,
    pub protocol: Protocol,
    pub transport: Transport,
    /// Engine.IO path (Socket.IO), with leading and trailing `/`.
    pub eio_path: String,
    pub event: String,
    pub reply_event: Option<String>,
    /// Socket.IO CONNECT payload (a JSON object), serialized.
    pub auth: Option<String>,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub parser: ParserKind,
    pub insecure: bool,
    /// Local addresses to connect from (`--source-addrs`).
    pub source: crate::source::SourceSpec,
    /// Largest message a client accepts (`--max-message-size`).
    pub max_message_size: usize,
    /// A write blocked this long ends the connection (`--write-timeout`; `None`: off).
    pub write_timeout: Option<Duration>,
    /// Broadcast events, raw WS publish URL, expected WS ping period, reconnects.
    pub fan: FanTarget,
}

/// One phase, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub scenario: Scenario,
    /// Clients connected during this phase.
    pub clients: u32,
    /// Time over which this phase's new clients connect (0 when none are new).
    pub ramp: Duration,
    /// Time the phase lasts after its ramp.
    pub duration: Duration,
    /// Messages per second per client (echo).
    pub rate_per_s: f64,
    pub payload_size: usize,
    pub arrival: Arrival,
    /// 0 = open model.
    pub max_in_flight: u32,
    /// Broadcast / churn: publishers, subscribers, rooms (`rate_per_s` is per publisher).
    pub fanout: Option<Fanout>,
    /// Heartbeat-only clients, muting, client pings.
    pub heartbeat: HeartbeatOpts,
    /// Churn: drops per second.
    pub churn: Option<ChurnOpts>,
}

/// Output options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    pub out: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    pub thresholds: Vec<String>,
}

/// A validated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Scenario or plan name, used in the default output folder.
    pub name: String,
    pub target: Target,
    pub phases: Vec<Phase>,
    pub timeout: Duration,
    pub grace: Duration,
    pub output: Output,
}

impl Plan {
    /// Largest number of clients connected at once.
    pub fn max_clients(&self) -> u32 {
        self.phases.iter().map(|p| p.clients).max().unwrap_or(0)
    }

    /// Time from the first connect to the end of the last phase (without the drain).
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.ramp + p.duration).sum()
    }
}

/// Everything wrong with a plan, one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {why}")]
    Read { path: String, why: String },
    #[error("invalid plan:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The plan file, as written (keys as the CLI options, in kebab-case).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPlan {
    pub name: Option<String>,
    pub url: Option<String>,
    pub protocol: Option<Protocol>,
    pub transport: Option<Transport>,
    pub path: Option<String>,
    pub event: Option<String>,
    pub reply_event: Option<String>,
    pub auth: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
    pub timeout: Option<String>,
    pub grace: Option<String>,
    pub parser: Option<ParserKind>,
    #[serde(default)]
    pub insecure: bool,
    pub source_addrs: Option<String>,
    pub max_message_size: Option<String>,
    pub write_timeout: Option<String>,
    #[serde(default)]
    pub thresholds: Vec<String>,
    pub join_event: Option<String>,
    pub join_args: Option<String>,
    pub leave_event: Option<String>,
    pub publish_event: Option<String>,
    pub publish_args: Option<String>,
    pub subscribe_event: Option<String>,
    pub publish_url: Option<String>,
    pub ping_interval: Option<String>,
    #[serde(default)]
    pub reconnect: bool,
    pub reconnect_delay: Option<String>,
    pub reconnect_max_delay: Option<String>,
    pub reconnect_jitter: Option<crate::model::Jitter>,
    pub reconnect_max_attempts: Option<u32>,
    #[serde(default, rename = "phase")]
    pub phases: Vec<RawPhase>,
}

/// One `[[phase]]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPhase {
    pub name: Option<String>,
    pub scenario: Option<Scenario>,
    pub clients: Option<toml::Value>,
    pub connect_rate: Option<String>,
    pub ramp: Option<String>,
    pub duration: Option<String>,
    pub rate: Option<String>,
    pub payload_size: Option<usize>,
    pub arrival: Option<Arrival>,
    pub max_in_flight: Option<u32>,
    pub subscribers: Option<toml::Value>,
    pub publishers: Option<u32>,
    pub rooms: Option<u32>,
    pub room_size: Option<u32>,
    pub server_publisher: Option<String>,
    pub heartbeat_clients: Option<toml::Value>,
    pub mute: Option<String>,
    pub client_ping_interval: Option<String>,
    pub churn_rate: Option<String>,
}

/// Builds the plan of any subcommand. `swarm run PLAN` reads the file here.
pub fn from_command(command: &Command) -> Result<Plan, PlanError> {
    match command {
        Command::Connect(args) => from_scenario(Scenario::Connect, args),
        Command::Echo(args) => from_scenario(Scenario::Echo, args),
        Command::Run(args) => {
            let (text, name) = match &args.plan {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| PlanError::Read {
                        path: path.display().to_string(),
                        why: e.to_string(),
                    })?;
                    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                    (text, stem.unwrap_or_else(|| "plan".into()))
                }
                None => (DEFAULT_PLAN.to_string(), "default".to_string()),
            };
            from_toml_with(
                &text,
                &name,
                args.url.as_deref(),
                &args.reconnect,
                &args.output,
            )
        }
        Command::Broadcast(args) => fanout::from_broadcast(Scenario::Broadcast, args, None),
        Command::Churn(args) => {
            fanout::from_broadcast(Scenario::Churn, &args.broadcast, Some(args.churn_rate))
        }
        Command::Heartbeat(args) => fanout::from_heartbeat(args),
        Command::Report(_) | Command::Compare(_) => Err(PlanError::Invalid(vec![
            "`swarm report` and `swarm compare` read results files; they run no plan".into(),
        ])),
    }
}

/// A one-phase plan from `swarm connect` / `swarm echo`.
pub fn from_scenario(scenario: Scenario, args: &ScenarioArgs) -> Result<Plan, PlanError> {
    let t = &args.target;
    let l = &args.load;
    let raw = RawPlan {
        name: Some(scenario.name().to_string()),
        url: args.url.clone(),
        protocol: t.protocol,
        transport: Some(t.transport),
        path: Some(t.path.clone()),
        event: Some(t.event.clone()),
        reply_event: t.reply_event.clone(),
        auth: t.auth.clone(),
        headers: t.headers.clone(),
        query: t.query.clone(),
        timeout: Some(format!("{}ms", t.timeout.as_millis())),
        grace: Some(format!("{}ms", t.grace.as_millis())),
        parser: Some(t.parser),
        insecure: t.insecure,
        source_addrs: Some(t.source_addrs.to_string()),
        max_message_size: Some(t.max_message_size.to_string()),
        write_timeout: Some(crate::cli::write_timeout_text(t.write_timeout)),
        ..RawPlan::default()
    };
    let raw = reconnect_over(raw, &args.reconnect);
    let phase = Phase {
        name: scenario.name().to_string(),
        scenario,
        clients: l.clients,
        ramp: Duration::ZERO,
        duration: l.duration,
        rate_per_s: l.rate,
        payload_size: l.payload_size,
        arrival: l.arrival,
        max_in_flight: l.max_in_flight,
        fanout: None,
        heartbeat: HeartbeatOpts::default(),
        churn: None,
    };
    let mut errors = Vec::new();
    let ramp = ramp_of(l.clients, l.connect_rate, l.ramp, &mut errors);
    let phase = Phase { ramp, ..phase };
    check_phase(&phase, &mut errors);
    validate(raw, vec![phase], args.url.as_deref(), &args.output, errors)
}

/// A plan from TOML text; `url` (from `--url`) overrides the file's.
pub fn from_toml(
    text: &str,
    name: &str,
    url: Option<&str>,
    output: &OutputArgs,
) -> Result<Plan, PlanError> {
    from_toml_with(
        text,
        name,
        url,
        &crate::cli::ReconnectArgs::default(),
        output,
    )
}

/// [`from_toml`], with the reconnect options of the command line over the file's.
pub fn from_toml_with(
    text: &str,
    name: &str,
    url: Option<&str>,
    reconnect: &crate::cli::ReconnectArgs,
    output: &OutputArgs,
) -> Result<Plan, PlanError> {
    let mut raw: RawPlan =
        toml::from_str(text).map_err(|e| PlanError::Invalid(vec![e.to_string()]))?;
    if raw.name.is_none() {
        raw.name = Some(name.to_string());
    }
    from_raw(reconnect_over(raw, reconnect), url, output)
}

/// The `--reconnect*` options given on the command line, over the raw plan's keys.
pub(crate) fn reconnect_over(mut raw: RawPlan, a: &crate::cli::ReconnectArgs) -> RawPlan {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    raw.reconnect |= a.reconnect;
    if let Some(d) = a.reconnect_delay {
        raw.reconnect_delay = Some(ms(d));
    }
    if let Some(d) = a.reconnect_max_delay {
        raw.reconnect_max_delay = Some(ms(d));
    }
    if let Some(j) = a.reconnect_jitter {
        raw.reconnect_jitter = Some(j);
    }
    if let Some(n) = a.reconnect_max_attempts {
        raw.reconnect_max_attempts = Some(n);
    }
    raw
}

/// A plan from its raw form (a TOML file, or a command line written as one); `url`
/// overrides the raw one.
pub fn from_raw(
    mut raw: RawPlan,
    url: Option<&str>,
    output: &OutputArgs,
) -> Result<Plan, PlanError> {
    let mut errors = Vec::new();
    let mut phases = Vec::new();
    let mut prev_clients = 0;
    if raw.phases.is_empty() {
        errors.push("the plan has no [[phase]]".to_string());
    }
    for (i, rp) in raw.phases.iter().enumerate() {
        let label = rp.name.clone().unwrap_or_else(|| format!("phase{}", i + 1));
        let mut errs = Vec::new();
        let scenario = rp.scenario.unwrap_or(Scenario::Connect);
        let opts = fanout::phase_opts(rp, scenario, &mut errs);
        let clients = match (&rp.clients, opts.implied_clients) {
            (None, Some(n)) => Ok(n),
            (Some(v), _) => count_value(v, "clients"),
            (None, None) => Err("clients is required".to_string()),
        }
        .unwrap_or_else(|e| {
            errs.push(e);
            0
        });
        if let (Some(_), Some(n)) = (&rp.clients, opts.implied_clients)
            && n != clients
        {
            errs.push(format!(
                "clients = {clients} but publishers + subscribers + heartbeat-clients = {n} (leave clients out)"
            ));
        }
        let connect_rate = opt_rate(&rp.connect_rate, "connect-rate", &mut errs);
        let ramp_given = opt_duration(&rp.ramp, "ramp", &mut errs);
        if rp.connect_rate.is_some() && rp.ramp.is_some() {
            errs.push("give connect-rate or ramp, not both".into());
        }
        let duration = opt_duration(&rp.duration, "duration", &mut errs).unwrap_or_else(|| {
            if rp.duration.is_none() {
                errs.push("duration is required".into());
            }
            Duration::ZERO
        });
        let new_clients = clients.saturating_sub(prev_clients);
        let ramp = ramp_of(new_clients, connect_rate, ramp_given, &mut errs);
        let default_rate = if scenario.fans_out() { 10.0 } else { 1.0 };
        let phase = Phase {
            name: label.clone(),
            scenario,
            clients,
            ramp,
            duration,
            rate_per_s: opt_rate(&rp.rate, "rate", &mut errs).unwrap_or(default_rate),
            payload_size: rp.payload_size.unwrap_or(MIN_PAYLOAD_SIZE),
            arrival: rp.arrival.unwrap_or(Arrival::Constant),
            max_in_flight: rp.max_in_flight.unwrap_or(0),
            fanout: opts.fanout,
            heartbeat: opts.heartbeat,
            churn: opts.churn,
        };
        check_phase(&phase, &mut errs);
        errors.extend(errs.into_iter().map(|e| format!("phase {label:?}: {e}")));
        prev_clients = clients;
        phases.push(phase);
    }
    let mut seen = std::collections::HashSet::new();
    for p in &phases {
        if !seen.insert(p.name.clone()) {
            errors.push(format!("phase name {:?} is used twice", p.name));
        }
    }
    let file_url = raw.url.clone();
    let url = url.map(str::to_string).or(file_url);
    let mut output = output.clone();
    output
        .thresholds
        .splice(0..0, std::mem::take(&mut raw.thresholds));
    validate(raw, phases, url.as_deref(), &output, errors)
}

/// A count written as a TOML integer or a string like `"10k"`.
pub(crate) fn count_value(v: &toml::Value, what: &str) -> Result<u32, String> {
    match v {
        toml::Value::Integer(n) => u32::try_from(*n).map_err(|_| format!("{what} must be 0..4e9")),
        toml::Value::String(s) => crate::model::parse_count(s),
        _ => Err(format!("{what} must be a number or a count like \"10k\"")),
    }
}

pub(crate) fn opt_duration(
    v: &Option<String>,
    what: &str,
    errs: &mut Vec<String>,
) -> Option<Duration> {
    v.as_deref().and_then(|s| {
        crate::model::parse_duration(s)
            .map_err(|e| errs.push(format!("{what}: {e}")))
            .ok()
    })
}

pub(crate) fn opt_rate(v: &Option<String>, what: &str, errs: &mut Vec<String>) -> Option<f64> {
    v.as_deref().and_then(|s| {
        crate::model::parse_rate(s)
            .map_err(|e| errs.push(format!("{what}: {e}")))
            .ok()
    })
}

fn ramp_of(
    new_clients: u32,
    connect_rate: Option<f64>,
    ramp: Option<Duration>,
    errors: &mut Vec<String>,
) -> Duration {
    if let Some(r) = ramp {
        return r;
    }
    let rate = connect_rate.unwrap_or(DEFAULT_CONNECT_RATE);
    if rate <= 0.0 {
        errors.push("connect-rate must be above zero".into());
        return Duration::ZERO;
    }
    Duration::from_secs_f64(f64::from(new_clients) / rate)
}

fn check_phase(p: &Phase, errors: &mut Vec<String>) {
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.push(format!("phase name {:?} must be [A-Za-z0-9_-]+", p.name));
    }
    if p.scenario == Scenario::Echo || p.scenario.fans_out() {
        if !(p.rate_per_s > 0.0 && p.rate_per_s <= 100_000.0) {
            errors.push(format!(
                "rate {} per second per client (or publisher) must be above 0 and at most 100000",
                p.rate_per_s
            ));
        }
        if p.payload_size < MIN_PAYLOAD_SIZE {
            errors.push(format!(
                "payload-size {} is below the minimum of {MIN_PAYLOAD_SIZE} bytes (the payload object with its widest numbers)",
                p.payload_size
            ));
        }
        if p.payload_size > 16 << 20 {
            errors.push(format!("payload-size {} is above 16 MiB", p.payload_size));
        }
    }
    if p.duration > Duration::from_secs(7 * 24 * 3600)
        || p.ramp > Duration::from_secs(7 * 24 * 3600)
    {
        errors.push("durations above a week are not supported".into());
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub mod tests_support;
