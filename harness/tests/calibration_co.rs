//! Coordinated omission, the wrk2 demonstration for realtime protocols.
//!
//! target-server `--stall 2s:500ms` pauses its application handlers for the last 500 ms of
//! every 2 s (heartbeats go on). Each client echoes at a constant 100/s for 10 s.
//! - Closed model (`--max-in-flight 1`): during a stall one message per client waits the
//!   whole stall while the ~49 sends the schedule intended behind it are held back. Their
//!   `latency` (from the intended instant) shows the stall: p99 >= 400 ms. `service` (from
//!   the actual send) sees only the one waiting message per stall (0.5% of samples), so its
//!   p99 is less than half of the latency p99: the number a closed-loop tool would report.
//! - Open model (no cap): sends go out on schedule during the stall, so both views show it.
//!
//! The run file keeps both, labelled, with the in-flight cap in the plan.

mod common;

use std::time::Duration;

use common::{E2e, assert_echo_accounting};

fn stalled() -> target_server::Config {
    target_server::Config {
        stall: Some(target_server::config::Stall {
            every: Duration::from_secs(2),
            for_: Duration::from_millis(500),
        }),
        ..target_server::Config::default()
    }
}

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "echo",
        url,
        "--clients",
        "4",
        "--rate",
        "100/s",
        "--duration",
        "10s",
        "--timeout",
        "3s",
        "--grace",
        "3s",
    ];
    a.extend_from_slice(extra);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_latency_shows_the_stall_service_hides_it() {
    let e2e = E2e::start(stalled());
    let url = format!("http://{}/", e2e.addr());
    let f = e2e.run(&args(&url, &["--max-in-flight", "1"])).await;
    let echo = assert_echo_accounting(&f.run.run);
    assert_eq!(echo.timeouts, 0, "{echo:?}");
    assert!(echo.received >= 3000, "4 clients x ~100/s x 10 s: {echo:?}");
    let (lat, svc) = (&echo.latency, &echo.service);
    assert!(
        lat.p99_us >= 400_000,
        "latency p99 {} µs must show the 500 ms stall",
        lat.p99_us
    );
    assert!(
        svc.p99_us * 2 < lat.p99_us,
        "service p99 {} µs must be under half the latency p99 {} µs",
        svc.p99_us,
        lat.p99_us
    );
    // Both views are in the results file, labelled, with the cap that produced them.
    assert_eq!(f.run.meta.plan[0].max_in_flight, Some(1));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e2e.dir().join("results.json")).unwrap()).unwrap();
    let e = &json["run"]["echo"];
    assert_eq!(e["latency"]["p99_us"], lat.p99_us, "{e}");
    assert_eq!(e["service"]["p99_us"], svc.p99_us, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_both_views_show_the_stall() {
    let e2e = E2e::start(stalled());
    let url = format!("http://{}/", e2e.addr());
    let f = e2e.run(&args(&url, &[])).await;
    let echo = assert_echo_accounting(&f.run.run);
    assert_eq!(echo.timeouts, 0, "{echo:?}");
    assert!(
        echo.sent >= 3900,
        "the open model keeps the schedule: {echo:?}"
    );
    assert!(echo.latency.p99_us >= 400_000, "latency {:?}", echo.latency);
    assert!(echo.service.p99_us >= 400_000, "service {:?}", echo.service);
    assert_eq!(f.run.meta.plan[0].max_in_flight, Some(0));
}
