//! Socket.IO v5 packets (PROTOCOL.md §2), carried inside Engine.IO `message` packets.
//!
//! Receives: the text of an Engine.IO message (without the leading `4`), and binary
//! attachments that follow a binary packet.
//! Emits: [`Packet`] values and their text encodings.
//! Must not: do I/O or keep session state (beyond [`BinaryAssembler`], owned by a caller).

use bytes::Bytes;
use serde_json::Value;

use crate::DecodeError;

/// Socket.IO packet type digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

/// Event names a receiver must reject (PROTOCOL.md §2.1).
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One Socket.IO packet. `data` holds the JSON payload as received (with
/// `{"_placeholder":true,"num":i}` objects in place of binary attachments).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    /// Namespace, `/` when omitted on the wire.
    pub nsp: String,
    /// Ack id, if any.
    pub id: Option<u64>,
    /// JSON payload, if any.
    pub data: Option<Value>,
    /// Number of binary attachments announced in the header (`<n>-`), 0 for text packets.
    pub attachments: usize,
}

impl Packet {
    /// `40`, `40/nsp,`, `40{auth}`...
    pub fn connect(nsp: &str, auth: Option<Value>) -> Packet {
        Packet { kind: PacketType::Connect, nsp: nsp.to_string(), id: None, data: auth, attachments: 0 }
    }

    /// An EVENT (`42["name",...args]`) with an optional ack id.
    pub fn event(nsp: &str, name: &str, args: Vec<Value>, id: Option<u64>) -> Packet {
        let mut arr = Vec::with_capacity(args.len() + 1);
        arr.push(Value::String(name.to_string()));
        arr.extend(args);
        Packet { kind: PacketType::Event, nsp: nsp.to_string(), id, data: Some(Value::Array(arr)), attachments: 0 }
    }

    /// An ACK (`43<id>[...args]`).
    pub fn ack(nsp: &str, id: u64, args: Vec<Value>) -> Packet {
        Packet { kind: PacketType::Ack, nsp: nsp.to_string(), id: Some(id), data: Some(Value::Array(args)), attachments: 0 }
    }

    /// Encodes without the Engine.IO `4` prefix: `2["a"]`, `3/admin,13["bar"]`, `51-["x",{...}]`.
    pub fn encode(&self) -> String {
        todo!()
    }

    /// Decodes the text of an Engine.IO message (without its leading `4`). Applies every
    /// payload rule of PROTOCOL.md §2.1-2.2 (a server closes the connection on error).
    pub fn decode(text: &str) -> Result<Packet, DecodeError> {
        let _ = text;
        todo!()
    }

    /// The event name of an EVENT / BINARY_EVENT (first array element), if a string.
    pub fn event_name(&self) -> Option<&str> {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => a.first()?.as_str(),
            _ => None,
        }
    }

    /// The event arguments (array elements after the name) of an EVENT / BINARY_EVENT,
    /// or the whole array of an ACK / BINARY_ACK.
    pub fn args(&self) -> &[Value] {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) if !a.is_empty() => &a[1..],
            (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(a))) => a,
            _ => &[],
        }
    }
}

/// Collects the binary attachments that follow a BINARY_EVENT / BINARY_ACK.
#[derive(Debug, Default)]
pub struct BinaryAssembler {
    pending: Option<(Packet, Vec<Bytes>)>,
}

impl BinaryAssembler {
    /// Starts a binary packet. Returns it at once (with no attachments) if it announces 0.
    pub fn start(&mut self, packet: Packet) -> Option<(Packet, Vec<Bytes>)> {
        if packet.attachments == 0 {
            return Some((packet, Vec::new()));
        }
        self.pending = Some((packet, Vec::new()));
        None
    }

    /// Adds one attachment; returns the complete packet with its attachments when the
    /// last one arrives. An attachment with no packet pending is an error.
    pub fn push(&mut self, data: Bytes) -> Result<Option<(Packet, Vec<Bytes>)>, DecodeError> {
        let Some((packet, atts)) = self.pending.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        atts.push(data);
        if atts.len() == packet.attachments {
            return Ok(self.pending.take());
        }
        Ok(None)
    }

    /// True while attachments are awaited.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}
