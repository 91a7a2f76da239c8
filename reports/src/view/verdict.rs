//! The first screen: the verdict (thresholds, one line per scenario, warnings) and the key
//! figures (how many, how fast, what was lost, what broke, was the swarm the limit).
//!
//! Receives a [`RunFile`]; emits [`Verdict`] and [`Figure`]s as plain text.
//! Must not: call a run that could not happen or whose thresholds failed a pass.

use serde::Serialize;

use super::common::{connect_kind, phases_with, sum};
use crate::format::{self, count, format_us, plural};
use crate::saturation::{CPU_SATURATION_SHARE, LAG_SATURATION_US};
use crate::schema::{EchoStats, RunFile, RunStatus, Scenario, Section};

/// Did it pass?
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `pass`, `fail` or `neutral` (no thresholds given): the colour of the headline.
    pub tone: &'static str,
    pub headline: String,
    pub thresholds: Vec<ThresholdRow>,
    /// One line per scenario, e.g. `echo: 10,000 clients, 98,412 msg/s, p99 4.10ms, 0 lost`.
    pub scenarios: Vec<String>,
    /// Warnings that change how the numbers read (saturated swarm, interrupted run).
    pub banners: Vec<Banner>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdRow {
    pub expr: String,
    pub pass: bool,
    pub observed: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Banner {
    /// `warn` or `bad`.
    pub tone: &'static str,
    pub text: String,
}

/// One key figure tile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub label: String,
    pub value: String,
    pub detail: String,
    /// `good`, `bad`, `warn` or `neutral`.
    pub tone: &'static str,
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn threshold_rows(run: &RunFile) -> Vec<ThresholdRow> {
    run.thresholds
        .iter()
        .map(|t| ThresholdRow {
            expr: t.expr.clone(),
            pass: t.pass,
            observed: match (t.observed, &t.note) {
                (Some(v), _) if v.is_finite() => format!("{}{}", trim_float(v), t.unit),
                (_, Some(n)) => n.clone(),
                _ => "n/a".into(),
            },
        })
        .collect()
}

pub fn verdict(run: &RunFile) -> Verdict {
    let m = &run.meta;
    let thresholds = threshold_rows(run);
    let failed = thresholds.iter().filter(|t| !t.pass).count();
    let (tone, headline) = if m.status == RunStatus::Failed {
        ("fail", "FAIL: the run could not happen".to_string())
    } else if failed > 0 {
        (
            "fail",
            format!("FAIL: {failed} of {} thresholds failed", thresholds.len()),
        )
    } else if m.status == RunStatus::Degraded && thresholds.is_empty() {
        (
            "fail",
            format!(
                "DEGRADED: {} lost during the run (exit code 5; thresholds would decide)",
                crate::format::plural(
                    run.run.outage.as_ref().map_or(0, |o| o.connections_lost),
                    "connection was",
                    "connections were"
                )
            ),
        )
    } else if !thresholds.is_empty() {
        (
            "pass",
            format!(
                "PASS: {}",
                if thresholds.len() == 1 {
                    "the threshold holds".to_string()
                } else {
                    format!("all {} thresholds hold", thresholds.len())
                }
            ),
        )
    } else {
        (
            "neutral",
            "Completed: no thresholds were given (add --threshold to get a pass/fail verdict)"
                .to_string(),
        )
    };
    let mut banners = Vec::new();
    if let Some(b) = saturation_banner(run) {
        banners.push(b);
    }
    if m.status != RunStatus::Completed || m.interrupted {
        let what = match m.status {
            RunStatus::Failed => "The run could not happen",
            RunStatus::Degraded if !m.interrupted => "The run was degraded",
            RunStatus::Running => {
                "The run did not finish: this is the checkpoint written while it ran (the swarm was killed or is still running); everything up to it is here"
            }
            _ => {
                "The run was interrupted before its plan ended; everything recorded until then is here"
            }
        };
        banners.push(Banner {
            tone: if m.status == RunStatus::Failed {
                "bad"
            } else {
                "warn"
            },
            text: match &m.status_detail {
                Some(d) => format!("{what}: {d}"),
                None => format!("{what}."),
            },
        });
    }
    Verdict {
        tone,
        headline,
        thresholds,
        scenarios: scenario_lines(run),
        banners,
    }
}

/// The saturation warning, when the swarm was the bottleneck.
pub fn saturation_banner(run: &RunFile) -> Option<Banner> {
    let h = &run.health.summary;
    if !h.saturated {
        return None;
    }
    let mut why = Vec::new();
    if h.saturated_by.iter().any(|s| s == "cpu") {
        why.push(format!(
            "CPU at {:.0}% or more of its {}, up to {}",
            CPU_SATURATION_SHARE * 100.0,
            plural(u64::from(run.health.cores.max(1)), "core", "cores"),
            format::percent(h.cpu_percent_max)
        ));
    }
    if h.saturated_by.iter().any(|s| s == "sched_lag") {
        why.push(format!(
            "scheduler lag of {} ms or more, up to {}",
            LAG_SATURATION_US / 1000,
            format_us(h.sched_lag_max_us)
        ));
    }
    if h.steal_percent_max >= 1.0 {
        why.push(format!(
            "the machine's CPU taken from outside by the hypervisor (steal up to {})",
            format::percent(h.steal_percent_max)
        ));
    }
    let saturated: Vec<String> = run
        .workers
        .iter()
        .filter(|w| w.saturated)
        .map(|w| format!("{} on {}", w.index, w.host))
        .collect();
    let which = if saturated.is_empty() {
        String::new()
    } else {
        format!(" Saturated worker(s): {}.", saturated.join(", "))
    };
    Some(Banner {
        tone: "warn",
        text: format!(
            "The swarm itself was saturated for {} ({}): these numbers describe the swarm, not \
             the server. Run fewer clients per swarm process, or more processes.{which}",
            plural(h.saturated_seconds, "second", "seconds"),
            if why.is_empty() {
                "see swarm health".to_string()
            } else {
                why.join("; ")
            }
        ),
    })
}

/// Replies per second over the phases that ran `has`, or over the whole run.
fn per_second(run: &RunFile, has: fn(&Section) -> bool, value: fn(&Section) -> u64) -> f64 {
    let (mut n, mut ms) = (0u64, 0u64);
    for (_, s) in phases_with(run, has) {
        n = n.saturating_add(value(s));
        ms = ms.saturating_add(s.duration_ms);
    }
    if ms == 0 {
        (n, ms) = (value(&run.run), run.run.duration_ms);
    }
    if ms == 0 {
        0.0
    } else {
        n as f64 * 1000.0 / ms as f64
    }
}

fn peak_in(run: &RunFile, has: fn(&Section) -> bool) -> u64 {
    phases_with(run, has)
        .map(|(_, s)| s.connect.peak_connected)
        .max()
        .unwrap_or(run.run.connect.peak_connected)
}

fn scenario_lines(run: &RunFile) -> Vec<String> {
    let r = &run.run;
    let mut lines = Vec::new();
    for sc in &run.meta.scenarios {
        let line = match sc {
            Scenario::Connect => {
                let c = &r.connect;
                let p99 = c
                    .phases
                    .total
                    .as_ref()
                    .filter(|d| d.count > 0)
                    .map(|d| format!(", connect p99 {}", format_us(d.p99_us)))
                    .unwrap_or_default();
                Some(format!(
                    "connect: {} of {} connected ({} failed), peak {}{p99}",
                    count(c.connected),
                    count(c.attempted),
                    count(c.failed),
                    count(c.peak_connected)
                ))
            }
            Scenario::Echo => r.echo.as_ref().map(|e| {
                let lost = e.timeouts.saturating_add(e.unanswered_at_stop);
                format!(
                    "echo: {} clients, {} msg/s, p99 {}, {} lost",
                    count(peak_in(run, |s| s.echo.is_some())),
                    format::number(per_second(run, |s| s.echo.is_some(), |s| {
                        s.echo.as_ref().map_or(0, |e| e.received)
                    })),
                    format_us(e.latency.p99_us),
                    count(lost)
                )
            }),
            Scenario::Broadcast => r.broadcast.as_ref().map(|b| {
                format!(
                    "broadcast: {} published, {} deliveries/s, reach {}, p99 {}, {} lost, {} missed while disconnected",
                    count(b.published),
                    format::number(per_second(run, |s| s.broadcast.is_some(), |s| {
                        s.broadcast.as_ref().map_or(0, |b| b.delivered)
                    })),
                    format::share(b.delivered, b.expected),
                    format_us(b.latency.p99_us),
                    count(b.lost),
                    count(b.missed_while_disconnected)
                )
            }),
            Scenario::Heartbeat => r.heartbeat.as_ref().map(|h| {
                format!(
                    "heartbeat: {} pings, interval deviation p99 {}, {} false timeouts, {} muted clients closed",
                    count(h.pings),
                    format_us(h.ping_interval_deviation.p99_us),
                    count(h.false_timeouts),
                    count(h.muted_closes)
                )
            }),
            Scenario::Churn => r.churn.as_ref().map(|c| {
                format!(
                    "churn: {} drops, {} reconnected ({} failed), reconnect p99 {}",
                    count(c.drops),
                    count(c.reconnects),
                    count(c.reconnect_failures),
                    format_us(c.reconnect.p99_us)
                )
            }),
            Scenario::Flow => r.flow.as_ref().map(|f| {
                let runs = f.steps.iter().fold(0u64, |a, s| a.saturating_add(s.runs));
                let bad = f.steps.iter().fold(0u64, |a, s| a.saturating_add(s.errors()));
                let slowest = f
                    .steps
                    .iter()
                    .filter(|s| s.latency.count > 0)
                    .max_by_key(|s| s.latency.p99_us)
                    .map(|s| format!(", slowest step {} p99 {}", s.name, format_us(s.latency.p99_us)))
                    .unwrap_or_default();
                format!(
                    "flow: {} step runs over {} steps, {} not ok{slowest}",
                    count(runs),
                    count(f.steps.len() as u64),
                    count(bad)
                )
            }),
            Scenario::Other(_) => None,
        };
        lines.push(line.unwrap_or_else(|| format!("{sc}: no data recorded")));
    }
    lines
}

/// Failures by kind over the whole run: connect failures, errors, abnormal disconnects.
pub fn failures(run: &RunFile) -> Vec<(String, u64)> {
    let r = &run.run;
    let mut all: Vec<(String, u64)> = r
        .connect
        .failed_by_kind
        .iter()
        .map(|(k, v)| (connect_kind(k), *v))
        .chain(r.errors.iter().map(|(k, v)| (k.clone(), *v)))
        .chain(
            r.disconnects
                .iter()
                .filter(|(k, _)| !crate::schema::is_orderly_disconnect(k))
                .map(|(k, v)| (format!("disconnect {k}"), *v)),
        )
        .filter(|(_, v)| *v > 0)
        .collect();
    let unkinded = r
        .connect
        .failed
        .saturating_sub(sum(r.connect.failed_by_kind.values()));
    if unkinded > 0 {
        all.push(("connect failed".into(), unkinded));
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all
}

pub fn figures(run: &RunFile) -> Vec<Figure> {
    let r = &run.run;
    let c = &r.connect;
    let mut out = vec![Figure {
        label: "Clients (peak)".into(),
        value: count(c.peak_connected),
        detail: format!(
            "{} of {} connects succeeded",
            count(c.connected),
            count(c.attempted)
        ),
        tone: if c.attempted > 0 && c.connected == 0 {
            "bad"
        } else if c.failed > 0 {
            "warn"
        } else {
            "neutral"
        },
    }];
    if let Some(e) = &r.echo {
        out.extend(echo_figures(run, e));
    }
    if let Some(b) = &r.broadcast {
        out.push(Figure {
            label: "Broadcast reach".into(),
            value: format::share(b.delivered, b.expected),
            detail: format!(
                "p99 {} · {} lost · {} missed while away",
                format_us(b.latency.p99_us),
                count(b.lost),
                count(b.missed_while_disconnected)
            ),
            tone: if b.lost > 0 { "bad" } else { "good" },
        });
    }
    if r.echo.is_none()
        && r.broadcast.is_none()
        && let Some(d) = c.phases.total.as_ref().filter(|d| d.count > 0)
    {
        out.push(Figure {
            label: "Connect p99".into(),
            value: format_us(d.p99_us),
            detail: format!("p50 {} · max {}", format_us(d.p50_us), format_us(d.max_us)),
            tone: "neutral",
        });
    }
    out.push(broke_figure(run));
    out.extend(swarm_figure(run));
    out
}

/// Echo throughput, p99 latency and messages lost.
fn echo_figures(run: &RunFile, e: &EchoStats) -> [Figure; 3] {
    let throughput = Figure {
        label: "Echo throughput".into(),
        value: format::rate(per_second(
            run,
            |s| s.echo.is_some(),
            |s| s.echo.as_ref().map_or(0, |e| e.received),
        )),
        detail: format!("{} replies in time", count(e.received)),
        tone: "neutral",
    };
    let latency = Figure {
        label: "Echo latency p99".into(),
        value: format_us(e.latency.p99_us),
        detail: format!(
            "p50 {} · max {} · service p99 {}",
            format_us(e.latency.p50_us),
            format_us(e.latency.max_us),
            format_us(e.service.p99_us)
        ),
        tone: "neutral",
    };
    let lost = e.timeouts.saturating_add(e.unanswered_at_stop);
    let lost_figure = Figure {
        label: "Echo lost".into(),
        value: count(lost),
        detail: format!(
            "{} of {} sent ({} timeouts, {} unanswered, {} late)",
            format::share(lost, e.sent),
            count(e.sent),
            count(e.timeouts),
            count(e.unanswered_at_stop),
            count(e.late)
        ),
        tone: if lost > 0 { "bad" } else { "good" },
    };
    [throughput, latency, lost_figure]
}

/// What broke: failures by kind, the top three named.
fn broke_figure(run: &RunFile) -> Figure {
    let broke = failures(run);
    let total = sum(broke.iter().map(|(_, v)| v));
    Figure {
        label: "What broke".into(),
        value: if total == 0 {
            "nothing".into()
        } else {
            plural(total, "failure", "failures")
        },
        detail: if broke.is_empty() {
            "no connect failures, errors or abnormal disconnects".into()
        } else {
            broke
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k} {}", count(*v)))
                .collect::<Vec<_>>()
                .join(" · ")
        },
        tone: if total > 0 { "bad" } else { "good" },
    }
}

/// The swarm's own health: saturated or not, and its peaks.
fn swarm_figure(run: &RunFile) -> Option<Figure> {
    let h = &run.health.summary;
    (!run.health.series.is_empty() || h.saturated).then(|| Figure {
        label: "Swarm".into(),
        value: if h.saturated {
            "saturated"
        } else {
            "not the limit"
        }
        .into(),
        detail: format!(
            "CPU max {} of {} · lag max {} · RSS {}",
            format::percent(h.cpu_percent_max),
            format::percent(f64::from(run.health.cores.max(1)) * 100.0),
            format_us(h.sched_lag_max_us),
            format::format_bytes(h.rss_bytes_max)
        ),
        tone: if h.saturated { "warn" } else { "good" },
    })
}
