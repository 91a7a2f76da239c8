//! Socket.IO wire examples (docs/ARCHITECTURE.md#socketio-v5, #conformance-suites), decoded and re-encoded, and
//! every malformed form the socket.io-protocol suite sends.

use serde_json::{Value, json};

use super::*;

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

/// Decodes each frame, encodes it back byte for byte, and wraps it in Engine.IO's `4`.
fn round_trip(cases: Vec<(&str, Packet)>) {
    for (wire, packet) in cases {
        assert_eq!(
            Packet::decode(wire).as_ref(),
            Ok(&packet),
            "decoding {wire:?}"
        );
        assert_eq!(packet.encode(), wire, "encoding {packet:?}");
        assert_eq!(packet.to_eio_message(), format!("4{wire}"));
    }
}

/// Frames as the spec writes them (without the Engine.IO `4`): CONNECT, CONNECT_ERROR,
/// DISCONNECT.
#[test]
fn wire_examples_round_trip_byte_for_byte_connect_and_disconnect() {
    use PacketType::*;
    let cases: Vec<(&str, Packet)> = vec![
        ("0", Packet::connect("/", None)),
        (
            r#"0{"token":"123"}"#,
            Packet::connect("/", Some(json!({"token":"123"}))),
        ),
        (
            r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
            Packet::connect("/", Some(json!({"sid":"wZX3oN0bSVIhsaknAAAI"}))),
        ),
        ("0/admin,", Packet::connect("/admin", None)),
        (
            r#"0/admin,{"sid":"x"}"#,
            Packet::connect("/admin", Some(json!({"sid":"x"}))),
        ),
        (
            r#"0/custom,{"token":"abc"}"#,
            Packet::connect("/custom", Some(json!({"token":"abc"}))),
        ),
        (
            r#"4{"message":"Not authorized"}"#,
            pkt(
                ConnectError,
                "/",
                None,
                Some(json!({"message":"Not authorized"})),
                0,
            ),
        ),
        (
            r#"4/random,{"message":"Invalid namespace"}"#,
            pkt(
                ConnectError,
                "/random",
                None,
                Some(json!({"message":"Invalid namespace"})),
                0,
            ),
        ),
        (
            r#"4"oops""#,
            pkt(ConnectError, "/", None, Some(json!("oops")), 0),
        ),
        ("1", pkt(Disconnect, "/", None, None, 0)),
        ("1/admin,", pkt(Disconnect, "/admin", None, None, 0)),
    ];
    round_trip(cases);
}

/// Frames as the spec writes them: EVENT, ACK and their binary forms.
#[test]
fn wire_examples_round_trip_byte_for_byte_events_and_acks() {
    use PacketType::*;
    let cases: Vec<(&str, Packet)> = vec![
        (
            r#"2["chat","hi"]"#,
            Packet::event("/", "chat", vec![json!("hi")], None),
        ),
        (
            r#"2/admin,["bar"]"#,
            Packet::event("/admin", "bar", vec![], None),
        ),
        (
            r#"21["echo",{"x":1}]"#,
            Packet::event("/", "echo", vec![json!({"x":1})], Some(1)),
        ),
        (r#"31[{"x":1}]"#, Packet::ack("/", 1, vec![json!({"x":1})])),
        (
            r#"3/admin,13["bar"]"#,
            Packet::ack("/admin", 13, vec![json!("bar")]),
        ),
        ("3/admin,13[]", Packet::ack("/admin", 13, vec![])),
        (
            r#"51-["baz",{"_placeholder":true,"num":0}]"#,
            Packet::binary_event("/", "baz", vec![ph(0)], None, 1),
        ),
        (
            r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
            Packet::binary_ack("/", 15, vec![json!("bar"), ph(0)], 1),
        ),
        (
            r#"2["auth",{}]"#,
            Packet::event("/", "auth", vec![json!({})], None),
        ),
        (
            r#"2/custom,["auth",{}]"#,
            Packet::event("/custom", "auth", vec![json!({})], None),
        ),
        (
            r#"2["message-back",1,"2",{"3":[true]}]"#,
            Packet::event(
                "/",
                "message-back",
                vec![json!(1), json!("2"), json!({"3":[true]})],
                None,
            ),
        ),
        (
            r#"3456[1,"2",{"3":[false]}]"#,
            Packet::ack("/", 456, vec![json!(1), json!("2"), json!({"3":[false]})]),
        ),
        (
            r#"52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            Packet::binary_event("/", "message-back", vec![ph(0), ph(1)], None, 2),
        ),
        (
            r#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            Packet::binary_ack("/", 789, vec![ph(0), ph(1)], 2),
        ),
        ("2[42]", pkt(Event, "/", None, Some(json!([42])), 0)),
    ];
    round_trip(cases);
}

#[test]
fn decode_only_forms() {
    // `40/custom` without comma is valid (the suite sends it); so is `41/custom`.
    assert_eq!(
        Packet::decode("0/custom"),
        Ok(Packet::connect("/custom", None))
    );
    assert_eq!(
        Packet::decode("1/custom"),
        Ok(pkt(PacketType::Disconnect, "/custom", None, None, 0))
    );
    // Whitespace around the JSON, as JSON.parse allows.
    assert_eq!(
        Packet::decode(r#"2[ "a" , 1 ] "#),
        Ok(Packet::event("/", "a", vec![json!(1)], None))
    );
    // A zero-attachment binary packet.
    assert_eq!(
        Packet::decode(r#"50-["a"]"#),
        Ok(Packet::binary_event("/", "a", vec![], None, 0))
    );
    // A namespace with an ack id and the id 0.
    assert_eq!(
        Packet::decode(r#"2/a,0["x"]"#),
        Ok(Packet::event("/a", "x", vec![], Some(0)))
    );
}

#[test]
fn accessors() {
    let p = Packet::decode(r#"2["echo",1,[2]]"#).unwrap();
    assert_eq!(p.event_name(), Some("echo"));
    assert_eq!(p.args(), &[json!(1), json!([2])]);
    let p = Packet::decode(r#"34[1,2]"#).unwrap();
    assert_eq!(p.event_name(), None);
    assert_eq!(p.args(), &[json!(1), json!(2)]);
    let p = Packet::decode(r#"2[7,"x"]"#).unwrap();
    assert_eq!(p.event_name(), None);
    assert_eq!(p.args(), &[json!("x")]);
}

/// Every malformed form of docs/ARCHITECTURE.md#socketio-v5 and #conformance-suites.
#[test]
fn malformed_forms_are_rejected() {
    let invalid = |s: &str| matches!(Packet::decode(s), Err(DecodeError::InvalidPayload(_)));
    assert_eq!(Packet::decode(""), Err(DecodeError::Empty));
    // `4abc` on the wire: Socket.IO text `abc`.
    assert_eq!(Packet::decode("abc"), Err(DecodeError::UnknownType('a')));
    assert_eq!(Packet::decode("7"), Err(DecodeError::UnknownType('7')));
    assert_eq!(Packet::decode("é"), Err(DecodeError::UnknownType('é')));
    // `42{}`: EVENT must be an array.
    assert!(invalid("2{}"));
    // `42abc[...]`: not JSON.
    assert!(matches!(
        Packet::decode(r#"2abc["message"]"#),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        Packet::decode("2[\"a\"]x"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        Packet::decode("2[\"a\""),
        Err(DecodeError::Json(_))
    ));
    // EVENT rules.
    assert!(invalid("2"));
    assert!(invalid("2[]"));
    assert!(invalid("2[null]"));
    assert!(invalid("2[{}]"));
    assert!(invalid("2[[\"a\"]]"));
    assert!(invalid("2\"a\""));
    for name in RESERVED_EVENTS {
        assert_eq!(
            Packet::decode(&format!("2[\"{name}\"]")),
            Err(DecodeError::ReservedEvent(name.to_string()))
        );
        assert_eq!(
            Packet::decode(&format!(
                "51-[\"{name}\",{{\"_placeholder\":true,\"num\":0}}]"
            )),
            Err(DecodeError::ReservedEvent(name.to_string()))
        );
    }
    // CONNECT payload must be an object.
    assert!(invalid("0[]"));
    assert!(invalid("0\"x\""));
    assert!(invalid("0true"));
    assert!(invalid("01[]"));
    assert!(invalid("0null"));
    // DISCONNECT takes no payload.
    assert!(invalid("1{}"));
    assert!(invalid("1[]"));
    // ACK must be an array.
    assert!(invalid("3"));
    assert!(invalid("31"));
    assert!(invalid("31{}"));
    assert!(invalid("31\"x\""));
    // CONNECT_ERROR must be a string or an object.
    assert!(invalid("4"));
    assert!(invalid("4[]"));
    assert!(invalid("442"));
    // Ack id out of u64 range.
    assert!(invalid("299999999999999999999999[\"a\"]"));
}

#[test]
fn bad_attachment_counts_are_rejected() {
    let att = |s: &str| Packet::decode(s) == Err(DecodeError::Attachments);
    assert!(att("5[\"a\"]"));
    assert!(att("5-[\"a\"]"));
    assert!(att("5x-[\"a\"]"));
    assert!(att("51[\"a\"]"));
    assert!(att("5"));
    assert!(att("6"));
    assert!(att("61"));
    assert!(att("599999999999999999999999-[\"a\"]"));
    // Placeholder index beyond the announced count, or malformed.
    assert!(att(r#"51-["a",{"_placeholder":true,"num":1}]"#));
    assert!(att(r#"50-["a",{"_placeholder":true,"num":0}]"#));
    assert!(att(r#"61-1[{"x":[{"_placeholder":true,"num":3}]}]"#));
    assert!(att(r#"51-["a",{"_placeholder":true,"num":-1}]"#));
    assert!(att(r#"51-["a",{"_placeholder":true,"num":"0"}]"#));
    assert!(att(r#"51-["a",{"_placeholder":true}]"#));
    // A nested valid placeholder passes; `_placeholder:false` is ordinary data.
    assert!(Packet::decode(r#"62-1[{"x":[{"_placeholder":true,"num":1}]}]"#).is_ok());
    assert!(Packet::decode(r#"51-["a",{"_placeholder":false,"num":9}]"#).is_ok());
    // Placeholders in a text packet are ordinary data.
    assert!(Packet::decode(r#"2["a",{"_placeholder":true,"num":5}]"#).is_ok());
}

#[test]
fn fast_paths_match_packet_encoding() {
    let args = vec![json!(1), json!("two"), json!({"3":[true]}), json!(null)];
    for (nsp, id) in [
        ("/", None),
        ("/", Some(7)),
        ("/admin", None),
        ("/admin", Some(0)),
    ] {
        let mut out = String::new();
        encode_event_into(&mut out, nsp, "ev\"ent", &args, id, 0);
        assert_eq!(
            out,
            Packet::event(nsp, "ev\"ent", args.clone(), id).encode()
        );

        let mut out = String::new();
        encode_event_into(&mut out, nsp, "bin", &[ph(0), ph(1)], id, 2);
        assert_eq!(
            out,
            Packet::binary_event(nsp, "bin", vec![ph(0), ph(1)], id, 2).encode()
        );

        let mut out = String::from("4");
        encode_ack_into(&mut out, nsp, 9, &args, 0);
        assert_eq!(out, Packet::ack(nsp, 9, args.clone()).to_eio_message());

        let mut out = String::new();
        encode_ack_into(&mut out, nsp, 9, &[], 0);
        assert_eq!(out, Packet::ack(nsp, 9, vec![]).encode());

        let mut out = String::new();
        encode_ack_into(&mut out, nsp, 9, &[ph(0)], 1);
        assert_eq!(out, Packet::binary_ack(nsp, 9, vec![ph(0)], 1).encode());
    }
    let mut out = String::new();
    encode_event_into(&mut out, "/", "e", &[], None, 0);
    assert_eq!(out, r#"2["e"]"#);
}

#[test]
fn binary_assembler_reassembles_in_order() {
    use bytes::Bytes;
    let mut asm = BinaryAssembler::default();
    let p = Packet::decode(
        r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    )
    .unwrap();
    assert!(asm.start(p.clone()).is_none());
    assert!(asm.is_pending());
    assert_eq!(asm.push(Bytes::from_static(&[1, 2, 3])), Ok(None));
    let (done, atts) = asm.push(Bytes::from_static(&[4, 5, 6])).unwrap().unwrap();
    assert_eq!(done, p);
    assert_eq!(
        atts,
        vec![
            Bytes::from_static(&[1, 2, 3]),
            Bytes::from_static(&[4, 5, 6])
        ]
    );
    assert!(!asm.is_pending());
    assert_eq!(
        asm.push(Bytes::from_static(&[7])),
        Err(DecodeError::UnexpectedBinary)
    );
    let zero = Packet::decode(r#"50-["a"]"#).unwrap();
    assert_eq!(asm.start(zero.clone()), Some((zero, vec![])));
}

/// docs/ARCHITECTURE.md#a-websocket-only-session-on-the-wire: each frame through both layers.
#[test]
fn minimal_wire_trace_through_both_layers() {
    use crate::engineio::Packet as Eio;
    let sio = |frame: &str| match Eio::decode_ws_text(frame) {
        Ok(Eio::Message(inner)) => Packet::decode(&inner),
        other => panic!("{frame:?} is not a message: {other:?}"),
    };
    assert_eq!(sio("40"), Ok(Packet::connect("/", None)));
    assert_eq!(
        sio(r#"40{"sid":"abc"}"#),
        Ok(Packet::connect("/", Some(json!({"sid":"abc"}))))
    );
    assert_eq!(
        sio(r#"42["chat","hi"]"#),
        Ok(Packet::event("/", "chat", vec![json!("hi")], None))
    );
    assert_eq!(
        sio("41"),
        Ok(pkt(PacketType::Disconnect, "/", None, None, 0))
    );
    assert_eq!(Eio::decode_ws_text("2"), Ok(Eio::Ping { probe: false }));
    assert_eq!(Eio::decode_ws_text("3"), Ok(Eio::Pong { probe: false }));
    assert_eq!(Eio::decode_ws_text("1"), Ok(Eio::Close));
    // `4abc`: a valid Engine.IO message whose Socket.IO text is invalid.
    assert_eq!(sio("4abc"), Err(DecodeError::UnknownType('a')));
    assert!(sio("42{}").is_err());
    assert!(sio(r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#).is_err());
}

proptest::proptest! {
    /// Any Engine.IO message text: the Socket.IO decoder never panics, and what it accepts
    /// round-trips through its encoder.
    #[test]
    fn decode_never_panics_and_round_trips(text in "[0-6]?[0-9\\-/a-z,\\[\\]{}\":é€]{0,24}") {
        if let Ok(p) = Packet::decode(&text) {
            proptest::prop_assert_eq!(Packet::decode(&p.encode()), Ok(p));
        }
    }
}
