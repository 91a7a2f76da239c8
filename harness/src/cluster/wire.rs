//! The control protocol between a coordinator and its workers: length-prefixed JSON
//! messages over one TCP connection per worker.
//!
//! Receives and emits [`ToWorker`] / [`ToCoordinator`] messages, each a 4-byte big-endian
//! length and that many bytes of JSON. The worker speaks first ([`ToCoordinator::Hello`],
//! with [`VERSION`] and the run's token).
//! Must not: read a length above [`MAX_MESSAGE`] (the connection is refused as hostile), or
//! trust anything a peer sends: every message is validated where it is used.
//!
//! The conversation (docs/DISTRIBUTED.md, "Control protocol"):
//! hello -> welcome (shard, plan, target) -> ready -> clock pings -> start (instant in the
//! worker's clock) -> each second: live counters, the closed second (with its interval
//! histograms), interval-log lines, checkpoints ->
//! final results -> bye. The coordinator may send `stop` (Ctrl-C) at any time; a worker whose
//! control connection closes stops its clients and exits.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::recorder::LiveSnapshot;
use crate::share::Shard;

/// Protocol version: a worker of another version is refused (2: each closed second with
/// its interval histograms, [`ToCoordinator::Second`]; 3: steered runs, whose phases the
/// coordinator decides while they go on, [`ToWorker::Decide`]; 4: split runs, whose
/// workers copy each other's publish logs, [`ToCoordinator::Publishes`]).
pub const VERSION: u32 = 4;

/// Largest message either side accepts (a final results file with its histograms).
pub const MAX_MESSAGE: usize = 256 << 20;

/// Environment variable holding the run's token (local workers get it this way).
pub const TOKEN_ENV: &str = "SWARM_TOKEN";

/// What a worker sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCoordinator {
    /// First message: who is asking, and the run's token.
    Hello {
        version: u32,
        token: String,
        /// The shard the worker asks for (`--index`, `JOB_COMPLETION_INDEX`); `None`: any.
        index: Option<u32>,
        host: String,
        pid: u32,
    },
    /// The plan is built and the output prepared: the worker can start.
    Ready,
    /// The plan could not be built or run here.
    Failed { why: String },
    /// Answer to [`ToWorker::Ping`]: `worker_ns` is the worker's wall clock when it answered.
    Pong { id: u32, worker_ns: u64 },
    /// The last second's live figures.
    Live { snapshot: LiveSnapshot },
    /// One closed second: its series point, counters so far and interval histograms (the
    /// coordinator merges them for the live outputs, cluster/live.rs).
    Second {
        second: Box<super::live::WireSecond>,
    },
    /// New complete lines of the worker's `histograms.hlog`.
    Intervals { lines: String },
    /// A `running` results file (the worker's checkpoint).
    Checkpoint { results: String },
    /// Answer to [`ToWorker::Ask`] (a steered run).
    Answer {
        id: u32,
        /// The counts so far.
        progress: crate::recorder::Progress,
        /// Broadcast receivers that settled their tallies up to the phase asked about.
        settled: u32,
        /// Everything recorded so far as a results file (JSON), when asked for.
        results: Option<String>,
    },
    /// A split run: what this worker's publishers did since its last batch (sent every
    /// few tens of milliseconds; the coordinator passes it on to every other worker).
    Publishes {
        batch: crate::scenario::broadcast::relay::Batch,
    },
    /// The worker's final results file and the rest of its interval log.
    Final {
        results: String,
        lines: String,
        cpu_seconds: f64,
        peak_rss_bytes: u64,
    },
}

/// What the coordinator sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// The worker is not admitted (wrong token or version, shard taken, run full).
    Refused { why: String },
    /// The worker's shard and the plan, as the coordinator's command line gave it.
    Welcome {
        shard: Shard,
        /// The coordinator's arguments (without the program name).
        argv: Vec<String>,
        /// The plan file's text, when the plan came from a file.
        plan_text: Option<String>,
        /// The target every worker aims at (the coordinator resolved it, or started it).
        url: String,
        run_id: u32,
        seed: u64,
        /// A steered run (`swarm capacity` keeping its clients): the plan's first
        /// `steered` phases are placed at the start, the coordinator decides the others
        /// ([`ToWorker::Decide`]). `None`: every phase is the plan's.
        #[serde(default)]
        steered: Option<u16>,
    },
    /// Clock exchange: `coordinator_ns` is the coordinator's wall clock when it sent it.
    Ping { id: u32, coordinator_ns: u64 },
    /// Start the schedule at this wall-clock instant, in the worker's own clock.
    Start { at_unix_ns: u64 },
    /// Stop (Ctrl-C at the coordinator): drain, close, send the final results.
    Stop,
    /// A steered run's next phase (schedule.rs `Decision`): every worker decides the same
    /// phases in the same order, so their windows are the same instants.
    Decide {
        /// It starts no sooner than this, in ns from the run's common start.
        not_before_ns: u64,
        /// Its length after its connect ramp.
        duration_ns: u64,
        rate_per_s: f64,
        clients: Option<u32>,
        keep: Option<u32>,
        /// Connects per second of the clients it adds (`None`: all at its start).
        connect_rate: Option<f64>,
    },
    /// A steered run's broadcast receivers settle their tallies up to this phase.
    Settle { through: u16 },
    /// A steered run has no more phases: its clients drain and close after the last one.
    Close,
    /// A steered run's counts so far (with everything recorded when `records`), and how
    /// many receivers settled up to `settled_through`; answered by [`ToCoordinator::Answer`].
    Ask {
        id: u32,
        records: bool,
        settled_through: Option<u16>,
    },
    /// A split run: the other workers' batches since the last of these, each with the
    /// worker it came from, its instants moved to this worker's clock.
    Publishes {
        batches: Vec<(u32, crate::scenario::broadcast::relay::Batch)>,
        /// For each worker on another host: what to add to its clock to read it on this
        /// worker's (from the clock offsets), for the one-way latency of its publishes,
        /// and how far that may be off (the two offsets' bounds added), for the messages
        /// sent too near a join or leave to settle.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        shifts: Vec<(u32, i64, u64)>,
    },
    /// The run is merged: the worker may exit.
    Bye,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("message of {0} bytes is above the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Reads one message; [`WireError::Closed`] on a clean end of stream before a length.
pub async fn read<T, R>(r: &mut R) -> Result<T, WireError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Writes one message.
pub async fn write<T, W>(w: &mut W, msg: &T) -> Result<(), WireError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let body = serde_json::to_vec(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Nanoseconds since the Unix epoch, now (0 before 1970).
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A fresh random token (128 bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Compares tokens in time independent of where they differ.
pub fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_and_hostile_frames_are_refused() {
        let mut buf = Vec::new();
        write(&mut buf, &ToWorker::Start { at_unix_ns: 42 })
            .await
            .unwrap();
        write(&mut buf, &ToCoordinator::Ready).await.unwrap();
        let mut r = buf.as_slice();
        assert!(matches!(
            read::<ToWorker, _>(&mut r).await,
            Ok(ToWorker::Start { at_unix_ns: 42 })
        ));
        assert!(matches!(
            read::<ToCoordinator, _>(&mut r).await,
            Ok(ToCoordinator::Ready)
        ));
        assert!(matches!(
            read::<ToWorker, _>(&mut r).await,
            Err(WireError::Closed)
        ));

        // A steered run's messages: a decision (no connect rate: all at its start) and
        // an answer, whose counts and records come through whole.
        let mut buf = Vec::new();
        let decide = ToWorker::Decide {
            not_before_ns: 1_500_000_000,
            duration_ns: 2_000_000_000,
            rate_per_s: 12.5,
            clients: Some(40),
            keep: None,
            connect_rate: None,
        };
        write(&mut buf, &decide).await.unwrap();
        let progress = crate::recorder::Progress {
            health_seconds: vec![0, 1],
            ..Default::default()
        };
        let answer = ToCoordinator::Answer {
            id: 7,
            progress: progress.clone(),
            settled: 3,
            results: Some("{}".into()),
        };
        write(&mut buf, &answer).await.unwrap();
        let mut r = buf.as_slice();
        match read::<ToWorker, _>(&mut r).await {
            Ok(ToWorker::Decide {
                not_before_ns: 1_500_000_000,
                duration_ns: 2_000_000_000,
                rate_per_s,
                clients: Some(40),
                keep: None,
                connect_rate: None,
            }) => assert_eq!(rate_per_s, 12.5),
            other => panic!("{other:?}"),
        }
        match read::<ToCoordinator, _>(&mut r).await {
            Ok(ToCoordinator::Answer {
                id: 7,
                progress: p,
                settled: 3,
                results: Some(text),
            }) => assert_eq!((p, text.as_str()), (progress, "{}")),
            other => panic!("{other:?}"),
        }
        // A welcome without `steered` is a run whose phases are all the plan's.
        let old = r#"{"type":"welcome","shard":{"index":0,"count":2},"argv":[],"plan_text":null,"url":"ws://127.0.0.1:1/","run_id":1,"seed":2}"#;
        match serde_json::from_str::<ToWorker>(old) {
            Ok(ToWorker::Welcome { steered: None, .. }) => {}
            other => panic!("{other:?}"),
        }

        // A split run's batches: the worker's, and the coordinator's gathering of them
        // with the clock shifts, come through whole.
        let batch = crate::scenario::broadcast::relay::Batch {
            mark_ns: 9_000,
            logs: vec![crate::scenario::broadcast::relay::LogDelta {
                publisher: 3,
                from: 10,
                sent: vec![8_000, 25],
                cuts: vec![(1, 10)],
                void: vec![11],
            }],
            joins: vec![(4, 12)],
        };
        let mut buf = Vec::new();
        let up = ToCoordinator::Publishes {
            batch: batch.clone(),
        };
        write(&mut buf, &up).await.unwrap();
        let down = ToWorker::Publishes {
            batches: vec![(1, batch.clone())],
            shifts: vec![(1, -250, 40)],
        };
        write(&mut buf, &down).await.unwrap();
        let mut r = buf.as_slice();
        match read::<ToCoordinator, _>(&mut r).await {
            Ok(ToCoordinator::Publishes { batch: b }) => assert_eq!(b, batch),
            other => panic!("{other:?}"),
        }
        match read::<ToWorker, _>(&mut r).await {
            Ok(ToWorker::Publishes { batches, shifts }) => {
                assert_eq!(batches, vec![(1, batch)]);
                assert_eq!(shifts, vec![(1, -250, 40)]);
            }
            other => panic!("{other:?}"),
        }

        // A length above the limit is refused before anything is allocated.
        let huge = ((MAX_MESSAGE + 1) as u32).to_be_bytes();
        let mut r = huge.as_slice();
        assert!(matches!(
            read::<ToWorker, _>(&mut r).await,
            Err(WireError::TooLarge(_))
        ));
        // A body cut short, and a body that is not a message.
        let mut cut = 100u32.to_be_bytes().to_vec();
        cut.extend_from_slice(b"{\"type\"");
        let mut r = cut.as_slice();
        assert!(matches!(
            read::<ToWorker, _>(&mut r).await,
            Err(WireError::Io(_))
        ));
        let mut bad = 4u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"\xff\xfe{}");
        let mut r = bad.as_slice();
        assert!(matches!(
            read::<ToWorker, _>(&mut r).await,
            Err(WireError::Malformed(_))
        ));
    }
}
