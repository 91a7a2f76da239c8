//! Live status: the page at `/`, its push channel `/ws/stats` (one JSON [`Snapshot`] per
//! second) and the same snapshot at `/stats.json`.
//!
//! Receives: reads of [`Stats`]. Emits: HTML (`status.html`, plain HTML and JavaScript, no
//! third-party script) and JSON snapshots. Must not: change any counter, or count its own
//! viewers as connections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use http::header;
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::Shared;
use crate::stats::{CloseCause, Limit, Proto, Stats};
use crate::upgrade::{self, WsStream};

const PAGE: &str = include_str!("status.html");
/// Rooms listed in a snapshot (largest first).
const ROOMS_LISTED: usize = 50;
/// Period of `/ws/stats` pushes.
const PUSH_EVERY: Duration = Duration::from_secs(1);
/// A viewer that cannot take one snapshot in this time is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes `/`, `/stats.json` and `/ws/stats`.
pub fn routes(shared: Arc<Shared>) -> axum::Router {
    let state = Arc::new(StatusState {
        shared,
        started: Instant::now(),
        meter: Mutex::new(RateMeter::default()),
    });
    axum::Router::new()
        .route("/", get(page))
        .route("/stats.json", get(json))
        .route("/ws/stats", get(push))
        .with_state(state)
}

#[derive(Debug)]
struct StatusState {
    shared: Arc<Shared>,
    started: Instant,
    meter: Mutex<RateMeter>,
}

/// Everything the status page shows, at one instant. Counters are totals since start;
/// `*_per_s` are rates over the last second or so.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The server's process id: with `--reuse-port` several processes answer on one port,
    /// each with its own counters, and this tells which one answered.
    pub pid: u32,
    pub uptime_s: f64,
    /// Open connections over all protocols.
    pub connections_open: i64,
    pub connections: Vec<ConnectionRow>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in_per_s: f64,
    pub messages_out_per_s: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    /// Connections closed, by cause (`client_close`, `ping_timeout`, ...).
    pub closes: BTreeMap<&'static str, u64>,
    /// Closes for a missing pong (Engine.IO) or silence after a WS ping.
    pub heartbeat_timeouts: u64,
    pub dropped_by_injection: u64,
    pub slow_consumers: u64,
    pub refused_connections: u64,
    pub recovered_sessions: u64,
    pub replayed_packets: u64,
    pub outbound_queue_peak: u64,
    /// Refusals and closes by server limit (`sessions`, `queue_bytes`, ...; README
    /// "Server limits").
    pub limits_exceeded: BTreeMap<&'static str, u64>,
    /// Number of rooms with at least one member.
    pub rooms: usize,
    /// The largest rooms (at most 50), largest first.
    pub largest_rooms: Vec<RoomRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRow {
    pub protocol: &'static str,
    pub transport: &'static str,
    pub open: i64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomRow {
    pub name: String,
    pub members: i64,
}

/// Turns counter totals into per-second rates over windows of about a second, however
/// often snapshots are asked for.
#[derive(Debug, Default)]
struct RateMeter {
    last: Option<(Instant, [u64; 4])>,
    rates: [f64; 4],
}

impl RateMeter {
    fn rates(&mut self, now: Instant, totals: [u64; 4]) -> [f64; 4] {
        match self.last {
            None => self.last = Some((now, totals)),
            Some((at, prev)) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                if dt >= 0.9 {
                    for i in 0..4 {
                        self.rates[i] = totals[i].saturating_sub(prev[i]) as f64 / dt;
                    }
                    self.last = Some((now, totals));
                }
            }
        }
        self.rates
    }
}

impl Snapshot {
    /// Reads every counter of `stats` (rates are left at zero).
    pub fn of(stats: &Stats, uptime: Duration) -> Snapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let connections: Vec<ConnectionRow> = Proto::ALL
            .iter()
            .map(|&p| {
                let (protocol, transport) = p.labels();
                ConnectionRow {
                    protocol,
                    transport,
                    open: stats.connections(p),
                    total: stats.connections_total(p),
                }
            })
            .collect();
        let rooms = stats.rooms();
        Snapshot {
            pid: std::process::id(),
            uptime_s: uptime.as_secs_f64(),
            connections_open: connections.iter().map(|c| c.open).sum(),
            connections,
            messages_in: stats.messages_in.load(Relaxed),
            messages_out: stats.messages_out.load(Relaxed),
            bytes_in: stats.bytes_in.load(Relaxed),
            bytes_out: stats.bytes_out.load(Relaxed),
            messages_in_per_s: 0.0,
            messages_out_per_s: 0.0,
            bytes_in_per_s: 0.0,
            bytes_out_per_s: 0.0,
            closes: CloseCause::ALL
                .iter()
                .map(|&c| (c.label(), stats.closes(c)))
                .collect(),
            heartbeat_timeouts: stats.closes(CloseCause::PingTimeout),
            dropped_by_injection: stats.dropped_by_injection.load(Relaxed),
            slow_consumers: stats.closes(CloseCause::SlowConsumer),
            refused_connections: stats.refused_connections.load(Relaxed),
            recovered_sessions: stats.recovered_sessions.load(Relaxed),
            replayed_packets: stats.replayed_packets.load(Relaxed),
            outbound_queue_peak: stats.outbound_queue_peak.load(Relaxed),
            limits_exceeded: Limit::ALL
                .iter()
                .map(|&l| (l.label(), stats.limit_hits(l)))
                .collect(),
            rooms: rooms.len(),
            largest_rooms: rooms
                .into_iter()
                .take(ROOMS_LISTED)
                .map(|(name, members)| RoomRow { name, members })
                .collect(),
        }
    }
}

impl StatusState {
    fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let mut s = Snapshot::of(
            &self.shared.stats,
            now.saturating_duration_since(self.started),
        );
        let totals = [s.messages_in, s.messages_out, s.bytes_in, s.bytes_out];
        let r = self
            .meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rates(now, totals);
        (
            s.messages_in_per_s,
            s.messages_out_per_s,
            s.bytes_in_per_s,
            s.bytes_out_per_s,
        ) = (r[0], r[1], r[2], r[3]);
        s
    }

    fn snapshot_json(&self) -> String {
        serde_json::to_string(&self.snapshot()).unwrap_or_else(|_| "{}".to_string())
    }
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

async fn json(State(st): State<Arc<StatusState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        st.snapshot_json(),
    )
        .into_response()
}

async fn push(State(st): State<Arc<StatusState>>, mut req: Request) -> Response {
    match upgrade::accept(&mut req, upgrade::ws_config(64 * 1024)) {
        Err(response) => response,
        Ok((response, upgraded)) => {
            let tasks = st.shared.tasks.clone();
            tasks.spawn(async move {
                if let Some(ws) = upgraded.await {
                    push_loop(&st, ws).await;
                }
            });
            response
        }
    }
}

/// Sends a snapshot now and every second until the viewer leaves or the server stops.
async fn push_loop(st: &StatusState, mut ws: WsStream) {
    let mut tick = tokio::time::interval(PUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = st.shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                let _ = tokio::time::timeout(SEND_TIMEOUT, ws.close(Some(frame))).await;
                return;
            }
            _ = tick.tick() => {
                let text = st.snapshot_json();
                match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::text(text))).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            msg = ws.next() => match msg {
                // Viewers send nothing but control frames, answered while reading.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_windows_of_about_a_second() {
        let mut m = RateMeter::default();
        let t0 = Instant::now();
        assert_eq!(m.rates(t0, [0, 0, 0, 0]), [0.0; 4]);
        assert_eq!(
            m.rates(t0 + Duration::from_millis(100), [50, 0, 0, 0]),
            [0.0; 4]
        );
        let r = m.rates(t0 + Duration::from_secs(2), [200, 100, 10, 0]);
        assert_eq!(r, [100.0, 50.0, 5.0, 0.0]);
    }

    #[test]
    fn snapshot_reads_every_counter() {
        let stats = Stats::new();
        stats.opened(Proto::RawWs);
        stats.opened(Proto::SocketioPolling);
        stats.closed(Proto::SocketioPolling, CloseCause::PingTimeout);
        stats.room_delta("ws:a", 2);
        let s = Snapshot::of(&stats, Duration::from_secs(3));
        assert_eq!(s.connections_open, 1);
        assert_eq!(s.heartbeat_timeouts, 1);
        assert_eq!(s.closes["ping_timeout"], 1);
        assert_eq!(s.rooms, 1);
        assert_eq!(s.largest_rooms[0].members, 2);
        assert_eq!(s.uptime_s, 3.0);
        assert_eq!(s.pid, std::process::id());
    }
}
