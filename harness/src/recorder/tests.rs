//! Recorder tests: exact accounting, interval windows on a paused clock, the `.hlog`.

use std::time::Duration;

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use tokio::time::{Instant, advance};

use super::*;
use crate::health::HealthReading;
use crate::sample::{ConnectPhases, DisconnectReason, ErrorKind, Event};

fn config(phases: &[(&str, &str)]) -> RecorderConfig {
    RecorderConfig {
        phases: phases
            .iter()
            .map(|(n, s)| PhaseInfo {
                name: n.to_string(),
                scenario: s.to_string(),
            })
            .collect(),
        hlog_path: None,
        interval: Duration::from_secs(1),
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Equal within the histogram's 3 significant digits.
fn near(observed: u64, expected: u64) -> bool {
    observed.abs_diff(expected) * 1000 <= expected
}

fn sample(client: u32, phase: u16, at: std::time::Instant, event: Event) -> Sample {
    Sample {
        client,
        phase,
        at,
        event,
    }
}

fn phases_ms(tcp: u64, ws: u64, total: u64) -> ConnectPhases {
    ConnectPhases {
        tcp: Some(Duration::from_millis(tcp)),
        ws_upgrade: Some(Duration::from_millis(ws)),
        total: Some(Duration::from_millis(total)),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn accounting_is_exact() {
    let (tx, rec) = spawn_with_health(config(&[("steady", "echo")]), None);
    let t0 = now();
    let ms = |n: u64| Duration::from_millis(n);
    for c in 0..100u32 {
        tx.send(sample(
            c,
            0,
            t0 + ms(3),
            Event::Connected {
                intended: t0,
                phases: phases_ms(1, 2, 3),
            },
        ))
        .expect("send");
        for k in 0..10u64 {
            let intended = t0 + ms(10 + k);
            let sent = intended + ms(1);
            tx.send(sample(c, 0, sent, Event::Sent { intended }))
                .expect("send");
            let done = intended + ms(5);
            let ev = match k {
                0..=6 => Event::Reply { intended, sent },
                7 | 8 => Event::Timeout { intended, sent },
                _ => continue,
            };
            tx.send(sample(c, 0, done, ev)).expect("send");
        }
        // One message per client is still out at the stop, and one timed-out reply came late.
        tx.send(sample(c, 0, t0 + ms(30), Event::Unanswered { count: 1 }))
            .expect("send");
        tx.send(sample(
            c,
            0,
            t0 + ms(30),
            Event::Late {
                intended: t0,
                sent: t0,
            },
        ))
        .expect("send");
    }
    tx.send(sample(
        0,
        0,
        t0,
        Event::ConnectFailed {
            intended: t0,
            phases: ConnectPhases {
                tcp: Some(ms(1)),
                ..Default::default()
            },
            error: ErrorKind::HttpStatus(404),
        },
    ))
    .expect("send");
    tx.send(sample(
        0,
        0,
        t0,
        Event::Error {
            error: ErrorKind::Unmatched,
        },
    ))
    .expect("send");
    tx.send(sample(
        0,
        0,
        t0,
        Event::Error {
            error: ErrorKind::Unmatched,
        },
    ))
    .expect("send");
    tx.send(sample(
        0,
        0,
        t0,
        Event::Disconnected {
            reason: DisconnectReason::WsClose { code: 1006 },
        },
    ))
    .expect("send");
    drop(tx);
    let r = rec.finish().await;

    let e = r.run.echo.as_ref().expect("echo section");
    assert_eq!(e.sent, 1000);
    assert_eq!(e.received, 700);
    assert_eq!(e.timeouts, 200);
    assert_eq!(e.unanswered_at_stop, 100);
    assert_eq!(e.sent, e.received + e.timeouts + e.unanswered_at_stop);
    assert_eq!(e.late, 100);
    assert_eq!(
        e.latency.count, 700,
        "late replies and timeouts are not in the percentiles"
    );
    assert!(
        near(e.latency.min_us, 5000) && near(e.latency.max_us, 5000),
        "latency = done - intended: {:?}",
        e.latency
    );
    assert!(
        near(e.service.min_us, 4000) && near(e.service.max_us, 4000),
        "service = done - sent: {:?}",
        e.service
    );

    let c = &r.run.connect;
    assert_eq!((c.attempted, c.connected, c.failed), (101, 100, 1));
    assert_eq!(c.failed_by_kind.get("http_404"), Some(&1));
    assert_eq!(c.peak_connected, 100);
    assert_eq!(
        c.phases.tcp.as_ref().map(|d| d.count),
        Some(101),
        "the failed attempt's tcp phase counts"
    );
    assert_eq!(
        c.phases.total.as_ref().map(|d| d.count),
        Some(100),
        "only successful connects have a total"
    );
    assert_eq!(c.phases.ws_upgrade.as_ref().map(|d| d.p50_us), Some(2000));
    assert!(
        c.phases.tls.is_none(),
        "phases that never happened are absent"
    );
    assert_eq!(r.run.errors.get("unmatched"), Some(&2));
    assert_eq!(r.run.disconnects.get("ws_close_1006"), Some(&1));
    assert_eq!(r.samples, 100 * (1 + 10 + 9 + 2) + 4);
    // The phase and the whole run agree when there is one phase.
    assert_eq!(r.phases[0].stats.echo, r.run.echo);
    assert_eq!(r.phases[0].name, "steady");
}

#[tokio::test(start_paused = true)]
async fn series_follow_the_clock_and_live_updates() {
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
    let mut live = rec.live.clone();
    let t0 = now();
    let sent = |at| sample(0, 0, at, Event::Sent { intended: at });
    let reply = |at: std::time::Instant, rtt_ms| {
        let intended = at - Duration::from_millis(rtt_ms);
        sample(
            0,
            0,
            at,
            Event::Reply {
                intended,
                sent: intended,
            },
        )
    };
    advance(Duration::from_millis(500)).await;
    for _ in 0..3 {
        tx.send(sent(now())).expect("send");
    }
    tx.send(reply(now(), 2)).expect("send");
    advance(Duration::from_millis(1000)).await; // t = 1.5 s: interval 0 has closed
    live.changed().await.expect("live snapshot");
    let snap = live.borrow_and_update().clone();
    assert_eq!(snap.elapsed, Duration::from_secs(1));
    assert_eq!(snap.sent_per_s, 3.0);
    assert_eq!(snap.received_per_s, 1.0);
    assert_eq!(snap.p50_us, Some(2000));
    for _ in 0..5 {
        tx.send(sent(now())).expect("send");
    }
    advance(Duration::from_millis(1700)).await; // t = 3.2 s
    tx.send(sent(now())).expect("send");
    tx.send(reply(now(), 7)).expect("send");
    // A sample stamped in an interval already closed lands in the open one.
    tx.send(sent(t0 + Duration::from_millis(100)))
        .expect("send");
    advance(Duration::from_millis(300)).await; // t = 3.5 s
    drop(tx);
    let r = rec.finish().await;
    let sent_per_s: Vec<u64> = r.series.iter().map(|p| p.sent).collect();
    assert_eq!(sent_per_s, vec![3, 5, 0, 2]);
    assert_eq!(
        r.series.iter().map(|p| p.second).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(r.series[0].latency_p99_us, Some(2000));
    assert_eq!(r.series[1].latency_p99_us, None);
    assert!(near(r.series[3].latency_max_us.unwrap_or(0), 7000));
    assert_eq!(r.run.echo.as_ref().map(|e| e.sent), Some(10));
    assert_eq!(r.run.start_offset_ms, 100);
    assert_eq!(r.run.end_offset_ms, 3200);
}

#[tokio::test(start_paused = true)]
async fn phases_are_split_and_summed() {
    let (tx, rec) = spawn_with_health(config(&[("ramp", "connect"), ("steady", "echo")]), None);
    let t0 = now();
    for c in 0..10 {
        tx.send(sample(
            c,
            0,
            t0,
            Event::Connected {
                intended: t0,
                phases: phases_ms(1, 1, 2),
            },
        ))
        .expect("send");
    }
    for c in 0..4 {
        tx.send(sample(
            c,
            1,
            t0,
            Event::Disconnected {
                reason: DisconnectReason::Eof,
            },
        ))
        .expect("send");
        tx.send(sample(c, 1, t0, Event::Sent { intended: t0 }))
            .expect("send");
        tx.send(sample(
            c,
            1,
            t0 + Duration::from_millis(1),
            Event::Reply {
                intended: t0,
                sent: t0,
            },
        ))
        .expect("send");
    }
    // A phase index the config does not name still counts.
    tx.send(sample(
        0,
        2,
        t0,
        Event::Connected {
            intended: t0,
            phases: phases_ms(1, 1, 9),
        },
    ))
    .expect("send");
    drop(tx);
    let r = rec.finish().await;
    assert_eq!(r.phases.len(), 3);
    assert_eq!(r.phases[2].name, "phase_2");
    assert_eq!(r.phases[0].stats.connect.connected, 10);
    assert!(r.phases[0].stats.echo.is_none());
    assert_eq!(r.phases[1].stats.echo.as_ref().map(|e| e.received), Some(4));
    assert_eq!(r.phases[1].stats.disconnects.get("eof"), Some(&4));
    assert_eq!(r.run.connect.connected, 11);
    let total = r.run.connect.phases.total.as_ref().expect("total");
    assert_eq!(total.count, 11);
    assert!(near(total.max_us, 9000), "{}", total.max_us);
    assert_eq!(r.run.connect.peak_connected, 10, "10 up, 4 down, 1 up");
    assert_eq!(
        r.phases[1].stats.connect.peak_connected, 10,
        "connected by the ramp, held in steady"
    );
    assert_eq!(r.series.last().map(|p| p.connected), Some(7));
}

#[tokio::test(start_paused = true)]
async fn out_of_range_values_are_clamped_and_counted() {
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
    let t0 = now();
    let at = t0 + Duration::from_secs(2 * 3600);
    tx.send(sample(
        0,
        0,
        at,
        Event::Reply {
            intended: t0,
            sent: t0,
        },
    ))
    .expect("send");
    tx.send(sample(
        0,
        0,
        t0,
        Event::Reply {
            intended: t0,
            sent: t0,
        },
    ))
    .expect("send");
    drop(tx);
    let r = rec.finish().await;
    let lat = &r.run.echo.as_ref().expect("echo").latency;
    assert_eq!(lat.count, 2);
    assert_eq!(lat.out_of_range, 1);
    assert!(lat.max_us >= reports::distribution::HIGHEST_US - 2_000_000);
    assert_eq!(lat.min_us, 0);
    // A sample stamped far in the future does not create hours of empty series points.
    assert!(r.series.len() <= 2, "{}", r.series.len());
}

#[tokio::test(start_paused = true)]
async fn writes_a_readable_hlog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("histograms.hlog");
    let mut cfg = config(&[("p", "echo")]);
    cfg.hlog_path = Some(path.clone());
    let (tx, rec) = spawn_with_health(cfg, None);
    for second in 0..3u64 {
        let at = now();
        for i in 0..(10 * (second + 1)) {
            let intended = at - Duration::from_micros(100 + i);
            tx.send(sample(
                0,
                0,
                at,
                Event::Reply {
                    intended,
                    sent: intended,
                },
            ))
            .expect("send");
        }
        tx.send(sample(
            0,
            0,
            at,
            Event::Connected {
                intended: at,
                phases: phases_ms(1, 2, 3),
            },
        ))
        .expect("send");
        advance(Duration::from_secs(1)).await;
    }
    drop(tx);
    let r = rec.finish().await;
    assert_eq!(r.hlog_error, None);
    let text = std::fs::read(&path).expect("hlog");
    assert!(text.starts_with(b"#swarmbench"));
    let mut counts: Vec<(String, u64, f64)> = Vec::new();
    for entry in IntervalLogIterator::new(&text) {
        if let Ok(LogEntry::Interval(h)) = entry {
            let bytes = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .expect("decode");
            let tag = h.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
            counts.push((tag, hist.len(), h.start_timestamp().as_secs_f64()));
        }
    }
    let latency: Vec<u64> = counts
        .iter()
        .filter(|c| c.0 == "echo.latency")
        .map(|c| c.1)
        .collect();
    assert_eq!(latency, vec![10, 20, 30]);
    let starts: Vec<f64> = counts
        .iter()
        .filter(|c| c.0 == "echo.latency")
        .map(|c| c.2)
        .collect();
    assert_eq!(starts, vec![0.0, 1.0, 2.0]);
    assert_eq!(counts.iter().filter(|c| c.0 == "connect.total").count(), 3);
    assert!(
        counts.iter().all(|c| c.0 != "connect.tls"),
        "no line for metrics with nothing recorded"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[tokio::test(start_paused = true)]
async fn health_readings_become_the_health_section() {
    let (htx, hrx) = tokio::sync::mpsc::unbounded_channel();
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), Some(hrx));
    let t0 = now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for s in 0..10u64 {
        htx.send(HealthReading {
            window_start: t0 + Duration::from_secs(s),
            cpu_percent: if s < 5 { 100.0 * cores } else { 10.0 },
            rss_bytes: 1000 * (s + 1),
            sched_lag_max_us: 50,
            sched_lag_mean_us: 10,
        })
        .expect("health");
    }
    advance(Duration::from_millis(10)).await;
    drop(tx);
    let r = rec.finish().await;
    assert_eq!(r.health.series.len(), 10);
    assert_eq!(r.health.series[3].second, 3);
    assert_eq!(r.health.summary.rss_bytes_max, 10_000);
    assert_eq!(r.health.summary.saturated_seconds, 5);
    assert!(r.health.summary.saturated);
    assert_eq!(r.health.summary.saturated_by, vec!["cpu".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn run_file_carries_meta_and_reads_back() {
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
    let t0 = now();
    tx.send(sample(0, 0, t0, Event::Sent { intended: t0 }))
        .expect("send");
    tx.send(sample(
        0,
        0,
        t0,
        Event::Reply {
            intended: t0,
            sent: t0,
        },
    ))
    .expect("send");
    drop(tx);
    let run = rec.finish().await.into_run_file(reports::RunMeta {
        target_url: "ws://x".into(),
        ..Default::default()
    });
    assert!(
        run.meta.started_at_unix_ms > 0 && run.meta.ended_at_unix_ms >= run.meta.started_at_unix_ms
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = crate::output::write_outputs(dir.path(), &run).expect("outputs");
    assert_eq!(reports::RunFile::read(&paths.results).expect("read"), run);
}

#[tokio::test]
async fn finish_waits_for_every_sender_and_drains_a_large_batch() {
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
    let t0 = now();
    let tx2 = tx.clone();
    let producer = tokio::spawn(async move {
        for i in 0..50_000u32 {
            tx2.send(sample(i, 0, t0, Event::Sent { intended: t0 }))
                .expect("send");
        }
    });
    for i in 0..50_000u32 {
        tx.send(sample(i, 0, t0, Event::Sent { intended: t0 }))
            .expect("send");
    }
    drop(tx);
    producer.await.expect("producer");
    let r = tokio::time::timeout(Duration::from_secs(30), rec.finish())
        .await
        .expect("finish in time");
    assert_eq!(r.run.echo.map(|e| e.sent), Some(100_000));
}

/// Processing rate of the recorder on one core, for docs/PERFORMANCE.md:
/// `cargo test -p harness --release --lib -- --ignored recorder_rate --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn recorder_rate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
        let t0 = now();
        let n = 1_000_000u32;
        for i in 0..n {
            let intended = t0 + Duration::from_micros(u64::from(i));
            let sent = intended + Duration::from_micros(3);
            tx.send(sample(i % 1000, 0, sent, Event::Sent { intended }))
                .expect("send");
            let at = sent + Duration::from_micros(50 + u64::from(i % 5000));
            tx.send(sample(i % 1000, 0, at, Event::Reply { intended, sent }))
                .expect("send");
        }
        drop(tx);
        let started = std::time::Instant::now();
        let r = rec.finish().await;
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(r.samples, 2 * u64::from(n));
        eprintln!(
            "recorder: {} samples in {secs:.3} s = {:.0} samples/s",
            r.samples,
            r.samples as f64 / secs
        );
    });
}

/// Issue 11, item 8: the sample channel is bounded. With the recorder task unable to run
/// (a current-thread runtime that the test does not yield), sends past the capacity are
/// dropped and counted, never queued without bound; the run file says so (swarm
/// saturated by `recorder`, `samples_dropped`). With room to spare nothing is dropped or
/// said.
#[tokio::test(flavor = "current_thread")]
async fn a_full_sample_channel_drops_and_counts() {
    for (capacity, kept) in [(8usize, 8u64), (64, 20)] {
        let (tx, rec) = spawn_with_capacity(config(&[("steady", "echo")]), None, capacity);
        let t0 = now();
        for c in 0..20u32 {
            tx.send(sample(c, 0, t0, Event::Sent { intended: t0 }))
                .expect("the recorder is running");
        }
        drop(tx);
        let r = rec.finish().await;
        assert_eq!(r.samples, kept, "capacity {capacity}");
        let sm = &r.health.summary;
        assert_eq!(sm.samples_dropped, 20 - kept);
        assert_eq!(sm.saturated, kept < 20);
        let by: Vec<String> = if kept < 20 {
            vec!["recorder".into()]
        } else {
            vec![]
        };
        assert_eq!(sm.saturated_by, by);
        assert_eq!(r.run.echo.map(|e| e.sent), Some(kept));
    }
}

/// Issue 11, item 2/6: a client whose task dies (panic caught, or forced drop at the end
/// bound) took its in-flight echo messages with it; they are written off as `unanswered`
/// in the phase of their sends, so `sent = received + timeouts + unanswered` holds.
#[tokio::test(flavor = "current_thread")]
async fn in_flight_sends_of_a_dead_client_are_written_off() {
    let (tx, rec) = spawn_with_health(config(&[("one", "echo"), ("two", "echo")]), None);
    let t0 = now();
    let send = |c: u32, phase: u16, event: Event| {
        tx.send(sample(c, phase, t0, event)).expect("send");
    };
    // Client 3: 5 sent in phase 0, 1 answered, 1 timed out; then it panics in phase 1.
    for _ in 0..5 {
        send(3, 0, Event::Sent { intended: t0 });
    }
    send(
        3,
        0,
        Event::Reply {
            intended: t0,
            sent: t0,
        },
    );
    send(
        3,
        0,
        Event::Timeout {
            intended: t0,
            sent: t0,
        },
    );
    send(
        3,
        1,
        Event::Error {
            error: ErrorKind::ClientPanic,
        },
    );
    // Client 4: 2 sent, both answered, then force-dropped: nothing to write off.
    for _ in 0..2 {
        send(4, 1, Event::Sent { intended: t0 });
        send(
            4,
            1,
            Event::Reply {
                intended: t0,
                sent: t0,
            },
        );
    }
    send(
        4,
        1,
        Event::Error {
            error: ErrorKind::ForcedDrop,
        },
    );
    // Client 5: 3 sent, then force-dropped with all 3 in flight.
    for _ in 0..3 {
        send(5, 1, Event::Sent { intended: t0 });
    }
    send(
        5,
        1,
        Event::Error {
            error: ErrorKind::ForcedDrop,
        },
    );
    drop(tx);
    let r = rec.finish().await;
    let one = r.phases[0].stats.echo.clone().expect("phase one echo");
    assert_eq!((one.sent, one.received, one.timeouts), (5, 1, 1));
    assert_eq!(one.unanswered_at_stop, 3, "client 3's three in flight");
    let two = r.phases[1].stats.echo.clone().expect("phase two echo");
    assert_eq!((two.sent, two.received, two.unanswered_at_stop), (5, 2, 3));
    let all = r.run.echo.clone().expect("run echo");
    assert_eq!(
        all.sent,
        all.received + all.timeouts + all.unanswered_at_stop
    );
    assert_eq!(r.run.errors.get("client_panic"), Some(&1));
    assert_eq!(r.run.errors.get("forced_drop"), Some(&2));
}

/// Issue 12: the swarm's own lateness is recorded per send (echo and publish): actual send
/// instant minus intended, per phase, for the run, and per second.
#[tokio::test(start_paused = true)]
async fn send_lag_is_recorded_per_send() {
    let (tx, rec) = spawn_with_health(config(&[("steady", "echo")]), None);
    let t0 = now();
    let us = Duration::from_micros;
    for (i, lag) in [100u64, 200, 300, 400].into_iter().enumerate() {
        let intended = t0 + Duration::from_millis(10 * i as u64);
        tx.send(sample(0, 0, intended + us(lag), Event::Sent { intended }))
            .expect("send");
    }
    let intended = t0 + Duration::from_millis(50);
    tx.send(sample(
        1,
        0,
        intended + us(5_000),
        Event::Published { intended },
    ))
    .expect("send");
    drop(tx);
    advance(Duration::from_millis(100)).await;
    let r = rec.finish().await;
    let lag = r.run.send_lag.clone().expect("run send lag");
    assert_eq!(lag.count, 5);
    assert!(near(lag.min_us, 100) && near(lag.max_us, 5_000), "{lag:?}");
    assert!(near(lag.p50_us, 300), "{lag:?}");
    let phase = r.phases[0].stats.send_lag.clone().expect("phase send lag");
    assert_eq!(phase.count, 5);
    let p = r.series.first().expect("a second");
    assert!(p.send_lag_max_us.is_some_and(|m| near(m, 5_000)), "{p:?}");
    assert!(p.send_lag_p99_us.is_some(), "{p:?}");
}
