//! `target-server`: the reference emit/broadcast server of swarmbench.
//!
//! One port serves everything (docs/ARCHITECTURE.md#the-reference-server):
//!
//! ```text
//! TcpListener --listener--> hyper http1 (+ upgrades) --router-->
//!   /socket.io/   eio (Engine.IO v4 transports) -> sio (Socket.IO v5 namespaces, rooms, recovery)
//!   /engine.io/   eio in echo mode
//!   /ws/echo, /ws/room/{name}   ws (raw WebSocket)
//!   /, /ws/stats  status (live page)      /metrics  metrics (Prometheus text)
//! every module counts into stats::Stats; application deliveries pass faults::Faults
//! ```
//!
//! Entry point: [`serve`] with a bound listener, a [`Config`] and a shutdown future.

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

/// The HTTP routes of one server.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .merge(eio::routes(shared.clone()))
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
