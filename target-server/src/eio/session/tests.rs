//! Unit tests of the session state machine: slow-consumer closes, packet routing, the
//! hand-over to a busy application, the upgrade's gauges.
//!
//! Receives: sessions opened on a private registry and `Stats`. Emits: nothing but test
//! results. Must not: touch the network.

use super::*;

fn session(
    max_queue: usize,
) -> (
    Arc<Session>,
    Arc<Stats>,
    Arc<Registry>,
    mpsc::Receiver<Inbound>,
) {
    let stats = Arc::new(Stats::new());
    let registry = Arc::new(Registry::default());
    let (itx, irx) = mpsc::channel(4);
    let s = Session::open(
        1,
        "abc".into(),
        Labels::ENGINEIO,
        Transport::Websocket,
        max_queue,
        Some(itx),
        stats.clone(),
        registry.clone(),
    );
    (s, stats, registry, irx)
}

#[tokio::test]
async fn full_queue_closes_as_slow_consumer_and_counts_once() {
    let (s, stats, registry, _irx) = session(2);
    assert_eq!(stats.connections(Proto::EngineioWebsocket), 1);
    assert!(s.push(Frame::text_static("4a"), None));
    assert!(s.push(Frame::text_static("4b"), None));
    assert_eq!(s.queued(), 2);
    assert!(
        !s.push(Frame::text_static("4c"), None),
        "third push overflows max_queue 2"
    );
    assert!(s.is_closed());
    assert_eq!(s.cause(), Some(CloseCause::SlowConsumer));
    assert_eq!(stats.closes(CloseCause::SlowConsumer), 1);
    assert_eq!(stats.connections(Proto::EngineioWebsocket), 0);
    assert!(lock(&registry).is_empty(), "closed session unregistered");
    assert!(!s.close(CloseCause::PingTimeout), "second close is a no-op");
    assert_eq!(stats.closes(CloseCause::PingTimeout), 0);
}

#[tokio::test]
async fn queued_bytes_close_a_slow_consumer_and_are_counted() {
    let (s, stats, _registry, _irx) = session(100);
    s.limit_queue_bytes(10);
    let big = Frame::Text("4".repeat(25).into());
    assert!(s.push(big, None), "an empty queue takes one message");
    assert_eq!(s.queued_bytes(), 25);
    let out = s.outbox.try_lock().unwrap().try_recv().unwrap();
    s.taken(&out);
    assert_eq!(s.queued_bytes(), 0);
    assert!(s.push(Frame::text_static("4abcd"), None));
    assert!(s.push(Frame::text_static("4abcd"), None));
    assert!(!s.push(Frame::text_static("4"), None), "11 bytes > 10");
    assert_eq!(s.cause(), Some(CloseCause::SlowConsumer));
    assert_eq!(stats.limit_hits(Limit::QueueBytes), 1);
}

#[tokio::test]
async fn packets_route_to_app_heartbeat_or_close() {
    let (s, stats, _registry, mut irx) = session(8);
    let Step::Deliver(msg) = s.on_packet(EioPacket::Message("2[\"x\"]".into())) else {
        panic!("a message goes to the app")
    };
    assert!(s.to_app(msg).await);
    match irx.try_recv() {
        Ok(Inbound::Text(t)) => assert_eq!(t.as_str(), "2[\"x\"]"),
        other => panic!("expected text inbound, got {other:?}"),
    }
    assert!(matches!(
        s.on_packet(EioPacket::Pong { probe: false }),
        Step::Continue
    ));
    assert!(matches!(s.on_packet(EioPacket::Noop), Step::Continue));
    assert!(
        matches!(s.on_packet(EioPacket::Ping { probe: false }), Step::Stop),
        "client ping closes"
    );
    assert_eq!(stats.closes(CloseCause::ProtocolError), 1);
}

#[tokio::test]
async fn a_full_app_queue_hands_the_message_back() {
    let (s, _stats, _registry, mut irx) = session(8);
    for i in 0..4 {
        assert!(matches!(
            s.try_to_app(Inbound::Text(i.to_string().into())),
            Ok(true)
        ));
    }
    let Err(Inbound::Text(back)) = s.try_to_app(Inbound::Text("5".into())) else {
        panic!("app queue of 4 is full")
    };
    assert_eq!(back.as_str(), "5");
    irx.recv().await.expect("first");
    assert!(matches!(s.try_to_app(Inbound::Text(back)), Ok(true)));
}

#[tokio::test]
async fn upgrade_moves_the_gauge() {
    let stats = Arc::new(Stats::new());
    let registry = Arc::new(Registry::default());
    let (itx, _irx) = mpsc::channel(1);
    let s = Session::open(
        2,
        "p".into(),
        Labels::ENGINEIO,
        Transport::Polling,
        4,
        Some(itx),
        stats.clone(),
        registry,
    );
    assert_eq!(stats.connections(Proto::EngineioPolling), 1);
    assert!(s.switch_to_websocket());
    assert_eq!(stats.connections(Proto::EngineioPolling), 0);
    assert_eq!(stats.connections(Proto::EngineioWebsocket), 1);
    s.close(CloseCause::ClientClose);
    assert_eq!(stats.connections(Proto::EngineioWebsocket), 0);
}
