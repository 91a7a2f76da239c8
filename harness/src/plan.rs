//! A [`Request`] (a command line's values, or a TOML plan file) -> a validated [`Plan`].
//!
//! Receives: a [`Request`] (the CLI converts its commands into one; `swarm run` names the plan
//! file, read here). Emits: a [`Plan`] in which every value has been checked (URL, protocol
//! options, phases, payload size, thresholds) and every default decided, or a [`PlanError`]
//! listing every problem at once.
//! Must not: import the CLI, open sockets or files other than the plan file and its data
//! file (`--data`), or start anything: a plan error means nothing was opened (exit code 2).
//! `${NAME}` in a plan file's strings is the environment variable NAME (`$${` is a literal
//! `${`); a variable that is not set is an error.
//!
//! Every CLI scenario is a one-phase [`RawPlan`] and takes the route of a plan file;
//! `swarm run` without a file runs [`DEFAULT_PLAN`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Arrival, ParserKind, Protocol, Transport};
use crate::payload::MIN_PAYLOAD_SIZE;

mod broadcast;
mod churn;
mod endpoint;
pub mod flow;
mod heartbeat;
mod raw;
mod validate;
pub use broadcast::{FanTarget, Fanout};
pub use churn::ChurnOpts;
pub use endpoint::Endpoint;
pub use heartbeat::{HeartbeatOpts, Mute, parse_mute};
pub use raw::{
    ByteSize, Checked, RawOutput, RawPhase, RawPlan, ReconnectOverride, TargetOverride, Urls,
};
use raw::{take, take_bare};
use validate::validate;

/// The built-in plan of `swarm run` without a file: connect ramp, steady echo, short
/// spike. At most 2,000 clients, about a minute.
pub const DEFAULT_PLAN: &str = include_str!("../plans/default.toml");

/// Ping interval and timeout of the embedded target-server in a plan with a heartbeat
/// phase: short enough that a demo run sees pings (the run file records the advertised
/// values). Raw WS clients of such a plan expect pings at this interval.
pub const EMBEDDED_HEARTBEAT: (Duration, Duration) =
    (Duration::from_secs(2), Duration::from_secs(1));

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
    /// Each client runs a message flow (`[[flow]]`, plan/flow.rs).
    Flow,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Echo => "echo",
            Scenario::Broadcast => "broadcast",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Churn => "churn",
            Scenario::Flow => "flow",
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
    /// Further targets (`url` given several times): the run spreads its clients
    /// round-robin over `endpoint` and these, one worker process per target at least
    /// (harness/src/cluster/, docs/DISTRIBUTED.md). Empty for one target.
    pub more: Vec<Endpoint>,
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
    /// Private CA, client certificate, server name, address override, address spreading.
    pub tls: TlsOpts,
    /// Per-connection data (`--data`): client `i` fills `{FIELD}` placeholders from record
    /// `i` (docs/TESTING-YOUR-SERVER.md).
    pub data: Option<std::sync::Arc<crate::data::Data>>,
    /// `--record-data`: the run file holds the data values.
    pub record_data: bool,
}

/// How the clients reach a TLS target and which addresses they use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsOpts {
    /// Trust these CAs (PEM) instead of the built-in webpki roots.
    pub cacert: Option<PathBuf>,
    /// Client certificate chain and private key (PEM), for servers that ask for one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Server name sent (SNI) and verified, instead of the URL's host.
    pub sni: Option<String>,
    /// `host:port` to connect to instead of the URL's (its name still goes in SNI and Host).
    pub connect_to: Option<(String, u16)>,
    pub resolve: crate::model::Resolve,
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
    /// Flow: what each client runs (set by validation from the phase's `flow` key).
    pub flow: Option<std::sync::Arc<flow::Flow>>,
}

/// Output options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    pub out: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    /// Pass/fail rules as written (the plan file's, then the command line's).
    pub thresholds: Vec<String>,
    /// The same rules, parsed (once, during validation); the run evaluates these.
    pub parsed_thresholds: Vec<reports::threshold::Rule>,
    /// Write `results.json` (and the interval log) but no report: a worker's results, read
    /// by its coordinator, which renders the merged run's report.
    pub results_only: bool,
    /// The live outputs (metrics endpoint, remote write, NDJSON, JUnit, abort).
    pub live: crate::live::LiveOptions,
}

/// How many processes run the clients, and how workers reach the coordinator.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scale {
    pub procs: crate::model::Procs,
    /// The coordinator's control address (`--listen`; default 127.0.0.1, any port).
    pub listen: Option<std::net::SocketAddr>,
    /// Remote workers to wait for (`--expect-workers`).
    pub expect_workers: u32,
    /// The run's token (`--token`; else the environment's `SWARM_TOKEN`; else a random one
    /// for local workers).
    pub token: Option<String>,
    /// Targets the clients spread over (1, or the number of URLs given); worker `i` drives
    /// target `i % targets`.
    pub targets: u32,
}

impl Scale {
    /// Workers of a run whose peak is `clients` clients: local ones plus the expected remote
    /// ones. 0 or 1 local and none remote: the run stays in this process.
    pub fn workers(&self, clients: u32) -> (u32, u32) {
        let local = self.procs.local_workers(clients);
        let targets = self.targets.max(1);
        // Auto with several targets: a whole number of workers per target.
        let local = match self.procs {
            crate::model::Procs::Auto if targets > 1 => local.div_ceil(targets) * targets,
            _ => local,
        };
        (local, self.expect_workers)
    }

    /// Whether the run needs a coordinator and workers.
    pub fn distributed(&self, clients: u32) -> bool {
        let (local, remote) = self.workers(clients);
        remote > 0 || local > 1
    }
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
    /// Processes and workers (more than one process: `cluster/`).
    pub scale: Scale,
    /// The plan file's text, when the plan came from a file (workers build the same plan
    /// from it).
    pub source_text: Option<String>,
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

/// What a command asks the plan layer for (the CLI converts its commands into this).
#[derive(Debug)]
pub enum Request {
    /// `swarm run [FILE]`: a TOML plan file (`None`: [`DEFAULT_PLAN`]), with the command
    /// line's URL and reconnect options over the file's keys.
    File {
        path: Option<PathBuf>,
        /// `--url`, once or several times (empty: the file's).
        url: Vec<String>,
        reconnect: ReconnectOverride,
        /// `--auth`, `--header`, `--query`, `--data*`, TLS options over the file's keys.
        target: Box<TargetOverride>,
        output: RawOutput,
    },
    /// A one-phase command (`connect`, `echo`, `broadcast`, `churn`, `heartbeat`) written
    /// as a raw plan.
    Command {
        raw: Box<RawPlan>,
        output: RawOutput,
        /// Phase errors carry the phase's name (`phase "broadcast": ...`); off for
        /// `connect` and `echo`, whose flags are not phase keys.
        label_errors: bool,
    },
}

/// Builds the plan of a command, given as anything that converts into a [`Request`] (the
/// binary passes `&cli::Command`; `swarm report|compare` convert into an error).
pub fn from_command<C>(command: C) -> Result<Plan, PlanError>
where
    C: TryInto<Request, Error = PlanError>,
{
    from_request(command.try_into()?)
}

/// Builds the plan a [`Request`] describes. `swarm run FILE` reads the file here.
pub fn from_request(request: Request) -> Result<Plan, PlanError> {
    from_request_text(request, None)
}

/// [`from_request`], with the plan file's text given (a worker gets it from its
/// coordinator: the file is on the coordinator's machine); `None`: read the file.
pub fn from_request_text(request: Request, file_text: Option<String>) -> Result<Plan, PlanError> {
    match request {
        Request::File {
            path,
            url,
            reconnect,
            target,
            output,
        } => {
            let (text, name) = match &path {
                Some(path) => {
                    let text = match file_text {
                        Some(t) => t,
                        None => std::fs::read_to_string(path).map_err(|e| PlanError::Read {
                            path: path.display().to_string(),
                            why: e.to_string(),
                        })?,
                    };
                    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                    (text, stem.unwrap_or_else(|| "plan".into()))
                }
                None => (DEFAULT_PLAN.to_string(), "default".to_string()),
            };
            let base = path.as_deref().and_then(std::path::Path::parent);
            let mut plan = from_toml_in(&text, &name, &url, &reconnect, &target, &output, base)?;
            plan.source_text = path.is_some().then_some(text);
            Ok(plan)
        }
        Request::Command {
            raw,
            output,
            label_errors,
        } => build(*raw, &[], &output, label_errors),
    }
}

/// A plan from TOML text; `url` (from `--url`) overrides the file's.
pub fn from_toml(
    text: &str,
    name: &str,
    url: Option<&str>,
    output: &RawOutput,
) -> Result<Plan, PlanError> {
    let urls: Vec<String> = url.map(str::to_string).into_iter().collect();
    from_toml_with(text, name, &urls, &ReconnectOverride::default(), output)
}

/// [`from_toml`], with the URLs (`--url`, once or more; empty: the file's) and the
/// reconnect options of the command line over the file's.
pub fn from_toml_with(
    text: &str,
    name: &str,
    url: &[String],
    reconnect: &ReconnectOverride,
    output: &RawOutput,
) -> Result<Plan, PlanError> {
    from_toml_target(
        text,
        name,
        url,
        reconnect,
        &TargetOverride::default(),
        output,
    )
}

/// [`from_toml_with`], with the command line's target options (`--auth`, `--header`,
/// `--query`, `--data*`) over the file's.
pub fn from_toml_target(
    text: &str,
    name: &str,
    url: &[String],
    reconnect: &ReconnectOverride,
    target: &TargetOverride,
    output: &RawOutput,
) -> Result<Plan, PlanError> {
    from_toml_in(text, name, url, reconnect, target, output, None)
}

/// [`from_toml_target`] for a plan file in folder `base`: the file's relative paths
/// (`data`, `cacert`, `cert`, `key`) are taken from there; the command line's stay
/// relative to the working directory.
fn from_toml_in(
    text: &str,
    name: &str,
    url: &[String],
    reconnect: &ReconnectOverride,
    target: &TargetOverride,
    output: &RawOutput,
    base: Option<&std::path::Path>,
) -> Result<Plan, PlanError> {
    let invalid = |e: String| PlanError::Invalid(vec![e]);
    let mut raw: RawPlan = if text.contains("${") {
        // Interpolated in the parsed strings, not the text: a value cannot break the TOML.
        let mut value: toml::Value = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        interpolate_env(&mut value, &|k| std::env::var(k).ok()).map_err(invalid)?;
        RawPlan::deserialize(value).map_err(|e| invalid(e.to_string()))?
    } else {
        toml::from_str(text).map_err(|e| invalid(e.to_string()))?
    };
    if raw.name.is_none() {
        raw.name = Some(name.to_string());
    }
    if let Some(base) = base.filter(|b| !b.as_os_str().is_empty()) {
        for p in [&mut raw.data, &mut raw.cacert, &mut raw.cert, &mut raw.key] {
            if let Some(v) = p
                && std::path::Path::new(v.as_str()).is_relative()
            {
                *v = base.join(&*v).display().to_string();
            }
        }
    }
    build(
        raw.with_reconnect(reconnect).with_target(target),
        url,
        output,
        true,
    )
}

/// Replaces `${NAME}` in every string of `v` by `env(NAME)`; `$${` stays a literal `${`.
/// An unset variable or an unclosed `${` is an error naming the variable, not its value.
pub fn interpolate_env(
    v: &mut toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match v {
        toml::Value::String(s) if s.contains("${") => *s = interpolate_str(s, env)?,
        toml::Value::Array(a) => {
            for x in a {
                interpolate_env(x, env)?;
            }
        }
        toml::Value::Table(t) => {
            for (_, x) in t.iter_mut() {
                interpolate_env(x, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn interpolate_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let Some(end) = rest[i + 2..].find('}') else {
            return Err("a `${` in the plan is never closed by `}`".into());
        };
        let name = &rest[i + 2..i + 2 + end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{name}}}` in the plan: variable names are [A-Za-z0-9_]+ (write `$${{` \
                 for a literal `${{`)"
            ));
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "the plan uses `${{{name}}}` but the environment variable {name} is not set"
                ));
            }
        }
        rest = &rest[i + 2 + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A plan from its raw form (a TOML file, or a command line written as one); `url`
/// overrides the raw one.
pub fn from_raw(raw: RawPlan, url: Option<&str>, output: &RawOutput) -> Result<Plan, PlanError> {
    let urls: Vec<String> = url.map(str::to_string).into_iter().collect();
    build(raw, &urls, output, true)
}

/// The one route from a raw plan to a [`Plan`]: phases one by one, then the run-wide rules.
fn build(
    mut raw: RawPlan,
    url: &[String],
    output: &RawOutput,
    label_errors: bool,
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
        let phase = phase(rp, label.clone(), prev_clients, &mut errs);
        if label_errors {
            errors.extend(errs.into_iter().map(|e| format!("phase {label:?}: {e}")));
        } else {
            errors.extend(errs);
        }
        prev_clients = phase.clients;
        phases.push(phase);
    }
    let mut seen = std::collections::HashSet::new();
    for p in &phases {
        if !seen.insert(p.name.clone()) {
            errors.push(format!("phase name {:?} is used twice", p.name));
        }
    }
    let urls = match url {
        [] => raw.url.clone().map(Urls::into_vec).unwrap_or_default(),
        given => given.to_vec(),
    };
    let mut output = output.clone();
    output
        .thresholds
        .splice(0..0, std::mem::take(&mut raw.thresholds));
    validate(raw, phases, &urls, &output, errors)
}

/// One raw phase, checked; `prev_clients` were connected by the phase before. Problems go
/// to `errs`.
fn phase(rp: &RawPhase, name: String, prev_clients: u32, errs: &mut Vec<String>) -> Phase {
    let scenario = rp.scenario.unwrap_or(Scenario::Connect);
    let opts = broadcast::phase_opts(rp, scenario, errs);
    let clients = match (&rp.clients, opts.implied_clients) {
        (None, Some(n)) => Some(n),
        (Some(_), _) => take_bare(&rp.clients, errs),
        (None, None) => {
            errs.push("clients is required".to_string());
            None
        }
    }
    .unwrap_or(0);
    if let (Some(_), Some(n)) = (&rp.clients, opts.implied_clients)
        && n != clients
    {
        errs.push(format!(
            "clients = {clients} but publishers + subscribers + heartbeat-clients = {n} (leave clients out)"
        ));
    }
    let connect_rate = take(&rp.connect_rate, "connect-rate", errs);
    let ramp_given = take(&rp.ramp, "ramp", errs);
    if rp.connect_rate.is_some() && rp.ramp.is_some() {
        errs.push("give connect-rate or ramp, not both".into());
    }
    let duration = take(&rp.duration, "duration", errs).unwrap_or_else(|| {
        if rp.duration.is_none() {
            errs.push("duration is required".into());
        }
        Duration::ZERO
    });
    let new_clients = clients.saturating_sub(prev_clients);
    let ramp = ramp_of(new_clients, connect_rate, ramp_given, errs);
    let default_rate = if scenario.fans_out() { 10.0 } else { 1.0 };
    let phase = Phase {
        name,
        scenario,
        clients,
        ramp,
        duration,
        rate_per_s: take(&rp.rate, "rate", errs).unwrap_or(default_rate),
        payload_size: rp.payload_size.unwrap_or(MIN_PAYLOAD_SIZE),
        arrival: rp.arrival.unwrap_or(Arrival::Constant),
        max_in_flight: rp.max_in_flight.unwrap_or(0),
        fanout: opts.fanout,
        heartbeat: opts.heartbeat,
        churn: opts.churn,
        flow: None,
    };
    check_phase(&phase, errs);
    phase
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
