//! The minimal load client the swarm's CPU per acknowledged emit is compared with
//! (docs/PERFORMANCE.md#send-timing): one tokio task per Socket.IO connection (websocket
//! transport) that emits `echo` with an ack at a fixed rate and waits for the ack, nothing
//! else: no recorder, no schedule beyond its own period, no histograms but one.
//!
//! Usage: `minimal_load ADDR [--clients 1000] [--rate 5] [--secs 10] [--threads 2]`
//! (ADDR: host:port of a target-server). Connections are opened 200 at a time from
//! 127.0.0.1, .2, ... (8,000 per source address, as the swarm does for loopback targets),
//! then each client sends every 1/rate seconds from a random phase, on tokio's timer, for
//! `--secs`. Receives: its arguments. Emits: one JSON line
//! `{clients, rate, secs, acked, failed, p50_us, p99_us, cpu_ms}` where `cpu_ms` is the
//! process's user + system time over the send window only (connects excluded) and p50/p99
//! are from each actual send to its ack. Must not: reach beyond 127.0.0.0/8, or run longer
//! than the connects + `--secs` + 5 s.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::client::SioEcho;
use benches::stats::Rtt;

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time of this process (fields 14 and 15 of /proc/self/stat, in clock
/// ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn payload() -> String {
    let mut b = bytes::BytesMut::new();
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: minimal_load ADDR [--clients 1000] [--rate 5] [--secs 10] [--threads 2]");
        std::process::exit(2);
    };
    if !addr.ip().is_loopback() {
        eprintln!("minimal_load: only loopback targets (127.0.0.0/8)");
        std::process::exit(2);
    }
    let clients = flag(&args, "--clients", 1000).max(1);
    let rate = flag(&args, "--rate", 5).clamp(1, 10_000);
    let secs = flag(&args, "--secs", 10).clamp(1, 600);
    let threads = flag(&args, "--threads", 2).clamp(1, 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let payload: Arc<str> = payload().into();
    let out = rt.block_on(async move {
        // Connect everyone first.
        let mut conns = Vec::with_capacity(clients as usize);
        let mut i = 0u64;
        while i < clients {
            let batch: Vec<_> = (i..(i + 200).min(clients))
                .map(|c| {
                    let octet = 1 + (c / 8000) as u8;
                    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet));
                    tokio::spawn(async move {
                        tokio::time::timeout(
                            Duration::from_secs(10),
                            SioEcho::connect_from(addr, src),
                        )
                        .await
                    })
                })
                .collect();
            for h in batch {
                match h.await {
                    Ok(Ok(Ok(c))) => conns.push(c),
                    other => {
                        eprintln!("minimal_load: connect failed: {:?}", other.map(|r| r.map(|r| r.err())));
                    }
                }
            }
            i += 200;
        }
        let held = conns.len() as u64;
        let period = Duration::from_secs(1) / rate as u32;
        let start = Instant::now() + Duration::from_millis(100);
        let until = start + Duration::from_secs(secs);
        let acked = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let rtt = Arc::new(Mutex::new(Rtt::new()));
        let mut tasks = Vec::with_capacity(conns.len());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let c0 = cpu();
        for mut c in conns {
            // A random phase within the first period (xorshift).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let phase = period.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64);
            let (payload, acked, failed, rtt) =
                (payload.clone(), acked.clone(), failed.clone(), rtt.clone());
            tasks.push(tokio::spawn(async move {
                let mut local = Rtt::new();
                let mut next = start + phase;
                while next < until {
                    tokio::time::sleep_until(next.into()).await;
                    let t = Instant::now();
                    match tokio::time::timeout(Duration::from_secs(5), c.round_trip(&payload))
                        .await
                    {
                        Ok(Ok(())) => {
                            local.record(t.elapsed());
                            acked.fetch_add(1, Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Relaxed);
                            return;
                        }
                    }
                    next += period;
                }
                rtt.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .histogram_add(&local);
                c.close().await;
            }));
        }
        // The send window: CPU is read when the last send is due, before the closes.
        tokio::time::sleep_until(until.into()).await;
        let cpu_ms = (cpu() - c0).as_millis();
        for t in tasks {
            let _ = t.await;
        }
        let rtt = rtt.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "{{\"clients\":{held},\"rate\":{rate},\"secs\":{secs},\"acked\":{},\"failed\":{},\"p50_us\":{},\"p99_us\":{},\"cpu_ms\":{cpu_ms}}}",
            acked.load(Relaxed),
            failed.load(Relaxed),
            rtt.quantile_us(0.5),
            rtt.quantile_us(0.99)
        )
    });
    println!("{out}");
}
