//! Incoming frames of a [`Session`]: what each one means to the driver loop.
//!
//! Receives: WebSocket messages (raw WS data frames, Engine.IO / Socket.IO text packets,
//! binary attachments or msgpack packets, pings, pongs, closes), or raw bytes for a muted
//! raw WS client.
//! Emits: [`Incoming`] values, and in the session what it owes the server (a pong due, an
//! ack due) and the connection state recovery offset (the last string argument of every
//! event, once the server gave a `pid`).
//! Must not: build JSON values on the hot path (ack headers and event names are matched as
//! bytes; the payload object is found by [`payload::find`]), or answer pings itself.

use futures_util::StreamExt;
use protocol::SioPacketType;
use protocol::socketio::Header;
use tokio_tungstenite::tungstenite::Message;

use super::session::{CONTROL_ID_BASE, FrameTemplates, Incoming, Session, disconnect_reason};
use crate::model::Protocol;
use crate::payload;
use crate::sample::{DisconnectReason, ErrorKind};

/// Marks binary attachments that do not complete a reply.
const NO_REPLY: u32 = u32::MAX;

impl Session {
    /// Waits for the next frame and says what it meant. Cancel-safe.
    pub async fn recv(&mut self, f: &FrameTemplates) -> Incoming {
        if self.muted && f.protocol == Protocol::Ws {
            // Boxed: only muted clients pay for this future.
            return Box::pin(self.read_muted()).await;
        }
        if let Some(text) = self.early.pop_front() {
            return self.eio_text(f, &text);
        }
        let msg = match self.ws.next().await {
            None => return Incoming::Closed(DisconnectReason::Eof),
            Some(Err(e)) => return Incoming::Closed(disconnect_reason(&e)),
            Some(Ok(m)) => m,
        };
        match (msg, f.protocol) {
            (Message::Text(t), Protocol::Ws) if self.flow => Incoming::FlowFrame(t.to_string()),
            (Message::Binary(b), Protocol::Ws) if self.flow => match std::str::from_utf8(&b) {
                Ok(t) => Incoming::FlowFrame(t.to_string()),
                Err(_) => Incoming::Nothing,
            },
            (Message::Text(t), Protocol::Ws) => Incoming::Payload(payload::find(t.as_bytes())),
            (Message::Binary(b), Protocol::Ws) => Incoming::Payload(payload::find(&b)),
            (Message::Text(t), Protocol::Socketio) => self.eio_text(f, t.as_str()),
            (Message::Binary(b), Protocol::Socketio) if f.msgpack => {
                match super::sio_msgpack::eio_text(&b) {
                    Ok(text) => self.eio_text(f, &text),
                    Err(e) => Incoming::Error(e),
                }
            }
            (Message::Binary(_), Protocol::Socketio) => self.attachment(f),
            (Message::Close(frame), _) => {
                let code = frame.map_or(1005, |c| u16::from(c.code));
                Incoming::Closed(DisconnectReason::WsClose { code })
            }
            (Message::Ping(_), _) => Incoming::Ping,
            (Message::Pong(data), _) => match <[u8; 8]>::try_from(&data[..]) {
                Ok(b) => Incoming::Pong(u64::from_be_bytes(b)),
                Err(_) => Incoming::Nothing,
            },
            _ => Incoming::Nothing,
        }
    }

    fn eio_text(&mut self, f: &FrameTemplates, text: &str) -> Incoming {
        match text.as_bytes().first() {
            Some(b'2') => {
                self.pong_due = !self.muted;
                Incoming::Ping
            }
            Some(b'1') => Incoming::Closed(DisconnectReason::EioClose),
            Some(b'3' | b'6' | b'0') => Incoming::Nothing,
            Some(b'4') => self.sio(f, &text[1..]),
            _ => Incoming::Error(ErrorKind::Protocol),
        }
    }

    fn sio(&mut self, f: &FrameTemplates, s: &str) -> Incoming {
        // The one header reader (docs/ARCHITECTURE.md#socketio-v5): no allocation, and
        // a malformed header (`4é`, `45+1-`, an ack id beyond u64...) is an error here as
        // it is for the full decoder.
        let Ok(h) = Header::scan(s) else {
            return Incoming::Error(ErrorKind::Protocol);
        };
        let Ok(attachments) = u16::try_from(h.attachments) else {
            return Incoming::Error(ErrorKind::Protocol);
        };
        // Namespace: ours, or another one (ignored).
        if h.nsp != namespace(f) {
            return self.skip_attachments(attachments);
        }
        let body = h.data(s);
        if self.flow {
            return self.flow_packet(&h, body, attachments);
        }
        match h.kind {
            SioPacketType::Ack | SioPacketType::BinaryAck => {
                let Some(id) = h.id.and_then(|i| u32::try_from(i).ok()) else {
                    return Incoming::Error(ErrorKind::Protocol);
                };
                if id >= CONTROL_ID_BASE {
                    return Incoming::ControlAck(id);
                }
                if !f.ack {
                    return self.skip_attachments(attachments);
                }
                if attachments > 0 {
                    self.bin = Some((id, attachments));
                    return Incoming::Nothing;
                }
                Incoming::Reply(id)
            }
            SioPacketType::Event | SioPacketType::BinaryEvent => {
                if let Some(id) = h.id {
                    self.ack_due = Some(id);
                }
                if self.pid.is_some() {
                    self.remember_offset(body);
                }
                let b = body.as_bytes();
                if attachments == 0 && is_event(b, &f.subscribe_args) {
                    return Incoming::Broadcast(payload::find(b));
                }
                let is_reply = f.reply_args.as_ref().is_some_and(|r| b.starts_with(r));
                if is_reply && attachments == 0 {
                    return Incoming::Payload(payload::find(b));
                }
                self.skip_attachments(attachments)
            }
            SioPacketType::Disconnect => Incoming::Closed(DisconnectReason::SioDisconnect),
            SioPacketType::ConnectError => Incoming::Error(ErrorKind::ConnectError),
            SioPacketType::Connect => Incoming::Nothing,
        }
    }

    /// A flow client's packet: acks and events handed over whole (binary ones skipped).
    fn flow_packet(&mut self, h: &Header, body: &str, attachments: u16) -> Incoming {
        if attachments > 0 {
            return self.skip_attachments(attachments);
        }
        match h.kind {
            SioPacketType::Ack => match h.id.and_then(|i| u32::try_from(i).ok()) {
                Some(id) => Incoming::FlowAck(id, body.to_string()),
                None => Incoming::Error(ErrorKind::Protocol),
            },
            SioPacketType::Event => {
                if let Some(id) = h.id {
                    self.ack_due = Some(id);
                }
                if self.pid.is_some() {
                    self.remember_offset(body);
                }
                Incoming::FlowFrame(body.to_string())
            }
            SioPacketType::Disconnect => Incoming::Closed(DisconnectReason::SioDisconnect),
            SioPacketType::ConnectError => Incoming::Error(ErrorKind::ConnectError),
            _ => Incoming::Nothing,
        }
    }

    /// Connection state recovery: the server appends the offset as the last argument.
    fn remember_offset(&mut self, body: &str) {
        let Some(inner) = body.strip_suffix("\"]") else {
            return;
        };
        let Some(start) = inner.rfind('"') else {
            return;
        };
        if start == 0 || inner.as_bytes()[start - 1] != b',' {
            return;
        }
        let offset = &inner[start + 1..];
        if offset.contains('\\') {
            return;
        }
        match self.offset.as_mut() {
            Some(o) => {
                o.clear();
                o.push_str(offset);
            }
            None => self.offset = Some(offset.to_string()),
        }
    }

    fn skip_attachments(&mut self, n: u16) -> Incoming {
        if n > 0 {
            self.bin = Some((NO_REPLY, n));
        }
        Incoming::Nothing
    }

    fn attachment(&mut self, f: &FrameTemplates) -> Incoming {
        let Some((id, left)) = self.bin.as_mut() else {
            return Incoming::Error(ErrorKind::Protocol);
        };
        *left -= 1;
        if *left > 0 {
            return Incoming::Nothing;
        }
        let id = *id;
        self.bin = None;
        if id == NO_REPLY || !f.ack {
            Incoming::Nothing
        } else {
            Incoming::Reply(id)
        }
    }
}

/// The namespace of the run's Socket.IO packets, as `Header::scan` reads it: `/` when the
/// frames carry none (`nsp_part` is `"/admin,"` or empty).
pub(super) fn namespace(f: &FrameTemplates) -> &str {
    f.nsp_part.strip_suffix(',').unwrap_or("/")
}

/// `body` is `["<name>"` followed by `,` or `]`.
fn is_event(body: &[u8], head: &[u8]) -> bool {
    body.starts_with(head) && matches!(body.get(head.len()), Some(b',' | b']'))
}

/// A muted raw WS client's own frame reader: skips every frame, reports a close frame's
/// code. Server frames are unmasked (RFC 6455 §5.1).
#[derive(Debug, Default)]
pub struct MutedReader {
    /// Header bytes gathered so far.
    head: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// The current frame is a close frame: its first two payload bytes are the code.
    close: Option<Vec<u8>>,
}

impl MutedReader {
    /// Feeds raw bytes; returns a close code once a close frame was seen (1005 when it
    /// had none).
    pub fn feed(&mut self, mut data: &[u8]) -> Option<u16> {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = (self.skip as usize).min(data.len());
                if let Some(c) = self.close.as_mut() {
                    c.extend_from_slice(&data[..n.min(2usize.saturating_sub(c.len()))]);
                }
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0
                    && let Some(c) = self.close.take()
                {
                    return Some(code(&c));
                }
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            let h = &self.head;
            if h.len() < 2 {
                continue;
            }
            let len7 = h[1] & 0x7f;
            let need = match len7 {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            if h.len() < need {
                continue;
            }
            let len = match len7 {
                126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                127 => u64::from_be_bytes(h[2..10].try_into().unwrap_or([0; 8])),
                n => u64::from(n),
            };
            let opcode = h[0] & 0x0f;
            self.head.clear();
            if opcode == 0x8 {
                if len == 0 {
                    return Some(1005);
                }
                self.close = Some(Vec::new());
            }
            self.skip = len;
        }
        None
    }
}

fn code(c: &[u8]) -> u16 {
    match c {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 1005,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muted_reader_skips_frames_and_finds_the_close() {
        let mut f = MutedReader::default();
        // A ping with 4 bytes, a text frame of 130 bytes (16-bit length), then close 1011.
        let mut bytes = vec![0x89, 4, 1, 2, 3, 4, 0x81, 126, 0, 130];
        bytes.extend(std::iter::repeat_n(b'x', 130));
        bytes.extend([0x88, 2, 0x03, 0xf3]);
        // Fed in awkward pieces.
        let mut got = None;
        for chunk in bytes.chunks(3) {
            if let Some(c) = f.feed(chunk) {
                got = Some(c);
            }
        }
        assert_eq!(got, Some(1011));
        assert_eq!(MutedReader::default().feed(&[0x88, 0]), Some(1005));
    }

    /// Regression: `4é` (a non-ASCII byte after the Engine.IO type) used to panic the
    /// client task in `sio` (a slice at byte 1 inside `é`); now it is a protocol error.
    #[tokio::test]
    async fn non_ascii_socketio_type_is_a_protocol_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let _server = accepted.unwrap();
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            super::super::net::Stream::plain(client.unwrap()),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let mut session = Session::new(ws);
        let f = super::super::socketio::tests::frames("");
        for text in ["4é", "4€[]", "4\u{7f}"] {
            assert_eq!(
                session.eio_text(&f, text),
                Incoming::Error(ErrorKind::Protocol),
                "{text:?}"
            );
        }
        let f = super::super::socketio::tests::frames("/admin,");
        assert_eq!(
            session.eio_text(&f, "4é"),
            Incoming::Error(ErrorKind::Protocol)
        );
        // Still reads what it should.
        assert_eq!(
            session.eio_text(&f, "41/admin,"),
            Incoming::Closed(DisconnectReason::SioDisconnect)
        );
    }

    /// A session over a real loopback socket (the server end is returned to keep it open);
    /// `eio_text` and `attachment` never touch it.
    async fn loopback_session() -> (Session, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            super::super::net::Stream::plain(client.unwrap()),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        (Session::new(ws), accepted.unwrap().0)
    }

    /// Regressions: headers the full decoder reads one way and this reader read another
    /// (each assertion failed with the reader's own header code, before
    /// `protocol::socketio::Header::scan`).
    #[tokio::test]
    async fn headers_are_read_as_the_decoder_reads_them() {
        let (mut session, _server) = loopback_session().await;
        let admin = super::super::socketio::tests::frames("/admin,");
        let main = super::super::socketio::tests::frames("");
        let mut wrong = Vec::new();
        fn check(
            wrong: &mut Vec<String>,
            session: &mut Session,
            f: &FrameTemplates,
            text: &str,
            ok: fn(&Incoming) -> bool,
        ) {
            let got = session.eio_text(f, text);
            if !ok(&got) {
                wrong.push(format!("{text}: {got:?}"));
            }
        }
        // `41/admin` without a comma leaves namespace `/admin` (it was taken for another
        // namespace and ignored).
        check(&mut wrong, &mut session, &admin, "41/admin", |i| {
            *i == Incoming::Closed(DisconnectReason::SioDisconnect)
        });
        // `/,` spells the main namespace (it was taken for another one).
        check(
            &mut wrong,
            &mut session,
            &main,
            r#"42/,["tick",{"a":1}]"#,
            |i| matches!(i, Incoming::Broadcast(_)),
        );
        // `+1-` is not an attachment count (Rust's `u16` parse accepted the sign, so the
        // client waited for an attachment).
        for text in [r#"45+1-["x"]"#, r#"46+1-1[]"#] {
            check(&mut wrong, &mut session, &main, text, |i| {
                *i == Incoming::Error(ErrorKind::Protocol)
            });
            if session.bin.is_some() {
                wrong.push(format!("{text}: attachments awaited"));
                session.bin = None;
            }
        }
        // An ack id beyond u64 makes the packet invalid (the event was taken as one
        // without an ack id).
        check(
            &mut wrong,
            &mut session,
            &main,
            r#"4299999999999999999999["x"]"#,
            |i| *i == Incoming::Error(ErrorKind::Protocol),
        );
        assert_eq!(wrong, Vec::<String>::new());
        assert_eq!(session.ack_due, None);
        // Still reads what it should.
        assert!(matches!(
            session.eio_text(&main, r#"42/,7["tick"]"#),
            Incoming::Broadcast(_)
        ));
        assert_eq!(session.ack_due, Some(7));
        assert_eq!(session.eio_text(&main, "431[]"), Incoming::Reply(1));
        assert_eq!(session.eio_text(&admin, "43/admin,2[]"), Incoming::Reply(2));
        assert_eq!(session.eio_text(&admin, "431[]"), Incoming::Nothing);
        assert_eq!(session.eio_text(&main, "461-3[{}]"), Incoming::Nothing);
        assert_eq!(session.attachment(&main), Incoming::Reply(3));
    }

    /// Any sequence of frames a server sends (texts of any bytes, header-like texts, binary
    /// frames), on a session kept across cases: the inbound reader never panics.
    #[tokio::test]
    async fn inbound_frames_never_panics() {
        use proptest::prelude::*;
        let (session, _server) = loopback_session().await;
        let session = std::cell::RefCell::new(session);
        let frame = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..32)
                .prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
            "4[0-7é]([0-9+]{0,6}-)?(/[a-zé]{0,6},?)?[0-9]{0,22}(\\[\"tick\"|\\[\"x\",\"[0-9]\"\\]|\\[\\])?"
                .prop_map(Some),
            "4?[0-6]\\PC{0,12}".prop_map(Some),
            Just(None),
        ];
        let case = (
            proptest::collection::vec(frame, 1..8),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        );
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&case, |(frames, admin, ack, recovering)| {
            let mut f = super::super::socketio::tests::frames(if admin { "/admin," } else { "" });
            f.ack = ack;
            let mut s = session.borrow_mut();
            s.pid = recovering.then(|| "p".to_string());
            for frame in frames {
                match frame {
                    Some(text) => {
                        let _ = s.eio_text(&f, &text);
                    }
                    None => {
                        let _ = s.attachment(&f);
                    }
                }
                if let Some((_, left)) = s.bin {
                    prop_assert!(left > 0);
                }
            }
            Ok(())
        });
        result.unwrap();
    }

    proptest::proptest! {
        /// A muted raw WS client's frame reader on any bytes, in any pieces.
        #[test]
        fn muted_reader_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cut in 1usize..40,
        ) {
            let mut f = MutedReader::default();
            for chunk in bytes.chunks(cut) {
                let _ = f.feed(chunk);
            }
        }
    }

    #[test]
    fn event_heads() {
        assert!(is_event(br#"["tick",{"a":1}]"#, br#"["tick""#));
        assert!(is_event(br#"["tick"]"#, br#"["tick""#));
        assert!(!is_event(br#"["ticker",1]"#, br#"["tick""#));
    }
}
