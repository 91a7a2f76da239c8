//! The `swarm` binary: parses the command line, validates the plan, runs it on a tokio
//! runtime, prints the summary and exits with the run's code (see `swarm --help`).

use std::process::ExitCode;

use clap::Parser;
use harness::cli::Cli;
use harness::run::{self, Exit};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Exit::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(e) = cli.misplaced() {
        let _ = e.print();
        return ExitCode::from(Exit::Usage.code());
    }
    if let harness::cli::Command::Completions(c) = &cli.command {
        use clap::CommandFactory;
        let mut command = Cli::command();
        clap_complete::generate(c.shell, &mut command, "swarm", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(request) = cli.command.tool() {
        return match harness::commands::run(&request) {
            Ok(out) => {
                if let Some(text) = out.stdout {
                    print!("{text}");
                }
                for line in out.stderr {
                    eprintln!("swarm: {line}");
                }
                ExitCode::from(out.exit)
            }
            Err(e) => {
                eprintln!("swarm: {e}");
                ExitCode::from(Exit::Usage.code())
            }
        };
    }
    if let harness::cli::Command::Worker(w) = &cli.command {
        return worker(w, cli.threads());
    }
    if let harness::cli::Command::Capacity(a) = &cli.command {
        return capacity(a, cli.threads());
    }
    let plan = match harness::plan::from_command(&cli.command) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("swarm: {e}");
            return ExitCode::from(Exit::Usage.code());
        }
    };
    if let harness::cli::Command::Flow(a) = &cli.command {
        let flows = plan
            .phases
            .iter()
            .any(|p| p.scenario == harness::plan::Scenario::Flow);
        if a.plan.is_none() || !flows {
            eprintln!(
                "swarm: `swarm flow` runs a plan's message flows: give a plan file with a \
                 `[[flow]]` table and a phase with `scenario = \"flow\"` (docs/TESTING-YOUR-SERVER.md, \
                 \"Flows\"); for other plans use `swarm run`"
            );
            return ExitCode::from(Exit::Usage.code());
        }
    }
    if cli.command.dry_run() {
        // The plan is built and checked (data files read and counted); nothing is opened.
        print!("{}", harness::cli::dry_run_text(&plan));
        return ExitCode::SUCCESS;
    }
    let json = plan.output.json;
    let quiet = plan.output.quiet;
    // With `--out ndjson=-` stdout is the stream: the summary goes to stderr.
    let stdout_is_stream = plan.output.live.ndjson == Some(harness::live::Stream::Stdout);
    let threads = cli.threads();
    let runtime = match runtime(threads, "swarm", "swarm") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut result = runtime.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward_signals(tx));
        if plan.scale.distributed(plan.max_clients()) {
            harness::cluster::coordinator::run(plan, args, rx, threads).await
        } else {
            run::execute(plan, args, rx).await
        }
    });
    let linger = match &mut result {
        Ok(f) => f.linger.take(),
        Err(_) => None,
    };
    // The summary first; then the metrics endpoint stays up for its linger.
    let code = report(result, json, stdout_is_stream);
    if let Some(l) = linger {
        runtime.block_on(l.wait(quiet));
    }
    // Clients that were dropped mid-close must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Prints a run's summary (or why it did not run) and picks the exit code.
fn report(
    result: Result<harness::run::Finished, harness::run::RunError>,
    json: bool,
    stdout_is_stream: bool,
) -> ExitCode {
    match result {
        Ok(finished) => {
            if stdout_is_stream {
                eprint!("{}", reports::summary_table(&finished.run));
                eprintln!("report: {}", finished.out_dir.join("report.html").display());
            } else if json {
                println!("{}", reports::summary_json(&finished.run));
                eprintln!("report: {}", finished.out_dir.join("report.html").display());
            } else {
                print!("{}", reports::summary_table(&finished.run));
                println!("report: {}", finished.out_dir.join("report.html").display());
            }
            if let Some(detail) = &finished.run.meta.status_detail {
                eprintln!("swarm: {detail}");
            }
            for t in finished.run.thresholds.iter().filter(|t| !t.pass) {
                eprintln!("swarm: threshold failed: {}", t.expr);
            }
            ExitCode::from(finished.exit.code())
        }
        Err(e) => {
            eprintln!("swarm: {e}");
            ExitCode::from(e.exit().code())
        }
    }
}

/// `swarm worker`: one shard of a coordinator's run, the plan rebuilt from the
/// coordinator's arguments by this binary's own parser.
fn worker(args: &harness::cli::WorkerArgs, threads: Option<u16>) -> ExitCode {
    let runtime = match runtime(threads, "swarm-worker", "swarm worker") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let cfg = harness::cluster::worker::WorkerConfig {
        join: args.join.clone(),
        token: args.token.clone(),
        index: args.index,
        wait: args.wait,
    };
    let build = |argv: &[String], text: Option<String>| {
        let argv = std::iter::once("swarm".to_string()).chain(argv.iter().cloned());
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        // A step of a `swarm capacity --procs N` search (harness/src/capacity/step.rs).
        if let harness::cli::Command::Capacity(a) = &cli.command
            && let Some(plan) = a.worker_step_plan()
        {
            return plan;
        }
        let request = harness::plan::Request::try_from(&cli.command).map_err(|e| e.to_string())?;
        harness::plan::from_request_text(request, text).map_err(|e| e.to_string())
    };
    let code = runtime.block_on(harness::cluster::worker::run(cfg, &build));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

/// `swarm capacity`: the search (harness/src/capacity/), its table and its exit code.
fn capacity(args: &harness::cli::CapacityArgs, threads: Option<u16>) -> ExitCode {
    if args.thresholds_given() {
        eprintln!(
            "swarm: `swarm capacity` takes --slo, not --threshold (e.g. --slo 'echo.latency.p99 < 50ms')"
        );
        return ExitCode::from(Exit::Usage.code());
    }
    if args.abort_given() {
        eprintln!(
            "swarm: `swarm capacity` takes no --abort-on-fail / --abort-delay: each step stops \
             when it breaks an SLO and the search moves on"
        );
        return ExitCode::from(Exit::Usage.code());
    }
    let request = match args.request() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("swarm: {e}");
            return ExitCode::from(Exit::Usage.code());
        }
    };
    if let Err(e) = harness::capacity::check(&request.spec) {
        eprintln!("swarm: {e}");
        return ExitCode::from(e.exit.code());
    }
    let json = args.output.json;
    let runtime = match runtime(threads, "swarm", "swarm") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = runtime.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward_signals(tx));
        harness::capacity::run(request, argv, rx, threads).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(done) => {
            let Some(c) = done.run.capacity.as_ref() else {
                return ExitCode::from(done.exit.code());
            };
            let report = done.out_dir.join("report.html");
            if json {
                println!("{}", serde_json::to_string(c).unwrap_or_default());
                eprintln!("report: {}", report.display());
            } else {
                print!("{}", harness::capacity::table(c));
                println!("report: {}", report.display());
            }
            ExitCode::from(done.exit.code())
        }
        Err(e) => {
            eprintln!("swarm: {e}");
            ExitCode::from(e.exit.code())
        }
    }
}

/// One `()` per Ctrl-C or SIGTERM.
async fn forward_signals(tx: mpsc::UnboundedSender<()>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        let got = tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => true,
        };
        if !got || tx.send(()).is_err() {
            return;
        }
    }
}

/// The swarm's multi-threaded runtime (`--threads` worker threads, else one per core; its
/// threads named `name`); on failure, said on stderr as `who` and exit 3.
fn runtime(
    threads: Option<u16>,
    name: &str,
    who: &str,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(usize::from(n));
        harness::health::set_worker_threads(u32::from(n));
    }
    builder.enable_all().thread_name(name).build().map_err(|e| {
        eprintln!("{who}: cannot start the runtime: {e}");
        ExitCode::from(Exit::CouldNotRun.code())
    })
}
