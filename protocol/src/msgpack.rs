//! Socket.IO packets in the msgpack form of the npm parser `socket.io-msgpack-parser` 3.x
//! (the JSON text form is docs/ARCHITECTURE.md#socketio-v5; this is its drop-in alternative).
//!
//! Receives: the payload of one *binary* Engine.IO message (one binary WS frame, or the
//! decoded `b`+base64 of a polling body) holding ONE msgpack map `{type, nsp, data?, id?}`;
//! or a [`Packet`] plus its binary attachments to encode into that form.
//! Emits: [`Packet`] values shaped exactly like the text codec's (so a session handles both
//! alike), the packet's binary values, and msgpack bytes.
//! Must not: do I/O, panic or allocate beyond the input on any input, nest deeper than
//! [`MAX_DEPTH`].
//!
//! There is no attachment mechanism on this wire: `type` is only 0..4 (CONNECT,
//! DISCONNECT, EVENT, ACK, CONNECT_ERROR) and binary values sit inline as msgpack `bin`.
//! Unknown map keys are ignored (socket.io-client also writes `options`).
//!
//! # Value mapping (msgpack ↔ `serde_json::Value` payload)
//!
//! | msgpack (as notepack.io, the parser's codec, means it) | payload side |
//! |---|---|
//! | nil, bool, str (UTF-8), array | null, bool, string, array |
//! | map with string keys | object (any other key type is rejected) |
//! | any int | integer number |
//! | float 32/64 | `f64` number; NaN and ±inf become null (as `JSON.stringify`) |
//! | bin 8/16/32 (a Node `Buffer`), ext 8/16/32 of type 0 (an `ArrayBuffer`) | binary: the placeholder `{"_placeholder":true,"num":i}` in `data` and the bytes as attachment `i` (numbered in wire order) |
//! | fixext 1 type 0 (`undefined`) | null in an array, key left out in an object, absent as `data`/`id` (as `JSON.stringify`) |
//! | fixext 8 type 0 (a `Date`: ms since epoch, i32 high + u32 low) | its `Date.toJSON()` string, `2023-11-14T22:13:20.123Z` (null when out of range) |
//! | any other ext (type `t`, bytes) | `[t, <binary>]`, what notepack.io hands to JavaScript |
//!
//! A decoded EVENT / ACK with binary values therefore comes out as BINARY_EVENT /
//! BINARY_ACK with `attachments` = their count, the same [`Packet`] the text codec yields
//! after attachment reassembly; [`encode`] turns such a packet back into type 2 / 3 with each
//! placeholder replaced by `bin`. Encoding writes integers in their smallest msgpack form
//! and every non-integer number as float 64, as notepack.io does. Limits: an object that
//! literally looks like a placeholder is indistinguishable from one after decoding (the
//! text codec shares this), and only `bin` is written back (a `Date` stays a string).

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::socketio::{Packet, PacketType, validate};

mod date;
mod read;

use read::Reader;

/// Deepest array/map nesting accepted in a payload (serde_json's own parser allows 128).
pub const MAX_DEPTH: usize = 128;

/// Most binary values one decoded packet may hold (a hostile peer's `c4 00`, an empty
/// `bin`, would otherwise grow about 100x in memory when decoded; socket.io's own default
/// `maxHttpBufferSize` of 1 MB could carry 500,000 of them).
pub const MAX_BINARIES: usize = 1024;

/// Why a packet could not be written in msgpack form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("packet announces {announced} binary attachments but {given} were given")]
    AttachmentCount { announced: usize, given: usize },
    #[error("placeholder refers to attachment {0}, which does not exist")]
    MissingAttachment(u64),
    #[error("a string, binary or collection is too large for msgpack (over 4 GiB or 2^32 items)")]
    TooLarge,
    #[error("payload nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Encodes `packet` into one msgpack map. `attachments` must hold exactly
/// `packet.attachments` buffers; each placeholder in `data` is written as the `bin` of the
/// attachment it names (placeholders are left as plain maps when `packet.attachments == 0`).
pub fn encode(packet: &Packet, attachments: &[Bytes]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(32 + packet.nsp.len());
    encode_into(&mut out, packet, attachments)?;
    Ok(out)
}

/// Appends the encoding of `packet` to `out` (see [`encode`]). On error `out` is left as it
/// was.
pub fn encode_into(
    out: &mut Vec<u8>,
    packet: &Packet,
    attachments: &[Bytes],
) -> Result<(), EncodeError> {
    if attachments.len() != packet.attachments {
        return Err(EncodeError::AttachmentCount {
            announced: packet.attachments,
            given: attachments.len(),
        });
    }
    let start = out.len();
    let res = write_packet(
        out,
        wire_type(packet.kind),
        &packet.nsp,
        packet.id,
        packet.data.as_ref().map(Data::Whole),
        attachments,
    );
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Fast path for an EVENT: appends `{type:2, nsp, data:[name, ...args], id?}` to `out`
/// without building a [`Packet`]. With non-empty `attachments`, placeholders in `args` are
/// written as their `bin`.
pub fn encode_event_into(
    out: &mut Vec<u8>,
    nsp: &str,
    name: &str,
    args: &[Value],
    id: Option<u64>,
    attachments: &[Bytes],
) -> Result<(), EncodeError> {
    let start = out.len();
    let res = write_packet(
        out,
        PacketType::Event as u8,
        nsp,
        id,
        Some(Data::Event(name, args)),
        attachments,
    );
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Fast path for an ACK: appends `{type:3, nsp, data:args, id}` to `out`.
pub fn encode_ack_into(
    out: &mut Vec<u8>,
    nsp: &str,
    id: u64,
    args: &[Value],
    attachments: &[Bytes],
) -> Result<(), EncodeError> {
    let start = out.len();
    let res = write_packet(
        out,
        PacketType::Ack as u8,
        nsp,
        Some(id),
        Some(Data::Args(args)),
        attachments,
    );
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Decodes one binary Engine.IO message. Returns the packet (binary values replaced by
/// placeholders, see the module docs) and the binary values in placeholder order. Applies
/// the parser's checks (type 0..4, string `nsp`, integer `id`, no trailing bytes) and the
/// payload rules of docs/ARCHITECTURE.md#socketio-v5.
pub fn decode(input: &[u8]) -> Result<(Packet, Vec<Bytes>), DecodeError> {
    let mut rd = Reader {
        buf: input,
        attachments: Vec::new(),
    };
    let len = rd
        .map_len()?
        .ok_or(DecodeError::InvalidPayload("msgpack packet must be a map"))?;
    let (mut kind, mut nsp, mut data, mut id) = (None, None, None, None);
    for _ in 0..len {
        let key = rd.key()?;
        let before = rd.attachments.len();
        let value = rd.value(0)?;
        let slot = match key {
            "type" => &mut kind,
            "nsp" => &mut nsp,
            "data" => &mut data,
            "id" => &mut id,
            _ => {
                rd.attachments.truncate(before);
                continue;
            }
        };
        if slot.is_some() {
            return Err(DecodeError::InvalidPayload(
                "duplicate key in msgpack packet",
            ));
        }
        if key != "data" {
            rd.attachments.truncate(before);
        }
        *slot = Some(value);
    }
    if !rd.buf.is_empty() {
        return Err(DecodeError::InvalidPayload(
            "trailing bytes after msgpack packet",
        ));
    }
    let kind = match kind.flatten().as_ref().and_then(Value::as_u64) {
        Some(0) => PacketType::Connect,
        Some(1) => PacketType::Disconnect,
        Some(2) => PacketType::Event,
        Some(3) => PacketType::Ack,
        Some(4) => PacketType::ConnectError,
        _ => {
            return Err(DecodeError::InvalidPayload(
                "msgpack type must be an integer 0..4",
            ));
        }
    };
    let Some(Some(Value::String(nsp))) = nsp else {
        return Err(DecodeError::InvalidPayload("msgpack nsp must be a string"));
    };
    if nsp.len() > crate::socketio::MAX_NAMESPACE_BYTES {
        // The bound of the text form (`socketio::Header::scan`).
        return Err(DecodeError::NamespaceTooLong);
    }
    let id = match id.flatten() {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(DecodeError::InvalidPayload(
            "msgpack id must be a non-negative integer",
        ))?),
    };
    let attachments = rd.attachments;
    let kind = match kind {
        PacketType::Event if !attachments.is_empty() => PacketType::BinaryEvent,
        PacketType::Ack if !attachments.is_empty() => PacketType::BinaryAck,
        k => k,
    };
    let data = data.flatten();
    validate(kind, data.as_ref(), attachments.len())?;
    let packet = Packet {
        kind,
        nsp,
        id,
        data,
        attachments: attachments.len(),
    };
    Ok((packet, attachments))
}

/// The `type` written on the wire: the binary variants do not exist in this parser.
fn wire_type(kind: PacketType) -> u8 {
    match kind {
        PacketType::BinaryEvent => PacketType::Event as u8,
        PacketType::BinaryAck => PacketType::Ack as u8,
        k => k as u8,
    }
}

/// What goes under `data`: a whole value, or an event / ack array written without
/// building it.
enum Data<'a> {
    Whole(&'a Value),
    Event(&'a str, &'a [Value]),
    Args(&'a [Value]),
}

fn write_packet(
    out: &mut Vec<u8>,
    kind: u8,
    nsp: &str,
    id: Option<u64>,
    data: Option<Data<'_>>,
    attachments: &[Bytes],
) -> Result<(), EncodeError> {
    let len = 2 + u32::from(data.is_some()) + u32::from(id.is_some());
    rmp::encode::write_map_len(out, len).map_err(|_| EncodeError::TooLarge)?;
    write_str(out, "type")?;
    rmp::encode::write_uint(out, u64::from(kind)).map_err(|_| EncodeError::TooLarge)?;
    write_str(out, "nsp")?;
    write_str(out, if nsp.is_empty() { "/" } else { nsp })?;
    if let Some(data) = data {
        write_str(out, "data")?;
        match data {
            Data::Whole(v) => write_value(out, v, attachments, 0)?,
            Data::Event(name, args) => {
                write_array_len(out, args.len() + 1)?;
                write_str(out, name)?;
                for arg in args {
                    write_value(out, arg, attachments, 1)?;
                }
            }
            Data::Args(args) => {
                write_array_len(out, args.len())?;
                for arg in args {
                    write_value(out, arg, attachments, 1)?;
                }
            }
        }
    }
    if let Some(id) = id {
        write_str(out, "id")?;
        rmp::encode::write_uint(out, id).map_err(|_| EncodeError::TooLarge)?;
    }
    Ok(())
}

fn len_u32(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLarge)
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    len_u32(s.len())?;
    rmp::encode::write_str(out, s).map_err(|_| EncodeError::TooLarge)
}

fn write_array_len(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    rmp::encode::write_array_len(out, len_u32(len)?).map_err(|_| EncodeError::TooLarge)?;
    Ok(())
}

/// Writes one payload value; with attachments, placeholders become `bin`.
fn write_value(
    out: &mut Vec<u8>,
    value: &Value,
    attachments: &[Bytes],
    depth: usize,
) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    match value {
        Value::Null => rmp::encode::write_nil(out).map_err(|_| EncodeError::TooLarge),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(|_| EncodeError::TooLarge),
        Value::Number(n) => {
            let res = if let Some(u) = n.as_u64() {
                rmp::encode::write_uint(out, u).map(|_| ())
            } else if let Some(i) = n.as_i64() {
                rmp::encode::write_sint(out, i).map(|_| ())
            } else {
                rmp::encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN))
            };
            res.map_err(|_| EncodeError::TooLarge)
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            write_array_len(out, items.len())?;
            items
                .iter()
                .try_for_each(|v| write_value(out, v, attachments, depth + 1))
        }
        Value::Object(map) => {
            if !attachments.is_empty()
                && let Some(num) = placeholder_num(map)
            {
                let bin = usize::try_from(num)
                    .ok()
                    .and_then(|i| attachments.get(i))
                    .ok_or(EncodeError::MissingAttachment(num))?;
                len_u32(bin.len())?;
                return rmp::encode::write_bin(out, bin).map_err(|_| EncodeError::TooLarge);
            }
            rmp::encode::write_map_len(out, len_u32(map.len())?)
                .map_err(|_| EncodeError::TooLarge)?;
            for (k, v) in map {
                write_str(out, k)?;
                write_value(out, v, attachments, depth + 1)?;
            }
            Ok(())
        }
    }
}

/// `Some(num)` for `{"_placeholder":true,"num":<u64>}` (exactly those two keys).
fn placeholder_num(map: &Map<String, Value>) -> Option<u64> {
    if map.len() != 2 || map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    map.get("num").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests;
