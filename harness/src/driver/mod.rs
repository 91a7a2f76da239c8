//! Drivers: one task per client, one loop for every protocol and scenario.
//!
//! Receives: the run context [`Ctx`] (plan, schedule, resolved target) and a client index.
//! Emits: [`Sample`]s on the recorder's channel: connect results with their phases, every
//! send, reply, timeout, late reply, unanswered count and disconnect.
//! Must not: compute statistics, spawn tasks (the swarm does), or let an intended instant
//! depend on what the server did.
//!
//! The loop ([`run_client`]) is parameterised by the schedule; what differs between raw
//! WebSocket and Socket.IO lives in [`session`] (framing) and [`socketio`] (handshakes).

pub mod inflight;
pub mod net;
pub mod session;
pub mod socketio;

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use crate::cli::Protocol;
use crate::plan::{Plan, Scenario};
use crate::sample::{ConnectPhases, DisconnectReason, ErrorKind, Event, Sample, SampleTx};
use crate::schedule::{Schedule, Segment, SendClock};
use inflight::{InFlight, Settled};
use session::{Incoming, Session};

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
        let d = at.saturating_duration_since(self.base).as_nanos() as u64;
        self.base_ns.saturating_add(d)
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
}

impl Ctx {
    /// Drain after the last send: the shorter of the timeout and the grace.
    pub fn drain(&self) -> Duration {
        self.plan.timeout.min(self.plan.grace)
    }
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
        let mut phases = ConnectPhases::default();
        let started = Instant::now();
        let result = tokio::select! {
            // Boxed: the handshake futures are large and live only while connecting; inline
            // they would size every idle client's task.
            r = tokio::time::timeout(ctx.plan.timeout, Box::pin(Session::connect(&ctx, &mut phases))) => {
                r.unwrap_or(Err(ErrorKind::ConnectTimeout))
            }
            () = ctx.cancel.cancelled() => return,
        };
        let session = match result {
            Ok(session) => session,
            Err(error) => {
                emit(
                    seg.first_phase,
                    Instant::now(),
                    Event::ConnectFailed {
                        intended: seg.connect_at,
                        phases,
                        error,
                    },
                );
                continue;
            }
        };
        phases.total = Some(started.elapsed());
        emit(
            seg.first_phase,
            Instant::now(),
            Event::Connected {
                intended: seg.connect_at,
                phases,
            },
        );
        if run_segment(&ctx, client, &tx, seg, session).await {
            return;
        }
    }
}

fn clock_for(ctx: &Ctx, phase: u16, client: u32, start: Instant) -> Option<SendClock> {
    let p = &ctx.plan.phases[usize::from(phase)];
    (p.scenario == Scenario::Echo)
        .then(|| SendClock::new(start, p, client, ctx.seed ^ u64::from(phase)))
}

/// Runs one connected stretch; returns true when the run was cancelled.
async fn run_segment(
    ctx: &Ctx,
    client: u32,
    tx: &SampleTx,
    seg: Segment,
    mut session: Session,
) -> bool {
    let emit = |phase: u16, at: Instant, event: Event| {
        let _ = tx.send(Sample {
            client,
            phase,
            at,
            event,
        });
    };
    let mut inflight = InFlight::new(ctx.plan.timeout);
    let mut phase = seg.first_phase;
    let window_end = |p: u16| ctx.schedule.windows[usize::from(p)].end;
    let mut clock = clock_for(
        ctx,
        phase,
        client,
        Instant::now().max(ctx.schedule.windows[usize::from(phase)].start),
    );
    let mut buf = BytesMut::new();
    let mut drain_until: Option<Instant> = None;
    let mut cancelled = false;
    let mut cancel_fut = pin!(ctx.cancel.cancelled());
    let sleep = tokio::time::sleep_until(window_end(phase).into());
    let mut sleep = pin!(sleep);

    let closed_by_server: Option<DisconnectReason> = 'run: loop {
        let now = Instant::now();
        inflight.expire(now, |p, ev| emit(p, now, ev));
        while drain_until.is_none() && now >= window_end(phase) {
            if phase < seg.last_phase {
                phase += 1;
                clock = clock_for(
                    ctx,
                    phase,
                    client,
                    ctx.schedule.windows[usize::from(phase)].start,
                );
            } else {
                drain_until = Some(seg.end + ctx.drain());
                clock = None;
            }
        }
        let max = ctx.plan.phases[usize::from(phase)].max_in_flight;
        let can_send = |f: &InFlight| max == 0 || f.pending() < max;
        if let Some(c) = clock.as_mut() {
            while c.next() <= now && c.next() < window_end(phase) && can_send(&inflight) {
                let intended = c.next();
                let seq = inflight.next_seq();
                let sent = Instant::now();
                let fields = crate::payload::Fields {
                    run: ctx.run_id,
                    client,
                    seq,
                    intended_ns: ctx.wall.ns(intended),
                    sent_ns: ctx.wall.ns(sent),
                };
                let size = ctx.plan.phases[usize::from(phase)].payload_size;
                if let Err(reason) = session
                    .send_echo(&ctx.frames, &mut buf, &fields, size)
                    .await
                {
                    break 'run Some(reason);
                }
                inflight.sent(intended, sent, phase);
                emit(phase, sent, Event::Sent { intended });
                c.advance();
            }
        }
        if let Some(d) = drain_until
            && (inflight.pending() == 0 || now >= d)
        {
            break None;
        }
        let mut wake = drain_until.unwrap_or_else(|| window_end(phase));
        if let Some(d) = inflight.next_deadline() {
            wake = wake.min(d);
        }
        if let Some(c) = &clock
            && can_send(&inflight)
        {
            wake = wake.min(c.next());
        }
        sleep.as_mut().reset(wake.into());
        tokio::select! {
            biased;
            () = &mut cancel_fut, if !cancelled => {
                cancelled = true;
                clock = None;
                let until = Instant::now() + ctx.drain();
                drain_until = Some(drain_until.map_or(until, |d| d.min(until)));
            }
            incoming = session.recv(&ctx.frames, ctx.run_id, client) => {
                let now = Instant::now();
                match incoming {
                    Incoming::Reply(seq) => match inflight.reply(seq, now) {
                        Settled::Record { phase, event } => emit(phase, now, event),
                        Settled::Unmatched => emit(phase, now, Event::Error { error: ErrorKind::Unmatched }),
                    },
                    Incoming::Nothing => {}
                    Incoming::Error(error) => emit(phase, now, Event::Error { error }),
                    Incoming::Closed(reason) => break 'run Some(reason),
                }
                if session.control_due()
                    && let Err(reason) = session.flush_control(&ctx.frames).await
                {
                    break 'run Some(reason);
                }
            }
            () = &mut sleep => {}
        }
    };
    let now = Instant::now();
    match closed_by_server {
        Some(reason) => {
            inflight.fail_all(|p, ev| emit(p, now, ev));
            emit(phase, now, Event::Disconnected { reason });
        }
        None => {
            for (p, count) in inflight.stop() {
                emit(p, now, Event::Unanswered { count });
            }
            Box::pin(session.close(&ctx.frames)).await;
            emit(
                phase,
                Instant::now(),
                Event::Disconnected {
                    reason: DisconnectReason::ClientClose,
                },
            );
        }
    }
    cancelled || ctx.cancel.is_cancelled()
}

/// True if the protocol of the run is Socket.IO.
pub fn is_socketio(plan: &Plan) -> bool {
    plan.target.protocol == Protocol::Socketio
}
