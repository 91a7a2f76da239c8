//! Command-line arguments of the broadcast scenario: publishers, subscribers, rooms and the
//! events they use (`swarm broadcast`, and the broadcast part of `swarm churn`), and the
//! examples of `swarm broadcast --help`.
//!
//! Receives `argv` (through clap, flattened into the command that `cli/scenarios.rs`
//! assembles). Emits [`FanoutArgs`] and, from it, the raw plan's broadcast keys
//! ([`FanoutArgs::phase_keys`], [`FanoutArgs::plan_keys`]) for `cli/requests.rs`.
//! Must not: import the CLI (the CLI imports this), check cross-field rules (the plan
//! does) or touch sockets.

use clap::Args;

use crate::model::{Arrival, parse_count, parse_rate};
use crate::plan::{RawPhase, RawPlan};

/// Publishers, subscribers, rooms and the events they use.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Rooms and publishers")]
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

impl FanoutArgs {
    /// `base` with this phase's broadcast keys: rate, payload size, arrival, roles, rooms.
    pub fn phase_keys(&self, base: RawPhase) -> RawPhase {
        RawPhase {
            rate: Some(Ok(self.rate)),
            payload_size: Some(self.payload_size),
            arrival: Some(self.arrival),
            subscribers: Some(Ok(self.subscribers)),
            publishers: self.publishers,
            rooms: self.rooms,
            room_size: self.room_size,
            server_publisher: self.server_publisher.clone(),
            ..base
        }
    }

    /// `base` with the run-wide broadcast keys: event names, argument templates, publish URL.
    pub fn plan_keys(&self, base: RawPlan) -> RawPlan {
        RawPlan {
            join_event: Some(self.join_event.clone()),
            join_args: Some(self.join_args.clone()),
            leave_event: Some(self.leave_event.clone()),
            publish_event: Some(self.publish_event.clone()),
            publish_args: Some(self.publish_args.clone()),
            subscribe_event: self.subscribe_event.clone(),
            publish_url: self.publish_url.clone(),
            ..base
        }
    }
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
