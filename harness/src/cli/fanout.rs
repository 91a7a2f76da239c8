//! Command-line arguments of `swarm broadcast`, `swarm churn` and `swarm heartbeat`.
//!
//! Receives `argv` (through clap). Emits the argument structs that `cli/requests.rs`
//! converts into a one-phase [`crate::plan::RawPlan`].
//! Must not: check cross-field rules (the plan does) or touch sockets.

use std::time::Duration;

use clap::Args;

use super::{Arrival, Jitter, OutputArgs, TargetArgs, parse_count, parse_duration, parse_rate};

/// `swarm broadcast` (and the broadcast part of `swarm churn`).
#[derive(Debug, Args, Clone)]
pub struct BroadcastArgs {
    /// Target URL: http(s):// for Socket.IO (path = namespace), or for raw WebSocket a
    /// template with {room}, e.g. ws://127.0.0.1:3000/ws/room/{room}. None: an embedded
    /// target-server.
    pub url: Option<String>,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `swarm churn`.
#[derive(Debug, Args, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub broadcast: BroadcastArgs,
    /// Drops per second over all subscribers (each a transport close, then a reconnect
    /// after --reconnect-delay), e.g. 20/s.
    #[arg(long, default_value = "5/s", value_parser = parse_rate)]
    pub churn_rate: f64,
}

/// Publishers, subscribers, rooms and the events they use.
#[derive(Debug, Args, Clone)]
pub struct FanoutArgs {
    /// Subscribers (accepts 10k).
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub subscribers: u32,
    /// Rooms the subscribers are spread over (round robin).
    #[arg(long, conflicts_with = "room_size")]
    pub rooms: Option<u32>,
    /// Subscribers per room instead of --rooms.
    #[arg(long)]
    pub room_size: Option<u32>,
    /// Publishers (publisher j publishes into room j mod rooms). Default 1 (0 with
    /// --server-publisher).
    #[arg(long)]
    pub publishers: Option<u32>,
    /// Messages per second per publisher, e.g. 100/s.
    #[arg(long, default_value = "10/s", value_parser = parse_rate)]
    pub rate: f64,
    /// Size in bytes of each serialized payload object. Minimum 106.
    #[arg(long, default_value_t = crate::payload::MIN_PAYLOAD_SIZE)]
    pub payload_size: usize,
    /// Publish instants: evenly spaced or a Poisson process.
    #[arg(long, value_enum, default_value_t = Arrival::Constant)]
    pub arrival: Arrival,
    /// Measure the server's own emits into ROOM (target-server --tick ROOM:RATE:SIZE)
    /// instead of swarm publishers; subscribers listen to `tick` by default.
    #[arg(long, value_name = "ROOM")]
    pub server_publisher: Option<String>,
    /// Socket.IO event that joins a room (acknowledged).
    #[arg(long, default_value = "join")]
    pub join_event: String,
    /// Arguments of the join emit, a JSON array template with {room}.
    #[arg(long, default_value = r#"["{room}"]"#)]
    pub join_args: String,
    /// Socket.IO event that leaves a room (same arguments as join).
    #[arg(long, default_value = "leave")]
    pub leave_event: String,
    /// Socket.IO event a publisher emits.
    #[arg(long, default_value = "broadcast")]
    pub publish_event: String,
    /// Arguments of the publish emit, a JSON array template with {room} and {payload},
    /// e.g. '[{"room":"{room}","data":{payload}}]'.
    #[arg(long, default_value = r#"["{room}",{payload}]"#)]
    pub publish_args: String,
    /// Event the subscribers receive (default `broadcast`, `tick` with --server-publisher);
    /// the payload object is found anywhere in its arguments.
    #[arg(long)]
    pub subscribe_event: Option<String>,
    /// Raw WebSocket: where publishers connect, a {room} template (default: the URL with
    /// self=0, so a publisher does not receive its own messages).
    #[arg(long)]
    pub publish_url: Option<String>,
}

/// Connect pacing and hold time.
#[derive(Debug, Args, Clone)]
pub struct PacingArgs {
    /// Connect attempts per second, e.g. 500/s (default 1000/s unless --ramp is given).
    #[arg(long, value_parser = parse_rate, conflicts_with = "ramp")]
    pub connect_rate: Option<f64>,
    /// Spread the connects evenly over this time instead of --connect-rate.
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// How long to hold the clients (and publish) once connected.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// What a client does when its connection ends early (every scenario).
#[derive(Debug, Args, Clone, Default)]
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
    pub url: Option<String>,
    /// Idle clients (accepts 10k).
    #[arg(long, short = 'c', default_value = "100", value_parser = parse_count)]
    pub clients: u32,
    #[command(flatten)]
    pub pacing: PacingArgs,
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
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub const BROADCAST_HELP: &str = "\
Examples:
  swarm broadcast                                   embedded server, 100 subscribers, 1 room
  swarm broadcast http://127.0.0.1:3000 --subscribers 1000 --rooms 10 --publishers 10 --rate 50/s
  swarm broadcast http://127.0.0.1:3000 --server-publisher lobby   (target-server --tick lobby:10/s:256)
  swarm broadcast http://127.0.0.1:3000 --publish-event publish \\
        --publish-args '[{\"channel\":\"{room}\",\"data\":{payload}}]'
  swarm broadcast ws://127.0.0.1:3000/ws/room/{room} --room-size 50 --subscribers 500 \\
        --threshold 'broadcast.reach >= 0.999' --threshold 'broadcast.latency.p99 < 100ms'

Every delivery at every subscriber is a sample (one-way latency from the publisher's
intended and actual send instants). After the run and the drain (--grace), delivered +
missed_while_disconnected + lost = expected, exactly.";

pub const CHURN_HELP: &str = "\
Examples:
  swarm churn http://127.0.0.1:3000 --subscribers 200 --rate 50/s --churn-rate 20/s \\
        --reconnect-delay 200ms
  swarm churn --churn-rate 10/s --duration 30s      embedded server

Subscribers drop (a transport close) and reconnect after --reconnect-delay while the
broadcast goes on. With Socket.IO connection state recovery on the server, the client sends
its pid and last offset on reconnect and replayed messages count as recovered.";

pub const HEARTBEAT_HELP: &str = "\
Examples:
  swarm heartbeat http://127.0.0.1:3000 --clients 1000 --duration 2m
  swarm heartbeat http://127.0.0.1:3000 --clients 100 --mute 0.1@5s --duration 20s
  swarm heartbeat ws://127.0.0.1:3000/ws/echo --ping-interval 5s --client-ping-interval 1s

Records the server's ping cadence (ping to ping, against the advertised interval), when
muted clients were closed (expected: pingInterval + pingTimeout after their last answered
ping), false timeouts of healthy clients, and client-side deadlines.";
