//! Engine.IO v4 packets (PROTOCOL.md §1).
//!
//! Receives: WebSocket text/binary frame contents, or long-polling HTTP bodies.
//! Emits: [`Packet`] values, and their encodings for either transport.
//! Must not: do I/O, keep session state or look at clocks.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::DecodeError;

/// The record separator between packets of one long-polling body.
pub const SEPARATOR: char = '\x1e';

/// The JSON of the open packet (`0{...}`). Exactly these five keys, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    pub sid: String,
    pub upgrades: Vec<String>,
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Bytes per polling chunk.
    pub max_payload: u64,
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0{json}` server -> client.
    Open(Handshake),
    /// `1`
    Close,
    /// `2` or `2probe` (probe = true).
    Ping { probe: bool },
    /// `3` or `3probe` (probe = true).
    Pong { probe: bool },
    /// `4<text>`
    Message(String),
    /// Binary message: a raw binary WS frame, or `b<base64>` in a polling body.
    Binary(Bytes),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// A WebSocket frame's content as Engine.IO puts it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    Text(String),
    Binary(Bytes),
}

impl Packet {
    /// Encodes for a WebSocket: text packets as `<digit><data>`, binary as raw bytes.
    pub fn to_ws_frame(&self) -> WsFrame {
        todo!()
    }

    /// Appends the text encoding (`<digit><data>`) to `out`. Binary packets are written as
    /// `b<base64>` (the polling form).
    pub fn encode_text_into(&self, out: &mut String) {
        let _ = out;
        todo!()
    }

    /// Decodes the content of a WebSocket text frame (`4hello`, `2probe`, `0{...}`).
    pub fn decode_ws_text(text: &str) -> Result<Packet, DecodeError> {
        let _ = text;
        todo!()
    }

    /// A WebSocket binary frame is always a binary message (no type prefix in v4).
    pub fn decode_ws_binary(data: Bytes) -> Packet {
        Packet::Binary(data)
    }
}

/// Encodes packets as one long-polling body: `\x1e`-separated, binary as `b` + base64.
pub fn encode_payload(packets: &[Packet]) -> String {
    let _ = packets;
    todo!()
}

/// Decodes a long-polling body into packets. Empty body or any malformed packet is an error.
pub fn decode_payload(body: &str) -> Result<Vec<Packet>, DecodeError> {
    let _ = body;
    todo!()
}
