//! Malformed, deeply nested and truncated msgpack: every one an error, never a panic; and
//! the attachment checks of the encoder.

use super::*;

/// Every malformed form is an error, never a panic.
#[test]
fn malformed_input_is_rejected() {
    let cases = [
        ("", "empty"),
        ("c1", "reserved marker"),
        ("93010203", "not a map"),
        ("82a474797065", "truncated"),
        ("82a47479706500a36e7370a12fc0", "trailing byte"),
        ("8101a12f", "non-string key"),
        (
            "82a47479706505a36e7370a12f",
            "type 5 does not exist in this parser",
        ),
        ("82a474797065ffa36e7370a12f", "negative type"),
        ("82a474797065cb3ff8000000000000a36e7370a12f", "float type"),
        ("81a47479706500", "missing nsp"),
        ("82a47479706500a36e737001", "nsp not a string"),
        (
            "83a47479706500a36e7370a12fa2696401a2696402",
            "map length says 3, 4 pairs follow",
        ),
        ("83a47479706500a47479706500a36e7370a12f", "duplicate key"),
        ("83a47479706503a36e7370a12fa464617461c0", "ack data null"),
        (
            "83a47479706502a36e7370a12fa46461746190",
            "event with no name",
        ),
        (
            "83a47479706502a36e7370a12fa46461746191a7636f6e6e656374",
            "reserved event",
        ),
        (
            "83a47479706500a36e7370a12fa46461746190",
            "connect data not an object",
        ),
        (
            "84a47479706502a36e7370a12fa46461746191a165a26964ff",
            "negative id",
        ),
        (
            "84a47479706502a36e7370a12fa46461746191a165a26964c0",
            "null id",
        ),
        (
            "83a47479706502a36e7370a12fa46461746191a2c328",
            "invalid UTF-8",
        ),
        (
            "83a47479706502a36e7370a12fa464617461dd7fffffff",
            "huge array, no items",
        ),
        (
            "83a47479706502a36e7370a12fa464617461c6ffffffff00",
            "huge bin, 1 byte",
        ),
        (
            "83a47479706502a36e7370a12fa464617461c9ffffffff0000",
            "huge ext",
        ),
        (
            "83a47479706501a36e7370a12fa46461746190",
            "disconnect with data",
        ),
        (
            "83a47479706504a36e7370a12fa46461746101",
            "connect_error with a number",
        ),
    ];
    for (wire, why) in cases {
        assert!(decode(&hex(wire)).is_err(), "{why}: {wire} should fail");
    }
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    let mut wire = hex("83a47479706503a36e7370a12fa464617461");
    wire.extend(std::iter::repeat_n(0x91, 100_000));
    wire.push(0xc0);
    assert!(decode(&wire).is_err());

    // MAX_DEPTH levels are fine.
    let mut wire = hex("83a47479706503a36e7370a12fa464617461");
    wire.extend(std::iter::repeat_n(0x91, MAX_DEPTH));
    wire.push(0xc0);
    assert!(decode(&wire).is_ok());

    let mut deep = json!(null);
    for _ in 0..MAX_DEPTH + 2 {
        deep = json!([deep]);
    }
    let p = Packet::ack("/", 1, vec![deep]);
    assert_eq!(encode(&p, &[]), Err(EncodeError::TooDeep));
}

#[test]
fn encode_checks_attachments() {
    let p = Packet::binary_event("/", "x", vec![ph(1)], None, 1);
    assert_eq!(
        encode(&p, &[b(&[1])]),
        Err(EncodeError::MissingAttachment(1))
    );
    assert_eq!(
        encode(&p, &[]),
        Err(EncodeError::AttachmentCount {
            announced: 1,
            given: 0
        })
    );
    // Nothing half-written on error.
    let mut out = vec![7];
    assert!(encode_event_into(&mut out, "/", "x", &[ph(3)], None, &[b(&[1])]).is_err());
    assert_eq!(out, vec![7]);
    // Without attachments a placeholder-looking object is just an object.
    let p = Packet::event("/", "x", vec![ph(0)], None);
    let (back, atts) = decode(&encode(&p, &[]).unwrap()).unwrap();
    assert_eq!((back, atts), (p, vec![]));
}

/// Truncating a valid packet anywhere is an error, never a panic.
#[test]
fn every_truncation_is_an_error() {
    let p = Packet::binary_event(
        "/ns",
        "ev",
        vec![json!({"k":[1, -2, 3.5, "s", null, true]}), ph(0)],
        Some(1 << 40),
        1,
    );
    let wire = encode(&p, &[b(&[9; 300])]).unwrap();
    for cut in 0..wire.len() {
        assert!(decode(&wire[..cut]).is_err(), "cut at {cut}");
    }
    assert!(decode(&wire).is_ok());
}
