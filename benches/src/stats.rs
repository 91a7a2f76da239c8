//! Percentile summaries of round-trip times measured by the benches' own clients.
//!
//! Receives: durations. Emits: an HDR histogram (1 µs .. 60 s, 3 significant digits, the
//! same shape as the swarm's) and its p50 / p99 / mean in microseconds.
//! Must not: print.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Round-trip times in microseconds.
pub struct Rtt {
    h: Histogram<u64>,
}

impl Default for Rtt {
    fn default() -> Self {
        Rtt::new()
    }
}

impl Rtt {
    pub fn new() -> Rtt {
        // 1 µs .. 60 s at 3 significant digits is a valid range: construction cannot fail.
        let h = Histogram::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits"));
        Rtt { h }
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.h.saturating_record(us);
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Value at `q` (0..=1) in µs.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.h.value_at_quantile(q)
    }

    pub fn mean_us(&self) -> f64 {
        self.h.mean()
    }

    /// Adds every value of `other` (both have the same bounds: this cannot fail).
    pub fn histogram_add(&mut self, other: &Rtt) {
        let _ = self.h.add(&other.h);
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.h
    }
}
