//! `swarm report RESULTS.json [-o report.html] [--format html|md]`.
//!
//! Receives the arguments; reads and checks the results file, renders it with the
//! `reports` crate and emits an [`Outcome`]: HTML goes to `-o`, or to `report.html` beside
//! the results file; Markdown goes to `-o`, or to stdout. `-o -` is stdout.
//! Must not: write anything when the results file cannot be read (the error says why).

use std::path::PathBuf;

use clap::Args;
use reports::RunFile;

use super::{CommandError, Destination, Format, Outcome, deliver, pick_format};

/// `swarm report` arguments.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// The results file of a run (`results.json`).
    pub results: PathBuf,
    /// Output file; `-` for stdout. Default: HTML to `report.html` beside RESULTS,
    /// Markdown to stdout.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// html (default, or from -o's extension) or md.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub const REPORT_HELP: &str = "\
Examples:
  swarm report swarm-results/echo-20250101-120000/results.json
  swarm report results.json -o /tmp/report.html
  swarm report results.json --format md >> \"$GITHUB_STEP_SUMMARY\"

Exit codes: 0 written, 2 the results file is missing, invalid or of another schema version.";

pub fn run(args: &ReportArgs) -> Result<Outcome, CommandError> {
    let run = RunFile::read(&args.results)?;
    let format = pick_format(args.format, args.out.as_deref());
    let dest = match (&args.out, format) {
        (Some(p), _) if p.as_os_str() == "-" => Destination::Stdout,
        (Some(p), _) => Destination::File(p.clone()),
        (None, Format::Html) => Destination::File(args.results.with_file_name("report.html")),
        (None, Format::Md) => Destination::Stdout,
    };
    let text = match format {
        Format::Html => reports::render_html(&run)?,
        Format::Md => reports::render_markdown(&run)?,
    };
    deliver(text, &dest, "report")
}
