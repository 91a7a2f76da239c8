//! Message flows (docs/TESTING-YOUR-SERVER.md#flows): one client's walk through its
//! phase's [`Flow`], as a state machine the driver's connection loop steps.
//!
//! Receives, from `driver/conn.rs`: the instant (to start due steps and time out waits),
//! every Socket.IO event body and ack (or raw WS frame) the connection reads while the
//! flow runs, and the connection's end. Emits frames to write ([`Poll::Send`]), the next
//! instant it must be woken at, and one [`Done`] per step run that ended (the driver turns
//! them into `FlowStep` samples for the recorder; `record.rs` is the recorder's side).
//! Must not: do I/O, keep more than [`MAX_OUTSTANDING`] requests, a captured value above
//! [`MAX_VALUE_BYTES`], or parse a frame above [`MAX_FRAME_BYTES`]; put a captured or data
//! value anywhere but the frames it sends (the samples carry step names only); panic on
//! any frame.

pub mod record;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde_json::Value;

use crate::plan::flow::path::key_string;
use crate::plan::flow::{
    Expect, Flow, MAX_FRAME_BYTES, MAX_OUTSTANDING, MAX_VALUE_BYTES, Step, StepKind,
};
use crate::sample::FlowOutcome;
use crate::template::{Template, Vars};

/// What a flow needs of the connection's frame templates.
#[derive(Debug, Clone)]
pub struct Wire {
    pub socketio: bool,
    /// `42` and the namespace part (`/nsp,` or nothing).
    pub emit_head: Vec<u8>,
    /// `["<join-event>"` and `["<leave-event>"`.
    pub join_head: Vec<u8>,
    pub leave_head: Vec<u8>,
    pub join_args: Template,
}

/// A frame to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub text: String,
    pub binary: bool,
}

/// What the flow wants now.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    Send(Out),
    /// Nothing to send before this instant (or ever: `None`, the flow is finished and
    /// awaits nothing).
    Idle(Option<Instant>),
}

/// One step run that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub step: u16,
    pub name: Arc<str>,
    pub outcome: FlowOutcome,
    /// From the run's intended start to its end (meaningful for `Ok`).
    pub latency: Duration,
}

/// Where a step is in the flow: top-level index, and the body index inside a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pc {
    top: usize,
    body: Option<usize>,
}

#[derive(Debug)]
enum Key {
    Ack(u32),
    Event {
        /// The request's value at the step's `match` path.
        want_match: Option<String>,
        /// The `where` value with its placeholders filled.
        want_cond: Option<String>,
    },
}

#[derive(Debug)]
struct Pending {
    pc: Pc,
    intended: Instant,
    deadline: Instant,
    key: Key,
    blocking: bool,
}

#[derive(Debug)]
struct Repeat {
    iter: u32,
    /// Intended start of the current iteration.
    iter_start: Instant,
    first: Instant,
}

/// One client's flow in one phase.
pub struct FlowRun {
    flow: Arc<Flow>,
    wire: Arc<Wire>,
    client: u32,
    /// Data fields, then capture variables (the templates' record).
    record: Vec<String>,
    /// The room of the last join (`{room}`); `idle` before one.
    room: String,
    pc: Option<Pc>,
    rep: Option<Repeat>,
    /// Intended start of the next step.
    next_at: Instant,
    /// The blocking request the flow waits for.
    blocked: bool,
    pending: Vec<Pending>,
    /// The last value received by an ack, reply or wait (what a capture step reads).
    last: Option<Value>,
    next_ack: u32,
    rng: u64,
    stopped: bool,
    done: Vec<Done>,
    /// Requests sent (`{seq}`).
    seq: u64,
    /// Intended starts of the current and the previous step.
    cur_start: Instant,
    prev_start: Instant,
    /// Events no request was waiting for, newest last (at most [`RECENT`], each at most
    /// [`RECENT_BYTES`]): a `wait` also takes one that arrived since the step before it
    /// started (a server may broadcast before it acks).
    recent: std::collections::VecDeque<(Instant, Option<String>, Value)>,
}

/// Unclaimed events kept for a later `wait`.
const RECENT: usize = 32;
/// Largest unclaimed event kept.
const RECENT_BYTES: usize = 64 << 10;

/// First ack id of flow emits (below the driver's control ids).
const ACK_BASE: u32 = 1;

impl FlowRun {
    /// A flow starting at `start`; `data` is the client's data record (may be empty).
    pub fn new(
        flow: Arc<Flow>,
        wire: Arc<Wire>,
        client: u32,
        data: &[String],
        seed: u64,
        start: Instant,
    ) -> FlowRun {
        let mut record: Vec<String> = flow.fields.iter().map(|_| String::new()).collect();
        for (r, d) in record.iter_mut().zip(data) {
            r.clone_from(d);
        }
        record.extend(flow.vars.iter().map(|_| String::new()));
        let pc = (!flow.steps.is_empty()).then_some(Pc { top: 0, body: None });
        FlowRun {
            flow,
            wire,
            client,
            record,
            room: "idle".into(),
            pc,
            rep: None,
            next_at: start,
            blocked: false,
            pending: Vec::new(),
            last: None,
            next_ack: ACK_BASE,
            rng: (seed ^ (u64::from(client) << 17)) | 1,
            stopped: false,
            done: Vec::new(),
            seq: 0,
            cur_start: start,
            prev_start: start,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// The step runs that ended since the last call.
    pub fn take_done(&mut self) -> std::vec::Drain<'_, Done> {
        self.done.drain(..)
    }

    /// Requests awaiting their reply.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Starts no further step (the phase is over): outstanding requests may still end.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The run's drain ended with requests still waiting: each ends `unanswered_at_stop`.
    pub fn unanswered_at_stop(&mut self, now: Instant) {
        for p in std::mem::take(&mut self.pending) {
            self.finish(p.pc, FlowOutcome::UnansweredAtStop, p.intended, now);
        }
        self.stopped = true;
    }

    /// The connection ended: every outstanding request ends `disconnected`.
    pub fn disconnected(&mut self, now: Instant) {
        for p in std::mem::take(&mut self.pending) {
            self.finish(p.pc, FlowOutcome::Disconnected, p.intended, now);
        }
        self.stopped = true;
    }

    fn step(&self, pc: Pc) -> &Step {
        let s = &self.flow.steps[pc.top];
        match (pc.body, &s.kind) {
            (Some(i), StepKind::Repeat { body, .. }) => &body[i],
            _ => s,
        }
    }

    fn finish(&mut self, pc: Pc, outcome: FlowOutcome, intended: Instant, now: Instant) {
        let s = self.step(pc);
        self.done.push(Done {
            step: s.id,
            name: s.name.clone(),
            outcome,
            latency: now.saturating_duration_since(intended),
        });
    }

    fn vars(&self) -> Vars<'_> {
        Vars {
            client: self.client,
            room: &self.room,
            record: &self.record,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: enough for think times.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Times out what waited too long, then starts the steps that are due; `Send` until
    /// nothing more is due now.
    pub fn poll(&mut self, now: Instant) -> Poll {
        self.expire(now);
        loop {
            if self.stopped || self.blocked {
                return Poll::Idle(self.deadline());
            }
            let Some(pc) = self.pc else {
                return Poll::Idle(self.deadline());
            };
            if now < self.next_at {
                let wake = match self.deadline() {
                    Some(d) => d.min(self.next_at),
                    None => self.next_at,
                };
                return Poll::Idle(Some(wake));
            }
            if let Some(out) = self.start(pc, now) {
                return Poll::Send(out);
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    fn expire(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline <= now {
                let p = self.pending.remove(i);
                self.finish(p.pc, FlowOutcome::Timeout, p.intended, now);
                if p.blocking {
                    self.unblock(p.deadline);
                }
            } else {
                i += 1;
            }
        }
    }

    fn unblock(&mut self, at: Instant) {
        self.blocked = false;
        self.next_at = self.next_at.max(at);
        self.advance();
    }

    /// Moves to the step after the current one (into, through and out of repeats).
    fn advance(&mut self) {
        let Some(pc) = self.pc else { return };
        let steps = &self.flow.steps;
        match (pc.body, &steps[pc.top].kind) {
            (
                Some(i),
                StepKind::Repeat {
                    times,
                    for_,
                    rate,
                    body,
                },
            ) => {
                if i + 1 < body.len() {
                    self.pc = Some(Pc {
                        top: pc.top,
                        body: Some(i + 1),
                    });
                    return;
                }
                // The iteration is over: another one?
                let Some(rep) = self.rep.as_mut() else {
                    self.pc = None;
                    return;
                };
                rep.iter += 1;
                if let Some(r) = rate {
                    rep.iter_start = rep.first + Duration::from_secs_f64(f64::from(rep.iter) / r);
                } else {
                    rep.iter_start = self.next_at;
                }
                let more = match (times, for_) {
                    (Some(n), _) => rep.iter < *n,
                    (None, Some(d)) => rep.iter_start < rep.first + *d,
                    _ => false,
                };
                if more {
                    self.next_at = self.next_at.max(rep.iter_start);
                    if rate.is_some() {
                        // Open model: the iteration starts at its own instant.
                        self.next_at = rep.iter_start;
                    }
                    self.pc = Some(Pc {
                        top: pc.top,
                        body: Some(0),
                    });
                } else {
                    self.rep = None;
                    self.next_top(pc.top);
                }
            }
            _ => self.next_top(pc.top),
        }
    }

    fn next_top(&mut self, top: usize) {
        self.pc = (top + 1 < self.flow.steps.len()).then_some(Pc {
            top: top + 1,
            body: None,
        });
    }

    /// Whether a request with a reply blocks the flow until it ends.
    fn open(&self, pc: Pc) -> bool {
        pc.body.is_some()
            && matches!(
                self.flow.steps[pc.top].kind,
                StepKind::Repeat { rate: Some(_), .. }
            )
    }

    /// Starts the step at `pc` (intended at `self.next_at`); a frame to write, if any.
    fn start(&mut self, pc: Pc, now: Instant) -> Option<Out> {
        let intended = self.next_at;
        let flow = self.flow.clone();
        let step = match (pc.body, &flow.steps[pc.top].kind) {
            (Some(i), StepKind::Repeat { body, .. }) => &body[i],
            _ => &flow.steps[pc.top],
        };
        self.prev_start = self.cur_start;
        self.cur_start = intended;
        if matches!(
            step.kind,
            StepKind::Emit { .. } | StepKind::Send { .. } | StepKind::Join { .. }
        ) {
            self.seq += 1;
            // Slot of `seq`: the first variable, after the data fields.
            if let Some(r) = self.record.get_mut(self.flow.fields.len()) {
                *r = self.seq.to_string();
            }
        }
        match &step.kind {
            StepKind::Repeat { body, .. } => {
                self.rep = Some(Repeat {
                    iter: 0,
                    iter_start: intended,
                    first: intended,
                });
                if body.is_empty() {
                    self.next_top(pc.top);
                } else {
                    self.pc = Some(Pc {
                        top: pc.top,
                        body: Some(0),
                    });
                }
                None
            }
            StepKind::Sleep { min, max } => {
                let span = max.saturating_sub(*min).as_nanos() as u64;
                let extra = if span == 0 {
                    0
                } else {
                    self.random() % (span + 1)
                };
                self.next_at = intended + *min + Duration::from_nanos(extra);
                self.advance();
                None
            }
            StepKind::Capture => {
                let outcome = match self.last.take() {
                    Some(v) => {
                        let o = self.capture(step, &v);
                        self.last = Some(v);
                        o
                    }
                    None => FlowOutcome::BadPath,
                };
                self.finish(pc, outcome, intended, now);
                self.advance();
                None
            }
            StepKind::Wait(expect) => {
                let want_cond = self.cond_value(step);
                let since = self.prev_start;
                let kept = self.recent.iter().position(|(at, ev, v)| {
                    *at >= since
                        && expect.event.as_ref().is_none_or(|e| Some(e) == ev.as_ref())
                        && expect
                            .cond
                            .as_ref()
                            .is_none_or(|c| c.holds(v, want_cond.as_deref()))
                });
                if let Some((at, _, v)) = kept.and_then(|i| self.recent.remove(i)) {
                    let outcome = self.capture(step, &v);
                    self.last = Some(v);
                    self.finish(pc, outcome, intended, at.max(intended));
                    self.next_at = self.next_at.max(now);
                    self.advance();
                    return None;
                }
                self.push(Pending {
                    pc,
                    intended,
                    deadline: intended.max(now) + step.timeout,
                    key: Key::Event {
                        want_match: None,
                        want_cond,
                    },
                    blocking: true,
                });
                None
            }
            StepKind::Emit {
                event,
                args,
                ack,
                reply,
            } => {
                let id = if *ack { Some(self.ack_id()) } else { None };
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&self.wire.emit_head);
                if let Some(id) = id {
                    buf.extend_from_slice(id.to_string().as_bytes());
                }
                buf.extend_from_slice(b"[");
                buf.extend_from_slice(
                    serde_json::to_string(event)
                        .unwrap_or_else(|_| "\"\"".into())
                        .as_bytes(),
                );
                if !args.is_empty() {
                    buf.extend_from_slice(b",");
                    args.write(&mut buf, &self.vars(), None);
                }
                buf.extend_from_slice(b"]");
                let text = String::from_utf8_lossy(&buf).into_owned();
                // The request's first argument, for `match`.
                let first = reply.as_ref().and_then(|r| r.matching.as_ref()).map(|_| {
                    let mut a = BytesMut::from(&b"["[..]);
                    args.write(&mut a, &self.vars(), None);
                    a.extend_from_slice(b"]");
                    serde_json::from_slice::<Value>(&a)
                        .ok()
                        .and_then(|v| v.get(0).cloned())
                        .unwrap_or(Value::Null)
                });
                self.request(pc, step, intended, now, id, reply.as_ref(), first);
                Some(Out {
                    text,
                    binary: false,
                })
            }
            StepKind::Send {
                text,
                binary,
                reply,
            } => {
                let text = text.render(&self.vars());
                let first = reply
                    .as_ref()
                    .and_then(|r| r.matching.as_ref())
                    .map(|_| serde_json::from_str::<Value>(&text).unwrap_or(Value::Null));
                self.request(pc, step, intended, now, None, reply.as_ref(), first);
                Some(Out {
                    text,
                    binary: *binary,
                })
            }
            StepKind::Join { room, leave } => {
                let name = room.render(&self.vars());
                let id = self.ack_id();
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&self.wire.emit_head);
                buf.extend_from_slice(id.to_string().as_bytes());
                buf.extend_from_slice(if *leave {
                    &self.wire.leave_head
                } else {
                    &self.wire.join_head
                });
                // `{room}` of join-args is written as it is: escape it for a JSON string.
                let escaped = serde_json::to_string(&name).unwrap_or_default();
                let inner = escaped
                    .get(1..escaped.len().saturating_sub(1))
                    .unwrap_or("");
                if !self.wire.join_args.is_empty() {
                    buf.extend_from_slice(b",");
                    let vars = Vars {
                        client: self.client,
                        room: inner,
                        record: &self.record,
                    };
                    self.wire.join_args.write(&mut buf, &vars, None);
                }
                buf.extend_from_slice(b"]");
                if !*leave {
                    self.room = name;
                }
                self.request(pc, step, intended, now, Some(id), None, None);
                Some(Out {
                    text: String::from_utf8_lossy(&buf).into_owned(),
                    binary: false,
                })
            }
        }
    }

    fn ack_id(&mut self) -> u32 {
        let id = self.next_ack;
        // Ids stay below the driver's control ids (driver/session.rs CONTROL_ID_BASE).
        self.next_ack = if id >= 0x7FFF_FFFF { ACK_BASE } else { id + 1 };
        id
    }

    fn cond_value(&self, step: &Step) -> Option<String> {
        let expect = match &step.kind {
            StepKind::Wait(e) => Some(e),
            StepKind::Emit { reply, .. } | StepKind::Send { reply, .. } => reply.as_ref(),
            _ => None,
        };
        expect
            .and_then(|e| e.cond.as_ref())
            .and_then(|c| c.cmp.as_ref())
            .map(|(_, t)| t.render(&self.vars()))
    }

    /// After a send: what the step now waits for (or its end, when it waits for nothing).
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        pc: Pc,
        step: &Step,
        intended: Instant,
        now: Instant,
        ack: Option<u32>,
        reply: Option<&Expect>,
        first: Option<Value>,
    ) {
        let key = match (ack, reply) {
            (Some(id), _) => Key::Ack(id),
            (None, Some(r)) => {
                let want_match = match (&r.matching, &first) {
                    (Some(p), Some(v)) => match p.get(v) {
                        Some(x) => Some(key_string(x)),
                        None => {
                            // The request itself lacks the field it is to be matched by.
                            self.finish(pc, FlowOutcome::BadPath, intended, now);
                            self.after_send(pc, now);
                            return;
                        }
                    },
                    _ => None,
                };
                Key::Event {
                    want_match,
                    want_cond: self.cond_value(step),
                }
            }
            (None, None) => {
                self.finish(pc, FlowOutcome::Ok, intended, now);
                self.after_send(pc, now);
                return;
            }
        };
        // A step that captures blocks even in a rated repeat: later steps need the value.
        let blocking = !self.open(pc) || !step.capture.is_empty();
        self.push(Pending {
            pc,
            intended,
            deadline: intended.max(now) + step.timeout,
            key,
            blocking,
        });
        if !blocking {
            self.after_send(pc, now);
        }
    }

    fn after_send(&mut self, _pc: Pc, now: Instant) {
        self.next_at = self.next_at.max(now);
        self.advance();
    }

    fn push(&mut self, p: Pending) {
        if self.pending.len() >= MAX_OUTSTANDING {
            // The oldest gives way as a timeout: the server is far behind.
            let old = self.pending.remove(0);
            self.finish(old.pc, FlowOutcome::Timeout, old.intended, p.intended);
            if old.blocking {
                self.blocked = false;
            }
        }
        self.blocked |= p.blocking;
        self.pending.push(p);
    }

    /// Captures the step's variables from `v`; `Ok`, or why not.
    fn capture(&mut self, step: &Step, v: &Value) -> FlowOutcome {
        if let Some(e) = &step.error
            && e.get(v).is_some()
        {
            return FlowOutcome::ServerError;
        }
        let mut values = Vec::with_capacity(step.capture.len());
        for (slot, path) in &step.capture {
            match path.get(v).map(key_string) {
                Some(s) if s.len() <= MAX_VALUE_BYTES => values.push((*slot, s)),
                _ => return FlowOutcome::BadPath,
            }
        }
        for (slot, s) in values {
            if let Some(r) = self.record.get_mut(slot) {
                *r = s;
            }
        }
        FlowOutcome::Ok
    }

    /// Resolves pending request `i` with the received value `v`.
    fn resolve(&mut self, i: usize, v: Value, now: Instant) {
        let p = self.pending.remove(i);
        let flow = self.flow.clone();
        let step = match (p.pc.body, &flow.steps[p.pc.top].kind) {
            (Some(b), StepKind::Repeat { body, .. }) => &body[b],
            _ => &flow.steps[p.pc.top],
        };
        let outcome = self.capture(step, &v);
        self.last = Some(v);
        self.finish(p.pc, outcome, p.intended, now);
        if p.blocking {
            self.unblock(now);
        }
    }

    /// A Socket.IO ack (its arguments, a JSON array) for ack id `id`.
    pub fn on_ack(&mut self, id: u32, body: &str, now: Instant) {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| matches!(p.key, Key::Ack(a) if a == id))
        else {
            return; // Late (already timed out) or not ours.
        };
        let v = parse(body).and_then(|v| match v {
            Value::Array(mut a) if !a.is_empty() => Some(a.swap_remove(0)),
            Value::Array(_) => Some(Value::Null),
            _ => None,
        });
        let Some(v) = v else {
            let p = self.pending.remove(i);
            self.finish(p.pc, FlowOutcome::BadPath, p.intended, now);
            if p.blocking {
                self.unblock(now);
            }
            return;
        };
        self.resolve(i, v, now);
    }

    /// A Socket.IO event body (`["name",arg,...]`) or a raw WebSocket frame.
    pub fn on_frame(&mut self, text: &str, now: Instant) {
        if text.len() > MAX_FRAME_BYTES || (self.pending.is_empty() && !self.flow.waits) {
            return;
        }
        let (event, v) = if self.wire.socketio {
            let Some(Value::Array(mut a)) = parse(text) else {
                return;
            };
            if a.is_empty() {
                return;
            }
            let first = if a.len() > 1 {
                a.swap_remove(1)
            } else {
                Value::Null
            };
            let name = match &a[0] {
                Value::String(s) => s.clone(),
                _ => return,
            };
            (Some(name), first)
        } else {
            (
                None,
                parse(text).unwrap_or_else(|| Value::String(text.to_string())),
            )
        };
        let mut unmatched: Option<Pc> = None;
        for i in 0..self.pending.len() {
            let p = &self.pending[i];
            let Key::Event {
                want_match,
                want_cond,
            } = &p.key
            else {
                continue;
            };
            let step = self.step(p.pc);
            let Some(expect) = expect_of(step) else {
                continue;
            };
            if let (Some(want), Some(got)) = (&expect.event, &event)
                && want != got
            {
                continue;
            }
            if let Some(c) = &expect.cond
                && !c.holds(&v, want_cond.as_deref())
            {
                continue;
            }
            if let (Some(path), Some(want)) = (&expect.matching, want_match) {
                match path.get(&v).map(key_string) {
                    Some(got) if &got == want => {}
                    _ => {
                        unmatched.get_or_insert(p.pc);
                        continue;
                    }
                }
            }
            self.resolve(i, v, now);
            return;
        }
        if let Some(pc) = unmatched {
            let s = self.step(pc);
            self.done.push(Done {
                step: s.id,
                name: s.name.clone(),
                outcome: FlowOutcome::Unmatched,
                latency: Duration::ZERO,
            });
            return;
        }
        self.keep(now, event, v, text.len());
    }

    /// Keeps an unclaimed event for a later `wait`.
    fn keep(&mut self, now: Instant, event: Option<String>, v: Value, size: usize) {
        if size > RECENT_BYTES || !self.flow.waits {
            return;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((now, event, v));
    }

    /// The instant the flow must be polled at next (a step due, a deadline).
    pub fn wake(&self) -> Option<Instant> {
        let d = self.deadline();
        if self.stopped || self.blocked || self.pc.is_none() {
            return d;
        }
        Some(d.map_or(self.next_at, |d| d.min(self.next_at)))
    }

    /// Whether the flow has nothing left to do or await.
    pub fn finished(&self) -> bool {
        (self.pc.is_none() || self.stopped) && self.pending.is_empty()
    }
}

fn expect_of(step: &Step) -> Option<&Expect> {
    match &step.kind {
        StepKind::Wait(e) => Some(e),
        StepKind::Emit { reply, .. } | StepKind::Send { reply, .. } => reply.as_ref(),
        _ => None,
    }
}

/// JSON of at most [`MAX_FRAME_BYTES`] (serde_json bounds nesting at 128 levels).
fn parse(text: &str) -> Option<Value> {
    if text.len() > MAX_FRAME_BYTES {
        return None;
    }
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests;
