//! The swarm against real third-party servers: the classic express + socket.io 4.8 server
//! and a `ws` echo server from `interop/` (Node child processes on 127.0.0.1:0). Echo over
//! Socket.IO websocket, polling -> upgrade, a reply event, and raw WS, all with zero
//! timeouts. Skipped (with a message) only when `node` itself is missing and `CI` is not set.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{assert_echo_accounting, phase_count, plan_for, run};
use harness::run::Exit;

/// A Node peer, killed by its PID when dropped.
struct Peer {
    child: Child,
    port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start(script: &str) -> Peer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("interop");
    assert!(
        dir.join("node_modules").exists(),
        "run `npm ci` in interop/ (scripts/test.sh does)"
    );
    let mut child = Command::new("node")
        .arg(script)
        .args(["--port", "0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    // The first line is {"listening":PORT}; bounded by the peer's own start-up.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("node peer started within 20 s");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("a JSON line");
    let port = v["listening"].as_u64().expect("listening port") as u16;
    Peer { child, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_against_node_socketio_and_ws() {
    if !node_available() {
        common::missing_dependency(
            "echo_against_node_socketio_and_ws",
            "`node` is not on PATH (install Node.js 20, then run scripts/test.sh)",
        );
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
