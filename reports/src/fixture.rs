//! A small, complete example run file, for tests, snapshots and documentation.
//!
//! Receives a number of clients; emits a [`RunFile`] with two phases (connect ramp, echo), a
//! few seconds of series and health, and real encoded histograms ([`example_run`]), or one
//! with every optional section filled as well ([`example_full_run`]).
//! Must not: be used to record real runs.

use std::collections::BTreeMap;

use crate::distribution::{Distribution, new_histogram};
use crate::saturation::summarize_health;
use crate::schema::*;

fn dist(values: impl IntoIterator<Item = u64>) -> Distribution {
    let mut h = new_histogram();
    for v in values {
        h.saturating_record(v);
    }
    // Encoding a valid histogram does not fail; an empty default keeps this panic-free.
    Distribution::from_histogram(&h, 0).unwrap_or_default()
}

fn connect(clients: u64, failed: u64) -> ConnectStats {
    ConnectStats {
        attempted: clients + failed,
        connected: clients,
        failed,
        failed_by_kind: if failed > 0 {
            BTreeMap::from([("connect_refused".to_string(), failed)])
        } else {
            BTreeMap::new()
        },
        peak_connected: clients,
        phases: ConnectPhaseTimes {
            tcp: Some(dist((0..clients).map(|i| 80 + i % 40))),
            ws_upgrade: Some(dist((0..clients).map(|i| 300 + i % 200))),
            sio_connect: Some(dist((0..clients).map(|i| 150 + i % 90))),
            total: Some(dist((0..clients).map(|i| 600 + i % 400))),
            ..Default::default()
        },
    }
}

fn echo(sent: u64, timeouts: u64, unanswered: u64) -> EchoStats {
    let received = sent - timeouts - unanswered;
    EchoStats {
        planned: sent,
        skipped_disconnected: 0,
        sent,
        received,
        timeouts,
        late: timeouts / 2,
        unanswered_at_stop: unanswered,
        latency: dist((0..received).map(|i| 200 + (i * 7919) % 4000)),
        service: dist((0..received).map(|i| 150 + (i * 7919) % 3000)),
    }
}

/// An example run: `clients` clients, two phases (`ramp`: connect, `steady`: echo).
pub fn example_run(clients: u64) -> RunFile {
    let ramp = Section {
        start_offset_ms: 0,
        end_offset_ms: 2_000,
        duration_ms: 2_000,
        connect: connect(clients, 2),
        ..Default::default()
    };
    let steady = Section {
        start_offset_ms: 2_000,
        end_offset_ms: 6_000,
        duration_ms: 4_000,
        connect: ConnectStats {
            peak_connected: clients,
            ..Default::default()
        },
        echo: Some(echo(clients * 40, 3, 1)),
        errors: BTreeMap::from([("unmatched".to_string(), 1)]),
        disconnects: BTreeMap::from([
            ("client_close".to_string(), clients - 1),
            ("eof".to_string(), 1),
        ]),
        ..Default::default()
    };
    let mut run = steady.clone();
    run.start_offset_ms = 0;
    run.duration_ms = 6_000;
    run.connect = ramp.connect.clone();
    let series = example_series(clients);
    let health_series: Vec<HealthPoint> = (0..6u64)
        .map(|s| HealthPoint {
            second: s,
            cpu_percent: 20.0 + s as f64 * 5.0,
            rss_bytes: 20_000_000 + s * 1_000_000,
            sched_lag_max_us: 300 + s * 20,
            sched_lag_mean_us: 40 + s,
            steal_percent: 0.0,
        })
        .collect();
    RunFile {
        schema_version: SCHEMA_VERSION,
        meta: example_meta(clients),
        run,
        phases: vec![
            PhaseResult {
                name: "ramp".into(),
                scenario: "connect".into(),
                stats: ramp,
            },
            PhaseResult {
                name: "steady".into(),
                scenario: "echo".into(),
                stats: steady,
            },
        ],
        series,
        health: Health {
            cores: 2,
            summary: summarize_health(&health_series, 2),
            series: health_series,
        },
        thresholds: Vec::new(),
        workers: Vec::new(),
        targets: Vec::new(),
        live: None,
        capacity: None,
    }
}

/// The example run's seconds: connects over the first two, echo after, a few failures.
fn example_series(clients: u64) -> Vec<SecondPoint> {
    (0..6u64)
        .map(|s| SecondPoint {
            second: s,
            connected: if s < 2 {
                clients * (s + 1) / 2
            } else {
                clients
            },
            attempted: if s < 2 { clients / 2 + 1 } else { 0 },
            connect_failed: u64::from(s == 1) * 2,
            sent: if s >= 2 { clients * 10 } else { 0 },
            received: if s >= 2 {
                clients * 10 - u64::from(s == 5) * 4
            } else {
                0
            },
            timeouts: u64::from(s == 5) * 3,
            late: 0,
            errors: u64::from(s == 3),
            disconnects: if s == 5 { clients } else { 0 },
            latency_p50_us: (s >= 2).then_some(1_200 + s * 10),
            latency_p90_us: (s >= 2).then_some(2_500 + s * 10),
            latency_p99_us: (s >= 2).then_some(3_900 + s * 10),
            latency_max_us: (s >= 2).then_some(4_100 + s * 10),
            ..Default::default()
        })
        .collect()
}

/// The example run's `meta`: two phases, Socket.IO over WebSocket, an embedded target.
fn example_meta(clients: u64) -> RunMeta {
    RunMeta {
        swarm_version: "0.1.0".into(),
        run_id: "example".into(),
        scenarios: vec![Scenario::Connect, Scenario::Echo],
        target_url: "http://127.0.0.1:3000/".into(),
        embedded_target: true,
        protocol: Protocol::Socketio,
        transport: Transport::Websocket,
        plan: vec![
            PlanPhase {
                name: "ramp".into(),
                scenario: Scenario::Connect,
                clients,
                duration_ms: 2_000,
                ramp_ms: Some(2_000),
                ..Default::default()
            },
            PlanPhase {
                name: "steady".into(),
                scenario: Scenario::Echo,
                clients,
                duration_ms: 4_000,
                rate_per_s: Some(10.0),
                payload_size_bytes: Some(128),
                arrival: Some(Arrival::Constant),
                ..Default::default()
            },
        ],
        options: BTreeMap::from([("timeout_ms".to_string(), serde_json::json!(10_000))]),
        args: vec!["run".into()],
        machine: Machine {
            hostname: "example-host".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            os: "linux".into(),
            os_version: "6.1".into(),
        },
        started_at_unix_ms: 1_700_000_000_000,
        ended_at_unix_ms: 1_700_000_006_500,
        interrupted: false,
        status: RunStatus::Completed,
        status_detail: None,
        shards: 1,
        split_rooms: false,
    }
}

fn broadcast(
    published: u64,
    receivers: u64,
    base_us: u64,
    lost: u64,
    missed: u64,
) -> BroadcastStats {
    let expected = published * receivers;
    let delivered = expected - lost - missed;
    BroadcastStats {
        published,
        expected,
        delivered,
        recovered: missed / 2,
        missed_while_disconnected: missed,
        lost,
        duplicates: u64::from(lost > 0),
        reordered: lost / 2,
        latency: dist((0..delivered.min(20_000)).map(|i| base_us + (i * 7919) % (base_us * 3))),
        ..Default::default()
    }
}

/// An example run with every optional section: `example_run`'s connect ramp and echo, then
/// two broadcast phases (rooms of 10 and of 100), a heartbeat phase with muted clients and a
/// churn phase; errors and abnormal disconnects of several kinds; 24 seconds of series and
/// health.
pub fn example_full_run(clients: u64) -> RunFile {
    let mut run = example_run(clients);
    let b10 = broadcast(400, 10, 300, 0, 0);
    let b100 = broadcast(200, 100, 900, 12, 40);
    let hb = example_heartbeat(clients);
    let churn = example_churn();
    let phase = |name: &str, scenario: &str, start_ms: u64, stats: Section| PhaseResult {
        name: name.into(),
        scenario: scenario.into(),
        stats: Section {
            start_offset_ms: start_ms,
            end_offset_ms: start_ms + 4_000,
            duration_ms: 4_000,
            connect: ConnectStats {
                peak_connected: clients,
                ..Default::default()
            },
            ..stats
        },
    };
    run.phases.push(phase(
        "fanout-10",
        "broadcast",
        6_000,
        Section {
            broadcast: Some(b10.clone()),
            ..Default::default()
        },
    ));
    run.phases.push(phase(
        "fanout-100",
        "broadcast",
        10_000,
        Section {
            broadcast: Some(b100.clone()),
            errors: BTreeMap::from([("protocol".to_string(), 3)]),
            ..Default::default()
        },
    ));
    run.phases.push(phase(
        "heartbeat",
        "heartbeat",
        14_000,
        Section {
            heartbeat: Some(hb.clone()),
            disconnects: BTreeMap::from([
                ("sio_disconnect".to_string(), 10),
                ("eio_close".to_string(), 2),
            ]),
            ..Default::default()
        },
    ));
    run.phases.push(phase(
        "churn",
        "churn",
        18_000,
        Section {
            churn: Some(churn.clone()),
            broadcast: Some(broadcast(100, 10, 400, 0, 30)),
            disconnects: BTreeMap::from([("reset".to_string(), 50)]),
            ..Default::default()
        },
    ));
    for (name, scenario, room) in [
        ("fanout-10", Scenario::Broadcast, Some(10)),
        ("fanout-100", Scenario::Broadcast, Some(100)),
        ("heartbeat", Scenario::Heartbeat, None),
        ("churn", Scenario::Churn, None),
    ] {
        run.meta.plan.push(PlanPhase {
            name: name.into(),
            scenario,
            clients,
            duration_ms: 4_000,
            settings: PhaseSettings {
                room_size: room,
                ..Default::default()
            },
            ..Default::default()
        });
    }
    run.meta
        .scenarios
        .extend([Scenario::Broadcast, Scenario::Heartbeat, Scenario::Churn]);
    let whole = whole_broadcast(&b10, &b100);
    run.run.broadcast = Some(whole);
    run.run.heartbeat = Some(hb);
    run.run.churn = Some(churn);
    run.run.end_offset_ms = 22_000;
    run.run.duration_ms = 22_000;
    run.run.errors.insert("protocol".into(), 3);
    for (k, v) in [("sio_disconnect", 10), ("eio_close", 2), ("reset", 50)] {
        run.run.disconnects.insert(k.into(), v);
    }
    extend_series(&mut run, clients);
    run.health.summary = summarize_health(&run.health.series, run.health.cores);
    run.meta.ended_at_unix_ms = run.meta.started_at_unix_ms + 22_500;
    run
}

/// Heartbeat figures of the full example: 11 muted clients (one never closed), two false
/// timeouts.
fn example_heartbeat(clients: u64) -> HeartbeatStats {
    HeartbeatStats {
        pings: clients * 4,
        ping_interval_deviation: dist((0..clients * 4).map(|i| 50 + (i * 131) % 2_500)),
        pong_rtt: None,
        muted_closes: 10,
        muted_close_delay: Some(dist((0..10).map(|i| 45_000_000 + i * 150_000))),
        false_timeouts: 2,
        client_timeouts: 1,
        ping_interval: Some(dist(
            (0..clients * 4).map(|i| 25_000_000 + (i * 131) % 2_500),
        )),
        advertised_ping_interval_ms: Some(25_000),
        advertised_ping_timeout_ms: Some(20_000),
        muted: 11,
        muted_never_closed: 1,
        muted_close_after_last_pong: Some(dist((0..10).map(|i| 45_000_000 + i * 40_000))),
    }
}

/// Churn figures of the full example: 50 drops, 48 reconnects.
fn example_churn() -> ChurnStats {
    ChurnStats {
        drops: 50,
        reconnects: 48,
        reconnect_failures: 2,
        reconnect: dist((0..48).map(|i| 2_000 + i * 300)),
        recovered_sessions: 40,
        away_messages: 120,
        away_messages_max: 9,
    }
}

/// The whole run's broadcast: the two fan-out phases added, with their room sizes.
fn whole_broadcast(b10: &BroadcastStats, b100: &BroadcastStats) -> BroadcastStats {
    let mut whole = b10.clone();
    let b = b100;
    whole.published += b.published;
    whole.expected += b.expected;
    whole.delivered += b.delivered;
    whole.recovered += b.recovered;
    whole.missed_while_disconnected += b.missed_while_disconnected;
    whole.lost += b.lost;
    whole.duplicates += b.duplicates;
    whole.reordered += b.reordered;
    whole.latency = whole.latency.merged(&b.latency).unwrap_or_default();
    for (size, b) in [("10", b10), ("100", b100)] {
        whole.by_room_size.insert(
            size.to_string(),
            RoomSizeStats {
                expected: b.expected,
                delivered: b.delivered,
                recovered: b.recovered,
                missed_while_disconnected: b.missed_while_disconnected,
                lost: b.lost,
                duplicates: b.duplicates,
                reordered: b.reordered,
                outside_membership: 0,
                latency: b.latency.clone(),
            },
        );
    }
    whole
}

/// Seconds 6 to 21 of the full example: deliveries, a churn dip, errors; and their health.
fn extend_series(run: &mut RunFile, clients: u64) {
    for s in 6..22u64 {
        run.series.push(SecondPoint {
            second: s,
            connected: if (18..20).contains(&s) {
                clients.saturating_sub(25)
            } else {
                clients
            },
            errors: u64::from(s == 11) * 3,
            delivered: match s {
                6..=9 => 1_000,
                10..=13 => 5_000 - (s % 2) * 13,
                18..=21 => 240,
                _ => 0,
            },
            disconnects: match s {
                15 => 12,
                18 | 19 => 25,
                _ => 0,
            },
            ..Default::default()
        });
        run.health.series.push(HealthPoint {
            second: s,
            cpu_percent: 40.0 + (s % 5) as f64 * 4.0,
            rss_bytes: 26_000_000 + s * 200_000,
            sched_lag_max_us: 400 + (s % 3) * 100,
            sched_lag_mean_us: 60,
            steal_percent: 0.0,
        });
    }
}
