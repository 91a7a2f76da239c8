//! Drivers: one task per client, one loop for every protocol and scenario.
//!
//! Receives: the run context [`Ctx`] (plan, schedule, resolved target, broadcast board)
//! and a client index. Emits: [`Sample`]s on the recorder's channel: connect results with
//! their phases, every send, reply, timeout, publish, delivery, heartbeat, drop,
//! reconnect and disconnect, and each subscriber's final broadcast tallies.
//! Must not: compute statistics, spawn tasks (the swarm does), or let an intended instant
//! depend on what the server did.
//!
//! [`run_client`] walks the client's stretches (segments) of the schedule and, within
//! one, its connections: a dropped or closed connection is followed by a reconnect when
//! the plan asks for one. [`conn`] is the loop of one connection, parameterised by the
//! client's role in each phase; what differs between raw WebSocket and Socket.IO lives in
//! [`session`] / [`inbound`] (framing) and [`socketio`] (handshakes).

pub mod beat;
pub mod conn;
pub mod handshake;
pub mod inbound;
pub mod inflight;
pub mod net;
pub mod session;
mod sio_msgpack;
pub mod socketio;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::broadcast::{Board, Receiver, Role};
use crate::cli::Protocol;
use crate::plan::Plan;
use crate::sample::{ConnectPhases, ErrorKind, Event, Sample, SampleTx};
use crate::schedule::Schedule;
use session::Session;

/// Maps monotonic instants to wall-clock nanoseconds (the payload's `ti` / `ts`).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base: Instant,
    base_ns: u64,
}

impl WallClock {
    pub fn now() -> WallClock {
        let base = Instant::now();
        let base_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        WallClock { base, base_ns }
    }

    pub fn ns(&self, at: Instant) -> u64 {
        if at >= self.base {
            let d = at.duration_since(self.base).as_nanos() as u64;
            self.base_ns.saturating_add(d)
        } else {
            let d = self.base.duration_since(at).as_nanos() as u64;
            self.base_ns.saturating_sub(d)
        }
    }
}

/// Everything a client needs, shared by all clients of one run.
#[derive(Debug)]
pub struct Ctx {
    pub plan: Plan,
    pub schedule: Schedule,
    pub conn: net::Conn,
    pub frames: session::Frames,
    pub run_id: u32,
    pub seed: u64,
    pub wall: WallClock,
    /// Stop sending, drain, close.
    pub cancel: CancellationToken,
    /// Roles, rooms and the publish log.
    pub board: Board,
}

impl Ctx {
    /// Drain after the last send: the shorter of the timeout and the grace.
    pub fn drain(&self) -> Duration {
        self.plan.timeout.min(self.plan.grace)
    }

    /// The raw WS path of a client with `role`.
    fn ws_path(&self, role: Role) -> String {
        let layout = &self.board.layout;
        match role {
            Role::Subscriber { room } => self
                .frames
                .ws_path
                .replace("{room}", layout.room_name(room)),
            Role::Publisher { room } => self
                .frames
                .ws_publish_path
                .replace("{room}", layout.room_name(room)),
            _ => self.frames.ws_path.replace("{room}", "idle"),
        }
    }
}

/// What a client keeps across the connections of one stretch.
#[derive(Debug, Default)]
pub struct Carry {
    pub receiver: Receiver,
    /// Connection state recovery: the session's `pid` and the last offset received.
    pub pid: Option<String>,
    pub offset: Option<String>,
    /// Set while the client is away: when its connection dropped.
    pub away_since: Option<Instant>,
    /// Phases in which this client was counted as a member of its room.
    pub noted: Vec<u16>,
    /// Churn: the phase and drop instants of this client (kept across reconnects).
    pub churn: Option<(u16, crate::schedule::SendClock)>,
}

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The stretch ended (drained and closed).
    Done,
    /// The run was cancelled.
    Cancelled,
    /// The connection is gone (server close, client deadline, churn drop).
    Lost { reconnect: bool },
}

/// One client, from its first intended connect to its last close.
pub async fn run_client(ctx: Arc<Ctx>, client: u32, tx: SampleTx) {
    let emit = |phase: u16, at: Instant, event: Event| {
        let _ = tx.send(Sample {
            client,
            phase,
            at,
            event,
        });
    };
    for seg in ctx.schedule.segments(client) {
        if ctx.cancel.is_cancelled() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(seg.connect_at.into()) => {}
            () = ctx.cancel.cancelled() => return,
        }
        let mut carry = Carry::default();
        let mut intended = seg.connect_at;
        let mut cancelled = false;
        loop {
            let phase = ctx
                .schedule
                .phase_at(Instant::now())
                .clamp(seg.first_phase, seg.last_phase);
            let role = ctx.board.layout.role(phase, client);
            let mut phases = ConnectPhases::default();
            let started = Instant::now();
            // In a block: the path and the CONNECT frame are dropped once connected, not
            // kept (on the heap) for the whole connection.
            let result = {
                let ws_path = ctx.ws_path(role);
                let connect = match carry.away_since {
                    Some(_) => ctx
                        .frames
                        .connect_frame(carry.pid.as_deref(), carry.offset.as_deref()),
                    None => ctx.frames.connect.clone(),
                };
                tokio::select! {
                // Boxed: the handshake futures are large and live only while connecting;
                // inline they would size every idle client's task.
                r = tokio::time::timeout(
                    ctx.plan.timeout,
                    // The session goes to the heap as soon as it exists: moved by value
                    // through the futures below, it would be stored in them several times.
                    Box::pin(async {
                        Session::connect(&ctx, &mut phases, &ws_path, &connect)
                            .await
                            .map(Box::new)
                    }),
                ) => r.unwrap_or(Err(ErrorKind::ConnectTimeout)),
                () = ctx.cancel.cancelled() => { cancelled = true; break }
                }
            };
            let end = match result {
                Err(error) => {
                    emit(
                        phase,
                        Instant::now(),
                        Event::ConnectFailed {
                            intended,
                            phases,
                            error,
                        },
                    );
                    if carry.away_since.is_some() {
                        emit(phase, Instant::now(), Event::ReconnectFailed);
                        End::Lost { reconnect: true }
                    } else {
                        End::Lost { reconnect: false }
                    }
                }
                Ok(session) => {
                    phases.total = Some(started.elapsed());
                    emit(phase, Instant::now(), Event::Connected { intended, phases });
                    conn::run(&ctx, client, &tx, seg, session, &mut carry).await
                }
            };
            match end {
                End::Done => break,
                End::Cancelled => {
                    cancelled = true;
                    break;
                }
                End::Lost { reconnect } => {
                    let at = Instant::now() + ctx.plan.target.fan.reconnect_delay;
                    if !reconnect || at >= seg.end {
                        // Away until the stretch ends: still a member (that is "missed").
                        let until = seg.end + ctx.drain();
                        tokio::select! {
                            () = tokio::time::sleep_until(until.into()) => {}
                            () = ctx.cancel.cancelled() => cancelled = true,
                        }
                        break;
                    }
                    carry.away_since.get_or_insert(Instant::now());
                    intended = at;
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = ctx.cancel.cancelled() => { cancelled = true; break }
                    }
                }
            }
        }
        let now = Instant::now();
        for (phase, tally) in carry.receiver.finish(&ctx.board, ctx.wall.ns(now)) {
            emit(phase, now, Event::Tally(tally));
        }
        if cancelled {
            return;
        }
    }
}

/// True if the protocol of the run is Socket.IO.
pub fn is_socketio(plan: &Plan) -> bool {
    plan.target.protocol == Protocol::Socketio
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: std::future::Future, A, B, C>(_: &impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle client holds its task's future: it must stay small (3,136 bytes while the
    /// session was moved through the futures by value; 1,440 with it boxed and the role
    /// clocks in `conn::Timers`).
    #[test]
    fn client_future_stays_small() {
        let size = future_size(&run_client);
        assert!(size <= 1500, "run_client future is {size} bytes");
        assert!(std::mem::size_of::<Result<Box<Session>, ErrorKind>>() <= 16);
    }
}
