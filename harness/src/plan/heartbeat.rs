//! The plan options of the heartbeat scenario, which any phase may have: heartbeat-only
//! clients, muting, client pings (raw WebSocket).
//!
//! Receives a raw phase (TOML keys, or `swarm heartbeat` flags converted into one by the
//! CLI). Emits the validated [`HeartbeatOpts`] and every problem found, as plan errors;
//! [`parse_mute`] is also the syntax of `--mute` and of the `mute` key.
//! Must not: open anything; an error here means nothing was opened.

use std::time::Duration;

use super::{RawPhase, take, take_bare};

/// `--mute FRACTION[@T]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mute {
    pub fraction: f64,
    /// From the start of the phase.
    pub at: Duration,
}

/// Heartbeat options of one phase.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeartbeatOpts {
    /// Clients that only hold their connection and watch heartbeats (the last ones of the
    /// phase); every client of a `heartbeat` phase is one.
    pub clients: u32,
    pub mute: Option<Mute>,
    /// Raw WS: send a ping this often and time its pong.
    pub client_ping_interval: Option<Duration>,
}

/// The heartbeat options of one raw phase.
pub(super) fn heartbeat_opts(rp: &RawPhase, errs: &mut Vec<String>) -> HeartbeatOpts {
    let hb_clients = take_bare(&rp.heartbeat_clients, errs).unwrap_or(0);
    let mute = take(&rp.mute, "mute", errs);
    let heartbeat = HeartbeatOpts {
        clients: hb_clients,
        mute,
        client_ping_interval: take(&rp.client_ping_interval, "client-ping-interval", errs),
    };
    if heartbeat.client_ping_interval.is_some_and(|d| d.is_zero()) {
        errs.push("client-ping-interval must be above zero".into());
    }
    heartbeat
}

/// `0.1`, `10%`, `0.25@5s`.
pub fn parse_mute(s: &str) -> Result<Mute, String> {
    let (f, at) = match s.split_once('@') {
        Some((f, at)) => (f, Some(at)),
        None => (s, None),
    };
    let f = f.trim();
    let fraction = match f.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => f.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?}: write FRACTION[@T], e.g. 0.1@5s or 10%@5s"))?;
    if !(0.0..=1.0).contains(&fraction) {
        return Err(format!("{s:?}: the fraction must be between 0 and 1"));
    }
    let at = match at {
        Some(t) => crate::model::parse_duration(t)?,
        None => Duration::ZERO,
    };
    Ok(Mute { fraction, at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_forms() {
        assert_eq!(
            parse_mute("0.25@5s").unwrap(),
            Mute {
                fraction: 0.25,
                at: Duration::from_secs(5)
            }
        );
        assert_eq!(parse_mute("10%").unwrap().fraction, 0.1);
        assert!(parse_mute("2").is_err());
        assert!(parse_mute("x@1s").is_err());
    }
}
