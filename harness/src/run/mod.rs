//! One run from a validated plan to its run file and exit code.
//!
//! Receives: a [`Plan`], the command line (for the record) and an interrupt channel.
//! Emits: [`Finished`] (the run file as written, where it is, the [`Exit`] code), or a
//! [`RunError`] when the run could not start (exit 2 or 3).
//! Must not: print (the binary prints the summary), or open any socket before the plan,
//! the descriptor check and the output folder are known good.
//!
//! Pipeline, one stage per module: preflight -> output folder (`outputs`) -> target
//! (`target`: embedded server if no URL, resolve, probe, TLS) -> clients (`clients`:
//! recorder, checkpoints, swarm) -> results file, thresholds, reports (`outputs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use reports::{RunFile, RunStatus};
use tokio::sync::mpsc;

use crate::plan::Plan;
use crate::preflight::{self, PreflightError};
use crate::recorder::LiveSnapshot;
use crate::share::{Owners, Shard};

mod clients;
mod meta;
mod outputs;
mod target;
pub use clients::start_instant;
pub use meta::meta;
pub use outputs::{default_out_dir, finish_merged, prepare as prepare_out_dir};
pub use target::{Resolved, resolve as resolve_target};

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ran, and every threshold holds.
    Ok = 0,
    /// A threshold failed.
    ThresholdFailed = 1,
    /// Bad usage or plan; nothing was opened.
    Usage = 2,
    /// The run could not happen (target unreachable, no connection succeeded).
    CouldNotRun = 3,
    /// `swarm capacity`: the swarm itself saturated before the server broke its SLOs.
    GeneratorSaturated = 4,
    /// The run completed degraded (connections were lost) and no threshold was given.
    Degraded = 5,
    /// Stopped by Ctrl-C / SIGTERM.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("cannot use the output folder {path}: {why}")]
    Output { path: String, why: String },
    #[error("cannot start the embedded target-server: {0}")]
    Embedded(std::io::Error),
    #[error("target {target} is unreachable: {why}")]
    Unreachable { target: String, why: String },
    #[error("cannot write the results to {path}: {why}")]
    Write { path: String, why: String },
    /// The plan cannot be run by these workers (it cannot be split, or a worker refused it).
    #[error("{0}")]
    Split(String),
    /// The workers could not be started or reached.
    #[error("{0}")]
    Workers(String),
    /// A live output could not start (the metrics address is taken, the NDJSON file
    /// cannot be created).
    #[error("{0}")]
    Live(String),
    /// The TLS files (`--cacert`, `--cert`, `--key`) cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
}

impl RunError {
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Preflight(_)
            | RunError::Output { .. }
            | RunError::Split(_)
            | RunError::Live(_)
            | RunError::Tls(_) => Exit::Usage,
            RunError::Embedded(_)
            | RunError::Unreachable { .. }
            | RunError::Write { .. }
            | RunError::Workers(_) => Exit::CouldNotRun,
        }
    }
}

/// A run that happened (completely, interrupted, or failed to connect anything).
#[derive(Debug)]
pub struct Finished {
    pub run: RunFile,
    pub out_dir: PathBuf,
    pub exit: Exit,
    /// The metrics endpoint, kept up for `--metrics-linger` after the results are written
    /// (the binary waits on it after printing the summary).
    pub linger: Option<crate::live::Lingering>,
}

/// The exit code a run file calls for: interrupted > could not run > thresholds. A
/// degraded run (connections lost) exits 5 when no threshold was given; with thresholds,
/// they decide (the user said what is acceptable).
pub fn exit_for(run: &RunFile) -> Exit {
    match run.meta.status {
        RunStatus::Interrupted => Exit::Interrupted,
        RunStatus::Failed => Exit::CouldNotRun,
        RunStatus::Aborted => Exit::ThresholdFailed,
        _ if run.thresholds.iter().any(|t| !t.pass) => Exit::ThresholdFailed,
        RunStatus::Degraded if run.thresholds.is_empty() => Exit::Degraded,
        _ => Exit::Ok,
    }
}

/// `degraded` (with its reason) when a completed run lost connections on the way.
pub fn mark_degraded(run: &mut RunFile) {
    if run.meta.status != RunStatus::Completed {
        return;
    }
    let dropped = run.health.summary.samples_dropped;
    if dropped > 0 {
        run.meta.status = RunStatus::Degraded;
        run.meta.status_detail = Some(format!(
            "{dropped} sample(s) dropped: the recorder fell behind (its channel was full), so \
             the run's counts are short and its accounting is not exact"
        ));
        return;
    }
    let Some(o) = run.run.outage.as_ref().filter(|o| o.connections_lost > 0) else {
        return;
    };
    let skipped = run.run.echo.as_ref().map_or(0, |e| e.skipped_disconnected);
    run.meta.status = RunStatus::Degraded;
    run.meta.status_detail = Some(format!(
        "{} connection(s) lost during the run: {} restored, {} not restored by the end of \
         their phase ({} reconnect attempt(s), {} failed); {} echo send(s) skipped while \
         disconnected",
        o.connections_lost,
        o.restored,
        o.clients_not_restored,
        o.reconnect_attempts,
        o.reconnect_failures,
        skipped
    ));
}

/// A worker's part of a run of several processes (cluster/worker.rs): which clients it runs,
/// the run's ids and the common start instant.
#[derive(Debug)]
pub struct Sharding {
    pub owners: Owners,
    pub shard: Shard,
    pub run_id: u32,
    /// Seeds every client's send clock, as in a one-process run with this seed.
    pub seed: u64,
    /// When the schedule starts, on this machine's wall clock.
    pub start: SystemTime,
    /// Receives the recorder's live figures each second.
    pub live: mpsc::UnboundedSender<LiveSnapshot>,
    /// Receives each closed second with its interval histograms (the coordinator merges
    /// them for the live outputs, cluster/live.rs).
    pub seconds: Option<crate::recorder::LiveSeconds>,
    /// A split run (share.rs `Owners::split`): this worker's copies of every publish log,
    /// and where its own publishers' batches go (to the coordinator, which passes them on).
    pub relay: Option<(
        Arc<crate::scenario::broadcast::relay::Relay>,
        mpsc::UnboundedSender<crate::scenario::broadcast::relay::Batch>,
    )>,
}

/// Runs `plan`. `interrupts` yields one `()` per Ctrl-C / SIGTERM.
pub async fn execute(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
) -> Result<Finished, RunError> {
    execute_with(plan, args, interrupts, None, None).await
}

/// [`execute`], of one worker's shard when `sharding` says so, steered when `steered`
/// says so (a worker of a `swarm capacity --procs N` search that keeps its clients).
pub async fn execute_with(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
    sharding: Option<Sharding>,
    steered: Option<Steered>,
) -> Result<Finished, RunError> {
    execute_inner(plan, args, interrupts, sharding, steered).await
}

/// A run whose phases after the first few are decided while it goes on (`swarm capacity`
/// keeping its clients between steps: capacity/kept.rs). The clients stay connected from
/// one decided phase to the next, and wait, connected and idle, when the next one is not
/// decided yet; the run ends once `steer` is closed and its last phase drained.
pub struct Steered {
    /// The phases' windows: the plan's first `first` are placed at the start.
    pub steer: std::sync::Arc<crate::schedule::Steer>,
    pub first: usize,
    /// Requests for the records so far (answered by the recorder).
    pub snapshots: Option<mpsc::Receiver<crate::recorder::Ask>>,
    /// Told the schedule's start instant and the `running` metadata once the clients start.
    pub started: Option<tokio::sync::oneshot::Sender<(std::time::Instant, reports::RunMeta)>>,
}

/// [`execute`] of a steered run.
pub async fn execute_steered(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
    steered: Steered,
) -> Result<Finished, RunError> {
    execute_inner(plan, args, interrupts, None, Some(steered)).await
}

async fn execute_inner(
    plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
    sharding: Option<Sharding>,
    steered: Option<Steered>,
) -> Result<Finished, RunError> {
    let embedded_needed = plan.target.endpoint.is_none();
    let clients = match &sharding {
        Some(s) => s
            .owners
            .per_worker_peak()
            .get(s.shard.index as usize)
            .copied()
            .unwrap_or(0),
        None => plan.max_clients(),
    };
    preflight::check_fds(clients, embedded_needed)?;
    let out_dir = outputs::prepare(&plan)?;
    let mut target = target::resolve(&plan).await?;
    let started_wall = sharding.as_ref().map_or_else(SystemTime::now, |s| s.start);
    let run_id: u32 = sharding.as_ref().map_or_else(rand::random, |s| s.run_id);
    let checkpoint_meta = {
        let mut m = meta(
            &plan,
            &target.url,
            embedded_needed,
            run_id,
            args.clone(),
            started_wall,
            false,
        );
        m.status = RunStatus::Running;
        m
    };
    let steer = steered.as_ref().map(|k| k.steer.clone());
    let (interrupts, live) = match start_live(&plan, &target.url, run_id, interrupts, steer).await {
        Ok(v) => v,
        Err(why) => {
            target.stop();
            return Err(RunError::Live(why));
        }
    };
    let mut ran = clients::run(
        &plan,
        &target,
        run_id,
        &out_dir,
        checkpoint_meta,
        clients::Control {
            interrupts,
            sharding,
            live,
            steered,
        },
    )
    .await;
    target.stop();
    let linger = ran.linger.take();
    let mut meta = meta(
        &plan,
        &target.url,
        embedded_needed,
        run_id,
        args,
        started_wall,
        ran.interrupted,
    );
    if let Some(a) = target.address_counts() {
        meta.options.insert("addresses".into(), a);
    }
    let run = outputs::finish(&plan, &out_dir, ran, meta, &target.sources)?;
    let exit = exit_for(&run);
    Ok(Finished {
        run,
        out_dir,
        exit,
        linger,
    })
}

/// Starts the live outputs when the plan asks for any (harness/src/live/): the interrupts
/// the swarm then listens to are the user's plus an abort's.
async fn start_live(
    plan: &Plan,
    url: &str,
    run_id: u32,
    interrupts: mpsc::UnboundedReceiver<()>,
    steer: Option<std::sync::Arc<crate::schedule::Steer>>,
) -> Result<(mpsc::UnboundedReceiver<()>, Option<clients::LiveStart>), String> {
    if !plan.output.live.any() {
        return Ok((interrupts, None));
    }
    let mut end = std::time::Duration::ZERO;
    let phases = plan
        .phases
        .iter()
        .map(|p| {
            end += p.ramp + p.duration;
            (p.name.clone(), p.scenario.name().to_string(), end)
        })
        .collect();
    let labels = crate::live::RunLabels {
        run_id: run_id.to_string(),
        target: reports::redact::redact_url(url),
        phases,
        phase_of: steer
            .map(|s| crate::live::PhaseOf(std::sync::Arc::new(move |d| s.phase_at_offset(d)))),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let started = crate::live::start(
        &plan.output.live,
        &plan.output.parsed_thresholds,
        labels,
        tx.clone(),
    )
    .await?;
    let Some((hub, seconds)) = started else {
        return Ok((interrupts, None));
    };
    tokio::spawn(async move {
        let mut from_user = interrupts;
        while from_user.recv().await.is_some() {
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok((rx, Some(clients::LiveStart { hub, seconds })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropped samples leave a completed run `degraded` (exit 5 without thresholds), and
    /// say why; a run that dropped none stays `completed`.
    #[test]
    fn dropped_samples_degrade_a_completed_run() {
        let mut run = reports::fixture::example_run(10);
        run.meta.status = RunStatus::Completed;
        run.run.outage = None;
        mark_degraded(&mut run);
        assert_eq!(run.meta.status, RunStatus::Completed);
        assert_eq!(exit_for(&run), Exit::Ok);

        run.health.summary.samples_dropped = 3;
        mark_degraded(&mut run);
        assert_eq!(run.meta.status, RunStatus::Degraded);
        let why = run.meta.status_detail.clone().unwrap_or_default();
        assert!(why.contains("3 sample(s) dropped"), "{why}");
        run.thresholds.clear();
        assert_eq!(exit_for(&run), Exit::Degraded);
    }
}
