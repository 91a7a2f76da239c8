//! The JSON path subset of flows: `$`, then any of `.name`, `['name']` / `["name"]` and
//! `[N]`, e.g. `$.user.id`, `$.messages[0].id`, `$['request-id']`; and the `where`
//! conditions built on them (`PATH`, `PATH == VALUE`, `PATH != VALUE`).
//!
//! Receives a path or condition as written in a plan; emits a compiled [`Path`] /
//! [`Cond`] or a message; resolves a path against a `serde_json::Value`.
//! Must not: accept a path longer than [`MAX_PATH_BYTES`] or with more than
//! [`MAX_SEGMENTS`] segments, recurse, or panic on any input.

use crate::template::{Escape, Text};

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 256;
/// Most segments after `$`.
pub const MAX_SEGMENTS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// As written.
    pub text: String,
    segs: Vec<Seg>,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let t = text.trim();
        if t.len() > MAX_PATH_BYTES {
            return Err(format!(
                "JSON path of {} bytes is longer than {MAX_PATH_BYTES}",
                t.len()
            ));
        }
        let Some(mut rest) = t.strip_prefix('$') else {
            return Err(format!("JSON path {t:?} must start with `$`"));
        };
        let bad =
            |why: &str| format!("JSON path {t:?}: {why} (write e.g. `$.a.b[0]` or `$['a-b']`)");
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if segs.len() == MAX_SEGMENTS {
                return Err(bad(&format!("more than {MAX_SEGMENTS} segments")));
            }
            if let Some(r) = rest.strip_prefix('.') {
                let n = r
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                    .count();
                if n == 0 {
                    return Err(bad("a `.` must be followed by a name"));
                }
                segs.push(Seg::Key(r[..n].to_string()));
                rest = &r[n..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let Some(close) = r.find(']') else {
                    return Err(bad("a `[` is never closed"));
                };
                let inner = r[..close].trim();
                let quoted = inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')));
                if quoted {
                    segs.push(Seg::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    let i: usize = inner.parse().map_err(|_| {
                        bad(&format!(
                            "`[{inner}]` is neither an index nor a quoted name"
                        ))
                    })?;
                    segs.push(Seg::Index(i));
                }
                rest = &r[close + 1..];
            } else {
                return Err(bad("expected `.name`, `['name']` or `[N]`"));
            }
        }
        Ok(Path {
            text: t.to_string(),
            segs,
        })
    }

    /// The value at this path in `v`, if there is one.
    pub fn get<'a>(&self, v: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        let mut cur = v;
        for s in &self.segs {
            cur = match (s, cur) {
                (Seg::Key(k), serde_json::Value::Object(m)) => m.get(k)?,
                (Seg::Index(i), serde_json::Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// The form of a value flows compare and capture: a string's content, anything else its
/// JSON text (`42`, `true`, `{"a":1}`).
pub fn key_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `where` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub path: Path,
    /// `None`: the path must exist. `Some((equal, value))`: `==` / `!=` a value (a JSON
    /// literal, with placeholders; compared by [`key_string`]).
    pub cmp: Option<(bool, Text)>,
    /// The condition as written.
    pub text: String,
}

impl Cond {
    /// `PATH`, `PATH == VALUE` or `PATH != VALUE`; VALUE is a JSON literal (`"lobby"`,
    /// `3`, `true`) in which placeholders may appear (`"{room}"`).
    pub fn parse(text: &str) -> Result<Cond, String> {
        let (path_text, cmp) = match (text.find("=="), text.find("!=")) {
            (Some(i), _) => (&text[..i], Some((true, &text[i + 2..]))),
            (None, Some(i)) => (&text[..i], Some((false, &text[i + 2..]))),
            (None, None) => (text, None),
        };
        let path = Path::parse(path_text)?;
        let cmp = match cmp {
            None => None,
            Some((eq, v)) => {
                let v = v.trim();
                if v.is_empty() {
                    return Err(format!(
                        "condition {text:?} has no value after its operator"
                    ));
                }
                let inner = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                    &v[1..v.len() - 1]
                } else {
                    v
                };
                Some((eq, Text::parse(inner, Escape::Plain)?))
            }
        };
        Ok(Cond {
            path,
            cmp,
            text: text.trim().to_string(),
        })
    }

    /// Whether `v` meets the condition; `want` is the value with its placeholders filled.
    pub fn holds(&self, v: &serde_json::Value, want: Option<&str>) -> bool {
        let Some(found) = self.path.get(v) else {
            return false;
        };
        match (&self.cmp, want) {
            (None, _) => true,
            (Some((eq, _)), Some(w)) => (key_string(found) == w) == *eq,
            (Some(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_resolve_and_bad_ones_are_refused() {
        let v = json!({"a": {"b": [1, {"c-d": "x"}]}, "n": 5});
        assert_eq!(Path::parse("$").unwrap().get(&v), Some(&v));
        assert_eq!(Path::parse("$.a.b[0]").unwrap().get(&v), Some(&json!(1)));
        assert_eq!(
            Path::parse("$.a.b[1]['c-d']").unwrap().get(&v),
            Some(&json!("x"))
        );
        assert_eq!(Path::parse("$.a.zz").unwrap().get(&v), None);
        assert_eq!(Path::parse("$.n[0]").unwrap().get(&v), None);
        for bad in [
            "a.b",
            "$.",
            "$[",
            "$[x]",
            "$..a",
            &format!("${}", ".a".repeat(17)),
        ] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
        assert!(Path::parse(&format!("$.{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn conditions_compare_by_key_string() {
        let v = json!({"room": "r1", "n": 3});
        let c = Cond::parse(r#"$.room == "{room}""#).unwrap();
        assert!(c.holds(&v, Some("r1")));
        assert!(!c.holds(&v, Some("r2")));
        let c = Cond::parse("$.n != 3").unwrap();
        assert!(!c.holds(&v, Some("3")));
        let c = Cond::parse("$.n").unwrap();
        assert!(c.holds(&v, None));
        assert!(!Cond::parse("$.x").unwrap().holds(&v, None));
        assert!(Cond::parse("$.n ==").is_err());
    }
}
