//! The live outputs against a real Prometheus (Debian's `prometheus`, started by each test
//! on a free loopback port with a temp config and data dir, scrape interval 1 s):
//! (1) it scrapes `--metrics-addr` during a run, and its HTTP API returns the series with
//! the run's labels, final counters equal to results.json, and latency quantiles that are
//! results.json's per-second figures; (2) with `--web.enable-remote-write-receiver` it
//! receives the run's remote-write pushes and the same queries agree; (3) every panel of
//! deploy/grafana/swarm.json returns data for the run.
//! Prometheus missing: the test fails under CI (testkit::deps, missing_dependency).

mod live_support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use live_support::{Prometheus, assert_agrees, free_port, prometheus_ready, read_run, swarm};
use reports::RunFile;
use testkit::Target;

/// A broadcast phase, then an echo phase of the same clients (Socket.IO).
const PLAN: &str = r#"
[[phase]]
name = "fan"
scenario = "broadcast"
publishers = 2
subscribers = 10
rooms = 2
rate = "20/s"
connect-rate = "100/s"
duration = "2s"

[[phase]]
name = "echo"
scenario = "echo"
clients = 12
rate = "10/s"
duration = "2s"
"#;

/// A short echo run against `target` with `extra` options; its results.
fn echo_run(target: &Target, extra: &[String]) -> (RunFile, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<String> = [
        "echo",
        &format!("ws://{}/ws/echo", target.addr),
        "--clients",
        "20",
        "--ramp",
        "1s",
        "--rate",
        "10/s",
        "--duration",
        "3s",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().display().to_string());
    args.extend(extra.iter().cloned());
    let (out, _) = swarm(&args, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (read_run(dir.path()), stderr)
}

#[test]
fn prometheus_scrapes_the_metrics_endpoint() {
    if !prometheus_ready("prometheus_scrapes_the_metrics_endpoint") {
        return;
    }
    let target = Target::start(target_server::Config::default());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let p = Prometheus::start(Some(addr), false);
    // Prometheus applies discovered targets every 5 s: wait until it scrapes ours (down).
    p.wait_for_scrapes();
    let (run, _) = echo_run(
        &target,
        &[
            "--metrics-addr".into(),
            addr.to_string(),
            "--metrics-linger".into(),
            "3s".into(),
        ],
    );
    let live = run.live.as_ref().expect("live section");
    assert_eq!(
        live.metrics_addr.as_deref(),
        Some(addr.to_string().as_str())
    );
    assert_agrees(&p, &run);
    // Prometheus saw the target up during the run.
    let up = p.value("max_over_time(up{job=\"swarm\"}[10m])");
    assert_eq!(up, Some(1.0));
}

#[test]
fn prometheus_receives_remote_write() {
    if !prometheus_ready("prometheus_receives_remote_write") {
        return;
    }
    let target = Target::start(target_server::Config::default());
    let p = Prometheus::start(None, true);
    let url = format!("http://{}/api/v1/write", p.addr);
    let (run, _) = echo_run(&target, &["--prometheus-remote-write".into(), url.clone()]);
    let rw = run
        .live
        .as_ref()
        .and_then(|l| l.remote_write.as_ref())
        .expect("remote_write outcome");
    assert_eq!(rw.failures, 0, "{rw:?}\n{}", p.log());
    // One push per second of the run plus the final one.
    assert_eq!(rw.pushes, run.series.len() as u64 + 1, "{rw:?}");
    assert_eq!(rw.url, url);
    assert_agrees(&p, &run);
}

/// A receiver that is not there: every push fails, is counted, and the run still passes.
#[test]
fn failed_pushes_are_counted_not_fatal() {
    let target = Target::start(target_server::Config::default());
    let url = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let (run, _) = echo_run(&target, &["--prometheus-remote-write".into(), url]);
    let rw = run
        .live
        .as_ref()
        .and_then(|l| l.remote_write.as_ref())
        .unwrap();
    assert!(rw.pushes > 3, "{rw:?}");
    assert_eq!(rw.failures, rw.pushes, "{rw:?}");
    assert!(
        rw.last_error.as_deref().unwrap_or("").contains("connect"),
        "{rw:?}"
    );
    assert_eq!(run.meta.status, reports::RunStatus::Completed);
}

/// Every panel target of the Grafana dashboard, `$run_id` set to the run's id, returns
/// data over the run's time range.
#[test]
fn every_grafana_panel_returns_data() {
    if !prometheus_ready("every_grafana_panel_returns_data") {
        return;
    }
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/swarm.json"),
    )
    .expect("deploy/grafana/swarm.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let target = Target::start(target_server::Config::default());
    let p = Prometheus::start(None, true);
    let start = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let url = format!("http://{}/api/v1/write", p.addr);
    // Both latency panels need data: a broadcast phase, then an echo phase.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).expect("plan");
    let out_dir = dir.path().join("out");
    let args: Vec<String> = [
        "run",
        &plan.display().to_string(),
        "--url",
        &target.http_url(),
        "--quiet",
        "--out",
        &out_dir.display().to_string(),
        "--prometheus-remote-write",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (out, _) = swarm(&args, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = read_run(&out_dir);
    assert!(run.run.broadcast.is_some() && run.run.echo.is_some());
    let end = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.0;
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(
        vars.iter().any(|v| v["name"] == "run_id"),
        "no run_id variable"
    );
    let panels = dash["panels"].as_array().expect("panels");
    let mut checked = 0;
    for panel in panels {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            let q = expr
                .replace("$run_id", &run.meta.run_id)
                .replace("$__rate_interval", "5s");
            let r = p.query_range(&q, start, end);
            let has_data = r.iter().any(|s| {
                s["values"].as_array().into_iter().flatten().any(|v| {
                    v[1].as_str()
                        .and_then(|x| x.parse::<f64>().ok())
                        .is_some_and(|x| x.is_finite())
                })
            });
            assert!(
                has_data,
                "panel {:?}: `{q}` returned no data: {r:?}",
                panel["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} panel queries");
}
