//! Child processes of the tests: long-running peers (a Node or Python server that prints
//! `{"listening":PORT}`) and scripts run to their end (a Node client check, the Node swarm,
//! a Chromium check).
//!
//! Receives: a program, its arguments and working directory. Emits: the peer's port, or the
//! script's exit status, output and JSON lines.
//! Must not: leave a child running (each is killed by its PID when its handle drops or its
//! deadline passes), wait without a deadline, or block a child on a full pipe (stdout and
//! stderr are drained by threads and kept up to [`KEEP_BYTES`]).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a peer may take to print its `{"listening":PORT}` line.
pub const READY_WITHIN: Duration = Duration::from_secs(20);

/// At most this much of a child's stdout and of its stderr is kept (the rest is drained).
pub const KEEP_BYTES: usize = 1 << 20;

/// A command for `node SCRIPT ARGS...` in `interop/`, with stdin closed and the browser
/// download of playwright disabled.
pub fn node_command(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(crate::deps::interop_dir())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    cmd
}

/// Output kept from one pipe, shared with the thread that drains it.
type Sink = Arc<Mutex<String>>;

fn append(sink: &Sink, line: &str) {
    if let Ok(mut s) = sink.lock()
        && s.len() < KEEP_BYTES
    {
        let room = KEEP_BYTES - s.len();
        let mut end = line.len().min(room);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        s.push_str(&line[..end]);
        s.push('\n');
    }
}

fn read_sink(sink: &Sink) -> String {
    sink.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Drains `from` line by line into `sink` on a thread; each line also goes to `tap` while
/// its receiver lives.
fn drain(from: impl Read + Send + 'static, sink: Sink, tap: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    append(&sink, line);
                    if let Some(tap) = &tap {
                        let _ = tap.send(line.to_string());
                    }
                }
            }
        }
    });
}

fn kill(child: &mut Child) {
    // SIGKILL to this child's PID, then reap it.
    let _ = child.kill();
    let _ = child.wait();
}

/// A long-running peer that printed `{"listening":PORT}` on stdout. Killed by its PID when
/// dropped.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    pub port: u16,
    stderr: Sink,
}

impl Peer {
    /// Starts `cmd` and waits at most [`READY_WITHIN`] for a stdout line
    /// `{"listening":PORT}`; lines before it are ignored. Panics (after killing the child)
    /// with its stderr when none comes.
    pub fn start(cmd: Command) -> Peer {
        Peer::start_on(cmd, "{\"listening\":PORT}", listening_port)
    }

    /// Like [`Peer::start`], ready on the first stdout line that `port_of` reads a port
    /// from; `ready` names that line in the panic message.
    pub fn start_on(mut cmd: Command, ready: &str, port_of: fn(&str) -> Option<u16>) -> Peer {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout: Sink = Arc::default();
        let stderr: Sink = Arc::default();
        let (tx, rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        drain(child.stdout.take().expect("piped stdout"), stdout, Some(tx));
        drain(
            child.stderr.take().expect("piped stderr"),
            stderr.clone(),
            Some(err_tx),
        );
        let deadline = Instant::now() + READY_WITHIN;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = port_of(&line) {
                        break Some(port);
                    }
                }
                Err(_) => break None,
            }
        };
        let Some(port) = port else {
            kill(&mut child);
            // Let the drain reach the end of stderr (bounded) so the message shows all of it.
            let until = Instant::now() + Duration::from_secs(2);
            while err_rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .is_ok()
            {}
            panic!(
                "{what} did not print {ready} within {READY_WITHIN:?}\nstderr:\n{}",
                read_sink(&stderr)
            );
        };
        Peer {
            child,
            port,
            stderr,
        }
    }

    /// `node interop/SCRIPT ARGS...` (the caller checked [`crate::node_ready`]).
    pub fn node(script: &str, args: &[&str]) -> Peer {
        Peer::start(node_command(script, args))
    }

    /// `PYTHON SCRIPT ARGS...` in `interop/python/` (`python` from [`crate::python_ready`]).
    pub fn python(python: &Path, script: &str, args: &[&str]) -> Peer {
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(args)
            .current_dir(crate::deps::interop_dir().join("python"));
        Peer::start(cmd)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` and `VmHWM` (peak RSS) of the process, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// What the peer wrote to stderr so far (up to [`KEEP_BYTES`]).
    pub fn stderr(&self) -> String {
        read_sink(&self.stderr)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The port of a `{"listening":PORT}` line.
fn listening_port(line: &str) -> Option<u16> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    u16::try_from(v.get("listening")?.as_u64()?).ok()
}

/// How a script run to its end (or to its deadline) ended, and what it printed.
#[derive(Debug)]
pub struct ScriptRun {
    /// `None` when the deadline passed and the script was killed.
    pub status: Option<ExitStatus>,
    /// Every stdout line that parsed as JSON, in order.
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// Exited, with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The first JSON line whose `key` is the string `value`.
    pub fn line(&self, key: &str, value: &str) -> Option<&Value> {
        self.lines
            .iter()
            .find(|l| l.get(key).and_then(Value::as_str) == Some(value))
    }

    /// The first JSON line with `"done": true` (the scripts' final line).
    pub fn done(&self) -> Option<&Value> {
        self.lines.iter().find(|l| l["done"] == true)
    }

    /// Everything the script printed, for assertion messages.
    pub fn transcript(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at its deadline".to_string(),
        };
        format!(
            "exit: {status}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to its end, killing it (by PID) if it still runs after `limit`.
pub fn run_to_end(mut cmd: Command, limit: Duration) -> ScriptRun {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout: Sink = Arc::default();
    let stderr: Sink = Arc::default();
    // The taps end when the pipes close, so the output is complete once both are done.
    let (out_done, out_rx) = mpsc::channel();
    let (err_done, err_rx) = mpsc::channel();
    drain(
        child.stdout.take().expect("piped stdout"),
        stdout.clone(),
        Some(out_done),
    );
    drain(
        child.stderr.take().expect("piped stderr"),
        stderr.clone(),
        Some(err_done),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill(&mut child);
                break None;
            }
        }
    };
    // Wait (bounded) for the drains to reach the end of both pipes.
    let until = Instant::now() + Duration::from_secs(5);
    for rx in [out_rx, err_rx] {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    let stdout = read_sink(&stdout);
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    ScriptRun {
        status,
        lines,
        stdout,
        stderr: read_sink(&stderr),
    }
}

/// `node interop/SCRIPT ARGS...` to its end; panics if it was still running after `limit`
/// (it is killed first). The caller checked [`crate::node_ready`].
pub fn run_node_script(script: &str, args: &[&str], limit: Duration) -> ScriptRun {
    let run = run_to_end(node_command(script, args), limit);
    assert!(
        run.status.is_some(),
        "node {script} still running after {limit:?}; killed\n{}",
        run.transcript()
    );
    run
}

/// [`run_node_script`] from an async test, on a blocking thread (the test's runtime keeps
/// serving what the script talks to).
pub async fn run_node_script_async(script: &str, args: &[&str], limit: Duration) -> ScriptRun {
    let script = script.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_node_script(&script, &args, limit)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn listening_line_is_parsed_strictly() {
        assert_eq!(listening_port(r#"{"listening":4321}"#), Some(4321));
        assert_eq!(listening_port(r#" {"listening":1} "#), Some(1));
        assert_eq!(listening_port(r#"{"listening":70000}"#), None);
        assert_eq!(listening_port(r#"{"listening":"80"}"#), None);
        assert_eq!(listening_port("listening 80"), None);
    }

    #[test]
    fn a_peer_is_ready_on_its_listening_line_and_killed_on_drop() {
        let peer = Peer::start(sh(
            r#"echo starting; echo oops >&2; echo '{"listening":5555}'; exec sleep 30"#,
        ));
        assert_eq!(peer.port, 5555);
        let pid = peer.child.id();
        let started = Instant::now();
        drop(peer);
        assert!(started.elapsed() < Duration::from_secs(5));
        // The PID is reaped: no such process any more (or, rarely, reused by another).
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(!status.contains("sleep"), "{status}");
    }

    #[test]
    #[should_panic(
        expected = "did not print {\"listening\":PORT} within 20s\nstderr:\nno port here"
    )]
    fn a_peer_that_exits_without_listening_fails_with_its_stderr() {
        Peer::start(sh("echo 'no port here' >&2; exit 3"));
    }

    #[test]
    fn a_script_runs_to_its_end_with_its_json_lines() {
        let run = run_to_end(
            sh(r#"echo '{"a":1}'; echo text; echo '{"done":true}'; echo err >&2; exit 4"#),
            Duration::from_secs(20),
        );
        assert_eq!(run.status.and_then(|s| s.code()), Some(4));
        assert!(!run.success());
        assert_eq!(run.lines.len(), 2, "{}", run.transcript());
        assert!(run.done().is_some());
        assert_eq!(run.stderr, "err\n");
    }

    #[test]
    fn a_script_past_its_deadline_is_killed() {
        let started = Instant::now();
        let run = run_to_end(sh("echo begun; exec sleep 30"), Duration::from_millis(300));
        assert!(run.status.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(run.stdout, "begun\n");
    }

    #[test]
    fn kept_output_is_bounded() {
        let run = run_to_end(
            sh("head -c 3000000 /dev/zero | tr '\\0' 'x'; echo"),
            Duration::from_secs(20),
        );
        assert!(run.success());
        assert!(run.stdout.len() <= KEEP_BYTES + 1, "{}", run.stdout.len());
    }
}
