//! A JSON check that accepts exactly what `serde_json::from_str::<serde_json::Value>`
//! accepts, without building the value (no map, no strings, no allocation).
//!
//! Receives: a JSON text. Emits: whether parsing it as a `Value` would succeed.
//! Must not: be laxer than the `Value` parse. A one-pass scan accepts the plain cases
//! (no `\u` escapes, no exponents, no long numbers, shallow nesting); anything else goes
//! through serde_json's own `deserialize_any` calls (so the same recursion limit, number
//! range checks, string escape and surrogate checks and trailing-character check), unlike
//! `IgnoredAny`, which skips values without those checks.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// True when `text` parses as a `serde_json::Value`.
pub fn is_valid(text: &str) -> bool {
    plain(text.as_bytes()) || serde_json::from_str::<Checked>(text).is_ok()
}

/// Deepest nesting [`plain`] follows (serde_json's limit is 128).
const PLAIN_DEPTH: u32 = 100;
/// Longest digit run [`plain`] accepts in a number (far from any f64 overflow).
const PLAIN_DIGITS: usize = 64;

/// True only for JSON that serde_json certainly accepts, judged in one pass: strings
/// without `\u` escapes or control characters, numbers without exponents or long digit
/// runs, at most [`PLAIN_DEPTH`] levels. False means "not sure" (or invalid).
fn plain(b: &[u8]) -> bool {
    // One bit per open container: 1 = object, 0 = array.
    let mut objects: u128 = 0;
    let mut depth: u32 = 0;
    let mut i = skip_ws(b, 0);
    loop {
        // A value starts at `i`.
        match b.get(i) {
            Some(b'{' | b'[') => {
                let object = b[i] == b'{';
                if depth == PLAIN_DEPTH {
                    return false;
                }
                objects = (objects << 1) | u128::from(object);
                depth += 1;
                i = skip_ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    depth -= 1;
                    objects >>= 1;
                    i += 1;
                } else {
                    if object {
                        match key(b, i) {
                            Some(next) => i = next,
                            None => return false,
                        }
                    }
                    continue;
                }
            }
            Some(b'"') => match string(b, i) {
                Some(next) => i = next,
                None => return false,
            },
            Some(b't') if b[i..].starts_with(b"true") => i += 4,
            Some(b'f') if b[i..].starts_with(b"false") => i += 5,
            Some(b'n') if b[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => match number(b, i) {
                Some(next) => i = next,
                None => return false,
            },
            _ => return false,
        }
        // After a value: close containers, or a comma and the next value.
        loop {
            i = skip_ws(b, i);
            if depth == 0 {
                return i == b.len();
            }
            let object = objects & 1 == 1;
            let close = if object { b'}' } else { b']' };
            match b.get(i) {
                Some(&c) if c == close => {
                    depth -= 1;
                    objects >>= 1;
                    i += 1;
                }
                Some(b',') => {
                    i = skip_ws(b, i + 1);
                    if object {
                        match key(b, i) {
                            Some(next) => i = next,
                            None => return false,
                        }
                    }
                    break;
                }
                _ => return false,
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `"key" :` at `i`, then whitespace: the index of the value.
fn key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, string(b, i)?);
    (b.get(i) == Some(&b':')).then(|| skip_ws(b, i + 1))
}

/// A string at `i` (on its opening quote): the index after its closing quote.
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// A number at `i`: the index after it (no exponent, digit runs up to [`PLAIN_DIGITS`]).
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[i] == b'-' {
        i += 1;
    }
    let n = digits(i);
    if n == 0 || n > PLAIN_DIGITS || (n > 1 && b[i] == b'0') {
        return None;
    }
    i += n;
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 || n > PLAIN_DIGITS {
            return None;
        }
        i += 1 + n;
    }
    match b.get(i) {
        Some(b'e' | b'E') => None,
        _ => Some(i),
    }
}

/// Any JSON value, checked and thrown away.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_ok(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(text).is_ok()
    }

    #[test]
    fn agrees_with_the_value_parse() {
        let deep_ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let too_deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let long_int = format!("[{}]", "9".repeat(400));
        let cases = [
            r#"["echo",{"seq":1,"t":2.5,"pad":"xx"}]"#,
            r#"["echo"]"#,
            r#" [ "echo" , null , true , false , -0 , 1e5 , "\n\u00e9" ] "#,
            r#"["echo",{"a":1,"a":2}]"#,
            r#"["echo","\ud83d\ude00"]"#,
            // Rejected by the Value parse but skipped by `IgnoredAny`:
            r#"["echo",1e400]"#,
            r#"["echo","\ud800"]"#,
            r#"["echo",{"\udc00":1}]"#,
            &too_deep,
            &deep_ok,
            &long_int,
            // Plain syntax errors:
            r#"["echo",]"#,
            r#"["echo" 1]"#,
            r#"["echo",01]"#,
            r#"["echo","\x"]"#,
            "[\"echo\",\"a\u{1}\"]",
            r#"["echo"]]"#,
            r#"["echo"] x"#,
            r#"["echo",{1:2}]"#,
            r#"["echo",nul]"#,
            r#"["echo""#,
            "",
        ];
        for text in cases {
            assert_eq!(is_valid(text), value_ok(text), "{text}");
        }
        assert!(!is_valid(r#"["echo",1e400]"#), "number out of range");
        assert!(!is_valid(r#"["echo","\ud800"]"#), "lone surrogate");
        assert!(!is_valid(&too_deep), "recursion limit");
        assert!(is_valid(r#"["echo",{"seq":1}]"#));
    }

    #[test]
    fn the_plain_scan_accepts_the_common_cases() {
        for text in [
            r#"["echo",{"sb":"r1","c":12,"s":3,"ti":1764138000123456789,"ts":-1.5,"p":"xx"}]"#,
            r#" [ "a" , [ ] , { } , [1,[2,{"k":[true,false,null]}]] , "\"\\\/\n" ] "#,
            r#"{"a":{"b":{}}}"#,
            "0",
            "\"é\"",
        ] {
            assert!(plain(text.as_bytes()), "{text}");
            assert!(value_ok(text), "{text}");
        }
    }

    /// Mutations of valid texts: whatever the plain scan accepts, the Value parse accepts.
    #[test]
    fn the_plain_scan_never_accepts_what_serde_rejects() {
        let seeds = [
            r#"["echo",{"sb":"r1","c":12,"s":3,"ti":1764138000123456789,"p":"a\"b"}]"#,
            r#"[[1,2.5,-0],{"k":[true,false,null]},"x\\y",{}]"#,
        ];
        let alphabet = b"[]{}\",:.-+eE0129 tfnrulas\\/\x01";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut rejected) = (0, 0);
        for round in 0..20_000 {
            let mut text = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..(1 + next() % 3) {
                let at = (next() % text.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => text[at] = c,
                    1 => text.insert(at, c),
                    _ => {
                        text.remove(at);
                    }
                }
                if text.is_empty() {
                    break;
                }
            }
            let Ok(text) = std::str::from_utf8(&text) else {
                continue;
            };
            if plain(text.as_bytes()) {
                accepted += 1;
                assert!(value_ok(text), "plain accepted what serde rejects: {text}");
            } else if !value_ok(text) {
                rejected += 1;
            }
            assert_eq!(is_valid(text), value_ok(text), "{text}");
        }
        assert!(accepted > 100 && rejected > 100, "{accepted} / {rejected}");
    }
}
