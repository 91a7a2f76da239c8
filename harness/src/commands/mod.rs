//! `swarm report`, `swarm compare` and `swarm merge`: commands that read results files instead of running
//! a plan.
//!
//! Receives a [`Request`] (the binary converts `swarm report|compare` into one); emits an
//! [`Outcome`] (what to print on stdout, lines for stderr, the exit code) or a
//! [`CommandError`].
//! Must not: import the CLI, print (the binary does), or open a socket.

pub mod compare;
pub mod merge;
pub mod report;

use std::path::{Path, PathBuf};

use clap::ValueEnum;

/// A command that reads results files.
#[derive(Debug, Clone)]
pub enum Request {
    Report(report::ReportArgs),
    Compare(compare::CompareArgs),
    Merge(merge::MergeArgs),
}

/// What a finished command wants shown, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Printed on stdout as is (a Markdown document, when asked for on stdout).
    pub stdout: Option<String>,
    /// One line each on stderr (where files went, the verdict).
    pub stderr: Vec<String>,
    /// 0 ok, 1 a comparison failed.
    pub exit: u8,
}

/// Why a command could not do its work (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Read(#[from] reports::RunFileError),
    #[error(transparent)]
    Render(#[from] reports::RenderError),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Output format of `report` and `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One self-contained HTML file (charts inline, works offline).
    Html,
    /// GitHub-flavoured Markdown, for a CI comment or job summary.
    Md,
}

/// Where the rendered text goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// The format asked for, or the one `-o`'s extension implies (`.md` = Markdown), else HTML.
pub fn pick_format(format: Option<Format>, out: Option<&Path>) -> Format {
    format.unwrap_or_else(
        || match out.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some("md" | "markdown") => Format::Md,
            _ => Format::Html,
        },
    )
}

/// Writes `text` to `dest`; returns the outcome part that says where it went.
pub fn deliver(text: String, dest: &Destination, what: &str) -> Result<Outcome, CommandError> {
    match dest {
        Destination::Stdout => Ok(Outcome {
            stdout: Some(text),
            stderr: Vec::new(),
            exit: 0,
        }),
        Destination::File(path) => {
            reports::file::write_atomic(path, text.as_bytes()).map_err(|source| {
                CommandError::Write {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(Outcome {
                stdout: None,
                stderr: vec![format!("{what}: {}", path.display())],
                exit: 0,
            })
        }
    }
}

/// Runs `report` or `compare`.
pub fn run(request: &Request) -> Result<Outcome, CommandError> {
    match request {
        Request::Report(args) => report::run(args),
        Request::Compare(args) => compare::run(args),
        Request::Merge(args) => merge::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_flag_then_extension() {
        assert_eq!(
            pick_format(Some(Format::Md), Some(Path::new("x.html"))),
            Format::Md
        );
        assert_eq!(pick_format(None, Some(Path::new("x.md"))), Format::Md);
        assert_eq!(pick_format(None, Some(Path::new("x.html"))), Format::Html);
        assert_eq!(pick_format(None, None), Format::Html);
    }
}
