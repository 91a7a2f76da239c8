//! The swarm against real third-party servers: the classic express + socket.io 4.8 server
//! and a `ws` echo server from `interop/` (Node child processes on 127.0.0.1:0). Echo over
//! Socket.IO websocket, polling -> upgrade, a reply event, and raw WS, all with zero
//! timeouts. Skipped (with a message) only when `node` itself is missing and `CI` is not set.

mod common;

use common::{assert_echo_accounting, phase_count, plan_for, run};
use harness::run::Exit;
use testkit::Peer;

/// `node interop/SCRIPT --port 0`, ready on its `{"listening":PORT}` line.
fn start(script: &str) -> Peer {
    Peer::node(script, &["--port", "0"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_against_node_socketio_and_ws() {
    if !testkit::node_ready("echo_against_node_socketio_and_ws", &["socket.io", "ws"]) {
        return;
    }
    let sio = start("sio-server.mjs");
    let url = format!("http://127.0.0.1:{}/", sio.port);
    let dir = tempfile::tempdir().unwrap();
    for transport in ["websocket", "polling"] {
        let args = [
            "echo",
            &url,
            "--transport",
            transport,
            "--clients",
            "10",
            "--rate",
            "20/s",
            "--duration",
            "1s",
        ];
        let f = run(plan_for(&args, &dir.path().join(transport))).await;
        assert_eq!(f.exit, Exit::Ok, "{transport}");
        assert_eq!(f.run.run.connect.connected, 10, "{transport}");
        if transport == "polling" {
            assert_eq!(phase_count(&f.run.run, "upgrade"), 10);
        }
        let echo = assert_echo_accounting(&f.run.run);
        assert!(
            echo.sent >= 150 && echo.received == echo.sent && echo.timeouts == 0,
            "{transport}: {echo:?}"
        );
    }
    // Without an ack the Node server answers with an `echo` event carrying the payload.
    let args = [
        "echo",
        &url,
        "--reply-event",
        "echo",
        "--clients",
        "3",
        "--rate",
        "20/s",
        "--duration",
        "500ms",
    ];
    let f = run(plan_for(&args, &dir.path().join("reply"))).await;
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.received > 0 && echo.received == echo.sent, "{echo:?}");

    let ws = start("ws-echo-server.mjs");
    let url = format!("ws://127.0.0.1:{}/", ws.port);
    let f = run(plan_for(
        &[
            "echo",
            &url,
            "--clients",
            "10",
            "--rate",
            "20/s",
            "--duration",
            "1s",
        ],
        &dir.path().join("ws"),
    ))
    .await;
    assert_eq!(f.exit, Exit::Ok);
    let echo = assert_echo_accounting(&f.run.run);
    assert!(
        echo.sent >= 150 && echo.received == echo.sent && echo.timeouts == 0,
        "{echo:?}"
    );
}
