//! Engine.IO v4 / Socket.IO v5 client handshakes: websocket-only, and HTTP long-polling
//! followed by the upgrade dance (docs/ARCHITECTURE.md#engineio-v4, #the-upgrade-dance, #socketio-v5).
//!
//! Receives: the run context and the phases record of one connect. Emits: a connected
//! [`Session`] (namespace CONNECT acknowledged with `40{sid}`) with `eio_open`, `upgrade`
//! and `sio_connect` recorded, or the [`ErrorKind`] of what failed.
//! Must not: send anything but `3` (pong) before the namespace CONNECT is acknowledged,
//! besides the handshake itself; every `2` is answered with `3` in every state. With
//! `--parser msgpack` the CONNECT and its reply are msgpack ([`super::sio_msgpack`]).

use std::time::Instant;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use protocol::engineio::{self, Packet as Eio};
use tokio_tungstenite::tungstenite::Message;

use crate::driver::Ctx;
use crate::driver::net::WsStream;
use crate::driver::session::{Frames, Session};
use crate::sample::{ConnectPhases, ErrorKind};

/// Websocket transport from the first request.
pub async fn connect_websocket(
    ctx: &Ctx,
    phases: &mut ConnectPhases,
    connect: &str,
) -> Result<Session, ErrorKind> {
    let stream = ctx.conn.open(phases).await?;
    let mut ws = ctx
        .conn
        .websocket(stream, &ctx.frames.eio_ws_path, phases)
        .await?;
    let t = Instant::now();
    let handshake = loop {
        let text = next_text(&mut ws, ctx.frames.msgpack).await?;
        match text.as_bytes().first() {
            Some(b'0') => {
                break serde_json::from_str::<engineio::Handshake>(&text[1..])
                    .map_err(|_| ErrorKind::Protocol)?;
            }
            Some(b'2') => send(&mut ws, "3").await?,
            Some(b'1') => return Err(ErrorKind::Protocol),
            _ => {}
        }
    };
    phases.eio_open = Some(t.elapsed());
    let t = Instant::now();
    send_sio(&mut ws, &ctx.frames, connect).await?;
    let mut early = Vec::new();
    let pid = wait_connected(&mut ws, &ctx.frames, &mut early).await?;
    phases.sio_connect = Some(t.elapsed());
    Ok(session(ws, &handshake, pid, early))
}

fn session(
    ws: WsStream,
    h: &engineio::Handshake,
    pid: Option<String>,
    early: Vec<String>,
) -> Session {
    let mut s = Session::new(ws);
    s.early = early.into();
    s.handshake = Some((
        std::time::Duration::from_millis(h.ping_interval),
        std::time::Duration::from_millis(h.ping_timeout),
    ));
    s.pid = pid;
    s
}

/// HTTP long-polling handshake, namespace CONNECT over POST, then the upgrade dance
/// while a GET is pending, as browsers do.
pub async fn connect_polling(
    ctx: &Ctx,
    phases: &mut ConnectPhases,
    connect: &str,
) -> Result<Session, ErrorKind> {
    let f = &ctx.frames;
    let stream = ctx.conn.open(phases).await?;
    let (mut http, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorKind::Io)?;
    let mut conn = std::pin::pin!(conn);
    let authority = ctx.conn.authority();
    let headers = &ctx.conn.headers;
    let request = |method: http::Method, uri: String, body: &'static str| {
        let mut b = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, authority.as_str());
        for (k, v) in headers {
            b = b.header(k, v);
        }
        if !body.is_empty() {
            b = b.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        b.body(Full::new(Bytes::from_static(body.as_bytes())))
            .map_err(|_| ErrorKind::Protocol)
    };
    let request_owned = |method: http::Method, uri: String, body: String| {
        let mut b = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, authority.as_str());
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b = b.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        b.body(Full::new(Bytes::from(body)))
            .map_err(|_| ErrorKind::Protocol)
    };

    // 1. Handshake.
    let limit = ctx.conn.max_message;
    let t = Instant::now();
    let body = drive(
        &mut conn,
        exchange(
            &mut http,
            request(http::Method::GET, f.eio_polling_path.clone(), "")?,
            limit,
        ),
    )
    .await?;
    let packets = engineio::decode_payload(&body).map_err(|_| ErrorKind::Protocol)?;
    let Some(Eio::Open(handshake)) = packets.into_iter().next() else {
        return Err(ErrorKind::Protocol);
    };
    phases.eio_open = Some(t.elapsed());
    let with_sid = format!("{}&sid={}", f.eio_polling_path, handshake.sid);

    // 2. Namespace CONNECT over POST.
    let t_connect = Instant::now();
    let ok = drive(
        &mut conn,
        exchange(
            &mut http,
            request_owned(
                http::Method::POST,
                with_sid.clone(),
                super::sio_msgpack::polling_body(f, connect)?,
            )?,
            limit,
        ),
    )
    .await?;
    if ok != "ok" {
        return Err(ErrorKind::Protocol);
    }

    // 3. Upgrade: a GET is pending while the websocket probes.
    let t_upgrade = Instant::now();
    let ws_path = format!("{}&sid={}", f.eio_ws_path, handshake.sid);
    let mut probe_phases = ConnectPhases::default();
    let probe = async {
        let stream = ctx.conn.open(&mut probe_phases).await?;
        let mut ws = ctx
            .conn
            .websocket(stream, &ws_path, &mut probe_phases)
            .await?;
        send(&mut ws, "2probe").await?;
        loop {
            let text = next_text(&mut ws, ctx.frames.msgpack).await?;
            match text.as_str() {
                "3probe" => return Ok::<WsStream, ErrorKind>(ws),
                "1" => return Err(ErrorKind::Protocol),
                _ => {}
            }
        }
    };
    let poll = drive(
        &mut conn,
        exchange(
            &mut http,
            request(http::Method::GET, with_sid.clone(), "")?,
            limit,
        ),
    );
    let (polled, probed) = tokio::join!(poll, probe);
    let mut ws = probed?;
    phases.ws_upgrade = probe_phases.ws_upgrade;
    let mut connected = None;
    let mut pong_due = false;
    let mut early = Vec::new();
    for packet in engineio::decode_payload(&polled?).map_err(|_| ErrorKind::Protocol)? {
        let packet = match packet {
            Eio::Binary(b) if f.msgpack => {
                Eio::Message(super::sio_msgpack::eio_text(&b)?.split_off(1))
            }
            p => p,
        };
        match packet {
            Eio::Ping { .. } => pong_due = true,
            Eio::Close => return Err(ErrorKind::Protocol),
            Eio::Message(m) => match sio_connect_reply(f, &m) {
                Some(Ok(pid)) => connected = Some(pid),
                Some(Err(e)) => return Err(e),
                None => early.push(format!("4{m}")),
            },
            _ => {}
        }
    }
    if pong_due {
        drive(
            &mut conn,
            exchange(
                &mut http,
                request(http::Method::POST, with_sid.clone(), "3")?,
                limit,
            ),
        )
        .await?;
    }
    send(&mut ws, "5").await?;
    phases.upgrade = Some(t_upgrade.elapsed());
    let pid = match connected {
        Some(pid) => pid,
        None => wait_connected(&mut ws, f, &mut early).await?,
    };
    phases.sio_connect = Some(t_connect.elapsed());
    Ok(session(ws, &handshake, pid, early))
}

/// `Some(Ok(pid))` for `0<nsp,>{...}` of our namespace (with the recovery `pid` when the
/// server sent one), `Some(Err)` for `4<nsp,>...`, `None` for anything else. `m` is the
/// Engine.IO message text (without the leading `4`).
fn sio_connect_reply(f: &Frames, m: &str) -> Option<Result<Option<String>, ErrorKind>> {
    // The type must be an ASCII digit: slicing after a multi-byte character would panic.
    let kind = m.as_bytes().first().filter(|b| b.is_ascii())?;
    let rest = &m[1..];
    let rest = if f.nsp_part.is_empty() {
        if rest.starts_with('/') {
            return None;
        }
        rest
    } else {
        rest.strip_prefix(f.nsp_part.as_str())?
    };
    match kind {
        b'0' if rest.starts_with('{') => Some(Ok(serde_json::from_str::<serde_json::Value>(rest)
            .ok()
            .and_then(|v| v.get("pid")?.as_str().map(str::to_string)))),
        b'4' => Some(Err(ErrorKind::ConnectError)),
        _ => None,
    }
}

/// Reads until the namespace CONNECT is acknowledged, answering pings; returns the
/// recovery `pid` if the server sent one.
/// Events that arrive before it (a server restoring a session replays the missed ones
/// first, as Node's socket.io does) are kept in `early`, for the session to hand over after
/// the CONNECT, as socket.io-client buffers them.
async fn wait_connected(
    ws: &mut WsStream,
    f: &Frames,
    early: &mut Vec<String>,
) -> Result<Option<String>, ErrorKind> {
    loop {
        let text = next_text(ws, f.msgpack).await?;
        match text.as_bytes().first() {
            Some(b'2') => send(ws, "3").await?,
            Some(b'1') => return Err(ErrorKind::Protocol),
            Some(b'4') => match sio_connect_reply(f, &text[1..]) {
                Some(r) => return r,
                None if early.len() < MAX_EARLY => early.push(text),
                None => {}
            },
            _ => {}
        }
    }
}

/// Events kept from before the CONNECT reply, at most.
const MAX_EARLY: usize = 100_000;

/// The next text frame; with `msgpack`, a binary frame too, as the default parser's text.
async fn next_text(ws: &mut WsStream, msgpack: bool) -> Result<String, ErrorKind> {
    loop {
        match ws.next().await {
            None => return Err(ErrorKind::Io),
            Some(Err(_)) => return Err(ErrorKind::Io),
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Binary(b))) if msgpack => return super::sio_msgpack::eio_text(&b),
            Some(Ok(Message::Close(_))) => return Err(ErrorKind::Protocol),
            Some(Ok(_)) => {}
        }
    }
}

/// Sends a Socket.IO packet (`4...`) in the parser's form.
async fn send_sio(ws: &mut WsStream, f: &Frames, text: &str) -> Result<(), ErrorKind> {
    let msg = super::sio_msgpack::ws_message(f, text.into()).map_err(|_| ErrorKind::Protocol)?;
    ws.send(msg).await.map_err(|_| ErrorKind::Io)
}

async fn send(ws: &mut WsStream, text: &str) -> Result<(), ErrorKind> {
    ws.send(Message::text(text))
        .await
        .map_err(|_| ErrorKind::Io)
}

/// One HTTP exchange; the body as text. Non-200 is `HttpStatus`.
/// The body is at most `limit` bytes (`--max-message-size`).
async fn exchange(
    http: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    limit: usize,
) -> Result<String, ErrorKind> {
    let resp = http.send_request(req).await.map_err(|_| ErrorKind::Io)?;
    let status = resp.status().as_u16();
    // Bounded: a hostile server must not make a client buffer an endless polling body.
    let body = http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ErrorKind::MessageTooLarge
            } else {
                ErrorKind::Protocol
            }
        })?
        .to_bytes();
    if status != 200 {
        return Err(ErrorKind::HttpStatus(status));
    }
    String::from_utf8(body.to_vec()).map_err(|_| ErrorKind::Protocol)
}

/// Runs `fut` while driving the HTTP connection (no task spawned for it).
async fn drive<C, T>(
    conn: &mut std::pin::Pin<&mut C>,
    fut: impl Future<Output = Result<T, ErrorKind>>,
) -> Result<T, ErrorKind>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::select! {
        r = fut => r,
        _ = conn.as_mut() => Err(ErrorKind::Io),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Protocol, Transport};
    use crate::template::Template;

    pub(crate) fn frames(nsp_part: &str) -> Frames {
        let empty = Template::parse("[]", false).expect("empty template");
        Frames {
            protocol: Protocol::Socketio,
            transport: Transport::Websocket,
            ws_path: "/".into(),
            ws_publish_path: "/".into(),
            eio_ws_path: "/socket.io/?EIO=4&transport=websocket".into(),
            eio_polling_path: "/socket.io/?EIO=4&transport=polling".into(),
            nsp_part: nsp_part.into(),
            connect: "40".into(),
            auth: None,
            emit_head: b"42".to_vec(),
            emit_args: b"[\"echo\",".to_vec(),
            ack: true,
            msgpack: false,
            reply_args: None,
            subscribe_args: b"[\"tick\"".to_vec(),
            join_args: b"[\"join\"".to_vec(),
            leave_args: b"[\"leave\"".to_vec(),
            publish_args: b"[\"publish\"".to_vec(),
            join_template: empty.clone(),
            publish_template: empty,
        }
    }

    /// Regression: a Socket.IO packet whose type byte is not ASCII (`4é` on the wire) used
    /// to panic the client task (a slice at byte 1 inside a UTF-8 sequence).
    #[test]
    fn non_ascii_packet_type_is_not_a_connect_reply_and_does_not_panic() {
        for f in [frames(""), frames("/admin,")] {
            assert_eq!(sio_connect_reply(&f, "é"), None);
            assert_eq!(sio_connect_reply(&f, "€{}"), None);
            assert_eq!(sio_connect_reply(&f, ""), None);
        }
        let f = frames("");
        assert_eq!(sio_connect_reply(&f, "0{\"sid\":\"a\"}"), Some(Ok(None)));
        assert_eq!(
            sio_connect_reply(&f, "4{\"message\":\"no\"}"),
            Some(Err(ErrorKind::ConnectError))
        );
    }

    proptest::proptest! {
        /// Any text a server sends after `4`: the CONNECT-reply reader never panics (it did
        /// on a non-ASCII first character).
        #[test]
        fn connect_reply_never_panics(m in "\\PC{0,40}", nsp in proptest::bool::ANY) {
            let f = frames(if nsp { "/admin," } else { "" });
            let _ = sio_connect_reply(&f, &m);
        }
    }
}
