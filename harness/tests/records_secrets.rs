//! Secrets given on the command line never reach the run's artefacts or its terminal output:
//! results.json, report.html, histograms.hlog, the Markdown report, stdout and stderr are
//! grepped for each secret value (docs/results-format.md, "Redaction").

use std::time::Duration;

const SECRETS: [&str; 4] = ["SECRETAUTH1", "SECRETHDR2", "SECRETQ3", "SECRETURL4"];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} appears in {what}");
    }
}

#[test]
fn secrets_are_redacted_everywhere_they_would_be_written() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("http://{}/?key=SECRETURL4", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = assert_cmd::Command::cargo_bin("swarm")
        .expect("swarm binary")
        .args([
            "echo",
            &url,
            "--clients",
            "2",
            "--rate",
            "10/s",
            "--duration",
            "500ms",
            "--quiet",
            "--auth",
            "{\"token\":\"SECRETAUTH1\"}",
            "-H",
            "Authorization: Bearer SECRETHDR2",
            "--query",
            "token=SECRETQ3",
        ])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_clean("stdout", &String::from_utf8_lossy(&output.stdout));
    assert_clean("stderr", &String::from_utf8_lossy(&output.stderr));
    for f in ["results.json", "report.html", "histograms.hlog"] {
        let text = std::fs::read_to_string(out.join(f)).expect(f);
        assert_clean(f, &text);
    }
    let run = reports::RunFile::read(out.join("results.json")).expect("results");
    assert!(
        run.meta.target_url.contains("key=***"),
        "{}",
        run.meta.target_url
    );
    assert!(
        run.meta.args.iter().any(|a| a == "Authorization: ***"),
        "{:?}",
        run.meta.args
    );
    assert_clean("markdown", &reports::render_markdown(&run).expect("md"));
}
