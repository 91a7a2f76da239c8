//! The Engine.IO cases both official suites run (docs/ARCHITECTURE.md#conformance-suites: handshake, heartbeat,
//! close and upgrade groups), parameterised by mount path, so that
//! `conformance_engineio.rs` runs them on `/engine.io/` and `conformance_socketio.rs` on
//! `/socket.io/`.
//!
//! Receives: a server address and a [`Mount`]. Emits: assertions (panics) on any byte or
//! status that differs from what the suites expect. Must not: wait without a bound.
//!
//! Where the suite relies on a race being won (a WS frame beating a fresh HTTP request),
//! the replay sleeps a few milliseconds to make the intended order explicit.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::*;

/// Where the cases run and what proves the upgraded websocket works.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    /// `/engine.io/` or `/socket.io/`.
    pub base: &'static str,
    /// Sent over the upgraded websocket (`4hello` for the echo server, `40` for Socket.IO).
    pub after_upgrade_send: &'static str,
    /// The answer must start with this ...
    pub after_upgrade_expect: &'static str,
    /// ... or be exactly this (the echo server).
    pub after_upgrade_exact: bool,
}

pub const ENGINEIO: Mount = Mount {
    base: "/engine.io/",
    after_upgrade_send: "4hello",
    after_upgrade_expect: "4hello",
    after_upgrade_exact: true,
};
pub const SOCKETIO: Mount = Mount {
    base: "/socket.io/",
    after_upgrade_send: "40",
    after_upgrade_expect: "40",
    after_upgrade_exact: false,
};

/// Time the replay leaves for a WS frame to be processed before the HTTP request that the
/// suite sends right after it.
const RACE_GAP: Duration = Duration::from_millis(20);

// --- handshake ------------------------------------------------------------------------

pub async fn handshake_polling_opens(addr: SocketAddr, m: Mount) {
    let (_sid, json) = open_polling(addr, m.base).await;
    assert_handshake(&json, &["websocket"]);
}

pub async fn handshake_polling_invalid_eio(addr: SocketAddr, m: Mount) {
    for q in ["?transport=polling", "?EIO=abc&transport=polling"] {
        let r = get_ok(addr, &format!("{}{q}", m.base)).await;
        assert_eq!(r.status, 400, "GET {}{q}: body {:?}", m.base, r.text());
    }
}

pub async fn handshake_polling_invalid_transport(addr: SocketAddr, m: Mount) {
    for q in ["?EIO=4", "?EIO=4&transport=abc"] {
        let r = get_ok(addr, &format!("{}{q}", m.base)).await;
        assert_eq!(r.status, 400, "GET {}{q}: body {:?}", m.base, r.text());
    }
}

pub async fn handshake_polling_invalid_method(addr: SocketAddr, m: Mount) {
    let path = format!("{}?EIO=4&transport=polling", m.base);
    for method in ["POST", "PUT"] {
        let r = request(addr, method, &path, b"", None, HTTP_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(r.status, 400, "{method} handshake: body {:?}", r.text());
    }
}

pub async fn handshake_ws_opens(addr: SocketAddr, m: Mount) {
    let (ws, json) = open_ws(addr, m.base).await;
    assert_handshake(&json, &[]);
    ws.close().await;
}

/// The suite does not await these; docs/ARCHITECTURE.md#engineio-v4 requires the connection to be closed
/// (or the upgrade refused), and no open packet to be sent.
async fn assert_ws_refused(addr: SocketAddr, path: &str) {
    match Ws::connect(addr, path).await {
        Err(_) => {}
        Ok(mut ws) => {
            let seen = ws.expect_closed(FRAME_TIMEOUT).await;
            assert!(
                !seen
                    .iter()
                    .any(|f| matches!(f, Frame::Text(t) if t.starts_with('0'))),
                "{path}: open packet sent on an invalid request: {seen:?}"
            );
        }
    }
}

pub async fn handshake_ws_invalid_eio(addr: SocketAddr, m: Mount) {
    assert_ws_refused(addr, &format!("{}?transport=websocket", m.base)).await;
    assert_ws_refused(addr, &format!("{}?EIO=abc&transport=websocket", m.base)).await;
}

pub async fn handshake_ws_invalid_transport(addr: SocketAddr, m: Mount) {
    assert_ws_refused(addr, &format!("{}?EIO=4", m.base)).await;
    assert_ws_refused(addr, &format!("{}?EIO=4&transport=abc", m.base)).await;
}

// --- heartbeat ------------------------------------------------------------------------

/// Lower bounds on server timers are measured from before the opening request: the
/// session (and its timers) cannot start earlier, and tokio timers never fire early, so a
/// slow test task cannot make a correct server fail them.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// Stand-in for node-fetch's connection set-up time (see [`heartbeat_polling_timeout`]).
const POLL_MARGIN: Duration = Duration::from_millis(25);

/// Three cycles of GET -> `2`, POST `3`. The first ping comes pingInterval (300 ms) after
/// the open packet, not at once.
pub async fn heartbeat_polling_ping_pong(addr: SocketAddr, m: Mount) {
    let requested = Instant::now();
    let (sid, _) = open_polling(addr, m.base).await;
    let path = polling_path(m.base, &sid);
    for i in 0..3 {
        let r = get_ok(addr, &path).await;
        assert_eq!((r.status, r.text().as_str()), (200, "2"), "ping {i}");
        if i == 0 {
            let after = requested.elapsed();
            assert!(
                after + TIMER_SLACK >= Duration::from_millis(300),
                "first ping {after:?} after the handshake request, expected pingInterval (300 ms)"
            );
        }
        let r = post_ok(addr, &path, "3").await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "pong {i}");
    }
}

/// Nobody answers the ping: at 500 ms (pingInterval + pingTimeout) the session is gone.
///
/// The suite sleeps exactly 500 ms and then fetches; node-fetch's fresh connection adds a
/// few milliseconds, which is the margin the Node reference passes with. Our client's
/// round trip is ~0.3 ms, so the replay adds that margin explicitly ([`POLL_MARGIN`]);
/// without it the outcome is a sub-millisecond race against the server's timers.
pub async fn heartbeat_polling_timeout(addr: SocketAddr, m: Mount) {
    let requested = Instant::now();
    let (sid, _) = open_polling(addr, m.base).await;
    let opened = requested.elapsed();
    sleep(Duration::from_millis(500) + POLL_MARGIN).await;
    let r = get_ok(addr, &polling_path(m.base, &sid)).await;
    assert_eq!(
        r.status,
        400,
        "GET after ping timeout: body {:?} (handshake took {opened:?}, answered {:?} after it was requested)",
        r.text(),
        requested.elapsed()
    );
}

pub async fn heartbeat_ws_ping_pong(addr: SocketAddr, m: Mount) {
    let mut last = Instant::now();
    let (mut ws, _) = open_ws(addr, m.base).await;
    for i in 0..3 {
        let t = ws.recv_text(Duration::from_secs(1)).await;
        assert_eq!(t, "2", "frame {i}");
        let gap = last.elapsed();
        assert!(
            gap + TIMER_SLACK >= Duration::from_millis(300),
            "ping {i} came {gap:?} after the handshake request / previous pong, expected 300 ms"
        );
        last = Instant::now();
        ws.send_text("3").await;
    }
    ws.close().await;
}

pub async fn heartbeat_ws_timeout(addr: SocketAddr, m: Mount) {
    let requested = Instant::now();
    let (mut ws, _) = open_ws(addr, m.base).await;
    let seen = ws.expect_closed(Duration::from_secs(3)).await;
    let after = requested.elapsed();
    assert!(
        after + TIMER_SLACK >= Duration::from_millis(500),
        "closed {after:?} after the handshake request, before ping timeout (500 ms)"
    );
    assert_eq!(
        seen,
        vec![Frame::Text("2".into())],
        "frames before the ping-timeout close"
    );
}

// --- close ----------------------------------------------------------------------------

/// GET pending, then POST `1`: the GET is released with `6`, and the session is gone.
pub async fn close_polling(addr: SocketAddr, m: Mount) {
    let (sid, _) = open_polling(addr, m.base).await;
    let path = polling_path(m.base, &sid);
    let pending = tokio::spawn({
        let path = path.clone();
        async move { get(addr, &path).await }
    });
    sleep(RACE_GAP).await;
    let closing = post(addr, &path, "1").await;
    let r = pending
        .await
        .expect("GET task")
        .unwrap_or_else(|e| panic!("pending GET: {e}"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "6"),
        "pending GET after POST 1"
    );
    if let Ok(c) = closing {
        assert_eq!(c.status, 200, "POST 1: {:?}", c.text());
    }
    let r = get_ok(addr, &path).await;
    assert_eq!(r.status, 400, "GET after close: {:?}", r.text());
}

pub async fn close_ws(addr: SocketAddr, m: Mount) {
    let (mut ws, _) = open_ws(addr, m.base).await;
    ws.send_text("1").await;
    let seen = ws.expect_closed(FRAME_TIMEOUT).await;
    assert!(
        seen.iter().all(|f| f == &Frame::Text("2".into())),
        "frames before close: {seen:?}"
    );
}

// --- upgrade --------------------------------------------------------------------------

async fn probe(addr: SocketAddr, m: Mount, sid: &str) -> Ws {
    let mut ws = Ws::open(
        addr,
        &format!("{}?EIO=4&transport=websocket&sid={sid}", m.base),
    )
    .await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text(FRAME_TIMEOUT).await, "3probe", "probe answer");
    ws
}

async fn assert_upgraded_ws_works(ws: &mut Ws, m: Mount) {
    ws.send_text(m.after_upgrade_send).await;
    let t = ws.recv_text(FRAME_TIMEOUT).await;
    if m.after_upgrade_exact {
        assert_eq!(t, m.after_upgrade_expect, "after upgrade");
    } else {
        assert!(
            t.starts_with(m.after_upgrade_expect),
            "after upgrade: {t:?}"
        );
    }
}

/// `2probe` -> `3probe`, a GET is released with `6`, then `5`, then traffic over WS.
pub async fn upgrade_success(addr: SocketAddr, m: Mount) {
    let (sid, _) = open_polling(addr, m.base).await;
    let mut ws = probe(addr, m, &sid).await;
    let r = get_ok(addr, &polling_path(m.base, &sid)).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "6"),
        "GET during upgrade"
    );
    ws.send_text("5").await;
    assert_upgraded_ws_works(&mut ws, m).await;
    ws.close().await;
}

/// After `2probe` + `5`, polling with the sid gets 400 and the websocket still works.
pub async fn upgrade_ignores_http(addr: SocketAddr, m: Mount) {
    let (sid, _) = open_polling(addr, m.base).await;
    let mut ws = probe(addr, m, &sid).await;
    ws.send_text("5").await;
    sleep(RACE_GAP).await;
    let r = get_ok(addr, &polling_path(m.base, &sid)).await;
    assert_eq!(r.status, 400, "GET after upgrade: {:?}", r.text());
    assert_upgraded_ws_works(&mut ws, m).await;
    ws.close().await;
}

/// After the upgrade a second websocket with the same sid is closed; the first still works.
pub async fn upgrade_ignores_second_ws(addr: SocketAddr, m: Mount) {
    let (sid, _) = open_polling(addr, m.base).await;
    let mut ws = probe(addr, m, &sid).await;
    ws.send_text("5").await;
    sleep(RACE_GAP).await;
    let path = format!("{}?EIO=4&transport=websocket&sid={sid}", m.base);
    if let Ok(mut second) = Ws::connect(addr, &path).await {
        second.expect_closed(FRAME_TIMEOUT).await;
    }
    assert_upgraded_ws_works(&mut ws, m).await;
    ws.close().await;
}
