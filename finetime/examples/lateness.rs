//! Measures how late timed wake-ups are: `tasks` tasks each waking `rate` times a second at
//! random instants for `secs` seconds, on tokio's timer or on finetime timers with several
//! spins; prints lateness percentiles and the process CPU time spent per wake-up.
//!
//! `cargo run --release -p finetime --example lateness -- [tasks] [rate] [secs]`
//! (docs/PERFORMANCE.md#send-timing).

use std::time::{Duration, Instant};

fn cpu() -> Duration {
    // utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[derive(Clone, Copy)]
enum Kind {
    Tokio,
    Fine(&'static finetime::Timer),
}

async fn one(kind: Kind, rate: f64, until: Instant, seed: u64) -> Vec<u32> {
    let mut late = Vec::new();
    let mut x = seed | 1;
    let mut at = Instant::now();
    loop {
        // xorshift: exponential gaps (Poisson arrivals) around 1/rate.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        at += Duration::from_secs_f64(-(1.0 - u).ln() / rate);
        if at >= until {
            return late;
        }
        match kind {
            Kind::Tokio => tokio::time::sleep_until(at.into()).await,
            Kind::Fine(t) => t.sleep_until(at).await,
        }
        late.push(Instant::now().saturating_duration_since(at).as_micros() as u32);
    }
}

fn measure(name: &str, kind: Kind, tasks: u64, rate: f64, secs: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c0 = cpu();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut all: Vec<u32> = rt.block_on(async {
        let hs: Vec<_> = (0..tasks)
            .map(|i| {
                tokio::spawn(one(
                    kind,
                    rate,
                    until,
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ))
            })
            .collect();
        let mut all = Vec::new();
        for h in hs {
            all.extend(h.await.unwrap());
        }
        all
    });
    let spent = cpu() - c0;
    all.sort_unstable();
    let q = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<22} wakes {:>7}  late p50 {:>5} µs  p90 {:>5}  p99 {:>5}  max {:>6}  cpu/wake {:>5.1} µs",
        all.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        all[all.len() - 1],
        spent.as_secs_f64() * 1e6 / all.len() as f64
    );
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tasks = args.first().copied().unwrap_or(1000);
    let rate = args.get(1).copied().unwrap_or(20) as f64;
    let secs = args.get(2).copied().unwrap_or(3);
    println!("{tasks} tasks x {rate}/s for {secs} s, 2 tokio workers");
    measure("tokio sleep_until", Kind::Tokio, tasks, rate, secs);
    for spin in [0u64, 20, 50, 100] {
        let t = finetime::Timer::start(Duration::from_micros(spin));
        measure(
            &format!("finetime spin {spin} µs"),
            Kind::Fine(t),
            tasks,
            rate,
            secs,
        );
    }
}
