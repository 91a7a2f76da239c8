//! `swarm broadcast` and `swarm churn` against third-party servers: the official Node
//! socket.io 4.8 server of `interop/sio-server.mjs` (connection state recovery on and off)
//! and the python-socketio server of `interop/python/sio_server.py` (PyPI). Skipped, with a
//! message, only when `node` or the Python virtualenv (scripts/test.sh makes it) is missing
//! and `CI` is not set.

mod common;

use common::{plan_for, run};
use reports::BroadcastStats;
use testkit::Peer;

/// `node interop/sio-server.mjs --port 0 ARGS...`, ready on its `{"listening":PORT}` line.
fn node(args: &[&str]) -> Peer {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    Peer::node("sio-server.mjs", &all)
}

/// Node.js and the socket.io server of interop/ are there (testkit's one rule).
fn node_ready(test: &str) -> bool {
    testkit::node_ready(test, &["socket.io", "express"])
}

fn invariant(b: &BroadcastStats) {
    assert_eq!(
        b.delivered + b.missed_while_disconnected + b.lost,
        b.expected,
        "delivered + missed + lost = expected: {b:?}"
    );
    assert!(b.expected > 0);
    assert_eq!(b.foreign, 0);
}

const BROADCAST: [&str; 12] = [
    "--publishers",
    "2",
    "--subscribers",
    "40",
    "--rooms",
    "2",
    "--rate",
    "40/s",
    "--duration",
    "2s",
    "--grace",
    "500ms",
];

async fn broadcast(url: &str, extra: &[&str], out: &std::path::Path) -> BroadcastStats {
    let mut args = vec!["broadcast", url];
    args.extend_from_slice(&BROADCAST);
    args.extend_from_slice(extra);
    let finished = run(plan_for(&args, out)).await;
    finished.run.run.broadcast.expect("broadcast section")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_against_node_and_python_socketio() {
    let dir = tempfile::tempdir().unwrap();
    if node_ready("broadcast_against_node_and_python_socketio (Node half)") {
        let peer = node(&[]);
        let url = format!("http://127.0.0.1:{}/", peer.port);
        // The default `broadcast(room, payload)`, and the payload nested in an object.
        for (i, extra) in [
            vec![],
            vec![
                "--publish-args",
                r#"["{room}",{"meta":{"n":1},"data":{payload}}]"#,
            ],
        ]
        .iter()
        .enumerate()
        {
            let b = broadcast(&url, extra, &dir.path().join(format!("node{i}"))).await;
            invariant(&b);
            assert_eq!(b.delivered, b.expected, "node: {b:?}");
            assert_eq!(b.expected, b.published * 20, "node: {b:?}");
            assert_eq!((b.duplicates, b.reordered), (0, 0));
        }
    }
    if let Some(py) =
        testkit::python_ready("broadcast_against_node_and_python_socketio (python-socketio half)")
    {
        let peer = Peer::python(&py, "sio_server.py", &["--port", "0"]);
        let url = format!("http://127.0.0.1:{}/", peer.port);
        let b = broadcast(&url, &[], &dir.path().join("python")).await;
        invariant(&b);
        assert_eq!(b.delivered, b.expected, "python-socketio: {b:?}");
        assert_eq!(b.expected, b.published * 20, "python-socketio: {b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_against_node_with_and_without_recovery() {
    if !node_ready("churn_against_node_with_and_without_recovery") {
        return;
    }
    for recovery in [true, false] {
        let peer = node(if recovery { &["--recovery"] } else { &[] });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{}/", peer.port);
        let args = [
            "churn",
            &url,
            "--subscribers",
            "30",
            "--rate",
            "50/s",
            "--churn-rate",
            "15/s",
            "--reconnect-delay",
            "150ms",
            "--duration",
            "3s",
            "--grace",
            "500ms",
        ];
        let finished = run(plan_for(&args, dir.path())).await;
        let b = finished.run.run.broadcast.expect("broadcast section");
        let c = finished.run.run.churn.expect("churn section");
        invariant(&b);
        assert!(c.drops >= 10 && c.reconnects >= 10, "{c:?}");
        assert_eq!((b.duplicates, b.reordered), (0, 0), "{b:?}");
        if recovery {
            assert!(b.recovered > 0, "{b:?}");
            assert_eq!(c.recovered_sessions, c.reconnects, "{c:?}");
            assert_eq!((b.missed_while_disconnected, b.lost), (0, 0), "{b:?}");
        } else {
            assert_eq!((b.recovered, c.recovered_sessions), (0, 0), "{b:?}");
            assert!(b.missed_while_disconnected > 0, "{b:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_against_node() {
    if !node_ready("heartbeat_against_node") {
        return;
    }
    let peer = node(&["--ping-interval", "1000", "--ping-timeout", "500"]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", peer.port);
    let args = [
        "heartbeat",
        &url,
        "--clients",
        "12",
        "--mute",
        "0.25@1700ms",
        "--duration",
        "3500ms",
    ];
    let finished = run(plan_for(&args, dir.path())).await;
    let h = finished.run.run.heartbeat.expect("heartbeat section");
    assert_eq!(h.advertised_ping_interval_ms, Some(1000));
    let intervals = h.ping_interval.expect("intervals");
    assert!(
        (980_000..=1_020_000).contains(&intervals.p50_us),
        "{intervals:?}"
    );
    // Node re-arms its ping timer on each pong: the muted close comes pingInterval +
    // pingTimeout after the last answered ping.
    assert_eq!((h.muted, h.muted_closes, h.muted_never_closed), (3, 3, 0));
    let after = h
        .muted_close_after_last_pong
        .expect("close after last pong");
    assert!(
        after.min_us >= 1_400_000 && after.max_us <= 1_600_000,
        "{after:?}"
    );
    assert_eq!((h.false_timeouts, h.client_timeouts), (0, 0));
}
