//! The coordinator: the process the user started, when the run needs workers.
//!
//! Receives the validated [`Plan`] (its `scale` says how many local and remote workers),
//! the command line and the interrupts. Emits [`Finished`]: one results folder merged from
//! every worker, the exit code (non-zero when a worker was lost).
//! Must not: start the clients before every worker is connected, ready and told one common
//! start instant; bind its control port beyond loopback unless `--listen` says so (and then
//! only with a token the user gave); leave a local worker running after it returns.
//!
//! Stages: split (which worker owns which client) -> output folder -> target (the embedded
//! server runs here) -> control port, local workers started -> admission (hello, token,
//! shard, plan, ready) -> clocks -> start -> collect ([`super::collect`], feeding the live
//! outputs the workers' merged seconds, [`super::live`]) -> merge ([`super::merge`]) ->
//! results, thresholds, reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::admit::{self, Admitted, Offer, Refusal};
use super::collect::{self, Event, Live};
use super::wire::{self, ToWorker};
use crate::plan::Plan;
use crate::run::{self, Exit, Finished, RunError};
use crate::share::Owners;

/// Time from the last worker's clock exchange to the common start.
const START_LEAD: Duration = Duration::from_millis(500);

/// Runs `plan` over workers and merges their results.
pub async fn run(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
    threads: Option<u16>,
) -> Result<Finished, RunError> {
    run_inner(plan, args, interrupts, threads, None).await
}

/// A steered run over workers (`swarm capacity --procs N` keeping its clients,
/// capacity/kept.rs): every worker runs its shard of one run whose phases after the first
/// `first` are decided while it goes on.
pub struct Steering {
    pub first: u16,
    /// Decisions and questions, passed to every worker still running
    /// ([`collect::Command`]).
    pub commands: mpsc::UnboundedReceiver<collect::Command>,
    /// Told the common start (this process's clock) and the run's `running` metadata once
    /// every worker was told it.
    pub started: tokio::sync::oneshot::Sender<(Instant, reports::RunMeta)>,
}

/// [`run`] of a steered run.
pub async fn run_steered(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
    threads: Option<u16>,
    steering: Steering,
) -> Result<Finished, RunError> {
    run_inner(plan, args, interrupts, threads, Some(steering)).await
}

async fn run_inner(
    plan: Plan,
    args: Vec<String>,
    mut interrupts: mpsc::UnboundedReceiver<()>,
    threads: Option<u16>,
    steering: Option<Steering>,
) -> Result<Finished, RunError> {
    let (local, remote) = plan.scale.workers(plan.max_clients());
    let count = local + remote;
    let owners = Owners::new(&plan, count, steering.is_some()).map_err(RunError::Split)?;
    let peaks = owners.per_worker_peak();
    check_descriptors(&plan, &peaks, local)?;
    let token = token(&plan)?;
    let out_dir = run::prepare_out_dir(&plan)?;
    let mut target = run::resolve_target(&plan).await?;
    let more = match resolve_more(&plan).await {
        Ok(m) => m,
        Err(e) => {
            target.stop();
            return Err(e);
        }
    };
    let listen = plan
        .scale
        .listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| RunError::Workers(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Workers(e.to_string()))?;
    let offer = Offer {
        count,
        token: token.clone(),
        argv: worker_argv(&args),
        plan_text: plan.source_text.clone(),
        urls: std::iter::once(&target.endpoint)
            .chain(&plan.target.more)
            .map(|e| e.url(plan.target.protocol))
            .collect(),
        run_id: rand::random(),
        seed: rand::random(),
        steered: steering.as_ref().map(|s| s.first),
    };
    // The live outputs: the coordinator exports the workers' merged seconds (cluster/live.rs);
    // an abort stops every worker as Ctrl-C does.
    let (int_tx, int_rx) = mpsc::unbounded_channel();
    let shown_targets: Vec<String> = std::iter::once(target.url.as_str())
        .chain(more.iter().map(String::as_str))
        .map(reports::redact::redact_url)
        .collect();
    let labels = live_labels(&plan, offer.run_id, shown_targets.join(", "));
    let hub = match crate::live::start(
        &plan.output.live,
        &plan.output.parsed_thresholds,
        labels,
        int_tx.clone(),
    )
    .await
    {
        Ok(h) => h,
        Err(why) => {
            target.stop();
            return Err(RunError::Live(why));
        }
    };
    // The workers' merged seconds feed the live outputs when asked, and the progress line's
    // percentiles always (cluster/live.rs).
    let (hub, hub_feed) = match hub {
        Some((hub, feed)) => (Some(hub), Some(feed)),
        None => (None, None),
    };
    let (merged_tx, merged_rx) = mpsc::unbounded_channel();
    let merger = Some(super::live::Merger::new(count, merged_tx));
    let (pct_tx, pct_rx) = watch::channel(None);
    let forwarder = tokio::spawn(forward_merged(merged_rx, hub_feed, pct_tx));
    let mut children = spawn_local(local, addr, &token, threads)?;
    if remote > 0 {
        eprintln!(
            "swarm: waiting for {remote} remote worker(s): swarm worker --join {addr} (token \
             from --token or SWARM_TOKEN)"
        );
    }
    let admitted = gather(&listener, &offer, local, &mut interrupts, &mut children).await;
    let mut admitted = match admitted {
        Ok(a) => a,
        Err(e) => {
            target.stop();
            stop_children(&mut children).await;
            return Err(e);
        }
    };
    let (workers, events, started_wall, end) =
        start(&mut admitted, &peaks, plan.total() + START_LEAD).await?;
    drop(listener);
    // A steered run: its steering learns the start, and its commands reach the workers
    // through the collector; its end is decided as it goes (no plan's end to hold the
    // workers to).
    let commands = steering.map(|s| {
        let t0 = end.checked_sub(plan.total()).unwrap_or(end);
        let mut m = run::meta(
            &plan,
            &target.url,
            plan.target.endpoint.is_none(),
            offer.run_id,
            args.clone(),
            started_wall,
            false,
        );
        m.status = reports::RunStatus::Running;
        m.shards = count;
        let _ = s.started.send((t0, m));
        s.commands
    });
    let (live_tx, live_rx) = watch::channel(Default::default());
    let progress_stop = tokio_util::sync::CancellationToken::new();
    let progress = crate::progress::enabled(plan.output.quiet).then(|| {
        tokio::spawn(crate::progress::show(
            live_rx,
            plan.total(),
            plan.max_clients(),
            progress_stop.clone(),
        ))
    });
    tokio::spawn(async move {
        let mut from_user = interrupts;
        while from_user.recv().await.is_some() {
            if int_tx.send(()).is_err() {
                return;
            }
        }
    });
    let (mut records, interrupted, merger) = collect::collect(
        workers,
        events,
        int_rx,
        (end, commands),
        live_tx,
        pct_rx,
        merger,
    )
    .await;
    if let Some(m) = merger
        && hub.is_some()
        && m.late + m.refused + m.missing > 0
    {
        eprintln!(
            "swarm: live outputs: {} second(s) exported; {} worker-second(s) missing when their \
             second was exported ({} of them arrived later), {} refused; results.json has \
             everything the workers delivered",
            m.exported, m.missing, m.late, m.refused
        );
    }
    // The merger is gone, so the forwarder ends and drops the hub's feed: the hub ends with
    // its last second.
    let _ = forwarder.await;
    let (live, linger) = match hub {
        Some(h) => {
            let (o, l) = h.finish().await;
            (Some(o), Some(l))
        }
        None => (None, None),
    };
    let aborted = live.as_ref().is_some_and(|l| l.abort.is_some());
    // An abort stops the workers through the interrupts; it is not a signal.
    let interrupted = interrupted && !aborted;
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    target.stop();
    stop_children(&mut children).await;
    let mut meta = run::meta(
        &plan,
        &target.url,
        plan.target.endpoint.is_none(),
        offer.run_id,
        args,
        started_wall,
        interrupted,
    );
    meta.split_rooms = owners.split();
    let shown: Vec<String> = std::iter::once(target.url.clone()).chain(more).collect();
    if shown.len() > 1 {
        meta.target_url = shown.join(", ");
    }
    for r in &mut records {
        r.target = shown[r.index as usize % shown.len()].clone();
    }
    let merged = super::merge::merge(&mut records, meta, &out_dir.join("histograms.hlog"))
        .map_err(|why| RunError::Write {
            path: out_dir.display().to_string(),
            why: format!("the workers' results could not be merged: {why}"),
        })?;
    for w in &merged.warnings {
        eprintln!("swarm: {w}");
    }
    keep_worker_files(&out_dir, &records);
    let mut merged_run = merged.run;
    if aborted {
        // The workers stopped on the coordinator's word: their files say interrupted.
        merged_run.meta.interrupted = false;
        if merged_run.meta.status == reports::RunStatus::Interrupted {
            merged_run.meta.status = reports::RunStatus::Completed;
            merged_run.meta.status_detail = None;
        }
    }
    let run = run::finish_merged(&plan, &out_dir, merged_run, live)?;
    let mut exit = run::exit_for(&run);
    if exit == Exit::Ok && records.iter().any(|r| r.lost.is_some()) {
        exit = Exit::Degraded;
    }
    Ok(Finished {
        run,
        out_dir,
        exit,
        linger,
    })
}

/// The labels of the exported series: the run id, each phase's name and scenario, the
/// target(s) (secrets masked; several targets are listed in one label, as `meta.target_url`).
fn live_labels(plan: &Plan, run_id: u32, target: String) -> crate::live::RunLabels {
    let mut end = Duration::ZERO;
    let phases = plan
        .phases
        .iter()
        .map(|p| {
            end += p.ramp + p.duration;
            (p.name.clone(), p.scenario.name().to_string(), end)
        })
        .collect();
    crate::live::RunLabels {
        run_id: run_id.to_string(),
        target,
        phases,
        phase_of: None,
    }
}

/// Probes the further targets (several URLs) as the first was, before any worker starts;
/// returns their redacted URLs.
async fn resolve_more(plan: &Plan) -> Result<Vec<String>, RunError> {
    let mut shown = Vec::new();
    for endpoint in &plan.target.more {
        let mut one = plan.clone();
        one.target.endpoint = Some(endpoint.clone());
        one.target.more.clear();
        let mut resolved = run::resolve_target(&one).await?;
        resolved.stop();
        shown.push(resolved.url.clone());
    }
    Ok(shown)
}

/// Refuses, before anything opens, a run whose local workers would each hold more
/// connections than a process may, or whose embedded target (in this process) would hold
/// more than this process may.
fn check_descriptors(plan: &Plan, peaks: &[u32], local: u32) -> Result<(), RunError> {
    let busiest = peaks
        .iter()
        .take(local as usize)
        .copied()
        .max()
        .unwrap_or(0);
    crate::preflight::check_fds(busiest, false).map_err(|e| {
        RunError::Split(format!(
            "a local worker would hold {busiest} clients: {e}; give more --procs"
        ))
    })?;
    if plan.target.endpoint.is_none() {
        crate::preflight::check_fds(plan.max_clients(), false).map_err(|e| {
            RunError::Split(format!(
                "the embedded target-server runs in this process and holds the server side of \
                 every client's connection: {e}. Start target-server apart (several processes \
                 with --reuse-port) and give its URL"
            ))
        })?;
    }
    Ok(())
}

/// The run's token: `--token`, else `SWARM_TOKEN`, else (loopback only) a random one.
fn token(plan: &Plan) -> Result<String, RunError> {
    let given = plan.scale.token.clone().or_else(|| {
        std::env::var(wire::TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
    });
    let loopback = plan.scale.listen.is_none_or(|a| a.ip().is_loopback());
    match given {
        Some(t) => Ok(t),
        None if loopback => Ok(wire::new_token()),
        None => Err(RunError::Split(format!(
            "--listen {} accepts workers from other machines: give the run a secret with \
             --token or {} (16+ characters), and the same to each worker",
            plan.scale
                .listen
                .map_or_else(String::new, |a| a.to_string()),
            wire::TOKEN_ENV
        ))),
    }
}

/// The coordinator's arguments as a worker rebuilds the plan from them: the scale-out
/// options dropped (a worker runs its shard in its own process).
fn worker_argv(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        let flag = a.split('=').next().unwrap_or("");
        if matches!(
            flag,
            "--procs" | "--listen" | "--expect-workers" | "--token" | "--threads"
        ) {
            skip = !a.contains('=');
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// Starts `n` local workers (this binary, `swarm worker`), each asking for its shard.
fn spawn_local(
    n: u32,
    addr: SocketAddr,
    token: &str,
    threads: Option<u16>,
) -> Result<Vec<tokio::process::Child>, RunError> {
    let exe = std::env::current_exe().map_err(|e| {
        RunError::Workers(format!("cannot find this program to start workers: {e}"))
    })?;
    let mut children = Vec::new();
    for i in 0..n {
        let mut cmd = tokio::process::Command::new(&exe);
        if let Some(t) = threads {
            cmd.arg("--threads").arg(t.to_string());
        }
        cmd.args([
            "worker",
            "--join",
            &addr.to_string(),
            "--index",
            &i.to_string(),
        ])
        .env(wire::TOKEN_ENV, token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
        match cmd.spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                return Err(RunError::Workers(format!("cannot start worker {i}: {e}")));
            }
        }
    }
    Ok(children)
}

/// Waits (bounded) for local workers to exit after the run, then kills the rest.
async fn stop_children(children: &mut [tokio::process::Child]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in children.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, c.wait()).await.is_err() {
            let _ = c.kill().await;
        }
    }
}

/// Admits workers until all `offer.count` shards are taken. Local workers that exit before
/// they are admitted, a worker that cannot run the plan, or Ctrl-C end the wait.
async fn gather(
    listener: &TcpListener,
    offer: &Offer,
    local: u32,
    interrupts: &mut mpsc::UnboundedReceiver<()>,
    children: &mut [tokio::process::Child],
) -> Result<Vec<Admitted>, RunError> {
    let taken = std::sync::Arc::new(std::sync::Mutex::new(vec![false; offer.count as usize]));
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<Admitted, Refusal>>();
    let mut admitted: Vec<Admitted> = Vec::new();
    let local_deadline = Instant::now() + admit::READY_WITHIN + admit::HELLO_WITHIN;
    let mut said = Instant::now();
    while admitted.len() < offer.count as usize {
        tokio::select! {
            c = listener.accept() => {
                let Ok((stream, _)) = c else { continue };
                let (tx, offer, taken) = (tx.clone(), offer.clone(), taken.clone());
                tokio::spawn(async move {
                    let r = admit::admit(stream, &offer, |asked| claim(&taken, asked)).await;
                    let _ = tx.send(r);
                });
            }
            Some(r) = rx.recv() => match r {
                Ok(a) => admitted.push(a),
                Err(Refusal::Refused(why)) => eprintln!("swarm: a worker was refused: {why}"),
                Err(Refusal::Failed { index, why }) => {
                    return Err(RunError::Split(format!("worker {index} cannot run the plan: {why}")));
                }
            },
            Some(()) = interrupts.recv() => {
                return Err(RunError::Workers("interrupted while waiting for workers".into()));
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                for (i, c) in children.iter_mut().enumerate() {
                    if let Ok(Some(status)) = c.try_wait() && !admitted.iter().any(|a| a.index == i as u32) {
                        return Err(RunError::Workers(format!("local worker {i} exited before it was ready ({status})")));
                    }
                }
                let locals = admitted.iter().filter(|a| a.index < local).count() as u32;
                if locals < local && Instant::now() > local_deadline {
                    return Err(RunError::Workers(format!("only {locals} of {local} local workers were ready within {} s", (admit::READY_WITHIN + admit::HELLO_WITHIN).as_secs())));
                }
                if said.elapsed() >= Duration::from_secs(10) {
                    said = Instant::now();
                    eprintln!("swarm: {} of {} worker(s) ready", admitted.len(), offer.count);
                }
            }
        }
    }
    admitted.sort_by_key(|a| a.index);
    Ok(admitted)
}

/// Takes the shard `asked` for (or the lowest free one) if it is free.
fn claim(taken: &std::sync::Mutex<Vec<bool>>, asked: Option<u32>) -> Option<u32> {
    let mut t = taken.lock().ok()?;
    let i = match asked {
        Some(i) => i as usize,
        None => t.iter().position(|x| !x)?,
    };
    match t.get_mut(i) {
        Some(slot) if !*slot => {
            *slot = true;
            Some(i as u32)
        }
        _ => None,
    }
}

type Started = (
    Vec<Live>,
    mpsc::UnboundedReceiver<Event>,
    SystemTime,
    Instant,
);

/// Measures every worker's clock, tells each the common start in its own clock, and
/// attaches their connections. Returns the workers, their events, the start (wall clock)
/// and the plan's end (this process's clock).
async fn start(
    admitted: &mut Vec<Admitted>,
    peaks: &[u32],
    total: Duration,
) -> Result<Started, RunError> {
    let mut clocks = Vec::with_capacity(admitted.len());
    for a in admitted.iter_mut() {
        let c = admit::measure_clock(a, 5)
            .await
            .map_err(|why| RunError::Workers(format!("worker {}: {why}", a.index)))?;
        clocks.push(c);
    }
    let start_wall = SystemTime::now() + START_LEAD;
    let start_ns = wire::unix_ns() + START_LEAD.as_nanos() as u64;
    let end = Instant::now() + START_LEAD + total;
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let mut live = Vec::with_capacity(admitted.len());
    for (a, clock) in admitted.drain(..).zip(clocks) {
        let at = (i128::from(start_ns) + i128::from(clock.offset_ns)).max(0) as u64;
        let mut write = a.write;
        wire::write(&mut write, &ToWorker::Start { at_unix_ns: at })
            .await
            .map_err(|e| RunError::Workers(format!("worker {}: {e}", a.index)))?;
        let to = collect::attach(a.index, a.read, write, ev_tx.clone());
        live.push(Live {
            record: super::merge::WorkerRecord {
                index: a.index,
                host: a.host,
                pid: a.pid,
                clients: peaks.get(a.index as usize).copied().unwrap_or(0),
                ..Default::default()
            },
            to,
            last_heard: Instant::now(),
            snapshot: Default::default(),
            pings: Default::default(),
            clock,
            second_refused: false,
        });
    }
    Ok((live, ev_rx, start_wall, end))
}

/// Writes each worker's own results and interval log beside the merged ones
/// (`worker-N.results.json`, `worker-N.histograms.hlog`), for checking a merge and for
/// finding which worker saw what. A failed write is said, not fatal.
fn keep_worker_files(out_dir: &std::path::Path, records: &[super::merge::WorkerRecord]) {
    for r in records {
        let files = [
            (
                format!("worker-{}.results.json", r.index),
                r.results.as_deref(),
            ),
            (
                format!("worker-{}.histograms.hlog", r.index),
                Some(r.hlog.as_str()),
            ),
        ];
        for (name, text) in files {
            let Some(text) = text.filter(|t| !t.is_empty()) else {
                continue;
            };
            if let Err(e) = reports::file::write_atomic(&out_dir.join(&name), text.as_bytes()) {
                eprintln!("swarm: {name} not written: {e}");
            }
        }
    }
}

/// Forwards the merged seconds to the live hub (when there is one) and keeps the latest
/// second's echo latency percentiles for the progress line.
async fn forward_merged(
    mut merged: mpsc::UnboundedReceiver<crate::live::LiveSecond>,
    hub: Option<mpsc::UnboundedSender<crate::live::LiveSecond>>,
    percentiles: watch::Sender<Option<collect::Percentiles>>,
) {
    while let Some(second) = merged.recv().await {
        let _ = percentiles.send(Some((
            second.point.latency_p50_us,
            second.point.latency_p99_us,
        )));
        if let Some(h) = &hub {
            let _ = h.send(second);
        }
    }
}
