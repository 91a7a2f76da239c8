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
use crate::driver::session::{FrameTemplates, Session};
use crate::sample::{ConnectPhases, ErrorKind};

/// Websocket transport from the first request.
pub async fn connect_websocket(
    ctx: &Ctx,
    phases: &mut ConnectPhases,
    connect: &str,
) -> Result<Session, ErrorKind> {
    let stream = ctx.dialer.open(phases).await?;
    let mut ws = ctx
        .dialer
        .websocket(stream, &ctx.frames.eio_ws_path, phases)
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
    connect: &str,
) -> Result<Session, ErrorKind> {
    let f = &ctx.frames;
    let stream = ctx.dialer.open(phases).await?;
    let (mut http, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorKind::Io)?;
    let mut conn = std::pin::pin!(conn);
    let authority = ctx.dialer.authority();
    let headers = &ctx.dialer.headers;
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
    let limit = ctx.dialer.max_message;
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
    let handshake = polling_open(&body)?;
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
        let stream = ctx.dialer.open(&mut probe_phases).await?;
        let mut ws = ctx
            .dialer
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
pub(crate) mod tests {
    use super::*;
    use crate::model::{Protocol, Transport};
    use crate::template::Template;

    pub(crate) fn frames(nsp_part: &str) -> FrameTemplates {
        let empty = Template::parse("[]", false).expect("empty template");
        FrameTemplates {
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

    /// Regression: `/,` spells the main namespace, as the decoder reads it (the reply was
    /// taken for another namespace's).
    #[test]
    fn connect_reply_namespace_is_read_as_the_decoder_reads_it() {
        let f = frames("");
        assert_eq!(sio_connect_reply(&f, r#"0/,{"sid":"a"}"#), Some(Ok(None)));
        assert_eq!(
            sio_connect_reply(&f, r#"0{"sid":"a","pid":"p"}"#),
            Some(Ok(Some("p".to_string())))
        );
        assert_eq!(sio_connect_reply(&f, r#"0/admin,{"sid":"a"}"#), None);
        let f = frames("/admin,");
        assert_eq!(
            sio_connect_reply(&f, r#"0/admin,{"sid":"a"}"#),
            Some(Ok(None))
        );
        assert_eq!(
            sio_connect_reply(&f, r#"4/admin,{"message":"no"}"#),
            Some(Err(ErrorKind::ConnectError))
        );
        assert_eq!(sio_connect_reply(&f, r#"0{"sid":"a"}"#), None);
        assert_eq!(sio_connect_reply(&f, r#"0/admins,{"sid":"a"}"#), None);
    }

    #[test]
    fn handshake_packets_are_read() {
        let open = r#"0{"sid":"s","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#;
        let h = open_packet(open).unwrap();
        assert_eq!((h.sid.as_str(), h.ping_interval), ("s", 300));
        assert_eq!(polling_open(open).unwrap().sid, "s");
        assert_eq!(open_packet("0"), Err(ErrorKind::Protocol));
        assert_eq!(open_packet(""), Err(ErrorKind::Protocol));
        assert_eq!(polling_open("2\u{1e}0{}"), Err(ErrorKind::Protocol));
        let f = frames("");
        assert_eq!(
            released_poll(
                &f,
                "2\u{1e}42[\"tick\"]\u{1e}40{\"sid\":\"a\",\"pid\":\"p\"}\u{1e}6"
            ),
            Ok(Released {
                connected: Some(Some("p".to_string())),
                pong_due: true,
                early: vec!["42[\"tick\"]".to_string()],
            })
        );
        assert_eq!(released_poll(&f, "6\u{1e}1"), Err(ErrorKind::Protocol));
        assert_eq!(
            released_poll(&f, "44{\"message\":\"no\"}"),
            Err(ErrorKind::ConnectError)
        );
    }

    /// Engine.IO-shaped polling bodies: packets of every type, `b` + base64 binaries, junk.
    fn polling_body() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                "0\\PC{0,24}",
                "4[0-7]/?[a-z]{0,3},?[0-9]{0,3}\\PC{0,12}",
                "b[A-Za-z0-9+/=]{0,24}",
                "[1-6](probe)?",
                "\\PC{0,8}",
            ],
            0..5,
        )
        .prop_map(|p| p.join("\u{1e}"))
    }

    proptest::proptest! {
        /// Any text a server sends after `4`: the CONNECT-reply reader never panics (it did
        /// on a non-ASCII first character).
        #[test]
        fn connect_reply_never_panics(m in "\\PC{0,40}", nsp in proptest::bool::ANY) {
            let f = frames(if nsp { "/admin," } else { "" });
            let _ = sio_connect_reply(&f, &m);
        }

        /// Any bytes as a polling response body or a websocket text, with either parser:
        /// the open packet, handshake and upgrade readers never panic.
        #[test]
        fn handshake_bodies_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            shaped in polling_body(),
            msgpack in proptest::bool::ANY,
            nsp in proptest::bool::ANY,
        ) {
            let mut f = frames(if nsp { "/admin," } else { "" });
            f.msgpack = msgpack;
            for body in [String::from_utf8_lossy(&bytes).into_owned(), shaped] {
                let _ = open_packet(&body);
                let _ = polling_open(&body);
                if let Ok(r) = released_poll(&f, &body) {
                    proptest::prop_assert!(r.early.iter().all(|t| t.starts_with('4')));
                }
                let _ = sio_connect_reply(&f, &body);
            }
        }
    }
}
