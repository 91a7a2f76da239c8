//! A search that keeps its clients: every step is a pair of phases (`warmup_NN`,
//! `measure_NN`) of ONE run, decided while the run goes on. In an echo rate search the
//! clients connect once and each step only changes their send rate; in an echo
//! client-count search each step adds clients (connecting over the warm-up, at the connect
//! rate) or lets the ones above its count go, and the others stay connected; in a
//! broadcast publish-rate search each step changes the publishers' rate, and in a
//! subscriber-count search it adds subscribers (to the same rooms) or lets the last ones
//! go while the publishers stay. A connect search's step connects the clients from the
//! highest count that held up to its own (its connects are what it measures): after a
//! failed step, the clients above that count close and those of the next step connect
//! again.
//!
//! Receives the search's request and checks, the first load, the output folder. Emits,
//! per step, a [`Done`] judged on the step's measured phase from the records so far (the
//! recorder answers on request, `run::Steered`; a broadcast step's subscribers give their
//! tallies of it when asked, `Steer::settle`), and at the end the run file of the whole
//! search (every step's phases, the steps not taken trimmed).
//! Must not: measure anything itself, or let a step's clients reconnect.
//!
//! Applies to `--scenario echo --vary rate|clients`, `--scenario broadcast --vary
//! publish-rate|clients` ([`applies`] says which subscriber-count searches) and
//! `--scenario connect`, on one process or over workers (`--procs N`, `--expect-workers
//! N`): then the one
//! run is the coordinator's (cluster/coordinator.rs `run_steered`), each worker runs its
//! shard of it, this module decides on its own copy of the schedule and the coordinator
//! passes every decision on (the same decisions in every worker, on the common start), and
//! a step is judged on the workers' records merged, each worker's own judged for
//! saturation as a step run's are (step.rs `judge_worker_files`). Between
//! steps the clients wait, connected and idle, while the step just measured drains and is
//! judged, and after an overloaded step until the server is quiet
//! (docs/results-format.md#capacity).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reports::{RunFile, RunMeta};
use tokio::sync::{mpsc, oneshot};

use super::step::{self, Baseline, Done};
use super::{CapacityError, Checked, Request, Vary};
use crate::cluster::collect::{Command, Reply};
use crate::cluster::wire::ToWorker;
use crate::plan::{Plan, Scenario};
use crate::recorder::{Ask, PhaseProgress, Progress};
use crate::schedule::{Decision, Steer, SteerError, Window};

/// Names of step `k`'s phases.
pub fn warmup_name(k: u32) -> String {
    format!("warmup_{k:02}")
}
pub fn measure_name(k: u32) -> String {
    format!("measure_{k:02}")
}

/// The most steps any search over `c` can take: the geometric stage from `from` to `max`,
/// the bisection to the precision, each step repeated up to the saturation repeats, and a
/// margin.
pub fn max_steps(c: &Checked) -> u32 {
    let s = &c.search;
    let growth = (s.max / s.from).max(1.0).ln() / s.growth.max(1.01).ln();
    let bisect = ((s.growth - 1.0).max(0.01) / s.precision.max(1e-4))
        .log2()
        .max(0.0);
    let steps = growth.ceil() + bisect.ceil() + 3.0;
    let tries = 1 + super::search::SATURATED_REPEATS;
    ((steps as u32).saturating_mul(tries)).clamp(4, 400)
}

/// True when the search over `c` keeps its clients (see the module's doc): `plan` is its
/// first step's.
pub fn applies(c: &Checked, plan: &Plan) -> bool {
    let first = plan.phases.first();
    let fanout = first.and_then(|p| p.fanout.as_ref());
    match (c.scenario, c.vary) {
        (Scenario::Echo, Vary::Rate | Vary::Clients)
        | (Scenario::Broadcast, Vary::PublishRate)
        | (Scenario::Connect, Vary::Clients) => true,
        // A subscriber-count step adds subscribers to fixed rooms or lets the last ones
        // go: the rooms must not follow the count (`--room-size` makes more rooms as it
        // grows, and moves the publishers), and heartbeat-only clients (the last ids)
        // would be the ones let go. (The server's own publisher goes on ticking between
        // steps: its ticks there are no phase's, scenario/broadcast/board.rs.)
        (Scenario::Broadcast, Vary::Clients) => {
            fanout.is_some_and(|f| f.room_size.is_none())
                && first.is_some_and(|p| p.heartbeat.clients == 0)
        }
        _ => false,
    }
}

/// The most clients (subscribers in a broadcast search) a client-count search can ask for
/// (`--max`).
fn room(c: &Checked) -> u32 {
    whole(c.search.max)
}

/// A client count as a load: rounded, at least 1.
fn whole(load: f64) -> u32 {
    u32::try_from(load.round() as u64)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Where the one run's records and decisions go.
enum Via {
    /// This process runs the clients: its recorder answers, its schedule is the run's.
    Local(mpsc::Sender<Ask>),
    /// Workers run them: the coordinator passes decisions and questions on to each (the
    /// schedule here is a copy that decides first).
    Workers(mpsc::UnboundedSender<Command>),
}

/// The running search's one run.
pub struct Kept {
    steer: Arc<Steer>,
    via: Via,
    /// Workers lost so far, and why (a search over workers).
    lost: Mutex<BTreeMap<u32, String>>,
    /// Each worker's samples dropped before the step being judged.
    dropped: BTreeMap<u32, u64>,
    meta: RunMeta,
    run: tokio::task::JoinHandle<Result<crate::run::Finished, crate::run::RunError>>,
    /// The interrupts of the search reach the run through this.
    pub interrupts: mpsc::UnboundedSender<()>,
    base: Baseline,
    /// Phases per step: 2 with a warm-up, else 1.
    per_step: usize,
    drain: Duration,
    /// Step 1's clients (all of a rate search's).
    clients: u32,
    /// A broadcast search's publishers, step 1's subscribers and its rooms (0 for echo).
    publishers: u32,
    subscribers: u32,
    rooms: u32,
    /// Send rate per client (a client-count search's, fixed; a publisher's in a broadcast
    /// subscriber-count search).
    rate: f64,
    /// Connects per second of the clients a step adds.
    connect_rate: f64,
    /// Step 1's measured window (its phases were placed with the run's start).
    first_measured: Duration,
    first_lengthened: Option<String>,
    /// The last step failed or saturated: the next one waits for the server to go quiet.
    overloaded: bool,
    /// A connect search's highest count that held (0 before any): a step connects its
    /// clients from there up, the ones above it connected by a failed step closing first.
    held: u32,
}

/// The longest a step waits for the server to go quiet after an overloaded one.
const QUIET_MAX: Duration = Duration::from_secs(10);

/// The measured window at `per_s` replies per second: `--step-duration`, lengthened up to
/// 10x when its percentile needs more samples, and why.
fn measured_at(c: &Checked, per_s: Option<f64>) -> (Duration, Option<String>) {
    step::lengthen(c, per_s)
}

/// Samples per second at `load`: replies, the load of a rate search, or in a client-count
/// search the clients times their `rate` each; deliveries in a broadcast search, the
/// publishes per second (the load of a publish-rate search; `publishers` at `rate` each in
/// a subscriber-count one) times the subscribers of a room; `None` for connect.
fn per_s(
    c: &Checked,
    load: f64,
    rate: f64,
    (publishers, subscribers, rooms): (u32, u32, u32),
) -> Option<f64> {
    let rooms = f64::from(rooms.max(1));
    Some(match (c.scenario, c.vary) {
        // A connect step's samples are its connects: a longer window adds none.
        (Scenario::Connect, _) => return None,
        (Scenario::Broadcast, Vary::Clients) => {
            rate * f64::from(publishers) * f64::from(whole(load)) / rooms
        }
        (_, Vary::Clients) => f64::from(whole(load)) * rate,
        (_, Vary::PublishRate) => load * f64::from(subscribers) / rooms,
        (_, Vary::Rate) => load,
    })
}

impl Kept {
    /// Starts the run with step 1's phases at `load`, into `out_dir`.
    pub async fn start(
        req: &Request,
        c: &Checked,
        load: f64,
        out_dir: &std::path::Path,
        (args, threads): (Vec<String>, Option<u16>),
    ) -> Result<Kept, CapacityError> {
        let later = match c.vary {
            Vary::Clients => f64::from(room(c)),
            _ => load,
        };
        // Step 1's clients and their rate come from the plan; its window is lengthened
        // (the plan built again) when that rate gives too few samples for the percentile.
        let steps = max_steps(c);
        let mut plan = step::kept_plan(req, c, (load, later), c.step, out_dir, steps)?;
        let rate = plan.phases.first().map_or(1.0, |p| p.rate_per_s);
        let clients = plan.phases.first().map_or(0, |p| p.clients);
        let fanout = plan.phases.first().and_then(|p| p.fanout.clone());
        let (publishers, subscribers, rooms) =
            fanout.map_or((0, 0, 0), |f| (f.publishers, f.subscribers, f.rooms.max(1)));
        let (measured, lengthened) =
            measured_at(c, per_s(c, load, rate, (publishers, subscribers, rooms)));
        if measured != c.step {
            plan = step::kept_plan(req, c, (load, later), measured, out_dir, steps)?;
        }
        let connect_rate = match (req.base)().phases.pop().and_then(|p| p.connect_rate) {
            Some(Ok(r)) if r > 0.0 => r,
            _ => crate::plan::DEFAULT_CONNECT_RATE,
        };
        // A connect step has no warm-up: its connects are what it measures.
        let per_step = if c.warmup.is_zero() || c.scenario == Scenario::Connect {
            1
        } else {
            2
        };
        let steer = Steer::new(&plan);
        let (started_tx, started_rx) = oneshot::channel();
        let (int_tx, int_rx) = mpsc::unbounded_channel();
        let drain = plan.timeout.min(plan.grace);
        let distributed = plan.scale.distributed(plan.max_clients());
        let (via, run) = if distributed {
            // Each worker builds this plan from the search's command line, naming the one
            // run (`--kept-run`, `--step-window`; cli/capacity.rs).
            let mut args = args;
            args.extend([
                "--kept-run".to_string(),
                load.to_string(),
                later.to_string(),
                steps.to_string(),
                "--step-window".to_string(),
                format!("{}ms", measured.as_millis().max(1)),
            ]);
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            let steering = crate::cluster::coordinator::Steering {
                first: per_step as u16,
                commands: cmd_rx,
                started: started_tx,
            };
            let run = crate::cluster::coordinator::run_steered(
                plan.clone(),
                args,
                int_rx,
                threads,
                steering,
            );
            (Via::Workers(cmd_tx), tokio::spawn(run))
        } else {
            let (snap_tx, snap_rx) = mpsc::channel(1);
            let steered = crate::run::Steered {
                steer: steer.clone(),
                first: per_step,
                snapshots: Some(snap_rx),
                started: Some(started_tx),
            };
            let run = crate::run::execute_steered(plan.clone(), args, int_rx, steered);
            (Via::Local(snap_tx), tokio::spawn(run))
        };
        // The run tells its start once its clients begin (target resolved, folder ready);
        // an error before that ends the run task with it.
        let meta = match started_rx.await {
            Ok((t0, meta)) => {
                if distributed {
                    // This copy of the schedule places step 1 as every worker does.
                    crate::schedule::Schedule::steered(&plan, t0, steer.clone(), per_step);
                }
                meta
            }
            Err(_) => {
                let why = match run.await {
                    Ok(Err(e)) => {
                        return Err(CapacityError {
                            message: format!("the first step could not run: {e}"),
                            exit: e.exit(),
                        });
                    }
                    Ok(Ok(_)) => "the run ended before it started".to_string(),
                    Err(e) => format!("the run failed: {e}"),
                };
                return Err(CapacityError {
                    message: why,
                    exit: crate::run::Exit::CouldNotRun,
                });
            }
        };
        Ok(Kept {
            steer,
            via,
            lost: Mutex::default(),
            dropped: BTreeMap::new(),
            meta,
            run,
            interrupts: int_tx,
            base: Baseline::default(),
            per_step,
            drain,
            clients,
            publishers,
            subscribers,
            rooms,
            rate,
            connect_rate,
            first_measured: measured,
            first_lengthened: lengthened,
            overloaded: false,
            held: 0,
        })
    }

    /// The records so far as a run file (`None` once the run is gone): every histogram
    /// encoded, so asked for once per step, when it is judged. Over workers: theirs merged,
    /// and each worker's own (or why it has none).
    async fn snapshot(&self) -> Option<(RunFile, Vec<WorkerFile>)> {
        let commands = match &self.via {
            Via::Local(snapshots) => {
                let (tx, rx) = oneshot::channel();
                snapshots.send(Ask::Records(tx)).await.ok()?;
                let recorded = rx.await.ok()?;
                return Some((recorded.into_run_file(self.meta.clone()), Vec::new()));
            }
            Via::Workers(c) => c,
        };
        let replies = ask(commands, true, None).await?;
        let mut own = Vec::new();
        for r in replies {
            let file = match r.answer {
                Ok(a) => a.results.map(|text| {
                    RunFile::from_slice(text.as_bytes(), format!("worker {}", r.index))
                        .map_err(|e| e.to_string())
                }),
                Err(why) => Some(Err(why)),
            };
            match file {
                Some(Ok(f)) => own.push((r.index, Ok(Some(f)))),
                // A worker whose recorder is gone, or whose file is malformed: lost to the
                // judgement, as a lost worker is.
                None => own.push((r.index, Err("it sent no records".to_string()))),
                Some(Err(why)) => own.push((r.index, Err(why))),
            }
        }
        self.note_lost(
            own.iter()
                .filter_map(|(i, f)| Some((*i, f.as_ref().err()?.clone()))),
        );
        let files: Vec<RunFile> = own
            .iter()
            .filter_map(|(_, f)| f.as_ref().ok().cloned().flatten())
            .collect();
        let mut merged = reports::merge::merge(&files).ok()?;
        merged.meta = reports::RunMeta {
            shards: self.meta.shards,
            ..self.meta.clone()
        };
        Some((merged, own))
    }

    /// The counts so far (`None` once the run is gone): cheap, for polling. Over workers:
    /// theirs added, the seconds every one of them closed.
    async fn progress(&self) -> Option<Progress> {
        Some(self.progress_settled(None).await?.0)
    }

    /// [`Self::progress`], and the broadcast receivers that settled up to `through`.
    async fn progress_settled(&self, through: Option<u16>) -> Option<(Progress, u32)> {
        let commands = match &self.via {
            Via::Local(snapshots) => {
                let (tx, rx) = oneshot::channel();
                snapshots.send(Ask::Progress(tx)).await.ok()?;
                let settled = through.map_or(0, |p| self.steer.settled_count(p));
                return Some((rx.await.ok()?, settled));
            }
            Via::Workers(c) => c,
        };
        let replies = ask(commands, false, through).await?;
        let mut parts = Vec::new();
        let mut settled = 0u32;
        for r in replies {
            match r.answer {
                Ok(a) => {
                    settled = settled.saturating_add(a.settled);
                    parts.push(a.progress);
                }
                Err(why) => self.note_lost([(r.index, why)]),
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some((merged_progress(&parts), settled))
    }

    /// Whether a worker of the search was lost (its clients are gone for good).
    pub fn lost_workers(&self) -> bool {
        !self
            .lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Remembers lost workers (said once, in the step that met them).
    fn note_lost(&self, lost: impl IntoIterator<Item = (u32, String)>) {
        let mut known = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        for (i, why) in lost {
            known.entry(i).or_insert(why);
        }
    }

    /// Decides the next phase, here and in every worker.
    fn decide(&self, d: Decision) -> Result<(u16, Window), SteerError> {
        let decided = self.steer.decide_phase(d)?;
        if let (Via::Workers(c), Some(t0)) = (&self.via, self.steer.t0()) {
            let _ = c.send(Command::Tell(ToWorker::Decide {
                not_before_ns: d.not_before.saturating_duration_since(t0).as_nanos() as u64,
                duration_ns: d.duration.as_nanos() as u64,
                rate_per_s: d.rate_per_s,
                clients: d.clients,
                keep: d.keep,
                connect_rate: d.connect_rate.is_finite().then_some(d.connect_rate),
            }));
        }
        Ok(decided)
    }

    /// Asks the broadcast receivers to settle their tallies up to phase `through`.
    fn settle(&self, through: u16) {
        match &self.via {
            Via::Local(_) => self.steer.settle(through),
            Via::Workers(c) => {
                let _ = c.send(Command::Tell(ToWorker::Settle { through }));
            }
        }
    }

    /// Receivers that settled up to `through` since it was asked for.
    async fn settled(&self, through: u16) -> u32 {
        match &self.via {
            Via::Local(_) => self.steer.settled_count(through),
            Via::Workers(_) => self
                .progress_settled(Some(through))
                .await
                .map_or(0, |(_, n)| n),
        }
    }

    /// Waits, at most [`QUIET_MAX`], until a whole second goes by with no reply and no
    /// delivery; returns whether it did.
    async fn quiet(&self, stopped: &AtomicBool) -> bool {
        let from = Instant::now();
        let Some(t0) = self.steer.t0() else {
            return false;
        };
        let since = from.saturating_duration_since(t0).as_secs();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if stopped.load(Ordering::SeqCst) || self.run.is_finished() {
                return false;
            }
            let Some(r) = self.progress().await else {
                return false;
            };
            if r.series
                .iter()
                .any(|p| p.second > since && p.received == 0 && p.delivered == 0)
            {
                return true;
            }
            if from.elapsed() >= QUIET_MAX {
                tracing::warn!(
                    "the server was still answering the last step's load {QUIET_MAX:?} after it \
                     was judged; the next step starts anyway"
                );
                return false;
            }
        }
    }

    /// Runs step `index` at `load` (decides its phases unless it is step 1) and judges it.
    pub async fn step(
        &mut self,
        c: &Checked,
        index: u32,
        load: f64,
        stopped: &AtomicBool,
    ) -> Result<Done, CapacityError> {
        // What the step asks of the clients: a rate search's clients at load/clients each;
        // a count search's `load` clients at their rate; a publish-rate search's
        // publishers at load/publishers each (its step's clients are its subscribers, as a
        // step run's are).
        // A broadcast subscriber-count search's clients are its publishers (the first
        // ids, kept) and the step's subscribers.
        let (clients, rate) = match c.vary {
            Vary::Clients => (
                whole(load).min(room(c)).saturating_add(self.publishers),
                self.rate,
            ),
            Vary::PublishRate => (self.clients, load / f64::from(self.publishers.max(1))),
            Vary::Rate => (self.clients, load / f64::from(self.clients.max(1))),
        };
        // The subscribers whose tallies judge a broadcast step.
        let subscribers = match c.vary {
            Vary::Clients if self.subscribers > 0 => clients - self.publishers,
            _ => self.subscribers,
        };
        let (measured, lengthened) = if index == 1 {
            (self.first_measured, self.first_lengthened.clone())
        } else {
            let fanout = (self.publishers, subscribers, self.rooms);
            measured_at(c, per_s(c, load, rate, fanout))
        };
        let shown = if subscribers > 0 {
            subscribers
        } else {
            clients
        };
        let mut step = step::unjudged(
            (index, load),
            (u64::from(shown), rate),
            (measured, lengthened),
            ".".into(),
        );
        let (measure_idx, measure_end) = if index == 1 {
            let last = self.per_step - 1;
            match self.steer.window(last) {
                Some(w) => (last as u16, w.end),
                None => {
                    step.verdict = "could_not_run".into();
                    step.reasons.push("the run placed no phase".into());
                    return Ok(Done { step, run: None });
                }
            }
        } else {
            // The clients wait, connected, for these decisions: the next phase starts
            // now (a moment ahead, so every client's first send is on its clock). Clients
            // it adds connect over the first phase's ramp; those above its count leave.
            // After an overload the server may still be working off its backlog (replies
            // or deliveries of the last step still coming): that would be measured here.
            if self.overloaded && c.scenario != Scenario::Connect {
                self.quiet(stopped).await;
            }
            // After a failed connect step, its clients above the count that held close when
            // this step is decided: its connects start a moment later, so that the server
            // has let those connections go (its connection limit would count them).
            let lead = if self.overloaded && c.scenario == Scenario::Connect {
                Duration::from_millis(300)
            } else {
                Duration::from_millis(20)
            };
            let soon = Instant::now() + lead;
            // A connect step measures the connects from the highest count that held up to
            // its own: after a failed step, the clients it connected above that close and
            // connect again.
            let keep = (c.scenario == Scenario::Connect).then_some(self.held);
            let phase = |duration| Decision {
                duration,
                rate_per_s: rate,
                clients: Some(clients),
                keep,
                connect_rate: self.connect_rate,
                not_before: soon,
            };
            let mut decided = Ok(None);
            if self.per_step == 2 {
                decided = self.decide(phase(c.warmup)).map(Some);
            }
            let decided = decided.and_then(|_| self.decide(phase(measured)));
            match decided {
                Ok((idx, w)) => (idx, w.end),
                Err(e) => {
                    step.verdict = "could_not_run".into();
                    step.reasons.push(e.to_string());
                    return Ok(Done { step, run: None });
                }
            }
        };
        let name = measure_name(index);
        // The window, then its drain: judged once every send of the window is settled
        // (answered or timed out) or the drain (the shorter of --timeout and --grace) is
        // over, and the window's last second is closed; at most the drain and 2 s after its
        // end.
        // A broadcast step is judged on its subscribers' tallies: asked for once the drain
        // is over (what is still in flight then is lost, as at a step run's stop), and
        // waited for (a subscriber away from the server gives them within a second).
        let deadline = measure_end + self.drain + Duration::from_millis(2_000);
        let fan = c.scenario == Scenario::Broadcast;
        let mut asked = false;
        let mut tallied = !fan;
        let run;
        loop {
            let now = Instant::now();
            if stopped.load(Ordering::SeqCst) {
                step.verdict = "interrupted".into();
                return Ok(Done { step, run: None });
            }
            if self.run.is_finished() {
                step.verdict = "could_not_run".into();
                step.reasons.push("the run ended before the step".into());
                return Ok(Done { step, run: None });
            }
            if now < measure_end {
                let nap = (measure_end - now).min(Duration::from_millis(200));
                tokio::time::sleep(nap).await;
                continue;
            }
            if fan && !asked && now >= measure_end + self.drain {
                self.settle(measure_idx);
                asked = true;
            }
            if fan && !tallied {
                tallied = asked && self.settled(measure_idx).await >= subscribers;
                if !tallied && now < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
            // Polled on the counts alone; the whole records (every histogram encoded) are
            // built once, for the judgement.
            let Some(r) = self.progress().await else {
                step.verdict = "could_not_run".into();
                step.reasons.push("the run's recorder is gone".into());
                return Ok(Done { step, run: None });
            };
            let phase = r.phases.get(usize::from(measure_idx));
            let settled = phase
                .filter(|p| p.echo)
                .is_none_or(|e| e.sent <= e.received.saturating_add(e.timeouts));
            // The window's last second closed, with its health reading: the saturation
            // rule judges whole seconds.
            let last = phase.map_or(0, |p| p.end_offset_ms.div_ceil(1000));
            let closed = r.series.iter().any(|p| p.second + 1 >= last)
                && r.health_seconds.iter().any(|s| s + 1 >= last);
            // As a step run of its own drains: at most `drain` after the window (what is
            // still unanswered then is counted so, below).
            let drained = settled || now >= measure_end + self.drain;
            if (drained && closed && tallied) || now >= deadline {
                let Some(r) = self.snapshot().await else {
                    step.verdict = "could_not_run".into();
                    step.reasons.push("the run's recorder is gone".into());
                    return Ok(Done { step, run: None });
                };
                run = r;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (mut run, own) = run;
        if !tallied {
            let given = self.settled(measure_idx).await;
            step.reasons.push(format!(
                "{} of {} subscribers had not given their tallies at the judgement, so the \
                 step's reach could not be counted whole",
                subscribers.saturating_sub(given),
                subscribers
            ));
        }
        // Sends of the window still unanswered at the judgement are what a step run of its
        // own would call unanswered at its stop: counted so, in the step's figures.
        if let Some(e) = run
            .phases
            .iter_mut()
            .find(|p| p.name == name)
            .and_then(|p| p.stats.echo.as_mut())
        {
            let open = e.sent.saturating_sub(e.received.saturating_add(e.timeouts));
            e.unanswered_at_stop = e.unanswered_at_stop.saturating_add(open);
        }
        // Decoding, merging and evaluating histograms: off the runtime, as the snapshot's
        // encoding was (the clients' sends and the health probe go on meanwhile).
        crate::recorder::off_the_runtime(|| self.judge(c, &mut step, (run, own), index, &name));
        if c.scenario == Scenario::Connect
            && let Some(w) = self.steer.window(usize::from(measure_idx))
        {
            step.throughput_per_s = connects_per_s(&step.section.connect, w);
        }
        Ok(Done { step, run: None })
    }

    /// Judges step `index` (its measured phase `name`) on the records `run`, and keeps
    /// what the next step's judgement subtracts.
    fn judge(
        &mut self,
        c: &Checked,
        step: &mut reports::CapacityStep,
        (mut run, mut own): (RunFile, Vec<WorkerFile>),
        index: u32,
        name: &str,
    ) {
        // The SLOs on this step's measured phase; connect and swarm metrics on the step's
        // whole span (its warm-up and measured window, a phase `step_NN` made for the
        // judgement), as a step run of its own evaluates them. A step that made no connect
        // (a rate step after the first) answers connect SLOs with the connects of the
        // clients it kept: the run's so far.
        let span = step_span(&run, index, self.per_step);
        let span_name = format!("step_{index:02}");
        let span_connects = span.as_ref().is_some_and(|s| s.connect.attempted > 0);
        if let Some(stats) = span {
            run.phases.push(reports::PhaseResult {
                name: span_name.clone(),
                scenario: c.scenario.name().into(),
                stats,
            });
        }
        let rules: Vec<reports::Threshold> = c
            .slos
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.path.phase = match t.path.scenario.as_str() {
                    "connect" if span_connects => Some(span_name.clone()),
                    "connect" => None,
                    "swarm" => Some(span_name.clone()),
                    _ => Some(name.to_string()),
                };
                t
            })
            .collect();
        run.thresholds = reports::threshold::evaluate(&rules, &run);
        if run.run.connect.connected == 0 {
            run.meta.status = reports::RunStatus::Failed;
            run.meta.status_detail = Some(format!(
                "no connection succeeded ({} attempted)",
                run.run.connect.attempted
            ));
        }
        step::judge(step, &run, c, name, &self.base);
        if matches!(self.via, Via::Workers(_)) {
            // Each worker on its own measured window, as a step run's workers are; its
            // samples dropped are the step's own (those of earlier steps subtracted). A
            // worker lost at any time since is the generator's limit: its clients are gone.
            for (i, f) in &mut own {
                if let Ok(Some(f)) = f {
                    let now = f.health.summary.samples_dropped;
                    let before = self.dropped.insert(*i, now).unwrap_or(0);
                    f.health.summary.samples_dropped = now.saturating_sub(before);
                }
            }
            let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for (i, why) in lost {
                if let Some(slot) = own.iter_mut().find(|(j, _)| *j == i) {
                    slot.1 = Err(why);
                } else {
                    own.push((i, Err(why)));
                }
            }
            step::judge_worker_files(step, &own, name);
        }
        self.overloaded = step.verdict != "pass";
        if step.verdict == "pass" {
            self.held = u32::try_from(step.clients).unwrap_or(u32::MAX);
        }
        self.base = Baseline::of(&run);
    }

    /// Ends the run (its clients drain and close after the last decided phase) and returns
    /// its file: the phases of the steps taken, each with its decided length and rate.
    pub async fn finish(self) -> Result<(RunFile, crate::run::Exit), CapacityError> {
        self.steer.close();
        if let Via::Workers(c) = &self.via {
            let _ = c.send(Command::Tell(ToWorker::Close));
        }
        let decided = self.steer.decided();
        let windows: Vec<crate::schedule::Window> = (0..decided)
            .filter_map(|p| self.steer.window(p))
            .copied()
            .collect();
        let finished = match self.run.await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                return Err(CapacityError {
                    message: format!("the search's run failed: {e}"),
                    exit: e.exit(),
                });
            }
            Err(e) => {
                return Err(CapacityError {
                    message: format!("the search's run failed: {e}"),
                    exit: crate::run::Exit::CouldNotRun,
                });
            }
        };
        let mut run = finished.run;
        run.phases.truncate(decided);
        run.meta.plan.truncate(decided);
        for (p, w) in run.meta.plan.iter_mut().zip(&windows) {
            if let Some(r) = w.rate_per_s {
                let ramp = w.ramp_end.saturating_duration_since(w.start);
                p.duration_ms = w.end.saturating_duration_since(w.start).as_millis() as u64;
                p.ramp_ms = (!ramp.is_zero()).then_some(ramp.as_millis() as u64);
                p.connect_rate_per_s = p.ramp_ms.map(|_| self.connect_rate);
                p.rate_per_s = Some(r);
                p.clients = u64::from(w.clients);
            }
        }
        Ok((run, finished.exit))
    }
}

/// One worker's own records at a judgement (`Ok(None)`: none came), or why it has none.
type WorkerFile = (u32, Result<Option<RunFile>, String>);

/// Asks every worker still running (through the coordinator); `None` once the run is gone.
async fn ask(
    commands: &mpsc::UnboundedSender<Command>,
    records: bool,
    settled_through: Option<u16>,
) -> Option<Vec<Reply>> {
    let (reply, rx) = oneshot::channel();
    commands
        .send(Command::Ask {
            records,
            settled_through,
            reply,
        })
        .ok()?;
    rx.await.ok()
}

/// The workers' progress added: each phase's counts summed (its end, the latest), and the
/// seconds that every worker has closed (a second is closed for the judge once it is
/// closed everywhere).
fn merged_progress(parts: &[Progress]) -> Progress {
    let phases = parts.iter().map(|p| p.phases.len()).max().unwrap_or(0);
    let phases = (0..phases)
        .map(|i| {
            let mut q = PhaseProgress::default();
            for x in parts.iter().filter_map(|p| p.phases.get(i)) {
                q.echo |= x.echo;
                q.sent += x.sent;
                q.received += x.received;
                q.timeouts += x.timeouts;
                q.end_offset_ms = q.end_offset_ms.max(x.end_offset_ms);
            }
            q
        })
        .collect();
    let closed = |seconds: &mut dyn Iterator<Item = u64>| seconds.max().map_or(0, |s| s + 1);
    let upto = parts
        .iter()
        .map(|p| closed(&mut p.series.iter().map(|s| s.second)))
        .min()
        .unwrap_or(0);
    let mut series: BTreeMap<u64, reports::SecondPoint> = BTreeMap::new();
    for p in parts {
        for s in p.series.iter().filter(|s| s.second < upto) {
            let e = series
                .entry(s.second)
                .or_insert_with(|| reports::SecondPoint {
                    second: s.second,
                    ..Default::default()
                });
            reports::merge::add_point(e, s);
        }
    }
    let health_seconds = parts.first().map_or_else(Vec::new, |first| {
        first
            .health_seconds
            .iter()
            .copied()
            .filter(|s| parts.iter().all(|p| p.health_seconds.contains(s)))
            .collect()
    });
    Progress {
        phases,
        series: series.into_values().collect(),
        health_seconds,
    }
}

/// A kept connect step's connects per second: its successful connects over their span,
/// taken as the phase's connect ramp (its first intended connect to its last) plus its
/// slowest connect, which the span cannot exceed, so the rate is a lower bound. (The
/// phase's own span would not do: a Socket.IO server's heartbeats to the clients held
/// from earlier steps are recorded in it too, and stretch it past its connects.)
fn connects_per_s(connect: &reports::ConnectStats, w: &crate::schedule::Window) -> f64 {
    let slowest = connect.phases.total.as_ref().map_or(0, |d| d.max_us);
    let span = w.ramp_end.saturating_duration_since(w.start) + Duration::from_micros(slowest);
    connect.connected as f64 / span.as_secs_f64().max(1e-3)
}

/// Step `index`'s whole span: its warm-up and measured phases summed (`None` when a phase
/// is missing or their figures cannot be added).
fn step_span(run: &RunFile, index: u32, per_step: usize) -> Option<reports::Section> {
    let names = [warmup_name(index), measure_name(index)];
    let names = &names[2 - per_step.clamp(1, 2)..];
    let mut parts = names
        .iter()
        .map(|n| run.phases.iter().find(|p| &p.name == n).map(|p| &p.stats));
    let first = parts.next()??;
    let mut span = first.clone();
    for p in parts {
        let mut sum = reports::merge::merge_section(&span, p?).ok()?;
        // Consecutive spans: the peak is the higher one, not the sum (as for shards).
        sum.connect.peak_connected = span.connect.peak_connected.max(p?.connect.peak_connected);
        span = sum;
    }
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(second: u64, received: u64) -> reports::SecondPoint {
        reports::SecondPoint {
            second,
            received,
            ..Default::default()
        }
    }

    /// Workers' progress adds up: counts summed per phase, a phase's end the latest, and a
    /// second counted closed (with its replies added) only once every worker closed it,
    /// as is a health reading.
    #[test]
    fn the_workers_progress_adds_over_the_seconds_all_closed() {
        let phase = |sent, received, end_offset_ms| PhaseProgress {
            echo: true,
            sent,
            received,
            timeouts: 1,
            end_offset_ms,
        };
        let a = Progress {
            phases: vec![phase(10, 9, 1_500), phase(20, 20, 3_000)],
            series: vec![second(0, 5), second(1, 7), second(2, 9)],
            health_seconds: vec![0, 1, 2],
        };
        let b = Progress {
            phases: vec![phase(11, 11, 1_700)],
            series: vec![second(0, 6), second(1, 8)],
            health_seconds: vec![0, 1],
        };
        let m = merged_progress(&[a, b]);
        assert_eq!(m.phases.len(), 2);
        assert_eq!(
            (m.phases[0].sent, m.phases[0].received, m.phases[0].timeouts),
            (21, 20, 2)
        );
        assert_eq!(m.phases[0].end_offset_ms, 1_700);
        assert_eq!((m.phases[1].sent, m.phases[1].timeouts), (20, 1));
        let seconds: Vec<(u64, u64)> = m.series.iter().map(|p| (p.second, p.received)).collect();
        assert_eq!(
            seconds,
            vec![(0, 11), (1, 15)],
            "second 2 is not closed in b"
        );
        assert_eq!(m.health_seconds, vec![0, 1]);
        // A worker with no second closed yet holds every second open.
        let none = merged_progress(&[m.clone(), Progress::default()]);
        assert!(none.series.is_empty());
    }
}
