//! `rust_socketio` 0.6 (async), a third-party Rust client, against our server.
//!
//! Receives: `target_server::serve` on 127.0.0.1:0. Emits: assertions on what the client
//! hands its callbacks: `emit_with_ack` acks, `echo` events (text and binary) on each of the
//! client's transports (polling then upgrade, polling only, websocket only), join acks and
//! room broadcasts received through `.on("broadcast")`.
//! Must not: wait without a bound; every callback forwards into a channel read with a timeout.
//!
//! rust_socketio's shapes, as its 0.6 source defines them: an ack reaches the callback as
//! `Payload::Text(vec![<the ack's JSON array>])`; an event's arguments as
//! `Payload::Text(args)`; a binary event's attachment as `Payload::Binary`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::json;
use target_server::Config;
use testkit::Target;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

const WAIT: Duration = Duration::from_secs(10);

/// A callback that forwards every payload into `tx`.
fn forward(
    tx: UnboundedSender<Payload>,
) -> impl FnMut(Payload, Client) -> BoxFuture<'static, ()> + Send + Sync + 'static {
    move |payload, _client| {
        let _ = tx.send(payload);
        Box::pin(async {})
    }
}

async fn next(rx: &mut UnboundedReceiver<Payload>, what: &str) -> Payload {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{what}: channel closed"))
}

/// Emits `event` with `data` and an ack, returns the ack's payload.
async fn ack(client: &Client, event: &str, data: impl Into<Payload>) -> Payload {
    let (tx, mut rx) = unbounded_channel();
    client
        .emit_with_ack(event, data, WAIT, forward(tx))
        .await
        .expect("emit_with_ack");
    next(&mut rx, &format!("ack of {event}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_ack_and_events() {
    let server = Target::start(Config::default());
    for (name, transport) in [
        ("polling then websocket", TransportType::Any),
        ("polling", TransportType::Polling),
        ("websocket", TransportType::Websocket),
    ] {
        eprintln!("rust_socketio over {name}");
        echo_over(&format!("{}/", server.http_url()), transport).await;
    }
}

/// Echo round trips over one transport (the test's stderr names which one failed).
async fn echo_over(url: &str, transport: TransportType) {
    let (echo_tx, mut echoes) = unbounded_channel();
    let client = ClientBuilder::new(url)
        .transport_type(transport)
        .reconnect(false)
        .on("echo", forward(echo_tx))
        .connect()
        .await
        .expect("rust_socketio connects");

    // One argument, acked with exactly that argument.
    let one = json!({"hello": "world", "n": [1, 2, 3], "nested": {"ok": true}});
    assert_eq!(
        ack(&client, "echo", one.clone()).await,
        Payload::Text(vec![json!([one])])
    );
    // Three arguments come back as the ack's three arguments.
    let three = vec![json!("a"), json!(2), json!({"b": [true, null]})];
    assert_eq!(
        ack(&client, "echo", three.clone()).await,
        Payload::Text(vec![json!(three)])
    );

    // Without an ack the server emits `echo` back with the same arguments.
    client.emit("echo", json!("no-ack ✓")).await.expect("emit");
    assert_eq!(
        next(&mut echoes, "echo event").await,
        Payload::Text(vec![json!("no-ack ✓")])
    );
    // Binary: rust_socketio sends a BINARY_EVENT with one attachment and needs the reply's
    // placeholder written exactly as the Node parser writes it.
    let bytes = Bytes::from_static(&[0, 1, 2, 254, 255]);
    client
        .emit("echo", Payload::Binary(bytes.clone()))
        .await
        .expect("emit binary");
    assert_eq!(
        next(&mut echoes, "binary echo event").await,
        Payload::Binary(bytes)
    );

    client.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_broadcast_reach_every_member() {
    let server = Target::start(Config::default());
    let url = format!("{}/", server.http_url());
    let room = "rust-socketio-room";
    let mut clients = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = unbounded_channel();
        let client = ClientBuilder::new(url.clone())
            .reconnect(false)
            .on("broadcast", forward(tx))
            .connect()
            .await
            .expect("rust_socketio connects");
        clients.push(client);
        inboxes.push(rx);
    }
    let (outsider_tx, mut outsider) = unbounded_channel();
    let outside = ClientBuilder::new(url.clone())
        .reconnect(false)
        .on("broadcast", forward(outsider_tx))
        .connect()
        .await
        .expect("rust_socketio connects");

    for (i, client) in clients.iter().enumerate() {
        let members = i + 1;
        assert_eq!(
            ack(client, "join", json!(room)).await,
            Payload::Text(vec![json!([{"room": room, "members": members}])])
        );
    }
    let data = json!({"msg": "hi", "seq": 1});
    let recipients = ack(&clients[0], "broadcast", vec![json!(room), data.clone()]).await;
    assert_eq!(recipients, Payload::Text(vec![json!([2])]));
    for (i, inbox) in inboxes.iter_mut().enumerate() {
        assert_eq!(
            next(inbox, &format!("broadcast at member {i}")).await,
            Payload::Text(vec![data.clone()])
        );
    }

    // After a leave, only the remaining member gets the next broadcast.
    assert_eq!(
        ack(&clients[1], "leave", json!(room)).await,
        Payload::Text(vec![json!([{"room": room, "members": 1}])])
    );
    let later = json!("second");
    assert_eq!(
        ack(&outside, "broadcast", vec![json!(room), later.clone()]).await,
        Payload::Text(vec![json!([1])])
    );
    assert_eq!(
        next(&mut inboxes[0], "broadcast after leave").await,
        Payload::Text(vec![later])
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        inboxes[1].try_recv().is_err(),
        "a member that left still got the broadcast"
    );
    assert!(
        outsider.try_recv().is_err(),
        "a non-member got the broadcast"
    );

    for client in clients.iter().chain([&outside]) {
        client.disconnect().await.expect("disconnect");
    }
}
