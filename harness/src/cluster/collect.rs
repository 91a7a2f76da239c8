//! The coordinator during the run: every worker's messages gathered, live figures merged,
//! clocks re-measured, a lost worker said at once, Ctrl-C passed on as `stop`.
//!
//! Receives the started workers (one reader task each feeds [`Event`]s in) and the
//! interrupts. Emits the [`WorkerRecord`]s once every worker has sent its final results or
//! is lost; merged live snapshots on a watch channel for the progress line; each second
//! merged for the live outputs when they run ([`super::live`]).
//! Must not: wait without bound: a worker that sends nothing for [`SILENT_LIMIT`], or that
//! has not finished well after the plan's end, is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio::io::BufReader;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use super::admit::ClockOffset;
use super::live::{Merger, WireSecond};
use super::merge::WorkerRecord;
use super::wire::{self, ToCoordinator, ToWorker};
use crate::recorder::LiveSnapshot;

/// A worker that sent nothing (not even its live figures, sent every second) for this long
/// is lost.
pub const SILENT_LIMIT: Duration = Duration::from_secs(15);

/// Clock pings during the run, one per worker this often.
const CLOCK_EVERY: Duration = Duration::from_secs(5);

/// A split run's publish batches are passed on to the workers this often, gathered.
const RELAY_EVERY: Duration = Duration::from_millis(20);

/// What a worker's reader task reports.
#[derive(Debug)]
pub enum Event {
    Msg(u32, Box<ToCoordinator>),
    /// The control connection ended or failed (before or after the final results).
    Closed(u32, String),
}

/// What a steered run's steering (capacity/kept.rs) asks of the workers.
#[derive(Debug)]
pub enum Command {
    /// Sent to every worker still running (a decision, a settle request, the close).
    Tell(ToWorker),
    /// Asked of every worker still running: the counts so far, with everything recorded
    /// when `records`, and the receivers settled up to `settled_through`. The answers come
    /// back in worker order once every asked worker answered or was lost.
    Ask {
        records: bool,
        settled_through: Option<u16>,
        reply: tokio::sync::oneshot::Sender<Vec<Reply>>,
    },
}

/// One worker's answer to [`Command::Ask`], or why it has none (it was lost).
#[derive(Debug)]
pub struct Reply {
    pub index: u32,
    pub answer: Result<Answer, String>,
}

/// What a worker answered (wire.rs `ToCoordinator::Answer`).
#[derive(Debug)]
pub struct Answer {
    pub progress: crate::recorder::Progress,
    pub settled: u32,
    pub results: Option<String>,
}

/// An [`Command::Ask`] waiting for its answers.
struct Pending {
    waiting: BTreeSet<u32>,
    got: Vec<Reply>,
    reply: tokio::sync::oneshot::Sender<Vec<Reply>>,
}

/// A started worker: its record so far, and its outbox.
pub struct Live {
    pub record: WorkerRecord,
    pub to: mpsc::UnboundedSender<ToWorker>,
    pub last_heard: Instant,
    pub snapshot: LiveSnapshot,
    pub pings: BTreeMap<u32, u64>,
    pub clock: ClockOffset,
    /// Whether a second of this worker was refused already (said once).
    pub second_refused: bool,
}

/// Spawns the reader and writer tasks of one worker's connection.
pub fn attach(
    index: u32,
    mut read: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
    events: mpsc::UnboundedSender<Event>,
) -> mpsc::UnboundedSender<ToWorker> {
    let (to, mut rx) = mpsc::unbounded_channel::<ToWorker>();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if wire::write(&mut write, &m).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match wire::read::<ToCoordinator, _>(&mut read).await {
                Ok(m) => {
                    if events.send(Event::Msg(index, Box::new(m))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = events.send(Event::Closed(index, e.to_string()));
                    return;
                }
            }
        }
    });
    to
}

/// Gathers until every worker finished or is lost. `end` is the plan's end on the
/// coordinator's clock (a worker not done well after it is lost); a steered run has
/// `commands` instead (its end is decided while it goes on: only silence loses a worker).
/// Returns the records and whether the run was interrupted.
pub async fn collect(
    mut workers: Vec<Live>,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut interrupts: mpsc::UnboundedReceiver<()>,
    (end, mut commands): (Instant, Option<mpsc::UnboundedReceiver<Command>>),
    live: watch::Sender<LiveSnapshot>,
    merged: watch::Receiver<Option<Percentiles>>,
    mut seconds: Option<Merger>,
) -> (Vec<WorkerRecord>, bool, Option<Merger>) {
    let steered = commands.is_some();
    let mut pending: BTreeMap<u32, Pending> = BTreeMap::new();
    let mut ask_id = 0u32;
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut next_clock = Instant::now() + CLOCK_EVERY;
    let mut ping_id = 1000u32;
    let mut relay = Relay::default();
    let mut relay_tick = tokio::time::interval(RELAY_EVERY);
    relay_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while workers.iter().any(open) {
        answer_due(&workers, &mut pending);
        tokio::select! {
            e = events.recv() => match e {
                Some(Event::Msg(i, m)) => {
                    match *m {
                        ToCoordinator::Second { second } => on_second(&mut workers, i, *second, seconds.as_mut()),
                        ToCoordinator::Publishes { batch } => {
                            if let Some(w) = workers.iter_mut().find(|w| w.record.index == i) {
                                w.last_heard = Instant::now();
                            }
                            relay.on_batch(i, batch);
                        }
                        ToCoordinator::Answer { id, progress, settled, results } => {
                            if let Some(w) = workers.iter_mut().find(|w| w.record.index == i) {
                                w.last_heard = Instant::now();
                            }
                            if let Some(p) = pending.get_mut(&id) && p.waiting.remove(&i) {
                                p.got.push(Reply { index: i, answer: Ok(Answer { progress, settled, results }) });
                            }
                        }
                        m => on_message(&mut workers, i, m, &live, &merged),
                    }
                    export_due(&workers, seconds.as_mut());
                }
                Some(Event::Closed(i, why)) => {
                    on_closed(&mut workers, i, &why);
                    export_due(&workers, seconds.as_mut());
                }
                None => break,
            },
            c = async { commands.as_mut()?.recv().await }, if commands.is_some() => match c {
                Some(Command::Tell(m)) => {
                    for w in workers.iter().filter(|w| open(w)) {
                        let _ = w.to.send(m.clone());
                    }
                }
                Some(Command::Ask { records, settled_through, reply }) => {
                    ask_id = ask_id.wrapping_add(1);
                    let waiting: BTreeSet<u32> = workers.iter().filter(|w| open(w)).map(|w| w.record.index).collect();
                    for w in workers.iter().filter(|w| open(w)) {
                        let _ = w.to.send(ToWorker::Ask { id: ask_id, records, settled_through });
                    }
                    // A worker lost before the question answers with why: the steering
                    // must know its clients are gone.
                    let got = workers.iter().filter_map(|w| Some(Reply { index: w.record.index, answer: Err(w.record.lost.clone()?) })).collect();
                    pending.insert(ask_id, Pending { waiting, got, reply });
                }
                // The steering is done (the run was closed): the workers end on their own.
                None => commands = None,
            },
            i = interrupts.recv(), if !interrupts.is_closed() => {
                if i.is_some() {
                    interrupted = true;
                    eprintln!("swarm: stopping {} worker(s)...", workers.iter().filter(|w| open(w)).count());
                    for w in workers.iter().filter(|w| open(w)) {
                        let _ = w.to.send(ToWorker::Stop);
                    }
                }
            },
            _ = relay_tick.tick(), if relay.active => relay.flush(&workers),
            _ = tick.tick() => {
                let now = Instant::now();
                export_due(&workers, seconds.as_mut());
                let late = !steered && now > end + SILENT_LIMIT * 2;
                for w in workers.iter_mut().filter(|w| open(w)) {
                    if now.duration_since(w.last_heard) > SILENT_LIMIT {
                        lose(w, format!("sent nothing for {} s", SILENT_LIMIT.as_secs()));
                    } else if late && !interrupted {
                        lose(w, "not finished long after the plan's end".into());
                    }
                }
                if now >= next_clock {
                    next_clock = now + CLOCK_EVERY;
                    ping_id = ping_id.wrapping_add(1);
                    for w in workers.iter_mut().filter(|w| open(w)) {
                        let t0 = wire::unix_ns();
                        w.pings.insert(ping_id, t0);
                        let _ = w.to.send(ToWorker::Ping { id: ping_id, coordinator_ns: t0 });
                    }
                }
            }
        }
    }
    answer_due(&workers, &mut pending);
    for w in &workers {
        let _ = w.to.send(ToWorker::Bye);
    }
    let records = workers
        .into_iter()
        .map(|mut w| {
            w.record.clock_offset_ns = w.clock.offset_ns;
            w.record.clock_bound_ns = w.clock.bound_ns;
            w.record
        })
        .collect();
    (records, interrupted, seconds.map(Merger::finish))
}

/// A split run's publish batches (scenario/broadcast/relay.rs), gathered between flushes.
#[derive(Default)]
struct Relay {
    /// Some worker sent a batch: the run is split.
    active: bool,
    outbox: Vec<(u32, crate::scenario::broadcast::relay::Batch)>,
    /// Lost workers the others were told of.
    told_gone: BTreeSet<u32>,
}

impl Relay {
    fn on_batch(&mut self, from: u32, batch: crate::scenario::broadcast::relay::Batch) {
        self.active = true;
        self.outbox.push((from, batch));
    }

    /// Passes every gathered batch on to every open worker but its own, moved to that
    /// worker's clock when the two are on different hosts; a lost worker is passed on as
    /// done (its last mark final), so that nobody waits for it.
    fn flush(&mut self, workers: &[Live]) {
        for w in workers.iter().filter(|w| w.record.lost.is_some()) {
            if self.told_gone.insert(w.record.index) {
                self.outbox.push((
                    w.record.index,
                    crate::scenario::broadcast::relay::Batch {
                        mark_ns: u64::MAX,
                        ..Default::default()
                    },
                ));
            }
        }
        if self.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.outbox);
        for to in workers.iter().filter(|w| open(w)) {
            // Another host's clock read on this worker's: add the difference of the two
            // offsets (each worker's clock minus the coordinator's).
            let shift = |from: u32| match workers.iter().find(|w| w.record.index == from) {
                Some(s) if s.record.host != to.record.host => (
                    to.clock.offset_ns.saturating_sub(s.clock.offset_ns),
                    to.clock.bound_ns.saturating_add(s.clock.bound_ns),
                ),
                _ => (0, 0),
            };
            let batches: Vec<_> = outbox
                .iter()
                .filter(|(from, _)| *from != to.record.index)
                .map(|(from, b)| (*from, b.clone().shifted(shift(*from).0)))
                .collect();
            if !batches.is_empty() {
                let shifts = workers
                    .iter()
                    .map(|w| {
                        let (s, b) = shift(w.record.index);
                        (w.record.index, s, b)
                    })
                    .filter(|&(_, s, b)| s != 0 || b != 0)
                    .collect();
                let _ = to.to.send(ToWorker::Publishes { batches, shifts });
            }
        }
    }
}

/// Sends the answers of every question that has them all: a worker that finished or was
/// lost meanwhile answers with why it has none.
fn answer_due(workers: &[Live], pending: &mut BTreeMap<u32, Pending>) {
    let done: Vec<u32> = pending
        .iter_mut()
        .filter_map(|(id, p)| {
            let gone: Vec<u32> = p
                .waiting
                .iter()
                .copied()
                .filter(|i| !workers.iter().any(|w| w.record.index == *i && open(w)))
                .collect();
            for i in gone {
                p.waiting.remove(&i);
                let why = workers
                    .iter()
                    .find(|w| w.record.index == i)
                    .and_then(|w| w.record.lost.clone())
                    .unwrap_or_else(|| "it finished".into());
                p.got.push(Reply {
                    index: i,
                    answer: Err(why),
                });
            }
            p.waiting.is_empty().then_some(*id)
        })
        .collect();
    for id in done {
        if let Some(mut p) = pending.remove(&id) {
            p.got.sort_by_key(|r| r.index);
            let _ = p.reply.send(p.got);
        }
    }
}

/// A worker's closed second, for the live outputs (ignored when none runs). A refused one
/// is said once per worker and counted; the worker goes on.
fn on_second(workers: &mut [Live], i: u32, second: WireSecond, merger: Option<&mut Merger>) {
    let Some(w) = workers.iter_mut().find(|w| w.record.index == i) else {
        return;
    };
    w.last_heard = Instant::now();
    let Some(m) = merger else { return };
    if w.record.finished {
        return;
    }
    if let Err(why) = m.add(i, second)
        && !w.second_refused
    {
        w.second_refused = true;
        eprintln!(
            "swarm: worker {}: a second for the live outputs was refused: {why}",
            w.record.index
        );
    }
}

/// Exports the seconds every running worker has sent (or that waited long enough).
fn export_due(workers: &[Live], merger: Option<&mut Merger>) {
    if let Some(m) = merger {
        let running = workers
            .iter()
            .filter(|w| open(w))
            .map(|w| w.record.index)
            .collect();
        m.export_due(&running, Instant::now());
    }
}

fn open(w: &Live) -> bool {
    !w.record.finished && w.record.lost.is_none()
}

fn lose(w: &mut Live, why: String) {
    if w.record.lost.is_none() && !w.record.finished {
        eprintln!(
            "swarm: worker {} (pid {} on {}) lost: {why}; the other workers go on",
            w.record.index, w.record.pid, w.record.host
        );
        w.record.lost = Some(why);
    }
}

fn on_closed(workers: &mut [Live], i: u32, why: &str) {
    if let Some(w) = workers.iter_mut().find(|w| w.record.index == i) {
        lose(w, format!("its control connection ended: {why}"));
    }
}

fn on_message(
    workers: &mut [Live],
    i: u32,
    m: ToCoordinator,
    live: &watch::Sender<LiveSnapshot>,
    merged: &watch::Receiver<Option<Percentiles>>,
) {
    let Some(w) = workers.iter_mut().find(|w| w.record.index == i) else {
        return;
    };
    w.last_heard = Instant::now();
    if w.record.finished {
        return;
    }
    match m {
        ToCoordinator::Live { snapshot } => {
            w.snapshot = snapshot;
            let mut s = sum(workers);
            // The echo latency percentiles of the latest merged second, once there is one
            // (before: the highest of the workers' own).
            if let Some((p50, p99)) = *merged.borrow() {
                s.p50_us = p50;
                s.p99_us = p99;
            }
            let _ = live.send(s);
        }
        ToCoordinator::Intervals { lines } => w.record.hlog.push_str(&lines),
        ToCoordinator::Checkpoint { results } => w.record.results = Some(results),
        ToCoordinator::Final {
            results,
            lines,
            cpu_seconds,
            peak_rss_bytes,
        } => {
            w.record.hlog.push_str(&lines);
            w.record.results = Some(results);
            w.record.finished = true;
            w.record.cpu_seconds = cpu_seconds;
            w.record.peak_rss_bytes = peak_rss_bytes;
        }
        ToCoordinator::Failed { why } => lose(w, format!("it failed: {why}")),
        ToCoordinator::Pong { id, worker_ns } => {
            if let Some(t0) = w.pings.remove(&id) {
                let e = ClockOffset::from_exchange(t0, worker_ns, wire::unix_ns());
                // The latest estimate unless it is much looser than the one we have.
                if e.bound_ns <= w.clock.bound_ns.saturating_mul(4).max(1_000_000) {
                    w.clock = e;
                }
            }
        }
        ToCoordinator::Hello { .. }
        | ToCoordinator::Ready
        | ToCoordinator::Second { .. }
        | ToCoordinator::Publishes { .. }
        | ToCoordinator::Answer { .. } => {}
    }
}

/// The workers' live figures added (latency percentiles: the worst worker's, a bound; the
/// results file has the exact ones).
/// Echo `latency` p50 and p99 of one merged second (cluster/live.rs).
pub type Percentiles = (Option<u64>, Option<u64>);

fn sum(workers: &[Live]) -> LiveSnapshot {
    let mut s = LiveSnapshot::default();
    for w in workers {
        let x = &w.snapshot;
        s.elapsed = s.elapsed.max(x.elapsed);
        s.connected += x.connected;
        s.attempted += x.attempted;
        s.failed += x.failed;
        s.sent_per_s += x.sent_per_s;
        s.received_per_s += x.received_per_s;
        s.p50_us = s.p50_us.max(x.p50_us);
        s.p99_us = s.p99_us.max(x.p99_us);
        s.errors += x.errors;
        s.timeouts += x.timeouts;
        s.delivered_per_s += x.delivered_per_s;
    }
    s.workers = Some((
        workers.iter().filter(|w| w.record.lost.is_none()).count() as u32,
        workers.len() as u32,
    ));
    s
}
