//! Plan -> intended instants: when each client connects, which phases it lives through,
//! and when each of its messages is meant to leave (open model).
//!
//! Receives: a validated [`Plan`] and the run's start instant. Emits: [`Schedule`] (phase
//! windows, per-client [`Segment`]s) and [`SendClock`]s that yield intended send instants.
//! Must not: sleep, spawn, or look at what actually happened: intended instants never move
//! because a reply was late (that is what makes coordinated omission visible).

use std::time::{Duration, Instant};

use crate::model::Arrival;
use crate::plan::{Phase, Plan};

/// One phase on the clock.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: Instant,
    /// End of the connect ramp of this phase's new clients.
    pub ramp_end: Instant,
    pub end: Instant,
    /// Clients `first_new..clients` connect during this phase.
    pub first_new: u32,
    pub clients: u32,
}

/// A stretch of consecutive phases during which one client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub first_phase: u16,
    /// Inclusive.
    pub last_phase: u16,
    /// Intended connect instant.
    pub connect_at: Instant,
    /// End of `last_phase`: stop sending, drain, close.
    pub end: Instant,
}

/// The whole run on the clock.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub t0: Instant,
    pub windows: Vec<Window>,
    pub end: Instant,
}

impl Schedule {
    pub fn new(plan: &Plan, t0: Instant) -> Schedule {
        let mut windows = Vec::with_capacity(plan.phases.len());
        let mut at = t0;
        let mut prev = 0u32;
        for p in &plan.phases {
            let ramp_end = at + p.ramp;
            let end = ramp_end + p.duration;
            windows.push(Window {
                start: at,
                ramp_end,
                end,
                first_new: prev.min(p.clients),
                clients: p.clients,
            });
            prev = p.clients;
            at = end;
        }
        Schedule {
            t0,
            windows,
            end: at,
        }
    }

    /// Every segment of `client`, in time order.
    pub fn segments(&self, client: u32) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        let mut prev_active = false;
        for (p, w) in self.windows.iter().enumerate() {
            let active = client < w.clients;
            let p = p as u16;
            match (prev_active, active) {
                (false, true) => out.push(Segment {
                    first_phase: p,
                    last_phase: p,
                    connect_at: self.connect_at(p, client),
                    end: w.end,
                }),
                (true, true) => {
                    if let Some(s) = out.last_mut() {
                        s.last_phase = p;
                        s.end = w.end;
                    }
                }
                _ => {}
            }
            prev_active = active;
        }
        out
    }

    /// The first intended connect of `client`, if it ever connects.
    pub fn first_connect(&self, client: u32) -> Option<Instant> {
        self.windows
            .iter()
            .position(|w| client < w.clients)
            .map(|p| self.connect_at(p as u16, client))
    }

    fn connect_at(&self, phase: u16, client: u32) -> Instant {
        let w = &self.windows[usize::from(phase)];
        let new = w.clients.saturating_sub(w.first_new).max(1);
        let k = client.saturating_sub(w.first_new);
        let ramp = w.ramp_end - w.start;
        w.start + ramp.mul_f64(f64::from(k) / f64::from(new))
    }

    /// The phase whose window contains `at` (the last one after the end).
    pub fn phase_at(&self, at: Instant) -> u16 {
        let i = self
            .windows
            .iter()
            .position(|w| at < w.end)
            .unwrap_or(self.windows.len().saturating_sub(1));
        i as u16
    }

    /// The largest number of clients connected at once.
    pub fn max_clients(&self) -> u32 {
        self.windows.iter().map(|w| w.clients).max().unwrap_or(0)
    }
}

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
        assert_eq!(s.end, t0 + Duration::from_secs(27));
        // Client 0: connected all along, at t0.
        assert_eq!(
            s.segments(0),
            vec![Segment {
                first_phase: 0,
                last_phase: 2,
                connect_at: t0,
                end: s.end
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
}
