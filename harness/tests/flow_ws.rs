//! Flows against the embedded reference server's raw WebSocket echo (no Node needed):
//! per-step counts and latency in results.json as written on disk, correlation by a field
//! of the echoed frame, a wait whose condition is met and one that times out, a flow
//! threshold deciding the exit code, and a bad flow refused (exit 2) naming its step.

mod common;

use std::io::Write;

use assert_cmd::cargo::CommandCargoExt;
use harness::run::Exit;

fn plan_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p.display().to_string()
}

const WS_FLOW: &str = r#"
[[phase]]
name = "talk"
scenario = "flow"
clients = 3
duration = "800ms"

[[flow]]
name = "echo"

[[flow.step]]
name = "hello"
send = '{"id":"{client}-{seq}","kind":"hello"}'
reply = "*"
match = "$.id"
capture = { kind = "$.kind" }

[[flow.step]]
name = "rounds"
repeat = 5
rate = "50/s"

  [[flow.step.do]]
  name = "ping"
  send = '{"id":"{client}-{seq}","was":"{kind}"}'
  reply = "*"
  match = "$.id"
  where = '$.was == "hello"'

[[flow.step]]
name = "never"
wait = "*"
where = '$.kind == "goodbye"'
timeout = "200ms"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_flow_records_each_step_in_results_json() {
    let e2e = common::E2e::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), "ws.toml", WS_FLOW);
    let f = common::run(common::plan_for(
        &["flow", &plan, "--url", &url],
        &dir.path().join("out"),
    ))
    .await;
    assert_eq!(f.exit, Exit::Ok, "{:?}", f.run.thresholds);
    // Read back what was written, not the in-memory copy.
    let text = std::fs::read_to_string(f.out_dir.join("results.json")).unwrap();
    let run: serde_json::Value = serde_json::from_str(&text).unwrap();
    let steps = run["run"]["flow"]["steps"].as_array().expect("flow steps");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hello", "ping", "never"]);
    let step = |n: &str| steps.iter().find(|s| s["name"] == n).unwrap();
    // Every client: one hello, five pings (the capture fed the condition), one timeout.
    assert_eq!(step("hello")["ok"], 3, "{}", step("hello"));
    assert_eq!(step("ping")["ok"], 15, "{}", step("ping"));
    assert_eq!(step("ping")["runs"], 15);
    assert_eq!(step("ping")["latency"]["count"], 15);
    assert_eq!(step("never")["timeouts"], 3, "{}", step("never"));
    assert_eq!(step("never")["ok"], 0);
    // The phase's section has the same steps.
    assert_eq!(run["phases"][0]["stats"]["flow"]["steps"][1]["ok"], 15);
    // The report shows a Flows section.
    let html = std::fs::read_to_string(f.out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("data-section=\"flow\""),
        "no flow section in the report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flow_threshold_exits_1() {
    let e2e = common::E2e::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), "ws.toml", WS_FLOW);
    let f = common::run(common::plan_for(
        &[
            "flow",
            &plan,
            "--url",
            &url,
            "--threshold",
            "flow.never.timeouts == 0",
            "--threshold",
            "flow.ping.latency.p99 < 5s",
        ],
        &dir.path().join("out"),
    ))
    .await;
    assert_eq!(f.exit, Exit::ThresholdFailed);
    let t = &f.run.thresholds;
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(!t[0].pass && t[0].observed == Some(3.0), "{t:?}");
    assert!(t[1].pass, "{t:?}");
}

#[test]
fn a_bad_flow_is_refused_with_exit_2_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(
        dir.path(),
        "bad.toml",
        r#"
[[phase]]
scenario = "flow"
clients = 1
duration = "1s"

[[flow]]
name = "f"
[[flow.step]]
name = "ok"
sleep = "1ms"
[[flow.step]]
name = "broken"
wait = "x"
where = "not a path"
"#,
    );
    let out = std::process::Command::cargo_bin("swarm")
        .unwrap()
        .args(["flow", &plan, "--url", "ws://127.0.0.1:9/", "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(r#"flow "f" step "broken" (#2): where"#),
        "{stderr}"
    );
}

/// A wait still pending when the run's drain ends is counted `unanswered_at_stop`, and
/// `runs` is still the sum of the ways a run ended (before, such runs were in no count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_pending_at_the_end_is_unanswered_at_stop() {
    let e2e = common::E2e::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", e2e.addr());
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(
        dir.path(),
        "pending.toml",
        r#"
grace = "300ms"

[[phase]]
name = "talk"
scenario = "flow"
clients = 3
duration = "300ms"

[[flow]]
name = "pending"

[[flow.step]]
name = "hello"
send = '{"id":"{client}"}'
reply = "*"

[[flow.step]]
name = "forever"
wait = "*"
where = '$.kind == "never sent"'
timeout = "60s"
"#,
    );
    let f = common::run(common::plan_for(
        &["flow", &plan, "--url", &url],
        &dir.path().join("out"),
    ))
    .await;
    let flow = f.run.run.flow.as_ref().expect("flow section");
    let st = flow.step("forever").expect("step forever");
    assert_eq!(st.unanswered_at_stop, 3, "{st:?}");
    assert_eq!(st.runs, 3, "{st:?}");
    assert_eq!(
        st.runs,
        st.ok
            + st.timeouts
            + st.bad_path
            + st.server_errors
            + st.disconnected
            + st.unanswered_at_stop
    );
    assert_eq!(flow.step("hello").map(|s| s.ok), Some(3));
}
