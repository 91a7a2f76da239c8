//! Chaos: the target dies in the middle of an echo run and comes back.
//!
//! A target-server runs in a child process (this test binary re-executed in server mode)
//! on a fixed loopback port, because a restarted server must be found at the same address.
//! The `swarm` binary runs a 10 s echo with `--reconnect`; the server is killed (SIGKILL,
//! by its PID) 2 s in and restarted on the same port 4 s in. The run must show the outage
//! (series, outage section, terminal table, report), keep its accounting
//! (`planned = sent + skipped_disconnected`, `sent = received + timeouts + unanswered`),
//! end `degraded` and exit 5 (no thresholds given).
//!
//! Bounds: 20 clients at 20/s for 10 s, every wait bounded; the child server is killed and
//! reaped on every path (a guard owns it).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reports::{RunFile, RunStatus};

/// Set in the child process: serve target-server on 127.0.0.1:<port> until killed.
const CHILD_PORT: &str = "SWARMBENCH_CHAOS_SERVER_PORT";
/// Exit code of a child that could not bind its port (the parent tries another one).
const BIND_FAILED: i32 = 3;

const CLIENTS: u64 = 20;
const RATE: u64 = 20;
const DURATION_S: u64 = 10;
const KILL_AT: Duration = Duration::from_secs(2);
const RESTART_AT: Duration = Duration::from_secs(4);

/// The child's life: a target-server on the port it was given, until it is killed.
fn serve_forever(port: u16) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(listener) = target_server::net::bind(addr) else {
            std::process::exit(BIND_FAILED);
        };
        let shared = target_server::Shared::new(target_server::Config::default());
        let _ = target_server::serve_shared(listener, shared, std::future::pending()).await;
    });
    std::process::exit(0)
}

/// A child server process, killed and reaped when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server child on `port`; `None` if it could not bind within `patience`.
fn start_server(port: u16, patience: Duration) -> Option<ServerProcess> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let exe = std::env::current_exe().expect("test binary path");
        let child = Command::new(exe)
            .args(["--exact", "target_dies_and_returns", "--nocapture"])
            .env(CHILD_PORT, port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server child");
        let mut server = ServerProcess(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listen_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.0.try_wait() {
                // Could not bind (port taken, or still held): try again shortly.
                assert_eq!(
                    status.code(),
                    Some(BIND_FAILED),
                    "server child died: {status}"
                );
                break;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Some(server);
            }
            if Instant::now() > listen_deadline {
                panic!("server child on port {port} did not listen within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn read_run(dir: &Path) -> RunFile {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("a valid run file")
}

#[test]
fn target_dies_and_returns() {
    if let Ok(port) = std::env::var(CHILD_PORT) {
        serve_forever(port.parse().expect("a port number"));
    }
    // A fixed port (below the ephemeral range, which starts at 32768 on Linux), chosen at
    // random and retried on conflict: the restarted server must be at the same address.
    let (port, server) = (0..20)
        .find_map(|_| {
            let port = 20_000 + (rand::random::<u16>() % 12_000);
            start_server(port, Duration::from_millis(300)).map(|s| (port, s))
        })
        .expect("a free port in 20000..32000");
    let out = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let swarm = Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args([
            "echo",
            &format!("ws://127.0.0.1:{port}/ws/echo"),
            "--clients",
            &CLIENTS.to_string(),
            "--rate",
            &format!("{RATE}/s"),
            "--duration",
            &format!("{DURATION_S}s"),
            "--timeout",
            "1s",
            "--grace",
            "1s",
            "--reconnect",
            "--reconnect-delay",
            "100ms",
            "--reconnect-max-delay",
            "400ms",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm");
    let swarm = SwarmProcess(Some(swarm));

    std::thread::sleep(KILL_AT.saturating_sub(started.elapsed()));
    drop(server); // SIGKILL by PID, then reaped
    std::thread::sleep(RESTART_AT.saturating_sub(started.elapsed()));
    let restarted = start_server(port, Duration::from_secs(3)).expect("restart on the same port");
    let restarted_at = started.elapsed();

    let output = swarm.wait(Duration::from_secs(60));
    drop(restarted);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("swarm output:\n{stdout}{stderr}");
    assert_eq!(
        output.status.code(),
        Some(5),
        "a degraded run without thresholds exits 5\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let run = read_run(out.path());
    assert_eq!(run.meta.status, RunStatus::Degraded);
    let detail = run.meta.status_detail.clone().unwrap_or_default();
    assert!(detail.contains("lost"), "{detail}");

    check_outage(&run, restarted_at);
    let echo = check_accounting(&run);
    check_series(&run, &echo);
    check_outputs(&stdout, out.path());
}

/// Every client lost its connection once and got it back, within the outage's bounds.
fn check_outage(run: &RunFile, restarted_at: Duration) {
    let o = run.run.outage.clone().expect("outage section");
    assert_eq!(o.connections_lost, CLIENTS, "{o:?}");
    assert_eq!(o.restored, CLIENTS, "{o:?}");
    assert_eq!(o.clients_not_restored, 0, "{o:?}");
    assert_eq!(o.peak_clients_away, CLIENTS, "{o:?}");
    assert!(
        o.reconnect_failures > 0,
        "attempts failed while the server was down: {o:?}"
    );
    assert_eq!(
        o.reconnect_attempts,
        o.reconnect_failures + o.restored,
        "{o:?}"
    );
    // Away from the kill (~2 s) until the restart (~4 s) plus at most one backoff delay.
    let away_min_us = 1_000_000;
    let away_max_us =
        (restarted_at.saturating_sub(KILL_AT) + Duration::from_millis(1_500)).as_micros() as u64;
    assert_eq!(o.restore.count, CLIENTS);
    assert!(
        o.restore.min_us >= away_min_us && o.restore.max_us <= away_max_us,
        "restore times {}..{} us",
        o.restore.min_us,
        o.restore.max_us
    );
    let first_loss = o.first_loss_offset_ms.expect("first loss");
    let last_restore = o.last_restore_offset_ms.expect("last restore");
    assert!(
        (1_500..3_000).contains(&first_loss),
        "first loss at {first_loss} ms"
    );
    assert!(
        last_restore > first_loss + 1_000,
        "{first_loss} .. {last_restore}"
    );
}

/// `sent = received + timeouts + unanswered` and `planned = sent + skipped`, for the run
/// and each phase; about the outage's worth of sends skipped.
fn check_accounting(run: &RunFile) -> reports::EchoStats {
    let e = run.run.echo.clone().expect("echo stats");
    assert_eq!(
        e.sent,
        e.received + e.timeouts + e.unanswered_at_stop,
        "{e:?}"
    );
    assert_eq!(e.planned, e.sent + e.skipped_disconnected, "{e:?}");
    // planned is what the schedule meant: about clients x rate x duration, whatever happened.
    let meant = CLIENTS * RATE * DURATION_S;
    assert!(
        e.planned + 2 * CLIENTS >= meant && e.planned <= meant + 2 * CLIENTS,
        "planned {} vs {meant} meant",
        e.planned
    );
    // About two seconds of every client's sends could not happen.
    let outage_sends = CLIENTS * RATE * 2;
    assert!(
        e.skipped_disconnected >= outage_sends * 3 / 4
            && e.skipped_disconnected <= outage_sends * 3 / 2,
        "skipped {} vs ~{outage_sends}",
        e.skipped_disconnected
    );
    // Clients sent again after the restart: more than half the plan was sent.
    assert!(e.sent > meant / 2, "{e:?}");
    for p in &run.phases {
        if let Some(pe) = &p.stats.echo {
            assert_eq!(pe.planned, pe.sent + pe.skipped_disconnected);
        }
    }
    e
}

/// The series shows the outage: seconds with every client away and nothing sent, between
/// seconds of normal sending; skipped sends only around the outage.
fn check_series(run: &RunFile, e: &reports::EchoStats) {
    let s = &run.series;
    let away_seconds: Vec<u64> = s
        .iter()
        .filter(|p| p.clients_away == CLIENTS)
        .map(|p| p.second)
        .collect();
    assert!(!away_seconds.is_empty(), "no second with every client away");
    assert!(
        away_seconds.iter().all(|&x| (1..=5).contains(&x)),
        "{away_seconds:?}"
    );
    assert!(
        s.iter().any(|p| p.clients_away == CLIENTS && p.sent == 0),
        "a second of outage with sends"
    );
    assert!(
        s.iter()
            .filter(|p| p.second == 0)
            .all(|p| p.skipped_disconnected == 0)
    );
    assert!(
        s.iter()
            .filter(|p| p.second >= 7)
            .all(|p| p.clients_away == 0)
    );
    assert_eq!(s.iter().map(|p| p.connections_lost).sum::<u64>(), CLIENTS);
    assert_eq!(s.iter().map(|p| p.restored).sum::<u64>(), CLIENTS);
    assert_eq!(
        s.iter().map(|p| p.skipped_disconnected).sum::<u64>(),
        e.skipped_disconnected
    );
    assert!(
        s.iter()
            .filter(|p| (7..=9).contains(&p.second))
            .all(|p| p.sent > 0 && p.connected == CLIENTS),
        "clients send again after the restart"
    );
}

/// The terminal table has the disconnect column and the status; the report shows the outage.
fn check_outputs(stdout: &str, out: &Path) {
    assert!(stdout.contains("status degraded"), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("phase"))
        .expect("table header");
    assert!(header.contains("disconn"), "{header}");
    assert!(stdout.contains("outage:"), "{stdout}");

    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("outage-over-time"),
        "outage chart in the report"
    );
    assert!(html.contains("Outage"));
}

/// The swarm child, killed and reaped if the test fails before it ends.
struct SwarmProcess(Option<Child>);

impl SwarmProcess {
    fn wait(mut self, limit: Duration) -> std::process::Output {
        let mut child = self.0.take().expect("running");
        let deadline = Instant::now() + limit;
        while child.try_wait().expect("swarm status").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("swarm did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("swarm output")
    }
}

impl Drop for SwarmProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
