//! Property tests: decode(encode(x)) == x for Engine.IO packets, polling payloads and
//! Socket.IO packets, and decoding arbitrary text never panics.

use bytes::Bytes;
use proptest::prelude::*;
use protocol::engineio::{self, Handshake, Packet as Eio, WsFrame};
use protocol::socketio::{self, Packet as Sio, PacketType, RESERVED_EVENTS};
use serde_json::Value;

fn handshake() -> impl Strategy<Value = Handshake> {
    (
        "[A-Za-z0-9_-]{1,24}",
        prop::collection::vec(
            prop_oneof![Just("websocket".to_string()), "[a-z]{1,8}"],
            0..3,
        ),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(sid, upgrades, ping_interval, ping_timeout, max_payload)| Handshake {
                sid,
                upgrades,
                ping_interval,
                ping_timeout,
                max_payload,
            },
        )
}

/// Engine.IO packets. Message text excludes the record separator (v4 assumes it never
/// appears in data) so that the same generator serves polling payloads.
fn eio_packet() -> impl Strategy<Value = Eio> {
    prop_oneof![
        handshake().prop_map(Eio::Open),
        Just(Eio::Close),
        any::<bool>().prop_map(|probe| Eio::Ping { probe }),
        any::<bool>().prop_map(|probe| Eio::Pong { probe }),
        "[^\x1e]{0,64}".prop_map(Eio::Message),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|v| Eio::Binary(Bytes::from(v))),
        Just(Eio::Upgrade),
        Just(Eio::Noop),
    ]
}

/// JSON values that survive a text round trip exactly (floats limited to values serde_json
/// reads back bit for bit).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000, 0u32..8)
            .prop_map(|(m, e)| Value::from(f64::from(m) / f64::from(1u32 << e))),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z_]{0,8}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn nsp() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        "/[A-Za-z0-9_.~-]{0,12}",
        "/[^,]{0,8}"
    ]
}

fn event_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,12}"
            .prop_filter("reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
            .prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
    ]
}

/// Args for a binary packet: `n` placeholders mixed with ordinary values.
fn binary_args() -> impl Strategy<Value = (Vec<Value>, usize)> {
    (0usize..4, prop::collection::vec(json_value(), 0..3)).prop_map(|(n, mut args)| {
        for i in 0..n {
            args.push(socketio::placeholder(i));
        }
        (args, n)
    })
}

fn sio_packet() -> impl Strategy<Value = Sio> {
    let id = prop::option::of(any::<u64>());
    (nsp(), id).prop_flat_map(|(nsp, id)| {
        let n = nsp.clone();
        let connect = prop::option::of(json_object()).prop_map(move |data| Sio {
            kind: PacketType::Connect,
            nsp: n.clone(),
            id,
            data,
            attachments: 0,
        });
        let n = nsp.clone();
        let disconnect = Just(Sio {
            kind: PacketType::Disconnect,
            nsp: n,
            id,
            data: None,
            attachments: 0,
        });
        let n = nsp.clone();
        let event = (event_name(), prop::collection::vec(json_value(), 0..4)).prop_map(
            move |(name, args)| {
                let mut arr = vec![name];
                arr.extend(args);
                Sio {
                    kind: PacketType::Event,
                    nsp: n.clone(),
                    id,
                    data: Some(Value::Array(arr)),
                    attachments: 0,
                }
            },
        );
        let n = nsp.clone();
        let ack = prop::collection::vec(json_value(), 0..4).prop_map(move |args| Sio {
            kind: PacketType::Ack,
            nsp: n.clone(),
            id,
            data: Some(Value::Array(args)),
            attachments: 0,
        });
        let n = nsp.clone();
        let connect_error =
            prop_oneof![".{0,16}".prop_map(Value::String), json_object()].prop_map(move |data| {
                Sio {
                    kind: PacketType::ConnectError,
                    nsp: n.clone(),
                    id,
                    data: Some(data),
                    attachments: 0,
                }
            });
        let n = nsp.clone();
        let binary_event = (event_name(), binary_args()).prop_map(move |(name, (args, k))| {
            let mut arr = vec![name];
            arr.extend(args);
            Sio {
                kind: PacketType::BinaryEvent,
                nsp: n.clone(),
                id,
                data: Some(Value::Array(arr)),
                attachments: k,
            }
        });
        let n = nsp;
        let binary_ack = binary_args().prop_map(move |(args, k)| Sio {
            kind: PacketType::BinaryAck,
            nsp: n.clone(),
            id,
            data: Some(Value::Array(args)),
            attachments: k,
        });
        prop_oneof![
            connect,
            disconnect,
            event,
            ack,
            connect_error,
            binary_event,
            binary_ack
        ]
    })
}

proptest! {
    #[test]
    fn eio_text_round_trip(p in eio_packet()) {
        let text = p.encode_text();
        prop_assert_eq!(Eio::decode_ws_text(&text), Ok(p.clone()));
        match p.to_ws_frame() {
            WsFrame::Text(t) => prop_assert_eq!(Eio::decode_ws_text(&t), Ok(p)),
            WsFrame::Binary(b) => prop_assert_eq!(Eio::decode_ws_binary(b), p),
        }
    }

    #[test]
    fn polling_payload_round_trip(packets in prop::collection::vec(eio_packet(), 1..8)) {
        let body = engineio::encode_payload(&packets);
        prop_assert_eq!(engineio::decode_payload(&body), Ok(packets));
    }

    #[test]
    fn sio_round_trip(p in sio_packet()) {
        let text = p.encode();
        prop_assert_eq!(Sio::decode(&text), Ok(p.clone()));
        // Inside an Engine.IO message, through both transports.
        let msg = p.to_eio_message();
        let Ok(Eio::Message(inner)) = Eio::decode_ws_text(&msg) else {
            return Err(TestCaseError::fail("not an Engine.IO message"));
        };
        prop_assert_eq!(Sio::decode(&inner), Ok(p));
    }

    #[test]
    fn decoders_never_panic(s in ".{0,64}") {
        let _ = Eio::decode_ws_text(&s);
        let _ = engineio::decode_payload(&s);
        let _ = Sio::decode(&s);
    }

    #[test]
    fn sio_decoder_never_panics_on_near_valid_input(
        kind in "[0-9]", att in "([0-9]{0,3}-)?", nsp in "(/[a-z,]{0,4},?)?", id in "[0-9]{0,3}",
        json in prop_oneof![Just(String::new()), json_value().prop_map(|v| v.to_string()), ".{0,8}"],
    ) {
        let text = format!("{kind}{att}{nsp}{id}{json}");
        if let Ok(p) = Sio::decode(&text) {
            // Whatever decodes must re-encode to something that decodes the same.
            prop_assert_eq!(Sio::decode(&p.encode()), Ok(p));
        }
    }
}
