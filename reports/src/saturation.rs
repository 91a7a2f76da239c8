//! Decides whether the swarm itself was the bottleneck of a run.
//!
//! Receives the per-second health points, the number of cores and (optionally) the run's
//! per-second series; emits a [`HealthSummary`]. A second is saturated when the swarm used
//! at least [`CPU_SATURATION_SHARE`] of all its cores, its scheduler lag reached
//! [`LAG_SATURATION_US`], or the p99 of its send lag (sends later than their intended
//! instant) reached [`LAG_SATURATION_US`]. The run is saturated when at least [`MIN_SATURATED_SECONDS`]
//! seconds and at least [`MIN_SATURATED_SHARE`] of all seconds were.
//! Must not: read anything but its arguments.

use std::collections::BTreeSet;

use crate::schema::{HealthPoint, HealthSummary, SecondPoint};

/// Share of all cores (1.0 = every core busy) from which a second counts as CPU-saturated.
pub const CPU_SATURATION_SHARE: f64 = 0.9;
/// Scheduler lag from which a second counts as saturated.
pub const LAG_SATURATION_US: u64 = 10_000;
/// Fewest saturated seconds that mark a run saturated.
pub const MIN_SATURATED_SECONDS: u64 = 2;
/// Smallest share of the run's seconds that must be saturated to mark the run.
pub const MIN_SATURATED_SHARE: f64 = 0.05;

/// Summarises health points recorded with `cores` cores available.
pub fn summarize_health(series: &[HealthPoint], cores: u32) -> HealthSummary {
    summarize(series, cores, &[])
}

/// [`summarize_health`], with the send lag of the run's per-second `seconds` as a third
/// saturation line (a second counts once whichever lines it crossed).
pub fn summarize(series: &[HealthPoint], cores: u32, seconds: &[SecondPoint]) -> HealthSummary {
    let cpu_line = f64::from(cores.max(1)) * 100.0 * CPU_SATURATION_SHARE;
    let mut s = HealthSummary::default();
    let late: BTreeSet<u64> = seconds
        .iter()
        .filter(|p| p.send_lag_p99_us.is_some_and(|l| l >= LAG_SATURATION_US))
        .map(|p| p.second)
        .collect();
    if series.is_empty() && late.is_empty() {
        return s;
    }
    let (mut cpu_sum, mut lag_sum) = (0.0, 0u128);
    let (mut by_cpu, mut by_lag) = (false, false);
    let mut hot: BTreeSet<u64> = late.clone();
    for p in series {
        s.cpu_percent_max = s.cpu_percent_max.max(p.cpu_percent);
        s.rss_bytes_max = s.rss_bytes_max.max(p.rss_bytes);
        s.sched_lag_max_us = s.sched_lag_max_us.max(p.sched_lag_max_us);
        s.steal_percent_max = s.steal_percent_max.max(p.steal_percent);
        cpu_sum += p.cpu_percent;
        lag_sum += u128::from(p.sched_lag_mean_us);
        let cpu_hot = p.cpu_percent >= cpu_line;
        let lag_hot = p.sched_lag_max_us >= LAG_SATURATION_US;
        by_cpu |= cpu_hot;
        by_lag |= lag_hot;
        if cpu_hot || lag_hot {
            hot.insert(p.second);
        }
    }
    s.saturated_seconds = hot.len() as u64;
    let n = (series.len() as u64).max(seconds.len() as u64).max(1);
    if !series.is_empty() {
        s.cpu_percent_mean = cpu_sum / series.len() as f64;
        s.sched_lag_mean_us = u64::try_from(lag_sum / series.len() as u128).unwrap_or(u64::MAX);
    }
    s.saturated = s.saturated_seconds >= MIN_SATURATED_SECONDS
        && s.saturated_seconds as f64 >= MIN_SATURATED_SHARE * n as f64;
    if s.saturated {
        if by_cpu {
            s.saturated_by.push("cpu".into());
        }
        if by_lag {
            s.saturated_by.push("sched_lag".into());
        }
        if !late.is_empty() {
            s.saturated_by.push("send_lag".into());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(second: u64, cpu: f64, lag: u64) -> HealthPoint {
        HealthPoint {
            second,
            cpu_percent: cpu,
            rss_bytes: 1000 + second,
            sched_lag_max_us: lag,
            sched_lag_mean_us: lag / 2,
            steal_percent: 0.0,
        }
    }

    #[test]
    fn idle_run_is_not_saturated() {
        let s = summarize_health(&(0..60).map(|i| pt(i, 20.0, 100)).collect::<Vec<_>>(), 2);
        assert!(!s.saturated);
        assert_eq!(s.saturated_seconds, 0);
        assert_eq!(s.rss_bytes_max, 1059);
        assert!((s.cpu_percent_mean - 20.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_near_all_cores_saturates() {
        let mut v: Vec<_> = (0..20).map(|i| pt(i, 50.0, 100)).collect();
        v[3].cpu_percent = 185.0;
        v[4].cpu_percent = 199.0;
        let s = summarize_health(&v, 2);
        assert!(s.saturated);
        assert_eq!(s.saturated_seconds, 2);
        assert_eq!(s.saturated_by, vec!["cpu".to_string()]);
        // 185% of 2 cores is not 90% of 4 cores.
        assert!(!summarize_health(&v, 4).saturated);
    }

    #[test]
    fn lag_saturates_but_one_blip_does_not() {
        let mut v: Vec<_> = (0..100).map(|i| pt(i, 10.0, 100)).collect();
        v[50].sched_lag_max_us = 50_000;
        assert!(
            !summarize_health(&v, 2).saturated,
            "one second in 100 is a blip"
        );
        for p in v.iter_mut().take(10) {
            p.sched_lag_max_us = 12_000;
        }
        let s = summarize_health(&v, 2);
        assert!(s.saturated);
        assert_eq!(s.saturated_by, vec!["sched_lag".to_string()]);
        assert_eq!(s.sched_lag_max_us, 50_000);
        // The machine's steal is reported at its worst, and marks nothing saturated.
        assert_eq!(s.steal_percent_max, 0.0);
        let mut quiet: Vec<_> = (0..100).map(|i| pt(i, 10.0, 100)).collect();
        quiet[3].steal_percent = 40.0;
        quiet[4].steal_percent = 55.0;
        let q = summarize_health(&quiet, 2);
        assert_eq!((q.saturated, q.steal_percent_max), (false, 55.0));
    }

    /// Issue 12: send lag is a saturation line of its own; a second late on several lines
    /// counts once.
    #[test]
    fn send_lag_saturates_and_seconds_count_once() {
        let health: Vec<_> = (0..20).map(|i| pt(i, 10.0, 100)).collect();
        let mut seconds: Vec<SecondPoint> = (0..20)
            .map(|i| SecondPoint {
                second: i,
                send_lag_p99_us: Some(900),
                ..Default::default()
            })
            .collect();
        assert!(
            !summarize(&health, 2, &seconds).saturated,
            "1 ms of lag is not saturation"
        );
        seconds[3].send_lag_p99_us = Some(15_000);
        seconds[4].send_lag_p99_us = Some(LAG_SATURATION_US);
        let mut hot = health.clone();
        hot[4].cpu_percent = 199.0;
        let s = summarize(&hot, 2, &seconds);
        assert!(s.saturated);
        assert_eq!(
            s.saturated_seconds, 2,
            "second 4 crossed two lines, counted once"
        );
        assert_eq!(
            s.saturated_by,
            vec!["cpu".to_string(), "send_lag".to_string()]
        );
        // Without the series, the same health is not saturated by one CPU second.
        assert!(!summarize_health(&hot, 2).saturated);
    }

    #[test]
    fn empty_series_is_default() {
        assert_eq!(summarize_health(&[], 2), HealthSummary::default());
    }
}
