//! `swarm ... --parser msgpack` against the real thing: a socket.io 4.8 server using the npm
//! `socket.io-msgpack-parser` (`interop/sio-msgpack-server.mjs`, a Node child process on
//! 127.0.0.1:0), driven through the `swarm` binary as a user runs it. Echo with acks over
//! websocket and over polling -> upgrade, echo answered by an event, all with every message
//! answered; rooms with exact delivery counts; the default JSON parser against that server
//! failing cleanly (exit 3, no panic); and `--parser msgpack` usage errors. Skipped (with a
//! message) only when `node` itself is missing and `CI` is not set.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use testkit::Peer;

/// Node.js and the msgpack parser of interop/ are there (testkit's one rule: a missing
/// `node` fails under `CI`, else the test is skipped; missing packages fail).
fn node_ready(test: &str) -> bool {
    testkit::node_ready(test, &["socket.io", "socket.io-msgpack-parser"])
}

/// `node interop/SCRIPT --port 0`, ready on its `{"listening":PORT}` line.
fn start(script: &str) -> Peer {
    Peer::node(script, &["--port", "0"])
}

/// Runs the swarm binary (bounded to 60 s) with `--json --out <out>`.
fn swarm(args: &[&str], out: &Path) -> Output {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .args(["--json", "--quiet", "--out"])
        .arg(out)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run swarm")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs an echo, checks it succeeded, and returns the echo counters of `results.json`.
fn echo_ok(args: &[&str], out: &Path, clients: u64) -> reports::EchoStats {
    let o = swarm(args, out);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("--json prints one JSON document");
    assert_eq!(summary["status"], "completed", "{summary}");
    let run = reports::RunFile::read(out.join("results.json")).expect("results.json");
    assert_eq!(run.run.connect.connected, clients, "{args:?}");
    assert_eq!(run.run.connect.failed, 0, "{args:?}");
    assert!(run.run.errors.is_empty(), "{args:?}: {:?}", run.run.errors);
    let echo = run.run.echo.expect("echo stats");
    assert!(
        echo.sent > 0
            && echo.received == echo.sent
            && echo.timeouts == 0
            && echo.late == 0
            && echo.unanswered_at_stop == 0,
        "{args:?}: {echo:?}"
    );
    echo
}

#[test]
fn echo_against_node_socketio_with_the_msgpack_parser() {
    if !node_ready("echo_against_node_socketio_with_the_msgpack_parser") {
        return;
    }
    let peer = start("sio-msgpack-server.mjs");
    let url = format!("http://127.0.0.1:{}", peer.port);
    let dir = tempfile::tempdir().unwrap();

    // Acked echo over websocket: 5 clients x 10/s x 2 s.
    let echo = echo_ok(
        &[
            "echo",
            &url,
            "--parser",
            "msgpack",
            "--clients",
            "5",
            "--rate",
            "10/s",
            "--duration",
            "2s",
        ],
        &dir.path().join("websocket"),
        5,
    );
    assert!(echo.sent >= 50, "{echo:?}");

    // Polling handshake, CONNECT as `b<base64>` in a POST, then the upgrade.
    echo_ok(
        &[
            "echo",
            &url,
            "--parser",
            "msgpack",
            "--transport",
            "polling",
            "--clients",
            "3",
            "--rate",
            "10/s",
            "--duration",
            "1s",
        ],
        &dir.path().join("polling"),
        3,
    );

    // No ack: the server emits `echo` back with the payload (decoded from msgpack, found
    // in the event's arguments).
    echo_ok(
        &[
            "echo",
            &url,
            "--parser",
            "msgpack",
            "--reply-event",
            "echo",
            "--clients",
            "3",
            "--rate",
            "10/s",
            "--duration",
            "1s",
        ],
        &dir.path().join("reply"),
        3,
    );
}

/// Rooms over msgpack: joins acked (ack ids above 2^31), publishes and deliveries decoded
/// from msgpack events, every expected delivery counted.
#[test]
fn broadcast_against_node_socketio_with_the_msgpack_parser() {
    if !node_ready("broadcast_against_node_socketio_with_the_msgpack_parser") {
        return;
    }
    let peer = start("sio-msgpack-server.mjs");
    let url = format!("http://127.0.0.1:{}", peer.port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("broadcast");
    let args = [
        "broadcast",
        &url,
        "--parser",
        "msgpack",
        "--subscribers",
        "6",
        "--rooms",
        "2",
        "--publishers",
        "2",
        "--rate",
        "10/s",
        "--duration",
        "1s",
    ];
    let o = swarm(&args, &out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run = reports::RunFile::read(out.join("results.json")).expect("results.json");
    assert_eq!(run.run.connect.connected, 8);
    let b = run.run.broadcast.expect("broadcast stats");
    assert!(
        b.published > 0
            && b.expected == b.published * 3
            && b.delivered == b.expected
            && b.lost == 0
            && b.duplicates == 0
            && b.foreign == 0,
        "{b:?}"
    );
}

/// `--parser msgpack` where it cannot apply is a usage error before any socket opens.
#[test]
fn msgpack_parser_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ws = format!("ws://{}/ws/echo", l.local_addr().unwrap());
    for (args, says) in [
        (
            vec!["echo", ws.as_str(), "--parser", "msgpack"],
            "raw WebSocket has no parser",
        ),
        (vec!["echo", "--parser", "msgpack"], "needs a URL"),
    ] {
        let o = swarm(&args, &dir.path().join("usage"));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    l.set_nonblocking(true).unwrap();
    assert!(l.accept().is_err(), "a usage error opens no connection");
}

/// The default JSON parser cannot talk to a msgpack server (it closes the connection on the
/// text CONNECT): no client connects, the run could not happen, exit 3, no panic.
#[test]
fn default_parser_against_a_msgpack_server_fails_cleanly() {
    if !node_ready("default_parser_against_a_msgpack_server_fails_cleanly") {
        return;
    }
    let peer = start("sio-msgpack-server.mjs");
    let url = format!("http://127.0.0.1:{}", peer.port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("json-parser");
    let o = swarm(
        &[
            "echo",
            &url,
            "--clients",
            "3",
            "--rate",
            "10/s",
            "--duration",
            "1s",
            "--timeout",
            "2s",
        ],
        &out,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("no connection succeeded"), "{err}");
    if let Ok(run) = reports::RunFile::read(out.join("results.json")) {
        assert_eq!(run.run.connect.connected, 0);
        assert_eq!(run.run.connect.failed, 3, "{:?}", run.run.connect);
    }
}
