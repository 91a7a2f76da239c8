//! The recorder's outputs: the `.hlog`, the health section, the run file, and `finish`.

use super::*;

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
            steal_percent: if s == 7 { 12.5 } else { 0.0 },
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
    // Steal is carried per second and at its highest, and is no saturation line.
    assert_eq!(r.health.series[7].steal_percent, 12.5);
    assert_eq!(r.health.series[6].steal_percent, 0.0);
    assert_eq!(r.health.summary.steal_percent_max, 12.5);
}

#[tokio::test(start_paused = true)]
async fn run_file_carries_meta_and_reads_back() {
    let (tx, rec) = spawn_with_health(config(&[("p", "echo")]), None);
    let t0 = now();
    tx.send(sample(0, 0, t0, Event::Sent { intended: t0 }))
        .expect("send");
    tx.send(sample(0, 0, t0, reply(t0))).expect("send");
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
