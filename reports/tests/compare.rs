//! `compare` verdicts on crafted pairs of runs: a clear regression, a clear improvement,
//! noise, and runs of different scenarios and plans.

use reports::RunFile;
use reports::compare::{Change, CompareOptions, Comparison, Row, compare};
use reports::distribution::new_histogram;
use reports::fixture::{example_full_run, example_run};
use reports::{Distribution, EchoStats};

fn dist(values: impl IntoIterator<Item = u64>) -> Distribution {
    let mut h = new_histogram();
    for v in values {
        h.saturating_record(v);
    }
    Distribution::from_histogram(&h, 0).expect("encode")
}

/// `run` with its echo latencies multiplied by `factor` (whole run and the echo phase).
fn scaled(mut run: RunFile, factor: f64) -> RunFile {
    let scale = |e: &mut EchoStats| {
        let n = e.received;
        e.latency = dist((0..n).map(|i| ((200 + (i * 7919) % 4000) as f64 * factor) as u64));
        e.service = dist((0..n).map(|i| ((150 + (i * 7919) % 3000) as f64 * factor) as u64));
    };
    if let Some(e) = run.run.echo.as_mut() {
        scale(e);
    }
    for p in &mut run.phases {
        if let Some(e) = p.stats.echo.as_mut() {
            scale(e);
        }
    }
    run
}

fn row<'a>(c: &'a Comparison, name: &str) -> &'a Row {
    c.groups
        .iter()
        .flat_map(|g| g.rows.iter())
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn a_clear_regression_fails() {
    let base = example_run(100);
    let new = scaled(example_run(100), 2.0);
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    assert!(!c.passed, "{}", c.headline);
    let p99 = row(&c, "echo.latency.p99");
    assert_eq!(p99.change, Change::Regressed);
    assert!(p99.fails);
    assert!(
        (p99.change_pct.expect("pct") - 100.0).abs() < 1.0,
        "{:?}",
        p99.change_pct
    );
    assert_eq!(p99.delta_text, "+100%");
    let phase = row(&c, "steady.echo.latency.p99");
    assert!(phase.fails, "the phase regressed too");
    assert!(c.headline.starts_with("FAIL"), "{}", c.headline);
    assert!(c.worst.iter().any(|r| r.name.contains("echo.latency")));
    // A looser limit turns the same pair into a pass, with the regression still shown.
    let loose = CompareOptions {
        noise_pct: 5.0,
        max_regression_pct: 150.0,
    };
    let c = compare(&base, "b", &new, "n", loose);
    assert!(c.passed, "{}", c.headline);
    assert_eq!(row(&c, "echo.latency.p99").change, Change::Regressed);
    assert!(!row(&c, "echo.latency.p99").fails);
}

#[test]
fn a_clear_improvement_passes() {
    let base = example_run(100);
    let mut new = scaled(example_run(100), 0.5);
    if let Some(e) = new.run.echo.as_mut() {
        e.timeouts = 0;
        e.unanswered_at_stop = 0;
    }
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    assert!(c.passed, "{}", c.headline);
    let p99 = row(&c, "echo.latency.p99");
    assert_eq!(p99.change, Change::Improved);
    assert!(p99.change_pct.expect("pct") < -40.0);
    assert_eq!(
        row(&c, "echo.timeouts").change,
        Change::Improved,
        "fewer timeouts is better"
    );
    assert!(c.improved >= 5, "{}", c.improved);
    assert_eq!(c.failing, 0);
}

#[test]
fn noise_is_unchanged() {
    let base = example_run(100);
    let new = scaled(example_run(100), 1.03);
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    assert!(c.passed, "{}", c.headline);
    let p99 = row(&c, "echo.latency.p99");
    assert_eq!(p99.change, Change::Unchanged, "{:?}", p99.change_pct);
    assert!(
        p99.change_pct.expect("pct") > 0.0,
        "still a measured change"
    );
    assert_eq!(c.regressed, 0);
    // With a 1% noise band the same 3% is a regression, but within the 10% limit.
    let tight = CompareOptions {
        noise_pct: 1.0,
        max_regression_pct: 10.0,
    };
    let c = compare(&base, "b", &new, "n", tight);
    assert_eq!(row(&c, "echo.latency.p99").change, Change::Regressed);
    assert!(c.passed, "{}", c.headline);
}

#[test]
fn direction_decides_what_worse_means() {
    let base = example_run(100);
    let mut new = example_run(100);
    // Throughput down by half (higher is better) and errors up from 1 to 3 (lower is better).
    for s in std::iter::once(&mut new.run).chain(new.phases.iter_mut().map(|p| &mut p.stats)) {
        s.duration_ms *= 2;
    }
    new.run.errors.insert("unmatched".into(), 3);
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    let t = row(&c, "echo.throughput");
    assert_eq!(t.direction, "higher");
    assert_eq!(t.change, Change::Regressed);
    assert!(t.fails);
    let e = row(&c, "errors.unmatched");
    assert_eq!(e.direction, "lower");
    assert_eq!(e.change, Change::Regressed);
    // Offered load is shown but never judged.
    let sent = row(&c, "echo.sent");
    assert_eq!(sent.change, Change::Info);
    assert!(!sent.fails);
}

#[test]
fn different_scenarios_compare_on_what_they_share() {
    let base = example_run(100);
    let mut new = example_full_run(100);
    new.meta.plan[1].rate_per_s = Some(20.0);
    new.meta.target_url = "http://127.0.0.1:4000/".into();
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    let names: Vec<&str> = c
        .groups
        .iter()
        .flat_map(|g| g.rows.iter())
        .map(|r| r.name.as_str())
        .collect();
    assert!(names.contains(&"echo.latency.p99"), "shared echo compared");
    assert!(
        !names.iter().any(|n| n.contains("broadcast")),
        "broadcast only in new: {names:?}"
    );
    let said = c.differences.join("\n");
    for needle in [
        "only the new run has broadcast data",
        "only the new run has heartbeat data",
        "phase fanout-10 (broadcast) is only in the new run",
        "phase steady was planned differently: rate 10/s vs 20/s",
        "targets differ",
    ] {
        assert!(said.contains(needle), "missing `{needle}` in:\n{said}");
    }
    // The reverse direction says the same from the other side.
    let back = compare(&new, "n", &base, "b", CompareOptions::default());
    assert!(
        back.differences
            .iter()
            .any(|d| d.contains("only the base run has broadcast data"))
    );
}

#[test]
fn a_saturated_swarm_is_said_not_judged() {
    let base = example_run(100);
    let mut new = example_run(100);
    new.health.summary.saturated = true;
    new.health.summary.saturated_seconds = 5;
    let c = compare(&base, "b", &new, "n", CompareOptions::default());
    assert!(c.passed, "the swarm's own state does not fail a comparison");
    assert_eq!(row(&c, "swarm.saturated").change, Change::Info);
    assert!(
        c.differences
            .iter()
            .any(|d| d.contains("new run's swarm was saturated"))
    );
}

#[test]
fn docs_describe_the_comparison_rules() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results-format.md"),
    )
    .expect("docs/results-format.md");
    let section = doc
        .split("## Comparing runs")
        .nth(1)
        .expect("a `Comparing runs` section");
    for name in reports::compare::metrics::LOAD
        .iter()
        .chain(reports::compare::metrics::ALWAYS.iter())
    {
        assert!(
            section.contains(&format!("`{name}`")),
            "docs do not name `{name}`"
        );
    }
    for word in [
        "--noise",
        "--max-regression",
        "unchanged",
        "improved",
        "regressed",
        "exit code 1",
    ] {
        assert!(section.contains(word), "docs do not say `{word}`");
    }
}
