//! Property tests of the readers of files the tools did not write themselves (issue 11,
//! fuzzing): `RunFile::from_slice` (results.json), the histogram decoder `hdr::decode` and
//! the interval-log reader `HlogReader`. Any bytes, and any small mutation of a valid
//! file, give a value or an error: never a panic, never a huge allocation (the decoder's
//! size checks run before any buffer is sized; `hostile_alloc.rs` measures that part).
//!
//! Cases: 64 per property here (PROPTEST_CASES raises it; `scripts/fuzz.sh` runs them long).

use std::io::Cursor;

use proptest::prelude::*;
use reports::fixture::example_run;
use reports::hlog::HlogReader;
use reports::{RunFile, hdr};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        ..ProptestConfig::default()
    }
}

/// A valid results.json, once.
fn valid_json() -> &'static [u8] {
    static JSON: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    JSON.get_or_init(|| {
        example_run(50)
            .to_json()
            .expect("the example run serializes")
            .into_bytes()
    })
}

/// A valid histogram in the run file's encoding (base64 of a V2 compressed histogram).
fn valid_histogram() -> Vec<u8> {
    let run = example_run(20);
    let d = run
        .run
        .echo
        .as_ref()
        .map(|e| e.latency.clone())
        .expect("example echo latency");
    base64_decode(&d.hdr_v2_deflate_base64)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("the fixture's histogram is base64")
}

/// `bytes` with up to 8 positions overwritten, a cut, or a splice.
fn mutate(bytes: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, b) in edits {
        if !out.is_empty() {
            let i = at % out.len();
            out[i] = b;
        }
    }
    if let Some(c) = cut {
        out.truncate(c % (out.len() + 1));
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_a_run_file_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = RunFile::from_slice(&bytes, "fuzz.json");
    }

    #[test]
    fn a_mutated_run_file_is_a_run_file_or_an_error(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let bytes = mutate(valid_json(), &edits, cut);
        if let Ok(run) = RunFile::from_slice(&bytes, "fuzz.json") {
            // What parses also renders without a panic.
            let _ = reports::render_markdown(&run);
        }
    }

    #[test]
    fn any_bytes_are_a_histogram_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = hdr::decode(&bytes);
    }

    #[test]
    fn a_mutated_histogram_is_a_histogram_or_an_error(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let bytes = mutate(&valid_histogram(), &edits, cut);
        if let Ok(h) = hdr::decode(&bytes) {
            // A decoded histogram answers queries.
            let _ = h.value_at_quantile(0.99);
        }
    }

    #[test]
    fn any_text_is_an_interval_log_or_errors(
        lines in proptest::collection::vec(
            prop_oneof![
                "[ -~]{0,80}",
                "Tag=[a-z]{0,6},[0-9.]{1,8},[0-9.]{1,8},[0-9.]{1,8},[A-Za-z0-9+/=]{0,64}",
                "#\\[[A-Za-z]{0,10}: [ -~]{0,20}\\]",
                "[0-9.]{1,8},[0-9.]{1,8},[0-9.]{1,8},[A-Za-z0-9+/=]{0,64}",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        let reader = HlogReader::new(Cursor::new(text.into_bytes()));
        // Bounded: every line is an entry or an error, then the reader ends.
        let n = reader.take(64).count();
        prop_assert!(n <= 64);
    }

    #[test]
    fn any_bytes_are_an_interval_log_or_errors(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let reader = HlogReader::new(Cursor::new(bytes));
        let _ = reader.take(1100).count();
    }
}

/// The mutation strategy reaches the decoders' checks, not only the JSON syntax: some
/// mutated run files still parse, and some mutated histograms are rejected by the
/// histogram checks (this is what keeps the properties above from passing vacuously).
#[test]
fn mutations_reach_the_checks() {
    let run_ok = (0..200usize)
        .filter(|i| {
            let bytes = mutate(valid_json(), &[(i * 7919, b' ')], None);
            RunFile::from_slice(&bytes, "m.json").is_ok()
        })
        .count();
    assert!(run_ok > 0, "no mutated run file parsed");
    let h = valid_histogram();
    assert!(hdr::decode(&h).is_ok(), "the valid histogram decodes");
    let rejected = (0..40usize)
        .filter(|i| hdr::decode(&mutate(&h, &[(*i, 0xff)], None)).is_err())
        .count();
    assert!(rejected > 0, "no mutated histogram was rejected");
}
