//! Server configuration: every knob of `target-server`, with the Node socket.io defaults.
//!
//! Receives: values from the CLI (`main.rs`) or from tests. Emits: a validated [`Config`].
//! Must not: touch sockets or start tasks.

use std::path::PathBuf;
use std::time::Duration;

/// Everything `serve()` needs to know. `Config::default()` is the Node socket.io reference.
#[derive(Debug, Clone)]
pub struct Config {
    /// Engine.IO pingInterval (Node default 25 s).
    pub ping_interval: Duration,
    /// Engine.IO pingTimeout (Node default 20 s).
    pub ping_timeout: Duration,
    /// Engine.IO maxPayload / maxHttpBufferSize in bytes (Node default 1,000,000).
    pub max_payload: u64,
    /// Time allowed for the first Socket.IO CONNECT (Node default 45 s).
    pub connect_timeout: Duration,
    /// Time allowed for a polling -> websocket upgrade to complete (Node default 10 s).
    pub upgrade_timeout: Duration,
    /// Socket.IO namespaces served (always contains `/`; `/custom` by default).
    pub namespaces: Vec<String>,
    /// Connection state recovery: maxDisconnectionDuration, `None` = off (the default).
    pub recovery: Option<Duration>,
    /// Conformance preset handlers (`auth` emit on connect, `message` -> `message-back`,
    /// `message-with-ack`), as the official test suites expect.
    pub conformance: bool,
    /// Built-in publishers (`--tick ROOM:RATE:SIZE`).
    pub ticks: Vec<Tick>,
    /// Fault injection: probability of dropping one application delivery.
    pub drop_rate: f64,
    /// Seed of the drop decision hash.
    pub seed: u64,
    /// Fault injection: delay added to each outgoing application message.
    pub delay: Option<Delay>,
    /// Fault injection: pause application handlers `for_` every `every`.
    pub stall: Option<Stall>,
    /// Calibration: echo answers per second (`--capacity N/s`), served through one queue
    /// with a fixed service time of 1/N each (see `faults.rs`, `ServiceQueue`). `None`: off.
    pub capacity: Option<f64>,
    /// Connections accepted at once, further ones are refused with 503: open TCP
    /// connections plus Engine.IO polling sessions (a session counts from its handshake until
    /// it closes or upgrades to a WebSocket, whose TCP connection then counts).
    pub max_connections: usize,
    /// Largest raw WebSocket message accepted (bytes); larger gets close 1009.
    pub max_message_size: usize,
    /// Outbound queue per connection (packets/frames). A consumer that lets it fill is
    /// disconnected and counted as a slow consumer.
    pub max_queue: usize,
    /// Outbound bytes queued per connection (payload bytes, a broadcast counted in full
    /// for each recipient). A push past it closes the connection as a slow consumer; an
    /// empty queue always takes one message, however large.
    pub max_queue_bytes: usize,
    /// Binary attachments one Socket.IO packet may announce; more closes the session.
    pub max_attachments: usize,
    /// Bytes of the attachments of one Socket.IO packet; more closes the session.
    pub max_attachment_bytes: usize,
    /// Time the announced attachments of one packet get to arrive; then the session closes.
    pub attachment_timeout: Duration,
    /// Bytes of the connection state recovery log per namespace; the oldest entries are
    /// evicted past it (a client whose offset was evicted gets a fresh session).
    pub max_recovery_log_bytes: usize,
    /// Rooms one Socket.IO socket may be in; a join past it is refused (ack with `error`).
    pub max_rooms_per_socket: usize,
    /// Longest room name in bytes (Socket.IO `join`, raw `/ws/room/{name}`).
    pub max_room_name: usize,
    /// Time an Engine.IO polling POST gets to deliver its whole body (408 and the session
    /// closes after it).
    pub body_timeout: Duration,
    /// Raw WebSocket: a peer that sent nothing (not even a pong) for this long is pinged,
    /// and closed if it stays silent for `ws_ping_timeout`. Zero = off. Not used when
    /// `ws_ping_interval` is set (that heartbeat covers it).
    pub ws_idle_timeout: Duration,
    /// Raw WebSocket server ping period, `None` = off (default).
    pub ws_ping_interval: Option<Duration>,
    /// Raw WebSocket: close a peer silent for this long after a ping.
    pub ws_ping_timeout: Duration,
    /// TLS certificate and key (PEM) to serve HTTPS/WSS.
    pub tls: Option<TlsFiles>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(45),
            upgrade_timeout: Duration::from_secs(10),
            namespaces: vec!["/".to_string(), "/custom".to_string()],
            recovery: None,
            conformance: false,
            ticks: Vec::new(),
            drop_rate: 0.0,
            seed: 0,
            delay: None,
            stall: None,
            capacity: None,
            max_connections: 100_000,
            max_message_size: 16 << 20,
            max_queue: 4096,
            max_queue_bytes: 8 << 20,
            max_attachments: 64,
            max_attachment_bytes: 16 << 20,
            attachment_timeout: Duration::from_secs(10),
            max_recovery_log_bytes: 64 << 20,
            max_rooms_per_socket: 1024,
            max_room_name: 256,
            body_timeout: Duration::from_secs(30),
            ws_idle_timeout: Duration::from_secs(60),
            ws_ping_interval: None,
            ws_ping_timeout: Duration::from_secs(20),
            tls: None,
        }
    }
}

impl Config {
    /// The preset of the official engine.io-protocol / socket.io-protocol test suites
    /// (docs/ARCHITECTURE.md#conformance-suites): ping 300 ms / 200 ms, max payload 1,000,000, connect timeout 1 s,
    /// namespaces `/` and `/custom`, conformance handlers, recovery off.
    pub fn conformance() -> Config {
        Config {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(1),
            conformance: true,
            recovery: None,
            ..Config::default()
        }
    }

    /// True if `nsp` is served.
    pub fn has_namespace(&self, nsp: &str) -> bool {
        self.namespaces.iter().any(|n| n == nsp)
    }
}

/// `--tick ROOM:RATE:SIZE`: emit `tick` events to ROOM at RATE per second, SIZE bytes each.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub room: String,
    pub rate_per_s: f64,
    pub size_bytes: usize,
}

/// `--delay D[±J]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
}

/// `--stall EVERY:FOR`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    pub every: Duration,
    pub for_: Duration,
}

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub use protocol::units::{ValueError, parse_bytes, parse_count, parse_duration, parse_rate};

/// Parses `--delay D[±J]` (also `D+-J`).
pub fn parse_delay(s: &str) -> Result<Delay, ValueError> {
    let (base, jitter) = match s.split_once('±').or_else(|| s.split_once("+-")) {
        Some((b, j)) => (parse_duration(b)?, parse_duration(j)?),
        None => (parse_duration(s)?, Duration::ZERO),
    };
    if jitter > base {
        return Err(ValueError::Other {
            what: "delay",
            value: s.to_string(),
            why: "jitter must not exceed the base delay".into(),
        });
    }
    Ok(Delay { base, jitter })
}

/// Parses `--stall EVERY:FOR`, e.g. `2s:500ms`.
pub fn parse_stall(s: &str) -> Result<Stall, ValueError> {
    let (every, for_) = s.split_once(':').ok_or_else(|| ValueError::Other {
        what: "stall",
        value: s.to_string(),
        why: "write it as EVERY:FOR, e.g. 2s:500ms".into(),
    })?;
    let (every, for_) = (parse_duration(every)?, parse_duration(for_)?);
    if for_ >= every || every.is_zero() {
        return Err(ValueError::Other {
            what: "stall",
            value: s.to_string(),
            why: "FOR must be shorter than EVERY".into(),
        });
    }
    Ok(Stall { every, for_ })
}

/// Parses `--tick ROOM:RATE:SIZE`, e.g. `lobby:10/s:256`.
pub fn parse_tick(s: &str) -> Result<Tick, ValueError> {
    let bad = |why: &str| ValueError::Other {
        what: "tick",
        value: s.to_string(),
        why: why.into(),
    };
    let mut it = s.rsplitn(3, ':');
    let size = it
        .next()
        .ok_or_else(|| bad("write it as ROOM:RATE:SIZE, e.g. lobby:10/s:256"))?;
    let rate = it
        .next()
        .ok_or_else(|| bad("write it as ROOM:RATE:SIZE, e.g. lobby:10/s:256"))?;
    let room = it
        .next()
        .ok_or_else(|| bad("write it as ROOM:RATE:SIZE, e.g. lobby:10/s:256"))?;
    if room.is_empty() {
        return Err(bad("the room name is empty"));
    }
    let rate_per_s = parse_rate(rate)?;
    if rate_per_s <= 0.0 {
        return Err(bad("the rate must be above zero"));
    }
    let size_bytes = size.parse().map_err(|_| bad("SIZE must be a byte count"))?;
    Ok(Tick {
        room: room.to_string(),
        rate_per_s,
        size_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("25s").unwrap(), Duration::from_secs(25));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_rate("100/s").unwrap(), 100.0);
        assert_eq!(parse_rate("60/m").unwrap(), 1.0);
        assert!(parse_rate("100").is_err());
        assert!(parse_rate("-1/s").is_err());
    }

    #[test]
    fn delay_stall_tick() {
        let d = parse_delay("20ms±5ms").unwrap();
        assert_eq!(
            (d.base, d.jitter),
            (Duration::from_millis(20), Duration::from_millis(5))
        );
        assert_eq!(parse_delay("20ms").unwrap().jitter, Duration::ZERO);
        assert!(parse_delay("1ms±5ms").is_err());
        let s = parse_stall("2s:500ms").unwrap();
        assert_eq!(
            (s.every, s.for_),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
        assert!(parse_stall("1s:2s").is_err());
        let t = parse_tick("lobby:10/s:256").unwrap();
        assert_eq!(
            t,
            Tick {
                room: "lobby".into(),
                rate_per_s: 10.0,
                size_bytes: 256
            }
        );
        assert_eq!(parse_tick("a:b:5/s:64").unwrap().room, "a:b");
        assert!(parse_tick("lobby:10/s").is_err());
    }
}
