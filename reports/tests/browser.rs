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
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reports::compare::{CompareOptions, compare, render};
use reports::fixture::{example_full_run, example_run};
use reports::render_html;
use reports::view::ReportModel;
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop")
}

fn node_ready(test: &str) -> bool {
    let found = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        missing_dependency(
            test,
            "`node` is not on PATH (install Node.js 20, then run scripts/test.sh)",
        );
        return false;
    }
    assert!(
        interop().join("node_modules/playwright-core").is_dir(),
        "interop/node_modules is missing playwright-core: run `npm ci` in interop/ (scripts/test.sh does it)"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does it with apt-get)"
    );
    true
}

/// A test dependency (Node.js, Chromium, Python) is missing. With the environment variable
/// `CI` set (non-empty) the test fails with `why`: a CI run never passes by skipping.
/// Otherwise prints `SKIPPED <test>: <why>` and the caller returns.
fn missing_dependency(test: &str, why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why}; CI is set, so a missing test dependency fails the test");
    }
    eprintln!("SKIPPED {test}: {why}");
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
    let mut child = Command::new("node")
        .current_dir(interop())
        .arg("report-check.mjs")
        .arg(&file)
        .args(["--shots", dir.to_str().expect("utf-8 temp path")])
        .args(["--chromium", CHROMIUM, "--timeout-ms", "90000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let transcript = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let done = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["done"] == true)
        .unwrap_or_else(|| {
            panic!("report-check gave no final line (status {status:?})\n{transcript}")
        });
    (
        Checked {
            done,
            transcript,
            success: status.is_some_and(|s| s.success()),
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
