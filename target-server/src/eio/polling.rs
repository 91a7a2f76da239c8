//! The HTTP long-polling transport (docs/ARCHITECTURE.md#long-polling): handshake, GET
//! (long poll), POST.
//!
//! Receives: polling requests already matched to a session (or a handshake GET).
//! Emits: `0{...}` handshakes; GET bodies with every queued packet (`\x1e`-separated,
//! binary as `b` + base64), held open until something is queued; `ok` for POSTs after
//! handing each packet to the session; the 400/413/500 answers of the reference.
//! Must not: keep more than one GET and one POST per session in flight (an overlapping
//! GET ends the session, as the reference does), or buffer a POST beyond `maxPayload`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use base64::Engine as _;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::session::{Session, Step, Transport};
use super::{EioError, Engine, Frame, Out, with_cors};
use crate::stats::{CloseCause, Limit};

/// Most packets one GET body carries (the rest wait for the next GET).
const MAX_PACKETS_PER_POLL: usize = 4096;

/// `GET ?EIO=4&transport=polling`: opens a session; the body is the open packet.
pub(crate) fn handshake(engine: &Arc<Engine>) -> Response<Body> {
    // A polling session holds a `--max-connections` slot of its own: one keep-alive
    // connection cannot open sessions without bound.
    let Some(slot) = engine.shared.slots.try_claim() else {
        let stats = &engine.shared.stats;
        stats.refused_connections.fetch_add(1, Relaxed);
        stats.limit_hit(Limit::Sessions);
        return with_cors(
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::RETRY_AFTER, "1")
                .body(Body::from(
                    "{\"code\":3,\"message\":\"too many connections (--max-connections)\"}",
                )),
        );
    };
    let session = engine.new_session(Transport::Polling);
    session.hold_slot(slot);
    text_response(
        StatusCode::OK,
        engine.open_packet(&session, Transport::Polling),
    )
}

/// `OPTIONS`: CORS preflight.
pub(crate) fn preflight() -> Response<Body> {
    let mut resp = with_cors(
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty()),
    );
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    resp
}

/// Clears a pending-request flag when the request ends (also when hyper drops it).
struct Pending<'a> {
    session: &'a Session,
    get: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut st = self.session.state();
        if self.get {
            st.get_pending = false;
        } else {
            st.post_pending = false;
        }
    }
}

/// A long poll: answers with every queued packet, or waits until there is one.
pub(crate) async fn get(engine: &Arc<Engine>, session: Arc<Session>) -> Response<Body> {
    {
        let mut st = session.state();
        if st.transport == Transport::Websocket {
            return EioError::BadRequest.response();
        }
        if st.probed {
            // Upgrading: release the client at once so it can send `5`.
            return text_response(StatusCode::OK, "6".into());
        }
        if st.get_pending {
            drop(st);
            // The reference answers the first GET with `1` and this one with 500, and the
            // session is gone.
            session.close(CloseCause::TransportError);
            return with_cors(
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{\"code\":3,\"message\":\"Bad request\"}")),
            );
        }
        st.get_pending = true;
    }
    let _pending = Pending {
        session: &session,
        get: true,
    };
    // Kicks may be stale (a probe while no GET was pending): act only if upgrading.
    let upgrading = || {
        let st = session.state();
        st.probed || st.transport == Transport::Websocket
    };
    let mut rx = loop {
        tokio::select! {
            biased;
            () = session.closed() => return closing_body(&session),
            () = session.kick.notified() => {
                if upgrading() {
                    return text_response(StatusCode::OK, "6".into());
                }
            }
            rx = session.outbox.lock() => break rx,
        }
    };
    let first = loop {
        tokio::select! {
            biased;
            () = session.closed() => return closing_body(&session),
            () = session.kick.notified() => {
                if upgrading() {
                    return text_response(StatusCode::OK, "6".into());
                }
            }
            item = rx.recv() => match item {
                Some(out) => break out,
                None => return closing_body(&session),
            },
        }
    };
    session.note_queue_depth(rx.len() + 1);
    let mut body = String::new();
    let (mut app, mut app_bytes) = (0u64, 0u64);
    let mut next = Some(first);
    let mut count = 0;
    while let Some(out) = next.take() {
        session.taken(&out);
        if let Some(due) = out.due {
            // `--delay`: hold the poll until the message is due (FIFO order kept).
            crate::faults::hold_until(due).await;
        }
        if out.app {
            app += 1;
            app_bytes += out.frame.len() as u64;
        }
        append_record(&mut body, &out);
        count += 1;
        if count < MAX_PACKETS_PER_POLL {
            next = rx.try_recv().ok();
        }
    }
    if app > 0 {
        let stats = &engine.shared.stats;
        stats.messages_out.fetch_add(app, Relaxed);
        stats.bytes_out.fetch_add(app_bytes, Relaxed);
    }
    text_response(StatusCode::OK, body)
}

/// The body for a GET that was pending when the session closed: `6` (noop) after a client
/// close, `1` (close) otherwise, as the reference does.
fn closing_body(session: &Session) -> Response<Body> {
    let body = match session.cause() {
        Some(CloseCause::ClientClose) => "6",
        _ => "1",
    };
    text_response(StatusCode::OK, body.into())
}

/// Appends one queue item to a polling body (records separated by `\x1e`).
fn append_record(body: &mut String, out: &Out) {
    let record = |body: &mut String, text: &str| {
        if !body.is_empty() {
            body.push(protocol::engineio::SEPARATOR);
        }
        body.push_str(text);
    };
    let binary = |body: &mut String, data: &[u8]| {
        if !body.is_empty() {
            body.push(protocol::engineio::SEPARATOR);
        }
        body.push('b');
        base64::engine::general_purpose::STANDARD.encode_string(data, body);
    };
    match &out.frame {
        Frame::Text(t) => record(body, t.as_str()),
        Frame::Binary(b) => binary(body, b),
        Frame::WithAttachments(t, atts) => {
            record(body, t.as_str());
            for a in atts.iter() {
                binary(body, a);
            }
        }
    }
}

/// A POST: decodes the body into packets and hands each to the session, in order.
pub(crate) async fn post(
    engine: &Arc<Engine>,
    session: Arc<Session>,
    req: Request<Body>,
) -> Response<Body> {
    {
        let mut st = session.state();
        if st.transport == Transport::Websocket {
            return EioError::BadRequest.response();
        }
        if st.post_pending {
            drop(st);
            session.close(CloseCause::TransportError);
            return EioError::BadRequest.response();
        }
        st.post_pending = true;
    }
    let _pending = Pending {
        session: &session,
        get: false,
    };
    let octet_stream = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    if octet_stream {
        // Engine.IO v4 polling carries binary as base64 text only.
        session.close(CloseCause::ProtocolError);
        return EioError::BadRequest.response();
    }
    let limit = usize::try_from(engine.shared.config.max_payload).unwrap_or(usize::MAX);
    let collect = Limited::new(req.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(engine.shared.config.body_timeout, collect).await
    else {
        // A body trickling in (or stuck) past `--body-timeout`.
        if session.close(CloseCause::TransportError) {
            engine.shared.stats.limit_hit(Limit::BodyTimeout);
        }
        return with_cors(
            Response::builder()
                .status(StatusCode::REQUEST_TIMEOUT)
                .header(header::CONNECTION, "close")
                .body(Body::from("request body timeout (--body-timeout)")),
        );
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return with_cors(
                Response::builder()
                    .status(StatusCode::PAYLOAD_TOO_LARGE)
                    .body(Body::from("payload too large")),
            );
        }
        Err(_) => {
            session.close(CloseCause::TransportError);
            return EioError::BadRequest.response();
        }
    };
    let Some(packets) = decode_body(&body) else {
        session.close(CloseCause::ProtocolError);
        return EioError::BadRequest.response();
    };
    for packet in packets {
        let alive = match session.on_packet(packet) {
            Step::Continue => true,
            Step::Stop => false,
            Step::Deliver(msg) => session.to_app(msg).await,
        };
        if !alive {
            break;
        }
    }
    text_response(StatusCode::OK, "ok".into())
}

/// The packets of a POST body (UTF-8, `\x1e`-separated), `None` if it is not valid.
pub(crate) fn decode_body(body: &[u8]) -> Option<Vec<protocol::EioPacket>> {
    let text = std::str::from_utf8(body).ok()?;
    protocol::engineio::decode_payload(text).ok()
}

fn text_response(status: StatusCode, body: String) -> Response<Body> {
    with_cors(
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
            .body(Body::from(body)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    #[test]
    fn records_join_with_separator_and_base64_binary() {
        let mut body = String::new();
        let text = |s: &str| Out {
            frame: Frame::Text(Utf8Bytes::from(s)),
            due: None,
            app: true,
        };
        append_record(&mut body, &text("4hello"));
        append_record(
            &mut body,
            &Out {
                frame: Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                due: None,
                app: true,
            },
        );
        append_record(&mut body, &text("2"));
        assert_eq!(body, "4hello\x1ebAQIDBA==\x1e2");
        let mut body = String::new();
        let atts: Arc<[Bytes]> = vec![
            Bytes::from_static(&[1, 2, 3]),
            Bytes::from_static(&[4, 5, 6]),
        ]
        .into();
        append_record(
            &mut body,
            &Out {
                frame: Frame::WithAttachments(Utf8Bytes::from("451-[\"x\"]"), atts),
                due: None,
                app: true,
            },
        );
        assert_eq!(body, "451-[\"x\"]\x1ebAQID\x1ebBAUG");
    }
}
