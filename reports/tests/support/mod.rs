//! Shared by the integration tests: a hostile run file.
//!
//! Receives nothing; emits a [`RunFile`] whose every string tries to inject markup or
//! mentions and whose numbers sit at the edges (u64::MAX, 1e300), with an undecodable
//! histogram. Must not: be valid in any way a renderer could rely on.

use reports::fixture::example_full_run;
use reports::{RunFile, ThresholdResult};

pub const SCRIPT: &str = "<script>alert('x')</script>";

pub fn hostile_run() -> RunFile {
    let mut run = example_full_run(20);
    run.meta.target_url = format!("http://x/{SCRIPT}");
    run.meta.machine.hostname = "@everyone <b>host</b>".into();
    run.meta.status_detail = Some(SCRIPT.into());
    run.meta.scenarios.push("<b>bold</b>".into());
    run.meta
        .options
        .insert("evil".into(), serde_json::json!(SCRIPT));
    run.meta.args = vec![SCRIPT.into(), "| pipe | `tick` [link](javascript:x)".into()];
    run.meta.plan[0].name = "<svg onload=alert(3)>".into();
    run.meta.plan[0]
        .settings
        .other
        .insert("<i>".into(), serde_json::json!(SCRIPT));
    run.phases[0].name = "<svg onload=alert(3)>".into();
    run.phases[1].name = "\"><img src=x onerror=alert(1)>".into();
    run.run.disconnects.insert(SCRIPT.into(), u64::MAX / 2);
    run.run
        .disconnects
        .insert("\"><img src=x onerror=alert(1)>".into(), u64::MAX / 2 + 10);
    run.run
        .errors
        .insert("</title></svg><script>alert(2)</script>".into(), u64::MAX);
    run.run
        .connect
        .failed_by_kind
        .insert(SCRIPT.into(), u64::MAX);
    run.run.connect.failed = u64::MAX;
    if let Some(e) = run.run.echo.as_mut() {
        e.latency.hdr_v2_deflate_base64 = "!!! not base64 <script>".into();
        e.sent = u64::MAX;
        e.timeouts = u64::MAX;
    }
    if let Some(p) = run.series.first_mut() {
        p.connected = u64::MAX;
        p.sent = u64::MAX;
        p.latency_max_us = Some(u64::MAX);
    }
    if let Some(h) = run.health.series.first_mut() {
        h.cpu_percent = 1e300;
        h.rss_bytes = u64::MAX;
        h.sched_lag_max_us = u64::MAX;
    }
    run.health.summary.cpu_percent_max = 1e300;
    run.thresholds.push(ThresholdResult {
        expr: SCRIPT.into(),
        observed: Some(1e308),
        unit: "<u>".into(),
        pass: false,
        note: Some(SCRIPT.into()),
    });
    run
}
