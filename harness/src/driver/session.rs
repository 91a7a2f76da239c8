//! A connected client socket and its framing: raw WebSocket echo, or Engine.IO v4 /
//! Socket.IO v5 over a WebSocket.
//!
//! Receives: frames from the server; echo requests from the driver loop. Emits:
//! [`Incoming`] (a reply's seq, a close and its reason, an error kind), and the frames it
//! owes the server (`3` for every `2`, acks the server asked for).
//! Must not: time anything or decide what a frame means for the statistics; allocate per
//! message beyond the outgoing frame itself (the hot path parses ack headers by hand and
//! never builds JSON values).

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::cli::{Protocol, Transport};
use crate::driver::Ctx;
use crate::driver::net::WsStream;
use crate::payload;
use crate::plan::{Endpoint, Plan};
use crate::sample::{ConnectPhases, DisconnectReason, ErrorKind};

/// Per-run frame templates (built once, shared by every client).
#[derive(Debug, Clone)]
pub struct Frames {
    pub protocol: Protocol,
    pub transport: Transport,
    /// Raw WS: path and query of the upgrade request.
    pub ws_path: String,
    /// Socket.IO: Engine.IO request paths, without `sid`.
    pub eio_ws_path: String,
    pub eio_polling_path: String,
    /// `""` for `/`, else `/nsp,` (as it appears after the packet type).
    pub nsp_part: String,
    /// `40<nsp,><auth>`: the CONNECT frame.
    pub connect: String,
    /// `42<nsp,>`: start of an EVENT frame.
    pub emit_head: Vec<u8>,
    /// `["event",`
    pub emit_args: Vec<u8>,
    /// Ack mode (no `--reply-event`): the EVENT carries the seq as ack id.
    pub ack: bool,
    /// `["reply",` when the server answers with an event.
    pub reply_args: Option<Vec<u8>>,
}

impl Frames {
    pub fn new(plan: &Plan, endpoint: &Endpoint) -> Frames {
        let t = &plan.target;
        let mut query: Vec<String> = Vec::new();
        if let Some(q) = &endpoint.query {
            query.push(q.clone());
        }
        query.extend(t.query.iter().map(|(k, v)| format!("{k}={v}")));
        let extra = query.join("&");
        let ws_path = if extra.is_empty() {
            endpoint.path.clone()
        } else {
            format!("{}?{extra}", endpoint.path)
        };
        let eio = |transport: &str| {
            let mut p = format!("{}?EIO=4&transport={transport}", t.eio_path);
            if !extra.is_empty() {
                p.push('&');
                p.push_str(&extra);
            }
            p
        };
        let nsp = endpoint.path.trim_end_matches('/');
        let nsp_part = if nsp.is_empty() {
            String::new()
        } else {
            format!("{nsp},")
        };
        let connect = format!("40{nsp_part}{}", t.auth.as_deref().unwrap_or(""));
        Frames {
            protocol: t.protocol,
            transport: t.transport,
            ws_path,
            eio_ws_path: eio("websocket"),
            eio_polling_path: eio("polling"),
            emit_head: format!("42{nsp_part}").into_bytes(),
            emit_args: format!("[\"{}\",", t.event).into_bytes(),
            ack: t.reply_event.is_none(),
            reply_args: t
                .reply_event
                .as_ref()
                .map(|r| format!("[\"{r}\",").into_bytes()),
            nsp_part,
            connect,
        }
    }
}

/// What one frame from the server meant to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The reply to the message with this seq.
    Reply(u32),
    /// Nothing the loop has to act on (pings, other namespaces, attachments still due...).
    Nothing,
    Error(ErrorKind),
    Closed(DisconnectReason),
}

/// Marks binary attachments that do not complete a reply.
const NO_REPLY: u32 = u32::MAX;

/// One connected client.
pub struct Session {
    ws: WsStream,
    /// Binary attachments still due: (ack id or NO_REPLY, count).
    bin: Option<(u32, u16)>,
    pong_due: bool,
    ack_due: Option<u64>,
}

impl Session {
    pub(crate) fn new(ws: WsStream) -> Session {
        Session {
            ws,
            bin: None,
            pong_due: false,
            ack_due: None,
        }
    }

    /// Connects as the plan says, recording each phase.
    pub async fn connect(ctx: &Ctx, phases: &mut ConnectPhases) -> Result<Session, ErrorKind> {
        match (ctx.frames.protocol, ctx.frames.transport) {
            (Protocol::Ws, _) => {
                let stream = ctx.conn.open(phases).await?;
                let ws = ctx
                    .conn
                    .websocket(stream, &ctx.frames.ws_path, phases)
                    .await?;
                Ok(Session::new(ws))
            }
            (Protocol::Socketio, Transport::Websocket) => {
                super::socketio::connect_websocket(ctx, phases).await
            }
            (Protocol::Socketio, Transport::Polling) => {
                super::socketio::connect_polling(ctx, phases).await
            }
        }
    }

    /// Sends one echo request carrying `fields`, padded to `size`.
    pub async fn send_echo(
        &mut self,
        f: &Frames,
        buf: &mut BytesMut,
        fields: &payload::Fields,
        size: usize,
    ) -> Result<(), DisconnectReason> {
        buf.reserve(size + f.emit_head.len() + f.emit_args.len() + 16);
        if f.protocol == Protocol::Socketio {
            buf.put_slice(&f.emit_head);
            if f.ack {
                let mut digits = itoa_buf();
                buf.put_slice(itoa(u64::from(fields.seq), &mut digits));
            }
            buf.put_slice(&f.emit_args);
            payload::write(buf, fields, size);
            buf.put_u8(b']');
        } else {
            payload::write(buf, fields, size);
        }
        let text =
            Utf8Bytes::try_from(buf.split().freeze()).map_err(|_| DisconnectReason::Reset)?;
        self.ws
            .send(Message::Text(text))
            .await
            .map_err(|e| disconnect_reason(&e))
    }

    /// Waits for the next frame and says what it meant. Cancel-safe.
    pub async fn recv(&mut self, f: &Frames, run: u32, client: u32) -> Incoming {
        let msg = match self.ws.next().await {
            None => return Incoming::Closed(DisconnectReason::Eof),
            Some(Err(e)) => return Incoming::Closed(disconnect_reason(&e)),
            Some(Ok(m)) => m,
        };
        let ours = |found: Option<payload::Found>| match found {
            Some(p) if p.run == run && p.client == client => Incoming::Reply(p.seq),
            _ => Incoming::Error(ErrorKind::Unmatched),
        };
        match (msg, f.protocol) {
            (Message::Text(t), Protocol::Ws) => ours(payload::find(t.as_bytes())),
            (Message::Binary(b), Protocol::Ws) => ours(payload::find(&b)),
            (Message::Text(t), Protocol::Socketio) => self.eio_text(f, t.as_str(), ours),
            (Message::Binary(_), Protocol::Socketio) => self.attachment(f),
            (Message::Close(frame), _) => {
                let code = frame.map_or(1005, |c| u16::from(c.code));
                Incoming::Closed(DisconnectReason::WsClose { code })
            }
            _ => Incoming::Nothing,
        }
    }

    /// True when the session owes the server a frame (pong, ack).
    pub fn control_due(&self) -> bool {
        self.pong_due || self.ack_due.is_some()
    }

    /// Sends what the session owes the server.
    pub async fn flush_control(&mut self, f: &Frames) -> Result<(), DisconnectReason> {
        if std::mem::take(&mut self.pong_due) {
            self.ws
                .send(Message::text("3"))
                .await
                .map_err(|e| disconnect_reason(&e))?;
        }
        if let Some(id) = self.ack_due.take() {
            let frame = format!("43{}{id}[]", f.nsp_part);
            self.ws
                .send(Message::text(frame))
                .await
                .map_err(|e| disconnect_reason(&e))?;
        }
        Ok(())
    }

    /// Orderly close: Socket.IO DISCONNECT, then the WebSocket closing handshake (bounded).
    pub async fn close(mut self, f: &Frames) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            if f.protocol == Protocol::Socketio {
                self.ws
                    .send(Message::text(format!("41{}", f.nsp_part)))
                    .await?;
            }
            self.ws.close(None).await?;
            while let Some(m) = self.ws.next().await {
                if matches!(m, Ok(Message::Close(_)) | Err(_)) {
                    break;
                }
            }
            Ok::<(), WsError>(())
        })
        .await;
    }

    fn eio_text(
        &mut self,
        f: &Frames,
        text: &str,
        ours: impl Fn(Option<payload::Found>) -> Incoming,
    ) -> Incoming {
        let b = text.as_bytes();
        match b.first() {
            Some(b'2') => {
                self.pong_due = true;
                Incoming::Nothing
            }
            Some(b'1') => Incoming::Closed(DisconnectReason::EioClose),
            Some(b'3' | b'6' | b'0') => Incoming::Nothing,
            Some(b'4') => self.sio(f, &text[1..], ours),
            _ => Incoming::Error(ErrorKind::Protocol),
        }
    }

    fn sio(
        &mut self,
        f: &Frames,
        s: &str,
        ours: impl Fn(Option<payload::Found>) -> Incoming,
    ) -> Incoming {
        let Some(&kind) = s.as_bytes().first() else {
            return Incoming::Error(ErrorKind::Protocol);
        };
        let mut rest = &s[1..];
        let mut attachments = 0u16;
        if matches!(kind, b'5' | b'6') {
            let Some((n, r)) = rest.split_once('-') else {
                return Incoming::Error(ErrorKind::Protocol);
            };
            let Ok(n) = n.parse::<u16>() else {
                return Incoming::Error(ErrorKind::Protocol);
            };
            attachments = n;
            rest = r;
        }
        // Namespace: ours, or another one (ignored).
        if f.nsp_part.is_empty() {
            if rest.starts_with('/') {
                return self.skip_attachments(attachments);
            }
        } else if let Some(r) = rest.strip_prefix(f.nsp_part.as_str()) {
            rest = r;
        } else {
            return self.skip_attachments(attachments);
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            rest[..digits].parse::<u64>().ok()
        } else {
            None
        };
        let body = &rest[digits..];
        match kind {
            b'3' | b'6' => {
                let Some(id) = id.and_then(|i| u32::try_from(i).ok()) else {
                    return Incoming::Error(ErrorKind::Protocol);
                };
                if !f.ack {
                    return self.skip_attachments(attachments);
                }
                if attachments > 0 {
                    self.bin = Some((id, attachments));
                    return Incoming::Nothing;
                }
                Incoming::Reply(id)
            }
            b'2' | b'5' => {
                if let Some(id) = id {
                    self.ack_due = Some(id);
                }
                let is_reply = f
                    .reply_args
                    .as_ref()
                    .is_some_and(|r| body.as_bytes().starts_with(r));
                if is_reply && attachments == 0 {
                    return ours(payload::find(body.as_bytes()));
                }
                self.skip_attachments(attachments)
            }
            b'1' => Incoming::Closed(DisconnectReason::SioDisconnect),
            b'4' => Incoming::Error(ErrorKind::ConnectError),
            b'0' => Incoming::Nothing,
            _ => Incoming::Error(ErrorKind::Protocol),
        }
    }

    fn skip_attachments(&mut self, n: u16) -> Incoming {
        if n > 0 {
            self.bin = Some((NO_REPLY, n));
        }
        Incoming::Nothing
    }

    fn attachment(&mut self, f: &Frames) -> Incoming {
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

/// How a WebSocket error ends a connection, as the client sees it.
pub fn disconnect_reason(e: &WsError) -> DisconnectReason {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => DisconnectReason::Eof,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => DisconnectReason::Eof,
        WsError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => DisconnectReason::Eof,
        _ => DisconnectReason::Reset,
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}
