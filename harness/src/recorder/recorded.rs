//! What the recorder hands back at the end, and its conversion into the run file.
//!
//! Receives the final aggregation state; emits [`Recorded`] (reports types: sections per
//! phase and for the whole run, the per-second series, swarm health) and, with the run's
//! metadata, a [`reports::RunFile`]. The whole-run histograms are the exact sum of the
//! phase histograms.
//! Must not: drop a count on the way (a histogram that cannot be encoded is logged and
//! left empty, its counts still in the counters).

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

use hdrhistogram::Histogram;
use reports::distribution::new_histogram;
use reports::{
    ConnectPhaseTimes, ConnectStats, Distribution, EchoStats, Health, HealthPoint, OutageStats,
    PhaseResult, RunFile, RunMeta, SCHEMA_VERSION, SecondPoint, Section,
};

use super::PhaseInfo;
use super::aggregate::Aggregator;
use crate::metric::counts::{PhaseAgg, add_classes};
use crate::metric::{Hist, METRICS, Metric};

/// The second a health reading is filed under (its window's start, rounded).
fn health_second(agg: &Aggregator, r: &crate::health::HealthReading) -> u64 {
    (r.window_start
        .saturating_duration_since(agg.start)
        .as_millis() as u64
        + 500)
        / 1000
}

/// The counts a running search polls while it waits to judge a step (capacity/kept.rs):
/// what [`Recorded`] would say of them, without encoding a histogram. Building a
/// [`Recorded`] encodes every histogram of the run so far, which took the recorder's
/// worker for several milliseconds each time (the swarm's scheduler lag at 10 clients
/// went from about 1 ms to 2-7 ms when the judge polled it every 100 ms).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Per phase, in plan order.
    pub phases: Vec<PhaseProgress>,
    /// The closed seconds, as [`Recorded::series`] has them.
    pub series: Vec<SecondPoint>,
    /// The seconds that have a health reading.
    pub health_seconds: Vec<u64>,
}

/// One phase's echo counts and span so far (the [`Section`] fields of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseProgress {
    /// Whether the phase saw any echo sample (its section has `echo`).
    pub echo: bool,
    pub sent: u64,
    pub received: u64,
    pub timeouts: u64,
    /// The phase's last sample, in ms from the run's start.
    pub end_offset_ms: u64,
}

impl Progress {
    pub(super) fn from_aggregator(agg: &Aggregator) -> Progress {
        Progress {
            phases: agg
                .phases
                .iter()
                .map(|p| PhaseProgress {
                    echo: p.counts.echo_seen,
                    sent: p.counts.sent,
                    received: p.counts.received,
                    timeouts: p.counts.timeouts,
                    end_offset_ms: ms_since(agg.start, p.last_at),
                })
                .collect(),
            series: agg.series.clone(),
            health_seconds: agg.health.iter().map(|r| health_second(agg, r)).collect(),
        }
    }
}

/// Everything a run recorded, aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub run: Section,
    pub phases: Vec<PhaseResult>,
    pub series: Vec<SecondPoint>,
    pub health: Health,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    /// Samples processed.
    pub samples: u64,
    /// Why `histograms.hlog` is missing or incomplete, if it is.
    pub hlog_error: Option<String>,
}

/// `summary` with the samples the recorder could not take: any makes the swarm saturated
/// (by `recorder`), since its counts are then short.
fn with_dropped(mut summary: reports::HealthSummary, dropped: u64) -> reports::HealthSummary {
    summary.samples_dropped = dropped;
    if dropped > 0 {
        summary.saturated = true;
        summary.saturated_by.push("recorder".into());
    }
    summary
}

fn encode(h: Option<&Histogram<u64>>, out_of_range: u64) -> Option<Distribution> {
    let h = h?;
    match Distribution::from_histogram(h, out_of_range) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!("cannot encode a histogram: {e}");
            Some(Distribution {
                count: h.len(),
                ..Default::default()
            })
        }
    }
}

fn keyed<K>(map: &HashMap<K, u64>, key: impl Fn(&K) -> String) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        *out.entry(key(k)).or_default() += v;
    }
    out
}

fn ms_since(start: Instant, at: Option<Instant>) -> u64 {
    at.map_or(0, |a| {
        u64::try_from(a.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
    })
}

fn section(start: Instant, p: &PhaseAgg, hists: &[Hist; METRICS], scenarios: &[&str]) -> Section {
    let h = |m: Metric| encode(hists[m as usize].h.as_ref(), hists[m as usize].out_of_range);
    let fan = crate::scenario::sections(
        p,
        scenarios,
        &h,
        &|x: &Hist| encode(x.h.as_ref(), x.out_of_range),
        &empty,
    );
    let c = &p.counts;
    let (start_ms, end_ms) = (ms_since(start, p.first_at), ms_since(start, p.last_at));
    Section {
        start_offset_ms: start_ms,
        end_offset_ms: end_ms,
        duration_ms: end_ms.saturating_sub(start_ms),
        connect: ConnectStats {
            attempted: c.attempted,
            connected: c.connected,
            failed: c.failed,
            failed_by_kind: keyed(&p.failed_by_kind, |k| k.key()),
            peak_connected: p.peak_connected,
            phases: ConnectPhaseTimes {
                tcp: h(Metric::Tcp),
                tls: h(Metric::Tls),
                ws_upgrade: h(Metric::WsUpgrade),
                eio_open: h(Metric::EioOpen),
                upgrade: h(Metric::Upgrade),
                sio_connect: h(Metric::SioConnect),
                total: h(Metric::ConnectTotal),
            },
        },
        echo: c.echo_seen.then(|| EchoStats {
            planned: c.sent + c.skipped,
            skipped_disconnected: c.skipped,
            sent: c.sent,
            received: c.received,
            timeouts: c.timeouts,
            late: c.late,
            unanswered_at_stop: c.unanswered,
            latency: h(Metric::EchoLatency).unwrap_or_else(empty),
            service: h(Metric::EchoService).unwrap_or_else(empty),
        }),
        broadcast: fan.broadcast,
        heartbeat: fan.heartbeat,
        churn: fan.churn,
        flow: fan.flow,
        outage: (c.lost > 0 || c.reconnect_attempts > 0).then(|| OutageStats {
            connections_lost: c.lost,
            reconnect_attempts: c.reconnect_attempts,
            reconnect_failures: c.reconnect_failures,
            restored: c.restored,
            clients_not_restored: c.not_restored,
            peak_clients_away: p.peak_away,
            restore: h(Metric::Restore).unwrap_or_else(empty),
            first_loss_offset_ms: p.first_loss.map(|a| ms_since(start, Some(a))),
            last_restore_offset_ms: p.last_restore.map(|a| ms_since(start, Some(a))),
        }),
        errors: keyed(&p.errors, |k| k.key()),
        disconnects: keyed(&p.disconnects, |k| k.key()),
        send_lag: h(Metric::SendLag),
    }
}

fn empty() -> Distribution {
    Distribution::from_histogram(&new_histogram(), 0).unwrap_or_default()
}

/// The whole run: counters summed, histograms added, maps merged, over every phase.
fn whole_run(agg: &Aggregator) -> (PhaseAgg, [Hist; METRICS]) {
    let mut all = PhaseAgg::default();
    let mut hists: [Hist; METRICS] = Default::default();
    for p in &agg.phases {
        let (a, c) = (&mut all.counts, &p.counts);
        a.attempted += c.attempted;
        a.connected += c.connected;
        a.failed += c.failed;
        a.sent += c.sent;
        a.received += c.received;
        a.timeouts += c.timeouts;
        a.late += c.late;
        a.unanswered += c.unanswered;
        a.errors += c.errors;
        a.disconnects += c.disconnects;
        a.skipped += c.skipped;
        a.lost += c.lost;
        a.reconnect_attempts += c.reconnect_attempts;
        a.reconnect_failures += c.reconnect_failures;
        a.restored += c.restored;
        a.not_restored += c.not_restored;
        a.echo_seen |= c.echo_seen;
        a.fan.add(&c.fan);
        add_classes(&mut all.classes, &p.classes);
        crate::scenario::flow::record::add(&mut all.flow, &p.flow);
        for (k, v) in &p.failed_by_kind {
            *all.failed_by_kind.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &p.errors {
            *all.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &p.disconnects {
            *all.disconnects.entry(k.clone()).or_default() += v;
        }
        all.first_at = match (all.first_at, p.first_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        all.last_at = all.last_at.max(p.last_at);
        all.first_loss = match (all.first_loss, p.first_loss) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        all.last_restore = all.last_restore.max(p.last_restore);
        for m in Metric::ALL {
            let src = &p.hists[m as usize];
            if let Some(h) = src.h.as_ref() {
                let dst = &mut hists[m as usize];
                let target = dst.h.get_or_insert_with(new_histogram);
                if let Err(e) = target.add(h) {
                    tracing::error!("cannot add {} histograms: {e:?}", m.tag());
                }
                dst.out_of_range += src.out_of_range;
            }
        }
    }
    all.peak_connected = agg.peak_connected;
    all.peak_away = agg.peak_away;
    (all, hists)
}

impl Recorded {
    pub(super) fn empty() -> Recorded {
        Recorded {
            run: Section::default(),
            phases: Vec::new(),
            series: Vec::new(),
            health: Health::default(),
            started_at: SystemTime::now(),
            ended_at: SystemTime::now(),
            samples: 0,
            hlog_error: Some("the recorder failed".into()),
        }
    }

    pub(super) fn from_aggregator(
        agg: &Aggregator,
        infos: &[PhaseInfo],
        started_at: SystemTime,
        ended_at: SystemTime,
        hlog_error: Option<String>,
    ) -> Recorded {
        let phases = agg
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let info = infos.get(i).cloned().unwrap_or_else(|| PhaseInfo {
                    name: format!("phase_{i}"),
                    scenario: String::new(),
                });
                let stats = section(agg.start, p, &p.hists, &[info.scenario.as_str()]);
                PhaseResult {
                    name: info.name,
                    scenario: info.scenario,
                    stats,
                }
            })
            .collect();
        let (all, hists) = whole_run(agg);
        let scenarios: Vec<&str> = infos.iter().map(|i| i.scenario.as_str()).collect();
        let cores = crate::health::usable_cores();
        let health_series: Vec<HealthPoint> = agg
            .health
            .iter()
            .map(|r| HealthPoint {
                second: health_second(agg, r),
                cpu_percent: r.cpu_percent,
                rss_bytes: r.rss_bytes,
                sched_lag_max_us: r.sched_lag_max_us,
                sched_lag_mean_us: r.sched_lag_mean_us,
                steal_percent: r.steal_percent,
            })
            .collect();
        Recorded {
            run: section(agg.start, &all, &hists, &scenarios),
            phases,
            series: agg.series.clone(),
            health: Health {
                cores,
                summary: with_dropped(
                    reports::saturation::summarize(&health_series, cores, &agg.series),
                    agg.samples_dropped,
                ),
                series: health_series,
            },
            started_at,
            ended_at,
            samples: agg.samples,
            hlog_error,
        }
    }

    /// The run file: these records plus `meta`. `meta.started_at_unix_ms` and
    /// `ended_at_unix_ms` are filled from the recorder's clock when they are 0.
    pub fn into_run_file(self, mut meta: RunMeta) -> RunFile {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        };
        if meta.started_at_unix_ms == 0 {
            meta.started_at_unix_ms = ms(self.started_at);
        }
        if meta.ended_at_unix_ms == 0 {
            meta.ended_at_unix_ms = ms(self.ended_at);
        }
        RunFile {
            schema_version: SCHEMA_VERSION,
            meta,
            run: self.run,
            phases: self.phases,
            series: self.series,
            health: self.health,
            thresholds: Vec::new(),
            workers: Vec::new(),
            targets: Vec::new(),
            live: None,
            capacity: None,
        }
    }
}
