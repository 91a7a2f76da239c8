//! The NDJSON stream (`--out ndjson=PATH|-`): one JSON object per closed second, written
//! as it closes (docs/results-format.md#ndjson-stream).
//!
//! Receives each [`LiveSecond`] with its phase. Emits one line: the second's series point
//! (the fields of results.json's `series`), `phase` and `scenario`, the echo and broadcast
//! latency windows of the second, and the run's counters so far.
//! Must not: stop the run when the file cannot be written (the error is kept and the stream
//! ends).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{LiveSecond, Stream, Totals, Window};

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    point: &'a reports::SecondPoint,
    phase: &'a str,
    scenario: &'a str,
    echo_latency_us: Option<Window>,
    broadcast_latency_us: Option<Window>,
    totals: &'a Totals,
    failed_by_kind: &'a BTreeMap<String, u64>,
    errors_by_kind: &'a BTreeMap<String, u64>,
    disconnects_by_reason: &'a BTreeMap<String, u64>,
}

/// An open stream.
pub struct Writer {
    out: Box<dyn Write + Send>,
    pub lines: u64,
    pub error: Option<String>,
}

impl Writer {
    /// Opens (creates or truncates) the stream's file, or takes stdout.
    pub fn open(to: &Stream) -> Result<Writer, String> {
        let out: Box<dyn Write + Send> = match to {
            Stream::Stdout => Box::new(std::io::stdout()),
            Stream::File(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )),
        };
        Ok(Writer {
            out,
            lines: 0,
            error: None,
        })
    }

    /// Writes one second's line and flushes it.
    pub fn write(&mut self, s: &LiveSecond, phase: &str, scenario: &str) {
        if self.error.is_some() {
            return;
        }
        let line = Line {
            point: &s.point,
            phase,
            scenario,
            echo_latency_us: s.windows.echo,
            broadcast_latency_us: s.windows.broadcast,
            totals: &s.totals,
            failed_by_kind: &s.failed_by_kind,
            errors_by_kind: &s.errors_by_kind,
            disconnects_by_reason: &s.disconnects_by_reason,
        };
        let result = serde_json::to_vec(&line)
            .map_err(std::io::Error::other)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                self.out.write_all(&bytes)?;
                self.out.flush()
            });
        match result {
            Ok(()) => self.lines += 1,
            Err(e) => {
                tracing::warn!("NDJSON stream stopped: {e}");
                self.error = Some(e.to_string());
            }
        }
    }
}
