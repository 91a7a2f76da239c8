//! End-to-end tests of the Socket.IO layer against a real server on 127.0.0.1:0:
//! connection state recovery on the wire, ticks, namespaces, `--stall` with heartbeats.
//!
//! Receives: a server from `crate::testkit` per test. Emits: test results only.
//! Must not: wait without a bound or use any address but 127.0.0.1.

use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::Config;
use crate::config::{Stall, Tick};
use crate::stats::{CloseCause, Proto};
use crate::testkit::{Client, Got, TestServer, WAIT};

async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !cond() {
        sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// The JSON of a `40...` / `42[...]` text after its header.
fn json_of(text: &str, header: &str) -> Value {
    let body = text
        .strip_prefix(header)
        .unwrap_or_else(|| panic!("{text:?} does not start with {header:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[tokio::test]
async fn recovery_restores_sid_rooms_and_replays_missed_broadcasts() {
    let server = TestServer::start(Config {
        recovery: Some(Duration::from_secs(60)),
        ..Config::default()
    })
    .await;
    let (addr, stats) = (server.addr, server.shared.stats.clone());
    let mut a = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    a.pong = true;
    a.text().await;
    a.send("40").await;
    let hello = json_of(&a.text().await, "40");
    let (sid, pid) = (
        hello["sid"].as_str().expect("sid"),
        hello["pid"].as_str().expect("pid"),
    );
    assert_ne!(sid, pid);
    a.send(r#"420["join","r"]"#).await;
    assert_eq!(
        a.text().await,
        r#"430[{"room":"r","members":1}]"#,
        "acks carry no offset"
    );
    let mut b = Client::socketio(addr).await;
    b.send(r#"42["broadcast","r",1]"#).await;
    let first = json_of(&a.text().await, "42");
    assert_eq!(first[0], "broadcast");
    assert_eq!(first[1], 1);
    let offset = first[2]
        .as_str()
        .expect("offset string appended as last argument")
        .to_string();
    drop(a); // abrupt: a recoverable transport close
    assert!(eventually(WAIT, || stats.connections(Proto::SocketioWebsocket) == 1).await);
    b.send(r#"421["broadcast","r",2]"#).await;
    assert_eq!(
        b.text().await,
        "431[0]",
        "nobody in the room while A is away"
    );
    b.send(r#"422["broadcast","r",3]"#).await;
    assert_eq!(b.text().await, "432[0]");

    let mut a2 = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    a2.pong = true;
    a2.text().await;
    a2.send(&format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    let again = json_of(&a2.text().await, "40");
    assert_eq!(
        (again["sid"].as_str(), again["pid"].as_str()),
        (Some(sid), Some(pid)),
        "same sid and pid"
    );
    for n in [2, 3] {
        let missed = json_of(&a2.text().await, "42");
        assert_eq!(
            (missed[0].as_str(), missed[1].as_i64()),
            (Some("broadcast"), Some(n)),
            "replayed {missed}"
        );
    }
    b.send(r#"423["broadcast","r",4]"#).await;
    assert_eq!(b.text().await, "433[1]", "the room was restored");
    assert_eq!(json_of(&a2.text().await, "42")[1], 4);
    assert_eq!(
        stats
            .recovered_sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        stats
            .replayed_packets
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // An unknown offset gives a fresh session.
    let mut c = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    c.text().await;
    c.send(&format!(r#"40{{"pid":"{pid}","offset":"999999"}}"#))
        .await;
    assert_ne!(json_of(&c.text().await, "40")["sid"].as_str(), Some(sid));
}

#[tokio::test]
async fn ticks_follow_a_fixed_schedule_with_the_payload_object() {
    let tick = Tick {
        room: "lobby".into(),
        rate_per_s: 50.0,
        size_bytes: 200,
    };
    let server = TestServer::start(Config {
        ticks: vec![tick],
        ..Config::default()
    })
    .await;
    let mut c = Client::socketio(server.addr).await;
    c.send(r#"420["join","lobby"]"#).await;
    assert_eq!(c.text().await, r#"430[{"room":"lobby","members":1}]"#);
    let mut last: Option<(u64, u64)> = None;
    for _ in 0..5 {
        let text = c.text().await;
        let object = text
            .strip_prefix(r#"42["tick","#)
            .and_then(|t| t.strip_suffix(']'))
            .expect("tick event");
        assert_eq!(object.len(), 200, "padded to SIZE: {object}");
        let v: Value = serde_json::from_str(object).expect("payload JSON");
        assert_eq!(
            (v["sb"].as_str(), v["c"].as_u64()),
            (Some("server"), Some(0))
        );
        let (s, ti) = (v["s"].as_u64().expect("s"), v["ti"].as_u64().expect("ti"));
        assert!(
            v["ts"].as_u64().expect("ts") >= ti,
            "sent at or after the intended instant"
        );
        if let Some((s0, ti0)) = last {
            assert_eq!(s, s0 + 1, "consecutive sequence numbers");
            assert_eq!(ti - ti0, 20_000_000, "intended instants 1/RATE apart");
        }
        last = Some((s, ti));
    }
}

#[tokio::test]
async fn namespaces_and_protocol_violations() {
    let config = Config {
        namespaces: vec!["/".into(), "/chat".into()],
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let mut c = Client::socketio(server.addr).await;
    c.send("40/chat,").await;
    assert!(c.text().await.starts_with(r#"40/chat,{"sid":""#));
    c.send("40/custom,").await;
    assert_eq!(
        c.text().await,
        r#"44/custom,{"message":"Invalid namespace"}"#
    );
    c.send(r#"42/chat,["echo",{"b":1,"a":[2.50,"é"]}]"#).await;
    assert_eq!(
        c.text().await,
        r#"42/chat,["echo",{"b":1,"a":[2.50,"é"]}]"#,
        "exact bytes echoed"
    );
    c.send(r#"42/chat,7["join"]"#).await;
    assert_eq!(
        c.text().await,
        r#"43/chat,7[{"error":"expected a room name (string)"}]"#
    );
    c.send(r#"42["message","no conformance handlers"]"#).await;
    c.send(r#"421["echo"]"#).await;
    assert_eq!(
        c.text().await,
        "431[]",
        "message ignored without --conformance; empty ack"
    );
    c.send(r#"42/other,["echo"]"#).await;
    let (seen, _) = c.until_closed(WAIT).await;
    assert!(
        seen.is_empty(),
        "a packet for a namespace not connected closes: {seen:?}"
    );
    assert!(
        eventually(WAIT, || server
            .shared
            .stats
            .closes(CloseCause::ProtocolError)
            == 1)
        .await
    );
}

#[tokio::test]
async fn stalled_handlers_delay_acks_but_heartbeats_go_on() {
    let config = Config {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(400),
        stall: Some(Stall {
            every: Duration::from_millis(600),
            for_: Duration::from_millis(400),
        }),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let mut c = Client::connect(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    c.text().await;
    c.send("40").await;
    assert!(c.text().await.starts_with("40"));
    let (mut acks, mut pings, mut gaps) = (Vec::new(), 0, Duration::ZERO);
    let mut last_ack = Instant::now();
    let start = Instant::now();
    let mut next = 0;
    while acks.len() < 25 && start.elapsed() < Duration::from_secs(4) {
        if next < 25 && start.elapsed() >= Duration::from_millis(50 * next) {
            c.send(&format!(r#"42{next}["echo",{next}]"#)).await;
            next += 1;
        }
        match c.recv_within(Duration::from_millis(10)).await {
            Some(Got::Text(t)) if t == "2" => {
                pings += 1;
                c.send("3").await;
            }
            Some(Got::Text(t)) => {
                gaps = gaps.max(last_ack.elapsed());
                last_ack = Instant::now();
                acks.push(t);
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("43{i}[{i}]")).collect();
    assert_eq!(acks, expected, "every ack, in order");
    assert!(
        gaps >= Duration::from_millis(250),
        "a stall held the acks back (largest gap {gaps:?})"
    );
    assert!(
        pings >= 8,
        "pings kept coming during stalls ({pings} in {:?})",
        start.elapsed()
    );
    assert_eq!(server.shared.stats.closes(CloseCause::PingTimeout), 0);
}
