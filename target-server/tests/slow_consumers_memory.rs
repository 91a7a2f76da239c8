//! Memory under slow consumers: 1,000 raw WebSocket room members and 1,000 Socket.IO
//! polling room members that never read, each sent 1 MB broadcasts, against the
//! `target-server` binary with its default limits (only `--max-payload 2MB`, so that a
//! 1 MB Socket.IO broadcast is accepted). Every consumer must be closed as a slow consumer
//! and counted (`limit_exceeded{limit="queue_bytes"}`), and the server's peak RSS
//! (`VmHWM` of `/proc/PID/status`) must stay under [`RSS_BOUND_KIB`].
//!
//! Where the memory goes: a broadcast is one shared buffer for every recipient, and a
//! queue holds at most `--max-queue-bytes` (8 MiB) of them, so the queues of 1,000 polling
//! consumers share about 9 buffers. A raw WebSocket consumer additionally holds, in its
//! WebSocket writer, the unsent rest of the frame it is stuck in (a copy made when the
//! frame is encoded): up to 1 MB each, about 1 GB for 1,000. Measured on the 2-core
//! reference machine: peak RSS about 1.0 GiB after the raw phase and no growth in the
//! polling phase (see README "Server limits"); the bound is 1.5 GiB.
//!
//! Must not: run past a minute (every loop is bounded in count and time), or leave the
//! server running (killed by PID on drop).

mod common;

use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use serde_json::json;
use tokio::time::Instant;

const CONSUMERS: usize = 1000;
const MB: usize = 1_000_000;
/// Peak server RSS allowed over both phases (KiB).
const RSS_BOUND_KIB: u64 = 1536 * 1024;

async fn metric(addr: std::net::SocketAddr, line_prefix: &str) -> u64 {
    // Generous: fanning 1 MB out to 1,000 sockets keeps the 2 cores busy for a while.
    let text = request(addr, "GET", "/metrics", b"", None, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_prefix} in /metrics"))
}

async fn slow_closed(addr: std::net::SocketAddr) -> u64 {
    metric(
        addr,
        "target_server_limit_exceeded_total{limit=\"queue_bytes\"} ",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_slow_consumers_are_closed_and_rss_stays_bounded() {
    let _ = target_server::net::raise_fd_limit();
    let server = testkit::target_server_process(
        env!("CARGO_BIN_EXE_target-server"),
        &["--max-payload", "2MB"],
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    let started = Instant::now();
    let (rss0, _) = server.rss_kib();

    // Raw WebSocket: 1,000 members of /ws/room/mem that never read.
    let mut raw = Vec::with_capacity(CONSUMERS);
    for _ in 0..CONSUMERS / 100 {
        let batch = join_all((0..100).map(|_| Ws::open(addr, "/ws/room/mem"))).await;
        raw.extend(batch);
    }
    let mut publisher = Ws::open(addr, "/ws/room/mem?self=0").await;
    let frame = vec![b'x'; MB];
    let mut sent = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while slow_closed(addr).await < CONSUMERS as u64 && Instant::now() < end && sent < 40 {
        publisher.send_binary(&frame).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let raw_closed = slow_closed(addr).await;
    let (_, raw_peak) = server.rss_kib();
    drop(raw);
    publisher.close().await;

    // Socket.IO polling: 1,000 sessions that join room `mem` and never poll.
    let join = |_| async move {
        let (sid, _) = open_polling(addr, "/socket.io/").await;
        let path = polling_path("/socket.io/", &sid);
        assert_eq!(post_ok(addr, &path, "40").await.status, 200);
        assert_eq!(
            post_ok(addr, &path, r#"42["join","mem"]"#).await.status,
            200
        );
    };
    for _ in 0..CONSUMERS / 100 {
        join_all((0..100).map(join)).await;
    }
    let mut sio = Sio::connect(addr).await;
    let payload = "y".repeat(MB);
    let mut emitted = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while slow_closed(addr).await < 2 * CONSUMERS as u64 && Instant::now() < end && emitted < 40 {
        emitted += 1;
        sio.call("broadcast", &[json!("mem"), json!(payload)], emitted)
            .await;
    }
    let total_closed = slow_closed(addr).await;
    let (rss, peak) = server.rss_kib();
    eprintln!(
        "slow consumers: rss start {rss0} KiB, peak after raw phase {raw_peak} KiB ({sent} frames), \
         now {rss} KiB, peak {peak} KiB ({emitted} broadcasts), {:?}",
        started.elapsed()
    );
    assert_eq!(
        raw_closed, CONSUMERS as u64,
        "raw WS consumers closed ({sent} frames)"
    );
    assert_eq!(
        total_closed,
        2 * CONSUMERS as u64,
        "polling consumers closed ({emitted} broadcasts)"
    );
    let slow = metric(addr, "target_server_slow_consumers_total ").await;
    assert!(slow >= 2 * CONSUMERS as u64, "slow_consumers {slow}");
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB over the bound {RSS_BOUND_KIB} KiB"
    );
}
