//! Support for the interop tests: our server in-process, the Node peers of `interop/` as
//! child processes.
//!
//! Receives: a [`Config`] to serve on 127.0.0.1:0, or an `interop/` script name with its
//! arguments. Emits: the bound address, the script's JSON lines and exit status.
//! Must not: leave a child running (every child is killed by its PID when its handle drops),
//! wait without a bound, bind or reach anything outside 127.0.0.1, or write outside temp dirs.

#![allow(dead_code)] // each test crate uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use target_server::Config;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// `target_server::serve` running on 127.0.0.1:0 in this test's runtime; shut down on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = target_server::serve(listener, config, shutdown).await {
                eprintln!("target_server::serve failed: {e}");
            }
        });
        Server { addr, stop }
    }

    /// `http://127.0.0.1:PORT` (Socket.IO clients append the path themselves).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The `interop/` folder of the repository.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("interop")
}

/// True when Node.js and the interop packages are there. Prints why a test is skipped when
/// `node` itself is missing (outside CI; with `CI` set that is a failure); a missing `npm ci`
/// is a failure, not a skip (the README's test command installs the packages).
pub fn node_ready(test: &str) -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: `node` is not on PATH and CI is set: a missing dependency fails in CI"
        );
        eprintln!(
            "SKIPPED {test}: `node` is not on PATH (install Node.js 20, then run scripts/test.sh)"
        );
        return false;
    }
    let modules = interop_dir().join("node_modules");
    assert!(
        modules.join("socket.io-client").is_dir(),
        "{} is missing its packages: run `npm ci` in interop/ (scripts/test.sh does it)",
        modules.display()
    );
    true
}

/// What a finished script printed and how it ended.
#[derive(Debug)]
pub struct NodeRun {
    pub status: ExitStatus,
    /// Every stdout line that parsed as JSON, in order.
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl NodeRun {
    /// The first line whose `key` equals `value`.
    pub fn line(&self, key: &str, value: &str) -> Option<&Value> {
        self.lines
            .iter()
            .find(|l| l.get(key).and_then(Value::as_str) == Some(value))
    }

    /// Everything the script printed, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\nstdout:\n{}stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn node_command(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(interop_dir())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `node interop/SCRIPT ARGS...` to completion, killing it (by PID, as the child handle
/// drops) if it is still running after `limit`.
pub async fn run_script(script: &str, args: &[&str], limit: Duration) -> NodeRun {
    let child = node_command(script, args).spawn().expect("spawn node");
    let pid = child.id();
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("node {script} (pid {pid:?}) still running after {limit:?}; killed")
        })
        .expect("wait for node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    NodeRun {
        status: output.status,
        lines,
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A long-running Node server (`sio-server.mjs`, `ws-echo-server.mjs`) that printed
/// `{"listening":PORT}`. Killed by its PID when dropped.
pub struct NodeServer {
    child: Child,
    pub port: u16,
    /// Everything it wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl NodeServer {
    pub async fn start(script: &str, args: &[&str]) -> NodeServer {
        let mut child = node_command(script, args).spawn().expect("spawn node");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            tokio::spawn(collect(err, stderr.clone()));
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        let port = match &first {
            Ok(Ok(Some(line))) => serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("listening")?.as_u64())
                .and_then(|p| u16::try_from(p).ok()),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            panic!(
                "node {script} did not print {{\"listening\":PORT}} within 20 s: {first:?}\nstderr:\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NodeServer {
            child,
            port,
            stderr,
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        // SIGKILL by PID; tokio reaps the child in the background.
        let _ = self.child.start_kill();
    }
}

async fn collect(from: impl AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut s) = into.lock() {
            s.push_str(&line);
            s.push('\n');
        }
    }
}

/// Asserts that a `sio-client-check.mjs` run passed exactly `checks`, each reported ok.
pub fn assert_checks_passed(run: &NodeRun, checks: &[&str]) {
    for name in checks {
        let line = run
            .line("check", name)
            .unwrap_or_else(|| panic!("check {name} did not report\n{}", run.transcript()));
        assert_eq!(
            line["ok"],
            true,
            "check {name} failed: {}\n{}",
            line["error"],
            run.transcript()
        );
    }
    let done = run
        .lines
        .iter()
        .find(|l| l["done"] == true)
        .unwrap_or_else(|| panic!("no final line\n{}", run.transcript()));
    assert_eq!(done["passed"], checks.len(), "{}", run.transcript());
    assert_eq!(done["failed"], 0, "{}", run.transcript());
    assert!(run.status.success(), "{}", run.transcript());
}
