//! Overhead bench: the whole swarm's echo round trip (`swarm echo`, run in-process through
//! `harness::run::execute`: schedule, driver loop, session, recorder) against a minimal
//! client speaking the same protocol to the same endpoint of the same target-server, in
//! the same process run, alternating, at the same load (one client, 1,000 messages per
//! second, 106-byte payload): raw `/ws/echo` and Socket.IO `echo` with an ack.
//!
//! Why: every latency the swarm reports includes its own cost. The claim is that the swarm
//! adds at most 20 µs at p50; this measures it. The swarm's figure is its `service` time
//! (from its actual send, as the minimal client measures); its `latency` is shown beside.
//!
//! Receives: criterion-style arguments (a filter not matching `overhead` skips it;
//! `--list` lists it; flags such as `--save-baseline` are ignored). Emits: a Markdown table
//! on stdout. Must not: run longer than about a minute.

use std::time::{Duration, Instant};

use benches::client::{RawEcho, SioEcho};
use benches::server::Server;
use benches::stats::Rtt;
use bytes::BytesMut;
use clap::Parser as _;

const RATE: u32 = 1000;
const SECONDS: u64 = 3;
const ROUNDS: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    RawWs,
    SocketIo,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::RawWs => "raw /ws/echo",
            Proto::SocketIo => "Socket.IO echo + ack",
        }
    }
}

fn payload() -> String {
    let mut b = BytesMut::new();
    let f = harness::payload::Fields {
        run: 1,
        client: 0,
        seq: 0,
        intended_ns: 1,
        sent_ns: 1,
    };
    harness::payload::write(&mut b, &f, harness::payload::MIN_PAYLOAD_SIZE);
    String::from_utf8(b.to_vec()).unwrap_or_default()
}

/// (p50, p99) of the swarm's service and latency, in µs.
fn swarm_run(srv: &Server, proto: Proto) -> ((u64, u64), (u64, u64)) {
    let url = match proto {
        Proto::RawWs => srv.ws_echo_url(),
        Proto::SocketIo => srv.sio_url(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = format!("{RATE}/s");
    let duration = format!("{SECONDS}s");
    let out = dir.path().display().to_string();
    let argv = [
        "swarm",
        "echo",
        &url,
        "--clients",
        "1",
        "--rate",
        &rate,
        "--duration",
        &duration,
        "--quiet",
        "--out",
        &out,
    ];
    let cli = harness::cli::Cli::try_parse_from(argv).expect("command line");
    let plan = harness::plan::from_command(&cli.command).expect("plan");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let finished = rt.block_on(async {
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        harness::run::execute(plan, vec![], rx)
            .await
            .expect("swarm run")
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let echo = finished.run.run.echo.expect("echo results");
    assert_eq!(echo.timeouts, 0, "no timeouts on loopback");
    (
        (echo.service.p50_us, echo.service.p99_us),
        (echo.latency.p50_us, echo.latency.p99_us),
    )
}

/// (p50, p99) of the minimal client at the same pace, in µs.
fn minimal_run(srv: &Server, proto: Proto, payload: &str) -> (u64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addr = srv.addr;
    let payload = payload.to_string();
    let rtt = rt.block_on(async move {
        let task = tokio::spawn(async move {
            let mut rtt = Rtt::new();
            let period = Duration::from_secs(1) / RATE;
            let n = u64::from(RATE) * SECONDS;
            let mut next = Instant::now() + Duration::from_millis(50);
            match proto {
                Proto::RawWs => {
                    let mut c = RawEcho::connect(addr).await.expect("connect");
                    for _ in 0..n {
                        tokio::time::sleep_until(next.into()).await;
                        let t = Instant::now();
                        c.round_trip(&payload).await.expect("round trip");
                        rtt.record(t.elapsed());
                        next += period;
                    }
                    c.close().await;
                }
                Proto::SocketIo => {
                    let mut c = SioEcho::connect(addr).await.expect("connect");
                    for _ in 0..n {
                        tokio::time::sleep_until(next.into()).await;
                        let t = Instant::now();
                        c.round_trip(&payload).await.expect("round trip");
                        rtt.record(t.elapsed());
                        next += period;
                    }
                    c.close().await;
                }
            }
            rtt
        });
        task.await.expect("client task")
    });
    (rtt.quantile_us(0.5), rtt.quantile_us(0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("overhead: benchmark");
        return;
    }
    // Positional arguments are criterion filters (flag values such as a baseline name
    // follow their flag and are skipped).
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a.starts_with("--") {
            if matches!(
                a.as_str(),
                "--save-baseline"
                    | "--baseline"
                    | "--load-baseline"
                    | "--profile-time"
                    | "--sample-size"
                    | "--measurement-time"
                    | "--warm-up-time"
            ) {
                it.next();
            }
        } else {
            filters.push(a.clone());
        }
    }
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "overhead".contains(f.as_str()) || f.contains("overhead"))
    {
        return;
    }
    let _ = target_server::net::raise_fd_limit();
    let srv = Server::start(target_server::Config::default(), 1).expect("target-server");
    let payload = payload();
    println!(
        "overhead: one client, {RATE}/s, {SECONDS} s per run, {ROUNDS} alternating rounds, 106-byte payload"
    );
    println!();
    println!(
        "| protocol | round | minimal p50 | swarm service p50 | added p50 | minimal p99 | swarm service p99 | swarm latency p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for proto in [Proto::RawWs, Proto::SocketIo] {
        let mut added = Vec::new();
        for round in 1..=ROUNDS {
            let (m50, m99) = minimal_run(&srv, proto, &payload);
            let ((s50, s99), (l50, _)) = swarm_run(&srv, proto);
            let d = s50 as i64 - m50 as i64;
            added.push(d);
            println!(
                "| {} | {round} | {m50} µs | {s50} µs | {d:+} µs | {m99} µs | {s99} µs | {l50} µs |",
                proto.name()
            );
        }
        added.sort_unstable();
        println!(
            "| {} | median | | | {:+} µs | | | |",
            proto.name(),
            added[added.len() / 2]
        );
    }
}
