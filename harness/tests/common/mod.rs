//! Shared helpers of the swarm's end-to-end tests: a target-server on 127.0.0.1:0 on its
//! own runtime thread, plans from command lines, and the bounded in-process run.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use harness::cli::Cli;
use harness::embedded::Embedded;
use harness::plan::{self, Plan};
use harness::run::{self, Finished};
use tokio::sync::mpsc;

/// A test dependency (Node.js, Chromium, Python) is missing. With the environment variable
/// `CI` set (non-empty) the test fails with `why`: a CI run never passes by skipping.
/// Otherwise prints `SKIPPED <test>: <why>` and the caller returns.
pub fn missing_dependency(test: &str, why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why}; CI is set, so a missing test dependency fails the test");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// A reference server for one test (stops when dropped).
pub fn server(config: target_server::Config) -> Embedded {
    Embedded::start(config).expect("start target-server")
}

/// The plan `argv` describes, with `--quiet --out <dir>` added.
pub fn plan_for(args: &[&str], out: &Path) -> Plan {
    let mut argv: Vec<String> = std::iter::once("swarm")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    argv.extend([
        "--quiet".to_string(),
        "--out".to_string(),
        out.display().to_string(),
    ]);
    let cli = Cli::try_parse_from(argv).expect("valid command line");
    plan::from_command(&cli.command).expect("valid plan")
}

/// Runs `plan` in-process, bounded to a minute.
pub async fn run(plan: Plan) -> Finished {
    let (_tx, rx) = mpsc::unbounded_channel();
    tokio::time::timeout(Duration::from_secs(60), run::execute(plan, vec![], rx))
        .await
        .expect("run finished within a minute")
        .expect("run happened")
}

/// Asserts the echo accounting identity on a section.
pub fn assert_echo_accounting(section: &reports::Section) -> reports::EchoStats {
    let echo = section.echo.clone().expect("echo stats");
    assert_eq!(
        echo.sent,
        echo.received + echo.timeouts + echo.unanswered_at_stop,
        "sent = received + timeouts + unanswered_at_stop: {echo:?}"
    );
    echo
}

/// Count of a connect phase distribution (0 when absent).
pub fn phase_count(section: &reports::Section, name: &str) -> u64 {
    section.connect.phases.get(name).map_or(0, |d| d.count)
}
