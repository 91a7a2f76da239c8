//! Argument templates of Socket.IO emits (join, leave, publish): a JSON array in which
//! `{room}` and `{payload}` stand for the room name and the swarm's payload object, e.g.
//! `["{room}",{payload}]` or `[{"channel":"{room}","data":{payload}}]`.
//!
//! Receives the template text (CLI or plan file). Emits a compiled [`Template`] that
//! writes the arguments of one emit (without the outer brackets, ready to follow the event
//! name) into a caller-owned buffer, or a message saying what is wrong with the template.
//! Must not: allocate per emit, or accept a template that cannot yield valid JSON.

use bytes::BufMut;

use crate::payload::{self, Fields};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Room,
    Payload,
}

/// A compiled argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template as written (for the run file).
    pub text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `text`. `payload` says whether `{payload}` must appear (exactly once) or
    /// must not appear at all.
    pub fn parse(text: &str, payload: bool) -> Result<Template, String> {
        let trimmed = text.trim();
        let probe = trimmed
            .replace("{room}", "r")
            .replace("{payload}", r#"{"sb":1}"#);
        match serde_json::from_str::<serde_json::Value>(&probe) {
            Ok(serde_json::Value::Array(_)) => {}
            Ok(_) => return Err(format!("{text:?} must be a JSON array of arguments")),
            Err(e) => {
                return Err(format!(
                    "{text:?} is not a JSON array once {{room}} and {{payload}} are filled in ({e}); \
                     write the room inside quotes, e.g. '[\"{{room}}\",{{payload}}]'"
                ));
            }
        }
        let n = trimmed.matches("{payload}").count();
        match (payload, n) {
            (true, 1) | (false, 0) => {}
            (true, _) => {
                return Err(format!(
                    "{text:?} must hold {{payload}} exactly once (where the payload object goes)"
                ));
            }
            (false, _) => return Err(format!("{text:?} must not hold {{payload}}")),
        }
        // The arguments between the outer brackets.
        let inner = trimmed[1..trimmed.len() - 1].trim();
        let mut parts = Vec::new();
        let mut rest = inner;
        while !rest.is_empty() {
            let next = [("{room}", Part::Room), ("{payload}", Part::Payload)]
                .into_iter()
                .filter_map(|(tok, part)| rest.find(tok).map(|i| (i, tok.len(), part)))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, len, part)) => {
                    if i > 0 {
                        parts.push(Part::Lit(rest.as_bytes()[..i].to_vec()));
                    }
                    parts.push(part);
                    rest = &rest[i + len..];
                }
                None => {
                    parts.push(Part::Lit(rest.as_bytes().to_vec()));
                    rest = "";
                }
            }
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// True when the template has no arguments at all (`[]`).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Writes the arguments for `room` (and the payload object of `fields`, padded to
    /// `size`). `room` must be JSON-string safe (plan validation checks room names).
    pub fn write(&self, out: &mut impl BufMut, room: &str, fields: Option<(&Fields, usize)>) {
        for part in &self.parts {
            match part {
                Part::Lit(b) => out.put_slice(b),
                Part::Room => out.put_slice(room.as_bytes()),
                Part::Payload => {
                    if let Some((f, size)) = fields {
                        payload::write(out, f, size);
                    } else {
                        out.put_slice(b"null");
                    }
                }
            }
        }
    }
}

/// True if `name` can be put inside a JSON string and a URL path as it is.
pub fn room_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            run: 1,
            client: 2,
            seq: 3,
            intended_ns: 4,
            sent_ns: 5,
        }
    }

    fn render(t: &Template, room: &str) -> String {
        let mut out = Vec::new();
        let f = fields();
        t.write(&mut out, room, Some((&f, 120)));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn places_room_and_payload_anywhere() {
        let t = Template::parse(r#"[{"channel":"{room}","data":{payload}}]"#, true).unwrap();
        let args = render(&t, "room-3");
        let v: serde_json::Value = serde_json::from_str(&format!("[\"ev\",{args}]")).unwrap();
        assert_eq!(v[1]["channel"], "room-3");
        assert_eq!(v[1]["data"]["s"], 3);
        assert_eq!(
            crate::payload::find(args.as_bytes()).map(|f| f.seq),
            Some(3)
        );
        let t = Template::parse(r#"["{room}",{payload}]"#, true).unwrap();
        assert!(render(&t, "a").starts_with(r#""a",{"sb":1,"#));
        let join = Template::parse(r#"["{room}"]"#, false).unwrap();
        let mut out = Vec::new();
        join.write(&mut out, "lobby", None);
        assert_eq!(out, br#""lobby""#);
        assert!(Template::parse("[]", false).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(Template::parse(r#"[{room}]"#, false).is_err(), "bare room");
        assert!(
            Template::parse(r#"{"a":{payload}}"#, true).is_err(),
            "not an array"
        );
        assert!(
            Template::parse(r#"["{room}"]"#, true).is_err(),
            "no payload"
        );
        assert!(
            Template::parse(r#"[{payload},{payload}]"#, true).is_err(),
            "twice"
        );
        assert!(Template::parse(r#"["{room}",{payload}]"#, false).is_err());
        assert!(room_name_ok("room-1") && !room_name_ok("a\"b") && !room_name_ok(""));
    }
}
