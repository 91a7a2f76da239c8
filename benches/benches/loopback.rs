//! End-to-end benches on loopback, target-server in-process (its own runtime, one worker)
//! and the client on another: echo round trips, connect handshakes, broadcast fan-out.
//!
//! Receives: nothing. Emits: criterion results. Must not: open connections without bound:
//! connect benches close every connection they open (the server ends the TCP connection,
//! so TIME_WAIT stays on its side) and their sample counts are small; the fan-out bench
//! opens its 1,001 connections once per group.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use benches::client::{RawEcho, SioEcho, ws_connect};
use benches::server::Server;
use benches::swarm::{self, SwarmEcho};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

const PAYLOAD: &str = r#"{"sb":7,"c":0,"s":0,"ti":1760000000000000000,"ts":1760000000000000000,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn server(config: target_server::Config) -> Server {
    let _ = target_server::net::raise_fd_limit();
    Server::start(config, 1).expect("start target-server")
}

/// Measures `iters` sequential round trips of `rt` on the client runtime.
fn timed<F>(rt: &Runtime, iters: u64, mut one: F) -> Duration
where
    F: AsyncFnMut() -> bool,
{
    rt.block_on(async {
        let t = Instant::now();
        for _ in 0..iters {
            if !one().await {
                panic!("round trip failed");
            }
        }
        t.elapsed()
    })
}

/// One message, one reply, one client, nothing else on the server: the floor under every
/// latency the swarm reports. Raw `/ws/echo` and Socket.IO `echo` with an ack, each through
/// the swarm's own session code (`harness::driver::session`: payload writer, frame
/// templates, ack matching) and through the minimal client of `benches::client`. The
/// difference between the two is the session's share of a round trip (the overhead bench
/// measures the whole swarm, recorder and schedule included).
fn echo_round_trip(c: &mut Criterion) {
    let srv = server(target_server::Config::default());
    let rt = client_runtime();
    let mut g = c.benchmark_group("loopback_echo");
    g.throughput(Throughput::Elements(1));

    let ws_url = srv.ws_echo_url();
    let mut s = rt
        .block_on(SwarmEcho::connect(
            swarm::ctx(&["echo", &ws_url]).expect("ctx"),
        ))
        .expect("swarm ws connect");
    g.bench_function("raw_ws/swarm_session", |b| {
        b.iter_custom(|n| timed(&rt, n, async || s.round_trip().await.is_ok()))
    });
    rt.block_on(s.close());

    let mut m = rt
        .block_on(RawEcho::connect(srv.addr))
        .expect("minimal ws connect");
    g.bench_function("raw_ws/minimal_client", |b| {
        b.iter_custom(|n| timed(&rt, n, async || m.round_trip(PAYLOAD).await.is_ok()))
    });
    rt.block_on(m.close());

    let sio_url = srv.sio_url();
    let mut s = rt
        .block_on(SwarmEcho::connect(
            swarm::ctx(&["echo", &sio_url]).expect("ctx"),
        ))
        .expect("swarm sio connect");
    g.bench_function("socketio_ack/swarm_session", |b| {
        b.iter_custom(|n| timed(&rt, n, async || s.round_trip().await.is_ok()))
    });
    rt.block_on(s.close());

    let mut m = rt
        .block_on(SioEcho::connect(srv.addr))
        .expect("minimal sio connect");
    g.bench_function("socketio_ack/minimal_client", |b| {
        b.iter_custom(|n| timed(&rt, n, async || m.round_trip(PAYLOAD).await.is_ok()))
    });
    rt.block_on(m.close());
    g.finish();
}

/// A whole connect through the swarm's own handshake code (`Session::connect`): TCP +
/// WebSocket upgrade (raw WS); + Engine.IO open + namespace CONNECT `40{sid}` (Socket.IO
/// websocket); HTTP long-polling handshake, CONNECT over POST, then the probe/upgrade dance
/// (Socket.IO polling -> websocket). What a connect ramp costs per client, and where
/// handshake regressions show. Only the connect is timed; each connection is then closed
/// by the swarm's orderly close before the next one opens.
fn connect_handshake(c: &mut Criterion) {
    let srv = server(target_server::Config::default());
    let rt = client_runtime();
    let mut g = c.benchmark_group("connect");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let cases = [
        ("raw_ws", vec!["connect".to_string(), srv.ws_echo_url()]),
        (
            "socketio_websocket",
            vec!["connect".to_string(), srv.sio_url()],
        ),
        (
            "socketio_polling_upgrade",
            vec![
                "connect".to_string(),
                srv.sio_url(),
                "--transport".into(),
                "polling".into(),
            ],
        ),
    ];
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ctx = swarm::ctx(&args).expect("ctx");
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..n {
                        let t = Instant::now();
                        let session = swarm::connect(&ctx).await.expect("connect");
                        total += t.elapsed();
                        session.close(&ctx.frames).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

const SUBSCRIBERS: usize = 1000;

/// Counts deliveries of one broadcast; wakes the publisher when the last one is in.
struct Arrivals {
    left: AtomicUsize,
    done: Notify,
}

impl Arrivals {
    fn arrived(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// One broadcast to a room of 1,000 subscribers: from the publisher's send until the last
/// subscriber has read it (Socket.IO `broadcast` event into a joined room, and a raw
/// `/ws/room/{name}` message). Fan-out latency is what `swarm broadcast` reports per
/// delivery; its worst case is set by how fast the server writes one encoded message to
/// many sockets and how fast many sockets are read. Subscribers read on one client worker
/// thread; the server has one worker.
fn broadcast_fanout(c: &mut Criterion) {
    let srv = server(target_server::Config {
        // No heartbeat during the bench: subscribers only read.
        ping_interval: Duration::from_secs(600),
        ping_timeout: Duration::from_secs(600),
        ..target_server::Config::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("broadcast_fanout");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));

    for kind in ["socketio_1000", "raw_ws_1000"] {
        let arrivals = Arc::new(Arrivals {
            left: AtomicUsize::new(0),
            done: Notify::new(),
        });
        let (mut publish, readers) = rt.block_on(async {
            let mut readers = Vec::with_capacity(SUBSCRIBERS);
            for _ in 0..SUBSCRIBERS {
                let ws = if kind == "socketio_1000" {
                    let mut s = SioEcho::connect(srv.addr).await.expect("subscriber");
                    s.call("join", "\"fan\"").await.expect("join");
                    s.ws
                } else {
                    ws_connect(srv.addr, "/ws/room/fan")
                        .await
                        .expect("subscriber")
                };
                let (_write, mut read) = ws.split();
                let a = arrivals.clone();
                readers.push(tokio::spawn(async move {
                    while let Some(Ok(m)) = read.next().await {
                        if let Message::Text(t) = m
                            && (t.starts_with("42[\"broadcast\"") || t.as_str() == "fan")
                        {
                            a.arrived();
                        }
                    }
                    drop(_write);
                }));
            }
            let publish = if kind == "socketio_1000" {
                SioEcho::connect(srv.addr).await.expect("publisher").ws
            } else {
                ws_connect(srv.addr, "/ws/room/fan?self=0")
                    .await
                    .expect("publisher")
            };
            (publish, readers)
        });
        let frame = if kind == "socketio_1000" {
            r#"42["broadcast","fan","fan"]"#
        } else {
            "fan"
        };
        g.bench_function(kind, |b| {
            b.iter_custom(|n| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..n {
                        arrivals.left.store(SUBSCRIBERS, Ordering::Release);
                        publish.send(Message::text(frame)).await.expect("publish");
                        tokio::time::timeout(Duration::from_secs(10), arrivals.done.notified())
                            .await
                            .expect("every subscriber received the broadcast within 10 s");
                    }
                    t.elapsed()
                })
            })
        });
        rt.block_on(async {
            let _ = publish.close(None).await;
            for r in readers {
                r.abort();
            }
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = echo_round_trip, connect_handshake, broadcast_fanout }
criterion_main!(benches);
