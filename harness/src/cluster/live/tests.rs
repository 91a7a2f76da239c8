use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use super::*;
use crate::cluster::wire::{self, ToCoordinator};
use crate::recorder::HlogWriter;

fn hist(seed: u64, n: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    h.auto(true);
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    for _ in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        h.record(1 + (x >> 33) % 400_000).unwrap();
    }
    h
}

/// Worker `w`'s second `s`: a few counters and echo/send-lag histograms.
fn second(w: u64, s: u64) -> LiveSecond {
    let echo = hist(w * 1000 + s, 50 + 37 * w + s);
    let lag = hist(w * 77 + s, 20);
    let mut intervals = BTreeMap::new();
    intervals.insert("echo.latency", echo.clone());
    intervals.insert("swarm.send_lag", lag);
    LiveSecond {
        point: reports::SecondPoint {
            second: s,
            sent: 10 + w,
            received: 9 + w,
            connected: 5,
            latency_p99_us: Some(echo.value_at_percentile(99.0)),
            ..Default::default()
        },
        windows: Windows {
            intervals,
            ..Default::default()
        },
        totals: Totals {
            sent: (10 + w) * (s + 1),
            received: (9 + w) * (s + 1),
            connected: 5,
            ..Default::default()
        },
        errors_by_kind: [("timeout".to_string(), s)].into_iter().collect(),
        ..Default::default()
    }
}

/// Each second's merged latency and send-lag percentiles are those the merged results file
/// gets from the workers' interval logs (reports::intervals); the counters add up.
#[test]
fn merged_seconds_equal_the_merged_interval_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut m = Merger::new(2, tx);
    let base = SystemTime::now();
    let mut logs = Vec::new();
    for w in 0..2u64 {
        let path = dir.path().join(format!("w{w}.hlog"));
        let mut log = HlogWriter::create(&path, base).unwrap();
        for s in 0..4u64 {
            let sec = second(w, s);
            for (tag, h) in &sec.windows.intervals {
                log.write(tag, h, Duration::from_secs(s), Duration::from_secs(1))
                    .unwrap();
            }
            m.add(w as u32, WireSecond::of(&sec)).unwrap();
        }
        log.flush().unwrap();
        logs.push((
            format!("worker {w}"),
            std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
        ));
    }
    let running: BTreeSet<u32> = [0, 1].into_iter().collect();
    m.export_due(&running, Instant::now());
    let m = m.finish();
    assert_eq!((m.exported, m.missing, m.late, m.refused), (4, 0, 0, 0));
    let merged = reports::intervals::merge_logs(logs).unwrap();
    let mut got = Vec::new();
    while let Ok(s) = rx.try_recv() {
        got.push(s);
    }
    assert_eq!(got.len(), 4);
    for (s, sec) in got.iter().enumerate() {
        let s = s as u64;
        assert_eq!(sec.point.second, s);
        let echo = &merged.by_second[&(s, "echo.latency".to_string())];
        let lag = &merged.by_second[&(s, "swarm.send_lag".to_string())];
        assert_eq!(
            sec.point.latency_p99_us,
            Some(echo.value_at_percentile(99.0))
        );
        assert_eq!(
            sec.point.latency_p50_us,
            Some(echo.value_at_percentile(50.0))
        );
        assert_eq!(sec.point.latency_max_us, Some(echo.max()));
        assert_eq!(
            sec.point.send_lag_p99_us,
            Some(lag.value_at_percentile(99.0))
        );
        let w = sec.windows.echo.expect("echo window");
        assert_eq!(w.p99_us, echo.value_at_percentile(99.0));
        assert_eq!(w.count, echo.len());
        // Counters: the two workers' sums.
        assert_eq!(sec.point.sent, 10 + 11);
        assert_eq!(sec.totals.sent, 21 * (s + 1));
        assert_eq!(sec.totals.connected, 10);
        assert_eq!(sec.errors_by_kind["timeout"], 2 * s);
    }
}

/// A worker that has not sent a second is waited for until the grace, then counted
/// missing; its later second is late, and its counters reach the next exported second.
#[test]
fn a_late_worker_is_waited_for_then_counted() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut m = Merger::with_grace(2, tx, Duration::from_millis(50));
    let running: BTreeSet<u32> = [0, 1].into_iter().collect();
    m.add(0, WireSecond::of(&second(0, 0))).unwrap();
    m.export_due(&running, Instant::now());
    assert!(rx.try_recv().is_err(), "second 0 waits for worker 1");
    m.export_due(&running, Instant::now() + Duration::from_millis(60));
    let s0 = rx.try_recv().expect("exported after the grace");
    assert_eq!((s0.point.second, s0.point.sent, m.missing), (0, 10, 1));
    // Worker 1's second 0 comes late; its second 1 with worker 0's completes second 1.
    m.add(1, WireSecond::of(&second(1, 0))).unwrap();
    assert_eq!(m.late, 1);
    m.add(1, WireSecond::of(&second(1, 1))).unwrap();
    m.add(0, WireSecond::of(&second(0, 1))).unwrap();
    m.export_due(&running, Instant::now());
    let s1 = rx.try_recv().expect("second 1 complete");
    assert_eq!(s1.point.second, 1);
    assert_eq!(s1.totals.sent, 10 * 2 + 11 * 2);
    // A worker no longer running is not waited for.
    m.add(0, WireSecond::of(&second(0, 2))).unwrap();
    let only0: BTreeSet<u32> = [0].into_iter().collect();
    m.export_due(&only0, Instant::now());
    assert_eq!(rx.try_recv().expect("second 2").point.second, 2);
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Hostile seconds from a worker (or anyone with the token) are refused and counted,
/// never a panic, and leave the merge working.
#[tokio::test]
async fn hostile_interval_histograms_are_refused_without_a_panic() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut m = Merger::new(2, tx);
    let good = WireSecond::of(&second(0, 0));
    let with = |tag: &str, text: String| {
        let mut w = good.clone();
        w.intervals.insert(tag.to_string(), text);
        w
    };
    // A V2 header that declares a range needing far too many counts.
    let mut huge_range = Vec::new();
    huge_range.extend_from_slice(&reports::hdr::V2_COOKIE.to_be_bytes());
    huge_range.extend_from_slice(&8u32.to_be_bytes()); // payload length
    huge_range.extend_from_slice(&0u32.to_be_bytes()); // normalizing offset
    huge_range.extend_from_slice(&5u32.to_be_bytes()); // digits
    huge_range.extend_from_slice(&1u64.to_be_bytes()); // lowest
    huge_range.extend_from_slice(&u64::MAX.to_be_bytes()); // highest
    huge_range.extend_from_slice(&1f64.to_bits().to_be_bytes());
    huge_range.extend_from_slice(&[0u8; 8]);
    // A deflate cookie whose body does not inflate.
    let mut bad_deflate = reports::hdr::V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
    bad_deflate.extend_from_slice(&100u32.to_be_bytes());
    bad_deflate.extend_from_slice(&[0xff; 100]);
    let mut too_many = good.clone();
    for i in 0..5 {
        too_many.intervals.insert(format!("t{i}"), String::new());
    }
    let mut big_count = good.clone();
    big_count.totals.sent = u64::MAX;
    let mut big_point = good.clone();
    big_point.point.received = u64::MAX;
    let mut far = good.clone();
    far.point.second = u64::MAX;
    let mut kinds = good.clone();
    for i in 0..1000 {
        kinds.errors_by_kind.insert(format!("k{i}"), 1);
    }
    let mut long_kind = good.clone();
    long_kind
        .disconnects_by_reason
        .insert("x".repeat(10_000), 1);
    let hostile = [
        ("not base64", with("echo.latency", "%%%".into())),
        (
            "oversized",
            with("echo.latency", "A".repeat(MAX_HISTOGRAM_B64 + 4)),
        ),
        ("empty", with("echo.latency", String::new())),
        (
            "bad cookie",
            with("echo.latency", b64(&[1, 2, 3, 4, 5, 6, 7, 8])),
        ),
        ("huge range", with("echo.latency", b64(&huge_range))),
        ("bad deflate", with("echo.latency", b64(&bad_deflate))),
        ("unknown tag", with("cpu.secrets", b64(&[0; 8]))),
        ("too many", too_many),
        ("big total", big_count),
        ("big point", big_point),
        ("far second", far),
        ("many kinds", kinds),
        ("long kind", long_kind),
    ];
    let n = hostile.len() as u64;
    for (what, w) in hostile {
        assert!(m.add(0, w).is_err(), "{what} was accepted");
    }
    assert!(m.add(7, good.clone()).is_err(), "no worker 7");
    m.add(0, good.clone()).unwrap();
    assert!(m.add(0, good.clone()).is_err(), "sent twice");
    assert_eq!(m.refused, n + 2);
    // The merge still works: the good second goes out once worker 1's comes.
    m.add(1, WireSecond::of(&second(1, 0))).unwrap();
    m.export_due(&[0, 1].into_iter().collect(), Instant::now());
    let s = rx.try_recv().expect("the good second");
    assert_eq!(s.point.sent, 21);

    // Off the wire: a frame above the limit is refused before it is read; a second whose
    // fields have the wrong types is malformed.
    let huge = ((wire::MAX_MESSAGE + 1) as u32).to_be_bytes();
    assert!(matches!(
        wire::read::<ToCoordinator, _>(&mut huge.as_slice()).await,
        Err(wire::WireError::TooLarge(_))
    ));
    let body = br#"{"type":"second","second":{"point":{"second":-1},"totals":7}}"#;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    assert!(matches!(
        wire::read::<ToCoordinator, _>(&mut frame.as_slice()).await,
        Err(wire::WireError::Malformed(_))
    ));
    // A well-formed second round-trips the wire.
    let mut buf = Vec::new();
    wire::write(
        &mut buf,
        &ToCoordinator::Second {
            second: Box::new(good.clone()),
        },
    )
    .await
    .unwrap();
    match wire::read::<ToCoordinator, _>(&mut buf.as_slice()).await {
        Ok(ToCoordinator::Second { second }) => assert_eq!(*second, good),
        other => panic!("{other:?}"),
    }
}
