//! The hub: the one task that takes each closed second from the recorder and feeds every
//! live output from it (endpoint text, remote-write pushes, NDJSON line, abort check).
//!
//! Receives the [`LiveSecond`]s (the recorder's channel), the options, the rules, the run's
//! labels and the interrupt sender (an abort stops the run as Ctrl-C does, and the results
//! say why). Emits, once the recorder is done, the [`reports::LiveOutcome`] and the
//! [`Lingering`] endpoint.
//! Must not: let a slow receiver hold up the seconds (pushes go through a bounded queue; a
//! push that finds it full is counted as failed), or push after [`Hub::finish`] returns.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use reports::threshold::Rule;
use reports::{LiveOutcome, RemoteWriteOutcome};
use tokio::sync::mpsc;

use super::abort::Abort;
use super::endpoint::Endpoint;
use super::ndjson::Writer;
use super::remote_write::{self, Receiver};
use super::series::{self, Accum};
use super::{LiveOptions, LiveSecond};

/// Pushes waiting for the receiver, at most.
const PUSH_QUEUE: usize = 32;

/// The labels every exported series carries, and the phases' ends (for `phase`).
#[derive(Debug, Clone)]
pub struct RunLabels {
    pub run_id: String,
    /// The target URL, secrets masked (reports/src/redact.rs).
    pub target: String,
    /// Each plan phase: name, scenario, end offset from the run start.
    pub phases: Vec<(String, String, Duration)>,
    /// A steered run (capacity/kept.rs): its phases' ends are decided as it goes, so the
    /// phase of a second is read from its steering, not from `phases`' ends.
    pub phase_of: Option<PhaseOf>,
}

/// The index of the phase a second (its offset from the run's start) falls in, for a run
/// whose phases are decided as it goes (`schedule::Steer::phase_at_offset`; passed in, so
/// that `live` does not depend on the schedule).
#[derive(Clone)]
pub struct PhaseOf(pub std::sync::Arc<dyn Fn(Duration) -> Option<usize> + Send + Sync>);

impl std::fmt::Debug for PhaseOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhaseOf(..)")
    }
}

impl RunLabels {
    /// The phase (name, scenario) whose time contains second `second` (the last after the
    /// plan's end).
    fn phase_at(&self, second: u64) -> (&str, &str) {
        let at = Duration::from_secs(second);
        if let Some(p) = self.phase_of.as_ref().and_then(|f| (f.0)(at))
            && let Some((n, s, _)) = self.phases.get(p)
        {
            return (n.as_str(), s.as_str());
        }
        self.phases
            .iter()
            .find(|(_, _, end)| *end > at)
            .or(self.phases.last())
            .map_or(("", ""), |(n, s, _)| (n.as_str(), s.as_str()))
    }
}

/// The running hub.
pub struct Hub {
    task: tokio::task::JoinHandle<(LiveOutcome, Option<Endpoint>)>,
    linger: Duration,
    pub metrics_addr: Option<SocketAddr>,
}

/// The endpoint kept up after the run for `--metrics-linger`.
pub struct Lingering {
    endpoint: Option<Endpoint>,
    linger: Duration,
}

impl std::fmt::Debug for Lingering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lingering")
            .field("addr", &self.endpoint.as_ref().map(|e| e.addr))
            .field("linger", &self.linger)
            .finish()
    }
}

impl Lingering {
    /// Keeps the endpoint up for the linger (or until Ctrl-C / SIGTERM), then stops it.
    pub async fn wait(self, quiet: bool) {
        let Some(e) = self.endpoint else { return };
        if !self.linger.is_zero() {
            if !quiet {
                eprintln!(
                    "swarm: final metrics stay on http://{}/metrics for {} (--metrics-linger)",
                    e.addr,
                    humantime::format_duration(self.linger)
                );
            }
            // Ctrl-C or SIGTERM ends the linger at once.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                () = tokio::time::sleep(self.linger) => {}
                _ = tokio::signal::ctrl_c() => {}
                Some(()) = async { term.as_mut()?.recv().await } => {}
            }
        }
        e.stop().await;
    }
}

/// Starts the hub when any live output was asked for: binds the endpoint (an address that
/// cannot be bound is an error before any client starts), opens the NDJSON file. Returns the
/// hub and the sender the recorder feeds.
pub async fn start(
    opts: &LiveOptions,
    rules: &[Rule],
    labels: RunLabels,
    interrupts: mpsc::UnboundedSender<()>,
) -> Result<Option<(Hub, mpsc::UnboundedSender<LiveSecond>)>, String> {
    if !opts.any() {
        return Ok(None);
    }
    let endpoint = match opts.metrics_addr {
        Some(a) => Some(
            Endpoint::bind(a)
                .await
                .map_err(|e| format!("--metrics-addr {a}: cannot listen: {e}"))?,
        ),
        None => None,
    };
    let ndjson = match &opts.ndjson {
        Some(to) => Some(Writer::open(to).map_err(|e| format!("--out ndjson: {e}"))?),
        None => None,
    };
    let receiver = match &opts.remote_write {
        Some(u) => Some(remote_write::parse_url(u)?),
        None => None,
    };
    let abort = opts
        .abort_on_fail
        .then(|| Abort::new(rules, opts.abort_delay));
    let (tx, rx) = mpsc::unbounded_channel();
    let metrics_addr = endpoint.as_ref().map(|e| e.addr);
    let task = tokio::spawn(run(
        rx, labels, endpoint, ndjson, receiver, abort, interrupts,
    ));
    Ok(Some((
        Hub {
            task,
            linger: opts.metrics_linger,
            metrics_addr,
        },
        tx,
    )))
}

impl Hub {
    /// Waits for the recorder's last second (its sender dropped) and the final push;
    /// returns what happened and the endpoint to keep up.
    pub async fn finish(self) -> (LiveOutcome, Lingering) {
        let (outcome, endpoint) = match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("live outputs task failed: {e}");
                (LiveOutcome::default(), None)
            }
        };
        (
            outcome,
            Lingering {
                endpoint,
                linger: self.linger,
            },
        )
    }
}

/// Milliseconds since the Unix epoch, at least `after + 1` (remote write wants each series'
/// timestamps to increase).
fn stamp(after: i64) -> i64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now.max(after + 1)
}

/// One second's samples, as remote write sends them.
type Flat = Vec<(Vec<(String, String)>, f64)>;
type Push = (Flat, i64);

async fn run(
    mut rx: mpsc::UnboundedReceiver<LiveSecond>,
    labels: RunLabels,
    endpoint: Option<Endpoint>,
    mut ndjson: Option<Writer>,
    receiver: Option<Receiver>,
    mut abort: Option<Abort>,
    interrupts: mpsc::UnboundedSender<()>,
) -> (LiveOutcome, Option<Endpoint>) {
    let mut outcome = LiveOutcome {
        metrics_addr: endpoint.as_ref().map(|e| e.addr.to_string()),
        ..Default::default()
    };
    let (push_tx, pusher) = match receiver {
        Some(r) => {
            let (tx, prx) = mpsc::channel::<Push>(PUSH_QUEUE);
            (Some(tx), Some(tokio::spawn(pusher(r, prx))))
        }
        None => (None, None),
    };
    let mut dropped_pushes = 0u64;
    let mut accum = Accum::default();
    let mut last: Option<Flat> = None;
    let mut last_ts = 0i64;
    while let Some(sec) = rx.recv().await {
        accum.add(&sec);
        let (phase, scenario) = labels.phase_at(sec.point.second);
        let common = vec![
            ("run_id".to_string(), labels.run_id.clone()),
            ("phase".to_string(), phase.to_string()),
            ("scenario".to_string(), scenario.to_string()),
            ("target".to_string(), labels.target.clone()),
        ];
        let families = series::families(&sec, &accum, (sec.point.second + 1) as f64);
        if let Some(e) = &endpoint {
            e.set(series::openmetrics(&families, &common));
        }
        if let Some(tx) = &push_tx {
            let flat = series::flat(&families, &common);
            last_ts = stamp(last_ts);
            if tx.try_send((flat.clone(), last_ts)).is_err() {
                dropped_pushes += 1;
            }
            last = Some(flat);
        }
        if let Some(w) = ndjson.as_mut() {
            w.write(&sec, phase, scenario);
        }
        if outcome.abort.is_none()
            && let Some(a) = abort.as_mut()
            && let Some(info) = a.check(sec.point.second, &sec.figures())
        {
            tracing::warn!(
                "aborting: threshold `{}` failed since second {}",
                info.threshold,
                info.failing_since_s
            );
            let _ = interrupts.send(());
            outcome.abort = Some(info);
            abort = None;
        }
    }
    // The final push: the last figures again, stamped now, so a receiver that missed a
    // second still ends on the run's totals.
    if let (Some(tx), Some(flat)) = (push_tx, last) {
        let _ =
            tokio::time::timeout(remote_write::PUSH_TIMEOUT, tx.send((flat, stamp(last_ts)))).await;
    }
    if let Some(p) = pusher {
        // Every queued push has its own deadline; the queue is bounded.
        if let Ok(mut rw) = p.await {
            rw.pushes += dropped_pushes;
            rw.failures += dropped_pushes;
            if dropped_pushes > 0 && rw.last_error.is_none() {
                rw.last_error = Some(format!(
                    "{dropped_pushes} push(es) dropped: the receiver fell {PUSH_QUEUE} behind"
                ));
            }
            outcome.remote_write = Some(rw);
        }
    }
    if let Some(w) = ndjson {
        outcome.ndjson_lines = Some(w.lines);
        if let Some(e) = w.error {
            tracing::warn!("NDJSON stream: {e}");
        }
    }
    (outcome, endpoint)
}

async fn pusher(to: Receiver, mut rx: mpsc::Receiver<Push>) -> RemoteWriteOutcome {
    let mut out = RemoteWriteOutcome {
        url: reports::redact::redact_url(&to.url),
        ..Default::default()
    };
    while let Some((samples, ts)) = rx.recv().await {
        out.pushes += 1;
        let body = remote_write::encode(&samples, ts);
        if let Err(e) = remote_write::push(&to, body).await {
            tracing::debug!("remote write failed: {e}");
            out.failures += 1;
            out.last_error = Some(e);
        }
    }
    out
}
