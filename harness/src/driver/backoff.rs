//! Reconnect delays: exponential backoff with a cap and jitter (`--reconnect-delay`,
//! `--reconnect-max-delay`, `--reconnect-jitter`).
//!
//! Receives: the plan's reconnect settings, the number of failed attempts in a row, and a
//! client's random state. Emits: how long to wait before the next attempt.
//! Must not: sleep, or let clients lost together come back in lockstep (that is what
//! jitter is for: a restarted server would meet every client in the same millisecond).

use std::time::Duration;

use crate::model::Jitter;
use crate::plan::FanTarget;
use crate::schedule::splitmix64;

/// The delay before the next attempt after `failed` failed attempts in a row (0: the
/// first attempt after the loss): `reconnect_delay * 2^failed`, at most
/// `reconnect_max_delay`, then jittered.
pub fn delay(fan: &FanTarget, failed: u32, rng: &mut u64) -> Duration {
    let base = fan.reconnect_delay;
    let cap = fan.reconnect_max_delay.max(base);
    let doubled = base.saturating_mul(1u32 << failed.min(31));
    let d = doubled.min(cap);
    let u = (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64;
    match fan.reconnect_jitter {
        Jitter::None => d,
        Jitter::Full => d.mul_f64(u),
        Jitter::Equal => d / 2 + (d / 2).mul_f64(u),
    }
}

/// True when a client that failed `failed` attempts in a row may try again.
pub fn may_retry(fan: &FanTarget, failed: u32) -> bool {
    fan.reconnect_max_attempts == 0 || failed < fan.reconnect_max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fan(jitter: Jitter) -> FanTarget {
        FanTarget {
            reconnect: true,
            reconnect_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_millis(1000),
            reconnect_jitter: jitter,
            reconnect_max_attempts: 3,
            ..FanTarget::default()
        }
    }

    #[test]
    fn doubles_up_to_the_cap_without_jitter() {
        let f = fan(Jitter::None);
        let mut rng = 7;
        let got: Vec<u128> = (0..6).map(|n| delay(&f, n, &mut rng).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        // Huge attempt counts neither overflow nor pass the cap.
        assert_eq!(delay(&f, u32::MAX, &mut rng), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_stays_in_its_range_and_spreads() {
        for (jitter, lo) in [(Jitter::Full, 0), (Jitter::Equal, 200)] {
            let f = fan(jitter);
            let mut rng = 42;
            let ds: Vec<u128> = (0..1000)
                .map(|_| delay(&f, 2, &mut rng).as_millis())
                .collect();
            assert!(ds.iter().all(|&d| (lo..=400).contains(&d)), "{jitter:?}");
            let min = *ds.iter().min().unwrap();
            let max = *ds.iter().max().unwrap();
            // Spread over most of the range, not one value.
            assert!(max - min > (400 - lo) * 8 / 10, "{jitter:?}: {min}..{max}");
        }
    }

    #[test]
    fn attempts_are_bounded_when_asked() {
        let f = fan(Jitter::None);
        assert!(may_retry(&f, 2));
        assert!(!may_retry(&f, 3));
        let unlimited = FanTarget {
            reconnect_max_attempts: 0,
            ..f
        };
        assert!(may_retry(&unlimited, 1_000_000));
    }
}
