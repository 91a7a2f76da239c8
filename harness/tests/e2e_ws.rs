//! Raw WebSocket end to end against the reference server in-process: connect counts and
//! phases, echo round trips counted exactly, timeouts under injected loss, coordinated
//! omission with --max-in-flight.

mod common;

use std::time::Duration;

use common::{E2e, assert_echo_accounting, phase_count};
use harness::run::Exit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_connect_counts_and_phases() {
    let e2e = E2e::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let f = e2e
        .run(&[
            "connect",
            &url,
            "--clients",
            "8",
            "--connect-rate",
            "100/s",
            "--duration",
            "300ms",
        ])
        .await;
    assert_eq!(f.exit, Exit::Ok);
    let c = &f.run.run.connect;
    assert_eq!((c.attempted, c.connected, c.failed), (8, 8, 0));
    for phase in ["tcp", "ws_upgrade", "total"] {
        assert_eq!(phase_count(&f.run.run, phase), 8, "phase {phase}");
    }
    for phase in ["tls", "eio_open", "sio_connect", "upgrade"] {
        assert_eq!(
            phase_count(&f.run.run, phase),
            0,
            "phase {phase} must not exist on raw ws"
        );
    }
    assert_eq!(f.run.run.disconnects.get("client_close"), Some(&8));
    // The file on disk reads back equal.
    let back = reports::RunFile::read(e2e.dir().join("results.json")).unwrap();
    assert_eq!(back, f.run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_counts_every_round_trip() {
    let e2e = E2e::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "5",
            "--rate",
            "50/s",
            "--duration",
            "1s",
        ])
        .await;
    assert_eq!(f.exit, Exit::Ok);
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.sent >= 200, "5 clients x 50/s x 1 s: {echo:?}");
    assert_eq!(echo.timeouts, 0);
    assert_eq!(echo.received, echo.sent);
    assert_eq!(echo.latency.count, echo.received);
    assert_eq!(echo.service.count, echo.received);
    assert!(f.run.run.errors.is_empty(), "{:?}", f.run.run.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_under_loss_counts_timeouts_exactly() {
    let e2e = E2e::start(target_server::Config {
        drop_rate: 0.3,
        seed: 7,
        ..target_server::Config::default()
    });
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "4",
            "--rate",
            "40/s",
            "--duration",
            "1s",
            "--timeout",
            "200ms",
            "--grace",
            "50ms",
        ])
        .await;
    let echo = assert_echo_accounting(&f.run.run);
    assert!(
        echo.timeouts > 0,
        "30% loss must show as timeouts: {echo:?}"
    );
    assert!(echo.received > 0);
    assert!(
        echo.unanswered_at_stop > 0,
        "the last sends are still out after a 50 ms drain: {echo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_keeps_latency_from_the_intended_instant() {
    let delay = target_server::config::Delay {
        base: Duration::from_millis(40),
        jitter: Duration::ZERO,
    };
    let e2e = E2e::start(target_server::Config {
        delay: Some(delay),
        ..target_server::Config::default()
    });
    let url = format!("ws://{}/ws/echo", e2e.addr());
    // 100/s wanted, but at most one outstanding and each takes >= 40 ms: sends fall behind.
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "2",
            "--rate",
            "100/s",
            "--duration",
            "1s",
            "--max-in-flight",
            "1",
        ])
        .await;
    let echo = assert_echo_accounting(&f.run.run);
    assert!(
        echo.sent < 100,
        "a closed model cannot keep 100/s at 40 ms per round trip: {echo:?}"
    );
    assert!(echo.service.p50_us >= 40_000, "{:?}", echo.service);
    assert!(
        echo.latency.p50_us > 2 * echo.service.p50_us,
        "latency (from the intended instant) must show the wait: latency {:?} service {:?}",
        echo.latency,
        echo.service
    );
}
