//! Raw test client for the integration tests: an in-process server, HTTP requests over a
//! plain TCP connection (hyper client), a WebSocket client, and a small Socket.IO client.
//!
//! Receives: a [`Config`] to serve, requests and frames to send. Emits: responses and
//! frames exactly as they came off the wire, so tests can compare them byte for byte.
//! Must not: hide protocol details the tests check (no automatic pong, no reconnects), or
//! wait without a bound: every wait takes a timeout and panics with a clear message.

#![allow(dead_code)]

pub mod eio_cases;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use protocol::socketio::{self, BinaryAssembler, Packet as SioPacket};
use serde_json::Value;
use target_server::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Upper bound of one ordinary HTTP exchange.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for a frame the server should send "at once".
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// Server

/// A server running in-process on 127.0.0.1:0. Dropping it shuts it down.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(target_server::serve(listener, config, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The preset of the official protocol test suites (docs/ARCHITECTURE.md#conformance-suites).
    pub async fn conformance() -> Server {
        Server::start(Config::conformance()).await
    }

    /// Shuts down and waits (bounded) for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = timeout(Duration::from_secs(10), task).await;
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

// ---------------------------------------------------------------------------------------
// HTTP

/// Status and body of one HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh TCP connection (TCP_NODELAY). `Err` describes a connection
/// failure, an aborted response or the timeout.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
    limit: Duration,
) -> Result<HttpResponse, String> {
    let body = Bytes::copy_from_slice(body);
    let exchange = async move {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.to_string());
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        conn.abort();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    match timeout(limit, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("{method} {path}: no response within {limit:?}")),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Result<HttpResponse, String> {
    request(addr, "GET", path, b"", None, HTTP_TIMEOUT).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Result<HttpResponse, String> {
    request(
        addr,
        "POST",
        path,
        body.as_bytes(),
        Some("text/plain;charset=UTF-8"),
        HTTP_TIMEOUT,
    )
    .await
}

/// GET that must succeed (any status), panicking with the reason otherwise.
pub async fn get_ok(addr: SocketAddr, path: &str) -> HttpResponse {
    get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub async fn post_ok(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    post(addr, path, body)
        .await
        .unwrap_or_else(|e| panic!("POST {path} {body:?}: {e}"))
}

/// Opens a polling session at `base` (`/engine.io/` or `/socket.io/`), checks the open
/// packet's framing and returns the sid with the handshake JSON.
pub async fn open_polling(addr: SocketAddr, base: &str) -> (String, Value) {
    let resp = get_ok(addr, &format!("{base}?EIO=4&transport=polling")).await;
    assert_eq!(
        resp.status,
        200,
        "polling handshake status, body {:?}",
        resp.text()
    );
    let text = resp.text();
    assert!(
        text.starts_with('0'),
        "open packet must start with 0: {text:?}"
    );
    let json: Value =
        serde_json::from_str(&text[1..]).unwrap_or_else(|e| panic!("open JSON {text:?}: {e}"));
    let sid = json["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid in {text:?}"))
        .to_string();
    (sid, json)
}

/// The polling URL of session `sid`.
pub fn polling_path(base: &str, sid: &str) -> String {
    format!("{base}?EIO=4&transport=polling&sid={sid}")
}

/// Checks the open-packet JSON: exactly the five keys and the conformance values.
pub fn assert_handshake(json: &Value, upgrades: &[&str]) {
    let obj = json
        .as_object()
        .unwrap_or_else(|| panic!("handshake is not an object: {json}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ],
        "keys of {json}"
    );
    assert!(json["sid"].is_string(), "sid must be a string: {json}");
    assert_eq!(
        json["upgrades"],
        serde_json::json!(upgrades),
        "upgrades of {json}"
    );
    assert_eq!(json["pingInterval"], 300, "pingInterval of {json}");
    assert_eq!(json["pingTimeout"], 200, "pingTimeout of {json}");
    assert_eq!(json["maxPayload"], 1_000_000, "maxPayload of {json}");
}

/// Value of a sample in a Prometheus text exposition (first line naming `metric`, with or
/// without labels).
pub fn metric_value(text: &str, metric: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(metric)?;
        let rest = if rest.starts_with('{') {
            &rest[rest.find('}')? + 1..]
        } else {
            rest
        };
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------------------
// WebSocket

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
    /// Connects to `ws://addr{path}`. `Err` when TCP fails, the server refuses the upgrade
    /// (non-101) or nothing happens within [`HTTP_TIMEOUT`].
    pub async fn connect(addr: SocketAddr, path: &str) -> Result<Ws, String> {
        let url = format!("ws://{addr}{path}");
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            let (stream, _resp) = tokio_tungstenite::client_async(url.as_str(), tcp)
                .await
                .map_err(|e| format!("upgrade {url}: {e}"))?;
            Ok(Ws { stream })
        };
        timeout(HTTP_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(format!("upgrade {url}: timed out")))
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

/// Opens an Engine.IO websocket session at `base` and returns it with its open-packet JSON.
pub async fn open_ws(addr: SocketAddr, base: &str) -> (Ws, Value) {
    let mut ws = Ws::open(addr, &format!("{base}?EIO=4&transport=websocket")).await;
    let text = ws.recv_text(FRAME_TIMEOUT).await;
    assert!(
        text.starts_with('0'),
        "first frame must be the open packet: {text:?}"
    );
    let json: Value =
        serde_json::from_str(&text[1..]).unwrap_or_else(|e| panic!("open JSON {text:?}: {e}"));
    (ws, json)
}

// ---------------------------------------------------------------------------------------
// Socket.IO

/// A Socket.IO client on a websocket-only session: answers Engine.IO pings, decodes
/// packets with `protocol`, reassembles binary attachments.
pub struct Sio {
    pub ws: Ws,
    /// The Socket.IO sid of the default namespace.
    pub sid: String,
    assembler: BinaryAssembler,
}

/// A received Socket.IO packet with its attachments.
pub type Received = (SioPacket, Vec<Bytes>);

impl Sio {
    /// Opens `/socket.io/` over websocket and connects to namespace `/`.
    pub async fn connect(addr: SocketAddr) -> Sio {
        let (ws, _) = open_ws(addr, "/socket.io/").await;
        let mut sio = Sio {
            ws,
            sid: String::new(),
            assembler: BinaryAssembler::default(),
        };
        sio.ws.send_text("40").await;
        let (p, _) = sio.recv(FRAME_TIMEOUT).await.expect("CONNECT reply");
        assert_eq!(
            p.kind,
            socketio::PacketType::Connect,
            "CONNECT reply: {p:?}"
        );
        sio.sid = p
            .data
            .as_ref()
            .and_then(|d| d["sid"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(!sio.sid.is_empty(), "CONNECT reply without sid: {p:?}");
        sio
    }

    /// Sends an EVENT on `/` (`42[<id>]["name",...args]`).
    pub async fn emit(&mut self, name: &str, args: &[Value], id: Option<u64>) {
        let text = event_text(name, args, id);
        self.ws.send_text(&text).await;
    }

    /// The next Socket.IO packet (complete with attachments); Engine.IO pings are answered
    /// with `3`. `None` on timeout; panics if the connection closes or sends garbage.
    pub async fn recv(&mut self, limit: Duration) -> Option<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ws.recv(left).await? {
                Frame::Text(t) if t == "2" => self.ws.send_text("3").await,
                Frame::Text(t) => {
                    let inner = t
                        .strip_prefix('4')
                        .unwrap_or_else(|| panic!("unexpected Engine.IO frame {t:?}"));
                    let p = SioPacket::decode(inner)
                        .unwrap_or_else(|e| panic!("bad Socket.IO packet {t:?}: {e}"));
                    if p.kind.is_binary() {
                        if let Some(done) = self.assembler.start(p) {
                            return Some(done);
                        }
                    } else {
                        return Some((p, Vec::new()));
                    }
                }
                Frame::Binary(b) => {
                    match self
                        .assembler
                        .push(Bytes::from(b))
                        .unwrap_or_else(|e| panic!("attachment: {e}"))
                    {
                        Some(done) => return Some(done),
                        None => continue,
                    }
                }
                Frame::Closed(code) => panic!("connection closed by the server ({code:?})"),
            }
        }
    }

    /// The next packet, which must arrive within `limit`.
    pub async fn recv_ok(&mut self, limit: Duration) -> Received {
        self.recv(limit)
            .await
            .unwrap_or_else(|| panic!("no Socket.IO packet within {limit:?}"))
    }

    /// Emits with ack id `id` and returns the ACK's arguments (other packets are skipped).
    pub async fn call(&mut self, name: &str, args: &[Value], id: u64) -> Vec<Value> {
        self.emit(name, args, Some(id)).await;
        let deadline = Instant::now() + FRAME_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (p, _) = self
                .recv(left)
                .await
                .unwrap_or_else(|| panic!("no ack {id} for {name}"));
            if p.kind == socketio::PacketType::Ack && p.id == Some(id) {
                return p.args().to_vec();
            }
        }
    }

    /// Joins `room`, returning the member count from the ack.
    pub async fn join(&mut self, room: &str, id: u64) -> u64 {
        let ack = self.call("join", &[Value::from(room)], id).await;
        assert_eq!(
            ack.first().map(|a| &a["room"]),
            Some(&Value::from(room)),
            "join ack {ack:?}"
        );
        ack[0]["members"]
            .as_u64()
            .unwrap_or_else(|| panic!("join ack without members: {ack:?}"))
    }
}

/// Engine.IO message text of an EVENT on `/`.
pub fn event_text(name: &str, args: &[Value], id: Option<u64>) -> String {
    let mut text = String::with_capacity(64);
    text.push('4');
    socketio::encode_event_into(&mut text, "/", name, args, id, 0);
    text
}
