//! Property tests of the Socket.IO parsers of client bytes: the JSON check of
//! [`strict`](super::strict), the header and argument slicing of [`raw`](super::raw), and
//! the whole inbound path of a session ([`Client`]). Never a panic, and agreement with the
//! reference decoders (`serde_json::Value`, `protocol::SioPacket::decode`).
//!
//! Receives: generated client bytes and message sequences. Emits: test results only.
//!
//! Cases: 128 per property by default; `PROPTEST_CASES=N` for long runs. Failures are not
//! persisted to files (tests write only to temp dirs).

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use protocol::SioPacketType;
use serde_json::Value;

use super::client::Client;
use super::{Server, raw, strict};
use crate::eio::session::Registry;
use crate::eio::{Inbound, Session, Transport};
use crate::{Config, Shared};

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

/// Text from the characters that matter to JSON and Socket.IO headers.
const JSONISH: &str = r#"[\[\]{}",:.\-+eE0-9 tfnrulas\\/u/a-z,]{0,60}"#;

/// Arbitrary JSON values, small.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn value_ok(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok()
}

/// `2[/nsp,][id]["echo",args...]` and near misses.
fn echo_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(String::new()), "/[a-z]{0,5},?".prop_map(String::from)],
        prop_oneof![Just(String::new()), "[0-9]{1,22}".prop_map(String::from)],
        prop_oneof![
            Just("\"echo\"".to_string()),
            "\"[a-z]{0,5}\"".prop_map(String::from)
        ],
        proptest::collection::vec(json_value(), 0..3),
        JSONISH.prop_map(String::from),
    )
        .prop_map(|(nsp, id, name, args, junk)| {
            let mut array = format!("[{name}");
            for a in args {
                array.push(',');
                array.push_str(&a.to_string());
            }
            array.push(']');
            if junk.len() % 3 == 0 {
                array.push_str(&junk);
            }
            format!("2{nsp}{id}{array}")
        })
}

proptest! {
    #![proptest_config(config())]

    /// The one-pass JSON check accepts exactly what the `Value` parse accepts.
    #[test]
    fn strict_agrees_with_serde_on_any_text(text in any::<String>()) {
        prop_assert_eq!(strict::is_valid(&text), value_ok(&text));
    }

    #[test]
    fn strict_agrees_with_serde_on_json_like_text(text in JSONISH) {
        prop_assert_eq!(strict::is_valid(&text), value_ok(&text));
    }

    #[test]
    fn strict_accepts_every_serialized_value(v in json_value()) {
        let text = v.to_string();
        prop_assert!(strict::is_valid(&text), "{}", text);
    }

    /// The payload offset is in bounds and on a character boundary, for any text.
    #[test]
    fn json_start_is_a_boundary(text in any::<String>()) {
        let at = raw::json_start(&text);
        prop_assert!(at <= text.len());
        prop_assert!(text.is_char_boundary(at));
    }

    /// When the fast path recognises an `echo`, the full decoder agrees on every field.
    #[test]
    fn fast_echo_agrees_with_the_decoder(text in echo_like()) {
        if let Some(fast) = raw::fast_echo(&text) {
            let packet = protocol::SioPacket::decode(&text);
            prop_assert!(packet.is_ok(), "{}: {:?}", text, packet);
            let packet = packet.unwrap();
            prop_assert_eq!(packet.kind, SioPacketType::Event);
            prop_assert_eq!(packet.event_name(), Some("echo"));
            prop_assert_eq!(fast.nsp, packet.nsp.as_str());
            prop_assert_eq!(fast.id, packet.id);
            prop_assert_eq!(fast.json_at, raw::json_start(&text));
        }
    }

    /// The tail after leading string elements is exactly the remaining elements.
    #[test]
    fn tail_after_strings_keeps_the_rest(names in proptest::collection::vec(".{0,6}", 1..3), rest in proptest::collection::vec(json_value(), 0..4)) {
        let mut all: Vec<Value> = names.iter().cloned().map(Value::from).collect();
        all.extend(rest.iter().cloned());
        let array = Value::Array(all).to_string();
        let tail = raw::tail_after_strings(&array, names.len());
        prop_assert!(tail.is_some(), "{}", array);
        let parsed: Value = serde_json::from_str(&format!("[{}]", tail.unwrap())).unwrap();
        // Compared through the same parser (serde_json's float parsing is not exact).
        let expected: Value = serde_json::from_str(&Value::Array(rest).to_string()).unwrap();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn tail_after_strings_never_panics(text in any::<String>(), skip in 0usize..4) {
        let _ = raw::tail_after_strings(&text, skip);
    }

    /// Any sequence of client messages through a session's Socket.IO layer: no panic;
    /// once the session is closed it stays closed.
    #[test]
    fn client_takes_any_message_sequence(msgs in proptest::collection::vec(prop_oneof![
        3 => prop_oneof![
            Just("0".to_string()),
            Just("0/custom,".to_string()),
            Just("1".to_string()),
            echo_like(),
            "[0-6][0-9-]{0,3}(/custom,)?[0-9]{0,3}".prop_map(String::from),
            JSONISH.prop_map(|j| format!("2{j}")),
            r#"5[0-3]-\["echo",\{"_placeholder":true,"num":[0-3]\}\]"#.prop_map(String::from),
            any::<String>(),
        ].prop_map(Some),
        1 => Just(None),
    ], 0..12)) {
        let shared = Shared::new(Config {
            max_attachments: 2,
            max_attachment_bytes: 16,
            ..Config::conformance()
        });
        let server = Server::start(shared.clone());
        let session = Session::open(
            1,
            "s".into(),
            super::LABELS,
            Transport::Websocket,
            64,
            None,
            shared.stats.clone(),
            Arc::new(Registry::default()),
        );
        let mut client = Client::new(server, session.clone());
        for msg in msgs {
            let inbound = match msg {
                Some(text) => Inbound::Text(text.into()),
                None => Inbound::Binary(Bytes::from_static(&[1, 2, 3, 4, 5])),
            };
            let alive = client.on_inbound_now(inbound);
            if session.is_closed() {
                prop_assert!(!alive);
            }
        }
    }
}
