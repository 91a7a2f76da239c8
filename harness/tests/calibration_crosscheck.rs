//! Independent cross-check: with target-server `--delay 5ms`, the round trips the swarm
//! measures agree with those the official `socket.io-client` (Node, through
//! `benches/peers/node-sio-swarm.mjs`) measures against the same server under the same
//! load at the same time: within 20% or 200 µs at p50. The two clients share no code, so a
//! timing bug in either (clock, matching, a lost wake-up) shows as disagreement.
//! Skipped with a message only when `node` itself is missing and `CI` is not set.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{E2e, assert_echo_accounting};

/// Runs `benches/peers/node-sio-swarm.mjs` (the official socket.io-client of interop/) with
/// `args` and returns its JSON summary, its last stdout line (killed by PID after `limit`).
fn run_node_swarm(args: &[String], limit: Duration) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/node-sio-swarm.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script).args(args);
    let run = testkit::run_to_end(cmd, limit);
    assert!(
        run.status.is_some(),
        "node swarm did not finish within {limit:?}"
    );
    assert!(
        run.success(),
        "node swarm failed ({:?}): {}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    let line = run.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "node swarm printed no JSON ({e}): {}\n{}",
            run.stdout, run.stderr
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_and_official_client_agree_at_p50() {
    if !testkit::node_ready(
        "swarm_and_official_client_agree_at_p50",
        &["socket.io-client"],
    ) {
        return;
    }
    let e2e = E2e::start(target_server::Config {
        delay: Some(target_server::config::Delay {
            base: Duration::from_millis(5),
            jitter: Duration::ZERO,
        }),
        ..target_server::Config::default()
    });
    let url = format!("http://{}/", e2e.addr());
    // Same load from both, at the same time: 8 clients x 25/s x 4 s, 106-byte payloads.
    let node_args: Vec<String> = [
        url.as_str(),
        "--clients",
        "8",
        "--rate",
        "25",
        "--duration",
        "4",
        "--payload-size",
        "106",
        "--timeout",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let node =
        tokio::task::spawn_blocking(move || run_node_swarm(&node_args, Duration::from_secs(40)));
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "8",
            "--rate",
            "25/s",
            "--duration",
            "4s",
            "--ramp",
            "200ms",
        ])
        .await;
    let node = node.await.expect("node task");
    let echo = assert_echo_accounting(&f.run.run);
    assert_eq!(echo.timeouts, 0, "{echo:?}");
    assert!(echo.received >= 700, "{echo:?}");
    assert_eq!(node["connected"], 8, "{node}");
    assert!(node["acked"].as_u64().unwrap_or(0) >= 700, "{node}");
    assert_eq!(node["timeouts"], 0, "{node}");
    let node_p50 = node["p50_us"].as_f64().expect("node p50");
    let swarm_p50 = echo.service.p50_us as f64;
    assert!(
        node_p50 >= 5_000.0,
        "the official client saw less than the injected delay: {node}"
    );
    let allowed = (0.2 * node_p50).max(200.0);
    eprintln!(
        "p50: swarm service {swarm_p50} µs, socket.io-client {node_p50} µs (allowed {allowed} µs)"
    );
    assert!(
        (swarm_p50 - node_p50).abs() <= allowed,
        "swarm p50 {swarm_p50} µs vs socket.io-client p50 {node_p50} µs: more than {allowed} µs apart \
         (swarm latency p50 {} µs; node {node})",
        echo.latency.p50_us
    );
}
