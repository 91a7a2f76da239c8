//! The official Node peers against our server, and the Node reference servers themselves.
//!
//! Receives: `target_server::serve` on 127.0.0.1:0 and the scripts of `interop/` (socket.io-client
//! 4.8, express + socket.io 4.8, ws 8). Emits: pass/fail per check of
//! `interop/sio-client-check.mjs` (echo with ack incl. binary, join + broadcast, polling,
//! polling -> websocket upgrade, reconnect with connection state recovery, namespaces and
//! multiplexing, heartbeat on both transports, 200 back-to-back acks in order and a 600 KB
//! binary on each transport) and of `interop/raw-check.mjs` (`ws` and engine.io-client:
//! raw WebSocket echo, rooms, close codes; bare Engine.IO echo).
//! Must not: leave Node processes running (killed by PID on drop) or reach past 127.0.0.1.
//! Skipped, with a message, only when `node` is missing and `CI` is not set.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use target_server::Config;
use testkit::{Peer, ScriptRun, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_echo_rooms_polling_upgrade_namespaces() {
    if !node_ready("official_client_echo_rooms_polling_upgrade_namespaces") {
        return;
    }
    let server = Target::start(Config::default());
    let checks = ["echo", "rooms", "polling", "upgrade", "namespaces", "burst"];
    let run = run_node_script(
        "sio-client-check.mjs",
        &[&server.http_url(), "--checks", &checks.join(",")],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &checks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_recovers_missed_broadcast() {
    if !node_ready("official_client_recovers_missed_broadcast") {
        return;
    }
    let config = Config {
        recovery: Some(Duration::from_secs(60)),
        ..Config::default()
    };
    let server = Target::start(config);
    // With recovery on every event without an ack carries an offset: echo and rooms again.
    let checks = ["recovery", "echo", "rooms"];
    let run = run_node_script(
        "sio-client-check.mjs",
        &[&server.http_url(), "--checks", &checks.join(",")],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &checks);
    let recovery = run.line("check", "recovery").expect("recovery line");
    assert_eq!(
        recovery["away_recipients"], 0,
        "the broadcast was not sent while the client was away: {recovery}"
    );
}

/// With a short pingInterval, both transports answer several pings without being dropped,
/// and the first ping comes a pingInterval after the open packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_heartbeat() {
    if !node_ready("official_client_heartbeat") {
        return;
    }
    let config = Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = Target::start(config);
    let run = run_node_script(
        "sio-client-check.mjs",
        &[&server.http_url(), "--checks", "heartbeat"],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &["heartbeat"]);
    let line = run.line("check", "heartbeat").expect("heartbeat line");
    assert_eq!(line["ping_interval_ms"], 300, "{}", run.transcript());
}

/// `ws` 8 and the official engine.io-client 6.6 against `/ws/echo`, `/ws/room/{name}` and
/// `/engine.io/`: echo with opcodes kept, ping/pong, rooms with `?self=0`, close codes 1007
/// and 1009 (one byte over `max_message_size`), Engine.IO echo on every transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_engineio_clients() {
    if !node_ready("ws_and_engineio_clients") {
        return;
    }
    let config = Config {
        max_message_size: 1 << 20,
        ..Config::default()
    };
    let server = Target::start(config);
    let checks = ["ws-echo", "ws-rooms", "ws-close-codes", "eio-echo"];
    let run = run_node_script(
        "raw-check.mjs",
        &[
            &server.http_url(),
            "--checks",
            &checks.join(","),
            "--max-message-size",
            "1048576",
        ],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &checks);
}

/// The recovery check can fail: against a server with recovery off it must.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_check_fails_without_recovery() {
    if !node_ready("recovery_check_fails_without_recovery") {
        return;
    }
    let server = Target::start(Config::default());
    let run = run_node_script(
        "sio-client-check.mjs",
        &[&server.http_url(), "--checks", "recovery"],
        LIMIT,
    )
    .await;
    assert_eq!(
        run.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        run.transcript()
    );
    let line = run.line("check", "recovery").expect("recovery line");
    assert_eq!(line["ok"], false, "{}", run.transcript());
    assert!(
        line["error"].as_str().is_some_and(|e| e.contains("pid")),
        "{}",
        run.transcript()
    );
}

/// The checks themselves against the Node reference server (express + socket.io 4.8 with
/// recovery and short pings): the ground truth they encode is the reference's behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_reference_server_passes_every_check() {
    if !node_ready("node_reference_server_passes_every_check") {
        return;
    }
    let node = Peer::node(
        "sio-server.mjs",
        &[
            "--port",
            "0",
            "--recovery",
            "60000",
            "--ping-interval",
            "300",
            "--ping-timeout",
            "200",
        ],
    );
    let checks = [
        "burst",
        "echo",
        "rooms",
        "polling",
        "upgrade",
        "recovery",
        "namespaces",
        "heartbeat",
    ];
    let run = run_node_script(
        "sio-client-check.mjs",
        &[&node.http_url(), "--checks", &checks.join(",")],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &checks);

    // The classic tutorial page: HTML that loads the client the server ships.
    let page = http_get(node.port, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "GET / answered: {page}");
    assert!(
        page.contains("<script src=\"/socket.io/socket.io.js\">"),
        "{page}"
    );
    let client = http_get(node.port, "/socket.io/socket.io.js").await;
    assert!(
        client.starts_with("HTTP/1.1 200"),
        "client script: {}",
        &client[..client.len().min(200)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_server_returns_frames_unchanged() {
    if !node_ready("ws_echo_server_returns_frames_unchanged") {
        return;
    }
    let node = Peer::node("ws-echo-server.mjs", &["--port", "0"]);
    let (mut ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(node.ws_url()))
        .await
        .expect("connect in time")
        .expect("connect to ws-echo-server");
    let sent = [
        Message::text("hello ✓"),
        Message::binary(vec![0u8, 1, 2, 254, 255]),
        Message::text(""),
        Message::binary(vec![7u8; 70_000]),
    ];
    for msg in sent {
        ws.send(msg.clone()).await.expect("send");
        let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("echo in time")
            .expect("stream open")
            .expect("frame");
        assert_eq!(back, msg);
    }
    ws.close(None).await.expect("close");

    // The raw checks hold against `ws` itself (ground truth for the close codes).
    drop(node);
    let node = Peer::node(
        "ws-echo-server.mjs",
        &["--port", "0", "--max-payload", "1048576"],
    );
    let checks = ["ws-echo", "ws-close-codes"];
    let run = run_node_script(
        "raw-check.mjs",
        &[
            &node.http_url(),
            "--checks",
            &checks.join(","),
            "--max-message-size",
            "1048576",
        ],
        LIMIT,
    )
    .await;
    assert_checks_passed(&run, &checks);
}

/// A bare HTTP/1.1 GET on 127.0.0.1 with `Connection: close`; the whole response as text.
async fn http_get(port: u16, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut body))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8_lossy(&body).into_owned()
}

/// True when Node.js and the official client of interop/ are there (testkit's one rule for
/// a missing `node`: fails under `CI`, else skipped).
fn node_ready(test: &str) -> bool {
    testkit::node_ready(test, &["socket.io-client"])
}

/// `node interop/SCRIPT ARGS...` to its end within `limit` (killed by PID after it).
async fn run_node_script(script: &str, args: &[&str], limit: Duration) -> ScriptRun {
    testkit::run_node_script_async(script, args, limit).await
}

/// Asserts that a `sio-client-check.mjs` run passed exactly `checks`, each reported ok.
fn assert_checks_passed(run: &ScriptRun, checks: &[&str]) {
    for name in checks {
        let line = run
            .line("check", name)
            .unwrap_or_else(|| panic!("check {name} did not report\n{}", run.transcript()));
        assert_eq!(
            line["ok"],
            true,
            "check {name} failed: {}\n{}",
            line["error"],
            run.transcript()
        );
    }
    let done = run
        .done()
        .unwrap_or_else(|| panic!("no final line\n{}", run.transcript()));
    assert_eq!(done["passed"], checks.len(), "{}", run.transcript());
    assert_eq!(done["failed"], 0, "{}", run.transcript());
    assert!(run.success(), "{}", run.transcript());
}
