//! One step of a capacity search: a plan at one load, run as any run, judged (and the
//! judgement, the step record and the plans that a search keeping its clients shares:
//! [`judge`], [`unjudged`], [`kept_plan`], [`lengthen`]).
//!
//! Receives the [`Request`], the checked search, the load and the step's number. Emits a
//! [`Done`]: the step's [`CapacityStep`] (verdict, SLO results, reasons, the measured
//! window's section with its histograms) and its run file (written in `step-NN/` of the
//! search's folder by the ordinary run pipeline).
//! Must not: measure anything itself. The step is a two-phase plan (`warmup`, then
//! `measure`, the same clients kept from one to the other; `measure` alone when the warm-up
//! is 0) run by [`crate::run::execute`]; the SLOs are passed as the run's thresholds on
//! phase `measure` (connect SLOs on the whole step, whose connects happen in the warm-up),
//! so the run evaluates them as it evaluates any threshold. A plan of several local
//! processes (`--procs`) runs through the coordinator (`cluster::coordinator::run`), and
//! each worker's own results (`worker-N.results.json` in the step's folder) are judged for
//! saturation on their own.

use std::path::Path;
use std::time::Duration;

use reports::schema::{CapacityStep, is_orderly_disconnect};
use reports::{RunFile, RunStatus, Section};
use tokio::sync::mpsc;

use super::{CapacityError, Checked, Request, Vary};
use crate::plan::{self, Plan, RawOutput, RawPhase, Scenario};

/// The measured phase's name (SLOs are evaluated on it).
pub const MEASURE: &str = "measure";
/// The warm-up phase's name.
pub const WARMUP: &str = "warmup";
/// Longest a step's measured window is made, as a multiple of `--step-duration`, to reach
/// the samples its percentile needs.
const MAX_LENGTHEN: u32 = 10;

/// A step that ran (or could not).
pub struct Done {
    pub step: CapacityStep,
    pub run: Option<RunFile>,
}

/// The step's folder inside the search's.
fn step_dir(out_dir: &Path, index: u32) -> std::path::PathBuf {
    out_dir.join(format!("step-{index:02}"))
}

/// The validated plan of a step at `load` with a measured window of `measured` (`ZERO`:
/// `--step-duration`), written into `out_dir`'s step folder `index`.
pub fn plan_for(
    req: &Request,
    c: &Checked,
    load: f64,
    measured: Duration,
    out_dir: &Path,
) -> Result<Plan, CapacityError> {
    plan_at(req, c, load, measured, &step_dir(out_dir, 1))
}

fn plan_at(
    req: &Request,
    c: &Checked,
    load: f64,
    measured: Duration,
    dir: &Path,
) -> Result<Plan, CapacityError> {
    let measured = if measured.is_zero() { c.step } else { measured };
    let mut raw = (req.base)();
    let mut phases = Vec::new();
    if !c.warmup.is_zero() && c.scenario != Scenario::Connect {
        let warm = loaded(one_phase(req)?, c, load)?;
        phases.push(RawPhase {
            name: Some(WARMUP.into()),
            duration: Some(Ok(c.warmup)),
            ..warm
        });
    }
    let measure = loaded(one_phase(req)?, c, load)?;
    phases.push(RawPhase {
        name: Some(MEASURE.into()),
        duration: Some(Ok(measured)),
        ..measure
    });
    raw.phases = phases;
    raw.name = Some("capacity".into());
    let thresholds = c.slos.iter().map(|t| step_threshold(&t.expr, t)).collect();
    let output = step_output(req, dir, thresholds);
    let plan =
        plan::from_raw(raw, None, &output).map_err(|e| CapacityError::usage(e.to_string()))?;
    if plan.target.endpoint.is_none() {
        return Err(CapacityError::usage(
            "swarm capacity needs the URL of the server to measure: an embedded server would \
             run in the swarm's own process, sharing its CPU, so the swarm's saturation could \
             not be told from the server's (start one: target-server --bind 127.0.0.1:3000)"
                .into(),
        ));
    }
    Ok(plan)
}

/// Refuses remote workers (`--expect-workers`) for a search that runs each step as a run
/// of its own (`kept` false): a remote worker serves one run, and such a search is many.
pub fn check_remote(plan: &Plan, kept: bool) -> Result<(), CapacityError> {
    if plan.scale.expect_workers > 0 && !kept {
        return Err(CapacityError::usage(
            "this search runs each step as a run of its own (a subscriber-count search with \
             --room-size or heartbeat-only clients), and a remote worker serves one run: \
             --expect-workers is refused for it (use --procs N on this machine, --rooms K \
             instead of --room-size, or run `swarm broadcast --expect-workers N` at a load \
             by hand)"
                .into(),
        ));
    }
    Ok(())
}

/// The threshold a step's run evaluates for SLO `expr`: on phase `measure`, except
/// connect and swarm metrics, which are the whole step's.
fn step_threshold(expr: &str, t: &reports::Threshold) -> String {
    if t.path.scenario == "connect" || t.path.scenario == "swarm" {
        expr.to_string()
    } else {
        format!("{MEASURE}.{}", expr.trim_start())
    }
}

/// The scenario's one raw phase, fresh.
fn one_phase(req: &Request) -> Result<RawPhase, CapacityError> {
    (req.base)()
        .phases
        .pop()
        .ok_or_else(|| CapacityError::usage("the scenario built no phase".into()))
}

/// `phase` at `load`.
fn loaded(mut phase: RawPhase, c: &Checked, load: f64) -> Result<RawPhase, CapacityError> {
    let whole = u32::try_from(load.round() as u64)
        .unwrap_or(u32::MAX)
        .max(1);
    match (c.scenario, c.vary) {
        (Scenario::Broadcast, Vary::Clients) => phase.subscribers = Some(Ok(whole)),
        (Scenario::Broadcast, _) => {
            if phase.server_publisher.is_some() {
                return Err(CapacityError::usage(
                    "--vary publish-rate needs swarm publishers, not --server-publisher \
                     (the server's own rate is set on the server)"
                        .into(),
                ));
            }
            let publishers = phase.publishers.unwrap_or(1).max(1);
            phase.rate = Some(Ok(load / f64::from(publishers)));
        }
        (_, Vary::Clients) => phase.clients = Some(Ok(whole)),
        _ => {
            let clients = match &phase.clients {
                Some(Ok(n)) => (*n).max(1),
                _ => 1,
            };
            phase.rate = Some(Ok(load / f64::from(clients)));
        }
    }
    Ok(phase)
}

/// The measured window for `per_s` samples per second: `--step-duration`, lengthened (up
/// to [`MAX_LENGTHEN`] times) to reach the samples the SLOs' highest percentile needs, and
/// the note that says so.
pub fn lengthen(c: &Checked, per_s: Option<f64>) -> (Duration, Option<String>) {
    if let (Some(per_s), true) = (per_s, c.samples_needed > 0) {
        let planned = per_s * c.step.as_secs_f64();
        if planned < c.samples_needed as f64 && per_s > 0.0 {
            let want =
                Duration::from_secs_f64(((c.samples_needed as f64 / per_s) * 10.0).ceil() / 10.0);
            let measured = want.min(c.step * MAX_LENGTHEN);
            let note = format!(
                "measured window lengthened from {:?} to {:?}: p{} needs {} samples, at {:.0}/s",
                c.step,
                measured,
                super::report::load_text(c.percentile.unwrap_or(99.0)),
                c.samples_needed,
                per_s
            );
            return (measured, Some(note));
        }
    }
    (c.step, None)
}

/// The plan of a search that keeps its clients (kept.rs): `steps` steps of phases
/// `warmup_NN` (when there is a warm-up) and `measure_NN`, step 1's at `load` with a
/// measured window of `measured`, the others at `later` as placeholders (the steering gives
/// each its length, rate and clients when it is decided; a client-count search's `later`
/// is its `--max`, so the run has room for every count it may ask for). No thresholds:
/// each step's SLOs are evaluated on its own phases as it is judged.
pub fn kept_plan(
    req: &Request,
    c: &Checked,
    (load, later): (f64, f64),
    measured: Duration,
    dir: &Path,
    steps: u32,
) -> Result<Plan, CapacityError> {
    let mut raw = (req.base)();
    let mut phases = Vec::new();
    for k in 1..=steps {
        let first = k == 1;
        let at = if first { load } else { later };
        // Only the run's first phase ramps the connects: the clients stay after it (a
        // phase with a connect rate and no new clients has no ramp anyway).
        let ramped = |p: RawPhase, keep: bool| -> RawPhase {
            if keep || p.connect_rate.is_some() {
                p
            } else {
                RawPhase {
                    ramp: Some(Ok(Duration::ZERO)),
                    ..p
                }
            }
        };
        if !c.warmup.is_zero() && c.scenario != Scenario::Connect {
            let warm = ramped(loaded(one_phase(req)?, c, at)?, phases.is_empty());
            phases.push(RawPhase {
                name: Some(super::kept::warmup_name(k)),
                duration: Some(Ok(c.warmup)),
                ..warm
            });
        }
        let measure = ramped(loaded(one_phase(req)?, c, at)?, phases.is_empty());
        phases.push(RawPhase {
            name: Some(super::kept::measure_name(k)),
            duration: Some(Ok(if first { measured } else { c.step })),
            ..measure
        });
    }
    raw.phases = phases;
    raw.name = Some("capacity".into());
    let output = step_output(req, dir, Vec::new());
    plan::from_raw(raw, None, &output).map_err(|e| CapacityError::usage(e.to_string()))
}

/// Samples per second the measured window yields (replies or deliveries); `None` for
/// connect, whose samples are its connects.
fn samples_per_s(plan: &Plan) -> Option<f64> {
    let p = plan.phases.iter().find(|p| p.name == MEASURE)?;
    match (p.scenario, &p.fanout) {
        (Scenario::Broadcast, Some(f)) => Some(
            p.rate_per_s * f64::from(f.publishers) * f64::from(f.subscribers)
                / f64::from(f.rooms.max(1)),
        ),
        (Scenario::Echo, _) => Some(p.rate_per_s * f64::from(p.clients)),
        _ => None,
    }
}

/// Runs step `index` at `load`.
pub async fn run(
    req: &Request,
    c: &Checked,
    index: u32,
    load: f64,
    out_dir: &Path,
    (args, threads): (Vec<String>, Option<u16>),
    interrupts: mpsc::UnboundedReceiver<()>,
) -> Result<Done, CapacityError> {
    let dir = step_dir(out_dir, index);
    let mut plan = plan_at(req, c, load, c.step, &dir)?;
    let (measured, lengthened) = lengthen(c, samples_per_s(&plan));
    if lengthened.is_some() {
        plan = plan_at(req, c, load, measured, &dir)?;
    }
    let (clients, rate_per_client) =
        plan.phases
            .iter()
            .find(|p| p.name == MEASURE)
            .map_or((0, 0.0), |p| {
                let clients = p.fanout.as_ref().map_or(p.clients, |f| f.subscribers);
                (u64::from(clients), p.rate_per_s)
            });
    let mut step = unjudged(
        (index, load),
        (clients, rate_per_client),
        (measured, lengthened),
        format!("step-{index:02}"),
    );
    let ran = if plan.scale.distributed(plan.max_clients()) {
        // Each worker rebuilds its plan from the command line it is handed: the search's,
        // naming this step (`--step-load`, `--step-window`; cli/capacity.rs).
        let mut args = args;
        args.extend([
            "--step-load".to_string(),
            load.to_string(),
            "--step-window".to_string(),
            format!("{}ms", measured.as_millis().max(1)),
        ]);
        crate::cluster::coordinator::run(plan, args, interrupts, threads).await
    } else {
        crate::run::execute(plan, args, interrupts).await
    };
    let finished = match ran {
        Ok(f) => f,
        Err(e) => {
            step.verdict = "could_not_run".into();
            step.reasons.push(e.to_string());
            return Ok(Done { step, run: None });
        }
    };
    let run = finished.run;
    judge(&mut step, &run, c, MEASURE, &Baseline::default());
    judge_workers(&mut step, &run, &dir);
    Ok(Done {
        step,
        run: Some(run),
    })
}

/// Step `index` at `load` before it ran: its `clients` and `rate` per client, its measured
/// window (and why it was lengthened), its folder.
pub fn unjudged(
    (index, load): (u32, f64),
    (clients, rate_per_client): (u64, f64),
    (measured, lengthened): (Duration, Option<String>),
    dir: String,
) -> CapacityStep {
    CapacityStep {
        index,
        load,
        clients,
        rate_per_client,
        verdict: String::new(),
        repeated: None,
        repeat_of: None,
        slos: Vec::new(),
        reasons: Vec::new(),
        measured_s: measured.as_secs_f64(),
        lengthened,
        samples: 0,
        throughput_per_s: 0.0,
        errors: 0,
        saturated_by: Vec::new(),
        dir,
        section: Section::default(),
    }
}

/// The output settings of a step's plan (quiet, into `dir`, `thresholds` on it).
fn step_output(req: &Request, dir: &Path, thresholds: Vec<String>) -> RawOutput {
    RawOutput {
        out: Some(dir.to_path_buf()),
        json: false,
        quiet: true,
        thresholds,
        ..req.output.clone()
    }
}

/// What a run had counted before the step being judged: zero for a step that is a run of
/// its own; the counts at the previous step's judgement in a search that keeps its clients
/// in one run (kept.rs), so that each step answers for its own failures only.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub connect_attempted: u64,
    pub connect_failed: u64,
    pub failed_by_kind: std::collections::BTreeMap<String, u64>,
    pub disconnects: std::collections::BTreeMap<String, u64>,
    pub samples_dropped: u64,
}

impl Baseline {
    /// The counts of `run` so far.
    pub fn of(run: &RunFile) -> Baseline {
        Baseline {
            connect_attempted: run.run.connect.attempted,
            connect_failed: run.run.connect.failed,
            failed_by_kind: run.run.connect.failed_by_kind.clone(),
            disconnects: run.run.disconnects.clone(),
            samples_dropped: run.health.summary.samples_dropped,
        }
    }
}

/// The step's figures and verdict from its run file: the phase `measure` is its measured
/// window; `base`, what the run had counted before the step.
pub fn judge(step: &mut CapacityStep, run: &RunFile, c: &Checked, measure: &str, base: &Baseline) {
    let section = run
        .phases
        .iter()
        .find(|p| p.name == measure)
        .map(|p| p.stats.clone())
        .unwrap_or_default();
    let secs = step.measured_s.max(1e-3);
    // A step run of its own (its phase `measure`) is the step; in a search that keeps its
    // clients the step is its phase `measure_NN` of the one run.
    let own_run = measure == MEASURE;
    let (samples, done) = match c.scenario {
        Scenario::Broadcast => section
            .broadcast
            .as_ref()
            .map_or((0, 0), |b| (b.latency.count, b.delivered)),
        Scenario::Connect => {
            let connect = if own_run {
                &run.run.connect
            } else {
                &section.connect
            };
            (
                connect.phases.total.as_ref().map_or(0, |d| d.count),
                connect.connected,
            )
        }
        _ => section
            .echo
            .as_ref()
            .map_or((0, 0), |e| (e.latency.count, e.received)),
    };
    step.samples = samples;
    // Answers per second: the mean of the run's per-second counts over the seconds wholly
    // inside the measured window (replies that drain after it are not the server's rate).
    let from_ms = section.start_offset_ms;
    let to_ms = from_ms + (step.measured_s * 1000.0) as u64;
    let inside: Vec<u64> = run
        .series
        .iter()
        .filter(|p| p.second * 1000 >= from_ms && (p.second + 1) * 1000 <= to_ms)
        .map(|p| match c.scenario {
            Scenario::Broadcast => p.delivered,
            _ => p.received,
        })
        .collect();
    // A connect step run of its own: its connects over the run; a kept one's is set from
    // its connect ramp (kept.rs, `connects_per_s`).
    step.throughput_per_s = if c.scenario == Scenario::Connect {
        let whole = (run.run.duration_ms as f64 / 1000.0).max(1e-3);
        done as f64 / whole
    } else if inside.is_empty() {
        done as f64 / secs
    } else {
        inside.iter().sum::<u64>() as f64 / inside.len() as f64
    };
    let echo_bad = section.echo.as_ref().map_or(0, |e| e.timeouts);
    let fan_bad = section.broadcast.as_ref().map_or(0, |b| b.lost);
    let connect_failed = run.run.connect.failed.saturating_sub(base.connect_failed);
    step.errors = echo_bad
        .saturating_add(fan_bad)
        .saturating_add(connect_failed)
        .saturating_add(section.errors.values().sum::<u64>());
    // The SLOs, as the user wrote them (the run evaluated them on phase `measure`).
    step.slos = run
        .thresholds
        .iter()
        .zip(&c.slos)
        .map(|(r, t)| reports::ThresholdResult {
            expr: t.expr.clone(),
            ..r.clone()
        })
        .collect();
    if c.samples_needed > 0
        && samples < c.samples_needed
        && !matches!(run.meta.status, RunStatus::Failed)
    {
        let note = format!(
            "only {samples} samples in the measured window (p{} wants {})",
            super::report::load_text(c.percentile.unwrap_or(99.0)),
            c.samples_needed
        );
        step.lengthened = Some(match step.lengthened.take() {
            Some(l) => format!("{l}; {note}"),
            None => note,
        });
    }
    let connect = &run.run.connect;
    let attempted = connect.attempted.saturating_sub(base.connect_attempted);
    if connect_failed > 0 {
        let kinds: Vec<String> = connect
            .failed_by_kind
            .iter()
            .map(|(k, n)| {
                (
                    k,
                    n.saturating_sub(base.failed_by_kind.get(k).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        step.reasons.push(format!(
            "the server refused or failed {} of {} connect(s) ({})",
            connect_failed,
            attempted,
            kinds.join(", ")
        ));
    }
    let closed: Vec<String> = run
        .run
        .disconnects
        .iter()
        .map(|(r, n)| {
            (
                r,
                n.saturating_sub(base.disconnects.get(r).copied().unwrap_or(0)),
            )
        })
        .filter(|(r, n)| *n > 0 && !is_orderly_disconnect(r))
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    if !closed.is_empty() {
        step.reasons.push(format!(
            "connections were closed under the clients: {}",
            closed.join(", ")
        ));
    }
    // Saturation of the measured window (the warm-up's connect burst does not void the
    // step): the run's own rule (`reports::saturation`) on the window's seconds.
    let window = measured_saturation(run, &section);
    let h = &run.health.summary;
    let dropped = h.samples_dropped.saturating_sub(base.samples_dropped);
    if window.saturated || dropped > 0 {
        step.saturated_by = window.saturated_by.clone();
        if dropped > 0 {
            step.saturated_by.push("recorder".into());
        }
        steal_noted(step, &window);
    }
    // Connections closed under a swarm that was saturated for even one second (below the
    // run-wide rule's two seconds and 5%) are not laid on the server: an overloaded swarm
    // reads late, and a server then closes its connections as slow consumers.
    if step.saturated_by.is_empty() && !closed.is_empty() && h.saturated_seconds > 0 {
        step.saturated_by = saturation_lines(run);
        step.saturated_by.push(format!(
            "{} saturated second(s) while the server closed connections",
            h.saturated_seconds
        ));
    }
    step.verdict = match run.meta.status {
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed => {
            step.reasons.push(
                run.meta
                    .status_detail
                    .clone()
                    .unwrap_or_else(|| "no connection succeeded".into()),
            );
            "could_not_run"
        }
        _ if !step.saturated_by.is_empty() => "saturated",
        _ if step.slos.iter().any(|t| !t.pass) || !step.reasons.is_empty() => "fail",
        _ => "pass",
    }
    .to_string();
    step.section = section;
}

/// Saturation worker by worker, when the step ran over workers: each worker's own run file
/// (`worker-N.results.json`, kept in the step's folder by the coordinator), judged on its
/// measured window by the same rule as a one-process step. The merged figures add the
/// workers' CPU and keep the worst lag, so one saturated worker among idle ones could hide
/// in the sum; here it cannot. A lost worker counts as the generator's limit too (its
/// figures are missing from the step). Turns a `pass` or `fail` into `saturated` when any worker saturated.
fn judge_workers(step: &mut CapacityStep, run: &RunFile, dir: &Path) {
    if run.workers.len() < 2 {
        return;
    }
    let files: Vec<(u32, Result<Option<RunFile>, String>)> = run
        .workers
        .iter()
        .map(|w| {
            let own = if w.status != "completed" {
                Err(w.lost_reason.clone().unwrap_or_default())
            } else {
                Ok(RunFile::read(dir.join(format!("worker-{}.results.json", w.index))).ok())
            };
            (w.index, own)
        })
        .collect();
    judge_worker_files(step, &files, MEASURE);
}

/// [`judge_workers`] on the workers' own records: each worker's run file (`Ok(None)`: none
/// could be read), or why it was lost, judged on its phase `measure`.
pub fn judge_worker_files(
    step: &mut CapacityStep,
    files: &[(u32, Result<Option<RunFile>, String>)],
    measure: &str,
) {
    let mut hot = Vec::new();
    for (index, own) in files {
        let own = match own {
            // A worker that died or stopped reporting: the generator did not hold the
            // load (the step's figures are short), which is not the server's fail.
            Err(why) => {
                hot.push(format!("worker {index} lost ({why})"));
                continue;
            }
            Ok(None) => continue,
            Ok(Some(own)) => own,
        };
        let section = own
            .phases
            .iter()
            .find(|p| p.name == measure)
            .map(|p| p.stats.clone())
            .unwrap_or_default();
        let window = measured_saturation(own, &section);
        let mut by = window.saturated_by.clone();
        if own.health.summary.samples_dropped > 0 {
            by.push("recorder".into());
        }
        if !by.is_empty() {
            steal_noted(step, &window);
            let mut seen = std::collections::BTreeSet::new();
            by.retain(|b| seen.insert(b.clone()));
            hot.push(format!("worker {index}: {}", by.join("+")));
        }
    }
    if hot.is_empty() {
        return;
    }
    step.saturated_by.extend(hot);
    if matches!(step.verdict.as_str(), "pass" | "fail") {
        step.verdict = "saturated".into();
    }
}

/// Steal in a saturated window from which the step's reasons name it.
const STEAL_NOTED_PERCENT: f64 = 1.0;

/// When the hypervisor took the machine's CPU in a saturated step's window (steal of
/// [`STEAL_NOTED_PERCENT`] or more in a second), says so in the step's reasons: the
/// swarm's lateness then came, at least in part, from outside the machine. Said once a
/// step (local workers share one machine).
fn steal_noted(step: &mut CapacityStep, window: &reports::HealthSummary) {
    const SAID: &str = "the machine's CPU was taken from outside";
    if window.steal_percent_max >= STEAL_NOTED_PERCENT
        && !step.reasons.iter().any(|r| r.starts_with(SAID))
    {
        step.reasons.push(format!(
            "{SAID}: the hypervisor gave up to {:.0}% of it to other guests in a second of \
             the window (steal)",
            window.steal_percent_max
        ));
    }
}

/// [`reports::saturation::summarize`] of the seconds of the measured window (`section`).
fn measured_saturation(run: &RunFile, section: &Section) -> reports::HealthSummary {
    let lo = section.start_offset_ms / 1000;
    let hi = section.end_offset_ms.div_ceil(1000).max(lo + 1);
    let health: Vec<_> = run
        .health
        .series
        .iter()
        .filter(|p| (lo..hi).contains(&p.second))
        .cloned()
        .collect();
    let seconds: Vec<_> = run
        .series
        .iter()
        .filter(|p| (lo..hi).contains(&p.second))
        .cloned()
        .collect();
    reports::saturation::summarize(&health, run.health.cores, &seconds)
}

/// Which saturation lines (`reports::saturation`) any second of the run crossed.
fn saturation_lines(run: &RunFile) -> Vec<String> {
    use reports::saturation::{CPU_SATURATION_SHARE, LAG_SATURATION_US};
    let cpu_line = f64::from(run.health.cores.max(1)) * 100.0 * CPU_SATURATION_SHARE;
    let mut lines = Vec::new();
    if run.health.series.iter().any(|p| p.cpu_percent >= cpu_line) {
        lines.push("cpu".to_string());
    }
    if run
        .health
        .series
        .iter()
        .any(|p| p.sched_lag_max_us >= LAG_SATURATION_US)
    {
        lines.push("sched_lag".to_string());
    }
    if run
        .series
        .iter()
        .any(|p| p.send_lag_p99_us.is_some_and(|l| l >= LAG_SATURATION_US))
    {
        lines.push("send_lag".to_string());
    }
    lines
}

/// What made a failing step fail: its failed SLOs, else its reasons.
pub fn failed_names(step: &CapacityStep) -> Vec<String> {
    let slos: Vec<String> = step
        .slos
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.clone())
        .collect();
    if slos.is_empty() {
        step.reasons.clone()
    } else {
        slos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reports::WorkerResult;

    /// Writes worker `index`'s own run file into `dir`: the example run, its `steady`
    /// phase as the step's measured window (seconds 2-5), its scheduler 20 ms late in the
    /// `hot` seconds.
    fn worker_file(dir: &Path, index: u32, hot: std::ops::Range<u64>) {
        let mut r = reports::fixture::example_run(10);
        r.phases[1].name = MEASURE.into();
        for p in r
            .health
            .series
            .iter_mut()
            .filter(|p| hot.contains(&p.second))
        {
            p.sched_lag_max_us = 20_000;
        }
        r.write(dir.join(format!("worker-{index}.results.json")))
            .unwrap();
    }

    fn merged(statuses: &[&str]) -> RunFile {
        let mut run = reports::fixture::example_run(20);
        run.workers = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| WorkerResult {
                index: i as u32,
                status: s.to_string(),
                lost_reason: (*s != "completed").then(|| "it stopped reporting".into()),
                ..Default::default()
            })
            .collect();
        run
    }

    fn step(verdict: &str) -> CapacityStep {
        CapacityStep {
            verdict: verdict.into(),
            ..Default::default()
        }
    }

    /// A saturated window with the machine's CPU taken from outside says so, once; under
    /// 1% of steal says nothing.
    #[test]
    fn steal_in_a_saturated_window_is_named_once() {
        let window = |steal| reports::HealthSummary {
            saturated: true,
            steal_percent_max: steal,
            ..Default::default()
        };
        let mut s = step("saturated");
        steal_noted(&mut s, &window(0.5));
        assert!(s.reasons.is_empty(), "{:?}", s.reasons);
        steal_noted(&mut s, &window(37.4));
        steal_noted(&mut s, &window(12.0));
        assert_eq!(s.reasons.len(), 1, "{:?}", s.reasons);
        assert!(s.reasons[0].contains("up to 37% of it"), "{}", s.reasons[0]);
    }

    /// One worker saturated in its own measured window makes the step `saturated`, named
    /// by worker; a worker hot only in the warm-up, or idle, does not.
    #[test]
    fn each_worker_is_judged_on_its_own_window() {
        let dir = tempfile::tempdir().unwrap();
        worker_file(dir.path(), 0, 0..2);
        worker_file(dir.path(), 1, 0..0);
        let run = merged(&["completed", "completed"]);
        let mut s = step("pass");
        judge_workers(&mut s, &run, dir.path());
        assert_eq!(s.verdict, "pass", "warm-up lag voids nothing: {s:?}");
        assert!(s.saturated_by.is_empty());

        worker_file(dir.path(), 1, 2..5);
        let mut s = step("fail");
        judge_workers(&mut s, &run, dir.path());
        assert_eq!(s.verdict, "saturated");
        assert_eq!(s.saturated_by, vec!["worker 1: sched_lag".to_string()]);
    }

    /// A lost worker is the generator's limit (its figures are missing), not the server's
    /// fail; one process alone is not judged here (its run is the step's own).
    #[test]
    fn a_lost_worker_is_the_generators_limit() {
        let dir = tempfile::tempdir().unwrap();
        worker_file(dir.path(), 0, 0..0);
        let mut s = step("fail");
        judge_workers(&mut s, &merged(&["completed", "lost"]), dir.path());
        assert_eq!(s.verdict, "saturated");
        assert_eq!(
            s.saturated_by,
            vec!["worker 1 lost (it stopped reporting)".to_string()]
        );
        let mut s = step("pass");
        judge_workers(&mut s, &merged(&["completed"]), dir.path());
        assert_eq!(s.verdict, "pass");
    }
}
