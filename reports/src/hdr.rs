//! Bounded decoding of HdrHistogram V2 encodings that come from a file.
//!
//! Receives the bytes of one encoded histogram (from `results.json`'s base64, or a line of
//! `histograms.hlog`); checks the encoding before the `hdrhistogram` decoder sees it and
//! emits a [`Histogram`], or a [`HdrRejected`] that says which check failed.
//! Must not: let a declared length or range size an allocation before the bytes are there,
//! allocate more than [`MAX_COUNTS_LEN`] counts or [`MAX_PAYLOAD_BYTES`] of payload for one
//! histogram, or panic.
//!
//! Why: the V2 decoder sizes its payload buffer from the header's `payload_len` (a u32) and
//! its counts array from the declared range, before reading anything else, so ~60 crafted
//! bytes asked it for 4 GiB. Here the compressed form is inflated by us, with the output
//! capped, the header is checked against what was actually inflated, the payload is walked
//! once (every zero run and count must land inside the declared counts array, the total count
//! must fit a u64), and only then is the plain V2 form handed to the decoder. The rules are
//! written down in docs/results-format.md ("Histogram encoding").

use std::io::Read as _;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

/// Cookie of the plain V2 encoding (as HdrHistogram writes it, word size bits included).
pub const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
/// Cookie of the V2-deflate encoding.
pub const V2_DEFLATE_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Largest counts array accepted (8 MiB of u64 counts). The run file's own histograms
/// (1 µs .. 1 h, 3 digits) have 23,552; any range at 3 digits fits, and 4 digits up to
/// about 2^60.
pub const MAX_COUNTS_LEN: usize = 1 << 20;
/// Largest counts payload accepted (inflated, after the 40-byte header).
pub const MAX_PAYLOAD_BYTES: usize = 4 << 20;
/// Largest encoded (compressed) histogram accepted.
pub const MAX_ENCODED_BYTES: usize = MAX_PAYLOAD_BYTES + 64;
/// The plain V2 header: cookie, payload length, normalizing offset, digits, low, high,
/// integer-to-double ratio.
const HEADER_BYTES: usize = 40;

/// Why an encoded histogram was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdrRejected {
    #[error("it is {0} bytes long, more than the {MAX_ENCODED_BYTES} accepted")]
    TooLong(usize),
    #[error("it is truncated: {0}")]
    Truncated(&'static str),
    #[error("unknown cookie {0:#010x} (not an HdrHistogram V2 or V2-deflate encoding)")]
    Cookie(u32),
    #[error("it declares {declared} compressed bytes but {present} are present")]
    CompressedLength { declared: usize, present: usize },
    #[error("its compressed part does not inflate: {0}")]
    Inflate(String),
    #[error("it declares a payload of {declared} bytes but {present} are present")]
    PayloadLength { declared: usize, present: usize },
    #[error("it declares a payload of {0} bytes, more than the {MAX_PAYLOAD_BYTES} accepted")]
    PayloadTooLong(usize),
    #[error("unsupported header field: {0}")]
    Unsupported(&'static str),
    #[error("invalid range or precision: {0}")]
    Range(String),
    #[error("its range and precision need {0} counts, more than the {MAX_COUNTS_LEN} accepted")]
    TooManyCounts(u64),
    #[error("its counts run past the end of the declared range (index {0})")]
    PastRange(u64),
    #[error("a count is malformed: {0}")]
    Count(&'static str),
    #[error("its total count does not fit in 64 bits")]
    TotalOverflow,
    #[error("the decoder refused it: {0}")]
    Decoder(String),
}

/// The declared shape of a histogram, read from a V2 header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub payload_len: usize,
    pub digits: u8,
    pub low: u64,
    pub high: u64,
}

/// Decodes a V2 or V2-deflate encoding after checking it (see the module docs).
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, HdrRejected> {
    let plain = checked_plain(bytes)?;
    Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(|e| HdrRejected::Decoder(format!("{e:?}")))
}

/// The checked plain V2 form of `bytes` (inflated when it is V2-deflate).
pub fn checked_plain(bytes: &[u8]) -> Result<Vec<u8>, HdrRejected> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(HdrRejected::TooLong(bytes.len()));
    }
    let cookie = be_u32(bytes, 0).ok_or(HdrRejected::Truncated("no cookie"))?;
    let plain = match cookie {
        V2_COOKIE => bytes.to_vec(),
        V2_DEFLATE_COOKIE => inflate(bytes)?,
        other => return Err(HdrRejected::Cookie(other)),
    };
    let header = check_header(&plain)?;
    check_payload(
        &plain[HEADER_BYTES..HEADER_BYTES + header.payload_len],
        &header,
    )?;
    Ok(plain)
}

/// Inflates a V2-deflate encoding: at most the header plus [`MAX_PAYLOAD_BYTES`] come out,
/// whatever the compressed part claims.
fn inflate(bytes: &[u8]) -> Result<Vec<u8>, HdrRejected> {
    let declared = be_u32(bytes, 4).ok_or(HdrRejected::Truncated("no compressed length"))?;
    let declared = usize::try_from(declared).unwrap_or(usize::MAX);
    let present = bytes.len() - 8;
    if declared > present {
        return Err(HdrRejected::CompressedLength { declared, present });
    }
    let compressed = &bytes[8..8 + declared];
    let limit = (HEADER_BYTES + MAX_PAYLOAD_BYTES) as u64;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| HdrRejected::Inflate(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(HdrRejected::PayloadTooLong(out.len() - HEADER_BYTES));
    }
    match be_u32(&out, 0) {
        Some(V2_COOKIE) => Ok(out),
        Some(other) => Err(HdrRejected::Cookie(other)),
        None => Err(HdrRejected::Truncated("the inflated part has no cookie")),
    }
}

/// Checks the plain V2 header against the bytes present and the bounds.
pub fn check_header(plain: &[u8]) -> Result<Header, HdrRejected> {
    if plain.len() < HEADER_BYTES {
        return Err(HdrRejected::Truncated("shorter than the 40-byte header"));
    }
    let field = |at| be_u32(plain, at).unwrap_or(0);
    let wide = |at| be_u64(plain, at).unwrap_or(0);
    let payload_len = usize::try_from(field(4)).unwrap_or(usize::MAX);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(HdrRejected::PayloadTooLong(payload_len));
    }
    let present = plain.len() - HEADER_BYTES;
    if payload_len > present {
        return Err(HdrRejected::PayloadLength {
            declared: payload_len,
            present,
        });
    }
    if field(8) != 0 {
        return Err(HdrRejected::Unsupported("a normalizing index offset"));
    }
    let digits = u8::try_from(field(12))
        .ok()
        .filter(|d| *d <= 5)
        .ok_or_else(|| HdrRejected::Range(format!("{} significant digits", field(12))))?;
    let (low, high) = (wide(16), wide(24));
    if f64::from_bits(wide(32)) != 1.0 {
        return Err(HdrRejected::Unsupported(
            "an integer-to-double ratio other than 1",
        ));
    }
    let counts = counts_len(low, high, digits)?;
    if counts > MAX_COUNTS_LEN as u64 {
        return Err(HdrRejected::TooManyCounts(counts));
    }
    Ok(Header {
        payload_len,
        digits,
        low,
        high,
    })
}

/// Length of the counts array a histogram of this range and precision has (the same
/// arithmetic as `hdrhistogram`'s constructor), without allocating it.
pub fn counts_len(low: u64, high: u64, digits: u8) -> Result<u64, HdrRejected> {
    if !(1..=u64::MAX / 2).contains(&low) || high < 2 * low || digits > 5 {
        return Err(HdrRejected::Range(format!(
            "lowest {low}, highest {high}, {digits} digits"
        )));
    }
    let largest = 2 * 10_u32.pow(u32::from(digits));
    let unit_magnitude = 63 - low.leading_zeros();
    let sub_bucket_count_magnitude = f64::from(largest).log2().ceil() as u32;
    if unit_magnitude + sub_bucket_count_magnitude > 63 {
        return Err(HdrRejected::Range(format!(
            "{digits} digits cannot be kept above a lowest value of {low}"
        )));
    }
    let sub_bucket_count = 1_u64 << sub_bucket_count_magnitude;
    let mut smallest_untrackable = sub_bucket_count << unit_magnitude;
    let mut buckets: u64 = 1;
    while smallest_untrackable <= high {
        if smallest_untrackable > u64::MAX / 2 {
            buckets += 1;
            break;
        }
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    Ok((buckets + 1) * (sub_bucket_count / 2))
}

/// Walks the counts payload: ZigZag LEB128 numbers, a negative one a run of zeros. Every
/// count must land inside the counts array and the total must fit a u64.
fn check_payload(payload: &[u8], header: &Header) -> Result<(), HdrRejected> {
    let len = counts_len(header.low, header.high, header.digits)?;
    let mut at = 0;
    let mut index: u64 = 0;
    let mut total: u64 = 0;
    while at < payload.len() {
        let (raw, used) = varint(&payload[at..])?;
        at += used;
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if n < 0 {
            let zeros = n.unsigned_abs();
            index = index
                .checked_add(zeros)
                .filter(|i| *i <= len)
                .ok_or(HdrRejected::PastRange(index.saturating_add(zeros)))?;
        } else {
            if n > 0 {
                if index >= len {
                    return Err(HdrRejected::PastRange(index));
                }
                total = total
                    .checked_add(n as u64)
                    .ok_or(HdrRejected::TotalOverflow)?;
            }
            index += 1;
        }
    }
    Ok(())
}

/// One LEB128-64b9B number (HdrHistogram's varint: the 9th byte carries 8 bits).
fn varint(b: &[u8]) -> Result<(u64, usize), HdrRejected> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(i).ok_or(HdrRejected::Count("a number is cut off"))?;
        if i == 8 {
            value |= u64::from(byte) << 56;
            return Ok((value, 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(HdrRejected::Count("a number is cut off"))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer, V2Serializer};

    fn rejected(bytes: &[u8]) -> HdrRejected {
        match decode(bytes) {
            Ok(h) => panic!("accepted a histogram of {} counts", h.len()),
            Err(e) => e,
        }
    }

    fn sample() -> Histogram<u64> {
        let mut h = crate::distribution::new_histogram();
        for v in [1, 10, 100, 1_000, 10_000, 3_599_999_999] {
            h.record_n(v, v % 7 + 1).expect("in range");
        }
        h
    }

    #[test]
    fn our_counts_len_matches_the_library() {
        for (low, high, digits) in [
            (1, crate::distribution::HIGHEST_US, 3),
            (1, 2, 0),
            (1, u64::MAX, 3),
            (1000, 1 << 40, 4),
            (3, 1 << 30, 5),
            (1 << 20, u64::MAX, 2),
        ] {
            let h = Histogram::<u64>::new_with_bounds(low, high, digits).expect("bounds");
            assert_eq!(
                counts_len(low, high, digits).expect("ours"),
                h.distinct_values() as u64,
                "{low} {high} {digits}"
            );
        }
    }

    #[test]
    fn both_encodings_round_trip() {
        let h = sample();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).expect("v2");
        let mut deflated = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut deflated)
            .expect("v2 deflate");
        for bytes in [plain, deflated] {
            let back = decode(&bytes).expect("decodes");
            assert_eq!(back, h);
        }
    }

    #[test]
    fn header_checks_reject_what_they_should() {
        let mut plain = Vec::new();
        V2Serializer::new()
            .serialize(&sample(), &mut plain)
            .expect("v2");
        let set = |at: usize, v: &[u8]| {
            let mut b = plain.clone();
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        type IsExpected = fn(&HdrRejected) -> bool;
        let cases: Vec<(Vec<u8>, IsExpected)> = vec![
            (set(4, &u32::MAX.to_be_bytes()), |e| {
                matches!(e, HdrRejected::PayloadTooLong(_))
            }),
            (set(4, &1000_u32.to_be_bytes()), |e| {
                matches!(e, HdrRejected::PayloadLength { .. })
            }),
            (set(12, &6_u32.to_be_bytes()), |e| {
                matches!(e, HdrRejected::Range(_))
            }),
            (set(16, &0_u64.to_be_bytes()), |e| {
                matches!(e, HdrRejected::Range(_))
            }),
            (
                {
                    let b = set(24, &u64::MAX.to_be_bytes());
                    let mut b = b;
                    b[12..16].copy_from_slice(&5_u32.to_be_bytes());
                    b
                },
                |e| matches!(e, HdrRejected::TooManyCounts(_)),
            ),
            (set(8, &1_u32.to_be_bytes()), |e| {
                matches!(e, HdrRejected::Unsupported(_))
            }),
            (plain[..20].to_vec(), |e| {
                matches!(e, HdrRejected::Truncated(_))
            }),
            (set(0, &7_u32.to_be_bytes()), |e| {
                matches!(e, HdrRejected::Cookie(7))
            }),
        ];
        for (bytes, ok) in cases {
            let e = rejected(&bytes);
            assert!(ok(&e), "{e}");
        }
    }

    #[test]
    fn counts_past_the_range_or_overflowing_are_rejected() {
        let header = |payload: &[u8]| {
            let mut b = Vec::new();
            b.extend(V2_COOKIE.to_be_bytes());
            b.extend((payload.len() as u32).to_be_bytes());
            b.extend(0_u32.to_be_bytes());
            b.extend(3_u32.to_be_bytes());
            b.extend(1_u64.to_be_bytes());
            b.extend(crate::distribution::HIGHEST_US.to_be_bytes());
            b.extend(1.0_f64.to_bits().to_be_bytes());
            b.extend(payload);
            b
        };
        // A zero run of i64::MIN (ZigZag u64::MAX): 9 bytes of all ones.
        let e = rejected(&header(&[0xff; 9]));
        assert!(matches!(e, HdrRejected::PastRange(_)), "{e}");
        // A zero run to the end of the array, then one count.
        let mut p = Vec::new();
        let run = (23_552_u64 << 1) - 1; // ZigZag of -23,552
        let mut v = run;
        while v >= 0x80 {
            p.push((v as u8) | 0x80);
            v >>= 7;
        }
        p.push(v as u8);
        p.push(2); // count 1
        let e = rejected(&header(&p));
        assert!(matches!(e, HdrRejected::PastRange(23_552)), "{e}");
        // Three counts of i64::MAX overflow the total.
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let e = rejected(&header(&[max, max, max].concat()));
        assert_eq!(e, HdrRejected::TotalOverflow);
        // A cut-off number.
        let e = rejected(&header(&[0x80]));
        assert!(matches!(e, HdrRejected::Count(_)), "{e}");
    }
}
