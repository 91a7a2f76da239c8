//! `swarm report` and `swarm compare` as a user runs them: files in, files or stdout out,
//! exit codes (0 ok, 1 a comparison regressed beyond --max-regression, 2 bad input).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use reports::RunFile;
use reports::fixture::example_run;

fn swarm() -> Command {
    Command::cargo_bin("swarm").expect("swarm binary")
}

fn write(dir: &Path, name: &str, run: &RunFile) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).expect("dir");
    let path = sub.join("results.json");
    run.write(&path).expect("write results");
    path
}

/// The example run with every echo latency statistic multiplied by `factor`.
fn slower(factor: u64) -> RunFile {
    let mut run = example_run(50);
    for e in std::iter::once(run.run.echo.as_mut())
        .chain(run.phases.iter_mut().map(|p| p.stats.echo.as_mut()))
        .flatten()
    {
        e.latency.p50_us *= factor;
        e.latency.p90_us *= factor;
        e.latency.p99_us *= factor;
        e.latency.p999_us *= factor;
        e.latency.max_us *= factor;
    }
    run
}

#[test]
fn report_writes_html_beside_the_results() {
    let tmp = tempfile::tempdir().expect("tmp");
    let results = write(tmp.path(), "run", &example_run(30));
    std::fs::remove_file(results.with_file_name("report.html")).ok();
    swarm()
        .args(["report", results.to_str().expect("utf-8")])
        .assert()
        .success()
        .stderr(predicate::str::contains("report.html"));
    let html = std::fs::read_to_string(results.with_file_name("report.html")).expect("written");
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("data-chart=\"latency-spectrum\""));
}

#[test]
fn report_markdown_goes_to_stdout_or_a_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let results = write(tmp.path(), "run", &example_run(30));
    swarm()
        .args(["report", results.to_str().expect("utf-8"), "--format", "md"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("### Completed"))
        .stdout(predicate::str::contains("- echo: 30 clients"));
    let out = tmp.path().join("summary.md");
    swarm()
        .args(["report", results.to_str().expect("utf-8"), "-o"])
        .arg(&out)
        .assert()
        .success();
    let md = std::fs::read_to_string(&out).expect("markdown file");
    assert!(md.contains("#### ") || md.contains("<summary>"), "{md}");
}

#[test]
fn report_of_a_bad_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut v = serde_json::to_value(example_run(3)).expect("json");
    v["schema_version"] = serde_json::json!(7);
    let future = tmp.path().join("future.json");
    std::fs::write(&future, v.to_string()).expect("write");
    swarm()
        .args(["report", future.to_str().expect("utf-8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "schema_version 7, newer than this swarm",
        ));
    assert!(!tmp.path().join("report.html").exists(), "nothing written");
    swarm()
        .args([
            "report",
            tmp.path().join("missing.json").to_str().expect("utf-8"),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "<html>not json</html>").expect("write");
    swarm()
        .args(["report", garbage.to_str().expect("utf-8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not valid JSON"));
}

#[test]
fn compare_exits_1_on_a_regression_beyond_the_limit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = write(tmp.path(), "base", &example_run(50));
    let new = write(tmp.path(), "new", &slower(3));
    let (b, n) = (base.to_str().expect("utf-8"), new.to_str().expect("utf-8"));
    swarm()
        .args(["compare", b, n])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("| echo.latency.p99 |"))
        .stderr(predicate::str::contains("FAIL"));
    swarm()
        .args(["compare", b, n, "--max-regression", "500%"])
        .assert()
        .success()
        .stderr(predicate::str::contains("PASS"));
    let html = tmp.path().join("compare.html");
    swarm()
        .args(["compare", b, n, "-o"])
        .arg(&html)
        .assert()
        .code(1);
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("data-chart=\"compare-latency-spectrum\""));
}

#[test]
fn compare_of_the_same_run_passes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = write(tmp.path(), "base", &example_run(50));
    swarm()
        .args([
            "compare",
            base.to_str().expect("utf-8"),
            base.to_str().expect("utf-8"),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "PASS: no metric regressed beyond 10%",
        ));
}

#[test]
fn compare_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = write(tmp.path(), "base", &example_run(5));
    let b = base.to_str().expect("utf-8");
    swarm()
        .args(["compare", b, b, "--noise", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid percentage"));
    swarm()
        .args([
            "compare",
            b,
            tmp.path().join("none.json").to_str().expect("utf-8"),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
}
