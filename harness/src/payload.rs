//! The payload object of every timed message (docs/ARCHITECTURE.md#the-payload-object):
//! `{"sb":run_id,"c":client,"s":seq,"ti":intended_ns,"ts":sent_ns,"p":"xx..."}`.
//!
//! Receives: the fields of one message and a target size. Emits: the serialized object,
//! padded with `p` to exactly that size, written into a caller-owned buffer (no allocation
//! once the buffer has grown); and, on the receive side, the `(run, client, seq)` of a
//! payload object found anywhere inside a reply.
//! Must not: allocate per message on the fast paths, or read clocks (callers pass the
//! wall-clock nanoseconds).
//!
//! Widths: `run_id`, `client` and `seq` are u32, `ti`/`ts` are u64 wall-clock nanoseconds
//! since the Unix epoch. [`MIN_PAYLOAD_SIZE`] is the size of the object with every number at
//! its widest and `p` empty, so any message fits any size at or above it.

use bytes::BufMut;

/// Smallest `--payload-size`: 36 bytes of keys and punctuation, 3 x 10 digits (u32) and
/// 2 x 20 digits (u64).
pub const MIN_PAYLOAD_SIZE: usize = 36 + 3 * 10 + 2 * 20;

/// The fields of one payload object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    pub run: u32,
    pub client: u32,
    pub seq: u32,
    pub intended_ns: u64,
    pub sent_ns: u64,
}

/// What a receiver needs to match a reply to its request, or to account a broadcast
/// delivery (who sent it, which of its messages, when it was meant to leave and left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Found {
    /// The run id (`sb`); 0 when `server` is true.
    pub run: u32,
    /// `"sb":"server"`: published by target-server's `--tick`, not by a swarm.
    pub server: bool,
    pub client: u32,
    pub seq: u32,
    /// `ti` and `ts`, wall-clock ns (0 when absent).
    pub intended_ns: u64,
    pub sent_ns: u64,
}

/// Appends the object, padded to `size` bytes (`size >= MIN_PAYLOAD_SIZE`; a smaller size
/// yields the unpadded object). Returns the number of bytes written.
pub fn write(out: &mut impl BufMut, f: &Fields, size: usize) -> usize {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut put = |out: &mut dyn BufMut, s: &[u8]| {
        out.put_slice(s);
        n += s.len();
    };
    put(out, b"{\"sb\":");
    put(out, itoa(u64::from(f.run), &mut digits));
    put(out, b",\"c\":");
    put(out, itoa(u64::from(f.client), &mut digits));
    put(out, b",\"s\":");
    put(out, itoa(u64::from(f.seq), &mut digits));
    put(out, b",\"ti\":");
    put(out, itoa(f.intended_ns, &mut digits));
    put(out, b",\"ts\":");
    put(out, itoa(f.sent_ns, &mut digits));
    put(out, b",\"p\":\"");
    let pad = size.saturating_sub(n + 2);
    out.put_bytes(b'x', pad);
    out.put_slice(b"\"}");
    n + pad + 2
}

/// `v` in decimal, written into the end of `buf` (no allocation).
pub(crate) fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Finds a payload object anywhere in `data` (a reply frame, an event's JSON...).
/// Fast path: the keys in the order this module writes them. Fallback: parse the JSON
/// (any key order, object nested anywhere) when `data` mentions `"sb"` at all.
pub fn find(data: &[u8]) -> Option<Found> {
    const START: &[u8] = b"{\"sb\":";
    let mut from = 0;
    while let Some(pos) = memfind(&data[from..], START) {
        let at = from + pos;
        if let Some(found) = parse_ordered(&data[at + START.len()..]) {
            return Some(found);
        }
        from = at + 1;
    }
    if memfind(data, b"\"sb\"").is_some() {
        let value: serde_json::Value = serde_json::from_slice(data).ok()?;
        return find_in_value(&value);
    }
    None
}

fn parse_ordered(rest: &[u8]) -> Option<Found> {
    let (run, server, rest) = match rest.strip_prefix(b"\"server\"") {
        Some(r) => (0, true, r),
        None => {
            let (run, r) = number(rest)?;
            (run, false, r)
        }
    };
    let rest = rest.strip_prefix(b",\"c\":")?;
    let (client, rest) = number(rest)?;
    let rest = rest.strip_prefix(b",\"s\":")?;
    let (seq, rest) = number(rest)?;
    let (intended_ns, sent_ns) = times(rest).unwrap_or((0, 0));
    Some(Found {
        run: u32::try_from(run).ok()?,
        server,
        client: u32::try_from(client).ok()?,
        seq: u32::try_from(seq).ok()?,
        intended_ns,
        sent_ns,
    })
}

/// `,"ti":N,"ts":N` right after the seq.
fn times(rest: &[u8]) -> Option<(u64, u64)> {
    let rest = rest.strip_prefix(b",\"ti\":")?;
    let (ti, rest) = number(rest)?;
    let rest = rest.strip_prefix(b",\"ts\":")?;
    let (ts, _) = number(rest)?;
    Some((ti, ts))
}

fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 20 {
        return None;
    }
    let mut v = 0u64;
    for &b in &s[..len] {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((v, &s[len..]))
}

fn find_in_value(v: &serde_json::Value) -> Option<Found> {
    match v {
        serde_json::Value::Object(map) => {
            let get = |k: &str| {
                map.get(k)
                    .and_then(|x| x.as_u64())
                    .and_then(|x| u32::try_from(x).ok())
            };
            let server = map.get("sb").and_then(|x| x.as_str()) == Some("server");
            let run = if server { Some(0) } else { get("sb") };
            if let (Some(run), Some(client), Some(seq)) = (run, get("c"), get("s")) {
                let ns = |k: &str| map.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
                return Some(Found {
                    run,
                    server,
                    client,
                    seq,
                    intended_ns: ns("ti"),
                    sent_ns: ns("ts"),
                });
            }
            map.values().find_map(find_in_value)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_in_value),
        serde_json::Value::String(s) if s.contains("\"sb\"") => {
            serde_json::from_str::<serde_json::Value>(s)
                .ok()
                .as_ref()
                .and_then(find_in_value)
        }
        _ => None,
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            run: 7,
            client: 42,
            seq: 9,
            intended_ns: 1_700_000_000_000_000_000,
            sent_ns: 1_700_000_000_000_000_500,
        }
    }

    #[test]
    fn pads_to_exact_size_and_is_json() {
        for size in [MIN_PAYLOAD_SIZE, 128, 1024] {
            let mut buf = Vec::new();
            let n = write(&mut buf, &fields(), size);
            assert_eq!(n, size);
            assert_eq!(buf.len(), size);
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v["c"], 42);
            assert_eq!(v["ts"], 1_700_000_000_000_000_500u64);
        }
    }

    #[test]
    fn widest_fields_fit_the_minimum() {
        let f = Fields {
            run: u32::MAX,
            client: u32::MAX,
            seq: u32::MAX,
            intended_ns: u64::MAX,
            sent_ns: u64::MAX,
        };
        let mut buf = Vec::new();
        assert_eq!(write(&mut buf, &f, MIN_PAYLOAD_SIZE), MIN_PAYLOAD_SIZE);
        assert!(buf.ends_with(b"\"p\":\"\"}"));
    }

    #[test]
    fn finds_inside_frames() {
        let mut buf = Vec::new();
        write(&mut buf, &fields(), 200);
        let obj = String::from_utf8(buf).unwrap();
        let want = Some(Found {
            run: 7,
            client: 42,
            seq: 9,
            intended_ns: 1_700_000_000_000_000_000,
            sent_ns: 1_700_000_000_000_000_500,
            server: false,
        });
        assert_eq!(find(obj.as_bytes()), want);
        assert_eq!(find(format!("431[{obj}]").as_bytes()), want);
        assert_eq!(
            find(format!("42[\"reply\",{{\"wrapped\":{obj}}}]").as_bytes()),
            want
        );
        // Reordered keys (a server that re-serialized the object).
        let reordered = r#"["r",{"p":"x","s":9,"c":42,"ti":1,"ts":2,"sb":7}]"#;
        let moved = want.map(|f| Found {
            intended_ns: 1,
            sent_ns: 2,
            ..f
        });
        assert_eq!(find(reordered.as_bytes()), moved);
        assert_eq!(find(b"431[\"nothing\"]"), None);
        // target-server's --tick object, and with a recovery offset after it.
        let tick = br#"42["tick",{"sb":"server","c":0,"s":12,"ti":100,"ts":105,"p":"xx"},"77"]"#;
        let got = find(tick).unwrap();
        assert!(got.server);
        assert_eq!((got.seq, got.intended_ns, got.sent_ns), (12, 100, 105));
        assert_eq!(find(b"{\"sb\":"), None);
    }

    proptest::proptest! {
        /// Any bytes from the network: `find` never panics.
        #[test]
        fn find_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = find(&data);
        }

        /// A written object is found again, whatever surrounds it (bytes without `{`).
        #[test]
        fn find_agrees_with_write(
            run: u32, client: u32, seq: u32, ti: u64, ts: u64, pad in 0usize..64,
            prefix in "[^{]{0,16}", suffix in "[^{]{0,16}",
        ) {
            let f = Fields { run, client, seq, intended_ns: ti, sent_ns: ts };
            let mut buf = prefix.into_bytes();
            write(&mut buf, &f, MIN_PAYLOAD_SIZE + pad);
            buf.extend_from_slice(suffix.as_bytes());
            let got = find(&buf).expect("found");
            proptest::prop_assert_eq!((got.run, got.client, got.seq), (run, client, seq));
            proptest::prop_assert_eq!((got.intended_ns, got.sent_ns), (ti, ts));
        }
    }
}
