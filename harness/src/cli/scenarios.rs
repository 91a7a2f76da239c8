//! The commands `swarm broadcast`, `swarm churn` and `swarm heartbeat`, assembled from each
//! scenario's own arguments (`scenario/*/args.rs`) and the option groups they share with
//! other commands: connect pacing ([`PacingArgs`]) and reconnects ([`ReconnectArgs`], every
//! scenario and `swarm run`).
//!
//! Receives `argv` (through clap). Emits the argument structs that `cli/requests.rs`
//! converts into a one-phase [`crate::plan::RawPlan`].
//! Must not: check cross-field rules (the plan does) or touch sockets.

use std::time::Duration;

use clap::Args;

use super::{
    DrainArgs, DryRunArgs, Jitter, OutputArgs, TargetArgs, parse_count, parse_duration, parse_rate,
};
use crate::scenario::broadcast::args::FanoutArgs;
use crate::scenario::churn::args::ChurnRateArgs;
use crate::scenario::heartbeat::args::HeartbeatOptsArgs;

/// `swarm broadcast` (and the broadcast part of `swarm churn`).
#[derive(Debug, Args, Clone)]
pub struct BroadcastArgs {
    /// Target URL: http(s):// for Socket.IO (path = namespace), or for raw WebSocket a
    /// template with {room}, e.g. ws://127.0.0.1:3000/ws/room/{room}. None: an embedded
    /// target-server. Several: clients spread round-robin over them, one worker process
    /// per target at least, each room on one target (docs/DISTRIBUTED.md).
    #[arg(value_name = "URL")]
    pub url: Vec<String>,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dry: DryRunArgs,
}

/// `swarm churn`.
#[derive(Debug, Args, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub broadcast: BroadcastArgs,
    #[command(flatten)]
    pub churn: ChurnRateArgs,
}

/// Connect pacing and hold time.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Clients")]
pub struct PacingArgs {
    /// Connect attempts per second, e.g. 500/s (default 1000/s unless --ramp is given).
    #[arg(long, value_parser = parse_rate, conflicts_with = "ramp")]
    pub connect_rate: Option<f64>,
    /// Spread the connects evenly over this time instead of --connect-rate.
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// How long to hold the clients (and publish, for broadcast and churn) once connected.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// What a client does when its connection ends early (every scenario).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Reconnects")]
pub struct ReconnectArgs {
    /// Reconnect (and re-join rooms) after a connection was lost: the server closed it or
    /// died, the connection reset, or a client-side heartbeat deadline passed. Attempts
    /// back off exponentially (see --reconnect-delay). Without it a lost client stays
    /// away until its phase ends. Either way a lost connection makes the run `degraded`.
    #[arg(long)]
    pub reconnect: bool,
    /// Delay before the first reconnect attempt, doubled after each failed attempt up to
    /// --reconnect-max-delay, then jittered (--reconnect-jitter). A churn drop waits
    /// exactly this long before its first attempt. [default: 1s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub reconnect_delay: Option<Duration>,
    /// Cap of the delay between two reconnect attempts. [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub reconnect_max_delay: Option<Duration>,
    /// Randomisation of each delay D, so that clients lost together do not come back
    /// together: `full` waits a uniform time in [0, D], `equal` in [D/2, D], `none`
    /// exactly D. [default: full]
    #[arg(long, value_enum, value_name = "KIND")]
    pub reconnect_jitter: Option<Jitter>,
    /// Give up after this many failed attempts in a row (the client stays away until its
    /// phase ends; counted in `outage.clients_not_restored`). 0 = keep trying. [default: 0]
    #[arg(long, value_name = "N")]
    pub reconnect_max_attempts: Option<u32>,
}

/// `swarm heartbeat`.
#[derive(Debug, Args, Clone)]
pub struct HeartbeatArgs {
    /// Target URL (ws:// raw WebSocket, http:// Socket.IO). None: an embedded target-server.
    /// Several: clients spread round-robin over them (docs/DISTRIBUTED.md).
    #[arg(value_name = "URL")]
    pub url: Vec<String>,
    /// Idle clients (accepts 10k).
    #[arg(help_heading = "Clients", long, short = 'c', default_value = "100", value_parser = parse_count)]
    pub clients: u32,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub heartbeat: HeartbeatOptsArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dry: DryRunArgs,
}
