//! Raw clients for the server's integration tests, and the server in-process on the test's
//! own runtime.
//!
//! - [`Server`]: target-server on 127.0.0.1:0 as a task of the test's runtime, its
//!   [`target_server::Shared`] state (counters) in reach;
//! - `http`: one HTTP/1.1 request per fresh TCP connection (hyper), the Prometheus text
//!   reader;
//! - `ws`: a WebSocket client that shows frames exactly as they came ([`Ws`]), and the
//!   bare tungstenite stream for tests that drive it themselves ([`WsStream`]);
//! - `eio`: Engine.IO session openers, the conformance handshake check and a small
//!   Socket.IO client ([`Sio`]).
//!
//! Receives: a `target_server::Config`, requests and frames to send. Emits: responses and
//! frames byte for byte, so tests can compare them with what the protocol says.
//! Must not: hide protocol details the tests check (no automatic pong, no reconnects), or
//! wait without a bound: every wait takes a limit and panics with a clear message.

mod eio;
mod http;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use target_server::{Config, Shared};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

pub use eio::{Received, Sio, assert_handshake, event_text, open_polling, open_ws, polling_path};
pub use http::{HttpResponse, get, get_ok, metric_value, post, post_ok, request};
pub use ws::{Frame, Ws, WsStream, next_data, try_ws_connect, ws_connect};

/// Upper bound of one ordinary HTTP exchange.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for a frame the server should send "at once".
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound for anything else the server should do "at once" (a connect, a count).
pub const STEP: Duration = Duration::from_secs(5);

/// A server running as a task of the test's runtime on 127.0.0.1:0. Dropping it starts its
/// shutdown; [`Server::stop`] also waits for it.
pub struct Server {
    pub addr: SocketAddr,
    /// The server's state; `shared.stats` are the counters tests compare with.
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and serves `config`.
    pub async fn start(config: Config) -> Server {
        let listener = target_server::net::bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Shared::new(config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(target_server::serve_shared(
            listener,
            shared.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            shared,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The preset of the official protocol test suites (docs/ARCHITECTURE.md, "Conformance
    /// suites").
    pub async fn conformance() -> Server {
        Server::start(Config::conformance()).await
    }

    pub fn stats(&self) -> &target_server::Stats {
        &self.shared.stats
    }

    /// Starts a graceful shutdown and waits for `serve` to return; panics after 10 s.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            timeout(Duration::from_secs(10), task)
                .await
                .expect("serve returns within 10 s after shutdown")
                .ok();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
