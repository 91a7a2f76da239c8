//! Command-line arguments of the heartbeat scenario (`swarm heartbeat`): muting, client
//! pings and the raw WebSocket ping period; and the examples of `swarm heartbeat --help`.
//!
//! Receives `argv` (through clap, flattened into the command that `cli/scenarios.rs`
//! assembles). Emits [`HeartbeatOptsArgs`] and, from it, the raw plan's heartbeat keys
//! ([`HeartbeatOptsArgs::phase_keys`], [`HeartbeatOptsArgs::plan_keys`]) for
//! `cli/requests.rs`.
//! Must not: import the CLI (the CLI imports this), check cross-field rules (the plan
//! does) or touch sockets.

use std::time::Duration;

use clap::Args;

use crate::model::parse_duration;
use crate::plan::{RawPhase, RawPlan, parse_mute};

/// The heartbeat options of `swarm heartbeat`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Heartbeat")]
pub struct HeartbeatOptsArgs {
    /// This fraction of the clients stops answering pings at T after the start, e.g.
    /// 0.1@5s (Socket.IO: no more `3`; raw WS: the client stops reading its socket).
    #[arg(long, value_name = "FRACTION[@T]")]
    pub mute: Option<String>,
    /// Raw WS: send a ping this often and record the pong round trip.
    #[arg(long, value_parser = parse_duration)]
    pub client_ping_interval: Option<Duration>,
    /// Raw WS: the server's ping period (Socket.IO servers advertise theirs).
    #[arg(long, value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
}

impl HeartbeatOptsArgs {
    /// `base` with this phase's heartbeat keys: `mute`, `client-ping-interval`.
    pub fn phase_keys(&self, base: RawPhase) -> RawPhase {
        RawPhase {
            mute: self.mute.as_deref().map(parse_mute),
            client_ping_interval: self.client_ping_interval.map(Ok),
            ..base
        }
    }

    /// `base` with the run-wide `ping-interval` key (raw WebSocket).
    pub fn plan_keys(&self, base: RawPlan) -> RawPlan {
        RawPlan {
            ping_interval: self.ping_interval.map(Ok),
            ..base
        }
    }
}

pub const HEARTBEAT_HELP: &str = "\
Examples:
  swarm heartbeat http://127.0.0.1:3000 --clients 1000 --duration 2m
  swarm heartbeat http://127.0.0.1:3000 --clients 100 --mute 0.1@5s --duration 20s
  swarm heartbeat ws://127.0.0.1:3000/ws/echo --ping-interval 5s --client-ping-interval 1s

Records the server's ping cadence (ping to ping, against the advertised interval), when
muted clients were closed (expected: pingInterval + pingTimeout after their last answered
ping), false timeouts of healthy clients, and client-side deadlines.";
