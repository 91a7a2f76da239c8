//! The reference server in-process for one test: `target_server::background::Background` on
//! 127.0.0.1:0 with its own runtime (two workers), so the test's runtime only runs the
//! client side, and the server's exact counters in reach.
//!
//! Must not: bind anything but 127.0.0.1, or outlive its handle (dropping it shuts the
//! server down and joins its thread).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use target_server::background::Background;
use target_server::{Config, Shared};

/// Worker threads of the server's runtime.
const THREADS: usize = 2;

/// A running reference server. Stops when dropped.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The server's state (its `stats` are the counters tests compare with).
    pub shared: Arc<Shared>,
    _server: Background,
}

impl Target {
    /// Starts `config` and waits until it listens.
    pub fn start(config: Config) -> Target {
        let server =
            Background::start(config, THREADS, "testkit-target").expect("start target-server");
        Target {
            addr: server.addr,
            shared: server.shared.clone(),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT` (Socket.IO clients add the path themselves).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replies the server dropped on purpose (`Config::drop_rate`).
    pub fn dropped_by_injection(&self) -> u64 {
        self.shared
            .stats
            .dropped_by_injection
            .load(Ordering::SeqCst)
    }
}

/// Starts the `target-server` binary at `bin` (a test's `env!("CARGO_BIN_EXE_target-server")`)
/// as `bin --bind 127.0.0.1:0 ARGS...`, ready on its `listening on http://ADDR` line; for
/// tests that need the server in a process of its own (its RSS, its CLI presets). Killed by
/// its PID when the handle drops.
pub fn target_server_process(bin: &str, args: &[&str]) -> crate::Peer {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--bind", "127.0.0.1:0"]).args(args);
    crate::Peer::start_on(cmd, "listening on http://ADDR", listening_on)
}

/// The port of target-server's first line, `listening on http://127.0.0.1:PORT`.
fn listening_on(line: &str) -> Option<u16> {
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")?
        .parse()
        .ok()?;
    addr.ip().is_loopback().then_some(addr.port())
}

#[cfg(test)]
mod tests {
    use super::listening_on;

    #[test]
    fn the_servers_listening_line_is_read_strictly() {
        assert_eq!(
            listening_on("listening on http://127.0.0.1:4000\n"),
            Some(4000)
        );
        assert_eq!(listening_on("listening on http://10.0.0.1:4000"), None);
        assert_eq!(listening_on("listening on http://127.0.0.1"), None);
        assert_eq!(listening_on("ready 4000"), None);
    }
}
