//! The application events of the reference server: `echo`, `join`, `leave`, `broadcast`,
//! and with `--conformance` the official suite's `message` / `message-with-ack`.
//!
//! Receives: one decoded event of one socket (with its raw text and attachments), after
//! the stall gate, in arrival order.
//! Emits: echo replies and acks carrying exactly the argument bytes received (attachments
//! and placeholders included), join/leave acks `{"room":..,"members":n}`, broadcasts
//! encoded once per event.
//! Must not: re-serialize arguments, await, or put join/leave acks through fault injection
//! (echo replies, acks of echo/broadcast and broadcast deliveries do go through it).

use std::sync::Arc;

use bytes::Bytes;
use protocol::SioPacket;

use super::client::{Client, Event, EventKind};
use super::raw::{self, EventText};
use crate::eio::Frame;
use crate::stats::Limit;

impl Client {
    /// Handles one event (its socket, Socket.IO text and attachments).
    pub(super) fn on_event(&mut self, event: Event) {
        let Event {
            socket: i,
            text,
            atts,
            kind,
        } = event;
        let json_at = match &kind {
            // Found by the fast path already.
            EventKind::Echo { json_at, .. } => *json_at,
            EventKind::Packet(_) => raw::json_start(&text),
        };
        let json = &text[json_at..];
        let atts: Option<Arc<[Bytes]>> = (!atts.is_empty()).then(|| atts.into());
        let atts = atts.as_ref();
        let packet = match kind {
            EventKind::Echo { id, .. } => return self.reply_same(i, id, json, atts, "echo"),
            EventKind::Packet(packet) => packet,
        };
        let Some(name) = packet.event_name() else {
            return;
        };
        let conformance =
            self.server.shared.config.conformance && &*self.sockets[i].nsp.name == "/";
        match name {
            "echo" => self.reply_same(i, packet.id, json, atts, "echo"),
            "join" => self.join_leave(i, &packet, true),
            "leave" => self.join_leave(i, &packet, false),
            "broadcast" => self.broadcast(i, &packet, json, atts),
            "message" if conformance => self.reply_same(i, None, json, atts, "message-back"),
            "message-with-ack" if conformance && packet.id.is_some() => {
                self.reply_same(i, packet.id, json, atts, "")
            }
            _ => {}
        }
    }

    /// With an ack id: ack with the received arguments. Without: emit `event` back to the
    /// sender with them.
    fn reply_same(
        &self,
        i: usize,
        id: Option<u64>,
        json: &str,
        atts: Option<&Arc<[Bytes]>>,
        event: &str,
    ) {
        let Some(args) = raw::tail_after_strings(json, 1) else {
            return;
        };
        let n = atts.map_or(0, |a| a.len());
        let socket = &self.sockets[i];
        match id {
            // `--capacity` serves echo acks through its one queue.
            Some(id) if event == "echo" => {
                self.server.shared.faults.deliver_echo(
                    &*self.session,
                    raw::frame(raw::ack_text(&socket.nsp.name, id, args, n), atts),
                );
            }
            Some(id) => {
                self.send_app(raw::frame(
                    raw::ack_text(&socket.nsp.name, id, args, n),
                    atts,
                ));
            }
            None => socket.nsp.emit_to(
                &socket.sid,
                &self.session,
                EventText::new(&socket.nsp.name, event, args, n),
                atts,
                true,
                None,
            ),
        }
    }

    /// `join(room)` / `leave(room)`, acked (if asked) with the room's size after it. A join
    /// past `--max-rooms-per-socket` or with a name longer than `--max-room-name` is refused
    /// (acked `{"error":..}`) and counted.
    fn join_leave(&mut self, i: usize, packet: &SioPacket, join: bool) {
        let room = packet.args().first().and_then(|v| v.as_str());
        let socket = &mut self.sockets[i];
        let Some(room) = room else {
            if let Some(id) = packet.id {
                let ack = raw::ack_text(
                    &socket.nsp.name,
                    id,
                    r#"{"error":"expected a room name (string)"}"#,
                    0,
                );
                self.session.push_control(Frame::Text(ack));
            }
            return;
        };
        let config = &self.server.shared.config;
        let refused = if !join {
            None
        } else if room.len() > config.max_room_name {
            Some((Limit::RoomName, "room name too long (--max-room-name)"))
        } else if socket.rooms.len() >= config.max_rooms_per_socket
            && !socket.rooms.iter().any(|r| &**r == room)
        {
            Some((
                Limit::RoomsPerSocket,
                "too many rooms (--max-rooms-per-socket)",
            ))
        } else {
            None
        };
        if let Some((limit, why)) = refused {
            self.server.shared.stats.limit_hit(limit);
            if let Some(id) = packet.id {
                let body = format!("{{\"error\":\"{why}\"}}");
                let ack = raw::ack_text(&socket.nsp.name, id, &body, 0);
                self.session.push_control(Frame::Text(ack));
            }
            return;
        }
        let members = if join {
            if !socket.rooms.iter().any(|r| &**r == room) {
                socket.rooms.push(room.into());
            }
            socket.nsp.join(room, &self.session)
        } else {
            socket.rooms.retain(|r| &**r != room);
            socket.nsp.leave(room, self.session.conn_id)
        };
        if let Some(id) = packet.id {
            let room_json = serde_json::to_string(room).unwrap_or_else(|_| "\"\"".into());
            let body = format!("{{\"room\":{room_json},\"members\":{members}}}");
            self.session
                .push_control(Frame::Text(raw::ack_text(&socket.nsp.name, id, &body, 0)));
        }
    }

    /// `broadcast(room, ...data)`: `broadcast` with `...data` to every member of `room`,
    /// acked (if asked) with the number of members addressed.
    fn broadcast(&self, i: usize, packet: &SioPacket, json: &str, atts: Option<&Arc<[Bytes]>>) {
        let socket = &self.sockets[i];
        let room = packet.args().first().and_then(|v| v.as_str());
        let data = raw::tail_after_strings(json, 2);
        let recipients = match (room, data) {
            (Some(room), Some(data)) => {
                let n = atts.map_or(0, |a| a.len());
                socket.nsp.broadcast(
                    room,
                    EventText::new(&socket.nsp.name, "broadcast", data, n),
                    atts,
                )
            }
            _ => 0,
        };
        if let Some(id) = packet.id {
            self.send_app(Frame::Text(raw::ack_text(
                &socket.nsp.name,
                id,
                &recipients.to_string(),
                0,
            )));
        }
    }

    /// Application data to this session, through fault injection.
    fn send_app(&self, frame: Frame) {
        self.server.shared.faults.deliver(&*self.session, frame);
    }
}
