//! Engine.IO v4 packets (docs/ARCHITECTURE.md#engineio-v4).
//!
//! Receives: WebSocket text/binary frame contents, or long-polling HTTP bodies.
//! Emits: [`Packet`] values, and their encodings for either transport.
//! Must not: do I/O, keep session state or look at clocks.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{DecodeError, json};

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
    /// The type digit of this packet (`b` for a binary packet in its polling form).
    pub fn type_char(&self) -> char {
        match self {
            Packet::Open(_) => '0',
            Packet::Close => '1',
            Packet::Ping { .. } => '2',
            Packet::Pong { .. } => '3',
            Packet::Message(_) => '4',
            Packet::Binary(_) => 'b',
            Packet::Upgrade => '5',
            Packet::Noop => '6',
        }
    }

    /// Encodes for a WebSocket: text packets as `<digit><data>`, binary as raw bytes.
    pub fn to_ws_frame(&self) -> WsFrame {
        match self {
            Packet::Binary(b) => WsFrame::Binary(b.clone()),
            Packet::Message(m) => {
                let mut out = String::with_capacity(m.len() + 1);
                out.push('4');
                out.push_str(m);
                WsFrame::Text(out)
            }
            other => {
                let mut out = String::with_capacity(8);
                other.encode_text_into(&mut out);
                WsFrame::Text(out)
            }
        }
    }

    /// Appends the text encoding (`<digit><data>`) to `out`. Binary packets are written as
    /// `b<base64>` (the polling form).
    pub fn encode_text_into(&self, out: &mut String) {
        out.push(self.type_char());
        match self {
            Packet::Open(h) => json::write_into(out, h),
            Packet::Ping { probe: true } | Packet::Pong { probe: true } => out.push_str("probe"),
            Packet::Message(m) => out.push_str(m),
            Packet::Binary(b) => BASE64.encode_string(b, out),
            Packet::Close
            | Packet::Ping { .. }
            | Packet::Pong { .. }
            | Packet::Upgrade
            | Packet::Noop => {}
        }
    }

    /// The text encoding as a new string (`4hello`, `2probe`, `bAQIDBA==`).
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(self.encoded_len_hint());
        self.encode_text_into(&mut out);
        out
    }

    /// Decodes the content of a WebSocket text frame (`4hello`, `2probe`, `0{...}`).
    /// A `b<base64>` text (the polling form of binary) is accepted as well.
    pub fn decode_ws_text(text: &str) -> Result<Packet, DecodeError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(DecodeError::Empty)?;
        let data = chars.as_str();
        match kind {
            '0' => serde_json::from_str(data)
                .map(Packet::Open)
                .map_err(|e| DecodeError::Json(e.to_string())),
            '1' => no_data(data, Packet::Close, "close"),
            '2' => probe(data).map(|probe| Packet::Ping { probe }),
            '3' => probe(data).map(|probe| Packet::Pong { probe }),
            '4' => Ok(Packet::Message(data.to_string())),
            '5' => no_data(data, Packet::Upgrade, "upgrade"),
            '6' => no_data(data, Packet::Noop, "noop"),
            'b' => BASE64
                .decode(data)
                .map(|v| Packet::Binary(Bytes::from(v)))
                .map_err(|_| DecodeError::Base64),
            other => Err(DecodeError::UnknownType(other)),
        }
    }

    /// A WebSocket binary frame is always a binary message (no type prefix in v4).
    pub fn decode_ws_binary(data: Bytes) -> Packet {
        Packet::Binary(data)
    }

    /// A cheap upper-bound guess of the text encoding's length, for buffer sizing.
    fn encoded_len_hint(&self) -> usize {
        match self {
            Packet::Open(h) => 96 + h.sid.len(),
            Packet::Message(m) => m.len() + 1,
            Packet::Binary(b) => b.len().div_ceil(3) * 4 + 1,
            _ => 6,
        }
    }
}

/// Base64 as Engine.IO polling writes it: standard alphabet, padded on encode, padding
/// optional on decode (the Node reference is lenient too).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn no_data(data: &str, packet: Packet, what: &'static str) -> Result<Packet, DecodeError> {
    if data.is_empty() {
        Ok(packet)
    } else {
        Err(DecodeError::InvalidPayload(what))
    }
}

fn probe(data: &str) -> Result<bool, DecodeError> {
    match data {
        "" => Ok(false),
        "probe" => Ok(true),
        _ => Err(DecodeError::InvalidPayload(
            "ping/pong data other than \"probe\"",
        )),
    }
}

/// Encodes packets as one long-polling body: `\x1e`-separated, binary as `b` + base64.
pub fn encode_payload(packets: &[Packet]) -> String {
    let len = packets.iter().map(|p| p.encoded_len_hint() + 1).sum();
    let mut out = String::with_capacity(len);
    encode_payload_into(packets, &mut out);
    out
}

/// Appends the long-polling body of `packets` to `out` (see [`encode_payload`]).
pub fn encode_payload_into(packets: &[Packet], out: &mut String) {
    for (i, p) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        p.encode_text_into(out);
    }
}

/// Decodes a long-polling body into packets. Empty body or any malformed packet is an error.
pub fn decode_payload(body: &str) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    body.split(SEPARATOR).map(Packet::decode_ws_text).collect()
}

#[cfg(test)]
mod tests;
