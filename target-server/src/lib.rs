//! `target-server`: the reference emit/broadcast server of swarmbench.
//!
//! Receives: a bound listener, a [`Config`] and a shutdown future ([`serve`]), or state the
//! caller keeps a handle to ([`serve_shared`]).
//! Emits: every endpoint below on one port; counters in [`Stats`]; a graceful close of
//! every connection at shutdown.
//! Must not: let a transport module know which application runs on it: [`router`] is the
//! one place that pairs them (docs/ARCHITECTURE.md#the-reference-server).
//!
//! ```text
//! TcpListener --listener--> hyper http1 (+ upgrades) --router-->
//!   /socket.io/   eio (Engine.IO v4 transports) serving sio::Server (Socket.IO v5
//!                 namespaces, rooms, recovery) as its eio::Application
//!   /engine.io/   eio serving eio::echo::Echo
//!   /ws/echo, /ws/room/{name}   ws (raw WebSocket)
//!   /, /ws/stats  status (live page)      /metrics  metrics (Prometheus text)
//! every module counts into stats::Stats; application deliveries pass faults::Faults
//! ```

pub mod background;
pub mod config;
pub mod eio;
pub mod faults;
pub mod listener;
pub mod metrics;
pub mod net;
pub mod sio;
pub mod stats;
pub mod status;
#[cfg(test)]
pub(crate) mod testkit;
pub mod upgrade;
pub mod ws;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use stats::Stats;

/// State shared by every connection of one server.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub stats: Arc<Stats>,
    pub faults: faults::Faults,
    /// The `--max-connections` budget (TCP connections and polling sessions).
    pub slots: listener::Slots,
    /// Cancelled when the server shuts down: connections close gracefully (WS 1001,
    /// Engine.IO close).
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let stats = Arc::new(Stats::new());
        let faults = faults::Faults::new(&config, stats.clone());
        let slots = listener::Slots::new(config.max_connections);
        Arc::new(Shared {
            slots,
            config,
            stats,
            faults,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}

/// The HTTP routes of one server. This is where applications meet transports: each
/// Engine.IO endpoint is given the application it serves. Starts the Socket.IO server's
/// background tasks (ticks, recovery sweeps) when called inside a runtime.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    let socketio = sio::Server::start(shared.clone());
    let echo = Arc::new(eio::echo::Echo::new(shared.clone()));
    axum::Router::new()
        .merge(eio::routes(shared.clone(), "/socket.io", socketio))
        .merge(eio::routes(shared.clone(), "/engine.io", echo))
        .merge(ws::routes(shared.clone()))
        .merge(status::routes(shared.clone()))
        .merge(metrics::routes(shared))
}

/// Serves `config` on `listener` until `shutdown` resolves, then closes every connection
/// gracefully and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Shared::new(config);
    listener::run(listener, shared, shutdown).await
}

/// Like [`serve`], on state the caller made and keeps a handle to (tests and embedders read
/// `shared.stats`; cancelling `shared.shutdown` does not stop the accept loop, `shutdown` does).
pub async fn serve_shared(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::run(listener, shared, shutdown).await
}
