//! Minimal reference clients: the least code that speaks each protocol correctly, to put
//! the swarm's numbers next to (the overhead bench, the loopback benches, the ceiling).
//!
//! Receives: a server address. Emits: connected clients whose `round_trip` sends one text
//! message and returns when its echo (raw WebSocket) or its ack (Socket.IO) is back.
//! Must not: keep more state than one connection, time anything (callers do), or drop a
//! socket before the server closed it (the server closes first, so TIME_WAIT lands on the
//! server side and benches that open many connections do not use up client ports).
//!
//! Raw WebSocket: tokio-tungstenite over TCP with TCP_NODELAY and the swarm's
//! `WebSocketConfig`. Socket.IO: Engine.IO v4 over the websocket transport only, namespace
//! `/`, events `42<id>["echo",payload]` answered by `43<id>[...]`, every `2` answered by `3`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Why a minimal client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("unexpected frame from the server: {0}")]
    Protocol(String),
}

/// TCP (TCP_NODELAY) + WebSocket handshake for `path` on `addr`.
pub async fn ws_connect(addr: SocketAddr, path: &str) -> Result<Ws, ClientError> {
    let tcp = TcpStream::connect(addr).await?;
    ws_over(tcp, addr, path).await
}

/// [`ws_connect`] from the local address `source` (port chosen by the kernel): many
/// thousands of connections to one loopback port need several source addresses, as the
/// swarm's `--source-addrs` (docs/PERFORMANCE.md).
pub async fn ws_connect_from(
    addr: SocketAddr,
    source: std::net::IpAddr,
    path: &str,
) -> Result<Ws, ClientError> {
    let sock = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    sock.bind(SocketAddr::new(source, 0))?;
    let tcp = sock.connect(addr).await?;
    ws_over(tcp, addr, path).await
}

async fn ws_over(tcp: TcpStream, addr: SocketAddr, path: &str) -> Result<Ws, ClientError> {
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        url,
        tcp,
        Some(harness::driver::net::ws_config()),
    )
    .await?;
    Ok(ws)
}

/// Closing handshake started by the client, then reads until the server ends the TCP
/// connection (bounded to one second).
pub async fn ws_close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The next text frame (pings are answered by tungstenite while reading).
async fn next_text(ws: &mut Ws) -> Result<tungstenite::Utf8Bytes, ClientError> {
    loop {
        match ws.next().await {
            None => return Err(ClientError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
        }
    }
}

/// Raw WebSocket echo client of `/ws/echo`.
pub struct RawEcho {
    pub ws: Ws,
}

impl RawEcho {
    pub async fn connect(addr: SocketAddr) -> Result<RawEcho, ClientError> {
        Ok(RawEcho {
            ws: ws_connect(addr, "/ws/echo").await?,
        })
    }

    /// Sends `payload` as a text frame and waits for the echoed frame.
    pub async fn round_trip(&mut self, payload: &str) -> Result<(), ClientError> {
        self.ws.send(Message::text(payload)).await?;
        let back = next_text(&mut self.ws).await?;
        if back.len() != payload.len() {
            return Err(ClientError::Protocol(format!(
                "echo of {} bytes, sent {}",
                back.len(),
                payload.len()
            )));
        }
        Ok(())
    }

    pub async fn close(self) {
        ws_close(self.ws).await;
    }
}

const SIO_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Socket.IO client (websocket transport, namespace `/`) that emits `echo` with an ack.
pub struct SioEcho {
    pub ws: Ws,
    next_id: u64,
    frame: String,
}

impl SioEcho {
    /// Engine.IO open, then namespace CONNECT until `40{sid}`.
    pub async fn connect(addr: SocketAddr) -> Result<SioEcho, ClientError> {
        SioEcho::open(ws_connect(addr, SIO_PATH).await?).await
    }

    /// [`SioEcho::connect`] from the local address `source`.
    pub async fn connect_from(
        addr: SocketAddr,
        source: std::net::IpAddr,
    ) -> Result<SioEcho, ClientError> {
        SioEcho::open(ws_connect_from(addr, source, SIO_PATH).await?).await
    }

    async fn open(mut ws: Ws) -> Result<SioEcho, ClientError> {
        loop {
            let t = next_text(&mut ws).await?;
            match t.as_bytes().first() {
                Some(b'0') => break,
                Some(b'2') => ws.send(Message::text("3")).await?,
                _ => return Err(ClientError::Protocol(t.to_string())),
            }
        }
        ws.send(Message::text("40")).await?;
        loop {
            let t = next_text(&mut ws).await?;
            if t.starts_with("40") {
                break;
            }
            if t.as_str() == "2" {
                ws.send(Message::text("3")).await?;
            } else {
                return Err(ClientError::Protocol(t.to_string()));
            }
        }
        Ok(SioEcho {
            ws,
            next_id: 0,
            frame: String::with_capacity(256),
        })
    }

    /// Emits `echo` with `payload` (a JSON value's text) and an ack id; waits for its ack.
    pub async fn round_trip(&mut self, payload: &str) -> Result<(), ClientError> {
        use std::fmt::Write as _;
        let id = self.next_id;
        self.next_id += 1;
        self.frame.clear();
        let _ = write!(self.frame, "42{id}[\"echo\",{payload}]");
        self.ws.send(Message::text(self.frame.as_str())).await?;
        loop {
            let t = next_text(&mut self.ws).await?;
            let b = t.as_bytes();
            if b.starts_with(b"43") {
                let digits = b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                if std::str::from_utf8(&b[2..2 + digits])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    == Some(id)
                {
                    return Ok(());
                }
            } else if b == b"2" {
                self.ws.send(Message::text("3")).await?;
            } else if b.first() == Some(&b'1') || b.starts_with(b"41") {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Emits `event` with `args` (JSON text, without brackets) and waits for its ack body.
    pub async fn call(&mut self, event: &str, args: &str) -> Result<String, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = format!("42{id}[\"{event}\",{args}]");
        self.ws.send(Message::text(frame)).await?;
        let head = format!("43{id}");
        loop {
            let t = next_text(&mut self.ws).await?;
            if let Some(rest) = t.strip_prefix(head.as_str())
                && rest.starts_with('[')
            {
                return Ok(rest.to_string());
            }
            if t.as_str() == "2" {
                self.ws.send(Message::text("3")).await?;
            }
        }
    }

    /// Socket.IO DISCONNECT, then the WebSocket closing handshake.
    pub async fn close(mut self) {
        let _ = self.ws.send(Message::text("41")).await;
        ws_close(self.ws).await;
    }
}
