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
use protocol::SioPacketType;
use protocol::engineio::{self, Packet as Eio};
use protocol::socketio::Header;
use tokio_tungstenite::tungstenite::Message;

use crate::driver::Ctx;
use crate::driver::net::WsStream;
use crate::driver::session::{Dial, FrameTemplates, Session};
use crate::sample::{ConnectPhases, ErrorKind};

/// Websocket transport from the first request.
pub async fn connect_websocket(
    ctx: &Ctx,
    phases: &mut ConnectPhases,
    dial: &Dial,
) -> Result<Session, ErrorKind> {
    let connect = dial.connect.as_str();
    let stream = ctx.dialer.open(phases).await?;
    let mut ws = ctx
        .dialer
        .websocket(stream, &dial.eio_ws_path, &dial.headers, phases)
        .await?;
    let t = Instant::now();
    let handshake = loop {
        let text = next_text(&mut ws, ctx.frames.msgpack).await?;
        match text.as_bytes().first() {
            Some(b'0') => break open_packet(&text)?,
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
    dial: &Dial,
) -> Result<Session, ErrorKind> {
    let connect = dial.connect.as_str();
    let f = &ctx.frames;
    let stream = ctx.dialer.open(phases).await?;
    let (mut http, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorKind::Io)?;
    let mut conn = std::pin::pin!(conn);
    let request = |method: http::Method, uri: String, body: Bytes| {
        polling_request(ctx, dial, method, uri, body)
    };

    // 1. Handshake.
    let limit = ctx.dialer.max_message;
    let t = Instant::now();
    let body = drive(
        &mut conn,
        exchange(
            &mut http,
            request(
                http::Method::GET,
                dial.eio_polling_path.clone(),
                Bytes::new(),
            )?,
            limit,
        ),
    )
    .await?;
    let handshake = polling_open(&body)?;
    phases.eio_open = Some(t.elapsed());
    let with_sid = format!("{}&sid={}", dial.eio_polling_path, handshake.sid);

    // 2. Namespace CONNECT over POST.
    let t_connect = Instant::now();
    let ok = drive(
        &mut conn,
        exchange(
            &mut http,
            request(
                http::Method::POST,
                with_sid.clone(),
                Bytes::from(super::sio_msgpack::polling_body(f, connect)?),
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
    let ws_path = format!("{}&sid={}", dial.eio_ws_path, handshake.sid);
    let mut probe_phases = ConnectPhases::default();
    let probe = probe(ctx, &ws_path, &dial.headers, &mut probe_phases);
    let poll = drive(
        &mut conn,
        exchange(
            &mut http,
            request(http::Method::GET, with_sid.clone(), Bytes::new())?,
            limit,
        ),
    );
    let (polled, probed) = tokio::join!(poll, probe);
    let mut ws = probed?;
    phases.ws_upgrade = probe_phases.ws_upgrade;
    let Released {
        connected,
        pong_due,
        mut early,
    } = released_poll(f, &polled?)?;
    if pong_due {
        drive(
            &mut conn,
            exchange(
                &mut http,
                request(
                    http::Method::POST,
                    with_sid.clone(),
                    Bytes::from_static(b"3"),
                )?,
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

/// One long-polling request of the session (the run's extra headers on it; a body is text).
fn polling_request(
    ctx: &Ctx,
    dial: &Dial,
    method: http::Method,
    uri: String,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, ErrorKind> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, ctx.dialer.authority().as_str());
    for (k, v) in ctx.dialer.headers.iter().chain(&dial.headers) {
        b = b.header(k, v);
    }
    if !body.is_empty() {
        b = b.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    b.body(Full::new(body)).map_err(|_| ErrorKind::Protocol)
}

/// The upgrade's websocket: opened on the session's path, `2probe` answered by `3probe`
/// (a `1` close refuses it).
async fn probe(
    ctx: &Ctx,
    ws_path: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    phases: &mut ConnectPhases,
) -> Result<WsStream, ErrorKind> {
    let stream = ctx.dialer.open(phases).await?;
    let mut ws = ctx
        .dialer
        .websocket(stream, ws_path, headers, phases)
        .await?;
    send(&mut ws, "2probe").await?;
    loop {
        let text = next_text(&mut ws, ctx.frames.msgpack).await?;
        match text.as_str() {
            "3probe" => return Ok(ws),
            "1" => return Err(ErrorKind::Protocol),
            _ => {}
        }
    }
}

/// The handshake of the Engine.IO open packet `0{...}` (websocket transport).
fn open_packet(text: &str) -> Result<engineio::Handshake, ErrorKind> {
    let json = text.strip_prefix('0').ok_or(ErrorKind::Protocol)?;
    serde_json::from_str(json).map_err(|_| ErrorKind::Protocol)
}

/// The handshake of the first polling response, whose first packet must be the open packet.
fn polling_open(body: &str) -> Result<engineio::Handshake, ErrorKind> {
    let packets = engineio::decode_payload(body).map_err(|_| ErrorKind::Protocol)?;
    match packets.into_iter().next() {
        Some(Eio::Open(handshake)) => Ok(handshake),
        _ => Err(ErrorKind::Protocol),
    }
}

/// What the GET released by the upgrade carried.
#[derive(Debug, PartialEq)]
struct Released {
    /// The CONNECT reply, if it came: with the recovery `pid` when the server sent one.
    connected: Option<Option<String>>,
    /// A ping to answer over POST.
    pong_due: bool,
    /// Engine.IO texts for the session to read first (events before the CONNECT reply).
    early: Vec<String>,
}

/// Reads the body of the GET the upgrade released: a close or a CONNECT_ERROR fails the
/// connect.
fn released_poll(f: &FrameTemplates, body: &str) -> Result<Released, ErrorKind> {
    let mut r = Released {
        connected: None,
        pong_due: false,
        early: Vec::new(),
    };
    for packet in engineio::decode_payload(body).map_err(|_| ErrorKind::Protocol)? {
        let packet = match packet {
            Eio::Binary(b) if f.msgpack => {
                Eio::Message(super::sio_msgpack::eio_text(&b)?.split_off(1))
            }
            p => p,
        };
        match packet {
            Eio::Ping { .. } => r.pong_due = true,
            Eio::Close => return Err(ErrorKind::Protocol),
            Eio::Message(m) => match sio_connect_reply(f, &m) {
                Some(Ok(pid)) => r.connected = Some(pid),
                Some(Err(e)) => return Err(e),
                None if r.early.len() < MAX_EARLY => r.early.push(format!("4{m}")),
                None => {}
            },
            _ => {}
        }
    }
    Ok(r)
}

/// `Some(Ok(pid))` for `0<nsp,>{...}` of our namespace (with the recovery `pid` when the
/// server sent one), `Some(Err)` for `4<nsp,>...`, `None` for anything else. `m` is the
/// Engine.IO message text (without the leading `4`).
fn sio_connect_reply(f: &FrameTemplates, m: &str) -> Option<Result<Option<String>, ErrorKind>> {
    // The one header reader: no panic on any text (a non-ASCII type byte once did here).
    let h = Header::scan(m).ok()?;
    if h.nsp != super::inbound::namespace(f) {
        return None;
    }
    let data = h.data(m);
    match h.kind {
        SioPacketType::Connect if data.starts_with('{') => {
            Some(Ok(serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v.get("pid")?.as_str().map(str::to_string))))
        }
        SioPacketType::ConnectError => Some(Err(ErrorKind::ConnectError)),
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
    f: &FrameTemplates,
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
async fn send_sio(ws: &mut WsStream, f: &FrameTemplates, text: &str) -> Result<(), ErrorKind> {
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
pub(crate) mod tests;
