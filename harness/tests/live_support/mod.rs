//! Support of the live-output tests (`live_*.rs`): the swarm binary run under a deadline,
//! a real Prometheus (Debian's `prometheus`, installed by scripts/test.sh) on a free
//! loopback port with a temp config and data dir, and a small HTTP client for its API.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reports::RunFile;
use std::collections::BTreeSet;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Runs the swarm binary with `args`, killed (by its PID) past `limit`; the output and
/// how long it took.
pub fn swarm(args: &[String], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swarm");
    // Drain the pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = started + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("swarm did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let output = Output {
        status,
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    };
    (output, took)
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

/// Whether Prometheus is installed; when it is not, `testkit::deps::missing_dependency`
/// fails the test under CI (outside CI the caller returns).
pub fn prometheus_ready(test: &str) -> bool {
    if Path::new(PROMETHEUS).exists() {
        return true;
    }
    testkit::deps::missing_dependency(
        test,
        "/usr/bin/prometheus is missing (apt-get install prometheus; scripts/test.sh does)",
    );
    false
}

/// A Prometheus server of this test, killed by its PID when dropped.
pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `scrape` (every second) when given, with the
    /// remote-write receiver on when `receiver`; waits until it is ready.
    pub fn start(scrape: Option<SocketAddr>, receiver: bool) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        if let Some(a) = scrape {
            cfg.push_str(&format!(
                "  - job_name: swarm\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    \
                 static_configs:\n      - targets: ['{a}']\n"
            ));
        } else {
            cfg.push_str("  []\n");
        }
        let cfg = if scrape.is_none() {
            cfg.replace("scrape_configs:\n  []\n", "scrape_configs: []\n")
        } else {
            cfg
        };
        let cfg_path = dir.path().join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).expect("config");
        let log = dir.path().join("prometheus.log");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        if receiver {
            cmd.arg("--web.enable-remote-write-receiver");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start prometheus");
        let mut p = Prometheus {
            addr,
            child,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = p.child.try_wait() {
                panic!("prometheus exited ({s}): {}", p.log());
            }
            if http_get(addr, "/-/ready").is_some_and(|(s, _)| s == 200) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready within 20 s: {}", p.log());
    }

    /// Waits (at most 20 s) until Prometheus has tried its scrape target at least once.
    pub fn wait_for_scrapes(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some((200, body)) = http_get(self.addr, "/api/v1/targets") {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let tried = v["data"]["activeTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["health"].as_str().is_some_and(|h| h != "unknown"));
                if tried {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus never tried its scrape target: {}", self.log());
    }

    /// An instant query's `data.result` (panics on an API error).
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", encode(expr));
        self.api(&path)
    }

    /// A range query's `data.result` over `[start, end]` (Unix seconds), step 1 s.
    pub fn query_range(&self, expr: &str, start: f64, end: f64) -> Vec<serde_json::Value> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step=1",
            encode(expr)
        );
        self.api(&path)
    }

    fn api(&self, path: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_get(self.addr, path).expect("prometheus answers");
        let v: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(status, 200, "{path}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// A single number from an instant query whose result is one series (or scalar).
    pub fn value(&self, expr: &str) -> Option<f64> {
        let r = self.query(expr);
        let v = r.first()?["value"][1].as_str()?.to_string();
        v.parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET path` over HTTP/1.0 (the server closes after the answer); status and body. At
/// most 16 MiB, 10 s.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.take(16 << 20).read_to_end(&mut buf).ok()?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf[split + 4..].to_vec()))
}

/// The run folder's results.
pub fn read_run(dir: &Path) -> reports::RunFile {
    reports::RunFile::read(dir.join("results.json")).expect("results.json")
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The largest value any series of `metric` of this run ever had (the run is over, so an
/// instant query would find the series stale).
pub fn final_value(p: &Prometheus, metric: &str, run_id: &str) -> f64 {
    let expr = format!("max(max_over_time({metric}{{run_id=\"{run_id}\"}}[10m]))");
    p.value(&expr)
        .unwrap_or_else(|| panic!("{expr}: no data\n{}", p.log()))
}

/// Final counters equal results.json's; the labels are the run's; every echo p99 and p50
/// Prometheus holds is one of results.json's per-second figures.
pub fn assert_agrees(p: &Prometheus, run: &RunFile) {
    let id = &run.meta.run_id;
    let echo = run.run.echo.as_ref().expect("echo section");
    let pairs = [
        ("swarm_messages_sent_total", echo.sent),
        ("swarm_messages_received_total", echo.received),
        ("swarm_timeouts_total", echo.timeouts),
        ("swarm_connects_total", run.run.connect.connected),
        ("swarm_connect_attempts_total", run.run.connect.attempted),
    ];
    for (metric, want) in pairs {
        assert_eq!(final_value(p, metric, id), want as f64, "{metric}");
    }
    assert!(
        echo.sent > 50,
        "the run sent too little to compare: {}",
        echo.sent
    );
    let series = p.query(&format!(
        "count by (run_id, phase, scenario, target) (max_over_time(swarm_messages_sent_total{{run_id=\"{id}\"}}[10m]))"
    ));
    assert_eq!(series.len(), 1, "{series:?}");
    let labels = &series[0]["metric"];
    assert_eq!(labels["phase"], "echo");
    assert_eq!(labels["scenario"], "echo");
    assert_eq!(labels["target"], run.meta.target_url.as_str());
    for (q, pick) in [
        (
            "0.99",
            (|s: &reports::SecondPoint| s.latency_p99_us) as fn(&_) -> _,
        ),
        ("0.5", |s: &reports::SecondPoint| s.latency_p50_us),
    ] {
        let seconds: BTreeSet<u64> = run.series.iter().filter_map(pick).collect();
        let r = p.query(&format!(
            "swarm_echo_latency_seconds{{run_id=\"{id}\",quantile=\"{q}\"}}[10m]"
        ));
        let mut seen = 0;
        for s in &r {
            for v in s["values"].as_array().into_iter().flatten() {
                let x: f64 = v[1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
                if x.is_nan() {
                    continue;
                }
                let us = (x * 1e6).round() as u64;
                assert!(
                    seconds.contains(&us),
                    "quantile {q} = {us} us is not a per-second figure of results.json: {seconds:?}"
                );
                seen += 1;
            }
        }
        assert!(seen >= 3, "too few quantile samples for {q}: {r:?}");
    }
}
