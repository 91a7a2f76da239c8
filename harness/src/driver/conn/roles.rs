//! A connection's role in each phase (its clocks, mute instant, room membership) and the
//! sends and wake-ups the role implies.
//!
//! Receives: the phase entered, the session, the client's carry. Emits: join / leave emits,
//! echo requests and publishes whose intended instant has come (with their samples), and the
//! next instant the loop must wake at; the clocks that are not sends (mute, churn drop,
//! heartbeat deadline) and timeouts.
//! Must not: read frames (the loop does), or move an intended instant because of the server.

use std::time::Instant;

use super::{Carry, Conn, End, Session, Timers};
use crate::driver::session::CONTROL_ID_BASE;
use crate::model::{Arrival, Protocol};
use crate::plan::{Phase, Scenario};
use crate::sample::{DisconnectReason, Event, Sample};
use crate::scenario::broadcast::Role;
use crate::scenario::flow::{FlowRun, Wire};
use crate::schedule::SendClock;

impl Conn<'_> {
    /// Takes up the role of `phase`: clocks, mute, subscription.
    pub(super) async fn enter(
        &mut self,
        phase: u16,
        session: &mut Session,
        carry: &mut Carry,
        first: bool,
    ) -> Result<(), DisconnectReason> {
        let ctx = self.ctx;
        self.phase = phase;
        self.role = ctx.board.layout.role(phase, self.client);
        let now = Instant::now();
        let t = self.clocks(phase, carry, now);
        let any = t.echo.is_some()
            || t.publish.is_some()
            || t.gate.is_some()
            || t.ping_every.is_some()
            || t.mute_at.is_some();
        self.timers = any.then(|| Box::new(t));
        self.flow = self.flow_of(phase, now);
        session.flow = self.flow.is_some();
        self.subscribe(session, carry, now, first).await
    }

    /// A flow phase's flow for this client, starting now.
    fn flow_of(&self, phase: u16, now: Instant) -> Option<Box<FlowRun>> {
        let ctx = self.ctx;
        let p = &ctx.plan.phases[usize::from(phase)];
        let flow = p.flow.clone().filter(|_| p.scenario == Scenario::Flow)?;
        let f = &ctx.frames;
        let wire = Wire {
            socketio: f.protocol == Protocol::Socketio,
            emit_head: f.emit_head.clone(),
            join_head: f.join_args.clone(),
            leave_head: f.leave_args.clone(),
            join_args: f.join_template.clone(),
        };
        let data = ctx.vars(self.client, "").record;
        Some(Box::new(FlowRun::new(
            flow,
            std::sync::Arc::new(wire),
            self.client,
            data,
            ctx.seed ^ u64::from(phase),
            now,
        )))
    }

    /// The clocks of the role in `phase`: echo sends (carried over a reconnect), publishes
    /// and their gate, churn drops (kept in `carry`), client pings, the mute instant.
    fn clocks(&mut self, phase: u16, carry: &mut Carry, now: Instant) -> Timers {
        let ctx = self.ctx;
        let w = *ctx.schedule.window(phase);
        let mut p = self.spec().clone();
        p.rate_per_s = ctx.schedule.rate(phase, p.rate_per_s);
        let seed = ctx.seed ^ u64::from(phase);
        // After a reconnect, the clock of the phase goes on where it was (the sends meant
        // while away were counted as skipped); otherwise it starts now.
        let carried = match carry.echo.take() {
            Some((q, k)) if q == phase => Some(k),
            _ => None,
        };
        let mut t = Timers {
            echo: (p.scenario == Scenario::Echo && self.role == Role::Plain).then(|| {
                carried.unwrap_or_else(|| SendClock::new(now.max(w.start), &p, self.client, seed))
            }),
            ..Timers::default()
        };
        t.publish = match self.role {
            Role::Publisher { room } => {
                ctx.board.enter_phase(self.client, phase);
                t.gate = Some(now.max(w.ramp_end) + ctx.plan.timeout);
                Some((
                    SendClock::new(now.max(w.ramp_end), &p, self.client, seed),
                    room,
                ))
            }
            _ => None,
        };
        let keep = carry.churn.as_ref().is_some_and(|(k, _)| *k == phase);
        if !keep {
            carry.churn = match (&p.churn, &p.fanout, self.role) {
                (Some(c), Some(f), Role::Subscriber { .. }) => {
                    let each = Phase {
                        rate_per_s: c.rate_per_s / f64::from(f.subscribers.max(1)),
                        arrival: Arrival::Poisson,
                        ..p.clone()
                    };
                    let start = now.max(w.ramp_end);
                    Some((
                        phase,
                        SendClock::new(start, &each, self.client, seed ^ 0xC0FF),
                    ))
                }
                _ => None,
            };
        }
        t.ping_every = match (
            p.heartbeat.client_ping_interval,
            ctx.frames.protocol,
            self.role,
        ) {
            (Some(every), Protocol::Ws, Role::Heartbeat) => Some((now + every, every)),
            _ => None,
        };
        t.mute_at = match (p.heartbeat.mute, self.role) {
            (Some(m), Role::Heartbeat) => {
                let group = if p.scenario == Scenario::Heartbeat {
                    0
                } else {
                    p.clients.saturating_sub(p.heartbeat.clients)
                };
                let i = f64::from(self.client.saturating_sub(group));
                let chosen = ((i + 1.0) * m.fraction).floor() > (i * m.fraction).floor();
                chosen.then_some(w.start + m.at)
            }
            _ => None,
        };
        t
    }

    /// Joins the room of the role (leaving the one before), or notes a join already made.
    async fn subscribe(
        &mut self,
        session: &mut Session,
        carry: &mut Carry,
        now: Instant,
        first: bool,
    ) -> Result<(), DisconnectReason> {
        let ctx = self.ctx;
        let want = match self.role {
            Role::Subscriber { room } => Some(room),
            _ => None,
        };
        if self.joined == want {
            if let Some(room) = want
                && !self.pending.iter().any(|(_, r)| *r == room)
            {
                self.note(room, carry);
            }
            return Ok(());
        }
        let sio = ctx.frames.protocol == Protocol::Socketio;
        if let Some(old) = self.joined.take() {
            carry.receiver.left(&ctx.board, old, self.now_ns(now));
            if sio {
                let id = self.next_control_id();
                let name = ctx.board.layout.room_name(old);
                let vars = ctx.vars(self.client, name);
                session
                    .send_membership(&ctx.frames, &mut self.buf, &vars, false, id)
                    .await?;
            }
        }
        let Some(room) = want else { return Ok(()) };
        self.joined = Some(room);
        if !sio {
            // Raw WS: the room is the URL; the upgrade was the join (first phase only).
            if first {
                self.join_acked(room, now, carry);
            }
            return Ok(());
        }
        let id = self.next_control_id();
        self.pending.push((id, room));
        let name = ctx.board.layout.room_name(room);
        let vars = ctx.vars(self.client, name);
        session
            .send_membership(&ctx.frames, &mut self.buf, &vars, true, id)
            .await
    }

    fn next_control_id(&mut self) -> u32 {
        let id = CONTROL_ID_BASE + (self.next_id & (CONTROL_ID_BASE - 1));
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Counts this client in `room` for the current phase (once).
    fn note(&self, room: u32, carry: &mut Carry) {
        if !carry.noted.contains(&self.phase) {
            carry.noted.push(self.phase);
            self.ctx.board.note_join(self.phase, room);
        }
    }

    pub(super) fn join_acked(&mut self, room: u32, now: Instant, carry: &mut Carry) {
        self.note(room, carry);
        let away = carry
            .receiver
            .joined(&self.ctx.board, room, self.now_ns(now));
        if let Some(since) = self.rejoin_since.take() {
            self.emit(
                self.phase,
                now,
                Event::Reconnected {
                    took: now.saturating_duration_since(since),
                    recovered_session: false,
                    away,
                },
            );
        }
    }
}

/// True when an echo request or a publish (or the end of a publisher's wait for its room)
/// is due at `now`.
pub(super) fn sends_due(c: &Conn<'_>, now: Instant) -> bool {
    let max = c.spec().max_in_flight;
    let Some(t) = c.timers.as_deref() else {
        return false;
    };
    let echo = t
        .echo
        .as_ref()
        .is_some_and(|k| k.next() <= now && (max == 0 || c.inflight.pending() < max));
    let publish = t.publish.as_ref().is_some_and(|(k, _)| match t.gate {
        Some(_) => true,
        None => k.next() <= now,
    });
    echo || publish
}

/// Echo requests and publishes whose intended instant has come.
pub(super) async fn send_due(
    c: &mut Conn<'_>,
    session: &mut Session,
    now: Instant,
) -> Result<(), DisconnectReason> {
    let ctx = c.ctx;
    let end = c.window_end();
    let p = &ctx.plan.phases[usize::from(c.phase)];
    let (max, size) = (p.max_in_flight, p.payload_size);
    let Some(t) = c.timers.as_deref_mut() else {
        return Ok(());
    };
    if let Some(clock) = t.echo.as_mut() {
        while clock.next() <= now && clock.next() < end && (max == 0 || c.inflight.pending() < max)
        {
            let intended = clock.next();
            let seq = c.inflight.next_seq();
            let sent = Instant::now();
            let fields = crate::payload::Fields {
                run: ctx.run_id,
                client: c.client,
                seq,
                intended_ns: ctx.wall.ns(intended),
                sent_ns: ctx.wall.ns(sent),
            };
            session
                .send_echo(&ctx.frames, &mut c.buf, &fields, size)
                .await?;
            c.inflight.sent(intended, sent, c.phase);
            let _ = c.tx.send(Sample {
                client: c.client,
                phase: c.phase,
                at: sent,
                event: Event::Sent { intended },
            });
            clock.advance();
        }
    }
    if let (Some(gate), Some((clock, room))) = (t.gate, t.publish.as_mut()) {
        if now < gate && !ctx.board.room_full(c.phase, *room) {
            return Ok(());
        }
        // The room is full (or waited long enough): the schedule starts now.
        t.gate = None;
        // At the phase's rate (a steered run's decided one).
        let mut p = ctx.plan.phases[usize::from(c.phase)].clone();
        p.rate_per_s = ctx.schedule.rate(c.phase, p.rate_per_s);
        *clock = SendClock::new(
            now.max(clock.next()),
            &p,
            c.client,
            ctx.seed ^ u64::from(c.phase),
        );
    }
    if let (None, Some((clock, room))) = (t.gate, t.publish.as_mut()) {
        let name = ctx.board.layout.room_name(*room);
        let vars = ctx.vars(c.client, name);
        while clock.next() <= now && clock.next() < end {
            let intended = clock.next();
            let mut sent = Instant::now();
            let (seq, sent_ns) = ctx.board.commit_with(c.client, || {
                sent = Instant::now();
                ctx.wall.ns(sent)
            });
            let fields = crate::payload::Fields {
                run: ctx.run_id,
                client: c.client,
                seq,
                intended_ns: ctx.wall.ns(intended),
                sent_ns,
            };
            if let Err(e) = session
                .send_publish(&ctx.frames, &mut c.buf, &vars, &fields, size)
                .await
            {
                ctx.board.void(c.client, seq);
                return Err(e);
            }
            let _ = c.tx.send(Sample {
                client: c.client,
                phase: c.phase,
                at: sent,
                event: Event::Published { intended },
            });
            clock.advance();
        }
    }
    Ok(())
}

/// How long a connection waiting for a steered run's next phase sleeps between looks (it
/// is woken at once by a decision; this only bounds a missed wake-up).
const LONG_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn next_wake(c: &Conn<'_>, drain_until: Option<Instant>, carry: &Carry) -> Instant {
    // Waiting for a steered run's next phase: nothing of the schedule is due (the watch
    // on the steering wakes the connection).
    let end = if c.waiting {
        Instant::now() + LONG_WAIT
    } else {
        c.window_end()
    };
    let mut wake = drain_until.unwrap_or(end);
    let mut at = |t: Option<Instant>| {
        if let Some(t) = t {
            wake = wake.min(t);
        }
    };
    at(c.inflight.next_deadline());
    let max = c.spec().max_in_flight;
    if let Some(t) = c.timers.as_deref() {
        if max == 0 || c.inflight.pending() < max {
            at(t.echo.as_ref().map(SendClock::next));
        }
        match t.gate {
            // Waiting for the room to fill: look again shortly.
            Some(g) => at(Some(
                g.min(Instant::now() + std::time::Duration::from_millis(2)),
            )),
            None => at(t.publish.as_ref().map(|(k, _)| k.next())),
        }
        at(t.mute_at.filter(|_| !c.beat.muted()));
        at(t.ping_every.filter(|_| !c.beat.muted()).map(|(n, _)| n));
    }
    at(carry.churn.as_ref().map(|(_, k)| k.next()));
    at(c.beat.deadline());
    at(c.flow.as_ref().and_then(|f| f.wake()));
    wake
}

impl Conn<'_> {
    /// Times out what has waited past `--timeout`.
    pub(super) fn expire(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.inflight.expire(now, |p, ev| expired.push((p, ev)));
        for (p, ev) in expired {
            self.emit(p, now, ev);
        }
    }

    /// The role's clocks that are not sends: mute, churn drop, the heartbeat deadline.
    /// `Some` when the connection ends here.
    pub(super) fn clocks_due(
        &mut self,
        session: &mut Session,
        carry: &mut Carry,
        now: Instant,
        drain_until: Option<Instant>,
    ) -> Option<End> {
        if let Some(m) = self.timers.as_ref().and_then(|t| t.mute_at)
            && now >= m
            && !self.beat.muted()
        {
            session.muted = true;
            self.beat.mute(now);
            self.emit(self.phase, now, Event::Muted);
        }
        if let Some((_, clock)) = carry.churn.as_mut()
            && clock.next() <= now
        {
            while clock.next() <= now {
                clock.advance();
            }
            // A churn drop is a drop and a reconnect: none that could not reconnect in time.
            let back = now
                + self.ctx.plan.target.fan.reconnect_delay
                + self.ctx.plan.timeout.min(self.ctx.drain());
            // ... and none before the broadcast reached the client (nothing to miss yet, and
            // no offset to recover from).
            if drain_until.is_none()
                && self.joined.is_some()
                && self.pending.is_empty()
                && carry.receiver.deliveries() > 0
                && back < self.ctx.schedule.segment_end(&self.seg)
            {
                self.lost(now, carry, DisconnectReason::ClientDrop);
                carry.away_since = Some(now);
                return Some(End::Lost {
                    reconnect: true,
                    unplanned: false,
                });
            }
        }
        if let Some(deadline) = self.beat.deadline()
            && now >= deadline
        {
            self.lost(now, carry, DisconnectReason::ClientDeadline);
            carry.away_since = Some(now);
            return Some(End::Lost {
                reconnect: self.ctx.plan.target.fan.reconnect,
                unplanned: true,
            });
        }
        None
    }
}
