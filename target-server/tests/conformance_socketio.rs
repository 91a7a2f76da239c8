//! Byte-for-byte replay of the official socket.io-protocol test suite (docs/ARCHITECTURE.md#conformance-suites,
//! 32 cases) against `serve()` in the conformance preset, path `/socket.io/`: the 16
//! Engine.IO cases (handshake, heartbeat, close, upgrade) plus connect, disconnect and
//! message. Random sids are not compared, but the JSON keys are, exactly.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::eio_cases::{self as cases, SOCKETIO as M};
use common::*;
use serde_json::Value;

// The 16 Engine.IO cases (handshake 7, heartbeat 4, close 2, upgrade 3), one test each,
// each against its own conformance-preset server.
testkit::engineio_cases!(start: Server::conformance(), mount: M, cases: cases);

// --- helpers ----------------------------------------------------------------------------

/// The CONNECT reply `40<nsp,>{"sid":...}`: exactly the key `sid`, a string.
fn assert_connect_reply(frame: &str, prefix: &str) {
    assert!(
        frame.starts_with(prefix),
        "CONNECT reply {frame:?} must start with {prefix:?}"
    );
    let json: Value = serde_json::from_str(&frame[prefix.len()..])
        .unwrap_or_else(|e| panic!("CONNECT reply {frame:?}: {e}"));
    let keys: Vec<&String> = json
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["sid"], "CONNECT reply keys in {frame:?}");
    assert!(json["sid"].is_string(), "sid must be a string: {frame:?}");
}

/// Opens a websocket session and sends `connect` (e.g. `40`), checking the reply has
/// `prefix` and the `auth` emit that follows is exactly `auth`.
async fn connect_with(addr: SocketAddr, connect: &str, prefix: &str, auth: &str) -> Ws {
    let (mut ws, _) = open_ws(addr, M.base).await;
    ws.send_text(connect).await;
    assert_connect_reply(&ws.recv_text(FRAME_TIMEOUT).await, prefix);
    assert_eq!(
        ws.recv_text(FRAME_TIMEOUT).await,
        auth,
        "auth emit after {connect:?}"
    );
    ws
}

/// The suite's `initSocketIOConnection`: connected to `/`, auth packet consumed.
async fn connected(addr: SocketAddr) -> Ws {
    connect_with(addr, "40", "40", r#"42["auth",{}]"#).await
}

async fn with_server<F, Fut>(f: F)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = Server::conformance().await;
    f(server.addr).await;
    server.stop().await;
}

/// The next `n` frames that are not Engine.IO pings (the suite's `waitForPackets`).
async fn frames_skipping_pings(ws: &mut Ws, n: usize) -> Vec<Frame> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(ws.recv_skipping_pings(FRAME_TIMEOUT).await);
    }
    out
}

// --- connect (7) ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_main_namespace() {
    with_server(|addr| async move {
        connected(addr).await.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_main_namespace_with_payload() {
    with_server(|addr| async move {
        connect_with(
            addr,
            r#"40{"token":"123"}"#,
            "40",
            r#"42["auth",{"token":"123"}]"#,
        )
        .await
        .close()
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_custom_namespace() {
    with_server(|addr| async move {
        connect_with(addr, "40/custom,", "40/custom,", r#"42/custom,["auth",{}]"#)
            .await
            .close()
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_custom_namespace_with_payload() {
    with_server(|addr| async move {
        connect_with(
            addr,
            r#"40/custom,{"token":"abc"}"#,
            "40/custom,",
            r#"42/custom,["auth",{"token":"abc"}]"#,
        )
        .await
        .close()
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_unknown_namespace_is_refused() {
    with_server(|addr| async move {
        let (mut ws, _) = open_ws(addr, M.base).await;
        ws.send_text("40/random").await;
        assert_eq!(
            ws.recv_text(FRAME_TIMEOUT).await,
            r#"44/random,{"message":"Invalid namespace"}"#
        );
        ws.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_invalid_handshake_closes() {
    with_server(|addr| async move {
        let (mut ws, _) = open_ws(addr, M.base).await;
        ws.send_text("4abc").await;
        let seen = ws.expect_closed(FRAME_TIMEOUT).await;
        assert!(seen.is_empty(), "frames before close: {seen:?}");
    })
    .await;
}

/// No CONNECT at all: closed within the suite's 2 s (ping timeout ~500 ms or connect
/// timeout 1 s), with nothing but pings before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_without_handshake_closes() {
    with_server(|addr| async move {
        let (mut ws, _) = open_ws(addr, M.base).await;
        let seen = ws.expect_closed(Duration::from_millis(1900)).await;
        assert!(
            seen.iter().all(|f| f == &Frame::Text("2".into())),
            "frames before close: {seen:?}"
        );
    })
    .await;
}

// --- disconnect (2) ---------------------------------------------------------------------

/// `41` leaves `/` without closing: the next frame is the regular ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_main_namespace() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text("41").await;
        assert_eq!(
            ws.recv_text(Duration::from_secs(1)).await,
            "2",
            "next frame after 41"
        );
        ws.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_custom_namespace_keeps_main() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text("40/custom").await;
        assert_connect_reply(&ws.recv_text(FRAME_TIMEOUT).await, "40/custom,");
        assert_eq!(
            ws.recv_text(FRAME_TIMEOUT).await,
            r#"42/custom,["auth",{}]"#
        );
        ws.send_text("41/custom").await;
        ws.send_text(r#"42["message","message to main namespace"]"#)
            .await;
        assert_eq!(
            ws.recv_text(FRAME_TIMEOUT).await,
            r#"42["message-back","message to main namespace"]"#
        );
        ws.close().await;
    })
    .await;
}

// --- message (7) ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_plain_text() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text(r#"42["message",1,"2",{"3":[true]}]"#).await;
        assert_eq!(
            ws.recv_text(FRAME_TIMEOUT).await,
            r#"42["message-back",1,"2",{"3":[true]}]"#
        );
        ws.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_with_binary_attachments() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).await;
        ws.send_binary(&[1, 2, 3]).await;
        ws.send_binary(&[4, 5, 6]).await;
        let frames = frames_skipping_pings(&mut ws, 3).await;
        assert_eq!(
            frames,
            vec![
                Frame::Text(
                    r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.into()
                ),
                Frame::Binary(vec![1, 2, 3]),
                Frame::Binary(vec![4, 5, 6]),
            ]
        );
        ws.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_plain_text_with_ack() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
            .await;
        assert_eq!(
            ws.recv_text(FRAME_TIMEOUT).await,
            r#"43456[1,"2",{"3":[false]}]"#
        );
        ws.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_binary_with_ack() {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
            .await;
        ws.send_binary(&[1, 2, 3]).await;
        ws.send_binary(&[4, 5, 6]).await;
        let frames = frames_skipping_pings(&mut ws, 3).await;
        assert_eq!(
            frames,
            vec![
                Frame::Text(r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.into()),
                Frame::Binary(vec![1, 2, 3]),
                Frame::Binary(vec![4, 5, 6]),
            ]
        );
        ws.close().await;
    })
    .await;
}

async fn closes_on(frame: &'static str) {
    with_server(|addr| async move {
        let mut ws = connected(addr).await;
        ws.send_text(frame).await;
        let seen = ws.expect_closed(FRAME_TIMEOUT).await;
        assert!(
            seen.iter().all(|f| f == &Frame::Text("2".into())),
            "frames before close on {frame:?}: {seen:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_invalid_unknown_packet_type_closes() {
    closes_on("4abc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_invalid_payload_format_closes() {
    closes_on("42{}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_invalid_id_closes() {
    closes_on(r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#).await;
}
