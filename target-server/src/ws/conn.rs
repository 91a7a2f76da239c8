//! One raw WebSocket connection: reads frames, echoes or fans them out to a room, keeps the
//! server heartbeat, and closes with the RFC 6455 code that fits.
//!
//! Receives: the upgraded socket and its [`Mode`]. Emits: application frames into the
//! outbound queues of their recipients (after fault injection: drop per recipient, delay
//! per message, stall before handling), server pings, a close frame (1001 on shutdown, 1007
//! invalid UTF-8, 1009 too big, 1002 other protocol errors), and `opened`/`closed` with the
//! [`CloseCause`]. Must not: write to the socket itself (the writer does) or block on a
//! full queue (a full queue disconnects its owner as a slow consumer).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::outbox::Push;
use super::writer::{self, Out};
use super::{Member, Mode, Room, WsState, payload};
use crate::Shared;
use crate::config::Config;
use crate::stats::{CloseCause, Limit, Proto};
use crate::upgrade::WsStream;

/// Time the writer gets to send what is queued (and the close frame) once the reader is done.
const WRITER_GRACE: Duration = Duration::from_secs(2);
/// Time the peer gets, after our close frame, to close its side.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read while lingering at most, beyond the largest message: a peer whose message was
/// refused as too big may still be sending the rest of it, and input left unread when the
/// socket closes turns the close into a reset that can destroy our close frame in flight
/// (seen as 1006 instead of 1009 on a loaded machine when this bound was 256 reads of up
/// to 4 KiB: short reads drained less than the 1 MiB still coming).
const LINGER_SLACK: usize = 256 * 1024;
/// Largest linger budget, whatever `max_message_size` says.
const LINGER_MAX: usize = 64 << 20;

/// How the read loop ended.
struct End {
    cause: CloseCause,
    /// Close frame to send (None: the peer closed, the socket is gone, or it is a slow
    /// consumer whose queue cannot take one more frame).
    close: Option<CloseFrame>,
}

impl End {
    fn silent(cause: CloseCause) -> End {
        End { cause, close: None }
    }

    fn close(cause: CloseCause, code: CloseCode, reason: &'static str) -> End {
        End {
            cause,
            close: Some(CloseFrame {
                code,
                reason: reason.into(),
            }),
        }
    }
}

/// Serves one upgraded connection until it closes. `me` (its id and outbound queue) was
/// made, and joined to `room` in room mode, when the handshake was accepted.
pub(crate) async fn run(
    st: Arc<WsState>,
    ws: WsStream,
    mode: Mode,
    me: Member,
    room: Option<Arc<Room>>,
) {
    let shared = st.shared.clone();
    shared.stats.opened(Proto::RawWs);
    let id = me.id;
    let (sink, mut stream) = ws.split();
    let outbox = me.outbox.clone();
    let mut writer = {
        let shared = shared.clone();
        shared
            .tasks
            .clone()
            .spawn(async move { writer::run(sink, &outbox, &shared.stats).await })
    };
    let target = match (&mode, room) {
        (Mode::Room { include_self, .. }, Some(room)) => Target::Room {
            room,
            include_self: *include_self,
        },
        _ => Target::Echo,
    };

    let end = read_loop(&shared, &me, &target, &mut stream).await;

    if let Mode::Room { name, .. } = &mode {
        st.leave(name, id);
    }
    drop(target);
    let close_queued = match end.close {
        Some(frame) => me.outbox.push(Out::now(Message::Close(Some(frame)))) == Push::Queued,
        None => false,
    };
    me.outbox.close();
    let sink = match tokio::time::timeout(WRITER_GRACE, &mut writer).await {
        Ok(joined) => joined.ok(),
        Err(_) => {
            me.outbox.kill.cancel();
            writer.await.ok()
        }
    };
    if close_queued
        && let Some(sink) = sink
        && let Ok(ws) = stream.reunite(sink)
    {
        // Boxed: the socket moves into a future only connections that close pay for.
        let budget = shared
            .config
            .max_message_size
            .saturating_add(LINGER_SLACK)
            .min(LINGER_MAX);
        Box::pin(linger(ws, budget)).await;
    }
    shared.stats.closed(Proto::RawWs, end.cause);
}

/// After our close frame: half-close the socket and read whatever the peer still sends
/// (at most `budget` bytes, for at most [`LINGER`]), so the close frame is not lost to a
/// reset caused by unread input.
async fn linger(mut ws: WsStream, budget: usize) {
    let io = ws.get_mut();
    let _ = io.shutdown().await;
    // On the heap: an array here would sit in every connection's task for its whole life.
    let mut buf = vec![0u8; 16 * 1024];
    let drain = async {
        let mut left = budget;
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Where a connection's data frames go.
enum Target {
    Echo,
    Room { room: Arc<Room>, include_self: bool },
}

/// Server heartbeat state: next ping, and the first ping not followed by any frame.
struct Heartbeat {
    every: Duration,
    /// `--ws-idle-timeout` rather than `--ws-ping-interval`: only a peer silent for `every`
    /// is pinged (each frame received moves the next ping).
    idle: bool,
    timeout: Duration,
    next_ping: Instant,
    unanswered_since: Option<Instant>,
}

impl Heartbeat {
    /// `--ws-ping-interval`, else `--ws-idle-timeout`; none when both are off (zero).
    fn from_config(config: &Config) -> Option<Heartbeat> {
        let interval = config.ws_ping_interval.filter(|d| !d.is_zero());
        let idle = Some(config.ws_idle_timeout).filter(|d| interval.is_none() && !d.is_zero());
        interval.or(idle).map(|every| Heartbeat {
            every,
            idle: interval.is_none(),
            timeout: config.ws_ping_timeout,
            next_ping: Instant::now() + every,
            unanswered_since: None,
        })
    }

    fn due(&self) -> Instant {
        match self.unanswered_since {
            Some(t) => self.next_ping.min(t + self.timeout),
            None => self.next_ping,
        }
    }

    /// The timer fired: ends a peer silent past the timeout (unless we are the ones not
    /// reading: `stalled`, then the peer gets a new window), and queues a ping when due.
    fn on_timer(&mut self, shared: &Shared, me: &Member, stalled: bool) -> Result<(), End> {
        let now = Instant::now();
        if let Some(t) = self.unanswered_since
            && now >= t + self.timeout
        {
            if !stalled {
                if self.idle {
                    shared.stats.limit_hit(Limit::IdleTimeout);
                }
                return Err(End::silent(CloseCause::PingTimeout));
            }
            self.unanswered_since = Some(now);
        }
        if now >= self.next_ping {
            if !enqueue(me, Out::now(Message::Ping(timestamp_payload()))) {
                return Err(End::silent(CloseCause::SlowConsumer));
            }
            self.unanswered_since.get_or_insert(now);
            self.next_ping = now + self.every;
        }
        Ok(())
    }

    /// Any frame from the peer answers the heartbeat (and, in idle mode, moves the next ping).
    fn on_frame(&mut self) {
        self.unanswered_since = None;
        if self.idle {
            self.next_ping = Instant::now() + self.every;
        }
    }
}

/// The end of a connection that the outbox's kill signal decided (a slow consumer).
fn killed(shared: &Shared, me: &Member) -> End {
    if let Some(limit) = me.outbox.kill_reason() {
        shared.stats.limit_hit(limit);
    }
    End::silent(CloseCause::SlowConsumer)
}

/// Reads the peer's frames until the connection ends: handles data frames (holding one
/// while `--stall` stalls the handlers), keeps the heartbeat, and says how it ended.
async fn read_loop(
    shared: &Shared,
    me: &Member,
    target: &Target,
    stream: &mut SplitStream<WsStream>,
) -> End {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut heartbeat = Heartbeat::from_config(&shared.config);
    let timer = tokio::time::sleep_until(heartbeat.as_ref().map_or(far, Heartbeat::due));
    let stall = tokio::time::sleep_until(far);
    let shutdown = shared.shutdown.cancelled();
    let killed_signal = me.outbox.kill.cancelled();
    tokio::pin!(timer, stall, shutdown, killed_signal);
    let stalls = shared.config.stall.is_some();
    // A data frame held while the application handlers are stalled.
    let mut held: Option<Message> = None;
    let mut peer_closed = false;

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                return End::close(CloseCause::Shutdown, CloseCode::Away, "server shutting down");
            }
            () = &mut killed_signal => return killed(shared, me),
            () = &mut timer, if heartbeat.is_some() => {
                let Some(hb) = heartbeat.as_mut() else { continue };
                if let Err(end) = hb.on_timer(shared, me, held.is_some()) {
                    return end;
                }
                timer.as_mut().reset(hb.due());
            }
            () = &mut stall, if held.is_some() => {
                if let Some(msg) = held.take() {
                    handle(shared, me, target, msg);
                }
            }
            item = stream.next(), if held.is_none() => {
                let msg = match item {
                    None => {
                        let cause = if peer_closed { CloseCause::ClientClose } else { CloseCause::TransportError };
                        return End::silent(cause);
                    }
                    Some(Err(e)) => return classify(e),
                    Some(Ok(msg)) => msg,
                };
                if let Some(hb) = heartbeat.as_mut() {
                    hb.on_frame();
                }
                match msg {
                    Message::Text(_) | Message::Binary(_) => {
                        let until = if stalls { shared.faults.stalled_until(Instant::now()) } else { None };
                        match until {
                            Some(until) => {
                                held = Some(msg);
                                stall.as_mut().reset(until);
                            }
                            None => handle(shared, me, target, msg),
                        }
                    }
                    // tungstenite queues the close reply and pongs itself; reading on flushes them.
                    Message::Close(_) => peer_closed = true,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}

/// Maps a read error to the close the RFC asks for.
fn classify(e: WsError) -> End {
    match e {
        WsError::Utf8(_) => End::close(
            CloseCause::ProtocolError,
            CloseCode::Invalid,
            "invalid UTF-8",
        ),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => End::close(
            CloseCause::ProtocolError,
            CloseCode::Size,
            "message too big",
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            End::silent(CloseCause::TransportError)
        }
        WsError::Protocol(_) | WsError::Capacity(_) | WsError::AttackAttempt => End::close(
            CloseCause::ProtocolError,
            CloseCode::Protocol,
            "protocol error",
        ),
        e => {
            tracing::debug!("raw ws read ended: {e}");
            End::silent(CloseCause::TransportError)
        }
    }
}

/// Handles one application message: echo to the sender or deliver to every room member.
fn handle(shared: &Shared, me: &Member, target: &Target, msg: Message) {
    shared.stats.message_in(payload(&msg).len());
    let faults = &shared.faults;
    let key = faults.drop_key(&msg);
    match target {
        Target::Echo => {
            faults.deliver_echo_keyed(me, msg, key);
        }
        Target::Room { room, include_self } => {
            let members = room.members.read().unwrap_or_else(|e| e.into_inner());
            for m in members.iter() {
                if *include_self || m.id != me.id {
                    // A cheap clone: the payload `Bytes` is shared.
                    faults.deliver_keyed(m, msg.clone(), key);
                }
            }
        }
    }
}

/// Queues one frame for `to`; a full queue disconnects `to` as a slow consumer. Returns
/// false when the frame was not queued.
fn enqueue(to: &Member, out: Out) -> bool {
    to.outbox.push(out) == Push::Queued
}

/// 8-byte big-endian wall-clock timestamp (ns since the Unix epoch) for server pings: the
/// echoed pong gives the round trip.
fn timestamp_payload() -> Bytes {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Bytes::copy_from_slice(&ns.to_be_bytes())
}
