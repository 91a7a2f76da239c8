//! One run from a validated plan to its run file and exit code.
//!
//! Receives: a [`Plan`], the command line (for the record) and an interrupt channel.
//! Emits: [`Finished`] (the run file as written, where it is, the [`Exit`] code), or a
//! [`RunError`] when the run could not start (exit 2 or 3).
//! Must not: print (the binary prints the summary), or open any socket before the plan,
//! the descriptor check and the output folder are known good.
//!
//! Pipeline: preflight -> embedded target (if no URL) -> resolve and probe the target ->
//! recorder -> swarm (clients) -> recorded -> RunFile + thresholds -> outputs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reports::{RunFile, RunStatus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broadcast::{Board, Layout};
use crate::driver::{self, Ctx, WallClock, net};
use crate::embedded::Embedded;
use crate::model::Protocol;
use crate::plan::{Endpoint, Plan};
use crate::preflight::{self, PreflightError};
use crate::recorder::{self, PhaseInfo, RecorderConfig};
use crate::schedule::Schedule;

mod meta;
use meta::meta;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ran, and every threshold holds.
    Ok = 0,
    /// A threshold failed.
    ThresholdFailed = 1,
    /// Bad usage or plan; nothing was opened.
    Usage = 2,
    /// The run could not happen (target unreachable, no connection succeeded).
    CouldNotRun = 3,
    /// The run completed degraded (connections were lost) and no threshold was given.
    Degraded = 5,
    /// Stopped by Ctrl-C / SIGTERM.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("cannot use the output folder {path}: {why}")]
    Output { path: String, why: String },
    #[error("cannot start the embedded target-server: {0}")]
    Embedded(std::io::Error),
    #[error("target {target} is unreachable: {why}")]
    Unreachable { target: String, why: String },
    #[error("cannot write the results to {path}: {why}")]
    Write { path: String, why: String },
}

impl RunError {
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Preflight(_) | RunError::Output { .. } => Exit::Usage,
            RunError::Embedded(_) | RunError::Unreachable { .. } | RunError::Write { .. } => {
                Exit::CouldNotRun
            }
        }
    }
}

/// A run that happened (completely, interrupted, or failed to connect anything).
#[derive(Debug)]
pub struct Finished {
    pub run: RunFile,
    pub out_dir: PathBuf,
    pub exit: Exit,
}

/// The exit code a run file calls for: interrupted > could not run > thresholds. A
/// degraded run (connections lost) exits 5 when no threshold was given; with thresholds,
/// they decide (the user said what is acceptable).
pub fn exit_for(run: &RunFile) -> Exit {
    match run.meta.status {
        RunStatus::Interrupted => Exit::Interrupted,
        RunStatus::Failed => Exit::CouldNotRun,
        _ if run.thresholds.iter().any(|t| !t.pass) => Exit::ThresholdFailed,
        RunStatus::Degraded if run.thresholds.is_empty() => Exit::Degraded,
        _ => Exit::Ok,
    }
}

/// `degraded` (with its reason) when a completed run lost connections on the way.
pub fn mark_degraded(run: &mut RunFile) {
    if run.meta.status != RunStatus::Completed {
        return;
    }
    let dropped = run.health.summary.samples_dropped;
    if dropped > 0 {
        run.meta.status = RunStatus::Degraded;
        run.meta.status_detail = Some(format!(
            "{dropped} sample(s) dropped: the recorder fell behind (its channel was full), so \
             the run's counts are short and its accounting is not exact"
        ));
        return;
    }
    let Some(o) = run.run.outage.as_ref().filter(|o| o.connections_lost > 0) else {
        return;
    };
    let skipped = run.run.echo.as_ref().map_or(0, |e| e.skipped_disconnected);
    run.meta.status = RunStatus::Degraded;
    run.meta.status_detail = Some(format!(
        "{} connection(s) lost during the run: {} restored, {} not restored by the end of \
         their phase ({} reconnect attempt(s), {} failed); {} echo send(s) skipped while \
         disconnected",
        o.connections_lost,
        o.restored,
        o.clients_not_restored,
        o.reconnect_attempts,
        o.reconnect_failures,
        skipped
    ));
}

/// Runs `plan`. `interrupts` yields one `()` per Ctrl-C / SIGTERM.
pub async fn execute(
    mut plan: Plan,
    args: Vec<String>,
    interrupts: mpsc::UnboundedReceiver<()>,
) -> Result<Finished, RunError> {
    let embedded_needed = plan.target.endpoint.is_none();
    preflight::check_fds(plan.max_clients(), embedded_needed)?;
    let out_dir = plan
        .output
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&plan.name));
    // A fresh folder per run: an earlier run's files are cleared (said on stderr), anything
    // else in the folder refuses the run before any socket opens.
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

    if embedded_needed
        && plan.target.fan.ws_ping_interval.is_none()
        && plan
            .phases
            .iter()
            .any(|p| p.scenario == crate::plan::Scenario::Heartbeat)
    {
        plan.target.fan.ws_ping_interval = Some(EMBEDDED_PING.0);
    }
    let embedded = if embedded_needed {
        Some(Embedded::start(embedded_config(&plan)).map_err(RunError::Embedded)?)
    } else {
        None
    };
    let endpoint = match (&plan.target.endpoint, &embedded) {
        (Some(e), _) => e.clone(),
        (None, Some(server)) => embedded_endpoint(server.addr, &plan),
        (None, None) => unreachable!("embedded server started above"),
    };
    // Only the redacted form is kept: it goes into errors and the run file
    // (docs/results-format.md, "Redaction").
    let url = reports::redact::redact_url(&endpoint_url(&endpoint, plan.target.protocol));
    let addr = resolve(&endpoint, plan.timeout)
        .await
        .map_err(|why| RunError::Unreachable {
            target: url.clone(),
            why,
        })?;
    let sources = plan
        .target
        .source
        .resolve(addr, plan.max_clients())
        .map_err(|why| RunError::Unreachable {
            target: url.clone(),
            why,
        })?;

    let started_wall = SystemTime::now();
    let phases = plan.phases.iter().map(|p| PhaseInfo {
        name: p.name.clone(),
        scenario: p.scenario.name().to_string(),
    });
    let hlog = out_dir.join("histograms.hlog");
    let run_id: u32 = rand::random();
    // Checkpoints: results.json with status `running`, written atomically every 2 s, then 30 s,
    // off the recorder's task, so a swarm killed mid-run (SIGKILL, OOM) leaves a readable
    // file with the seconds so far (docs/results-format.md, "status").
    let (ck_tx, ck_rx) = tokio::sync::mpsc::channel(1);
    let (tx, recorder) = recorder::spawn_checkpointed(
        RecorderConfig {
            phases: phases.collect(),
            hlog_path: Some(hlog),
            interval: Duration::from_secs(1),
        },
        recorder::Checkpoints {
            every: CHECKPOINT_EVERY,
            tx: ck_tx,
        },
    );
    let checkpoint_meta = {
        let mut m = meta(
            &plan,
            &url,
            embedded_needed,
            run_id,
            args.clone(),
            started_wall,
            false,
        );
        m.status = RunStatus::Running;
        m
    };
    let checkpointer = tokio::spawn(write_checkpoints(
        ck_rx,
        checkpoint_meta,
        out_dir.join("results.json"),
    ));
    let schedule = Schedule::new(&plan, Instant::now() + Duration::from_millis(50));
    let wall = WallClock::now();
    let board = Board::new(
        Layout::new(&plan),
        schedule.windows.iter().map(|w| wall.ns(w.start)).collect(),
        wall.ns(schedule.end),
    );
    let ctx = Arc::new(Ctx {
        schedule,
        board,
        conn: net::Conn {
            tls: endpoint
                .tls
                .then(|| tls(&endpoint, plan.target.insecure))
                .transpose()
                .map_err(|why| RunError::Unreachable {
                    target: url.clone(),
                    why,
                })?,
            headers: plan
                .target
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                        http::HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            endpoint: endpoint.clone(),
            addr,
            sources: crate::source::Sources::new(sources.clone()),
            read_buffer: if plan.phases.iter().any(|p| p.scenario.fans_out()) {
                net::FANOUT_READ_BUFFER_BYTES
            } else {
                net::READ_BUFFER_BYTES
            },
            max_message: plan.target.max_message_size,
            write_timeout: plan.target.write_timeout,
        },
        frames: driver::session::Frames::new(&plan, &endpoint),
        run_id,
        seed: rand::random(),
        wall,
        cancel: CancellationToken::new(),
        plan: plan.clone(),
    });

    let progress_stop = CancellationToken::new();
    let progress = crate::progress::enabled(plan.output.quiet).then(|| {
        tokio::spawn(crate::progress::show(
            recorder.live.clone(),
            plan.total(),
            plan.max_clients(),
            progress_stop.clone(),
        ))
    });
    let outcome = crate::swarm::run(ctx.clone(), tx, interrupts).await;
    let recorded = recorder.finish().await;
    // The last checkpoint is on disk (or abandoned) before the final file replaces it.
    let _ = checkpointer.await;
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    if let Some(server) = embedded {
        server.stop();
    }

    let mut meta = meta(
        &plan,
        &url,
        embedded_needed,
        run_id,
        args,
        started_wall,
        outcome.interrupted,
    );
    meta.options.insert(
        "source_addrs".into(),
        serde_json::json!(sources.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
    );
    let mut run = recorded.into_run_file(meta);
    if !outcome.interrupted && run.run.connect.connected == 0 {
        run.meta.status = RunStatus::Failed;
        run.meta.status_detail = Some(format!(
            "no connection succeeded ({} attempted, failures: {:?})",
            run.run.connect.attempted, run.run.connect.failed_by_kind
        ));
    }
    mark_degraded(&mut run);
    let thresholds: Vec<_> = plan
        .output
        .thresholds
        .iter()
        .filter_map(|t| reports::threshold::parse(t).ok())
        .collect();
    run.thresholds = reports::threshold::evaluate(&thresholds, &run);
    crate::output::write_outputs(&out_dir, &run).map_err(|e| RunError::Write {
        path: out_dir.display().to_string(),
        why: e.to_string(),
    })?;
    let exit = exit_for(&run);
    Ok(Finished { run, out_dir, exit })
}

/// How often a running swarm rewrites results.json (status `running`) in the run's first
/// 10 s; 15 times that after (recorder::EARLY_CHECKPOINTS).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Writes each checkpoint the recorder sends as results.json (atomically, on a blocking
/// thread), until the recorder finishes and closes the channel. A failed write is logged
/// and the run goes on: the final write reports its own errors.
async fn write_checkpoints(
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

/// `./swarm-results/<name>-<UTC timestamp>/`.
pub fn default_out_dir(name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    Path::new("swarm-results").join(format!("{name}-{stamp}"))
}

/// Heartbeat of the embedded server in a plan with a heartbeat phase: short enough that a
/// demo run sees pings (the run file records the advertised values).
const EMBEDDED_PING: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(1));

/// The embedded server's settings: the defaults, plus a `--tick` for a server publisher
/// and a short heartbeat for heartbeat phases.
fn embedded_config(plan: &Plan) -> target_server::Config {
    let mut config = target_server::Config::default();
    if plan
        .phases
        .iter()
        .any(|p| p.scenario == crate::plan::Scenario::Heartbeat)
    {
        (config.ping_interval, config.ping_timeout) = EMBEDDED_PING;
        config.ws_ping_interval = Some(EMBEDDED_PING.0);
        config.ws_ping_timeout = EMBEDDED_PING.0;
    }
    for p in &plan.phases {
        if let Some(room) = p.fanout.as_ref().and_then(|f| f.server_publisher.clone())
            && !config.ticks.iter().any(|t| t.room == room)
        {
            config.ticks.push(target_server::config::Tick {
                room,
                rate_per_s: p.rate_per_s,
                size_bytes: p.payload_size,
            });
        }
    }
    config
}

fn embedded_endpoint(addr: SocketAddr, plan: &Plan) -> Endpoint {
    let fans_out = plan.phases.iter().any(|p| p.scenario.fans_out());
    let path = match (plan.target.protocol, fans_out) {
        (Protocol::Ws, false) => "/ws/echo",
        (Protocol::Ws, true) => "/ws/room/{room}",
        (Protocol::Socketio, _) => "/",
    };
    Endpoint {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        path: path.into(),
        query: None,
    }
}

fn endpoint_url(e: &Endpoint, protocol: Protocol) -> String {
    let scheme = match (protocol, e.tls) {
        (Protocol::Ws, false) => "ws",
        (Protocol::Ws, true) => "wss",
        (Protocol::Socketio, false) => "http",
        (Protocol::Socketio, true) => "https",
    };
    let host = if e.host.contains(':') {
        format!("[{}]", e.host)
    } else {
        e.host.clone()
    };
    let query = e
        .query
        .as_ref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{host}:{}{}{query}", e.port, e.path)
}

/// Resolves the host once and checks that a TCP connection can be made; the first
/// address that accepts one is the run's (so `localhost` works for IPv4-only servers).
async fn resolve(e: &Endpoint, timeout: Duration) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((e.host.as_str(), e.port))
        .await
        .map_err(|err| err.to_string())?
        .collect();
    let mut why = "the host name resolves to no address".to_string();
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(err)) => why = format!("{addr}: {err}"),
            Err(_) => {
                why = format!(
                    "{addr}: no TCP connection within {}",
                    humantime::format_duration(timeout)
                )
            }
        }
    }
    Err(why)
}

fn tls(
    e: &Endpoint,
    insecure: bool,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    String,
> {
    let name =
        rustls::pki_types::ServerName::try_from(e.host.clone()).map_err(|err| err.to_string())?;
    Ok((
        tokio_rustls::TlsConnector::from(net::tls_config(insecure)),
        name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropped samples leave a completed run `degraded` (exit 5 without thresholds), and
    /// say why; a run that dropped none stays `completed`.
    #[test]
    fn dropped_samples_degrade_a_completed_run() {
        let mut run = reports::fixture::example_run(10);
        run.meta.status = RunStatus::Completed;
        run.run.outage = None;
        mark_degraded(&mut run);
        assert_eq!(run.meta.status, RunStatus::Completed);
        assert_eq!(exit_for(&run), Exit::Ok);

        run.health.summary.samples_dropped = 3;
        mark_degraded(&mut run);
        assert_eq!(run.meta.status, RunStatus::Degraded);
        let why = run.meta.status_detail.clone().unwrap_or_default();
        assert!(why.contains("3 sample(s) dropped"), "{why}");
        run.thresholds.clear();
        assert_eq!(exit_for(&run), Exit::Degraded);
    }
}
