//! The clients stage: the recorder (with its checkpoints), the schedule on the clock, the
//! broadcast board, the live progress line, and the swarm of clients until the plan ends or
//! an interrupt stops it.
//!
//! Receives the validated [`Plan`], the [`Resolved`] target, the run id, the output folder
//! and the metadata of the `running` checkpoints. Emits what was recorded ([`Ran`]), once
//! every client, the recorder, the last checkpoint and the progress line are done.
//! Must not: write the final results file (outputs does).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Sharding;
use super::outputs::{
    CHECKPOINT_EVERY, CHECKPOINT_LATER, Ran, WORKER_CHECKPOINT_LATER, write_checkpoints,
};
use super::target::Resolved;
use crate::driver::{self, Ctx, WallClock};
use crate::plan::Plan;
use crate::recorder::{self, PhaseInfo, RecorderConfig};
use crate::scenario::broadcast::relay::{Batch, Pump, Relay};
use crate::scenario::broadcast::{Layout, PublishLog};
use crate::schedule::Schedule;

/// Runs the plan's clients against `target` and records them.
pub(super) async fn run(
    plan: &Plan,
    target: &Resolved,
    run_id: u32,
    out_dir: &Path,
    checkpoint_meta: reports::RunMeta,
    Control {
        interrupts,
        sharding,
        live,
        mut steered,
    }: Control,
) -> Ran {
    // A worker's recorder starts as a one-process run's does, 50 ms before the schedule:
    // every worker's seconds then cover the same wall-clock seconds, and merge exactly.
    if let Some(s) = &sharding {
        let at = start_instant(s.start).checked_sub(Duration::from_millis(50));
        if let Some(at) = at.filter(|at| *at > Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }
    let phases = plan.phases.iter().map(|p| PhaseInfo {
        name: p.name.clone(),
        scenario: p.scenario.name().to_string(),
    });
    // Checkpoints: results.json with status `running`, written atomically every 2 s, then
    // 30 s (a worker: 5 s, each one also sent to the coordinator), off the recorder's task,
    // so a swarm killed mid-run (SIGKILL, OOM) leaves a readable file with the seconds so
    // far (docs/results-format.md, "status").
    let (ck_tx, ck_rx) = mpsc::channel(1);
    let (hub, seconds) = live.map_or((None, None), |l| (Some(l.hub), Some(l.seconds)));
    // A worker exports nothing itself: its seconds go to the coordinator instead.
    let seconds = seconds.or_else(|| sharding.as_ref().and_then(|s| s.seconds.clone()));
    let (tx, recorder) = recorder::spawn_live(
        RecorderConfig {
            phases: phases.collect(),
            hlog_path: Some(out_dir.join("histograms.hlog")),
            interval: Duration::from_secs(1),
        },
        recorder::Checkpoints {
            every: CHECKPOINT_EVERY,
            later: if sharding.is_some() {
                WORKER_CHECKPOINT_LATER
            } else {
                CHECKPOINT_LATER
            },
            tx: ck_tx,
            on_demand: steered.as_mut().and_then(|k| k.snapshots.take()),
        },
        seconds,
    );
    let started_meta = checkpoint_meta.clone();
    let checkpointer = tokio::spawn(write_checkpoints(
        ck_rx,
        checkpoint_meta,
        out_dir.join("results.json"),
    ));
    let (seed, start) = match &sharding {
        Some(s) => (s.seed, start_instant(s.start)),
        None => (rand::random(), Instant::now() + Duration::from_millis(50)),
    };
    let steer = steered.as_ref().map(|k| (k.steer.clone(), k.first));
    let relay = sharding.as_ref().and_then(|s| s.relay.clone());
    let ctx = Arc::new(context(
        plan,
        target,
        run_id,
        seed,
        start,
        steer,
        relay.as_ref().map(|r| r.0.clone()),
    ));
    if let Some(tell) = steered.as_mut().and_then(|k| k.started.take()) {
        let _ = tell.send((start, started_meta));
    }
    // A split run: this worker's publishers' batches, every few tens of milliseconds.
    let pump_stop = CancellationToken::new();
    let pump = match (&sharding, relay) {
        (Some(s), Some((relay, out))) => {
            let owned = (0..ctx.board.layout.max_publishers())
                .filter(|&p| s.owners.owner(p) == s.shard.index)
                .collect();
            let state = Pump::new(owned, ctx.board.layout.phases(), ctx.board.slots());
            Some(tokio::spawn(pump_batches(
                ctx.clone(),
                relay,
                state,
                out,
                pump_stop.clone(),
            )))
        }
        _ => None,
    };
    let shard = sharding.map(|s| {
        tokio::spawn(forward_live(recorder.live.clone(), s.live));
        (s.owners, s.shard)
    });
    let progress_stop = CancellationToken::new();
    let progress = crate::progress::enabled(plan.output.quiet).then(|| {
        tokio::spawn(crate::progress::show(
            recorder.live.clone(),
            plan.total(),
            plan.max_clients(),
            progress_stop.clone(),
        ))
    });
    let outcome = crate::swarm::run(ctx.clone(), tx, interrupts, shard).await;
    // Every client is done: no publisher of this worker commits again.
    pump_stop.cancel();
    if let Some(p) = pump {
        let _ = p.await;
    }
    let recorded = recorder.finish().await;
    // The recorder's last second is closed and its feed dropped: the hub ends with it.
    let (live, linger) = match hub {
        Some(h) => {
            let (o, l) = h.finish().await;
            (Some(o), Some(l))
        }
        None => (None, None),
    };
    // The last checkpoint is on disk (or abandoned) before the final file replaces it.
    let _ = checkpointer.await;
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let aborted = live.as_ref().is_some_and(|l| l.abort.is_some());
    Ran {
        recorded,
        // An abort stops the run through the interrupt channel; it is not a signal.
        interrupted: outcome.interrupted && !aborted,
        live,
        linger,
    }
}

/// What steers the clients besides the plan: the interrupts (the user's, and an abort's),
/// a worker's shard, the live outputs.
pub(super) struct Control {
    pub interrupts: mpsc::UnboundedReceiver<()>,
    pub sharding: Option<Sharding>,
    pub live: Option<LiveStart>,
    pub steered: Option<super::Steered>,
}

/// The live outputs of a run, started before its clients (run/mod.rs).
pub(super) struct LiveStart {
    pub hub: crate::live::Hub,
    pub seconds: recorder::LiveSeconds,
}

/// The instant on this process's monotonic clock of `at` on its wall clock (now, if past).
pub fn start_instant(at: SystemTime) -> Instant {
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

/// How often a split run's worker sends its publishers' batch.
const PUMP_EVERY: Duration = Duration::from_millis(20);
/// How often it sends a batch that carries only its mark (its publishers did nothing).
const IDLE_MARK_EVERY: Duration = Duration::from_millis(100);

/// A split run's pump: this worker's publishers' commits, cuts, void seqs and joins, as a
/// batch to its own relay and to the coordinator, every [`PUMP_EVERY`] (a batch with only
/// its mark, every [`IDLE_MARK_EVERY`]); once `stop` is cancelled (every client is done),
/// a last batch whose mark is final.
async fn pump_batches(
    ctx: Arc<Ctx>,
    relay: Arc<Relay>,
    mut state: Pump,
    out: mpsc::UnboundedSender<Batch>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(PUMP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = Instant::now();
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            () = stop.cancelled() => true,
        };
        let now = ctx.wall.ns(Instant::now());
        let mut batch = ctx.board.pump(&mut state, now);
        if last {
            batch.mark_ns = u64::MAX;
        }
        if let Err(e) = relay.apply(relay.me(), &batch) {
            eprintln!("swarm: this worker's own publish batch was refused: {e}");
        }
        // A batch with nothing but its mark goes out every IDLE_MARK_EVERY only: the
        // other workers' tallies wait that much longer at most, and a quiet worker costs
        // the coordinator little.
        if batch.is_empty() && !last && sent.elapsed() < IDLE_MARK_EVERY {
            continue;
        }
        sent = Instant::now();
        let _ = out.send(batch);
        if last {
            return;
        }
    }
}

/// Sends each live snapshot of the recorder to a worker's coordinator link, until either
/// side closes.
async fn forward_live(
    mut live: tokio::sync::watch::Receiver<recorder::LiveSnapshot>,
    to: mpsc::UnboundedSender<recorder::LiveSnapshot>,
) {
    while live.changed().await.is_ok() {
        let s = live.borrow_and_update().clone();
        if to.send(s).is_err() {
            return;
        }
    }
}

/// A steered run's decided phases, as the broadcast board reads them.
struct Decisions {
    schedule: Schedule,
    wall: WallClock,
}

impl crate::scenario::broadcast::board::Decided for Decisions {
    fn decided(&self) -> (u16, bool) {
        let n = u16::try_from(self.schedule.decided()).unwrap_or(u16::MAX);
        (n, !self.schedule.is_closed())
    }

    fn phase(&self, p: u16) -> (u32, u64, u64) {
        let w = self.schedule.window(p);
        (w.clients, self.wall.ns(w.start), self.wall.ns(w.end))
    }

    fn started_by(&self, wall_ns: u64) -> Option<u16> {
        let n = self
            .schedule
            .count_while(|w| self.wall.ns(w.start) <= wall_ns);
        n.checked_sub(1).map(|k| k as u16)
    }
}

/// What every client shares: the schedule (starting at `start`), the broadcast board, the
/// connection settings, the frames, the run's ids, seed and clocks.
fn context(
    plan: &Plan,
    target: &Resolved,
    run_id: u32,
    seed: u64,
    start: Instant,
    steer: Option<(Arc<crate::schedule::Steer>, usize)>,
    relay: Option<Arc<Relay>>,
) -> Ctx {
    let steered = steer.is_some();
    let schedule = match steer {
        Some((steer, first)) => Schedule::steered(plan, start, steer, first),
        None => Schedule::new(plan, start),
    };
    let wall = WallClock::now();
    let mut board = PublishLog::new(
        Layout::new(plan),
        schedule.starts().into_iter().map(|s| wall.ns(s)).collect(),
        wall.ns(schedule.end()),
    );
    if let Some(relay) = relay {
        board = board.relayed(relay);
    }
    if steered {
        // A steered run's rooms hold the subscribers of the clients it decided (a
        // subscriber-count search adds and lets go of them): the room size classes and
        // the publishers' wait for a full room follow them; the server publisher's ticks
        // are counted in the windows as decided.
        board = board.steered(Decisions {
            schedule: schedule.clone(),
            wall,
        });
    }
    Ctx {
        schedule,
        board,
        dialer: target.dialer(plan),
        frames: driver::session::FrameTemplates::new(plan, &target.endpoint),
        run_id,
        seed,
        wall,
        cancel: CancellationToken::new(),
        plan: plan.clone(),
    }
}
