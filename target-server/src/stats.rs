//! Live counters and gauges of the server, shared by every module.
//!
//! Receives: increments from the transports, rooms and fault injection.
//! Emits: a [`Snapshot`](crate::status::Snapshot) (status page, `/ws/stats`) and the same
//! numbers as Prometheus text (`/metrics`, see `metrics.rs`).
//! Must not: block, allocate per message, or do I/O.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Which protocol and transport a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    SocketioWebsocket,
    SocketioPolling,
    EngineioWebsocket,
    EngineioPolling,
    RawWs,
}

impl Proto {
    pub const ALL: [Proto; 5] = [
        Proto::SocketioWebsocket,
        Proto::SocketioPolling,
        Proto::EngineioWebsocket,
        Proto::EngineioPolling,
        Proto::RawWs,
    ];

    /// (protocol, transport) labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Proto::SocketioWebsocket => ("socketio", "websocket"),
            Proto::SocketioPolling => ("socketio", "polling"),
            Proto::EngineioWebsocket => ("engineio", "websocket"),
            Proto::EngineioPolling => ("engineio", "polling"),
            Proto::RawWs => ("ws", "websocket"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the server closed (or lost) a connection, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseCause {
    /// The client closed (Engine.IO `1`, WS close, Socket.IO disconnect of last namespace).
    ClientClose,
    /// Transport error or EOF.
    TransportError,
    /// No pong within pingTimeout (Engine.IO) or silence after a WS ping.
    PingTimeout,
    /// No Socket.IO CONNECT within connectTimeout.
    ConnectTimeout,
    /// Protocol violation (bad packet, bad frame, invalid UTF-8, too big).
    ProtocolError,
    /// Outbound queue exceeded `--max-queue`.
    SlowConsumer,
    /// Server shutting down.
    Shutdown,
}

impl CloseCause {
    pub const ALL: [CloseCause; 7] = [
        CloseCause::ClientClose,
        CloseCause::TransportError,
        CloseCause::PingTimeout,
        CloseCause::ConnectTimeout,
        CloseCause::ProtocolError,
        CloseCause::SlowConsumer,
        CloseCause::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseCause::ClientClose => "client_close",
            CloseCause::TransportError => "transport_error",
            CloseCause::PingTimeout => "ping_timeout",
            CloseCause::ConnectTimeout => "connect_timeout",
            CloseCause::ProtocolError => "protocol_error",
            CloseCause::SlowConsumer => "slow_consumer",
            CloseCause::Shutdown => "shutdown",
        }
    }
}

/// A server limit (a resource bound of `Config`) that a client hit: each hit is a
/// refusal or a close, counted by name in `/metrics` (`limit_exceeded{limit=..}`) and in
/// `/stats.json` (`limits_exceeded`). README "Server limits" lists the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A TCP connection beyond `--max-connections` (also counted in `refused_connections`).
    Connections,
    /// An Engine.IO polling handshake beyond `--max-connections` (sessions count toward it).
    Sessions,
    /// An outbound queue beyond `--max-queue` items (slow consumer).
    QueueItems,
    /// An outbound queue beyond `--max-queue-bytes` (slow consumer).
    QueueBytes,
    /// A Socket.IO packet announcing more than `--max-attachments`.
    Attachments,
    /// Attachments of one packet beyond `--max-attachment-bytes`.
    AttachmentBytes,
    /// Attachments not all received within `--attachment-timeout`.
    AttachmentTimeout,
    /// A recovery log entry evicted to keep the log under `--max-recovery-log-bytes`.
    RecoveryLog,
    /// A join beyond `--max-rooms-per-socket`.
    RoomsPerSocket,
    /// A room name longer than `--max-room-name`.
    RoomName,
    /// A polling POST body not received within `--body-timeout`.
    BodyTimeout,
    /// A raw WebSocket peer silent through `--ws-idle-timeout` and the ping after it.
    IdleTimeout,
}

impl Limit {
    pub const ALL: [Limit; 12] = [
        Limit::Connections,
        Limit::Sessions,
        Limit::QueueItems,
        Limit::QueueBytes,
        Limit::Attachments,
        Limit::AttachmentBytes,
        Limit::AttachmentTimeout,
        Limit::RecoveryLog,
        Limit::RoomsPerSocket,
        Limit::RoomName,
        Limit::BodyTimeout,
        Limit::IdleTimeout,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::Sessions => "sessions",
            Limit::QueueItems => "queue_items",
            Limit::QueueBytes => "queue_bytes",
            Limit::Attachments => "attachments",
            Limit::AttachmentBytes => "attachment_bytes",
            Limit::AttachmentTimeout => "attachment_timeout",
            Limit::RecoveryLog => "recovery_log_bytes",
            Limit::RoomsPerSocket => "rooms_per_socket",
            Limit::RoomName => "room_name",
            Limit::BodyTimeout => "body_timeout",
            Limit::IdleTimeout => "idle_timeout",
        }
    }
}

/// All counters. Cheap atomics; rooms behind one mutex touched only on join/leave.
#[derive(Debug, Default)]
pub struct Stats {
    connections: [AtomicI64; 5],
    connections_total: [AtomicU64; 5],
    closes: [AtomicU64; 7],
    limits: [AtomicU64; 12],
    /// Application messages received from clients (events, WS data frames, EIO messages).
    pub messages_in: AtomicU64,
    /// Application messages written to clients (one per recipient).
    pub messages_out: AtomicU64,
    /// Bytes of application messages received / written.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Deliveries dropped by `--drop-rate` (exact).
    pub dropped_by_injection: AtomicU64,
    /// Connections refused by `--max-connections`.
    pub refused_connections: AtomicU64,
    /// Socket.IO sessions restored by connection state recovery.
    pub recovered_sessions: AtomicU64,
    /// Packets replayed by connection state recovery.
    pub replayed_packets: AtomicU64,
    /// Deepest outbound queue seen on any connection (messages waiting for the socket);
    /// never above `--max-queue`.
    pub outbound_queue_peak: AtomicU64,
    rooms: Mutex<HashMap<String, i64>>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats::default()
    }

    pub fn opened(&self, proto: Proto) {
        self.connections[proto.index()].fetch_add(1, Relaxed);
        self.connections_total[proto.index()].fetch_add(1, Relaxed);
    }

    pub fn closed(&self, proto: Proto, cause: CloseCause) {
        self.connections[proto.index()].fetch_sub(1, Relaxed);
        self.closes[cause as usize].fetch_add(1, Relaxed);
    }

    /// A polling session upgraded to websocket: moves one connection between gauges.
    pub fn upgraded(&self, from: Proto, to: Proto) {
        self.connections[from.index()].fetch_sub(1, Relaxed);
        self.connections[to.index()].fetch_add(1, Relaxed);
    }

    pub fn message_in(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    pub fn message_out(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    /// Room `name` gained (`+1`) or lost (`-1`) a member. `name` is prefixed by the caller
    /// when namespaces differ (e.g. `ws:lobby` for raw WS rooms, `/custom#lobby`).
    pub fn room_delta(&self, name: &str, delta: i64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let n = rooms.entry(name.to_string()).or_insert(0);
        *n += delta;
        if *n <= 0 {
            rooms.remove(name);
        }
    }

    pub fn connections(&self, proto: Proto) -> i64 {
        self.connections[proto.index()].load(Relaxed)
    }

    pub fn connections_total(&self, proto: Proto) -> u64 {
        self.connections_total[proto.index()].load(Relaxed)
    }

    pub fn closes(&self, cause: CloseCause) -> u64 {
        self.closes[cause as usize].load(Relaxed)
    }

    /// A client hit `limit` (and was refused or closed).
    pub fn limit_hit(&self, limit: Limit) {
        self.limits[limit as usize].fetch_add(1, Relaxed);
    }

    /// Times `limit` was hit since start.
    pub fn limit_hits(&self, limit: Limit) -> u64 {
        self.limits[limit as usize].load(Relaxed)
    }

    /// Rooms and member counts, largest first.
    pub fn rooms(&self) -> Vec<(String, i64)> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = rooms.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}
