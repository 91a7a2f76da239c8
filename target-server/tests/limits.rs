//! Server limits (README "Server limits"): each one, exceeded, is a clean refusal or close,
//! counted as `target_server_limit_exceeded_total{limit=..}` in `/metrics` (and in
//! `/stats.json` `limits_exceeded`). Each test here fails without its limit: the request
//! would be served, the queue would grow, or the connection would stay open.
//!
//! Must not: wait without a bound (every wait has a deadline), or reach past 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use target_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// `target_server_limit_exceeded_total{limit="NAME"}` now.
async fn limit_hits(addr: SocketAddr, name: &str) -> u64 {
    let text = get_ok(addr, "/metrics").await.text();
    let prefix = format!("target_server_limit_exceeded_total{{limit=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
}

/// Waits (at most `limit`) until the `name` counter reaches `want`; returns its value.
async fn wait_hits(addr: SocketAddr, name: &str, want: u64, limit: Duration) -> u64 {
    let end = Instant::now() + limit;
    loop {
        let n = limit_hits(addr, name).await;
        if n >= want || Instant::now() >= end {
            return n;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

async fn closes(addr: SocketAddr, cause: &str) -> f64 {
    let text = get_ok(addr, "/metrics").await.text();
    let prefix = format!("target_server_connections_closed_total{{cause=\"{cause}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

/// Waits (at most 5 s) until closes with `cause` reach `want`; returns the count. A raw
/// WebSocket's close is counted when its task ends, after the limit that ended it.
async fn wait_closes(addr: SocketAddr, cause: &str, want: f64) -> f64 {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let n = closes(addr, cause).await;
        if n >= want || Instant::now() >= end {
            return n;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// One keep-alive HTTP/1.1 connection, for many requests.
struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl KeepAlive {
    async fn open(addr: SocketAddr) -> KeepAlive {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("http1 handshake");
        tokio::spawn(conn);
        KeepAlive { sender, addr }
    }

    async fn send(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .expect("request");
        let exchange = async {
            self.sender.ready().await.expect("connection ready");
            let resp = self.sender.send_request(req).await.expect("send");
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        timeout(HTTP_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer"))
    }
}

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

fn sid_of(open: &str) -> String {
    let json: Value = serde_json::from_str(&open[1..]).expect("open packet JSON");
    json["sid"].as_str().expect("sid").to_string()
}

/// One keep-alive connection used to open polling sessions as fast as it sends GETs: the
/// sessions count toward `--max-connections` (the connection holds one slot, each session
/// one), the one past it gets 503 and is counted, and a closed session gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_sessions_count_toward_max_connections() {
    let server = Server::start(Config {
        max_connections: 3,
        ..Config::default()
    })
    .await;
    let mut conn = KeepAlive::open(server.addr).await;
    let (s1, open1) = conn.send("GET", HANDSHAKE, "").await;
    let (s2, _) = conn.send("GET", HANDSHAKE, "").await;
    assert_eq!((s1, s2), (200, 200));
    let (s3, body) = conn.send("GET", HANDSHAKE, "").await;
    assert_eq!(
        s3, 503,
        "a third session is past 3 slots (1 TCP + 2 sessions): {body}"
    );
    // The session closes (Engine.IO `1`): its slot is free for the next handshake.
    let sid = sid_of(&open1);
    let (status, _) = conn
        .send("POST", &polling_path("/socket.io/", &sid), "1")
        .await;
    assert_eq!(status, 200);
    let (s4, open4) = conn.send("GET", HANDSHAKE, "").await;
    assert_eq!(s4, 200, "the closed session gave its slot back");
    // Free a slot for the /metrics requests below (the keep-alive connection may take a
    // moment to be seen closed).
    let sid = sid_of(&open4);
    let (status, _) = conn
        .send("POST", &polling_path("/socket.io/", &sid), "1")
        .await;
    assert_eq!(status, 200);
    drop(conn);
    sleep(Duration::from_millis(100)).await;
    assert_eq!(limit_hits(server.addr, "sessions").await, 1);
    let text = get_ok(server.addr, "/metrics").await.text();
    assert_eq!(
        metric_value(&text, "target_server_refused_connections_total"),
        Some(1.0)
    );
    server.stop().await;
}

/// A Socket.IO polling client that joined a room and never polls: broadcasts pile up in its
/// queue until `--max-queue-bytes`, then it is closed as a slow consumer and counted (the
/// item limit, 4,096, is far away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_slow_consumer_closed_at_max_queue_bytes() {
    let server = Server::start(Config {
        max_queue_bytes: 64 * 1024,
        ..Config::default()
    })
    .await;
    let addr = server.addr;
    let (sid, _) = open_polling(addr, "/socket.io/").await;
    let path = polling_path("/socket.io/", &sid);
    assert_eq!(post_ok(addr, &path, "40").await.status, 200);
    assert_eq!(
        post_ok(addr, &path, r#"42["join","slow"]"#).await.status,
        200
    );
    let mut publisher = Sio::connect(addr).await;
    let big = "x".repeat(20_000);
    for i in 0..8 {
        let n = publisher
            .call("broadcast", &[json!("slow"), json!(big)], i + 1)
            .await;
        if n == [json!(0)] {
            break; // the consumer is gone
        }
    }
    assert_eq!(
        wait_hits(addr, "queue_bytes", 1, Duration::from_secs(5)).await,
        1
    );
    assert!(wait_closes(addr, "slow_consumer", 1.0).await >= 1.0);
    let resp = get_ok(addr, &path).await;
    assert_eq!(resp.status, 400, "the session is gone: {}", resp.text());
    server.stop().await;
}

/// A raw WebSocket room member that never reads: once the kernel buffers are full, frames
/// queue in the server until `--max-queue-bytes`, then it is closed and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_slow_consumer_closed_at_max_queue_bytes() {
    let server = Server::start(Config {
        max_queue_bytes: 1 << 20,
        ..Config::default()
    })
    .await;
    let addr = server.addr;
    let _consumer = Ws::open(addr, "/ws/room/slow").await; // never read
    let mut publisher = Ws::open(addr, "/ws/room/slow?self=0").await;
    let frame = vec![7u8; 256 * 1024];
    let end = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while limit_hits(addr, "queue_bytes").await == 0 && Instant::now() < end && sent < 400 {
        for _ in 0..8 {
            publisher.send_binary(&frame).await;
            sent += 1;
        }
    }
    assert_eq!(
        wait_hits(addr, "queue_bytes", 1, Duration::from_secs(5)).await,
        1,
        "after {sent} frames of 256 KiB"
    );
    assert!(wait_closes(addr, "slow_consumer", 1.0).await >= 1.0);
    server.stop().await;
}

fn placeholders(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect::<Vec<_>>()
        .join(",")
}

/// Attachment count, bytes and deadline: each closes the session and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_count_bytes_and_deadline() {
    let server = Server::start(Config {
        max_attachments: 2,
        max_attachment_bytes: 8,
        attachment_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let addr = server.addr;

    // Within every limit: echoed.
    let mut ok = Sio::connect(addr).await;
    ok.ws
        .send_text(&format!(r#"452-["echo",{}]"#, placeholders(2)))
        .await;
    ok.ws.send_binary(&[1, 2, 3, 4]).await;
    ok.ws.send_binary(&[5, 6, 7, 8]).await;
    let (_, atts) = ok.recv_ok(FRAME_TIMEOUT).await;
    assert_eq!(atts.len(), 2);

    let mut many = Sio::connect(addr).await;
    many.ws
        .send_text(&format!(r#"453-["echo",{}]"#, placeholders(3)))
        .await;
    many.ws.expect_closed(FRAME_TIMEOUT).await;
    assert_eq!(limit_hits(addr, "attachments").await, 1);

    let mut big = Sio::connect(addr).await;
    big.ws
        .send_text(&format!(r#"452-["echo",{}]"#, placeholders(2)))
        .await;
    big.ws.send_binary(&[1; 5]).await;
    big.ws.send_binary(&[2; 5]).await;
    big.ws.expect_closed(FRAME_TIMEOUT).await;
    assert_eq!(limit_hits(addr, "attachment_bytes").await, 1);

    let mut slow = Sio::connect(addr).await;
    let t0 = Instant::now();
    slow.ws
        .send_text(&format!(r#"451-["echo",{}]"#, placeholders(1)))
        .await;
    slow.ws.expect_closed(Duration::from_secs(5)).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(limit_hits(addr, "attachment_timeout").await, 1);
    assert_eq!(closes(addr, "protocol_error").await, 3.0);
    server.stop().await;
}

/// The same deadline when events run in an application task (`--stall` on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_deadline_with_stall() {
    let server = Server::start(Config {
        attachment_timeout: Duration::from_millis(300),
        stall: Some(target_server::config::Stall {
            every: Duration::from_secs(60),
            for_: Duration::from_millis(1),
        }),
        ..Config::default()
    })
    .await;
    let mut slow = Sio::connect(server.addr).await;
    slow.ws
        .send_text(&format!(r#"451-["echo",{}]"#, placeholders(1)))
        .await;
    slow.ws.expect_closed(Duration::from_secs(5)).await;
    assert_eq!(limit_hits(server.addr, "attachment_timeout").await, 1);
    server.stop().await;
}

/// Rooms per socket and room-name length: joins past them are refused with an `error` ack
/// (the socket stays), a raw room URL with a long name gets 400; all counted, in
/// `/metrics` and `/stats.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_per_socket_and_room_name_length() {
    let server = Server::start(Config {
        max_rooms_per_socket: 2,
        max_room_name: 8,
        ..Config::default()
    })
    .await;
    let addr = server.addr;
    let mut sio = Sio::connect(addr).await;
    assert_eq!(sio.join("a", 1).await, 1);
    assert_eq!(sio.join("b", 2).await, 1);
    let refused = sio.call("join", &[json!("c")], 3).await;
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("rooms")),
        "{refused:?}"
    );
    assert_eq!(sio.join("a", 4).await, 1, "a room it is in already is fine");
    assert_eq!(sio.call("leave", &[json!("b")], 5).await[0]["members"], 0);
    let long = "r".repeat(9);
    let refused = sio.call("join", &[json!(long)], 6).await;
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("name")),
        "{refused:?}"
    );
    assert_eq!(
        sio.join("c", 7).await,
        1,
        "room for one more after the leave"
    );
    let err = Ws::connect(addr, &format!("/ws/room/{long}")).await.err();
    assert!(
        err.is_some_and(|e| e.contains("400")),
        "raw room name too long"
    );
    assert!(
        Ws::connect(addr, "/ws/room/rrrrrrrr").await.is_ok(),
        "8 bytes fit"
    );

    assert_eq!(limit_hits(addr, "rooms_per_socket").await, 1);
    assert_eq!(limit_hits(addr, "room_name").await, 2);
    let stats: Value =
        serde_json::from_str(&get_ok(addr, "/stats.json").await.text()).expect("stats.json");
    assert_eq!(stats["limits_exceeded"]["room_name"], 2, "{stats}");
    assert_eq!(stats["limits_exceeded"]["rooms_per_socket"], 1, "{stats}");
    server.stop().await;
}

/// A polling POST whose body trickles: 408 after `--body-timeout`, the session closed and
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_post_body_timeout() {
    let server = Server::start(Config {
        body_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let addr = server.addr;
    let (sid, _) = open_polling(addr, "/socket.io/").await;
    let path = polling_path("/socket.io/", &sid);
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n40"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let t0 = Instant::now();
    let mut buf = vec![0u8; 1024];
    let n = timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(limit_hits(addr, "body_timeout").await, 1);
    let resp = get_ok(addr, &path).await;
    assert_eq!(resp.status, 400, "the session is closed");
    server.stop().await;
}

/// A raw WebSocket peer that sends nothing and answers nothing is pinged after
/// `--ws-idle-timeout` and closed after `--ws-ping-timeout`, counted; a peer that answers
/// pings stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_idle_peer_is_closed() {
    let server = Server::start(Config {
        ws_idle_timeout: Duration::from_millis(200),
        ws_ping_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let addr = server.addr;
    let _silent = Ws::open(addr, "/ws/echo").await; // never read: no pong
    let mut alive = Ws::open(addr, "/ws/echo").await;
    // Reading answers the pings (tungstenite pongs), for 1.5 s = several idle periods.
    alive.expect_silence(Duration::from_millis(1500)).await;
    assert_eq!(
        wait_hits(addr, "idle_timeout", 1, Duration::from_secs(5)).await,
        1
    );
    assert_eq!(wait_closes(addr, "ping_timeout", 1.0).await, 1.0);
    alive.send_text("still here").await;
    assert_eq!(
        alive.recv_text(FRAME_TIMEOUT).await,
        "still here",
        "the answering peer stays"
    );
    server.stop().await;
}
