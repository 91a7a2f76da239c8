//! The Socket.IO packet header `<type>[<n>-][<nsp>,][<id>]`, read in place
//! (docs/ARCHITECTURE.md#socketio-v5).
//!
//! Receives: the text of an Engine.IO message without its leading `4`, any text at all
//! (a hostile peer's included).
//! Emits: a [`Header`] (type, attachment count, namespace borrowed from the text, ack id,
//! and the byte offset where the JSON payload starts), or a [`HeaderError`].
//! Must not: allocate, panic, or look past the header: the namespace search stops after
//! [`MAX_NAMESPACE_BYTES`], numbers are read with checked arithmetic.
//!
//! This is the workspace's one reader of the header: [`super::Packet::decode`] uses it
//! before parsing the JSON, target-server's fast echo path (`sio/raw.rs`) and the swarm's
//! inbound reader (`driver/inbound.rs`, `driver/socketio.rs`) use it on their own.

use super::PacketType;

/// Most binary attachments one packet may announce (`<n>-`). Larger counts are refused
/// rather than carried: no peer sends that many, and the swarm keeps the count in a `u16`.
pub const MAX_ATTACHMENTS: usize = u16::MAX as usize;

/// Longest namespace accepted, in bytes including the leading `/`. Bounds the search for
/// the comma that ends it, so a header costs the same whatever follows it.
pub const MAX_NAMESPACE_BYTES: usize = 1024;

/// The header of one Socket.IO text packet, borrowed from the packet text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub kind: PacketType,
    /// `<n>` of `<n>-`, for BINARY_EVENT / BINARY_ACK; 0 for the other types.
    pub attachments: usize,
    /// The namespace as written (up to the first comma, or to the end of the text when
    /// there is no comma), or `/` when the text has none.
    pub nsp: &'a str,
    /// The ack id: the digits after the namespace.
    pub id: Option<u64>,
    /// Byte offset of the payload (the JSON, if any) in the text; always a char boundary,
    /// at most the text's length.
    pub data_at: usize,
}

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("binary packet without a `<count>-` attachment count")]
    Attachments,
    #[error("more than {MAX_ATTACHMENTS} attachments announced")]
    TooManyAttachments,
    #[error("namespace longer than {MAX_NAMESPACE_BYTES} bytes")]
    NamespaceTooLong,
    #[error("ack id out of range")]
    AckIdOverflow,
}

impl<'a> Header<'a> {
    /// Reads the header at the start of `text`. Every byte the header is made of (type
    /// digit, count digits, `-`, `/`, `,`, id digits) is ASCII, so every offset it returns or
    /// slices at is a char boundary.
    pub fn scan(text: &'a str) -> Result<Header<'a>, HeaderError> {
        let b = text.as_bytes();
        let first = *b.first().ok_or(HeaderError::Empty)?;
        let kind = PacketType::from_digit(first)
            .ok_or_else(|| HeaderError::UnknownType(text.chars().next().unwrap_or('\0')))?;
        let mut i = 1;

        let mut attachments = 0;
        if kind.is_binary() {
            let (n, end) = number(b, i);
            if end == i || b.get(end) != Some(&b'-') {
                return Err(HeaderError::Attachments);
            }
            attachments = n
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= MAX_ATTACHMENTS)
                .ok_or(HeaderError::TooManyAttachments)?;
            i = end + 1;
        }

        let mut nsp = "/";
        if b.get(i) == Some(&b'/') {
            let window = &b[i..b.len().min(i + MAX_NAMESPACE_BYTES + 1)];
            let end = match window.iter().position(|&c| c == b',') {
                Some(p) => i + p,
                None if b.len() - i <= MAX_NAMESPACE_BYTES => b.len(),
                None => return Err(HeaderError::NamespaceTooLong),
            };
            // `i` is at a `/` and `end` at a `,` or the end: both char boundaries.
            nsp = &text[i..end];
            i = (end + 1).min(b.len());
        }

        let (id, end) = number(b, i);
        let id = if end > i {
            Some(id.ok_or(HeaderError::AckIdOverflow)?)
        } else {
            None
        };
        Ok(Header {
            kind,
            attachments,
            nsp,
            id,
            data_at: end,
        })
    }

    /// The payload text after the header (empty when the packet has none).
    pub fn data(&self, text: &'a str) -> &'a str {
        text.get(self.data_at..).unwrap_or("")
    }
}

/// The decimal number whose digits start at `start` (`None` if it exceeds `u64`), and the
/// offset after its last digit (`start` when there is none). Leading zeros are allowed, as
/// the reference parser's `Number()` allows them.
fn number(b: &[u8], start: usize) -> (Option<u64>, usize) {
    let mut value = Some(0u64);
    let mut end = start;
    while let Some(&c) = b.get(end).filter(|c| c.is_ascii_digit()) {
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(c - b'0')));
        end += 1;
    }
    (value, end)
}

#[cfg(test)]
mod tests;
