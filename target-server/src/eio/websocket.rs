//! The websocket transport: websocket-only sessions, the polling -> websocket upgrade
//! (docs/ARCHITECTURE.md#the-upgrade-dance), and the one task per connection that reads
//! and writes its socket.
//!
//! Receives: upgrade requests (`transport=websocket`, with or without `sid`), then frames.
//! Emits: the open packet as the first frame of a websocket-only session; `3probe`; the
//! session's queued packets, many frames per wakeup with one flush; on close `1` plus
//! WS close 1001 at shutdown, the RFC codes for bad input (1007, 1009, 1002).
//! Must not: let a probe take over a session before `5`, or accept a second websocket for
//! a session that already has one (it is closed at once).

use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{Request, Response};
use protocol::EioPacket;
use tokio::sync::{OwnedMutexGuard, mpsc};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::session::{Session, Step, Transport};
use super::{EioError, Engine, Frame, Inbound, Out, Text};
use crate::stats::{CloseCause, Stats};
use crate::upgrade::{self, WsStream};

/// Most frames written per wakeup before one flush.
const MAX_BATCH: usize = 256;
/// Bytes tungstenite gathers before a write syscall; a wakeup's frames go out in a few
/// writes instead of one per frame, and an idle connection keeps at most this much.
const WRITE_BUFFER: usize = 4096;
/// Time allowed for the goodbye frames of a closing connection.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

fn ws_config(engine: &Engine) -> WebSocketConfig {
    let max = usize::try_from(engine.shared.config.max_payload).unwrap_or(usize::MAX);
    upgrade::ws_config(max).write_buffer_size(WRITE_BUFFER)
}

/// `transport=websocket` without sid: a websocket-only session. The open packet is the
/// first frame; the heartbeat starts with it.
pub(crate) fn open(engine: Arc<Engine>, req: &mut Request<Body>) -> Response<Body> {
    let (resp, ws) = match upgrade::accept(req, ws_config(&engine)) {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let tasks = engine.shared.tasks.clone();
    tasks.spawn(async move {
        let Some(mut ws) = ws.await else { return };
        let session = engine.new_session(Transport::Websocket);
        let open = engine.open_packet(&session, Transport::Websocket);
        if ws.send(Message::text(open)).await.is_err() {
            session.close(CloseCause::TransportError);
            return;
        }
        let outbox = session.outbox.clone().lock_owned().await;
        drive(&engine.shared.stats, session, ws, outbox).await;
    });
    resp
}

/// `transport=websocket&sid=...`: an upgrade probe for a polling session. Unknown sid:
/// 400. A session already on websocket or already probing: accepted, then closed.
pub(crate) fn upgrade(engine: Arc<Engine>, sid: &str, req: &mut Request<Body>) -> Response<Body> {
    let Some(session) = engine.lookup(sid) else {
        return EioError::UnknownSid.response();
    };
    let refuse = {
        let mut st = session.state();
        if st.transport == Transport::Websocket || st.upgrading {
            true
        } else {
            st.upgrading = true;
            false
        }
    };
    let (resp, ws) = match upgrade::accept(req, ws_config(&engine)) {
        Ok(ok) => ok,
        Err(resp) => {
            if !refuse {
                session.state().upgrading = false;
            }
            return resp;
        }
    };
    let tasks = engine.shared.tasks.clone();
    tasks.spawn(async move {
        let Some(mut ws) = ws.await else {
            if !refuse {
                session.state().upgrading = false;
            }
            return;
        };
        if refuse {
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
            return;
        }
        probe(&engine, session, ws).await;
    });
    resp
}

/// The upgrade dance on the probe socket: `2probe` -> `3probe` (pending GET released with
/// `6`), then `5` switches the session here. Anything else, or `upgradeTimeout` without
/// `5`, drops the probe and the session carries on over polling.
async fn probe(engine: &Engine, session: Arc<Session>, mut ws: WsStream) {
    let deadline = sleep(engine.shared.config.upgrade_timeout);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            biased;
            () = session.closed() => {
                let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
                return;
            }
            () = &mut deadline => break,
            msg = ws.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(t))) if t.as_str() == "2probe" => {
                if ws.send(Message::text("3probe")).await.is_err() {
                    break;
                }
                session.state().probed = true;
                session.kick.notify_one();
            }
            Some(Ok(Message::Text(t))) if t.as_str() == "5" => {
                if !session.switch_to_websocket() {
                    return;
                }
                session.kick.notify_one();
                let outbox = tokio::select! {
                    outbox = session.outbox.clone().lock_owned() => outbox,
                    () = session.closed() => return,
                };
                return drive(&engine.shared.stats, session, ws, outbox).await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => break,
        }
    }
    {
        let mut st = session.state();
        st.upgrading = false;
        st.probed = false;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
}

/// Runs a session's websocket until the session closes: reads frames into the session,
/// writes its queue. Then says goodbye according to the close cause.
pub(crate) async fn drive(
    stats: &Stats,
    session: Arc<Session>,
    mut ws: WsStream,
    mut outbox: OwnedMutexGuard<mpsc::Receiver<Out>>,
) {
    // An item whose `--delay` has not passed yet (everything behind it waits: FIFO).
    let mut held: Option<Out> = None;
    // A client message the application task had no room for: reading pauses (TCP
    // backpressure) until it fits, while writing goes on.
    let mut waiting_in: Option<Inbound> = None;
    let delay = crate::faults::hold(Instant::now());
    tokio::pin!(delay);
    let closed = closing(&session);
    tokio::pin!(closed);
    let mut close_frame: Option<CloseFrame> = None;
    loop {
        // Unbiased: reading and writing share the task fairly, so neither a flooding
        // client nor a busy room can starve the other direction.
        let first = tokio::select! {
            () = &mut closed => break,
            permit = session.reserve_inbound(), if waiting_in.is_some() => {
                match (permit, waiting_in.take()) {
                    (Some(permit), Some(msg)) => {
                        permit.send(msg);
                        continue;
                    }
                    _ => break,
                }
            }
            msg = ws.next(), if waiting_in.is_none() => {
                if let Err(frame) = read_burst(&session, &mut ws, msg, &mut waiting_in) {
                    close_frame = frame;
                    break;
                }
                // Replies to what was just read go out now, with one flush.
                match held.is_none().then(|| outbox.try_recv().ok()).flatten() {
                    Some(out) => out,
                    None => continue,
                }
            }
            () = &mut delay, if held.is_some() => match held.take() {
                Some(out) => out,
                None => continue,
            },
            out = outbox.recv(), if held.is_none() => match out {
                Some(out) => out,
                None => break,
            },
        };
        session.note_queue_depth(outbox.len() + 1);
        let written = tokio::select! {
            r = write_batch(&session, &mut ws, first, &mut outbox, &mut held, stats) => r,
            () = &mut closed => break,
        };
        if written.is_err() {
            session.close(CloseCause::TransportError);
            break;
        }
        if let Some(due) = held.as_ref().and_then(|o| o.due) {
            delay.as_mut().reset(due.into_std());
        }
    }
    // Every exit above has closed the session; make sure of it (a no-op then).
    session.close(CloseCause::TransportError);
    goodbye(&mut ws, &mut outbox, session.cause(), close_frame).await;
}

/// `session.closed()` for a loop that polls it on every turn: once registered, the
/// token's future is polled again only if the task's waker changes (each of its polls
/// takes the token's lock); the flag behind [`Session::is_closed`], set before the token
/// is cancelled, answers the other polls.
fn closing(session: &Session) -> impl Future<Output = ()> + '_ {
    let mut inner = Box::pin(session.closed());
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(move |cx| {
        if session.is_closed() {
            return Poll::Ready(());
        }
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        registered = Some(cx.waker().clone());
        inner.as_mut().poll(cx)
    })
}

/// Handles `first` and then every further message already readable without waiting (up to
/// [`MAX_BATCH`]), passing them to the application in order. Stops early when the
/// application task has no room (the message is left in `waiting_in`). `Err` with the
/// close frame to send when the session is over.
fn read_burst(
    session: &Session,
    ws: &mut WsStream,
    first: Option<Result<Message, WsError>>,
    waiting_in: &mut Option<Inbound>,
) -> Result<(), Option<CloseFrame>> {
    let mut msg = first;
    for n in 1.. {
        match on_message(session, msg) {
            Read::Continue => {}
            Read::Deliver(msg) => match session.try_to_app(msg) {
                Ok(true) => {}
                Ok(false) => return Err(None),
                Err(msg) => {
                    *waiting_in = Some(msg);
                    return Ok(());
                }
            },
            Read::Stop(frame) => return Err(frame),
        }
        if n == MAX_BATCH {
            break;
        }
        // A poll without a waker: `Pending` only means nothing more is buffered or
        // readable now; the caller's next poll of `ws.next()` registers the real waker.
        match ws.next().now_or_never() {
            Some(next) => msg = next,
            None => break,
        }
    }
    Ok(())
}

/// Writes `first` and whatever else is queued (up to [`MAX_BATCH`]) with one flush. Stops
/// at an item that is not due yet and leaves it in `held`.
async fn write_batch(
    session: &Session,
    ws: &mut WsStream,
    first: Out,
    outbox: &mut mpsc::Receiver<Out>,
    held: &mut Option<Out>,
    stats: &Stats,
) -> Result<(), WsError> {
    let (mut app, mut app_bytes) = (0u64, 0u64);
    let mut next = Some(first);
    let mut count = 0;
    while let Some(out) = next.take() {
        if let Some(due) = out.due
            && due > Instant::now()
        {
            *held = Some(out);
            break;
        }
        session.taken(&out);
        if out.app {
            app += 1;
            app_bytes += out.frame.len() as u64;
        }
        feed_frame(ws, out.frame).await?;
        count += 1;
        if count < MAX_BATCH {
            next = outbox.try_recv().ok();
        }
    }
    ws.flush().await?;
    if app > 0 {
        stats
            .messages_out
            .fetch_add(app, std::sync::atomic::Ordering::Relaxed);
        stats
            .bytes_out
            .fetch_add(app_bytes, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

async fn feed_frame(ws: &mut WsStream, frame: Frame) -> Result<(), WsError> {
    match frame {
        Frame::Text(t) => ws.feed(Message::Text(t)).await,
        Frame::Binary(b) => ws.feed(Message::Binary(b)).await,
        Frame::WithAttachments(t, atts) => {
            ws.feed(Message::Text(t)).await?;
            for a in atts.iter() {
                ws.feed(Message::Binary(a.clone())).await?;
            }
            Ok(())
        }
    }
}

/// What the connection does after one read.
enum Read {
    Continue,
    /// Pass to the application task.
    Deliver(Inbound),
    /// The session is closed (with its cause); send this close frame, if any.
    Stop(Option<CloseFrame>),
}

/// Handles one read from the socket.
fn on_message(session: &Session, msg: Option<Result<Message, WsError>>) -> Read {
    let packet = match msg {
        // A message (`4...`), the common case: handed on as a slice of the frame.
        Some(Ok(Message::Text(t))) if t.as_str().starts_with('4') => {
            return match Text::after(t, 1) {
                Some(text) => Read::Deliver(Inbound::Text(text)),
                None => Read::Continue,
            };
        }
        Some(Ok(Message::Text(t))) => match EioPacket::decode_ws_text(&t) {
            Ok(p) => p,
            Err(_) => {
                session.close(CloseCause::ProtocolError);
                return Read::Stop(None);
            }
        },
        Some(Ok(Message::Binary(b))) => EioPacket::Binary(b),
        Some(Ok(Message::Close(_))) => {
            session.close(CloseCause::ClientClose);
            return Read::Stop(None);
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return Read::Continue,
        None => {
            session.close(CloseCause::TransportError);
            return Read::Stop(None);
        }
        Some(Err(e)) => {
            let (cause, frame) = classify(&e);
            session.close(cause);
            return Read::Stop(frame);
        }
    };
    match session.on_packet(packet) {
        Step::Continue => Read::Continue,
        Step::Stop => Read::Stop(None),
        Step::Deliver(msg) => Read::Deliver(msg),
    }
}

/// Maps a read error to the close cause and the RFC close code to send.
fn classify(e: &WsError) -> (CloseCause, Option<CloseFrame>) {
    let frame = |code: CloseCode, reason: &'static str| {
        Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })
    };
    match e {
        WsError::Utf8(_) => (
            CloseCause::ProtocolError,
            frame(CloseCode::Invalid, "invalid UTF-8"),
        ),
        WsError::Capacity(_) => (
            CloseCause::ProtocolError,
            frame(CloseCode::Size, "message too big"),
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (CloseCause::TransportError, None)
        }
        WsError::Protocol(_) | WsError::AttackAttempt => (
            CloseCause::ProtocolError,
            frame(CloseCode::Protocol, "protocol error"),
        ),
        WsError::ConnectionClosed | WsError::AlreadyClosed => (CloseCause::ClientClose, None),
        _ => (CloseCause::TransportError, None),
    }
}

/// The last frames of a connection, by close cause: at shutdown the queued packets, `1`
/// and close 1001; a close frame (with the RFC code for bad input) otherwise; nothing to a
/// dead or stuck peer. Bounded by [`CLOSE_GRACE`].
async fn goodbye(
    ws: &mut WsStream,
    outbox: &mut mpsc::Receiver<Out>,
    cause: Option<CloseCause>,
    frame: Option<CloseFrame>,
) {
    let work = async {
        match cause {
            Some(CloseCause::TransportError | CloseCause::SlowConsumer) => Ok(()),
            Some(CloseCause::Shutdown) => {
                for _ in 0..MAX_BATCH {
                    let Ok(out) = outbox.try_recv() else { break };
                    feed_frame(ws, out.frame).await?;
                }
                ws.feed(Message::text("1")).await?;
                let away = CloseFrame {
                    code: CloseCode::Away,
                    reason: Utf8Bytes::from_static("server shutting down"),
                };
                ws.close(Some(away)).await
            }
            _ => ws.close(frame).await,
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, work).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_map_to_rfc_codes() {
        let (cause, frame) = classify(&WsError::Utf8("bad".into()));
        assert_eq!(cause, CloseCause::ProtocolError);
        assert_eq!(frame.map(|f| f.code), Some(CloseCode::Invalid));
        let (cause, frame) = classify(&WsError::Capacity(
            tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
                size: 10,
                max_size: 5,
            },
        ));
        assert_eq!(
            (cause, frame.map(|f| f.code)),
            (CloseCause::ProtocolError, Some(CloseCode::Size))
        );
        let (cause, frame) = classify(&WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!((cause, frame.is_none()), (CloseCause::TransportError, true));
        assert_eq!(
            classify(&WsError::ConnectionClosed).0,
            CloseCause::ClientClose
        );
    }
}
