//! The recorder: the one aggregator of everything the drivers observed.
//!
//! Receives [`Sample`]s on an unbounded channel (drained in batches with `recv_many`) and
//! health readings from the monitor it starts ([`crate::health`]). Emits a
//! [`LiveSnapshot`] on a watch channel at each interval, interval histograms to
//! `histograms.hlog`, and at the end a [`Recorded`] that becomes the run file.
//! Must not: touch the network, allocate or format per sample, or lose a sample: `finish`
//! returns only after every sender is gone and the channel is empty.

mod aggregate;
mod hlog;
mod recorded;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

pub use crate::metric::{METRICS, Metric};
pub use hlog::HlogWriter;
pub use recorded::{PhaseProgress, Progress, Recorded};

use crate::health::{self, HealthRx};
use crate::sample::{SAMPLE_CHANNEL_CAPACITY, Sample, SampleRx, SampleTx};
use aggregate::Aggregator;

/// The stretch at the start of a run in which checkpoints come at their base period.
const EARLY_CHECKPOINTS: Duration = Duration::from_secs(10);

/// Largest batch taken from the channel at once.
const BATCH: usize = 4096;

/// A plan phase, as the recorder names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseInfo {
    pub name: String,
    pub scenario: String,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The plan phases, indexed by `Sample::phase`.
    pub phases: Vec<PhaseInfo>,
    /// Where to write the interval log; `None` writes none.
    pub hlog_path: Option<PathBuf>,
    /// Length of one series point / interval histogram (1 s).
    pub interval: Duration,
}

/// The live view's figures, updated at every interval (workers send them to their
/// coordinator: shard/wire.rs).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveSnapshot {
    pub elapsed: Duration,
    pub connected: u64,
    pub attempted: u64,
    pub failed: u64,
    pub sent_per_s: f64,
    pub received_per_s: f64,
    /// echo `latency` percentiles of the last interval.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub errors: u64,
    pub timeouts: u64,
    /// Broadcast first arrivals per second in the last interval.
    pub delivered_per_s: f64,
    /// A coordinator's merged view: workers up, of all (cluster/collect.rs).
    #[serde(default)]
    pub workers: Option<(u32, u32)>,
}

/// The running recorder.
pub struct RecorderHandle {
    pub live: watch::Receiver<LiveSnapshot>,
    task: tokio::task::JoinHandle<Recorded>,
    health: Option<tokio::task::JoinHandle<()>>,
}

impl RecorderHandle {
    /// Waits until every [`SampleTx`] clone is dropped and all samples are drained, then
    /// returns everything recorded.
    pub async fn finish(self) -> Recorded {
        let recorded = match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("recorder task failed: {e}");
                Recorded::empty()
            }
        };
        if let Some(h) = self.health {
            h.abort();
        }
        recorded
    }
}

/// Starts the recorder and the swarm health monitor on the current runtime.
pub fn spawn(config: RecorderConfig) -> (SampleTx, RecorderHandle) {
    let (htx, hrx) = mpsc::unbounded_channel();
    let monitor = health::spawn(config.interval, htx);
    let (tx, mut handle) = spawn_with_health(config, Some(hrx));
    handle.health = Some(monitor);
    (tx, handle)
}

/// Checkpoints of a running recorder: every `every` in the run's first 10 s, then every
/// `later`, when the previous one has been taken (the channel holds one), the records so far
/// are sent on `tx`. Building one happens in the recorder task at an interval boundary (no
/// per-sample cost); writing it is the receiver's.
#[derive(Debug)]
pub struct Checkpoints {
    pub every: Duration,
    pub later: Duration,
    pub tx: mpsc::Sender<Recorded>,
    /// Records so far, on request (a steered run judges each step's window while the run
    /// goes on: capacity/kept.rs). Every sample queued before the request is in them.
    pub on_demand: Option<mpsc::Receiver<Ask>>,
}

/// A request for the records so far ([`Checkpoints::on_demand`]).
#[derive(Debug)]
pub enum Ask {
    /// The counts a judge polls ([`Progress`]): no histogram is encoded, so it can be asked
    /// for often.
    Progress(tokio::sync::oneshot::Sender<Progress>),
    /// Everything ([`Recorded`]): every histogram of the run so far is encoded, on a
    /// thread the runtime's other tasks are moved off ([`off_the_runtime`]).
    Records(tokio::sync::oneshot::Sender<Recorded>),
}

/// Runs `build` (the recorder encoding a whole run's histograms, a capacity step's
/// judgement decoding and merging them: milliseconds that grow with the run) so that the
/// runtime's other tasks do not wait for it: on a multi-thread runtime in
/// `block_in_place`, which hands this worker's queued tasks (the health probe, the
/// clients' sends) to another thread first; inline on a current-thread runtime (the unit
/// tests), which has no other thread.
pub fn off_the_runtime<T>(build: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(build),
        _ => build(),
    }
}

/// [`spawn`], plus [`Checkpoints`] of the records so far while the run goes on.
pub fn spawn_checkpointed(
    config: RecorderConfig,
    checkpoints: Checkpoints,
) -> (SampleTx, RecorderHandle) {
    spawn_live(config, checkpoints, None)
}

/// [`spawn_checkpointed`], sending every closed interval to `seconds` too (the live outputs).
pub fn spawn_live(
    config: RecorderConfig,
    checkpoints: Checkpoints,
    seconds: Option<LiveSeconds>,
) -> (SampleTx, RecorderHandle) {
    let (htx, hrx) = mpsc::unbounded_channel();
    let monitor = health::spawn(config.interval, htx);
    let (tx, mut handle) = start(
        config,
        Some(hrx),
        Some(checkpoints),
        SAMPLE_CHANNEL_CAPACITY,
        seconds,
    );
    handle.health = Some(monitor);
    (tx, handle)
}

/// Starts the recorder with health readings from `health` (tests feed crafted ones; `None`
/// records no health).
pub fn spawn_with_health(
    config: RecorderConfig,
    health: Option<HealthRx>,
) -> (SampleTx, RecorderHandle) {
    start(config, health, None, SAMPLE_CHANNEL_CAPACITY, None)
}

/// [`spawn_with_health`] with a sample channel of `capacity` samples (tests overflow it).
pub fn spawn_with_capacity(
    config: RecorderConfig,
    health: Option<HealthRx>,
    capacity: usize,
) -> (SampleTx, RecorderHandle) {
    start(config, health, None, capacity, None)
}

fn start(
    config: RecorderConfig,
    health: Option<HealthRx>,
    checkpoints: Option<Checkpoints>,
    capacity: usize,
    seconds: Option<LiveSeconds>,
) -> (SampleTx, RecorderHandle) {
    let (tx, rx, dropped) = crate::sample::sample_channel(capacity);
    let (live_tx, live) = watch::channel(LiveSnapshot::default());
    let task = tokio::spawn(run(
        config,
        now(),
        SystemTime::now(),
        Intake { rx, dropped },
        health,
        Feeds {
            live: live_tx,
            checkpoints,
            seconds,
        },
    ));
    (
        tx,
        RecorderHandle {
            live,
            task,
            health: None,
        },
    )
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

struct State {
    agg: Aggregator,
    hlog: Option<HlogWriter>,
    hlog_error: Option<String>,
    live: watch::Sender<LiveSnapshot>,
    /// The live outputs' feed: one record per closed interval (harness/src/live/).
    seconds: Option<LiveSeconds>,
}

impl State {
    /// The records so far (a checkpoint, or a steered run's judgement), built off the
    /// runtime ([`off_the_runtime`]).
    fn so_far(&self, phases: &[PhaseInfo], started_at: SystemTime) -> Recorded {
        off_the_runtime(|| {
            Recorded::from_aggregator(
                &self.agg,
                phases,
                started_at,
                SystemTime::now(),
                self.hlog_error.clone(),
            )
        })
    }

    /// Closes intervals up to (not including) `upto`; `end` is where the last one stops.
    fn close_until(&mut self, upto: u64, end: Option<std::time::Instant>) {
        while self.agg.open_interval < upto {
            let interval = self.agg.interval;
            let length = match end {
                Some(e) => {
                    let offset = interval
                        .saturating_mul(u32::try_from(self.agg.open_interval).unwrap_or(u32::MAX));
                    e.saturating_duration_since(self.agg.start)
                        .saturating_sub(offset)
                        .min(interval)
                }
                None => interval,
            };
            let (hlog, err) = (&mut self.hlog, &mut self.hlog_error);
            let mut windows = crate::live::Windows::default();
            let point = self
                .agg
                .close_interval(length, |m, h, offset, len| {
                    windows.take(m, h);
                    if let Some(w) = hlog.as_mut()
                        && let Err(e) = w.write(m.tag(), h, offset, len)
                    {
                        tracing::warn!("histograms.hlog disabled: {e}");
                        *err = Some(e.to_string());
                        *hlog = None;
                    }
                })
                .clone();
            let secs = length.as_secs_f64().max(1e-3);
            let t = &self.agg.totals;
            let snapshot = LiveSnapshot {
                elapsed: interval
                    .saturating_mul(u32::try_from(point.second + 1).unwrap_or(u32::MAX)),
                connected: point.connected,
                attempted: t.attempted,
                failed: t.failed,
                sent_per_s: point.sent as f64 / secs,
                received_per_s: point.received as f64 / secs,
                p50_us: point.latency_p50_us,
                p99_us: point.latency_p99_us,
                errors: t.errors,
                timeouts: t.timeouts,
                delivered_per_s: point.delivered as f64 / secs,
                workers: None,
            };
            self.live.send_replace(snapshot);
            if let Some(tx) = &self.seconds {
                let _ = tx.send(live_second(&self.agg, point, windows));
            }
        }
        if let Some(w) = self.hlog.as_mut()
            && let Err(e) = w.flush()
        {
            tracing::warn!("histograms.hlog disabled: {e}");
            self.hlog_error = Some(e.to_string());
            self.hlog = None;
        }
    }

    fn record_batch(&mut self, batch: &mut Vec<Sample>) {
        let now_interval = self.agg.interval_of(now());
        for s in batch.drain(..) {
            // A sample closes the intervals before its own, but never past the clock.
            let idx = self.agg.interval_of(s.at).min(now_interval);
            if idx > self.agg.open_interval {
                self.close_until(idx, None);
            }
            self.agg.record(&s);
        }
        if now_interval > self.agg.open_interval {
            self.close_until(now_interval, None);
        }
    }
}

/// Where the recorder sends each closed interval for the live outputs.
pub type LiveSeconds = mpsc::UnboundedSender<crate::live::LiveSecond>;

/// The live record of the interval just closed: its series point (the same value that
/// goes to results.json's `series`), its latency windows and the run's counters so far.
fn live_second(
    agg: &Aggregator,
    point: reports::SecondPoint,
    windows: crate::live::Windows,
) -> crate::live::LiveSecond {
    let t = &agg.totals;
    let mut failed: std::collections::BTreeMap<String, u64> = Default::default();
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    let mut disconnects: std::collections::BTreeMap<String, u64> = Default::default();
    for ph in &agg.phases {
        for (k, v) in &ph.failed_by_kind {
            *failed.entry(k.key()).or_default() += v;
        }
        for (k, v) in &ph.errors {
            *errors.entry(k.key()).or_default() += v;
        }
        for (k, v) in &ph.disconnects {
            *disconnects.entry(k.key()).or_default() += v;
        }
    }
    crate::live::LiveSecond {
        point,
        windows,
        totals: crate::live::Totals {
            attempted: t.attempted,
            connected: t.connected,
            failed: t.failed,
            sent: t.sent,
            received: t.received,
            timeouts: t.timeouts,
            late: t.late,
            unanswered: t.unanswered,
            errors: t.errors,
            disconnects: t.disconnects,
            delivered: t.fan.delivered_arrivals,
            broadcast_lost: t.fan.lost,
            connections_lost: t.lost,
            restored: t.restored,
        },
        failed_by_kind: failed,
        errors_by_kind: errors,
        disconnects_by_reason: disconnects,
    }
}

/// What the recorder feeds while it runs: the live view, checkpoints, the live outputs.
struct Feeds {
    live: watch::Sender<LiveSnapshot>,
    checkpoints: Option<Checkpoints>,
    seconds: Option<LiveSeconds>,
}

/// The sample channel's receiving end and its overflow counter.
struct Intake {
    rx: SampleRx,
    dropped: Arc<AtomicU64>,
}

/// The interval log's writer, or why there is none (an unwritable path is reported in the
/// run file, not fatal).
fn open_hlog(
    config: &RecorderConfig,
    started_at: SystemTime,
) -> (Option<HlogWriter>, Option<String>) {
    match &config.hlog_path {
        None => (None, None),
        Some(p) => match HlogWriter::create(p, started_at) {
            Ok(w) => (Some(w), None),
            Err(e) => {
                tracing::warn!("cannot create {}: {e}", p.display());
                (None, Some(format!("{}: {e}", p.display())))
            }
        },
    }
}

/// A checkpoint is due `every` after the last one in the run's first 10 s, `later` after
/// that, and only when the writer has room for it.
fn checkpoint_due(c: &Checkpoints, start: std::time::Instant, last: std::time::Instant) -> bool {
    let period = if now().saturating_duration_since(start) < EARLY_CHECKPOINTS {
        c.every
    } else {
        c.later
    };
    now().saturating_duration_since(last) >= period && c.tx.capacity() > 0
}

async fn run(
    config: RecorderConfig,
    start: std::time::Instant,
    started_at: SystemTime,
    Intake { mut rx, dropped }: Intake,
    mut health: Option<HealthRx>,
    Feeds {
        live,
        checkpoints,
        seconds,
    }: Feeds,
) -> Recorded {
    let interval = if config.interval.is_zero() {
        Duration::from_secs(1)
    } else {
        config.interval
    };
    let (hlog, hlog_error) = open_hlog(&config, started_at);
    let mut st = State {
        agg: Aggregator::new(start, config.phases.len(), interval),
        hlog,
        hlog_error,
        live,
        seconds,
    };
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::from_std(start) + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<Sample> = Vec::with_capacity(BATCH);
    let mut last_checkpoint = start;
    let mut checkpoints = checkpoints;
    let mut on_demand = checkpoints.as_mut().and_then(|c| c.on_demand.take());
    loop {
        tokio::select! {
            asked = async { on_demand.as_mut()?.recv().await }, if on_demand.is_some() => {
                let Some(ask) = asked else {
                    on_demand = None;
                    continue;
                };
                while let Ok(s) = rx.try_recv() {
                    batch.push(s);
                    if batch.len() >= BATCH {
                        st.record_batch(&mut batch);
                    }
                }
                st.record_batch(&mut batch);
                st.agg.samples_dropped = dropped.load(Relaxed);
                match ask {
                    Ask::Progress(reply) => {
                        let _ = reply.send(Progress::from_aggregator(&st.agg));
                    }
                    Ask::Records(reply) => {
                        let _ = reply.send(st.so_far(&config.phases, started_at));
                    }
                }
            }
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                st.record_batch(&mut batch);
            }
            _ = ticker.tick() => {
                // Take what is already queued first, so the interval closes with it.
                while let Ok(s) = rx.try_recv() {
                    batch.push(s);
                    if batch.len() >= BATCH {
                        st.record_batch(&mut batch);
                    }
                }
                st.record_batch(&mut batch);
                // `every` in the run's first 10 s (a run killed early still leaves its first
                // seconds), then `every` x 15: a checkpoint builds the whole run's sections in
                // this task, which a saturated swarm feels (measured in the closing note of
                // stop 9: every 2 s throughout moved the default run's echo p50 1.3 -> 4.3 ms).
                if let Some(c) = &checkpoints
                    && checkpoint_due(c, start, last_checkpoint)
                {
                    last_checkpoint = now();
                    st.agg.samples_dropped = dropped.load(Relaxed);
                    let _ = c.tx.try_send(st.so_far(&config.phases, started_at));
                }
            }
            reading = async { health.as_mut()?.recv().await }, if health.is_some() => {
                match reading {
                    Some(r) => st.agg.record_health(r),
                    None => health = None,
                }
            }
        }
    }
    // Every sender is gone: no more checkpoints (the writer sees its channel close), then
    // close the last, partial interval.
    drop(checkpoints);
    st.agg.samples_dropped = dropped.load(Relaxed);
    let end = now();
    st.close_until(st.agg.interval_of(end) + 1, Some(end));
    if let Some(h) = health.as_mut() {
        while let Ok(r) = h.try_recv() {
            st.agg.record_health(r);
        }
    }
    Recorded::from_aggregator(
        &st.agg,
        &config.phases,
        started_at,
        SystemTime::now(),
        st.hlog_error,
    )
}

#[cfg(test)]
mod tests;
