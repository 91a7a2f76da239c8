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

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::layout::Layout;
use super::ranges::RangeSet;
use super::relay::{Batch, LogDelta, Pump, Relay};

/// Recent send instants kept per publisher (for widening away windows backwards).
const RING: usize = 1024;
/// The ring of a split run, whose pump reads it every few tens of milliseconds.
const SPLIT_RING: usize = 8192;
/// A phase the publisher never entered.
const UNSET: u32 = u32::MAX;

/// One publisher's log.
#[derive(Debug)]
struct Log {
    counter: AtomicU32,
    /// Set from before the send instant is read until the counter moved past it (the
    /// pump of a split run does not move its mark past a commit under way).
    committing: AtomicBool,
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
    /// A split run (rooms over several workers): the copies of every publisher's log,
    /// which receivers read instead of the atomics here ([`super::relay`]).
    relay: Option<Arc<Relay>>,
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
                committing: AtomicBool::new(false),
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
            relay: None,
        }
    }

    /// A split run's board: receivers count every publisher through `relay`, and the
    /// publishers' wait for a full room adds the other workers' joins.
    pub fn relayed(mut self, relay: Arc<Relay>) -> PublishLog {
        for log in &mut self.logs {
            log.ring = (0..SPLIT_RING).map(|_| AtomicU64::new(0)).collect();
        }
        self.relay = Some(relay);
        self
    }

    /// The relay of a split run.
    pub fn relay(&self) -> Option<&Relay> {
        self.relay.as_deref()
    }

    /// Join slots (`phases * rooms`).
    pub fn slots(&self) -> usize {
        self.joins.len()
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
        let rooms = self.layout.rooms() as usize;
        let others = self.relay.as_ref().map_or(0, |r| {
            r.others_joined(usize::from(phase) * rooms + room as usize)
        });
        self.join_slot(phase, room)
            .is_none_or(|c| c.load(Ordering::Acquire).saturating_add(others) >= want)
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
        self.commit_with(p, || sent_ns).0
    }

    /// Publisher `p` commits to its next message, sent at the instant `now` reads (read
    /// inside the commit, so that a split run's pump never marks its log complete past a
    /// commit it cannot see yet); returns its seq and that instant.
    pub fn commit_with(&self, p: u32, now: impl FnOnce() -> u64) -> (u32, u64) {
        let Some(log) = self.logs.get(p as usize) else {
            return (0, now());
        };
        // Only a split run's pump looks at the flag.
        let split = self.relay.is_some();
        if split {
            log.committing.store(true, Ordering::SeqCst);
        }
        let sent_ns = now();
        let seq = log.counter.load(Ordering::Relaxed);
        let ring = log.ring.len();
        log.ring[seq as usize % ring].store(sent_ns, Ordering::Relaxed);
        log.counter.store(seq.wrapping_add(1), Ordering::Release);
        if split {
            log.committing.store(false, Ordering::SeqCst);
        }
        (seq, sent_ns)
    }

    /// The message `seq` of `p` was committed but never written.
    pub fn void(&self, p: u32, seq: u32) {
        if let Some(log) = self.logs.get(p as usize)
            && let Ok(mut v) = log.void.lock()
        {
            v.push(seq);
        }
    }

    /// Messages `p` has committed so far (its next seq); in a split run, as copied.
    pub fn counter(&self, p: u32) -> u64 {
        if let Some(r) = &self.relay {
            return r.len(p);
        }
        self.logs
            .get(p as usize)
            .map_or(0, |l| u64::from(l.counter.load(Ordering::Acquire)))
    }

    /// The first seq of `p` committed at or after `wall_ns`, looking back at most over its
    /// recent sends (older instants give the oldest seq remembered).
    /// In a split run, through the copy of every send instant.
    pub fn seq_at(&self, p: u32, wall_ns: u64) -> u64 {
        if let Some(r) = &self.relay {
            return r.seq_at(p, wall_ns);
        }
        let Some(log) = self.logs.get(p as usize) else {
            return 0;
        };
        let counter = u64::from(log.counter.load(Ordering::Acquire));
        let ring = log.ring.len();
        let oldest = counter.saturating_sub(ring as u64 - 1);
        let mut s = counter;
        while s > oldest {
            let sent = log.ring[(s - 1) as usize % ring].load(Ordering::Relaxed);
            if sent < wall_ns {
                break;
            }
            s -= 1;
        }
        s
    }

    /// The seq ranges `p` published into `room`, each tagged with its phase, up to now (in
    /// a split run, as copied).
    pub fn published_into(&self, p: u32, room: u32) -> Vec<(u16, RangeSet)> {
        let (cuts, void, end) = match &self.relay {
            Some(r) => r.log(p),
            None => {
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
                (cuts, void, end)
            }
        };
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

    /// The phase in which `p` committed `seq` (the last phase it entered at or before it;
    /// in a split run, of those copied so far).
    pub fn phase_of(&self, p: u32, seq: u64) -> u16 {
        if let Some(r) = &self.relay {
            return r.phase_of(p, seq);
        }
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
    /// A split run's batch of this worker's publishers since `pump`'s last, and its mark:
    /// `now_ns`, read before anything else, unless a commit is under way (then the last
    /// mark: that commit may have read an earlier instant). Also applied to this worker's
    /// own relay.
    pub fn pump(&self, pump: &mut Pump, now_ns: u64) -> Batch {
        let mut held = false;
        let mut logs = Vec::new();
        for (i, &p) in pump.owned.iter().enumerate() {
            let Some(log) = self.logs.get(p as usize) else {
                continue;
            };
            held |= log.committing.load(Ordering::SeqCst);
            let counter = log.counter.load(Ordering::Acquire);
            let ring = log.ring.len() as u32;
            let from = pump.sent[i];
            // Instants the ring no longer holds (a publisher faster than the pump) are
            // given the oldest instant it holds, and counted.
            let oldest = counter.saturating_sub(ring);
            let lost = oldest.saturating_sub(from);
            let mut sent = Vec::with_capacity(counter.saturating_sub(from) as usize);
            if lost > 0 {
                let t = log.ring[oldest as usize % ring as usize].load(Ordering::Relaxed);
                sent.extend(std::iter::repeat_n(t, lost as usize));
                if let Some(r) = &self.relay {
                    r.note_overrun(u64::from(lost));
                }
            }
            for s in from.max(oldest)..counter {
                sent.push(log.ring[s as usize % ring as usize].load(Ordering::Relaxed));
            }
            let mut cuts = Vec::new();
            for (k, c) in log.cuts.iter().enumerate() {
                let v = c.load(Ordering::Acquire);
                if v != UNSET && !pump.cuts[i][k] && v <= counter {
                    pump.cuts[i][k] = true;
                    cuts.push((k as u16, v));
                }
            }
            let void: Vec<u32> = log
                .void
                .lock()
                .map(|v| v.get(pump.void[i]..).unwrap_or_default().to_vec())
                .unwrap_or_default();
            pump.void[i] += void.len();
            pump.sent[i] = counter;
            if !sent.is_empty() || !cuts.is_empty() || !void.is_empty() {
                logs.push(LogDelta {
                    publisher: p,
                    from,
                    sent: super::relay::encode(&sent),
                    cuts,
                    void,
                });
            }
        }
        let mut joins = Vec::new();
        for (slot, c) in self.joins.iter().enumerate() {
            let v = c.load(Ordering::Acquire);
            if pump.joins.get(slot).is_some_and(|&sent| sent != v) {
                pump.joins[slot] = v;
                joins.push((slot as u32, v));
            }
        }
        if !held {
            pump.mark = pump.mark.max(now_ns);
        }
        Batch {
            mark_ns: pump.mark,
            logs,
            joins,
        }
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

    /// A split run: worker 1's pump batches its publisher's commits, cuts, void seqs and
    /// joins; worker 0's board, fed that batch, answers for the publisher from the copy.
    #[test]
    fn a_pumped_batch_feeds_another_workers_board() {
        let plan = crate::plan::tests_support::broadcast_plan(2, 4, 1, None);
        let layout = Layout::new(&plan);
        let relay = |me| Arc::new(Relay::new(me, 2, 2, layout.phases(), 1));
        let (r0, r1) = (relay(0), relay(1));
        let b0 = PublishLog::new(Layout::new(&plan), vec![0], u64::MAX).relayed(r0.clone());
        let b1 = PublishLog::new(Layout::new(&plan), vec![0], u64::MAX).relayed(r1.clone());
        // Worker 1 owns publisher 1; two of its subscribers joined.
        b1.enter_phase(1, 0);
        for i in 0..5u64 {
            assert_eq!(
                b1.commit_with(1, || 1_000 + i * 100),
                (i as u32, 1_000 + i * 100)
            );
        }
        b1.void(1, 2);
        b1.note_join(0, 0);
        b1.note_join(0, 0);
        let mut pump = Pump::new(vec![1], layout.phases(), b1.slots());
        let batch = b1.pump(&mut pump, 5_000);
        assert_eq!(batch.mark_ns, 5_000);
        assert_eq!(batch.joins, vec![(0, 2)]);
        r0.apply(1, &batch).unwrap();
        assert_eq!(b0.counter(1), 5);
        assert_eq!(b0.seq_at(1, 1_150), 2);
        assert_eq!(b0.published_into(1, 0)[0].1.ranges(), &[(0, 2), (3, 5)]);
        assert_eq!(b0.phase_of(1, 4), 0);
        // Worker 0's own two subscribers fill the room of 4 with worker 1's two.
        assert!(!b0.room_full(0, 0));
        b0.note_join(0, 0);
        b0.note_join(0, 0);
        assert!(b0.room_full(0, 0));
        // Nothing new: the next batch carries only its mark.
        let next = b1.pump(&mut pump, 6_000);
        assert!(next.is_empty() && next.mark_ns == 6_000);
        r0.apply(1, &next).unwrap();
        r0.apply(
            0,
            &Batch {
                mark_ns: 7_000,
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(r0.mark(), 6_000, "the lower of the two workers' marks");
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
