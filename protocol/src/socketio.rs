//! Socket.IO v5 packets (docs/ARCHITECTURE.md#socketio-v5), carried inside Engine.IO `message` packets.
//!
//! Receives: the text of an Engine.IO message (without the leading `4`), and binary
//! attachments that follow a binary packet.
//! Emits: [`Packet`] values and their text encodings.
//! Must not: do I/O or keep session state (beyond [`BinaryAssembler`], owned by a caller).

use bytes::Bytes;
use serde_json::Value;

use crate::{DecodeError, json};

pub mod header;
pub use header::{Header, HeaderError, MAX_ATTACHMENTS, MAX_NAMESPACE_BYTES};

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

impl PacketType {
    /// The type of a wire digit (`b'0'`..`b'6'`).
    pub fn from_digit(d: u8) -> Option<PacketType> {
        Some(match d {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub fn digit(self) -> char {
        char::from(b'0' + self as u8)
    }

    /// BINARY_EVENT or BINARY_ACK: the header carries `<n>-` and attachments follow.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// Event names a receiver must reject (docs/ARCHITECTURE.md#socketio-v5).
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
        Packet {
            kind: PacketType::Connect,
            nsp: nsp.to_string(),
            id: None,
            data: auth,
            attachments: 0,
        }
    }

    /// An EVENT (`42["name",...args]`) with an optional ack id.
    pub fn event(nsp: &str, name: &str, args: Vec<Value>, id: Option<u64>) -> Packet {
        let mut arr = Vec::with_capacity(args.len() + 1);
        arr.push(Value::String(name.to_string()));
        arr.extend(args);
        Packet {
            kind: PacketType::Event,
            nsp: nsp.to_string(),
            id,
            data: Some(Value::Array(arr)),
            attachments: 0,
        }
    }

    /// An ACK (`43<id>[...args]`).
    pub fn ack(nsp: &str, id: u64, args: Vec<Value>) -> Packet {
        Packet {
            kind: PacketType::Ack,
            nsp: nsp.to_string(),
            id: Some(id),
            data: Some(Value::Array(args)),
            attachments: 0,
        }
    }

    /// A BINARY_EVENT (`5<n>-["name",...args]`); `args` hold [`placeholder`]s for the
    /// `attachments` buffers that the caller sends after it.
    pub fn binary_event(
        nsp: &str,
        name: &str,
        args: Vec<Value>,
        id: Option<u64>,
        attachments: usize,
    ) -> Packet {
        Packet {
            kind: PacketType::BinaryEvent,
            attachments,
            ..Packet::event(nsp, name, args, id)
        }
    }

    /// A BINARY_ACK (`6<n>-<id>[...args]`), args with [`placeholder`]s.
    pub fn binary_ack(nsp: &str, id: u64, args: Vec<Value>, attachments: usize) -> Packet {
        Packet {
            kind: PacketType::BinaryAck,
            attachments,
            ..Packet::ack(nsp, id, args)
        }
    }

    /// Encodes without the Engine.IO `4` prefix: `2["a"]`, `3/admin,13["bar"]`, `51-["x",{...}]`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.nsp.len() + 64);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding (without the Engine.IO `4` prefix) to `out`.
    pub fn encode_into(&self, out: &mut String) {
        write_header(out, self.kind, self.attachments, &self.nsp, self.id);
        if let Some(data) = &self.data {
            json::write_into(out, data);
        }
    }

    /// The whole Engine.IO message text: `4` + [`Packet::encode`], ready for a WS text
    /// frame or a polling body.
    pub fn to_eio_message(&self) -> String {
        let mut out = String::with_capacity(self.nsp.len() + 64);
        out.push('4');
        self.encode_into(&mut out);
        out
    }

    /// Decodes the text of an Engine.IO message (without its leading `4`). Applies every
    /// payload rule of docs/ARCHITECTURE.md#socketio-v5 (a server closes the connection on error).
    pub fn decode(text: &str) -> Result<Packet, DecodeError> {
        let header = Header::scan(text)?;
        let rest = header.data(text);
        let data = if rest.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(rest)
                    .map_err(|e| DecodeError::Json(e.to_string()))?,
            )
        };
        validate(header.kind, data.as_ref(), header.attachments)?;
        Ok(Packet {
            kind: header.kind,
            nsp: header.nsp.to_string(),
            id: header.id,
            data,
            attachments: header.attachments,
        })
    }

    /// The event name of an EVENT / BINARY_EVENT (first array element), if a string.
    pub fn event_name(&self) -> Option<&str> {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => {
                a.first()?.as_str()
            }
            _ => None,
        }
    }

    /// The event arguments (array elements after the name) of an EVENT / BINARY_EVENT,
    /// or the whole array of an ACK / BINARY_ACK.
    pub fn args(&self) -> &[Value] {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a)))
                if !a.is_empty() =>
            {
                &a[1..]
            }
            (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(a))) => a,
            _ => &[],
        }
    }
}

/// Writes `<type>[<n>-][<nsp>,][<id>]` (the part before the JSON) to `out`. The namespace
/// is omitted for `/`; the attachment count is written for binary types only.
pub fn write_header(
    out: &mut String,
    kind: PacketType,
    attachments: usize,
    nsp: &str,
    id: Option<u64>,
) {
    use std::fmt::Write as _;
    out.push(kind.digit());
    if kind.is_binary() {
        let _ = write!(out, "{attachments}-");
    }
    if !nsp.is_empty() && nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
}

/// Fast path for an EVENT: appends `2[<nsp>,][<id>]["name",...args]` to `out` without
/// building a `Packet` or a JSON array. With `attachments > 0` it is a BINARY_EVENT
/// (`5<n>-...`) and `args` must hold the placeholders.
pub fn encode_event_into(
    out: &mut String,
    nsp: &str,
    name: &str,
    args: &[Value],
    id: Option<u64>,
    attachments: usize,
) {
    let kind = if attachments > 0 {
        PacketType::BinaryEvent
    } else {
        PacketType::Event
    };
    write_header(out, kind, attachments, nsp, id);
    out.push('[');
    json::write_into(out, name);
    for arg in args {
        out.push(',');
        json::write_into(out, arg);
    }
    out.push(']');
}

/// Fast path for an ACK: appends `3[<nsp>,]<id>[...args]` to `out` (BINARY_ACK
/// `6<n>-...` with `attachments > 0`).
pub fn encode_ack_into(out: &mut String, nsp: &str, id: u64, args: &[Value], attachments: usize) {
    let kind = if attachments > 0 {
        PacketType::BinaryAck
    } else {
        PacketType::Ack
    };
    write_header(out, kind, attachments, nsp, Some(id));
    json::write_into(out, args);
}

/// The placeholder standing for binary attachment `num`: `{"_placeholder":true,"num":num}`.
pub fn placeholder(num: usize) -> Value {
    let mut map = serde_json::Map::with_capacity(2);
    map.insert("_placeholder".to_string(), Value::Bool(true));
    map.insert("num".to_string(), Value::from(num));
    Value::Object(map)
}

/// If `value` is a placeholder, its attachment index (`None` for ordinary values, and
/// `Some(Err)` for a placeholder whose `num` is not a non-negative integer).
fn placeholder_num(value: &serde_json::Map<String, Value>) -> Option<Option<u64>> {
    if value.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(value.get("num").and_then(Value::as_u64))
}

/// The payload rules of docs/ARCHITECTURE.md#socketio-v5 (the reference decoder's `isPayloadValid`), plus
/// placeholder indexes within the announced attachment count for binary packets.
pub(crate) fn validate(
    kind: PacketType,
    data: Option<&Value>,
    attachments: usize,
) -> Result<(), DecodeError> {
    match kind {
        PacketType::Connect => match data {
            None | Some(Value::Object(_)) => Ok(()),
            Some(_) => Err(DecodeError::InvalidPayload(
                "CONNECT payload must be an object",
            )),
        },
        PacketType::Disconnect => match data {
            None => Ok(()),
            Some(_) => Err(DecodeError::InvalidPayload("DISCONNECT takes no payload")),
        },
        PacketType::ConnectError => match data {
            Some(Value::String(_) | Value::Object(_)) => Ok(()),
            _ => Err(DecodeError::InvalidPayload(
                "CONNECT_ERROR payload must be a string or an object",
            )),
        },
        PacketType::Event | PacketType::BinaryEvent => {
            let Some(Value::Array(arr)) = data else {
                return Err(DecodeError::InvalidPayload(
                    "EVENT payload must be an array",
                ));
            };
            match arr.first() {
                Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                    Err(DecodeError::ReservedEvent(name.clone()))
                }
                Some(Value::String(_) | Value::Number(_)) => {
                    check_placeholders(kind, arr, attachments)
                }
                _ => Err(DecodeError::InvalidPayload(
                    "EVENT name must be a string or a number",
                )),
            }
        }
        PacketType::Ack | PacketType::BinaryAck => match data {
            Some(Value::Array(arr)) => check_placeholders(kind, arr, attachments),
            _ => Err(DecodeError::InvalidPayload("ACK payload must be an array")),
        },
    }
}

fn check_placeholders(
    kind: PacketType,
    arr: &[Value],
    attachments: usize,
) -> Result<(), DecodeError> {
    if !kind.is_binary() {
        return Ok(());
    }
    fn walk(v: &Value, n: u64) -> bool {
        match v {
            Value::Array(a) => a.iter().all(|x| walk(x, n)),
            Value::Object(m) => match placeholder_num(m) {
                Some(Some(num)) => num < n,
                Some(None) => false,
                None => m.values().all(|x| walk(x, n)),
            },
            _ => true,
        }
    }
    let n = attachments as u64;
    if arr.iter().all(|v| walk(v, n)) {
        Ok(())
    } else {
        Err(DecodeError::Attachments)
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

#[cfg(test)]
mod tests;
