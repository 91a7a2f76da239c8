//! `/metrics`, `/`, `/ws/stats` and `/stats.json` against the server in-process on
//! 127.0.0.1:0: content types, the favicon, that the numbers equal `Stats` after traffic,
//! and that the push channel's snapshots follow connections as they come and go.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use target_server::Config;
use target_server::stats::{CloseCause, Proto};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

/// `name{labels} value` lines of OpenMetrics text, keyed by everything before the value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn sample(m: &HashMap<String, f64>, key: &str) -> u64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key:?} in /metrics")) as u64
}

/// Reads `/ws/stats` snapshots until `pred` holds (bounded).
async fn snapshot_where(ws: &mut WsStream, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let msg = timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no snapshot with {what} within 10 s"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("snapshot is JSON");
                if pred(&v) {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("stats channel ended: {other:?}"),
        }
    }
}

/// 40 echo messages and 40 room messages (about half dropped by injection), a connection
/// opened and closed; returns the deliveries dropped once every counter has settled, and
/// the two connections (they stay open while the test reads the metrics).
async fn traffic(server: &Server) -> (u64, [WsStream; 2]) {
    let mut echo = ws_connect(server.addr, "/ws/echo").await;
    let mut member = ws_connect(server.addr, "/ws/room/m").await;
    for i in 0..40 {
        echo.send(Message::text(format!("echo {i}"))).await.unwrap();
        member
            .send(Message::binary(vec![i as u8; 100]))
            .await
            .unwrap();
    }
    let stats = server.stats();
    wait_until(STEP, "80 messages in", || {
        stats.messages_in.load(Relaxed) == 80
    })
    .await;
    let dropped = stats.dropped_by_injection.load(Relaxed);
    wait_until(STEP, "every kept delivery written", || {
        stats.messages_out.load(Relaxed) + dropped == 80
    })
    .await;
    let closer = ws_connect(server.addr, "/ws/echo").await;
    drop(closer);
    wait_until(STEP, "a closed connection", || {
        stats.connections_total(Proto::RawWs) == 3
    })
    .await;
    wait_until(STEP, "a closed connection", || {
        stats.connections(Proto::RawWs) == 2
    })
    .await;
    (dropped, [echo, member])
}

#[tokio::test]
async fn metrics_have_the_openmetrics_content_type_and_equal_stats() {
    let config = Config {
        drop_rate: 0.5,
        seed: 3,
        ..Config::default()
    };
    let server = Server::start(config).await;
    let (dropped, _open) = traffic(&server).await;
    let stats = server.stats();

    let got = get_ok(server.addr, "/metrics").await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = got.text();
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    let m = samples(&text);
    let ws_labels = "{protocol=\"ws\",transport=\"websocket\"}";
    assert_eq!(
        sample(&m, &format!("target_server_connections{ws_labels}")),
        2
    );
    assert_eq!(
        sample(
            &m,
            &format!("target_server_connections_opened_total{ws_labels}")
        ),
        3
    );
    assert_eq!(
        sample(
            &m,
            "target_server_connections{protocol=\"socketio\",transport=\"polling\"}"
        ),
        0
    );
    for (name, value) in [
        ("messages_in_total", stats.messages_in.load(Relaxed)),
        ("messages_out_total", stats.messages_out.load(Relaxed)),
        ("bytes_in_total", stats.bytes_in.load(Relaxed)),
        ("bytes_out_total", stats.bytes_out.load(Relaxed)),
        ("dropped_by_injection_total", dropped),
    ] {
        assert_eq!(
            sample(&m, &format!("target_server_{name}")),
            value,
            "{name}"
        );
    }
    assert!(
        dropped > 0 && dropped < 80,
        "about half of 80 deliveries dropped: {dropped}"
    );
    assert_eq!(sample(&m, "target_server_rooms"), 1);
    assert!(text.contains("# TYPE target_server_dropped_by_injection counter"));
    for cause in CloseCause::ALL {
        let key = format!(
            "target_server_connections_closed_total{{cause=\"{}\"}}",
            cause.label()
        );
        assert_eq!(sample(&m, &key), stats.closes(cause), "{key}");
    }
    for name in [
        "refused_connections_total",
        "slow_consumers_total",
        "heartbeat_timeouts_total",
        "recovered_sessions_total",
        "replayed_packets_total",
    ] {
        assert_eq!(sample(&m, &format!("target_server_{name}")), 0, "{name}");
    }

    stats_json_agrees(server.addr, &m, dropped).await;
}

/// /stats.json reports the same numbers as /metrics (`m`).
async fn stats_json_agrees(addr: std::net::SocketAddr, m: &HashMap<String, f64>, dropped: u64) {
    let json = get_ok(addr, "/stats.json").await;
    assert_eq!(json.header("content-type"), "application/json");
    let v = json.json();
    assert_eq!(
        v["messages_in"],
        sample(m, "target_server_messages_in_total")
    );
    assert_eq!(
        v["messages_out"],
        sample(m, "target_server_messages_out_total")
    );
    assert_eq!(v["dropped_by_injection"], dropped);
    assert_eq!(v["connections_open"], 2);
    assert_eq!(v["rooms"], 1);
    assert_eq!(v["largest_rooms"][0]["name"], "ws:m");
    assert_eq!(v["largest_rooms"][0]["members"], 1);
}

#[tokio::test]
async fn status_page_is_html_with_an_inline_favicon() {
    let server = Server::start(Config::default()).await;
    let got = get_ok(server.addr, "/").await;
    assert_eq!(got.status, 200);
    assert!(
        got.header("content-type").starts_with("text/html"),
        "{}",
        got.header("content-type")
    );
    let html = got.text();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("<link rel=\"icon\" href=\"data:"),
        "inline favicon"
    );
    assert!(
        html.contains("/ws/stats"),
        "the page subscribes to the push channel"
    );
    assert!(
        html.contains("id=\"connections\""),
        "the connection count element"
    );
    assert!(!html.contains("<script src"), "no external script");
    assert_eq!(get_ok(server.addr, "/no-such-page").await.status, 404);
}

#[tokio::test]
async fn ws_stats_pushes_snapshots_that_follow_connections() {
    let server = Server::start(Config::default()).await;
    let mut viewer = ws_connect(server.addr, "/ws/stats").await;
    let first = snapshot_where(&mut viewer, "any snapshot", |_| true).await;
    assert_eq!(
        first["connections_open"], 0,
        "the viewer does not count itself"
    );
    assert_eq!(
        first["connections"].as_array().map(Vec::len),
        Some(5),
        "one row per protocol/transport"
    );

    let client = ws_connect(server.addr, "/ws/room/watch").await;
    let during = snapshot_where(&mut viewer, "1 open connection", |v| {
        v["connections_open"] == 1
    })
    .await;
    let raw = during["connections"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["protocol"] == "ws"))
        .cloned()
        .expect("ws row");
    assert_eq!(raw["transport"], "websocket");
    assert_eq!(raw["open"], 1);
    assert_eq!(during["largest_rooms"][0]["name"], "ws:watch");

    drop(client);
    let after = snapshot_where(&mut viewer, "0 open connections", |v| {
        v["connections_open"] == 0
    })
    .await;
    assert_eq!(
        after["closes"]["transport_error"].as_u64().unwrap()
            + after["closes"]["client_close"].as_u64().unwrap(),
        1
    );
    assert_eq!(after["rooms"], 0);
    assert!(after["uptime_s"].as_f64().unwrap() >= first["uptime_s"].as_f64().unwrap());
}

#[tokio::test]
async fn stats_json_has_every_field_of_the_status_page() {
    let server = Server::start(Config::default()).await;
    let v = get_ok(server.addr, "/stats.json").await.json();
    for key in [
        "uptime_s",
        "connections_open",
        "connections",
        "messages_in",
        "messages_out",
        "bytes_in",
        "bytes_out",
        "messages_in_per_s",
        "messages_out_per_s",
        "bytes_in_per_s",
        "bytes_out_per_s",
        "closes",
        "heartbeat_timeouts",
        "dropped_by_injection",
        "slow_consumers",
        "refused_connections",
        "recovered_sessions",
        "replayed_packets",
        "outbound_queue_peak",
        "rooms",
        "largest_rooms",
    ] {
        assert!(v.get(key).is_some(), "/stats.json lacks {key}: {v}");
    }
    let labels: Vec<(String, String)> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap().into(),
                r["transport"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = Proto::ALL
        .iter()
        .map(|p| (p.labels().0.to_string(), p.labels().1.to_string()))
        .collect();
    assert_eq!(labels, want);
}

#[tokio::test]
async fn ws_stats_closes_with_1001_on_shutdown() {
    let server = Server::start(Config::default()).await;
    let mut viewer = ws_connect(server.addr, "/ws/stats").await;
    snapshot_where(&mut viewer, "any snapshot", |_| true).await;
    let stopping = tokio::spawn(server.stop());
    let end = timeout(STEP, async {
        loop {
            match viewer.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("close within 5 s");
    assert_eq!(end, Some(1001));
    stopping.await.unwrap();
}
