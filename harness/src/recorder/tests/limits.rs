//! The recorder under load and at its limits: its processing rate, a full sample channel,
//! dead clients' in-flight sends, send lag.

use super::*;

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
    send(3, 0, reply(t0));
    send(
        3,
        0,
        Event::Timeout {
            intended: t0,
            sent: t0,
        },
    );
    send(3, 1, error(ErrorKind::ClientPanic));
    // Client 4: 2 sent, both answered, then force-dropped: nothing to write off.
    for _ in 0..2 {
        send(4, 1, Event::Sent { intended: t0 });
        send(4, 1, reply(t0));
    }
    send(4, 1, error(ErrorKind::ForcedDrop));
    // Client 5: 3 sent, then force-dropped with all 3 in flight.
    for _ in 0..3 {
        send(5, 1, Event::Sent { intended: t0 });
    }
    send(5, 1, error(ErrorKind::ForcedDrop));
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
