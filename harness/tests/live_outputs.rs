//! The live outputs without Prometheus: the NDJSON stream (one valid JSON line per second,
//! each equal to results.json's series point of that second, totals equal to the run
//! file's; `ndjson=-` on stdout), the JUnit file (valid XML, one test case per threshold,
//! failures as in results.json), the OpenMetrics endpoint's text while a run goes on, and
//! `--abort-on-fail` stopping a 60 s run against a server that delays every reply by
//! 200 ms within the abort delay plus one interval, exit 1, results saying why.

mod live_support;

use std::time::Duration;

use live_support::{free_port, http_get, read_run, strings, swarm};
use testkit::Target;

fn echo_args(target: &Target, secs: &str, out: &std::path::Path) -> Vec<String> {
    strings(&[
        "echo",
        &format!("ws://{}/ws/echo", target.addr),
        "--clients",
        "10",
        "--ramp",
        "1s",
        "--rate",
        "10/s",
        "--duration",
        secs,
        "--quiet",
        "--out",
        &out.display().to_string(),
    ])
}

#[test]
fn ndjson_stream_is_one_line_per_second_equal_to_the_series() {
    let target = Target::start(target_server::Config::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stream = dir.path().join("live.ndjson");
    let mut args = echo_args(&target, "3s", &out);
    args.extend(strings(&["--out", &format!("ndjson={}", stream.display())]));
    let (o, _) = swarm(&args, Duration::from_secs(60));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = read_run(&out);
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), run.series.len(), "one line per second");
    assert!(lines.len() >= 4);
    for (line, point) in lines.iter().zip(&run.series) {
        // Every field of the series point, the latency percentiles included, is in the
        // line with the same value.
        let point = serde_json::to_value(point).unwrap();
        for (k, v) in point.as_object().unwrap() {
            assert_eq!(&line[k], v, "second {}: field {k}", point["second"]);
        }
        assert_eq!(line["phase"], "echo");
        if let Some(p99) = point["latency_p99_us"].as_u64() {
            assert_eq!(line["echo_latency_us"]["p99_us"].as_u64(), Some(p99));
        }
    }
    let last = &lines[lines.len() - 1]["totals"];
    let echo = run.run.echo.as_ref().unwrap();
    assert_eq!(last["sent"].as_u64(), Some(echo.sent));
    assert_eq!(last["received"].as_u64(), Some(echo.received));
    assert_eq!(last["timeouts"].as_u64(), Some(echo.timeouts));
    assert_eq!(last["connected"].as_u64(), Some(run.run.connect.connected));
    let per_second: u64 = lines.iter().map(|l| l["sent"].as_u64().unwrap()).sum();
    assert_eq!(per_second, echo.sent, "the seconds add up to the run");
    assert_eq!(
        run.live.as_ref().unwrap().ndjson_lines,
        Some(lines.len() as u64)
    );

    // `ndjson=-`: the lines on stdout, the summary on stderr.
    let out2 = dir.path().join("out2");
    let mut args = echo_args(&target, "1s", &out2);
    args.extend(strings(&["--out", "ndjson=-"]));
    let (o, _) = swarm(&args, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let mut n = 0;
    for l in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("only JSON on stdout");
        n += 1;
    }
    assert_eq!(n, read_run(&out2).series.len());
}

#[test]
fn junit_has_one_case_per_threshold_and_the_failures() {
    let target = Target::start(target_server::Config::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let junit = dir.path().join("junit.xml");
    let mut args = echo_args(&target, "1s", &out);
    let rules = [
        "connect.failed == 0",
        "echo.latency.p99 < 1us",
        "echo.latency.p99 < 1us or connect.failed == 0",
        "echo.received > 0 and echo.latency.max < 1us",
    ];
    for r in rules {
        args.extend(strings(&["--threshold", r]));
    }
    args.extend(strings(&["--out", &format!("junit={}", junit.display())]));
    let (o, _) = swarm(&args, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "a threshold failed");
    let run = read_run(&out);
    let failed_in_run: Vec<&str> = run
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    assert_eq!(failed_in_run, [rules[1], rules[3]]);

    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut cases: Vec<(String, bool)> = Vec::new();
    let mut suites = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                match e.name().as_ref() {
                    b"testsuite" => suites += 1,
                    b"testcase" => {
                        let name = e
                            .try_get_attribute("name")
                            .unwrap()
                            .expect("name")
                            .unescape_value()
                            .unwrap()
                            .into_owned();
                        cases.push((name, false));
                    }
                    b"failure" => cases.last_mut().expect("failure inside a case").1 = true,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => panic!("invalid XML at {}: {e}\n{xml}", reader.buffer_position()),
        }
    }
    assert_eq!(suites, 1);
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, rules);
    let failed: Vec<&str> = cases.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();
    assert_eq!(failed, failed_in_run);
}

/// While the run goes on, `/metrics` serves OpenMetrics text with the run's labels.
#[test]
fn metrics_endpoint_serves_openmetrics_during_the_run() {
    let target = Target::start(target_server::Config::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let port = free_port();
    let mut args = echo_args(&target, "3s", &out);
    args.extend(strings(&[
        "--metrics-addr",
        &port.to_string(),
        "--metrics-linger",
        "0s",
    ]));
    let runner = std::thread::spawn(move || swarm(&args, Duration::from_secs(60)));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut seen = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline && !runner.is_finished() {
        if let Some((200, body)) = http_get(addr, "/metrics") {
            let text = String::from_utf8_lossy(&body).into_owned();
            if text.contains("swarm_messages_sent_total{") {
                seen = Some(text);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(http_get(addr, "/nope").map(|r| r.0), Some(404));
    let (o, _) = runner.join().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = seen.expect("a scrape during the run");
    let run = read_run(&out);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE swarm_echo_latency_seconds summary"),
        "{text}"
    );
    assert!(
        text.contains(&format!("run_id=\"{}\"", run.meta.run_id)),
        "{text}"
    );
    assert!(text.contains("scenario=\"echo\""), "{text}");
    assert!(
        text.contains(&format!("target=\"{}\"", run.meta.target_url)),
        "{text}"
    );
    // The endpoint is gone once the run (with no linger) is.
    assert!(http_get(addr, "/metrics").is_none());
}

#[test]
fn abort_on_fail_stops_a_failing_run_early() {
    let target = Target::start(target_server::Config {
        delay: Some(target_server::config::Delay {
            base: Duration::from_millis(200),
            jitter: Duration::ZERO,
        }),
        ..target_server::Config::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = echo_args(&target, "60s", &out);
    args.extend(strings(&[
        "--threshold",
        "echo.latency.p99 < 50ms",
        "--abort-on-fail",
        "--abort-delay",
        "2s",
    ]));
    let (o, took) = swarm(&args, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let run = read_run(&out);
    assert_eq!(run.meta.status, reports::RunStatus::Aborted, "{stderr}");
    assert!(!run.meta.interrupted);
    let abort = run
        .live
        .as_ref()
        .and_then(|l| l.abort.as_ref())
        .expect("abort");
    assert_eq!(abort.threshold, "echo.latency.p99 < 50ms");
    assert_eq!(abort.delay_ms, 2000);
    // Stopped at the end of the second in which the failure had lasted the delay: within
    // the abort delay plus one interval of its first failing second.
    let failing_for = abort.stopped_at_s - abort.failing_since_s;
    assert!((2..=3).contains(&failing_for), "{abort:?}");
    // The replies started to arrive in the first seconds, so the failure did too.
    assert!(abort.failing_since_s <= 2, "{abort:?}");
    // Nothing recorded after the stop but the drain of the messages in flight (200 ms).
    let last = run.series.last().map_or(0, |p| p.second);
    assert!(
        last <= abort.stopped_at_s + 1,
        "last second {last}, {abort:?}"
    );
    assert!(took < Duration::from_secs(15), "a 60 s run took {took:?}");
    let why = run.meta.status_detail.clone().unwrap_or_default();
    assert!(why.contains("echo.latency.p99 < 50ms"), "{why}");
    assert!(run.thresholds.iter().any(|t| !t.pass));
}
