//! A connected client socket and its outgoing framing: raw WebSocket, or Engine.IO v4 /
//! Socket.IO v5 over a WebSocket. (Incoming frames are read in [`super::inbound`].)
//!
//! Receives: from the driver loop, what to send (echo requests, publishes, joins and
//! leaves, client pings) and when to stop answering pings. Emits: frames to the server,
//! including what the session owes it (`3` for every `2` unless muted, acks the server
//! asked for).
//! Must not: time anything or decide what a frame means for the statistics; allocate per
//! message beyond the outgoing frame itself.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::driver::Ctx;
use crate::driver::net::WsStream;
use crate::model::{ParserKind, Protocol, Transport};
use crate::payload::{self, itoa};
use crate::plan::{Endpoint, Plan};
use crate::sample::{ConnectPhases, DisconnectReason, ErrorKind};
use crate::template::{Escape, Template, Text, Vars};

/// Ack ids at or above this are the swarm's own control emits (join / leave), not echoes.
pub const CONTROL_ID_BASE: u32 = 0x8000_0000;

/// Per-run frame templates (built once, shared by every client).
#[derive(Debug, Clone)]
pub struct FrameTemplates {
    pub protocol: Protocol,
    pub transport: Transport,
    /// Raw WS: path and query of the upgrade request (`{room}` still in it for rooms).
    pub ws_path: String,
    /// Raw WS: where publishers connect (`{room}` template).
    pub ws_publish_path: String,
    /// Socket.IO: Engine.IO request paths, without `sid`.
    pub eio_ws_path: String,
    pub eio_polling_path: String,
    /// `""` for `/`, else `/nsp,` (as it appears after the packet type).
    pub nsp_part: String,
    /// `40<nsp,><auth>`: the CONNECT frame.
    pub connect: String,
    /// The `--auth` object, serialized (merged with `pid` / `offset` on recovery).
    pub auth: Option<String>,
    /// `42<nsp,>`: start of an EVENT frame.
    pub emit_head: Vec<u8>,
    /// `["event",`
    pub emit_args: Vec<u8>,
    /// Ack mode (no `--reply-event`): the EVENT carries the seq as ack id.
    pub ack: bool,
    /// Socket.IO with `--parser msgpack`: packets go as binary msgpack frames
    /// ([`super::sio_msgpack`]).
    pub msgpack: bool,
    /// `["reply",` when the server answers with an event.
    pub reply_args: Option<Vec<u8>>,
    /// `["<subscribe-event>"` (followed by `,` or `]`).
    pub subscribe_args: Vec<u8>,
    /// `["<join-event>"`, `["<leave-event>"`, `["<publish-event>"`.
    pub join_args: Vec<u8>,
    pub leave_args: Vec<u8>,
    pub publish_args: Vec<u8>,
    pub join_template: Template,
    pub publish_template: Template,
    /// The paths and the auth as templates, when a `{client}`, `{room}` or data field
    /// placeholder makes them differ between clients ([`FrameTemplates::dial`]).
    pub personal: Option<Box<Personal>>,
}

/// The per-client forms of the handshake's texts.
#[derive(Debug, Clone)]
pub struct Personal {
    pub ws_path: Text,
    pub ws_publish_path: Text,
    pub eio_ws_path: Text,
    pub eio_polling_path: Text,
    pub auth: Option<Text>,
    /// Header values that hold placeholders (the others are the dialer's).
    pub headers: Vec<(http::HeaderName, Text)>,
}

/// What one connect attempt sends: paths, the CONNECT frame and the extra headers, with
/// the client's placeholders filled in. Dropped once connected.
#[derive(Debug, Clone, Default)]
pub struct Dial {
    /// Raw WS: the upgrade request's path and query (the client's room in it).
    pub ws_path: String,
    /// Socket.IO: the CONNECT frame.
    pub connect: String,
    pub eio_ws_path: String,
    pub eio_polling_path: String,
    /// Headers of this client that hold placeholders (sent after the dialer's).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl FrameTemplates {
    pub fn new(plan: &Plan, endpoint: &Endpoint) -> FrameTemplates {
        let t = &plan.target;
        let mut query: Vec<String> = Vec::new();
        if let Some(q) = &endpoint.query {
            query.push(q.clone());
        }
        query.extend(t.query.iter().map(|(k, v)| format!("{k}={v}")));
        let extra = query.join("&");
        let with_query = |path: &str, extra: &str| {
            if extra.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{extra}")
            }
        };
        let ws_path = with_query(&endpoint.path, &extra);
        let ws_publish_path = match &t.fan.publish_url {
            Some(p) => with_query(&p.path, p.query.as_deref().unwrap_or("")),
            None if extra.is_empty() => format!("{}?self=0", endpoint.path),
            None => format!("{}?{extra}&self=0", endpoint.path),
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
        let personal = personal(
            plan,
            &ws_path,
            &ws_publish_path,
            &eio("websocket"),
            &eio("polling"),
        );
        let head = |name: &str| format!("[\"{name}\"").into_bytes();
        FrameTemplates {
            protocol: t.protocol,
            transport: t.transport,
            ws_path,
            ws_publish_path,
            eio_ws_path: eio("websocket"),
            eio_polling_path: eio("polling"),
            emit_head: format!("42{nsp_part}").into_bytes(),
            emit_args: format!("[\"{}\",", t.event).into_bytes(),
            ack: t.reply_event.is_none(),
            msgpack: t.protocol == Protocol::Socketio && t.parser == ParserKind::Msgpack,
            reply_args: t
                .reply_event
                .as_ref()
                .map(|r| format!("[\"{r}\",").into_bytes()),
            subscribe_args: head(&t.fan.subscribe_event),
            join_args: head(&t.fan.join_event),
            leave_args: head(&t.fan.leave_event),
            publish_args: head(&t.fan.publish_event),
            join_template: t.fan.join_args.clone(),
            publish_template: t.fan.publish_args.clone(),
            nsp_part,
            connect,
            auth: t.auth.clone(),
            personal,
        }
    }

    /// What client `client` (with `vars`) sends to connect; `raw_ws_path`: the raw WS path
    /// of its role; `recover`: the session's `pid` and last offset when reconnecting.
    pub fn dial(
        &self,
        vars: &Vars,
        publisher: bool,
        recover: Option<(&str, Option<&str>)>,
    ) -> Dial {
        let Some(p) = &self.personal else {
            let ws_path = if publisher {
                &self.ws_publish_path
            } else {
                &self.ws_path
            };
            return Dial {
                ws_path: ws_path.replace("{room}", vars.room),
                connect: match recover {
                    Some((pid, offset)) => self.connect_frame(self.auth.as_deref(), pid, offset),
                    None => self.connect.clone(),
                },
                eio_ws_path: self.eio_ws_path.clone(),
                eio_polling_path: self.eio_polling_path.clone(),
                headers: Vec::new(),
            };
        };
        let auth = p.auth.as_ref().map(|a| a.render(vars));
        let connect = match recover {
            Some((pid, offset)) => self.connect_frame(auth.as_deref(), pid, offset),
            None => format!("40{}{}", self.nsp_part, auth.as_deref().unwrap_or("")),
        };
        Dial {
            ws_path: if publisher {
                p.ws_publish_path.render(vars)
            } else {
                p.ws_path.render(vars)
            },
            connect,
            eio_ws_path: p.eio_ws_path.render(vars),
            eio_polling_path: p.eio_polling_path.render(vars),
            headers: p
                .headers
                .iter()
                .filter_map(|(k, t)| {
                    Some((
                        k.clone(),
                        http::HeaderValue::from_str(&t.render(vars)).ok()?,
                    ))
                })
                .collect(),
        }
    }

    /// The CONNECT frame, with `pid` and `offset` merged into the auth when recovering
    /// (docs/ARCHITECTURE.md#connection-state-recovery).
    pub fn connect_frame(&self, auth: Option<&str>, pid: &str, offset: Option<&str>) -> String {
        let mut obj = auth
            .and_then(|a| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(a).ok()
            })
            .unwrap_or_default();
        obj.insert("pid".into(), serde_json::Value::String(pid.into()));
        if let Some(o) = offset {
            obj.insert("offset".into(), serde_json::Value::String(o.into()));
        }
        format!("40{}{}", self.nsp_part, serde_json::Value::Object(obj))
    }
}

/// The per-client templates of `plan`, or `None` when nothing differs between clients.
fn personal(
    plan: &Plan,
    ws_path: &str,
    ws_publish_path: &str,
    eio_ws_path: &str,
    eio_polling_path: &str,
) -> Option<Box<Personal>> {
    let t = &plan.target;
    let fields: &[String] = t.data.as_ref().map_or(&[], |d| &d.fields);
    // Validation compiled and bound these same texts; a failure here leaves the
    // placeholder empty rather than panicking.
    let text = |s: &str, escape| {
        let mut x =
            Text::parse(s, escape).unwrap_or_else(|_| Text::parse("", escape).expect("empty text"));
        let _ = x.bind(fields);
        x
    };
    let headers: Vec<(http::HeaderName, Text)> = t
        .headers
        .iter()
        .filter_map(|(k, v)| {
            let v = text(v, Escape::Plain);
            v.varies()
                .then(|| Some((http::HeaderName::from_bytes(k.as_bytes()).ok()?, v)))
                .flatten()
        })
        .collect();
    let auth = t.auth.as_deref().map(|a| text(a, Escape::Json));
    // `{room}` alone in a raw WS path is the broadcast room, filled in without templates.
    let varies = |s: &str| text(&s.replace("{room}", ""), Escape::Url).varies();
    let any = !headers.is_empty()
        || auth.as_ref().is_some_and(Text::varies)
        || [ws_path, ws_publish_path, eio_ws_path]
            .into_iter()
            .any(varies);
    any.then(|| {
        Box::new(Personal {
            ws_path: text(ws_path, Escape::Url),
            ws_publish_path: text(ws_publish_path, Escape::Url),
            eio_ws_path: text(eio_ws_path, Escape::Url),
            eio_polling_path: text(eio_polling_path, Escape::Url),
            auth,
            headers,
        })
    })
}

/// What one frame from the server meant to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The ack of the echo with this seq.
    Reply(u32),
    /// A raw WS data frame, or a `--reply-event` event: the payload object found in it.
    Payload(Option<payload::Found>),
    /// An event of `--subscribe-event`: the payload object found in it.
    Broadcast(Option<payload::Found>),
    /// The ack of a control emit (join / leave) with this id.
    ControlAck(u32),
    /// A server heartbeat (Engine.IO `2`, WS ping).
    Ping,
    /// The pong of our client ping with this id.
    Pong(u64),
    /// A flow client's Socket.IO ack: its id and arguments (a JSON array).
    FlowAck(u32, String),
    /// A flow client's Socket.IO event body (`["name",...]`) or raw WS frame.
    FlowFrame(String),
    /// Nothing the loop has to act on (other namespaces, attachments still due...).
    Nothing,
    Error(ErrorKind),
    Closed(DisconnectReason),
}

/// One connected client.
pub struct Session {
    pub(super) ws: WsStream,
    /// Binary attachments still due: (ack id or `NO_REPLY`, count).
    pub(super) bin: Option<(u32, u16)>,
    pub(super) pong_due: bool,
    pub(super) ack_due: Option<u64>,
    /// Stop answering `2` (and, for raw WS, stop reading frames).
    pub muted: bool,
    /// pingInterval / pingTimeout of the Engine.IO handshake.
    pub handshake: Option<(Duration, Duration)>,
    /// The recovery `pid` of the CONNECT reply, when the server has recovery on.
    pub pid: Option<String>,
    /// The last offset (last string argument of an event) when `pid` is known.
    pub offset: Option<String>,
    /// Raw frame reader of a muted raw WS client.
    pub(super) muted_reader: Option<super::inbound::MutedReader>,
    /// Engine.IO texts received before the CONNECT reply, handed to the loop first.
    pub(super) early: std::collections::VecDeque<String>,
    /// The connection runs a flow: acks and events are handed over whole
    /// ([`Incoming::FlowAck`], [`Incoming::FlowFrame`]).
    pub flow: bool,
}

impl Session {
    pub(crate) fn new(ws: WsStream) -> Session {
        Session {
            ws,
            bin: None,
            pong_due: false,
            ack_due: None,
            muted: false,
            handshake: None,
            pid: None,
            offset: None,
            muted_reader: None,
            early: std::collections::VecDeque::new(),
            flow: false,
        }
    }

    /// Connects as the plan says, recording each phase. `ws_path`: the raw WS path to use
    /// (a room's); `connect`: the Socket.IO CONNECT frame to send.
    pub async fn connect(
        ctx: &Ctx,
        phases: &mut ConnectPhases,
        dial: &Dial,
    ) -> Result<Session, ErrorKind> {
        match (ctx.frames.protocol, ctx.frames.transport) {
            (Protocol::Ws, _) => {
                let stream = ctx.dialer.open(phases).await?;
                let ws = ctx
                    .dialer
                    .websocket(stream, &dial.ws_path, &dial.headers, phases)
                    .await?;
                Ok(Session::new(ws))
            }
            (Protocol::Socketio, Transport::Websocket) => {
                super::socketio::connect_websocket(ctx, phases, dial).await
            }
            (Protocol::Socketio, Transport::Polling) => {
                super::socketio::connect_polling(ctx, phases, dial).await
            }
        }
    }

    async fn send_buf(
        &mut self,
        f: &FrameTemplates,
        buf: &mut BytesMut,
    ) -> Result<(), DisconnectReason> {
        let text =
            Utf8Bytes::try_from(buf.split().freeze()).map_err(|_| DisconnectReason::Reset)?;
        self.ws
            .send(super::sio_msgpack::ws_message(f, text)?)
            .await
            .map_err(|e| disconnect_reason(&e))
    }

    /// Sends one echo request carrying `fields`, padded to `size`.
    pub async fn send_echo(
        &mut self,
        f: &FrameTemplates,
        buf: &mut BytesMut,
        fields: &payload::Fields,
        size: usize,
    ) -> Result<(), DisconnectReason> {
        buf.reserve(size + f.emit_head.len() + f.emit_args.len() + 16);
        if f.protocol == Protocol::Socketio {
            buf.put_slice(&f.emit_head);
            if f.ack {
                let mut digits = [0u8; 20];
                buf.put_slice(itoa(u64::from(fields.seq), &mut digits));
            }
            buf.put_slice(&f.emit_args);
            payload::write(buf, fields, size);
            buf.put_u8(b']');
        } else {
            payload::write(buf, fields, size);
        }
        self.send_buf(f, buf).await
    }

    /// Sends one broadcast publish into `room` (raw WS: the payload object alone).
    pub async fn send_publish(
        &mut self,
        f: &FrameTemplates,
        buf: &mut BytesMut,
        vars: &Vars<'_>,
        fields: &payload::Fields,
        size: usize,
    ) -> Result<(), DisconnectReason> {
        buf.reserve(size + vars.room.len() + f.publish_args.len() + 64);
        if f.protocol == Protocol::Socketio {
            buf.put_slice(&f.emit_head);
            self.put_event(
                buf,
                &f.publish_args,
                &f.publish_template,
                vars,
                Some((fields, size)),
            );
        } else {
            payload::write(buf, fields, size);
        }
        self.send_buf(f, buf).await
    }

    /// Socket.IO: emits join (`join = true`) or leave for `room`, asking for an ack `id`.
    pub async fn send_membership(
        &mut self,
        f: &FrameTemplates,
        buf: &mut BytesMut,
        vars: &Vars<'_>,
        join: bool,
        id: u32,
    ) -> Result<(), DisconnectReason> {
        buf.put_slice(&f.emit_head);
        let mut digits = [0u8; 20];
        buf.put_slice(itoa(u64::from(id), &mut digits));
        let head = if join { &f.join_args } else { &f.leave_args };
        self.put_event(buf, head, &f.join_template, vars, None);
        self.send_buf(f, buf).await
    }

    fn put_event(
        &self,
        buf: &mut BytesMut,
        head: &[u8],
        template: &Template,
        vars: &Vars<'_>,
        fields: Option<(&payload::Fields, usize)>,
    ) {
        buf.put_slice(head);
        if !template.is_empty() {
            buf.put_u8(b',');
            template.write(buf, vars, fields);
        }
        buf.put_u8(b']');
    }

    /// A flow's frame: text as it is (over Socket.IO an Engine.IO message, converted for
    /// the msgpack parser like every other), or binary.
    pub async fn send_flow(
        &mut self,
        f: &FrameTemplates,
        text: String,
        binary: bool,
    ) -> Result<(), DisconnectReason> {
        let msg = if binary {
            Message::Binary(bytes::Bytes::from(text.into_bytes()))
        } else {
            super::sio_msgpack::ws_message(f, Utf8Bytes::from(text))?
        };
        self.ws.send(msg).await.map_err(|e| disconnect_reason(&e))
    }

    /// Raw WS: sends a ping carrying `id`.
    pub async fn send_ping(&mut self, id: u64) -> Result<(), DisconnectReason> {
        self.ws
            .send(Message::Ping(id.to_be_bytes().to_vec().into()))
            .await
            .map_err(|e| disconnect_reason(&e))
    }

    /// When the bytes of the frame [`Session::recv`] last returned were read: when the
    /// read that completed it returned (now if nothing was read yet).
    pub fn received_at(&self) -> std::time::Instant {
        self.ws
            .get_ref()
            .read_at()
            .unwrap_or_else(std::time::Instant::now)
    }

    /// True when the session owes the server a frame (pong, ack).
    pub fn control_due(&self) -> bool {
        self.pong_due || self.ack_due.is_some()
    }

    /// Sends what the session owes the server.
    pub async fn flush_control(&mut self, f: &FrameTemplates) -> Result<(), DisconnectReason> {
        if std::mem::take(&mut self.pong_due) && !self.muted {
            self.ws
                .send(Message::text("3"))
                .await
                .map_err(|e| disconnect_reason(&e))?;
        }
        if let Some(id) = self.ack_due.take() {
            let frame = format!("43{}{id}[]", f.nsp_part);
            self.ws
                .send(super::sio_msgpack::ws_message(f, frame.into())?)
                .await
                .map_err(|e| disconnect_reason(&e))?;
        }
        Ok(())
    }

    /// Orderly close: Socket.IO DISCONNECT, then the WebSocket closing handshake (bounded).
    pub async fn close(mut self, f: &FrameTemplates) {
        if self.muted_reader.is_some() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if f.protocol == Protocol::Socketio {
                let bye = super::sio_msgpack::ws_message(f, format!("41{}", f.nsp_part).into());
                if let Ok(bye) = bye {
                    self.ws.send(bye).await?;
                }
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

    /// Drops the transport without any goodbye, as a network drop would (the peer sees
    /// the TCP connection end).
    pub fn abort(self) {
        drop(self);
    }

    /// Raw WS, muted: reads raw bytes without answering anything; resolves when the
    /// server's close frame or the end of the connection arrives.
    pub(super) async fn read_muted(&mut self) -> Incoming {
        let reader = self
            .muted_reader
            .get_or_insert_with(super::inbound::MutedReader::default);
        // On the heap: a buffer in this future would size every client's task.
        let mut chunk = vec![0u8; 512];
        loop {
            match self.ws.get_mut().read(&mut chunk).await {
                Ok(0) => return Incoming::Closed(DisconnectReason::Eof),
                Err(e) if super::net::is_write_timeout(&e) => {
                    return Incoming::Closed(DisconnectReason::WriteTimeout);
                }
                Err(_) => return Incoming::Closed(DisconnectReason::Reset),
                Ok(n) => {
                    if let Some(code) = reader.feed(&chunk[..n]) {
                        return Incoming::Closed(DisconnectReason::WsClose { code });
                    }
                }
            }
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
        WsError::Io(io) if super::net::is_write_timeout(io) => DisconnectReason::WriteTimeout,
        WsError::Capacity(_) => DisconnectReason::MessageTooLarge,
        _ => DisconnectReason::Reset,
    }
}
