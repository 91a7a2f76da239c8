//! `swarm heartbeat` end to end against target-server in-process (ping interval 1 s,
//! timeout 500 ms): the observed cadence, muted clients closed pingInterval + pingTimeout
//! after their last answered ping (checked against the server's own count of ping
//! timeouts), no false timeouts without load; raw WS pings, client pings and a muted
//! client; the client-side deadline against a server that stops pinging.

mod common;

use std::time::Duration;

use common::{E2e, plan_for, run};
use target_server::stats::CloseCause;

const MS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_cadence_and_muted_clients() {
    let e2e = E2e::start(target_server::Config {
        ping_interval: Duration::from_secs(1),
        ping_timeout: Duration::from_millis(500),
        ..Default::default()
    });
    let url = format!("http://{}/", e2e.addr());
    let args = [
        "heartbeat",
        &url,
        "--clients",
        "20",
        "--mute",
        "0.25@1700ms",
        "--duration",
        "3500ms",
    ];
    let finished = e2e.run(&args).await;
    let h = finished
        .run
        .run
        .heartbeat
        .clone()
        .expect("heartbeat section");
    assert_eq!(h.advertised_ping_interval_ms, Some(1000));
    assert_eq!(h.advertised_ping_timeout_ms, Some(500));
    // Median ping-to-ping interval within 5% of the advertised second (the server re-arms
    // its ping timer after each pong, as Node does, so a loaded machine's round trips add
    // to it: 1,042 ms was seen with a load average of 5.5 on two cores).
    let intervals = h.ping_interval.expect("intervals");
    assert!(intervals.count >= 15, "{intervals:?}");
    assert!(
        (950 * MS..=1050 * MS).contains(&intervals.p50_us),
        "median interval {} us",
        intervals.p50_us
    );
    assert_eq!(h.ping_interval_deviation.count, intervals.count);
    // Every 4th client muted at 1.7 s: closed 1.5 s after its last answered ping (±100 ms),
    // which is 0.5 to 1.5 s after muting.
    assert_eq!((h.muted, h.muted_closes, h.muted_never_closed), (5, 5, 0));
    let after_pong = h
        .muted_close_after_last_pong
        .expect("close after last pong");
    assert!(
        after_pong.min_us >= 1400 * MS && after_pong.max_us <= 1600 * MS,
        "{after_pong:?}"
    );
    let after_mute = h.muted_close_delay.expect("close after mute");
    assert!(
        after_mute.min_us >= 500 * MS && after_mute.max_us <= 1500 * MS,
        "{after_mute:?}"
    );
    // The server's own count agrees with the inference.
    assert_eq!(e2e.server.shared.stats.closes(CloseCause::PingTimeout), 5);
    assert_eq!((h.false_timeouts, h.client_timeouts), (0, 0));
    let d = &finished.run.run.disconnects;
    assert_eq!(d.get("client_close"), Some(&15));
    assert_eq!(d.values().sum::<u64>(), 20, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_pings_client_pings_and_a_muted_client() {
    let e2e = E2e::start(target_server::Config {
        ws_ping_interval: Some(Duration::from_millis(500)),
        ws_ping_timeout: Duration::from_millis(500),
        ..Default::default()
    });
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let args = [
        "heartbeat",
        &url,
        "--clients",
        "10",
        "--ping-interval",
        "500ms",
        "--client-ping-interval",
        "200ms",
        "--mute",
        "0.2@1s",
        "--duration",
        "3s",
    ];
    let finished = e2e.run(&args).await;
    let h = finished.run.run.heartbeat.expect("heartbeat section");
    let intervals = h.ping_interval.expect("intervals");
    assert!(
        (480 * MS..=560 * MS).contains(&intervals.p50_us),
        "{intervals:?}"
    );
    let rtt = h.pong_rtt.expect("client ping round trips");
    assert!(rtt.count >= 60, "{rtt:?}");
    // A muted client stops answering: the server closes it (silently: EOF).
    assert_eq!((h.muted, h.muted_closes, h.muted_never_closed), (2, 2, 0));
    assert_eq!(e2e.server.shared.stats.closes(CloseCause::PingTimeout), 2);
    assert_eq!(h.false_timeouts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_clients_do_not_reconnect() {
    let e2e = E2e::start(target_server::Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..Default::default()
    });
    let url = format!("http://{}/", e2e.addr());
    // Everyone muted: the server closes them all, none is a false timeout, and muted
    // clients stay closed even with --reconnect.
    let args = [
        "heartbeat",
        &url,
        "--clients",
        "4",
        "--mute",
        "1@100ms",
        "--reconnect",
        "--reconnect-delay",
        "100ms",
        "--duration",
        "1500ms",
    ];
    let finished = e2e.run(&args).await;
    let h = finished.run.run.heartbeat.expect("heartbeat section");
    assert_eq!((h.muted, h.muted_closes), (4, 4));
    assert_eq!(finished.run.run.connect.connected, 4, "no reconnects");
    assert_eq!((h.client_timeouts, h.false_timeouts), (0, 0));
}

/// An Engine.IO server that advertises a 200 ms / 100 ms heartbeat and never pings.
async fn silent_server() -> std::net::SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..50 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let open = r#"0{"sid":"s","upgrades":[],"pingInterval":200,"pingTimeout":100,"maxPayload":1000000}"#;
                let _ = ws.send(Message::text(open)).await;
                // Answer the CONNECT, then read (and ignore) until the client goes away,
                // bounded to 5 s.
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.to_text().is_ok_and(|t| t.starts_with("40")) {
                            let _ = ws.send(Message::text(r#"40{"sid":"x"}"#)).await;
                        }
                    }
                })
                .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadline_against_a_silent_server() {
    let addr = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let args = [
        "heartbeat",
        &url,
        "--clients",
        "2",
        "--reconnect",
        "--reconnect-delay",
        "100ms",
        "--duration",
        "1s",
        "--grace",
        "100ms",
    ];
    let finished = run(plan_for(&args, dir.path())).await;
    let h = finished.run.run.heartbeat.expect("heartbeat section");
    // No ping within 300 ms: the client gives up, waits 100 ms, reconnects; about 2 per
    // client in 1 s.
    assert!(h.client_timeouts >= 3, "{h:?}");
    assert_eq!(
        finished.run.run.disconnects.get("client_deadline"),
        Some(&h.client_timeouts)
    );
    assert!(finished.run.run.connect.connected > 2, "reconnected");
    assert_eq!((h.pings, h.false_timeouts), (0, 0));
}
