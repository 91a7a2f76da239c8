//! Unit tests of the verdict rule (crafted run pairs are in `tests/compare.rs`).

use super::*;
use crate::threshold::Direction::{HigherIsBetter, LowerIsBetter};

#[test]
fn judge_follows_direction_noise_and_limit() {
    let o = CompareOptions::default();
    assert_eq!(judge(LowerIsBetter, 100.0, 104.0, &o).0, Change::Unchanged);
    assert_eq!(judge(LowerIsBetter, 100.0, 96.0, &o).0, Change::Unchanged);
    let (c, p, fails) = judge(LowerIsBetter, 100.0, 108.0, &o);
    assert_eq!((c, fails), (Change::Regressed, false));
    assert!((p.expect("pct") - 8.0).abs() < 1e-9);
    assert_eq!(
        judge(LowerIsBetter, 100.0, 150.0, &o),
        (Change::Regressed, Some(50.0), true)
    );
    assert_eq!(
        judge(LowerIsBetter, 100.0, 50.0, &o),
        (Change::Improved, Some(-50.0), false)
    );
    assert_eq!(
        judge(HigherIsBetter, 100.0, 50.0, &o),
        (Change::Regressed, Some(-50.0), true)
    );
    assert_eq!(judge(HigherIsBetter, 100.0, 150.0, &o).0, Change::Improved);
    assert_eq!(judge(LowerIsBetter, 0.0, 0.0, &o).0, Change::Unchanged);
    assert_eq!(
        judge(LowerIsBetter, 0.0, 3.0, &o),
        (Change::Regressed, None, true)
    );
    assert_eq!(
        judge(HigherIsBetter, 0.0, 3.0, &o),
        (Change::Improved, None, false)
    );
}

#[test]
fn identical_runs_are_unchanged_and_pass() {
    let run = crate::fixture::example_run(20);
    let c = compare(&run, "a.json", &run, "b.json", CompareOptions::default());
    assert!(c.passed);
    assert_eq!((c.regressed, c.improved, c.failing), (0, 0, 0));
    assert!(c.unchanged > 10, "{}", c.unchanged);
    assert!(c.differences.is_empty(), "{:?}", c.differences);
    assert!(c.headline.starts_with("PASS"));
}
