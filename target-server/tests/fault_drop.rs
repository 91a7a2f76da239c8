//! Fault injection is exact: with `drop_rate: 0.1, seed: 42`, the deliveries clients did
//! not get (broadcasts to room members, echo acks) equal the server's
//! `target_server_dropped_by_injection_total` in `/metrics`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use protocol::socketio::PacketType;
use serde_json::{Value, json};
use target_server::Config;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBERS: usize = 4;
const BROADCASTS: u64 = 500;
const ECHOES: u64 = 500;
/// No packet for this long means the server has written everything it is going to.
const QUIET: Duration = Duration::from_millis(1000);
/// Bound of one collection phase.
const COLLECT_LIMIT: Duration = Duration::from_secs(60);

/// Reads until quiet; returns the sequence numbers of `broadcast` events (in arrival order)
/// and the ids of ACKs.
async fn collect(mut sio: Sio) -> (Vec<u64>, Vec<u64>) {
    let deadline = Instant::now() + COLLECT_LIMIT;
    let (mut seqs, mut acks) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        let Some((p, _)) = sio.recv(QUIET).await else {
            break;
        };
        match p.kind {
            PacketType::Event if p.event_name() == Some("broadcast") => {
                seqs.push(p.args().first().and_then(Value::as_u64).expect("seq"));
            }
            PacketType::Ack => acks.push(p.id.expect("ack id")),
            _ => panic!("unexpected packet {p:?}"),
        }
    }
    (seqs, acks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_count_in_metrics_equals_missing_deliveries() {
    let config = Config {
        drop_rate: 0.1,
        seed: 42,
        ..Config::default()
    };
    let server = Server::start(config).await;

    let mut subscribers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut sio = Sio::connect(server.addr).await;
        // join acks are never dropped
        assert_eq!(sio.join("faulty", 1).await, i as u64 + 1);
        subscribers.push(tokio::spawn(collect(sio)));
    }

    let mut publisher = Sio::connect(server.addr).await;
    let broadcasts =
        (0..BROADCASTS).map(|i| event_text("broadcast", &[json!("faulty"), json!(i)], None));
    let echoes = (0..ECHOES).map(|i| event_text("echo", &[json!(i)], Some(i)));
    publisher
        .ws
        .send_batch(broadcasts.chain(echoes).map(Message::text))
        .await;
    let (own_seqs, acks) = collect(publisher).await;
    assert!(
        own_seqs.is_empty(),
        "publisher is no member but got broadcasts"
    );

    let mut received_broadcasts = 0u64;
    for (i, t) in subscribers.into_iter().enumerate() {
        let (seqs, stray_acks) = t.await.expect("subscriber task");
        assert!(stray_acks.is_empty(), "subscriber {i} got acks");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "subscriber {i}: out of order or duplicated"
        );
        assert!(
            seqs.iter().all(|&s| s < BROADCASTS),
            "subscriber {i}: unknown seq"
        );
        received_broadcasts += seqs.len() as u64;
    }
    let distinct: HashSet<u64> = acks.iter().copied().collect();
    assert_eq!(distinct.len(), acks.len(), "duplicate acks");
    assert!(acks.windows(2).all(|w| w[0] < w[1]), "acks out of order");

    let expected = BROADCASTS * SUBSCRIBERS as u64 + ECHOES;
    let missing = expected - received_broadcasts - acks.len() as u64;

    let metrics = get_ok(server.addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let dropped = metric_value(&text, "target_server_dropped_by_injection_total")
        .unwrap_or_else(|| panic!("no dropped_by_injection metric in:\n{text}"));
    assert_eq!(
        dropped as u64, missing,
        "dropped (metrics) vs missing (clients)"
    );
    // p = 0.1 over 2,500 deliveries: about 250 drops; far from 0 and from all.
    assert!(
        (100..500).contains(&missing),
        "implausible drop count {missing} of {expected}"
    );
    server.stop().await;
}
