//! Hostile results files: markup in every string, numbers at the edges, missing sections,
//! undecodable histograms and wrong schema versions either render safely (escaped, inert)
//! or fail with a message that says what is wrong; never a panic.

mod support;

use reports::compare::{CompareOptions, compare, render};
use reports::fixture::example_run;
use reports::view::ReportModel;
use reports::{RunFile, RunFileError, render_html, render_markdown};
use support::{SCRIPT, hostile_run};

#[test]
fn markup_in_the_run_is_escaped_in_html() {
    let html = render_html(&hostile_run()).expect("renders");
    // Every `<` of the run is escaped, so none of these can open an element (the browser
    // test also counts live elements and handlers in the rendered page).
    for bad in [
        "<script",
        "<img",
        "<svg onload",
        "<b>",
        "<i>",
        "<u>",
        "\"><img",
    ] {
        assert_eq!(html.matches(bad).count(), 0, "{bad} appears unescaped");
    }
    assert!(html.contains("&lt;script&gt;"), "shown as text");
    assert!(
        !html.contains("class=\"chart-error\""),
        "huge numbers still draw"
    );
}

#[test]
fn markup_and_mentions_are_escaped_in_markdown() {
    let md = render_markdown(&hostile_run()).expect("renders");
    assert!(!md.contains("<script"), "{md}");
    assert!(!md.contains("<img"), "{md}");
    assert!(!md.contains("@everyone"), "mention escaped");
    assert!(!md.contains("[link](javascript"), "link escaped");
    assert!(md.contains("&lt;script&gt;"));
    // A table row keeps its columns: escaped pipes do not split cells.
    for line in md.lines().filter(|l| l.contains("pipe")) {
        assert!(line.contains("\\|"), "{line}");
    }
}

#[test]
fn huge_numbers_saturate_instead_of_overflowing() {
    let model = ReportModel::new(&hostile_run());
    let broke = model
        .figures
        .iter()
        .find(|f| f.label == "What broke")
        .expect("what broke figure");
    assert!(
        broke.value.contains("18,446,744,073,709,551,615"),
        "{}",
        broke.value
    );
    let latency = model
        .sections
        .iter()
        .find(|s| s.id == "latency")
        .expect("latency section");
    assert!(
        latency
            .notes
            .iter()
            .any(|n| n.contains("echo.latency") && n.contains("base64")),
        "undecodable histogram becomes a note: {:?}",
        latency.notes
    );
    assert!(
        !latency.charts.iter().any(|c| c.id == "latency-spectrum"
            && matches!(&c.body, reports::chart::Body::Lines { series } if series.iter().any(|s| s.name == "latency"))),
        "no latency curve from an undecodable histogram"
    );
}

#[test]
fn missing_sections_are_left_out_not_shown_empty() {
    let mut run = example_run(10);
    run.series.clear();
    run.health.series.clear();
    run.health.summary = Default::default();
    run.run.echo = None;
    run.run.errors.clear();
    run.run.disconnects.clear();
    run.run.connect = Default::default();
    run.phases.clear();
    let model = ReportModel::new(&run);
    let ids: Vec<&str> = model.sections.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec!["run"], "only the run itself is left");
    let html = render_html(&run).expect("renders");
    assert!(!html.contains("data-section=\"latency\""));
    assert!(!html.contains("<svg"), "no empty charts");
    render_markdown(&run).expect("markdown renders");
}

#[test]
fn a_file_without_optional_parts_renders() {
    let json = serde_json::json!({
        "schema_version": 1,
        "meta": {
            "swarm_version": "0.0.1", "scenarios": [], "target_url": "ws://127.0.0.1:1/",
            "protocol": "ws", "transport": "websocket", "plan": [],
            "machine": {"hostname": "h", "cores": 0, "memory_bytes": 0, "os": "linux"},
            "started_at_unix_ms": 5, "ended_at_unix_ms": 1, "interrupted": true, "status": "failed"
        },
        "run": {"start_offset_ms": 0, "end_offset_ms": 0, "duration_ms": 0,
                "connect": {"attempted": 0, "connected": 0, "failed": 0, "peak_connected": 0, "phases": {}}},
        "phases": [], "series": [],
        "health": {"cores": 0, "series": [], "summary": {
            "cpu_percent_max": 0.0, "cpu_percent_mean": 0.0, "rss_bytes_max": 0,
            "sched_lag_max_us": 0, "sched_lag_mean_us": 0, "saturated_seconds": 0, "saturated": false}}
    });
    let run = RunFile::from_slice(json.to_string().as_bytes(), "minimal.json").expect("reads");
    let html = render_html(&run).expect("renders");
    assert!(html.contains("FAIL: the run could not happen"));
    let md = render_markdown(&run).expect("renders");
    assert!(md.contains("could not happen"));
}

#[test]
fn wrong_schema_versions_fail_with_a_clear_message() {
    let mut v = serde_json::to_value(example_run(3)).expect("value");
    v["schema_version"] = serde_json::json!(99);
    let err = RunFile::from_slice(v.to_string().as_bytes(), "future.json").expect_err("newer");
    assert!(matches!(err, RunFileError::NewerSchema { found: 99, .. }));
    assert!(err.to_string().contains("use a newer swarm"), "{err}");
    v["schema_version"] = serde_json::json!("1");
    let err = RunFile::from_slice(v.to_string().as_bytes(), "odd.json").expect_err("string");
    assert!(
        err.to_string().contains("not a swarm results file"),
        "{err}"
    );
    v["schema_version"] = serde_json::json!(1);
    v["health"] = serde_json::json!(SCRIPT);
    let err = RunFile::from_slice(v.to_string().as_bytes(), "bad.json").expect_err("shape");
    assert!(
        err.to_string()
            .contains("does not match results schema version 1"),
        "{err}"
    );
}

#[test]
fn hostile_pairs_compare_without_panicking() {
    let hostile = hostile_run();
    let good = reports::fixture::example_full_run(20);
    for (a, b) in [(&hostile, &good), (&good, &hostile), (&hostile, &hostile)] {
        let c = compare(a, SCRIPT, b, "new.json", CompareOptions::default());
        let html = render::render_html(&c).expect("html");
        assert!(!html.contains("<script"), "escaped");
        let md = render::render_markdown(&c).expect("md");
        assert!(!md.contains("<script"), "escaped");
    }
}

#[test]
fn a_huge_file_renders_bounded() {
    let mut run = reports::fixture::example_full_run(50);
    let template = run.series[3].clone();
    run.series = (0..200_000u64)
        .map(|s| reports::SecondPoint {
            second: s,
            errors: s % 7,
            ..template.clone()
        })
        .collect();
    for i in 0..5_000 {
        run.run.errors.insert(format!("kind_{i}"), i);
        run.run.disconnects.insert(format!("reason_{i}"), i);
    }
    for i in 0..3_000 {
        run.meta.plan.push(reports::PlanPhase {
            name: format!("p{i}"),
            scenario: "echo".into(),
            duration_ms: 1_000,
            ..Default::default()
        });
    }
    let model = ReportModel::new(&run);
    for c in model.charts() {
        assert!(c.markers.len() <= reports::view::MAX_MARKERS, "{}", c.id);
        match &c.body {
            reports::chart::Body::Lines { series } => {
                for s in series {
                    assert!(
                        s.points.len() <= reports::view::MAX_POINTS + 2,
                        "{} {}",
                        c.id,
                        s.points.len()
                    );
                }
            }
            reports::chart::Body::Bars { categories, .. } => {
                assert!(categories.len() <= reports::view::MAX_BARS, "{}", c.id);
            }
            _ => {}
        }
    }
    for t in model.sections.iter().flat_map(|s| s.tables.iter()) {
        assert!(t.rows.len() <= reports::view::MAX_ROWS + 1, "{}", t.caption);
    }
    let html = render_html(&run).expect("renders");
    assert!(html.len() < 8 << 20, "report of {} bytes", html.len());
    assert!(html.contains("more rows (see results.json)"));
    let c = compare(&run, "a", &run, "b", CompareOptions::default());
    let rows: usize = c.groups.iter().map(|g| g.rows.len()).sum();
    assert!(rows < 400, "{rows} rows compared");
}
