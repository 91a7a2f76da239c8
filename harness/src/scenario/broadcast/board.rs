//! The run-wide publish log that receivers read to know what they should have received.
//!
//! Receives: from each publisher, the moment it commits to a message (its counter moves
//! before the frame is written), the phase it enters, and sends that failed; from
//! receivers, observations of target-server's tick clock. Emits: a publisher's counter
//! now, the seq it had reached at a recent wall-clock instant, the seqs it published into a
//! room, the phase of a seq.
//! Must not: lock on the publish path (atomics only), or grow with the run's length (a
//! ring of recent send instants per publisher).
//!
//! Why the counter moves before the write: a receiver reads the counter when its join is
//! acknowledged. A seq at or above what it read was committed after the server had
//! processed the join, so the server must deliver it; a seq below it was committed
//! before, and is not expected (if it arrives anyway it counts as `outside`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::layout::Layout;
use super::ranges::RangeSet;

/// Recent send instants kept per publisher (for widening away windows backwards).
const RING: usize = 1024;
/// A phase the publisher never entered.
const UNSET: u32 = u32::MAX;

/// One publisher's log.
#[derive(Debug)]
struct Log {
    counter: AtomicU32,
    ring: Box<[AtomicU64]>,
    /// Counter value when the publisher entered each phase.
    cuts: Box<[AtomicU32]>,
    /// Seqs committed but not written (the connection failed).
    void: Mutex<Vec<u32>>,
}

/// target-server's `--tick` clock, learned from what receivers saw: tick `s` was meant to
/// leave at `ti0 + (s - s0) * period`. Seqs here are run-wide ([`TickEpoch`]).
#[derive(Debug, Clone, Copy, Default)]
struct TickClock {
    s0: u64,
    ti0: u64,
    s1: u64,
    ti1: u64,
}

impl TickClock {
    /// The first tick meant at or after `wall_ns` (`None` while the period is unknown).
    fn at(&self, wall_ns: u64) -> Option<u64> {
        let (ds, dt) = (
            self.s1.checked_sub(self.s0)?,
            self.ti1.checked_sub(self.ti0)?,
        );
        if ds == 0 || dt == 0 {
            return None;
        }
        let period = dt as f64 / ds as f64;
        let k = (wall_ns as f64 - self.ti0 as f64) / period;
        // Ticks are meant at whole nanoseconds: allow that rounding.
        let k = (k - 1e-6).ceil();
        Some((self.s0 as f64 + k).max(0.0) as u64)
    }
}

/// One life of the tick server: a restarted target-server counts its ticks from 0 again.
/// Its seqs are moved to run-wide ones that go on from the clock learned before (the ticks
/// the dead server never sent are the ones its clock meant meanwhile), so that nothing of
/// the new life is taken for a duplicate of the old one.
#[derive(Debug, Clone, Copy)]
struct TickEpoch {
    /// Ticks meant at or after this wall-clock instant belong to this life.
    from_ns: u64,
    /// Run-wide seq of this life's seq 0.
    base: u64,
    /// Highest seq of this life seen, and when it was meant.
    hi: u64,
    hi_ns: u64,
}

/// What receivers learned of the tick server.
#[derive(Debug, Default)]
struct Ticks {
    clock: Option<TickClock>,
    /// In time order; the last is the current life.
    epochs: Vec<TickEpoch>,
}

/// Most lives of the tick server remembered (a flapping server beyond that is folded into
/// the last one).
const MAX_EPOCHS: usize = 64;

/// The publish log of a run.
#[derive(Debug)]
pub struct PublishLog {
    pub layout: Layout,
    logs: Vec<Log>,
    ticks: Mutex<Ticks>,
    /// Wall-clock start of each phase window (ns), for the server publisher's phases.
    phase_starts_ns: Vec<u64>,
    /// Wall-clock end of the last phase (ns): server ticks meant later are not expected.
    end_ns: u64,
    /// Subscribers that joined each room in each phase (`phase * rooms + room`).
    joins: Box<[AtomicU32]>,
    /// A steered run's phases as it decides them; `None`: the plan's, placed at the start
    /// (`phase_starts_ns`, `end_ns`).
    steered: Option<Box<dyn Decided>>,
}

/// The phases of a steered run as decided so far (schedule.rs `Steer`): their clients (a
/// step may have fewer than the plan's) and their wall-clock windows, which are not known
/// at the start and may have gaps between them (the clients wait, connected, while a
/// `swarm capacity` step is judged).
pub trait Decided: Send + Sync {
    /// Phases decided so far, and whether more may come.
    fn decided(&self) -> (u16, bool);
    /// Phase `p`'s clients and window (wall-clock ns, start and end); `p` is decided.
    fn phase(&self, p: u16) -> (u32, u64, u64);
    /// The last decided phase that starts at or before `wall_ns` (asked per delivery: an
    /// implementation over many phases should search, not scan).
    fn started_by(&self, wall_ns: u64) -> Option<u16> {
        (0..self.decided().0)
            .rposition(|k| self.phase(k).1 <= wall_ns)
            .map(|k| k as u16)
    }
}

impl std::fmt::Debug for dyn Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} phases decided", self.decided().0)
    }
}

impl PublishLog {
    pub fn new(layout: Layout, phase_starts_ns: Vec<u64>, end_ns: u64) -> PublishLog {
        let phases = usize::from(layout.phases());
        let joins = (0..phases * layout.rooms() as usize)
            .map(|_| AtomicU32::new(0))
            .collect();
        let logs = (0..layout.max_publishers())
            .map(|_| Log {
                counter: AtomicU32::new(0),
                ring: (0..RING).map(|_| AtomicU64::new(0)).collect(),
                cuts: (0..phases).map(|_| AtomicU32::new(UNSET)).collect(),
                void: Mutex::new(Vec::new()),
            })
            .collect();
        PublishLog {
            layout,
            logs,
            ticks: Mutex::new(Ticks::default()),
            phase_starts_ns,
            end_ns,
            joins,
            steered: None,
        }
    }

    /// Each phase's clients and window come from `decided` (a steered run's schedule)
    /// rather than the plan.
    pub fn steered(mut self, decided: impl Decided + 'static) -> PublishLog {
        self.steered = Some(Box::new(decided));
        self
    }

    /// Members of `room` in `phase` (the room size class): the layout's, for the phase's
    /// clients as the run decided them.
    pub fn room_size(&self, phase: u16, room: u32) -> u32 {
        let clients = self.steered.as_ref().map_or(u32::MAX, |d| d.phase(phase).0);
        self.layout.room_size_with(phase, room, clients)
    }

    fn join_slot(&self, phase: u16, room: u32) -> Option<&AtomicU32> {
        let rooms = self.layout.rooms() as usize;
        self.joins
            .get(usize::from(phase) * rooms + room as usize)
            .filter(|_| (room as usize) < rooms)
    }

    /// A subscriber is a member of `room` in `phase` (counted once per client and phase).
    pub fn note_join(&self, phase: u16, room: u32) {
        if let Some(c) = self.join_slot(phase, room) {
            c.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// True once every planned subscriber of `room` joined it in `phase`: publishers
    /// start then, so that a run measures the broadcast, not the join storm.
    pub fn room_full(&self, phase: u16, room: u32) -> bool {
        let want = self.room_size(phase, room);
        self.join_slot(phase, room)
            .is_none_or(|c| c.load(Ordering::Acquire) >= want)
    }

    /// Wall-clock end of the last phase (ns); a steered run's last decided one.
    pub fn end_ns(&self) -> u64 {
        match &self.steered {
            Some(d) => match d.decided().0 {
                0 => 0,
                n => d.phase(n - 1).2,
            },
            None => self.end_ns,
        }
    }

    /// Publisher `p` enters `phase` (idempotent).
    pub fn enter_phase(&self, p: u32, phase: u16) {
        if let Some(log) = self.logs.get(p as usize)
            && let Some(cut) = log.cuts.get(usize::from(phase))
        {
            let now = log.counter.load(Ordering::Acquire);
            let _ = cut.compare_exchange(UNSET, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Publisher `p` commits to its next message, sent at `sent_ns`; returns its seq.
    pub fn commit(&self, p: u32, sent_ns: u64) -> u32 {
        let Some(log) = self.logs.get(p as usize) else {
            return 0;
        };
        let seq = log.counter.load(Ordering::Relaxed);
        log.ring[seq as usize % RING].store(sent_ns, Ordering::Relaxed);
        log.counter.store(seq.wrapping_add(1), Ordering::Release);
        seq
    }

    /// The message `seq` of `p` was committed but never written.
    pub fn void(&self, p: u32, seq: u32) {
        if let Some(log) = self.logs.get(p as usize)
            && let Ok(mut v) = log.void.lock()
        {
            v.push(seq);
        }
    }

    /// Messages `p` has committed so far (its next seq).
    pub fn counter(&self, p: u32) -> u64 {
        self.logs
            .get(p as usize)
            .map_or(0, |l| u64::from(l.counter.load(Ordering::Acquire)))
    }

    /// The first seq of `p` committed at or after `wall_ns`, looking back at most over its
    /// recent sends (older instants give the oldest seq remembered).
    pub fn seq_at(&self, p: u32, wall_ns: u64) -> u64 {
        let Some(log) = self.logs.get(p as usize) else {
            return 0;
        };
        let counter = u64::from(log.counter.load(Ordering::Acquire));
        let oldest = counter.saturating_sub(RING as u64 - 1);
        let mut s = counter;
        while s > oldest {
            let sent = log.ring[(s - 1) as usize % RING].load(Ordering::Relaxed);
            if sent < wall_ns {
                break;
            }
            s -= 1;
        }
        s
    }

    /// The seq ranges `p` published into `room`, each tagged with its phase, up to now.
    pub fn published_into(&self, p: u32, room: u32) -> Vec<(u16, RangeSet)> {
        let Some(log) = self.logs.get(p as usize) else {
            return Vec::new();
        };
        let end = u64::from(log.counter.load(Ordering::Acquire));
        let cuts: Vec<Option<u64>> = log
            .cuts
            .iter()
            .map(|c| {
                let v = c.load(Ordering::Acquire);
                (v != UNSET).then_some(u64::from(v))
            })
            .collect();
        let void = log.void.lock().map(|v| v.clone()).unwrap_or_default();
        let void = RangeSet::from_ranges(void.iter().map(|&s| (u64::from(s), u64::from(s) + 1)));
        let mut out = Vec::new();
        for (k, cut) in cuts.iter().enumerate() {
            let Some(lo) = *cut else { continue };
            if self.layout.publishes_into(k as u16, p) != Some(room) {
                continue;
            }
            let hi = cuts[k + 1..]
                .iter()
                .flatten()
                .copied()
                .next()
                .unwrap_or(end);
            let set = RangeSet::span(lo, hi).subtract(&void);
            if !set.is_empty() {
                out.push((k as u16, set));
            }
        }
        out
    }

    /// The phase in which `p` committed `seq` (the last phase it entered at or before it).
    pub fn phase_of(&self, p: u32, seq: u64) -> u16 {
        let Some(log) = self.logs.get(p as usize) else {
            return 0;
        };
        let mut phase = 0;
        for (k, c) in log.cuts.iter().enumerate() {
            let v = c.load(Ordering::Acquire);
            if v != UNSET && u64::from(v) <= seq {
                phase = k as u16;
            }
        }
        phase
    }

    /// The run-wide seq of the server's tick `seq` meant for `intended_ns`. A seq at or
    /// below the highest one seen, meant later than it, is a restarted server's: a new life
    /// starts, whose seqs go on after the old one's (see [`TickEpoch`]).
    pub fn tick_seq(&self, seq: u64, intended_ns: u64) -> u64 {
        let Ok(mut t) = self.ticks.lock() else {
            return seq;
        };
        let clock = t.clock;
        let epochs = t.epochs.len();
        let Some(last) = t.epochs.last_mut() else {
            t.epochs.push(TickEpoch {
                from_ns: 0,
                base: 0,
                hi: seq,
                hi_ns: intended_ns,
            });
            return seq;
        };
        if intended_ns >= last.from_ns {
            if seq > last.hi {
                (last.hi, last.hi_ns) = (seq, intended_ns);
            } else if intended_ns > last.hi_ns && epochs < MAX_EPOCHS {
                // Restarted. Its seq 0 was meant `seq` periods before this one.
                let period = clock.and_then(|c| {
                    let (ds, dt) = (c.s1.checked_sub(c.s0)?, c.ti1.checked_sub(c.ti0)?);
                    (ds > 0).then(|| dt / ds)
                });
                let from_ns = period
                    .map_or(intended_ns, |p| {
                        intended_ns.saturating_sub(seq.saturating_mul(p))
                    })
                    .max(last.hi_ns + 1);
                let after_old = last.base.saturating_add(last.hi).saturating_add(1);
                let base = clock
                    .and_then(|c| c.at(from_ns))
                    .unwrap_or(after_old)
                    .max(after_old);
                t.epochs.push(TickEpoch {
                    from_ns,
                    base,
                    hi: seq,
                    hi_ns: intended_ns,
                });
                return base.saturating_add(seq);
            }
        }
        let e = t
            .epochs
            .iter()
            .rev()
            .find(|e| e.from_ns <= intended_ns)
            .unwrap_or(&t.epochs[0]);
        e.base.saturating_add(seq)
    }

    /// A receiver saw tick `seq` (run-wide, from [`PublishLog::tick_seq`]) meant for
    /// `intended_ns`.
    pub fn observe_tick(&self, seq: u64, intended_ns: u64) {
        let Ok(mut t) = self.ticks.lock() else { return };
        match t.clock.as_mut() {
            None => {
                t.clock = Some(TickClock {
                    s0: seq,
                    ti0: intended_ns,
                    s1: seq,
                    ti1: intended_ns,
                })
            }
            // A lower seq meant later (or a higher one meant earlier) does not fit this
            // clock: not an observation of it (hostile or confused input).
            Some(c) => {
                if seq < c.s0 && intended_ns <= c.ti0 {
                    (c.s0, c.ti0) = (seq, intended_ns);
                }
                if seq > c.s1 && intended_ns >= c.ti1 {
                    (c.s1, c.ti1) = (seq, intended_ns);
                }
            }
        }
    }

    /// The first tick meant to leave at or after `wall_ns` (None until two ticks were seen).
    pub fn tick_at(&self, wall_ns: u64) -> Option<u64> {
        self.ticks.lock().ok()?.clock?.at(wall_ns)
    }

    /// Tick seq ranges by phase, from each phase window's start.
    pub fn tick_phases(&self, upto: u64) -> Vec<(u16, RangeSet)> {
        let mut out = Vec::new();
        // A steered run's phases: each its own window, the gaps between them in none.
        if let Some(d) = &self.steered {
            for k in 0..d.decided().0 {
                let (_, start, end) = d.phase(k);
                let lo = self.tick_at(start).unwrap_or(0);
                let hi = self.tick_at(end).unwrap_or(0).min(upto);
                if hi > lo {
                    out.push((k, RangeSet::span(lo, hi)));
                }
            }
            return out;
        }
        let starts: Vec<u64> = self
            .phase_starts_ns
            .iter()
            .map(|&ns| self.tick_at(ns).unwrap_or(0))
            .collect();
        for (k, &lo) in starts.iter().enumerate() {
            let hi = starts.get(k + 1).copied().unwrap_or(u64::MAX).min(upto);
            if hi > lo {
                out.push((k as u16, RangeSet::span(lo, hi)));
            }
        }
        out
    }

    /// The phase of tick `seq`.
    pub fn tick_phase(&self, intended_ns: u64) -> u16 {
        if let Some(d) = &self.steered {
            return d.started_by(intended_ns).unwrap_or(0);
        }
        self.phase_starts_ns
            .iter()
            .rposition(|&s| s <= intended_ns)
            .unwrap_or(0) as u16
    }
}

impl PublishLog {
    /// True when a server tick meant at `intended_ns` falls in no phase of a steered run:
    /// between two decided windows, or after the last while more may come. Its delivery is
    /// no phase's (a plan's run has no such gap).
    pub fn tick_in_gap(&self, intended_ns: u64) -> bool {
        let Some(d) = &self.steered else {
            return false;
        };
        let (n, open) = d.decided();
        match d.started_by(intended_ns) {
            Some(k) => {
                let after_last = k + 1 == n;
                intended_ns >= d.phase(k).2 && (!after_last || open)
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_cuts_and_recent_instants() {
        let plan = crate::plan::tests_support::broadcast_plan(1, 4, 1, None);
        let b = PublishLog::new(Layout::new(&plan), vec![0], u64::MAX);
        b.enter_phase(0, 0);
        for i in 0..10u64 {
            assert_eq!(b.commit(0, 1000 + i * 10), i as u32);
        }
        b.void(0, 4);
        assert_eq!(b.counter(0), 10);
        // Sent at 1000, 1010, ... 1090: the first at or after 1035 is seq 4.
        assert_eq!(b.seq_at(0, 1035), 4);
        assert_eq!(b.seq_at(0, 5000), 10);
        assert_eq!(b.seq_at(0, 0), 0);
        let into = b.published_into(0, 0);
        assert_eq!(into.len(), 1);
        assert_eq!(into[0].1.ranges(), &[(0, 4), (5, 10)]);
        assert!(b.published_into(0, 1).is_empty());
        assert_eq!(b.phase_of(0, 7), 0);
    }

    #[test]
    fn tick_clock_from_observations() {
        let plan = crate::plan::tests_support::broadcast_plan(0, 4, 1, None);
        let b = PublishLog::new(Layout::new(&plan), vec![0, 10_000], u64::MAX);
        assert_eq!(b.tick_at(5), None);
        // Period 100 ns, tick 3 meant at 1300.
        b.observe_tick(3, 1300);
        b.observe_tick(9, 1900);
        assert_eq!(b.tick_at(1300), Some(3));
        assert_eq!(b.tick_at(1301), Some(4));
        assert_eq!(b.tick_at(10_000), Some(90));
        let phases = b.tick_phases(200);
        assert_eq!(phases[0].1.ranges(), &[(0, 90)]);
        assert_eq!(phases[1].1.ranges(), &[(90, 200)]);
        assert_eq!(b.tick_phase(12_000), 1);
        assert!(!b.tick_in_gap(12_000), "a plan's run has no gap");
    }

    /// A steered run's phases as a test decides them: (clients, start ns, end ns).
    struct Fixed(Vec<(u32, u64, u64)>, bool);

    impl Decided for Fixed {
        fn decided(&self) -> (u16, bool) {
            (self.0.len() as u16, self.1)
        }
        fn phase(&self, p: u16) -> (u32, u64, u64) {
            self.0[usize::from(p)]
        }
    }

    /// In a steered run, each phase's ticks are those of its own window: the ticks between
    /// two windows, and after the last while more may come, are no phase's; the room size
    /// follows the clients decided.
    #[test]
    fn a_steered_runs_ticks_are_its_windows() {
        let plan = crate::plan::tests_support::broadcast_plan(0, 4, 1, None);
        let windows = vec![(3, 1_000, 2_000), (4, 2_500, 3_000)];
        let b =
            PublishLog::new(Layout::new(&plan), vec![0], u64::MAX).steered(Fixed(windows, true));
        // Period 100 ns, tick 0 meant at 0.
        b.observe_tick(0, 0);
        b.observe_tick(10, 1_000);
        let phases = b.tick_phases(u64::MAX);
        assert_eq!(phases[0].1.ranges(), &[(10, 20)]);
        assert_eq!(phases[1].1.ranges(), &[(25, 30)]);
        assert_eq!(b.end_ns(), 3_000);
        assert!(!b.tick_in_gap(1_900));
        assert!(b.tick_in_gap(2_000) && b.tick_in_gap(2_400));
        assert!(!b.tick_in_gap(2_500));
        assert!(
            b.tick_in_gap(3_000),
            "after the last window while the run is open"
        );
        assert!(
            !b.tick_in_gap(500),
            "before the first window: counted as before"
        );
        assert_eq!(b.tick_phase(2_600), 1);
        assert_eq!(b.room_size(0, 0), 3, "3 clients decided, of the plan's 4");
        let closed = vec![(3, 1_000, 2_000)];
        let b =
            PublishLog::new(Layout::new(&plan), vec![0], u64::MAX).steered(Fixed(closed, false));
        assert!(
            !b.tick_in_gap(2_500),
            "after the last window of a closed run: as a plan's"
        );
    }
}
