//! Shared helpers of the calibration tests (`calibration_*.rs`): a target-server whose
//! exact counters the test can read, swarm runs in-process, and the Node peer script.
//!
//! Receives: a server [`Config`](target_server::Config), `swarm` arguments. Emits: the
//! server's address and shared state, finished runs, the Node swarm's JSON summary.
//! Must not: bind or reach anything outside 127.0.0.1, write outside temp dirs, leave a
//! child process running (killed by its PID on drop), or wait without a bound.

#![allow(dead_code)] // each calibration test uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use target_server::{Config, Shared};
use tokio::sync::oneshot;

/// target-server on 127.0.0.1:0, on its own runtime thread, with its `Shared` state
/// (exact fault counters) in reach. Stops when dropped.
pub struct CountingServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CountingServer {
    pub fn start(config: Config) -> CountingServer {
        let shared = Shared::new(config);
        let state = shared.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = target_server::net::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .expect("bind 127.0.0.1:0");
                addr_tx
                    .send(listener.local_addr().expect("local addr"))
                    .expect("report addr");
                let _ = target_server::serve_shared(listener, state, async move {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server listening");
        CountingServer {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn dropped_by_injection(&self) -> u64 {
        self.shared
            .stats
            .dropped_by_injection
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Node.js is on PATH. When it is not, the caller calls `common::missing_dependency` (a
/// failure under `CI`, else a skip); a missing `npm ci` in interop/ is a failure, not a skip.
pub fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `benches/peers/node-sio-swarm.mjs` (the official socket.io-client of interop/).
pub fn node_swarm_script() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(
        root.join("interop/node_modules/socket.io-client").exists(),
        "run `npm ci` in interop/ (scripts/test.sh does)"
    );
    root.join("benches/peers/node-sio-swarm.mjs")
}

/// A child process killed by its PID when dropped.
pub struct Kid(pub Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the Node swarm with `args` and returns its JSON summary (bounded by `limit`).
pub fn run_node_swarm(args: &[String], limit: Duration) -> serde_json::Value {
    let mut kid = Kid(Command::new("node")
        .arg(node_swarm_script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node"));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = kid.0.try_wait().expect("wait node") {
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read as _;
            if let Some(o) = kid.0.stdout.as_mut() {
                let _ = o.read_to_string(&mut out);
            }
            if let Some(e) = kid.0.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(
                status.success(),
                "node swarm failed ({status}): {out}\n{err}"
            );
            let line = out.lines().last().unwrap_or_default();
            return serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("node swarm printed no JSON ({e}): {out}\n{err}"));
        }
        assert!(
            Instant::now() < deadline,
            "node swarm did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
