//! The swarm's domain vocabulary, shared by the CLI, plans, schedule, driver and run: the
//! protocol, transport, parser and arrival process of a run, the reconnect jitter, and the
//! one set of rules for counts, rates, durations and sizes (the target-server binary reads
//! its flags with the same rules, `target_server::config`).
//!
//! Receives: strings (flags, plan keys). Emits: typed values or a message saying what is
//! wrong. Must not: import the CLI (the CLI re-exports these for clap), or touch I/O.

use std::time::Duration;

use clap::ValueEnum;
use protocol::units;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    Constant,
    Poisson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Ws,
    #[value(name = "socketio")]
    Socketio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Polling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParserKind {
    Default,
    Msgpack,
}

/// Randomisation of reconnect delays (`--reconnect-jitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// Uniform in [0, D].
    #[default]
    Full,
    /// Uniform in [D/2, D].
    Equal,
    /// Exactly D.
    None,
}

impl Jitter {
    pub fn name(self) -> &'static str {
        match self {
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::None => "none",
        }
    }
}

/// Default largest message (WebSocket message or frame, polling body) a client accepts
/// (`--max-message-size`): a hostile server must not make each client hold tungstenite's
/// default 64 MiB. A larger one ends the connection (`message_too_large`).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Default `--write-timeout`.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `10k` -> 10,000; `1.5k` -> 1,500; `2m` -> 2,000,000; `250` -> 250
/// ([`protocol::units::parse_count`]), up to 4 billion.
pub fn parse_count(s: &str) -> Result<u32, String> {
    let n = units::parse_count(s).map_err(|e| e.to_string())?;
    u32::try_from(n).map_err(|_| format!("invalid count {s:?}: a whole number up to 4 billion"))
}

/// `100/s`, `30/m` -> events per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    units::parse_rate(s).map_err(|e| e.to_string())
}

/// `16MiB`, `64KiB`, `1MB`, `65536` -> bytes ([`protocol::units::parse_bytes`]).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n = units::parse_bytes(s).map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|_| format!("invalid size {s:?}: too large"))
}

/// `10s`, `500ms`, or `off` (no write timeout).
pub fn parse_write_timeout(s: &str) -> Result<Option<Duration>, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("invalid write timeout {s:?}: above zero, or `off`"));
    }
    Ok(Some(d))
}

/// `500ms`, `10s`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    units::parse_duration(s).map_err(|e| e.to_string())
}

/// Clients one process runs when `procs` is `auto`: one worker per this many clients.
pub const CLIENTS_PER_PROC: u32 = 15_000;

/// How many processes a run asks for (`--procs`, plan key `procs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Procs {
    /// One process per [`CLIENTS_PER_PROC`] clients (at least one).
    #[default]
    Auto,
    /// Exactly this many local workers; 0 with `--expect-workers`: remote ones only.
    Exactly(u32),
}

impl Procs {
    /// `auto` or a number of processes.
    pub fn parse(s: &str) -> Result<Procs, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Procs::Auto);
        }
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= 1024)
            .map(Procs::Exactly)
            .ok_or_else(|| format!("procs {s:?} must be `auto` or a number from 0 to 1024"))
    }

    /// The number of local worker processes for `clients` at most at once; 1 means "run in
    /// this process, no workers".
    pub fn local_workers(self, clients: u32) -> u32 {
        match self {
            Procs::Auto => clients.div_ceil(CLIENTS_PER_PROC).max(1),
            Procs::Exactly(n) => n,
        }
    }
}

/// Which of the target host's addresses the clients connect to (`--resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resolve {
    /// The first address that accepts a TCP connection.
    #[default]
    First,
    /// Every address that accepts one, client `i` taking address `i mod n`.
    All,
}
