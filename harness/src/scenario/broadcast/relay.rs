//! A room split over workers: every worker's copy of every swarm publisher's log, so that a
//! subscriber in one process can count what a publisher in another sent into its room.
//!
//! Receives [`Batch`]es: this worker's own (made by the pump, `PublishLog::pump`, from its
//! publishers' atomics) and every other worker's (passed on by the coordinator,
//! cluster/collect.rs). Emits what a receiver asks of a publisher's log, as
//! `PublishLog` asks it in a split run: the first seq sent at or after a wall-clock
//! instant, a seq's send instant, the phases' cuts, the seqs never written; the joins of
//! the other workers' subscribers (a publisher waits for its room to be full); and the
//! `mark`, up to which every worker's log is complete.
//! Must not: trust a batch (a publisher, phase or slot out of range, or a log that does
//! not go on where the copy ends, is refused and counted), or grow without bound (at most
//! [`MAX_MIRRORED`] instants per publisher; beyond, the batch is refused and counted).
//!
//! Why wall-clock points: in one process a receiver reads a publisher's counter when its
//! join is acknowledged. Across processes it cannot, so a split run's receivers keep
//! their memberships and away windows as wall-clock instants and turn them into seqs
//! when they tally, through the copy here (docs/DISTRIBUTED.md, "Split rooms"). A seq
//! sent at or after the join ack was written after the server processed the join, so the
//! server must deliver it; that holds across processes of one machine, whose clocks agree
//! to microseconds, far less than the ack's own trip.

use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Send instants kept per publisher (8 bytes each: 128 MiB at most per publisher).
pub const MAX_MIRRORED: usize = 1 << 24;

/// What one worker's publishers did since its last batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Every message the worker's publishers committed with a send instant (wall-clock
    /// ns) before this is in its batches so far; `u64::MAX`: its publishers are done.
    pub mark_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogDelta>,
    /// The worker's join counts that changed: (`phase * rooms + room`, its count now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<(u32, u32)>,
}

/// What one publisher did since the last batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDelta {
    pub publisher: u32,
    /// The seq of the first instant in `sent`.
    pub from: u32,
    /// Send instants (wall-clock ns): the first as it is, each next as its difference
    /// from the one before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<u64>,
    /// Phases the publisher entered: (phase, its counter then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts: Vec<(u16, u32)>,
    /// Seqs committed and never written (the connection failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub void: Vec<u32>,
}

impl Batch {
    /// True when the batch carries nothing but its mark.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.joins.is_empty()
    }

    /// Moves every instant by `shift_ns` (another worker's clock to this one's); the
    /// final mark stays final.
    pub fn shifted(mut self, shift_ns: i64) -> Batch {
        let by = |t: u64| t.saturating_add_signed(shift_ns);
        if self.mark_ns != u64::MAX {
            self.mark_ns = by(self.mark_ns);
        }
        for l in &mut self.logs {
            if let Some(first) = l.sent.first_mut() {
                *first = by(*first);
            }
        }
        self
    }
}

/// Encodes ascending instants as [`LogDelta::sent`] does.
pub fn encode(instants: &[u64]) -> Vec<u64> {
    let mut prev = 0;
    instants
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let d = if i == 0 { t } else { t.saturating_sub(prev) };
            prev = prev.max(t);
            d
        })
        .collect()
}

/// One publisher's log as copied here.
#[derive(Debug, Default)]
struct Mirror {
    /// Send instant of every seq so far (ascending).
    sent: Vec<u64>,
    /// Counter when the publisher entered each phase.
    cuts: Vec<Option<u32>>,
    void: Vec<u32>,
}

#[derive(Debug)]
struct State {
    mirrors: Vec<Mirror>,
    /// Each worker's mark.
    marks: Vec<u64>,
    /// Each worker's join counts by slot (empty until it sends any).
    joins: Vec<Vec<u32>>,
    /// The other workers' join counts added, by slot.
    others: Vec<u32>,
}

/// The copies of every publisher's log in one worker of a split run.
#[derive(Debug)]
pub struct Relay {
    me: u32,
    phases: usize,
    slots: usize,
    state: RwLock<State>,
    /// The lowest mark of every worker, for [`Relay::wait_mark`].
    mark: tokio::sync::watch::Sender<u64>,
    /// Batch parts refused as malformed, and instants the pump could not read (a
    /// publisher faster than its ring between two pumps).
    refused: AtomicU64,
    overrun: AtomicU64,
    /// Tallies counted before every worker's log was complete to their end.
    late: AtomicU64,
    /// Per worker: what to add to its clock to read it on this one's (0 on this host),
    /// and how far that may be off (the two offsets' bounds added; 0 on this host).
    shifts: Vec<AtomicI64>,
    bounds: Vec<AtomicU64>,
}

impl Relay {
    /// Worker `me` of `workers`, for `publishers` publishers, `phases` phases and `slots`
    /// join slots (`phases * rooms`).
    pub fn new(me: u32, workers: u32, publishers: u32, phases: u16, slots: usize) -> Relay {
        let phases = usize::from(phases);
        let mirrors = (0..publishers)
            .map(|_| Mirror {
                cuts: vec![None; phases],
                ..Mirror::default()
            })
            .collect();
        let workers = workers.max(1) as usize;
        Relay {
            me,
            phases,
            slots,
            state: RwLock::new(State {
                mirrors,
                marks: vec![0; workers],
                joins: vec![Vec::new(); workers],
                others: vec![0; slots],
            }),
            mark: tokio::sync::watch::channel(0).0,
            refused: AtomicU64::new(0),
            overrun: AtomicU64::new(0),
            late: AtomicU64::new(0),
            shifts: (0..workers).map(|_| AtomicI64::new(0)).collect(),
            bounds: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// This worker's index.
    pub fn me(&self) -> u32 {
        self.me
    }

    /// Applies worker `from`'s batch. A malformed part is refused (and counted); what
    /// came before it stays.
    pub fn apply(&self, from: u32, b: &Batch) -> Result<(), String> {
        let r = self.apply_inner(from, b);
        if r.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn apply_inner(&self, from: u32, b: &Batch) -> Result<(), String> {
        let Ok(mut st) = self.state.write() else {
            return Err("the relay's lock was poisoned".into());
        };
        let src = from as usize;
        if src >= st.marks.len() {
            return Err(format!("worker {from} does not exist"));
        }
        for l in &b.logs {
            let phases = self.phases;
            let m = st
                .mirrors
                .get_mut(l.publisher as usize)
                .ok_or_else(|| format!("publisher {} does not exist", l.publisher))?;
            if l.from as usize != m.sent.len() {
                return Err(format!(
                    "publisher {}'s log goes on at seq {}, not {}",
                    l.publisher,
                    m.sent.len(),
                    l.from
                ));
            }
            if m.sent.len() + l.sent.len() > MAX_MIRRORED {
                return Err(format!(
                    "publisher {} sent more than {MAX_MIRRORED} messages",
                    l.publisher
                ));
            }
            let mut t = m.sent.last().copied().unwrap_or(0);
            for (i, &d) in l.sent.iter().enumerate() {
                t = if i == 0 {
                    d.max(t)
                } else {
                    t.saturating_add(d)
                };
                m.sent.push(t);
            }
            for &(k, at) in &l.cuts {
                let k = usize::from(k);
                if k >= phases {
                    return Err(format!("phase {k} does not exist"));
                }
                m.cuts[k].get_or_insert(at);
            }
            if m.void.len() + l.void.len() > m.sent.len() {
                return Err(format!(
                    "publisher {}: more void seqs than sent",
                    l.publisher
                ));
            }
            m.void.extend_from_slice(&l.void);
        }
        for &(slot, count) in &b.joins {
            let slot = slot as usize;
            if slot >= self.slots {
                return Err(format!("join slot {slot} does not exist"));
            }
            let st = &mut *st;
            let mine = &mut st.joins[src];
            if mine.is_empty() {
                mine.resize(self.slots, 0);
            }
            let before = std::mem::replace(&mut mine[slot], count);
            if from != self.me {
                st.others[slot] = st.others[slot].saturating_sub(before).saturating_add(count);
            }
        }
        st.marks[src] = st.marks[src].max(b.mark_ns);
        let low = st.marks.iter().copied().min().unwrap_or(0);
        self.mark.send_if_modified(|m| {
            let changed = *m != low;
            *m = low;
            changed
        });
        Ok(())
    }

    /// Every worker's log is complete up to this wall-clock instant.
    pub fn mark(&self) -> u64 {
        *self.mark.borrow()
    }

    /// Waits until every worker's log is complete up to `at_ns`, at most `limit`; false
    /// when it was not by then (a worker lost, or the coordinator slow).
    pub async fn wait_mark(&self, at_ns: u64, limit: Duration) -> bool {
        let mut rx = self.mark.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|&m| m >= at_ns))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Worker `from` is gone: nothing more will come of it (its log stays as it is).
    pub fn gone(&self, from: u32) {
        let _ = self.apply(
            from,
            &Batch {
                mark_ns: u64::MAX,
                ..Batch::default()
            },
        );
    }

    fn read<T>(&self, p: u32, f: impl FnOnce(&Mirror) -> T) -> Option<T> {
        let st = self.state.read().ok()?;
        st.mirrors.get(p as usize).map(f)
    }

    /// Messages of `p` copied so far (its next seq).
    pub fn len(&self, p: u32) -> u64 {
        self.read(p, |m| m.sent.len() as u64).unwrap_or(0)
    }

    /// The first seq of `p` sent at or after `wall_ns` (as far as copied).
    pub fn seq_at(&self, p: u32, wall_ns: u64) -> u64 {
        self.read(p, |m| m.sent.partition_point(|&t| t < wall_ns) as u64)
            .unwrap_or(0)
    }

    /// When `p` sent `seq` (`None`: not copied yet).
    pub fn sent_at(&self, p: u32, seq: u64) -> Option<u64> {
        self.read(p, |m| {
            usize::try_from(seq)
                .ok()
                .and_then(|s| m.sent.get(s).copied())
        })
        .flatten()
    }

    /// The phase in which `p` sent `seq`: the last it entered at or before it, of those
    /// copied so far (asked per delivery: nothing is cloned).
    pub fn phase_of(&self, p: u32, seq: u64) -> u16 {
        self.read(p, |m| {
            m.cuts
                .iter()
                .rposition(|c| c.is_some_and(|c| u64::from(c) <= seq))
                .unwrap_or(0) as u16
        })
        .unwrap_or(0)
    }

    /// `p`'s cuts by phase, its void seqs and its next seq, as copied so far.
    pub fn log(&self, p: u32) -> (Vec<Option<u64>>, Vec<u32>, u64) {
        self.read(p, |m| {
            (
                m.cuts.iter().map(|c| c.map(u64::from)).collect(),
                m.void.clone(),
                m.sent.len() as u64,
            )
        })
        .unwrap_or_default()
    }

    /// The other workers' subscribers counted in join slot `slot`.
    pub fn others_joined(&self, slot: usize) -> u32 {
        self.state
            .read()
            .ok()
            .and_then(|st| st.others.get(slot).copied())
            .unwrap_or(0)
    }

    /// Worker `from`'s clock reads `ns` less than this one's, give or take `bound_ns`
    /// (the coordinator's offsets).
    pub fn set_shift(&self, from: u32, ns: i64, bound_ns: u64) {
        if let (Some(s), Some(b)) = (
            self.shifts.get(from as usize),
            self.bounds.get(from as usize),
        ) {
            s.store(ns, Ordering::Relaxed);
            b.store(bound_ns, Ordering::Relaxed);
        }
    }

    /// How far publisher `p`'s timestamps, read on this worker's clock, may be off (0 on
    /// this host).
    pub fn bound_of(&self, p: u32) -> u64 {
        match self.bounds.len() {
            0 => 0,
            n => self.bounds[p as usize % n].load(Ordering::Relaxed),
        }
    }

    /// What to add to publisher `p`'s timestamps to read them on this worker's clock: its
    /// worker's shift (a split run deals client c to worker c mod N, share.rs).
    pub fn shift_of(&self, p: u32) -> i64 {
        match self.shifts.len() {
            0 => 0,
            n => self.shifts[p as usize % n].load(Ordering::Relaxed),
        }
    }

    /// Counts instants the pump could not read.
    pub fn note_overrun(&self, n: u64) {
        self.overrun.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a tally that did not wait for every worker's log.
    pub fn note_late_tally(&self) {
        self.late.fetch_add(1, Ordering::Relaxed);
    }

    /// Batch parts refused, instants lost to a publisher faster than the pump, and
    /// tallies counted before every worker's log was complete.
    pub fn faults(&self) -> (u64, u64, u64) {
        (
            self.refused.load(Ordering::Relaxed),
            self.overrun.load(Ordering::Relaxed),
            self.late.load(Ordering::Relaxed),
        )
    }
}

/// What the pump has sent of this worker's publishers so far.
#[derive(Debug)]
pub struct Pump {
    /// This worker's publishers.
    pub(super) owned: Vec<u32>,
    /// Per owned publisher: seqs sent, cuts sent (by phase), void seqs sent.
    pub(super) sent: Vec<u32>,
    pub(super) cuts: Vec<Vec<bool>>,
    pub(super) void: Vec<usize>,
    /// Join counts sent, by slot.
    pub(super) joins: Vec<u32>,
    /// The mark of the last batch.
    pub(super) mark: u64,
}

impl Pump {
    /// The pump of the publishers `owned`, for `phases` phases and `slots` join slots.
    pub fn new(owned: Vec<u32>, phases: u16, slots: usize) -> Pump {
        let n = owned.len();
        Pump {
            owned,
            sent: vec![0; n],
            cuts: vec![vec![false; usize::from(phases)]; n],
            void: vec![0; n],
            joins: vec![0; slots],
            mark: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(publisher: u32, from: u32, sent: &[u64]) -> LogDelta {
        LogDelta {
            publisher,
            from,
            sent: encode(sent),
            ..LogDelta::default()
        }
    }

    /// Instants go in as differences and come out as they were; seqs are found by instant.
    #[test]
    fn copies_a_log_and_finds_seqs_by_instant() {
        let r = Relay::new(0, 2, 2, 2, 4);
        let b = Batch {
            mark_ns: 1_000,
            logs: vec![LogDelta {
                cuts: vec![(0, 0)],
                ..log(1, 0, &[100, 200, 300])
            }],
            joins: vec![(1, 5)],
        };
        r.apply(1, &b).unwrap();
        r.apply(
            1,
            &Batch {
                mark_ns: 2_000,
                logs: vec![LogDelta {
                    cuts: vec![(1, 4)],
                    void: vec![3],
                    ..log(1, 3, &[400, 500])
                }],
                joins: vec![(1, 7)],
            },
        )
        .unwrap();
        assert_eq!(r.len(1), 5);
        assert_eq!(r.seq_at(1, 250), 2);
        assert_eq!(r.seq_at(1, 300), 2, "sent at the instant: at or after it");
        assert_eq!(r.seq_at(1, 9_999), 5);
        assert_eq!(r.sent_at(1, 4), Some(500));
        assert_eq!(r.sent_at(1, 5), None);
        assert_eq!(r.log(1), (vec![Some(0), Some(4)], vec![3], 5));
        assert_eq!(r.others_joined(1), 7, "counts replace, not add");
        assert_eq!(r.mark(), 0, "worker 0 has said nothing yet");
        r.apply(
            0,
            &Batch {
                mark_ns: 1_500,
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(r.mark(), 1_500);
        assert_eq!(
            r.others_joined(1),
            7,
            "this worker's own joins are not others'"
        );
    }

    /// A hostile or confused batch is refused, counted, and leaves the copy consistent.
    #[test]
    fn refuses_what_does_not_fit() {
        let r = Relay::new(0, 2, 1, 1, 1);
        assert!(r.apply(5, &Batch::default()).is_err(), "no worker 5");
        let gap = Batch {
            logs: vec![log(0, 3, &[1])],
            ..Batch::default()
        };
        assert!(
            r.apply(1, &gap).is_err(),
            "does not go on where the copy ends"
        );
        let stranger = Batch {
            logs: vec![log(9, 0, &[1])],
            ..Batch::default()
        };
        assert!(r.apply(1, &stranger).is_err());
        let phase = Batch {
            logs: vec![LogDelta {
                cuts: vec![(4, 0)],
                ..LogDelta::default()
            }],
            ..Batch::default()
        };
        assert!(r.apply(1, &phase).is_err());
        let slot = Batch {
            joins: vec![(1, 1)],
            ..Batch::default()
        };
        assert!(r.apply(1, &slot).is_err());
        let void = Batch {
            logs: vec![LogDelta {
                void: vec![0],
                ..LogDelta::default()
            }],
            ..Batch::default()
        };
        assert!(r.apply(1, &void).is_err(), "void seqs never sent");
        assert_eq!(r.faults().0, 6);
        // Decreasing instants (hostile) come out ascending.
        r.apply(
            1,
            &Batch {
                logs: vec![log(0, 0, &[50, 10])],
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(r.sent_at(0, 1), Some(50));
    }

    /// Shifting moves the instants and the mark, not the final mark.
    #[test]
    fn shifted_batches() {
        let b = Batch {
            mark_ns: 1_000,
            logs: vec![log(0, 0, &[100, 150])],
            joins: vec![],
        };
        let s = b.clone().shifted(-40);
        assert_eq!(s.mark_ns, 960);
        assert_eq!(s.logs[0].sent, vec![60, 50]);
        let last = Batch {
            mark_ns: u64::MAX,
            ..b
        }
        .shifted(7);
        assert_eq!(last.mark_ns, u64::MAX);
    }

    #[tokio::test]
    async fn waits_for_every_workers_mark() {
        let r = std::sync::Arc::new(Relay::new(0, 2, 0, 1, 0));
        r.apply(
            0,
            &Batch {
                mark_ns: 500,
                ..Batch::default()
            },
        )
        .unwrap();
        assert!(
            !r.wait_mark(100, Duration::from_millis(20)).await,
            "worker 1 silent"
        );
        let r2 = r.clone();
        let w = tokio::spawn(async move { r2.wait_mark(400, Duration::from_secs(10)).await });
        r.gone(1);
        assert!(w.await.unwrap());
        assert_eq!(r.mark(), 500);
    }
}
