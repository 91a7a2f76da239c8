//! Reading `histograms.hlog` (HdrHistogram interval log) line by line, bounded.
//!
//! Receives any reader (a file, possibly cut off by a killed run, possibly hostile); emits
//! one [`HlogEntry`] per meaningful line: `#[StartTime: ..]`, `#[BaseTime: ..]`, and each
//! interval line `[Tag=<metric>,]<start s>,<length s>,<max>,<base64 V2-deflate>` with its
//! histogram decoded through the checks of [`crate::hdr`]. Comments, the legend line and
//! blank lines are skipped.
//! Must not: read a line longer than [`MAX_LINE_BYTES`] into memory, keep more than one
//! decoded histogram at a time, or panic. The first malformed line ends the iteration with an
//! error naming its line number; a last line without its newline (a killed writer) is
//! reported as [`HlogError::Truncated`], so callers can keep what came before it.

use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;

use base64::Engine as _;
use hdrhistogram::Histogram;

use crate::hdr::{HdrRejected, MAX_ENCODED_BYTES};

/// Longest line accepted: a tag, three numbers and the base64 of the largest encoding.
pub const MAX_LINE_BYTES: usize = MAX_ENCODED_BYTES / 3 * 4 + 4096;

/// One meaningful line of an interval log.
#[derive(Debug, Clone, PartialEq)]
pub enum HlogEntry {
    /// Seconds since the Unix epoch at which the log started.
    StartTime(f64),
    /// Seconds since the Unix epoch that interval start times are relative to.
    BaseTime(f64),
    Interval(Interval),
}

/// One interval histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The metric (swarm writes one tag per metric, e.g. `echo.latency`).
    pub tag: Option<String>,
    /// Start of the interval, seconds after the base time.
    pub start_s: f64,
    pub length_s: f64,
    /// The maximum value as written on the line (µs for swarm's logs).
    pub max: f64,
    pub histogram: Histogram<u64>,
}

/// Why an interval log could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("cannot read the interval log: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: u64 },
    #[error("line {line} is cut off (no newline): the writer stopped mid-line")]
    Truncated { line: u64 },
    #[error("line {line}: {why}")]
    Malformed { line: u64, why: String },
    #[error("line {line}: the histogram is not valid base64: {source}")]
    Base64 {
        line: u64,
        source: base64::DecodeError,
    },
    #[error("line {line}: the histogram was rejected: {source}")]
    Histogram { line: u64, source: HdrRejected },
}

/// Iterates the entries of an interval log.
pub struct HlogReader<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl HlogReader<BufReader<std::fs::File>> {
    /// Opens an interval log file.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(HlogReader::new(BufReader::new(std::fs::File::open(path)?)))
    }
}

impl<R: BufRead> HlogReader<R> {
    pub fn new(input: R) -> Self {
        HlogReader {
            input,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line, without its newline; `None` at the end.
    fn next_line(&mut self) -> Option<Result<&[u8], HlogError>> {
        self.buf.clear();
        self.line += 1;
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
        {
            Err(e) => Some(Err(e.into())),
            Ok(0) => None,
            Ok(_) if self.buf.last() == Some(&b'\n') => {
                self.buf.pop();
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                Some(Ok(&self.buf))
            }
            Ok(n) if n as u64 >= limit => Some(Err(HlogError::LineTooLong { line: self.line })),
            Ok(_) => Some(Err(HlogError::Truncated { line: self.line })),
        }
    }
}

impl<R: BufRead> Iterator for HlogReader<R> {
    type Item = Result<HlogEntry, HlogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let n = self.line + 1;
            let parsed = match self.next_line()? {
                Err(e) => Err(e),
                Ok(line) => parse_line(line, n),
            };
            match parsed {
                Ok(None) => continue,
                Ok(Some(entry)) => return Some(Ok(entry)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// One line: `Ok(None)` for a line that carries nothing (comment, legend, blank).
fn parse_line(line: &[u8], n: u64) -> Result<Option<HlogEntry>, HlogError> {
    let bad = |why: &str| HlogError::Malformed {
        line: n,
        why: why.to_string(),
    };
    let text = std::str::from_utf8(line).map_err(|_| bad("not UTF-8"))?;
    if let Some(rest) = text.strip_prefix("#[StartTime: ") {
        return Ok(Some(HlogEntry::StartTime(seconds(rest, n)?)));
    }
    if let Some(rest) = text.strip_prefix("#[BaseTime: ") {
        return Ok(Some(HlogEntry::BaseTime(seconds(rest, n)?)));
    }
    if text.trim().is_empty() || text.starts_with('#') || text.starts_with("\"StartTimestamp\"") {
        return Ok(None);
    }
    let (tag, rest) = match text.strip_prefix("Tag=") {
        Some(r) => {
            let (t, rest) = r
                .split_once(',')
                .ok_or_else(|| bad("a tag without a comma"))?;
            (Some(t.to_string()), rest)
        }
        None => (None, text),
    };
    let mut fields = rest.splitn(4, ',');
    let mut number = |what: &str| -> Result<f64, HlogError> {
        let f = fields
            .next()
            .ok_or_else(|| bad(&format!("no {what} field")))?;
        f.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad(&format!("{what} is not a non-negative number")))
    };
    let start_s = number("start")?;
    let length_s = number("length")?;
    let max = number("max")?;
    let encoded = fields.next().ok_or_else(|| bad("no histogram field"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|source| HlogError::Base64 { line: n, source })?;
    let histogram =
        crate::hdr::decode(&bytes).map_err(|source| HlogError::Histogram { line: n, source })?;
    Ok(Some(HlogEntry::Interval(Interval {
        tag,
        start_s,
        length_s,
        max,
        histogram,
    })))
}

/// `1700000000.123 (seconds since epoch), ...]` -> 1700000000.123.
fn seconds(rest: &str, n: u64) -> Result<f64, HlogError> {
    rest.split(' ')
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| HlogError::Malformed {
            line: n,
            why: "a time header without a number of seconds".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    use std::time::{Duration, SystemTime};

    fn log(lines: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("test")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut ser)
            .expect("header");
        for i in 0..lines {
            let mut h = crate::distribution::new_histogram();
            h.record_n(100 + i as u64, 3).expect("record");
            w.write_histogram(
                &h,
                Duration::from_secs(i as u64),
                Duration::from_secs(1),
                Tag::new("echo.latency"),
            )
            .expect("line");
        }
        out
    }

    #[test]
    fn reads_what_hdrhistogram_writes() {
        let entries: Vec<_> = HlogReader::new(log(3).as_slice())
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(entries[0], HlogEntry::StartTime(1_700_000_000.0));
        assert_eq!(entries[1], HlogEntry::BaseTime(1_700_000_000.0));
        let intervals: Vec<&Interval> = entries
            .iter()
            .filter_map(|e| match e {
                HlogEntry::Interval(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(intervals.len(), 3);
        assert_eq!(intervals[2].tag.as_deref(), Some("echo.latency"));
        assert_eq!(intervals[2].start_s, 2.0);
        assert_eq!(intervals[2].histogram.len(), 3);
        assert_eq!(intervals[2].histogram.max(), 102);
    }

    #[test]
    fn a_cut_off_last_line_is_truncated_and_earlier_lines_stay() {
        let mut bytes = log(2);
        bytes.truncate(bytes.len() - 5);
        let items: Vec<_> = HlogReader::new(bytes.as_slice()).collect();
        let good = items.iter().filter(|i| i.is_ok()).count();
        assert_eq!(good, 3, "start, base and the first interval");
        assert!(matches!(
            items.last(),
            Some(Err(HlogError::Truncated { .. }))
        ));
    }

    #[test]
    fn an_overlong_line_is_refused_without_reading_it_whole() {
        let bytes = vec![b'A'; MAX_LINE_BYTES * 2];
        let items: Vec<_> = HlogReader::new(bytes.as_slice()).collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Err(HlogError::LineTooLong { line: 1 })));
    }

    #[test]
    fn malformed_numbers_are_errors() {
        for line in [
            "Tag=x,-1,1,1,HISTFAAAAA==\n",
            "Tag=x,NaN,1,1,HISTFAAAAA==\n",
            "1,2\n",
            "Tag=x\n",
        ] {
            let items: Vec<_> = HlogReader::new(line.as_bytes()).collect();
            assert!(
                matches!(items[0], Err(HlogError::Malformed { line: 1, .. })),
                "{line}: {items:?}"
            );
        }
    }
}
