//! Loss on the raw WebSocket path, exact against the server's own count: target-server
//! drops each echo reply with probability `drop_rate` (a seeded hash, counted in
//! `dropped_by_injection`); every reply that is not dropped arrives well inside the
//! timeout, so the swarm's missing replies (`timeouts + unanswered_at_stop`) must equal the
//! server's dropped count exactly, with nothing late.

mod common;

use common::{E2e, assert_echo_accounting};

async fn check(drop_rate: f64, seed: u64, clients: &str, rate: &str) {
    let e2e = E2e::start(target_server::Config {
        drop_rate,
        seed,
        ..target_server::Config::default()
    });
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            clients,
            "--rate",
            rate,
            "--duration",
            "2s",
            "--timeout",
            "1s",
            "--grace",
            "500ms",
        ])
        .await;
    let echo = assert_echo_accounting(&f.run.run);
    let dropped = e2e.server.dropped_by_injection();
    assert!(
        dropped > 0,
        "the server dropped nothing at p = {drop_rate}: {echo:?}"
    );
    assert_eq!(
        echo.late, 0,
        "no reply may arrive after its timeout: {echo:?}"
    );
    assert_eq!(
        echo.timeouts + echo.unanswered_at_stop,
        dropped,
        "swarm missing replies vs server dropped_by_injection: {echo:?}"
    );
    assert_eq!(echo.received + dropped, echo.sent, "{echo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_missing_replies_equal_server_drops_10pct() {
    check(0.1, 42, "5", "40/s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_missing_replies_equal_server_drops_50pct() {
    check(0.5, 7, "3", "60/s").await;
}
