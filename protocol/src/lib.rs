//! Engine.IO v4 and Socket.IO v5 packet codec, and the syntax of values on command lines,
//! shared by `target-server` and the swarm.
//!
//! Pure: receives strings and bytes, returns packets (and the reverse). No I/O, no tokio,
//! no clocks. Layers:
//!
//! - [`engineio`]: Engine.IO packets (`0`..`6`), one per WebSocket frame, or several per
//!   HTTP long-polling body separated by `\x1e` with binary as `b` + base64.
//! - [`socketio`]: Socket.IO packets carried inside Engine.IO `message` packets:
//!   `<type>[<n>-][<nsp>,][<id>][<json>]`, plus binary attachment reassembly. The header
//!   before the JSON is read by [`socketio::Header::scan`], without allocating; the server's
//!   and the swarm's fast paths use it too.
//! - [`units`]: durations, rates, byte sizes and counts as people write them, one set of
//!   rules for both binaries' flags and the swarm's plan files.
//! - [`msgpack`]: the same Socket.IO packets in the form of the `socket.io-msgpack-parser`
//!   npm package (one msgpack map per binary Engine.IO message, binary values inline).
//!
//! See `docs/ARCHITECTURE.md#protocol-facts-the-code-relies-on` for the wire formats this crate implements.

pub mod engineio;
mod json;
pub mod msgpack;
pub mod socketio;
pub mod units;

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
    #[error("namespace longer than {} bytes", socketio::MAX_NAMESPACE_BYTES)]
    NamespaceTooLong,
}

/// The decoder's errors for a bad header, as they were before the header had a reader of
/// its own: a count beyond [`socketio::MAX_ATTACHMENTS`] is a bad count, an ack id beyond
/// `u64` an invalid payload.
impl From<socketio::HeaderError> for DecodeError {
    fn from(e: socketio::HeaderError) -> DecodeError {
        use socketio::HeaderError as H;
        match e {
            H::Empty => DecodeError::Empty,
            H::UnknownType(c) => DecodeError::UnknownType(c),
            H::Attachments | H::TooManyAttachments => DecodeError::Attachments,
            H::NamespaceTooLong => DecodeError::NamespaceTooLong,
            H::AckIdOverflow => DecodeError::InvalidPayload("ack id out of range"),
        }
    }
}
