//! Fault injection for calibrating the swarm: drop, delay, stall.
//!
//! Receives: the message key and recipient of each application delivery; the clock.
//! Emits: drop decisions (counted exactly in [`Stats`]), delays, and a stall gate.
//! Must not: touch handshakes, namespace connects, join/leave acks or control frames
//! (callers only ask about application data).

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Delay, Stall};
use crate::stats::Stats;

/// Fault settings plus the server's start instant (stall windows are counted from it).
#[derive(Debug)]
pub struct Faults {
    drop_threshold: u64,
    seed: u64,
    delay: Option<Delay>,
    stall: Option<Stall>,
    started: Instant,
    stats: Arc<Stats>,
}

impl Faults {
    pub fn new(config: &Config, stats: Arc<Stats>) -> Faults {
        let p = config.drop_rate.clamp(0.0, 1.0);
        let drop_threshold = if p >= 1.0 {
            u64::MAX
        } else {
            (p * u64::MAX as f64) as u64
        };
        Faults {
            drop_threshold,
            seed: config.seed,
            delay: config.delay,
            stall: config.stall,
            started: Instant::now(),
            stats,
        }
    }

    /// True when deliveries may be dropped (then broadcasts are written socket by socket).
    pub fn dropping(&self) -> bool {
        self.drop_threshold > 0
    }

    /// A stable key for one message (hash of its encoded bytes), computed once per message.
    pub fn message_key(bytes: &[u8]) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        h.finish()
    }

    /// Decides whether the delivery of message `key` to connection `recipient` is dropped:
    /// `hash(seed, key, recipient) < P`. Counts every drop in `Stats::dropped_by_injection`.
    pub fn should_drop(&self, key: u64, recipient: u64) -> bool {
        if self.drop_threshold == 0 {
            return false;
        }
        let h = mix(self.seed ^ mix(key ^ mix(recipient)));
        let drop = h < self.drop_threshold || self.drop_threshold == u64::MAX;
        if drop {
            self.stats.dropped_by_injection.fetch_add(1, Relaxed);
        }
        drop
    }

    /// The delay to apply to one outgoing application message, if any (`--delay D±J`,
    /// jitter uniform in [-J, +J]).
    pub fn delay(&self) -> Option<Duration> {
        let d = self.delay?;
        if d.jitter.is_zero() {
            return Some(d.base);
        }
        let j = d.jitter.as_nanos() as i128;
        let off = rand::random_range(-j..=j);
        Some(Duration::from_nanos(
            (d.base.as_nanos() as i128 + off).max(0) as u64,
        ))
    }

    /// Waits while the application handlers are stalled (`--stall EVERY:FOR`: the last FOR
    /// of every EVERY window since start). Returns at once when not stalled.
    pub async fn stall_gate(&self) {
        if let Some(until) = self.stalled_until(Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// If `now` is inside a stall window, the instant it ends.
    pub fn stalled_until(&self, now: Instant) -> Option<Instant> {
        let s = self.stall?;
        let since = now.saturating_duration_since(self.started).as_nanos();
        let every = s.every.as_nanos();
        let pos = since % every;
        let stall_from = every - s.for_.as_nanos();
        (pos >= stall_from).then(|| now + Duration::from_nanos((every - pos) as u64))
    }
}

/// splitmix64 finaliser: a fast, well-mixed 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(rate: f64) -> Faults {
        let config = Config {
            drop_rate: rate,
            seed: 7,
            ..Config::default()
        };
        Faults::new(&config, Arc::new(Stats::new()))
    }

    #[test]
    fn drop_rate_is_close_to_p_and_counted_exactly() {
        let f = faults(0.1);
        let dropped = (0..100_000u64)
            .filter(|i| f.should_drop(i / 100, i % 100))
            .count() as u64;
        assert!((9_000..11_000).contains(&dropped), "dropped {dropped}");
        assert_eq!(f.stats.dropped_by_injection.load(Relaxed), dropped);
        let again = faults(0.1);
        let same = (0..100_000u64)
            .filter(|i| again.should_drop(i / 100, i % 100))
            .count() as u64;
        assert_eq!(
            same, dropped,
            "decision depends only on seed, message and recipient"
        );
    }

    #[test]
    fn zero_and_one() {
        assert!(!faults(0.0).should_drop(1, 2));
        assert!(faults(1.0).should_drop(1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn stall_windows() {
        let config = Config {
            stall: Some(Stall {
                every: Duration::from_secs(2),
                for_: Duration::from_millis(500),
            }),
            ..Config::default()
        };
        let f = Faults::new(&config, Arc::new(Stats::new()));
        let t0 = f.started;
        assert!(f.stalled_until(t0 + Duration::from_millis(1400)).is_none());
        assert_eq!(
            f.stalled_until(t0 + Duration::from_millis(1600)),
            Some(t0 + Duration::from_secs(2))
        );
        assert!(f.stalled_until(t0 + Duration::from_millis(2100)).is_none());
    }
}
