//! Engine.IO wire examples (docs/ARCHITECTURE.md#engineio-v4, #conformance-suites), decoded and re-encoded, and
//! the malformed forms the engine.io-protocol suite sends.

use bytes::Bytes;

use super::*;

fn hs(sid: &str, upgrades: &[&str]) -> Handshake {
    Handshake {
        sid: sid.to_string(),
        upgrades: upgrades.iter().map(|s| s.to_string()).collect(),
        ping_interval: 25000,
        ping_timeout: 20000,
        max_payload: 1_000_000,
    }
}

/// Every text frame of the spec maps to exactly one packet and back to the same bytes.
#[test]
fn text_frames_round_trip_byte_for_byte() {
    let cases: Vec<(&str, Packet)> = vec![
        (
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            Packet::Open(hs("lv_VI97HAXpY6yYWAAAC", &["websocket"])),
        ),
        (
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            Packet::Open(hs("abc", &[])),
        ),
        ("1", Packet::Close),
        ("2", Packet::Ping { probe: false }),
        ("2probe", Packet::Ping { probe: true }),
        ("3", Packet::Pong { probe: false }),
        ("3probe", Packet::Pong { probe: true }),
        ("4hello", Packet::Message("hello".into())),
        ("4", Packet::Message(String::new())),
        (
            "4héllo ☃ \u{1F600}",
            Packet::Message("héllo ☃ \u{1F600}".into()),
        ),
        (
            r#"40{"sid":"x"}"#,
            Packet::Message(r#"0{"sid":"x"}"#.into()),
        ),
        ("5", Packet::Upgrade),
        ("6", Packet::Noop),
        (
            "bAQIDBA==",
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ),
    ];
    for (wire, packet) in cases {
        assert_eq!(
            Packet::decode_ws_text(wire).as_ref(),
            Ok(&packet),
            "decoding {wire:?}"
        );
        assert_eq!(packet.encode_text(), wire, "encoding {packet:?}");
        let mut buf = String::from("prefix:");
        packet.encode_text_into(&mut buf);
        assert_eq!(buf, format!("prefix:{wire}"));
    }
}

#[test]
fn handshake_json_has_exactly_the_five_keys_in_order() {
    let text = Packet::Open(hs("s", &["websocket"])).encode_text();
    let v: serde_json::Value = serde_json::from_str(&text[1..]).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "maxPayload",
        "pingInterval",
        "pingTimeout",
        "sid",
        "upgrades",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert!(text.starts_with(r#"0{"sid":"s","upgrades":["websocket"],"pingInterval":"#));
}

#[test]
fn ws_frames_text_with_prefix_binary_raw() {
    assert_eq!(
        Packet::Message("hello".into()).to_ws_frame(),
        WsFrame::Text("4hello".into())
    );
    assert_eq!(
        Packet::Ping { probe: false }.to_ws_frame(),
        WsFrame::Text("2".into())
    );
    assert_eq!(
        Packet::Pong { probe: true }.to_ws_frame(),
        WsFrame::Text("3probe".into())
    );
    let bin = Bytes::from_static(&[1, 2, 3, 4]);
    assert_eq!(
        Packet::Binary(bin.clone()).to_ws_frame(),
        WsFrame::Binary(bin.clone())
    );
    assert_eq!(Packet::decode_ws_binary(bin.clone()), Packet::Binary(bin));
}

#[test]
fn polling_payloads_of_the_spec() {
    let body = "4hello\x1e2\x1e4world";
    let packets = vec![
        Packet::Message("hello".into()),
        Packet::Ping { probe: false },
        Packet::Message("world".into()),
    ];
    assert_eq!(decode_payload(body), Ok(packets.clone()));
    assert_eq!(encode_payload(&packets), body);

    let body = "4test1\x1e4test2\x1e4test3";
    let decoded = decode_payload(body).unwrap();
    assert_eq!(decoded.len(), 3);
    assert_eq!(encode_payload(&decoded), body);

    let body = "4hello\x1ebAQIDBA==";
    let decoded = decode_payload(body).unwrap();
    assert_eq!(
        decoded,
        vec![
            Packet::Message("hello".into()),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        ]
    );
    assert_eq!(encode_payload(&decoded), body);

    assert_eq!(decode_payload("1"), Ok(vec![Packet::Close]));
    assert_eq!(decode_payload("6"), Ok(vec![Packet::Noop]));
    assert_eq!(
        decode_payload("4"),
        Ok(vec![Packet::Message(String::new())])
    );
    assert_eq!(encode_payload(&[]), "");
    let mut out = String::from(">");
    encode_payload_into(&[Packet::Noop, Packet::Close], &mut out);
    assert_eq!(out, ">6\x1e1");
}

#[test]
fn base64_padding_is_optional_on_decode() {
    assert_eq!(
        Packet::decode_ws_text("bAQIDBA"),
        Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
    );
    assert_eq!(
        Packet::decode_ws_text("b"),
        Ok(Packet::Binary(Bytes::new()))
    );
}

#[test]
fn malformed_forms_are_rejected() {
    assert_eq!(Packet::decode_ws_text(""), Err(DecodeError::Empty));
    // The suites' `abc` body / frame: `a` is no packet type.
    assert_eq!(
        Packet::decode_ws_text("abc"),
        Err(DecodeError::UnknownType('a'))
    );
    assert_eq!(decode_payload("abc"), Err(DecodeError::UnknownType('a')));
    assert_eq!(
        Packet::decode_ws_text("7"),
        Err(DecodeError::UnknownType('7'))
    );
    assert_eq!(
        Packet::decode_ws_text("☃"),
        Err(DecodeError::UnknownType('☃'))
    );
    assert_eq!(decode_payload(""), Err(DecodeError::Empty));
    assert_eq!(decode_payload("4a\x1e"), Err(DecodeError::Empty));
    assert_eq!(decode_payload("\x1e4a"), Err(DecodeError::Empty));
    assert_eq!(
        decode_payload("4a\x1exyz"),
        Err(DecodeError::UnknownType('x'))
    );
    assert_eq!(Packet::decode_ws_text("b!!!"), Err(DecodeError::Base64));
    assert!(matches!(
        Packet::decode_ws_text("0{nope"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("0"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text(r#"0{"sid":"x"}"#),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("2ping"),
        Err(DecodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("3x"),
        Err(DecodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("1x"),
        Err(DecodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("5x"),
        Err(DecodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        Packet::decode_ws_text("6x"),
        Err(DecodeError::InvalidPayload(_))
    ));
}

proptest::proptest! {
    /// Any polling body or WS text: the decoders never panic, and a body of packets that
    /// decoded re-encodes to packets that decode the same.
    #[test]
    fn decoders_never_panic(body in "\\PC{0,64}") {
        let _ = Packet::decode_ws_text(&body);
        if let Ok(packets) = decode_payload(&body) {
            proptest::prop_assert_eq!(decode_payload(&encode_payload(&packets)), Ok(packets));
        }
    }
}
