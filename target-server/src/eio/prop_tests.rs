//! Property tests of the Engine.IO parsers of client bytes: the polling POST body, the
//! request query, the slicing of a websocket text. Never a panic, and agreement with the
//! reference codec of `protocol` (its encoder, its decoder).
//!
//! Receives: generated client bytes. Emits: test results only.
//!
//! Cases: 128 per property by default; `PROPTEST_CASES=N` for long runs. Failures are not
//! persisted to files (tests write only to temp dirs).

use proptest::prelude::*;
use protocol::EioPacket;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Query;
use super::Text;
use super::polling::decode_body;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 128;
    }
    c
}

/// Packets a client may send in a polling body (text without the record separator).
fn packet() -> impl Strategy<Value = EioPacket> {
    prop_oneof![
        "[^\x1e]{0,40}".prop_map(EioPacket::Message),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| EioPacket::Binary(bytes::Bytes::from(b))),
        Just(EioPacket::Ping { probe: false }),
        Just(EioPacket::Pong { probe: false }),
        Just(EioPacket::Pong { probe: true }),
        Just(EioPacket::Close),
        Just(EioPacket::Upgrade),
        Just(EioPacket::Noop),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: no panic, and exactly the reference decoder's answer.
    #[test]
    fn polling_body_never_panics_and_matches_the_reference(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let ours = decode_body(&body);
        let reference = std::str::from_utf8(&body)
            .ok()
            .and_then(|t| protocol::engineio::decode_payload(t).ok());
        prop_assert_eq!(ours, reference);
    }

    /// Bodies from the separator-heavy alphabet of real payloads.
    #[test]
    fn polling_body_from_packet_alphabet(body in "[0-6b4\x1e\"\\[\\]{}a-zA-Z0-9+/=]{0,80}") {
        let _ = decode_body(body.as_bytes());
    }

    /// What the reference encoder writes, the POST decoder reads back unchanged.
    #[test]
    fn polling_body_round_trips(packets in proptest::collection::vec(packet(), 1..8)) {
        let body = protocol::engineio::encode_payload(&packets);
        prop_assert_eq!(decode_body(body.as_bytes()), Some(packets));
    }

    /// The query parser takes any query string; well-formed keys come back as sent.
    #[test]
    fn query_parse(raw in "[A-Za-z0-9=&%_.-]{0,60}", eio in "[0-9]{0,3}", sid in "[A-Za-z0-9_-]{0,24}") {
        let _ = Query::parse(Some(&raw));
        let q = format!("{raw}&EIO={eio}&transport=polling&sid={sid}");
        let parsed = Query::parse(Some(&q));
        prop_assert_eq!(parsed.eio, Some(eio.as_str()));
        prop_assert_eq!(parsed.transport, Some("polling"));
        prop_assert_eq!(parsed.sid, Some(sid.as_str()));
    }

    /// Slicing a websocket text after its type byte(s) never splits a character.
    #[test]
    fn text_after_never_splits_a_char(text in any::<String>(), skip in 0usize..8) {
        let frame = Utf8Bytes::from(text.clone());
        match Text::after(frame, skip) {
            Some(t) => prop_assert_eq!(t.as_str(), &text[skip..]),
            None => prop_assert!(!text.is_char_boundary(skip)),
        }
    }
}
