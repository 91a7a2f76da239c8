//! Appends interval histograms to `histograms.hlog` (HdrHistogram interval log format).
//!
//! Receives one histogram per metric at the end of each interval; emits text lines
//! `Tag=<metric>,<start s>,<length s>,<max us>,<base64 V2-deflate>` after a
//! `#[StartTime]` / `#[BaseTime]` header and the legend line, as Java's `HistogramLogWriter`
//! writes them, so HdrHistogram's own tools read the file.
//! Must not: hold the file open unbuffered (writes go through a `BufWriter`), or stop the
//! run on an I/O error (the caller disables the log and reports it).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

/// An open interval log.
pub struct HlogWriter {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl HlogWriter {
    /// Creates (truncates) the log and writes its header. `start` is the run start; interval
    /// timestamps are seconds after it.
    pub fn create(path: &Path, start: SystemTime) -> std::io::Result<HlogWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("swarmbench interval histograms: values in microseconds, one line per metric per interval")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter { out, serializer })
    }

    /// Appends one interval histogram of `tag`, `offset` after the run start.
    pub fn write(
        &mut self,
        tag: &str,
        h: &Histogram<u64>,
        offset: Duration,
        length: Duration,
    ) -> std::io::Result<()> {
        // A builder with no headers (and divisor 1) writes nothing: it only lends us a writer.
        let mut w =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        w.write_histogram(h, offset, length, Tag::new(tag))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Flushes buffered lines to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
