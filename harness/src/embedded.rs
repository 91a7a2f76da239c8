//! The embedded target: a `target_server::serve` on 127.0.0.1 (port chosen by the system),
//! on its own tokio runtime and OS threads, for runs without a URL.
//!
//! Receives: a server [`Config`]. Emits: the bound address, and a handle that shuts the
//! server down (gracefully) when stopped or dropped.
//! Must not: share the swarm's runtime (its work would pollute the swarm's health figures).

use std::net::SocketAddr;

use target_server::Config;
use target_server::background::Background;

/// Worker threads of the embedded server's runtime.
const SERVER_THREADS: usize = 2;

/// A running embedded server.
#[derive(Debug)]
pub struct Embedded {
    pub addr: SocketAddr,
    /// The server's counters (tests compare the swarm's counts with them).
    pub stats: std::sync::Arc<target_server::Stats>,
    server: Background,
}

impl Embedded {
    /// Starts the server and waits until it listens.
    pub fn start(config: Config) -> std::io::Result<Embedded> {
        let server = Background::start(config, SERVER_THREADS, "embedded-target")?;
        Ok(Embedded {
            addr: server.addr,
            stats: server.shared.stats.clone(),
            server,
        })
    }

    /// Shuts the server down (gracefully) and waits for its thread; dropping does the same.
    pub fn stop(self) {
        self.server.stop();
    }
}
