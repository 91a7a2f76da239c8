//! The workers' results made into the run's one results folder.
//!
//! Receives what each worker sent ([`WorkerRecord`]: its last results file — final, or its
//! last checkpoint when it was lost — and every interval-log line it streamed) and the
//! coordinator's own `meta`. Emits one [`RunFile`]: histograms and counters added exactly
//! ([`reports::merge::merge`]), per-second percentiles from the summed interval histograms
//! ([`reports::intervals`]), the plan and times of the coordinator, `meta.shards`, and the
//! `workers` section; and writes the summed intervals as the run's `histograms.hlog`.
//! Must not: drop what a lost worker sent before it was lost, or let one worker's malformed
//! file stop the merge of the others (it is reported, and that worker counts as lost).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reports::{RunFile, RunMeta, RunStatus, WorkerResult};

use crate::recorder::HlogWriter;

/// Everything the coordinator knows about one worker at the end.
#[derive(Debug, Clone, Default)]
pub struct WorkerRecord {
    pub index: u32,
    pub host: String,
    pub pid: u32,
    /// Clients the worker owned at most at once.
    pub clients: u32,
    /// Its final results file, else its last checkpoint (JSON text).
    pub results: Option<String>,
    /// Whether `results` is the final file.
    pub finished: bool,
    /// Every interval-log line it sent, in order.
    pub hlog: String,
    /// Why it was lost, if it was.
    pub lost: Option<String>,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub clock_offset_ns: i64,
    pub clock_bound_ns: u64,
    /// The target it drove (redacted URL).
    pub target: String,
}

/// The merged run (not yet judged: the caller sets status, thresholds) and the warnings met.
pub struct Merged {
    pub run: RunFile,
    pub warnings: Vec<String>,
}

/// Merges the workers' records under `meta`; writes the summed intervals to `hlog_path`.
pub fn merge(
    workers: &mut [WorkerRecord],
    mut meta: RunMeta,
    hlog_path: &Path,
) -> Result<Merged, String> {
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    for w in workers.iter_mut() {
        let Some(text) = &w.results else { continue };
        match RunFile::from_slice(text.as_bytes(), format!("worker {}", w.index)) {
            Ok(f) => files.push((w.index, f)),
            Err(e) => {
                warnings.push(format!(
                    "worker {}: its results were rejected: {e}",
                    w.index
                ));
                w.lost
                    .get_or_insert_with(|| format!("its results were rejected: {e}"));
            }
        }
    }
    let runs: Vec<RunFile> = files.iter().map(|(_, f)| f.clone()).collect();
    let mut run = if runs.is_empty() {
        RunFile {
            schema_version: reports::SCHEMA_VERSION,
            meta: meta.clone(),
            run: Default::default(),
            phases: Vec::new(),
            series: Vec::new(),
            health: Default::default(),
            thresholds: Vec::new(),
            workers: Vec::new(),
            targets: Vec::new(),
            live: None,
            capacity: None,
        }
    } else {
        reports::merge::merge(&runs).map_err(|e| e.to_string())?
    };
    let logs = workers
        .iter()
        .map(|w| (format!("worker {}", w.index), w.hlog.as_bytes()))
        .collect();
    let intervals = reports::intervals::merge_logs(logs).map_err(|e| e.to_string())?;
    warnings.extend(intervals.warnings.iter().cloned());
    reports::intervals::apply_to_series(&mut run, &intervals);
    if let Err(e) = write_intervals(hlog_path, &intervals) {
        warnings.push(format!("histograms.hlog not written: {e}"));
    }
    // The coordinator's meta (its plan, URL, arguments and times), with the merged status.
    meta.status = run.meta.status;
    meta.status_detail = run.meta.status_detail.clone();
    meta.interrupted |= run.meta.interrupted;
    meta.shards = workers.len() as u32;
    meta.machine = run.meta.machine.clone();
    meta.machine.hostname = hosts(workers);
    meta.ended_at_unix_ms = run.meta.ended_at_unix_ms.max(meta.ended_at_unix_ms);
    run.meta = meta;
    run.workers = workers
        .iter()
        .map(|w| worker_result(w, files.iter().find(|(i, _)| *i == w.index)))
        .collect();
    run.targets = by_target(workers, &files)?;
    mark_lost(&mut run, workers);
    Ok(Merged { run, warnings })
}

/// Each target's share of a run against several: its workers' files merged as the whole
/// run's are. Empty when every worker drove the same target.
fn by_target(
    workers: &[WorkerRecord],
    files: &[(u32, RunFile)],
) -> Result<Vec<reports::TargetResult>, String> {
    let mut urls: Vec<&str> = Vec::new();
    for w in workers {
        if !urls.contains(&w.target.as_str()) {
            urls.push(&w.target);
        }
    }
    if urls.len() < 2 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for url in urls {
        let mine: Vec<&WorkerRecord> = workers.iter().filter(|w| w.target == url).collect();
        let runs: Vec<RunFile> = files
            .iter()
            .filter(|(i, _)| mine.iter().any(|w| w.index == *i))
            .map(|(_, f)| f.clone())
            .collect();
        let run = match runs.is_empty() {
            true => Default::default(),
            false => reports::merge::merge(&runs).map_err(|e| e.to_string())?.run,
        };
        out.push(reports::TargetResult {
            url: url.to_string(),
            workers: mine.iter().map(|w| w.index).collect(),
            clients: mine.iter().map(|w| u64::from(w.clients)).sum(),
            run,
        });
    }
    Ok(out)
}

fn hosts(workers: &[WorkerRecord]) -> String {
    let mut hosts: Vec<&str> = Vec::new();
    for w in workers {
        if !hosts.contains(&w.host.as_str()) {
            hosts.push(&w.host);
        }
    }
    hosts.join(",")
}

fn worker_result(w: &WorkerRecord, file: Option<&(u32, RunFile)>) -> WorkerResult {
    let f = file.map(|(_, f)| f);
    WorkerResult {
        index: w.index,
        host: w.host.clone(),
        pid: w.pid,
        clients: u64::from(w.clients),
        connects: f.map_or(0, |f| f.run.connect.connected),
        errors: f.map_or(0, |f| f.run.errors.values().sum()),
        cpu_seconds: w.cpu_seconds,
        peak_rss_bytes: w.peak_rss_bytes,
        sched_lag_max_us: f.map_or(0, |f| f.health.summary.sched_lag_max_us),
        saturated: f.is_some_and(|f| f.health.summary.saturated),
        clock_offset_us: w.clock_offset_ns as f64 / 1000.0,
        clock_offset_bound_us: w.clock_bound_ns as f64 / 1000.0,
        status: if w.lost.is_some() {
            "lost"
        } else {
            "completed"
        }
        .into(),
        lost_reason: w.lost.clone(),
        target: w.target.clone(),
    }
}

/// A run that lost a worker is `degraded` (unless interrupted or failed), naming it.
fn mark_lost(run: &mut RunFile, workers: &[WorkerRecord]) {
    let lost: Vec<String> = workers
        .iter()
        .filter_map(|w| {
            w.lost
                .as_ref()
                .map(|why| format!("worker {} ({why})", w.index))
        })
        .collect();
    if lost.is_empty() {
        return;
    }
    let detail = format!(
        "{} of {} worker(s) lost: {}; what they sent before is included, the rest of their \
         shard is missing",
        lost.len(),
        workers.len(),
        lost.join("; ")
    );
    if matches!(
        run.meta.status,
        RunStatus::Completed | RunStatus::Running | RunStatus::Degraded
    ) {
        run.meta.status = RunStatus::Degraded;
    }
    run.meta.status_detail = Some(match run.meta.status_detail.take() {
        Some(d) if !d.is_empty() => format!("{detail}. {d}"),
        _ => detail,
    });
}

/// Writes summed intervals as an interval log starting at their base time.
pub fn write_intervals(
    path: &Path,
    iv: &reports::intervals::MergedIntervals,
) -> std::io::Result<()> {
    let base = UNIX_EPOCH + Duration::from_secs_f64(iv.base_unix_s.max(0.0));
    let mut w = HlogWriter::create(path, base.min(SystemTime::now()))?;
    for ((second, tag), h) in &iv.by_second {
        w.write(tag, h, Duration::from_secs(*second), Duration::from_secs(1))?;
    }
    w.flush()
}
