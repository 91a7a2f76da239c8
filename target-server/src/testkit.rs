//! Test support for the in-crate end-to-end tests (`eio/tests.rs`, `sio/tests.rs`): the
//! whole server on 127.0.0.1:0 with its `Shared` in reach, a raw websocket client and raw
//! HTTP requests.
//!
//! Receives: a `Config`. Emits: frames and responses exactly as they came off the wire.
//! Must not: wait without a bound (every wait takes a timeout and panics clearly), or
//! answer pings unless asked to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::{Config, Shared};

pub(crate) const WAIT: Duration = Duration::from_secs(3);

/// A server running in-process; stops when dropped.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Shared::new(config);
        let stop = CancellationToken::new();
        let until = stop.clone();
        let task = tokio::spawn(crate::listener::run(listener, shared.clone(), async move {
            until.cancelled().await
        }));
        TestServer {
            addr,
            shared,
            stop,
            task: Some(task),
        }
    }

    /// Shuts the server down and waits (bounded) for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the client read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Got {
    Text(String),
    Binary(Vec<u8>),
    /// Close frame (code), EOF or error.
    Closed(Option<u16>),
}

pub(crate) struct Client {
    ws: WebSocketStream<TcpStream>,
    /// Answer Engine.IO pings `2` with `3` (and hide them).
    pub pong: bool,
}

impl Client {
    pub async fn connect(addr: SocketAddr, path: &str) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("tcp connect");
        tcp.set_nodelay(true).expect("nodelay");
        let url = format!("ws://{addr}{path}");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(url.as_str(), tcp))
            .await
            .expect("upgrade in time")
            .expect("upgrade");
        Client { ws, pong: false }
    }

    /// A websocket-only Socket.IO client connected to `/` (open packet and `40` consumed).
    pub async fn socketio(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
        c.pong = true;
        assert!(c.text().await.starts_with("0{"), "open packet");
        c.send("40").await;
        assert!(c.text().await.starts_with("40{\"sid\":"), "CONNECT reply");
        c
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn recv_within(&mut self, limit: Duration) -> Option<Got> {
        let deadline = Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match msg {
                Some(Ok(Message::Text(t))) if self.pong && t.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                    continue;
                }
                Some(Ok(Message::Text(t))) => Got::Text(t.as_str().to_string()),
                Some(Ok(Message::Binary(b))) => Got::Binary(b.to_vec()),
                Some(Ok(Message::Close(c))) => Got::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => Got::Closed(None),
            });
        }
    }

    pub async fn recv(&mut self) -> Got {
        self.recv_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing within {WAIT:?}"))
    }

    pub async fn text(&mut self) -> String {
        match self.recv().await {
            Got::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns what came before (bounded by `limit`).
    pub async fn until_closed(&mut self, limit: Duration) -> (Vec<Got>, Option<u16>) {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await {
                Some(Got::Closed(code)) => return (seen, code),
                Some(g) => seen.push(g),
                None => panic!("still open after {limit:?}, saw {seen:?}"),
            }
        }
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): (status, body).
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read response");
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").expect("response head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        (status, body.to_string())
    };
    timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response within {WAIT:?}"))
}

/// Opens a polling session at `base`; returns its sid.
pub(crate) async fn polling_sid(addr: SocketAddr, base: &str) -> String {
    let (status, body) = http(addr, "GET", &format!("{base}?EIO=4&transport=polling"), "").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body[1..]).expect("open JSON");
    v["sid"].as_str().expect("sid").to_string()
}
