//! The run file's types: what one swarm run recorded, as `results.json` carries it.
//!
//! Receives nothing (plain data); emitted by the harness recorder, read by every rendering.
//! Field names are snake_case with units in their names; every field is documented in
//! `docs/results-format.md`. Optional sections carry `serde(default)` so that files written
//! before a section existed still read.
//! Must not: change the meaning of an existing field without bumping [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::distribution::Distribution;

mod capacity;
mod flow;
mod stats;
mod vocab;

pub use capacity::{CapacitySection, CapacityStep};
pub use flow::{FlowStats, FlowStepStats};

pub use stats::{
    BroadcastStats, ChurnStats, EchoStats, HeartbeatStats, OutageStats, RoomSizeStats,
};
pub use vocab::{Arrival, PhaseSettings, Protocol, Scenario, Transport};

/// Version of the run file format written by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// One whole run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub schema_version: u32,
    pub meta: RunMeta,
    /// The whole run, all phases together.
    pub run: Section,
    /// One entry per plan phase, in plan order.
    pub phases: Vec<PhaseResult>,
    /// One point per second of the run, from its start.
    pub series: Vec<SecondPoint>,
    /// The swarm's own health (was the swarm the bottleneck?).
    pub health: Health,
    /// Thresholds evaluated at the end of the run (empty when none were given).
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// The worker processes of a run of several (`meta.shards` > 1); empty (and absent
    /// from the file) for a run in one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerResult>,
    /// A run against several targets (`url` given more than once): each target's share of
    /// the run, its workers' sections added exactly. Empty (and absent) for one target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetResult>,
    /// What the live outputs did (`--metrics-addr`, `--prometheus-remote-write`, `--out
    /// ndjson=`, `--abort-on-fail`); absent when none was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveOutcome>,
    /// `swarm capacity`: the search and its steps (absent from any other run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacitySection>,
}

/// One target of a run against several (docs/DISTRIBUTED.md, "Several targets").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// The target's URL, redacted.
    pub url: String,
    /// The workers (shard indexes) that drove it.
    pub workers: Vec<u32>,
    /// Clients its workers owned at most at once, summed.
    pub clients: u64,
    /// Its workers' whole-run sections, added exactly (as `run` is for all targets).
    pub run: Section,
}

/// The live outputs of a run (docs/results-format.md#live).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveOutcome {
    /// The OpenMetrics endpoint's address, when `--metrics-addr` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// Prometheus remote write, when `--prometheus-remote-write` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write: Option<RemoteWriteOutcome>,
    /// Lines written to the NDJSON stream (`--out ndjson=`), one per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndjson_lines: Option<u64>,
    /// Why the run stopped early, when a threshold aborted it (`status` is `aborted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortInfo>,
}

/// Pushes to a remote-write receiver.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RemoteWriteOutcome {
    /// The receiver's URL, secrets masked.
    pub url: String,
    /// Pushes attempted (one per second, plus the final one).
    pub pushes: u64,
    /// Pushes that failed (no connection, timeout, a non-2xx answer); never fatal.
    pub failures: u64,
    /// The last failure, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A threshold that failed for its abort delay and stopped the run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AbortInfo {
    /// The rule as written.
    pub threshold: String,
    /// The second (from the run start) in which it first failed, without a passing second
    /// since.
    pub failing_since_s: u64,
    /// The second at whose end the run was stopped.
    pub stopped_at_s: u64,
    /// The abort delay in force.
    pub delay_ms: u64,
}

/// One worker process of a run of several processes (docs/DISTRIBUTED.md).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    /// The worker's shard index (`0..meta.shards`).
    pub index: u32,
    pub host: String,
    pub pid: u32,
    /// Clients this worker owned at most at once (its share of the plan).
    pub clients: u64,
    /// Successful connects, and errors of any kind, it recorded.
    pub connects: u64,
    pub errors: u64,
    /// CPU time the worker process used (user + system), and its peak resident memory.
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    /// Its largest scheduler lag, and whether it was saturated (its own health verdict).
    pub sched_lag_max_us: u64,
    pub saturated: bool,
    /// Estimated offset of the worker's wall clock from the coordinator's (worker minus
    /// coordinator), and the bound of that estimate (half the best round trip), in µs.
    pub clock_offset_us: f64,
    pub clock_offset_bound_us: f64,
    /// `completed`, or `lost` (the worker died or stopped reporting; what it had sent
    /// before is in the merged figures).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
    /// The target it drove (redacted URL), when the run had several; else empty (absent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

/// What ran, against what, where and when.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunMeta {
    /// Version of the `swarm` binary that recorded the run.
    pub swarm_version: String,
    /// Identifier of the run (also carried in every payload as `sb`).
    #[serde(default)]
    pub run_id: String,
    /// Scenarios that ran, in plan order, without repeats (e.g. `["connect", "echo"]`).
    pub scenarios: Vec<Scenario>,
    pub target_url: String,
    /// True when the swarm started its own embedded target-server.
    #[serde(default)]
    pub embedded_target: bool,
    /// `ws` or `socketio`.
    pub protocol: Protocol,
    /// `websocket` or `polling` (Socket.IO); `websocket` for raw WS.
    pub transport: Transport,
    /// The plan, phase by phase, with its settings.
    pub plan: Vec<PlanPhase>,
    /// Run-wide settings (e.g. `timeout_ms`, `grace_ms`, `event`, `parser`).
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
    /// The command line as given (arguments after the program name).
    #[serde(default)]
    pub args: Vec<String>,
    pub machine: Machine,
    /// Wall-clock start, milliseconds since the Unix epoch (UTC).
    pub started_at_unix_ms: u64,
    /// Wall-clock end, milliseconds since the Unix epoch (UTC).
    pub ended_at_unix_ms: u64,
    /// True when the run was stopped by Ctrl-C / SIGTERM before its plan ended.
    pub interrupted: bool,
    pub status: RunStatus,
    /// A sentence explaining `status` when it is not `completed`.
    #[serde(default)]
    pub status_detail: Option<String>,
    /// Number of swarm processes whose run files were merged into this one (1 = not merged).
    #[serde(default = "one")]
    pub shards: u32,
    /// The run's rooms were split over its workers: a room's publishers and subscribers in
    /// different processes (docs/DISTRIBUTED.md, "Split rooms").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split_rooms: bool,
}

fn one() -> u32 {
    1
}

/// How the run ended (drives the exit code together with the thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The plan ran to its end.
    #[default]
    Completed,
    /// A checkpoint written while the run was going on (every few seconds; the final write
    /// replaces it). Found on disk, it means the swarm was killed before it could finish:
    /// everything up to the checkpoint is in the file.
    Running,
    /// Stopped by a signal; everything recorded until then is in the file.
    Interrupted,
    /// Stopped early because a threshold failed for its abort delay (`--abort-on-fail`;
    /// `live.abort` says which). Exit code 1.
    Aborted,
    /// The run could not happen (target unreachable, no connection succeeded).
    Failed,
    /// The plan ran to its end, but established connections were lost on the way (the
    /// target closed, reset or stopped answering them; `run.outage`). Exit code 5 unless
    /// thresholds were given (they decide then).
    Degraded,
}

/// One plan phase and its settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanPhase {
    pub name: String,
    pub scenario: Scenario,
    /// Clients connected at the end of the phase's ramp.
    pub clients: u64,
    /// Planned length of the phase, ramp included.
    pub duration_ms: u64,
    #[serde(default)]
    pub ramp_ms: Option<u64>,
    #[serde(default)]
    pub connect_rate_per_s: Option<f64>,
    /// Messages per second per client.
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    #[serde(default)]
    pub payload_size_bytes: Option<u64>,
    #[serde(default)]
    pub arrival: Option<Arrival>,
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// The phase's other settings (fan-out, churn, heartbeat).
    #[serde(default)]
    pub settings: PhaseSettings,
}

/// The machine the swarm ran on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    /// Logical CPUs available to the swarm process.
    pub cores: u32,
    pub memory_bytes: u64,
    /// e.g. `linux`.
    pub os: String,
    /// Kernel release, when known.
    #[serde(default)]
    pub os_version: String,
}

/// Results of one plan phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    pub name: String,
    pub scenario: String,
    pub stats: Section,
}

/// Everything counted over a span of time (one phase, or the whole run).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Section {
    /// First sample of the span, from the run start.
    pub start_offset_ms: u64,
    /// Last sample of the span, from the run start.
    pub end_offset_ms: u64,
    /// `end_offset_ms - start_offset_ms` (the divisor of throughput figures).
    pub duration_ms: u64,
    pub connect: ConnectStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<EchoStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<BroadcastStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnStats>,
    /// Flow phases: per step counts and latency (docs/results-format.md#flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowStats>,
    /// Connections lost (not by the swarm's doing) and how clients came back; absent when
    /// none was lost and no reconnect was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<OutageStats>,
    /// Non-fatal errors during the run, by stable kind key (connect failures are in
    /// `connect.failed_by_kind`, not here).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// Ended connections by reason key (`client_close` is the swarm's own orderly close).
    #[serde(default)]
    pub disconnects: BTreeMap<String, u64>,
    /// The swarm's own lateness: for every echo and publish send in the span, its actual
    /// send instant minus its intended one. `latency` includes this; `service` does not.
    /// Absent when the span had no sends (and in files older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<Distribution>,
}

/// Connection attempts and how long each connect phase took.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConnectStats {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    /// `failed` split by error kind key.
    #[serde(default)]
    pub failed_by_kind: BTreeMap<String, u64>,
    /// Highest number of clients connected at once during the span.
    pub peak_connected: u64,
    pub phases: ConnectPhaseTimes,
}

/// Connect phase durations; a phase that never happened in the span is absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConnectPhaseTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_upgrade: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio_open: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sio_connect: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Distribution>,
}

impl ConnectPhaseTimes {
    /// The phase names, in connect order.
    pub const NAMES: [&'static str; 7] = [
        "tcp",
        "tls",
        "ws_upgrade",
        "eio_open",
        "upgrade",
        "sio_connect",
        "total",
    ];

    /// The distribution of a phase by name.
    pub fn get(&self, name: &str) -> Option<&Distribution> {
        match name {
            "tcp" => self.tcp.as_ref(),
            "tls" => self.tls.as_ref(),
            "ws_upgrade" => self.ws_upgrade.as_ref(),
            "eio_open" => self.eio_open.as_ref(),
            "upgrade" => self.upgrade.as_ref(),
            "sio_connect" => self.sio_connect.as_ref(),
            "total" => self.total.as_ref(),
            _ => None,
        }
    }

    /// Mutable slot of a phase by name.
    pub fn slot_mut(&mut self, name: &str) -> Option<&mut Option<Distribution>> {
        match name {
            "tcp" => Some(&mut self.tcp),
            "tls" => Some(&mut self.tls),
            "ws_upgrade" => Some(&mut self.ws_upgrade),
            "eio_open" => Some(&mut self.eio_open),
            "upgrade" => Some(&mut self.upgrade),
            "sio_connect" => Some(&mut self.sio_connect),
            "total" => Some(&mut self.total),
            _ => None,
        }
    }
}

/// One second of the run (`second` 0 covers [0 s, 1 s) from the run start).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SecondPoint {
    pub second: u64,
    /// Clients connected at the end of the second.
    pub connected: u64,
    pub attempted: u64,
    pub connect_failed: u64,
    pub sent: u64,
    pub received: u64,
    pub timeouts: u64,
    pub late: u64,
    pub errors: u64,
    pub disconnects: u64,
    /// Broadcast deliveries (first arrivals) in this second.
    #[serde(default)]
    pub delivered: u64,
    /// Connections lost in this second (see [`OutageStats`]).
    #[serde(default)]
    pub connections_lost: u64,
    /// Lost clients that got a connection back in this second.
    #[serde(default)]
    pub restored: u64,
    /// Clients whose connection was lost and not yet replaced, at the end of the second.
    #[serde(default)]
    pub clients_away: u64,
    /// Echo sends meant while their client had no connection, counted in this second
    /// (at least once a second while a client is away).
    #[serde(default)]
    pub skipped_disconnected: u64,
    /// Percentiles of echo `latency` for the replies that arrived in this second.
    #[serde(default)]
    pub latency_p50_us: Option<u64>,
    #[serde(default)]
    pub latency_p90_us: Option<u64>,
    #[serde(default)]
    pub latency_p99_us: Option<u64>,
    #[serde(default)]
    pub latency_max_us: Option<u64>,
    /// The swarm's send lag (actual minus intended send instant) in this second: p99 and
    /// max over the echo and publish sends made in it.
    #[serde(default)]
    pub send_lag_p99_us: Option<u64>,
    #[serde(default)]
    pub send_lag_max_us: Option<u64>,
}

/// The swarm's own health over the run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Health {
    /// Cores the CPU percentages refer to (100% = one core).
    pub cores: u32,
    pub series: Vec<HealthPoint>,
    pub summary: HealthSummary,
}

/// One second of swarm health.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthPoint {
    pub second: u64,
    /// CPU used by the swarm process in that second; 100 = one core busy.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    /// Lateness of a 10 ms ticker on the swarm's runtime, worst and mean in that second.
    pub sched_lag_max_us: u64,
    pub sched_lag_mean_us: u64,
    /// Share of the machine's CPU time the hypervisor gave to other guests in that second
    /// (steal, percent of all CPUs); absent when 0.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub steal_percent: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// Health over the whole run, and whether the swarm itself was the limit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthSummary {
    pub cpu_percent_max: f64,
    pub cpu_percent_mean: f64,
    pub rss_bytes_max: u64,
    pub sched_lag_max_us: u64,
    pub sched_lag_mean_us: u64,
    /// Seconds in which CPU or scheduler lag crossed its saturation line.
    pub saturated_seconds: u64,
    /// True when the swarm was saturated for a meaningful share of the run: its numbers
    /// then describe the swarm, not the server.
    pub saturated: bool,
    /// Which lines were crossed: `cpu`, `sched_lag`, and `recorder` when samples were
    /// dropped.
    #[serde(default)]
    pub saturated_by: Vec<String>,
    /// Samples the recorder could not take because its bounded channel was full (the
    /// recorder task was starved). The run's counts are short by these; any makes the run
    /// `saturated` (by `recorder`) and, if it completed, `degraded`.
    #[serde(default)]
    pub samples_dropped: u64,
    /// Highest steal of any second ([`HealthPoint::steal_percent`]); absent when 0. Not a
    /// saturation line of its own: it says whether a late swarm was a machine whose CPU was
    /// taken from outside.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub steal_percent_max: f64,
}

/// Outcome of one threshold, as stored in the run file and shown in reports.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The expression as the user wrote it.
    pub expr: String,
    /// Observed value, in `unit` (absent when it could not be computed; then `pass` is false).
    pub observed: Option<f64>,
    /// Unit of `observed` and of the expression's value (`ms`, `%`, ``...).
    pub unit: String,
    pub pass: bool,
    /// Why the threshold could not be evaluated, when it could not.
    #[serde(default)]
    pub note: Option<String>,
}

/// Disconnect reasons that are the swarm's own doing, not failures: `client_close` (the
/// orderly close at the end of a client's time) and `client_drop` (a churn drop).
pub const ORDERLY_DISCONNECTS: &[&str] = &["client_close", "client_drop"];

/// True if a disconnect reason key is the swarm's own doing (see [`ORDERLY_DISCONNECTS`]).
pub fn is_orderly_disconnect(reason: &str) -> bool {
    ORDERLY_DISCONNECTS.contains(&reason)
}
