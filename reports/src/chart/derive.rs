//! Chart data derived from recorded distributions: percentile spectra, CDFs and histograms.
//!
//! Receives a [`Distribution`] (decodes its embedded HdrHistogram); emits points or bins in
//! the chart units (percentiles, µs). A histogram that cannot be decoded yields an error the
//! caller turns into a note; an empty one yields no points.
//! Must not: produce more than a few hundred points per curve, or panic on hostile input.

use crate::chart::{Bin, MAX_PERCENTILE_DECADES};
use crate::distribution::{Distribution, DistributionError};

/// Points of a percentile spectrum: `(percentile, µs)` from 0% up to the highest
/// percentile that the count resolves (99.9% for 1,000 values), evenly spaced on a
/// log-percentile axis, ending with the maximum at that last percentile.
pub fn spectrum(d: &Distribution) -> Result<Vec<(f64, f64)>, DistributionError> {
    if d.count == 0 {
        return Ok(Vec::new());
    }
    let h = d.histogram()?;
    if h.is_empty() {
        return Ok(Vec::new());
    }
    let decades = (h.len() as f64).log10().clamp(1.0, MAX_PERCENTILE_DECADES);
    const STEPS: u32 = 80;
    let mut out = Vec::with_capacity(STEPS as usize + 1);
    for i in 0..STEPS {
        let t = decades * f64::from(i) / f64::from(STEPS);
        let q = 1.0 - 10f64.powf(-t);
        out.push((q * 100.0, h.value_at_quantile(q) as f64));
    }
    let last = 100.0 * (1.0 - 10f64.powf(-decades));
    out.push((last, h.max() as f64));
    Ok(out)
}

/// Points of a cumulative distribution: `(µs, percent of values at or below it)`.
pub fn cdf(d: &Distribution) -> Result<Vec<(f64, f64)>, DistributionError> {
    if d.count == 0 {
        return Ok(Vec::new());
    }
    let h = d.histogram()?;
    if h.is_empty() {
        return Ok(Vec::new());
    }
    let mut qs: Vec<f64> = (0..=49).map(|i| f64::from(i) * 2.0).collect();
    qs.extend([99.0, 99.5, 99.9, 99.99]);
    let mut out: Vec<(f64, f64)> = qs
        .into_iter()
        .map(|p| (h.value_at_quantile(p / 100.0) as f64, p))
        .collect();
    out.push((h.max() as f64, 100.0));
    out.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
    Ok(out)
}

/// Up to `bins` equal-width bins `[lo, hi)` in µs covering min..=max, with their counts.
pub fn histogram(d: &Distribution, bins: usize) -> Result<Vec<Bin>, DistributionError> {
    if d.count == 0 || bins == 0 {
        return Ok(Vec::new());
    }
    let h = d.histogram()?;
    if h.is_empty() {
        return Ok(Vec::new());
    }
    let (min, max) = (h.min() as f64, h.max() as f64);
    let width = ((max - min) / bins as f64).max(1.0);
    let n = (((max - min) / width).floor() as usize + 1).min(bins.max(1));
    let mut out: Vec<Bin> = (0..n)
        .map(|i| Bin {
            lo: min + width * i as f64,
            hi: min + width * (i + 1) as f64,
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to()) as f64;
        let i = (((value - min) / width).floor().max(0.0) as usize).min(n - 1);
        out[i].count = out[i].count.saturating_add(v.count_at_value());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::new_histogram;

    fn dist(values: impl IntoIterator<Item = u64>) -> Distribution {
        let mut h = new_histogram();
        for v in values {
            h.saturating_record(v);
        }
        Distribution::from_histogram(&h, 0).expect("encode")
    }

    #[test]
    fn spectrum_rises_to_the_max() {
        let d = dist(1..=10_000);
        let s = spectrum(&d).expect("spectrum");
        assert_eq!(s.first().map(|p| p.0), Some(0.0));
        let (last_p, last_v) = *s.last().expect("points");
        assert!((last_p - 99.99).abs() < 1e-6, "{last_p}");
        assert!((last_v - 10_000.0).abs() <= 10.0, "{last_v}");
        assert!(s.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic");
        assert!(spectrum(&dist([])).expect("empty").is_empty());
    }

    #[test]
    fn cdf_ends_at_100_percent() {
        let c = cdf(&dist([100, 200, 300, 400])).expect("cdf");
        assert_eq!(c.last().map(|p| p.1), Some(100.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn histogram_keeps_every_count() {
        let d = dist((0..1000).map(|i| 1_000 + i % 50));
        let bins = histogram(&d, 10).expect("bins");
        assert!(!bins.is_empty() && bins.len() <= 10);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 1000);
        let one = histogram(&dist([7, 7, 7]), 20).expect("one value");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].count, 3);
    }

    #[test]
    fn hostile_histogram_is_an_error() {
        let mut d = dist([1, 2, 3]);
        d.hdr_v2_deflate_base64 = "@@@".into();
        assert!(spectrum(&d).is_err());
        assert!(cdf(&d).is_err());
        assert!(histogram(&d, 5).is_err());
    }
}
