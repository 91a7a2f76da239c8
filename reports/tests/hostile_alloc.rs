//! Crafted histograms must not make a reader allocate what their header claims.
//!
//! A counting global allocator (this test binary only) measures the peak bytes each thread
//! holds while a results file full of crafted histograms is read, rendered (HTML and
//! Markdown), compared, merged and checked against thresholds, and while a crafted
//! `histograms.hlog` is read. A single request above [`REFUSE_BYTES`] is refused outright
//! (the process then aborts with "memory allocation of N bytes failed"): without the checks
//! of `reports::hdr`, the first crafted histogram asked for 4 GiB.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;

use base64::Engine as _;
use reports::compare::{CompareOptions, compare};
use reports::fixture::example_full_run;
use reports::hlog::{HlogEntry, HlogReader};
use reports::{RunFile, merge, render_html, render_markdown};

/// Peak a reader may hold on one thread while handling the crafted inputs.
const PEAK_LIMIT_BYTES: usize = 32 << 20;
/// Any single allocation above this is refused (a machine shared by parallel tests must not
/// page 4 GiB in to find out).
const REFUSE_BYTES: usize = 1 << 30;

struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn add(n: usize) {
    let _ = HELD.try_with(|h| {
        let now = h.get().saturating_add(n);
        h.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn sub(n: usize) {
    let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to the system allocator with the same layout; the
// counters are plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_BYTES {
            return std::ptr::null_mut();
        }
        add(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_BYTES {
            return std::ptr::null_mut();
        }
        add(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSE_BYTES {
            return std::ptr::null_mut();
        }
        sub(layout.size());
        add(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes held above the start on this thread.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get).saturating_sub(base))
}

/// A plain V2 header: payload length, digits, lowest, highest.
fn v2_header(payload_len: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0x1c84_9313_u32.to_be_bytes());
    b.extend(payload_len.to_be_bytes());
    b.extend(0_u32.to_be_bytes());
    b.extend(digits.to_be_bytes());
    b.extend(low.to_be_bytes());
    b.extend(high.to_be_bytes());
    b.extend(1.0_f64.to_bits().to_be_bytes());
    b
}

/// The V2-deflate form of `plain`, as results.json and the hlog carry it.
fn deflated(plain: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(plain).expect("compress");
    let compressed = z.finish().expect("compress");
    let mut b = Vec::new();
    b.extend(0x1c84_9314_u32.to_be_bytes());
    b.extend((compressed.len() as u32).to_be_bytes());
    b.extend(compressed);
    b
}

/// The crafted encodings, base64, with what each one tries.
fn crafted() -> Vec<(&'static str, String)> {
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    vec![
        (
            "payload length 4 GiB, no payload",
            b64(deflated(&v2_header(u32::MAX, 3, 1, 3_600_000_000))),
        ),
        (
            "range 1..2^64 at 5 digits (6.3M counts), no payload",
            b64(deflated(&v2_header(0, 5, 1, u64::MAX))),
        ),
        (
            "plain V2, payload length 4 GiB",
            b64(v2_header(u32::MAX, 3, 1, 3_600_000_000)),
        ),
    ]
}

/// Replaces every embedded histogram of `value` with `encoded`.
fn replace_histograms(value: &mut serde_json::Value, encoded: &str) -> usize {
    match value {
        serde_json::Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if k == "hdr_v2_deflate_base64" {
                    *v = serde_json::Value::String(encoded.to_string());
                    n += 1;
                } else {
                    n += replace_histograms(v, encoded);
                }
            }
            n
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .map(|v| replace_histograms(v, encoded))
            .sum(),
        _ => 0,
    }
}

#[test]
fn the_first_crafted_histogram_is_about_sixty_bytes() {
    let (_, first) = &crafted()[0];
    assert!(first.len() <= 64, "{} base64 characters", first.len());
}

#[test]
fn crafted_histograms_in_results_json_stay_within_the_bound() {
    for (what, encoded) in crafted() {
        let mut value = serde_json::to_value(example_full_run(20)).expect("json");
        assert!(
            replace_histograms(&mut value, &encoded) > 5,
            "fixture has histograms"
        );
        let bytes = serde_json::to_vec(&value).expect("bytes");
        let ((), peak) = peak_during(|| {
            let run = RunFile::from_slice(&bytes, "crafted.json").expect("the JSON is valid");
            let d = run.run.echo.as_ref().expect("echo").latency.clone();
            assert!(d.histogram().is_err(), "{what}: rejected");
            // Each renderer decodes histograms; each must survive with the crafted ones.
            let _ = render_html(&run);
            let _ = render_markdown(&run);
            let _ = compare(&run, "a", &run, "b", CompareOptions::default());
            let _ = merge(&[run.clone(), run.clone()]);
            let t = reports::parse_threshold("echo.latency.p95 < 10ms").expect("threshold");
            let r = reports::threshold::evaluate(&[t], &run);
            assert!(!r[0].pass, "{what}: an undecodable histogram cannot pass");
        });
        assert!(
            peak < PEAK_LIMIT_BYTES,
            "{what}: peak {peak} bytes held while reading and rendering"
        );
    }
}

#[test]
fn crafted_histograms_in_an_hlog_stay_within_the_bound() {
    for (what, encoded) in crafted() {
        let log = format!(
            "#[StartTime: 1700000000.000 (seconds since epoch), x]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n\
             Tag=echo.latency,0.000,1.000,1.000,{encoded}\n"
        );
        let (items, peak) = peak_during(|| HlogReader::new(log.as_bytes()).collect::<Vec<_>>());
        assert!(matches!(items[0], Ok(HlogEntry::StartTime(_))), "{what}");
        assert!(items[1].is_err(), "{what}: the crafted line is an error");
        assert!(peak < PEAK_LIMIT_BYTES, "{what}: peak {peak} bytes");
    }
}
