//! The swarm's own overhead, gross bound only (the figure itself comes from
//! `cargo bench --bench overhead`, in docs/PERFORMANCE.md): one client, raw `/ws/echo`,
//! the swarm's `service` p50 against a minimal tokio-tungstenite client's p50, paced alike,
//! against the same server in the same test. A swarm that added milliseconds (a timer in
//! the reply path, Nagle left on, a blocking recorder) fails this; scheduling noise on a
//! shared CI machine does not.

mod common;

use std::time::{Duration, Instant};

use common::{E2e, assert_echo_accounting};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// p50 in µs of `n` paced round trips (one every 2 ms) of a minimal raw WS client.
async fn minimal_p50(addr: std::net::SocketAddr, n: usize) -> u64 {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws/echo"), tcp)
        .await
        .expect("ws handshake");
    let payload = r#"{"sb":1,"c":0,"s":0,"ti":1760000000000000000,"ts":1760000000000000000,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let mut rtts = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        tokio::time::sleep_until(next.into()).await;
        next += Duration::from_millis(2);
        let t = Instant::now();
        ws.send(Message::text(payload)).await.expect("send");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => break,
                Some(Ok(_)) => {}
                other => panic!("echo connection ended: {other:?}"),
            }
        }
        rtts.push(t.elapsed().as_micros() as u64);
    }
    let _ = ws.close(None).await;
    rtts.sort_unstable();
    rtts[n / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_adds_no_gross_overhead_to_a_round_trip() {
    let e2e = E2e::start(target_server::Config::default());
    let minimal = minimal_p50(e2e.addr(), 500).await;
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "1",
            "--rate",
            "500/s",
            "--duration",
            "1s",
        ])
        .await;
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.received >= 450, "{echo:?}");
    let swarm = echo.service.p50_us;
    assert!(
        swarm <= minimal + 2_000,
        "the swarm's service p50 {swarm} µs is more than 2 ms above a minimal client's {minimal} µs"
    );
}
