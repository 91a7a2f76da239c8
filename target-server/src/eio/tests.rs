//! End-to-end tests of the Engine.IO transports against a real server on 127.0.0.1:0:
//! shutdown, slow consumers, the upgrade's buffered packets and timeout, `--delay`.
//! (The official-suite cases live in `tests/conformance_*.rs`.)
//!
//! Receives: a server from `crate::testkit` per test. Emits: test results only.
//! Must not: wait without a bound or use any address but 127.0.0.1.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::Config;
use crate::config::Delay;
use crate::stats::{CloseCause, Proto};
use crate::testkit::{Client, Got, TestServer, WAIT, http, polling_sid};

/// Polls `cond` every 10 ms for up to `limit`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn shutdown_sends_close_packet_then_1001_and_releases_pending_polls() {
    let server = TestServer::start(Config::default()).await;
    let (addr, shared) = (server.addr, server.shared.clone());
    let mut ws = Client::connect(addr, "/engine.io/?EIO=4&transport=websocket").await;
    assert!(ws.text().await.starts_with("0{"));
    let sid = polling_sid(addr, "/socket.io/").await;
    let poll = tokio::spawn(async move {
        http(
            addr,
            "GET",
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            "",
        )
        .await
    });
    sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.stop());
    let (seen, code) = ws.until_closed(WAIT).await;
    assert_eq!(
        seen,
        vec![Got::Text("1".into())],
        "Engine.IO close packet before the WS close"
    );
    assert_eq!(code, Some(1001), "going away");
    assert_eq!(
        poll.await.expect("poll task"),
        (200, "1".to_string()),
        "pending GET released with close"
    );
    stopping.await.expect("server stopped");
    assert_eq!(shared.stats.closes(CloseCause::Shutdown), 2);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_as_slow_consumer() {
    let server = TestServer::start(Config {
        max_queue: 8,
        ..Config::default()
    })
    .await;
    let stats = server.shared.stats.clone();
    let mut reader = Client::socketio(server.addr).await;
    reader.send(r#"420["join","r"]"#).await;
    assert_eq!(reader.text().await, r#"430[{"room":"r","members":1}]"#);
    // From here on `reader` reads nothing: kernel buffers fill, then its queue of 8.
    let mut publisher = Client::socketio(server.addr).await;
    let big = format!(r#"42["broadcast","r","{}"]"#, "x".repeat(64 * 1024));
    for _ in 0..600 {
        publisher.send(&big).await;
        if stats.closes(CloseCause::SlowConsumer) > 0 {
            break;
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || stats
            .closes(CloseCause::SlowConsumer)
            == 1)
        .await,
        "the stuck reader is disconnected and counted"
    );
    assert!(
        stats
            .outbound_queue_peak
            .load(std::sync::atomic::Ordering::Relaxed)
            <= 8,
        "queue bounded"
    );
    assert!(
        eventually(WAIT, || stats.connections(Proto::SocketioWebsocket) == 1).await,
        "publisher stays"
    );
    publisher.send(r#"421["echo","still here"]"#).await;
    assert_eq!(publisher.text().await, r#"431["still here"]"#);
}

#[tokio::test]
async fn upgrade_flushes_packets_queued_while_polling_to_the_websocket() {
    let server = TestServer::start(Config::default()).await;
    let (addr, stats) = (server.addr, server.shared.stats.clone());
    let sid = polling_sid(addr, "/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http(addr, "POST", &path, "40").await, (200, "ok".into()));
    let (status, body) = http(addr, "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("40{\"sid\":"),
        "CONNECT reply over polling: {body}"
    );
    assert_eq!(
        http(addr, "POST", &path, r#"42["echo","queued"]"#).await,
        (200, "ok".into())
    );
    let mut ws = Client::connect(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await;
    ws.send("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    assert_eq!(
        http(addr, "GET", &path, "").await,
        (200, "6".into()),
        "poll released with noop"
    );
    ws.send("5").await;
    assert_eq!(
        ws.text().await,
        r#"42["echo","queued"]"#,
        "the reply queued before `5` comes over WS"
    );
    assert_eq!(
        http(addr, "GET", &path, "").await.0,
        400,
        "polling after upgrade"
    );
    ws.send(r#"421["echo",1]"#).await;
    assert_eq!(ws.text().await, "431[1]");
    assert_eq!(stats.connections(Proto::SocketioWebsocket), 1);
    assert_eq!(stats.connections(Proto::SocketioPolling), 0);
}

#[tokio::test]
async fn an_unfinished_upgrade_times_out_and_polling_goes_on() {
    let config = Config {
        upgrade_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let addr = server.addr;
    let sid = polling_sid(addr, "/engine.io/").await;
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let mut probe = Client::connect(addr, &ws_path).await;
    probe.send("2probe").await;
    assert_eq!(probe.text().await, "3probe");
    let mut second = Client::connect(addr, &ws_path).await;
    assert_eq!(
        second.until_closed(WAIT).await.0,
        vec![],
        "a second probe is closed at once"
    );
    assert_eq!(
        http(addr, "GET", &path, "").await,
        (200, "6".into()),
        "GETs released while probed"
    );
    let started = Instant::now();
    probe.until_closed(WAIT).await;
    assert!(
        started.elapsed() <= Duration::from_millis(1000),
        "probe dropped after upgradeTimeout"
    );
    assert_eq!(
        http(addr, "POST", &path, "4hello").await,
        (200, "ok".into())
    );
    assert_eq!(
        http(addr, "GET", &path, "").await,
        (200, "4hello".into()),
        "session still polling"
    );
}

#[tokio::test]
async fn delayed_echoes_keep_their_order() {
    let delay = Delay {
        base: Duration::from_millis(80),
        jitter: Duration::from_millis(40),
    };
    let server = TestServer::start(Config {
        delay: Some(delay),
        ..Config::default()
    })
    .await;
    let mut ws = Client::connect(server.addr, "/engine.io/?EIO=4&transport=websocket").await;
    assert!(
        ws.text().await.starts_with("0{"),
        "the open packet is not delayed"
    );
    let sent = Instant::now();
    for i in 0..20 {
        ws.send(&format!("4m{i}")).await;
    }
    for i in 0..20 {
        assert_eq!(ws.text().await, format!("4m{i}"));
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(40),
        "echoes were delayed"
    );
}

#[tokio::test]
async fn concurrent_posts_end_the_session() {
    let server = TestServer::start(Config::default()).await;
    let addr = server.addr;
    let sid = polling_sid(addr, "/engine.io/").await;
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    // A POST whose body never completes holds the POST slot.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4partial");
    tokio::io::AsyncWriteExt::write_all(&mut slow, head.as_bytes())
        .await
        .expect("write");
    sleep(Duration::from_millis(50)).await;
    assert_eq!(
        http(addr, "POST", &path, "4x").await.0,
        400,
        "second POST refused"
    );
    assert_eq!(http(addr, "GET", &path, "").await.0, 400, "session gone");
}
