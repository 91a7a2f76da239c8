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
