//! target-server in-process on its own tokio runtime and OS threads, so a bench's client
//! runtime and the server do not share workers (as two processes would not).
//!
//! Receives: a [`Config`] and a worker count. Emits: the bound 127.0.0.1 address and the
//! server's shared state (its exact counters, e.g. `dropped_by_injection`).
//! Must not: bind anything but 127.0.0.1, or outlive its handle (dropping it shuts the
//! server down and joins its thread).

use std::net::SocketAddr;
use std::sync::Arc;

use target_server::background::Background;
use target_server::{Config, Shared};

/// A running in-process server.
pub struct Server {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    _server: Background,
}

impl Server {
    /// Starts `config` on 127.0.0.1 (port chosen by the system) with `threads` workers.
    pub fn start(config: Config, threads: usize) -> std::io::Result<Server> {
        let server = Background::start(config, threads, "bench-target")?;
        Ok(Server {
            addr: server.addr,
            shared: server.shared.clone(),
            _server: server,
        })
    }

    /// `ws://ADDR/ws/echo`
    pub fn ws_echo_url(&self) -> String {
        format!("ws://{}/ws/echo", self.addr)
    }

    /// `http://ADDR/` (Socket.IO, default namespace)
    pub fn sio_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}
