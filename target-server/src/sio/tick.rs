//! The built-in publisher `--tick ROOM:RATE:SIZE`: `tick` events to a room of the default
//! namespace on a fixed schedule, carrying the payload object (docs/ARCHITECTURE.md#the-payload-object).
//!
//! Receives: the tick settings and the server's shutdown token.
//! Emits: `42["tick",{"sb":"server","c":0,"s":<seq>,"ti":<intended ns>,"ts":<actual ns>,"p":".."}]`
//! to every member of ROOM, encoded once per tick; intended instants follow `start + seq /
//! RATE` whatever happened before, so a late server shows as lateness (`ts - ti`).
//! Must not: skip or re-time ticks to hide lateness.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::raw::EventText;
use super::rooms::Namespace;
use crate::config::Tick;

/// Runs until shutdown.
pub(crate) async fn run(nsp: Arc<Namespace>, tick: Tick, shutdown: CancellationToken) {
    let start = Instant::now();
    let wall_start = wall_ns();
    let period_s = 1.0 / tick.rate_per_s;
    for seq in 0u64.. {
        let offset = Duration::from_secs_f64(seq as f64 * period_s);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sleep_until(start + offset) => {}
        }
        let intended = wall_start.saturating_add(offset.as_nanos() as u64);
        let object = payload(seq, intended, wall_ns(), tick.size_bytes);
        nsp.broadcast(
            &tick.room,
            EventText::new(&nsp.name, "tick", &object, 0),
            None,
        );
    }
}

/// The payload object, padded with `p` to `size` bytes of JSON (never shorter than the
/// object with an empty `p`).
pub(crate) fn payload(seq: u64, intended_ns: u64, sent_ns: u64, size: usize) -> String {
    let mut s =
        format!(r#"{{"sb":"server","c":0,"s":{seq},"ti":{intended_ns},"ts":{sent_ns},"p":""#);
    let pad = size.saturating_sub(s.len() + 2);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// Wall-clock nanoseconds since the Unix epoch.
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_padded_to_size() {
        let p = payload(7, 1_000, 1_005, 120);
        assert_eq!(p.len(), 120);
        let v: serde_json::Value = serde_json::from_str(&p).expect("valid JSON");
        assert_eq!(v["sb"], "server");
        assert_eq!(v["s"], 7);
        assert_eq!(v["ti"], 1_000);
        assert_eq!(v["ts"], 1_005);
        let small = payload(0, 1, 2, 10);
        assert!(
            small.ends_with(r#""p":""}"#),
            "minimum size: empty padding, {small}"
        );
    }
}
