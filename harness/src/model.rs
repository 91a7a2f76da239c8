//! The swarm's domain vocabulary, shared by the CLI, plans, schedule, driver and run: the
//! protocol, transport, parser and arrival process of a run, the reconnect jitter, and the
//! one set of rules for counts, rates, durations and sizes (the target-server binary reads
//! its flags with the same rules, `target_server::config`).
//!
//! Receives: strings (flags, plan keys). Emits: typed values or a message saying what is
//! wrong. Must not: import the CLI (`crate::cli` re-exports these for clap), or touch I/O.

use std::time::Duration;

use clap::ValueEnum;

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

/// `10k` -> 10,000; `1.5k` -> 1,500; `2m` -> 2,000,000; `250` -> 250.
pub fn parse_count(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000.0),
        Some('m') => (&t[..t.len() - 1], 1_000_000.0),
        _ => (t.as_str(), 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid count {s:?}: write e.g. 500, 10k, 1.5k"))?;
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > f64::from(u32::MAX) || v.fract() != 0.0 {
        return Err(format!(
            "invalid count {s:?}: a whole number up to 4 billion"
        ));
    }
    Ok(v as u32)
}

/// `100/s`, `30/m` -> events per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    target_server::config::parse_rate(s).map_err(|e| e.to_string())
}

/// `16MiB`, `64KiB`, `1MB`, `65536` -> bytes (the rules of target-server's byte flags).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n = target_server::config::parse_bytes(s).map_err(|e| e.to_string())?;
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
    target_server::config::parse_duration(s).map_err(|e| e.to_string())
}
