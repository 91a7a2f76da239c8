//! `swarm worker`: one shard of a coordinator's run.
//!
//! Receives the coordinator's address, the run's token and, when given, the shard index it
//! asks for (`--index`, or `JOB_COMPLETION_INDEX` in a Kubernetes Indexed Job). Emits, over
//! the control connection ([`super::wire`]): hello, ready, answers to clock pings, each
//! second its live figures, its closed second (for the coordinator's live outputs) and new
//! interval-log lines, its checkpoints, and at the end its
//! results file, CPU time and peak memory. Exit code 0 when its results were delivered.
//! Must not: outlive its coordinator (the control connection closing stops the clients and
//! ends the process), run before the common start instant, or write anywhere but its own
//! temporary folder (removed at the end).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::wire::{self, ToCoordinator, ToWorker};
use crate::plan::{Endpoint, Plan};
use crate::run::{self, Sharding};
use crate::scenario::broadcast::relay::Relay;
use crate::share::{Owners, Shard};

/// Builds the plan a coordinator's arguments describe (the binary passes its CLI parser):
/// the arguments without the program name, and the plan file's text when there was one.
pub type PlanBuilder = dyn Fn(&[String], Option<String>) -> Result<Plan, String> + Send + Sync;

/// How to reach the coordinator.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `HOST:PORT` of the coordinator's control port.
    pub join: String,
    pub token: String,
    /// The shard asked for; `None`: the coordinator assigns one.
    pub index: Option<u32>,
    /// How long to keep trying to reach the coordinator.
    pub wait: Duration,
}

/// Exit codes of `swarm worker`.
pub mod exit {
    pub const OK: u8 = 0;
    /// Refused, bad plan, or the coordinator could not be reached.
    pub const USAGE: u8 = 2;
    /// The run could not happen here, or the coordinator went away.
    pub const FAILED: u8 = 3;
}

/// Runs one worker to its end; returns the process exit code.
pub async fn run(cfg: WorkerConfig, build: &PlanBuilder) -> u8 {
    let stream = match connect(&cfg).await {
        Ok(s) => s,
        Err(why) => {
            eprintln!(
                "swarm worker: cannot reach the coordinator at {}: {why}",
                cfg.join
            );
            return exit::USAGE;
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let hello = ToCoordinator::Hello {
        version: wire::VERSION,
        token: cfg.token.clone(),
        index: cfg.index,
        host: hostname(),
        pid: std::process::id(),
    };
    if let Err(e) = wire::write(&mut write, &hello).await {
        eprintln!("swarm worker: the coordinator closed the connection: {e}");
        return exit::FAILED;
    }
    let welcome = match wire::read::<ToWorker, _>(&mut read).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("swarm worker: no welcome from the coordinator: {e}");
            return exit::FAILED;
        }
    };
    let (shard, argv, plan_text, url, run_id, seed, steered) = match welcome {
        ToWorker::Welcome {
            shard,
            argv,
            plan_text,
            url,
            run_id,
            seed,
            steered,
        } => (shard, argv, plan_text, url, run_id, seed, steered),
        ToWorker::Refused { why } => {
            eprintln!("swarm worker: refused by the coordinator: {why}");
            return exit::USAGE;
        }
        other => {
            eprintln!("swarm worker: unexpected first message {other:?}");
            return exit::FAILED;
        }
    };
    let out_dir = std::env::temp_dir().join(format!(
        "swarm-worker-{}-{run_id:08x}-{}",
        std::process::id(),
        shard.index
    ));
    let prepared = prepare(
        build,
        &argv,
        plan_text,
        (&url, &out_dir),
        shard,
        steered.is_some(),
    );
    let (plan, owners) = match prepared {
        Ok(p) => p,
        Err(why) => {
            let _ = wire::write(&mut write, &ToCoordinator::Failed { why: why.clone() }).await;
            eprintln!("swarm worker: {why}");
            return exit::USAGE;
        }
    };
    let code = serve(
        read,
        write,
        plan,
        argv,
        Sharded {
            owners,
            shard,
            run_id,
            seed,
            steered,
        },
        &out_dir,
    )
    .await;
    let _ = std::fs::remove_dir_all(&out_dir);
    code
}

/// Connects, retrying until `cfg.wait` has passed (the coordinator may start later).
async fn connect(cfg: &WorkerConfig) -> Result<TcpStream, String> {
    let deadline = Instant::now() + cfg.wait;
    let mut said = Instant::now();
    loop {
        match TcpStream::connect(&cfg.join).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(e) => {
                if said.elapsed() >= Duration::from_secs(5) {
                    eprintln!(
                        "swarm worker: waiting for the coordinator at {}: {e}",
                        cfg.join
                    );
                    said = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The worker's plan: the coordinator's, aimed at its target, quiet, written to `out_dir`,
/// with no thresholds (the coordinator judges the merged run).
fn prepare(
    build: &PlanBuilder,
    argv: &[String],
    plan_text: Option<String>,
    (url, out_dir): (&str, &Path),
    shard: Shard,
    steered: bool,
) -> Result<(Plan, Owners), String> {
    let mut plan = build(argv, plan_text).map_err(|e| format!("the coordinator's plan: {e}"))?;
    // Before the targets are narrowed to this worker's: the owners are the coordinator's.
    let owners = Owners::new(&plan, shard.count, steered)?;
    let (endpoint, _) = Endpoint::parse(url).map_err(|e| format!("target {url:?}: {e}"))?;
    plan.target.endpoint = Some(endpoint);
    // Several targets: this worker drives the one it was given.
    plan.target.more.clear();
    plan.output.out = Some(out_dir.to_path_buf());
    plan.output.quiet = true;
    plan.output.json = false;
    plan.output.results_only = true;
    plan.output.thresholds.clear();
    plan.output.parsed_thresholds.clear();
    // The coordinator exports the merged figures; a worker exports nothing of its own.
    plan.output.live = Default::default();
    if shard.count == 0 || shard.index >= shard.count {
        return Err(format!(
            "shard {} of {} does not exist",
            shard.index, shard.count
        ));
    }
    Ok((plan, owners))
}

struct Sharded {
    owners: Owners,
    shard: Shard,
    run_id: u32,
    seed: u64,
    /// A steered run: the phases placed at the start (wire.rs `Welcome`).
    steered: Option<u16>,
}

/// A steered run's handles in a worker: the coordinator's decisions go to `steer`, its
/// questions to the recorder (`snapshots`); `meta` is the run's `running` metadata, once
/// its clients started (a results file needs it).
#[derive(Clone)]
struct WorkerSteer {
    steer: std::sync::Arc<crate::schedule::Steer>,
    snapshots: mpsc::Sender<crate::recorder::Ask>,
    meta: std::sync::Arc<std::sync::OnceLock<reports::RunMeta>>,
    /// The common start on this process's monotonic clock (before the schedule tells
    /// its own).
    start: Instant,
}

/// From ready to the final results: answers pings, waits for the start, runs its shard
/// while streaming, sends the final file.
async fn serve(
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: OwnedWriteHalf,
    plan: Plan,
    argv: Vec<String>,
    s: Sharded,
    out_dir: &Path,
) -> u8 {
    let (out_tx, out_rx) = mpsc::unbounded_channel::<ToCoordinator>();
    let writer = tokio::spawn(write_all(write, out_rx));
    let _ = out_tx.send(ToCoordinator::Ready);
    // Before the start: pings, then the start instant (or a stop, or the end).
    let start = loop {
        match wire::read::<ToWorker, _>(&mut read).await {
            Ok(ToWorker::Ping { id, .. }) => {
                let _ = out_tx.send(ToCoordinator::Pong {
                    id,
                    worker_ns: wire::unix_ns(),
                });
            }
            Ok(ToWorker::Start { at_unix_ns }) => {
                break UNIX_EPOCH + Duration::from_nanos(at_unix_ns);
            }
            Ok(ToWorker::Stop | ToWorker::Bye) | Err(_) => {
                drop(out_tx);
                let _ = writer.await;
                return exit::FAILED;
            }
            Ok(_) => {}
        }
    };
    let (int_tx, int_rx) = mpsc::unbounded_channel();
    let (live_tx, live_rx) = mpsc::unbounded_channel();
    let (sec_tx, sec_rx) = mpsc::unbounded_channel();
    let seconds = tokio::spawn(forward_seconds(sec_rx, out_tx.clone()));
    let drain = plan.timeout.min(plan.grace) + Duration::from_secs(10);
    // A steered run: the coordinator decides its phases and asks for its records.
    let mut steered = None;
    let mut steering = None;
    if let Some(first) = s.steered {
        let steer = crate::schedule::Steer::new(&plan);
        let (snap_tx, snap_rx) = mpsc::channel(4);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let meta = std::sync::Arc::new(std::sync::OnceLock::new());
        let m = meta.clone();
        tokio::spawn(async move {
            if let Ok((_, meta)) = started_rx.await {
                let _ = m.set(meta);
            }
        });
        steering = Some(WorkerSteer {
            steer: steer.clone(),
            snapshots: snap_tx,
            meta,
            start: run::start_instant(start),
        });
        steered = Some(run::Steered {
            steer,
            first: usize::from(first),
            snapshots: Some(snap_rx),
            started: Some(started_tx),
        });
    }
    // A split run: the copies of every publisher's log, fed by this worker's pump and by
    // the other workers' batches (scenario/broadcast/relay.rs).
    let relay = s.owners.split().then(|| {
        let layout = crate::scenario::broadcast::Layout::new(&plan);
        let slots = usize::from(layout.phases()) * layout.rooms() as usize;
        std::sync::Arc::new(Relay::new(
            s.shard.index,
            s.shard.count,
            layout.max_publishers(),
            layout.phases(),
            slots,
        ))
    });
    let relay_out = relay.as_ref().map(|r| {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = out_tx.clone();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                if out.send(ToCoordinator::Publishes { batch }).is_err() {
                    return;
                }
            }
        });
        (r.clone(), tx)
    });
    let control = tokio::spawn(control(
        read,
        out_tx.clone(),
        int_tx.clone(),
        drain,
        (steering, relay.clone()),
    ));
    let streamer = tokio::spawn(stream(live_rx, out_tx.clone(), out_dir.to_path_buf()));
    let sharding = Sharding {
        owners: s.owners,
        shard: s.shard,
        run_id: s.run_id,
        seed: s.seed,
        start,
        live: live_tx,
        seconds: Some(sec_tx),
        relay: relay_out,
    };
    let mut args = vec!["worker".to_string()];
    args.extend(argv);
    let finished = run::execute_with(plan, args, int_rx, Some(sharding), steered).await;
    drop(int_tx);
    if let Some(r) = &relay {
        let (refused, overrun, late) = r.faults();
        if refused + overrun + late > 0 {
            eprintln!(
                "swarm worker {}: split rooms: {refused} publish batch part(s) refused, \
                 {overrun} send instant(s) lost to a publisher faster than the pump, {late} \
                 tally(ies) counted before every worker's log was complete",
                s.shard.index
            );
        }
    }
    let mut tail = streamer.await.unwrap_or_else(|_| Tail::new(out_dir));
    // Every closed second is queued before the final results (the coordinator's live
    // outputs end with the run's totals).
    let _ = seconds.await;
    let code = match finished {
        Ok(f) => {
            let lines = tail.new_lines().unwrap_or_default();
            let results =
                std::fs::read_to_string(f.out_dir.join("results.json")).unwrap_or_default();
            let (cpu_seconds, peak_rss_bytes) = usage();
            let _ = out_tx.send(ToCoordinator::Final {
                results,
                lines,
                cpu_seconds,
                peak_rss_bytes,
            });
            exit::OK
        }
        Err(e) => {
            let _ = out_tx.send(ToCoordinator::Failed { why: e.to_string() });
            eprintln!("swarm worker: {e}");
            exit::FAILED
        }
    };
    // Wait (bounded) for the coordinator's bye, so the final message is read before we go.
    let _ = tokio::time::timeout(Duration::from_secs(60), control).await;
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    code
}

/// The control connection during the run: pings answered, `stop` passed on as an
/// interrupt, `bye` ends it (true); a steered run's decisions applied and its questions
/// answered. Its end without a bye (the coordinator is gone) stops the clients, and ends
/// the process if they have not stopped after `drain`.
async fn control(
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    out_tx: mpsc::UnboundedSender<ToCoordinator>,
    int_tx: mpsc::UnboundedSender<()>,
    drain: Duration,
    (steering, relay): (Option<WorkerSteer>, Option<std::sync::Arc<Relay>>),
) -> bool {
    loop {
        let msg = wire::read::<ToWorker, _>(&mut read).await;
        if let (Ok(ToWorker::Publishes { batches, shifts }), Some(r)) = (&msg, &relay) {
            for &(from, ns, bound) in shifts {
                r.set_shift(from, ns, bound);
            }
            for (from, b) in batches {
                // Said once; the count is in the worker's last words.
                if let Err(e) = r.apply(*from, b)
                    && r.faults().0 == 1
                {
                    eprintln!("swarm worker: worker {from}'s publish batch refused: {e}");
                }
            }
            continue;
        }
        if let (Ok(m), Some(st)) = (&msg, &steering)
            && steer(st, m, &out_tx)
        {
            continue;
        }
        match msg {
            Ok(ToWorker::Ping { id, .. }) => {
                let _ = out_tx.send(ToCoordinator::Pong {
                    id,
                    worker_ns: wire::unix_ns(),
                });
            }
            Ok(ToWorker::Stop) => {
                let _ = int_tx.send(());
            }
            Ok(ToWorker::Bye) => return true,
            Ok(_) => {}
            Err(_) => {
                eprintln!("swarm worker: the coordinator is gone; stopping");
                let _ = int_tx.send(());
                tokio::time::sleep(drain).await;
                std::process::exit(i32::from(exit::FAILED));
            }
        }
    }
}

/// Applies a steered run's message `m` (true), or leaves it to the caller (false). A
/// decision the schedule refuses (no phase left, or closed) is refused alike by the
/// coordinator's own copy of the schedule, which decided it first.
fn steer(st: &WorkerSteer, m: &ToWorker, out_tx: &mpsc::UnboundedSender<ToCoordinator>) -> bool {
    match *m {
        ToWorker::Decide {
            not_before_ns,
            duration_ns,
            rate_per_s,
            clients,
            keep,
            connect_rate,
        } => {
            let t0 = st.steer.t0().unwrap_or(st.start);
            // Bounded as any figure from the network is: no window reaches past a week.
            let week = 7 * 86_400 * 1_000_000_000u64;
            let decision = crate::schedule::Decision {
                duration: Duration::from_nanos(duration_ns.min(week)),
                rate_per_s: if rate_per_s.is_finite() {
                    rate_per_s.max(0.0)
                } else {
                    0.0
                },
                clients,
                keep,
                connect_rate: connect_rate
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .unwrap_or(f64::INFINITY),
                not_before: t0 + Duration::from_nanos(not_before_ns.min(week)),
            };
            if let Err(e) = st.steer.decide_phase(decision) {
                eprintln!("swarm worker: a decided phase was refused: {e}");
            }
        }
        ToWorker::Settle { through } => st.steer.settle(through),
        ToWorker::Close => st.steer.close(),
        ToWorker::Ask {
            id,
            records,
            settled_through,
        } => {
            let (st, out_tx) = (st.clone(), out_tx.clone());
            tokio::spawn(async move {
                let settled = settled_through.map_or(0, |p| st.steer.settled_count(p));
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = st.snapshots.send(crate::recorder::Ask::Progress(tx)).await;
                let progress = rx.await.unwrap_or_default();
                let mut results = None;
                if records {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let _ = st.snapshots.send(crate::recorder::Ask::Records(tx)).await;
                    if let (Ok(r), Some(meta)) = (rx.await, st.meta.get()) {
                        let file = r.into_run_file(meta.clone());
                        results = serde_json::to_string(&file).ok();
                    }
                }
                let _ = out_tx.send(ToCoordinator::Answer {
                    id,
                    progress,
                    settled,
                    results,
                });
            });
        }
        _ => return false,
    }
    true
}

/// Each live snapshot as it comes, and each second the interval log's new lines and a
/// changed checkpoint; returns what was sent of the files when the live figures end.
async fn stream(
    mut live_rx: mpsc::UnboundedReceiver<crate::recorder::LiveSnapshot>,
    out_tx: mpsc::UnboundedSender<ToCoordinator>,
    dir: PathBuf,
) -> Tail {
    let mut tail = Tail::new(&dir);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            s = live_rx.recv() => match s {
                Some(snapshot) => { let _ = out_tx.send(ToCoordinator::Live { snapshot }); }
                None => break,
            },
            _ = tick.tick() => tail.send_new(&out_tx),
        }
    }
    tail
}

/// Each closed second of the recorder, with its interval histograms, to the coordinator
/// (it merges them for the live outputs; the worker exports nothing itself).
async fn forward_seconds(
    mut rx: mpsc::UnboundedReceiver<crate::live::LiveSecond>,
    out_tx: mpsc::UnboundedSender<ToCoordinator>,
) {
    while let Some(s) = rx.recv().await {
        let second = Box::new(super::live::WireSecond::of(&s));
        if out_tx.send(ToCoordinator::Second { second }).is_err() {
            return;
        }
    }
}

/// Sends every queued message, in order, until the queue closes or the link fails.
async fn write_all(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<ToCoordinator>) {
    while let Some(msg) = rx.recv().await {
        if wire::write(&mut w, &msg).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// What of the worker's files has been sent: the interval log's offset, the checkpoint's
/// modification time.
struct Tail {
    hlog: PathBuf,
    results: PathBuf,
    offset: u64,
    checkpoint: Option<SystemTime>,
}

impl Tail {
    fn new(dir: &Path) -> Tail {
        Tail {
            hlog: dir.join("histograms.hlog"),
            results: dir.join("results.json"),
            offset: 0,
            checkpoint: None,
        }
    }

    /// Sends the interval log's new complete lines and a changed checkpoint.
    fn send_new(&mut self, out: &mpsc::UnboundedSender<ToCoordinator>) {
        if let Some(lines) = self.new_lines() {
            let _ = out.send(ToCoordinator::Intervals { lines });
        }
        let modified = std::fs::metadata(&self.results)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified != self.checkpoint {
            self.checkpoint = modified;
            if let Ok(results) = std::fs::read_to_string(&self.results) {
                let _ = out.send(ToCoordinator::Checkpoint { results });
            }
        }
    }

    fn new_lines(&mut self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.hlog).ok()?;
        f.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut buf = Vec::new();
        f.take(wire::MAX_MESSAGE as u64 / 2)
            .read_to_end(&mut buf)
            .ok()?;
        let end = buf.iter().rposition(|&b| b == b'\n')? + 1;
        buf.truncate(end);
        self.offset += end as u64;
        String::from_utf8(buf).ok()
    }
}

/// CPU seconds (user + system) and peak resident memory (`VmHWM`) of this process.
fn usage() -> (f64, u64) {
    let cpu = crate::health::process_cpu_time().map_or(0.0, |d| d.as_secs_f64());
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb.saturating_mul(1024));
    (cpu, peak)
}

/// This machine's name, for the coordinator's `workers` section.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().chars().take(255).collect())
        .unwrap_or_default()
}
