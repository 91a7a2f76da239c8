//! Plan -> intended instants: when each client connects, which phases it lives through,
//! and when each of its messages is meant to leave (open model).
//!
//! Receives: a validated [`Plan`] and the run's start instant. Emits: [`Schedule`] (phase
//! windows, per-client [`Segment`]s) and [`SendClock`]s that yield intended send instants.
//! Must not: sleep, spawn, or look at what actually happened: intended instants never move
//! because a reply was late (that is what makes coordinated omission visible).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::model::Arrival;
use crate::plan::{Phase, Plan};

/// One phase on the clock.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    /// End of the connect ramp of this phase's new clients.
    pub ramp_end: Instant,
    pub end: Instant,
    /// Clients `first_new..clients` connect during this phase.
    pub first_new: u32,
    pub clients: u32,
    /// The phase's send rate per client when it was decided while the run went on (a
    /// steered run, [`Steer`]); `None`: the plan's.
    pub rate_per_s: Option<f64>,
}

/// A stretch of consecutive phases during which one client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The client whose stretch this is.
    pub client: u32,
    pub first_phase: u16,
    /// Inclusive.
    pub last_phase: u16,
    /// Intended connect instant.
    pub connect_at: Instant,
    /// End of `last_phase`: stop sending, drain, close. In a steered run whose phases are
    /// still being decided, far ahead: [`Schedule::segment_end`] is the one to read.
    pub end: Instant,
}

/// How far ahead "not decided yet" lies: an end no run reaches.
const FAR: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The phases' windows on the clock. A plan's run decides them all at its start; a steered
/// run (`swarm capacity` keeping its clients between steps) starts with the first few and
/// has the others decided while it goes on, each before it starts, until it is closed.
#[derive(Debug)]
pub struct Steer {
    windows: Box<[OnceLock<Window>]>,
    /// Windows `0..decided` are set.
    decided: AtomicUsize,
    closed: AtomicBool,
    /// Bumped at every decision and at the close; connections waiting at the end of the
    /// last decided phase watch it.
    changed: watch::Sender<usize>,
    /// The plan's clients per phase (a decided phase keeps them).
    clients: Box<[u32]>,
    /// The run's start, once its schedule is placed.
    t0: OnceLock<Instant>,
    /// One word, read lock-free on every connection's loop: the high 32 bits say that
    /// broadcast receivers may settle their tallies of the phases below that value (0: none
    /// asked yet), the low 32 bits count the receivers that settled up to it.
    settle: AtomicU64,
}

/// [`Steer::settle`]'s word: the request `v` (last phase + 1) and the receivers that
/// answered it.
fn settle_word(v: usize, answered: u32) -> u64 {
    ((v as u64) << 32) | u64::from(answered)
}

/// Why a phase could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteerError {
    #[error("the run has no phase left to decide (it has {0})")]
    Full(usize),
    #[error("the run is closed: no phase can be added")]
    Closed,
}

impl Steer {
    /// Room for the plan's phases, none decided.
    pub fn new(plan: &Plan) -> Arc<Steer> {
        Arc::new(Steer {
            windows: plan.phases.iter().map(|_| OnceLock::new()).collect(),
            decided: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            changed: watch::channel(0).0,
            clients: plan.phases.iter().map(|p| p.clients).collect(),
            t0: OnceLock::new(),
            settle: AtomicU64::new(0),
        })
    }

    /// The first decided phase whose window ends after `offset` from the run's start (a
    /// gap before a late decision counts as the phase after it; after the last decided
    /// window, that one); `None` before the run started. The live outputs label
    /// each second with it (live/hub.rs).
    pub fn phase_at_offset(&self, offset: Duration) -> Option<usize> {
        let at = *self.t0.get()? + offset;
        let decided = self.decided();
        if decided == 0 {
            return None;
        }
        Some(self.count_while(|w| w.end <= at).min(decided - 1))
    }

    /// How many of the decided windows, from the first, satisfy `pred`, which must hold for
    /// a first run of them and fail for the rest (windows follow one another in time, so
    /// "ends by", "starts by" do): a binary search, since a long search decides hundreds of
    /// phases and this is asked per message.
    pub fn count_while(&self, pred: impl Fn(&Window) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.decided());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.window(mid).is_some_and(&pred) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The run's start, once its schedule is placed.
    pub fn t0(&self) -> Option<Instant> {
        self.t0.get().copied()
    }

    /// Phases decided so far.
    pub fn decided(&self) -> usize {
        self.decided.load(Ordering::Acquire)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Window `p`, if decided.
    pub fn window(&self, p: usize) -> Option<&Window> {
        self.windows.get(p).and_then(OnceLock::get)
    }

    /// Decides the next phase: `duration` long at `rate_per_s` per client, starting when
    /// the last decided one ends, or at `not_before` if that is later (the clients then
    /// wait, connected and idle, in between); the clients are the previous phase's. Returns
    /// its index and window.
    pub fn decide(
        &self,
        duration: Duration,
        rate_per_s: f64,
        not_before: Instant,
    ) -> Result<(u16, Window), SteerError> {
        self.decide_phase(Decision {
            duration,
            rate_per_s,
            clients: None,
            keep: None,
            connect_rate: f64::INFINITY,
            not_before,
        })
    }

    /// Decides the next phase as [`Decision`] says. Clients above the phase's count (or at
    /// and above its `keep`) leave at the end of the phase before it; clients it adds (or
    /// takes back from `keep` up) connect over a ramp (at `connect_rate`) before its
    /// `duration`.
    pub fn decide_phase(&self, d: Decision) -> Result<(u16, Window), SteerError> {
        if self.is_closed() {
            return Err(SteerError::Closed);
        }
        let p = self.decided();
        if p >= self.windows.len() {
            return Err(SteerError::Full(self.windows.len()));
        }
        let prev = p.checked_sub(1).and_then(|q| self.window(q));
        let start = match prev {
            Some(prev) => prev.end.max(d.not_before),
            None => d.not_before,
        };
        let room = self.clients.iter().copied().max().unwrap_or(0);
        let before = prev.map_or(0, |w| w.clients);
        let clients = d.clients.unwrap_or(before).min(room);
        let first_new = before.min(clients).min(d.keep.unwrap_or(u32::MAX));
        let new = clients - first_new;
        let ramp = if new == 0 || !d.connect_rate.is_finite() || d.connect_rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((f64::from(new) / d.connect_rate).min(86_400.0))
        };
        let w = Window {
            start,
            ramp_end: start + ramp,
            end: start + ramp + d.duration,
            first_new,
            clients,
            rate_per_s: Some(d.rate_per_s),
        };
        self.place(p, w);
        self.changed.send_replace(p + 1);
        Ok((p as u16, w))
    }

    fn place(&self, p: usize, w: Window) {
        let _ = self.windows[p].set(w);
        self.decided.store(p + 1, Ordering::Release);
    }

    /// No more phases: clients drain and close at the end of the last decided one.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Asks every broadcast receiver to settle its tallies of the phases up to `through`
    /// (its deliveries of them are in or lost: the steering waited for the drain), so that
    /// a step can be judged on its reach while the run goes on (capacity/kept.rs). Wakes
    /// the connections; each reports with [`Schedule::settled`].
    pub fn settle(&self, through: u16) {
        self.settle
            .store(settle_word(usize::from(through) + 1, 0), Ordering::Release);
        self.changed.send_modify(|x| *x += 1);
    }

    /// Receivers that settled up to `through` since it was asked for.
    pub fn settled_count(&self, through: u16) -> u32 {
        let w = self.settle.load(Ordering::Acquire);
        if w >> 32 == u64::from(through) + 1 {
            w as u32
        } else {
            0
        }
    }

    /// A receiver that sees every later decision and the close.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.changed.subscribe()
    }
}

/// A phase decided while a steered run goes on ([`Steer::decide_phase`]).
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// Its length after the ramp of the clients it adds.
    pub duration: Duration,
    /// Send rate per client.
    pub rate_per_s: f64,
    /// Its clients (`None`: the previous phase's), at most the plan's largest phase's.
    pub clients: Option<u32>,
    /// Clients of the previous phase at and above this id do not stay: they close at its
    /// end, and those the phase has connect again in it (`None`: every client both phases
    /// have stays). A connect search measures its step's connects from the highest count
    /// that held (capacity/kept.rs).
    pub keep: Option<u32>,
    /// Connects per second of the clients it adds (infinite: all at its start).
    pub connect_rate: f64,
    /// It starts no sooner than this.
    pub not_before: Instant,
}

/// What follows the end of a client's current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The next phase is decided: enter it.
    Next,
    /// The stretch (or the run) ends here: drain and close.
    End,
    /// The next phase is not decided yet: wait, connected, without sending.
    Wait,
}

/// The whole run on the clock.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub t0: Instant,
    steer: Arc<Steer>,
    /// A plan's run: every window decided at the start.
    fixed: bool,
}

impl Schedule {
    pub fn new(plan: &Plan, t0: Instant) -> Schedule {
        let s = Schedule::steered(plan, t0, Steer::new(plan), plan.phases.len());
        s.steer.close();
        Schedule { fixed: true, ..s }
    }

    /// A steered run: the plan's first `first` phases are placed from `t0` as a plan's
    /// run places them; `steer` decides the others while the run goes on.
    pub fn steered(plan: &Plan, t0: Instant, steer: Arc<Steer>, first: usize) -> Schedule {
        let _ = steer.t0.set(t0);
        let mut at = t0;
        let mut prev = 0u32;
        for (i, p) in plan.phases.iter().take(first).enumerate() {
            let ramp_end = at + p.ramp;
            let end = ramp_end + p.duration;
            steer.place(
                i,
                Window {
                    start: at,
                    ramp_end,
                    end,
                    first_new: prev.min(p.clients),
                    clients: p.clients,
                    rate_per_s: None,
                },
            );
            prev = p.clients;
            at = end;
        }
        Schedule {
            t0,
            steer,
            fixed: false,
        }
    }

    /// Window `p` (the last decided one when `p` is not decided: callers ask only about
    /// phases they are in or have passed).
    pub fn window(&self, p: u16) -> &Window {
        let s = &self.steer;
        let p = usize::from(p).min(s.decided().saturating_sub(1));
        s.window(p).unwrap_or(&*PLACEHOLDER)
    }

    /// The start of every decided window, in order.
    pub fn starts(&self) -> Vec<Instant> {
        (0..self.decided())
            .map(|p| self.window(p as u16).start)
            .collect()
    }

    /// Phases decided so far (all of a plan's run).
    pub fn decided(&self) -> usize {
        self.steer.decided()
    }

    /// The end of the run: the last decided window's, once no more can come; far ahead
    /// while a steered run goes on.
    pub fn end(&self) -> Instant {
        if self.steer.is_closed() {
            let last = self.steer.decided().saturating_sub(1);
            self.steer.window(last).map_or(self.t0, |w| w.end)
        } else {
            self.t0 + FAR
        }
    }

    /// True once no phase can be added (always, for a plan's run).
    pub fn is_closed(&self) -> bool {
        self.steer.is_closed()
    }

    /// Resolves once no phase can be added.
    pub async fn closed(&self) {
        let mut rx = self.steer.watch();
        while !self.steer.is_closed() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The last phase whose tallies receivers are asked to settle now (a steered run's:
    /// [`Steer::settle`]); `None` for a plan's run, and until the first request.
    pub fn settle_through(&self) -> Option<u16> {
        match self.steer.settle.load(Ordering::Acquire) >> 32 {
            0 => None,
            v => Some((v - 1) as u16),
        }
    }

    /// A receiver settled its tallies up to `through` (counted only against that request:
    /// a report for an older one, or after a newer request, is not).
    pub fn settled(&self, through: u16) {
        let want = u64::from(through) + 1;
        let _ = self
            .steer
            .settle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w >> 32 == want && (w as u32) < u32::MAX).then_some(w + 1)
            });
    }

    /// A receiver of the steered run's decisions; `None` for a plan's run.
    pub fn watch(&self) -> Option<watch::Receiver<usize>> {
        (!self.fixed).then(|| self.steer.watch())
    }

    /// What follows phase `p` for the client of `seg` (whose stretch ends with
    /// `seg.last_phase` at the latest): a decided next phase without it ends its stretch.
    pub fn then(&self, p: u16, seg: &Segment) -> Then {
        let next = usize::from(p) + 1;
        if p >= seg.last_phase {
            return Then::End;
        }
        // A client stays into the next phase only below its `first_new`: from there up the
        // phase connects its clients afresh.
        let enter = |next: usize| match self.steer.window(next) {
            Some(w) if seg.client < w.first_new => Then::Next,
            _ => Then::End,
        };
        if next < self.steer.decided() {
            return enter(next);
        }
        if self.steer.is_closed() {
            // Read again: a decision may have come just before the close.
            return if next < self.steer.decided() {
                enter(next)
            } else {
                Then::End
            };
        }
        Then::Wait
    }

    /// When `seg` ends: its `end`; for a steered stretch still open, the end of its last
    /// phase once that is known (a decided phase without its client follows it, or the run
    /// is closed), far ahead until then.
    pub fn segment_end(&self, seg: &Segment) -> Instant {
        if self.fixed {
            return seg.end;
        }
        let decided = self.steer.decided();
        let last = usize::from(seg.last_phase).min(decided.saturating_sub(1));
        let mut p = usize::from(seg.first_phase);
        while p < last
            && self
                .steer
                .window(p + 1)
                .is_some_and(|w| seg.client < w.first_new)
        {
            p += 1;
        }
        let Some(w) = self.steer.window(p) else {
            return seg.end;
        };
        if p + 1 < decided || self.steer.is_closed() {
            w.end.min(seg.end)
        } else {
            seg.end
        }
    }

    /// The send rate per client of phase `p`: decided with the phase, or the plan's.
    pub fn rate(&self, p: u16, plan_rate: f64) -> f64 {
        self.window(p).rate_per_s.unwrap_or(plan_rate)
    }

    /// Every segment of `client`, in time order. In a steered run, a client in the last
    /// decided phase stays on to the plan's last phase (its end far ahead): the phases
    /// decided later keep it ([`Schedule::then`] says when it ends).
    pub fn segments(&self, client: u32) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        let mut prev_active = false;
        let decided = self.steer.decided();
        for p in 0..decided {
            let w = *self.window(p as u16);
            let active = client < w.clients;
            let p = p as u16;
            // A client in both phases stays only below the phase's `first_new`; from there
            // up it connects again (a new stretch).
            match (prev_active, active) {
                (true, true) if client < w.first_new => {
                    if let Some(s) = out.last_mut() {
                        s.last_phase = p;
                        s.end = w.end;
                    }
                }
                (_, true) => out.push(Segment {
                    client,
                    first_phase: p,
                    last_phase: p,
                    connect_at: self.connect_at(p, client),
                    end: w.end,
                }),
                _ => {}
            }
            prev_active = active;
        }
        if !self.fixed
            && let Some(s) = out.last_mut()
            && usize::from(s.last_phase) + 1 == decided
        {
            s.last_phase = (self.steer.windows.len().saturating_sub(1)) as u16;
            s.end = self.t0 + FAR;
        }
        out
    }

    /// The first intended connect of `client`, if it ever connects.
    pub fn first_connect(&self, client: u32) -> Option<Instant> {
        (0..self.steer.decided())
            .position(|p| client < self.window(p as u16).clients)
            .map(|p| self.connect_at(p as u16, client))
    }

    fn connect_at(&self, phase: u16, client: u32) -> Instant {
        let w = self.window(phase);
        let new = w.clients.saturating_sub(w.first_new).max(1);
        let k = client.saturating_sub(w.first_new);
        let ramp = w.ramp_end - w.start;
        w.start + ramp.mul_f64(f64::from(k) / f64::from(new))
    }

    /// The phase whose window contains `at` (the last decided one after its end).
    pub fn phase_at(&self, at: Instant) -> u16 {
        let decided = self.steer.decided();
        let i = self
            .steer
            .count_while(|w| w.end <= at)
            .min(decided.saturating_sub(1));
        i as u16
    }

    /// [`Steer::count_while`] over the decided windows.
    pub fn count_while(&self, pred: impl Fn(&Window) -> bool) -> usize {
        self.steer.count_while(pred)
    }

    /// The largest number of clients connected at once.
    pub fn max_clients(&self) -> u32 {
        self.steer.clients.iter().copied().max().unwrap_or(0)
    }
}

/// What [`Schedule::window`] returns for a run with no phase (none is ever asked for).
static PLACEHOLDER: std::sync::LazyLock<Window> = std::sync::LazyLock::new(|| {
    let now = Instant::now();
    Window {
        start: now,
        ramp_end: now,
        end: now,
        first_new: 0,
        clients: 0,
        rate_per_s: None,
    }
});

/// Intended send instants of one client in one phase. 16 bytes of state, no allocation.
#[derive(Debug, Clone)]
pub struct SendClock {
    next: Instant,
    gap_ns: u64,
    rng: Option<u64>,
}

impl SendClock {
    /// Sends at `phase.rate_per_s` from `start`; the first instant is offset per client
    /// (spread evenly across clients for constant arrivals, exponential for poisson).
    pub fn new(start: Instant, phase: &Phase, client: u32, seed: u64) -> SendClock {
        let gap_ns = (1e9 / phase.rate_per_s.max(1e-9)).min(1e18) as u64;
        match phase.arrival {
            Arrival::Constant => {
                // Golden-ratio spreading: consecutive clients land far apart in the gap.
                let frac = (f64::from(client) * 0.618_033_988_749_895).fract();
                let next = start + Duration::from_nanos((frac * gap_ns as f64) as u64);
                SendClock {
                    next,
                    gap_ns,
                    rng: None,
                }
            }
            Arrival::Poisson => {
                let mut clock = SendClock {
                    next: start,
                    gap_ns,
                    rng: Some(seed ^ (u64::from(client) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                };
                clock.advance();
                clock
            }
        }
    }

    /// The intended instant of the next send.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Moves to the following intended instant.
    pub fn advance(&mut self) {
        let gap = match &mut self.rng {
            None => self.gap_ns,
            Some(state) => {
                let u = (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64;
                let u = u.max(1e-12);
                (-(u.ln()) * self.gap_ns as f64).min(1e18) as u64
            }
        };
        self.next += Duration::from_nanos(gap);
    }
}

pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Output, Scenario, Target};

    fn phase(name: &str, clients: u32, ramp_s: u64, dur_s: u64) -> Phase {
        Phase {
            name: name.into(),
            scenario: Scenario::Echo,
            clients,
            ramp: Duration::from_secs(ramp_s),
            duration: Duration::from_secs(dur_s),
            rate_per_s: 10.0,
            payload_size: 200,
            arrival: Arrival::Constant,
            max_in_flight: 0,
            fanout: None,
            heartbeat: Default::default(),
            churn: None,
            flow: None,
        }
    }

    fn plan(phases: Vec<Phase>) -> Plan {
        Plan {
            name: "t".into(),
            target: Target {
                endpoint: None,
                more: Vec::new(),
                protocol: crate::model::Protocol::Ws,
                transport: crate::model::Transport::Websocket,
                eio_path: "/socket.io/".into(),
                event: "echo".into(),
                reply_event: None,
                auth: None,
                headers: vec![],
                query: vec![],
                parser: crate::model::ParserKind::Default,
                insecure: false,
                source: Default::default(),
                max_message_size: crate::model::MAX_MESSAGE_BYTES,
                write_timeout: None,
                fan: Default::default(),
                tls: Default::default(),
                data: None,
                record_data: false,
            },
            phases,
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            output: Output::default(),
            scale: Default::default(),
            source_text: None,
        }
    }

    #[test]
    fn segments_follow_client_counts() {
        let t0 = Instant::now();
        let s = Schedule::new(
            &plan(vec![
                phase("a", 10, 10, 5),
                phase("b", 5, 0, 5),
                phase("c", 20, 2, 5),
            ]),
            t0,
        );
        assert_eq!(s.end(), t0 + Duration::from_secs(27));
        // Client 0: connected all along, at t0.
        assert_eq!(
            s.segments(0),
            vec![Segment {
                client: 0,
                first_phase: 0,
                last_phase: 2,
                connect_at: t0,
                end: s.end()
            }]
        );
        // Client 7: phase a, then dropped in b, back in c (as one of c's 15 new clients).
        let seg = s.segments(7);
        assert_eq!(seg.len(), 2);
        assert_eq!(seg[0].connect_at, t0 + Duration::from_secs(7));
        assert_eq!(seg[0].end, t0 + Duration::from_secs(15));
        assert_eq!(seg[1].first_phase, 2);
        let c_start = t0 + Duration::from_secs(20);
        assert_eq!(
            seg[1].connect_at,
            c_start + Duration::from_secs(2).mul_f64(2.0 / 15.0)
        );
        // Client 15 exists only in phase c.
        assert_eq!(s.segments(15).len(), 1);
        assert_eq!(s.first_connect(25), None);
        assert_eq!(s.phase_at(t0 + Duration::from_secs(16)), 1);
        assert_eq!(s.phase_at(t0 + Duration::from_secs(99)), 2);
    }

    #[test]
    fn constant_clock_is_evenly_spaced() {
        let t0 = Instant::now();
        let p = phase("a", 1, 0, 1);
        let mut c = SendClock::new(t0, &p, 3, 1);
        let first = c.next();
        assert!(first >= t0 && first < t0 + Duration::from_millis(100));
        c.advance();
        assert_eq!(c.next() - first, Duration::from_millis(100));
    }

    #[test]
    fn poisson_clock_has_the_right_mean() {
        let t0 = Instant::now();
        let mut p = phase("a", 1, 0, 1);
        p.arrival = Arrival::Poisson;
        let mut c = SendClock::new(t0, &p, 0, 42);
        for _ in 0..10_000 {
            c.advance();
        }
        let mean_ms = (c.next() - t0).as_secs_f64() * 1000.0 / 10_001.0;
        assert!((90.0..110.0).contains(&mean_ms), "mean gap {mean_ms} ms");
    }

    /// A steered run: the first phases are placed at the start, the clients' stretch stays
    /// open past them, a connection at the end of the last decided phase waits, a decision
    /// lets it go on (with the decided rate), the close ends it at the last decided phase.
    #[test]
    fn a_steered_run_decides_its_phases_as_it_goes() {
        let p = plan(vec![
            phase("a", 4, 1, 2),
            phase("b", 4, 0, 2),
            phase("c", 4, 0, 2),
            phase("d", 4, 0, 2),
        ]);
        let t0 = Instant::now();
        let steer = Steer::new(&p);
        let s = Schedule::steered(&p, t0, steer.clone(), 2);
        let rx = s.watch().expect("a steered run has a watch");
        assert_eq!(s.decided(), 2);
        assert!(!s.is_closed());
        let seg = s.segments(1);
        assert_eq!(seg.len(), 1);
        assert_eq!(seg[0].client, 1);
        assert_eq!((seg[0].first_phase, seg[0].last_phase), (0, 3));
        assert!(s.segment_end(&seg[0]) > t0 + Duration::from_secs(3600));
        assert_eq!(s.then(0, &seg[0]), Then::Next);
        assert_eq!(s.then(1, &seg[0]), Then::Wait, "phase c is not decided yet");
        let late = t0 + Duration::from_secs(9);
        let (idx, w) = steer.decide(Duration::from_secs(3), 40.0, late).unwrap();
        assert_eq!(idx, 2);
        assert!(rx.has_changed().unwrap(), "waiting connections are woken");
        assert_eq!(w.start, late, "after a gap, the phase starts when decided");
        assert_eq!(w.end, late + Duration::from_secs(3));
        assert_eq!(s.then(1, &seg[0]), Then::Next);
        assert_eq!(s.rate(2, 10.0), 40.0);
        assert_eq!(s.rate(0, 10.0), 10.0, "placed phases keep the plan's rate");
        assert_eq!(s.phase_at(late + Duration::from_secs(1)), 2);
        // A judgement asks the receivers for their tallies up to a phase; reports for an
        // older request are not counted.
        assert_eq!(s.settle_through(), None);
        let mut rx2 = s.watch().unwrap();
        steer.settle(1);
        assert!(
            rx2.has_changed().unwrap(),
            "the request wakes the connections"
        );
        rx2.mark_unchanged();
        assert_eq!(s.settle_through(), Some(1));
        s.settled(1);
        s.settled(0);
        s.settled(1);
        assert_eq!((steer.settled_count(1), steer.settled_count(0)), (2, 0));
        // A newer request starts its count afresh; a late report for the older one is not
        // counted against it.
        steer.settle(2);
        assert_eq!(s.settle_through(), Some(2));
        s.settled(1);
        s.settled(2);
        assert_eq!((steer.settled_count(2), steer.settled_count(1)), (1, 0));
        // The live outputs' label of a second: the decided window it falls in (the gap
        // before a late decision counts as the phase that follows it), the last one after.
        assert_eq!(steer.phase_at_offset(Duration::from_secs(2)), Some(0));
        assert_eq!(steer.phase_at_offset(Duration::from_secs(4)), Some(1));
        assert_eq!(steer.phase_at_offset(Duration::from_secs(6)), Some(2));
        assert_eq!(steer.phase_at_offset(Duration::from_secs(60)), Some(2));
        steer.close();
        assert!(s.is_closed());
        assert_eq!(s.then(2, &seg[0]), Then::End, "closed: no phase after c");
        assert_eq!(s.end(), late + Duration::from_secs(3));
        assert_eq!(s.segment_end(&seg[0]), late + Duration::from_secs(3));
        assert_eq!(
            steer.decide(Duration::from_secs(1), 1.0, late).err(),
            Some(SteerError::Closed)
        );
    }

    /// A steered run decides its phases' clients too (`swarm capacity --vary clients`):
    /// clients a phase adds connect over its ramp at the connect rate, a client above a
    /// phase's count ends its stretch with the phase before (and its end is known then),
    /// and a later phase can take it back as a stretch of its own, or have it connect again
    /// (`keep`).
    #[test]
    fn a_steered_run_adds_and_lets_go_of_clients() {
        // Room for 8 clients; the run starts with 2 in phase a.
        let p = plan(vec![
            phase("a", 2, 0, 1),
            phase("b", 8, 0, 1),
            phase("c", 8, 0, 1),
            phase("d", 8, 0, 1),
            phase("e", 8, 0, 1),
        ]);
        let t0 = Instant::now();
        let steer = Steer::new(&p);
        let s = Schedule::steered(&p, t0, steer.clone(), 1);
        assert_eq!(s.max_clients(), 8);
        assert_eq!(
            s.first_connect(5),
            None,
            "client 5 is in no decided phase yet"
        );
        let at = |d: Duration, clients: u32| Decision {
            duration: d,
            rate_per_s: 5.0,
            clients: Some(clients),
            keep: None,
            connect_rate: 2.0,
            not_before: t0,
        };
        // b: 6 clients, the 4 new ones over 2 s (2 a second), then 1 s.
        let (_, b) = steer.decide_phase(at(Duration::from_secs(1), 6)).unwrap();
        assert_eq!((b.first_new, b.clients), (2, 6));
        assert_eq!(b.ramp_end - b.start, Duration::from_secs(2));
        assert_eq!(b.end - b.start, Duration::from_secs(3));
        assert_eq!(s.first_connect(2), Some(b.start));
        assert_eq!(
            s.first_connect(3),
            Some(b.start + Duration::from_millis(500))
        );
        let five = s.segments(5);
        assert_eq!(five.len(), 1);
        assert_eq!(s.then(1, &five[0]), Then::Wait);
        // c: 4 clients: 4 and 5 end their stretch with b, whose end is now theirs.
        let (_, c) = steer.decide_phase(at(Duration::from_secs(1), 4)).unwrap();
        assert_eq!(c.ramp_end, c.start, "no client added, no ramp");
        assert_eq!(s.then(1, &five[0]), Then::End);
        assert_eq!(s.segment_end(&five[0]), b.end);
        let zero = s.segments(0);
        assert_eq!(s.then(1, &zero[0]), Then::Next);
        assert!(s.segment_end(&zero[0]) > t0 + Duration::from_secs(3600));
        // d: 6 again: client 5 comes back in a stretch of its own, from phase d.
        let (_, d) = steer.decide_phase(at(Duration::from_secs(1), 6)).unwrap();
        let five = s.segments(5);
        assert_eq!(five.len(), 2);
        assert_eq!((five[0].first_phase, five[0].last_phase), (1, 1));
        assert_eq!(five[1].first_phase, 3);
        assert_eq!(five[1].connect_at, d.start + Duration::from_millis(500));
        // e: 6 clients keeping 3 (a connect search after a fail): 3, 4 and 5 close with d
        // and connect again over e's ramp; 0 to 2 stay.
        let again = Decision {
            keep: Some(3),
            ..at(Duration::from_secs(1), 6)
        };
        let (_, e) = steer.decide_phase(again).unwrap();
        assert_eq!((e.first_new, e.clients), (3, 6));
        assert_eq!(e.ramp_end - e.start, Duration::from_millis(1500));
        assert_eq!(s.then(3, &five[1]), Then::End);
        assert_eq!(s.segment_end(&five[1]), d.end);
        let five_e = s.segments(5);
        assert_eq!(five_e.len(), 3);
        assert_eq!((five_e[1].first_phase, five_e[1].last_phase), (3, 3));
        assert_eq!(five_e[2].first_phase, 4);
        assert_eq!(five_e[2].connect_at, e.start + Duration::from_secs(1));
        assert_eq!(s.segments(2).len(), 1, "below keep, client 2 stays");
        assert_eq!(s.then(3, &s.segments(2)[0]), Then::Next);
        // Never above the plan's room.
        steer.close();
        assert_eq!(s.segment_end(&five[1]), d.end);
        assert_eq!(s.segment_end(&five_e[2]), e.end);
        assert_eq!(s.segment_end(&zero[0]), e.end);
        let full = Steer::new(&p);
        let _s = Schedule::steered(&p, t0, full.clone(), 1);
        let (_, w) = full.decide_phase(at(Duration::from_secs(1), 50)).unwrap();
        assert_eq!(w.clients, 8);
    }

    /// No more phases than the plan has room for; a plan's run is closed from the start
    /// and its segments end where its phases do.
    #[test]
    fn a_steered_run_is_bounded_and_a_plans_run_is_fixed() {
        let p = plan(vec![phase("a", 2, 0, 1), phase("b", 2, 0, 1)]);
        let t0 = Instant::now();
        let steer = Steer::new(&p);
        let _s = Schedule::steered(&p, t0, steer.clone(), 2);
        assert_eq!(
            steer.decide(Duration::from_secs(1), 1.0, t0).err(),
            Some(SteerError::Full(2))
        );
        let fixed = Schedule::new(&p, t0);
        assert!(fixed.is_closed() && fixed.watch().is_none());
        let seg = fixed.segments(0);
        assert_eq!(fixed.then(0, &seg[0]), Then::Next);
        assert_eq!(fixed.then(1, &seg[0]), Then::End);
        assert_eq!(seg[0].end, t0 + Duration::from_secs(2));
        assert_eq!(fixed.segment_end(&seg[0]), seg[0].end);
    }
}
