//! Raw WebSocket endpoints: `/ws/echo` and `/ws/room/{name}` (`?self=0` excludes the
//! sender from its own room deliveries).
//!
//! Receives: upgrade requests routed here. Emits: one connection task per socket
//! (`conn.rs`) with its writer (`writer.rs`); room membership in `stats` as `ws:{name}`.
//! Must not: copy a room message per recipient (every member gets the same `Bytes`), or
//! let any connection's outbound queue grow past `max_queue`.

mod conn;
mod outbox;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::Shared;
use crate::faults::{Keyed, Recipient};
use crate::upgrade;
use writer::Out;

/// Bytes the WebSocket writer gathers before it writes to the socket (a flush writes the
/// rest): many small frames leave in one `write()`.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Routes of the raw WebSocket endpoints.
pub fn routes(shared: Arc<Shared>) -> axum::Router {
    let state = Arc::new(WsState {
        shared,
        rooms: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    axum::Router::new()
        .route("/ws/echo", get(echo))
        .route("/ws/room/{name}", get(room))
        .with_state(state)
}

/// Per-server state of the raw WebSocket endpoints.
#[derive(Debug)]
pub(crate) struct WsState {
    shared: Arc<Shared>,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    next_id: AtomicU64,
}

/// What a connection does with the data frames it receives.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    Echo,
    Room { name: String, include_self: bool },
}

/// One room: its members' outbound queues.
#[derive(Debug, Default)]
pub(crate) struct Room {
    pub(crate) members: RwLock<Vec<Member>>,
}

/// A recipient: its id (for drop decisions) and its outbound queue.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) outbox: Arc<outbox::Outbox>,
}

/// Application data reaches a member through fault injection.
impl Recipient for Member {
    type Item = Message;

    fn recipient_id(&self) -> u64 {
        self.id
    }

    fn queue(&self, msg: Message, due: Option<Instant>) -> bool {
        self.outbox.push(Out {
            msg,
            not_before: due,
        }) == outbox::Push::Queued
    }
}

/// Drop decisions are keyed on the payload (the same key for every member of a room).
impl Keyed for Message {
    fn key_bytes(&self) -> &[u8] {
        payload(self)
    }
}

/// The application payload of a data frame (empty for control frames).
fn payload(msg: &Message) -> &[u8] {
    match msg {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}

async fn echo(State(st): State<Arc<WsState>>, req: Request) -> Response {
    start(st, req, Mode::Echo)
}

async fn room(State(st): State<Arc<WsState>>, Path(name): Path<String>, req: Request) -> Response {
    let max = st.shared.config.max_room_name;
    if name.is_empty() || name.len() > max {
        if !name.is_empty() {
            st.shared.stats.limit_hit(crate::stats::Limit::RoomName);
        }
        return (
            StatusCode::BAD_REQUEST,
            format!("room name must be 1 to {max} bytes (--max-room-name)"),
        )
            .into_response();
    }
    let include_self = !excludes_self(req.uri().query());
    start(st, req, Mode::Room { name, include_self })
}

/// True for a query string with `self=0` (or `self=false`).
fn excludes_self(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == "self" && (v == "0" || v == "false"))
}

/// Answers the upgrade and spawns the connection task once hyper hands the socket over.
fn start(st: Arc<WsState>, mut req: Request, mode: Mode) -> Response {
    let config =
        upgrade::ws_config(st.shared.config.max_message_size).write_buffer_size(WRITE_BATCH_BYTES);
    match upgrade::accept(&mut req, config) {
        Err(response) => response,
        Ok((response, upgraded)) => {
            let me = Member {
                id: st.next_id(),
                outbox: Arc::new(outbox::Outbox::new(
                    st.shared.config.max_queue,
                    st.shared.config.max_queue_bytes,
                )),
            };
            // Membership starts when the handshake is accepted, before the 101 leaves: a
            // peer that has its 101 gets every room message sent after it (queued until
            // the connection's writer runs), not only those after its task has started.
            let room = match &mode {
                Mode::Room { name, .. } => Some(st.join(name, me.clone())),
                Mode::Echo => None,
            };
            let tasks = st.shared.tasks.clone();
            tasks.spawn(async move {
                match upgraded.await {
                    Some(ws) => conn::run(st, ws, mode, me, room).await,
                    None => {
                        if let Mode::Room { name, .. } = &mode {
                            st.leave(name, me.id);
                        }
                    }
                }
            });
            response
        }
    }
}

impl WsState {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `member` to room `name` (created on first join).
    fn join(&self, name: &str, member: Member) -> Arc<Room> {
        let room = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let room = rooms.entry(name.to_string()).or_default().clone();
            room.members
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(member);
            room
        };
        self.shared.stats.room_delta(&format!("ws:{name}"), 1);
        room
    }

    /// Removes member `id` from room `name`; the room goes when its last member leaves.
    fn leave(&self, name: &str, id: u64) {
        {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let Some(room) = rooms.get(name) else { return };
            let empty = {
                let mut members = room.members.write().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = members.iter().position(|m| m.id == id) {
                    members.swap_remove(i);
                }
                members.is_empty()
            };
            if empty {
                rooms.remove(name);
            }
        }
        self.shared.stats.room_delta(&format!("ws:{name}"), -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_exclusion_query() {
        assert!(excludes_self(Some("self=0")));
        assert!(excludes_self(Some("a=1&self=false")));
        assert!(!excludes_self(Some("self=1")));
        assert!(!excludes_self(Some("myself=0")));
        assert!(!excludes_self(None));
    }

    #[tokio::test]
    async fn rooms_come_and_go_with_members() {
        let st = WsState {
            shared: Shared::new(crate::Config::default()),
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        };
        let member = |id| Member {
            id,
            outbox: Arc::new(outbox::Outbox::new(1, usize::MAX)),
        };
        let room = st.join("lobby", member(1));
        st.join("lobby", member(2));
        assert_eq!(room.members.read().unwrap().len(), 2);
        assert_eq!(st.shared.stats.rooms(), vec![("ws:lobby".to_string(), 2)]);
        st.leave("lobby", 1);
        st.leave("lobby", 2);
        assert!(st.rooms.lock().unwrap().is_empty());
        assert!(st.shared.stats.rooms().is_empty());
    }
}
