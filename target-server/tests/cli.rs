//! The `target-server` binary: `--help` with examples, one-line errors and exit status 2 for
//! bad values, `--bind 127.0.0.1:0` printing the bound address and serving, and a clean
//! exit on SIGTERM (a connected raw WebSocket client gets close 1001).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command as AssertCommand;

const BIN: &str = env!("CARGO_BIN_EXE_target-server");

fn target_server() -> AssertCommand {
    AssertCommand::new(BIN)
}

/// Runs the binary with `args`, expects exit status 2 and exactly one stderr line
/// containing every `needle`.
fn rejects(args: &[&str], needles: &[&str]) {
    let out = target_server()
        .args(args)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} exits 2; stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one error line, got:\n{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr:?}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn help_lists_flags_and_examples() {
    let out = target_server()
        .arg("--help")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Examples:",
        "target-server --bind 127.0.0.1:0",
        "--tick lobby:10/s:256",
        "--ping-interval",
        "--ws-ping-timeout",
        "--max-connections",
        "--max-queue-bytes",
        "--max-attachments",
        "--max-attachment-bytes",
        "--attachment-timeout",
        "--max-recovery-log-bytes",
        "--max-rooms-per-socket",
        "--max-room-name",
        "--body-timeout",
        "--ws-idle-timeout",
        "[default: 8MiB]",
        "--tls-cert",
        "--conformance",
        "--reuse-port",
        "its own rooms and counters",
        "/ws/room/{name}",
        "/metrics",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn bad_values_exit_2_with_one_clear_line() {
    rejects(
        &["--ping-interval", "fast"],
        &["invalid duration", "fast", "25s"],
    );
    rejects(
        &["--ws-ping-timeout", "10"],
        &["invalid duration", "\"10\""],
    );
    rejects(&["--tick", "lobby:often:64"], &["invalid rate", "often"]);
    rejects(&["--tick", "lobby:10/s"], &["ROOM:RATE:SIZE"]);
    rejects(&["--drop-rate", "1.5"], &["probability", "1.5"]);
    rejects(&["--delay", "5ms±10ms"], &["jitter"]);
    rejects(&["--stall", "1s:2s"], &["FOR must be shorter than EVERY"]);
    rejects(&["--max-connections", "many"], &["invalid count"]);
    rejects(&["--max-message-size", "huge"], &["invalid size"]);
    rejects(&["--namespace", "chat"], &["namespace", "starts with /"]);
    rejects(&["--bind", "localhost"], &["--bind"]);
    rejects(&["--tls-cert", "cert.pem"], &["--tls-key"]);
    rejects(&["--no-such-flag"], &["--no-such-flag"]);
    rejects(&["--log", "[[["], &["--log"]);
}

#[test]
fn missing_tls_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("missing-cert.pem");
    let key = dir.path().join("missing-key.pem");
    rejects(
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &["missing-cert.pem"],
    );
}

/// Kills the child (by its PID) if a test fails before it exits by itself.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads the first stdout line of the child (bounded by the child's own lifetime: the
/// test's timeout kills it).
fn first_line(child: &mut Child) -> String {
    let mut out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a line on stdout within 20 s")
}

/// One HTTP/1.1 GET with `Connection: close`; returns the whole response as text.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

/// Opens a raw WebSocket to `/ws/echo` by hand and returns the socket after the 101.
fn raw_ws(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

#[test]
fn binds_port_zero_prints_the_address_serves_and_stops_on_sigterm() {
    let child = Command::new(BIN)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--ws-ping-interval",
            "10s",
            "--log",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let line = first_line(&mut child.0);
    let addr: SocketAddr = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a socket address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the real port, not 0");

    let resp = http_get(addr, "/stats.json");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"connections_open\":0"), "{resp}");
    let mut ws = raw_ws(addr);

    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success(), "kill -TERM {pid}");

    // The open WebSocket gets a close frame with 1001 (going away).
    let mut frame = [0u8; 4];
    ws.read_exact(&mut frame).expect("a close frame");
    assert_eq!(frame[0], 0x88, "FIN + close opcode");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1001);

    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < end,
            "target-server did not exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
}
