//! Threshold grammar and evaluation tests.

use super::*;
use crate::fixture::example_run;

fn ok(expr: &str) -> Threshold {
    parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn bad(expr: &str) -> String {
    match parse(expr) {
        Ok(t) => panic!("{expr} should not parse: {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_the_design_examples() {
    let t = ok("echo.latency.p99 < 50ms");
    assert_eq!(t.path.phase, None);
    assert_eq!(t.path.scenario, "echo");
    assert_eq!(t.path.metric, "latency");
    assert_eq!(t.path.stat, Some(Stat::Percentile(99.0)));
    assert_eq!((t.op, t.value, t.unit), (Op::Lt, 50.0, Unit::Millis));

    let t = ok("connect.failed == 0");
    assert_eq!(
        (t.path.metric.as_str(), t.path.stat, t.op, t.unit),
        ("failed", None, Op::Eq, Unit::None)
    );

    let t = ok("echo.timeouts <= 0.1%");
    assert_eq!((t.value, t.unit), (0.1, Unit::Percent));

    let t = ok("steady.broadcast.reach >= 0.999");
    assert_eq!(t.path.phase.as_deref(), Some("steady"));
    assert_eq!(t.path.scenario, "broadcast");
    assert_eq!(t.path.direction, Direction::HigherIsBetter);
}

#[test]
fn operators_spacing_and_numbers() {
    for op in [Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne] {
        let sym = op.as_str();
        assert_eq!(ok(&format!("connect.failed{sym}3")).op, op);
        assert_eq!(ok(&format!("  connect.failed   {sym}   3  ")).op, op);
    }
    assert_eq!(ok("echo.sent >= 10_000").value, 10_000.0);
    assert_eq!(ok("echo.sent >= 1e4").value, 10_000.0);
    assert_eq!(ok("echo.latency.p99 < 1.5s").unit, Unit::Seconds);
    assert_eq!(ok("echo.latency.p99 < 900us").unit, Unit::Micros);
    assert_eq!(ok("echo.latency.p99 < 900µs").unit, Unit::Micros);
    assert_eq!(ok("echo.throughput >= 1000/s").unit, Unit::PerSecond);
    assert_eq!(
        ok("swarm.rss_bytes.max < 512MiB").unit,
        Unit::Bytes(1 << 20)
    );
}

#[test]
fn percentile_names() {
    assert_eq!(
        ok("echo.latency.p50 < 1ms").path.stat,
        Some(Stat::Percentile(50.0))
    );
    assert_eq!(
        ok("echo.latency.p999 < 1ms").path.stat,
        Some(Stat::Percentile(99.9))
    );
    assert_eq!(
        ok("echo.latency.p9999 < 1ms").path.stat,
        Some(Stat::Percentile(99.99))
    );
    assert_eq!(
        ok("echo.latency.p5 < 1ms").path.stat,
        Some(Stat::Percentile(5.0))
    );
    assert_eq!(
        ok("echo.latency.p100 < 1ms").path.stat,
        Some(Stat::Percentile(100.0))
    );
    assert_eq!(ok("echo.latency.max < 1ms").path.stat, Some(Stat::Max));
    assert_eq!(ok("echo.latency.count > 10").path.stat, Some(Stat::Count));
    assert_eq!(
        ok("echo.latency.p999 < 1ms").path.name(),
        "echo.latency.p999"
    );
    assert!(bad("echo.latency.p < 1ms").contains("unknown statistic `p`"));
    assert!(bad("echo.latency.p101x < 1ms").contains("unknown statistic"));
}

#[test]
fn phase_names_and_phases_named_like_scenarios() {
    let t = ok("ramp.connect.total.p99 < 2s");
    assert_eq!(t.path.phase.as_deref(), Some("ramp"));
    assert_eq!(t.path.name(), "ramp.connect.total.p99");
    // A phase called `connect` in front of a scenario.
    let t = ok("connect.echo.latency.p99 < 2s");
    assert_eq!(t.path.phase.as_deref(), Some("connect"));
    assert_eq!(t.path.scenario, "echo");
    // Keyed scenarios accept any key.
    assert_eq!(ok("errors.io == 0").path.metric, "io");
    assert_eq!(
        ok("steady.disconnects.ws_close_1006 == 0").path.metric,
        "ws_close_1006"
    );
}

#[test]
fn clear_errors() {
    let e = bad("echo.latency.p99 50ms");
    assert!(e.contains("no comparison operator"), "{e}");
    let e = bad("echo.latency.p99 = 50ms");
    assert!(e.contains("equality is `==`"), "{e}");
    let e = bad("echo.latnecy.p99 < 50ms");
    assert!(
        e.contains("unknown metric `latnecy`") && e.contains("latency, service"),
        "{e}"
    );
    let e = bad("foo.bar < 1");
    assert!(
        e.contains("unknown scenario `foo`") && e.contains("connect, echo"),
        "{e}"
    );
    let e = bad("echo.latency < 50ms");
    assert!(e.contains("add a statistic") && e.contains("p99"), "{e}");
    let e = bad("echo.latency.p99 < 50");
    assert!(e.contains("give the value a unit"), "{e}");
    let e = bad("echo.latency.p99 < 50 parsecs");
    assert!(e.contains("unknown unit `parsecs`"), "{e}");
    let e = bad("echo.latency.p99 < fast");
    assert!(e.contains("does not start with a number"), "{e}");
    let e = bad("connect.failed.p99 < 1");
    assert!(e.contains("takes no statistic"), "{e}");
    let e = bad("echo.sent < 5ms");
    assert!(e.contains("unit does not fit"), "{e}");
    let e = bad("connect.attempted < 5%");
    assert!(e.contains("no base"), "{e}");
    let e = bad("steady.swarm.cpu_percent.max < 90");
    assert!(e.contains("whole run"), "{e}");
    let e = bad("swarm.cpu_percent < 90");
    assert!(e.contains("needs a statistic (valid: max, mean)"), "{e}");
    let e = bad("echo..latency < 1ms");
    assert!(e.contains("segment ``"), "{e}");
    let e = bad("< 1ms");
    assert!(e.contains("no metric name"), "{e}");
    let e = bad("echo < 1");
    assert!(e.contains("at least `scenario.metric`"), "{e}");
    assert!(e.starts_with("invalid threshold `echo < 1`"), "{e}");
    let e = bad("echo.latency.p99.x.y < 1ms");
    assert!(e.contains("too many segments"), "{e}");
}

fn eval(expr: &str, run: &crate::RunFile) -> crate::ThresholdResult {
    ok(expr).evaluate(run)
}

#[test]
fn evaluates_against_a_run() {
    let run = example_run(100);
    let e = run.run.echo.as_ref().expect("echo");
    let p99_ms = e.latency.p99_us as f64 / 1000.0;

    let r = eval("echo.latency.p99 < 50ms", &run);
    assert!(r.pass, "{r:?}");
    assert_eq!(r.observed, Some(p99_ms));
    assert_eq!(r.unit, "ms");
    assert!(!eval("echo.latency.p99 < 1ms", &run).pass);
    assert!(eval(&format!("echo.latency.p99 == {}us", e.latency.p99_us), &run).pass);

    // connect.failed: the fixture has 2 failures.
    assert!(!eval("connect.failed == 0", &run).pass);
    assert_eq!(eval("connect.failed == 0", &run).observed, Some(2.0));
    assert!(eval("connect.failed <= 2", &run).pass);

    // 3 timeouts of 4000 sent = 0.075%.
    let r = eval("echo.timeouts <= 0.1%", &run);
    assert!(r.pass, "{r:?}");
    assert!((r.observed.expect("obs") - 0.075).abs() < 1e-9);
    assert!(!eval("echo.timeouts <= 0.05%", &run).pass);

    // Phase lookup: the ramp phase has no echo data.
    let r = eval("ramp.echo.latency.p99 < 1s", &run);
    assert!(!r.pass);
    assert_eq!(r.observed, None);
    assert!(
        r.note
            .as_deref()
            .unwrap_or("")
            .contains("phase `ramp` has no echo data"),
        "{r:?}"
    );
    let r = eval("nosuch.echo.sent > 0", &run);
    assert!(
        r.note
            .as_deref()
            .unwrap_or("")
            .contains("phases: ramp, steady"),
        "{r:?}"
    );
    assert!(eval("steady.echo.sent == 4000", &run).pass);

    // Throughput over the span: 3996 received in 4 s of the steady phase.
    let r = eval("steady.echo.throughput >= 999", &run);
    assert!(r.pass, "{r:?}");
    assert_eq!(r.observed, Some(999.0));

    // Keyed maps.
    assert!(eval("errors.unmatched == 1", &run).pass);
    assert!(eval("errors.io == 0", &run).pass);
    assert!(eval("errors.total == 1", &run).pass);
    assert!(eval("disconnects.failures == 1", &run).pass);
    assert!(eval("disconnects.total == 100", &run).pass);

    // Swarm health.
    assert!(eval("swarm.saturated == 0", &run).pass);
    assert!(eval("swarm.cpu_percent.max <= 45%", &run).pass);
    assert!(!eval("swarm.cpu_percent.max < 40", &run).pass);
    assert!(eval("swarm.sched_lag.max < 1ms", &run).pass);
    assert!(eval("swarm.rss_bytes.max < 30MB", &run).pass);

    // Sections that are absent fail with a note rather than pass.
    let r = eval("broadcast.reach >= 0.999", &run);
    assert!(!r.pass && r.note.is_some());
}

#[test]
fn reach_and_percent_of_ratio() {
    let mut run = example_run(10);
    run.run.broadcast = Some(crate::BroadcastStats {
        expected: 1000,
        delivered: 999,
        lost: 1,
        ..Default::default()
    });
    assert!(eval("broadcast.reach >= 0.999", &run).pass);
    assert!(!eval("broadcast.reach > 0.999", &run).pass);
    let r = eval("broadcast.reach >= 99.9%", &run);
    assert!(r.pass, "{r:?}");
    assert!(eval("broadcast.lost <= 0.1%", &run).pass);
}

#[test]
fn percentage_of_zero_is_a_failure_with_a_note() {
    let mut run = example_run(10);
    if let Some(e) = run.run.echo.as_mut() {
        e.sent = 0;
        e.timeouts = 0;
    }
    let r = eval("echo.timeouts <= 1%", &run);
    assert!(!r.pass);
    assert!(
        r.note.as_deref().unwrap_or("").contains("echo.sent is 0"),
        "{r:?}"
    );
}

#[test]
fn arbitrary_percentiles_decode_the_histogram() {
    let run = example_run(100);
    let r = eval("echo.latency.p95 < 10s", &run);
    let obs = r.observed.expect("p95 observed");
    assert!(obs > 0.0 && obs < 10.0, "{obs}");
    let mut broken = run.clone();
    if let Some(e) = broken.run.echo.as_mut() {
        e.latency.hdr_v2_deflate_base64 = "%%%".into();
    }
    let r = eval("echo.latency.p95 < 10s", &broken);
    assert!(
        !r.pass && r.note.as_deref().unwrap_or("").contains("base64"),
        "{r:?}"
    );
}

#[test]
fn evaluate_many_keeps_order() {
    let run = example_run(10);
    let ts: Vec<Threshold> = ["connect.failed == 0", "echo.sent > 0"]
        .iter()
        .map(|e| ok(e))
        .collect();
    let rs = evaluate(&ts, &run);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].expr, "connect.failed == 0");
    assert!(!rs[0].pass && rs[1].pass);
}

/// Issue 12: `swarm.send_lag` reads the span's send-lag distribution, for the run or a
/// phase; a run without it fails with a note rather than passing.
#[test]
fn send_lag_thresholds_read_the_span() {
    let mut run = example_run(10);
    let mut h = crate::distribution::new_histogram();
    for us in [100u64, 200, 300, 400, 5_000] {
        h.record(us).expect("in range");
    }
    let lag = crate::Distribution::from_histogram(&h, 0).expect("encodes");
    run.run.send_lag = Some(lag.clone());
    assert!(eval("swarm.send_lag.p50 < 1ms", &run).pass);
    assert!(!eval("swarm.send_lag.max < 1ms", &run).pass);
    let name = run.phases[0].name.clone();
    let r = eval(&format!("{name}.swarm.send_lag.p99 < 1ms"), &run);
    assert!(
        !r.pass && r.note.is_some(),
        "the phase has no send lag: {r:?}"
    );
    run.phases[0].stats.send_lag = Some(lag);
    let r = eval(&format!("{name}.swarm.send_lag.p50 < 1ms"), &run);
    assert!(r.pass, "{r:?}");
    assert!(bad("steady.swarm.cpu_percent.max < 90").contains("except send_lag"));
}
