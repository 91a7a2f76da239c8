//! Engine.IO and Socket.IO for tests: open a session on either transport, check the
//! conformance handshake, and a small Socket.IO client on a websocket-only session.
//!
//! Must not: answer for the test what the test checks (the Socket.IO client answers
//! Engine.IO pings, nothing else), or wait without a bound.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use protocol::socketio::{self, BinaryAssembler, Packet as SioPacket};
use serde_json::Value;
use tokio::time::Instant;

use super::FRAME_TIMEOUT;
use super::http::get_ok;
use super::ws::{Frame, Ws};

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
