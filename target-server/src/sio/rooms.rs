//! One Socket.IO namespace: its rooms and the emit paths (to a room, to one socket), with
//! connection state recovery stamping when it is on.
//!
//! Receives: joins and leaves, events to emit (encoded once by the caller as an
//! [`EventText`]).
//! Emits: the same frame (a refcount clone, never re-encoded) into the queue of every
//! member, through fault injection; room sizes into `Stats` as `"<nsp>#<room>"`.
//! Must not: block or await while a room lock is held (delivery is a non-blocking push), or
//! take the write lock on the emit path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::raw::{self, EventText};
use super::recovery::{Recovery, Target};
use crate::Shared;
use crate::eio::{Frame, Session};

/// Members of one room by connection id.
type Members = HashMap<u64, Arc<Session>>;

/// A namespace served by the Socket.IO server.
#[derive(Debug)]
pub struct Namespace {
    pub name: Arc<str>,
    shared: Arc<Shared>,
    rooms: RwLock<HashMap<Arc<str>, Members>>,
    pub(crate) recovery: Option<Arc<Recovery>>,
}

impl Namespace {
    pub fn new(name: &str, shared: Arc<Shared>) -> Namespace {
        let recovery = shared.config.recovery.map(|window| {
            let max = shared.config.max_recovery_log_bytes;
            Arc::new(Recovery::new(window, max, shared.stats.clone()))
        });
        Namespace {
            name: name.into(),
            shared,
            rooms: RwLock::new(HashMap::new()),
            recovery,
        }
    }

    fn stats_name(&self, room: &str) -> String {
        format!("{}#{room}", self.name)
    }

    /// Adds `member` to `room` (idempotent); returns the member count.
    pub fn join(&self, room: &str, member: &Arc<Session>) -> usize {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        let members = match rooms.get_mut(room) {
            Some(m) => m,
            None => rooms.entry(Arc::from(room)).or_default(),
        };
        if members.insert(member.conn_id, member.clone()).is_none() {
            self.shared.stats.room_delta(&self.stats_name(room), 1);
        }
        members.len()
    }

    /// Removes connection `conn_id` from `room`; returns the member count left.
    pub fn leave(&self, room: &str, conn_id: u64) -> usize {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        let Some(members) = rooms.get_mut(room) else {
            return 0;
        };
        if members.remove(&conn_id).is_some() {
            self.shared.stats.room_delta(&self.stats_name(room), -1);
        }
        let left = members.len();
        if left == 0 {
            rooms.remove(room);
        }
        left
    }

    /// Members of `room` now.
    pub fn size(&self, room: &str) -> usize {
        self.rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            .map_or(0, HashMap::len)
    }

    /// Emits `event` to every member of `room` (the sender too if it is one); returns the
    /// number of members it was addressed to (drops by fault injection included).
    pub fn broadcast(
        &self,
        room: &str,
        event: EventText,
        attachments: Option<&Arc<[Bytes]>>,
    ) -> usize {
        match &self.recovery {
            Some(rec) => rec.record(Target::Room(room.into()), event, attachments, |f| {
                self.deliver_room(room, f)
            }),
            None => self.deliver_room(room, raw::frame(event.finish(None), attachments)),
        }
    }

    /// Emits `event` to the one socket `sid` carried by session `to`. `faults`: whether it
    /// is application data subject to fault injection (which then decides any delay);
    /// without, `due` holds it (and everything queued after it) until then.
    pub fn emit_to(
        &self,
        sid: &Arc<str>,
        to: &Session,
        event: EventText,
        attachments: Option<&Arc<[Bytes]>>,
        faults: bool,
        due: Option<tokio::time::Instant>,
    ) {
        let send = |frame: Frame| {
            if faults {
                self.shared.faults.deliver(to, frame);
            } else {
                to.push(frame, due);
            }
        };
        match &self.recovery {
            Some(rec) => rec.record(Target::Socket(sid.clone()), event, attachments, send),
            None => send(raw::frame(event.finish(None), attachments)),
        }
    }

    fn deliver_room(&self, room: &str, frame: Frame) -> usize {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let Some(members) = rooms.get(room) else {
            return 0;
        };
        let faults = &self.shared.faults;
        let key = faults.drop_key(&frame);
        for member in members.values() {
            faults.deliver_keyed(&**member, frame.clone(), key);
        }
        members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::eio::session::Registry;
    use crate::eio::{Out, Transport};
    use tokio::sync::mpsc;

    fn member(shared: &Arc<Shared>, id: u64) -> Arc<Session> {
        let (itx, _irx) = mpsc::channel(1);
        Session::open(
            id,
            format!("s{id}").into(),
            super::super::LABELS,
            Transport::Websocket,
            8,
            Some(itx),
            shared.stats.clone(),
            Arc::new(Registry::default()),
        )
    }

    fn drain(s: &Session) -> Vec<Out> {
        let mut rx = s.outbox.try_lock().expect("outbox free");
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn broadcast_shares_one_encoding_with_every_member() {
        let shared = Shared::new(Config::default());
        let nsp = Namespace::new("/", shared.clone());
        let (a, b, c) = (member(&shared, 1), member(&shared, 2), member(&shared, 3));
        assert_eq!(nsp.join("lobby", &a), 1);
        assert_eq!(nsp.join("lobby", &b), 2);
        assert_eq!(nsp.join("lobby", &b), 2, "joining twice is a no-op");
        nsp.join("other", &c);
        assert_eq!(
            shared.stats.rooms(),
            vec![("/#lobby".to_string(), 2), ("/#other".to_string(), 1)]
        );
        let n = nsp.broadcast("lobby", EventText::new("/", "broadcast", "1", 0), None);
        assert_eq!(n, 2);
        let (qa, qb) = (drain(&a), drain(&b));
        assert!(drain(&c).is_empty(), "not a member");
        let (Frame::Text(ta), Frame::Text(tb)) = (&qa[0].frame, &qb[0].frame) else {
            panic!("text frames")
        };
        assert_eq!(ta.as_str(), r#"42["broadcast",1]"#);
        assert_eq!(
            ta.as_ptr(),
            tb.as_ptr(),
            "same bytes, not a copy per member"
        );
        assert_eq!(nsp.leave("lobby", 1), 1);
        assert_eq!(nsp.leave("lobby", 2), 0);
        assert_eq!(nsp.size("lobby"), 0);
        assert_eq!(
            nsp.broadcast("lobby", EventText::new("/", "broadcast", "", 0), None),
            0
        );
    }

    #[tokio::test]
    async fn dropped_deliveries_are_counted_and_skipped() {
        let shared = Shared::new(Config {
            drop_rate: 1.0,
            ..Config::default()
        });
        let nsp = Namespace::new("/", shared.clone());
        let a = member(&shared, 1);
        nsp.join("r", &a);
        assert_eq!(
            nsp.broadcast("r", EventText::new("/", "broadcast", "", 0), None),
            1
        );
        assert!(drain(&a).is_empty());
        assert_eq!(
            shared
                .stats
                .dropped_by_injection
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
