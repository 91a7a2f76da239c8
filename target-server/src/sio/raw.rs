//! Socket.IO packets as text: slicing the JSON of a received packet without re-encoding it,
//! and writing outgoing EVENT / ACK texts around such slices.
//!
//! Receives: packet texts that `protocol::SioPacket::decode` has already accepted.
//! Emits: the raw JSON payload, the raw elements after the leading string elements of an
//! array (`["echo",1,"2"]` -> `1,"2"`), and complete Engine.IO texts (`42[...]`, `43<id>[...]`).
//! Must not: parse or re-serialize argument values: replies carry exactly the bytes the
//! client sent (key order, numbers and placeholders included).

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use protocol::SioPacketType;
use protocol::socketio::{Header, write_header};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::strict;
use crate::eio::Frame;

/// Byte offset where the JSON payload starts in a Socket.IO packet text (after the type,
/// the attachment count, the namespace and the ack id), as `SioPacket::decode` reads it: the
/// one header reader, `protocol::socketio::Header::scan`. The end of the text when the
/// header is malformed (callers pass texts the decoder accepted).
pub fn json_start(text: &str) -> usize {
    Header::scan(text).map_or(text.len(), |h| h.data_at)
}

/// An `echo` EVENT recognised from its text alone.
#[derive(Debug, PartialEq, Eq)]
pub struct FastEcho<'a> {
    pub nsp: &'a str,
    pub id: Option<u64>,
    /// Where the JSON array starts ([`json_start`] of the text).
    pub json_at: usize,
}

/// Recognises `2[/nsp,][id]["echo"...]` without building JSON values: `Some` only when
/// `protocol::SioPacket::decode` would accept `text` as an EVENT named `echo` with this
/// namespace and ack id (the header is read by `Header::scan`, the payload checked by
/// [`strict::is_valid`]). `None` means "decode it the full way" (any other packet, an
/// unusual spelling, or an error).
pub fn fast_echo(text: &str) -> Option<FastEcho<'_>> {
    if !text.starts_with('2') {
        return None;
    }
    let header = Header::scan(text).ok()?;
    let json = header.data(text);
    if !json.starts_with(r#"["echo""#) || !strict::is_valid(json) {
        return None;
    }
    Some(FastEcho {
        nsp: header.nsp,
        id: header.id,
        json_at: header.data_at,
    })
}

/// The elements of JSON array `array` after its first `skip` elements, which must be
/// strings: the inner text without brackets or leading comma (`""` when nothing is left).
/// `None` when `array` is not of that shape.
pub fn tail_after_strings(array: &str, skip: usize) -> Option<&str> {
    let inner = array.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut rest = inner;
    for _ in 0..skip {
        let after = skip_string(rest.trim_start())?.trim_start();
        if after.is_empty() {
            return Some("");
        }
        rest = after.strip_prefix(',')?;
    }
    Some(rest.trim())
}

/// The text after a JSON string literal at the start of `s`.
fn skip_string(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            // Escapes are ASCII (`\"`, `\\`, `\u00e9`...), so skipping two bytes stays on a
            // char boundary.
            b'\\' => i += 2,
            b'"' => return s.get(i + 1..),
            _ => i += 1,
        }
    }
    None
}

/// An outgoing EVENT being written: `4<header>["name",args...` without the closing `]`, so
/// connection state recovery can append the offset as the last argument.
#[derive(Debug)]
pub struct EventText {
    text: String,
}

impl EventText {
    /// `name` is written as a JSON string (it must need no escaping: event names here are
    /// constants); `inner` is raw JSON elements (may be empty); a non-zero `attachments`
    /// makes it a BINARY_EVENT.
    pub fn new(nsp: &str, name: &str, inner: &str, attachments: usize) -> EventText {
        let mut text = String::with_capacity(name.len() + inner.len() + nsp.len() + 16);
        text.push('4');
        let kind = if attachments > 0 {
            SioPacketType::BinaryEvent
        } else {
            SioPacketType::Event
        };
        write_header(&mut text, kind, attachments, nsp, None);
        text.push_str("[\"");
        text.push_str(name);
        text.push('"');
        if !inner.is_empty() {
            text.push(',');
            text.push_str(inner);
        }
        EventText { text }
    }

    /// Closes the array, appending `"<offset>"` as the last argument when given.
    pub fn finish(mut self, offset: Option<u64>) -> Utf8Bytes {
        if let Some(offset) = offset {
            let _ = write!(self.text, ",\"{offset}\"");
        }
        self.text.push(']');
        Utf8Bytes::from(self.text)
    }
}

/// `43[<nsp>,]<id>[inner]` (or `46<n>-...` with attachments) as a complete Engine.IO text.
pub fn ack_text(nsp: &str, id: u64, inner: &str, attachments: usize) -> Utf8Bytes {
    // The exact length when there are no attachments, so that the buffer becomes the
    // frame's bytes without a second allocation (a `Bytes` from a full `Vec`).
    let nsp_len = if nsp.is_empty() || nsp == "/" {
        0
    } else {
        nsp.len() + 1
    };
    let id_len = id.checked_ilog10().map_or(1, |d| d as usize + 1);
    let exact = 2 + nsp_len + id_len + inner.len() + 2;
    let mut text = String::with_capacity(if attachments > 0 { exact + 24 } else { exact });
    text.push('4');
    let kind = if attachments > 0 {
        SioPacketType::BinaryAck
    } else {
        SioPacketType::Ack
    };
    write_header(&mut text, kind, attachments, nsp, Some(id));
    text.push('[');
    text.push_str(inner);
    text.push(']');
    Utf8Bytes::from(text)
}

/// A Socket.IO text plus its attachments as one queue item.
pub fn frame(text: Utf8Bytes, attachments: Option<&Arc<[Bytes]>>) -> Frame {
    match attachments {
        Some(atts) if !atts.is_empty() => Frame::WithAttachments(text, atts.clone()),
        _ => Frame::Text(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_start_skips_every_header_part() {
        let cases = [
            ("2[\"a\"]", "[\"a\"]"),
            ("21[\"a\"]", "[\"a\"]"),
            ("2/admin,13[\"a\"]", "[\"a\"]"),
            ("52-789[\"a\"]", "[\"a\"]"),
            ("51-/x,[\"a\"]", "[\"a\"]"),
            ("0{\"token\":\"1\"}", "{\"token\":\"1\"}"),
            ("0/custom", ""),
            ("0/custom,", ""),
            ("0", ""),
            ("1/custom,", ""),
        ];
        for (text, json) in cases {
            assert_eq!(&text[json_start(text)..], json, "{text}");
        }
    }

    #[test]
    fn fast_echo_agrees_with_the_full_decode() {
        let cases = [
            r#"2["echo",{"seq":1,"pad":"x"}]"#,
            r#"2["echo"]"#,
            r#"217["echo",1,"2"]"#,
            r#"2/admin,["echo",1]"#,
            r#"2/admin,9["echo",1]"#,
            r#"2/admin["echo",1]"#,
            r#"2 ["echo",1]"#,
            r#"2["echo",1e400]"#,
            r#"2["echo",]"#,
            r#"2["echo"] "#,
            r#"2["echoes",1]"#,
            r#"299999999999999999999999["echo"]"#,
            r#"3["echo"]"#,
            r#"21-["echo"]"#,
            r#"2["echo"1]"#,
        ];
        for text in cases {
            let Some(fast) = fast_echo(text) else {
                // Not recognised: fine as long as the full decode does not see an echo
                // where the fast path could have (checked for the plain cases below).
                continue;
            };
            let packet = protocol::SioPacket::decode(text).expect(text);
            assert_eq!(packet.kind, SioPacketType::Event, "{text}");
            assert_eq!(packet.event_name(), Some("echo"), "{text}");
            assert_eq!(
                (fast.nsp, fast.id),
                (packet.nsp.as_str(), packet.id),
                "{text}"
            );
            assert_eq!(packet.attachments, 0);
        }
        let fast = |t| fast_echo(t).map(|f| (f.nsp, f.id));
        assert_eq!(fast(r#"2["echo",{"seq":1}]"#), Some(("/", None)));
        assert_eq!(fast(r#"217["echo",1,"2"]"#), Some(("/", Some(17))));
        assert_eq!(fast(r#"2/admin,9["echo",1]"#), Some(("/admin", Some(9))));
        assert_eq!(fast(r#"2["echo"]"#), Some(("/", None)));
        for rejected in [
            r#"2["echo",1e400]"#,
            r#"2["echo",]"#,
            r#"2["echoes",1]"#,
            r#"299999999999999999999999["echo"]"#,
            r#"2["echo"1]"#,
            r#"3["echo"]"#,
        ] {
            assert_eq!(fast(rejected), None, "{rejected}");
        }
    }

    proptest::proptest! {
        /// On any header-like text the decoder accepts, the payload [`json_start`] finds is
        /// the decoder's, and [`fast_echo`] sees an echo exactly when the decoder sees an
        /// `echo` EVENT.
        #[test]
        fn json_start_and_fast_echo_agree_with_the_decoder(
            text in r#"[0-6]([0-9]{1,2}-)?(/[a-zé]{0,4},?)?[0-9]{0,21}(\["(echo|x)"(,[0-9{}"é]{0,4})?\]|\{\}|"e")? ?"#,
        ) {
            let Ok(packet) = protocol::SioPacket::decode(&text) else {
                return Ok(());
            };
            let json = &text[json_start(&text)..];
            proptest::prop_assert_eq!(json.is_empty(), packet.data.is_none());
            if let Some(data) = &packet.data {
                let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
                proptest::prop_assert_eq!(&parsed, data);
            }
            let is_echo = packet.kind == SioPacketType::Event
                && packet.event_name() == Some("echo")
                && json.starts_with(r#"["echo""#);
            let fast = fast_echo(&text);
            proptest::prop_assert_eq!(fast.is_some(), is_echo, "{}", text);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(
                    (fast.nsp, fast.id, fast.json_at),
                    (packet.nsp.as_str(), packet.id, json_start(&text))
                );
            }
        }
    }

    #[test]
    fn tails_keep_the_exact_bytes() {
        let a = r#"["message",1,"2",{"3":[true]}]"#;
        assert_eq!(tail_after_strings(a, 1), Some(r#"1,"2",{"3":[true]}"#));
        assert_eq!(tail_after_strings(r#"["echo"]"#, 1), Some(""));
        assert_eq!(
            tail_after_strings(r#"[ "echo" , [1,2] ]"#, 1),
            Some("[1,2]")
        );
        assert_eq!(
            tail_after_strings(r#"["broadcast","lobby",{"b":1,"a":2}]"#, 2),
            Some(r#"{"b":1,"a":2}"#)
        );
        assert_eq!(tail_after_strings(r#"["broadcast","lobby"]"#, 2), Some(""));
        assert_eq!(
            tail_after_strings(r#"["a\"b,","x"]"#, 1),
            Some(r#""x""#),
            "escaped quote inside the name"
        );
        assert_eq!(tail_after_strings(r#"["é",1]"#, 1), Some("1"));
        assert_eq!(
            tail_after_strings(r#"[1,2]"#, 1),
            None,
            "first element not a string"
        );
        assert_eq!(tail_after_strings(r#"{"a":1}"#, 1), None);
    }

    #[test]
    fn event_and_ack_texts() {
        let e = EventText::new("/", "message-back", r#"1,"2""#, 0);
        assert_eq!(e.finish(None).as_str(), r#"42["message-back",1,"2"]"#);
        let e = EventText::new("/custom", "auth", "{}", 0);
        assert_eq!(e.finish(None).as_str(), r#"42/custom,["auth",{}]"#);
        let e = EventText::new("/", "echo", "", 0);
        assert_eq!(e.finish(Some(17)).as_str(), r#"42["echo","17"]"#);
        let e = EventText::new("/", "message-back", r#"{"_placeholder":true,"num":0}"#, 1);
        assert_eq!(
            e.finish(None).as_str(),
            r#"451-["message-back",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(
            ack_text("/", 456, r#"1,"2""#, 0).as_str(),
            r#"43456[1,"2"]"#
        );
        assert_eq!(ack_text("/admin", 13, "", 0).as_str(), "43/admin,13[]");
        assert_eq!(ack_text("/", 789, "x", 2).as_str(), "462-789[x]");
        assert_eq!(ack_text("/", 0, "", 0).as_str(), "430[]");
        assert_eq!(ack_text("", 9, "1", 0).as_str(), "439[1]");
        assert_eq!(
            ack_text("/a", u64::MAX, "1", 0).as_str(),
            "43/a,18446744073709551615[1]"
        );
    }
}
