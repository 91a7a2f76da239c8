//! One Engine.IO session's state machine: its transport state, the packets it reacts to,
//! the hand-over of messages to the application, and how it ends.
//!
//! Receives: frames to send (from heartbeats, the application, broadcasters in other
//! tasks), decoded Engine.IO packets from whichever transport currently carries the session.
//! Emits: [`Out`] items into its outbox (`outbox.rs`; a refused push closes the session as
//! a slow consumer), [`Inbound`] messages to the application (its task's queue, or at once
//! to an [`InlineApp`] in the caller's task), one `Stats::closed` per session with its
//! [`CloseCause`].
//! Must not: block or await while pushing, or do any I/O itself.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use protocol::EioPacket;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::app::{Inbound, InlineApp, Labels};
use super::outbox::{self, Frame, Out, Outbox, Refused};
use crate::faults::Recipient;
use crate::stats::{CloseCause, Limit, Proto, Stats};

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
    labels: Labels,
    queue: Outbox,
    /// The receiving end of the queue: held by the pending GET or by the websocket writer.
    pub(crate) outbox: outbox::Receiver,
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
    stats: Arc<Stats>,
    registry: Arc<Registry>,
}

impl Session {
    /// Creates a session, registers it under its sid and counts it as opened.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        conn_id: u64,
        sid: Arc<str>,
        labels: Labels,
        transport: Transport,
        max_queue: usize,
        inbound: Option<mpsc::Sender<Inbound>>,
        stats: Arc<Stats>,
        registry: Arc<Registry>,
    ) -> Arc<Session> {
        let (queue, outbox) = Outbox::new(max_queue);
        let session = Arc::new(Session {
            conn_id,
            sid: sid.clone(),
            labels,
            queue,
            outbox,
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
            stats,
            registry,
        });
        session.stats.opened(session.proto(transport));
        lock(&session.registry).insert(sid, session.clone());
        session
    }

    /// The stats label of this session on `transport`.
    pub fn proto(&self, transport: Transport) -> Proto {
        match transport {
            Transport::Websocket => self.labels.websocket,
            Transport::Polling => self.labels.polling,
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
        match self.queue.push(out) {
            Ok(()) => true,
            Err(Refused::Full(limit)) => {
                // A slow consumer, the limit it hit counted (once).
                self.close_for_limit(CloseCause::SlowConsumer, limit);
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Sets `--max-queue-bytes` for this session.
    pub(crate) fn limit_queue_bytes(&self, max: usize) {
        self.queue.limit_bytes(max);
    }

    /// Holds a `--max-connections` slot until the session closes or moves to websocket.
    pub(crate) fn hold_slot(&self, slot: crate::listener::Slot) {
        self.state().slot = Some(slot);
    }

    /// The transport took `out` from the queue (to write it now): its bytes leave the
    /// `--max-queue-bytes` account.
    pub(crate) fn taken(&self, out: &Out) {
        self.queue.taken(out);
    }

    /// Payload bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.queued_bytes()
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
        self.queue.queued()
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
    /// it here and now): `Err(msg)` back when the application task is behind (the caller
    /// holds it and stops reading), `Ok(false)` when it is gone.
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

/// Application data reaches a session through fault injection.
impl Recipient for Session {
    type Item = Frame;

    fn recipient_id(&self) -> u64 {
        self.conn_id
    }

    fn queue(&self, frame: Frame, due: Option<Instant>) -> bool {
        self.push(frame, due)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
