//! Combines run files from several swarm processes (shards of one plan) into one.
//!
//! Receives run files that ran from a common start time; emits one run file in which
//! histograms add exactly, counters sum, and per-second series align by wall-clock second
//! (each shard's seconds are shifted by the difference of its start from the earliest).
//! Per-second percentiles cannot be merged exactly from summaries: the merged value is the
//! worst shard's (an upper bound); exact ones come from merging the `.hlog` files.
//! Must not: drop counts, or keep threshold results (they must be re-evaluated).
//!
//! Callers: the coordinator of a run of several processes (harness/src/cluster/merge.rs)
//! and `swarm merge`; both then set exact per-second percentiles from the shards' interval
//! logs (crate::intervals).

use std::collections::BTreeMap;

use crate::distribution::{DistributionError, merge_opt};
use crate::schema::*;

/// Why run files could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: no run files given")]
    Empty,
    #[error("histogram of {what} cannot be merged: {source}")]
    Histogram {
        what: String,
        source: DistributionError,
    },
}

fn ctx(what: &str) -> impl FnOnce(DistributionError) -> MergeError + '_ {
    move |source| MergeError::Histogram {
        what: what.to_string(),
        source,
    }
}

/// Merges `files` (in any order) into one run file.
pub fn merge(files: &[RunFile]) -> Result<RunFile, MergeError> {
    let first = files.first().ok_or(MergeError::Empty)?;
    if files.len() == 1 {
        return Ok(first.clone());
    }
    let start_ms = files
        .iter()
        .map(|f| f.meta.started_at_unix_ms)
        .min()
        .unwrap_or(0);
    let mut out = RunFile {
        schema_version: SCHEMA_VERSION,
        meta: merge_meta(files, start_ms),
        run: Section::default(),
        phases: Vec::new(),
        series: Vec::new(),
        health: Health::default(),
        thresholds: Vec::new(),
        workers: Vec::new(),
        targets: Vec::new(),
        live: None,
        capacity: None,
    };
    let mut series: BTreeMap<u64, SecondPoint> = BTreeMap::new();
    let mut health: BTreeMap<u64, HealthPoint> = BTreeMap::new();
    let mut core_hosts: Vec<String> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let shift_ms = f.meta.started_at_unix_ms.saturating_sub(start_ms);
        let shift_s = (shift_ms + 500) / 1000;
        let shifted = |s: &Section| shift_section(s, shift_ms);
        out.run = if i == 0 {
            shifted(&f.run)
        } else {
            merge_section(&out.run, &shifted(&f.run))?
        };
        for p in &f.phases {
            let stats = shifted(&p.stats);
            match out.phases.iter_mut().find(|q| q.name == p.name) {
                Some(q) => q.stats = merge_section(&q.stats, &stats)?,
                None => out.phases.push(PhaseResult { stats, ..p.clone() }),
            }
        }
        for p in &f.series {
            let sec = p.second + shift_s;
            let e = series.entry(sec).or_insert_with(|| SecondPoint {
                second: sec,
                ..Default::default()
            });
            add_point(e, p);
        }
        for p in &f.health.series {
            let sec = p.second + shift_s;
            let e = health.entry(sec).or_insert_with(|| HealthPoint {
                second: sec,
                ..Default::default()
            });
            e.cpu_percent += p.cpu_percent;
            e.rss_bytes += p.rss_bytes;
            e.sched_lag_max_us = e.sched_lag_max_us.max(p.sched_lag_max_us);
            e.sched_lag_mean_us = e.sched_lag_mean_us.max(p.sched_lag_mean_us);
            e.steal_percent = e.steal_percent.max(p.steal_percent);
        }
        // Shards on one machine share its cores.
        if !core_hosts.contains(&f.meta.machine.hostname) {
            core_hosts.push(f.meta.machine.hostname.clone());
            out.health.cores += f.health.cores;
        }
    }
    out.series = series.into_values().collect();
    out.health.series = health.into_values().collect();
    out.health.summary =
        crate::saturation::summarize(&out.health.series, out.health.cores, &out.series);
    // A shard that was saturated on its own stays visible even if the sum dilutes it.
    for f in files {
        if f.health.summary.saturated && !out.health.summary.saturated {
            out.health.summary.saturated = true;
            for by in &f.health.summary.saturated_by {
                if !out.health.summary.saturated_by.contains(by) {
                    out.health.summary.saturated_by.push(by.clone());
                }
            }
        }
    }
    out.targets = merge_targets(files, start_ms)?;
    let dropped: u64 = files.iter().map(|f| f.health.summary.samples_dropped).sum();
    if dropped > 0 {
        let sm = &mut out.health.summary;
        sm.samples_dropped = dropped;
        sm.saturated = true;
        if !sm.saturated_by.iter().any(|b| b == "recorder") {
            sm.saturated_by.push("recorder".into());
        }
    }
    Ok(out)
}

/// Each target's share, added by URL over the files: a file of several targets gives its
/// `targets`, a file of one gives its whole run under its URL. Empty when every file
/// targeted the same one URL.
fn merge_targets(files: &[RunFile], start_ms: u64) -> Result<Vec<TargetResult>, MergeError> {
    let mut out: Vec<TargetResult> = Vec::new();
    for f in files {
        let shift_ms = f.meta.started_at_unix_ms.saturating_sub(start_ms);
        let own;
        let targets = if f.targets.is_empty() {
            own = [TargetResult {
                url: f.meta.target_url.clone(),
                workers: Vec::new(),
                clients: f.run.connect.peak_connected,
                run: f.run.clone(),
            }];
            &own[..]
        } else {
            &f.targets[..]
        };
        for t in targets {
            let run = shift_section(&t.run, shift_ms);
            match out.iter_mut().find(|o| o.url == t.url) {
                Some(o) => {
                    o.run = merge_section(&o.run, &run)?;
                    o.clients += t.clients;
                    o.workers.extend(&t.workers);
                }
                None => out.push(TargetResult { run, ..t.clone() }),
            }
        }
    }
    if out.len() < 2 {
        out.clear();
    }
    Ok(out)
}

fn merge_meta(files: &[RunFile], start_ms: u64) -> RunMeta {
    let mut m = files[0].meta.clone();
    m.started_at_unix_ms = start_ms;
    m.split_rooms = files.iter().any(|f| f.meta.split_rooms);
    m.ended_at_unix_ms = files
        .iter()
        .map(|f| f.meta.ended_at_unix_ms)
        .max()
        .unwrap_or(0);
    m.interrupted = files.iter().any(|f| f.meta.interrupted);
    m.shards = files.iter().map(|f| f.meta.shards.max(1)).sum();
    m.status = if m.interrupted {
        RunStatus::Interrupted
    } else if files.iter().any(|f| f.meta.status == RunStatus::Running) {
        RunStatus::Running
    } else if files.iter().all(|f| f.meta.status == RunStatus::Failed) {
        RunStatus::Failed
    } else if files.iter().any(|f| f.meta.status == RunStatus::Degraded) {
        RunStatus::Degraded
    } else {
        RunStatus::Completed
    };
    let mut hosts: Vec<String> = Vec::new();
    m.machine.cores = 0;
    m.machine.memory_bytes = 0;
    for f in files {
        for s in &f.meta.scenarios {
            if !m.scenarios.contains(s) {
                m.scenarios.push(s.clone());
            }
        }
        if !hosts.contains(&f.meta.machine.hostname) {
            hosts.push(f.meta.machine.hostname.clone());
            m.machine.cores += f.meta.machine.cores;
            m.machine.memory_bytes += f.meta.machine.memory_bytes;
        }
    }
    m.machine.hostname = hosts.join(",");
    // Each shard planned its share of the clients: the merged plan holds their sum.
    for f in &files[1..] {
        for p in &f.meta.plan {
            match m.plan.iter_mut().find(|q| q.name == p.name) {
                Some(q) => q.clients += p.clients,
                None => m.plan.push(p.clone()),
            }
        }
    }
    m
}

fn shift_section(s: &Section, shift_ms: u64) -> Section {
    let mut s = s.clone();
    s.start_offset_ms += shift_ms;
    s.end_offset_ms += shift_ms;
    s
}

fn add_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

/// Adds shard `b`'s point of a second to `a` (counters summed, percentiles the worst
/// shard's until exact ones replace them); also the coordinator's live merge.
pub fn add_point(a: &mut SecondPoint, b: &SecondPoint) {
    a.connected += b.connected;
    a.attempted += b.attempted;
    a.connect_failed += b.connect_failed;
    a.sent += b.sent;
    a.received += b.received;
    a.timeouts += b.timeouts;
    a.late += b.late;
    a.errors += b.errors;
    a.disconnects += b.disconnects;
    a.delivered += b.delivered;
    a.connections_lost += b.connections_lost;
    a.restored += b.restored;
    a.clients_away += b.clients_away;
    a.skipped_disconnected += b.skipped_disconnected;
    let worst = |x: Option<u64>, y: Option<u64>| x.max(y);
    a.latency_p50_us = worst(a.latency_p50_us, b.latency_p50_us);
    a.latency_p90_us = worst(a.latency_p90_us, b.latency_p90_us);
    a.latency_p99_us = worst(a.latency_p99_us, b.latency_p99_us);
    a.latency_max_us = worst(a.latency_max_us, b.latency_max_us);
    a.send_lag_p99_us = worst(a.send_lag_p99_us, b.send_lag_p99_us);
    a.send_lag_max_us = worst(a.send_lag_max_us, b.send_lag_max_us);
}

/// Sum of two sections covering the same span from different shards.
pub fn merge_section(a: &Section, b: &Section) -> Result<Section, MergeError> {
    let start = a.start_offset_ms.min(b.start_offset_ms);
    let end = a.end_offset_ms.max(b.end_offset_ms);
    let mut out = Section {
        start_offset_ms: start,
        end_offset_ms: end,
        duration_ms: end - start,
        connect: merge_connect(&a.connect, &b.connect)?,
        echo: None,
        broadcast: None,
        heartbeat: None,
        churn: None,
        flow: None,
        outage: None,
        errors: a.errors.clone(),
        disconnects: a.disconnects.clone(),
        send_lag: None,
    };
    out.send_lag = merge_with(&a.send_lag, &b.send_lag, |x, y| {
        x.merged(y).map_err(ctx("swarm.send_lag"))
    })?;
    add_map(&mut out.errors, &b.errors);
    add_map(&mut out.disconnects, &b.disconnects);
    out.echo = merge_with(&a.echo, &b.echo, merge_echo)?;
    out.broadcast = merge_with(&a.broadcast, &b.broadcast, merge_broadcast)?;
    out.heartbeat = merge_with(&a.heartbeat, &b.heartbeat, merge_heartbeat)?;
    out.churn = merge_with(&a.churn, &b.churn, merge_churn)?;
    out.flow = merge_with(&a.flow, &b.flow, merge_flow)?;
    out.outage = merge_with(&a.outage, &b.outage, merge_outage)?;
    Ok(out)
}

/// Steps by name: shards of one plan record the same steps, in the same order.
fn merge_flow(x: &FlowStats, y: &FlowStats) -> Result<FlowStats, MergeError> {
    let mut out = x.clone();
    for s in &y.steps {
        match out.steps.iter_mut().find(|o| o.name == s.name) {
            Some(o) => {
                o.runs += s.runs;
                o.ok += s.ok;
                o.timeouts += s.timeouts;
                o.unmatched += s.unmatched;
                o.bad_path += s.bad_path;
                o.server_errors += s.server_errors;
                o.disconnected += s.disconnected;
                o.unanswered_at_stop += s.unanswered_at_stop;
                o.latency = o.latency.merged(&s.latency).map_err(ctx("flow.latency"))?;
            }
            None => out.steps.push(s.clone()),
        }
    }
    Ok(out)
}

fn merge_echo(x: &EchoStats, y: &EchoStats) -> Result<EchoStats, MergeError> {
    Ok(EchoStats {
        planned: x.planned + y.planned,
        skipped_disconnected: x.skipped_disconnected + y.skipped_disconnected,
        sent: x.sent + y.sent,
        received: x.received + y.received,
        timeouts: x.timeouts + y.timeouts,
        late: x.late + y.late,
        unanswered_at_stop: x.unanswered_at_stop + y.unanswered_at_stop,
        latency: x.latency.merged(&y.latency).map_err(ctx("echo.latency"))?,
        service: x.service.merged(&y.service).map_err(ctx("echo.service"))?,
    })
}

fn merge_broadcast(x: &BroadcastStats, y: &BroadcastStats) -> Result<BroadcastStats, MergeError> {
    Ok(BroadcastStats {
        published: x.published + y.published,
        expected: x.expected + y.expected,
        delivered: x.delivered + y.delivered,
        recovered: x.recovered + y.recovered,
        missed_while_disconnected: x.missed_while_disconnected + y.missed_while_disconnected,
        lost: x.lost + y.lost,
        duplicates: x.duplicates + y.duplicates,
        reordered: x.reordered + y.reordered,
        latency: x
            .latency
            .merged(&y.latency)
            .map_err(ctx("broadcast.latency"))?,
        foreign: x.foreign + y.foreign,
        outside_membership: x.outside_membership + y.outside_membership,
        service: merge_opt(&x.service, &y.service).map_err(ctx("broadcast.service"))?,
        by_room_size: merge_room_sizes(&x.by_room_size, &y.by_room_size)?,
        ambiguous: x.ambiguous + y.ambiguous,
    })
}

fn merge_heartbeat(x: &HeartbeatStats, y: &HeartbeatStats) -> Result<HeartbeatStats, MergeError> {
    Ok(HeartbeatStats {
        pings: x.pings + y.pings,
        ping_interval_deviation: x
            .ping_interval_deviation
            .merged(&y.ping_interval_deviation)
            .map_err(ctx("heartbeat.ping_interval_deviation"))?,
        pong_rtt: merge_opt(&x.pong_rtt, &y.pong_rtt).map_err(ctx("heartbeat.pong_rtt"))?,
        muted_closes: x.muted_closes + y.muted_closes,
        muted_close_delay: merge_opt(&x.muted_close_delay, &y.muted_close_delay)
            .map_err(ctx("heartbeat.muted_close_delay"))?,
        false_timeouts: x.false_timeouts + y.false_timeouts,
        client_timeouts: x.client_timeouts + y.client_timeouts,
        ping_interval: merge_opt(&x.ping_interval, &y.ping_interval)
            .map_err(ctx("heartbeat.ping_interval"))?,
        advertised_ping_interval_ms: x
            .advertised_ping_interval_ms
            .or(y.advertised_ping_interval_ms),
        advertised_ping_timeout_ms: x
            .advertised_ping_timeout_ms
            .or(y.advertised_ping_timeout_ms),
        muted: x.muted + y.muted,
        muted_never_closed: x.muted_never_closed + y.muted_never_closed,
        muted_close_after_last_pong: merge_opt(
            &x.muted_close_after_last_pong,
            &y.muted_close_after_last_pong,
        )
        .map_err(ctx("heartbeat.muted_close_after_last_pong"))?,
    })
}

fn merge_churn(x: &ChurnStats, y: &ChurnStats) -> Result<ChurnStats, MergeError> {
    Ok(ChurnStats {
        drops: x.drops + y.drops,
        reconnects: x.reconnects + y.reconnects,
        reconnect_failures: x.reconnect_failures + y.reconnect_failures,
        reconnect: x
            .reconnect
            .merged(&y.reconnect)
            .map_err(ctx("churn.reconnect"))?,
        recovered_sessions: x.recovered_sessions + y.recovered_sessions,
        away_messages: x.away_messages + y.away_messages,
        away_messages_max: x.away_messages_max.max(y.away_messages_max),
    })
}

fn merge_outage(x: &OutageStats, y: &OutageStats) -> Result<OutageStats, MergeError> {
    Ok(OutageStats {
        connections_lost: x.connections_lost + y.connections_lost,
        reconnect_attempts: x.reconnect_attempts + y.reconnect_attempts,
        reconnect_failures: x.reconnect_failures + y.reconnect_failures,
        restored: x.restored + y.restored,
        clients_not_restored: x.clients_not_restored + y.clients_not_restored,
        // Shards lose clients at about the same time; the sum is an upper bound.
        peak_clients_away: x.peak_clients_away + y.peak_clients_away,
        restore: x
            .restore
            .merged(&y.restore)
            .map_err(ctx("outage.restore"))?,
        first_loss_offset_ms: match (x.first_loss_offset_ms, y.first_loss_offset_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        last_restore_offset_ms: x.last_restore_offset_ms.max(y.last_restore_offset_ms),
    })
}

fn merge_room_sizes(
    a: &BTreeMap<String, RoomSizeStats>,
    b: &BTreeMap<String, RoomSizeStats>,
) -> Result<BTreeMap<String, RoomSizeStats>, MergeError> {
    let mut out = a.clone();
    for (k, y) in b {
        let merged = match out.get(k) {
            None => y.clone(),
            Some(x) => RoomSizeStats {
                expected: x.expected + y.expected,
                delivered: x.delivered + y.delivered,
                recovered: x.recovered + y.recovered,
                missed_while_disconnected: x.missed_while_disconnected
                    + y.missed_while_disconnected,
                lost: x.lost + y.lost,
                duplicates: x.duplicates + y.duplicates,
                reordered: x.reordered + y.reordered,
                outside_membership: x.outside_membership + y.outside_membership,
                latency: x
                    .latency
                    .merged(&y.latency)
                    .map_err(ctx("broadcast.by_room_size.latency"))?,
            },
        };
        out.insert(k.clone(), merged);
    }
    Ok(out)
}

fn merge_with<T: Clone>(
    a: &Option<T>,
    b: &Option<T>,
    f: impl FnOnce(&T, &T) -> Result<T, MergeError>,
) -> Result<Option<T>, MergeError> {
    Ok(match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)?),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    })
}

fn merge_connect(a: &ConnectStats, b: &ConnectStats) -> Result<ConnectStats, MergeError> {
    let mut out = ConnectStats {
        attempted: a.attempted + b.attempted,
        connected: a.connected + b.connected,
        failed: a.failed + b.failed,
        failed_by_kind: a.failed_by_kind.clone(),
        // Shards peak at about the same time; the sum is an upper bound.
        peak_connected: a.peak_connected + b.peak_connected,
        phases: ConnectPhaseTimes::default(),
    };
    add_map(&mut out.failed_by_kind, &b.failed_by_kind);
    for name in ConnectPhaseTimes::NAMES {
        let merged = merge_opt(&a.phases.get(name).cloned(), &b.phases.get(name).cloned())
            .map_err(|source| MergeError::Histogram {
                what: format!("connect.{name}"),
                source,
            })?;
        if let Some(slot) = out.phases.slot_mut(name) {
            *slot = merged;
        }
    }
    Ok(out)
}
