//! The loop of one connection: the client's role in each phase (echo, publisher,
//! subscriber, heartbeat, plain), its timers, and every frame the server sends.
//!
//! Receives: a connected [`Session`], the client's stretch, what it carries across
//! reconnects ([`Carry`]). Emits: samples (sends, replies, publishes, deliveries, pings,
//! drops, closes) and an [`End`].
//! Must not: compute statistics, block between frames (frames already buffered are
//! handled in one wakeup, up to [`BURST`]), or reset its timer when the next wake-up did
//! not change.

use std::pin::pin;
use std::time::Instant;

use bytes::BytesMut;
use futures_util::FutureExt;

use super::beat::{Beat, Verdict};
use super::inflight::{InFlight, Settled};
use super::session::{Incoming, Session};
use super::{Carry, Ctx, End};
use crate::model::Protocol;
use crate::payload::Found;
use crate::plan::Phase;
use crate::sample::{DisconnectReason, ErrorKind, Event, SampleTx};
use crate::scenario::broadcast::Role;
use crate::scenario::flow::{FlowRun, Poll};
use crate::schedule::{Segment, SendClock, Then};

mod roles;

use roles::{next_wake, send_due, sends_due};

/// Frames handled per wakeup before timers get a look.
const BURST: usize = 64;

struct Conn<'a> {
    ctx: &'a Ctx,
    client: u32,
    tx: &'a SampleTx,
    seg: Segment,
    phase: u16,
    role: Role,
    inflight: InFlight,
    /// The clocks of the phase's role; `None` when it has none (idle and subscriber
    /// clients), so that those do not carry them in their task.
    timers: Option<Box<Timers>>,
    beat: Beat,
    /// Room joined (or being joined) on this connection.
    joined: Option<u32>,
    /// Join acks awaited: (id, room).
    pending: Vec<(u32, u32)>,
    next_id: u32,
    buf: BytesMut,
    /// A reconnect waits for its re-join ack: when the drop happened.
    rejoin_since: Option<Instant>,
    /// A flow phase: the client's flow (scenario/flow/).
    flow: Option<Box<FlowRun>>,
    /// A steered run: the phase ended and the next one is not decided yet.
    waiting: bool,
}

/// What a role sends or does on its own schedule.
#[derive(Debug, Default)]
struct Timers {
    echo: Option<SendClock>,
    publish: Option<(SendClock, u32)>,
    /// Publishing waits until the room is full, at most until this instant.
    gate: Option<Instant>,
    ping_every: Option<(Instant, std::time::Duration)>,
    mute_at: Option<Instant>,
}

impl Timers {
    /// Stops the sends (the drain keeps the heartbeat timers).
    fn stop_sends(timers: &mut Option<Box<Timers>>) {
        if let Some(t) = timers.as_mut() {
            t.echo = None;
            t.publish = None;
        }
    }
}

impl Conn<'_> {
    fn emit(&self, phase: u16, at: Instant, event: Event) {
        self.tx.emit(self.client, phase, at, event);
    }

    fn spec(&self) -> &Phase {
        &self.ctx.plan.phases[usize::from(self.phase)]
    }

    fn window_end(&self) -> Instant {
        self.ctx.schedule.window(self.phase).end
    }

    fn now_ns(&self, at: Instant) -> u64 {
        self.ctx.wall.ns(at)
    }

    fn delivery(&self, found: Option<Found>, now: Instant, carry: &mut Carry) {
        let ctx = self.ctx;
        carry.receiver.delivery(
            &ctx.board,
            ctx.run_id,
            found,
            self.now_ns(now),
            |phase, ev| {
                self.emit(phase, now, ev);
            },
        );
    }

    /// One frame; `Some` when the connection ended.
    fn handle(
        &mut self,
        incoming: Incoming,
        session: &Session,
        carry: &mut Carry,
        now: Instant,
    ) -> Option<End> {
        match incoming {
            Incoming::Reply(seq) => self.reply(seq, now),
            Incoming::Payload(found) => match self.role {
                Role::Subscriber { .. } => self.delivery(found, now, carry),
                Role::Publisher { .. } => {}
                _ => match found {
                    Some(p) if p.run == self.ctx.run_id && p.client == self.client && !p.server => {
                        self.reply(p.seq, now)
                    }
                    _ => self.emit(
                        self.phase,
                        now,
                        Event::Error {
                            error: ErrorKind::Unmatched,
                        },
                    ),
                },
            },
            Incoming::Broadcast(found) => {
                if !matches!(self.role, Role::Publisher { .. }) {
                    self.delivery(found, now, carry);
                }
            }
            Incoming::ControlAck(id) => {
                if let Some(i) = self.pending.iter().position(|(p, _)| *p == id) {
                    let (_, room) = self.pending.swap_remove(i);
                    if self.joined == Some(room) {
                        self.join_acked(room, now, carry);
                    }
                }
            }
            Incoming::Ping => {
                let ev = self.beat.ping(now, !session.muted);
                self.emit(self.phase, now, ev);
            }
            Incoming::Pong(id) => {
                if let Some(ev) = self.beat.pong(id, now) {
                    self.emit(self.phase, now, ev);
                }
            }
            Incoming::FlowAck(id, body) => {
                if let Some(f) = self.flow.as_mut() {
                    f.on_ack(id, &body, now);
                }
                self.flow_samples(now);
            }
            Incoming::FlowFrame(text) => {
                if let Some(f) = self.flow.as_mut() {
                    f.on_frame(&text, now);
                }
                self.flow_samples(now);
            }
            Incoming::Nothing => {}
            Incoming::Error(error) => self.emit(self.phase, now, Event::Error { error }),
            Incoming::Closed(reason) => return Some(self.server_closed(reason, now, carry)),
        }
        None
    }

    /// The flow step runs that ended, as samples.
    fn flow_samples(&mut self, now: Instant) {
        let Some(f) = self.flow.as_mut() else {
            return;
        };
        for d in f.take_done() {
            self.tx.emit(
                self.client,
                self.phase,
                now,
                Event::FlowStep {
                    step: d.step,
                    name: d.name,
                    outcome: d.outcome,
                    latency: d.latency,
                },
            );
        }
    }

    fn reply(&mut self, seq: u32, now: Instant) {
        match self.inflight.reply(seq, now) {
            Settled::Record { phase, event } => self.emit(phase, now, event),
            Settled::Unmatched => self.emit(
                self.phase,
                now,
                Event::Error {
                    error: ErrorKind::Unmatched,
                },
            ),
        }
    }

    fn server_closed(&mut self, reason: DisconnectReason, now: Instant, carry: &mut Carry) -> End {
        let muted = self.beat.muted();
        match self.beat.server_closed(now, &reason) {
            Verdict::Muted(ev) => self.emit(self.phase, now, ev),
            Verdict::FalseTimeout => self.emit(self.phase, now, Event::FalseTimeout),
            Verdict::Other => {}
        }
        self.lost(now, carry, reason);
        End::Lost {
            reconnect: !muted && self.ctx.plan.target.fan.reconnect,
            unplanned: !muted,
        }
    }

    /// The connection is gone at `now`: timeouts for what was in flight, away for rooms.
    fn lost(&mut self, now: Instant, carry: &mut Carry, reason: DisconnectReason) {
        let phase = self.phase;
        if let Some(f) = self.flow.as_mut() {
            f.disconnected(now);
        }
        self.flow_samples(now);
        let mut timeouts = Vec::new();
        self.inflight.fail_all(|p, ev| timeouts.push((p, ev)));
        for (p, ev) in timeouts {
            self.emit(p, now, ev);
        }
        carry.receiver.dropped(&self.ctx.board, self.now_ns(now));
        // Echo sends go on being accounted from here: the clock is kept, not restarted.
        carry.echo = self
            .timers
            .as_mut()
            .and_then(|t| t.echo.take())
            .map(|k| (phase, k));
        carry.accounted = Some(now);
        self.emit(phase, now, Event::Disconnected { reason });
    }
}

/// Runs one connection until the stretch ends, the run is cancelled or the connection is
/// lost.
pub(super) async fn run(
    ctx: &Ctx,
    client: u32,
    tx: &SampleTx,
    seg: Segment,
    mut session: Box<Session>,
    carry: &mut Carry,
) -> End {
    let now = Instant::now();
    let advertised = session.handshake.or_else(|| {
        ctx.plan
            .target
            .fan
            .ws_ping_interval
            .filter(|_| ctx.frames.protocol == Protocol::Ws)
            .map(|i| (i, i))
    });
    let first_phase = ctx
        .schedule
        .phase_at(now)
        .clamp(seg.first_phase, seg.last_phase);
    let mut c = Conn {
        ctx,
        client,
        tx,
        seg,
        phase: first_phase,
        role: Role::Plain,
        inflight: InFlight::new(ctx.plan.timeout),
        timers: None,
        beat: Beat::new(advertised, now),
        joined: None,
        pending: Vec::new(),
        next_id: 0,
        buf: BytesMut::new(),
        rejoin_since: carry.away_since.take(),
        flow: None,
        waiting: false,
    };
    // A reconnect: did connection state recovery restore the session (same pid)?
    if c.rejoin_since.is_some() {
        let recovered = session.pid.is_some() && session.pid == carry.pid;
        let away = carry
            .receiver
            .reconnected(&ctx.board, ctx.wall.ns(now), recovered);
        let rooms = carry.receiver.rooms_to_rejoin();
        if recovered || rooms.is_empty() {
            if recovered {
                c.joined = rooms.first().copied();
            }
            if let Some(since) = c.rejoin_since.take() {
                c.emit(
                    first_phase,
                    now,
                    Event::Reconnected {
                        took: now.saturating_duration_since(since),
                        recovered_session: recovered,
                        away,
                    },
                );
            }
        }
    }
    carry.pid = session.pid.clone();
    if let Some(o) = carry.offset.take() {
        session.offset.get_or_insert(o);
    }
    let end = drive(&mut c, &mut session, carry).await;
    carry.offset = session.offset.take();
    if end == End::Done {
        let now = Instant::now();
        if c.beat.muted() {
            c.emit(c.phase, now, Event::MutedNeverClosed);
        }
        for (p, count) in c.inflight.stop() {
            c.emit(p, now, Event::Unanswered { count });
        }
        Box::pin((*session).close(&ctx.frames)).await;
        c.emit(
            c.phase,
            Instant::now(),
            Event::Disconnected {
                reason: DisconnectReason::ClientClose,
            },
        );
    } else if end == End::Cancelled {
        session.abort();
    }
    end
}

async fn drive(c: &mut Conn<'_>, session: &mut Session, carry: &mut Carry) -> End {
    let ctx = c.ctx;
    // Boxed: phase changes are rare; their futures would size every idle client's task.
    if let Err(reason) = Box::pin(c.enter(c.phase, session, carry, true)).await {
        c.lost(Instant::now(), carry, reason);
        return End::Lost {
            reconnect: ctx.plan.target.fan.reconnect,
            unplanned: true,
        };
    }
    let mut drain_until: Option<Instant> = None;
    let mut cancelled = false;
    let mut cancel_fut = pin!(ctx.cancel.cancelled());
    let mut wake_at = c.window_end();
    // The microsecond timer, not tokio's 1 ms wheel: a send is due at its intended instant
    // to within tens of microseconds. Its local driver runs inside the worker threads, so a
    // due send costs no cross-thread wake-up (docs/PERFORMANCE.md#send-timing).
    let mut sleep = pin!(finetime::local::sleep_until(wake_at));
    // A steered run: its decisions wake the connections waiting for their next phase.
    let mut steer = ctx.schedule.watch();
    loop {
        let now = Instant::now();
        c.expire(now);
        while drain_until.is_none() && now >= c.window_end() {
            match ctx.schedule.then(c.phase, &c.seg) {
                Then::Next => {
                    c.waiting = false;
                    if let Err(reason) = Box::pin(c.enter(c.phase + 1, session, carry, false)).await
                    {
                        c.lost(now, carry, reason);
                        return End::Lost {
                            reconnect: ctx.plan.target.fan.reconnect,
                            unplanned: true,
                        };
                    }
                }
                Then::End => {
                    c.waiting = false;
                    drain_until = Some(c.window_end() + ctx.drain());
                    Timers::stop_sends(&mut c.timers);
                    if let Some(f) = c.flow.as_mut() {
                        f.stop();
                    }
                    carry.churn = None;
                }
                Then::Wait => {
                    // Connected and idle until the steering decides (capacity/kept.rs).
                    if !c.waiting {
                        c.waiting = true;
                        Timers::stop_sends(&mut c.timers);
                    }
                    break;
                }
            }
        }
        // A steered run judging a broadcast step asks for its tallies (capacity/kept.rs).
        super::settle_due(ctx, carry, |phase, at, event| c.emit(phase, at, event));
        if let Some(end) = c.clocks_due(session, carry, now, drain_until) {
            return end;
        }
        if let Some(t) = c.timers.as_mut()
            && let Some((next, every)) = t.ping_every
            && now >= next
            && !c.beat.muted()
        {
            let id = c.beat.client_ping(now);
            t.ping_every = Some((now + every, every));
            if let Err(reason) = Box::pin(session.send_ping(id)).await {
                return closed(c, reason, carry);
            }
        }
        // Boxed: only flow clients pay for this future.
        if c.flow.is_some()
            && let Err(reason) = Box::pin(flow_due(c, session, now)).await
        {
            return closed(c, reason, carry);
        }
        // Boxed, and only when a send is due: the send futures would size every idle
        // client's task.
        if sends_due(c, now)
            && let Err(reason) = Box::pin(send_due(c, session, now)).await
        {
            return closed(c, reason, carry);
        }
        // Subscribers read until the drain ends; publishers stay connected as long, so that
        // their last messages are not cut short by their own close.
        let receiving = matches!(c.role, Role::Subscriber { .. } | Role::Publisher { .. })
            || c.beat.muted()
            || c.flow.as_ref().is_some_and(|f| f.outstanding() > 0);
        if let Some(d) = drain_until
            && ((c.inflight.pending() == 0 && !receiving) || now >= d)
        {
            if let Some(f) = c.flow.as_mut()
                && f.outstanding() > 0
            {
                f.unanswered_at_stop(now);
                c.flow_samples(now);
            }
            return if cancelled { End::Cancelled } else { End::Done };
        }
        let wake = next_wake(c, drain_until, carry);
        if wake != wake_at {
            wake_at = wake;
            sleep.as_mut().reset(wake);
        }
        let incoming = tokio::select! {
            biased;
            () = &mut cancel_fut, if !cancelled => {
                cancelled = true;
                Timers::stop_sends(&mut c.timers);
                if let Some(f) = c.flow.as_mut() {
                    f.stop();
                }
                carry.churn = None;
                let until = Instant::now() + ctx.drain();
                drain_until = Some(drain_until.map_or(until, |d| d.min(until)));
                None
            }
            incoming = session.recv(&ctx.frames) => Some(incoming),
            () = &mut sleep => None,
            // Boxed: only a steered run's waiting connections pay for this future.
            _ = Box::pin(wait_decision(steer.as_mut())), if c.waiting => None,
        };
        let Some(incoming) = incoming else {
            continue;
        };
        if let Some(end) = take_burst(c, session, carry, incoming) {
            return end;
        }
        // Boxed (pongs and acks are rare): the future would size every idle client's task.
        if session.control_due()
            && let Err(reason) = Box::pin(session.flush_control(&ctx.frames)).await
        {
            return closed(c, reason, carry);
        }
    }
}

/// Resolves at the steered run's next decision (never for a plan's run).
async fn wait_decision(rx: Option<&mut tokio::sync::watch::Receiver<usize>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Writes the flow's frames that are due (its step runs that end here become samples).
async fn flow_due(
    c: &mut Conn<'_>,
    session: &mut Session,
    now: Instant,
) -> Result<(), DisconnectReason> {
    let ctx = c.ctx;
    while let Some(f) = c.flow.as_mut() {
        match f.poll(now) {
            Poll::Send(out) => {
                c.flow_samples(now);
                session.send_flow(&ctx.frames, out.text, out.binary).await?;
            }
            Poll::Idle(_) => break,
        }
    }
    c.flow_samples(now);
    Ok(())
}

/// Handles `incoming` and every further frame already readable (up to [`BURST`]) in one
/// wake-up. `Some` when the connection ended.
fn take_burst(
    c: &mut Conn<'_>,
    session: &mut Session,
    carry: &mut Carry,
    mut incoming: Incoming,
) -> Option<End> {
    // Each frame is stamped when the read that completed it returned (not when this
    // task got to it): net::Stream's poll_read takes the stamp. An end of the
    // connection is stamped when it is seen (an EOF or reset returns no bytes).
    for n in 1..=BURST {
        let now = match incoming {
            Incoming::Closed(_) => Instant::now(),
            _ => session.received_at(),
        };
        if let Some(end) = c.handle(incoming, session, carry, now) {
            return Some(end);
        }
        // A frame taken from the session must be handled: stop asking at the limit.
        if n == BURST {
            break;
        }
        match session.recv(&c.ctx.frames).now_or_never() {
            Some(next) => incoming = next,
            None => break,
        }
    }
    None
}

fn closed(c: &mut Conn<'_>, reason: DisconnectReason, carry: &mut Carry) -> End {
    c.server_closed(reason, Instant::now(), carry)
}
