//! One run over several worker processes (`--procs`), merged exactly: the same plan run as
//! one process and as three gives identical totals; the merged histograms are the sum of
//! the workers' at every value; a lost worker leaves a `degraded` run that names it and
//! keeps what the others (and it, before) sent; Ctrl-C stops every worker and still writes
//! the merged results.
//!
//! These run the `swarm` binary (the coordinator starts workers as processes of itself)
//! against an in-test target-server.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reports::RunFile;
use testkit::Target;

/// A broadcast phase (rooms: one per worker) then an echo phase of the same clients. The
/// totals are fixed by the schedule: publishers start at the end of the ramp, and echo
/// clocks start when each client takes up the echo phase (its start, give or take the
/// wake-up) with constant arrivals whose last send before the phase end is at least 11 ms
/// from it for every client here (client 8's golden-ratio offset, 0.944 x 200 ms). Echo
/// clients that connect during a phase would start at their connect instants, and a
/// send near the end could then fall either side of it, in one process as in three.
const PLAN: &str = r#"
[[phase]]
name = "fan"
scenario = "broadcast"
publishers = 3
subscribers = 15
rooms = 3
rate = "20/s"
connect-rate = "100/s"
duration = "2s"

[[phase]]
name = "echo"
scenario = "echo"
clients = 18
rate = "5/s"
duration = "2s"
"#;

fn swarm(args: &[&str], dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.args(args).arg("--quiet").arg("--out").arg(dir);
    run_bounded(cmd, Duration::from_secs(90))
}

/// Runs `cmd` to its end, killed (by its PID) if it takes longer than `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swarm");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("swarm did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn read(dir: &Path) -> RunFile {
    RunFile::read(dir.join("results.json")).expect("results.json")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn totals(r: &RunFile) -> [u64; 8] {
    let e = r.run.echo.as_ref().expect("echo");
    let b = r.run.broadcast.as_ref().expect("broadcast");
    [
        r.run.connect.connected,
        e.sent,
        e.received,
        b.published,
        b.expected,
        b.delivered,
        b.lost,
        b.missed_while_disconnected,
    ]
}

/// Counts at every recorded value of the sum of `parts` equal those of `whole`.
fn assert_sum(what: &str, whole: &reports::Distribution, parts: &[&reports::Distribution]) {
    let whole = whole.histogram().expect("merged histogram");
    let mut sum = reports::distribution::new_histogram();
    for p in parts {
        sum.add(p.histogram().expect("worker histogram"))
            .expect("add");
    }
    assert_eq!(whole.len(), sum.len(), "{what}: counts");
    for v in sum.iter_recorded() {
        let at = v.value_iterated_to();
        assert_eq!(
            whole.count_at(at),
            sum.count_at(at),
            "{what}: count at {at} us"
        );
    }
    assert!(!whole.is_empty(), "{what}: nothing recorded");
}

/// `plan` run as one process (into `dir/one`) and as three (`dir/three`) against a fresh
/// target-server; both must succeed. Returns the two run files and the three-process run's
/// stderr (its workers' too).
fn as_one_and_three(plan: &str, dir: &Path) -> (RunFile, RunFile, String) {
    let server = Target::start(target_server::Config::default());
    let file = dir.join("plan.toml");
    std::fs::write(&file, plan).expect("plan");
    let url = server.http_url();
    let (one, three) = (dir.join("one"), dir.join("three"));
    let p = file.to_str().expect("utf-8 path");
    let out1 = swarm(&["run", p, "--url", &url, "--procs", "1"], &one);
    assert!(out1.status.success(), "{}", stderr(&out1));
    let out3 = swarm(&["run", p, "--url", &url, "--procs", "3"], &three);
    assert!(out3.status.success(), "{}", stderr(&out3));
    (read(&one), read(&three), stderr(&out3))
}

#[test]
fn one_and_three_processes_give_identical_totals_and_summed_histograms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (r1, r3, _) = as_one_and_three(PLAN, tmp.path());
    let three = tmp.path().join("three");
    assert_eq!(r1.meta.shards, 1);
    assert_eq!(r3.meta.shards, 3);
    assert!(
        !r3.meta.split_rooms,
        "three rooms over three workers: whole"
    );
    assert_eq!(
        totals(&r1),
        totals(&r3),
        "connected, echo sent/received, broadcast published/expected/delivered/lost/missed"
    );
    let b = r3.run.broadcast.as_ref().expect("broadcast");
    assert_eq!(b.delivered, b.expected, "nothing is dropped: {b:?}");
    assert_eq!(r3.workers.len(), 3);
    assert!(
        r3.workers
            .iter()
            .all(|w| w.status == "completed" && w.connects > 0)
    );
    assert_eq!(r3.workers.iter().map(|w| w.clients).sum::<u64>(), 18);
    // The merged histograms are the workers' added at every value.
    let parts: Vec<RunFile> = (0..3)
        .map(|i| {
            RunFile::read(three.join(format!("worker-{i}.results.json"))).expect("worker file")
        })
        .collect();
    let echo = |r: &RunFile| r.run.echo.clone().expect("echo").latency;
    let fan = |r: &RunFile| r.run.broadcast.clone().expect("broadcast").latency;
    let (e, f): (Vec<_>, Vec<_>) = parts.iter().map(|r| (echo(r), fan(r))).unzip();
    assert_sum("echo.latency", &echo(&r3), &e.iter().collect::<Vec<_>>());
    assert_sum(
        "broadcast.latency",
        &fan(&r3),
        &f.iter().collect::<Vec<_>>(),
    );
    // Per-second: sends add up, and each second's p99 comes from the summed interval
    // histograms in the merged log (not the worst worker's).
    let sent = |r: &RunFile| {
        r.series
            .iter()
            .map(|p| (p.sent, p.delivered))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    assert_eq!(
        sent(&r1),
        sent(&r3),
        "per-second sends and deliveries add up alike"
    );
    assert_eq!(sent(&r3).1, b.delivered);
    assert!(three.join("histograms.hlog").is_file());
    let merged = reports::intervals::merge_logs(vec![(
        "merged".to_string(),
        std::io::BufReader::new(std::fs::File::open(three.join("histograms.hlog")).expect("hlog")),
    )])
    .expect("merged log reads");
    for p in r3.series.iter().filter(|p| p.latency_p99_us.is_some()) {
        let h = merged
            .by_second
            .get(&(p.second, "echo.latency".to_string()))
            .or_else(|| {
                merged
                    .by_second
                    .get(&(p.second, "broadcast.latency".to_string()))
            })
            .expect("an interval for a second with latency");
        assert_eq!(
            p.latency_p99_us,
            Some(h.value_at_percentile(99.0)),
            "second {}",
            p.second
        );
    }
}

/// Two targets (`--url` given twice): one worker per target, the clients split by the
/// worker rule (rooms whole), each target's figures from its own worker, each room whole on
/// one server.
#[test]
fn several_targets_split_the_clients_and_each_result_is_attributed_to_its_target() {
    let (a, b) = (
        Target::start(target_server::Config::default()),
        Target::start(target_server::Config::default()),
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).expect("plan");
    let out_dir = tmp.path().join("two");
    let (ua, ub) = (a.http_url(), b.http_url());
    let p = plan.to_str().expect("utf-8 path");
    let out = swarm(&["run", p, "--url", &ua, "--url", &ub], &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = read(&out_dir);
    assert_eq!(r.meta.shards, 2, "auto: one worker per target");
    assert_eq!(r.targets.len(), 2);
    let ws: Vec<(u32, &str)> = r
        .workers
        .iter()
        .map(|w| (w.index, w.target.as_str()))
        .collect();
    assert_eq!(
        ws,
        [
            (0, r.targets[0].url.as_str()),
            (1, r.targets[1].url.as_str())
        ]
    );
    assert!(r.meta.target_url.contains(", "), "{}", r.meta.target_url);
    let echo_sent: u64 = r
        .targets
        .iter()
        .map(|t| t.run.echo.as_ref().unwrap().sent)
        .sum();
    assert_eq!(echo_sent, r.run.echo.as_ref().unwrap().sent);
    // Rooms stay whole (rooms 0 and 2 on worker 0, room 1 on worker 1): 12 and 6 clients.
    let clients: Vec<u64> = r.targets.iter().map(|t| t.clients).collect();
    assert_eq!(clients, [12, 6]);
    for (t, server) in r.targets.iter().zip([&a, &b]) {
        // What the server saw is what the swarm attributes to it.
        let seen = server
            .shared
            .stats
            .connections_total(target_server::stats::Proto::SocketioWebsocket);
        assert_eq!(seen, t.run.connect.connected, "{}", t.url);
        assert!(t.run.connect.connected > 0);
        let e = t.run.echo.as_ref().expect("echo");
        assert_eq!((e.received, e.timeouts), (e.sent, 0), "{}", t.url);
        // Rooms stay whole on one server: every expected delivery arrives.
        let f = t.run.broadcast.as_ref().expect("broadcast");
        assert!(
            f.expected > 0 && f.delivered == f.expected,
            "{}: {f:?}",
            t.url
        );
    }
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report");
    assert!(html.contains("Targets (each from the workers that drove it)"));
}

/// Runs `plan` (with a 1 s timeout) over three workers against a server that drops 2% of
/// what it sends (seeded by `seed`), and checks that broadcast `lost` plus the echo
/// requests never answered are the server's drop count, and the broadcast invariant.
fn over_three_workers_with_drops(plan: &str, seed: u64) -> RunFile {
    let server = Target::start(target_server::Config {
        drop_rate: 0.02,
        seed,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("plan.toml");
    std::fs::write(&file, format!("timeout = \"1s\"\n{plan}")).expect("plan");
    let url = server.http_url();
    let dir = tmp.path().join("run");
    let file = file.to_str().expect("utf-8");
    let out = swarm(&["run", file, "--url", &url, "--procs", "3"], &dir);
    let r = read(&dir);
    let e = r.run.echo.as_ref().expect("echo");
    let b = r.run.broadcast.as_ref().expect("broadcast");
    let dropped = server
        .shared
        .stats
        .dropped_by_injection
        .load(Ordering::SeqCst);
    assert!(dropped > 0, "the server dropped nothing");
    assert_eq!(
        b.lost + e.timeouts + e.unanswered_at_stop,
        dropped,
        "broadcast lost + echo missing = the server's drops: {b:?} {e:?}; {}",
        stderr(&out)
    );
    assert_eq!(
        b.delivered + b.missed_while_disconnected + b.lost,
        b.expected
    );
    r
}

#[test]
fn with_injected_drops_lost_is_the_servers_count_across_workers() {
    let r = over_three_workers_with_drops(PLAN, 11);
    let e = r.run.echo.as_ref().expect("echo");
    assert_eq!(e.sent, e.received + e.timeouts + e.unanswered_at_stop);
}

/// One room over three workers (fewer rooms than workers: the run is split, every client c
/// in worker c mod 3, the publish logs copied between them through the coordinator): the
/// totals are those of one process, and with the server dropping deliveries, `lost` is its
/// count across the workers.
#[test]
fn a_room_split_over_workers_counts_as_one_process_does() {
    let split = PLAN.replace("rooms = 3", "rooms = 1");
    let tmp = tempfile::tempdir().expect("tmp");
    let (r1, r3, err3) = as_one_and_three(&split, tmp.path());
    assert_eq!(r3.meta.shards, 3);
    let clients: Vec<u64> = r3.workers.iter().map(|w| w.clients).collect();
    assert_eq!(clients, vec![6, 6, 6], "dealt round robin, not by room");
    assert!(
        r3.meta.split_rooms,
        "the run file says the rooms were split"
    );
    assert_eq!(
        totals(&r1),
        totals(&r3),
        "connected, echo sent/received, broadcast published/expected/delivered/lost/missed; {err3}"
    );
    let b = r3.run.broadcast.as_ref().expect("broadcast");
    assert_eq!(b.delivered, b.expected, "nothing is dropped: {b:?}");
    assert_eq!(b.outside_membership, 0, "{b:?}");
    assert!(b.published > 0 && b.expected == b.published * 15, "{b:?}");
    assert!(
        !err3.contains("split rooms:"),
        "no fault of the copies: {err3}"
    );

    // The server drops 2% of what it sends: lost is its count, across the workers.
    let r = over_three_workers_with_drops(&split, 5);
    let b = r.run.broadcast.as_ref().expect("broadcast");
    assert!(b.lost > 0, "{b:?}");
}

/// Clients that change rooms between phases (two rooms of 10, then rooms of 4) were
/// refused over workers; now the run is split and counts as one process does, in both
/// room size classes.
#[test]
fn clients_that_change_rooms_run_over_workers() {
    const MOVES: &str = r#"
[[phase]]
name = "a"
scenario = "broadcast"
publishers = 2
subscribers = 20
rooms = 2
rate = "20/s"
duration = "2s"

[[phase]]
name = "b"
scenario = "broadcast"
publishers = 2
subscribers = 20
room-size = 4
rate = "20/s"
duration = "2s"
"#;
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, MOVES).expect("plan");
    let url = server.http_url();
    let p = plan.to_str().expect("utf-8 path");
    let counts = |procs: &str| {
        let dir = tmp.path().join(procs);
        let out = swarm(&["run", p, "--url", &url, "--procs", procs], &dir);
        assert!(out.status.success(), "--procs {procs}: {}", stderr(&out));
        let r = read(&dir);
        let b = r.run.broadcast.clone().expect("broadcast");
        let classes: Vec<(String, u64, u64)> = b
            .by_room_size
            .iter()
            .map(|(k, c)| (k.clone(), c.expected, c.delivered))
            .collect();
        (
            r.meta.shards,
            [b.published, b.expected, b.delivered, b.lost],
            classes,
        )
    };
    let (one, whole, classes) = counts("1");
    let (two, split, split_classes) = counts("2");
    assert_eq!((one, two), (1, 2));
    assert_eq!(whole, split, "published, expected, delivered, lost");
    assert_eq!(classes, split_classes, "per room size class");
    assert_eq!(classes.len(), 2, "{classes:?}");
    assert_eq!(whole[1], whole[2], "nothing dropped: {whole:?}");
}

/// Churn over a split room: subscribers drop and come back while the publisher is in
/// another worker; what they missed while away is counted from the copied log, and nothing
/// the server sent is taken for lost.
#[test]
fn churn_over_a_split_room_counts_what_was_missed_away() {
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let dir = tmp.path().join("run");
    let out = swarm(
        &[
            "churn",
            &url,
            "--subscribers",
            "30",
            "--rate",
            "50/s",
            "--churn-rate",
            "15/s",
            "--reconnect-delay",
            "150ms",
            "--duration",
            "3s",
            "--grace",
            "500ms",
            "--procs",
            "2",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = read(&dir);
    assert_eq!(r.meta.shards, 2);
    assert!(
        r.workers.iter().all(|w| w.clients > 10),
        "split: both hold subscribers"
    );
    let b = r.run.broadcast.as_ref().expect("broadcast");
    let c = r.run.churn.as_ref().expect("churn");
    assert!(c.drops >= 10, "drops {}", c.drops);
    assert!(b.missed_while_disconnected > 0, "{b:?}");
    assert_eq!(
        b.lost,
        0,
        "the server dropped nothing: {b:?}; {}",
        stderr(&out)
    );
    assert_eq!(b.outside_membership + b.duplicates, 0, "{b:?}");
    assert_eq!(
        b.delivered + b.missed_while_disconnected + b.lost,
        b.expected
    );
    assert_eq!(
        b.expected,
        b.published * 30,
        "every subscriber a member throughout: {b:?}"
    );
}

/// The server publisher's one room is split over the workers (its subscribers dealt round
/// robin), and each worker counts the server's ticks on its own: the merged accounting is
/// a whole room's, every tick of every member's window delivered once.
#[test]
fn a_server_publisher_room_is_split_over_workers() {
    let server = Target::start(target_server::Config {
        ticks: vec![target_server::config::Tick {
            room: "lobby".into(),
            rate_per_s: 40.0,
            size_bytes: 200,
        }],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let dir = tmp.path().join("run");
    let out = swarm(
        &[
            "broadcast",
            &url,
            "--server-publisher",
            "lobby",
            "--subscribers",
            "30",
            "--duration",
            "2s",
            "--grace",
            "500ms",
            "--procs",
            "3",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read(&dir);
    assert_eq!(r.meta.shards, 3);
    let clients: Vec<u64> = r.workers.iter().map(|w| w.clients).collect();
    assert_eq!(clients, vec![10, 10, 10], "one room, dealt round robin");
    let b = r.run.broadcast.as_ref().expect("broadcast");
    assert_eq!(b.published, 0, "the server published, not the swarm");
    // About 2 s of ticks at 40/s at each of the 30 subscribers, counted once each.
    assert!(
        (30 * 70..=30 * 82).contains(&b.expected),
        "expected {}",
        b.expected
    );
    assert_eq!(b.delivered, b.expected, "{b:?}; {}", stderr(&out));
    assert_eq!(b.lost + b.missed_while_disconnected, 0, "{b:?}");
    // One room of 30, in one size class, though no worker held more than 10 of it.
    let sizes: Vec<&String> = b.by_room_size.keys().collect();
    assert_eq!(sizes, ["30"], "the room's whole size");
    let class = &b.by_room_size[sizes[0]];
    assert_eq!(class.delivered, b.delivered, "{class:?}");
}

/// A running coordinator whose stderr is collected line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], dir: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_swarm"))
            .args(args)
            .arg("--quiet")
            .arg("--out")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start swarm");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line containing `needle`, waiting up to `limit`.
    fn line_with(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no line with {needle:?} within {limit:?}: {:?}", self.seen),
            }
        }
    }

    /// The coordinator's child processes (its local workers), from /proc.
    fn workers(&self) -> Vec<u32> {
        let pid = self.child.id();
        let mut out = Vec::new();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        out.sort_unstable();
        out
    }

    /// Waits for the exit (bounded), killing by PID after `limit`.
    fn wait(mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the coordinator did not exit within {limit:?}: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let rest: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(rest);
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

/// Socket.IO connections the server holds now.
fn connected(server: &Target) -> i64 {
    server
        .shared
        .stats
        .connections(target_server::stats::Proto::SocketioWebsocket)
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Whether a process is gone (or a zombie waiting for its reaper).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pids: &[u32], limit: Duration) {
    let deadline = Instant::now() + limit;
    while !pids.iter().all(|p| gone(*p)) {
        assert!(Instant::now() < deadline, "workers still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const ECHO: [&str; 9] = [
    "echo",
    "",
    "--clients",
    "30",
    "--rate",
    "10/s",
    "--duration",
    "6s",
    "--procs",
];

fn echo_args<'a>(url: &'a str, procs: &'a str) -> Vec<&'a str> {
    let mut a = ECHO.to_vec();
    a[1] = url;
    a.push(procs);
    a
}

/// Waits until the three workers of `run` run (30 clients connected), lets them go on a
/// second, then kills one of its worker processes (by its PID); returns that PID.
fn kill_a_worker_once_running(run: &mut Running, server: &Target) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut workers = run.workers();
    while workers.len() < 3 || connected(server) < 30 {
        assert!(
            Instant::now() < deadline,
            "3 workers never ran 30 clients: {workers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        workers = run.workers();
    }
    std::thread::sleep(Duration::from_secs(1));
    signal(workers[1], "-KILL");
    workers[1]
}

#[test]
fn a_killed_worker_degrades_the_run_and_the_others_data_is_kept() {
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let mut run = Running::start(&echo_args(&url, "3"), tmp.path());
    let victim = kill_a_worker_once_running(&mut run, &server);
    let lost = run.line_with("lost", Duration::from_secs(5));
    assert!(lost.contains("worker"), "{lost}");
    let (code, err) = run.wait(Duration::from_secs(60));
    assert_ne!(code, 0, "a lost worker makes the exit non-zero: {err}");
    let r = read(tmp.path());
    assert_eq!(r.meta.status, reports::RunStatus::Degraded, "{err}");
    let detail = r.meta.status_detail.clone().unwrap_or_default();
    let dead: Vec<_> = r.workers.iter().filter(|w| w.status == "lost").collect();
    assert_eq!(dead.len(), 1, "{:?}", r.workers);
    assert_eq!(dead[0].pid, victim);
    assert!(
        detail.contains(&format!("worker {}", dead[0].index)),
        "{detail}"
    );
    // The others finished, and their data (and the lost one's checkpoint) is merged.
    let alive: Vec<_> = r
        .workers
        .iter()
        .filter(|w| w.status == "completed")
        .collect();
    assert_eq!(alive.len(), 2);
    let echo = r.run.echo.as_ref().expect("echo");
    let per_worker = 30 / 3 * 10 * 6;
    assert!(
        echo.sent >= 2 * per_worker as u64,
        "the two complete workers' sends: {echo:?}"
    );
    assert_eq!(
        echo.sent,
        echo.received + echo.timeouts + echo.unanswered_at_stop
    );
}

/// A split room loses the worker of one of its publishers: the coordinator passes it on
/// as done, so the others' subscribers tally at once with what its copy holds (none waits
/// out the bound), and the run is degraded with the accounting whole.
#[test]
fn a_killed_worker_of_a_split_room_does_not_hold_the_others_tallies() {
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let args = [
        "broadcast",
        &url,
        "--publishers",
        "3",
        "--subscribers",
        "27",
        "--rooms",
        "1",
        "--rate",
        "20/s",
        "--duration",
        "5s",
        "--procs",
        "3",
    ];
    let mut run = Running::start(&args, tmp.path());
    kill_a_worker_once_running(&mut run, &server);
    run.line_with("lost", Duration::from_secs(5));
    let (code, err) = run.wait(Duration::from_secs(60));
    assert_ne!(code, 0, "{err}");
    let r = read(tmp.path());
    assert_eq!(r.meta.status, reports::RunStatus::Degraded, "{err}");
    assert!(r.meta.split_rooms);
    let b = r.run.broadcast.as_ref().expect("broadcast");
    assert!(b.expected > 0 && b.delivered > 0, "{b:?}");
    assert_eq!(
        b.delivered + b.missed_while_disconnected + b.lost,
        b.expected
    );
    assert!(
        !err.contains("counted before every worker's log was complete"),
        "a tally waited for the lost worker: {err}"
    );
}

#[test]
fn ctrl_c_stops_every_worker_and_writes_the_merged_results() {
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let mut run = Running::start(&echo_args(&url, "2"), tmp.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    while connected(&server) < 30 {
        assert!(
            Instant::now() < deadline,
            "the workers never connected 30 clients"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let workers = run.workers();
    assert_eq!(workers.len(), 2);
    signal(run.child.id(), "-INT");
    let _ = run.line_with("stopping", Duration::from_secs(5));
    let (code, err) = run.wait(Duration::from_secs(30));
    assert_eq!(code, 130, "{err}");
    wait_gone(&workers, Duration::from_secs(5));
    let r = read(tmp.path());
    assert_eq!(r.meta.status, reports::RunStatus::Interrupted);
    assert_eq!(r.meta.shards, 2);
    assert!(r.run.echo.as_ref().is_some_and(|e| e.sent > 0));
}

#[test]
fn remote_workers_join_with_the_token_and_their_indexed_job_shard() {
    let server = Target::start(target_server::Config::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let url = server.http_url();
    let token = "a-test-token-0123456789";
    // One room over the two remote workers: a split run, its publish logs copied between
    // them through the coordinator as between local workers.
    let mut args = vec![
        "broadcast",
        url.as_str(),
        "--publishers",
        "2",
        "--subscribers",
        "10",
        "--rooms",
        "1",
        "--rate",
        "10/s",
        "--duration",
        "2s",
    ];
    args.extend(["--procs", "0", "--expect-workers", "2", "--token", token]);
    let mut run = Running::start(&args, &tmp.path().join("run"));
    let line = run.line_with("swarm worker --join", Duration::from_secs(20));
    let join = line
        .split("--join ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the join address")
        .to_string();
    let worker = |index: &str, token: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_swarm"));
        c.args(["worker", "--join", &join])
            .env("SWARM_TOKEN", token)
            .env("JOB_COMPLETION_INDEX", index);
        c
    };
    // A worker without the run's token is refused, and says so.
    let refused = run_bounded(worker("0", "not-the-token-000000"), Duration::from_secs(20));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("wrong token"),
        "{}",
        stderr(&refused)
    );
    // The pods of an Indexed Job: each takes the shard JOB_COMPLETION_INDEX names.
    let pods: Vec<_> = ["1", "0"]
        .iter()
        .map(|i| {
            worker(i, token)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("worker")
        })
        .collect();
    let (code, err) = run.wait(Duration::from_secs(60));
    for p in pods {
        let out = p.wait_with_output().expect("worker output");
        assert!(out.status.success(), "worker: {}", stderr(&out));
    }
    assert_eq!(code, 0, "{err}");
    let r = read(&tmp.path().join("run"));
    assert_eq!(r.meta.shards, 2);
    let mut idx: Vec<u32> = r.workers.iter().map(|w| w.index).collect();
    idx.sort_unstable();
    assert_eq!(idx, vec![0, 1]);
    assert_eq!(r.run.connect.connected, 12);
    assert!(
        r.workers
            .iter()
            .all(|w| w.clock_offset_bound_us < 100_000.0)
    );
    assert!(r.meta.split_rooms);
    let b = r.run.broadcast.as_ref().expect("broadcast");
    assert!(b.published > 0, "{b:?}");
    assert_eq!(b.expected, b.published * 10, "{b:?}");
    assert_eq!(b.delivered, b.expected, "{b:?}; {err}");
}
