//! One recorded distribution of durations, as the run file carries it.
//!
//! Receives an HDR histogram of microseconds (from the recorder, or decoded from a file) and
//! emits a [`Distribution`]: precomputed summary statistics for readers that do not decode,
//! plus the whole histogram as base64 of the HdrHistogram V2-deflate encoding so that other
//! tools (HdrHistogram's own, in any language) can read it.
//! Must not: panic on a hostile encoding, or lose counts when two distributions are added.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Lowest value tracked, in µs (0 is still recordable, it lands in the first bucket).
pub const LOWEST_US: u64 = 1;
/// Highest value tracked, in µs (one hour). Larger values are clamped and counted in
/// `out_of_range`.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A new, empty histogram with the run file's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (checked by `bounds_are_accepted`); not input.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Errors when decoding or combining embedded histograms.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("embedded histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("embedded histogram is not a valid HdrHistogram V2 encoding: {0}")]
    Decode(#[from] crate::hdr::HdrRejected),
    #[error("could not encode histogram: {0}")]
    Encode(String),
    #[error("histograms could not be added: {0}")]
    Add(String),
}

/// A distribution of durations in microseconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of recorded values.
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Values above [`HIGHEST_US`], recorded as [`HIGHEST_US`].
    #[serde(default)]
    pub out_of_range: u64,
    /// base64 (standard alphabet, padded) of the HdrHistogram V2-deflate encoding.
    pub hdr_v2_deflate_base64: String,
}

impl Distribution {
    /// Summarises and encodes `h` (values in µs).
    pub fn from_histogram(
        h: &Histogram<u64>,
        out_of_range: u64,
    ) -> Result<Self, DistributionError> {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut buf)
            .map_err(|e| DistributionError::Encode(e.to_string()))?;
        let empty = h.is_empty();
        let at = |p: f64| if empty { 0 } else { h.value_at_percentile(p) };
        Ok(Distribution {
            count: h.len(),
            min_us: if empty { 0 } else { h.min() },
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p999_us: at(99.9),
            max_us: if empty { 0 } else { h.max() },
            mean_us: if empty { 0.0 } else { h.mean() },
            out_of_range,
            hdr_v2_deflate_base64: base64::engine::general_purpose::STANDARD.encode(&buf),
        })
    }

    /// Decodes the embedded histogram, checked and bounded first ([`crate::hdr`]): a file's
    /// bytes never size an allocation before they are present.
    pub fn histogram(&self) -> Result<Histogram<u64>, DistributionError> {
        let text = &self.hdr_v2_deflate_base64;
        if text.len() > crate::hdr::MAX_ENCODED_BYTES / 3 * 4 + 4 {
            return Err(crate::hdr::HdrRejected::TooLong(text.len() / 4 * 3).into());
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        Ok(crate::hdr::decode(&bytes)?)
    }

    /// Value at `percentile` (0..=100), decoding the histogram unless it is one of the
    /// precomputed statistics.
    pub fn value_at_percentile(&self, percentile: f64) -> Result<u64, DistributionError> {
        if self.count == 0 {
            return Ok(0);
        }
        let pre = [
            (50.0, self.p50_us),
            (90.0, self.p90_us),
            (99.0, self.p99_us),
            (99.9, self.p999_us),
        ];
        if let Some((_, v)) = pre.iter().find(|(p, _)| (*p - percentile).abs() < 1e-9) {
            return Ok(*v);
        }
        if percentile >= 100.0 {
            return Ok(self.max_us);
        }
        Ok(self.histogram()?.value_at_percentile(percentile))
    }

    /// Exact sum of two distributions (histograms add, out-of-range counts add).
    pub fn merged(&self, other: &Distribution) -> Result<Distribution, DistributionError> {
        let mut h = new_histogram();
        for d in [self, other] {
            if d.count > 0 || !d.hdr_v2_deflate_base64.is_empty() {
                h.add(d.histogram()?)
                    .map_err(|e| DistributionError::Add(format!("{e:?}")))?;
            }
        }
        Distribution::from_histogram(&h, self.out_of_range + other.out_of_range)
    }
}

/// Adds two optional distributions (a side that is absent contributes nothing).
pub fn merge_opt(
    a: &Option<Distribution>,
    b: &Option<Distribution>,
) -> Result<Option<Distribution>, DistributionError> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.merged(b)?),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(values: &[u64]) -> Distribution {
        let mut h = new_histogram();
        for v in values {
            h.saturating_record(*v);
        }
        Distribution::from_histogram(&h, 0).expect("encode")
    }

    #[test]
    fn bounds_are_accepted() {
        let h = new_histogram();
        assert_eq!(h.high(), HIGHEST_US);
        assert!(!h.is_auto_resize());
    }

    #[test]
    fn summary_and_roundtrip() {
        let d = dist(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(d.count, 1000);
        assert_eq!(d.min_us, 1);
        assert_eq!(d.max_us, 1000);
        assert_eq!(d.p50_us, 500);
        assert_eq!(d.p99_us, 990);
        let h = d.histogram().expect("decode");
        assert_eq!(h.len(), 1000);
        assert_eq!(h.value_at_percentile(95.0), 950);
        assert_eq!(d.value_at_percentile(95.0).expect("p95"), 950);
    }

    #[test]
    fn empty_is_zero_and_decodes() {
        let d = dist(&[]);
        assert_eq!(d.count, 0);
        assert_eq!(d.max_us, 0);
        assert_eq!(d.histogram().expect("decode").len(), 0);
        assert_eq!(d.value_at_percentile(99.0).expect("p"), 0);
    }

    #[test]
    fn merge_adds_exactly() {
        let a = dist(&[10, 20, 30]);
        let b = dist(&[40, 5_000_000]);
        let m = a.merged(&b).expect("merge");
        assert_eq!(m.count, 5);
        assert_eq!(m.min_us, 10);
        assert!(
            m.max_us >= 4_999_000 && m.max_us <= 5_010_000,
            "{}",
            m.max_us
        );
        let e = merge_opt(&None, &Some(a.clone()))
            .expect("opt")
            .expect("some");
        assert_eq!(e, a);
    }

    #[test]
    fn hostile_encodings_are_errors() {
        let mut d = dist(&[1]);
        d.hdr_v2_deflate_base64 = "not base64 !!".into();
        assert!(matches!(d.histogram(), Err(DistributionError::Base64(_))));
        d.hdr_v2_deflate_base64 =
            base64::engine::general_purpose::STANDARD.encode(b"\x1c\x84\x93\x14garbage");
        assert!(d.histogram().is_err());
        d.hdr_v2_deflate_base64 = String::new();
        assert!(d.histogram().is_err());
    }
}
