//! The Socket.IO side of one Engine.IO session: its sockets (one per connected namespace),
//! packet decoding, CONNECT / DISCONNECT, and each event's hand-over to the handlers
//! (driven in order by [`attach`](super::attach)).
//!
//! Receives: the session's Engine.IO messages in arrival order (text and binary).
//! Emits: CONNECT replies (`40{"sid":..}`, plus `"pid"` with recovery), `44` for unknown
//! namespaces, replayed packets on recovery, and hands each event to the handlers after the
//! `--stall` gate; at the end, leaves every room and saves recoverable sockets.
//! Must not: handle two events of a session concurrently (acks come back in order), or let
//! a protocol violation pass: a bad packet, a packet before its namespace's CONNECT, or no
//! CONNECT within `connect_timeout` closes the Engine.IO session.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use protocol::socketio::{BinaryAssembler, write_header};
use protocol::{SioPacket, SioPacketType};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Server;
use super::raw::{self, EventText};
use super::recovery::Saved;
use super::rooms::Namespace;
use crate::eio::{Frame, Inbound, Session, Text, random_id};
use crate::stats::{CloseCause, Limit};

/// With `--conformance`, how long the `auth` emit waits after the CONNECT reply. The
/// official socket.io-protocol suite reads with `ws` 8.5, which dispatches every frame of one
/// TCP read synchronously before its next one-shot listener exists: a frame that shares a
/// read with the CONNECT reply is lost. Holding the emit (and everything queued behind it,
/// so order is kept) puts it in a write of its own, as the Node reference's does, and the
/// pause makes the two land in separate reads even when the client is slow to read (a
/// write that follows at once can still join the first in the receive buffer). It is far
/// below the preset's 300 ms pingInterval. Tested by `tests/conformance_sio_suite_node.rs`.
const CONNECT_EVENT_GAP: std::time::Duration = std::time::Duration::from_millis(20);

/// A socket: one namespace connected on this session.
#[derive(Debug)]
pub(super) struct Socket {
    pub nsp: Arc<Namespace>,
    /// The Socket.IO sid (independent of the Engine.IO sid).
    pub sid: Arc<str>,
    /// The recovery private id, when recovery is on.
    pub pid: Option<Arc<str>>,
    pub rooms: Vec<Arc<str>>,
}

#[derive(Debug)]
pub(super) struct Client {
    pub server: Arc<Server>,
    pub session: Arc<Session>,
    pub sockets: Vec<Socket>,
    assembler: BinaryAssembler,
    /// The text of the binary packet whose attachments are being collected.
    pending_text: Option<Text>,
    /// Bytes of the attachments collected so far (`--max-attachment-bytes`).
    pending_bytes: usize,
    /// When the binary packet being completed arrived (`--attachment-timeout`).
    pending_since: Option<Instant>,
    /// Signalled when a binary packet starts waiting for attachments: the session's task
    /// arms the `--attachment-timeout` deadline.
    pub(super) pending_started: Arc<Notify>,
}

/// What one message from the client leads to.
enum Next {
    /// Handled; false when the session is over.
    Done(bool),
    /// An event, decoded and counted, to handle after the stall gate.
    Event(Event),
}

/// An event of socket `socket` with its Socket.IO text and attachments.
pub(super) struct Event {
    pub socket: usize,
    pub text: Text,
    pub atts: Vec<Bytes>,
    pub kind: EventKind,
}

pub(super) enum EventKind {
    /// `echo`, recognised without building JSON values ([`raw::fast_echo`]).
    /// `json_at`: where its JSON starts in the text.
    Echo { id: Option<u64>, json_at: usize },
    /// Any event, fully decoded.
    Packet(SioPacket),
}

impl Client {
    pub(super) fn new(server: Arc<Server>, session: Arc<Session>) -> Client {
        Client {
            server,
            session,
            sockets: Vec::new(),
            assembler: BinaryAssembler::default(),
            pending_text: None,
            pending_bytes: 0,
            pending_since: None,
            pending_started: Arc::new(Notify::new()),
        }
    }

    /// When the attachments being collected are overdue, if any are.
    pub(super) fn attachment_deadline(&self) -> Option<Instant> {
        let timeout = self.server.shared.config.attachment_timeout;
        self.pending_since.map(|t| t + timeout)
    }

    /// Closes the session if the attachments being collected are overdue.
    pub(super) fn check_attachments(&self) {
        if self.assembler.is_pending()
            && self
                .attachment_deadline()
                .is_some_and(|d| Instant::now() >= d)
        {
            self.limit(Limit::AttachmentTimeout);
        }
    }

    /// Closes the session for a limit it hit, counting it. Always returns false (stop).
    fn limit(&self, limit: Limit) -> bool {
        self.session
            .close_for_limit(CloseCause::ProtocolError, limit);
        false
    }

    /// The connect timeout passed: a client with no namespace is closed.
    pub(super) fn check_connected(&self) {
        if self.sockets.is_empty() {
            self.session.close(CloseCause::ConnectTimeout);
        }
    }

    /// Closes the session for a protocol violation. Always returns false (stop).
    fn fail(&self) -> bool {
        self.session.close(CloseCause::ProtocolError);
        false
    }

    /// Handles one message, events after the `--stall` gate. False: the session is over.
    pub(super) async fn on_inbound(&mut self, msg: Inbound) -> bool {
        match self.take(msg) {
            Next::Done(alive) => alive && !self.session.is_closed(),
            Next::Event(event) => {
                self.server.shared.faults.stall_gate().await;
                self.handle_event(event)
            }
        }
    }

    /// Handles one message at once (only without `--stall`). False: the session is over.
    pub(super) fn on_inbound_now(&mut self, msg: Inbound) -> bool {
        match self.take(msg) {
            Next::Done(alive) => alive && !self.session.is_closed(),
            Next::Event(event) => self.handle_event(event),
        }
    }

    /// Runs the handlers of one event. False: the session is over.
    fn handle_event(&mut self, event: Event) -> bool {
        self.on_event(event);
        !self.session.is_closed()
    }

    /// Decodes one message: protocol packets are handled here, events are handed back.
    fn take(&mut self, msg: Inbound) -> Next {
        match msg {
            Inbound::Text(text) => {
                if self.assembler.is_pending() {
                    // Text while attachments are awaited: the reference rejects it.
                    return Next::Done(self.fail());
                }
                if let Some(echo) = raw::fast_echo(&text) {
                    let Some(socket) = self.socket_index(echo.nsp) else {
                        // An event for a namespace not connected.
                        return Next::Done(self.fail());
                    };
                    let kind = EventKind::Echo {
                        id: echo.id,
                        json_at: echo.json_at,
                    };
                    return self.event(socket, text, Vec::new(), kind);
                }
                let Ok(packet) = SioPacket::decode(&text) else {
                    return Next::Done(self.fail());
                };
                if packet.attachments > self.server.shared.config.max_attachments {
                    return Next::Done(self.limit(Limit::Attachments));
                }
                match self.assembler.start(packet) {
                    Some((packet, atts)) => self.dispatch(packet, text, atts),
                    None => {
                        self.pending_text = Some(text);
                        self.pending_bytes = 0;
                        self.pending_since = Some(Instant::now());
                        self.pending_started.notify_one();
                        Next::Done(true)
                    }
                }
            }
            Inbound::Binary(data) => {
                if self.assembler.is_pending() {
                    self.pending_bytes = self.pending_bytes.saturating_add(data.len());
                    if self.pending_bytes > self.server.shared.config.max_attachment_bytes {
                        return Next::Done(self.limit(Limit::AttachmentBytes));
                    }
                }
                match self.assembler.push(data) {
                    Err(_) => Next::Done(self.fail()),
                    Ok(None) => Next::Done(true),
                    Ok(Some((packet, atts))) => {
                        self.pending_since = None;
                        self.pending_bytes = 0;
                        let text = self.pending_text.take().unwrap_or_default();
                        self.dispatch(packet, text, atts)
                    }
                }
            }
        }
    }

    fn socket_index(&self, nsp: &str) -> Option<usize> {
        self.sockets.iter().position(|s| *s.nsp.name == *nsp)
    }

    /// Counts an event in and hands it back for the handlers.
    fn event(&self, socket: usize, text: Text, atts: Vec<Bytes>, kind: EventKind) -> Next {
        let len = text.len() + atts.iter().map(Bytes::len).sum::<usize>();
        self.server.shared.stats.message_in(len);
        Next::Event(Event {
            socket,
            text,
            atts,
            kind,
        })
    }

    fn dispatch(&mut self, packet: SioPacket, text: Text, atts: Vec<Bytes>) -> Next {
        let index = self.socket_index(&packet.nsp);
        match (index, packet.kind) {
            (None, SioPacketType::Connect) => self.connect(&packet, &text),
            (Some(i), SioPacketType::Disconnect) => {
                let socket = self.sockets.swap_remove(i);
                leave_all(&socket, self.session.conn_id);
            }
            (Some(i), SioPacketType::Event | SioPacketType::BinaryEvent) => {
                return self.event(i, text, atts, EventKind::Packet(packet));
            }
            // The server never asks for acks; nothing to match.
            (Some(_), SioPacketType::Ack | SioPacketType::BinaryAck) => {}
            // A packet for a namespace not connected, a second CONNECT, a CONNECT_ERROR.
            _ => return Next::Done(self.fail()),
        }
        Next::Done(!self.session.is_closed())
    }

    /// CONNECT to a namespace: refused with `44` if unknown; restored when the auth carries
    /// a recoverable `{pid, offset}`; otherwise a fresh socket.
    fn connect(&mut self, packet: &SioPacket, text: &str) {
        let Some(nsp) = self.server.namespace(&packet.nsp).cloned() else {
            let mut reply = String::from("4");
            write_header(
                &mut reply,
                SioPacketType::ConnectError,
                0,
                &packet.nsp,
                None,
            );
            reply.push_str(r#"{"message":"Invalid namespace"}"#);
            self.session
                .push_control(Frame::Text(Utf8Bytes::from(reply)));
            return;
        };
        let socket = match self.restore(&nsp, packet.data.as_ref()) {
            Some(socket) => socket,
            None => {
                let pid = nsp.recovery.is_some().then(|| Arc::from(random_id()));
                let socket = Socket {
                    nsp: nsp.clone(),
                    sid: random_id().into(),
                    pid,
                    rooms: Vec::new(),
                };
                self.session.push_control(connect_reply(&socket));
                socket
            }
        };
        if self.server.shared.config.conformance {
            // `socket.emit("auth", socket.handshake.auth)` of the reference preset.
            let auth = &text[raw::json_start(text)..];
            let auth = if auth.is_empty() { "{}" } else { auth };
            nsp.emit_to(
                &socket.sid,
                &self.session,
                EventText::new(&nsp.name, "auth", auth, 0),
                None,
                false,
                Some(Instant::now() + CONNECT_EVENT_GAP),
            );
        }
        self.sockets.push(socket);
    }

    /// Recovery: the saved socket of `{pid, offset}` with its rooms re-joined, the CONNECT
    /// reply and every missed packet queued, all while the namespace's log is locked.
    fn restore(&self, nsp: &Arc<Namespace>, auth: Option<&Value>) -> Option<Socket> {
        let recovery = nsp.recovery.as_ref()?;
        let auth = auth?;
        let pid = auth.get("pid")?.as_str()?;
        let offset = auth.get("offset")?.as_str()?;
        recovery.restore(pid, offset, |saved, missed| {
            let socket = Socket {
                nsp: nsp.clone(),
                sid: saved.sid,
                pid: Some(saved.pid),
                rooms: saved.rooms,
            };
            self.session.push_control(connect_reply(&socket));
            for room in &socket.rooms {
                nsp.join(room, &self.session);
            }
            let stats = &self.server.shared.stats;
            stats.recovered_sessions.fetch_add(1, Relaxed);
            stats
                .replayed_packets
                .fetch_add(missed.len() as u64, Relaxed);
            for frame in missed {
                self.session.push(frame, None);
            }
            socket
        })
    }

    /// The session ended: every socket leaves its rooms; with recovery on and a recoverable
    /// cause, each socket is saved for `maxDisconnectionDuration`.
    pub(super) fn finish(&mut self) {
        let recoverable = matches!(
            self.session.cause(),
            Some(
                CloseCause::ClientClose
                    | CloseCause::TransportError
                    | CloseCause::PingTimeout
                    | CloseCause::SlowConsumer
                    | CloseCause::Shutdown
            )
        );
        for socket in self.sockets.drain(..) {
            leave_all(&socket, self.session.conn_id);
            if let (true, Some(recovery), Some(pid)) =
                (recoverable, &socket.nsp.recovery, &socket.pid)
            {
                recovery.persist(Saved {
                    sid: socket.sid.clone(),
                    pid: pid.clone(),
                    rooms: socket.rooms.clone(),
                    disconnected_at: Instant::now(),
                });
            }
        }
    }
}

fn leave_all(socket: &Socket, conn_id: u64) {
    for room in &socket.rooms {
        socket.nsp.leave(room, conn_id);
    }
}

/// `40[<nsp>,]{"sid":".."}` (+ `"pid"` with recovery). Ids are base64url: no escaping.
fn connect_reply(socket: &Socket) -> Frame {
    let mut text = String::from("4");
    write_header(&mut text, SioPacketType::Connect, 0, &socket.nsp.name, None);
    text.push_str("{\"sid\":\"");
    text.push_str(&socket.sid);
    if let Some(pid) = &socket.pid {
        text.push_str("\",\"pid\":\"");
        text.push_str(pid);
    }
    text.push_str("\"}");
    Frame::Text(Utf8Bytes::from(text))
}
