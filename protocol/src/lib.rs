//! Engine.IO v4 and Socket.IO v5 packet codec, shared by `target-server` and the swarm.
//!
//! Pure: receives strings and bytes, returns packets (and the reverse). No I/O, no tokio,
//! no clocks. Layers:
//!
//! - [`engineio`]: Engine.IO packets (`0`..`6`), one per WebSocket frame, or several per
//!   HTTP long-polling body separated by `\x1e` with binary as `b` + base64.
//! - [`socketio`]: Socket.IO packets carried inside Engine.IO `message` packets:
//!   `<type>[<n>-][<nsp>,][<id>][<json>]`, plus binary attachment reassembly.
//! - [`msgpack`]: the same Socket.IO packets in the form of the `socket.io-msgpack-parser`
//!   npm package (one msgpack map per binary Engine.IO message, binary values inline).
//!
//! See `docs/ARCHITECTURE.md#protocol-facts-the-code-relies-on` for the wire formats this crate implements.

pub mod engineio;
mod json;
pub mod msgpack;
pub mod socketio;

pub use engineio::{Handshake, Packet as EioPacket};
pub use socketio::{Packet as SioPacket, PacketType as SioPacketType};

/// Why a frame, body or packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("invalid base64 in binary packet")]
    Base64,
    #[error("invalid JSON payload: {0}")]
    Json(String),
    #[error("invalid attachment count")]
    Attachments,
    #[error("payload not allowed for this packet type: {0}")]
    InvalidPayload(&'static str),
    #[error("reserved event name {0:?}")]
    ReservedEvent(String),
    #[error("binary data where text was expected")]
    UnexpectedBinary,
}
