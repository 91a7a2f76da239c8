//! Templates with placeholders.
//!
//! [`Template`]: the arguments of Socket.IO emits (join, leave, publish), a JSON array in
//! which `{room}` and `{payload}` stand for the room name and the swarm's payload object,
//! `{client}` for the client's number and `{FIELD}` for a field of the client's data record
//! (`--data`), e.g. `["{room}",{payload}]` or `[{"channel":"{room}","user":"{user}"}]`.
//! [`Text`]: a URL path and query, a header value or the CONNECT auth, with the same
//! placeholders (`{payload}` excepted), each value escaped for where it goes.
//!
//! Receives the template text (CLI or plan file), then the data file's field names
//! ([`Template::bind`], [`Text::bind`]). Emits a compiled template that writes one emit's
//! arguments (without the outer brackets, ready to follow the event name) into a
//! caller-owned buffer, or a text for one client; or a message saying what is wrong.
//! Must not: allocate per emit, accept a template that cannot yield valid JSON, or show a
//! data value in a message.

use bytes::BufMut;

use crate::payload::{self, Fields};

/// What a client fills the placeholders with.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    pub client: u32,
    /// The client's room (`idle` when it has none).
    pub room: &'a str,
    /// The client's data record (empty without `--data`).
    pub record: &'a [String],
}

impl Vars<'_> {
    /// Vars with no data, room `idle`.
    pub fn none(client: u32) -> Vars<'static> {
        Vars {
            client,
            room: "idle",
            record: &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Room,
    Payload,
    Client,
    /// A data field, by index in the record.
    Field(usize),
    /// A data field not yet bound to an index.
    Named(String),
}

/// The `{name}` placeholders of `text`: (start, end, name), in order. A brace followed by
/// anything but a name and `}` (JSON's `{"a":1}`, `{}`) is not a placeholder.
fn placeholders(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            let name_len = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-')
                .count();
            let end = i + 1 + name_len;
            if name_len > 0 && b.get(end) == Some(&b'}') {
                out.push((i, end + 1, &text[i + 1..end]));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `text` cut into literal and placeholder parts.
fn split(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut at = 0;
    for (start, end, name) in placeholders(text) {
        if start > at {
            parts.push(Part::Lit(text.as_bytes()[at..start].to_vec()));
        }
        parts.push(match name {
            "room" => Part::Room,
            "payload" => Part::Payload,
            "client" => Part::Client,
            _ => Part::Named(name.to_string()),
        });
        at = end;
    }
    if at < text.len() {
        parts.push(Part::Lit(text.as_bytes()[at..].to_vec()));
    }
    parts
}

/// Binds the named parts to `fields` (the data file's); an unknown name is an error.
fn bind(parts: &mut [Part], fields: &[String]) -> Result<(), String> {
    for part in parts.iter_mut() {
        if let Part::Named(name) = part {
            match fields.iter().position(|f| f == name) {
                Some(i) => *part = Part::Field(i),
                None if fields.is_empty() => {
                    return Err(format!(
                        "placeholder {{{name}}} needs --data (a data file with a {name:?} \
                         field); without one only {{client}} and {{room}} are filled in"
                    ));
                }
                None => {
                    return Err(format!(
                        "placeholder {{{name}}} names no field of the data file (its fields: \
                         {}; also {{client}} and {{room}})",
                        fields.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

fn has_vars(parts: &[Part]) -> bool {
    parts.iter().any(|p| {
        matches!(
            p,
            Part::Room | Part::Client | Part::Field(_) | Part::Named(_)
        )
    })
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
    /// must not appear at all. Data fields stay unbound until [`Template::bind`].
    pub fn parse(text: &str, payload: bool) -> Result<Template, String> {
        let trimmed = text.trim();
        let mut probe = String::with_capacity(trimmed.len());
        let mut at = 0;
        for (start, end, name) in placeholders(trimmed) {
            probe.push_str(&trimmed[at..start]);
            probe.push_str(match name {
                "payload" => r#"{"sb":1}"#,
                "client" => "0",
                _ => "r",
            });
            at = end;
        }
        probe.push_str(&trimmed[at..]);
        match serde_json::from_str::<serde_json::Value>(&probe) {
            Ok(serde_json::Value::Array(_)) => {}
            Ok(_) => return Err(format!("{text:?} must be a JSON array of arguments")),
            Err(e) => {
                return Err(format!(
                    "{text:?} is not a JSON array once its placeholders are filled in ({e}); \
                     write {{room}} and data fields inside quotes, e.g. \
                     '[\"{{room}}\",{{payload}}]'"
                ));
            }
        }
        let n = placeholders(trimmed)
            .iter()
            .filter(|p| p.2 == "payload")
            .count();
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
        Ok(Template {
            text: text.to_string(),
            parts: split(inner),
        })
    }

    /// Binds `{FIELD}` placeholders to the data file's `fields`.
    pub fn bind(&mut self, fields: &[String]) -> Result<(), String> {
        bind(&mut self.parts, fields).map_err(|e| format!("{:?}: {e}", self.text))
    }

    /// True when the template has no arguments at all (`[]`).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Writes the arguments for the client of `vars` (and the payload object of `fields`,
    /// padded to `size`). `vars.room` must be JSON-string safe (plan validation checks room
    /// names); data values are escaped as JSON string content.
    pub fn write(&self, out: &mut impl BufMut, vars: &Vars, fields: Option<(&Fields, usize)>) {
        for part in &self.parts {
            match part {
                Part::Lit(b) => out.put_slice(b),
                Part::Room => out.put_slice(vars.room.as_bytes()),
                Part::Payload => {
                    if let Some((f, size)) = fields {
                        payload::write(out, f, size);
                    } else {
                        out.put_slice(b"null");
                    }
                }
                Part::Client => {
                    let mut digits = [0u8; 20];
                    out.put_slice(payload::itoa(u64::from(vars.client), &mut digits));
                }
                Part::Field(i) => {
                    json_escape_into(out, vars.record.get(*i).map_or("", String::as_str))
                }
                Part::Named(_) => {}
            }
        }
    }
}

/// How a [`Text`]'s values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// A URL path or query: every byte but the unreserved ones percent-encoded.
    Url,
    /// Inside a JSON string (the CONNECT auth).
    Json,
    /// As it is (a header value; data values hold no control characters).
    Plain,
}

/// A string with placeholders (URL, header value, CONNECT auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    parts: Vec<Part>,
    escape: Escape,
}

impl Text {
    /// Compiles `text`; `{payload}` is not allowed.
    pub fn parse(text: &str, escape: Escape) -> Result<Text, String> {
        let parts = split(text);
        if parts.contains(&Part::Payload) {
            return Err("{payload} is only for emit arguments".into());
        }
        Ok(Text { parts, escape })
    }

    /// Binds `{FIELD}` placeholders to the data file's `fields`.
    pub fn bind(&mut self, fields: &[String]) -> Result<(), String> {
        bind(&mut self.parts, fields)
    }

    /// True when something in the text depends on the client.
    pub fn varies(&self) -> bool {
        has_vars(&self.parts)
    }

    /// The text for the client of `vars`.
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Room => self.value(&mut out, vars.room),
                Part::Client => out.extend_from_slice(vars.client.to_string().as_bytes()),
                Part::Field(i) => {
                    self.value(&mut out, vars.record.get(*i).map_or("", String::as_str))
                }
                Part::Payload | Part::Named(_) => {}
            }
        }
        // Literal parts came from a `&str` and values are escaped or UTF-8 themselves.
        String::from_utf8(out).unwrap_or_default()
    }

    fn value(&self, out: &mut Vec<u8>, v: &str) {
        match self.escape {
            Escape::Plain => out.extend_from_slice(v.as_bytes()),
            Escape::Json => json_escape_into(out, v),
            Escape::Url => {
                for &b in v.as_bytes() {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                        out.push(b);
                    } else {
                        out.extend_from_slice(format!("%{b:02X}").as_bytes());
                    }
                }
            }
        }
    }
}

/// `v` as the content of a JSON string (without the quotes).
fn json_escape_into(out: &mut impl BufMut, v: &str) {
    for c in v.chars() {
        match c {
            '"' => out.put_slice(b"\\\""),
            '\\' => out.put_slice(b"\\\\"),
            c if (c as u32) < 0x20 => out.put_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.put_slice(c.encode_utf8(&mut b).as_bytes());
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
        let vars = Vars {
            client: 7,
            room,
            record: &[],
        };
        t.write(&mut out, &vars, Some((&f, 120)));
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
        join.write(
            &mut out,
            &Vars {
                room: "lobby",
                ..Vars::none(0)
            },
            None,
        );
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

    #[test]
    fn client_and_fields_in_emit_arguments() {
        let mut t =
            Template::parse(r#"["{room}",{"u":"{user}","n":{client}},{payload}]"#, true).unwrap();
        assert!(Template::parse(r#"[{user}]"#, false).is_err(), "bare field");
        let mut unbound = t.clone();
        let e = unbound.bind(&[]).unwrap_err();
        assert!(e.contains("needs --data"), "{e}");
        let e = unbound.bind(&["name".into()]).unwrap_err();
        assert!(e.contains("names no field") && e.contains("name"), "{e}");
        t.bind(&["user".into()]).unwrap();
        let record = vec!["a\"b\\c".to_string()];
        let vars = Vars {
            client: 42,
            room: "r1",
            record: &record,
        };
        let mut out = Vec::new();
        let f = fields();
        t.write(&mut out, &vars, Some((&f, 120)));
        let args = String::from_utf8(out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&format!("[{args}]")).unwrap();
        assert_eq!(v[0], "r1");
        assert_eq!(v[1]["u"], "a\"b\\c");
        assert_eq!(v[1]["n"], 42);
        assert_eq!(v[2]["s"], 3);
    }

    #[test]
    fn text_escapes_for_where_it_goes() {
        let record = vec!["a b&c/é".to_string(), "t\"k".to_string()];
        let vars = Vars {
            client: 5,
            room: "lobby",
            record: &record,
        };
        let fields = ["user".to_string(), "token".to_string()];
        let mut url = Text::parse("/chat?user={user}&c={client}&r={room}", Escape::Url).unwrap();
        url.bind(&fields).unwrap();
        assert!(url.varies());
        assert_eq!(
            url.render(&vars),
            "/chat?user=a%20b%26c%2F%C3%A9&c=5&r=lobby"
        );
        let mut auth = Text::parse(r#"{"token":"{token}","n":"{client}"}"#, Escape::Json).unwrap();
        auth.bind(&fields).unwrap();
        let v: serde_json::Value = serde_json::from_str(&auth.render(&vars)).unwrap();
        assert_eq!(v["token"], "t\"k");
        assert_eq!(v["n"], "5");
        let mut h = Text::parse("Bearer {token}", Escape::Plain).unwrap();
        h.bind(&fields).unwrap();
        assert_eq!(h.render(&vars), "Bearer t\"k");
        let plain = Text::parse(r#"{"a":1}"#, Escape::Json).unwrap();
        assert!(!plain.varies());
        assert_eq!(plain.render(&vars), r#"{"a":1}"#);
        assert!(Text::parse("{payload}", Escape::Url).is_err());
    }
}
