//! One Engine.IO session: its bounded outbound queue, its transport state, and how it ends.
//!
//! Receives: frames to send (from heartbeats, the application task, broadcasters in other
//! tasks), decoded Engine.IO packets from whichever transport currently carries the session.
//! Emits: [`Out`] items into the queue the transport writer drains, [`Inbound`] messages
//! to the application (its task's queue, or at once to an [`InlineApp`] in the caller's
//! task), one `Stats::closed` per session with its [`CloseCause`].
//! Must not: block or await while pushing (a full queue closes the session as a slow
//! consumer instead), or do any I/O itself.

use std::collections::HashMap;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use protocol::EioPacket;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::stats::{CloseCause, Limit, Proto, Stats};

/// What one queue slot carries to the client.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A complete Engine.IO text packet (`2`, `42["echo",1]`): one WS text frame, or one
    /// record of a polling body.
    Text(Utf8Bytes),
    /// An Engine.IO binary message: one WS binary frame, or `b<base64>` in polling.
    Binary(Bytes),
    /// A Socket.IO binary packet followed by its attachments, kept in one slot so that
    /// concurrent senders can never interleave between them.
    WithAttachments(Utf8Bytes, Arc<[Bytes]>),
}

impl Frame {
    /// Payload bytes (for the byte counters).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
            Frame::WithAttachments(t, atts) => t.len() + atts.iter().map(Bytes::len).sum::<usize>(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A text frame from a static string (control packets).
    pub const fn text_static(s: &'static str) -> Frame {
        Frame::Text(Utf8Bytes::from_static(s))
    }
}

/// One queued item: the frame, when it may be written (`--delay`), and whether it is
/// application data (counted in `messages_out`).
#[derive(Debug)]
pub struct Out {
    pub frame: Frame,
    pub due: Option<Instant>,
    pub app: bool,
}

/// A message from the client for the application task (Engine.IO `message` payloads).
#[derive(Debug)]
pub enum Inbound {
    /// Text without the leading `4`.
    Text(Text),
    Binary(Bytes),
}

/// The text of a client message: a slice of the received frame (no copy).
#[derive(Debug, Clone, Default)]
pub struct Text {
    frame: Utf8Bytes,
    start: usize,
}

impl Text {
    /// The part of `frame` after its first `skip` bytes; `None` if that is not on a
    /// character boundary.
    pub fn after(frame: Utf8Bytes, skip: usize) -> Option<Text> {
        frame
            .as_str()
            .is_char_boundary(skip)
            .then_some(Text { frame, start: skip })
    }

    pub fn as_str(&self) -> &str {
        self.frame.as_str().get(self.start..).unwrap_or_default()
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text {
            frame: Utf8Bytes::from(text),
            start: 0,
        }
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text::from(text.to_string())
    }
}

/// An application that handles a session's messages synchronously, in the task of the
/// transport that read them (no hop through a queue and a second task). Only used when
/// nothing needs the application to wait (no `--stall`): messages of one session then
/// reach it in order because each transport hands them over one by one, in order.
pub(crate) trait InlineApp: Send + Sync + std::fmt::Debug {
    /// Handles one message of `session` now. False when the session is over.
    fn handle(&self, session: &Session, msg: Inbound) -> bool;
}

/// Which transport carries the session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Polling,
    Websocket,
}

/// Transport state, guarded by the session's mutex (touched per request, not per message).
#[derive(Debug)]
pub(crate) struct TransportState {
    pub transport: Transport,
    /// A websocket probe for this sid is open (a second one is refused).
    pub upgrading: bool,
    /// The probe answered `3probe`: polling GETs are released at once with `6`.
    pub probed: bool,
    pub get_pending: bool,
    pub post_pending: bool,
    /// The `--max-connections` slot a polling session holds (none on websocket, whose TCP
    /// connection holds one).
    pub slot: Option<crate::listener::Slot>,
}

/// The sessions of one endpoint by sid (polling requests and upgrades look them up).
pub(crate) type Registry = Mutex<HashMap<Arc<str>, Arc<Session>>>;

/// One Engine.IO session, shared by its transport, heartbeat and application tasks and by
/// the rooms it is a member of.
#[derive(Debug)]
pub struct Session {
    /// Numeric id: the recipient of fault-injection decisions.
    pub conn_id: u64,
    /// The Engine.IO sid (a credential: never reused as the Socket.IO sid).
    pub sid: Arc<str>,
    socketio: bool,
    tx: mpsc::Sender<Out>,
    /// The receiving end of the queue: held by the pending GET or by the websocket writer.
    pub(crate) outbox: Arc<tokio::sync::Mutex<mpsc::Receiver<Out>>>,
    /// The application task's queue; `None` when the application is inline (no queue is
    /// allocated for it).
    inbound: Option<mpsc::Sender<Inbound>>,
    /// When set, messages go here instead of `inbound` (set once, before any transport
    /// reads: see [`Session::set_inline`]).
    inline: OnceLock<Arc<dyn InlineApp>>,
    state: Mutex<TransportState>,
    closed: CancellationToken,
    /// Set just before `closed` is cancelled: [`Session::is_closed`] without the token's
    /// lock (it is asked several times per message).
    closed_flag: AtomicBool,
    cause: OnceLock<CloseCause>,
    /// Signalled on every pong.
    pub(crate) pong: Notify,
    /// Wakes a pending GET when the upgrade needs it released.
    pub(crate) kick: Notify,
    max_queue: usize,
    /// Payload bytes in the outbound queue (pushed, not yet taken by the transport).
    queued_bytes: AtomicUsize,
    /// `--max-queue-bytes` (unbounded until [`Session::limit_queue_bytes`]).
    max_queue_bytes: AtomicUsize,
    stats: Arc<Stats>,
    registry: Arc<Registry>,
}

impl Session {
    /// Creates a session, registers it under its sid and counts it as opened.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        conn_id: u64,
        sid: Arc<str>,
        socketio: bool,
        transport: Transport,
        max_queue: usize,
        inbound: Option<mpsc::Sender<Inbound>>,
        stats: Arc<Stats>,
        registry: Arc<Registry>,
    ) -> Arc<Session> {
        let (tx, rx) = mpsc::channel(max_queue.max(1));
        let session = Arc::new(Session {
            conn_id,
            sid: sid.clone(),
            socketio,
            tx,
            outbox: Arc::new(tokio::sync::Mutex::new(rx)),
            inbound,
            inline: OnceLock::new(),
            state: Mutex::new(TransportState {
                transport,
                upgrading: false,
                probed: false,
                get_pending: false,
                post_pending: false,
                slot: None,
            }),
            closed: CancellationToken::new(),
            closed_flag: AtomicBool::new(false),
            cause: OnceLock::new(),
            pong: Notify::new(),
            kick: Notify::new(),
            max_queue: max_queue.max(1),
            queued_bytes: AtomicUsize::new(0),
            max_queue_bytes: AtomicUsize::new(usize::MAX),
            stats,
            registry,
        });
        session.stats.opened(session.proto(transport));
        lock(&session.registry).insert(sid, session.clone());
        session
    }

    /// The stats label of this session on `transport`.
    pub fn proto(&self, transport: Transport) -> Proto {
        match (self.socketio, transport) {
            (true, Transport::Websocket) => Proto::SocketioWebsocket,
            (true, Transport::Polling) => Proto::SocketioPolling,
            (false, Transport::Websocket) => Proto::EngineioWebsocket,
            (false, Transport::Polling) => Proto::EngineioPolling,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, TransportState> {
        lock(&self.state)
    }

    /// Switches the session to websocket (end of the upgrade dance). False if it closed.
    pub(crate) fn switch_to_websocket(&self) -> bool {
        let mut st = self.state();
        if self.is_closed() {
            return false;
        }
        st.transport = Transport::Websocket;
        st.upgrading = false;
        st.probed = false;
        // The websocket's own TCP connection counts from now on.
        st.slot = None;
        self.stats.upgraded(
            self.proto(Transport::Polling),
            self.proto(Transport::Websocket),
        );
        true
    }

    /// Queues application data (already past fault injection). False if the session is
    /// closed or was just closed because its queue is full.
    pub fn push(&self, frame: Frame, due: Option<Instant>) -> bool {
        self.enqueue(Out {
            frame,
            due,
            app: true,
        })
    }

    /// Queues a control or protocol packet (handshake replies, pings, join acks).
    pub fn push_control(&self, frame: Frame) -> bool {
        self.enqueue(Out {
            frame,
            due: None,
            app: false,
        })
    }

    fn enqueue(&self, out: Out) -> bool {
        if self.is_closed() {
            return false;
        }
        let len = out.frame.len();
        let before = self.queued_bytes.fetch_add(len, Relaxed);
        if before > 0 && before.saturating_add(len) > self.max_queue_bytes.load(Relaxed) {
            self.queued_bytes.fetch_sub(len, Relaxed);
            self.slow_consumer(Limit::QueueBytes);
            return false;
        }
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(e) => {
                self.queued_bytes.fetch_sub(len, Relaxed);
                if let mpsc::error::TrySendError::Full(_) = e {
                    self.slow_consumer(Limit::QueueItems);
                }
                false
            }
        }
    }

    /// Closes the session as a slow consumer, counting the limit it hit (once).
    fn slow_consumer(&self, limit: Limit) {
        self.close_for_limit(CloseCause::SlowConsumer, limit);
    }

    /// Sets `--max-queue-bytes` for this session.
    pub(crate) fn limit_queue_bytes(&self, max: usize) {
        self.max_queue_bytes.store(max.max(1), Relaxed);
    }

    /// Holds a `--max-connections` slot until the session closes or moves to websocket.
    pub(crate) fn hold_slot(&self, slot: crate::listener::Slot) {
        self.state().slot = Some(slot);
    }

    /// The transport took `out` from the queue (to write it now): its bytes leave the
    /// `--max-queue-bytes` account.
    pub(crate) fn taken(&self, out: &Out) {
        self.queued_bytes.fetch_sub(out.frame.len(), Relaxed);
    }

    /// Payload bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Relaxed)
    }

    /// Records the deepest queue seen (cheap: an atomic write only when a record is set).
    pub(crate) fn note_queue_depth(&self, depth: usize) {
        let depth = depth as u64;
        if depth > self.stats.outbound_queue_peak.load(Relaxed) {
            self.stats.outbound_queue_peak.fetch_max(depth, Relaxed);
        }
    }

    /// Items waiting in the outbound queue.
    pub fn queued(&self) -> usize {
        self.max_queue - self.tx.capacity()
    }

    /// Closes the session once: records `cause`, counts the close, unregisters the sid and
    /// wakes every task of the session. Later calls return false and change nothing.
    pub fn close(&self, cause: CloseCause) -> bool {
        self.close_counting(cause, None)
    }

    /// [`Session::close`] for a server limit the peer hit: the limit is counted before
    /// the session's tasks are woken, so a peer that sees the close and then reads
    /// `/metrics` finds it counted. Counted only by the call that closes.
    pub(crate) fn close_for_limit(&self, cause: CloseCause, limit: Limit) -> bool {
        self.close_counting(cause, Some(limit))
    }

    fn close_counting(&self, cause: CloseCause, limit: Option<Limit>) -> bool {
        if self.cause.set(cause).is_err() {
            return false;
        }
        if let Some(limit) = limit {
            self.stats.limit_hit(limit);
        }
        let slot = {
            let mut st = self.state();
            self.stats.closed(self.proto(st.transport), cause);
            st.slot.take()
        };
        drop(slot);
        {
            let mut reg = lock(&self.registry);
            if reg
                .get(&self.sid)
                .is_some_and(|s| std::ptr::eq(s.as_ref(), self))
            {
                reg.remove(&self.sid);
            }
        }
        self.closed_flag.store(true, Release);
        self.closed.cancel();
        true
    }

    pub fn is_closed(&self) -> bool {
        self.closed_flag.load(Acquire)
    }

    /// Why the session closed, once it has.
    pub fn cause(&self) -> Option<CloseCause> {
        self.cause.get().copied()
    }

    /// Resolves when the session closes.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Handles one packet from the client, whichever transport carried it: heartbeat and
    /// close here, application messages handed back for the transport to pass on in order
    /// ([`Session::to_app`] or [`Session::try_to_app`]).
    pub(crate) fn on_packet(&self, packet: EioPacket) -> Step {
        match packet {
            EioPacket::Pong { probe: false } => self.pong.notify_one(),
            // Engine.IO v4: the server pings, a client ping is "invalid heartbeat direction".
            EioPacket::Ping { .. } => {
                self.close(CloseCause::ProtocolError);
                return Step::Stop;
            }
            EioPacket::Close => {
                self.close(CloseCause::ClientClose);
                return Step::Stop;
            }
            EioPacket::Message(text) => return Step::Deliver(Inbound::Text(text.into())),
            EioPacket::Binary(data) => return Step::Deliver(Inbound::Binary(data)),
            // Ignored, as the reference does, outside an upgrade.
            EioPacket::Pong { probe: true }
            | EioPacket::Upgrade
            | EioPacket::Noop
            | EioPacket::Open(_) => {}
        }
        if self.is_closed() {
            Step::Stop
        } else {
            Step::Continue
        }
    }

    /// Routes every later message to `app`, handled in the transport's task. Call before
    /// the session is handed to a transport; a second call changes nothing.
    pub(crate) fn set_inline(&self, app: Arc<dyn InlineApp>) {
        let _ = self.inline.set(app);
    }

    /// Hands a message to the application task, in order; waits (bounded by the session's
    /// life) when that task is behind. False when the session is over.
    pub(crate) async fn to_app(&self, msg: Inbound) -> bool {
        match (self.try_to_app(msg), &self.inbound) {
            (Ok(alive), _) => alive,
            (Err(msg), Some(inbound)) => tokio::select! {
                r = inbound.send(msg) => r.is_ok(),
                () = self.closed() => false,
            },
            (Err(_), None) => false,
        }
    }

    /// Hands a message to the application without waiting (an inline application handles
    /// it here and now): `Err(msg)` back when the application task is behind (the caller holds it and stops reading), `Ok(false)` when it is gone.
    pub(crate) fn try_to_app(&self, msg: Inbound) -> Result<bool, Inbound> {
        if let Some(app) = self.inline.get() {
            return Ok(app.handle(self, msg));
        }
        let Some(inbound) = &self.inbound else {
            return Ok(false);
        };
        match inbound.try_send(msg) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Full(msg)) => Err(msg),
        }
    }

    /// Waits for room in the application task's queue; `None` when it is gone (or the
    /// application is inline, which never leaves a message waiting).
    pub(crate) async fn reserve_inbound(&self) -> Option<mpsc::Permit<'_, Inbound>> {
        self.inbound.as_ref()?.reserve().await.ok()
    }
}

/// What the transport does after [`Session::on_packet`].
#[derive(Debug)]
pub(crate) enum Step {
    Continue,
    /// The session is over.
    Stop,
    /// Pass this message to the application task.
    Deliver(Inbound),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(
        max_queue: usize,
    ) -> (
        Arc<Session>,
        Arc<Stats>,
        Arc<Registry>,
        mpsc::Receiver<Inbound>,
    ) {
        let stats = Arc::new(Stats::new());
        let registry = Arc::new(Registry::default());
        let (itx, irx) = mpsc::channel(4);
        let s = Session::open(
            1,
            "abc".into(),
            true,
            Transport::Websocket,
            max_queue,
            Some(itx),
            stats.clone(),
            registry.clone(),
        );
        (s, stats, registry, irx)
    }

    #[tokio::test]
    async fn full_queue_closes_as_slow_consumer_and_counts_once() {
        let (s, stats, registry, _irx) = session(2);
        assert_eq!(stats.connections(Proto::SocketioWebsocket), 1);
        assert!(s.push(Frame::text_static("4a"), None));
        assert!(s.push(Frame::text_static("4b"), None));
        assert_eq!(s.queued(), 2);
        assert!(
            !s.push(Frame::text_static("4c"), None),
            "third push overflows max_queue 2"
        );
        assert!(s.is_closed());
        assert_eq!(s.cause(), Some(CloseCause::SlowConsumer));
        assert_eq!(stats.closes(CloseCause::SlowConsumer), 1);
        assert_eq!(stats.connections(Proto::SocketioWebsocket), 0);
        assert!(lock(&registry).is_empty(), "closed session unregistered");
        assert!(!s.close(CloseCause::PingTimeout), "second close is a no-op");
        assert_eq!(stats.closes(CloseCause::PingTimeout), 0);
    }

    #[tokio::test]
    async fn queued_bytes_close_a_slow_consumer_and_are_counted() {
        let (s, stats, _registry, _irx) = session(100);
        s.limit_queue_bytes(10);
        let big = Frame::Text(Utf8Bytes::from("4".repeat(25)));
        assert!(s.push(big, None), "an empty queue takes one message");
        assert_eq!(s.queued_bytes(), 25);
        let out = s.outbox.try_lock().unwrap().try_recv().unwrap();
        s.taken(&out);
        assert_eq!(s.queued_bytes(), 0);
        assert!(s.push(Frame::text_static("4abcd"), None));
        assert!(s.push(Frame::text_static("4abcd"), None));
        assert!(!s.push(Frame::text_static("4"), None), "11 bytes > 10");
        assert_eq!(s.cause(), Some(CloseCause::SlowConsumer));
        assert_eq!(stats.limit_hits(Limit::QueueBytes), 1);
    }

    #[tokio::test]
    async fn packets_route_to_app_heartbeat_or_close() {
        let (s, stats, _registry, mut irx) = session(8);
        let Step::Deliver(msg) = s.on_packet(EioPacket::Message("2[\"x\"]".into())) else {
            panic!("a message goes to the app")
        };
        assert!(s.to_app(msg).await);
        match irx.try_recv() {
            Ok(Inbound::Text(t)) => assert_eq!(t.as_str(), "2[\"x\"]"),
            other => panic!("expected text inbound, got {other:?}"),
        }
        assert!(matches!(
            s.on_packet(EioPacket::Pong { probe: false }),
            Step::Continue
        ));
        assert!(matches!(s.on_packet(EioPacket::Noop), Step::Continue));
        assert!(
            matches!(s.on_packet(EioPacket::Ping { probe: false }), Step::Stop),
            "client ping closes"
        );
        assert_eq!(stats.closes(CloseCause::ProtocolError), 1);
    }

    #[tokio::test]
    async fn a_full_app_queue_hands_the_message_back() {
        let (s, _stats, _registry, mut irx) = session(8);
        for i in 0..4 {
            assert!(matches!(
                s.try_to_app(Inbound::Text(i.to_string().into())),
                Ok(true)
            ));
        }
        let Err(Inbound::Text(back)) = s.try_to_app(Inbound::Text("5".into())) else {
            panic!("app queue of 4 is full")
        };
        assert_eq!(back.as_str(), "5");
        irx.recv().await.expect("first");
        assert!(matches!(s.try_to_app(Inbound::Text(back)), Ok(true)));
    }

    #[tokio::test]
    async fn upgrade_moves_the_gauge() {
        let stats = Arc::new(Stats::new());
        let registry = Arc::new(Registry::default());
        let (itx, _irx) = mpsc::channel(1);
        let s = Session::open(
            2,
            "p".into(),
            false,
            Transport::Polling,
            4,
            Some(itx),
            stats.clone(),
            registry,
        );
        assert_eq!(stats.connections(Proto::EngineioPolling), 1);
        assert!(s.switch_to_websocket());
        assert_eq!(stats.connections(Proto::EngineioPolling), 0);
        assert_eq!(stats.connections(Proto::EngineioWebsocket), 1);
        s.close(CloseCause::ClientClose);
        assert_eq!(stats.connections(Proto::EngineioWebsocket), 0);
    }
}
