//! The `swarm` binary as a user runs it: exit codes (0, 1, 2, 3, 130), thresholds named in
//! the summary, plan errors before any socket opens, Ctrl-C writing a readable results file.
//! The server runs in the test process; the swarm is a child process.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use predicates::str::contains;

fn swarm() -> Command {
    Command::cargo_bin("swarm").expect("swarm binary")
}

fn assert_cmd_swarm() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("swarm").expect("swarm binary")
}

#[test]
fn thresholds_decide_exit_0_or_1() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ok");
    assert_cmd_swarm()
        .args([
            "echo",
            &url,
            "--clients",
            "3",
            "--rate",
            "20/s",
            "--duration",
            "500ms",
            "--quiet",
        ])
        .args([
            "--threshold",
            "echo.timeouts == 0",
            "--threshold",
            "connect.failed == 0",
        ])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(0)
        .stdout(contains("report:"));
    assert!(out.join("results.json").exists());
    assert!(out.join("report.html").exists());
    assert!(out.join("histograms.hlog").exists());

    let out = dir.path().join("fail");
    assert_cmd_swarm()
        .args([
            "echo",
            &url,
            "--clients",
            "3",
            "--rate",
            "20/s",
            "--duration",
            "500ms",
            "--quiet",
        ])
        .args([
            "--threshold",
            "echo.latency.p99 < 1us",
            "--threshold",
            "connect.failed == 0",
        ])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(contains("threshold failed: echo.latency.p99 < 1us"));
    let run = reports::RunFile::read(out.join("results.json")).unwrap();
    assert_eq!(run.thresholds.len(), 2);
    assert!(!run.thresholds[0].pass && run.thresholds[1].pass);
}

#[test]
fn json_summary_on_stdout() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("http://{}/", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let output = assert_cmd_swarm()
        .args([
            "connect",
            &url,
            "--clients",
            "2",
            "--duration",
            "200ms",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert!(v.is_object());
}

/// A listener that must never see a connection: plan errors open nothing.
fn silent_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/ws/echo", l.local_addr().unwrap());
    (l, url)
}

fn assert_nothing_connected(l: &TcpListener) {
    assert!(
        l.accept().is_err(),
        "a plan error must not open any connection"
    );
}

#[test]
fn bad_usage_and_plans_exit_2_before_connecting() {
    let (l, url) = silent_listener();
    assert_cmd_swarm()
        .args(["echo", &url, "--payload-size", "20"])
        .assert()
        .code(2)
        .stderr(contains("payload-size 20 is below the minimum"));
    assert_cmd_swarm()
        .args(["echo", &url, "--clients", "many"])
        .assert()
        .code(2);
    assert_cmd_swarm()
        .args(["echo", &url, "--threshold", "echo.nonsense.p99 < 5ms"])
        .assert()
        .code(2)
        .stderr(contains("threshold"));
    assert_cmd_swarm()
        .args(["echo", "ftp://127.0.0.1:1/"])
        .assert()
        .code(2)
        .stderr(contains("scheme"));
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("bad.toml");
    let mut f = std::fs::File::create(&plan).unwrap();
    writeln!(f, "url = \"{url}\"\n[[phase]]\nname = \"a\"\nclients = 5\nduration = \"forever\"\nrate = \"fast\"").unwrap();
    assert_cmd_swarm()
        .arg("run")
        .arg(&plan)
        .assert()
        .code(2)
        .stderr(contains("duration").and(contains("rate")));
    assert_cmd_swarm()
        .args(["run", "/nonexistent/plan.toml"])
        .assert()
        .code(2);
    // More clients than one process's descriptors: refused up front, saying how many fit.
    assert_cmd_swarm()
        .args([
            "connect",
            &url,
            "--clients",
            "1m",
            "--ramp",
            "10s",
            "--procs",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(contains("clients fit"));
    // Workers of more clients than descriptors each: refused up front too.
    assert_cmd_swarm()
        .args([
            "connect",
            &url,
            "--clients",
            "1m",
            "--ramp",
            "10s",
            "--procs",
            "2",
        ])
        .assert()
        .code(2)
        .stderr(contains("clients fit"));
    // Without a URL the embedded server holds every connection in this process.
    assert_cmd_swarm()
        .args(["connect", "--clients", "100k", "--ramp", "10s"])
        .assert()
        .code(2)
        .stderr(contains("embedded"));
    assert_nothing_connected(&l);
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn unreachable_target_exits_3() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    assert_cmd_swarm()
        .args([
            "connect",
            &format!("http://127.0.0.1:{port}/"),
            "--clients",
            "2",
            "--duration",
            "100ms",
            "--out",
        ])
        .arg(dir.path())
        .timeout(Duration::from_secs(30))
        .assert()
        .code(3)
        .stderr(contains("unreachable"));
}

/// A 60 s echo of 4 clients x 20/s into `out`, as a child process to be signalled.
fn long_echo(url: &str, out: &std::path::Path) -> std::process::Child {
    swarm()
        .args([
            "echo",
            url,
            "--clients",
            "4",
            "--rate",
            "20/s",
            "--duration",
            "60s",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigint_writes_an_interrupted_results_file_and_exits_130() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("http://{}/", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut child = long_echo(&url, dir.path());
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("swarm did not exit within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(130));
    let run =
        reports::RunFile::read(dir.path().join("results.json")).expect("readable results file");
    assert!(run.meta.interrupted);
    assert_eq!(run.meta.status, reports::RunStatus::Interrupted);
    let echo = run.run.echo.expect("echo recorded before the interrupt");
    assert!(echo.sent > 0 && echo.received > 0, "{echo:?}");
    assert_eq!(
        echo.sent,
        echo.received + echo.timeouts + echo.unanswered_at_stop
    );
}

/// A reused `--out` never mixes two runs: an earlier run's files are cleared (and said), a
/// folder holding anything else is refused with exit 2 before any socket opens, untouched.
#[test]
fn reused_out_folder_is_cleared_or_refused() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let echo = |out: &std::path::Path| {
        let mut cmd = assert_cmd_swarm();
        cmd.args([
            "echo",
            &url,
            "--clients",
            "2",
            "--rate",
            "10/s",
            "--duration",
            "300ms",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .timeout(Duration::from_secs(30));
        cmd
    };
    echo(&out).assert().code(0);
    let first = std::fs::read_to_string(out.join("results.json")).unwrap();
    // Second run into the same folder: the old files go first, the note says so, and what
    // is there afterwards is the second run's.
    echo(&out)
        .assert()
        .code(0)
        .stderr(contains("held an earlier run's files").and(contains("results.json")));
    let second = std::fs::read_to_string(out.join("results.json")).unwrap();
    assert_ne!(first, second, "results.json is the second run's");
    // A foreign file: refused, exit 2, nothing removed.
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    echo(&out).assert().code(2).stderr(contains("notes.txt"));
    assert!(out.join("notes.txt").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("results.json")).unwrap(),
        second
    );
}

/// A swarm killed with SIGKILL (or by the OOM killer) cannot write its final file: the
/// checkpoint it rewrites every 2 s is there instead, readable, with status `running` and
/// the first seconds' data, and `swarm report` renders it.
#[test]
fn sigkill_leaves_a_running_checkpoint_with_the_first_seconds() {
    let srv = testkit::Target::start(target_server::Config::default());
    let url = format!("ws://{}/ws/echo", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut child = long_echo(&url, dir.path());
    std::thread::sleep(Duration::from_secs(5));
    child
        .kill()
        .expect("SIGKILL the swarm (our own child, by PID)");
    let _ = child.wait();
    let path = dir.path().join("results.json");
    let run = reports::RunFile::read(&path).expect("a readable checkpoint after SIGKILL");
    assert_eq!(run.meta.status, reports::RunStatus::Running);
    let echo = run
        .run
        .echo
        .as_ref()
        .expect("echo recorded in the checkpoint");
    assert!(echo.sent > 0 && echo.received > 0, "{echo:?}");
    // The checkpoint is at most ~2 s old: 4 clients x 20/s over at least ~2 s.
    assert!(echo.sent >= 100, "{echo:?}");
    let seconds_with_sends = run.series.iter().filter(|p| p.sent > 0).count();
    assert!(seconds_with_sends >= 2, "{:?}", run.series);
    // No temporary file was left half-written beside it, and the report renders it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"histograms.hlog".to_string()), "{names:?}");
    let md = assert_cmd_swarm()
        .args(["report", "--format", "md"])
        .arg(&path)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        md.status.success(),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(text.contains("did not finish"), "{text}");
}
