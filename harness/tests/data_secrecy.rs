//! The secrecy rule of per-connection data: values from `--data` are sent to the server but
//! never written to the run's artefacts (results.json, report.html, histograms.hlog, the
//! Markdown report) nor printed (stdout, stderr), unless `--record-data` asks for them
//! (docs/results-format.md, "Per-connection data").

use std::path::Path;
use std::time::Duration;

const VALUES: [&str; 4] = ["DSECRETU1", "DSECRETT1", "DSECRETU2", "DSECRETT2"];

fn run_swarm(url: &str, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("swarm")
        .expect("swarm binary")
        .args([
            "echo",
            url,
            "--clients",
            "2",
            "--rate",
            "10/s",
            "--duration",
            "400ms",
            "--auth",
            r#"{"token":"{token}"}"#,
            "-H",
            "x-user: {user}",
            "--query",
            "t={token}",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .arg("--out")
        .arg(out)
        .env_remove("SWARM_DATA")
        .env_remove("SWARM_DATA_MODE")
        .timeout(Duration::from_secs(30))
        .output()
        .expect("runs")
}

fn artefacts(out: &Path, output: &std::process::Output) -> Vec<(String, String)> {
    let mut texts = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    for entry in std::fs::read_dir(out).expect("out dir") {
        let path = entry.unwrap().path();
        if path.is_file() {
            texts.push((
                path.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            ));
        }
    }
    let run = reports::RunFile::read(out.join("results.json")).expect("results");
    texts.push((
        "markdown".into(),
        reports::render_markdown(&run).expect("md"),
    ));
    texts
}

#[test]
fn data_values_reach_no_artefact_unless_recorded() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("http://{}/?u={{user}}", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("users.csv");
    std::fs::write(
        &data,
        "user,token\nDSECRETU1,DSECRETT1\nDSECRETU2,DSECRETT2\n",
    )
    .unwrap();

    let out = dir.path().join("run");
    let output = run_swarm(&url, &data, &out, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let texts = artefacts(&out, &output);
    assert!(
        texts.len() >= 6,
        "{:?}",
        texts.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    for (what, text) in &texts {
        for v in VALUES {
            assert!(!text.contains(v), "{v} appears in {what}");
        }
    }
    // The shape of the data is recorded (file, fields, records), not its values.
    let run = reports::RunFile::read(out.join("results.json")).expect("results");
    let d = &run.meta.options["data"];
    assert_eq!(d["records"], 2);
    assert_eq!(d["fields"], serde_json::json!(["user", "token"]));
    assert_eq!(d["recorded"], false);
    assert!(d.get("values").is_none());
    // The run used them: every echo came back.
    let echo = run.run.echo.expect("echo");
    assert!(echo.received > 0 && echo.timeouts == 0, "{echo:?}");

    // --record-data writes them into results.json.
    let out = dir.path().join("recorded");
    let output = run_swarm(&url, &data, &out, &["--quiet", "--record-data"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    for v in VALUES {
        assert!(text.contains(v), "{v} not recorded with --record-data");
    }
    let run = reports::RunFile::read(out.join("results.json")).expect("results");
    assert_eq!(
        run.meta.options["data"]["values"],
        serde_json::json!([["DSECRETU1", "DSECRETT1"], ["DSECRETU2", "DSECRETT2"]])
    );
}
