//! Our server in a real headless Chromium (Debian's /usr/bin/chromium, driven by
//! playwright-core): the live status page `/` (`interop/status-page.mjs`) and the official
//! socket.io-client browser bundle (`interop/browser-sio-check.mjs`).
//!
//! Receives: `target_server::serve` on 127.0.0.1:0. Emits: assertions that the page loads with
//! no console errors or page errors, that the connection count it shows changes when a raw
//! WebSocket client connects to `/ws/echo` and comes back when it leaves; a screenshot of the
//! page with the client connected, kept in a temp dir whose path is printed; the browser's
//! XHR polling and native WebSocket carrying Socket.IO acks, ArrayBuffer binary and events.
//! Must not: download a browser, leave Chromium or Node running, write outside temp dirs.
//! Skipped, with a message, only when `node` is missing and `CI` is not set; a missing Chromium is a failure
//! (the README's test command installs it).

use std::time::Duration;

use target_server::Config;
use testkit::{CHROMIUM, Target, browser_ready, run_node_script_async};

/// The element of the status page that shows the total number of connections.
const COUNT_SELECTOR: &str = "#connections";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_counts_a_new_connection() {
    if !browser_ready("status_page_counts_a_new_connection", &["socket.io-client"]) {
        return;
    }
    let server = Target::start(Config::default());
    let shots = tempfile::Builder::new()
        .prefix("swarmbench-status-page-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let shot = shots.join("status-page.png");
    let url = format!("{}/", server.http_url());
    let run = run_node_script_async(
        "status-page.mjs",
        &[
            &url,
            "--count-selector",
            COUNT_SELECTOR,
            "--ws-path",
            "/ws/echo",
            "--screenshot",
            shot.to_str().expect("utf-8 temp path"),
            "--chromium",
            CHROMIUM,
        ],
        Duration::from_secs(120),
    )
    .await;

    let done = run
        .done()
        .unwrap_or_else(|| panic!("no final line\n{}", run.transcript()));
    assert_eq!(
        done["console_errors"],
        serde_json::json!([]),
        "console errors on the status page\n{}",
        run.transcript()
    );
    assert_eq!(
        done["failures"],
        serde_json::json!([]),
        "{}",
        run.transcript()
    );
    assert!(run.success(), "{}", run.transcript());

    let loaded = run.line("step", "loaded").expect("loaded line");
    assert_eq!(loaded["status"], 200, "{}", run.transcript());
    let connect = run.line("step", "count_after_connect").expect("count line");
    assert_ne!(connect["from"], connect["to"], "{}", run.transcript());
    let close = run.line("step", "count_after_close").expect("close line");
    assert_eq!(close["to"], connect["from"], "{}", run.transcript());

    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "not a PNG screenshot"
    );
    println!("status page screenshot: {}", shot.display());
}

/// The socket.io-client browser bundle, injected into our own page (same origin, so XHR
/// polling needs no CORS), on polling, websocket and polling -> websocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_socketio_client_round_trips() {
    if !browser_ready("browser_socketio_client_round_trips", &["socket.io-client"]) {
        return;
    }
    let server = Target::start(Config::default());
    let url = format!("{}/", server.http_url());
    let run = run_node_script_async(
        "browser-sio-check.mjs",
        &[&url, "--chromium", CHROMIUM],
        Duration::from_secs(120),
    )
    .await;
    for transport in ["polling", "websocket", "polling+websocket"] {
        let line = run
            .line("transport", transport)
            .unwrap_or_else(|| panic!("{transport} did not report\n{}", run.transcript()));
        assert_eq!(
            line["ok"],
            true,
            "{transport}: {line}\n{}",
            run.transcript()
        );
    }
    let done = run.done().expect("final line");
    assert_eq!(
        done["console_errors"],
        serde_json::json!([]),
        "{}",
        run.transcript()
    );
    assert!(run.success(), "{}", run.transcript());
}
