//! Snapshot tests (insta) of the report's view-model and of the Markdown renderings, from
//! the fixture results files. A change to what a report says shows up as a snapshot diff to
//! review (`cargo insta review`, or compare the `.snap.new` file by hand).
//!
//! Chart points are summarised in the view-model snapshots (count, first and last point) so
//! the snapshots stay readable; the points themselves are checked by the chart unit tests.

use reports::compare::{CompareOptions, compare, render};
use reports::fixture::{example_full_run, example_run};
use reports::render_markdown;
use reports::view::ReportModel;
use serde_json::{Value, json};

fn short(v: &Value) -> String {
    match v.as_array().map(|a| a.as_slice()) {
        Some([x, y]) => format!("({x}, {y})"),
        _ => v.to_string(),
    }
}

/// The model as JSON with every `points` and `bins` array replaced by a one-line summary.
fn summarised(model: &ReportModel) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    match (k.as_str(), x.as_array()) {
                        ("points", Some(a)) if !a.is_empty() => {
                            *x = json!(format!(
                                "{} points: {} .. {}",
                                a.len(),
                                short(&a[0]),
                                short(&a[a.len() - 1])
                            ));
                        }
                        ("bins", Some(a)) if !a.is_empty() => {
                            let total: u64 = a.iter().filter_map(|b| b["count"].as_u64()).sum();
                            *x = json!(format!(
                                "{} bins from {} to {}, {total} values",
                                a.len(),
                                a[0]["lo"],
                                a[a.len() - 1]["hi"]
                            ));
                        }
                        _ => walk(x),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(model).expect("model serializes");
    walk(&mut v);
    v
}

#[test]
fn view_model_of_the_example_run() {
    insta::assert_json_snapshot!(summarised(&ReportModel::new(&example_run(100))));
}

#[test]
fn view_model_of_a_run_with_every_section() {
    insta::assert_json_snapshot!(summarised(&ReportModel::new(&example_full_run(200))));
}

#[test]
fn markdown_of_the_example_run() {
    let mut run = example_run(100);
    run.thresholds = reports::threshold::evaluate(
        &[
            reports::parse_threshold("echo.latency.p99 < 50ms").expect("threshold"),
            reports::parse_threshold("echo.timeouts <= 0.001%").expect("threshold"),
        ],
        &run,
    );
    insta::assert_snapshot!(render_markdown(&run).expect("markdown"));
}

#[test]
fn markdown_of_a_run_with_every_section() {
    insta::assert_snapshot!(render_markdown(&example_full_run(200)).expect("markdown"));
}

#[test]
fn markdown_of_a_comparison() {
    let base = example_full_run(100);
    let mut new = example_full_run(100);
    if let Some(e) = new.run.echo.as_mut() {
        e.latency.p99_us = e.latency.p99_us * 3 / 2;
        e.timeouts = 0;
    }
    new.meta.plan[1].rate_per_s = Some(20.0);
    new.phases.retain(|p| p.name != "churn");
    let c = compare(
        &base,
        "base/results.json",
        &new,
        "new/results.json",
        CompareOptions::default(),
    );
    insta::assert_snapshot!(render::render_markdown(&c).expect("markdown"));
}
