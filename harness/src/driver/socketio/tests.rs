//! The handshake readers (open packet, polling bodies, CONNECT reply) on written frames,
//! and property tests that they never panic.

use super::*;
use crate::model::{Protocol, Transport};
use crate::template::Template;

pub(crate) fn frames(nsp_part: &str) -> FrameTemplates {
    let empty = Template::parse("[]", false).expect("empty template");
    FrameTemplates {
        protocol: Protocol::Socketio,
        transport: Transport::Websocket,
        ws_path: "/".into(),
        ws_publish_path: "/".into(),
        eio_ws_path: "/socket.io/?EIO=4&transport=websocket".into(),
        eio_polling_path: "/socket.io/?EIO=4&transport=polling".into(),
        nsp_part: nsp_part.into(),
        connect: "40".into(),
        auth: None,
        emit_head: b"42".to_vec(),
        emit_args: b"[\"echo\",".to_vec(),
        ack: true,
        msgpack: false,
        reply_args: None,
        subscribe_args: b"[\"tick\"".to_vec(),
        join_args: b"[\"join\"".to_vec(),
        leave_args: b"[\"leave\"".to_vec(),
        publish_args: b"[\"publish\"".to_vec(),
        join_template: empty.clone(),
        publish_template: empty,
        personal: None,
    }
}

/// Regression: a Socket.IO packet whose type byte is not ASCII (`4é` on the wire) used
/// to panic the client task (a slice at byte 1 inside a UTF-8 sequence).
#[test]
fn non_ascii_packet_type_is_not_a_connect_reply_and_does_not_panic() {
    for f in [frames(""), frames("/admin,")] {
        assert_eq!(sio_connect_reply(&f, "é"), None);
        assert_eq!(sio_connect_reply(&f, "€{}"), None);
        assert_eq!(sio_connect_reply(&f, ""), None);
    }
    let f = frames("");
    assert_eq!(sio_connect_reply(&f, "0{\"sid\":\"a\"}"), Some(Ok(None)));
    assert_eq!(
        sio_connect_reply(&f, "4{\"message\":\"no\"}"),
        Some(Err(ErrorKind::ConnectError))
    );
}

/// Regression: `/,` spells the main namespace, as the decoder reads it (the reply was
/// taken for another namespace's).
#[test]
fn connect_reply_namespace_is_read_as_the_decoder_reads_it() {
    let f = frames("");
    assert_eq!(sio_connect_reply(&f, r#"0/,{"sid":"a"}"#), Some(Ok(None)));
    assert_eq!(
        sio_connect_reply(&f, r#"0{"sid":"a","pid":"p"}"#),
        Some(Ok(Some("p".to_string())))
    );
    assert_eq!(sio_connect_reply(&f, r#"0/admin,{"sid":"a"}"#), None);
    let f = frames("/admin,");
    assert_eq!(
        sio_connect_reply(&f, r#"0/admin,{"sid":"a"}"#),
        Some(Ok(None))
    );
    assert_eq!(
        sio_connect_reply(&f, r#"4/admin,{"message":"no"}"#),
        Some(Err(ErrorKind::ConnectError))
    );
    assert_eq!(sio_connect_reply(&f, r#"0{"sid":"a"}"#), None);
    assert_eq!(sio_connect_reply(&f, r#"0/admins,{"sid":"a"}"#), None);
}

#[test]
fn handshake_packets_are_read() {
    let open = r#"0{"sid":"s","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#;
    let h = open_packet(open).unwrap();
    assert_eq!((h.sid.as_str(), h.ping_interval), ("s", 300));
    assert_eq!(polling_open(open).unwrap().sid, "s");
    assert_eq!(open_packet("0"), Err(ErrorKind::Protocol));
    assert_eq!(open_packet(""), Err(ErrorKind::Protocol));
    assert_eq!(polling_open("2\u{1e}0{}"), Err(ErrorKind::Protocol));
    let f = frames("");
    assert_eq!(
        released_poll(
            &f,
            "2\u{1e}42[\"tick\"]\u{1e}40{\"sid\":\"a\",\"pid\":\"p\"}\u{1e}6"
        ),
        Ok(Released {
            connected: Some(Some("p".to_string())),
            pong_due: true,
            early: vec!["42[\"tick\"]".to_string()],
        })
    );
    assert_eq!(released_poll(&f, "6\u{1e}1"), Err(ErrorKind::Protocol));
    assert_eq!(
        released_poll(&f, "44{\"message\":\"no\"}"),
        Err(ErrorKind::ConnectError)
    );
}

/// Engine.IO-shaped polling bodies: packets of every type, `b` + base64 binaries, junk.
fn polling_body() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![
            "0\\PC{0,24}",
            "4[0-7]/?[a-z]{0,3},?[0-9]{0,3}\\PC{0,12}",
            "b[A-Za-z0-9+/=]{0,24}",
            "[1-6](probe)?",
            "\\PC{0,8}",
        ],
        0..5,
    )
    .prop_map(|p| p.join("\u{1e}"))
}

proptest::proptest! {
    /// Any text a server sends after `4`: the CONNECT-reply reader never panics (it did
    /// on a non-ASCII first character).
    #[test]
    fn connect_reply_never_panics(m in "\\PC{0,40}", nsp in proptest::bool::ANY) {
        let f = frames(if nsp { "/admin," } else { "" });
        let _ = sio_connect_reply(&f, &m);
    }

    /// Any bytes as a polling response body or a websocket text, with either parser:
    /// the open packet, handshake and upgrade readers never panic.
    #[test]
    fn handshake_bodies_never_panics(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        shaped in polling_body(),
        msgpack in proptest::bool::ANY,
        nsp in proptest::bool::ANY,
    ) {
        let mut f = frames(if nsp { "/admin," } else { "" });
        f.msgpack = msgpack;
        for body in [String::from_utf8_lossy(&bytes).into_owned(), shaped] {
            let _ = open_packet(&body);
            let _ = polling_open(&body);
            if let Ok(r) = released_poll(&f, &body) {
                proptest::prop_assert!(r.early.iter().all(|t| t.starts_with('4')));
            }
            let _ = sio_connect_reply(&f, &body);
        }
    }
}
