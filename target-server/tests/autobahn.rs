//! Autobahn|Testsuite (`wstest -m fuzzingclient`) against the `target-server` binary's raw
//! WebSocket echo `/ws/echo`: every case of RFC 6455 sections 1-10 (framing, pings, reserved
//! bits and opcodes, fragmentation, UTF-8 validation, limits, close handling, large messages)
//! must end OK, NON-STRICT or INFORMATIONAL, and its closing handshake OK or INFORMATIONAL.
//! Sections 12 and 13 (permessage-deflate) are excluded: the server does not negotiate it.
//!
//! `wstest` comes from `interop/autobahn/.venv` (Python 2.7, installed by scripts/test.sh),
//! or from `$WSTEST`. Missing, the test fails (with or without `CI`) and says how to install it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_target-server");
/// Upper bound of the whole fuzzing run (it takes well under a minute on a quiet machine).
const RUN_LIMIT: Duration = Duration::from_secs(600);

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

#[test]
fn autobahn_fuzzingclient_against_ws_echo() {
    let wstest = wstest();
    let server = testkit::target_server_process(BIN, &["--log", "warn"]);
    let addr = format!("127.0.0.1:{}", server.port);
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

    let started = Instant::now();
    let mut cmd = Command::new(&wstest);
    cmd.args(["-m", "fuzzingclient", "-s"])
        .arg(&spec_path)
        .current_dir(dir.path());
    let run = testkit::run_to_end(cmd, RUN_LIMIT);
    let took = started.elapsed();
    let log = run.transcript();
    assert!(
        run.success(),
        "wstest failed or passed {RUN_LIMIT:?}:\n{log}"
    );

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
