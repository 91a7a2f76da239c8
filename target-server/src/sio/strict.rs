//! A JSON check that accepts exactly what `serde_json::from_str::<serde_json::Value>`
//! accepts, without building the value (no map, no strings, no allocation).
//!
//! Receives: a JSON text. Emits: whether parsing it as a `Value` would succeed.
//! Must not: be laxer than the `Value` parse: it goes through the same `deserialize_any`
//! calls (so the same recursion limit, number range checks, string escape and surrogate
//! checks and trailing-character check), unlike `IgnoredAny`, which skips values without
//! those checks.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// True when `text` parses as a `serde_json::Value`.
pub fn is_valid(text: &str) -> bool {
    serde_json::from_str::<Checked>(text).is_ok()
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
}
