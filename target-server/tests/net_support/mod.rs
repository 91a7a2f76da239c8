//! Test support for the raw WebSocket, status/metrics and TLS tests: an in-process server
//! whose [`Shared`] state the test can read, a WebSocket client, HTTP GET, and bounded
//! polling.
//!
//! Receives: a [`Config`]. Emits: a running server on 127.0.0.1:0, clients, responses.
//! Must not: wait without a bound (every wait panics with a message after its limit).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use target_server::{Config, Shared};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Upper bound for anything the server should do "at once".
pub const STEP: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<TcpStream>;

/// A server on 127.0.0.1:0; `shared` gives the tests its counters.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
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
        TestServer {
            addr,
            shared,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn stats(&self) -> &target_server::Stats {
        &self.shared.stats
    }

    /// Starts a graceful shutdown and waits (bounded) for `serve` to return.
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

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Connects a WebSocket client to `path` (TCP_NODELAY, small buffers).
pub async fn ws_connect(addr: SocketAddr, path: &str) -> Ws {
    try_ws_connect(addr, path)
        .await
        .unwrap_or_else(|e| panic!("ws connect {path}: {e}"))
}

pub async fn try_ws_connect(addr: SocketAddr, path: &str) -> Result<Ws, String> {
    let go = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(64 << 20));
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}{path}"),
            tcp,
            Some(config),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(ws)
    };
    timeout(STEP, go)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// The next data or close frame (pings and pongs skipped), within [`STEP`].
pub async fn next_data(ws: &mut Ws) -> Message {
    let end = Instant::now() + STEP;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await {
            Err(_) => panic!("no frame within {STEP:?}"),
            Ok(None) => panic!("connection ended"),
            Ok(Some(Err(e))) => panic!("read error: {e}"),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return m,
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

/// Status, headers and body of one response.
pub struct Got {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `GET path` on a fresh connection, within [`STEP`].
pub async fn get(addr: SocketAddr, path: &str) -> Got {
    let go = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        let conn = tokio::spawn(conn);
        let req = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        conn.abort();
        Got {
            status,
            headers,
            body,
        }
    };
    timeout(STEP, go)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no response within {STEP:?}"))
}
