//! Socket.IO with the msgpack parser (`--parser msgpack`, the npm `socket.io-msgpack-parser`):
//! the session's side of [`protocol::msgpack`].
//!
//! Receives: the Engine.IO message texts the session builds for the default parser (`4` +
//! Socket.IO packet: CONNECT, EVENT with ack id, ACK, DISCONNECT), and binary frames from
//! the server. Emits: those packets as one msgpack map per binary frame (`b`+base64 in a
//! polling body), and each received msgpack packet in the default parser's text form, so
//! the session's one text path (acks, events, CONNECT reply, recovery offset) handles both.
//! Must not: touch Engine.IO control frames (`2`, `3`, `1`, `5` stay text), or panic on
//! any frame.
//!
//! Both directions convert through [`protocol::SioPacket`]: one parse per message more than
//! the default parser costs, for one code path.

use bytes::Bytes;
use protocol::SioPacketType as Kind;
use protocol::msgpack;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::session::FrameTemplates;
use crate::sample::{DisconnectReason, ErrorKind};

/// The msgpack bytes of an Engine.IO message text `4<packet>`; `None` for any other
/// Engine.IO packet (those stay text), `Some(Err)` for a packet that does not parse.
fn encode(text: &str) -> Option<Result<Vec<u8>, ()>> {
    let packet = text.strip_prefix('4')?;
    Some(
        protocol::SioPacket::decode(packet)
            .ok()
            .and_then(|p| msgpack::encode(&p, &[]).ok())
            .ok_or(()),
    )
}

/// The WebSocket message carrying `text`: itself with the default parser, a binary
/// msgpack frame for a Socket.IO packet with the msgpack parser.
pub(super) fn ws_message(f: &FrameTemplates, text: Utf8Bytes) -> Result<Message, DisconnectReason> {
    if !f.msgpack {
        return Ok(Message::Text(text));
    }
    match encode(text.as_str()) {
        None => Ok(Message::Text(text)),
        Some(Ok(bytes)) => Ok(Message::Binary(Bytes::from(bytes))),
        Some(Err(())) => Err(DisconnectReason::Reset),
    }
}

/// A polling POST body carrying `text` (one Engine.IO packet): with the msgpack parser a
/// Socket.IO packet goes as `b`+base64 of its msgpack form.
pub(super) fn polling_body(f: &FrameTemplates, text: &str) -> Result<String, ErrorKind> {
    if !f.msgpack {
        return Ok(text.to_string());
    }
    match encode(text) {
        None => Ok(text.to_string()),
        Some(Ok(bytes)) => Ok(protocol::engineio::encode_payload(&[
            protocol::EioPacket::Binary(Bytes::from(bytes)),
        ])),
        Some(Err(())) => Err(ErrorKind::Protocol),
    }
}

/// The Engine.IO message text (`4` + packet) the default parser would have received for
/// this msgpack frame. Binary values stay as placeholders and no attachments are announced
/// (they are inline in the frame, nothing else follows): a binary ack reads as an ack.
pub(super) fn eio_text(frame: &[u8]) -> Result<String, ErrorKind> {
    let (mut p, _binaries) = msgpack::decode(frame).map_err(|_| ErrorKind::Protocol)?;
    p.kind = match p.kind {
        Kind::BinaryEvent => Kind::Event,
        Kind::BinaryAck => Kind::Ack,
        k => k,
    };
    p.attachments = 0;
    Ok(p.to_eio_message())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    #[test]
    fn text_packets_become_msgpack_and_control_frames_stay_text() {
        let bytes = encode(r#"421["echo",{"x":1}]"#).unwrap().unwrap();
        let (p, _) = msgpack::decode(&bytes).unwrap();
        assert_eq!(
            p,
            protocol::SioPacket::event("/", "echo", vec![json!({"x":1})], Some(1))
        );
        assert!(encode("3").is_none());
        assert!(encode("2").is_none());
        assert_eq!(encode("4garbage"), Some(Err(())));
        let (p, _) = msgpack::decode(&encode("41/admin,").unwrap().unwrap()).unwrap();
        assert_eq!((p.kind, p.nsp.as_str()), (Kind::Disconnect, "/admin"));
    }

    /// Frames as socket.io 4.8 with socket.io-msgpack-parser 3.0.2 writes them.
    #[test]
    fn server_frames_read_as_the_default_parser_text() {
        // {type:0, data:{sid:"abc"}, nsp:"/"}
        let connect = hex("83a47479706500a46461746181a3736964a3616263a36e7370a12f");
        assert_eq!(eio_text(&connect).unwrap(), r#"40{"sid":"abc"}"#);
        // {id:7, type:3, data:[{x:1}], nsp:"/"}
        let ack = hex("84a2696407a47479706503a4646174619181a17801a36e7370a12f");
        assert_eq!(eio_text(&ack).unwrap(), r#"437[{"x":1}]"#);
        // {id:300, type:3, data:[<Buffer 01 02 03>], nsp:"/admin"}: an ack, not 461-...
        let bin_ack = hex("84a26964cd012ca47479706503a46461746191c403010203a36e7370a62f61646d696e");
        assert_eq!(
            eio_text(&bin_ack).unwrap(),
            r#"43/admin,300[{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(eio_text(b"\x93\x01"), Err(ErrorKind::Protocol));
    }
}
