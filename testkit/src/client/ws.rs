//! WebSocket clients for tests (tungstenite over TCP_NODELAY): [`Ws`] shows data frames and
//! closes exactly as they came (pings are answered by tungstenite, never shown); the bare
//! [`WsStream`] is for tests that drive the stream themselves.
//!
//! Must not: wait past a limit (every receive takes one).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::STEP;

/// The bare client stream.
pub type WsStream = WebSocketStream<TcpStream>;

/// Connects a WebSocket client to `path` (TCP_NODELAY, small buffers).
pub async fn ws_connect(addr: SocketAddr, path: &str) -> WsStream {
    try_ws_connect(addr, path)
        .await
        .unwrap_or_else(|e| panic!("ws connect {path}: {e}"))
}

/// Like [`ws_connect`], `Err` when TCP or the upgrade fails or takes longer than [`STEP`].
pub async fn try_ws_connect(addr: SocketAddr, path: &str) -> Result<WsStream, String> {
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
pub async fn next_data(ws: &mut WsStream) -> Message {
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

/// One frame as the test sees it. WS ping/pong control frames are skipped by the reader
/// (tungstenite answers pings itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// Close frame received (with its code), EOF or a transport error.
    Closed(Option<u16>),
}

/// A raw WebSocket client over a TCP_NODELAY connection.
pub struct Ws {
    stream: WebSocketStream<TcpStream>,
}

impl Ws {
    /// Connects to `ws://addr{path}` ([`try_ws_connect`]). `Err` when TCP fails, the
    /// server refuses the upgrade (the error names the status) or nothing happens within
    /// [`STEP`].
    pub async fn connect(addr: SocketAddr, path: &str) -> Result<Ws, String> {
        try_ws_connect(addr, path)
            .await
            .map(|stream| Ws { stream })
            .map_err(|e| format!("upgrade ws://{addr}{path}: {e}"))
    }

    /// Like [`Ws::connect`], panicking on failure.
    pub async fn open(addr: SocketAddr, path: &str) -> Ws {
        Ws::connect(addr, path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("send text {text:?}: {e}"));
    }

    /// Sends without panicking (the server may already have closed).
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.stream.send(Message::text(text)).await.is_ok()
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.stream
            .send(Message::binary(Bytes::copy_from_slice(data)))
            .await
            .unwrap_or_else(|e| panic!("send binary: {e}"));
    }

    /// Queues frames without flushing after each one, then flushes once.
    pub async fn send_batch(&mut self, frames: impl IntoIterator<Item = Message>) {
        for f in frames {
            self.stream
                .feed(f)
                .await
                .unwrap_or_else(|e| panic!("feed: {e}"));
        }
        self.stream
            .flush()
            .await
            .unwrap_or_else(|e| panic!("flush: {e}"));
    }

    /// The next data frame or the close, `None` on timeout.
    pub async fn recv(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            let next = timeout_at(deadline, self.stream.next()).await.ok()?;
            return Some(match next {
                None => Frame::Closed(None),
                Some(Err(_)) => Frame::Closed(None),
                Some(Ok(Message::Text(t))) => Frame::Text(t.as_str().to_string()),
                Some(Ok(Message::Binary(b))) => Frame::Binary(b.to_vec()),
                Some(Ok(Message::Close(c))) => Frame::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            });
        }
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self, limit: Duration) -> String {
        match self.recv(limit).await {
            Some(Frame::Text(t)) => t,
            other => panic!("expected a text frame within {limit:?}, got {other:?}"),
        }
    }

    /// The next frame, which must be binary.
    pub async fn recv_binary(&mut self, limit: Duration) -> Vec<u8> {
        match self.recv(limit).await {
            Some(Frame::Binary(b)) => b,
            other => panic!("expected a binary frame within {limit:?}, got {other:?}"),
        }
    }

    /// The next frame that is not an Engine.IO ping `2` (pings are not answered).
    pub async fn recv_skipping_pings(&mut self, limit: Duration) -> Frame {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some(Frame::Text(t)) if t == "2" => continue,
                Some(f) => return f,
                None => panic!("no frame other than pings within {limit:?}"),
            }
        }
    }

    /// Waits for the server to close the connection; returns the data frames seen before.
    pub async fn expect_closed(&mut self, limit: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some(Frame::Closed(_)) => return seen,
                Some(f) => seen.push(f),
                None => panic!("connection still open after {limit:?} (frames seen: {seen:?})"),
            }
        }
    }

    /// Asserts that nothing arrives (and the connection stays open) for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(f) = self.recv(quiet).await {
            panic!("expected no frame for {quiet:?}, got {f:?}");
        }
    }

    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(1), self.stream.close(None)).await;
    }
}
