//! Interval histograms of several shards of one run, added per metric and per second, and
//! the per-second percentiles they give.
//!
//! Receives the `histograms.hlog` of each shard (any reader; hostile input goes through
//! [`crate::hlog`]'s checks). Emits [`MergedIntervals`]: for each (second after the
//! earliest log's base time, tag) the sum of the shards' histograms; and
//! [`apply_to_series`], which sets a run file's per-second percentiles from them — exact,
//! unlike [`crate::merge::merge`]'s summary-only merge, which can only keep the worst shard's.
//! Must not: keep more than the summed histograms in memory, or fail a whole merge for a
//! log cut off by a killed writer (the lines before the cut are kept; the cut is reported).

use std::collections::BTreeMap;
use std::io::BufRead;

use hdrhistogram::Histogram;

use crate::hlog::{HlogEntry, HlogError, HlogReader};
use crate::schema::RunFile;

/// Summed interval histograms of several logs.
#[derive(Debug, Clone, Default)]
pub struct MergedIntervals {
    /// Unix seconds the merged seconds count from (the earliest log's base time).
    pub base_unix_s: f64,
    /// (second, tag) -> histogram (µs).
    pub by_second: BTreeMap<(u64, String), Histogram<u64>>,
    /// Problems met on the way (a log cut off, a malformed line): what came before was kept.
    pub warnings: Vec<String>,
}

/// One log's intervals: its base time and (start s, tag, histogram) per interval line.
type LogIntervals = (f64, Vec<(f64, String, Histogram<u64>)>);

/// Reads every log (`name` for messages) and adds their intervals per second and tag.
pub fn merge_logs<R: BufRead>(logs: Vec<(String, R)>) -> Result<MergedIntervals, HlogError> {
    let mut per_log: Vec<LogIntervals> = Vec::new();
    let mut warnings = Vec::new();
    for (name, log) in logs {
        let mut base = None;
        let mut intervals = Vec::new();
        for entry in HlogReader::new(log) {
            match entry {
                Ok(HlogEntry::BaseTime(b)) => base = Some(b),
                Ok(HlogEntry::StartTime(s)) => {
                    base.get_or_insert(s);
                }
                Ok(HlogEntry::Interval(iv)) => {
                    let tag = iv.tag.unwrap_or_default();
                    intervals.push((iv.start_s, tag, iv.histogram));
                }
                Err(e) => {
                    warnings.push(format!("{name}: {e}; the intervals before it are kept"));
                    break;
                }
            }
        }
        match base {
            Some(b) => per_log.push((b, intervals)),
            None if intervals.is_empty() => {}
            None => warnings.push(format!("{name}: no #[BaseTime] header; log skipped")),
        }
    }
    let base_unix_s = per_log
        .iter()
        .map(|(b, _)| *b)
        .fold(f64::INFINITY, f64::min);
    let base_unix_s = if base_unix_s.is_finite() {
        base_unix_s
    } else {
        0.0
    };
    let mut by_second: BTreeMap<(u64, String), Histogram<u64>> = BTreeMap::new();
    for (base, intervals) in per_log {
        for (start_s, tag, h) in intervals {
            let at = (base - base_unix_s + start_s).max(0.0).round();
            if !at.is_finite() || at > 1e9 {
                warnings.push(format!("interval at {at} s skipped: out of range"));
                continue;
            }
            let key = (at as u64, tag);
            match by_second.get_mut(&key) {
                Some(sum) => {
                    if let Err(e) = sum.add(&h) {
                        warnings.push(format!("{} at {} s not added: {e}", key.1, key.0));
                    }
                }
                None => {
                    by_second.insert(key, h);
                }
            }
        }
    }
    Ok(MergedIntervals {
        base_unix_s,
        by_second,
        warnings,
    })
}

/// Sets each second's latency and send-lag percentiles of `run.series` from the merged
/// intervals (echo latency when that second had echo replies, else broadcast latency, as a
/// single process chooses). Seconds without intervals keep what they had.
pub fn apply_to_series(run: &mut RunFile, merged: &MergedIntervals) {
    let get = |second: u64, tag: &str| {
        merged
            .by_second
            .get(&(second, tag.to_string()))
            .filter(|h| !h.is_empty())
    };
    for p in &mut run.series {
        let lat = get(p.second, "echo.latency").or_else(|| get(p.second, "broadcast.latency"));
        if let Some(h) = lat {
            p.latency_p50_us = Some(h.value_at_percentile(50.0));
            p.latency_p90_us = Some(h.value_at_percentile(90.0));
            p.latency_p99_us = Some(h.value_at_percentile(99.0));
            p.latency_max_us = Some(h.max());
        }
        if let Some(h) = get(p.second, "swarm.send_lag") {
            p.send_lag_p99_us = Some(h.value_at_percentile(99.0));
            p.send_lag_max_us = Some(h.max());
        }
    }
}
