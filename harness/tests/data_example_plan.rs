//! The guide's worked example (docs/TESTING-YOUR-SERVER.md), `harness/plans/chat-data.toml`
//! with its `chat-users.csv`, runs as written against the embedded target-server: every
//! client connects with its own record, the broadcast reaches every subscriber, the plan's
//! thresholds hold, and no token from the file is in the run's files.

use std::path::Path;
use std::time::Duration;

#[test]
fn chat_data_plan_runs_with_one_record_per_client() {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let csv = std::fs::read_to_string(plans.join("chat-users.csv")).unwrap();
    let tokens: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    assert_eq!(tokens.len(), 12);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // From another working directory: the plan's data path is relative to the plan.
    let output = assert_cmd::Command::cargo_bin("swarm")
        .unwrap()
        .current_dir(dir.path())
        .arg("run")
        .arg(plans.join("chat-data.toml"))
        .args(["--quiet", "--out"])
        .arg(&out)
        .env_remove("SWARM_DATA")
        .env_remove("SWARM_DATA_MODE")
        .env_remove("SWARM_AUTH")
        .env_remove("SWARM_URL")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let run = reports::RunFile::read(out.join("results.json")).unwrap();
    assert_eq!(run.run.connect.connected, 12, "{:?}", run.run.connect);
    let b = run.run.broadcast.as_ref().expect("broadcast section");
    assert!(b.delivered > 0, "{b:?}");
    assert!(
        run.thresholds.iter().all(|t| t.pass),
        "{:?}",
        run.thresholds
    );
    let d = &run.meta.options["data"];
    assert_eq!(d["records"], 12);
    assert_eq!(d["mode"], "unique");
    for f in ["results.json", "report.html", "histograms.hlog"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        for t in &tokens {
            assert!(!text.contains(t), "token {t} in {f}");
        }
    }
}
