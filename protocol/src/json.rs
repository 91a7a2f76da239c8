//! JSON written straight into a `String` buffer (no intermediate allocation).
//!
//! Receives: any `Serialize` value and the buffer to append to. Emits: its compact JSON.
//! Must not: allocate a temporary string on the normal path.

use std::io;

use serde::Serialize;

/// `io::Write` over a `String`. serde_json only ever writes whole UTF-8 sequences (string
/// fragments are split at ASCII escape positions), so each chunk is checked, then appended.
struct StringWriter<'a>(&'a mut String);

impl io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = std::str::from_utf8(buf).map_err(io::Error::other)?;
        self.0.push_str(s);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends the compact JSON of `value` to `out`.
pub(crate) fn write_into<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    let start = out.len();
    if serde_json::to_writer(StringWriter(out), value).is_err() {
        // Not reachable for the types this crate writes (string keys, no failing
        // Serialize impls); fall back to the allocating path rather than emit half a value.
        out.truncate(start);
        if let Ok(s) = serde_json::to_string(value) {
            out.push_str(&s);
        }
    }
}
