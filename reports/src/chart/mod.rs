//! Chart specifications: what one chart shows, as plain data in the run's own units.
//!
//! Receives numbers picked by the view-model (per-second series, distributions decoded by
//! [`derive`]); emits [`Chart`] values that serialize into the view-model (and its
//! snapshots) and that [`svg`] draws. Axis scales, tick positions and the text of every
//! tick and hover title are decided here, so the drawing code only maps and paints.
//! Must not: draw, or keep a non-finite number (points that are not finite are dropped).

pub mod derive;
pub mod svg;

use serde::Serialize;

use crate::format;

/// Colours of series, in order (colour-blind friendly, dark enough for white background).
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Stable identifier, unique in a report (`data-chart` in the HTML).
    pub id: String,
    pub title: String,
    /// One sentence: what the chart shows and how to read it.
    pub caption: String,
    pub x: Axis,
    pub y: Axis,
    pub body: Body,
    /// Vertical lines at these x values (phase starts), with a label.
    pub markers: Vec<Marker>,
    /// Horizontal lines at these y values (saturation lines), with a label.
    pub guides: Vec<Marker>,
}

/// What is plotted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Lines through points, one per series.
    Lines { series: Vec<Series> },
    /// Grouped bars: one group of bars per category, one bar per series.
    Bars {
        categories: Vec<String>,
        series: Vec<BarSeries>,
    },
    /// Adjacent bars over numeric bins of the x axis.
    Histogram { name: String, bins: Vec<Bin> },
}

/// One line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// `(x, y)` in the axes' units.
    pub points: Vec<(f64, f64)>,
    /// Dashed line (a secondary series, such as the plan's target).
    pub dashed: bool,
}

/// One bar per category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BarSeries {
    pub name: String,
    pub color: &'static str,
    /// One value per category; `None` draws no bar.
    pub values: Vec<Option<f64>>,
}

/// One histogram bin `[lo, hi)` of the x axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// A labelled vertical or horizontal line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub at: f64,
    pub label: String,
}

/// An axis: what it measures and how it is scaled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    pub label: String,
    pub unit: Unit,
    pub scale: Scale,
}

/// The unit of an axis' values; decides how ticks and hover values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Seconds from the run start.
    Seconds,
    /// Durations in microseconds.
    Micros,
    /// Plain counts.
    Count,
    /// Events per second.
    Rate,
    /// Percent (CPU: 100 = one core).
    Percent,
    Bytes,
    /// Percentiles 0..100 (a spectrum's x axis).
    Percentile,
    /// Category names (bar charts' x axis).
    Category,
}

/// How values map to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Linear,
    /// Powers of ten are equally spaced (durations that span decades).
    Log,
    /// `-log10(1 - p/100)`: 90%, 99%, 99.9%... equally spaced, as HdrHistogram plots do.
    PercentileLog,
}

impl Axis {
    pub fn new(label: &str, unit: Unit, scale: Scale) -> Axis {
        Axis {
            label: label.to_string(),
            unit,
            scale,
        }
    }

    /// Text of a tick label: like [`Axis::text`] without trailing zeros (`100ms`, `2.5ms`).
    pub fn tick_text(&self, v: f64) -> String {
        let t = self.text(v);
        if self.unit != Unit::Micros {
            return t;
        }
        let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.contains('.') {
            format!("{}{unit}", num.trim_end_matches('0').trim_end_matches('.'))
        } else {
            t
        }
    }

    /// Ticks that cover `values` on this axis (see [`ticks`]); time axes step by whole
    /// seconds or minutes, byte axes by round numbers of KiB, MiB or GiB.
    pub fn ticks(&self, values: impl IntoIterator<Item = f64>, from_zero: bool) -> Ticks {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if self.scale != Scale::Linear {
            return ticks(self.scale, values, from_zero);
        }
        match self.unit {
            Unit::Seconds => {
                let hi = values.iter().copied().fold(1.0, f64::max);
                let step = [
                    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
                    3600.0,
                ]
                .into_iter()
                .find(|s| hi / s <= 8.0)
                .unwrap_or_else(|| (hi / 8.0 / 3600.0).ceil() * 3600.0);
                let n = (hi / step).ceil().max(1.0);
                Ticks {
                    lo: 0.0,
                    hi: n * step,
                    at: (0..=(n as usize).min(64))
                        .map(|i| i as f64 * step)
                        .collect(),
                }
            }
            Unit::Bytes => {
                let hi = values.iter().copied().fold(0.0, f64::max);
                let mut unit = 1.0;
                while hi / unit >= 1024.0 && unit < 1024f64.powi(5) {
                    unit *= 1024.0;
                }
                let t = ticks(Scale::Linear, values.iter().map(|v| v / unit), from_zero);
                Ticks {
                    lo: t.lo * unit,
                    hi: t.hi * unit,
                    at: t.at.iter().map(|v| v * unit).collect(),
                }
            }
            Unit::Count => {
                let t = ticks(self.scale, values, from_zero);
                let step = t.at.get(1).map_or(1.0, |b| b - t.at[0]);
                if step >= 1.0 {
                    return t;
                }
                // Counts are whole: no tick between 0 and 1.
                let hi = t.hi.ceil().max(1.0);
                let at = (0..=(hi as usize).min(16)).map(|i| i as f64).collect();
                Ticks {
                    lo: t.lo.floor(),
                    hi,
                    at,
                }
            }
            _ => ticks(self.scale, values, from_zero),
        }
    }

    /// Text of a value in this axis' unit.
    pub fn text(&self, v: f64) -> String {
        match self.unit {
            Unit::Seconds => format::seconds(v),
            Unit::Micros => format::micros(v),
            Unit::Count => format::number(v),
            Unit::Rate => format::rate(v),
            Unit::Percent => format::percent(v),
            Unit::Bytes => {
                if v.is_finite() && v >= 0.0 {
                    format::format_bytes(v.min(u64::MAX as f64) as u64)
                } else {
                    "n/a".into()
                }
            }
            Unit::Percentile => percentile_text(v),
            Unit::Category => format::number(v),
        }
    }
}

/// Highest percentile a log-percentile axis shows (99.9999%).
pub const MAX_PERCENTILE_DECADES: f64 = 6.0;

/// `99.9` -> `99.9%`, `50` -> `50%`, `100` -> `max`.
pub fn percentile_text(p: f64) -> String {
    if p >= 100.0 {
        return "max".into();
    }
    if !p.is_finite() || p < 0.0 {
        return "n/a".into();
    }
    let s = format!("{p:.4}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Where a value sits on a transformed axis (`None`: cannot be placed, e.g. log of 0 is
/// placed at the floor by the caller).
pub fn transform(scale: Scale, v: f64) -> Option<f64> {
    let t = match scale {
        Scale::Linear => v,
        Scale::Log => {
            if v <= 0.0 {
                return None;
            }
            v.log10()
        }
        Scale::PercentileLog => {
            let rest = 1.0 - v / 100.0;
            if rest <= 0.0 {
                MAX_PERCENTILE_DECADES
            } else {
                (-rest.log10()).clamp(0.0, MAX_PERCENTILE_DECADES)
            }
        }
    };
    t.is_finite().then_some(t)
}

/// The value at a transformed position (inverse of [`transform`]).
pub fn untransform(scale: Scale, t: f64) -> f64 {
    match scale {
        Scale::Linear => t,
        Scale::Log => 10f64.powf(t),
        Scale::PercentileLog => 100.0 * (1.0 - 10f64.powf(-t)),
    }
}

/// The range of an axis in transformed space and its tick positions (also transformed).
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub at: Vec<f64>,
}

/// Ticks that cover `values` (already in the axis' units, before transformation).
/// Linear axes of counts start at 0; log axes span whole decades.
pub fn ticks(scale: Scale, values: impl IntoIterator<Item = f64>, from_zero: bool) -> Ticks {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values {
        if let Some(t) = transform(scale, v) {
            lo = lo.min(t);
            hi = hi.max(t);
        }
    }
    match scale {
        Scale::Linear => {
            if !lo.is_finite() {
                (lo, hi) = (0.0, 1.0);
            }
            if from_zero {
                lo = lo.min(0.0);
            }
            if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
                hi = lo + lo.abs().max(1.0);
            }
            linear_ticks(lo, hi)
        }
        Scale::Log => {
            if !lo.is_finite() {
                (lo, hi) = (0.0, 1.0);
            }
            let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
            let mut at = Vec::new();
            let decades = hi - lo;
            let mut d = lo;
            while d <= hi + 1e-9 && at.len() < 64 {
                at.push(d);
                if decades <= 2.0 && d < hi {
                    at.push(d + 2f64.log10());
                    at.push(d + 5f64.log10());
                }
                d += 1.0;
            }
            Ticks { lo, hi, at }
        }
        Scale::PercentileLog => {
            let hi = if hi.is_finite() {
                hi.ceil().clamp(2.0, MAX_PERCENTILE_DECADES)
            } else {
                2.0
            };
            let at = (0..=hi as u32).map(f64::from).collect();
            Ticks { lo: 0.0, hi, at }
        }
    }
}

fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    let span = hi - lo;
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    if !step.is_finite() || step <= 0.0 {
        return Ticks {
            lo,
            hi,
            at: vec![lo, hi],
        };
    }
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let mut at = Vec::new();
    let mut v = first;
    while v <= last + step * 1e-9 && at.len() < 16 {
        at.push(v);
        v += step;
    }
    Ticks {
        lo: first,
        hi: last,
        at,
    }
}

/// At most about `max` points with the shape of `points` (sorted by x): the lowest and the
/// highest point of each of `max / 2` buckets, in x order, so spikes and dips survive.
pub fn decimate(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points;
    }
    let bucket = points.len().div_ceil(max / 2);
    let mut out = Vec::with_capacity(max + 2);
    for chunk in points.chunks(bucket) {
        let lo = chunk.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        let hi = chunk.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo.0 <= hi.0 {
                out.push(lo);
                if hi != lo {
                    out.push(hi);
                }
            } else {
                out.push(hi);
                out.push(lo);
            }
        }
    }
    out
}

/// Keeps only points whose coordinates are finite.
pub fn finite_points(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover() {
        let t = ticks(Scale::Linear, [3.0, 97.0], true);
        assert_eq!(t.lo, 0.0);
        assert!(t.hi >= 97.0);
        assert_eq!(t.at, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let flat = ticks(Scale::Linear, [0.0, 0.0], true);
        assert!(flat.hi > flat.lo);
        let huge = ticks(Scale::Linear, [0.0, u64::MAX as f64], true);
        assert!(huge.at.len() >= 2 && huge.hi >= u64::MAX as f64);
    }

    #[test]
    fn time_and_byte_axes_step_roundly() {
        let time = Axis::new("time", Unit::Seconds, Scale::Linear);
        let t = time.ticks([0.0, 13.0], true);
        assert_eq!(t.at, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]);
        let long = time.ticks([0.0, 600.0], true);
        assert_eq!(long.at[1], 120.0);
        let bytes = Axis::new("rss", Unit::Bytes, Scale::Linear);
        let b = bytes.ticks([0.0, 31.1 * 1024.0 * 1024.0], true);
        assert_eq!(b.at[1], 10.0 * 1024.0 * 1024.0, "{:?}", b.at);
        assert_eq!(bytes.tick_text(b.at[1]), "10.0 MiB");
        let us = Axis::new("t", Unit::Micros, Scale::Log);
        assert_eq!(us.tick_text(100_000.0), "100ms");
        assert_eq!(us.tick_text(2_500.0), "2.5ms");
        assert_eq!(us.tick_text(10.0), "10us");
        let counts = Axis::new("n", Unit::Count, Scale::Linear);
        assert_eq!(counts.ticks([0.0, 3.0], true).at, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(counts.ticks([0.0, 1.0], true).at, vec![0.0, 1.0]);
    }

    #[test]
    fn log_ticks_span_decades() {
        let t = ticks(Scale::Log, [200.0, 4_100.0], false);
        assert_eq!((t.lo, t.hi), (2.0, 4.0));
        assert_eq!(t.at.len(), 7, "{:?}", t.at);
        let zero = ticks(Scale::Log, [0.0], false);
        assert!(zero.hi > zero.lo);
    }

    #[test]
    fn decimation_keeps_extremes() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 100) as f64)).collect();
        let mut spiky = pts.clone();
        spiky[5_555].1 = 1e6;
        let d = decimate(spiky, 1_000);
        assert!(d.len() <= 1_002, "{}", d.len());
        assert!(d.iter().any(|p| p.1 == 1e6), "the spike survives");
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "x order kept");
        assert_eq!(decimate(pts[..10].to_vec(), 1_000).len(), 10);
    }

    #[test]
    fn percentile_axis() {
        assert_eq!(
            transform(Scale::PercentileLog, 90.0).map(|v| v.round()),
            Some(1.0)
        );
        assert_eq!(
            transform(Scale::PercentileLog, 100.0),
            Some(MAX_PERCENTILE_DECADES)
        );
        assert!((untransform(Scale::PercentileLog, 3.0) - 99.9).abs() < 1e-9);
        let t = ticks(Scale::PercentileLog, [0.0, 99.95], false);
        assert_eq!(t.at, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(percentile_text(99.9), "99.9%");
        assert_eq!(percentile_text(0.0), "0%");
        assert_eq!(percentile_text(100.0), "max");
    }
}
