//! The HTML report and the comparison in a real headless Chromium (Debian's /usr/bin/chromium
//! driven by playwright-core through `interop/report-check.mjs`), loaded from a `file://` URL
//! with the browser offline and every other request aborted.
//!
//! Receives: pages rendered from fixture results files into a temp dir. Emits: assertions
//! that each page loads with no console error and no request beyond itself, that each
//! section holds the expected number of SVG charts, that every chart has hover targets with
//! titles, that a hostile file leaves no live element or handler in the page; screenshots in
//! a kept temp dir whose path is printed.
//! Must not: download a browser, leave Chromium or Node running (the script's own deadline
//! and ours bound it), write outside temp dirs. Skipped, with a message, only when `node` is
//! missing and `CI` is not set; a missing Chromium is a failure (scripts/test.sh installs it).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reports::compare::{CompareOptions, compare, render};
use reports::fixture::{example_full_run, example_run};
use reports::render_html;
use reports::view::ReportModel;
use serde_json::Value;
use testkit::CHROMIUM;

/// Node.js, playwright-core and Chromium are there (testkit's one rule: a missing `node`
/// fails under `CI`, else the test is skipped; a missing package or Chromium fails).
fn node_ready(test: &str) -> bool {
    testkit::browser_ready(test, &[])
}

/// What the check script reported, and everything it printed.
struct Checked {
    done: Value,
    transcript: String,
    success: bool,
}

/// Writes `html` into a kept temp dir and checks it in Chromium (at most two minutes).
fn check(name: &str, html: &str) -> (Checked, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("swarmbench-report-{name}-"))
        .tempdir()
        .expect("temp dir")
        .keep();
    let file = dir.join(format!("{name}.html"));
    std::fs::write(&file, html).expect("write page");
    let run = testkit::run_to_end(
        testkit::peer::node_command(
            "report-check.mjs",
            &[
                file.to_str().expect("utf-8 temp path"),
                "--shots",
                dir.to_str().expect("utf-8 temp path"),
                "--chromium",
                CHROMIUM,
                "--timeout-ms",
                "90000",
            ],
        ),
        Duration::from_secs(120),
    );
    let transcript = run.transcript();
    let done = run.done().cloned().unwrap_or_else(|| {
        panic!(
            "report-check gave no final line (status {:?})\n{transcript}",
            run.status
        )
    });
    (
        Checked {
            done,
            transcript,
            success: run.success(),
        },
        dir,
    )
}

fn assert_clean(c: &Checked) {
    assert_eq!(
        c.done["console_errors"],
        serde_json::json!([]),
        "{}",
        c.transcript
    );
    assert_eq!(
        c.done["requests"],
        serde_json::json!([]),
        "network requests\n{}",
        c.transcript
    );
    assert_eq!(
        c.done["failures"],
        serde_json::json!([]),
        "{}",
        c.transcript
    );
    assert_eq!(
        c.done["active"],
        serde_json::json!({"script": 0, "img": 0, "iframe": 0, "handlers": 0}),
        "live elements in the page\n{}",
        c.transcript
    );
    assert!(c.success, "{}", c.transcript);
}

fn assert_png(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
        "not a screenshot: {}",
        path.display()
    );
}

#[test]
fn full_report_renders_offline_with_every_chart() {
    if !node_ready("full_report_renders_offline_with_every_chart") {
        return;
    }
    let run = example_full_run(200);
    let (c, dir) = check("report", &render_html(&run).expect("render"));
    assert_clean(&c);
    let expected: BTreeMap<&str, u64> = [
        ("verdict", 0),
        ("figures", 0),
        ("run", 0),
        ("connections", 2),
        ("latency", 3),
        ("broadcast", 3),
        ("heartbeat", 3),
        ("failures", 3),
        ("health", 3),
    ]
    .into();
    let model = ReportModel::new(&run);
    for s in &model.sections {
        assert_eq!(
            expected.get(s.id).copied(),
            Some(s.charts.len() as u64),
            "model section {} has {} charts",
            s.id,
            s.charts.len()
        );
    }
    assert_eq!(
        c.done["sections"],
        serde_json::to_value(&expected).expect("json"),
        "SVG charts per section\n{}",
        c.transcript
    );
    let charts = c.done["charts"].as_object().expect("charts");
    assert_eq!(charts.len(), 17, "{}", c.transcript);
    for (id, hits) in charts {
        assert!(
            hits.as_u64().unwrap_or(0) > 0,
            "chart {id} has no hover targets"
        );
    }
    let title = c.done["first_title"].as_str().expect("a hover title");
    assert!(
        title.contains(": "),
        "hover title reads `name: value (...)`: {title}"
    );
    assert_eq!(
        c.done["headline"],
        "Completed: no thresholds were given (add --threshold to get a pass/fail verdict)"
    );
    assert_png(&dir.join("first-screen.png"));
    assert_png(&dir.join("full-page.png"));
    println!(
        "report screenshot (headless Chromium): {}",
        dir.join("first-screen.png").display()
    );
    println!("whole report: {}", dir.join("full-page.png").display());
}

#[test]
fn hostile_report_stays_inert_in_the_browser() {
    if !node_ready("hostile_report_stays_inert_in_the_browser") {
        return;
    }
    let (c, dir) = check(
        "hostile",
        &render_html(&support::hostile_run()).expect("render"),
    );
    assert_clean(&c);
    assert!(
        c.done["headline"]
            .as_str()
            .is_some_and(|h| h.starts_with("FAIL")),
        "{}",
        c.transcript
    );
    assert_png(&dir.join("first-screen.png"));
}

#[test]
fn comparison_renders_offline() {
    if !node_ready("comparison_renders_offline") {
        return;
    }
    let base = example_run(100);
    let mut new = example_run(100);
    if let Some(e) = new.run.echo.as_mut() {
        e.latency.p99_us *= 3;
    }
    let cmp = compare(
        &base,
        "base.json",
        &new,
        "new.json",
        CompareOptions::default(),
    );
    assert!(!cmp.passed);
    let (c, dir) = check("compare", &render::render_html(&cmp).expect("render"));
    assert_clean(&c);
    assert_eq!(c.done["sections"]["charts"], 1, "{}", c.transcript);
    assert!(
        c.done["headline"]
            .as_str()
            .is_some_and(|h| h.contains("echo.latency.p99")),
        "{}",
        c.transcript
    );
    assert_png(&dir.join("first-screen.png"));
    println!(
        "comparison screenshot: {}",
        dir.join("first-screen.png").display()
    );
}
