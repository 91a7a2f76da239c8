//! `target-server --reuse-port`: two processes listen on one 127.0.0.1 port and the kernel
//! spreads connections over both, each process counting only its own; without the flag a
//! second process on a port in use fails with one clear line naming `--reuse-port`.
//!
//! Every process is started by this file and killed by its PID when its handle drops
//! (testkit's `Peer`); every wait is bounded.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::Command as AssertCommand;
use serde_json::Value;
use testkit::{Peer, target_server_process};

const BIN: &str = env!("CARGO_BIN_EXE_target-server");

/// Connections opened through the shared port.
const CONNECTIONS: usize = 64;

/// The port of a `listening on http://127.0.0.1:PORT` line.
fn listening_port(line: &str) -> Option<u16> {
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")?
        .parse()
        .ok()?;
    addr.ip().is_loopback().then_some(addr.port())
}

/// `target-server --bind 127.0.0.1:PORT ARGS...`, ready on its listening line.
fn server_on(port: u16, args: &[&str]) -> Peer {
    let mut cmd = Command::new(BIN);
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
        .args(args);
    Peer::start_on(cmd, "listening on http://ADDR", listening_port)
}

/// Opens a raw WebSocket to `/ws/echo` by hand; returns the socket after the `101`.
fn raw_ws(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        s.read_exact(&mut byte).expect("the upgrade response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// `GET /stats.json` on a fresh connection (a new source port, so the kernel may hand it
/// to either process): the JSON body.
fn stats(addr: SocketAddr) -> Value {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /stats.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.take(1 << 20).read_to_string(&mut raw).expect("response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("stats.json: {e}: {body}"))
}

/// Open raw WebSocket connections in one `/stats.json` snapshot.
fn raw_ws_open(snapshot: &Value) -> i64 {
    snapshot["connections"]
        .as_array()
        .expect("connections rows")
        .iter()
        .find(|row| row["protocol"] == "ws" && row["transport"] == "websocket")
        .and_then(|row| row["open"].as_i64())
        .expect("the ws/websocket row")
}

#[cfg(target_os = "linux")]
#[test]
fn two_processes_share_one_port_and_each_takes_some_connections() {
    let first = target_server_process(BIN, &["--reuse-port", "--log", "warn"]);
    let second = server_on(first.port, &["--reuse-port"]);
    assert_eq!(
        second.port, first.port,
        "the second listens on the same port"
    );
    let addr: SocketAddr = ([127, 0, 0, 1], first.port).into();

    let held: Vec<TcpStream> = (0..CONNECTIONS).map(|_| raw_ws(addr)).collect();

    // Ask /stats.json on fresh connections until both processes have answered and their
    // raw WebSocket counts add up to every held connection (a count may trail the 101 by a
    // moment); at most 400 requests in 20 s.
    let pids: BTreeMap<u32, &str> = [(first.pid(), "first"), (second.pid(), "second")].into();
    let mut latest: BTreeMap<u32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..400 {
        let snapshot = stats(addr);
        let pid = u32::try_from(snapshot["pid"].as_u64().expect("pid in stats.json")).unwrap();
        assert!(
            pids.contains_key(&pid),
            "stats.json from pid {pid}, not one of ours {pids:?}"
        );
        latest.insert(pid, raw_ws_open(&snapshot));
        let done = latest.len() == 2 && latest.values().sum::<i64>() == CONNECTIONS as i64;
        if done || Instant::now() > deadline {
            break;
        }
    }
    assert_eq!(
        latest.len(),
        2,
        "only {latest:?} answered on the shared port (pids {pids:?})"
    );
    for (pid, open) in &latest {
        assert!(
            *open > 0,
            "the {} process ({pid}) holds none of the {CONNECTIONS} connections: {latest:?}",
            pids[pid]
        );
    }
    assert_eq!(
        latest.values().sum::<i64>(),
        CONNECTIONS as i64,
        "each connection is counted by exactly one process: {latest:?}"
    );
    drop(held);
}

/// Runs `BIN ARGS...` expecting it to fail at once: (exit code, stderr).
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = AssertCommand::new(BIN)
        .args(args)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "{args:?} printed a listening line");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_second_process_on_a_port_in_use_fails_with_one_clear_line() {
    let plain = target_server_process(BIN, &["--log", "warn"]);
    let bind = format!("127.0.0.1:{}", plain.port);
    for args in [
        vec!["--bind", bind.as_str()],
        vec!["--bind", bind.as_str(), "--reuse-port"],
    ] {
        let (code, stderr) = fails(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot bind {bind}")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("already in use"), "{args:?}: {stderr}");
        assert!(stderr.contains("--reuse-port"), "{args:?}: {stderr}");
    }

    // A process that set --reuse-port does not let one without it in.
    let shared = target_server_process(BIN, &["--reuse-port", "--log", "warn"]);
    let bind = format!("127.0.0.1:{}", shared.port);
    let (code, stderr) = fails(&["--bind", &bind]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("start every one of them with --reuse-port"),
        "{stderr}"
    );
}
