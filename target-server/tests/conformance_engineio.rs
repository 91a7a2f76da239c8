//! Byte-for-byte replay of the official engine.io-protocol test suite (docs/ARCHITECTURE.md#conformance-suites,
//! 24 cases) against `serve()` in the conformance preset, path `/engine.io/` (echo mode).

mod common;

use std::time::Duration;

use common::eio_cases::{self as cases, ENGINEIO as M};
use common::*;
use tokio::time::sleep;

// The 16 Engine.IO cases (handshake 7, heartbeat 4, close 2, upgrade 3), one test each,
// each against its own conformance-preset server.
testkit::engineio_cases!(start: Server::conformance(), mount: M, cases: cases);

// message / polling (5)

async fn post_then_get_echo(body: &str) {
    let server = Server::conformance().await;
    let (sid, _) = open_polling(server.addr, M.base).await;
    let path = polling_path(M.base, &sid);
    let r = post_ok(server.addr, &path, body).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "POST {body:?}");
    let r = get_ok(server.addr, &path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), body, "echoed body");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_polling_one_text_packet() {
    post_then_get_echo("4hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_polling_several_text_packets() {
    post_then_get_echo("4test1\x1e4test2\x1e4test3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_polling_text_and_binary_packets() {
    post_then_get_echo("4hello\x1ebAQIDBA==").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_polling_invalid_packet_closes_session() {
    let server = Server::conformance().await;
    let (sid, _) = open_polling(server.addr, M.base).await;
    let path = polling_path(M.base, &sid);
    // 400, or the request aborted: both pass in the suite.
    if let Ok(r) = post(server.addr, &path, "abc").await {
        assert_eq!(r.status, 400, "POST abc: {:?}", r.text());
    }
    let r = get_ok(server.addr, &path).await;
    assert_eq!(r.status, 400, "GET after invalid POST: {:?}", r.text());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_polling_duplicate_get_closes_session() {
    let server = Server::conformance().await;
    let addr = server.addr;
    let (sid, _) = open_polling(addr, M.base).await;
    let path = polling_path(M.base, &sid);
    let first = tokio::spawn({
        let path = path.clone();
        async move { get(addr, &path).await }
    });
    // The suite waits 5 ms; a little more makes "first GET is pending" certain on a busy box.
    sleep(Duration::from_millis(50)).await;
    let second = get(addr, &format!("{path}&t=burst"))
        .await
        .unwrap_or_else(|e| panic!("second GET: {e}"));
    let first = first
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("first GET: {e}"));
    assert_eq!(
        (first.status, first.text().as_str()),
        (200, "1"),
        "first GET"
    );
    assert!(
        [400, 500].contains(&second.status),
        "second GET status {}",
        second.status
    );
    let r = get_ok(addr, &path).await;
    assert_eq!(r.status, 400, "GET after duplicate poll: {:?}", r.text());
    server.stop().await;
}

// message / websocket (3)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ws_text_packet() {
    let server = Server::conformance().await;
    let (mut ws, _) = open_ws(server.addr, M.base).await;
    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text(FRAME_TIMEOUT).await, "4hello");
    ws.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ws_binary_packet() {
    let server = Server::conformance().await;
    let (mut ws, _) = open_ws(server.addr, M.base).await;
    ws.send_binary(&[1, 2, 3, 4]).await;
    assert_eq!(ws.recv_binary(FRAME_TIMEOUT).await, vec![1, 2, 3, 4]);
    ws.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ws_invalid_packet_closes_session() {
    let server = Server::conformance().await;
    let (mut ws, _) = open_ws(server.addr, M.base).await;
    ws.send_text("abc").await;
    let seen = ws.expect_closed(FRAME_TIMEOUT).await;
    assert!(seen.is_empty(), "frames before close: {seen:?}");
    server.stop().await;
}
