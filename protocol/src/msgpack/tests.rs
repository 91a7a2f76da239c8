//! The msgpack form checked against bytes printed by the real `socket.io-msgpack-parser`
//! 3.0.2 (its `Encoder().encode(packet)` as hex, Node 20), malformed input, and a property
//! test that encode → decode gives back the packet and its binaries; hostile input in
//! `hostile.rs`.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::socketio::{RESERVED_EVENTS, placeholder};

mod hostile;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

fn pkt(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    data: Option<Value>,
    attachments: usize,
) -> Packet {
    Packet {
        kind,
        nsp: nsp.to_string(),
        id,
        data,
        attachments,
    }
}

fn ph(n: usize) -> Value {
    placeholder(n)
}

fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

/// Packets written in our key order (`type, nsp, data, id`) by the real encoder: our
/// encoder must produce the very same bytes, and decode them back.
#[test]
fn encodes_byte_for_byte_like_the_npm_parser() {
    use PacketType::*;
    let cases: Vec<(&str, Packet, Vec<Bytes>)> = vec![
        (
            "82a47479706500a36e7370a12f",
            Packet::connect("/", None),
            vec![],
        ),
        (
            "83a47479706500a36e7370a62f61646d696ea46461746181a5746f6b656ea3313233",
            Packet::connect("/admin", Some(json!({"token":"123"}))),
            vec![],
        ),
        (
            "84a47479706502a36e7370a12fa46461746194a46563686f81a17801cbbfd0000000000000a2c3a9a2696407",
            Packet::event(
                "/",
                "echo",
                vec![json!({"x":1}), json!(-0.25), json!("é")],
                Some(7),
            ),
            vec![],
        ),
        (
            "84a47479706502a36e7370a12fa46461746193a27570c402010281a162c400a26964ce00011170",
            Packet::binary_event("/", "up", vec![ph(0), json!({"b": ph(1)})], Some(70000), 2),
            vec![b(&[1, 2]), b(&[])],
        ),
        (
            "84a47479706503a36e7370a52f63686174a46461746196c0c3c2d0dfccffce00010000a2696400",
            Packet::ack(
                "/chat",
                0,
                vec![
                    json!(null),
                    json!(true),
                    json!(false),
                    json!(-33),
                    json!(255),
                    json!(65536),
                ],
            ),
            vec![],
        ),
        (
            "82a47479706501a36e7370a12f",
            pkt(Disconnect, "/", None, None, 0),
            vec![],
        ),
    ];
    for (wire, packet, atts) in cases {
        let bytes = hex(wire);
        assert_eq!(encode(&packet, &atts).unwrap(), bytes, "encode {packet:?}");
        let (back, back_atts) = decode(&bytes).unwrap();
        assert_eq!(back, packet, "decode {wire}");
        assert_eq!(back_atts, atts, "binaries of {wire}");
    }
}

/// The fast paths write the same bytes as the general encoder.
#[test]
fn fast_paths_match_encode() {
    let args = vec![json!({"x":1}), json!(-0.25), json!("é")];
    let mut out = Vec::new();
    encode_event_into(&mut out, "/", "echo", &args, Some(7), &[]).unwrap();
    assert_eq!(
        out,
        hex(
            "84a47479706502a36e7370a12fa46461746194a46563686f81a17801cbbfd0000000000000a2c3a9a2696407"
        )
    );

    let atts = [b(&[1, 2, 3])];
    let mut out = Vec::new();
    encode_ack_into(&mut out, "/admin", 300, &[ph(0)], &atts).unwrap();
    let want = encode(&Packet::binary_ack("/admin", 300, vec![ph(0)], 1), &atts).unwrap();
    assert_eq!(out, want);
    let (p, a) = decode(&out).unwrap();
    assert_eq!(p, Packet::binary_ack("/admin", 300, vec![ph(0)], 1));
    assert_eq!(a, atts);
}

/// What a socket.io 4.8 server sends (its key order: `type, data, nsp` or `id, type, data,
/// nsp`), as printed by the real encoder, including notepack.io's `undefined`,
/// `ArrayBuffer` and `Date` extensions.
#[test]
fn decodes_what_the_npm_parser_writes() {
    use PacketType::*;
    let cases: Vec<(&str, Packet, Vec<Bytes>)> = vec![
        (
            "83a47479706500a46461746181a3736964a3616263a36e7370a12f",
            Packet::connect("/", Some(json!({"sid":"abc"}))),
            vec![],
        ),
        (
            "83a47479706502a46461746194a46563686f01a13281a13391c3a36e7370a12f",
            Packet::event(
                "/",
                "echo",
                vec![json!(1), json!("2"), json!({"3":[true]})],
                None,
            ),
            vec![],
        ),
        (
            "84a2696407a47479706503a4646174619181a17801a36e7370a12f",
            Packet::ack("/", 7, vec![json!({"x":1})]),
            vec![],
        ),
        (
            "84a26964cd012ca47479706503a46461746191c403010203a36e7370a62f61646d696e",
            Packet::binary_ack("/admin", 300, vec![ph(0)], 1),
            vec![b(&[1, 2, 3])],
        ),
        (
            // an ArrayBuffer is ext 8 of type 0
            "83a47479706502a46461746192a162c702000405a36e7370a12f",
            Packet::binary_event("/", "b", vec![ph(0)], None, 1),
            vec![b(&[4, 5])],
        ),
        (
            // ["u", undefined, null]: undefined in an array reads as null
            "83a47479706502a46461746193a175d40000c0a36e7370a12f",
            Packet::event("/", "u", vec![json!(null), json!(null)], None),
            vec![],
        ),
        (
            "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365a36e7370a72f72616e646f6d",
            pkt(
                ConnectError,
                "/random",
                None,
                Some(json!({"message":"Invalid namespace"})),
                0,
            ),
            vec![],
        ),
        (
            "84a47479706503a26964ce00011170a46461746195cb3ff8000000000000fdd1ff38cf0000000100000000cbbfd0000000000000a36e7370a12f",
            Packet::ack(
                "/",
                70000,
                vec![
                    json!(1.5),
                    json!(-3),
                    json!(-200),
                    json!(4294967296u64),
                    json!(-0.25),
                ],
            ),
            vec![],
        ),
        (
            // new Date(1700000000123)
            "83a47479706502a46461746192a164d7000000018bcfe5687ba36e7370a12f",
            Packet::event("/", "d", vec![json!("2023-11-14T22:13:20.123Z")], None),
            vec![],
        ),
    ];
    for (wire, packet, atts) in cases {
        let (back, back_atts) = decode(&hex(wire)).unwrap_or_else(|e| panic!("{wire}: {e}"));
        assert_eq!(back, packet, "decode {wire}");
        assert_eq!(back_atts, atts, "binaries of {wire}");
    }
}

/// Extension values other than notepack.io's own: `[type, <binary>]`; `undefined` as a
/// map value leaves the key out, as `id` it means no id; unknown top-level keys are
/// ignored (socket.io-client writes `options`), and their binaries are not collected.
#[test]
fn extensions_undefined_and_unknown_keys() {
    // {type:2, nsp:"/", options:{x:<bin 1>}, data:["e", fixext4(type 5, 01020304), {a: undefined, b: 1}], id: undefined}
    let wire = hex(concat!(
        "85",
        "a474797065",
        "02",
        "a36e7370",
        "a12f",
        "a76f7074696f6e73",
        "81a178c40109",
        "a464617461",
        "93a165d60501020304",
        "82a161d40000a16201",
        "a26964",
        "d40000",
    ));
    let (p, atts) = decode(&wire).unwrap();
    assert_eq!(
        p,
        Packet::binary_event("/", "e", vec![json!([5, ph(0)]), json!({"b":1})], None, 1)
    );
    assert_eq!(atts, vec![b(&[1, 2, 3, 4])]);
}

#[test]
fn floats_that_json_cannot_hold_become_null() {
    // {type:3, nsp:"/", data:[NaN (f64), +inf (f32)], id:1}
    let wire = hex("84a47479706503a36e7370a12fa46461746192cb7ff8000000000000ca7f800000a2696401");
    let (p, _) = decode(&wire).unwrap();
    assert_eq!(p, Packet::ack("/", 1, vec![json!(null), json!(null)]));
}

/// JSON values with `Binary` leaves standing for attachments (numbered afterwards).
fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(json!({"__bin": true})),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces `{"__bin":true}` markers by placeholders numbered in the order the encoder
/// walks the value, collecting a buffer for each.
fn number_binaries(v: &mut Value, atts: &mut Vec<Bytes>) {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("__bin") == Some(&Value::Bool(true)) => {
            let n = atts.len();
            atts.push(Bytes::from(vec![n as u8; n % 5]));
            *v = ph(n);
        }
        Value::Object(m) => m.values_mut().for_each(|x| number_binaries(x, atts)),
        Value::Array(a) => a.iter_mut().for_each(|x| number_binaries(x, atts)),
        _ => {}
    }
}

fn any_packet() -> impl Strategy<Value = (Packet, Vec<Bytes>)> {
    let nsp = prop_oneof![Just("/".to_string()), "/[a-z]{1,8}"];
    (
        0u8..5,
        nsp,
        prop::option::of(any::<u64>()),
        prop::collection::vec(json_tree(), 0..5),
        "[a-z]{1,10}".prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str())),
    )
        .prop_map(|(kind, nsp, id, args, name)| {
            let mut atts = Vec::new();
            let mut packet = match kind {
                0 => Packet::connect(&nsp, id.map(|i| json!({"token": i}))),
                1 => pkt(PacketType::Disconnect, &nsp, None, None, 0),
                2 => Packet::event(&nsp, &name, args, id),
                3 => Packet::ack(&nsp, id.unwrap_or(0), args),
                _ => pkt(
                    PacketType::ConnectError,
                    &nsp,
                    None,
                    Some(json!({"message": name})),
                    0,
                ),
            };
            if matches!(packet.kind, PacketType::Event | PacketType::Ack)
                && let Some(data) = packet.data.as_mut()
            {
                number_binaries(data, &mut atts);
                if !atts.is_empty() {
                    packet.attachments = atts.len();
                    packet.kind = match packet.kind {
                        PacketType::Event => PacketType::BinaryEvent,
                        _ => PacketType::BinaryAck,
                    };
                }
            }
            (packet, atts)
        })
}

/// `{type: 2, nsp: "/", data: ["e", bin(0) x n]}`: an event of `n` empty binaries (2 bytes
/// each).
fn empty_binaries(n: u32) -> Vec<u8> {
    let mut w = vec![0x83, 0xa4, b't', b'y', b'p', b'e', 0x02];
    w.extend([0xa3, b'n', b's', b'p', 0xa1, b'/']);
    w.extend([0xa4, b'd', b'a', b't', b'a', 0xdd]);
    w.extend((n + 1).to_be_bytes());
    w.extend([0xa1, b'e']);
    for _ in 0..n {
        w.extend([0xc4, 0x00]);
    }
    w
}

/// A hostile peer's `c4 00` x 100,000 (200 KB on the wire, ~10 MB decoded) is refused; the
/// bound itself is accepted.
#[test]
fn binaries_per_packet_are_bounded() {
    let (_, atts) = decode(&empty_binaries(MAX_BINARIES as u32)).expect("at the bound");
    assert_eq!(atts.len(), MAX_BINARIES);
    assert!(matches!(
        decode(&empty_binaries(MAX_BINARIES as u32 + 1)),
        Err(DecodeError::InvalidPayload(_))
    ));
    assert!(decode(&empty_binaries(100_000)).is_err());
}

/// A namespace has the bound of the text form (`socketio::Header::scan`).
#[test]
fn namespace_length_is_bounded() {
    let longest = format!("/{}", "n".repeat(crate::socketio::MAX_NAMESPACE_BYTES - 1));
    let packet = Packet::connect(&longest, None);
    let wire = encode(&packet, &[]).unwrap();
    assert_eq!(decode(&wire).unwrap().0, packet);
    let wire = encode(&Packet::connect(&format!("{longest}n"), None), &[]).unwrap();
    assert_eq!(decode(&wire), Err(DecodeError::NamespaceTooLong));
}

proptest! {
    #[test]
    fn round_trip((packet, atts) in any_packet()) {
        let wire = encode(&packet, &atts).unwrap();
        let (back, back_atts) = decode(&wire).unwrap();
        prop_assert_eq!(&back, &packet);
        prop_assert_eq!(&back_atts, &atts);
        prop_assert_eq!(encode(&back, &back_atts).unwrap(), wire);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_packets_never_panic(
        (packet, atts) in any_packet(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut wire = encode(&packet, &atts).unwrap();
        for (i, byte) in flips {
            let i = i.index(wire.len());
            wire[i] = byte;
        }
        let _ = decode(&wire);
    }
}
