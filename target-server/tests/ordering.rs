//! Ordering and latency of the default namespace's application events (issue 2 "Tests"):
//! sequenced broadcasts arrive in order at every subscriber, acks come back in order, two
//! back-to-back emits are not held apart by Nagle, and the exact semantics of `echo`,
//! `join`, `leave` and `broadcast`.

mod common;

use std::time::Duration;

use common::*;
use protocol::socketio::PacketType;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const BROADCASTS: u64 = 10_000;
const SUBSCRIBERS: usize = 5;
/// Broadcasts in flight before the publisher waits for every subscriber to catch up, so a
/// slow test subscriber never trips the server's slow-consumer limit.
const WINDOW: u64 = 500;

/// A subscriber: reads `broadcast` events until it has `BROADCASTS` of them, checking each
/// carries the next sequence number; reports progress on `progress`.
async fn subscribe(mut sio: Sio, progress: watch::Sender<u64>) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next = 0u64;
    while next < BROADCASTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((p, _)) = sio.recv(left.min(Duration::from_secs(10))).await else {
            return Err(format!("stalled after {next} broadcasts"));
        };
        if p.event_name() != Some("broadcast") {
            return Err(format!("unexpected packet {p:?}"));
        }
        let seq = p.args().first().and_then(Value::as_u64);
        if seq != Some(next) {
            return Err(format!("expected seq {next}, got {:?}", p.args()));
        }
        next += 1;
        if next.is_multiple_of(100) || next == BROADCASTS {
            let _ = progress.send(next);
        }
    }
    Ok(next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_broadcasts_arrive_in_order_at_every_subscriber() {
    let server = Server::start(target_server::Config::default()).await;
    let mut progress = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut sio = Sio::connect(server.addr).await;
        assert_eq!(
            sio.join("ordered", 1).await,
            i as u64 + 1,
            "members after join {i}"
        );
        let (tx, rx) = watch::channel(0u64);
        progress.push(rx);
        tasks.push(tokio::spawn(subscribe(sio, tx)));
    }

    let mut publisher = Sio::connect(server.addr).await;
    let mut sent = 0u64;
    while sent < BROADCASTS {
        let end = (sent + WINDOW).min(BROADCASTS);
        let frames: Vec<Message> = (sent..end)
            .map(|i| Message::text(event_text("broadcast", &[json!("ordered"), json!(i)], None)))
            .collect();
        publisher.ws.send_batch(frames).await;
        sent = end;
        for (i, rx) in progress.iter_mut().enumerate() {
            let caught_up =
                tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|&n| n >= sent))
                    .await
                    .is_ok_and(|r| r.is_ok());
            assert!(
                caught_up,
                "subscriber {i} did not reach {sent} (at {})",
                *rx.borrow()
            );
        }
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let got = t.await.expect("subscriber task");
        assert_eq!(got, Ok(BROADCASTS), "subscriber {i}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_acks_arrive_in_order() {
    let server = Server::start(target_server::Config::default()).await;
    let mut sio = Sio::connect(server.addr).await;
    let frames: Vec<Message> = (0..1000u64)
        .map(|i| Message::text(event_text("echo", &[json!(i), json!({"n": i})], Some(i))))
        .collect();
    sio.ws.send_batch(frames).await;
    for i in 0..1000u64 {
        let (p, _) = sio.recv_ok(Duration::from_secs(10)).await;
        assert_eq!(p.kind, PacketType::Ack, "packet {i}: {p:?}");
        assert_eq!(p.id, Some(i), "ack order");
        assert_eq!(p.args(), &[json!(i), json!({"n": i})], "ack {i} arguments");
    }
    server.stop().await;
}

/// Two emits written back to back come back less than 5 ms apart (TCP_NODELAY on both ends;
/// Nagle would hold the second ~40 ms). Median of 20 pairs, so one scheduler hiccup on a
/// shared machine does not decide the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_emits_arrive_less_than_5ms_apart() {
    let server = Server::start(target_server::Config::default()).await;
    let mut sio = Sio::connect(server.addr).await;
    let mut gaps = Vec::new();
    for pair in 0..20u64 {
        sio.emit("echo", &[json!(pair), json!("a")], None).await;
        sio.emit("echo", &[json!(pair), json!("b")], None).await;
        let (first, _) = sio.recv_ok(FRAME_TIMEOUT).await;
        let t1 = Instant::now();
        let (second, _) = sio.recv_ok(FRAME_TIMEOUT).await;
        gaps.push(t1.elapsed());
        assert_eq!(first.args(), &[json!(pair), json!("a")]);
        assert_eq!(second.args(), &[json!(pair), json!("b")]);
    }
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "median gap {median:?}, all {gaps:?}"
    );
    server.stop().await;
}

/// `echo` byte for byte: with an ack id the ack carries exactly the arguments (0, one
/// array, three, binary); without, `echo` comes back with the same arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_acks_and_emits_exactly_the_arguments() {
    let server = Server::start(target_server::Config::default()).await;
    let (mut ws, _) = open_ws(server.addr, "/socket.io/").await;
    ws.send_text("40").await;
    match ws.recv_skipping_pings(FRAME_TIMEOUT).await {
        Frame::Text(t) if t.starts_with("40{") => {}
        other => panic!("expected the CONNECT reply, got {other:?}"),
    }
    let text_cases = [
        (r#"421["echo"]"#, r#"431[]"#),
        (r#"422["echo",[1,2,3]]"#, r#"432[[1,2,3]]"#),
        (
            r#"423["echo",1,"two",{"three":[3]}]"#,
            r#"433[1,"two",{"three":[3]}]"#,
        ),
        (r#"42["echo","hi",2]"#, r#"42["echo","hi",2]"#),
        (r#"42["echo"]"#, r#"42["echo"]"#),
    ];
    for (send, expect) in text_cases {
        ws.send_text(send).await;
        assert_eq!(
            ws.recv_skipping_pings(FRAME_TIMEOUT).await,
            Frame::Text(expect.into()),
            "reply to {send}"
        );
    }
    let binary_cases = [
        (
            r#"451-4["echo",{"_placeholder":true,"num":0}]"#,
            r#"461-4[{"_placeholder":true,"num":0}]"#,
        ),
        (
            r#"451-["echo",{"_placeholder":true,"num":0}]"#,
            r#"451-["echo",{"_placeholder":true,"num":0}]"#,
        ),
    ];
    for (send, expect) in binary_cases {
        ws.send_text(send).await;
        ws.send_binary(&[9, 8, 7]).await;
        assert_eq!(
            ws.recv_skipping_pings(FRAME_TIMEOUT).await,
            Frame::Text(expect.into()),
            "reply to {send}"
        );
        assert_eq!(
            ws.recv_skipping_pings(FRAME_TIMEOUT).await,
            Frame::Binary(vec![9, 8, 7]),
            "attachment of {send}"
        );
    }
    ws.close().await;
    server.stop().await;
}

/// `join`/`leave` ack `{"room":..,"members":n}`; `broadcast` reaches every member (the
/// sender too when it is one) and acks with the number of recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_and_broadcast_semantics() {
    let server = Server::start(target_server::Config::default()).await;
    let mut a = Sio::connect(server.addr).await;
    let mut b = Sio::connect(server.addr).await;
    let mut outsider = Sio::connect(server.addr).await;

    assert_eq!(
        a.call("join", &[json!("r")], 1).await,
        vec![json!({"room": "r", "members": 1})]
    );
    assert_eq!(
        b.call("join", &[json!("r")], 1).await,
        vec![json!({"room": "r", "members": 2})]
    );

    // A member broadcasts: both members get it, the ack says 2.
    a.emit(
        "broadcast",
        &[json!("r"), json!("x"), json!({"y": [1]})],
        Some(2),
    )
    .await;
    let mut got_event = false;
    let mut got_ack = false;
    while !(got_event && got_ack) {
        let (p, _) = a.recv_ok(FRAME_TIMEOUT).await;
        match p.kind {
            PacketType::Event => {
                assert_eq!(p.event_name(), Some("broadcast"));
                assert_eq!(p.args(), &[json!("x"), json!({"y": [1]})]);
                got_event = true;
            }
            PacketType::Ack => {
                assert_eq!((p.id, p.args()), (Some(2), &[json!(2)][..]));
                got_ack = true;
            }
            _ => panic!("unexpected {p:?}"),
        }
    }
    let (p, _) = b.recv_ok(FRAME_TIMEOUT).await;
    assert_eq!(
        (p.event_name(), p.args()),
        (Some("broadcast"), &[json!("x"), json!({"y": [1]})][..])
    );

    // A non-member broadcasts: it does not receive it, both members do.
    assert_eq!(
        outsider.call("broadcast", &[json!("r"), json!(7)], 3).await,
        vec![json!(2)]
    );
    for (name, c) in [("a", &mut a), ("b", &mut b)] {
        let (p, _) = c.recv_ok(FRAME_TIMEOUT).await;
        assert_eq!(
            (p.event_name(), p.args()),
            (Some("broadcast"), &[json!(7)][..]),
            "member {name}"
        );
    }

    // b leaves: one member left, b no longer receives.
    assert_eq!(
        b.call("leave", &[json!("r")], 4).await,
        vec![json!({"room": "r", "members": 1})]
    );
    assert_eq!(
        outsider.call("broadcast", &[json!("r"), json!(8)], 5).await,
        vec![json!(1)]
    );
    let (p, _) = a.recv_ok(FRAME_TIMEOUT).await;
    assert_eq!(p.args(), &[json!(8)]);
    assert!(
        b.recv(Duration::from_millis(200)).await.is_none(),
        "b got a broadcast after leaving"
    );

    // Empty room.
    assert_eq!(
        outsider
            .call("broadcast", &[json!("nobody-here"), json!(1)], 6)
            .await,
        vec![json!(0)]
    );
    server.stop().await;
}
