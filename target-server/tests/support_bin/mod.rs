//! The `target-server` binary as a child process for tests that need a separate server
//! process (its own RSS in `/proc/PID/status`, the CLI presets such as `--conformance`).
//!
//! Receives: command-line flags (always served on `--bind 127.0.0.1:0`). Emits: the bound
//! address read from the first stdout line, the child's RSS. Must not: leave the child
//! running (killed by its PID when the handle drops), or wait for it without a bound.

#![allow(dead_code)] // each test crate uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_target-server");

/// A running `target-server` process.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `target-server --bind 127.0.0.1:0 ARGS...` and waits (at most 20 s) for its
    /// `listening on http://ADDR` line.
    pub fn start(args: &[&str]) -> ServerProcess {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn target-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("target-server {args:?} printed no address within 20 s: {other:?}");
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        ServerProcess { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `VmRSS` and `VmHWM` (peak RSS) of the process, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL by PID, then reap.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
