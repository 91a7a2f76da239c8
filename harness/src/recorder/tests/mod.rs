//! Recorder tests: exact accounting, interval windows on a paused clock (here); the files
//! and sections the recorder writes (`files`); its limits and the issue 11/12 additions
//! (`limits`).

mod files;
mod limits;

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

/// An echo reply to a message meant and sent at `t`.
fn reply(t: std::time::Instant) -> Event {
    Event::Reply {
        intended: t,
        sent: t,
    }
}

/// A client-side error.
fn error(error: ErrorKind) -> Event {
    Event::Error { error }
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

/// One client of `accounting_is_exact`: connected, 10 sends (7 replies, 2 timeouts, 1 still
/// out at the stop) and one late reply.
fn echo_client(tx: &SampleTx, c: u32, t0: std::time::Instant) {
    let ms = |n: u64| Duration::from_millis(n);
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

#[tokio::test(start_paused = true)]
async fn accounting_is_exact() {
    let (tx, rec) = spawn_with_health(config(&[("steady", "echo")]), None);
    let t0 = now();
    let ms = |n: u64| Duration::from_millis(n);
    for c in 0..100u32 {
        echo_client(&tx, c, t0);
    }
    let failures = [
        Event::ConnectFailed {
            intended: t0,
            phases: ConnectPhases {
                tcp: Some(ms(1)),
                ..Default::default()
            },
            error: ErrorKind::HttpStatus(404),
        },
        error(ErrorKind::Unmatched),
        error(ErrorKind::Unmatched),
        Event::Disconnected {
            reason: DisconnectReason::WsClose { code: 1006 },
        },
    ];
    for ev in failures {
        tx.send(sample(0, 0, t0, ev)).expect("send");
    }
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
        tx.send(sample(c, 1, t0 + Duration::from_millis(1), reply(t0)))
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
    tx.send(sample(0, 0, at, reply(t0))).expect("send");
    tx.send(sample(0, 0, t0, reply(t0))).expect("send");
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

/// What a running search polls ([`Ask::Progress`]: counts, closed seconds, health seconds,
/// no histogram encoded) agrees with the whole records asked for at the same point
/// ([`Ask::Records`], built off the runtime: on a multi-thread runtime, as the swarm's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_agrees_with_the_records_so_far() {
    let (ck_tx, _ck_rx) = mpsc::channel(1);
    let (ask_tx, ask_rx) = mpsc::channel(1);
    let (tx, rec) = spawn_checkpointed(
        config(&[("warmup_01", "echo"), ("measure_01", "echo")]),
        Checkpoints {
            every: Duration::from_secs(3600),
            later: Duration::from_secs(3600),
            tx: ck_tx,
            on_demand: Some(ask_rx),
        },
    );
    let t0 = std::time::Instant::now();
    let ms = |n: u64| Duration::from_millis(n);
    for c in 0..5u32 {
        for (phase, k) in [(0u16, 0u64), (1, 1), (1, 2), (1, 3)] {
            let intended = t0 + ms(10 * k);
            tx.send(sample(c, phase, intended, Event::Sent { intended }))
                .expect("send");
            let ev = if k == 3 && c < 2 {
                Event::Timeout {
                    intended,
                    sent: intended,
                }
            } else {
                reply(intended)
            };
            tx.send(sample(c, phase, intended + ms(2), ev))
                .expect("send");
        }
        // One send of the measured phase still out.
        let intended = t0 + ms(40);
        tx.send(sample(c, 1, intended, Event::Sent { intended }))
            .expect("send");
    }
    // Past a second boundary and a health reading, so both lists have something.
    tokio::time::sleep(ms(1300)).await;
    let (ptx, prx) = tokio::sync::oneshot::channel();
    ask_tx.send(Ask::Progress(ptx)).await.expect("ask");
    let p = prx.await.expect("progress");
    let (rtx, rrx) = tokio::sync::oneshot::channel();
    ask_tx.send(Ask::Records(rtx)).await.expect("ask");
    let r = rrx.await.expect("records");
    assert_eq!(p.phases.len(), r.phases.len());
    for (pp, rp) in p.phases.iter().zip(&r.phases) {
        let e = rp.stats.echo.as_ref().expect("echo in both phases");
        assert!(pp.echo, "{}", rp.name);
        assert_eq!(
            (pp.sent, pp.received, pp.timeouts, pp.end_offset_ms),
            (e.sent, e.received, e.timeouts, rp.stats.end_offset_ms),
            "{}",
            rp.name
        );
    }
    assert_eq!((p.phases[1].sent, p.phases[1].received), (20, 13));
    assert_eq!(p.phases[1].timeouts, 2);
    assert!(!p.series.is_empty(), "a second closed");
    assert_eq!(p.series, r.series);
    let health: Vec<u64> = r.health.series.iter().map(|h| h.second).collect();
    assert!(!health.is_empty(), "a health reading came");
    assert_eq!(p.health_seconds, health);
    drop(tx);
    drop(ask_tx);
    let done = rec.finish().await;
    assert_eq!(done.phases[1].stats.echo.as_ref().map(|e| e.sent), Some(20));
}
