//! Codec benches: Engine.IO / Socket.IO packet encode and decode (text event, ack, binary
//! attachments), and one WebSocket frame round trip between two tungstenite endpoints over
//! an in-memory stream.
//!
//! Receives: nothing (fixed packets shaped like the swarm's). Emits: criterion results
//! under `target/criterion/`. Must not: touch the network.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use protocol::engineio::{self, Packet as Eio};
use protocol::socketio::{self, BinaryAssembler, Packet as Sio};
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The swarm's smallest payload object (106 bytes), as every echo carries it.
fn payload() -> String {
    let mut b = BytesMut::new();
    let f = harness::payload::Fields {
        run: 4_000_000_000,
        client: 12_345,
        seq: 678_901,
        intended_ns: 1_760_000_000_000_000_000,
        sent_ns: 1_760_000_000_000_100_000,
    };
    harness::payload::write(&mut b, &f, harness::payload::MIN_PAYLOAD_SIZE);
    String::from_utf8(b.to_vec()).unwrap_or_default()
}

/// Engine.IO: every frame of every Socket.IO message passes through these, on both sides.
/// The message packet is the hot one; the polling payload (8 packets) is what long-polling
/// clients and the upgrade dance cost per HTTP request.
fn engineio(c: &mut Criterion) {
    let p = payload();
    let text = format!("42[\"echo\",{p}]");
    let msg = Eio::Message(text.clone());
    let frame = format!("4{text}");
    let batch: Vec<Eio> = (0..8).map(|_| Eio::Message(text.clone())).collect();
    let body = engineio::encode_payload(&batch);
    let mut g = c.benchmark_group("engineio");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_message_ws", |b| {
        b.iter(|| black_box(&msg).to_ws_frame())
    });
    g.bench_function("decode_message_ws", |b| {
        b.iter(|| Eio::decode_ws_text(black_box(&frame)))
    });
    g.bench_function("encode_polling_payload_8", |b| {
        b.iter(|| engineio::encode_payload(black_box(&batch)))
    });
    g.bench_function("decode_polling_payload_8", |b| {
        b.iter(|| engineio::decode_payload(black_box(&body)))
    });
    g.finish();
}

/// Socket.IO: an event with an ack id (what `swarm echo` sends), the ack that answers it
/// (what the server sends back), and a binary event with one 1 KiB attachment (header with
/// placeholder, then the attachment reassembled). The generic `Packet` path builds JSON
/// values; `encode_event_into` / `encode_ack_into` are the allocation-light fast paths.
fn socketio_codec(c: &mut Criterion) {
    let p = payload();
    let arg: Value = serde_json::from_str(&p).unwrap_or(Value::Null);
    let event = Sio::event("/", "echo", vec![arg.clone()], Some(42));
    let event_text = event.encode();
    let ack = Sio::ack("/", 42, vec![arg.clone()]);
    let ack_text = ack.encode();
    let attachment = Bytes::from(vec![0xA5u8; 1024]);
    let bin = Sio::binary_event("/", "echo", vec![socketio::placeholder(0)], Some(43), 1);
    let bin_text = bin.encode();

    let mut g = c.benchmark_group("socketio");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_event_ack_id", |b| {
        b.iter(|| black_box(&event).to_eio_message())
    });
    g.bench_function("encode_event_fast_path", |b| {
        let mut out = String::with_capacity(256);
        b.iter(|| {
            out.clear();
            socketio::encode_event_into(
                &mut out,
                "/",
                "echo",
                std::slice::from_ref(black_box(&arg)),
                Some(42),
                0,
            );
            out.len()
        })
    });
    g.bench_function("decode_event_ack_id", |b| {
        b.iter(|| Sio::decode(black_box(&event_text)))
    });
    g.bench_function("encode_ack", |b| b.iter(|| black_box(&ack).encode()));
    g.bench_function("encode_ack_fast_path", |b| {
        let mut out = String::with_capacity(256);
        b.iter(|| {
            out.clear();
            socketio::encode_ack_into(&mut out, "/", 42, std::slice::from_ref(black_box(&arg)), 0);
            out.len()
        })
    });
    g.bench_function("decode_ack", |b| {
        b.iter(|| Sio::decode(black_box(&ack_text)))
    });
    g.bench_function("encode_binary_event_1k", |b| {
        b.iter(|| {
            let header = black_box(&bin).to_eio_message();
            let att = Eio::Binary(attachment.clone()).to_ws_frame();
            (header, att)
        })
    });
    g.bench_function("decode_binary_event_1k", |b| {
        b.iter(|| {
            let packet = Sio::decode(black_box(&bin_text)).ok()?;
            let mut asm = BinaryAssembler::default();
            if asm.start(packet).is_some() {
                return None;
            }
            let Eio::Binary(data) = Eio::decode_ws_binary(attachment.clone()) else {
                return None;
            };
            asm.push(data).ok().flatten()
        })
    });
    g.finish();
}

/// One WebSocket text frame client -> server -> client through tungstenite over
/// `tokio::io::duplex` (no socket), with the swarm's `WebSocketConfig` and its payload
/// writer/finder: framing, masking and UTF-8 checks both ways, without the kernel. This is
/// a tokio-tungstenite pair, not `harness::driver::session::Session`: the swarm's session
/// only wraps TCP/TLS streams (its constructor is private), so it cannot run over memory.
fn ws_frame_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = tokio::io::duplex(64 * 1024);
    let cfg = Some(harness::driver::net::ws_config());
    let (mut client, mut server) = rt.block_on(async {
        (
            WebSocketStream::from_raw_socket(a, Role::Client, cfg).await,
            WebSocketStream::from_raw_socket(b, Role::Server, cfg).await,
        )
    });
    let mut buf = BytesMut::with_capacity(256);
    let mut seq = 0u32;
    let mut g = c.benchmark_group("ws_frame_memory");
    g.throughput(Throughput::Elements(1));
    g.bench_function("round_trip_106B", |bch| {
        bch.iter_custom(|iters| {
            rt.block_on(async {
                let t = std::time::Instant::now();
                for _ in 0..iters {
                    seq = seq.wrapping_add(1);
                    let f = harness::payload::Fields {
                        run: 1,
                        client: 2,
                        seq,
                        intended_ns: 1,
                        sent_ns: 2,
                    };
                    harness::payload::write(&mut buf, &f, harness::payload::MIN_PAYLOAD_SIZE);
                    let Ok(text) = Utf8Bytes::try_from(buf.split().freeze()) else {
                        break;
                    };
                    if client.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                    let Some(Ok(m)) = server.next().await else {
                        break;
                    };
                    if server.send(m).await.is_err() {
                        break;
                    }
                    let Some(Ok(back)) = client.next().await else {
                        break;
                    };
                    black_box(harness::payload::find(&back.into_data()));
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = engineio, socketio_codec, ws_frame_memory }
criterion_main!(benches);
