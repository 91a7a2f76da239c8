//! `swarm merge RUN... -o DIR`: results of runs started apart (for example one plan run by
//! hand on several machines) merged into one results folder.
//!
//! Receives results files (or run folders holding `results.json`). Emits `DIR/results.json`,
//! `DIR/report.html` and, when every input folder has its `histograms.hlog`, the summed
//! `DIR/histograms.hlog`. Totals and whole-run histograms are exact; per-second percentiles
//! are exact only from the interval logs (without them each second keeps the worst input's
//! value, an upper bound — said on stderr).
//! Must not: write anything when an input cannot be read, or re-use the inputs' threshold
//! verdicts (they were judged apart; `swarm report`/thresholds judge the merged file).

use std::path::{Path, PathBuf};

use clap::Args;
use reports::RunFile;

use super::{CommandError, Outcome};

/// `swarm merge` arguments.
#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// Results files (`results.json`) or run folders, two or more.
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,
    /// Output folder (created; must not hold another run's files).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

pub const MERGE_HELP: &str = "\
Examples:
  swarm merge host-a/results.json host-b/results.json -o merged/
  swarm merge swarm-results/echo-a swarm-results/echo-b -o merged/

Counters add up and whole-run histograms add exactly. Per-second percentiles are exact
when every input folder holds its histograms.hlog (they are summed per second, aligned
on wall-clock time); otherwise each second shows the worst input's value, an upper bound.
A run of several processes (--procs, --expect-workers) is merged by its coordinator; this
command is for runs that were started apart.

Exit codes: 0 written, 2 an input is missing, invalid, or of another schema version.";

/// Reads, merges and writes; the outcome says where the files went.
pub fn run(args: &MergeArgs) -> Result<Outcome, CommandError> {
    let mut files = Vec::with_capacity(args.runs.len());
    let mut logs = Vec::new();
    for r in &args.runs {
        let path = if r.is_dir() {
            r.join("results.json")
        } else {
            r.clone()
        };
        files.push(RunFile::read(&path)?);
        let hlog = path.with_file_name("histograms.hlog");
        if hlog.is_file() {
            logs.push(hlog);
        }
    }
    let mut merged = reports::merge(&files).map_err(|e| CommandError::Invalid(e.to_string()))?;
    let mut stderr = Vec::new();
    std::fs::create_dir_all(&args.out).map_err(|source| CommandError::Write {
        path: args.out.clone(),
        source,
    })?;
    if logs.len() == files.len() {
        let readers = logs
            .iter()
            .map(|p| {
                let f = std::fs::File::open(p).map_err(|source| CommandError::Write {
                    path: p.clone(),
                    source,
                })?;
                Ok((p.display().to_string(), std::io::BufReader::new(f)))
            })
            .collect::<Result<Vec<_>, CommandError>>()?;
        let iv = reports::intervals::merge_logs(readers)
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        reports::intervals::apply_to_series(&mut merged, &iv);
        stderr.extend(iv.warnings.iter().cloned());
        write_hlog(&args.out.join("histograms.hlog"), &iv)?;
        stderr.push("per-second percentiles: exact, from the summed interval logs".into());
    } else {
        stderr.push(format!(
            "per-second percentiles: the worst input's in each second (an upper bound): only \
             {} of {} inputs have a histograms.hlog beside them",
            logs.len(),
            files.len()
        ));
    }
    let paths =
        crate::output::write_outputs(&args.out, &merged).map_err(|source| CommandError::Write {
            path: args.out.clone(),
            source,
        })?;
    stderr.push(format!(
        "merged {} runs: {}",
        files.len(),
        paths.results.display()
    ));
    Ok(Outcome {
        stdout: None,
        stderr,
        exit: 0,
    })
}

fn write_hlog(path: &Path, iv: &reports::intervals::MergedIntervals) -> Result<(), CommandError> {
    crate::cluster::merge::write_intervals(path, iv).map_err(|source| CommandError::Write {
        path: path.to_path_buf(),
        source,
    })
}
