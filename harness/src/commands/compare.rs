//! `swarm compare BASE.json NEW.json [-o compare.html] [--noise 5%] [--max-regression 10%]`.
//!
//! Receives the arguments; reads both results files, compares them with
//! [`reports::compare`] and emits an [`Outcome`] whose exit code is 1 when a metric of NEW
//! is worse than BASE beyond `--max-regression`. Without `-o` the Markdown comparison goes
//! to stdout (`--format html` without `-o` writes `compare.html`).
//! Must not: exit 0 when a metric regressed beyond the limit.

use std::path::PathBuf;

use clap::Args;
use reports::RunFile;
use reports::compare::{CompareOptions, compare, render};

use super::{CommandError, Destination, Format, Outcome, deliver, pick_format};

/// `swarm compare` arguments.
#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// The reference results file.
    pub base: PathBuf,
    /// The results file to judge against BASE.
    pub new: PathBuf,
    /// Output file; `-` for stdout. Default: Markdown to stdout.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// html or md (default: from -o's extension, else html when -o is given, md on stdout).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Relative changes up to this are "unchanged", e.g. 5% (or 5).
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub noise: f64,
    /// Worse by more than this fails the comparison (exit code 1), e.g. 10%.
    #[arg(long, default_value = "10%", value_parser = parse_percent)]
    pub max_regression: f64,
}

pub const COMPARE_HELP: &str = "\
Examples:
  swarm compare last-week/results.json results.json
  swarm compare base.json new.json --noise 3% --max-regression 20% -o compare.html
  swarm compare base.json new.json > comment.md     (Markdown for a pull request)

Each metric is named as in thresholds (e.g. steady.echo.latency.p99) and has a direction:
lower is better for latency, loss, errors and CPU, higher for throughput and reach (see
docs/results-format.md). Counts with a base (timeouts, lost) compare as a percentage of it.
Exit codes: 0 no regression beyond --max-regression, 1 a regression beyond it,
2 a file is missing or invalid.";

/// `5%`, `5`, `0.5%` -> percent.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("invalid percentage {s:?}: write e.g. 5% or 12.5%"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("invalid percentage {s:?}: must be 0% or more"));
    }
    Ok(v)
}

pub fn run(args: &CompareArgs) -> Result<Outcome, CommandError> {
    let base = RunFile::read(&args.base)?;
    let new = RunFile::read(&args.new)?;
    let options = CompareOptions {
        noise_pct: args.noise,
        max_regression_pct: args.max_regression.max(args.noise),
    };
    let c = compare(
        &base,
        &args.base.display().to_string(),
        &new,
        &args.new.display().to_string(),
        options,
    );
    let format = match (args.format, &args.out) {
        (None, None) => Format::Md,
        (f, out) => pick_format(f, out.as_deref()),
    };
    let dest = match (&args.out, format) {
        (Some(p), _) if p.as_os_str() == "-" => Destination::Stdout,
        (Some(p), _) => Destination::File(p.clone()),
        (None, Format::Html) => Destination::File(PathBuf::from("compare.html")),
        (None, Format::Md) => Destination::Stdout,
    };
    let text = match format {
        Format::Html => render::render_html(&c)?,
        Format::Md => render::render_markdown(&c)?,
    };
    let mut outcome = deliver(text, &dest, "comparison")?;
    outcome.stderr.push(c.headline.clone());
    outcome.exit = if c.passed { 0 } else { 1 };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("5%"), Ok(5.0));
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("five").is_err());
    }
}
