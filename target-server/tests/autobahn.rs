//! Autobahn|Testsuite (`wstest -m fuzzingclient`) against the `target-server` binary's raw
//! WebSocket echo `/ws/echo`: every case of RFC 6455 sections 1-10 (framing, pings, reserved
//! bits and opcodes, fragmentation, UTF-8 validation, limits, close handling, large messages)
//! must end OK, NON-STRICT or INFORMATIONAL, and its closing handshake OK or INFORMATIONAL.
//! Sections 12 and 13 (permessage-deflate) are excluded: the server does not negotiate it.
//!
//! `wstest` comes from `interop/autobahn/.venv` (Python 2.7, installed by scripts/test.sh),
//! or from `$WSTEST`. Missing, the test fails (with or without `CI`) and says how to install it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_target-server");
/// Upper bound of the whole fuzzing run (it takes well under a minute on a quiet machine).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Kills (by PID) and reaps the child when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wstest() -> PathBuf {
    if let Some(p) = std::env::var_os("WSTEST") {
        return PathBuf::from(p);
    }
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/autobahn/.venv/bin/wstest");
    if venv.is_file() {
        return venv;
    }
    let ci = if std::env::var_os("CI").is_some() {
        " (CI is set: a missing test dependency is a failure)"
    } else {
        ""
    };
    panic!(
        "wstest (Autobahn|Testsuite) not found at {}{ci}; run ./scripts/test.sh once, which \
         creates interop/autobahn/.venv from interop/autobahn/requirements.txt with Python 2.7, \
         or set WSTEST=/path/to/wstest",
        venv.display()
    );
}

/// Starts `target-server --bind 127.0.0.1:0` and returns it with its address.
fn start_server() -> (ChildGuard, String) {
    let child = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0", "--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn target-server");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line of target-server");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

#[test]
fn autobahn_fuzzingclient_against_ws_echo() {
    let wstest = wstest();
    let (_server, addr) = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let outdir = dir.path().join("reports");
    let spec = serde_json::json!({
        "outdir": outdir,
        "servers": [{"agent": "target-server", "url": format!("ws://{addr}/ws/echo")}],
        "cases": ["*"],
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    });
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

    let log = std::fs::File::create(dir.path().join("wstest.log")).unwrap();
    let started = Instant::now();
    let child = Command::new(&wstest)
        .args(["-m", "fuzzingclient", "-s"])
        .arg(&spec_path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", wstest.display()));
    let mut child = ChildGuard(child);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let log = std::fs::read_to_string(dir.path().join("wstest.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            panic!("wstest did not finish within {RUN_LIMIT:?}; last lines: {tail:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    let log = std::fs::read_to_string(dir.path().join("wstest.log")).unwrap_or_default();
    assert!(status.success(), "wstest exited with {status}:\n{log}");

    let index = std::fs::read(outdir.join("index.json")).unwrap_or_else(|e| {
        panic!("no index.json in {}: {e}\n{log}", outdir.display());
    });
    let index: Value = serde_json::from_slice(&index).expect("index.json is JSON");
    let cases = index
        .get("target-server")
        .and_then(Value::as_object)
        .expect("index.json has the agent target-server");

    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut bad = Vec::new();
    for (id, case) in cases {
        let behavior = case["behavior"].as_str().unwrap_or("?");
        let close = case["behaviorClose"].as_str().unwrap_or("?");
        *counts.entry(behavior.to_string()).or_default() += 1;
        let ok = matches!(behavior, "OK" | "NON-STRICT" | "INFORMATIONAL")
            && matches!(close, "OK" | "INFORMATIONAL");
        if !ok {
            bad.push(format!(
                "{id}: behavior {behavior}, close {close} (remote close code {})",
                case["remoteCloseCode"]
            ));
        }
    }
    assert!(
        cases.len() > 200,
        "expected the ~300 cases of sections 1-10, index has {}",
        cases.len()
    );
    println!(
        "autobahn: {} cases in {:.1} s: {counts:?}",
        cases.len(),
        took.as_secs_f64()
    );
    assert!(
        bad.is_empty(),
        "{} Autobahn case(s) failed (per-case reports in a temp dir, rerun with the spec \
         to keep them):\n{}",
        bad.len(),
        bad.join("\n")
    );
}
