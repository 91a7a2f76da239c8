//! The run file contract: round trip, schema checks, merge, and the docs listing every name.

use reports::fixture::example_run;
use reports::threshold::catalog;
use reports::{RunFile, RunFileError, SCHEMA_VERSION, merge};

#[test]
fn written_file_reads_back_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("results.json");
    let mut run = example_run(250);
    run.meta.status_detail = Some("unicode ✓ and \"quotes\" <tags>".into());
    run.thresholds.push(reports::ThresholdResult {
        expr: "echo.latency.p99 < 50ms".into(),
        observed: Some(3.917),
        unit: "ms".into(),
        pass: true,
        note: None,
    });
    run.write(&path).expect("write");
    let back = RunFile::read(&path).expect("read");
    assert_eq!(back, run);
    // Embedded histograms decode to the same counts as their summaries.
    let e = back.run.echo.as_ref().expect("echo");
    assert_eq!(
        e.latency.histogram().expect("decode").len(),
        e.latency.count
    );
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("results.json")]);
}

#[test]
fn json_is_snake_case_with_schema_version_first() {
    let json = example_run(3).to_json().expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("parse");
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    assert_eq!(v["meta"]["status"], "completed");
    assert!(v["run"]["echo"]["latency"]["p99_us"].is_u64());
    assert!(v["run"]["echo"]["latency"]["hdr_v2_deflate_base64"].is_string());
    assert!(
        v["run"].get("broadcast").is_none(),
        "absent sections are not written"
    );
    assert!(json.trim_start().starts_with("{\n  \"schema_version\""));
}

#[test]
fn newer_schema_is_a_clear_error() {
    let mut v = serde_json::to_value(example_run(1)).expect("value");
    v["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
    let err = RunFile::from_slice(v.to_string().as_bytes(), "new.json").expect_err("newer");
    assert!(
        matches!(err, RunFileError::NewerSchema { found, .. } if found == u64::from(SCHEMA_VERSION) + 1)
    );
    assert!(
        err.to_string()
            .contains("newer than this swarm understands"),
        "{err}"
    );
    v["schema_version"] = serde_json::json!(0);
    let err = RunFile::from_slice(v.to_string().as_bytes(), "zero.json").expect_err("zero");
    assert!(matches!(err, RunFileError::UnknownSchema { .. }), "{err}");
}

#[test]
fn invalid_and_foreign_files_are_clear_errors() {
    let err = RunFile::from_slice(b"{ not json", "x.json").expect_err("json");
    assert!(matches!(err, RunFileError::Json { .. }));
    assert!(
        err.to_string().starts_with("x.json is not valid JSON"),
        "{err}"
    );
    let err = RunFile::from_slice(br#"{"hello": 1}"#, "y.json").expect_err("foreign");
    assert!(matches!(err, RunFileError::NoSchemaVersion { .. }), "{err}");
    let err =
        RunFile::from_slice(br#"{"schema_version": 1, "meta": 5}"#, "z.json").expect_err("shape");
    assert!(matches!(err, RunFileError::Schema { .. }), "{err}");
    let err = RunFile::read("/nonexistent/dir/results.json").expect_err("missing");
    assert!(matches!(err, RunFileError::Read { .. }));
    let err =
        RunFile::from_slice(br#"{"schema_version": "1"}"#, "s.json").expect_err("string version");
    assert!(matches!(err, RunFileError::NoSchemaVersion { .. }));
}

#[test]
fn files_without_optional_sections_still_read() {
    let mut v = serde_json::to_value(example_run(2)).expect("value");
    let obj = v.as_object_mut().expect("object");
    obj.remove("thresholds");
    let meta = obj
        .get_mut("meta")
        .and_then(|m| m.as_object_mut())
        .expect("meta");
    for k in [
        "run_id",
        "embedded_target",
        "options",
        "args",
        "status_detail",
        "shards",
    ] {
        meta.remove(k);
    }
    let run = RunFile::from_slice(v.to_string().as_bytes(), "old.json").expect("read old");
    assert_eq!(run.meta.shards, 1);
    assert!(run.thresholds.is_empty());
    assert!(run.run.broadcast.is_none());
}

#[test]
fn merge_adds_histograms_and_counters_and_aligns_seconds() {
    let a = example_run(100);
    let mut b = example_run(50);
    b.meta.machine.hostname = "other-host".into();
    // b started one second later: its second 0 is a's second 1.
    b.meta.started_at_unix_ms += 1_000;
    b.meta.ended_at_unix_ms += 1_000;
    let m = merge(&[a.clone(), b.clone()]).expect("merge");
    let (ea, eb, em) = (
        a.run.echo.as_ref().expect("a"),
        b.run.echo.as_ref().expect("b"),
        m.run.echo.as_ref().expect("m"),
    );
    assert_eq!(em.sent, ea.sent + eb.sent);
    assert_eq!(em.received, ea.received + eb.received);
    assert_eq!(em.timeouts, ea.timeouts + eb.timeouts);
    assert_eq!(em.latency.count, ea.latency.count + eb.latency.count);
    assert_eq!(
        em.latency.histogram().expect("decode").len(),
        em.latency.count
    );
    assert_eq!(em.latency.max_us, ea.latency.max_us.max(eb.latency.max_us));
    assert_eq!(
        m.run.connect.attempted,
        a.run.connect.attempted + b.run.connect.attempted
    );
    let tot = |r: &RunFile| r.run.connect.phases.total.as_ref().map_or(0, |d| d.count);
    assert_eq!(tot(&m), tot(&a) + tot(&b));
    assert_eq!(m.run.disconnects["client_close"], 99 + 49);
    // Phases align by name.
    assert_eq!(m.phases.len(), 2);
    assert_eq!(
        m.phases[1].stats.echo.as_ref().expect("steady").sent,
        4000 + 2000
    );
    assert_eq!(m.phases[1].stats.start_offset_ms, 2_000);
    assert_eq!(m.phases[1].stats.end_offset_ms, 7_000);
    // Series align by wall-clock second.
    assert_eq!(m.series.len(), 7);
    assert_eq!(m.series[0].connected, a.series[0].connected);
    assert_eq!(
        m.series[1].connected,
        a.series[1].connected + b.series[0].connected
    );
    assert_eq!(m.series[6].sent, b.series[5].sent);
    let sum = |r: &RunFile| r.series.iter().map(|p| p.sent).sum::<u64>();
    assert_eq!(sum(&m), sum(&a) + sum(&b));
    // Metadata.
    assert_eq!(m.meta.shards, 2);
    assert_eq!(m.meta.machine.hostname, "example-host,other-host");
    assert_eq!(m.meta.machine.cores, 4);
    assert_eq!(m.meta.plan[0].clients, 150);
    assert_eq!(m.meta.started_at_unix_ms, a.meta.started_at_unix_ms);
    assert_eq!(m.meta.ended_at_unix_ms, b.meta.ended_at_unix_ms);
    assert_eq!(m.health.cores, 4);
    assert!(
        (m.health.series[1].cpu_percent
            - (a.health.series[1].cpu_percent + b.health.series[0].cpu_percent))
            .abs()
            < 1e-9
    );
    // The merged file is itself a valid run file.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("merged.json");
    m.write(&p).expect("write");
    assert_eq!(RunFile::read(&p).expect("read"), m);
}

/// Runs against different targets, merged: each target keeps its own share; runs against
/// one target have no `targets`.
#[test]
fn merge_attributes_each_run_to_its_target() {
    let a = example_run(100);
    let mut b = example_run(50);
    assert!(
        merge(&[a.clone(), b.clone()])
            .expect("merge")
            .targets
            .is_empty()
    );
    b.meta.target_url = "http://127.0.0.2:3000/".into();
    let m = merge(&[a.clone(), b.clone()]).expect("merge");
    let urls: Vec<&str> = m.targets.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(urls, [a.meta.target_url.as_str(), "http://127.0.0.2:3000/"]);
    let sent = |s: &reports::Section| s.echo.as_ref().expect("echo").sent;
    assert_eq!(sent(&m.targets[0].run), sent(&a.run));
    assert_eq!(sent(&m.targets[1].run), sent(&b.run));
    assert_eq!(m.targets[1].clients, b.run.connect.peak_connected);
    // Merged again with a third run against the first target: that target adds up.
    let c = example_run(10);
    let m2 = merge(&[m.clone(), c.clone()]).expect("merge again");
    assert_eq!(m2.targets.len(), 2);
    assert_eq!(sent(&m2.targets[0].run), sent(&a.run) + sent(&c.run));
}

#[test]
fn merge_of_nothing_is_an_error_and_of_one_is_identity() {
    assert!(merge(&[]).is_err());
    let a = example_run(7);
    assert_eq!(merge(std::slice::from_ref(&a)).expect("one"), a);
}

#[test]
fn docs_list_every_metric_and_field() {
    let doc_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results-format.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/results-format.md exists");
    for m in catalog::METRICS {
        let name = format!("`{}.{}`", m.scenario, m.name);
        assert!(
            doc.contains(&name),
            "docs/results-format.md does not list {name}"
        );
    }
    // Every field of the example run file is documented by name.
    let mut run = example_run(2);
    run.run.broadcast = Some(Default::default());
    run.run.churn = Some(Default::default());
    run.run.heartbeat = Some(reports::HeartbeatStats {
        pong_rtt: Some(Default::default()),
        muted_close_delay: Some(Default::default()),
        ..Default::default()
    });
    run.meta.status_detail = Some("x".into());
    run.run.connect.phases.tls = Some(Default::default());
    run.run.connect.phases.eio_open = Some(Default::default());
    run.run.connect.phases.upgrade = Some(Default::default());
    run.thresholds.push(Default::default());
    run.workers.push(reports::WorkerResult {
        lost_reason: Some("x".into()),
        target: "x".into(),
        ..Default::default()
    });
    run.targets.push(reports::TargetResult {
        url: "x".into(),
        workers: vec![0],
        clients: 1,
        run: Default::default(),
    });
    let v = serde_json::to_value(run).expect("value");
    let mut keys = std::collections::BTreeSet::new();
    collect_keys(&v, &mut keys);
    for k in keys {
        assert!(
            doc.contains(&format!("`{k}`")),
            "docs/results-format.md does not document field `{k}`"
        );
    }
}

fn collect_keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                // Map keys that are data (error kinds, reasons, options) are not fields.
                if !matches!(
                    k.as_str(),
                    "unmatched" | "client_close" | "eof" | "connect_refused" | "timeout_ms"
                ) {
                    out.insert(k.clone());
                }
                collect_keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_keys(i, out)),
        _ => {}
    }
}
