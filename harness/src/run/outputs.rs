//! What a run leaves on disk: the output folder (prepared before anything opens), the
//! `running` checkpoints while it runs, and the final results file with its status and
//! threshold verdicts.
//!
//! Receives the plan, the recorder's checkpoints and final records, the run's metadata.
//! Emits the [`RunFile`] as written, or a [`RunError`] (the folder cannot be used: exit 2;
//! the results cannot be written: exit 3).
//! Must not: open sockets.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reports::{RunFile, RunStatus};

use super::{RunError, mark_degraded};
use crate::plan::Plan;
use crate::recorder;

/// How often a running swarm rewrites results.json (status `running`) in the run's first
/// 10 s (recorder::EARLY_CHECKPOINTS).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// ... and after the first 10 s: one process writes its file every 30 s; a worker sends its
/// checkpoint to the coordinator every 5 s, the most a lost worker's totals can be behind
/// (docs/DISTRIBUTED.md, "Faults").
pub(super) const CHECKPOINT_LATER: Duration = Duration::from_secs(30);
pub(super) const WORKER_CHECKPOINT_LATER: Duration = Duration::from_secs(5);

/// The run's output folder, fresh: an earlier run's files are cleared (said on stderr),
/// anything else in the folder refuses the run before any socket opens.
pub fn prepare(plan: &Plan) -> Result<PathBuf, RunError> {
    let out_dir = plan
        .output
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&plan.name));
    match crate::output::prepare_out_dir(&out_dir) {
        Ok(crate::output::Prepared::Fresh) => {}
        Ok(crate::output::Prepared::Cleared(names)) => eprintln!(
            "note: {} held an earlier run's files; cleared: {}",
            out_dir.display(),
            names.join(", ")
        ),
        Err(why) => {
            return Err(RunError::Output {
                path: out_dir.display().to_string(),
                why,
            });
        }
    }
    Ok(out_dir)
}

/// `./swarm-results/<name>-<UTC timestamp>/`.
pub fn default_out_dir(name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    Path::new("swarm-results").join(format!("{name}-{stamp}"))
}

/// Writes each checkpoint the recorder sends as results.json (atomically, on a blocking
/// thread), until the recorder finishes and closes the channel. A failed write is logged
/// and the run goes on: the final write reports its own errors.
pub(super) async fn write_checkpoints(
    mut rx: tokio::sync::mpsc::Receiver<recorder::Recorded>,
    meta: reports::RunMeta,
    path: PathBuf,
) {
    while let Some(so_far) = rx.recv().await {
        // `ended_at` becomes the checkpoint's instant (the records reach that far).
        let mut m = meta.clone();
        m.ended_at_unix_ms = 0;
        let run = so_far.into_run_file(m);
        let path = path.clone();
        let written = tokio::task::spawn_blocking(move || run.write(&path)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("checkpoint not written: {e}");
        }
    }
}

/// What the clients stage hands to [`finish`].
pub(super) struct Ran {
    pub recorded: recorder::Recorded,
    pub interrupted: bool,
    /// What the live outputs did (harness/src/live/), and the endpoint still up.
    pub live: Option<reports::LiveOutcome>,
    pub linger: Option<crate::live::Lingering>,
}

/// The final results file: the records under `meta` (with the source addresses used), the
/// run's status (`failed` when nothing connected, `degraded` when connections were lost),
/// the plan's thresholds evaluated; written with the reports into `out_dir`.
pub(super) fn finish(
    plan: &Plan,
    out_dir: &Path,
    ran: Ran,
    mut meta: reports::RunMeta,
    sources: &[IpAddr],
) -> Result<RunFile, RunError> {
    let Ran {
        recorded,
        interrupted,
        live,
        linger: _,
    } = ran;
    meta.options.insert(
        "source_addrs".into(),
        serde_json::json!(sources.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
    );
    let mut run = recorded.into_run_file(meta);
    if !interrupted {
        mark_failed(&mut run, "");
    }
    mark_aborted(&mut run, live);
    judge_and_write(plan, out_dir, run)
}

/// `aborted` (saying which threshold, since when) when a live check stopped the run; the
/// live outputs' outcome goes into the file either way.
fn mark_aborted(run: &mut RunFile, live: Option<reports::LiveOutcome>) {
    if let Some(a) = live.as_ref().and_then(|l| l.abort.as_ref())
        && matches!(run.meta.status, RunStatus::Completed | RunStatus::Degraded)
    {
        run.meta.status = RunStatus::Aborted;
        run.meta.status_detail = Some(format!(
            "aborted at {} s by --abort-on-fail: threshold `{}` failed every second from \
             second {} on, for the abort delay of {} ms",
            a.stopped_at_s, a.threshold, a.failing_since_s, a.delay_ms
        ));
    }
    run.live = live;
}

/// `failed` (saying why) when no connection succeeded (`whose`: where, e.g. " in any worker").
fn mark_failed(run: &mut RunFile, whose: &str) {
    if run.run.connect.connected == 0 {
        run.meta.status = RunStatus::Failed;
        run.meta.status_detail = Some(format!(
            "no connection succeeded{whose} ({} attempted, failures: {:?})",
            run.run.connect.attempted, run.run.connect.failed_by_kind
        ));
    }
}

/// `degraded` when connections were lost, the thresholds evaluated, the files written.
fn judge_and_write(plan: &Plan, out_dir: &Path, mut run: RunFile) -> Result<RunFile, RunError> {
    mark_degraded(&mut run);
    run.thresholds = reports::threshold::evaluate_rules(&plan.output.parsed_thresholds, &run);
    let write = match plan.output.results_only {
        true => crate::output::write_results,
        false => crate::output::write_outputs,
    };
    write(out_dir, &run).map_err(|e| RunError::Write {
        path: out_dir.display().to_string(),
        why: e.to_string(),
    })?;
    if let Some(path) = &plan.output.live.junit {
        // A CI file that cannot be written is said, not fatal: results.json is there.
        if let Err(e) = std::fs::write(path, reports::junit::render_junit(&run)) {
            eprintln!("swarm: cannot write the JUnit file {}: {e}", path.display());
        }
    }
    Ok(run)
}

/// The final results of a run of several processes: `run`, merged from the workers' files
/// (cluster/merge.rs), with the run's status (`failed` when nothing connected, `degraded`
/// when connections or a worker were lost, `aborted` when a live threshold stopped it) and
/// the plan's thresholds evaluated on the merged figures; written with the reports into
/// `out_dir`.
pub fn finish_merged(
    plan: &Plan,
    out_dir: &Path,
    mut run: RunFile,
    live: Option<reports::LiveOutcome>,
) -> Result<RunFile, RunError> {
    if run.meta.status == RunStatus::Completed {
        mark_failed(&mut run, " in any worker");
    }
    mark_aborted(&mut run, live);
    judge_and_write(plan, out_dir, run)
}
