//! Drivers: one task per client, one loop for every protocol and scenario.
//!
//! Receives: the run context [`Ctx`] (plan, schedule, resolved target, broadcast board)
//! and a client index. Emits: [`Sample`]s on the recorder's channel: connect results with
//! their phases, every send, reply, timeout, publish, delivery, heartbeat, drop,
//! reconnect and disconnect, and each subscriber's final broadcast tallies.
//! Must not: compute statistics, spawn tasks (the swarm does), or let an intended instant
//! depend on what the server did.
//!
//! [`run_client`] (`client.rs`) walks the client's stretches (segments) of the schedule and, within
//! one, its connections: a dropped or closed connection is followed by a reconnect when
//! the plan asks for one (exponential backoff with jitter, [`backoff`]). While a client has
//! no connection, the echo sends its schedule meant are counted as skipped
//! ([`crate::sample::Event::SkippedDisconnected`]), so that `planned = sent + skipped_disconnected`. [`conn`] is the loop of one connection, parameterised by the
//! client's role in each phase; what differs between raw WebSocket and Socket.IO lives in
//! [`session`] / [`inbound`] (framing) and [`socketio`] (handshakes).

pub mod backoff;
pub mod beat;
mod client;
pub mod conn;
pub mod handshake;
pub mod inbound;
pub mod inflight;
pub mod net;
pub mod session;
mod sio_msgpack;

pub use client::run_client;
pub mod socketio;

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::model::Protocol;
use crate::plan::{Plan, Scenario};
use crate::sample::Event;
use crate::scenario::broadcast::{PublishLog, Receiver, Role};
use crate::schedule::{Schedule, Segment, SendClock};

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
    pub dialer: net::Dialer,
    pub frames: session::FrameTemplates,
    pub run_id: u32,
    pub seed: u64,
    pub wall: WallClock,
    /// Stop sending, drain, close.
    pub cancel: CancellationToken,
    /// Roles, rooms and the publish log.
    pub board: PublishLog,
}

impl Ctx {
    /// Drain after the last send: the shorter of the timeout and the grace.
    pub fn drain(&self) -> Duration {
        self.plan.timeout.min(self.plan.grace)
    }

    /// What `client` (with `role`) fills placeholders with in `room` (a room name).
    pub fn vars<'a>(&'a self, client: u32, room: &'a str) -> crate::template::Vars<'a> {
        crate::template::Vars {
            client,
            room,
            record: self
                .plan
                .target
                .data
                .as_ref()
                .map_or(&[], |d| d.record(client)),
        }
    }

    /// What one connect attempt of `client` with `role` sends (its room in the raw WS path,
    /// its placeholders filled in); `recover`: the session's `pid` and last offset.
    fn dial(
        &self,
        client: u32,
        role: Role,
        recover: Option<(&str, Option<&str>)>,
    ) -> session::Dial {
        let layout = &self.board.layout;
        let (room, publisher) = match role {
            Role::Subscriber { room } => (layout.room_name(room), false),
            Role::Publisher { room } => (layout.room_name(room), true),
            _ => ("idle", false),
        };
        self.frames
            .dial(&self.vars(client, room), publisher, recover)
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
    pub churn: Option<(u16, SendClock)>,
    /// Echo: the send clock of the phase the client was sending in when its connection
    /// ended (kept across reconnects: the sends it meant while away are skipped, not moved).
    pub echo: Option<(u16, SendClock)>,
    /// Echo sends are accounted (sent or skipped) up to this instant; `None`: the
    /// stretch's first connect.
    pub accounted: Option<Instant>,
}

/// A steered run asks its broadcast receivers for the tallies of the phases it judges
/// (capacity/kept.rs, [`crate::schedule::Steer::settle`]): gives them through `emit` (with
/// the instant to record them at, [`tally_at`]) if this client owes them, and reports that
/// it did.
pub fn settle_due(ctx: &Ctx, carry: &mut Carry, mut emit: impl FnMut(u16, Instant, Event)) {
    let Some(through) = ctx.schedule.settle_through() else {
        return;
    };
    if !carry.receiver.owes(through) {
        return;
    }
    let now = Instant::now();
    for (phase, tally) in carry.receiver.settle(&ctx.board, through) {
        emit(phase, tally_at(ctx, phase, now), Event::Tally(tally));
    }
    ctx.schedule.settled(through);
}

/// When a tally of `phase` given at `now` is recorded: at the phase's end at the latest, so
/// that a phase's span (its first and last sample) is not stretched to the drain or to
/// the end of the stretch, when tallies are counted.
pub fn tally_at(ctx: &Ctx, phase: u16, now: Instant) -> Instant {
    ctx.schedule.window(phase).end.min(now)
}

impl Carry {
    /// Counts the echo sends meant before `until` (and not yet sent or skipped) as
    /// skipped; `emit` gets one count per phase. The clock of the phase `until` falls in is
    /// kept for the next connection.
    pub fn skip_until(
        &mut self,
        ctx: &Ctx,
        client: u32,
        seg: &Segment,
        until: Instant,
        mut emit: impl FnMut(u16, u32),
    ) {
        let until = until.min(ctx.schedule.segment_end(seg));
        let from = self.accounted.unwrap_or(seg.connect_at);
        if until <= from {
            return;
        }
        let clamp = |p: u16| p.clamp(seg.first_phase, seg.last_phase);
        let (first, last) = (
            clamp(ctx.schedule.phase_at(from)),
            clamp(ctx.schedule.phase_at(until)),
        );
        for p in first..=last {
            let w = *ctx.schedule.window(p);
            let mut spec = ctx.plan.phases[usize::from(p)].clone();
            spec.rate_per_s = ctx.schedule.rate(p, spec.rate_per_s);
            let spec = &spec;
            let carried = match self.echo.take() {
                Some((q, k)) if q == p => Some(k),
                _ => None,
            };
            if !echo_sender(ctx, p, client) {
                continue;
            }
            let mut clock = carried.unwrap_or_else(|| {
                SendClock::new(from.max(w.start), spec, client, ctx.seed ^ u64::from(p))
            });
            let end = w.end.min(until);
            let mut n: u32 = 0;
            while clock.next() < end {
                n = n.saturating_add(1);
                clock.advance();
            }
            if n > 0 {
                emit(p, n);
            }
            if until < w.end {
                self.echo = Some((p, clock));
            }
        }
        self.accounted = Some(until);
    }
}

/// True when `client` sends echo requests in phase `p`.
pub fn echo_sender(ctx: &Ctx, p: u16, client: u32) -> bool {
    ctx.plan.phases[usize::from(p)].scenario == Scenario::Echo
        && ctx.board.layout.role(p, client) == Role::Plain
}

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The stretch ended (drained and closed).
    Done,
    /// The run was cancelled.
    Cancelled,
    /// The connection is gone (server close, client deadline, churn drop). `unplanned`:
    /// not a churn drop, nor the expected close of a muted client.
    Lost { reconnect: bool, unplanned: bool },
}

/// True if the protocol of the run is Socket.IO.
pub fn is_socketio(plan: &Plan) -> bool {
    plan.target.protocol == Protocol::Socketio
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::ErrorKind;
    use session::Session;

    fn future_size<F: std::future::Future, A, B, C>(_: &impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle client holds its task's future: it must stay small (3,136 bytes while the
    /// session was moved through the futures by value; 1,440 with it boxed and the role
    /// clocks in `conn::Timers`; the carry across reconnects is boxed since it holds the echo
    /// clock kept through an outage).
    #[test]
    fn client_future_stays_small() {
        let size = future_size(&run_client);
        assert!(size <= 1500, "run_client future is {size} bytes");
        assert!(std::mem::size_of::<Result<Box<Session>, ErrorKind>>() <= 16);
    }
}
