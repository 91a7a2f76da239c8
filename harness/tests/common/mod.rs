//! The swarm's side of the end-to-end tests: how a `swarm` command line runs in-process
//! (testkit's [`testkit::Swarm`], so [`E2e`] is testkit's server + temp dir + run scaffold
//! with harness's run), and assertions several tests share.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use harness::cli::Cli;
use harness::plan::{self, Plan};
use harness::run::{self, Finished};
use tokio::sync::mpsc;

/// A reference server, a temp dir and in-process swarm runs (testkit's scaffold).
pub type E2e = testkit::EmbeddedRun<InProcess>;

/// Runs a command line through `harness::run::execute` in this test's process.
pub struct InProcess;

impl testkit::Swarm for InProcess {
    type Finished = Finished;
    async fn run(argv: Vec<String>) -> Finished {
        run(plan_from(argv)).await
    }
}

/// The plan an argv (`swarm ...`) describes.
fn plan_from(argv: Vec<String>) -> Plan {
    let cli = Cli::try_parse_from(argv).expect("valid command line");
    plan::from_command(&cli.command).expect("valid plan")
}

/// The plan `argv` describes, with `--quiet --out <dir>` added.
pub fn plan_for(args: &[&str], out: &Path) -> Plan {
    plan_from(testkit::swarm_argv(args, out))
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
