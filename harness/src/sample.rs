//! The one message type from drivers to the recorder (docs/ARCHITECTURE.md#samples).
//!
//! Drivers emit a [`Sample`] for everything that happens to a client: connect phases,
//! each message sent, each reply (with its intended, sent and done instants), timeouts,
//! disconnects and errors. The recorder aggregates; drivers never compute statistics.
//! Must not: carry anything large (no payload copies), or anything a driver would have to
//! allocate per message beyond the sample itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Samples the channel holds before it overflows: about 64 MiB of backlog, 2 s of the
/// busiest echo the swarm sustains (250k round trips/s, two samples each). The recorder
/// drains far faster than that (`cargo bench -p benches --bench recorder`), so the
/// channel fills only when the recorder task is starved; then samples are dropped and
/// counted (docs/ARCHITECTURE.md#samples), never queued without bound.
pub const SAMPLE_CHANNEL_CAPACITY: usize = 1 << 20;

/// Sender half of the sample channel; cheap to clone into every client task. Never
/// blocks: a full channel drops the sample and counts it.
#[derive(Debug, Clone)]
pub struct SampleTx {
    tx: mpsc::Sender<Sample>,
    dropped: Arc<AtomicU64>,
}

/// Receiver half, owned by the recorder.
pub type SampleRx = mpsc::Receiver<Sample>;

/// The recorder is gone (the run is over); the sample was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the recorder has stopped")]
pub struct RecorderGone;

/// A sample channel of `capacity` samples, and the counter of samples dropped because it
/// was full.
pub fn sample_channel(capacity: usize) -> (SampleTx, SampleRx, Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        SampleTx {
            tx,
            dropped: dropped.clone(),
        },
        rx,
        dropped,
    )
}

impl SampleTx {
    /// Hands `sample` to the recorder; when the channel is full the sample is dropped and
    /// counted (`health.summary.samples_dropped` in the run file).
    pub fn send(&self, sample: Sample) -> Result<(), RecorderGone> {
        match self.tx.try_send(sample) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RecorderGone),
        }
    }

    /// [`SampleTx::send`] of one event of `client` in `phase` at `at`; a stopped recorder
    /// is not the client's concern (the run is over).
    pub fn emit(&self, client: u32, phase: u16, at: Instant, event: Event) {
        let _ = self.send(Sample {
            client,
            phase,
            at,
            event,
        });
    }
}

/// One thing that happened to one client.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Client index within the run (0-based).
    pub client: u32,
    /// Index of the plan phase the client belongs to when the event happened.
    pub phase: u16,
    /// When the event completed (reply received, connect finished, ...).
    pub at: Instant,
    pub event: Event,
}

/// Durations of each connect phase that took place (docs/ARCHITECTURE.md#connect-phases).
/// A phase that did not happen (e.g. `tls` on plain TCP, `upgrade` on websocket-only) is
/// `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectPhases {
    pub tcp: Option<Duration>,
    pub tls: Option<Duration>,
    /// HTTP 101 received.
    pub ws_upgrade: Option<Duration>,
    /// Engine.IO open packet received (over polling or websocket).
    pub eio_open: Option<Duration>,
    /// polling -> websocket probe dance.
    pub upgrade: Option<Duration>,
    /// Namespace CONNECT acknowledged (`40{sid}`).
    pub sio_connect: Option<Duration>,
    /// Whole connect, from the start of `tcp` to the last phase done.
    pub total: Option<Duration>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connect attempt started at its scheduled instant `intended` and succeeded.
    Connected {
        intended: Instant,
        phases: ConnectPhases,
    },
    /// A connect attempt failed; `phases` holds the phases that completed.
    ConnectFailed {
        intended: Instant,
        phases: ConnectPhases,
        error: ErrorKind,
    },
    /// One timed message left the client (echo request).
    Sent { intended: Instant },
    /// Its reply arrived in time. `at` is the done instant.
    Reply { intended: Instant, sent: Instant },
    /// No reply within `--timeout`; counted as a timeout, not in the percentiles.
    Timeout { intended: Instant, sent: Instant },
    /// A reply that arrived after its timeout had already been counted.
    Late { intended: Instant, sent: Instant },
    /// Messages still outstanding when the run stopped (after the drain).
    Unanswered { count: u32 },
    /// The connection ended (or was ended by the swarm at the end of the run).
    Disconnected { reason: DisconnectReason },
    /// A non-fatal error during the run (bad frame from the server, unexpected packet...).
    Error { error: ErrorKind },
    /// A broadcast message left its publisher (committed in the publish log first).
    Published { intended: Instant },
    /// The first arrival of a broadcast message at a subscriber; wall-clock ns (the
    /// publisher may be another process). `class` is the planned size of the room.
    Delivered {
        intended_ns: u64,
        sent_ns: u64,
        received_ns: u64,
        class: u32,
        /// It was sent while this subscriber was away and replayed after a reconnect
        /// that restored the session (connection state recovery).
        recovered: bool,
    },
    /// A broadcast message that had already arrived at this subscriber.
    Duplicate { class: u32 },
    /// A first arrival after a higher seq of the same publisher -> subscriber stream.
    Reordered { class: u32 },
    /// An event / frame on the broadcast path that this run did not send.
    Foreign,
    /// A subscriber's final accounting of one phase and room size class.
    Tally(Tally),
    /// One run of a flow step ended (docs/results-format.md#flow): its run-wide `step`
    /// number and name, how it ended, and (when `Ok`) the time from its intended start.
    FlowStep {
        step: u16,
        name: std::sync::Arc<str>,
        outcome: FlowOutcome,
        latency: Duration,
    },
    /// A server heartbeat: Engine.IO `2` or a WS ping frame. `interval` from the previous
    /// one on this connection; `advertised` = (pingInterval, pingTimeout) when known.
    Ping {
        interval: Option<Duration>,
        advertised: Option<(Duration, Duration)>,
    },
    /// The round trip of a client WS ping (raw WS).
    PongRtt { rtt: Duration },
    /// The client stopped answering pings (`--mute`).
    Muted,
    /// The server closed a muted client (a `Disconnected` follows with the reason).
    MutedClosed {
        after_mute: Duration,
        after_last_pong: Option<Duration>,
    },
    /// A muted client was still connected at the end of its stretch.
    MutedNeverClosed,
    /// A healthy client was closed by the server with the timing of a ping timeout.
    FalseTimeout,
    /// A reconnect after a drop (churn) or an early close succeeded (re-joined).
    Reconnected {
        /// From the drop to the re-join ack (or the recovered CONNECT ack).
        took: Duration,
        /// Connection state recovery restored the session.
        recovered_session: bool,
        /// Broadcast messages sent to the client's rooms while it was away.
        away: u64,
    },
    /// A reconnect attempt failed (a `ConnectFailed` carries the kind).
    ReconnectFailed,
    /// An established connection ended unplanned (server close, reset, EOF, client-side
    /// heartbeat deadline): not the swarm's own close, a churn drop, or the expected close
    /// of a muted client. The client is away until [`Event::Restored`] or
    /// [`Event::NotRestored`].
    ConnectionLost,
    /// A connect attempt after a lost connection ended (`--reconnect`); `ok`: it
    /// connected.
    ReconnectAttempt { ok: bool },
    /// A client whose connection was lost has one again; `took` from the loss.
    Restored { took: Duration },
    /// A client whose connection was lost did not get one back before its stretch ended
    /// (reconnects off, attempts exhausted, or the target never came back).
    NotRestored,
    /// Echo sends whose intended instant passed while the client had no connection
    /// (`planned = sent + skipped_disconnected`).
    SkippedDisconnected { count: u32 },
}

/// One subscriber's broadcast accounting for one phase and room size class:
/// `delivered + missed + lost = expected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Planned room size (0: deliveries no room explains).
    pub class: u32,
    pub expected: u64,
    pub delivered: u64,
    pub missed: u64,
    pub lost: u64,
    /// Received, but sent outside the subscriber's membership (not in `delivered`).
    pub outside: u64,
    /// A split run across hosts: not received, and sent too near a membership edge for
    /// the clocks to say whether it was expected (not in `expected`).
    pub ambiguous: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.missed += o.missed;
        self.lost += o.lost;
        self.outside += o.outside;
        self.ambiguous += o.ambiguous;
    }
}

/// How one run of a flow step ended (its `key()` is the run file's counter name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowOutcome {
    /// Done: sent, and what it waited for (if anything) arrived and met its conditions.
    Ok,
    /// What it waited for did not arrive within the step's timeout.
    Timeout,
    /// A reply carrying a `match` value that no outstanding request of the step had.
    Unmatched,
    /// A `match`, `capture` or `error` path the reply did not hold (or a captured value
    /// above the size bound), or a reply that is not JSON.
    BadPath,
    /// The reply held the step's `error` path.
    ServerError,
    /// The connection ended while the step was waiting.
    Disconnected,
    /// Still waiting when the run's drain ended (the connection closed in order): neither
    /// answered nor timed out, as echo's `unanswered_at_stop`.
    UnansweredAtStop,
}

impl FlowOutcome {
    pub const ALL: [FlowOutcome; 7] = [
        FlowOutcome::Ok,
        FlowOutcome::Timeout,
        FlowOutcome::Unmatched,
        FlowOutcome::BadPath,
        FlowOutcome::ServerError,
        FlowOutcome::Disconnected,
        FlowOutcome::UnansweredAtStop,
    ];

    pub fn key(self) -> &'static str {
        match self {
            FlowOutcome::Ok => "ok",
            FlowOutcome::Timeout => "timeouts",
            FlowOutcome::Unmatched => "unmatched",
            FlowOutcome::BadPath => "bad_path",
            FlowOutcome::ServerError => "server_errors",
            FlowOutcome::Disconnected => "disconnected",
            FlowOutcome::UnansweredAtStop => "unanswered_at_stop",
        }
    }
}

/// Stable error kinds (their `key()` is what results files and thresholds use).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect refused.
    ConnectRefused,
    /// Connect (or a phase of it) took longer than `--timeout`.
    ConnectTimeout,
    /// TLS handshake failed.
    Tls,
    /// HTTP answered something other than 101 / 200 (status code kept).
    HttpStatus(u16),
    /// WebSocket handshake failed for another reason.
    WsHandshake,
    /// The server sent something the protocol does not allow.
    Protocol,
    /// Socket.IO CONNECT refused (`44`).
    ConnectError,
    /// Too many open files, address in use, and other local resource limits.
    LocalResource,
    /// I/O error during the run.
    Io,
    /// A reply could not be matched to a request (unknown ack id, foreign payload).
    Unmatched,
    /// The client's task panicked; the swarm caught it and the client stopped there.
    ClientPanic,
    /// A polling response body over `--max-message-size`.
    MessageTooLarge,
    /// The client did not finish by the swarm's end bound (or a second interrupt) and
    /// was dropped without its orderly close.
    ForcedDrop,
}

impl ErrorKind {
    pub fn key(&self) -> String {
        match self {
            ErrorKind::ConnectRefused => "connect_refused".into(),
            ErrorKind::ConnectTimeout => "connect_timeout".into(),
            ErrorKind::Tls => "tls".into(),
            ErrorKind::HttpStatus(code) => format!("http_{code}"),
            ErrorKind::WsHandshake => "ws_handshake".into(),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::ConnectError => "sio_connect_error".into(),
            ErrorKind::LocalResource => "local_resource".into(),
            ErrorKind::Io => "io".into(),
            ErrorKind::Unmatched => "unmatched".into(),
            ErrorKind::ClientPanic => "client_panic".into(),
            ErrorKind::ForcedDrop => "forced_drop".into(),
            ErrorKind::MessageTooLarge => "message_too_large".into(),
        }
    }
}

/// Why a connection ended, as the client can observe it (docs/ARCHITECTURE.md#disconnect-reasons).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The swarm closed it at the end of its hold time (not a failure).
    ClientClose,
    /// A WebSocket close frame from the server (code; 1005 when it carried none).
    WsClose { code: u16 },
    /// Engine.IO close packet `1` from the server.
    EioClose,
    /// Socket.IO DISCONNECT `41` from the server.
    SioDisconnect,
    /// The TCP connection ended without a close frame.
    Eof,
    /// Connection reset or another transport error.
    Reset,
    /// No server ping within pingInterval + pingTimeout (client-side deadline).
    ClientDeadline,
    /// The swarm dropped the transport on purpose (churn), to reconnect.
    ClientDrop,
    /// A write stayed blocked longer than `--write-timeout` (the server stopped reading).
    WriteTimeout,
    /// The server sent a message over `--max-message-size`.
    MessageTooLarge,
}

impl DisconnectReason {
    pub fn key(&self) -> String {
        match self {
            DisconnectReason::ClientClose => "client_close".into(),
            DisconnectReason::WsClose { code } => format!("ws_close_{code}"),
            DisconnectReason::EioClose => "eio_close".into(),
            DisconnectReason::SioDisconnect => "sio_disconnect".into(),
            DisconnectReason::Eof => "eof".into(),
            DisconnectReason::Reset => "reset".into(),
            DisconnectReason::ClientDeadline => "client_deadline".into(),
            DisconnectReason::ClientDrop => "client_drop".into(),
            DisconnectReason::WriteTimeout => "write_timeout".into(),
            DisconnectReason::MessageTooLarge => "message_too_large".into(),
        }
    }

    /// True for reasons that are not the swarm's own orderly close.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            DisconnectReason::ClientClose | DisconnectReason::ClientDrop
        )
    }
}
